//! The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2) as Burn modules.
//!
//! The module tree mirrors transformers' `LlamaForCausalLM`, so that every HF
//! module path (`model.layers.3.self_attn.q_proj`) names one field path here;
//! [`LlamaForCausalLM::linear_mut`] resolves such a path to the Burn
//! `Linear`, which is how PEFT methods find their targets.

use crate::kernels::{Kernels, PackedWeight};
use burn::module::Module;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Int, Tensor};
use ft_formats::{Family, FormatError, FormatErrorKind, ModelConfig};

use crate::kernels::{self, matmul, reshape, softmax_scaled};
use crate::layers::{apply_rope, attention_bias, packed_attention_bias, RmsNorm, Rope};
use crate::peft::bottleneck::{adapt, Bottleneck};
use crate::peft::prompt::{PrefixTuning, PromptTuning};
use crate::peft::{AdaptedLinear, ForwardCtx};
use crate::recompute::RecomputeTape;
use crate::weights::{Loader, Result, WeightSource};

#[derive(Module, Debug)]
pub struct LlamaAttention<B: Kernels> {
    pub q_proj: AdaptedLinear<B>,
    pub k_proj: AdaptedLinear<B>,
    pub v_proj: AdaptedLinear<B>,
    pub o_proj: AdaptedLinear<B>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

#[derive(Module, Debug)]
pub struct LlamaMlp<B: Kernels> {
    pub gate_proj: AdaptedLinear<B>,
    pub up_proj: AdaptedLinear<B>,
    pub down_proj: AdaptedLinear<B>,
}

#[derive(Module, Debug)]
pub struct LlamaDecoderLayer<B: Kernels> {
    pub self_attn: LlamaAttention<B>,
    pub mlp: LlamaMlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    /// Bottleneck adapters on the attention and MLP outputs (before the
    /// residual add).
    pub attn_adapter: Option<Bottleneck<B>>,
    pub ffn_adapter: Option<Bottleneck<B>>,
}

#[derive(Module, Debug)]
pub struct LlamaModel<B: Kernels> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<LlamaDecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// Prompt tuning: virtual token embeddings prepended on the first call.
    pub prompt_tuning: Option<PromptTuning<B>>,
    /// Prefix tuning: virtual keys/values prepended in every layer.
    pub prefix_tuning: Option<PrefixTuning<B>>,
    #[module(skip)]
    pub rope: Rope,
}

/// The decoder with its language-model head. `lm_head` is `None` when the
/// head is tied to the token embedding (the embedding matrix is used
/// directly rather than duplicated).
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<B: Kernels> {
    pub model: LlamaModel<B>,
    pub lm_head: Option<Linear<B>>,
    #[module(skip)]
    pub config: ModelConfig,
    /// The head's weight (`lm_head`, or the tied embedding) packed for
    /// bf16 products (`precision = bf16`; see [`crate::peft::pack_frozen`]).
    #[module(skip)]
    pub head_packed: Option<PackedWeight>,
}

/// Keys and values of the positions seen so far, per layer, after rotary
/// embedding and before the KV heads are repeated: `[batch, kv_heads, t, d]`.
#[derive(Debug, Clone)]
pub struct KvCache<B: Kernels> {
    pub layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// Left padding of each row (empty: none). A left-padded batch puts
    /// every row's next token in the same column; a row's positions then
    /// start after its padding, as transformers' generate derives them
    /// from the attention mask, so each row computes what it would alone.
    pub pads: Vec<usize>,
}

