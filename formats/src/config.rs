//! The architecture description ft needs, from a Hugging Face `config.json`
//! or from GGUF metadata.
//!
//! Both sources are normalized into one [`ModelConfig`] so that the compiler
//! (shape checks, parameter counts) and the runtime (building Burn modules)
//! never look at raw JSON or GGUF keys. A field the architecture needs but the
//! file lacks is a `MissingConfigField` error naming it; ft never guesses a
//! default for a dimension.

use crate::error::{FormatError, FormatErrorKind, Result};
use crate::gguf::{Gguf, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;

/// The two model families ft implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT-style encoders (bert, roberta, xlm-roberta).
    Bert,
    /// Llama-style decoders (llama, mistral, qwen2).
    Llama,
}

/// Rotary scaling as in transformers' `rope_scaling`.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeScaling {
    /// "linear", "llama3", "dynamic", "yarn", ... (the runtime decides which it supports).
    pub rope_type: String,
    pub factor: f64,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_positions: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub family: Family,
    /// `model_type` (HF) or `general.architecture` (GGUF), e.g. "bert", "llama".
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    /// Equal to `num_heads` for models without grouped-query attention.
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub max_positions: usize,
    /// Llama family only (0.0 for BERT).
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    /// RMSNorm eps (Llama) or LayerNorm eps (BERT).
    pub norm_eps: f64,
    pub tie_word_embeddings: bool,
    /// BERT token-type vocabulary (0 for Llama).
    pub type_vocab_size: usize,
    /// "gelu", "silu", ...
    pub hidden_act: String,
    /// Bias on q/k/v projections (BERT: yes; Qwen2: yes; Llama: `attention_bias`).
    pub attention_bias: bool,
    /// RoBERTa numbers positions from `pad_token_id + 1`; BERT from 0.
    pub position_offset: usize,
    pub num_labels: Option<usize>,
    pub id2label: Option<BTreeMap<usize, String>>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
}

impl ModelConfig {
    /// Reads and parses a Hugging Face `config.json`.
    pub fn from_config_json(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
        let json: Json = serde_json::from_slice(&text).map_err(|e| FormatError::json(path, &e))?;
        Self::from_json(path, &json)
    }

