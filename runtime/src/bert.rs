//! The BERT family (BERT, MiniLM, RoBERTa) as Burn modules.
//!
//! Field names follow transformers' `BertModel` (`self` is a Rust keyword, so
//! `attention.self` is the field `attention.self_attn`, and `LayerNorm` is
//! `layer_norm`); [`BertModel::linear_mut`] resolves HF module paths such as
//! `encoder.layer.0.attention.self.query` to the Burn `Linear`.

use crate::kernels::Kernels;
use burn::module::Module;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::{Family, FormatError, FormatErrorKind, ModelConfig};

use crate::kernels::{gelu, matmul, reshape, softmax_scaled};
use crate::layers::{attention_bias, LayerNorm};
use crate::peft::bottleneck::{adapt, Bottleneck};
use crate::peft::prompt::{PrefixTuning, PromptTuning};
use crate::peft::{AdaptedLinear, ForwardCtx};
use crate::recompute::RecomputeTape;
use crate::weights::{Loader, Result, WeightSource};

#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Kernels> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
    /// RoBERTa numbers positions from `pad_token_id + 1`.
    pub position_offset: usize,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Kernels> {
    pub query: AdaptedLinear<B>,
    pub key: AdaptedLinear<B>,
    pub value: AdaptedLinear<B>,
    pub num_heads: usize,
}

/// `dense` + residual + `LayerNorm` (used after attention and after the FFN).
#[derive(Module, Debug)]
pub struct BertOutput<B: Kernels> {
    pub dense: AdaptedLinear<B>,
    pub layer_norm: LayerNorm<B>,
    /// A bottleneck adapter on `dense`'s output, before the residual.
    pub adapter: Option<Bottleneck<B>>,
}

#[derive(Module, Debug)]
pub struct BertAttention<B: Kernels> {
    pub self_attn: BertSelfAttention<B>,
    pub output: BertOutput<B>,
}

#[derive(Module, Debug)]
pub struct BertLayer<B: Kernels> {
    pub attention: BertAttention<B>,
    /// `intermediate.dense` (hidden → FFN, GELU).
    pub intermediate: AdaptedLinear<B>,
    pub output: BertOutput<B>,
}

#[derive(Module, Debug)]
pub struct BertModel<B: Kernels> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
    /// `pooler.dense` (tanh of the [CLS] state); absent in some checkpoints.
    pub pooler: Option<AdaptedLinear<B>>,
    /// Prompt tuning: virtual token embeddings prepended to every input.
    pub prompt_tuning: Option<PromptTuning<B>>,
    /// Prefix tuning: virtual keys/values prepended in every layer.
    pub prefix_tuning: Option<PrefixTuning<B>>,
    /// `bert.` for `BertFor…` checkpoints, empty for a bare `BertModel`.
    #[module(skip)]
    pub prefix: String,
    #[module(skip)]
    pub config: ModelConfig,
}

/// `BertForSequenceClassification`: the pooled output through a linear
/// classifier whose PyTorch weight is `[labels, hidden]`.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification<B: Kernels> {
    pub bert: BertModel<B>,
    pub classifier: Linear<B>,
}

impl<B: Kernels> BertOutput<B> {
    fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>, ctx: &ForwardCtx) -> Tensor<B, 3> {
        let y = adapt(&self.adapter, self.dense.forward(x, ctx));
        self.layer_norm.forward(crate::kernels::add(y, residual))
    }
}

