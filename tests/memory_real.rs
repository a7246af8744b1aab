//! `ft plan`'s memory estimate against the peak resident memory of real
//! runs (`peak_rss_bytes` in summary.json), within ±30 %: MiniLM with LoRA,
//! SmolLM2 with LoRA and in full, DPO (with its reference model) and PPO
//! (with its reference and reward models). The data fills `max_len`
//! (aclsum's abstracts are longer), as the estimate assumes.

mod common;

use std::path::Path;

use common::{asset, ft, text, workdir};
use ft_compiler::driver::{self, Options};
use ft_compiler::plan::summary;

/// The estimate and the measured peak of `ft run recipe.ft` in `dir`.
fn estimate_and_peak(dir: &Path) -> (u64, u64) {
    let a = driver::analyze_path(&dir.join("recipe.ft"), Options::default());
    assert!(!a.has_errors(), "{:#?}", a.diagnostics);
    let plan = a.plan().unwrap();
    let estimate = summary::estimate(&plan, &a).unwrap().memory_bytes();
    let o = ft(dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("runs/recipe/0001/summary.json")).unwrap(),
    )
    .unwrap();
    (estimate, s["peak_rss_bytes"].as_u64().expect("a peak"))
}

fn check(name: &str, recipe: &str) {
    let dir = workdir(&format!("memory-{name}"), recipe);
    let (estimate, peak) = estimate_and_peak(&dir);
    let ratio = estimate as f64 / peak as f64;
    eprintln!(
        "{name}: estimate {} MiB, peak {} MiB, ratio {ratio:.2}",
        estimate >> 20,
        peak >> 20
    );
    assert!(
        (0.7..=1.3).contains(&ratio),
        "{name}: estimate {estimate} vs peak {peak} (ratio {ratio:.2})"
    );
}

fn papers() -> String {
    asset("data/aclsum/train.jsonl")
}

fn smollm2(peft: &str, train: &str) -> String {
    format!(
        r#"model base = gguf("{model}")

dataset papers = jsonl("{data}") {{
  prompt     = "{{summary.challenge}} {{summary.approach}}"
  completion = "{{summary.outcome}}"
}}

{peft}

train {{ {train} }}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        data = papers(),
    )
}

/// A MiniLM classifier (its adapter is PPO's reward model below).
fn minilm() -> String {
    format!(
        r#"model m = hf("{model}") {{ head = classify(labels = ["short", "long"]) }}

dataset papers = jsonl("{data}") {{
  input = "{{summary.challenge}} {{summary.approach}}"
  label = if len(summary.outcome) > 150 then "long" else "short"
}}

peft lora {{ rank = 8, targets = [query, value] }}

train {{ steps = 2, batch = 16, max_len = 64 }}
"#,
        model = asset("models/all-MiniLM-L6-v2"),
        data = papers(),
    )
}

#[test]
fn memory_estimates_match_peak_rss_of_real_runs() {
    check("minilm-lora", &minilm());
    let lora = "peft lora { rank = 8, targets = [q_proj, v_proj] }";
    check(
        "smollm2-lora",
        &smollm2(lora, "steps = 2, batch = 8, max_len = 64"),
    );
    check(
        "smollm2-full",
        &smollm2("", "steps = 1, batch = 2, max_len = 64"),
    );

    let prefs = common::root().join("recipes/data/preferences.jsonl");
    let dpo = format!(
        r#"model base = gguf("{model}")

dataset prefs = jsonl("{prefs}") {{
  prompt   = chat([user: "{{prompt}}"])
  chosen   = "{{chosen}}"
  rejected = "{{rejected}}"
}}

{lora}

train {{
  objective = dpo(beta = 0.1)
  steps     = 1
  batch     = 4
  max_len   = 64
}}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        prefs = prefs.display(),
    );
    check("smollm2-dpo", &dpo);

    // PPO against the MiniLM classifier trained above.
    let reward =
        common::root().join("target/train-tests/memory-minilm-lora/runs/recipe/0001/adapter");
    let ppo_dir = workdir("memory-ppo-prompts", "");
    std::fs::write(
        ppo_dir.join("prompts.jsonl"),
        "{\"q\": \"Describe a new method for parsing.\"}\n{\"q\": \"Summarize a paper on translation.\"}\n"
            .repeat(4),
    )
    .unwrap();
    let ppo = format!(
        r#"model policy = gguf("{model}")

model judge = hf("{minilm}") {{
  head    = classify(labels = ["short", "long"])
  adapter = "{reward}"
}}

dataset prompts = jsonl("{prompts}") {{
  prompt = chat([user: "{{q}}"])
}}

{lora}

train {{
  model     = policy
  objective = ppo(reward = judge, max_new_tokens = 8)
  steps     = 1
  batch     = 4
  max_len   = 64
}}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        minilm = asset("models/all-MiniLM-L6-v2"),
        reward = reward.display(),
        prompts = ppo_dir.join("prompts.jsonl").display(),
    );
    check("smollm2-ppo", &ppo);
}
