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
use super::fastmath::{exp, simd_fn};
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

simd_fn! {
    fn swiglu_chunk(o: &mut [f32], g: &[f32], u: &[f32]) {
        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
            *o = g * sigmoid(g) * u;
        }
    }
}

fn forward(g: &NdArrayTensor, u: &NdArrayTensor) -> Option<NdArrayTensor> {
    let (gs, us) = (contiguous(g)?, contiguous(u)?);
    let mut out = vec![0.0f32; gs.len()];
    out.par_chunks_mut(ELEMS_PER_TASK)
        .zip(gs.par_chunks(ELEMS_PER_TASK))
        .zip(us.par_chunks(ELEMS_PER_TASK))
        .for_each(|((o, g), u)| swiglu_chunk(o, g, u));
    Some(tensor(out, shape(g)))
}

simd_fn! {
    /// With `s = σ(g)`: `dg = dy · u · s · (1 + g·(1 − s))`.
    fn gate_grad_chunk(dg: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
        for (((o, &g), &u), &dy) in dg.iter_mut().zip(g).zip(u).zip(dy) {
            let s = sigmoid(g);
            *o = dy * u * s * (1.0 + g * (1.0 - s));
        }
    }
}

simd_fn! {
    /// `du = dy · g · σ(g)`.
    fn up_grad_chunk(du: &mut [f32], g: &[f32], dy: &[f32]) {
        for ((o, &g), &dy) in du.iter_mut().zip(g).zip(dy) {
            *o = dy * g * sigmoid(g);
        }
    }
}

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
        if let Some(node) = node_g {
            let mut dg = vec![0.0f32; gs.len()];
            dg.par_chunks_mut(ELEMS_PER_TASK)
                .zip(gs.par_chunks(ELEMS_PER_TASK))
                .zip(us.par_chunks(ELEMS_PER_TASK))
                .zip(dy.par_chunks(ELEMS_PER_TASK))
                .for_each(|(((o, g), u), dy)| gate_grad_chunk(o, g, u, dy));
            grads.register::<Nd>(node.id, tensor(dg, dims.clone()));
        }
        if let Some(node) = node_u {
            let mut du = vec![0.0f32; gs.len()];
            du.par_chunks_mut(ELEMS_PER_TASK)
                .zip(gs.par_chunks(ELEMS_PER_TASK))
                .zip(dy.par_chunks(ELEMS_PER_TASK))
                .for_each(|((o, g), dy)| up_grad_chunk(o, g, dy));
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