impl<B: Kernels> KvCache<B> {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: vec![None; num_layers],
            pads: Vec::new(),
        }
    }

    /// A cache for a batch whose row `r` starts with `pads[r]` padding
    /// columns (masked by the caller's attention mask).
    pub fn left_padded(num_layers: usize, pads: Vec<usize>) -> Self {
        KvCache {
            layers: vec![None; num_layers],
            pads,
        }
    }

    /// Rotary positions `[rows · len]` of the columns `past..past + len`:
    /// column `a` of row `r` is position `a − pads[r]`; the first `virt`
    /// columns (virtual tokens, before any padding) keep theirs, and the
    /// padding itself — masked — takes position `virt`.
    fn positions(&self, virt: usize, past: usize, len: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.pads.len() * len);
        for &pad in &self.pads {
            out.extend((past..past + len).map(|a| match a {
                a if a < virt => a,
                a if a < virt + pad => virt,
                a => a - pad,
            }));
        }
        out
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A packed batch's layout, per token (`[batch · seq]`, row-major): the
/// 1-based example it belongs to within its row (0 on padding) and its
/// position within that example (the pipeline's `segment_ids` and
/// `position_ids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub segments: Vec<u32>,
    pub positions: Vec<u32>,
}

impl Packed {
    /// Rotary positions of a row's `prompt_n + seq` columns: prompt-tuning
    /// columns keep `past..past + prompt_n`; an example's tokens follow at
    /// `past + prompt_n + position`, as they would alone.
    fn positions_with(&self, rows: usize, past: usize, prompt_n: usize) -> Vec<usize> {
        let seq = self.positions.len() / rows.max(1);
        let mut out = Vec::with_capacity(rows * (prompt_n + seq));
        for row in self.positions.chunks(seq.max(1)) {
            out.extend(past..past + prompt_n);
            out.extend(row.iter().map(|&p| past + prompt_n + p as usize));
        }
        out
    }
}

impl<B: Kernels> LlamaAttention<B> {
    // Rotary tables, mask, cache slot, prefix and step context are all
    // per-call inputs of one attention; bundling them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        bias: &Tensor<B, 4>,
        cache: Option<&mut Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
        prefix: Option<&(Tensor<B, 4>, Tensor<B, 4>)>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        // Head splits as views over the projections (no copies).
        let q = reshape(self.q_proj.forward(x.clone(), ctx), [b, s, nh, d]).swap_dims(1, 2);
        let k = reshape(self.k_proj.forward(x.clone(), ctx), [b, s, nkv, d]).swap_dims(1, 2);
        let v = reshape(self.v_proj.forward(x, ctx), [b, s, nkv, d]).swap_dims(1, 2);
        let q = apply_rope(q, cos, sin);
        let mut k = apply_rope(k, cos, sin);
        let mut v = v;
        // Prefix keys enter as a past: not rotated (PEFT hands them to
        // transformers as a cache), and only once — a filled cache holds them.
        let cached = cache.as_ref().is_some_and(|slot| slot.is_some());
        if let (Some((pk, pv)), false) = (prefix, cached) {
            k = Tensor::cat(vec![pk.clone(), k], 2);
            v = Tensor::cat(vec![pv.clone(), v], 2);
        }
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2);
                v = Tensor::cat(vec![pv, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let t = k.dims()[2];
        // Grouped-query attention: each KV head serves `rep = nh / nkv`
        // consecutive query heads (transformers' repeat_kv order). Instead of
        // repeating K and V, the query heads of a group are stacked as rows,
        // `[b, nkv, rep·s, d]` (a free reshape: q is contiguous after RoPE),
        // so one product per KV head covers its whole group.
        let rep = nh / nkv;
        let q = reshape(q, [b, nkv, rep * s, d]);
        let scores = reshape(matmul(q, k.swap_dims(2, 3)), [b, nh, s, t]);
        let probs = softmax_scaled(scores, 1.0 / (d as f64).sqrt(), bias);
        let out = reshape(
            matmul(reshape(probs, [b, nkv, rep * s, t]), v),
            [b, nh, s, d],
        );
        let out = reshape(out.swap_dims(1, 2), [b, s, nh * d]);
        self.o_proj.forward(out, ctx)
    }
}

impl<B: Kernels> LlamaMlp<B> {
    fn forward(&self, x: Tensor<B, 3>, ctx: &ForwardCtx) -> Tensor<B, 3> {
        let g = self.gate_proj.forward(x.clone(), ctx);
        let h = kernels::swiglu(g, self.up_proj.forward(x, ctx));
        self.down_proj.forward(h, ctx)
    }
}

