//! The BERT family (BERT, MiniLM, RoBERTa) as Burn modules.
//!
//! Field names follow transformers' `BertModel` (`self` is a Rust keyword, so
//! `attention.self` is the field `attention.self_attn`, and `LayerNorm` is
//! `layer_norm`); [`BertModel::linear_mut`] resolves HF module paths such as
//! `encoder.layer.0.attention.self.query` to the Burn `Linear`.

use burn::module::Module;
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use ft_formats::{Family, FormatError, FormatErrorKind, ModelConfig};

use crate::layers::{attention_bias, LayerNorm};
use crate::weights::{Loader, Result, WeightSource};

#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
    /// RoBERTa numbers positions from `pad_token_id + 1`.
    pub position_offset: usize,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub num_heads: usize,
}

/// `dense` + residual + `LayerNorm` (used after attention and after the FFN).
#[derive(Module, Debug)]
pub struct BertOutput<B: Backend> {
    pub dense: Linear<B>,
    pub layer_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    pub self_attn: BertSelfAttention<B>,
    pub output: BertOutput<B>,
}

#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub attention: BertAttention<B>,
    /// `intermediate.dense` (hidden → FFN, GELU).
    pub intermediate: Linear<B>,
    pub output: BertOutput<B>,
}

#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
    /// `pooler.dense` (tanh of the [CLS] state); absent in some checkpoints.
    pub pooler: Option<Linear<B>>,
    /// `bert.` for `BertFor…` checkpoints, empty for a bare `BertModel`.
    #[module(skip)]
    pub prefix: String,
    #[module(skip)]
    pub config: ModelConfig,
}

/// `BertForSequenceClassification`: the pooled output through a linear
/// classifier whose PyTorch weight is `[labels, hidden]`.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification<B: Backend> {
    pub bert: BertModel<B>,
    pub classifier: Linear<B>,
}

impl<B: Backend> BertOutput<B> {
    fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3> {
        self.layer_norm.forward(self.dense.forward(x) + residual)
    }
}

impl<B: Backend> BertSelfAttention<B> {
    fn forward(&self, x: Tensor<B, 3>, bias: &Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let (nh, d) = (self.num_heads, h / self.num_heads);
        let split = |t: Tensor<B, 3>| t.reshape([b, s, nh, d]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt()) + bias.clone();
        softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, s, h])
    }
}

