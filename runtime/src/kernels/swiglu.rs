//! The Llama MLP's gate, `silu(gate) · up`, as one element-wise pass
//! forward and one backward. Burn composes it from a sigmoid (itself several
//! operations), two products and keeps their full-size results for the
//! backward (five `[tokens, intermediate]` tensors per layer); here only
//! the two inputs are kept, shared with the graph.

use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, shape, tensor};
use super::fastmath::{exp, simd_fn};

/// Elements per parallel task.
const ELEMS_PER_TASK: usize = 16 * 1024;

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

/// `silu(gate) · up`, `gate` and `up` of the same shape.
pub(super) fn forward(g: &NdArrayTensor, u: &NdArrayTensor) -> Option<NdArrayTensor> {
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

/// `(dgate, dup)`.
pub(super) fn backward(
    g: &NdArrayTensor,
    u: &NdArrayTensor,
    grad: &NdArrayTensor,
    need: [bool; 2],
) -> [Option<NdArrayTensor>; 2] {
    let dims = shape(g);
    let (gs, us, dy) = (
        contiguous(g).expect("f32 gate"),
        contiguous(u).expect("f32 up"),
        contiguous(grad).expect("f32 gradient"),
    );
    let dg = need[0].then(|| {
        let mut dg = vec![0.0f32; gs.len()];
        dg.par_chunks_mut(ELEMS_PER_TASK)
            .zip(gs.par_chunks(ELEMS_PER_TASK))
            .zip(us.par_chunks(ELEMS_PER_TASK))
            .zip(dy.par_chunks(ELEMS_PER_TASK))
            .for_each(|(((o, g), u), dy)| gate_grad_chunk(o, g, u, dy));
        tensor(dg, dims.clone())
    });
    let du = need[1].then(|| {
        let mut du = vec![0.0f32; gs.len()];
        du.par_chunks_mut(ELEMS_PER_TASK)
            .zip(gs.par_chunks(ELEMS_PER_TASK))
            .zip(dy.par_chunks(ELEMS_PER_TASK))
            .for_each(|((o, g), dy)| up_grad_chunk(o, g, dy));
        tensor(du, dims)
    });
    [dg, du]
}
