//! Checking a PEFT-format adapter (ft's or Hugging Face PEFT's) against its
//! base model, and merging it into full weights in the Hugging Face layout,
//! on the device asked for ([`crate::backend`]).

use std::path::{Path, PathBuf};

use ft_formats::{FormatError, ModelFiles};

use crate::backend::{dispatch, BackendError, Device, OnBackend};
use crate::bert::BertModel;
use crate::classifier::Classifier;
use crate::kernels::{AutodiffKernels, Kernels};
use crate::llama::LlamaForCausalLM;
use crate::peft::adapter::{head_labels, load_adapter, CONFIG_FILE};
use crate::peft::merge::{save_merged, Mergeable};
use crate::peft::{parameter_counts, Adaptable, Mismatch, PeftError};
use crate::weights::open_source;

/// Why an adapter could not be checked or merged.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The adapter does not fit its config or the model (every mismatch).
    #[error("{0}")]
    Adapter(#[from] PeftError),
    #[error("{0}")]
    Model(#[from] FormatError),
    #[error("{}: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    #[error("{}: {detail}", path.display())]
    Io { path: PathBuf, detail: String },
}

impl ExportError {
    /// Whether the adapter itself is at fault (rather than I/O or usage).
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ExportError::Adapter(PeftError::Mismatched { .. } | PeftError::TargetsAbsent(_))
        )
    }
}

/// A checked adapter.
#[derive(Debug, Clone)]
pub struct Checked {
    pub base: PathBuf,
    /// The PEFT method's name.
    pub method: String,
    pub trainable: usize,
    pub total: usize,
    /// Where merged weights were written, if asked for.
    pub merged: Option<PathBuf>,
}

/// Loads `adapter` onto its base model (`model`, else the adapter's
/// `base_model_name_or_path`), refusing any mismatch; with `merged`, writes
/// the merged weights there with the base folder's tokenizer files.
pub fn check_and_merge(
    device: Device,
    adapter: &Path,
    model: Option<&Path>,
    merged: Option<&Path>,
) -> Result<Checked, ExportError> {
    let config_path = adapter.join(CONFIG_FILE);
    let config_err = |detail: String| ExportError::Config {
        path: config_path.clone(),
        detail,
    };
    let text = std::fs::read_to_string(&config_path).map_err(|e| config_err(e.to_string()))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| config_err(e.to_string()))?;
    let base = match model.map(Path::to_path_buf).or_else(|| {
        config
            .get("base_model_name_or_path")
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
    }) {
        Some(b) => b,
        None => {
            return Err(config_err(
                "names no base_model_name_or_path: give --model".into(),
            ))
        }
    };
    let base = gguf_in_folder(&base).unwrap_or(base);
    let task = config
        .get("task_type")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if !["CAUSAL_LM", "FEATURE_EXTRACTION", "SEQ_CLS"].contains(&task.as_str()) {
        return Err(config_err(format!(
            "task_type `{task}` is not supported (CAUSAL_LM, SEQ_CLS, FEATURE_EXTRACTION)"
        )));
    }
    struct Work<'a> {
        adapter: &'a Path,
        base: &'a Path,
        task: &'a str,
        merged: Option<&'a Path>,
    }
    impl OnBackend for Work<'_> {
        type Output = Result<Checked, ExportError>;
        fn run<AB: AutodiffKernels>(self, device: &AB::Device) -> Self::Output {
            type B<AB> = <AB as burn::tensor::backend::AutodiffBackend>::InnerBackend;
            let Work {
                adapter,
                base,
                task,
                merged,
            } = self;
            if task == "SEQ_CLS" {
                // The head's size is the adapter's: its saved classifier.
                // Initial values are replaced by the adapter's head.
                let labels = head_labels(adapter)?.ok_or_else(|| PeftError::Mismatched {
                    dir: adapter.to_path_buf(),
                    mismatches: vec![Mismatch::MissingKey(
                        "base_model.model.classifier.weight (or score.weight)".into(),
                    )],
                })?;
                return match Classifier::<B<AB>>::load(base, labels, 0, device)? {
                    Classifier::Bert(m) => finish(m, adapter, base, merged),
                    Classifier::Llama(m) => finish(m, adapter, base, merged),
                };
            }
            let files = ModelFiles::open(base)?;
            let model_config = files.config()?;
            let mut source = open_source(&files, &model_config)?;
            if task == "CAUSAL_LM" {
                let m = LlamaForCausalLM::<B<AB>>::load(&model_config, source.as_mut(), device)?;
                finish(m, adapter, base, merged)
            } else {
                let m = BertModel::<B<AB>>::load(&model_config, source.as_mut(), device)?;
                finish(m, adapter, base, merged)
            }
        }
    }
    let work = Work {
        adapter,
        base: &base,
        task: &task,
        merged,
    };
    dispatch(device, work)?
}

/// PEFT records a GGUF base as its folder (the file is a separate
/// `gguf_file` argument): a folder with no weights but one `.gguf` means it.
fn gguf_in_folder(base: &Path) -> Option<PathBuf> {
    if !base.is_dir() || ModelFiles::open(base).is_ok() {
        return None;
    }
    let ggufs: Vec<PathBuf> = std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    match ggufs.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

fn finish<B: Kernels, M: Mergeable<B> + Adaptable<B>>(
    model: M,
    adapter: &Path,
    base: &Path,
    merged: Option<&Path>,
) -> Result<Checked, ExportError> {
    let (model, method) = load_adapter(model, adapter)?;
    let counts = parameter_counts(&model, &method);
    let checked = Checked {
        base: base.to_path_buf(),
        method: method.name().to_string(),
        trainable: counts.trainable,
        total: counts.total,
        merged: merged.map(Path::to_path_buf),
    };
    let Some(out) = merged else {
        return Ok(checked);
    };
    save_merged(&model, out)?;
    // Tokenizer files travel with the weights so the folder is complete.
    if base.is_dir() {
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
        ] {
            let from = base.join(name);
            if from.exists() {
                std::fs::copy(&from, out.join(name)).map_err(|e| ExportError::Io {
                    path: from.clone(),
                    detail: e.to_string(),
                })?;
            }
        }
    }
    Ok(checked)
}
