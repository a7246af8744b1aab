//! Helpers shared by the end-to-end tests that drive the real `ft` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ft ARGS` in `dir`.
pub fn ft(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ft"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ft")
}

/// Copies the files (not sub-folders) of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Copies the quickstart's tiny model and its snippets into `dir` (as
/// `models/tiny-sentiment/` and `data/quickstart-snippets.tsv`, the paths
/// recipes/quickstart.ft names) and returns the quickstart's text.
pub fn quickstart_into(dir: &Path) -> String {
    copy_dir(
        &root().join("recipes/models/tiny-sentiment"),
        &dir.join("models/tiny-sentiment"),
    );
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(
        root().join("recipes/data/quickstart-snippets.tsv"),
        dir.join("data/quickstart-snippets.tsv"),
    )
    .unwrap();
    std::fs::read_to_string(root().join("recipes/quickstart.ft")).unwrap()
}

/// Everything `ft` printed, stdout then stderr (for failure messages).
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The path of a fetched asset under `.cache/` (models, data).
pub fn asset(rel: &str) -> String {
    let p = root().join(".cache").join(rel);
    assert!(
        p.exists(),
        "missing {}: run scripts/fetch-assets.sh",
        p.display()
    );
    p.display().to_string()
}

/// The run folder that `ft run --format json` reported in its `done` event.
pub fn finished_run_dir(o: &Output) -> PathBuf {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "done")
        .and_then(|v| v["summary"]["run_dir"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no `done` event in the output:\n{}", text(o)))
}

/// A fresh folder under `target/train-tests` holding `recipe.ft`.
pub fn workdir(name: &str, recipe: &str) -> PathBuf {
    let dir = root().join("target/train-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("recipe.ft"), recipe).unwrap();
    dir
}

/// The final evaluation's metrics of a run.
pub fn final_metrics(run: &Path) -> serde_json::Value {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["final"] == true)
        .map(|v| v["metrics"].clone())
        .expect("a final evaluation")
}

/// The final evaluation's loss of a run.
pub fn final_loss(run: &Path) -> f64 {
    final_metrics(run)["loss"].as_f64().expect("a final loss")
}

/// Every training loss of a run, in step order.
pub fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .filter_map(|v| v["loss"].as_f64())
        .collect()
}

/// SmolLM2 on the short chatterbot question–answer pairs: `prompt` is the
/// dataset's prompt (such as `chat([user: "{question}"])`), then the given
/// `peft` block, the body of `train` (one setting a line), and the
/// `evaluate` block.
pub fn chatterbot_recipe(prompt: &str, peft: &str, train: &str, evaluate: &str) -> String {
    let train = train
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let data = format!("{}/*.yml", asset("data/chatterbot"));
    format!(
        r#"model base = gguf("{model}")

dataset faq = yaml_pairs("{data}") {{
  prompt     = {prompt}
  completion = "{{answer}}"
  split      = {{ train = 85%, val = 15%, seed = 7 }}
  filter     = len(question) < 24 and len(answer) < 48
  on_bad_row = skip
}}

{peft}

train {{
{train}
}}

{evaluate}
"#
    )
}

/// `ft run recipe.ft` in `dir` (run folders under `dir/runs`), which must
/// succeed: the run's folder.
pub fn run_recipe(dir: &Path) -> PathBuf {
    let o = ft(dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    dir.join("runs/recipe/0001")
}
