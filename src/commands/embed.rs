//! `ft embed MODEL --text …`: sentence embeddings from a BERT-family
//! encoder, one JSON object per text on stdout.
//!
//! Pooling defaults to the mean over real tokens followed by L2
//! normalization, which is what sentence-transformers models such as
//! all-MiniLM-L6-v2 are trained for; `--pooling cls` takes the [CLS] state.

use std::path::PathBuf;
use std::process::ExitCode;

use ft_runtime::backend::Device;
use ft_runtime::infer;

use super::BackendArg;

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
    /// The device to run the model on (default: the CPU)
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    let pooling = match args.pooling {
        Pooling::Mean => infer::Pooling::Mean,
        Pooling::Cls => infer::Pooling::Cls,
    };
    let device = args.backend.map_or(Device::Cpu, Into::into);
    match infer::embed(device, &args.model, &args.text, pooling, !args.no_normalize) {
        Ok(embeddings) => {
            for (text, v) in args.text.iter().zip(embeddings) {
                println!("{}", serde_json::json!({ "text": text, "embedding": v }));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
