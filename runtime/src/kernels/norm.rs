//! LayerNorm and GELU as single passes over the data (forward and
//! backward), on the fast backends. Burn composes LayerNorm from nine
//! element-wise and reduction operations and GELU from five, each writing a
//! full tensor forward and several more backward; on BERT these passes cost
//! more than the attention products.

use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, row_tasks, shape, tensor};
use std::mem::MaybeUninit;

use super::data::Output;
use super::fastmath::{exp, simd_fn, sum as fast_sum};

/// Rows per parallel task; fixed (not derived from the thread count) so
/// that the weight-gradient partial sums, added in order, are the same on
/// every machine.
const ROWS_PER_TASK: usize = 32;

// ---------------------------------------------------------------- LayerNorm

/// Mean and `sqrt(var + eps)` of one row, as Burn's `var_mean_bias`
/// computes them (sums divided by the length).
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = fast_sum(row) / n;
    let mut acc = [0.0f32; 8];
    for c in row.chunks(8) {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += (v - mean) * (v - mean);
        }
    }
    (mean, (fast_sum(&acc) / n + eps).sqrt())
}

simd_fn! {
    fn ln_row(o: &mut [MaybeUninit<f32>], row: &[f32], ws: &[f32], bs: &[f32], eps: f32) {
        let (mean, std) = moments(row, eps);
        for (((o, x), w), b) in o.iter_mut().zip(row).zip(ws).zip(bs) {
            // Divided by the standard deviation, as the composite does.
            o.write((x - mean) / std * w + b);
        }
    }
}

/// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension
/// (biased variance, as PyTorch); `None` for parameters of another length.
pub(super) fn ln_forward(
    x: &NdArrayTensor,
    w: &NdArrayTensor,
    b: &NdArrayTensor,
    eps: f32,
) -> Option<NdArrayTensor> {
    let dims = shape(x);
    let n = *dims.last()?;
    let (xs, ws, bs) = (contiguous(x)?, contiguous(w)?, contiguous(b)?);
    if n == 0 || ws.len() != n || bs.len() != n {
        return None;
    }
    let mut out = Output::new(xs.len());
    out.slice()
        .par_chunks_mut(n)
        .zip(xs.par_chunks(n))
        .for_each(|(o, row)| ln_row(o, row, &ws, &bs, eps));
    // SAFETY: the rows cover the output.
    Some(tensor(unsafe { out.assume_init() }, dims))
}

