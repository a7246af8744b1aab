//! A model's `adapter = "…"` (a trained PEFT adapter folder, e.g. a PPO
//! reward model's classifier): the folder and its `adapter_config.json`
//! exist, the adapter was trained on this base model, and its classifier
//! has as many labels as the head declares. Only the config and the
//! safetensors header are read.

use std::path::Path;

use super::*;
use crate::check::blocks::CBlock;
use crate::diagnostics::Diagnostic;
use crate::source::SourceMap;

/// Checks `m`'s adapter, when it names one, against the model at
/// `model_path`.
pub fn check_adapter(
    m: &CBlock,
    model_path: &Path,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(v) = m.get("adapter") else { return };
    let Some(rel) = v.as_str() else { return };
    let dir = resolve(sources, m.file, rel);
    let config_path = dir.join("adapter_config.json");
    let not_found = |what: String, label: &str| {
        Diagnostic::error(&ADAPTER_NOT_FOUND, v.span, what)
            .in_file(m.file)
            .label(label.to_string())
            .help(
                "train the classifier first (`ft run` on its recipe, e.g. recipes/sentiment-minilm.ft) \
                 and point `adapter` at its run's `adapter/` folder; paths are relative to the recipe",
            )
    };
    if !dir.is_dir() {
        diags.push(not_found(
            format!("adapter folder `{}` does not exist", dir.display()),
            "no such folder",
        ));
        return;
    }
    let text = match std::fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(_) => {
            diags.push(not_found(
                format!("`{}` has no adapter_config.json", dir.display()),
                "not an adapter folder",
            ));
            return;
        }
    };
    let mismatch = |message: String, label: String| {
        Diagnostic::error(&ADAPTER_MISMATCH, v.span, message)
            .in_file(m.file)
            .label(label)
    };
    let config: serde_json::Value = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            diags.push(
                mismatch(
                    format!("{}: {e}", config_path.display()),
                    "adapter_config.json is not JSON".into(),
                )
                .help("the folder should be written by `ft run` or PEFT's `save_pretrained`"),
            );
            return;
        }
    };
    if let Some(base) = config
        .get("base_model_name_or_path")
        .and_then(|b| b.as_str())
        .filter(|b| !b.is_empty())
    {
        if !same_base(base, model_path) {
            diags.push(
                mismatch(
                    format!(
                        "the adapter was trained on `{base}`, not on `{}`",
                        model_path.display()
                    ),
                    "trained on another base model".into(),
                )
                .help("use the adapter of a run on this model, or change the model's path")
                .note("the base is compared by path, else by its last component (a hub id's model name)"),
            );
        }
    }
    let labels = head_labels(m);
    let found = classifier_labels(&dir.join("adapter_model.safetensors"));
    if let (Some(labels), Some(found)) = (labels, found) {
        if labels != found {
            diags.push(
                mismatch(
                    format!(
                        "the adapter's classifier has {found} label{}, the head declares {labels}",
                        if found == 1 { "" } else { "s" }
                    ),
                    format!("a {found}-label classifier"),
                )
                .help("declare the labels the classifier was trained with, in the same order"),
            );
        }
    }
}

/// Whether an adapter's `base_model_name_or_path` names the model at
/// `model_path`: the same folder, or (for a path that does not exist here,
/// such as a hub id) the same last component.
fn same_base(base: &str, model_path: &Path) -> bool {
    let b = Path::new(base);
    if b.exists() {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        return canon(b) == canon(model_path);
    }
    let last = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    };
    last(b) == last(model_path)
}

/// The number of labels a `classify(labels = […])` head declares.
fn head_labels(m: &CBlock) -> Option<usize> {
    let h = m.get("head")?;
    match h.as_call() {
        Some(("classify", _)) => match h.arg("labels").map(|v| &v.val) {
            Some(crate::check::value::Val::List(items)) => Some(items.len()),
            _ => None,
        },
        _ => None,
    }
}

/// The label count of the classifier saved with an adapter
/// (`…classifier.weight`, `[labels, hidden]`), from the safetensors header.
fn classifier_labels(path: &Path) -> Option<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).ok()?;
    let n = u64::from_le_bytes(n);
    if n > 100_000_000 {
        return None;
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    header.as_object()?.iter().find_map(|(k, v)| {
        if k.ends_with("classifier.weight") || k.ends_with("score.weight") {
            v.get("shape")?
                .as_array()?
                .first()?
                .as_u64()
                .map(|x| x as usize)
        } else {
            None
        }
    })
}

/// The trained model's adapter is where training continues from, so it
/// must be the method the recipe's `peft` block declares (with its rank,
/// for LoRA).
pub fn check_continued(recipe: &Recipe, sources: &SourceMap, diags: &mut Vec<Diagnostic>) {
    let Some(m) = recipe.model() else { return };
    let Some(v) = m.get("adapter") else { return };
    let Some(rel) = v.as_str() else { return };
    let path = resolve(sources, m.file, rel).join("adapter_config.json");
    let Some(config) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return; // `check_adapter` says what is wrong with the folder.
    };
    let found = match config.get("peft_type").and_then(|t| t.as_str()) {
        Some("LORA") => "lora",
        Some("IA3") => "ia3",
        Some("PROMPT_TUNING") => "prompt",
        Some("PREFIX_TUNING") => "prefix",
        Some("FT_BOTTLENECK") => "adapter",
        _ => return,
    };
    let peft = recipe.one("peft");
    let declared = peft.and_then(|p| p.method).map_or("full", |m| m.name);
    let mismatch = |message: String| {
        Diagnostic::error(&ADAPTER_MISMATCH, v.span, message)
            .in_file(m.file)
            .label("training continues from this adapter")
            .help("declare the method the adapter was trained with in `peft`, or remove `adapter`")
    };
    if found != declared {
        diags.push(mismatch(format!(
            "the adapter is a `{found}` adapter; the recipe trains with `peft {declared}`"
        )));
        return;
    }
    let default_rank = crate::check::schema::method("lora")
        .and_then(|l| l.key("rank"))
        .and_then(|k| k.default)
        .and_then(|d| d.parse::<i64>().ok());
    let rank = peft
        .and_then(|p| p.get("rank"))
        .and_then(|r| r.as_i64())
        .or(default_rank);
    let r = config.get("r").and_then(|r| r.as_i64());
    if let (Some(rank), Some(r), "lora") = (rank, r, found) {
        if rank != r {
            diags.push(mismatch(format!(
                "the adapter has rank {r}; the recipe declares `rank = {rank}`"
            )));
        }
    }
}
