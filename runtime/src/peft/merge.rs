//! Merged full weights: every adapted linear folded into its base weight
//! (`W + s·BA`, DoRA's `m/‖W + sΔW‖ · (W + sΔW)`, IA3 on rows or columns),
//! written in the Hugging Face layout (`model.safetensors` + `config.json`)
//! so that transformers loads the result as an ordinary model.
//!
//! Prompt tuning, prefix tuning and bottleneck adapters add computation
//! rather than changing weights; they cannot be merged and are refused.

use crate::kernels::Kernels;
use std::path::Path;

use burn::nn::{Embedding, Linear};
use ft_formats::ModelConfig;
use serde_json::{json, Value};

use super::adapter::{values, write_atomic, write_safetensors, TensorMap};
use super::inject::Adaptable;
use super::{AdaptedLinear, PeftError};
use crate::bert::{BertForSequenceClassification, BertModel};
use crate::classifier::LlamaForSequenceClassification;
use crate::layers::{LayerNorm, RmsNorm};
use crate::llama::LlamaForCausalLM;

/// A model that can be written as merged HF weights.
pub trait Mergeable<B: Kernels>: Adaptable<B> {
    /// Every weight, adapters folded in, by HF name in PyTorch layout.
    fn merged_tensors(&self) -> Result<TensorMap, PeftError>;
    /// The transformers `config.json` of the merged model.
    fn hf_config(&self) -> Value;
}

fn refuse_unmergeable<B: Kernels, M: Adaptable<B>>(model: &M) -> Result<(), PeftError> {
    let what = if model.prompt_tuning().is_some() {
        Some("prompt tuning")
    } else if model.prefix_tuning().is_some() {
        Some("prefix tuning")
    } else if (0..model.geometry().layers).any(|i| {
        let (a, f) = model.adapters(i);
        a.is_some() || f.is_some()
    }) {
        Some("bottleneck adapters")
    } else {
        None
    };
    match what {
        Some(w) => Err(PeftError::Invalid(format!(
            "{w} cannot be merged into the model's weights (it adds virtual tokens or layers); \
             export the adapter instead"
        ))),
        None => Ok(()),
    }
}

struct Out(TensorMap);

impl Out {
    fn put<B: Kernels, const D: usize>(&mut self, name: String, t: burn::tensor::Tensor<B, D>) {
        let shape = t.dims().to_vec();
        self.0.insert(name, (shape, values(t)));
    }
    fn linear<B: Kernels>(
        &mut self,
        name: &str,
        w: burn::tensor::Tensor<B, 2>,
        b: Option<burn::tensor::Tensor<B, 1>>,
    ) {
        // Burn [in, out] -> PyTorch [out, in].
        self.put(format!("{name}.weight"), w.transpose());
        if let Some(b) = b {
            self.put(format!("{name}.bias"), b);
        }
    }
    fn adapted<B: Kernels>(&mut self, name: &str, a: &AdaptedLinear<B>) {
        let (w, b) = a.merged();
        self.linear(name, w, b);
    }
    fn plain<B: Kernels>(&mut self, name: &str, l: &Linear<B>) {
        self.linear(name, l.weight.val(), l.bias.as_ref().map(|b| b.val()));
    }
    fn embedding<B: Kernels>(&mut self, name: &str, e: &Embedding<B>) {
        self.put(format!("{name}.weight"), e.weight.val());
    }
    fn layer_norm<B: Kernels>(&mut self, name: &str, n: &LayerNorm<B>) {
        self.put(format!("{name}.weight"), n.weight.val());
        self.put(format!("{name}.bias"), n.bias.val());
    }
    fn rms_norm<B: Kernels>(&mut self, name: &str, n: &RmsNorm<B>) {
        self.put(format!("{name}.weight"), n.weight.val());
    }
}

