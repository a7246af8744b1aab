//! Model file formats for ft: safetensors headers, GGUF, Hugging Face
//! `config.json`, tokenizers. No Burn and no recipe syntax here, so that the
//! compiler can check a recipe against a model by reading headers only.
//!
//! The entry point:
//!
//! ```no_run
//! let files = ft_formats::ModelFiles::open(".cache/models/all-MiniLM-L6-v2")?;
//! let inv = files.inventory()?; // headers only: config, tensors, linears, params
//! for l in &inv.linears {
//!     println!("{} [{} -> {}]", l.path, l.in_features, l.out_features);
//! }
//! # Ok::<(), ft_formats::FormatError>(())
//! ```
//!
//! Names are always Hugging Face names (GGUF names are translated), so a LoRA
//! target such as `model.layers.3.self_attn.q_proj` means the same module in a
//! safetensors folder and in a GGUF file. Every failure is a [`FormatError`]
//! naming the file and the problem; no function here panics on bad input.

pub mod chat;
pub mod config;
pub mod dequant;
pub mod error;
pub mod gguf;
pub mod inventory;
pub mod safetensors;
pub mod tokenizer;

pub use chat::{render_chat_template, ChatMessage};
pub use config::{Family, ModelConfig, RopeScaling};
pub use dequant::GgmlType;
pub use error::{FormatError, FormatErrorKind, Result};
pub use gguf::Gguf;
pub use inventory::{
    gguf_to_hf_name, hf_to_gguf_name, HfWeights, LinearInfo, ModelFiles, ModelInventory, TensorInfo,
};
pub use safetensors::{SafetensorsFile, SafetensorsHeader, ShardIndex};
pub use tokenizer::ModelTokenizer;
