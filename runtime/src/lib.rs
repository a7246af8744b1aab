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
//! - Backends: every entry point reaches a Burn backend through
//!   [`backend::dispatch`]; the models call ft's fused operations through
//!   [`kernels::Kernels`], Burn's backend extension (ft's kernels on the CPU,
//!   Burn's operations elsewhere).
//! - Using a model without training it: [`infer`] (generation, embeddings,
//!   classification) and [`export`] (adapter check and merge).

pub mod backend;
pub mod bert;
pub mod classifier;
pub mod export;
pub mod generate;
pub mod infer;
pub mod kernels;
pub mod layers;
pub mod llama;
pub mod peft;
pub mod recompute;
pub mod tiny;
pub mod train;
pub mod weights;

use crate::kernels::Kernels;
use ft_formats::{FormatError, ModelConfig, ModelFiles};

/// The default CPU backend.
pub type CpuBackend = burn::backend::NdArray<f32>;

/// Tunes the C allocator for training: call once at the start of a
/// process that trains or runs models.
///
/// glibc hands every freed block above its mmap threshold (128 KiB at
/// first, raised as large blocks are freed) back to the kernel, and trims
/// the heap's top once more than twice that is free. A training step
/// allocates and frees the same activation-sized buffers (3–13 MB each on
/// MiniLM at 16 × 128) hundreds of times, so each came back as fresh pages
/// that the kernel zeroes and faults in one at a time: page faults were
/// 60 % of a MiniLM step's single-threaded time. Serving blocks up to
/// 32 MiB (glibc's largest threshold) from the heap and never trimming it
/// lets each step reuse the last one's memory: 12 % off the step, the same
/// peak RSS (docs/benchmarks.md).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // the process has started other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// The process's peak resident memory so far (Linux's `VmHWM`), in bytes;
/// `None` where the system does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Opens a model folder or GGUF file and loads a Llama-family decoder.
pub fn load_causal_lm<B: Kernels>(
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
pub fn load_bert<B: Kernels>(
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