impl<B: Backend> BertModel<B> {
    pub fn load(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        let path = source.path();
        if config.family != Family::Bert {
            return Err(FormatError::new(
                path,
                FormatErrorKind::UnsupportedArchitecture {
                    name: format!("{} (not a BERT-family encoder)", config.model_type),
                },
            ));
        }
        let prefix = ["", "bert.", "roberta."]
            .into_iter()
            .find(|p| source.has(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or_else(|| {
                FormatError::new(
                    &path,
                    FormatErrorKind::MissingTensor {
                        tensor: "embeddings.word_embeddings.weight".into(),
                    },
                )
            })?
            .to_string();
        let c = config;
        let h = c.hidden_size;
        let eps = c.norm_eps;
        let mut l = Loader::<B> { source, device };
        let p = |s: &str| format!("{prefix}{s}");
        let embeddings = BertEmbeddings {
            word_embeddings: l.embedding(&p("embeddings.word_embeddings"), c.vocab_size, h)?,
            position_embeddings: l.embedding(
                &p("embeddings.position_embeddings"),
                c.max_positions,
                h,
            )?,
            token_type_embeddings: l.embedding(
                &p("embeddings.token_type_embeddings"),
                c.type_vocab_size,
                h,
            )?,
            layer_norm: LayerNorm::load(&mut l, &p("embeddings.LayerNorm"), h, eps)?,
            position_offset: c.position_offset,
        };
        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let lp = p(&format!("encoder.layer.{i}"));
            layers.push(BertLayer {
                attention: BertAttention {
                    self_attn: BertSelfAttention {
                        query: l.linear(&format!("{lp}.attention.self.query"), h, h, true)?,
                        key: l.linear(&format!("{lp}.attention.self.key"), h, h, true)?,
                        value: l.linear(&format!("{lp}.attention.self.value"), h, h, true)?,
                        num_heads: c.num_heads,
                    },
                    output: BertOutput {
                        dense: l.linear(&format!("{lp}.attention.output.dense"), h, h, true)?,
                        layer_norm: LayerNorm::load(
                            &mut l,
                            &format!("{lp}.attention.output.LayerNorm"),
                            h,
                            eps,
                        )?,
                    },
                },
                intermediate: l.linear(
                    &format!("{lp}.intermediate.dense"),
                    h,
                    c.intermediate_size,
                    true,
                )?,
                output: BertOutput {
                    dense: l.linear(&format!("{lp}.output.dense"), c.intermediate_size, h, true)?,
                    layer_norm: LayerNorm::load(&mut l, &format!("{lp}.output.LayerNorm"), h, eps)?,
                },
            });
        }
        let pooler = if l.source.has(&p("pooler.dense.weight")) {
            Some(l.linear(&p("pooler.dense"), h, h, true)?)
        } else {
            None
        };
        Ok(BertModel {
            embeddings,
            layers,
            pooler,
            prefix,
            config: config.clone(),
        })
    }

    /// Last hidden state `[batch, seq, hidden]`. `attention_mask` is
    /// `[batch, seq]` (1 = token, 0 = padding); `token_type_ids` default to 0.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let e = &self.embeddings;
        let off = e.position_offset as i64;
        let positions: Tensor<B, 2, Int> = Tensor::<B, 1, Int>::from_data(
            TensorData::new((off..off + s as i64).collect::<Vec<_>>(), [s]),
            &device,
        )
        .unsqueeze::<2>()
        .expand([b, s]);
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([b, s], &device));
        let x = e.word_embeddings.forward(input_ids)
            + e.token_type_embeddings.forward(types)
            + e.position_embeddings.forward(positions);
        let mut x = e.layer_norm.forward(x);
        let bias = attention_bias(b, s, 0, attention_mask.as_ref(), false, &device);
        for layer in &self.layers {
            let a = layer.attention.self_attn.forward(x.clone(), &bias);
            let a = layer.attention.output.forward(a, x);
            let f = gelu(layer.intermediate.forward(a.clone()));
            x = layer.output.forward(f, a);
        }
        x
    }

    /// `tanh(pooler.dense(h[:, 0]))`, or `None` without a pooler.
    pub fn pool(&self, hidden: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        let [b, _, h] = hidden.dims();
        let cls = hidden.narrow(1, 0, 1).reshape([b, h]);
        self.pooler.as_ref().map(|p| p.forward(cls).tanh())
    }

    /// HF module paths (with the checkpoint's prefix) of every linear layer.
    pub fn linear_paths(&self) -> Vec<String> {
        let p = &self.prefix;
        let mut out = Vec::new();
        for i in 0..self.layers.len() {
            for m in [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "intermediate.dense",
                "output.dense",
            ] {
                out.push(format!("{p}encoder.layer.{i}.{m}"));
            }
        }
        if self.pooler.is_some() {
            out.push(format!("{p}pooler.dense"));
        }
        out
    }

    /// Resolves an HF module path to the Burn linear. The checkpoint's prefix
    /// (`bert.`) is optional: `encoder.layer.0.attention.self.query` and
    /// `bert.encoder.layer.0.attention.self.query` name the same layer.
    pub fn linear_mut(&mut self, path: &str) -> Option<&mut Linear<B>> {
        let path = ["bert.", "roberta."]
            .iter()
            .find_map(|p| path.strip_prefix(p))
            .unwrap_or(path);
        if path == "pooler.dense" {
            return self.pooler.as_mut();
        }
        let rest = path.strip_prefix("encoder.layer.")?;
        let (i, module) = rest.split_once('.')?;
        let layer = self.layers.get_mut(i.parse::<usize>().ok()?)?;
        Some(match module {
            "attention.self.query" => &mut layer.attention.self_attn.query,
            "attention.self.key" => &mut layer.attention.self_attn.key,
            "attention.self.value" => &mut layer.attention.self_attn.value,
            "attention.output.dense" => &mut layer.attention.output.dense,
            "intermediate.dense" => &mut layer.intermediate,
            "output.dense" => &mut layer.output.dense,
            _ => return None,
        })
    }
}

impl<B: Backend> BertForSequenceClassification<B> {
    /// Loads encoder and classifier; a checkpoint without `classifier.weight`
    /// is an error (use [`Self::with_new_head`] to start a fresh head).
    pub fn load(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        let bert = BertModel::load(config, source, device)?;
        let labels = config.num_labels.ok_or_else(|| {
            FormatError::new(
                source.path(),
                FormatErrorKind::MissingConfigField {
                    field: "num_labels (or id2label)".into(),
                },
            )
        })?;
        let mut l = Loader::<B> { source, device };
        let classifier = l.linear("classifier", config.hidden_size, labels, true)?;
        Ok(BertForSequenceClassification { bert, classifier })
    }

    /// A new classifier head, explicitly initialized from `init` (e.g. a
    /// seeded [`crate::weights::RandomSource`]) — the caller decides.
    pub fn with_new_head(
        bert: BertModel<B>,
        num_labels: usize,
        init: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        let h = bert.config.hidden_size;
        let mut l = Loader::<B> {
            source: init,
            device,
        };
        let classifier = l.linear("classifier", h, num_labels, true)?;
        Ok(BertForSequenceClassification { bert, classifier })
    }

    /// Logits `[batch, labels]`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 2> {
        let hidden = self.bert.forward(input_ids, attention_mask, token_type_ids);
        let [b, _, h] = hidden.dims();
        let pooled = self
            .bert
            .pool(hidden.clone())
            .unwrap_or_else(|| hidden.narrow(1, 0, 1).reshape([b, h]));
        self.classifier.forward(pooled)
    }

    pub fn linear_mut(&mut self, path: &str) -> Option<&mut Linear<B>> {
        if path == "classifier" {
            return Some(&mut self.classifier);
        }
        self.bert.linear_mut(path)
    }
}
