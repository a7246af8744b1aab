//! The linear layer every model uses: a frozen base `Linear` plus, when a
//! PEFT method targets it, a LoRA/rsLoRA/DoRA adapter or an IA3 scaling.
//! The arithmetic follows PEFT (`peft/tuners/lora/layer.py`,
//! `variants.py`, `dora.py`, `tuners/ia3/layer.py`) so adapters move between
//! the two unchanged. Burn's `Linear` keeps its weight `[in, out]`; so do the
//! adapter matrices here (`a: [in, r]`, `b: [r, out]`), transposed to
//! PyTorch's `[out, in]` only at export.

use crate::kernels::Kernels;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use super::rng::{self, dropout_key, ForwardCtx};
use crate::kernels::{linear, PackedWeight};

/// `y = W x + b + s · B(A(dropout(x)))`, or DoRA's re-normalised form.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Kernels> {
    /// `[in, r]` (PEFT's `lora_A.weight` transposed).
    pub a: Param<Tensor<B, 2>>,
    /// `[r, out]` (PEFT's `lora_B.weight` transposed).
    pub b: Param<Tensor<B, 2>>,
    /// DoRA's magnitude `[out]` (PEFT's `lora_magnitude_vector`).
    pub magnitude: Option<Param<Tensor<B, 1>>>,
    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    pub scaling: f64,
    pub dropout: f64,
    /// Identifies the module's dropout stream (its index in the method's
    /// module list).
    pub stream: u64,
}

/// IA3's learned scaling: of the output (`[out]`) for attention targets, of
/// the input (`[in]`) for feed-forward ones.
#[derive(Module, Debug)]
pub struct Ia3Scale<B: Kernels> {
    pub scale: Param<Tensor<B, 1>>,
    pub feedforward: bool,
}

#[derive(Module, Debug)]
pub struct AdaptedLinear<B: Kernels> {
    /// The pretrained layer (frozen under every method but full fine-tuning).
    pub base: Linear<B>,
    pub lora: Option<LoraAdapter<B>>,
    pub ia3: Option<Ia3Scale<B>>,
    /// The frozen base weight packed for bf16 products
    /// (`precision = bf16`), used by every product with it.
    #[module(skip)]
    pub packed: Option<PackedWeight>,
}

impl<B: Kernels> From<Linear<B>> for AdaptedLinear<B> {
    fn from(base: Linear<B>) -> Self {
        AdaptedLinear {
            base,
            lora: None,
            ia3: None,
            packed: None,
        }
    }
}

/// The LoRA scaling factor as PEFT computes it.
pub fn lora_scaling(rank: usize, alpha: f64, rslora: bool) -> f64 {
    if rslora {
        alpha / (rank as f64).sqrt()
    } else {
        alpha / rank as f64
    }
}

impl<B: Kernels> AdaptedLinear<B> {
    pub fn in_features(&self) -> usize {
        self.base.weight.dims()[0]
    }

    pub fn out_features(&self) -> usize {
        self.base.weight.dims()[1]
    }

    /// Adds a LoRA adapter with PEFT's initialisation: `A` Kaiming-uniform
    /// with `a = √5` (bound `1/√in`), `B` zeros; DoRA's magnitude starts at
    /// the row norms of the base weight, so the adapted layer starts equal
    /// to the base layer either way.
    #[allow(clippy::too_many_arguments)]
    pub fn add_lora(
        &mut self,
        rank: usize,
        alpha: f64,
        rslora: bool,
        dora: bool,
        dropout: f64,
        stream: u64,
        seed: u64,
    ) {
        let (d_in, d_out) = (self.in_features(), self.out_features());
        let device = self.base.weight.device();
        let key = rng::stream_key(&[rng::domain::LORA_A, seed, stream]);
        let a = rng::uniform_vec(key, d_in * rank, 1.0 / (d_in as f32).sqrt());
        // PyTorch fills lora_A.weight `[r, in]` row-major; keep that order so
        // the same seed means the same matrix in either orientation.
        let a = transpose_vec(&a, rank, d_in);
        let a = Tensor::<B, 2>::from_data(TensorData::new(a, [d_in, rank]), &device);
        let b = Tensor::<B, 2>::zeros([rank, d_out], &device);
        let mut adapter = LoraAdapter {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            magnitude: None,
            scaling: lora_scaling(rank, alpha, rslora),
            dropout,
            stream,
        };
        if dora {
            let norm = self.dora_weight_norm(&adapter);
            adapter.magnitude = Some(Param::from_tensor(norm));
        }
        self.lora = Some(adapter);
    }

