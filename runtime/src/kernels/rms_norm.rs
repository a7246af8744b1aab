//! Llama's RMSNorm, `x / sqrt(mean(x²) + eps) · weight`, as one pass per
//! row forward and one backward. Burn composes it from seven operations
//! (square, mean, add, sqrt, reciprocal, two products), and its autodiff
//! keeps several of their full-size results for the backward; here only the
//! input is kept.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, prim, shape, tensor};
use super::{cast, is, AdNd, Nd};

/// Rows per parallel task; fixed (not derived from the thread count) so
/// that the weight-gradient partial sums, added in order, are the same on
/// every machine.
const ROWS_PER_TASK: usize = 32;

/// `x / sqrt(mean(x²) + eps) · weight` over the last dimension, or `None`
/// where the fast path does not apply (other backends).
pub fn rms_norm<B: Backend, const D: usize>(
    x: &Tensor<B, D>,
    weight: &Tensor<B, 1>,
    eps: f64,
) -> Option<Tensor<B, D>> {
    if is::<B, AdNd>() {
        let (x, w): (Tensor<AdNd, D>, Tensor<AdNd, 1>) = (cast(x.clone()), cast(weight.clone()));
        return ad_rms_norm(x, w, eps as f32).map(cast);
    }
    if is::<B, Nd>() {
        let (x, w): (Tensor<Nd, D>, Tensor<Nd, 1>) = (cast(x.clone()), cast(weight.clone()));
        let y = forward(&prim(&x), &prim(&w), eps as f32)?;
        return Some(cast(Tensor::<Nd, D>::from_primitive(
            TensorPrimitive::Float(y),
        )));
    }
    None
}

/// `1 / sqrt(mean(x²) + eps)` of one row, in the composite's order
/// (square, mean, add eps, sqrt, reciprocal).
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

fn forward(x: &NdArrayTensor, w: &NdArrayTensor, eps: f32) -> Option<NdArrayTensor> {
    let dims = shape(x);
    let n = *dims.last()?;
    let (xs, ws) = (contiguous(x)?, contiguous(w)?);
    if n == 0 || ws.len() != n {
        return None;
    }
    let mut out = vec![0.0f32; xs.len()];
    out.par_chunks_mut(n)
        .zip(xs.par_chunks(n))
        .for_each(|(o, row)| {
            let inv = inv_rms(row, eps);
            for ((o, x), w) in o.iter_mut().zip(row).zip(ws.iter()) {
                *o = x * inv * w;
            }
        });
    Some(tensor(out, dims))
}

/// `dx = inv · (dy·w − x̂ · mean(dy·w·x̂))` with `x̂ = x · inv`, and
/// `dw = Σ_rows dy · x̂`.
#[derive(Debug)]
struct RmsNormBackward;

/// The input (shared with the graph, not copied), the weight, eps.
type State = (NdArrayTensor, NdArrayTensor, f32);

impl Backward<Nd, 2> for RmsNormBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let (x, w, eps) = ops.state;
        let dims = shape(&x);
        let n = *dims.last().expect("rank ≥ 1");
        let xs = contiguous(&x).expect("f32 input");
        let dy = contiguous(&grad).expect("f32 gradient");
        let ws = contiguous(&w).expect("f32 weight");
        let need_x = node_x.is_some();
        let mut dx = if need_x {
            vec![0.0f32; xs.len()]
        } else {
            Vec::new()
        };
        let chunk = n * ROWS_PER_TASK;
        let tasks = xs.len().div_ceil(chunk);
        // Per task: its partial Σ dy·x̂.
        let mut partial = vec![0.0f32; tasks * n];
        let body = |t: usize, mut dx: Option<&mut [f32]>, pw: &mut [f32]| {
            let lo = t * chunk;
            let hi = (lo + chunk).min(xs.len());
            for (r, start) in (lo..hi).step_by(n).enumerate() {
                let row = &xs[start..start + n];
                let g = &dy[start..start + n];
                let inv = inv_rms(row, eps);
                let mut sum_gwx = 0.0f32;
                for (((x, g), w), pw) in row.iter().zip(g).zip(ws.iter()).zip(pw.iter_mut()) {
                    let xhat = x * inv;
                    *pw += g * xhat;
                    sum_gwx += g * w * xhat;
                }
                if let Some(dx) = dx.as_deref_mut() {
                    let mean = sum_gwx / n as f32;
                    let o = &mut dx[r * n..(r + 1) * n];
                    for (((o, x), g), w) in o.iter_mut().zip(row).zip(g).zip(ws.iter()) {
                        *o = inv * (g * w - x * inv * mean);
                    }
                }
            }
        };
        if need_x {
            dx.par_chunks_mut(chunk)
                .zip(partial.par_chunks_mut(n))
                .enumerate()
                .for_each(|(t, (d, p))| body(t, Some(d), p));
        } else {
            partial
                .par_chunks_mut(n)
                .enumerate()
                .for_each(|(t, p)| body(t, None, p));
        }
        if let Some(node) = node_x {
            grads.register::<Nd>(node.id, tensor(dx, dims.clone()));
        }
        if let Some(node) = node_w {
            let mut dw = vec![0.0f32; n];
            for p in partial.chunks(n) {
                dw.iter_mut().zip(p).for_each(|(d, v)| *d += v);
            }
            grads.register::<Nd>(node.id, tensor(dw, vec![n]));
        }
    }
}

fn ad_rms_norm<const D: usize>(
    x: Tensor<AdNd, D>,
    w: Tensor<AdNd, 1>,
    eps: f32,
) -> Option<Tensor<AdNd, D>> {
    let (xp, wp) = (x.into_primitive().tensor(), w.into_primitive().tensor());
    let y = forward(&xp.primitive, &wp.primitive, eps)?;
    let out = match RmsNormBackward
        .prepare::<NoCheckpointing>([xp.node.clone(), wp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((xp.primitive, wp.primitive, eps), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}