fn bert_tensors<B: Kernels>(m: &BertModel<B>, p: &str, out: &mut Out) {
    let e = &m.embeddings;
    out.embedding(
        &format!("{p}embeddings.word_embeddings"),
        &e.word_embeddings,
    );
    out.embedding(
        &format!("{p}embeddings.position_embeddings"),
        &e.position_embeddings,
    );
    out.embedding(
        &format!("{p}embeddings.token_type_embeddings"),
        &e.token_type_embeddings,
    );
    out.layer_norm(&format!("{p}embeddings.LayerNorm"), &e.layer_norm);
    for (i, l) in m.layers.iter().enumerate() {
        let n = format!("{p}encoder.layer.{i}");
        let s = &l.attention.self_attn;
        out.adapted(&format!("{n}.attention.self.query"), &s.query);
        out.adapted(&format!("{n}.attention.self.key"), &s.key);
        out.adapted(&format!("{n}.attention.self.value"), &s.value);
        out.adapted(
            &format!("{n}.attention.output.dense"),
            &l.attention.output.dense,
        );
        out.layer_norm(
            &format!("{n}.attention.output.LayerNorm"),
            &l.attention.output.layer_norm,
        );
        out.adapted(&format!("{n}.intermediate.dense"), &l.intermediate);
        out.adapted(&format!("{n}.output.dense"), &l.output.dense);
        out.layer_norm(&format!("{n}.output.LayerNorm"), &l.output.layer_norm);
    }
    if let Some(pooler) = &m.pooler {
        out.adapted(&format!("{p}pooler.dense"), pooler);
    }
}

fn bert_config(c: &ModelConfig) -> serde_json::Map<String, Value> {
    let v = json!({
        "model_type": c.model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "intermediate_size": c.intermediate_size,
        "hidden_act": c.hidden_act,
        "max_position_embeddings": c.max_positions,
        "type_vocab_size": c.type_vocab_size,
        "layer_norm_eps": c.norm_eps,
        "pad_token_id": c.pad_token_id,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "architectures": ["BertModel"],
    });
    v.as_object().expect("object").clone()
}

impl<B: Kernels> Mergeable<B> for BertModel<B> {
    fn merged_tensors(&self) -> Result<TensorMap, PeftError> {
        refuse_unmergeable(self)?;
        let mut out = Out(TensorMap::new());
        bert_tensors(self, "", &mut out);
        Ok(out.0)
    }
    fn hf_config(&self) -> Value {
        Value::Object(bert_config(&self.config))
    }
}

impl<B: Kernels> Mergeable<B> for BertForSequenceClassification<B> {
    fn merged_tensors(&self) -> Result<TensorMap, PeftError> {
        refuse_unmergeable(self)?;
        let mut out = Out(TensorMap::new());
        bert_tensors(&self.bert, "bert.", &mut out);
        out.plain("classifier", &self.classifier);
        Ok(out.0)
    }
    fn hf_config(&self) -> Value {
        let mut c = bert_config(&self.bert.config);
        c.insert(
            "architectures".into(),
            json!(["BertForSequenceClassification"]),
        );
        with_labels(&mut c, &self.bert.config, self.classifier.weight.dims()[1]);
        Value::Object(c)
    }
}

/// `id2label` and `label2id` for `labels` classes: the config's names
/// when it has as many, else transformers' `LABEL_i`.
fn with_labels(c: &mut serde_json::Map<String, Value>, config: &ModelConfig, labels: usize) {
    let names: Vec<String> = match &config.id2label {
        Some(map) if map.len() == labels => (0..labels)
            .map(|i| map.get(&i).cloned().unwrap_or_else(|| format!("LABEL_{i}")))
            .collect(),
        _ => (0..labels).map(|i| format!("LABEL_{i}")).collect(),
    };
    c.insert(
        "id2label".into(),
        Value::Object(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (i.to_string(), json!(n)))
                .collect(),
        ),
    );
    c.insert(
        "label2id".into(),
        Value::Object(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), json!(i)))
                .collect(),
        ),
    );
}

