//! `ft export ADAPTER_DIR (--merged OUT | --check) [--model BASE]`: loads a
//! PEFT-format adapter (written by ft or by Hugging Face PEFT) onto its base
//! model, refusing any mismatch between config, tensors and model (every
//! mismatch listed, exit 1); with `--merged OUT`, writes the merged full
//! weights in the Hugging Face layout (`model.safetensors` + `config.json`,
//! plus the base folder's tokenizer files) for transformers to load.

use std::path::PathBuf;
use std::process::ExitCode;

use ft_runtime::backend::Device;
use ft_runtime::export::check_and_merge;

use super::BackendArg;

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
    /// The device to load and merge on (default: the CPU)
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

/// Mismatches are the adapter's fault (exit 1); anything else is I/O or
/// usage (exit 2).
pub fn run(args: Args) -> ExitCode {
    let device = args.backend.map_or(Device::Cpu, Into::into);
    match check_and_merge(
        device,
        &args.adapter,
        args.model.as_deref(),
        args.merged.as_deref(),
    ) {
        Ok(c) => {
            eprintln!(
                "{}: {} adapter on {} matches ({} trainable parameters of {})",
                args.adapter.display(),
                c.method,
                c.base.display(),
                c.trainable,
                c.total
            );
            if let Some(out) = &c.merged {
                eprintln!("wrote merged weights to {}", out.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_mismatch() { 1 } else { 2 })
        }
    }
}
