//! Llama's RMSNorm, `x / sqrt(mean(x²) + eps) · weight`, as one pass per
//! row forward and one backward. Burn composes it from seven operations
//! (square, mean, add, sqrt, reciprocal, two products), and its autodiff
//! keeps several of their full-size results for the backward; here only the
//! input is kept.

use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, row_tasks, shape, tensor};

/// Rows per parallel task; fixed (not derived from the thread count) so
/// that the weight-gradient partial sums, added in order, are the same on
/// every machine.
const ROWS_PER_TASK: usize = 32;

/// `1 / sqrt(mean(x²) + eps)` of one row, in the composite's order
/// (square, mean, add eps, sqrt, reciprocal).
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

/// `x / sqrt(mean(x²) + eps) · weight` over the last dimension; `None`
/// for a weight of another length.
pub(super) fn forward(x: &NdArrayTensor, w: &NdArrayTensor, eps: f32) -> Option<NdArrayTensor> {
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
pub(super) fn backward(
    x: &NdArrayTensor,
    w: &NdArrayTensor,
    grad: &NdArrayTensor,
    eps: f32,
    need: [bool; 2],
) -> [Option<NdArrayTensor>; 2] {
    let dims = shape(x);
    let n = *dims.last().expect("rank ≥ 1");
    let xs = contiguous(x).expect("f32 input");
    let dy = contiguous(grad).expect("f32 gradient");
    let ws = contiguous(w).expect("f32 weight");
    let (dx, dw) = row_tasks(
        xs.len(),
        n,
        ROWS_PER_TASK,
        1,
        need[0],
        |rows, mut dx, pw| {
            for (r, start) in rows.step_by(n).enumerate() {
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
        },
    );
    [
        need[0].then(|| tensor(dx, dims)),
        need[1].then(|| tensor(dw, vec![n])),
    ]
}
