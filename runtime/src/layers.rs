//! Small building blocks shared by the model families, written to match
//! transformers' arithmetic (so parity holds to f32 rounding): HF-style
//! `weight`/`bias` names, RMSNorm, LayerNorm, rotary tables, attention masks.

use crate::kernels::Kernels;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use ft_formats::{FormatError, FormatErrorKind, RopeScaling};

use crate::weights::{Loader, Result};

/// A large negative number for masked attention scores. Finite (not -inf)
/// so that a fully masked row (a padding query) softmaxes to a uniform row
/// instead of NaN.
pub const MASKED: f32 = -1e9;

/// Llama's RMSNorm: `x / sqrt(mean(x²) + eps) · weight`.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Kernels> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Kernels> RmsNorm<B> {
    pub fn load(l: &mut Loader<B>, path: &str, d: usize, eps: f64) -> Result<Self> {
        Ok(RmsNorm {
            weight: Param::from_tensor(l.tensor(&format!("{path}.weight"), [d])?),
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        crate::kernels::rms_norm(x, self.weight.val(), self.eps)
    }
}

/// BERT's LayerNorm (biased variance, as PyTorch).
#[derive(Module, Debug)]
pub struct LayerNorm<B: Kernels> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Kernels> LayerNorm<B> {
    pub fn load(l: &mut Loader<B>, path: &str, d: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: Param::from_tensor(l.tensor(&format!("{path}.weight"), [d])?),
            bias: Param::from_tensor(l.tensor(&format!("{path}.bias"), [d])?),
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        crate::kernels::layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}

/// Rotary inverse frequencies, HF convention (`rotate_half`: the first and
/// second halves of each head are paired), including `rope_scaling` of type
/// "linear" and "llama3". Other scaling types are refused rather than
/// silently ignored.
#[derive(Debug, Clone)]
pub struct Rope {
    pub inv_freq: Vec<f64>,
    pub head_dim: usize,
}

impl Rope {
    pub fn new(
        head_dim: usize,
        theta: f64,
        scaling: Option<&RopeScaling>,
        config_path: &std::path::Path,
    ) -> Result<Self> {
        let mut inv_freq: Vec<f64> = (0..head_dim / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f64 / head_dim as f64))
            .collect();
        match scaling.map(|s| s.rope_type.as_str()) {
            None | Some("default") => {}
            Some("linear") => {
                let f = scaling.expect("some").factor;
                inv_freq.iter_mut().for_each(|v| *v /= f);
            }
            Some("llama3") => {
                let s = scaling.expect("some");
                let low = s.low_freq_factor.unwrap_or(1.0);
                let high = s.high_freq_factor.unwrap_or(4.0);
                let old_ctx = s.original_max_positions.unwrap_or(8192) as f64;
                let low_wavelen = old_ctx / low;
                let high_wavelen = old_ctx / high;
                for v in inv_freq.iter_mut() {
                    let wavelen = 2.0 * std::f64::consts::PI / *v;
                    if wavelen > low_wavelen {
                        *v /= s.factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        *v = (1.0 - smooth) * *v / s.factor + smooth * *v;
                    }
                }
            }
            Some(other) => {
                return Err(FormatError::new(
                    config_path,
                    FormatErrorKind::BadConfigField {
                        field: "rope_scaling".into(),
                        detail: format!(
                        "rope type `{other}` is not supported (supported: default, linear, llama3)"
                    ),
                    },
                ))
            }
        }
        Ok(Rope { inv_freq, head_dim })
    }

    /// `(cos, sin)` tables `[1, 1, len, head_dim]` for positions
    /// `start..start + len`.
    pub fn tables<B: Kernels>(
        &self,
        start: usize,
        len: usize,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let positions: Vec<usize> = (start..start + len).collect();
        self.tables_at(&positions, 1, device)
    }

    /// `(cos, sin)` tables `[rows, 1, len, head_dim]`, row `r` for the
    /// positions `positions[r·len..(r + 1)·len]` (left-padded batches, whose
    /// rows start their positions at different columns).
    pub fn tables_at<B: Kernels>(
        &self,
        positions: &[usize],
        rows: usize,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let d = self.head_dim;
        let len = positions.len() / rows.max(1);
        let mut cos = Vec::with_capacity(positions.len() * d);
        let mut sin = Vec::with_capacity(positions.len() * d);
        for &p in positions {
            // HF duplicates the frequencies: emb = cat(freqs, freqs).
            for _ in 0..2 {
                for f in &self.inv_freq {
                    let a = p as f64 * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        (
            Tensor::from_data(TensorData::new(cos, [rows, 1, len, d]), device),
            Tensor::from_data(TensorData::new(sin, [rows, 1, len, d]), device),
        )
    }
}

/// `x·cos + rotate_half(x)·sin` for `x: [batch, heads, seq, head_dim]`.
pub fn apply_rope<B: Kernels>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    crate::kernels::rope(x, cos, sin)
}

/// [`apply_rope`] from Burn's operations, as transformers writes it (the
/// reference of the kernels' tests).
pub fn apply_rope_composite<B: Backend>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// Additive mask `[batch, 1, virt + seq, past + virt + seq]` of a packed
/// batch. `segments` (`[batch · seq]`) numbers the examples of each row
/// (0 on padding). Columns are `past` keys (prefix tuning), then `virt`
/// prompt-tuning tokens, then the row's tokens. A token attends to every
/// virtual column and, causally, to its own example; virtual tokens attend
/// causally among themselves. Padding attends to earlier padding, so no
/// row is empty.
pub fn packed_attention_bias<B: Kernels>(
    segments: &[u32],
    batch: usize,
    virt: usize,
    past: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let seq = segments.len() / batch.max(1);
    let (q_len, k_len) = (virt + seq, past + virt + seq);
    let mut m = vec![MASKED; batch * q_len * k_len];
    for (r, seg) in segments.chunks(seq.max(1)).enumerate() {
        let rows = &mut m[r * q_len * k_len..(r + 1) * q_len * k_len];
        for (i, row) in rows.chunks_mut(k_len).enumerate() {
            // Everything before the row's own tokens is virtual.
            let shared = (past + i + 1).min(past + virt);
            row[..shared].fill(0.0);
            if let Some(a) = i.checked_sub(virt) {
                // Earlier tokens of the same example, and this one.
                let start = (0..=a).rev().take_while(|&j| seg[j] == seg[a]).last();
                for j in start.unwrap_or(a)..=a {
                    row[past + virt + j] = 0.0;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(m, [batch, 1, q_len, k_len]), device)
}

/// Additive mask `[batch, 1, q_len, past + q_len]`: 0 where attending is
/// allowed, [`MASKED`] elsewhere. `attention_mask` (`[batch, past + q_len]`,
/// 1 = token, 0 = padding) masks padded keys; `causal` masks the future.
pub fn attention_bias<B: Kernels>(
    batch: usize,
    q_len: usize,
    past: usize,
    attention_mask: Option<&Tensor<B, 2>>,
    causal: bool,
    device: &B::Device,
) -> Tensor<B, 4> {
    let k_len = past + q_len;
    let mut bias: Tensor<B, 4> = if causal {
        let mut m = vec![0.0f32; q_len * k_len];
        for i in 0..q_len {
            for j in (past + i + 1)..k_len {
                m[i * k_len + j] = MASKED;
            }
        }
        Tensor::from_data(TensorData::new(m, [1, 1, q_len, k_len]), device)
    } else {
        Tensor::zeros([1, 1, q_len, k_len], device)
    };
    bias = bias.expand([batch, 1, q_len, k_len]);
    if let Some(mask) = attention_mask {
        let pad = (mask.clone().neg() + 1.0) * MASKED;
        let pad: Tensor<B, 4> = pad
            .reshape([batch, 1, 1, k_len])
            .expand([batch, 1, q_len, k_len]);
        bias = bias + pad;
    }
    bias
}
