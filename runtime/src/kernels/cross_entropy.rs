//! The causal-LM loss's `log_softmax(logits)[target]` in one pass per
//! position, over logits `[batch, seq, vocab]` read in place. Burn's
//! composite (a slice, `log_softmax`, a gather) writes and keeps several
//! full `[batch, seq, vocab]` tensors — with a 49152-word vocabulary,
//! 100 MB each at 512 positions — and its backward allocates as many again.
//! Here the forward keeps one log-sum-exp per position, and the backward
//! writes `dlp · (onehot − softmax)` straight into the logits' gradient, a
//! single buffer, skipping positions without a target.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, prim, shape, tensor};
use super::fastmath::{exp, simd_fn};
use super::{cast, is, AdNd, Nd};

/// `log_softmax(logits[b, t, :])[targets[b·n + t]]` for the first `n`
/// positions of each row: `[batch, n]`. A position whose target is `None`
/// gets 0 and no gradient. `None` where the fast path does not apply
/// (other backends, a target outside the vocabulary).
pub fn target_log_softmax<B: Backend>(
    logits: &Tensor<B, 3>,
    targets: &[Option<usize>],
    n: usize,
) -> Option<Tensor<B, 2>> {
    let [b, s, v] = logits.dims();
    if n > s || targets.len() != b * n || targets.iter().flatten().any(|&t| t >= v) {
        return None;
    }
    if is::<B, AdNd>() {
        let x: Tensor<AdNd, 3> = cast(logits.clone());
        return ad_target_log_softmax(x, targets, n).map(cast);
    }
    if is::<B, Nd>() {
        let x: Tensor<Nd, 3> = cast(logits.clone());
        let (lp, _) = forward(&prim(&x), targets, n)?;
        return Some(cast(Tensor::<Nd, 2>::from_primitive(
            TensorPrimitive::Float(lp),
        )));
    }
    None
}

simd_fn! {
    /// `log Σ_j exp(x_j)`, shifted by the maximum.
    fn log_sum_exp(row: &[f32]) -> f32 {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // Blocks of 8 exps summed as they come: no buffer for the row.
        let mut acc = [0.0f32; 8];
        let chunks = row.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for (a, x) in acc.iter_mut().zip(c) {
                *a += exp(x - max);
            }
        }
        let sum = acc.iter().sum::<f32>() + rest.iter().map(|x| exp(x - max)).sum::<f32>();
        max + sum.ln()
    }
}

simd_fn! {
    /// One row of the gradient: `−g · softmax(x)` (the target's `+g` is
    /// added by the caller).
    fn softmax_grad_row(out: &mut [f32], x: &[f32], g: f32, lse: f32) {
        for (o, x) in out.iter_mut().zip(x) {
            *o = -g * exp(x - lse);
        }
    }
}

/// The log-probabilities `[batch, n]` and each position's log-sum-exp
/// (0 where there is no target).
fn forward(
    logits: &NdArrayTensor,
    targets: &[Option<usize>],
    n: usize,
) -> Option<(NdArrayTensor, Vec<f32>)> {
    let dims = shape(logits);
    let (b, s, v) = (dims[0], dims[1], dims[2]);
    let xs = contiguous(logits)?;
    let mut lse = vec![0.0f32; b * n];
    lse.par_iter_mut().enumerate().for_each(|(r, l)| {
        if targets[r].is_some() {
            let (bi, t) = (r / n, r % n);
            let start = (bi * s + t) * v;
            *l = log_sum_exp(&xs[start..start + v]);
        }
    });
    let lp: Vec<f32> = (0..b * n)
        .map(|r| match targets[r] {
            Some(target) => xs[((r / n) * s + r % n) * v + target] - lse[r],
            None => 0.0,
        })
        .collect();
    Some((tensor(lp, vec![b, n]), lse))
}

#[derive(Debug)]
struct TargetLogSoftmaxBackward;

/// The logits (shared with the graph, not copied), the log-sum-exps, the
/// targets and `n`.
type State = (NdArrayTensor, Vec<f32>, Vec<Option<usize>>, usize);

impl Backward<Nd, 1> for TargetLogSoftmaxBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let Some(node) = node else { return };
        let (logits, lse, targets, n) = ops.state;
        let dims = shape(&logits);
        let (s, v) = (dims[1], dims[2]);
        let xs = contiguous(&logits).expect("f32 logits");
        let dlp = contiguous(&grad).expect("f32 gradient");
        // Zeroed pages: rows without a target are never touched.
        let mut dx = vec![0.0f32; xs.len()];
        dx.par_chunks_mut(v).enumerate().for_each(|(row, out)| {
            let (bi, t) = (row / s, row % s);
            if t >= n {
                return;
            }
            let r = bi * n + t;
            let Some(target) = targets[r] else { return };
            let (g, l) = (dlp[r], lse[r]);
            let x = &xs[row * v..(row + 1) * v];
            softmax_grad_row(out, x, g, l);
            out[target] += g;
        });
        grads.register::<Nd>(node.id, tensor(dx, dims));
    }
}

fn ad_target_log_softmax(
    logits: Tensor<AdNd, 3>,
    targets: &[Option<usize>],
    n: usize,
) -> Option<Tensor<AdNd, 2>> {
    let xp = logits.into_primitive().tensor();
    let (lp, lse) = forward(&xp.primitive, targets, n)?;
    let out = match TargetLogSoftmaxBackward
        .prepare::<NoCheckpointing>([xp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((xp.primitive, lse, targets.to_vec(), n), lp),
        OpsKind::UnTracked(prep) => prep.finish(lp),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}
