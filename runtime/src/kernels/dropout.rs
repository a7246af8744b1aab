//! Inverted dropout as one parallel pass whose mask is drawn inside the
//! pass from the counter-based generator ([`crate::peft::rng`]) and drawn
//! again in the backward instead of being kept. Multiplying by a mask
//! tensor costs a serial mask loop, a serial product, and the mask held
//! until the backward (a LoRA layer's whole input: 70 MB per SmolLM2 step).
//! Both paths give exactly the masks of [`crate::peft::rng::dropout_mask`].

use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::data::{contiguous, shape, tensor, Output};
use super::DropoutMask as Mask;
use crate::peft::rng::dropout_value;

/// Elements per parallel task.
const ELEMS_PER_TASK: usize = 16 * 1024;

/// `o[j] = x[j] · mask[first + j]`. The mask's hash is 64-bit integer
/// arithmetic, which vectorises only with AVX-512 DQ (64-bit lane
/// multiplies); the same integers either way, so the same masks.
fn masked_chunk(o: &mut [MaybeUninit<f32>], x: &[f32], key: u64, p: f64, first: u64) {
    #[inline(always)]
    fn imp(o: &mut [MaybeUninit<f32>], x: &[f32], key: u64, p: f64, first: u64) {
        for (j, (o, x)) in o.iter_mut().zip(x).enumerate() {
            o.write(x * dropout_value(key, p, first + j as u64));
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
        unsafe fn avx512(o: &mut [MaybeUninit<f32>], x: &[f32], key: u64, p: f64, first: u64) {
            imp(o, x, key, p, first)
        }
        if super::fastmath::avx512dq() {
            // SAFETY: the features were detected.
            return unsafe { avx512(o, x, key, p, first) };
        }
    }
    imp(o, x, key, p, first)
}

/// `t` (row-major) times the mask, element `i` by mask value `i` (or, with
/// kept positions, by the whole-sequence value of element `i`).
pub(super) fn masked(
    t: &burn_ndarray::NdArrayTensor,
    m: Mask,
) -> Option<burn_ndarray::NdArrayTensor> {
    let xs = contiguous(t)?;
    let mut out = Output::new(xs.len());
    let Mask { key, p, kept } = m;
    match kept {
        None => out
            .slice()
            .par_chunks_mut(ELEMS_PER_TASK)
            .zip(xs.par_chunks(ELEMS_PER_TASK))
            .enumerate()
            .for_each(|(task, (o, x))| masked_chunk(o, x, key, p, (task * ELEMS_PER_TASK) as u64)),
        // A row's counters are consecutive in the whole sequence too.
        Some(k) => {
            let width = *shape(t).last()?;
            out.slice()
                .par_chunks_mut(width)
                .zip(xs.par_chunks(width))
                .enumerate()
                .for_each(|(row, (o, x))| {
                    let first = k.counter((row * width) as u64, width as u64);
                    masked_chunk(o, x, key, p, first)
                })
        }
    }
    // SAFETY: the chunks cover the output.
    Some(tensor(unsafe { out.assume_init() }, shape(t)))
}
