//! Finding a model's files and describing the model without loading weights.
//!
//! [`ModelFiles::open`] decides what a path is (a Hugging Face folder, a
//! `.safetensors` file inside one, a `.gguf` file, or a pickle checkpoint we
//! refuse), and [`ModelFiles::inventory`] reads only headers to list every
//! tensor under its Hugging Face name, every linear layer (what LoRA can
//! target), the parameter count and the chat template. GGUF tensors are
//! renamed from llama.cpp's names to transformers' names so that recipes and
//! PEFT adapters use one naming scheme whatever the file format.

use crate::config::ModelConfig;
use crate::error::{FormatError, FormatErrorKind, Result};
use crate::gguf::{Gguf, Value};
use crate::safetensors::{SafetensorsHeader, ShardIndex};
use std::path::{Path, PathBuf};

/// Where a model's weights live.
#[derive(Debug, Clone, PartialEq)]
pub enum HfWeights {
    Single(PathBuf),
    /// `model.safetensors.index.json`
    Sharded(PathBuf),
}

/// A model located on disk (nothing parsed yet beyond the file type).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelFiles {
    HfFolder {
        dir: PathBuf,
        config: PathBuf,
        weights: HfWeights,
        tokenizer: Option<PathBuf>,
        tokenizer_config: Option<PathBuf>,
    },
    Gguf {
        path: PathBuf,
    },
}

/// One tensor as a PyTorch user would see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub hf_name: String,
    /// PyTorch convention: `[out, in]` for linear weights.
    pub shape: Vec<u64>,
    /// safetensors dtype ("F32", "BF16", "I64") or ggml type ("Q4_1", "Q8_0").
    pub dtype: String,
}

/// A linear layer (a 2-D `.weight` that is not an embedding table).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearInfo {
    /// HF module path without `.weight`, e.g. `model.layers.3.self_attn.q_proj`.
    pub path: String,
    pub layer: Option<usize>,
    pub in_features: u64,
    pub out_features: u64,
    pub has_bias: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelInventory {
    pub config: ModelConfig,
    pub tensors: Vec<TensorInfo>,
    pub linears: Vec<LinearInfo>,
    pub has_tokenizer: bool,
    pub chat_template: Option<String>,
    /// Number of floating-point parameters (integer buffers such as BERT's
    /// `position_ids` are not parameters).
    pub params: u64,
}

const PICKLE_EXTS: &[&str] = &["bin", "pt", "pth", "ckpt", "pkl", "pickle"];

impl ModelFiles {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| FormatError::io(path, e))?;
        if meta.is_dir() {
            return Self::open_dir(path, None);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        if ext == "gguf" {
            return Ok(ModelFiles::Gguf {
                path: path.to_path_buf(),
            });
        }
        if ext == "safetensors" {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Self::open_dir(dir, Some(path.to_path_buf()));
        }
        if PICKLE_EXTS.contains(&ext.as_str()) {
            return Err(FormatError::new(path, FormatErrorKind::PickleRefused));
        }
        // No telling extension: sniff the first bytes.
        let mut magic = [0u8; 4];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
            f.read(&mut magic).map_err(|e| FormatError::io(path, e))?
        };
        match &magic[..n] {
            b"GGUF" => Ok(ModelFiles::Gguf {
                path: path.to_path_buf(),
            }),
            // Protocol-2+ pickles start with 0x80; torch.save writes zip files.
            [0x80, ..] | [b'P', b'K', 3, 4] => {
                Err(FormatError::new(path, FormatErrorKind::PickleRefused))
            }
            _ => Err(FormatError::new(path, FormatErrorKind::UnknownModelFormat)),
        }
    }

    fn open_dir(dir: &Path, weights_file: Option<PathBuf>) -> Result<Self> {
        let config = dir.join("config.json");
        let weights = match weights_file {
            Some(f) => Some(HfWeights::Single(f)),
            None if dir.join("model.safetensors").is_file() => {
                Some(HfWeights::Single(dir.join("model.safetensors")))
            }
            None if dir.join("model.safetensors.index.json").is_file() => {
                Some(HfWeights::Sharded(dir.join("model.safetensors.index.json")))
            }
            None => None,
        };
        let Some(weights) = weights else {
            for name in [
                "pytorch_model.bin",
                "pytorch_model.bin.index.json",
                "model.pt",
                "model.pth",
                "model.ckpt",
            ] {
                if dir.join(name).exists() {
                    return Err(FormatError::new(
                        dir.join(name),
                        FormatErrorKind::PickleRefused,
                    ));
                }
            }
            return Err(FormatError::new(dir, FormatErrorKind::NoWeights));
        };
        if !config.is_file() {
            return Err(FormatError::new(dir, FormatErrorKind::NoConfig));
        }
        let some_file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        Ok(ModelFiles::HfFolder {
            dir: dir.to_path_buf(),
            config,
            weights,
            tokenizer: some_file("tokenizer.json"),
            tokenizer_config: some_file("tokenizer_config.json"),
        })
    }

    /// The path to show in messages: the folder or the GGUF file.
    pub fn path(&self) -> &Path {
        match self {
            ModelFiles::HfFolder { dir, .. } => dir,
            ModelFiles::Gguf { path } => path,
        }
    }

    /// Just the architecture (reads config.json or the GGUF header).
    pub fn config(&self) -> Result<ModelConfig> {
        match self {
            ModelFiles::HfFolder { config, .. } => ModelConfig::from_config_json(config),
            ModelFiles::Gguf { path } => ModelConfig::from_gguf(&Gguf::open_header(path)?),
        }
    }

    /// Reads headers only (config.json, safetensors headers or the GGUF
    /// header) and describes the model.
    pub fn inventory(&self) -> Result<ModelInventory> {
        match self {
            ModelFiles::HfFolder {
                config,
                weights,
                tokenizer,
                tokenizer_config,
                dir,
            } => {
                let config = ModelConfig::from_config_json(config)?;
                let headers = match weights {
                    HfWeights::Single(p) => vec![SafetensorsHeader::read(p)?],
                    HfWeights::Sharded(index) => ShardIndex::read(index)?.read_headers()?,
                };
                let tensors = headers
                    .iter()
                    .flat_map(|h| &h.tensors)
                    .map(|t| TensorInfo {
                        hf_name: t.name.clone(),
                        shape: t.shape.clone(),
                        dtype: t.dtype.name().to_string(),
                    })
                    .collect();
                let params = headers
                    .iter()
                    .flat_map(|h| &h.tensors)
                    .filter(|t| t.dtype.is_float())
                    .map(|t| t.numel())
                    .sum();
                let chat_template = hf_chat_template(dir, tokenizer_config.as_deref())?;
                Ok(finish(
                    config,
                    tensors,
                    params,
                    tokenizer.is_some(),
                    chat_template,
                ))
            }
            ModelFiles::Gguf { path } => {
                let g = Gguf::open_header(path)?;
                let config = ModelConfig::from_gguf(&g)?;
                if let Some(t) = g.tensors.iter().find(|t| !t.ggml_type.is_supported()) {
                    return Err(FormatError::new(
                        path,
                        FormatErrorKind::UnsupportedGgufType {
                            tensor: t.name.clone(),
                            name: t.ggml_type.name().to_string(),
                        },
                    ));
                }
                let tensors = g
                    .tensors
                    .iter()
                    .map(|t| TensorInfo {
                        hf_name: gguf_to_hf_name(&t.name).unwrap_or_else(|| t.name.clone()),
                        shape: t.shape(),
                        dtype: t.ggml_type.name().to_string(),
                    })
                    .collect();
                let params = g.tensors.iter().map(|t| t.numel()).sum();
                let has_tokenizer = g.get("tokenizer.ggml.model").is_some()
                    && g.get("tokenizer.ggml.tokens")
                        .and_then(Value::array_len)
                        .is_some();
                let chat_template = g
                    .get("tokenizer.chat_template")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Ok(finish(
                    config,
                    tensors,
                    params,
                    has_tokenizer,
                    chat_template,
                ))
            }
        }
    }
}

