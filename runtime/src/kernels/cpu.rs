//! [`Kernels`] on the default CPU backend with ft's kernels, and the
//! backends that take every default (Burn's operations).
//!
//! A kernel declines (`None`) what it was not written for — another
//! element type, a shape it does not fuse — and the default runs instead,
//! here and nowhere else.

use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{Shape, TensorMetadata};
use burn_ndarray::NdArrayTensor;

use super::{
    add, cross_entropy, dropout, gemm, generic, norm, reshape, rms_norm, rope, softmax, swiglu,
    tied_head, DropoutMask, GenericCpu, Kernels, PackedWeight,
};
use crate::CpuBackend as Nd;

type T = NdArrayTensor;

fn batch_of(shape: &[usize]) -> Vec<usize> {
    shape[..shape.len() - 2].to_vec()
}

/// `a · b` into a tensor whose batch dimensions are `out_batch` (summing
/// over any that are 1 there but not in the product).
fn product(a: &T, b: &T, out_batch: Option<&[usize]>, packed: Option<&PackedWeight>) -> Option<T> {
    let (a, b) = (gemm::Strided::of(a)?, gemm::Strided::of(b)?);
    let out_batch: Vec<usize> = match out_batch {
        Some(o) => o.to_vec(),
        None => batch_of(&a.shape)
            .iter()
            .zip(batch_of(&b.shape))
            .map(|(x, y)| (*x).max(y))
            .collect(),
    };
    Some(gemm::bmm(&a, &b, &out_batch, packed))
}

fn transposed(t: &T) -> Option<gemm::Strided<'_>> {
    Some(gemm::Strided::of(t)?.t())
}

impl Kernels for Nd {
    fn fused_matmul(lhs: T, rhs: T, packed: Option<&PackedWeight>) -> T {
        product(&lhs, &rhs, None, packed).unwrap_or_else(|| generic::matmul::<Self>(lhs, rhs))
    }

    fn fused_matmul_grad_lhs(
        grad: T,
        rhs: T,
        lhs_shape: Shape,
        packed: Option<&PackedWeight>,
    ) -> T {
        let fast = (|| {
            let (dc, bt) = (gemm::Strided::of(&grad)?, transposed(&rhs)?);
            Some(gemm::bmm(&dc, &bt, &batch_of(&lhs_shape), packed))
        })();
        fast.unwrap_or_else(|| generic::matmul_grad_lhs::<Self>(grad, rhs, lhs_shape))
    }

    fn fused_matmul_grad_rhs(lhs: T, grad: T, rhs_shape: Shape) -> T {
        let fast = (|| {
            let (at, dc) = (transposed(&lhs)?, gemm::Strided::of(&grad)?);
            Some(gemm::bmm(&at, &dc, &batch_of(&rhs_shape), None))
        })();
        fast.unwrap_or_else(|| generic::matmul_grad_rhs::<Self>(lhs, grad, rhs_shape))
    }

    fn fused_add(a: T, b: T) -> T {
        add::forward(&a, &b).unwrap_or_else(|| Self::float_add(a, b))
    }

    fn fused_sum_to(grad: T, shape: Shape) -> T {
        let dims = grad.shape();
        match add::row_len(&dims, &shape) {
            Some(n) if n == *shape.last().unwrap_or(&0) && shape.num_elements() == n => {
                let sums = add::column_sums(&grad, n);
                super::data::tensor(sums, shape.to_vec())
            }
            _ => generic::sum_to::<Self>(grad, shape),
        }
    }

    fn fused_reshape(x: T, shape: Shape) -> T {
        reshape::nd_reshape(x, &shape)
    }

    fn fused_rms_norm(x: T, weight: T, eps: f32) -> T {
        rms_norm::forward(&x, &weight, eps)
            .unwrap_or_else(|| generic::rms_norm::<Self>(x, weight, eps))
    }

    fn fused_rms_norm_backward(
        x: T,
        weight: T,
        grad: T,
        eps: f32,
        need: [bool; 2],
    ) -> [Option<T>; 2] {
        rms_norm::backward(&x, &weight, &grad, eps, need)
    }

