//! Strided, batched f32 matrix products on burn-ndarray tensors, computed
//! by the `gemm` crate (AVX2/AVX-512 kernels, rayon threads).
//!
//! burn-ndarray multiplies `[batch, m, k] × [1, k, n]` (a linear layer on a
//! `[batch, seq, in]` input) as `batch` separate matrixmultiply calls, each
//! packing the shared weight again, and its backward reduces a
//! `[batch, k, n]` stack of weight gradients afterwards. Here the batch is
//! folded into the rows (forward, input gradient) or into the inner
//! dimension (weight gradient) whenever the strides allow, so each of these
//! is one large product; views (transposes, head splits) are read in place
//! through their strides, never copied.

use burn::tensor::TensorData;
use burn_ndarray::NdArrayTensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::data::Output;

/// A read-only strided view of an f32 tensor: shape and strides in elements.
/// It borrows the tensor it was made from (`'a`), so the pointer stays valid.
#[derive(Clone, Debug)]
pub struct Strided<'a> {
    ptr: *const f32,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
    _tensor: std::marker::PhantomData<&'a f32>,
}

impl<'a> Strided<'a> {
    /// The view of an f32 tensor, `None` for other element types.
    pub fn of(t: &'a NdArrayTensor) -> Option<Self> {
        match t {
            NdArrayTensor::F32(storage) => {
                let v = storage.view();
                Some(Strided {
                    ptr: v.as_ptr(),
                    shape: v.shape().to_vec(),
                    strides: v.strides().to_vec(),
                    _tensor: std::marker::PhantomData,
                })
            }
            _ => None,
        }
    }

    pub fn ptr(&self) -> *const f32 {
        self.ptr
    }

    /// The same data with its last two dimensions swapped (no copy).
    pub fn t(mut self) -> Self {
        let n = self.shape.len();
        self.shape.swap(n - 2, n - 1);
        self.strides.swap(n - 2, n - 1);
        self
    }
}

/// A product's output: zero-filled where the product adds into it,
/// otherwise left unwritten for the product to fill.
enum Buffer {
    Zeroed(Vec<f32>),
    Unwritten(Output),
}

impl Buffer {
    fn as_mut_ptr(&mut self) -> *mut f32 {
        match self {
            Buffer::Zeroed(v) => v.as_mut_ptr(),
            Buffer::Unwritten(o) => o.as_mut_ptr(),
        }
    }

    /// # Safety
    /// An `Unwritten` buffer has been written in full.
    unsafe fn written(self) -> Vec<f32> {
        match self {
            Buffer::Zeroed(v) => v,
            // SAFETY: the caller's promise.
            Buffer::Unwritten(o) => unsafe { o.assume_init() },
        }
    }
}

/// Raw pointers cross into rayon's workers as addresses; every worker
/// writes a disjoint output matrix.
#[derive(Clone, Copy)]
struct Addr(usize);

pub(super) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// If dimensions `dims` (outermost first) of a view, taken together, step
/// through memory as a single dimension of stride `strides[last]`, that
/// stride; `None` otherwise. Size-1 dimensions never matter.
fn merged_stride(shape: &[usize], strides: &[isize], dims: &[usize]) -> Option<isize> {
    let last = *dims.last()?;
    let base = strides[last];
    let mut expected = base * shape[last] as isize;
    for &d in dims[..dims.len() - 1].iter().rev() {
        if shape[d] != 1 {
            if strides[d] != expected {
                return None;
            }
            expected *= shape[d] as isize;
        }
    }
    if shape[last] == 1 && dims.iter().any(|&d| d != last && shape[d] != 1) {
        // The stride of a size-1 dimension is arbitrary: not a basis.
        return None;
    }
    Some(base)
}

