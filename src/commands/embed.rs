//! `ft embed MODEL --text …`: sentence embeddings from a BERT-family
//! encoder, one JSON object per text on stdout.
//!
//! Pooling defaults to the mean over real tokens followed by L2
//! normalization, which is what sentence-transformers models such as
//! all-MiniLM-L6-v2 are trained for; `--pooling cls` takes the [CLS] state.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::ModelTokenizer;
use ft_runtime::CpuBackend;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooling {
    /// Mean of the token states (padding excluded)
    Mean,
    /// The first ([CLS]) token's state
    Cls,
}

#[derive(clap::Args)]
pub struct Args {
    /// Model: a Hugging Face folder (config.json + model.safetensors + tokenizer.json)
    model: PathBuf,
    /// Text to embed (repeat for several)
    #[arg(long, required = true)]
    text: Vec<String>,
    #[arg(long, value_enum, default_value_t = Pooling::Mean)]
    pooling: Pooling,
    /// Do not L2-normalize the embeddings
    #[arg(long)]
    no_normalize: bool,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    let device = Default::default();
    let (model, files) = match ft_runtime::load_bert::<CpuBackend>(&args.model, &device) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let tok = match ModelTokenizer::load(&files) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let max_pos = model.config.max_positions;
    for text in &args.text {
        let ids = match tok.tokenizer.encode(text.as_str(), true) {
            Ok(e) => e.get_ids().to_vec(),
            Err(e) => return fail(format!("cannot tokenize {text:?}: {e}")),
        };
        if ids.len() > max_pos {
            return fail(format!(
                "{text:?} has {} tokens; the model takes at most {max_pos}",
                ids.len()
            ));
        }
        let n = ids.len();
        let input = Tensor::<CpuBackend, 2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, n]),
            &device,
        );
        let h = model.forward(input, None, None);
        let d = h.dims()[2];
        let pooled = match args.pooling {
            Pooling::Mean => h.mean_dim(1).reshape([d]),
            Pooling::Cls => h.narrow(1, 0, 1).reshape([d]),
        };
        let mut v: Vec<f32> = pooled.into_data().to_vec().unwrap_or_default();
        if !args.no_normalize {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
        }
        println!("{}", serde_json::json!({ "text": text, "embedding": v }));
    }
    ExitCode::SUCCESS
}
