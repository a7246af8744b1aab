//! Moving data between Burn's NdArray tensors and the flat f32 buffers the
//! fused kernels read and write.

use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArrayTensor;

use super::gemm::Strided;
use super::Nd;

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

pub fn prim<const D: usize>(t: &Tensor<Nd, D>) -> NdArrayTensor {
    t.clone().into_primitive().tensor()
}

pub fn shape(t: &NdArrayTensor) -> Vec<usize> {
    Strided::of(t).map(|v| v.shape).unwrap_or_default()
}