    pub fn from_json(path: &Path, json: &Json) -> Result<Self> {
        let obj = json
            .as_object()
            .ok_or_else(|| FormatError::header(path, "config.json is not a JSON object"))?;
        let f = Fields { path, obj };
        let model_type = f.str("model_type")?.to_string();
        let family = match model_type.as_str() {
            "bert" | "roberta" | "xlm-roberta" | "camembert" => Family::Bert,
            "llama" | "mistral" | "qwen2" => Family::Llama,
            _ => {
                return Err(FormatError::new(
                    path,
                    FormatErrorKind::UnsupportedArchitecture { name: model_type },
                ))
            }
        };
        let hidden_size = f.usize("hidden_size")?;
        let num_heads = f.usize("num_attention_heads")?;
        if num_heads == 0 || hidden_size % num_heads != 0 {
            return Err(f.bad(
                "num_attention_heads",
                format!("{num_heads} heads do not divide hidden_size {hidden_size}"),
            ));
        }
        let id2label = match obj.get("id2label") {
            Some(Json::Object(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let id = k
                        .parse::<usize>()
                        .map_err(|_| f.bad("id2label", format!("key `{k}` is not an integer")))?;
                    let label = v.as_str().ok_or_else(|| {
                        f.bad("id2label", format!("label for {k} is not a string"))
                    })?;
                    out.insert(id, label.to_string());
                }
                Some(out)
            }
            Some(_) => return Err(f.bad("id2label", "not an object".into())),
            None => None,
        };
        let num_labels = match f.opt_usize("num_labels")? {
            Some(n) => Some(n),
            None => id2label.as_ref().map(|m| m.len()),
        };
        let eos_token_ids = match obj.get("eos_token_id") {
            None | Some(Json::Null) => vec![],
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| v.as_u64().map(|x| x as u32))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| f.bad("eos_token_id", "not a list of token ids".into()))?,
            Some(v) => vec![v
                .as_u64()
                .ok_or_else(|| f.bad("eos_token_id", "not a token id".into()))?
                as u32],
        };
        let pad_token_id = f.opt_usize("pad_token_id")?.map(|v| v as u32);
        let common = |family| -> Result<ModelConfig> {
            Ok(ModelConfig {
                family,
                model_type: model_type.clone(),
                vocab_size: f.usize("vocab_size")?,
                hidden_size,
                num_layers: f.usize("num_hidden_layers")?,
                num_heads,
                num_kv_heads: num_heads,
                head_dim: hidden_size / num_heads,
                intermediate_size: f.usize("intermediate_size")?,
                max_positions: f.usize("max_position_embeddings")?,
                rope_theta: 0.0,
                rope_scaling: None,
                norm_eps: 0.0,
                tie_word_embeddings: false,
                type_vocab_size: 0,
                hidden_act: f.opt_str("hidden_act")?.unwrap_or("gelu").to_string(),
                attention_bias: true,
                position_offset: 0,
                num_labels,
                id2label: id2label.clone(),
                bos_token_id: f.opt_usize("bos_token_id")?.map(|v| v as u32),
                eos_token_ids: eos_token_ids.clone(),
                pad_token_id,
            })
        };
        let mut c = common(family)?;
        match family {
            Family::Bert => {
                c.norm_eps = f.opt_f64("layer_norm_eps")?.unwrap_or(1e-12);
                c.type_vocab_size = f.usize("type_vocab_size")?;
                if let Some(p) = f.opt_str("position_embedding_type")? {
                    if p != "absolute" {
                        return Err(f.bad(
                            "position_embedding_type",
                            format!("`{p}` is not supported (only \"absolute\")"),
                        ));
                    }
                }
                if model_type != "bert" {
                    // RoBERTa's create_position_ids_from_input_ids starts at padding_idx + 1.
                    c.position_offset = pad_token_id.unwrap_or(1) as usize + 1;
                }
            }
            Family::Llama => {
                c.num_kv_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(num_heads);
                if c.num_kv_heads == 0 || num_heads % c.num_kv_heads != 0 {
                    return Err(f.bad(
                        "num_key_value_heads",
                        format!(
                            "{} KV heads do not divide {num_heads} heads",
                            c.num_kv_heads
                        ),
                    ));
                }
                c.head_dim = f.opt_usize("head_dim")?.unwrap_or(hidden_size / num_heads);
                c.rope_theta = f.opt_f64("rope_theta")?.unwrap_or(10000.0);
                c.norm_eps = f.opt_f64("rms_norm_eps")?.unwrap_or(1e-6);
                c.hidden_act = f.opt_str("hidden_act")?.unwrap_or("silu").to_string();
                c.tie_word_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(false);
                c.attention_bias = match model_type.as_str() {
                    "qwen2" => true,
                    _ => f.opt_bool("attention_bias")?.unwrap_or(false),
                };
                c.rope_scaling = match obj.get("rope_scaling") {
                    None | Some(Json::Null) => None,
                    Some(Json::Object(m)) => Some(rope_scaling_json(&f, m)?),
                    Some(_) => return Err(f.bad("rope_scaling", "not an object".into())),
                };
            }
        }
        Ok(c)
    }

    /// Builds the config from GGUF metadata (`general.architecture` and the
    /// `<arch>.*` keys llama.cpp writes).
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let path = g.path.as_path();
        let arch = gguf_str(g, "general.architecture")?.to_string();
        if !matches!(arch.as_str(), "llama" | "mistral" | "qwen2") {
            return Err(FormatError::new(
                path,
                FormatErrorKind::UnsupportedArchitecture { name: arch },
            ));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let req = |k: &str| -> Result<usize> { gguf_usize(g, &key(k)) };
        let hidden_size = req("embedding_length")?;
        let num_heads = req("attention.head_count")?;
        let num_kv_heads = match g.get(&key("attention.head_count_kv")) {
            Some(_) => req("attention.head_count_kv")?,
            None => num_heads,
        };
        if num_heads == 0
            || num_kv_heads == 0
            || num_heads % num_kv_heads != 0
            || hidden_size % num_heads != 0
        {
            return Err(FormatError::new(
                path,
                FormatErrorKind::BadMetadata {
                    key: key("attention.head_count"),
                    detail: format!(
                        "{num_heads} heads / {num_kv_heads} KV heads do not fit hidden size {hidden_size}"
                    ),
                },
            ));
        }
        let embd = g.tensor("token_embd.weight").ok_or_else(|| {
            FormatError::new(
                path,
                FormatErrorKind::MissingTensor {
                    tensor: "token_embd.weight".into(),
                },
            )
        })?;
        // `<arch>.vocab_size` is optional in GGUF; the embedding's outer dim is authoritative.
        let vocab_size = match g.get(&key("vocab_size")) {
            Some(_) => req("vocab_size")?,
            None => embd.dims.get(1).copied().unwrap_or(0) as usize,
        };
        let opt_f = |k: &str| g.get(k).and_then(Value::as_f64);
        let opt_id = |k: &str| g.get(k).and_then(Value::as_u64).map(|v| v as u32);
        let rope_scaling = match g.get(&key("rope.scaling.type")).and_then(Value::as_str) {
            None | Some("none") => None,
            Some(t) => Some(RopeScaling {
                rope_type: t.to_string(),
                factor: opt_f(&key("rope.scaling.factor")).unwrap_or(1.0),
                low_freq_factor: None,
                high_freq_factor: None,
                original_max_positions: g
                    .get(&key("rope.scaling.original_context_length"))
                    .and_then(Value::as_u64)
                    .map(|v| v as usize),
            }),
        };
        Ok(ModelConfig {
            family: Family::Llama,
            model_type: arch.clone(),
            vocab_size,
            hidden_size,
            num_layers: req("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim: match g.get(&key("attention.key_length")) {
                Some(_) => req("attention.key_length")?,
                None => hidden_size / num_heads,
            },
            intermediate_size: req("feed_forward_length")?,
            max_positions: req("context_length")?,
            rope_theta: opt_f(&key("rope.freq_base")).unwrap_or(10000.0),
            rope_scaling,
            norm_eps: opt_f(&key("attention.layer_norm_rms_epsilon")).ok_or_else(|| {
                FormatError::new(
                    path,
                    FormatErrorKind::MissingConfigField {
                        field: key("attention.layer_norm_rms_epsilon"),
                    },
                )
            })?,
            // llama.cpp omits `output.weight` exactly when the head is tied.
            tie_word_embeddings: g.tensor("output.weight").is_none(),
            type_vocab_size: 0,
            hidden_act: "silu".into(),
            attention_bias: g.tensor("blk.0.attn_q.bias").is_some(),
            position_offset: 0,
            num_labels: None,
            id2label: None,
            bos_token_id: opt_id("tokenizer.ggml.bos_token_id"),
            eos_token_ids: opt_id("tokenizer.ggml.eos_token_id").into_iter().collect(),
            pad_token_id: opt_id("tokenizer.ggml.padding_token_id"),
        })
    }
}