fn finish(
    config: ModelConfig,
    tensors: Vec<TensorInfo>,
    params: u64,
    has_tokenizer: bool,
    chat_template: Option<String>,
) -> ModelInventory {
    let linears = linears_of(&tensors);
    ModelInventory {
        config,
        tensors,
        linears,
        has_tokenizer,
        chat_template,
        params,
    }
}

/// Linear layers, in tensor order: 2-D float `.weight` tensors that are not
/// embedding tables (word/position/token-type embeddings, `embed_tokens`).
fn linears_of(tensors: &[TensorInfo]) -> Vec<LinearInfo> {
    tensors
        .iter()
        .filter(|t| t.shape.len() == 2 && t.dtype != "I64" && t.dtype != "I32")
        .filter_map(|t| {
            let path = t.hf_name.strip_suffix(".weight")?;
            if path.contains("embed") || path.ends_with(".wte") || path.ends_with(".wpe") {
                return None;
            }
            let bias = format!("{path}.bias");
            Some(LinearInfo {
                path: path.to_string(),
                layer: layer_index(path),
                in_features: t.shape[1],
                out_features: t.shape[0],
                has_bias: tensors.iter().any(|b| b.hf_name == bias),
            })
        })
        .collect()
}

/// The block index in a module path: the number after `layer`/`layers`/`h`/`blk`.
pub fn layer_index(path: &str) -> Option<usize> {
    let mut parts = path.split('.');
    while let Some(p) = parts.next() {
        if matches!(p, "layer" | "layers" | "h" | "blk" | "block") {
            if let Some(n) = parts.clone().next().and_then(|n| n.parse().ok()) {
                return Some(n);
            }
        }
    }
    None
}

/// llama.cpp tensor name → transformers name (Llama family), `None` for
/// tensors transformers has no equivalent for (e.g. `rope_freqs.weight`).
pub fn gguf_to_hf_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    let fixed = match stem {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(format!("{f}.{suffix}"));
    }
    let rest = stem.strip_prefix("blk.")?;
    let (n, module) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let hf = match module {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{n}.{hf}.{suffix}"))
}

/// transformers name → llama.cpp name, the inverse of [`gguf_to_hf_name`].
pub fn hf_to_gguf_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    let fixed = match stem {
        "model.embed_tokens" => Some("token_embd"),
        "model.norm" => Some("output_norm"),
        "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(format!("{f}.{suffix}"));
    }
    let rest = stem.strip_prefix("model.layers.")?;
    let (n, module) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let g = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{n}.{g}.{suffix}"))
}

/// The chat template of a HF folder: `chat_template.jinja` (newer
/// transformers) or `chat_template` in tokenizer_config.json (a string, or a
/// list of named templates of which we take "default").
fn hf_chat_template(dir: &Path, tokenizer_config: Option<&Path>) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|e| FormatError::io(&jinja, e));
    }
    let Some(tc) = tokenizer_config else {
        return Ok(None);
    };
    let text = std::fs::read(tc).map_err(|e| FormatError::io(tc, e))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| FormatError::json(tc, &e))?;
    Ok(match json.get("chat_template") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    })
}
