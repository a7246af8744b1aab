//! MiniLM + LoRA r8 on the movie-snippet sentiment data (real weights, real
//! data), a short run: test accuracy ≥ 0.80, printed beside the PyTorch +
//! PEFT reference trained with the same settings on the same rows
//! (`tests/reference/sentiment-short.reference.json`, produced by
//! `scripts/reference/sentiment_accuracy.py`, which reads ft's own Plan and
//! split). ft must not trail the reference by more than the spread between
//! seeds.

mod common;

use common::{finished_run_dir, ft, root, text};
use serde_json::Value;

const RECIPE: &str = "tests/reference/sentiment-short.ft";
const REFERENCE: &str = "tests/reference/sentiment-short.reference.json";

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// The settings the reference records, read off the recipe's current Plan.
fn settings(plan: &Value) -> Value {
    let lora = &plan["method"]["Lora"];
    let t = &plan["train"];
    let targets: Vec<Value> = lora["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Suffix"].clone())
        .collect();
    serde_json::json!({
        "seed": plan["seed"],
        "rank": lora["rank"],
        "alpha": lora["alpha"],
        "dropout": lora["dropout"],
        "targets": targets,
        "optimizer": t["optimizer"],
        "schedule": t["schedule"],
        "length": t["length"],
        "batch": t["batch"],
        "accumulate": t["accumulate"],
        "max_len": t["max_len"],
        "clip": t["clip"],
    })
}

#[test]
fn minilm_lora_short_run_reaches_080_test_accuracy_beside_pytorch_peft() {
    assert!(
        root().join(".cache/data/movie_snippets.tsv").exists(),
        "real assets missing: run scripts/fetch-assets.sh"
    );
    let reference: Value = json(&std::fs::read(root().join(REFERENCE)).unwrap());
    let recipe = root().join(RECIPE);
    let plan = ft(&root(), &["plan", RECIPE, "--format", "json"]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert_eq!(
        settings(&json(&plan.stdout)),
        reference["settings"],
        "the recipe changed since the reference was made: rerun the command in \
         scripts/reference/sentiment_accuracy.py"
    );

    let dir = root().join("target/train-tests/sentiment-short");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    let o = ft(
        &dir,
        &[
            "run",
            recipe.to_str().unwrap(),
            "--runs",
            runs.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let run = finished_run_dir(&o);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let test = metrics
        .lines()
        .map(|l| json(l.as_bytes()))
        .find(|v| v["split"] == "test" && v["final"] == true)
        .expect("a final test evaluation");
    let (acc, f1) = (
        test["metrics"]["accuracy"].as_f64().unwrap(),
        test["metrics"]["f1"].as_f64().unwrap(),
    );
    let (ref_acc, ref_f1) = (
        reference["test"]["accuracy"].as_f64().unwrap(),
        reference["test"]["f1"].as_f64().unwrap(),
    );
    eprintln!(
        "MiniLM + LoRA r8, {} steps, {} test rows:\n  ft            accuracy {acc:.4}  macro-F1 {f1:.4}\n  \
         PyTorch+PEFT  accuracy {ref_acc:.4}  macro-F1 {ref_f1:.4}  ({})",
        reference["steps"], reference["test_rows"], reference["framework"]
    );
    assert!(acc >= 0.80, "test accuracy {acc:.4} < 0.80");
    // Initialisation, dropout and shuffling draws differ between the two
    // frameworks; across seeds each side moves by about ±0.01.
    assert!(
        acc >= ref_acc - 0.03,
        "ft {acc:.4} trails PyTorch+PEFT {ref_acc:.4} by more than 0.03"
    );
}
