//! `a + b` in parallel on the default CPU backend, for the adds of every
//! layer: biases, residual connections and adapter outputs (a BERT layer
//! has ten, each over a whole `[tokens, hidden]` activation). burn-ndarray
//! adds on one thread while the other cores wait.

use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::data::{contiguous, shape, tensor, Output};
use super::fastmath::simd_fn;

/// Elements per parallel task.
const ELEMS_PER_TASK: usize = 16 * 1024;

/// How many elements of `b` one row of the sum reads: all of `a` when the
/// shapes are equal, the last dimension when `b` is a row broadcast.
pub(super) fn row_len(a: &[usize], b: &[usize]) -> Option<usize> {
    let n = a.iter().product::<usize>();
    if a == b {
        return Some(n.max(1));
    }
    let (last, lead) = b.split_last()?;
    (lead.iter().all(|&d| d == 1) && a.last() == Some(last) && *last > 0).then_some(*last)
}

simd_fn! {
    fn add_chunk(o: &mut [MaybeUninit<f32>], x: &[f32], y: &[f32]) {
        for ((o, x), y) in o.iter_mut().zip(x).zip(y) {
            o.write(x + y);
        }
    }
}

/// `a + b` for the shapes [`row_len`] accepts.
pub(super) fn forward(a: &NdArrayTensor, b: &NdArrayTensor) -> Option<NdArrayTensor> {
    let dims = shape(a);
    let row = row_len(&dims, &shape(b))?;
    let (xs, ys) = (contiguous(a)?, contiguous(b)?);
    let mut out = Output::new(xs.len());
    // Tasks of whole rows when `b` repeats, so each task starts at b[0].
    let per_task = if ys.len() == xs.len() {
        ELEMS_PER_TASK
    } else {
        ELEMS_PER_TASK.div_ceil(row) * row
    };
    let same = ys.len() == xs.len();
    out.slice()
        .par_chunks_mut(per_task)
        .zip(xs.par_chunks(per_task))
        .enumerate()
        .for_each(|(t, (o, x))| {
            if same {
                let start = t * per_task;
                add_chunk(o, x, &ys[start..start + x.len()]);
            } else {
                // Whole rows: each row adds the broadcast `b`.
                for (o, x) in o.chunks_mut(row).zip(x.chunks(row)) {
                    add_chunk(o, x, &ys);
                }
            }
        });
    // SAFETY: the chunks cover the whole output.
    Some(tensor(unsafe { out.assume_init() }, dims))
}

/// Sums of each column of `g` seen as `[rows, n]`, in a fixed order (blocks
/// of rows, then the blocks in turn) so that every run gives the same bits.
pub(super) fn column_sums(g: &NdArrayTensor, n: usize) -> Vec<f32> {
    const ROWS_PER_TASK: usize = 64;
    let gs = contiguous(g).expect("f32 gradient");
    let partial: Vec<Vec<f32>> = gs
        .par_chunks(ROWS_PER_TASK * n)
        .map(|block| {
            let mut s = vec![0.0f32; n];
            for row in block.chunks(n) {
                for (s, v) in s.iter_mut().zip(row) {
                    *s += v;
                }
            }
            s
        })
        .collect();
    let mut sums = vec![0.0f32; n];
    for p in partial {
        for (s, v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    sums
}
