//! A Llama-family classifier end to end, on SmolLM2-135M and the
//! movie-snippet sentiment data: `ft run` trains it with LoRA (`score` on
//! the last real token, as transformers' `LlamaForSequenceClassification`)
//! and exports adapter and merged weights; `ft classify` gives the same
//! probabilities from the base model with the adapter, from the merged
//! weights and from a recipe whose model names the adapter (with the
//! recipe's label names); `ft eval` with the adapter reproduces the run's
//! final metrics; and a PPO run takes it as its reward model.

mod common;

use common::{asset, final_metrics, ft, run_recipe, text, train_losses, workdir};
use serde_json::Value;

/// The sentiment recipe; `adapter` goes into the model block.
fn recipe(adapter: &str) -> String {
    format!(
        r#"model base = gguf("{model}") {{
  head = classify(labels = ["negative", "positive"]){adapter}
}}

dataset reviews = tsv("{data}", columns = ["id", "score", "text"]) {{
  input  = "{{text}}"
  label  = if score > 0 then "positive" else "negative"
  filter = len(text) < 30
  split  = {{ train = 85%, val = 15%, seed = 42, stratify = label }}
}}

peft lora {{ rank = 8, alpha = 16, targets = [q_proj, v_proj] }}

train {{
  steps     = 6
  batch     = 8
  max_len   = 32
  optimizer = adamw(lr = 2e-3)
}}

evaluate {{ on = val, metrics = [accuracy, loss] }}

output {{ export = both }}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        data = asset("data/movie_snippets.tsv"),
    )
}

const TEXTS: [&str; 2] = ["A triumph, warm and funny.", "Tedious and empty."];

/// `ft classify MODEL [extra…]` on [`TEXTS`]: each text's (label,
/// probability) pairs.
fn classify(dir: &std::path::Path, model: &str, extra: &[&str]) -> Vec<Vec<(String, f64)>> {
    let mut args = vec!["classify", model];
    args.extend_from_slice(extra);
    for t in TEXTS {
        args.extend_from_slice(&["--text", t]);
    }
    let o = ft(dir, &args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            v["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["label"].as_str().unwrap().to_string(),
                        l["probability"].as_f64().unwrap(),
                    )
                })
                .collect()
        })
        .collect()
}

fn assert_close(a: &[Vec<(String, f64)>], b: &[Vec<(String, f64)>], what: &str) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for ((_, p), (_, q)) in x.iter().zip(y) {
            assert!((p - q).abs() < 1e-4, "{what}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn smollm2_classifier_trains_exports_classifies_and_rewards() {
    let model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let dir = workdir("llama-classifier", &recipe(""));
    let run = run_recipe(&dir);
    let losses = train_losses(&run);
    assert_eq!(losses.len(), 6);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let metrics = final_metrics(&run);
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{metrics}");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["task_type"], "SEQ_CLS");
    assert_eq!(config["modules_to_save"], serde_json::json!(["score"]));
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("merged/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        merged["architectures"],
        serde_json::json!(["LlamaForSequenceClassification"])
    );

    let adapter = run.join("adapter").display().to_string();
    let with_adapter = classify(&dir, &model, &["--adapter", &adapter]);
    let from_merged = classify(&dir, run.join("merged").to_str().unwrap(), &[]);
    assert_close(&with_adapter, &from_merged, "merged vs adapter");
    std::fs::write(
        dir.join("trained.ft"),
        recipe(&format!("\n  adapter = \"{adapter}\"")),
    )
    .unwrap();
    let from_recipe = classify(&dir, "trained.ft", &[]);
    assert_close(&with_adapter, &from_recipe, "recipe vs adapter");
    assert_eq!(from_recipe[0][0].0, "negative");
    assert_eq!(from_recipe[0][1].0, "positive");

    // `ft eval` of the recipe that names the adapter: the run's final
    // evaluation again.
    let o = ft(&dir, &["eval", "trained.ft", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let evaluated: Value = serde_json::from_slice::<Value>(&o.stdout).unwrap()[0].clone();
    assert_eq!(evaluated["split"], "val");
    for k in ["accuracy", "loss"] {
        let (a, b) = (
            evaluated["metrics"][k].as_f64().unwrap(),
            metrics[k].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-5, "{k}: eval {a} vs run {b}");
    }

    // The classifier as a PPO reward model.
    std::fs::write(
        dir.join("prompts.jsonl"),
        "{\"q\": \"Describe a film you liked.\"}\n{\"q\": \"Review a movie in one line.\"}\n"
            .repeat(3),
    )
    .unwrap();
    let ppo = format!(
        r#"model policy = gguf("{model}")

model judge = gguf("{model}") {{
  head    = classify(labels = ["negative", "positive"])
  adapter = "{adapter}"
}}

dataset prompts = jsonl("prompts.jsonl") {{
  prompt = chat([user: "{{q}}"])
  split  = {{ train = 100% }}
}}

peft lora {{ rank = 4, alpha = 8, targets = [q_proj, v_proj] }}

train {{
  model     = policy
  objective = ppo(reward = judge, max_new_tokens = 4)
  steps     = 1
  batch     = 2
  max_len   = 48
  optimizer = adamw(lr = 1e-4)
}}
"#
    );
    std::fs::write(dir.join("ppo.ft"), ppo).unwrap();
    let o = ft(&dir, &["run", "ppo.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let line: Value = std::fs::read_to_string(dir.join("runs/ppo/0001/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["split"] == "train")
        .expect("a training step");
    let reward = line["reward"].as_f64().unwrap();
    assert!(reward.is_finite() && reward != 0.0, "{line}");
}