impl<B: Kernels> LlamaDecoderLayer<B> {
    /// One decoder layer: attention and MLP, each behind an RMSNorm and
    /// added to the residual stream.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        bias: &Tensor<B, 4>,
        slot: Option<&mut Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
        prefix: Option<&(Tensor<B, 4>, Tensor<B, 4>)>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        let a = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            cos,
            sin,
            bias,
            slot,
            prefix,
            ctx,
        );
        let x = crate::kernels::add(x, adapt(&self.attn_adapter, a));
        let m = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()), ctx);
        crate::kernels::add(x, adapt(&self.ffn_adapter, m))
    }
}

impl<B: Kernels> LlamaForCausalLM<B> {
    /// Builds the model from a weight source (HF names, PyTorch shapes).
    pub fn load(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        Self::load_parts(config, source, device, true)
    }

    /// The decoder alone, for a head of another kind
    /// ([`crate::classifier::LlamaForSequenceClassification`]): an untied
    /// `lm_head` is neither read nor kept.
    pub fn load_decoder(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        Self::load_parts(config, source, device, false)
    }

    fn load_parts(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
        lm_head: bool,
    ) -> Result<Self> {
        let path = source.path();
        require_llama(config, &path)?;
        let c = config;
        let (h, d) = (c.hidden_size, c.head_dim);
        let rope = Rope::new(d, c.rope_theta, c.rope_scaling.as_ref(), &path)?;
        let mut l = Loader::<B> { source, device };
        let embed_tokens = l.embedding("model.embed_tokens", c.vocab_size, h)?;
        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let p = format!("model.layers.{i}");
            let ab = c.attention_bias;
            layers.push(LlamaDecoderLayer {
                self_attn: LlamaAttention {
                    q_proj: l
                        .linear(&format!("{p}.self_attn.q_proj"), h, c.num_heads * d, ab)?
                        .into(),
                    k_proj: l
                        .linear(&format!("{p}.self_attn.k_proj"), h, c.num_kv_heads * d, ab)?
                        .into(),
                    v_proj: l
                        .linear(&format!("{p}.self_attn.v_proj"), h, c.num_kv_heads * d, ab)?
                        .into(),
                    // Llama's `attention_bias` covers o_proj too; Qwen2 biases q/k/v only.
                    o_proj: l
                        .linear(
                            &format!("{p}.self_attn.o_proj"),
                            c.num_heads * d,
                            h,
                            ab && c.model_type != "qwen2",
                        )?
                        .into(),
                    num_heads: c.num_heads,
                    num_kv_heads: c.num_kv_heads,
                    head_dim: d,
                },
                mlp: LlamaMlp {
                    gate_proj: l
                        .linear(&format!("{p}.mlp.gate_proj"), h, c.intermediate_size, false)?
                        .into(),
                    up_proj: l
                        .linear(&format!("{p}.mlp.up_proj"), h, c.intermediate_size, false)?
                        .into(),
                    down_proj: l
                        .linear(&format!("{p}.mlp.down_proj"), c.intermediate_size, h, false)?
                        .into(),
                },
                input_layernorm: RmsNorm::load(
                    &mut l,
                    &format!("{p}.input_layernorm"),
                    h,
                    c.norm_eps,
                )?,
                post_attention_layernorm: RmsNorm::load(
                    &mut l,
                    &format!("{p}.post_attention_layernorm"),
                    h,
                    c.norm_eps,
                )?,
                attn_adapter: None,
                ffn_adapter: None,
            });
        }
        let norm = RmsNorm::load(&mut l, "model.norm", h, c.norm_eps)?;
        // Tied: the head is the embedding (as in transformers, a saved
        // `lm_head.weight` copy is ignored). Untied: lm_head is required.
        let lm_head = if c.tie_word_embeddings || !lm_head {
            None
        } else {
            Some(l.linear("lm_head", h, c.vocab_size, false)?)
        };
        Ok(LlamaForCausalLM {
            model: LlamaModel {
                embed_tokens,
                layers,
                norm,
                prompt_tuning: None,
                prefix_tuning: None,
                rope,
            },
            lm_head,
            config: config.clone(),
            head_packed: None,
        })
    }

    /// Final hidden states `[batch, seq, hidden]` (after the last norm).
    ///
    /// `attention_mask` is `[batch, past + seq]` with 1 for real tokens and 0
    /// for padding. Positions are `past..past + seq` for every row, as in
    /// transformers' forward without explicit `position_ids`; pad on the
    /// right when batching prompts of different lengths.
    pub fn forward_hidden(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        self.forward_hidden_with(input_ids, attention_mask, cache, &ForwardCtx::EVAL)
    }

    /// [`Self::forward_hidden`] in a training step's context (dropout).
    ///
    /// Virtual tokens stay invisible to the caller: the result covers the
    /// real tokens only, and `attention_mask` covers the real tokens only
    /// (ones are prepended for the virtual ones). As in PEFT, prompt tuning
    /// prepends its embeddings as ordinary positions `0..n`; prefix tuning
    /// adds `n` keys/values as a past, so real positions start at `n`. With
    /// a KV cache, both happen on the first call only (the cache keeps them).
    pub fn forward_hidden_with(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        cache: Option<&mut KvCache<B>>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        self.forward_hidden_taped(input_ids, attention_mask, cache, ctx, None)
    }

    /// [`Self::forward_hidden_with`]; with a tape (and no cache) the layers
    /// are recomputed in the backward pass rather than kept
    /// ([`RecomputeTape`]).
    pub fn forward_hidden_taped(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        cache: Option<&mut KvCache<B>>,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Tensor<B, 3> {
        self.hidden(input_ids, attention_mask, None, cache, ctx, tape)
    }

    /// [`Self::forward_hidden_taped`] for a packed batch (training: no
    /// cache): each example attends causally within itself only, and its
    /// positions restart at 0, so every token computes what it would in an
    /// unpacked row. Virtual tokens (prompt or prefix tuning) are shared by
    /// every example of a row, as each would see them alone.
    pub fn forward_hidden_packed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        packed: &Packed,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Tensor<B, 3> {
        self.hidden(input_ids, None, Some(packed), None, ctx, tape)
    }

    fn hidden(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        packed: Option<&Packed>,
        mut cache: Option<&mut KvCache<B>>,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Tensor<B, 3> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let cached = cache.as_ref().map_or(0, |c| c.len());
        let first = cached == 0;
        let prompt_n = match (&self.model.prompt_tuning, first) {
            (Some(p), true) => p.virtual_tokens(),
            _ => 0,
        };
        let prefix = match (&self.model.prefix_tuning, first) {
            (Some(p), true) => Some(p.key_values(b)),
            _ => None,
        };
        let prefix_n = prefix.as_ref().map_or(0, |p| p[0].0.dims()[2]);
        let past = cached + prefix_n;
        let q_len = prompt_n + s;
        let virt = self
            .model
            .prompt_tuning
            .as_ref()
            .map_or(0, |p| p.virtual_tokens())
            + self
                .model
                .prefix_tuning
                .as_ref()
                .map_or(0, |p| p.virtual_tokens());
        let mask = attention_mask.map(|m| {
            if virt == 0 {
                m
            } else {
                Tensor::cat(vec![Tensor::ones([b, virt], &device), m], 1)
            }
        });
        let (cos, sin) = match (packed, cache.as_ref().filter(|c| !c.pads.is_empty())) {
            (Some(p), _) => {
                let positions = p.positions_with(b, past, prompt_n);
                self.model.rope.tables_at::<B>(&positions, b, &device)
            }
            (None, Some(c)) => {
                let positions = c.positions(virt, past, q_len);
                self.model.rope.tables_at::<B>(&positions, b, &device)
            }
            (None, None) => self.model.rope.tables::<B>(past, q_len, &device),
        };
        let bias = match packed {
            Some(p) => packed_attention_bias(&p.segments, b, prompt_n, past, &device),
            None => attention_bias(b, q_len, past, mask.as_ref(), true, &device),
        };
        let mut x = self.model.embed_tokens.forward(input_ids);
        if let (Some(p), true) = (&self.model.prompt_tuning, first) {
            x = p.prepend(x);
        }
        match (tape, cache.is_none()) {
            // Gradient checkpointing (training: there is no cache).
            (Some(tape), true) => {
                let ctx = *ctx;
                let kv = |i: usize| prefix.as_ref().map(|p| p[i].clone());
                x = tape.run(x, &self.model.layers, kv, move |layer, _, x, kv| {
                    layer.forward(x, &cos, &sin, &bias, None, kv, &ctx)
                });
            }
            _ => {
                for (i, layer) in self.model.layers.iter().enumerate() {
                    let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
                    let kv = prefix.as_ref().map(|p| &p[i]);
                    x = layer.forward(x, &cos, &sin, &bias, slot, kv, ctx);
                }
            }
        }
        let x = self.model.norm.forward(x);
        if prompt_n == 0 {
            x
        } else {
            x.narrow(1, prompt_n, s)
        }
    }

    /// Logits `[batch, seq, vocab]` for hidden states.
    pub fn head(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(l) => kernels::linear(
                hidden,
                l.weight.val(),
                l.bias.as_ref().map(|b| b.val()),
                self.head_packed.as_ref(),
            ),
            None => tied_logits(
                hidden,
                self.model.embed_tokens.weight.val(),
                self.head_packed.as_ref(),
            ),
        }
    }

    /// The training step's view of the head: with a tied head, the hidden
    /// states and the embedding, for the loss to multiply a slice of the
    /// vocabulary at a time where it can ([`kernels::tied_head_log_softmax`]);
    /// the logits otherwise.
    pub fn token_logits(&self, hidden: Tensor<B, 3>) -> TokenLogits<B> {
        let embedding = self.model.embed_tokens.weight.val();
        if self.lm_head.is_none() {
            let packed = self.head_packed.clone();
            return TokenLogits::Tied {
                hidden,
                embedding,
                packed,
            };
        }
        TokenLogits::Dense(self.head(hidden))
    }

    /// Logits for every position.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        self.head(self.forward_hidden(input_ids, attention_mask, cache))
    }

    /// Logits for every real position, in a training step's context.
    pub fn forward_with(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        cache: Option<&mut KvCache<B>>,
        ctx: &ForwardCtx,
    ) -> Tensor<B, 3> {
        self.head(self.forward_hidden_with(input_ids, attention_mask, cache, ctx))
    }

    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.model.layers.len())
    }

    /// HF module paths of every linear layer, in model order.
    pub fn linear_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.model.layers.len() {
            for m in [
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
            ] {
                out.push(format!("model.layers.{i}.{m}"));
            }
            for m in ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
                out.push(format!("model.layers.{i}.{m}"));
            }
        }
        if self.lm_head.is_some() {
            out.push("lm_head".into());
        }
        out
    }

    /// Resolves an HF module path (`model.layers.3.self_attn.q_proj`,
    /// `lm_head`) to the Burn linear it names.
    pub fn linear_mut(&mut self, path: &str) -> Option<&mut Linear<B>> {
        if path == "lm_head" {
            return self.lm_head.as_mut();
        }
        self.adapted_mut(path).map(|a| &mut a.base)
    }

    /// The adapted layer at an HF module path (`lm_head` is not one: the
    /// output head is never a PEFT target).
    pub fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>> {
        let rest = path.strip_prefix("model.layers.")?;
        let (i, module) = rest.split_once('.')?;
        let layer = self.model.layers.get_mut(i.parse::<usize>().ok()?)?;
        Some(match module {
            "self_attn.q_proj" => &mut layer.self_attn.q_proj,
            "self_attn.k_proj" => &mut layer.self_attn.k_proj,
            "self_attn.v_proj" => &mut layer.self_attn.v_proj,
            "self_attn.o_proj" => &mut layer.self_attn.o_proj,
            "mlp.gate_proj" => &mut layer.mlp.gate_proj,
            "mlp.up_proj" => &mut layer.mlp.up_proj,
            "mlp.down_proj" => &mut layer.mlp.down_proj,
            _ => return None,
        })
    }

    /// Read-only version of [`Self::linear_mut`].
    pub fn linear(&self, path: &str) -> Option<&Linear<B>> {
        if path == "lm_head" {
            return self.lm_head.as_ref();
        }
        self.adapted(path).map(|a| &a.base)
    }

    /// Read-only [`Self::adapted_mut`].
    pub fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>> {
        let rest = path.strip_prefix("model.layers.")?;
        let (i, module) = rest.split_once('.')?;
        let layer = self.model.layers.get(i.parse::<usize>().ok()?)?;
        Some(match module {
            "self_attn.q_proj" => &layer.self_attn.q_proj,
            "self_attn.k_proj" => &layer.self_attn.k_proj,
            "self_attn.v_proj" => &layer.self_attn.v_proj,
            "self_attn.o_proj" => &layer.self_attn.o_proj,
            "mlp.gate_proj" => &layer.mlp.gate_proj,
            "mlp.up_proj" => &layer.mlp.up_proj,
            "mlp.down_proj" => &layer.mlp.down_proj,
            _ => return None,
        })
    }
}