impl<B: Kernels> BertSelfAttention<B> {
    /// Self-attention over `x`; with `kept = Some(n)` only the first `n`
    /// positions ask (queries, output `[batch, n, hidden]`) while every
    /// position is a key and a value.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        kept: Option<usize>,
        bias: &Tensor<B, 4>,
        prefix: Option<&(Tensor<B, 4>, Tensor<B, 4>)>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let (nh, d) = (self.num_heads, h / self.num_heads);
        let split = |t: Tensor<B, 3>, n| reshape(t, [b, n, nh, d]).swap_dims(1, 2);
        let (q, n, bias) = match kept {
            Some(n) => {
                let q = self
                    .query
                    .forward(x.clone().narrow(1, 0, n), &ctx.with_kept(n, s));
                (split(q, n), n, &bias.clone().narrow(2, 0, n))
            }
            None => (split(self.query.forward(x.clone(), ctx), s), s, bias),
        };
        let mut k = split(self.key.forward(x.clone(), ctx), s);
        let mut v = split(self.value.forward(x, ctx), s);
        if let Some((pk, pv)) = prefix {
            k = Tensor::cat(vec![pk.clone(), k], 2);
            v = Tensor::cat(vec![pv.clone(), v], 2);
        }
        let scores = matmul(q, k.swap_dims(2, 3));
        matmul(softmax_scaled(scores, 1.0 / (d as f64).sqrt(), bias), v)
            .swap_dims(1, 2)
            .reshape([b, n, h])
    }
}

impl<B: Kernels> BertLayer<B> {
    /// One encoder layer; with `kept = Some(n)` only the first `n`
    /// positions come out (see [`BertSelfAttention::forward`]).
    fn forward(
        &self,
        x: Tensor<B, 3>,
        kept: Option<usize>,
        bias: &Tensor<B, 4>,
        prefix: Option<&(Tensor<B, 4>, Tensor<B, 4>)>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        let total = x.dims()[1];
        let a = self
            .attention
            .self_attn
            .forward(x.clone(), kept, bias, prefix, ctx);
        let (x_in, ctx) = match kept {
            Some(n) => (x.narrow(1, 0, n), ctx.with_kept(n, total)),
            None => (x, *ctx),
        };
        let a = self.attention.output.forward(a, x_in, &ctx);
        let f = gelu(self.intermediate.forward(a.clone(), &ctx));
        self.output.forward(f, a, &ctx)
    }
}

