//! The ft runtime: Burn models, PEFT methods, data pipeline and training loop.
//!
//! Models (issue 8):
//! - [`llama::LlamaForCausalLM`] (Llama 2/3, SmolLM2, Mistral, Qwen2) and
//!   [`bert::BertModel`] / [`bert::BertForSequenceClassification`] (BERT,
//!   MiniLM, RoBERTa), generic over the Burn backend.
//! - Loading from a Hugging Face folder or a GGUF file through
//!   [`weights::WeightSource`]; see [`load_causal_lm`] and [`load_bert`].
//! - HF module path → Burn `Linear`: `LlamaForCausalLM::linear_mut("model.layers.3.self_attn.q_proj")`,
//!   `BertModel::linear_mut("encoder.layer.0.attention.self.query")`.
//! - Generation and chat templates: [`generate`].

pub mod bert;
pub mod generate;
pub mod kernels;
pub mod layers;
pub mod llama;
pub mod peft;
pub mod tiny;
pub mod train;
pub mod weights;

use burn::tensor::backend::Backend;
use ft_formats::{FormatError, ModelConfig, ModelFiles};

/// The default CPU backend.
pub type CpuBackend = burn::backend::NdArray<f32>;

pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Opens a model folder or GGUF file and loads a Llama-family decoder.
pub fn load_causal_lm<B: Backend>(
    path: impl AsRef<std::path::Path>,
    device: &B::Device,
) -> Result<(llama::LlamaForCausalLM<B>, ModelFiles), FormatError> {
    let files = ModelFiles::open(path)?;
    let config = files.config()?;
    let mut source = weights::open_source(&files, &config)?;
    let model = llama::LlamaForCausalLM::load(&config, source.as_mut(), device)?;
    Ok((model, files))
}

/// Opens a model folder and loads a BERT-family encoder.
pub fn load_bert<B: Backend>(
    path: impl AsRef<std::path::Path>,
    device: &B::Device,
) -> Result<(bert::BertModel<B>, ModelFiles), FormatError> {
    let files = ModelFiles::open(path)?;
    let config = files.config()?;
    let mut source = weights::open_source(&files, &config)?;
    let model = bert::BertModel::load(&config, source.as_mut(), device)?;
    Ok((model, files))
}

/// The config of a located model (re-exported for callers that only need it).
pub fn model_config(files: &ModelFiles) -> Result<ModelConfig, FormatError> {
    files.config()
}
