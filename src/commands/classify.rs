//! `ft classify MODEL --text …`: label probabilities from a sequence
//! classifier, one JSON object per text. MODEL is a fine-tuned checkpoint
//! (`classifier.weight` or `score.weight`, with `num_labels`/`id2label` in
//! config.json), a base model with `--adapter` (a classification run's
//! adapter brings the trained head), or a recipe: its trained model with
//! its `adapter`, `tokenizer` and labels.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_runtime::classifier::Classifier;
use ft_runtime::peft::adapter::head_labels;
use ft_runtime::CpuBackend;

use super::recipe::ModelArg;

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
    let device = Default::default();
    // The head's size: the adapter's saved head, else the recipe's labels,
    // else the checkpoint's own (`Classifier::load` reads it).
    let labels = match &marg.adapter {
        Some(dir) => match head_labels(dir) {
            Ok(Some(n)) => Some(n),
            Ok(None) => {
                return fail(format!(
                    "{}: the adapter saves no classification head; is it a classification run's?",
                    dir.display()
                ))
            }
            Err(e) => return fail(e),
        },
        None => marg.labels.as_ref().map(Vec::len),
    };
    let loaded = match labels {
        Some(n) => Classifier::<CpuBackend>::load(&marg.path, n, 0, &device),
        None => Classifier::<CpuBackend>::load_trained(&marg.path, &device),
    };
    let model = match loaded {
        Ok(m) => m,
        Err(e) => {
            return fail(format!(
                "{e}\n(`ft classify` needs a fine-tuned classification checkpoint, or a base model \
                 with --adapter; an encoder such as all-MiniLM-L6-v2 has no classifier head — use `ft embed`)"
            ))
        }
    };
    let model = match &marg.adapter {
        None => model,
        Some(dir) => match model.with_adapter(dir) {
            Ok((m, _)) => m,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let tok = match marg.tokenizer() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let config = model.config().clone();
    let names: Vec<String> = (0..model.labels())
        .map(|i| {
            marg.labels
                .as_ref()
                .and_then(|l| l.get(i).cloned())
                .or_else(|| config.id2label.as_ref().and_then(|m| m.get(&i).cloned()))
                .unwrap_or_else(|| format!("LABEL_{i}"))
        })
        .collect();
    for text in &args.text {
        let ids = match tok.tokenizer.encode(text.as_str(), true) {
            Ok(e) => e.get_ids().to_vec(),
            Err(e) => return fail(format!("cannot tokenize {text:?}: {e}")),
        };
        if ids.len() > config.max_positions {
            return fail(format!(
                "{text:?} has {} tokens; the model takes at most {}",
                ids.len(),
                config.max_positions
            ));
        }
        if ids.is_empty() {
            return fail(format!("{text:?} has no tokens"));
        }
        let n = ids.len();
        let input = Tensor::<CpuBackend, 2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, n]),
            &device,
        );
        let mask = Tensor::<CpuBackend, 2>::ones([1, n], &device);
        let probs: Vec<f32> = softmax(model.forward(input, mask), 1)
            .into_data()
            .to_vec()
            .unwrap_or_default();
        let labels: Vec<serde_json::Value> = probs
            .iter()
            .zip(&names)
            .map(|(p, name)| serde_json::json!({ "label": name, "probability": p }))
            .collect();
        println!("{}", serde_json::json!({ "text": text, "labels": labels }));
    }
    ExitCode::SUCCESS
}