impl<B: Kernels> BertModel<B> {
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
                        query: l
                            .linear(&format!("{lp}.attention.self.query"), h, h, true)?
                            .into(),
                        key: l
                            .linear(&format!("{lp}.attention.self.key"), h, h, true)?
                            .into(),
                        value: l
                            .linear(&format!("{lp}.attention.self.value"), h, h, true)?
                            .into(),
                        num_heads: c.num_heads,
                    },
                    output: BertOutput {
                        dense: l
                            .linear(&format!("{lp}.attention.output.dense"), h, h, true)?
                            .into(),
                        adapter: None,
                        layer_norm: LayerNorm::load(
                            &mut l,
                            &format!("{lp}.attention.output.LayerNorm"),
                            h,
                            eps,
                        )?,
                    },
                },
                intermediate: l
                    .linear(
                        &format!("{lp}.intermediate.dense"),
                        h,
                        c.intermediate_size,
                        true,
                    )?
                    .into(),
                output: BertOutput {
                    dense: l
                        .linear(&format!("{lp}.output.dense"), c.intermediate_size, h, true)?
                        .into(),
                    adapter: None,
                    layer_norm: LayerNorm::load(&mut l, &format!("{lp}.output.LayerNorm"), h, eps)?,
                },
            });
        }
        let pooler = if l.source.has(&p("pooler.dense.weight")) {
            Some(l.linear(&p("pooler.dense"), h, h, true)?.into())
        } else {
            None
        };
        Ok(BertModel {
            embeddings,
            layers,
            pooler,
            prompt_tuning: None,
            prefix_tuning: None,
            prefix,
            config: config.clone(),
        })
    }

    /// Last hidden state `[batch, seq, hidden]`. `attention_mask` is
    /// `[batch, seq]` (1 = token, 0 = padding); `token_type_ids` default to 0.
    /// Inference: no dropout.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        self.forward_with(input_ids, attention_mask, token_type_ids, &ForwardCtx::EVAL)
    }

    /// [`Self::forward`] in a training step's context (dropout). With prompt
    /// tuning the hidden states of the virtual tokens are left out: the
    /// result covers the real tokens only.
    pub fn forward_with(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        let s = input_ids.dims()[1];
        let (x, virt) = self.forward_all(input_ids, attention_mask, token_type_ids, ctx);
        if virt == 0 {
            x
        } else {
            x.narrow(1, virt, s)
        }
    }

    /// The hidden states of every position, virtual prompt tokens first, and
    /// how many virtual tokens there are. As in PEFT: prompt embeddings
    /// replace word embeddings at positions `0..n` (position and token-type
    /// embeddings are still added); a prefix of `n` keys/values shifts the
    /// real tokens' positions to `n..n+s`; the attention mask is extended
    /// with ones for the virtual tokens.
    pub fn forward_all(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
    ) -> (Tensor<B, 3>, usize) {
        self.encode(input_ids, attention_mask, token_type_ids, ctx, None, None)
    }

    /// The hidden states of the first `n` positions (virtual prompt tokens
    /// included), `[batch, n, hidden]`: what a head that reads only those
    /// positions needs. The last layer then computes only those positions'
    /// rows — its queries, attention output, feed-forward and norms (every
    /// position is still a key and a value): for a classifier reading one
    /// position, ≈ 83 % of the last layer's products; the values are those
    /// of [`Self::forward_all`], dropout masks included.
    pub fn forward_first(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
        n: usize,
    ) -> Tensor<B, 3> {
        self.forward_first_taped(input_ids, attention_mask, token_type_ids, ctx, n, None)
    }

    /// [`Self::forward_first`]; with a tape the layers are recomputed in
    /// the backward pass rather than kept ([`RecomputeTape`]).
    pub fn forward_first_taped(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
        n: usize,
        tape: Option<&RecomputeTape<B>>,
    ) -> Tensor<B, 3> {
        let (ids, mask, types) = (input_ids, attention_mask, token_type_ids);
        self.encode(ids, mask, types, ctx, Some(n), tape).0
    }

    fn encode(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
        first: Option<usize>,
        tape: Option<&RecomputeTape<B>>,
    ) -> (Tensor<B, 3>, usize) {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let e = &self.embeddings;
        let prompt_n = self
            .prompt_tuning
            .as_ref()
            .map_or(0, |p| p.virtual_tokens());
        let prefix_n = self
            .prefix_tuning
            .as_ref()
            .map_or(0, |p| p.virtual_tokens());
        let total = prompt_n + s;
        let off = (e.position_offset + prefix_n) as i64;
        let positions: Tensor<B, 2, Int> = Tensor::<B, 1, Int>::from_data(
            TensorData::new((off..off + total as i64).collect::<Vec<_>>(), [total]),
            &device,
        )
        .unsqueeze::<2>()
        .expand([b, total]);
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([b, s], &device));
        let mut words = e.word_embeddings.forward(input_ids);
        let mut types = types;
        if let Some(p) = &self.prompt_tuning {
            words = p.prepend(words);
            types = Tensor::cat(vec![Tensor::zeros([b, prompt_n], &device), types], 1);
        }
        let x = words
            + e.token_type_embeddings.forward(types)
            + e.position_embeddings.forward(positions);
        let mut x = e.layer_norm.forward(x);
        let virt = prompt_n + prefix_n;
        let mask = attention_mask.map(|m| {
            if virt == 0 {
                m
            } else {
                Tensor::cat(vec![Tensor::ones([b, virt], &device), m], 1)
            }
        });
        let bias = attention_bias(b, total, prefix_n, mask.as_ref(), false, &device);
        let prefix = self.prefix_tuning.as_ref().map(|p| p.key_values(b));
        let last = self.layers.len().saturating_sub(1);
        // Only the last layer can drop rows: below it every position is a
        // key and a value of the next.
        let kept = move |i: usize| first.filter(|&n| i == last && n < total);
        match tape {
            Some(tape) => {
                let ctx = *ctx;
                let kv = |i: usize| prefix.as_ref().map(|p| p[i].clone());
                x = tape.run(x, &self.layers, kv, move |layer, i, x, kv| {
                    layer.forward(x, kept(i), &bias, kv, &ctx)
                });
            }
            None => {
                for (i, layer) in self.layers.iter().enumerate() {
                    let kv = prefix.as_ref().map(|p| &p[i]);
                    x = layer.forward(x, kept(i), &bias, kv, ctx);
                }
            }
        }
        if let Some(n) = first.filter(|&n| n < total && self.layers.is_empty()) {
            x = x.narrow(1, 0, n);
        }
        (x, prompt_n)
    }

    /// `tanh(pooler.dense(h[:, 0]))`, or `None` without a pooler.
    pub fn pool(&self, hidden: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        self.pool_with(hidden, &ForwardCtx::EVAL)
    }

    pub fn pool_with(&self, hidden: Tensor<B, 3>, ctx: &ForwardCtx) -> Option<Tensor<B, 2>> {
        let [b, _, h] = hidden.dims();
        let cls = hidden.narrow(1, 0, 1).reshape([b, h]);
        self.pooler.as_ref().map(|p| p.forward(cls, ctx).tanh())
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
        self.adapted_mut(path).map(|a| &mut a.base)
    }

    /// The adapted layer at an HF module path (see [`Self::linear_mut`]).
    pub fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>> {
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

    /// Read-only [`Self::adapted_mut`].
    pub fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>> {
        let path = ["bert.", "roberta."]
            .iter()
            .find_map(|p| path.strip_prefix(p))
            .unwrap_or(path);
        if path == "pooler.dense" {
            return self.pooler.as_ref();
        }
        let rest = path.strip_prefix("encoder.layer.")?;
        let (i, module) = rest.split_once('.')?;
        let layer = self.layers.get(i.parse::<usize>().ok()?)?;
        Some(match module {
            "attention.self.query" => &layer.attention.self_attn.query,
            "attention.self.key" => &layer.attention.self_attn.key,
            "attention.self.value" => &layer.attention.self_attn.value,
            "attention.output.dense" => &layer.attention.output.dense,
            "intermediate.dense" => &layer.intermediate,
            "output.dense" => &layer.output.dense,
            _ => return None,
        })
    }
}

