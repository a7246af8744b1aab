//! `ft export ADAPTER_DIR (--merged OUT | --check) [--model BASE]`: loads a
//! PEFT-format adapter (written by ft or by Hugging Face PEFT) onto its base
//! model, refusing any mismatch between config, tensors and model (every
//! mismatch listed, exit 1); with `--merged OUT`, writes the merged full
//! weights in the Hugging Face layout (`model.safetensors` + `config.json`,
//! plus the base folder's tokenizer files) for transformers to load.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ft_formats::ModelFiles;
use ft_runtime::bert::BertModel;
use ft_runtime::classifier::Classifier;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::adapter::{head_labels, load_adapter, CONFIG_FILE};
use ft_runtime::peft::merge::{save_merged, Mergeable};
use ft_runtime::peft::{parameter_counts, Adaptable, PeftError};
use ft_runtime::weights::open_source;
use ft_runtime::CpuBackend;

#[derive(clap::Args)]
pub struct Args {
    /// Adapter folder: adapter_config.json + adapter_model.safetensors
    adapter: PathBuf,
    /// Write merged full weights (HF layout) into this folder
    #[arg(long, value_name = "OUT", required_unless_present = "check")]
    merged: Option<PathBuf>,
    /// Only check that the adapter matches its base model
    #[arg(long, conflicts_with = "merged")]
    check: bool,
    /// Base model (HF folder or .gguf); default: the adapter's
    /// `base_model_name_or_path`
    #[arg(long)]
    model: Option<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// Mismatches are the adapter's fault (exit 1); anything else is I/O or
/// usage (exit 2).
fn peft_fail(e: PeftError) -> ExitCode {
    match e {
        PeftError::Mismatched { .. } | PeftError::TargetsAbsent(_) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        other => fail(other),
    }
}

pub fn run(args: Args) -> ExitCode {
    let config_path = args.adapter.join(CONFIG_FILE);
    let config: serde_json::Value = match std::fs::read_to_string(&config_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", config_path.display())),
    };
    let base = match args.model.clone().or_else(|| {
        config
            .get("base_model_name_or_path")
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
    }) {
        Some(b) => b,
        None => {
            return fail(format!(
                "{} names no base_model_name_or_path: give --model",
                config_path.display()
            ))
        }
    };
    let task = config
        .get("task_type")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let device = Default::default();
    let base = gguf_in_folder(&base).unwrap_or(base);
    let files = match ModelFiles::open(&base) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let model_config = match files.config() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut source = match open_source(&files, &model_config) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match task {
        "CAUSAL_LM" => {
            match LlamaForCausalLM::<CpuBackend>::load(&model_config, source.as_mut(), &device) {
                Ok(m) => finish(m, &args, &base),
                Err(e) => fail(e),
            }
        }
        "FEATURE_EXTRACTION" => {
            match BertModel::<CpuBackend>::load(&model_config, source.as_mut(), &device) {
                Ok(bert) => finish(bert, &args, &base),
                Err(e) => fail(e),
            }
        }
        "SEQ_CLS" => {
            // The head's size is the adapter's: its saved classifier.
            let labels = match head_labels(&args.adapter) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    return peft_fail(PeftError::Mismatched {
                        dir: args.adapter.clone(),
                        mismatches: vec![ft_runtime::peft::Mismatch::MissingKey(
                            "base_model.model.classifier.weight (or score.weight)".into(),
                        )],
                    })
                }
                Err(e) => return peft_fail(e),
            };
            drop(source);
            // Initial values are replaced by the adapter's head.
            match Classifier::<CpuBackend>::load(&base, labels, 0, &device) {
                Ok(Classifier::Bert(m)) => finish(m, &args, &base),
                Ok(Classifier::Llama(m)) => finish(m, &args, &base),
                Err(e) => fail(e),
            }
        }
        other => fail(format!(
            "{}: task_type `{other}` is not supported (CAUSAL_LM, SEQ_CLS, FEATURE_EXTRACTION)",
            config_path.display()
        )),
    }
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

fn finish<M: Mergeable<CpuBackend> + Adaptable<CpuBackend>>(
    model: M,
    args: &Args,
    base: &Path,
) -> ExitCode {
    let (model, method) = match load_adapter(model, &args.adapter) {
        Ok(m) => m,
        Err(e) => return peft_fail(e),
    };
    let counts = parameter_counts(&model, &method);
    eprintln!(
        "{}: {} adapter on {} matches ({} trainable parameters of {})",
        args.adapter.display(),
        method.name(),
        base.display(),
        counts.trainable,
        counts.total
    );
    let Some(out) = &args.merged else {
        return ExitCode::SUCCESS;
    };
    if let Err(e) = save_merged(&model, out) {
        return peft_fail(e);
    }
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
                if let Err(e) = std::fs::copy(&from, out.join(name)) {
                    return fail(format!("{}: {e}", from.display()));
                }
            }
        }
    }
    eprintln!("wrote merged weights to {}", out.display());
    ExitCode::SUCCESS
}
