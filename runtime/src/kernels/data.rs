//! Moving data between Burn's NdArray tensors and the flat f32 buffers the
//! fused kernels read and write.

use burn::tensor::TensorData;
use burn_ndarray::NdArrayTensor;

use super::gemm::Strided;

/// The data of an f32 tensor in row-major order: borrowed when it already
/// is, copied otherwise.
pub fn contiguous(t: &NdArrayTensor) -> Option<std::borrow::Cow<'_, [f32]>> {
    let v = Strided::of(t)?;
    let n: usize = v.shape.iter().product();
    let mut expected = 1isize;
    let mut standard = true;
    for d in (0..v.shape.len()).rev() {
        if v.shape[d] != 1 && v.strides[d] != expected {
            standard = false;
        }
        expected *= v.shape[d] as isize;
    }
    if standard {
        // SAFETY: a standard-layout view of `n` elements starting at ptr,
        // borrowed from `t`.
        return Some(std::borrow::Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(v.ptr(), n)
        }));
    }
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; v.shape.len()];
    for _ in 0..n {
        let off: isize = idx
            .iter()
            .zip(&v.strides)
            .map(|(i, s)| *i as isize * s)
            .sum();
        out.push(unsafe { *v.ptr().offset(off) });
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < v.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

pub fn tensor(data: Vec<f32>, shape: Vec<usize>) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(data, shape))
}

pub fn shape(t: &NdArrayTensor) -> Vec<usize> {
    Strided::of(t).map(|v| v.shape).unwrap_or_default()
}

/// `s` as initialised values, once every element has been written.
///
/// # Safety
/// Every element of `s` has been written.
pub unsafe fn init_mut(s: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout; the caller wrote them all.
    unsafe { &mut *(s as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
}

/// An f32 buffer that its writer fills completely before anything reads
/// it, so it skips the zeroing pass of `vec![0.0; len]` (on a reused heap
/// block that pass is a full extra write of every output).
pub struct Output(Vec<std::mem::MaybeUninit<f32>>);

impl Output {
    pub fn new(len: usize) -> Self {
        let mut v = Vec::with_capacity(len);
        // SAFETY: MaybeUninit needs no initialisation.
        unsafe { v.set_len(len) };
        Output(v)
    }

    pub fn as_mut_ptr(&mut self) -> *mut f32 {
        self.0.as_mut_ptr().cast()
    }

    pub fn slice(&mut self) -> &mut [std::mem::MaybeUninit<f32>] {
        &mut self.0
    }

    /// # Safety
    /// Every element has been written.
    pub unsafe fn assume_init(self) -> Vec<f32> {
        let mut v = std::mem::ManuallyDrop::new(self.0);
        // SAFETY: same allocation, length and capacity; MaybeUninit<f32>
        // has f32's layout, and the caller wrote every element.
        unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast(), v.len(), v.capacity()) }
    }
}

/// The frame of a row-wise backward pass (LayerNorm's, RMSNorm's) over
/// `len` elements in rows of `n`, split into tasks of `rows_per_task` rows:
/// `body(range, dx, partial)` writes the task's rows of `dx` (only when
/// `need_x`) and adds into its own `k · n` partial sums. Returns `dx`
/// (empty unless asked for) and the partial sums added in task order — a
/// fixed order, not the thread count's, so every machine gets the same bits.
pub fn row_tasks(
    len: usize,
    n: usize,
    rows_per_task: usize,
    k: usize,
    need_x: bool,
    body: impl Fn(std::ops::Range<usize>, Option<&mut [f32]>, &mut [f32]) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    let chunk = n * rows_per_task;
    let tasks = len.div_ceil(chunk);
    let mut partial = vec![0.0f32; tasks * k * n];
    let range = |t: usize| t * chunk..((t + 1) * chunk).min(len);
    let mut dx = if need_x {
        vec![0.0f32; len]
    } else {
        Vec::new()
    };
    if need_x {
        dx.par_chunks_mut(chunk)
            .zip(partial.par_chunks_mut(k * n))
            .enumerate()
            .for_each(|(t, (d, p))| body(range(t), Some(d), p));
    } else {
        partial
            .par_chunks_mut(k * n)
            .enumerate()
            .for_each(|(t, p)| body(range(t), None, p));
    }
    let mut sums = vec![0.0f32; k * n];
    for p in partial.chunks(k * n) {
        sums.iter_mut().zip(p).for_each(|(s, v)| *s += v);
    }
    (dx, sums)
}
