//! `ft classify MODEL --text …`: label probabilities from a sequence
//! classifier, one JSON object per text. MODEL is a fine-tuned checkpoint
//! (`classifier.weight` or `score.weight`, with `num_labels`/`id2label` in
//! config.json), a base model with `--adapter` (a classification run's
//! adapter brings the trained head), or a recipe: its trained model with
//! its `adapter`, `tokenizer` and labels.

use std::path::PathBuf;
use std::process::ExitCode;

use ft_runtime::infer::{self, InferError};

use super::recipe::ModelArg;
use super::BackendArg;

#[derive(clap::Args)]
pub struct Args {
    /// Model: a Hugging Face folder of a sequence-classification
    /// checkpoint, a base model with --adapter, or a recipe (.ft)
    model: PathBuf,
    /// Text to classify (repeat for several)
    #[arg(long, required = true)]
    text: Vec<String>,
    /// A classification run's adapter (ft's or Hugging Face PEFT's), which
    /// brings the trained head (replaces a recipe's `adapter`)
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The device to run the model on (default: a recipe's `backend`, else
    /// the CPU)
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    let marg = match ModelArg::resolve(&args.model, args.adapter.clone()) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let tok = match marg.tokenizer() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let device = marg.device(args.backend);
    let labels = marg.labels.as_ref().map(Vec::len);
    let out = match infer::classify(
        device,
        &marg.path,
        marg.adapter.as_deref(),
        labels,
        &tok,
        &args.text,
    ) {
        Ok(out) => out,
        Err(e @ InferError::Adapter(_)) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        Err(e) => return fail(e),
    };
    let config = &out.config;
    for (text, probs) in args.text.iter().zip(&out.probabilities) {
        let labels: Vec<serde_json::Value> = probs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = marg
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(i).cloned())
                    .or_else(|| config.id2label.as_ref().and_then(|m| m.get(&i).cloned()))
                    .unwrap_or_else(|| format!("LABEL_{i}"));
                serde_json::json!({ "label": name, "probability": p })
            })
            .collect();
        println!("{}", serde_json::json!({ "text": text, "labels": labels }));
    }
    ExitCode::SUCCESS
}
