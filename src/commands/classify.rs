//! `ft classify MODEL --text …`: label probabilities from a BERT-family
//! sequence classifier (a checkpoint with `classifier.weight` and
//! `num_labels`/`id2label` in config.json), one JSON object per text.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::{ModelFiles, ModelTokenizer};
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::weights::open_source;
use ft_runtime::CpuBackend;

#[derive(clap::Args)]
pub struct Args {
    /// Model: a Hugging Face folder of a sequence-classification checkpoint
    model: PathBuf,
    /// Text to classify (repeat for several)
    #[arg(long, required = true)]
    text: Vec<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    let device = Default::default();
    let loaded = ModelFiles::open(&args.model).and_then(|files| {
        let config = files.config()?;
        let mut source = open_source(&files, &config)?;
        if !source.has("classifier.weight") {
            return Err(ft_formats::FormatError::new(
                &args.model,
                ft_formats::FormatErrorKind::MissingTensor {
                    tensor: "classifier.weight".into(),
                },
            ));
        }
        let model =
            BertForSequenceClassification::<CpuBackend>::load(&config, source.as_mut(), &device)?;
        Ok((model, files, config))
    });
    let (model, files, config) = match loaded {
        Ok(m) => m,
        Err(e) => {
            return fail(format!(
            "{e}\n(`ft classify` needs a fine-tuned classification checkpoint; an encoder such as \
                 all-MiniLM-L6-v2 has no classifier head — use `ft embed`)"
        ))
        }
    };
    let tok = match ModelTokenizer::load(&files) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
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
        let n = ids.len();
        let input = Tensor::<CpuBackend, 2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, n]),
            &device,
        );
        let probs: Vec<f32> = softmax(model.forward(input, None, None), 1)
            .into_data()
            .to_vec()
            .unwrap_or_default();
        let labels: Vec<serde_json::Value> = probs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = config
                    .id2label
                    .as_ref()
                    .and_then(|m| m.get(&i).cloned())
                    .unwrap_or_else(|| format!("LABEL_{i}"));
                serde_json::json!({ "label": name, "probability": p })
            })
            .collect();
        println!("{}", serde_json::json!({ "text": text, "labels": labels }));
    }
    ExitCode::SUCCESS
}