fn rope_scaling_json(f: &Fields, m: &Map<String, Json>) -> Result<RopeScaling> {
    let rope_type = m
        .get("rope_type")
        .or_else(|| m.get("type"))
        .and_then(Json::as_str)
        .ok_or_else(|| f.bad("rope_scaling", "no `rope_type`".into()))?
        .to_string();
    let num = |k: &str| m.get(k).and_then(Json::as_f64);
    Ok(RopeScaling {
        factor: num("factor").unwrap_or(1.0),
        low_freq_factor: num("low_freq_factor"),
        high_freq_factor: num("high_freq_factor"),
        original_max_positions: m
            .get("original_max_position_embeddings")
            .and_then(Json::as_u64)
            .map(|v| v as usize),
        rope_type,
    })
}

fn gguf_str<'a>(g: &'a Gguf, key: &str) -> Result<&'a str> {
    match g.get(key) {
        None => Err(FormatError::new(
            &g.path,
            FormatErrorKind::MissingConfigField { field: key.into() },
        )),
        Some(v) => v.as_str().ok_or_else(|| {
            FormatError::new(
                &g.path,
                FormatErrorKind::BadMetadata {
                    key: key.into(),
                    detail: "expected a string".into(),
                },
            )
        }),
    }
}

fn gguf_usize(g: &Gguf, key: &str) -> Result<usize> {
    match g.get(key) {
        None => Err(FormatError::new(
            &g.path,
            FormatErrorKind::MissingConfigField { field: key.into() },
        )),
        Some(v) => v.as_u64().map(|v| v as usize).ok_or_else(|| {
            FormatError::new(
                &g.path,
                FormatErrorKind::BadMetadata {
                    key: key.into(),
                    detail: format!("expected a non-negative integer, found {v:?}"),
                },
            )
        }),
    }
}

/// Typed access to config.json fields with errors naming the field.
struct Fields<'a> {
    path: &'a Path,
    obj: &'a Map<String, Json>,
}

impl Fields<'_> {
    fn missing(&self, field: &str) -> FormatError {
        FormatError::new(
            self.path,
            FormatErrorKind::MissingConfigField {
                field: field.into(),
            },
        )
    }
    fn bad(&self, field: &str, detail: String) -> FormatError {
        FormatError::new(
            self.path,
            FormatErrorKind::BadConfigField {
                field: field.into(),
                detail,
            },
        )
    }
    fn get(&self, k: &str) -> Option<&Json> {
        self.obj.get(k).filter(|v| !v.is_null())
    }
    fn usize(&self, k: &str) -> Result<usize> {
        self.opt_usize(k)?.ok_or_else(|| self.missing(k))
    }
    fn opt_usize(&self, k: &str) -> Result<Option<usize>> {
        self.get(k)
            .map(|v| {
                v.as_u64().map(|v| v as usize).ok_or_else(|| {
                    self.bad(k, format!("expected a non-negative integer, found {v}"))
                })
            })
            .transpose()
    }
    fn opt_f64(&self, k: &str) -> Result<Option<f64>> {
        self.get(k)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.bad(k, format!("expected a number, found {v}")))
            })
            .transpose()
    }
    fn opt_bool(&self, k: &str) -> Result<Option<bool>> {
        self.get(k)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| self.bad(k, format!("expected true or false, found {v}")))
            })
            .transpose()
    }
    fn str(&self, k: &str) -> Result<&str> {
        self.opt_str(k)?.ok_or_else(|| self.missing(k))
    }
    fn opt_str(&self, k: &str) -> Result<Option<&str>> {
        self.get(k)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.bad(k, format!("expected a string, found {v}")))
            })
            .transpose()
    }
}
