//! Prompt tuning (virtual token embeddings prepended to the input) and
//! prefix tuning (virtual keys and values prepended in every attention
//! layer), laid out as PEFT lays them out so that `prompt_embeddings`
//! moves between the two unchanged.

use crate::kernels::Kernels;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use super::rng;

/// `virtual_tokens` trainable input embeddings `[n, hidden]`, prepended to
/// the token embeddings of every sequence.
#[derive(Module, Debug)]
pub struct PromptTuning<B: Kernels> {
    pub embedding: Param<Tensor<B, 2>>,
}

impl<B: Kernels> PromptTuning<B> {
    pub fn virtual_tokens(&self) -> usize {
        self.embedding.dims()[0]
    }

    /// PEFT's random init: `nn.Embedding`'s normal(0, 1).
    pub fn random(n: usize, hidden: usize, seed: u64, device: &B::Device) -> Self {
        let key = rng::stream_key(&[rng::domain::PROMPT, seed]);
        let v = rng::normal_vec(key, n * hidden, 1.0);
        Self::from_values(v, n, hidden, device)
    }

    pub fn from_values(v: Vec<f32>, n: usize, hidden: usize, device: &B::Device) -> Self {
        PromptTuning {
            embedding: Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [n, hidden]),
                device,
            )),
        }
    }

    /// `[batch, n, hidden]` followed by `embeds` `[batch, s, hidden]`.
    pub fn prepend(&self, embeds: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, _, h] = embeds.dims();
        let n = self.virtual_tokens();
        let p = self.embedding.val().unsqueeze::<3>().expand([b, n, h]);
        Tensor::cat(vec![p, embeds], 1)
    }
}

/// PEFT's `prefix_projection`: `Linear(token_dim → hidden) → tanh →
/// Linear(hidden → layers·2·token_dim)`, applied to a `[n, token_dim]`
/// embedding during training.
#[derive(Module, Debug)]
pub struct PrefixProjection<B: Kernels> {
    pub dense_in: Linear<B>,
    pub dense_out: Linear<B>,
}

/// Trainable key/value prefixes for every attention layer. The values are
/// `[n, layers · 2 · kv_heads · head_dim]`, ordered as PEFT's `get_prompt`
/// reads them (`view(n, layers·2, heads, head_dim)`: layer `l`'s keys at
/// `2l`, its values at `2l + 1`). For grouped-query attention PEFT sizes the
/// prefix by the KV heads (#1901), and so does ft.
#[derive(Module, Debug)]
pub struct PrefixTuning<B: Kernels> {
    /// `[n, layers·2·token_dim]`, or `[n, token_dim]` with a projection.
    pub embedding: Param<Tensor<B, 2>>,
    pub projection: Option<PrefixProjection<B>>,
    pub num_layers: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

/// Per-layer `(keys, values)`, each `[batch, kv_heads, n, head_dim]`.
pub type PrefixKv<B> = Vec<(Tensor<B, 4>, Tensor<B, 4>)>;

impl<B: Kernels> PrefixTuning<B> {
    pub fn virtual_tokens(&self) -> usize {
        self.embedding.dims()[0]
    }

    pub fn token_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }

    /// A new prefix: normal(0, 1) embeddings (PEFT's `nn.Embedding`), and
    /// with a projection, PyTorch's default `Linear` init for its layers.
    pub fn new(
        n: usize,
        num_layers: usize,
        num_kv_heads: usize,
        head_dim: usize,
        projection_hidden: Option<usize>,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let token_dim = num_kv_heads * head_dim;
        let full = num_layers * 2 * token_dim;
        let width = if projection_hidden.is_some() {
            token_dim
        } else {
            full
        };
        let key = rng::stream_key(&[rng::domain::PREFIX, seed]);
        let embedding = Tensor::from_data(
            TensorData::new(rng::normal_vec(key, n * width, 1.0), [n, width]),
            device,
        );
        let projection = projection_hidden.map(|hidden| PrefixProjection {
            dense_in: torch_default_linear(token_dim, hidden, seed, 0, device),
            dense_out: torch_default_linear(hidden, full, seed, 1, device),
        });
        PrefixTuning {
            embedding: Param::from_tensor(embedding),
            projection,
            num_layers,
            num_kv_heads,
            head_dim,
        }
    }

    /// The prefix values `[n, layers·2·token_dim]` (through the projection
    /// when there is one) — what PEFT saves as `prompt_embeddings`.
    pub fn values(&self) -> Tensor<B, 2> {
        let e = self.embedding.val();
        match &self.projection {
            None => e,
            Some(p) => p.dense_out.forward(p.dense_in.forward(e).tanh()),
        }
    }

    /// Keys and values for every layer, broadcast over the batch.
    pub fn key_values(&self, batch: usize) -> PrefixKv<B> {
        let n = self.virtual_tokens();
        let (kvh, d) = (self.num_kv_heads, self.head_dim);
        let v = self.values().reshape([n, self.num_layers * 2, kvh, d]);
        (0..self.num_layers)
            .map(|l| {
                let pick = |i: usize| -> Tensor<B, 4> {
                    v.clone()
                        .narrow(1, i, 1)
                        .reshape([n, kvh, d])
                        .swap_dims(0, 1)
                        .unsqueeze::<4>()
                        .expand([batch, kvh, n, d])
                };
                (pick(2 * l), pick(2 * l + 1))
            })
            .collect()
    }
}

/// `nn.Linear`'s default init: weight and bias uniform in `±1/√in`.
fn torch_default_linear<B: Kernels>(
    d_in: usize,
    d_out: usize,
    seed: u64,
    which: u64,
    device: &B::Device,
) -> Linear<B> {
    let bound = 1.0 / (d_in as f32).sqrt();
    let key = rng::stream_key(&[rng::domain::PREFIX_MLP, seed, which]);
    let w = rng::uniform_vec(key, d_in * d_out, bound);
    let b = rng::uniform_vec(rng::stream_key(&[key, 1]), d_out, bound);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            device,
        ))),
    }
}
