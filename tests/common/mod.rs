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

/// A tiny Llama with seeded random weights (the compiler's fixture has
/// headers only): the fixture's config and tokenizer, every tensor written.
pub fn write_tiny_llama(dir: &Path) {
    let fixture = root().join("compiler/tests/fixtures/world/models/tiny-llama");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    let (h, ffn, vocab) = (16usize, 32usize, 16usize);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, h]),
        ("model.norm.weight".into(), vec![h]),
        ("lm_head.weight".into(), vec![vocab, h]),
    ];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        for n in ["input_layernorm", "post_attention_layernorm"] {
            shapes.push((format!("{p}.{n}.weight"), vec![h]));
        }
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            shapes.push((format!("{p}.self_attn.{n}.weight"), vec![h, h]));
        }
        shapes.push((format!("{p}.mlp.gate_proj.weight"), vec![ffn, h]));
        shapes.push((format!("{p}.mlp.up_proj.weight"), vec![ffn, h]));
        shapes.push((format!("{p}.mlp.down_proj.weight"), vec![h, ffn]));
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, shape) in &shapes {
        let n: usize = shape.iter().product();
        let start = data.len();
        for _ in 0..n {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 * 0.6 - 0.3;
            let v = if name.ends_with("norm.weight") {
                1.0 + u
            } else {
                u
            };
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    std::fs::write(dir.join("model.safetensors"), out).unwrap();
}

/// The `split: train` lines of a run's metrics.
pub fn train_lines(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .collect()
}
