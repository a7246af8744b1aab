//! The tied LM head `logits = h · Eᵀ` and the next-token loss
//! `log_softmax(logits)[target]` as one operation, a slice of the
//! vocabulary at a time, so that the `[positions, vocab]` logits and their
//! gradient — 100 MB each for SmolLM2's 49152 words at 512 positions — are
//! never written. Both were passes over memory: the head's product was
//! bound by storing its output, the loss read it again, its backward wrote
//! a fresh (page-faulting) gradient of the same size and the input
//! gradient's product read that back.
//!
//! Why this is the same gradient: with `p = softmax(h · Eᵀ)`, the gradient
//! of `log p[t]` with respect to `h` is `E[t] − pᵀE`, a `[hidden]` vector
//! per position. The forward accumulates `Σ_j exp(x_j − max) · E[j]` slice
//! by slice, rescaling it whenever the running maximum grows (as an online
//! softmax does), and divides by the sum at the end; the backward only
//! scales `E[t] − pᵀE` by each position's incoming gradient. The two
//! products are the ones the dense path computes (`h · Eᵀ` forward,
//! `dlogits · E` backward), both now in the forward, over slices that stay
//! in cache. Only positions with a target are computed at all.
//!
//! It applies when the embedding gets no gradient (frozen, as under every
//! adapter method; full fine-tuning of it takes the dense path), on the
//! CPU backend. Under `precision = bf16` both products run on AMX with the
//! embedding's packed forms, exactly as the dense path's would.

use burn_ndarray::NdArrayTensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::data::{contiguous, shape, tensor};
use super::fastmath::{exp, simd_fn};
use super::gemm::{gemm1, threads, Strided};
use super::{amx, PackedWeight};

/// Bytes of f32 logits per slice of the vocabulary: a few MiB, which stay
/// in cache between the slice's product, its softmax pass and (training)
/// its product with the embedding.
const SLICE_BYTES: usize = 4 << 20;

/// The forward's results.
pub(super) struct Forward {
    /// `[batch, n]` log-probabilities.
    pub lp: NdArrayTensor,
    /// `E[t] − pᵀE` for each position with a target, `[positions, h]`
    /// (when asked for).
    pub grad: Option<NdArrayTensor>,
}

/// A position's running softmax statistics over the slices seen so far.
#[derive(Clone, Copy)]
struct Running {
    max: f32,
    /// `Σ exp(x − max)`.
    sum: f32,
    /// The target's logit, once its slice has passed.
    target_logit: f32,
}