simd_fn! {
    /// The backward of a block of rows: adds each row's `dy·x̂` and `dy`
    /// into `part` (its first and second halves) and writes `dx`.
    fn ln_grad_rows(
        xs: &[f32],
        dy: &[f32],
        ws: &[f32],
        eps: f32,
        dx: Option<&mut [f32]>,
        part: &mut [f32],
    ) {
        let n = ws.len();
        let (pw, pb) = part.split_at_mut(n);
        let mut dx = dx;
        for (r, (row, g)) in xs.chunks(n).zip(dy.chunks(n)).enumerate() {
            let (mean, std) = moments(row, eps);
            let rstd = 1.0 / std;
            // Eight running sums of dy·w and dy·w·x̂, one per vector lane.
            let (mut acc_g, mut acc_gx) = ([0.0f32; 8], [0.0f32; 8]);
            let lanes = row
                .chunks(8)
                .zip(g.chunks(8))
                .zip(ws.chunks(8))
                .zip(pw.chunks_mut(8).zip(pb.chunks_mut(8)));
            for (((xc, gc), wc), (pwc, pbc)) in lanes {
                for l in 0..xc.len() {
                    let xhat = (xc[l] - mean) * rstd;
                    pwc[l] += gc[l] * xhat;
                    pbc[l] += gc[l];
                    let gw = gc[l] * wc[l];
                    acc_g[l] += gw;
                    acc_gx[l] += gw * xhat;
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                let (mg, mgx) = (fast_sum(&acc_g) / n as f32, fast_sum(&acc_gx) / n as f32);
                let o = &mut dx[r * n..(r + 1) * n];
                for (((o, x), g), w) in o.iter_mut().zip(row).zip(g).zip(ws) {
                    let xhat = (x - mean) * rstd;
                    *o = rstd * (g * w - mg - xhat * mgx);
                }
            }
        }
    }
}

/// `(dx, dweight, dbias)` of LayerNorm.
pub(super) fn ln_backward(
    x: &NdArrayTensor,
    w: &NdArrayTensor,
    grad: &NdArrayTensor,
    eps: f32,
    need: [bool; 3],
) -> [Option<NdArrayTensor>; 3] {
    let dims = shape(x);
    let xs = contiguous(x).expect("f32 input");
    let n = *dims.last().expect("rank ≥ 1");
    let dy = contiguous(grad).expect("f32 gradient");
    let ws = contiguous(w).expect("f32 weight");
    // Per task: partial Σ dy·x̂ and Σ dy over its rows.
    let (dx, sums) = row_tasks(xs.len(), n, ROWS_PER_TASK, 2, need[0], |rows, dx, part| {
        ln_grad_rows(&xs[rows.clone()], &dy[rows], &ws, eps, dx, part)
    });
    let dx = need[0].then(|| tensor(dx, dims));
    let (dw, db) = sums.split_at(n);
    let (dw, db) = (dw.to_vec(), db.to_vec());
    [
        dx,
        need[1].then(|| tensor(dw, vec![n])),
        need[2].then(|| tensor(db, vec![n])),
    ]
}

// --------------------------------------------------------------------- GELU

/// `(Φ(x), φ(x))`, the standard normal CDF and density. Φ uses Abramowitz
/// & Stegun 7.1.26 for erf (absolute error below 1.5e-7, f32's own
/// resolution near 1), whose `exp(−x²/2)` is also φ's: one `exp` per
/// element where libm's f64 `erf` plus an `exp` took most of BERT's GELU
/// time. The tail is computed directly (`Φ(−|x|)`), so no cancellation.
#[inline(always)]
fn normal_cdf_pdf(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let e = exp(-z * z);
    let tail = 0.5 * poly * e; // Φ(−|x|)
    let cdf = if x < 0.0 { tail } else { 1.0 - tail };
    (cdf, e * 0.398_942_3) // 1/√(2π)
}

#[inline(always)]
fn gelu1(x: f32) -> f32 {
    x * normal_cdf_pdf(x).0
}

#[inline(always)]
fn gelu_grad1(x: f32) -> f32 {
    let (cdf, pdf) = normal_cdf_pdf(x);
    cdf + x * pdf
}

/// Elements per parallel task of the element-wise passes.
const ELEMS_PER_TASK: usize = 16 * 1024;

simd_fn! {
    fn gelu_chunk(o: &mut [MaybeUninit<f32>], x: &[f32]) {
        for (o, &v) in o.iter_mut().zip(x) {
            o.write(gelu1(v));
        }
    }
}

simd_fn! {
    fn gelu_grad_chunk(o: &mut [MaybeUninit<f32>], x: &[f32], g: &[f32]) {
        for ((o, x), g) in o.iter_mut().zip(x).zip(g) {
            o.write(g * gelu_grad1(*x));
        }
    }
}

/// GELU with the exact erf form, as transformers' BERT.
pub(super) fn gelu_forward(x: &NdArrayTensor) -> Option<NdArrayTensor> {
    let xs = contiguous(x)?;
    let mut out = Output::new(xs.len());
    out.slice()
        .par_chunks_mut(ELEMS_PER_TASK)
        .zip(xs.par_chunks(ELEMS_PER_TASK))
        .for_each(|(o, i)| gelu_chunk(o, i));
    // SAFETY: the chunks cover the output.
    Some(tensor(unsafe { out.assume_init() }, shape(x)))
}

/// `dy · (Φ(x) + x·φ(x))`, the exact derivative (Burn's own backward
/// uses the tanh approximation's).
pub(super) fn gelu_backward(x: &NdArrayTensor, grad: &NdArrayTensor) -> NdArrayTensor {
    let (xs, dy) = (
        contiguous(x).expect("f32 input"),
        contiguous(grad).expect("f32 gradient"),
    );
    let mut dx = Output::new(xs.len());
    dx.slice()
        .par_chunks_mut(ELEMS_PER_TASK)
        .zip(
            xs.par_chunks(ELEMS_PER_TASK)
                .zip(dy.par_chunks(ELEMS_PER_TASK)),
        )
        .for_each(|(o, (x, g))| gelu_grad_chunk(o, x, g));
    // SAFETY: the chunks cover the output.
    let dx = unsafe { dx.assume_init() };
    tensor(dx, shape(x))
}
