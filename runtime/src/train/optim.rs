//! AdamW and SGD over the trainable parameters of a Burn module, with
//! global-norm gradient clipping as PyTorch's `clip_grad_norm_` does it.
//!
//! ft keeps its own optimizer rather than Burn's for three reasons: the
//! state is keyed by a parameter's position in the module tree (stable
//! across processes, unlike Burn's random `ParamId`s), so a checkpoint
//! restores it exactly; clipping needs the norm over *all* gradients
//! before any parameter moves (Burn's built-in clipping is per tensor); and
//! the update follows `torch.optim.AdamW`/`SGD` term for term, which the
//! parity with PyTorch + PEFT relies on.

use crate::kernels::{AutodiffKernels, Kernels};
use std::collections::BTreeMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use ft_plan::Optimizer;

/// One parameter's optimizer state, as flat f32 (`m`, `v` for AdamW; the
/// momentum buffer for SGD).
#[derive(Debug, Clone, PartialEq)]
pub struct SlotState {
    pub shape: Vec<usize>,
    pub buffers: Vec<Vec<f32>>,
}

/// The optimizer: its settings and per-parameter state, keyed by the
/// parameter's index in module-visit order.
pub struct Optim<B: Kernels> {
    pub config: Optimizer,
    /// Completed updates (AdamW's bias correction uses it).
    pub updates: u64,
    state: BTreeMap<usize, Vec<Tensor<B, 1>>>,
}

impl<B: Kernels> Optim<B> {
    pub fn new(config: Optimizer) -> Self {
        Optim {
            config,
            updates: 0,
            state: BTreeMap::new(),
        }
    }

    /// The state as plain data (for a checkpoint).
    pub fn export(&self) -> BTreeMap<usize, Vec<Vec<f32>>> {
        self.state
            .iter()
            .map(|(k, bufs)| {
                (
                    *k,
                    bufs.iter()
                        .map(|t| t.to_data().convert::<f32>().to_vec().expect("f32"))
                        .collect(),
                )
            })
            .collect()
    }

    /// Restores state written by [`Self::export`].
    pub fn import(
        &mut self,
        updates: u64,
        data: BTreeMap<usize, Vec<Vec<f32>>>,
        device: &B::Device,
    ) {
        self.updates = updates;
        self.state = data
            .into_iter()
            .map(|(k, bufs)| {
                (
                    k,
                    bufs.into_iter()
                        .map(|v| {
                            let n = v.len();
                            Tensor::from_data(TensorData::new(v, [n]), device)
                        })
                        .collect(),
                )
            })
            .collect();
    }
}

/// Sums the squares of every gradient (f64 accumulation on the host is
/// cheap next to the step and keeps the norm exact).
struct NormVisitor<'a, B: AutodiffKernels> {
    grads: &'a GradientsParams,
    sum_sq: f64,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffKernels> ModuleVisitor<B> for NormVisitor<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s: f32 = g.powi_scalar(2).sum().into_scalar().elem();
            self.sum_sq += s as f64;
        }
    }
}

use burn::tensor::ElementConversion;

/// The global L2 norm of all gradients.
pub fn grad_norm<B: AutodiffKernels, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut v = NormVisitor::<B> {
        grads,
        sum_sq: 0.0,
        _b: std::marker::PhantomData,
    };
    model.visit(&mut v);
    v.sum_sq.sqrt()
}

struct StepMapper<'a, B: AutodiffKernels> {
    opt: &'a mut Optim<B::InnerBackend>,
    grads: &'a mut GradientsParams,
    lr: f64,
    /// Multiplies every gradient (clipping); 1 when not clipping.
    grad_scale: f64,
    index: usize,
}

impl<B: AutodiffKernels> ModuleMapper<B> for StepMapper<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let index = self.index;
        self.index += 1;
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.dims();
        let n: usize = shape.iter().product();
        let w: Tensor<B::InnerBackend, 1> = tensor.inner().reshape([n]);
        let mut g: Tensor<B::InnerBackend, 1> = grad.reshape([n]);
        if self.grad_scale != 1.0 {
            g = g.mul_scalar(self.grad_scale);
        }
        let device = w.device();
        let lr = self.lr;
        let t = self.opt.updates + 1;
        let new_w = match self.opt.config {
            Optimizer::AdamW {
                weight_decay,
                beta1,
                beta2,
                eps,
                ..
            } => {
                let bufs = self.opt.state.entry(index).or_insert_with(|| {
                    vec![Tensor::zeros([n], &device), Tensor::zeros([n], &device)]
                });
                // torch.optim.AdamW: decay first, then the Adam step.
                let w = if weight_decay != 0.0 {
                    w.mul_scalar(1.0 - lr * weight_decay)
                } else {
                    w
                };
                let m = bufs[0].clone().mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1);
                let v =
                    bufs[1].clone().mul_scalar(beta2) + g.powi_scalar(2).mul_scalar(1.0 - beta2);
                let bc1 = 1.0 - beta1.powi(t as i32);
                let bc2 = 1.0 - beta2.powi(t as i32);
                let denom = v.clone().div_scalar(bc2).sqrt().add_scalar(eps);
                let w = w - m.clone().div(denom).mul_scalar(lr / bc1);
                bufs[0] = m;
                bufs[1] = v;
                w
            }
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                let mut d = if weight_decay != 0.0 {
                    g + w.clone().mul_scalar(weight_decay)
                } else {
                    g
                };
                if momentum != 0.0 {
                    let first = !self.opt.state.contains_key(&index);
                    let bufs = self
                        .opt
                        .state
                        .entry(index)
                        .or_insert_with(|| vec![Tensor::zeros([n], &device)]);
                    // PyTorch: the first step's buffer is the gradient itself.
                    let buf = if first {
                        d.clone()
                    } else {
                        bufs[0].clone().mul_scalar(momentum) + d.clone()
                    };
                    bufs[0] = buf.clone();
                    d = if nesterov {
                        d + buf.mul_scalar(momentum)
                    } else {
                        buf
                    };
                }
                w - d.mul_scalar(lr)
            }
        };
        let mut out = Tensor::<B, D>::from_inner(new_w.reshape(shape));
        out = out.require_grad();
        Param::from_mapped_value(id, out, mapper)
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    pub clipped: bool,
}

/// Clips (global norm, when `clip` is set) and applies one update.
pub fn step<B: AutodiffKernels, M: AutodiffModule<B>>(
    model: M,
    opt: &mut Optim<B::InnerBackend>,
    mut grads: GradientsParams,
    lr: f64,
    clip: Option<f64>,
) -> (M, StepInfo) {
    let norm = grad_norm(&model, &grads);
    if !norm.is_finite() {
        // Nothing moves: the caller stops the run at this step, and the
        // last checkpoint stays the last good state.
        return (
            model,
            StepInfo {
                grad_norm: norm,
                clipped: false,
            },
        );
    }
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6),
    // only when that is below one.
    let scale = match clip {
        Some(max) => (max / (norm + 1e-6)).min(1.0),
        None => 1.0,
    };
    let mut mapper = StepMapper::<B> {
        opt,
        grads: &mut grads,
        lr,
        grad_scale: scale,
        index: 0,
    };
    let model = model.map(&mut mapper);
    opt.updates += 1;
    (
        model,
        StepInfo {
            grad_norm: norm,
            clipped: scale < 1.0,
        },
    )
}