/// Refuses a config that is not a Llama-family decoder.
pub fn require_llama(config: &ModelConfig, path: &std::path::Path) -> Result<()> {
    if config.family != Family::Llama {
        return Err(FormatError::new(
            path,
            FormatErrorKind::UnsupportedArchitecture {
                name: format!("{} (not a Llama-family decoder)", config.model_type),
            },
        ));
    }
    Ok(())
}

/// A causal LM's scores over the vocabulary for a batch.
pub enum TokenLogits<B: Kernels> {
    /// `[batch, seq, vocab]`.
    Dense(Tensor<B, 3>),
    /// A tied head not yet applied: `logits = hidden · embeddingᵀ`.
    Tied {
        hidden: Tensor<B, 3>,
        embedding: Tensor<B, 2>,
        packed: Option<PackedWeight>,
    },
}

impl<B: Kernels> TokenLogits<B> {
    /// `[batch, seq, vocab]`.
    pub fn dims(&self) -> [usize; 3] {
        match self {
            TokenLogits::Dense(l) => l.dims(),
            TokenLogits::Tied {
                hidden, embedding, ..
            } => {
                let [b, s, _] = hidden.dims();
                [b, s, embedding.dims()[0]]
            }
        }
    }

    pub fn device(&self) -> B::Device {
        match self {
            TokenLogits::Dense(l) => l.device(),
            TokenLogits::Tied { hidden, .. } => hidden.device(),
        }
    }

    /// The logits, computed if they were not.
    pub fn into_dense(self) -> Tensor<B, 3> {
        match self {
            TokenLogits::Dense(l) => l,
            TokenLogits::Tied {
                hidden,
                embedding,
                packed,
            } => tied_logits(hidden, embedding, packed.as_ref()),
        }
    }
}

impl<B: Kernels> From<Tensor<B, 3>> for TokenLogits<B> {
    fn from(logits: Tensor<B, 3>) -> Self {
        TokenLogits::Dense(logits)
    }
}

/// `hidden · embeddingᵀ` for a head tied to the `[vocab, hidden]` embedding
/// (`packed`: the embedding's packed form).
pub fn tied_logits<B: Kernels>(
    hidden: Tensor<B, 3>,
    embedding: Tensor<B, 2>,
    packed: Option<&PackedWeight>,
) -> Tensor<B, 3> {
    let [b, s, h] = hidden.dims();
    let vocab = embedding.dims()[0];
    // Eᵀ read through its strides. In 2-d: unsqueezing the transposed view
    // would copy the embedding.
    let flat = reshape(hidden, [b * s, h]);
    reshape(
        kernels::linear(flat, embedding.transpose(), None, packed),
        [b, s, vocab],
    )
}
