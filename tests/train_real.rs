//! `ft run` on real weights and real data (the assets of
//! `scripts/fetch-assets.sh`), kept short for CI: SmolLM2-135M with LoRA
//! on chatterbot questions (validation loss falls; the adapter generates),
//! and SmolLM2 with DPO on chatterbot preference pairs (the implicit reward
//! margin grows from zero).

mod common;

use common::{asset, ft, root, text};
use std::path::{Path, PathBuf};

fn workdir(name: &str, recipe: &str) -> PathBuf {
    let dir = root().join("target/train-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("recipe.ft"), recipe).unwrap();
    dir
}

/// `(step, value)` of every non-final validation metric `name`.
fn val_curve(run: &Path, name: &str) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "val" && v.get("final").is_none())
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["metrics"][name].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn smollm2_lora_on_chatterbot_lowers_validation_loss_and_generates() {
    let data = format!("{}/*.yml", asset("data/chatterbot"));
    let recipe = format!(
        r#"model base = gguf("{model}")

dataset faq = yaml_pairs("{data}") {{
  prompt     = chat([system: "You are a helpful assistant.", user: "{{question}}"])
  completion = "{{answer}}"
  split      = {{ train = 85%, val = 15%, seed = 7 }}
  filter     = len(question) < 24 and len(answer) < 48
  on_bad_row = skip
}}

peft lora {{ rank = 8, alpha = 16, targets = [q_proj, v_proj] }}

train {{
  steps      = 12
  batch      = 4
  max_len    = 96
  optimizer  = adamw(lr = 1e-3)
  eval_every = 6
}}

evaluate {{ on = val, metrics = [loss, perplexity] }}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    );
    let dir = workdir("smollm2-lora", &recipe);
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.join("runs/recipe/0001");
    let curve = val_curve(&run, "loss");
    assert_eq!(curve.iter().map(|c| c.0).collect::<Vec<_>>(), vec![6, 12]);
    assert!(
        curve[1].1 < curve[0].1,
        "validation loss did not fall: {curve:?}"
    );
    for f in [
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let o = ft(
        &dir,
        &[
            "generate",
            &asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "--adapter",
            run.join("adapter").to_str().unwrap(),
            "--prompt",
            "Are you sentient?",
            "--max-tokens",
            "16",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
}

#[test]
fn smollm2_dpo_margin_grows() {
    let recipe = format!(
        r#"model policy = gguf("{model}")

dataset prefs = jsonl("{data}") {{
  prompt   = chat([user: "{{prompt}}"])
  chosen   = "{{chosen}}"
  rejected = "{{rejected}}"
  split    = {{ train = 90%, val = 10%, seed = 1 }}
}}

peft lora {{ rank = 8, alpha = 16, targets = [q_proj, v_proj] }}

train {{
  objective  = dpo(beta = 0.1)
  steps      = 8
  batch      = 2
  max_len    = 96
  optimizer  = adamw(lr = 1e-3)
  eval_every = 4
}}

evaluate {{ on = val, metrics = [loss, margin] }}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        data = root().join("recipes/data/preferences.jsonl").display(),
    );
    let dir = workdir("smollm2-dpo", &recipe);
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let curve = val_curve(&dir.join("runs/recipe/0001"), "margin");
    assert_eq!(curve.len(), 2, "{curve:?}");
    // LoRA's B starts at zero, so the policy starts equal to the reference
    // (margin 0); training on the pairs makes the chosen answers likelier.
    assert!(
        curve[0].1 > 0.0 && curve[1].1 > curve[0].1,
        "margin did not grow: {curve:?}"
    );
}
