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

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::data::{contiguous, prim, shape, tensor};
use super::fastmath::{exp, simd_fn};
use super::gemm::{gemm1, threads, Strided};
use super::{amx, cast, is, AdNd, Nd};

/// Bytes of f32 logits per slice of the vocabulary: a few MiB, which stay
/// in cache between the slice's product, its softmax pass and (training)
/// its product with the embedding.
const SLICE_BYTES: usize = 4 << 20;

/// `log_softmax(hidden[b, t] · embeddingᵀ)[targets[b·n + t]]` for the first
/// `n` positions of each row: `[batch, n]`, 0 where the target is `None`.
/// `hidden: [batch, seq, h]`, `embedding: [vocab, h]`. The gradient flows
/// to `hidden` only. `None` where this does not apply (other backends, an
/// embedding that needs a gradient, a target outside the vocabulary).
pub fn tied_head_log_softmax<B: Backend>(
    hidden: &Tensor<B, 3>,
    embedding: &Tensor<B, 2>,
    targets: &[Option<usize>],
    n: usize,
) -> Option<Tensor<B, 2>> {
    sliced(hidden, embedding, targets, n, None)
}

/// [`tied_head_log_softmax`] with slices of `width` words (a multiple of
/// 32) if given, of about [`SLICE_BYTES`] otherwise.
pub(super) fn sliced<B: Backend>(
    hidden: &Tensor<B, 3>,
    embedding: &Tensor<B, 2>,
    targets: &[Option<usize>],
    n: usize,
    width: Option<usize>,
) -> Option<Tensor<B, 2>> {
    let [b, s, h] = hidden.dims();
    let [v, eh] = embedding.dims();
    if eh != h || n > s || targets.len() != b * n || targets.iter().flatten().any(|&t| t >= v) {
        return None;
    }
    if is::<B, AdNd>() {
        let x: Tensor<AdNd, 3> = cast(hidden.clone());
        let e: Tensor<AdNd, 2> = cast(embedding.clone());
        return ad_forward(x, e, targets, n, width).map(cast);
    }
    if is::<B, Nd>() {
        let x: Tensor<Nd, 3> = cast(hidden.clone());
        let e: Tensor<Nd, 2> = cast(embedding.clone());
        let out = forward(&prim(&x), &prim(&e), targets, n, false, width)?;
        return Some(cast(Tensor::<Nd, 2>::from_primitive(
            TensorPrimitive::Float(out.lp),
        )));
    }
    None
}

/// The forward's results.
struct Forward {
    /// `[batch, n]` log-probabilities.
    lp: NdArrayTensor,
    /// `E[t] − pᵀE` for each position with a target, `[positions, h]`
    /// (empty unless asked for).
    grad: Vec<f32>,
    /// For each such position: its row of `hidden` and its index in `lp`.
    rows: Vec<(usize, usize)>,
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
fn forward(
    hidden: &NdArrayTensor,
    embedding: &NdArrayTensor,
    targets: &[Option<usize>],
    n: usize,
    want_grad: bool,
    width: Option<usize>,
) -> Option<Forward> {
    let dims = shape(hidden);
    let (b, s, h) = (dims[0], dims[1], dims[2]);
    let ev = Strided::of(embedding)?;
    let v = ev.shape[0];
    // The embedding as stored: row-major [vocab, h].
    if ev.strides[1] != 1 || ev.strides[0] != h as isize {
        return None;
    }
    let xs = contiguous(hidden)?;
    let e = ev.ptr();
    let rows: Vec<(usize, usize, usize)> = targets
        .iter()
        .enumerate()
        .filter_map(|(r, t)| t.map(|t| ((r / n) * s + r % n, r, t)))
        .collect();
    let m = rows.len();
    let mut hc = Vec::with_capacity(m * h);
    for &(row, _, _) in &rows {
        hc.extend_from_slice(&xs[row * h..(row + 1) * h]);
    }
    // The products' packed forms, when the embedding was registered for
    // bf16 products (`precision = bf16`): Eᵀ for the logits, E for pᵀE.
    let packed_t = amx::lookup(e, h, v, 1, h as isize);
    let packed = amx::lookup(e, v, h, h as isize, 1);
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
        unsafe {
            slice_logits(
                &hc,
                m,
                e,
                h,
                (j0, j1),
                packed_t.as_deref(),
                logits.as_mut_ptr(),
            )
        };
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
            unsafe {
                add_weighted_rows(
                    logits.as_ptr(),
                    m,
                    e,
                    h,
                    (j0, j1),
                    packed.as_deref(),
                    &mut q,
                )
            };
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
        grad: q,
        rows: rows.iter().map(|&(row, r, _)| (row, r)).collect(),
    })
}

#[derive(Debug)]
struct TiedHeadBackward;

/// `E[t] − pᵀE` per position, (hidden row, lp index) per position, and the
/// hidden states' shape.
type State = (Vec<f32>, Vec<(usize, usize)>, Vec<usize>);

impl Backward<Nd, 1> for TiedHeadBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let Some(node) = node else { return };
        let (g, rows, dims) = ops.state;
        let h = dims[2];
        let dlp = contiguous(&grad).expect("f32 gradient");
        let mut dh = vec![0.0f32; dims.iter().product()];
        for (gi, &(row, r)) in g.chunks_exact(h).zip(&rows) {
            let scale = dlp[r];
            for (o, x) in dh[row * h..(row + 1) * h].iter_mut().zip(gi) {
                *o = scale * x;
            }
        }
        grads.register::<Nd>(node.id, tensor(dh, dims));
    }
}

fn ad_forward(
    hidden: Tensor<AdNd, 3>,
    embedding: Tensor<AdNd, 2>,
    targets: &[Option<usize>],
    n: usize,
    width: Option<usize>,
) -> Option<Tensor<AdNd, 2>> {
    let ep = embedding.into_primitive().tensor();
    if ep.is_tracked() {
        return None;
    }
    let xp = hidden.into_primitive().tensor();
    let dims = shape(&xp.primitive);
    let out = forward(
        &xp.primitive,
        &ep.primitive,
        targets,
        n,
        xp.is_tracked(),
        width,
    )?;
    let lp = match TiedHeadBackward
        .prepare::<NoCheckpointing>([xp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((out.grad, out.rows, dims), out.lp),
        OpsKind::UnTracked(prep) => prep.finish(out.lp),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(lp)))
}