/// One product `dst (+)= lhs · rhs` with explicit strides (row, column).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm1(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: isize,
    lhs_cs: isize,
    rhs: *const f32,
    rhs_rs: isize,
    rhs_cs: isize,
    par: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        // dst is zero-initialised and nothing is added.
        return;
    }
    // The gemm crate computes a row-major product as its transpose, and
    // when the right operand's columns are not contiguous (a transposed
    // weight: every input gradient `dY · Wᵀ`) and it has at most a few
    // thousand columns, it packs that whole operand on the calling thread
    // before any worker starts: a serial pass over the weight per product
    // (about 4 % of a SmolLM2 step's wall time, with both workers idle).
    // Splitting the columns between the threads
    // instead makes each thread pack (and multiply) its own share.
    let threads = match par {
        Parallelism::Rayon(t) => t,
        Parallelism::None => 1,
    };
    const SPLIT_UNIT: usize = 16;
    if threads > 1 && rhs_cs.unsigned_abs() != 1 && n >= 4 * SPLIT_UNIT * threads {
        let per = n.div_ceil(threads).div_ceil(SPLIT_UNIT) * SPLIT_UNIT;
        let (d, l, r) = (Addr(dst as usize), Addr(lhs as usize), Addr(rhs as usize));
        (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
            let (c0, c1) = (t * per, ((t + 1) * per).min(n));
            // SAFETY: each task writes its own columns c0..c1 of dst and
            // reads inside the operands the caller vouched for.
            unsafe {
                gemm1(
                    m,
                    c1 - c0,
                    k,
                    (d.0 as *mut f32).add(c0),
                    dst_rs,
                    accumulate,
                    l.0 as *const f32,
                    lhs_rs,
                    lhs_cs,
                    (r.0 as *const f32).offset(c0 as isize * rhs_cs),
                    rhs_rs,
                    rhs_cs,
                    Parallelism::None,
                )
            }
        });
        return;
    }
    gemm::gemm(
        m, n, k, dst, 1, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0,
        false, false, false, par,
    );
}