    fn fused_layer_norm(x: T, weight: T, bias: T, eps: f32) -> T {
        norm::ln_forward(&x, &weight, &bias, eps)
            .unwrap_or_else(|| generic::layer_norm::<Self>(x, weight, bias, eps))
    }

    fn fused_layer_norm_backward(
        x: T,
        weight: T,
        grad: T,
        eps: f32,
        need: [bool; 3],
    ) -> [Option<T>; 3] {
        norm::ln_backward(&x, &weight, &grad, eps, need)
    }

    fn fused_gelu(x: T) -> T {
        norm::gelu_forward(&x).unwrap_or_else(|| generic::gelu::<Self>(x))
    }

    fn fused_gelu_backward(x: T, grad: T) -> T {
        norm::gelu_backward(&x, &grad)
    }

    fn fused_swiglu(gate: T, up: T) -> T {
        if gate.shape() == up.shape() {
            if let Some(y) = swiglu::forward(&gate, &up) {
                return y;
            }
        }
        generic::swiglu::<Self>(gate, up)
    }

    fn fused_swiglu_backward(gate: T, up: T, grad: T, need: [bool; 2]) -> [Option<T>; 2] {
        swiglu::backward(&gate, &up, &grad, need)
    }

    fn fused_rope(x: T, cos: T, sin: T, inverse: bool) -> T {
        let [_, _, s, d] = x.shape().dims::<4>();
        let table = [1, 1, s, d];
        if cos.shape().dims::<4>() == table && sin.shape().dims::<4>() == table && d % 2 == 0 {
            if let Some(y) = rope::rotate(&x, &cos, &sin, inverse) {
                return y;
            }
        }
        generic::rope::<Self>(x, cos, sin, inverse)
    }

    fn fused_softmax_scaled(scores: T, scale: f32, bias: T) -> T {
        softmax::forward(&scores, scale, &bias)
            .unwrap_or_else(|| generic::softmax_scaled::<Self>(scores, scale, bias))
    }

    fn fused_softmax_backward(y: T, grad: T, scale: f32) -> T {
        softmax::backward(&y, &grad, scale)
    }

    fn fused_dropout(x: T, mask: DropoutMask) -> T {
        dropout::masked(&x, mask).unwrap_or_else(|| generic::dropout::<Self>(x, mask))
    }

    fn fused_target_log_softmax(logits: T, targets: &[Option<usize>], n: usize) -> [T; 2] {
        cross_entropy::forward(&logits, targets, n)
            .unwrap_or_else(|| generic::target_log_softmax::<Self>(logits, targets, n))
    }

    fn fused_target_log_softmax_backward(
        logits: T,
        lse: T,
        targets: &[Option<usize>],
        n: usize,
        dlp: T,
    ) -> T {
        cross_entropy::backward(&logits, &lse, targets, n, &dlp)
    }

    fn fused_tied_head(
        hidden: T,
        embedding: T,
        targets: &[Option<usize>],
        n: usize,
        want_grad: bool,
        packed: Option<&PackedWeight>,
    ) -> (T, Option<T>) {
        match tied_head::forward(&hidden, &embedding, targets, n, want_grad, None, packed) {
            Some(f) => (f.lp, f.grad),
            None => generic::tied_head::<Self>(hidden, embedding, targets, n, want_grad),
        }
    }

    fn fused_tied_head_backward(
        q: T,
        targets: &[Option<usize>],
        n: usize,
        hidden_shape: Shape,
        dlp: T,
    ) -> T {
        let rows = generic::target_rows(targets, n, hidden_shape[1]);
        tied_head::backward(&q, &rows, hidden_shape.to_vec(), &dlp)
    }

    fn pack_frozen(weight: &T, release: bool) -> Option<PackedWeight> {
        PackedWeight::pack(weight, release)
    }
}

/// Every default: Burn's operations on the CPU.
impl Kernels for GenericCpu {}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {}

#[cfg(feature = "flex")]
impl Kernels for burn::backend::Flex {}