fn llama_tensors<B: Kernels>(m: &LlamaForCausalLM<B>, out: &mut Out) {
    out.embedding("model.embed_tokens", &m.model.embed_tokens);
    for (i, l) in m.model.layers.iter().enumerate() {
        let n = format!("model.layers.{i}");
        let a = &l.self_attn;
        out.adapted(&format!("{n}.self_attn.q_proj"), &a.q_proj);
        out.adapted(&format!("{n}.self_attn.k_proj"), &a.k_proj);
        out.adapted(&format!("{n}.self_attn.v_proj"), &a.v_proj);
        out.adapted(&format!("{n}.self_attn.o_proj"), &a.o_proj);
        out.adapted(&format!("{n}.mlp.gate_proj"), &l.mlp.gate_proj);
        out.adapted(&format!("{n}.mlp.up_proj"), &l.mlp.up_proj);
        out.adapted(&format!("{n}.mlp.down_proj"), &l.mlp.down_proj);
        out.rms_norm(&format!("{n}.input_layernorm"), &l.input_layernorm);
        out.rms_norm(
            &format!("{n}.post_attention_layernorm"),
            &l.post_attention_layernorm,
        );
    }
    out.rms_norm("model.norm", &m.model.norm);
}

impl<B: Kernels> Mergeable<B> for LlamaForCausalLM<B> {
    fn merged_tensors(&self) -> Result<TensorMap, PeftError> {
        refuse_unmergeable(self)?;
        let mut out = Out(TensorMap::new());
        llama_tensors(self, &mut out);
        if let Some(head) = &self.lm_head {
            out.plain("lm_head", head);
        }
        Ok(out.0)
    }
    fn hf_config(&self) -> Value {
        Value::Object(llama_config(&self.config))
    }
}

impl<B: Kernels> Mergeable<B> for LlamaForSequenceClassification<B> {
    fn merged_tensors(&self) -> Result<TensorMap, PeftError> {
        refuse_unmergeable(self)?;
        let mut out = Out(TensorMap::new());
        llama_tensors(&self.llama, &mut out);
        out.plain("score", &self.score);
        Ok(out.0)
    }
    fn hf_config(&self) -> Value {
        let c = &self.llama.config;
        let mut v = llama_config(c);
        let arch = match c.model_type.as_str() {
            "mistral" => "MistralForSequenceClassification",
            "qwen2" => "Qwen2ForSequenceClassification",
            _ => "LlamaForSequenceClassification",
        };
        v.insert("architectures".into(), json!([arch]));
        with_labels(&mut v, c, self.score.weight.dims()[1]);
        Value::Object(v)
    }
}

fn llama_config(c: &ModelConfig) -> serde_json::Map<String, Value> {
    let rope_scaling = c.rope_scaling.as_ref().map(|s| {
        json!({
            "rope_type": s.rope_type,
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_positions,
        })
    });
    let arch = match c.model_type.as_str() {
        "mistral" => "MistralForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        _ => "LlamaForCausalLM",
    };
    let eos: Value = match c.eos_token_ids.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let v = json!({
        "architectures": [arch],
        "model_type": c.model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "max_position_embeddings": c.max_positions,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": c.tie_word_embeddings,
        "hidden_act": c.hidden_act,
        "attention_bias": c.attention_bias,
        "mlp_bias": false,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": eos,
        "pad_token_id": c.pad_token_id,
        "torch_dtype": "float32",
    });
    v.as_object().expect("object").clone()
}

/// Writes `model.safetensors` and `config.json` of the merged model into
/// `dir` (created if needed), each file atomically; weights first.
pub fn save_merged<B: Kernels, M: Mergeable<B>>(model: &M, dir: &Path) -> Result<(), PeftError> {
    let tensors = model.merged_tensors()?;
    std::fs::create_dir_all(dir).map_err(|error| PeftError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    write_safetensors(&dir.join("model.safetensors"), &tensors)?;
    let mut text = serde_json::to_string_pretty(&model.hf_config()).expect("json");
    text.push('\n');
    write_atomic(&dir.join("config.json"), text.as_bytes())
}
