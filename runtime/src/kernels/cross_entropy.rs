//! The causal-LM loss's `log_softmax(logits)[target]` in one pass per
//! position, over logits `[batch, seq, vocab]` read in place. Burn's
//! composite (a slice, `log_softmax`, a gather) writes and keeps several
//! full `[batch, seq, vocab]` tensors — with a 49152-word vocabulary,
//! 100 MB each at 512 positions — and its backward allocates as many again.
//! Here the forward keeps one log-sum-exp per position, and the backward
//! writes `dlp · (onehot − softmax)` straight into the logits' gradient, a
//! single buffer, skipping positions without a target.

use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, shape, tensor};
use super::fastmath::{exp, simd_fn};

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

/// `log_softmax(logits[b, t, :])[targets[b·n + t]]` for the first `n`
/// positions of each row, and each position's log-sum-exp (0 where there
/// is no target), both `[batch, n]`; targets inside the vocabulary.
pub(super) fn forward(
    logits: &NdArrayTensor,
    targets: &[Option<usize>],
    n: usize,
) -> Option<[NdArrayTensor; 2]> {
    let dims = shape(logits);
    let (b, s, v) = (dims[0], dims[1], dims[2]);
    if n > s || targets.len() != b * n {
        return None;
    }
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
    Some([tensor(lp, vec![b, n]), tensor(lse, vec![b, n])])
}

/// The logits' gradient: `dlp · (onehot(target) − softmax)` at each
/// position with a target, 0 elsewhere.
pub(super) fn backward(
    logits: &NdArrayTensor,
    lse: &NdArrayTensor,
    targets: &[Option<usize>],
    n: usize,
    grad: &NdArrayTensor,
) -> NdArrayTensor {
    let dims = shape(logits);
    let (s, v) = (dims[1], dims[2]);
    let xs = contiguous(logits).expect("f32 logits");
    let lse = contiguous(lse).expect("f32 log-sum-exps");
    let dlp = contiguous(grad).expect("f32 gradient");
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
    tensor(dx, dims)
}
