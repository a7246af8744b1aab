//! Attention's `softmax(scores · scale + bias)` over the last dimension as
//! one pass per row (and one per row backward), where Burn composes it from
//! six element-wise operations, each of which writes a full
//! `[batch, heads, q, k]` tensor forward and again backward.

use burn::tensor::TensorData;
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use std::mem::MaybeUninit;

use super::data::{init_mut, Output};
use super::fastmath::{exp, simd_fn, sum as fast_sum};
use super::gemm::Strided;

/// The element offset of row `r` (all dimensions but the last, row-major)
/// in a view; broadcast dimensions (size 1) contribute nothing.
fn row_offset(view: &(Vec<usize>, Vec<isize>), dims: &[usize], mut r: usize) -> isize {
    let (shape, strides) = view;
    let nb = dims.len() - 1;
    let mut off = 0isize;
    for d in (0..nb).rev() {
        let i = r % dims[d];
        r /= dims[d];
        if shape[d] != 1 {
            off += i as isize * strides[d];
        }
    }
    off
}

simd_fn! {
    /// `x · scale + m` into a row.
    fn scores_row(row: &mut [MaybeUninit<f32>], x: &[f32], m: &[f32], scale: f32) {
        for ((o, x), m) in row.iter_mut().zip(x).zip(m) {
            o.write(x * scale + m);
        }
    }
}

simd_fn! {
    /// A row of scores into probabilities, in place.
    fn normalise_row(row: &mut [f32]) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for o in row.iter_mut() {
            *o = exp(*o - max);
        }
        let sum = fast_sum(row);
        // Divided, not multiplied by 1/sum: Burn's softmax divides.
        row.iter_mut().for_each(|o| *o /= sum);
    }
}

simd_fn! {
    /// `scale · y ⊙ (dy − Σ dy·y)` into a row.
    fn grad_row(row: &mut [MaybeUninit<f32>], y: &[f32], g: &[f32], scale: f32) {
        let mut acc = [0.0f32; 8];
        for (yc, gc) in y.chunks(8).zip(g.chunks(8)) {
            for ((a, y), g) in acc.iter_mut().zip(yc).zip(gc) {
                *a += y * g;
            }
        }
        let dot = fast_sum(&acc);
        for ((o, y), g) in row.iter_mut().zip(y).zip(g) {
            o.write(scale * y * (g - dot));
        }
    }
}

pub(super) fn forward(
    scores: &NdArrayTensor,
    scale: f32,
    bias: &NdArrayTensor,
) -> Option<NdArrayTensor> {
    let (s, b) = (Strided::of(scores)?, Strided::of(bias)?);
    let dims = s.shape.clone();
    let n = *dims.last()?;
    if n == 0 || b.shape.len() != dims.len() || b.shape[3] != n {
        return None;
    }
    let mut out = Output::new(dims.iter().product());
    let (sc, bc) = (s.strides[3], b.strides[3]);
    let (sp, bp) = (s.ptr() as usize, b.ptr() as usize);
    let (s, b) = ((s.shape, s.strides), (b.shape, b.strides));
    out.slice()
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(r, row)| unsafe {
            let x = (sp as *const f32).offset(row_offset(&s, &dims, r));
            let m = (bp as *const f32).offset(row_offset(&b, &dims, r));
            if sc == 1 && bc == 1 {
                let (x, m) = (
                    std::slice::from_raw_parts(x, n),
                    std::slice::from_raw_parts(m, n),
                );
                scores_row(row, x, m, scale);
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    o.write(*x.offset(j as isize * sc) * scale + *m.offset(j as isize * bc));
                }
            }
            // SAFETY: both branches wrote the whole row.
            normalise_row(init_mut(row));
        });
    // SAFETY: the rows cover the output.
    Some(NdArrayTensor::from_data(TensorData::new(
        unsafe { out.assume_init() },
        dims,
    )))
}

/// `dx = scale · y ⊙ (dy − Σ_j dy·y)` per row.
pub(super) fn backward(y: &NdArrayTensor, dy: &NdArrayTensor, scale: f32) -> NdArrayTensor {
    let (yv, gv) = (Strided::of(y).expect("f32"), Strided::of(dy).expect("f32"));
    let dims = yv.shape.clone();
    let n = dims[3];
    let mut out = Output::new(dims.iter().product());
    let (yc, gc) = (yv.strides[3], gv.strides[3]);
    let (yp, gp) = (yv.ptr() as usize, gv.ptr() as usize);
    let (yv, gv) = ((yv.shape, yv.strides), (gv.shape, gv.strides));
    out.slice()
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(r, row)| unsafe {
            let y = (yp as *const f32).offset(row_offset(&yv, &dims, r));
            let g = (gp as *const f32).offset(row_offset(&gv, &dims, r));
            if yc == 1 && gc == 1 {
                let (y, g) = (
                    std::slice::from_raw_parts(y, n),
                    std::slice::from_raw_parts(g, n),
                );
                grad_row(row, y, g, scale);
            } else {
                let mut dot = 0.0f32;
                for j in 0..n as isize {
                    dot += *y.offset(j * yc) * *g.offset(j * gc);
                }
                for (j, o) in row.iter_mut().enumerate() {
                    let j = j as isize;
                    o.write(scale * *y.offset(j * yc) * (*g.offset(j * gc) - dot));
                }
            }
        });
    // SAFETY: the rows cover the output.
    NdArrayTensor::from_data(TensorData::new(unsafe { out.assume_init() }, dims))
}