impl<B: Kernels> BertForSequenceClassification<B> {
    /// Loads encoder and classifier; a checkpoint without `classifier.weight`
    /// is an error (use [`Self::with_new_head`] to start a fresh head).
    pub fn load(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        let bert = BertModel::load(config, source, device)?;
        let labels = crate::classifier::num_labels(config, source)?;
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

    /// Logits `[batch, labels]` (inference: no dropout).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 2> {
        self.forward_with(input_ids, attention_mask, token_type_ids, &ForwardCtx::EVAL)
    }

    /// Logits in a training step's context. With prompt tuning the pooled
    /// position is the first virtual token, as in PEFT (which prepends the
    /// prompt to `inputs_embeds` of the whole model).
    pub fn forward_with(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 2> {
        self.forward_taped(input_ids, attention_mask, token_type_ids, ctx, None)
    }

    /// [`Self::forward_with`], the layers recomputed in the backward pass
    /// when there is a tape ([`RecomputeTape`]).
    pub fn forward_taped(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Tensor<B, 2> {
        // The head reads position 0 only.
        let (ids, mask, types) = (input_ids, attention_mask, token_type_ids);
        let hidden = self
            .bert
            .forward_first_taped(ids, mask, types, ctx, 1, tape);
        let [b, _, h] = hidden.dims();
        let pooled = self
            .bert
            .pool_with(hidden.clone(), ctx)
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
