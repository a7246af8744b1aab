//! The Llama MLP's gate, `silu(gate) · up`, as one element-wise pass
//! forward and one backward. Burn composes it from a sigmoid (itself several
//! operations), two products and keeps their full-size results for the
//! backward (five `[tokens, intermediate]` tensors per layer); here only
//! the two inputs are kept, shared with the graph.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::activation::silu;
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, prim, shape, tensor};
use super::fastmath::{exp, vectorised};
use super::{cast, is, AdNd, Nd};

/// Elements per parallel task.
const ELEMS_PER_TASK: usize = 16 * 1024;

/// `silu(gate) · up` (SwiGLU), `gate` and `up` of the same shape.
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    if gate.dims() == up.dims() {
        if is::<B, AdNd>() {
            if let Some(y) = ad_swiglu::<D>(cast(gate.clone()), cast(up.clone())) {
                return cast(y);
            }
        } else if is::<B, Nd>() {
            let (g, u): (Tensor<Nd, D>, Tensor<Nd, D>) = (cast(gate.clone()), cast(up.clone()));
            if let Some(y) = forward(&prim(&g), &prim(&u)) {
                return cast(Tensor::<Nd, D>::from_primitive(TensorPrimitive::Float(y)));
            }
        }
    }
    silu(gate) * up
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

fn forward(g: &NdArrayTensor, u: &NdArrayTensor) -> Option<NdArrayTensor> {
    let (gs, us) = (contiguous(g)?, contiguous(u)?);
    let mut out = vec![0.0f32; gs.len()];
    out.par_chunks_mut(ELEMS_PER_TASK)
        .zip(gs.par_chunks(ELEMS_PER_TASK))
        .zip(us.par_chunks(ELEMS_PER_TASK))
        .for_each(|((o, g), u)| {
            vectorised(|| {
                for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                    *o = g * sigmoid(g) * u;
                }
            })
        });
    Some(tensor(out, shape(g)))
}

/// With `s = σ(g)`: `dg = dy · u · s · (1 + g·(1 − s))`, `du = dy · g · s`.
#[derive(Debug)]
struct SwigluBackward;

impl Backward<Nd, 2> for SwigluBackward {
    /// The gate and up inputs.
    type State = (NdArrayTensor, NdArrayTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_g, node_u] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let (g, u) = ops.state;
        let dims = shape(&g);
        let (gs, us, dy) = (
            contiguous(&g).expect("f32 gate"),
            contiguous(&u).expect("f32 up"),
            contiguous(&grad).expect("f32 gradient"),
        );
        let len = gs.len();
        let mut dg = vec![0.0f32; if node_g.is_some() { len } else { 0 }];
        let mut du = vec![0.0f32; if node_u.is_some() { len } else { 0 }];
        let tasks = len.div_ceil(ELEMS_PER_TASK);
        // Each task writes its own range of dg and du (either may be empty).
        let (dg_addr, du_addr) = (dg.as_mut_ptr() as usize, du.as_mut_ptr() as usize);
        let (want_g, want_u) = (node_g.is_some(), node_u.is_some());
        (0..tasks).into_par_iter().for_each(|t| {
            let lo = t * ELEMS_PER_TASK;
            let hi = (lo + ELEMS_PER_TASK).min(len);
            vectorised(|| {
                for i in lo..hi {
                    let (g, u, dy) = (gs[i], us[i], dy[i]);
                    let s = sigmoid(g);
                    // SAFETY: index i < len lies in this task's range only.
                    unsafe {
                        if want_g {
                            *(dg_addr as *mut f32).add(i) = dy * u * s * (1.0 + g * (1.0 - s));
                        }
                        if want_u {
                            *(du_addr as *mut f32).add(i) = dy * g * s;
                        }
                    }
                }
            })
        });
        if let Some(node) = node_g {
            grads.register::<Nd>(node.id, tensor(dg, dims.clone()));
        }
        if let Some(node) = node_u {
            grads.register::<Nd>(node.id, tensor(du, dims));
        }
    }
}

fn ad_swiglu<const D: usize>(
    gate: Tensor<AdNd, D>,
    up: Tensor<AdNd, D>,
) -> Option<Tensor<AdNd, D>> {
    let (gp, up) = (gate.into_primitive().tensor(), up.into_primitive().tensor());
    let y = forward(&gp.primitive, &up.primitive)?;
    let out = match SwigluBackward
        .prepare::<NoCheckpointing>([gp.node.clone(), up.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((gp.primitive, up.primitive), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}