    /// Adds IA3 scaling initialised to ones (identity).
    pub fn add_ia3(&mut self, feedforward: bool) {
        let device = self.base.weight.device();
        let n = if feedforward {
            self.in_features()
        } else {
            self.out_features()
        };
        self.ia3 = Some(Ia3Scale {
            scale: Param::from_tensor(Tensor::ones([n], &device)),
            feedforward,
        });
    }

    /// `‖W + s·ΔW‖` per output unit (PyTorch's row norm; a column norm of
    /// Burn's `[in, out]` weight), detached as PEFT does: the norm is
    /// treated as a constant in the backward pass.
    pub fn dora_weight_norm(&self, lora: &LoraAdapter<B>) -> Tensor<B, 1> {
        let w = self.base.weight.val().detach();
        let delta = lora.a.val().detach().matmul(lora.b.val().detach());
        let full = w + delta * lora.scaling;
        full.powi_scalar(2)
            .sum_dim(0)
            .sqrt()
            .squeeze_dim::<1>(0)
            .detach()
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>, ctx: &ForwardCtx) -> Tensor<B, D> {
        let x = match &self.ia3 {
            Some(ia3) if ia3.feedforward => x * ia3.scale.val().unsqueeze(),
            _ => x,
        };
        let bias = self.base.bias.as_ref().map(|b| b.val());
        let packed = self.packed.as_ref();
        let mut y = linear(x.clone(), self.base.weight.val(), bias, packed);
        if let Some(lora) = &self.lora {
            let dropped = ctx.train && lora.dropout > 0.0;
            let xd = if dropped {
                let key = dropout_key(ctx, lora.stream);
                crate::kernels::dropout(x.clone(), key, lora.dropout, ctx.kept)
            } else {
                x.clone()
            };
            let down = linear(xd.clone(), lora.a.val(), None, None);
            match &lora.magnitude {
                // s scales the r × out matrix B rather than the [tokens,
                // out] product: a full-size pass less, forward and back.
                None => {
                    let update = linear(down, lora.b.val() * lora.scaling, None, None);
                    y = crate::kernels::add(y, update)
                }
                Some(m) => {
                    let update = linear(down, lora.b.val(), None, None);
                    // PEFT's DoRA: (m/‖W+sΔW‖ − 1)·W·x' + m/‖W+sΔW‖ · s·B·A·x',
                    // added to the base output; without dropout W·x' is the
                    // base output minus its bias.
                    let scale: Tensor<B, D> = (m.val() / self.dora_weight_norm(lora)).unsqueeze();
                    let base_x = if dropped {
                        linear(xd, self.base.weight.val(), None, packed)
                    } else {
                        match &self.base.bias {
                            Some(bias) => y.clone() - bias.val().unsqueeze(),
                            None => y.clone(),
                        }
                    };
                    y = y + (scale.clone() - 1.0) * base_x + scale * update * lora.scaling;
                }
            }
        }
        match &self.ia3 {
            Some(ia3) if !ia3.feedforward => y * ia3.scale.val().unsqueeze(),
            _ => y,
        }
    }

    /// The merged weight `[in, out]` and bias: `W + s·ΔW`, DoRA's
    /// `m/‖W+sΔW‖ · (W + sΔW)`, or IA3 folded into rows (output scaling,
    /// bias scaled too) or columns (input scaling).
    pub fn merged(&self) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
        let mut w = self.base.weight.val();
        let mut bias = self.base.bias.as_ref().map(|b| b.val());
        if let Some(lora) = &self.lora {
            let full = w.clone() + lora.a.val().matmul(lora.b.val()) * lora.scaling;
            w = match &lora.magnitude {
                None => full,
                Some(m) => {
                    let scale = m.val() / self.dora_weight_norm(lora);
                    full * scale.unsqueeze::<2>()
                }
            };
        }
        if let Some(ia3) = &self.ia3 {
            if ia3.feedforward {
                w = w * ia3.scale.val().unsqueeze_dim::<2>(1);
            } else {
                w = w * ia3.scale.val().unsqueeze::<2>();
                bias = bias.map(|b| b * ia3.scale.val());
            }
        }
        (w, bias)
    }
}

/// Row-major `[rows, cols]` → row-major `[cols, rows]`.
pub fn transpose_vec(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}