simd_fn! {
    fn row_max(row: &[f32]) -> f32 {
        row.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
}

simd_fn! {
    /// `row ← exp(row − shift)`, returning the sum (eight running sums in
    /// a fixed order).
    fn exp_in_place(row: &mut [f32], shift: f32) -> f32 {
        let mut acc = [0.0f32; 8];
        let mut chunks = row.chunks_exact_mut(8);
        for c in &mut chunks {
            for (a, x) in acc.iter_mut().zip(c.iter_mut()) {
                *x = exp(*x - shift);
                *a += *x;
            }
        }
        let mut rest = 0.0;
        for x in chunks.into_remainder() {
            *x = exp(*x - shift);
            rest += *x;
        }
        acc.iter().sum::<f32>() + rest
    }
}

simd_fn! {
    fn scale_row(row: &mut [f32], by: f32) {
        for x in row {
            *x *= by;
        }
    }
}

/// Addresses cross into rayon's workers as integers.
#[derive(Clone, Copy)]
struct Addr(usize);

/// `dst = H · E[j0..j1]ᵀ` (`m × (j1 − j0)`, rows `j1 − j0` apart).
///
/// # Safety
/// `hc` is `m × h` row-major, `e` is `[vocab, h]` row-major, `dst` has
/// room for the product.
unsafe fn slice_logits(
    hc: &[f32],
    m: usize,
    e: *const f32,
    h: usize,
    (j0, j1): (usize, usize),
    packed_t: Option<&amx::Packed>,
    dst: *mut f32,
) {
    let w = j1 - j0;
    if let Some(p) = packed_t.filter(|_| j0 % 16 == 0 && j1 % 16 == 0) {
        let window = amx::Window {
            tiles: j0 / 16..j1 / 16,
            blocks: 0..h.div_ceil(32),
            dst_rs: w,
            accumulate: false,
        };
        // SAFETY: the window is inside Eᵀ's packed [h, vocab]; dst as promised.
        unsafe { amx::gemm_window(m, hc.as_ptr(), h as isize, 1, p, &window, dst) };
        return;
    }
    let par = Parallelism::Rayon(threads());
    // SAFETY: E[j0..j1] read through its transpose's strides.
    unsafe {
        gemm1(
            m,
            w,
            h,
            dst,
            w as isize,
            false,
            hc.as_ptr(),
            h as isize,
            1,
            e.add(j0 * h),
            1,
            h as isize,
            par,
        )
    };
}

/// `q += P · E[j0..j1]` for `P: m × (j1 − j0)` (rows `j1 − j0` apart).
///
/// # Safety
/// As for [`slice_logits`]; `q` is `m × h`.
unsafe fn add_weighted_rows(
    probs: *const f32,
    m: usize,
    e: *const f32,
    h: usize,
    (j0, j1): (usize, usize),
    packed: Option<&amx::Packed>,
    q: &mut [f32],
) {
    let w = j1 - j0;
    if let Some(p) = packed.filter(|_| j0 % 32 == 0) {
        let window = amx::Window {
            tiles: 0..h / 16,
            blocks: j0 / 32..j1.div_ceil(32),
            dst_rs: h,
            accumulate: true,
        };
        // SAFETY: rows j0..j1 of E's packed [vocab, h]; P has w columns.
        unsafe { amx::gemm_window(m, probs, w as isize, 1, p, &window, q.as_mut_ptr()) };
        return;
    }
    let par = Parallelism::Rayon(threads());
    // SAFETY: rows j0..j1 of E, row-major.
    unsafe {
        gemm1(
            m,
            h,
            w,
            q.as_mut_ptr(),
            h as isize,
            true,
            probs,
            w as isize,
            1,
            e.add(j0 * h),
            h as isize,
            1,
            par,
        )
    };
}

/// The log-probabilities and, with `want_grad`, `E[t] − pᵀE` per position.
///
/// `hidden: [batch, seq, h]`, `embedding: [vocab, h]` (row-major, else
/// `None`), targets inside the vocabulary; slices of `width` words (a
/// multiple of 32) if given, of about [`SLICE_BYTES`] otherwise.
pub(super) fn forward(
    hidden: &NdArrayTensor,
    embedding: &NdArrayTensor,
    targets: &[Option<usize>],
    n: usize,
    want_grad: bool,
    width: Option<usize>,
    packed: Option<&PackedWeight>,
) -> Option<Forward> {
    let dims = shape(hidden);
    let (b, s, h) = (dims[0], dims[1], dims[2]);
    let ev = Strided::of(embedding)?;
    let v = ev.shape[0];
    // The embedding as stored: row-major [vocab, h].
    if ev.shape[1] != h || n > s || ev.strides[1] != 1 || ev.strides[0] != h as isize {
        return None;
    }
    let xs = contiguous(hidden)?;
    let e = ev.ptr();
    let rows = super::generic::target_rows(targets, n, s);
    let m = rows.len();
    let mut hc = Vec::with_capacity(m * h);
    for &(row, _, _) in &rows {
        hc.extend_from_slice(&xs[row * h..(row + 1) * h]);
    }
    // The products' packed forms, when the embedding was registered for
    // bf16 products (`precision = bf16`): Eᵀ for the logits, E for pᵀE.
    let packed_t = packed.and_then(|p| p.view(e, h, v, 1, h as isize));
    let packed = packed.and_then(|p| p.view(e, v, h, h as isize, 1));
    let width = width
        .unwrap_or((SLICE_BYTES / (4 * m.max(1))) / 32 * 32)
        .clamp(32, v.next_multiple_of(32));
    let mut logits = vec![0.0f32; m * width];
    let mut running = vec![
        Running {
            max: f32::NEG_INFINITY,
            sum: 0.0,
            target_logit: 0.0,
        };
        m
    ];
    let mut q = vec![0.0f32; if want_grad { m * h } else { 0 }];
    let q_addr = Addr(q.as_mut_ptr() as usize);
    let mut j0 = 0;
    while j0 < v && m > 0 {
        let j1 = (j0 + width).min(v);
        let w = j1 - j0;
        // SAFETY: hc is m × h, E is [v, h] row-major, logits holds m × w.
        unsafe { slice_logits(&hc, m, e, h, (j0, j1), packed_t, logits.as_mut_ptr()) };
        logits[..m * w]
            .par_chunks_mut(w)
            .zip(running.par_iter_mut())
            .enumerate()
            .for_each(|(i, (row, run))| {
                let t = rows[i].2;
                if (j0..j1).contains(&t) {
                    run.target_logit = row[t - j0];
                }
                let max = run.max.max(row_max(row));
                // exp(−∞) = 0: nothing was accumulated before the first slice.
                let scale = exp(run.max - max);
                run.sum = run.sum * scale + exp_in_place(row, max);
                run.max = max;
                if want_grad && scale != 1.0 {
                    // SAFETY: row i of q (m × h), this worker's alone.
                    let qi = unsafe {
                        std::slice::from_raw_parts_mut((q_addr.0 as *mut f32).add(i * h), h)
                    };
                    scale_row(qi, scale);
                }
            });
        if want_grad {
            // SAFETY: logits holds P (m × w); q is m × h.
            unsafe { add_weighted_rows(logits.as_ptr(), m, e, h, (j0, j1), packed, &mut q) };
        }
        j0 = j1;
    }
    let mut lp = vec![0.0f32; b * n];
    for (&(_, r, _), run) in rows.iter().zip(&running) {
        lp[r] = run.target_logit - (run.max + run.sum.ln());
    }
    if want_grad {
        // SAFETY: the embedding's v × h elements (checked row-major above).
        let es = unsafe { std::slice::from_raw_parts(e, v * h) };
        q.par_chunks_mut(h)
            .zip(&rows)
            .zip(&running)
            .for_each(|((qi, &(_, _, t)), run)| {
                let inv = 1.0 / run.sum;
                for (g, et) in qi.iter_mut().zip(&es[t * h..(t + 1) * h]) {
                    *g = et - *g * inv;
                }
            });
    }
    Some(Forward {
        lp: tensor(lp, vec![b, n]),
        grad: want_grad.then(|| tensor(q, vec![m, h])),
    })
}

/// The hidden states' gradient `[batch, seq, h]`: `dlp · q` at each
/// position with a target (`q`, `[positions, h]`, in order), 0 elsewhere.
pub(super) fn backward(
    q: &NdArrayTensor,
    rows: &[(usize, usize, usize)],
    dims: Vec<usize>,
    dlp: &NdArrayTensor,
) -> NdArrayTensor {
    let h = dims[2];
    let g = contiguous(q).expect("f32 q");
    let dlp = contiguous(dlp).expect("f32 gradient");
    let mut dh = vec![0.0f32; dims.iter().product()];
    for (gi, &(row, r, _)) in g.chunks_exact(h).zip(rows) {
        let scale = dlp[r];
        for (o, x) in dh[row * h..(row + 1) * h].iter_mut().zip(gi) {
            *o = scale * x;
        }
    }
    tensor(dh, dims)
}
