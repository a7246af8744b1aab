//! LoRA that trains base-model parameters too, end to end on MiniLM and
//! the movie-snippet sentiment data: `bias = lora_only` and
//! `modules_to_save = ["embeddings.LayerNorm"]`. `ft plan` counts what PEFT
//! counts for the same configuration; the run trains those parameters and
//! saves them under PEFT's names; the base model with the adapter and the
//! merged weights classify alike.

mod common;

use common::{asset, ft, root, run_recipe, text, workdir};
use ft_runtime::peft::adapter::read_safetensors;
use serde_json::Value;

fn recipe() -> String {
    format!(
        r#"model encoder = hf("{model}") {{
  head = classify(labels = ["negative", "positive"])
}}

dataset reviews = tsv("{data}", columns = ["id", "score", "text"]) {{
  input  = "{{text}}"
  label  = if score > 0 then "positive" else "negative"
  filter = len(text) < 40
  split  = {{ train = 90%, val = 10%, seed = 3 }}
}}

peft lora {{
  rank            = 2
  alpha           = 4
  targets         = [query, value]
  bias            = lora_only
  modules_to_save = ["embeddings.LayerNorm"]
}}

train {{
  steps     = 4
  batch     = 8
  max_len   = 32
  optimizer = adamw(lr = 1e-2)
}}

evaluate {{ on = val, metrics = [accuracy] }}

output {{ export = both }}
"#,
        model = asset("models/all-MiniLM-L6-v2"),
        data = asset("data/movie_snippets.tsv"),
    )
}

/// The probabilities `ft classify` prints for one text.
fn probabilities(dir: &std::path::Path, args: &[&str]) -> Vec<f64> {
    let o = ft(dir, args);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["probability"].as_f64().unwrap())
        .collect()
}

#[test]
fn minilm_lora_trains_saves_and_merges_biases_and_saved_modules() {
    let dir = workdir("base-params", &recipe());

    // PEFT's trainable count for this configuration (the committed
    // fixture of scripts/reference/peft_reference.py `saved`).
    let fixture = root().join("runtime/tests/fixtures/peft/minilm-lora-only-saved");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap())
            .unwrap();
    let o = ft(&dir, &["plan", "recipe.ft"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let counted = out
        .split("lora: ")
        .nth(1)
        .and_then(|r| r.split(" trainable").next())
        .map(|n| n.replace(',', ""))
        .unwrap_or_else(|| panic!("no trainable count in:\n{out}"));
    assert_eq!(counted, expected["trainable"].to_string(), "{out}");

    let run = run_recipe(&dir);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["bias"], "lora_only");
    assert_eq!(
        config["modules_to_save"],
        serde_json::json!(["embeddings.LayerNorm", "classifier"])
    );
    let saved = read_safetensors(&run.join("adapter/adapter_model.safetensors")).unwrap();
    let files = ft_formats::ModelFiles::open(asset("models/all-MiniLM-L6-v2")).unwrap();
    let mut base = ft_runtime::weights::open_source(&files, &files.config().unwrap()).unwrap();
    let layer = "base_model.model.bert.encoder.layer.0.attention.self";
    assert!(saved.contains_key(&format!("{layer}.query.base_layer.bias")));
    assert!(saved.contains_key(&format!("{layer}.value.base_layer.bias")));
    assert!(
        !saved.keys().any(|k| k.contains(".key.")),
        "key is not adapted"
    );
    for (ours, theirs) in [
        (
            format!("{layer}.query.base_layer.bias"),
            "encoder.layer.0.attention.self.query.bias",
        ),
        (
            "base_model.model.bert.embeddings.LayerNorm.weight".to_string(),
            "embeddings.LayerNorm.weight",
        ),
    ] {
        let (shape, trained) = &saved[&ours];
        let pretrained = base.tensor(theirs, shape).unwrap();
        assert_eq!(trained.len(), pretrained.len(), "{ours}");
        assert!(*trained != pretrained, "{ours} was not trained");
    }

    let adapter = run.join("adapter").display().to_string();
    let model = asset("models/all-MiniLM-L6-v2");
    let sentence = "A gripping, beautifully acted film.";
    let with_adapter = probabilities(
        &dir,
        &[
            "classify",
            &model,
            "--adapter",
            &adapter,
            "--text",
            sentence,
        ],
    );
    let merged = probabilities(
        &dir,
        &[
            "classify",
            run.join("merged").to_str().unwrap(),
            "--text",
            sentence,
        ],
    );
    for (a, b) in with_adapter.iter().zip(&merged) {
        assert!((a - b).abs() < 1e-5, "{with_adapter:?} vs {merged:?}");
    }
}