/// `Σ a[i] · b[i]` over the broadcast batch of `a: [.., m, k]` and
/// `b: [.., k, n]`, as a contiguous tensor of shape `[out_batch.., m, n]`.
/// `out_batch` has one entry per batch dimension, equal to the broadcast
/// size or 1; a 1 where the broadcast size is larger sums over that
/// dimension (the gradient of an operand that was broadcast). `packed`
/// may hold a packed bf16 form of `b` (see [`super::PackedWeight`]).
pub fn bmm(
    a: &Strided,
    b: &Strided,
    out_batch: &[usize],
    packed: Option<&super::PackedWeight>,
) -> NdArrayTensor {
    let nd = a.shape.len();
    assert!(nd >= 2 && b.shape.len() == nd && out_batch.len() == nd - 2);
    let nb = nd - 2;
    let (m, k, n) = (a.shape[nb], a.shape[nb + 1], b.shape[nb + 1]);
    assert_eq!(b.shape[nb], k, "matmul: inner dimensions differ");
    let iter: Vec<usize> = (0..nb)
        .map(|i| {
            let (x, y) = (a.shape[i], b.shape[i]);
            assert!(x == y || x == 1 || y == 1, "matmul: batch dims differ");
            x.max(y)
        })
        .collect();
    for (o, it) in out_batch.iter().zip(&iter) {
        assert!(*o == *it || *o == 1);
    }
    let mut shape = out_batch.to_vec();
    shape.extend([m, n]);
    let count: usize = iter.iter().product();
    let reduced = out_batch.iter().zip(&iter).any(|(o, it)| o != it);
    let b_broadcast = (0..nb).all(|i| b.shape[i] == 1);
    // Every path below writes each output element, except an empty inner
    // dimension (nothing written: the product is zero) and a reduced
    // batch in the general path (which adds into the output).
    let len: usize = shape.iter().product();
    let mut out = if k == 0 || reduced {
        Buffer::Zeroed(vec![0.0f32; len])
    } else {
        Buffer::Unwritten(Output::new(len))
    };
    let dst = out.as_mut_ptr();
    let par = Parallelism::Rayon(threads());

    // `[batch.., m, k] · [1.., k, n]`: the batch joins the rows.
    if !reduced && b_broadcast {
        let dims: Vec<usize> = (0..=nb).collect();
        if let Some(rs) = merged_stride(&a.shape, &a.strides, &dims) {
            // A frozen weight packed for bf16 products (opt-in).
            if let Some(packed) = packed.and_then(|p| p.operand(b)) {
                // SAFETY: the packed form is that view of b (packed only
                // where AMX is available); dst has count·m·n elements.
                unsafe { super::amx::gemm(count * m, a.ptr, rs, a.strides[nb + 1], packed, dst) };
                return NdArrayTensor::from_data(TensorData::new(unsafe { out.written() }, shape));
            }
            unsafe {
                gemm1(
                    count * m,
                    n,
                    k,
                    dst,
                    n as isize,
                    false,
                    a.ptr,
                    rs,
                    a.strides[nb + 1],
                    b.ptr,
                    b.strides[nb],
                    b.strides[nb + 1],
                    par,
                );
            }
            return NdArrayTensor::from_data(TensorData::new(unsafe { out.written() }, shape));
        }
    }
    // `Σ_i [m, k]_i · [k, n]_i` into one matrix: the batch joins the inner
    // dimension, `[m, (batch, k)] · [(batch, k), n]`.
    let same_batch = (0..nb).all(|i| a.shape[i] == iter[i] && b.shape[i] == iter[i]);
    if out_batch.iter().all(|&o| o == 1) && count > 1 && same_batch {
        let mut a_dims: Vec<usize> = (0..nb).collect();
        a_dims.push(nb + 1);
        let b_dims: Vec<usize> = (0..=nb).collect();
        if let (Some(a_cs), Some(b_rs)) = (
            merged_stride(&a.shape, &a.strides, &a_dims),
            merged_stride(&b.shape, &b.strides, &b_dims),
        ) {
            unsafe {
                gemm1(
                    m,
                    n,
                    count * k,
                    dst,
                    n as isize,
                    false,
                    a.ptr,
                    a.strides[nb],
                    a_cs,
                    b.ptr,
                    b_rs,
                    b.strides[nb + 1],
                    par,
                );
            }
            return NdArrayTensor::from_data(TensorData::new(unsafe { out.written() }, shape));
        }
    }

    // General case: one product per batch entry.
    let a_bs: Vec<isize> = (0..nb)
        .map(|d| if a.shape[d] == 1 { 0 } else { a.strides[d] })
        .collect();
    let b_bs: Vec<isize> = (0..nb)
        .map(|d| if b.shape[d] == 1 { 0 } else { b.strides[d] })
        .collect();
    let mut o_bs = vec![0isize; nb];
    let mut acc = (m * n) as isize;
    for d in (0..nb).rev() {
        o_bs[d] = if out_batch[d] == 1 { 0 } else { acc };
        acc *= out_batch[d] as isize;
    }
    let offset = |idx: usize, strides: &[isize]| -> isize {
        let mut rem = idx;
        let mut off = 0isize;
        for d in (0..nb).rev() {
            off += (rem % iter[d]) as isize * strides[d];
            rem /= iter[d];
        }
        off
    };
    let (a_rs, a_cs, b_rs, b_cs) = (
        a.strides[nb],
        a.strides[nb + 1],
        b.strides[nb],
        b.strides[nb + 1],
    );
    let (a_ptr, b_ptr, dst_addr) = (
        Addr(a.ptr as usize),
        Addr(b.ptr as usize),
        Addr(dst as usize),
    );
    let one = |i: usize, accumulate: bool, par: Parallelism| unsafe {
        let ap = (a_ptr.0 as *const f32).offset(offset(i, &a_bs));
        let bp = (b_ptr.0 as *const f32).offset(offset(i, &b_bs));
        let cp = (dst_addr.0 as *mut f32).offset(offset(i, &o_bs));
        gemm1(
            m, n, k, cp, n as isize, accumulate, ap, a_rs, a_cs, bp, b_rs, b_cs, par,
        );
    };
    if reduced {
        // Several entries add into the same matrix: in order, so the sum
        // is the same on every run.
        for i in 0..count {
            one(i, true, par);
        }
    } else if count >= threads() {
        (0..count)
            .into_par_iter()
            .for_each(|i| one(i, false, Parallelism::None));
    } else {
        for i in 0..count {
            one(i, false, par);
        }
    }
    NdArrayTensor::from_data(TensorData::new(unsafe { out.written() }, shape))
}
