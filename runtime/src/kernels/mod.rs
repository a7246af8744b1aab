//! ft's fused operations, behind Burn's backend extension: [`Kernels`] is
//! a trait extending [`Backend`] with the hot operations of training and
//! inference (products, norms, activations, attention's softmax, RoPE,
//! dropout, the LM loss), each with its backward.
//!
//! - Every method has a default written with Burn's own operations
//!   ([`generic`]): that is what CUDA, Flex and any other backend run.
//! - The default CPU backend ([`crate::CpuBackend`]) implements them with
//!   ft's kernels ([`cpu`]): one large strided GEMM where Burn's NdArray
//!   runs one matrixmultiply call per batch entry, and single fused passes
//!   split over rayon's threads, compiled for AVX2 or AVX-512 where the
//!   CPU has them, with outputs written without a zero-fill first.
//! - `Autodiff<B>` implements them once for every `B: Kernels`
//!   ([`autodiff`]): the forward is `B`'s, and the backward calls `B`'s
//!   backward operations, computing only the gradients the graph needs (a
//!   frozen weight gets none).
//!
//! Models are generic over `B: Kernels` and call the functions below; they
//! never ask which backend they run on. [`GenericCpu`] is the CPU backend
//! with every default, so the path other backends take is tested here.
//!
//! A frozen weight may be packed for bf16 products on AMX
//! ([`PackedWeight`], `precision = bf16`); the layer that multiplies by it
//! owns the packed form and passes it to the product.

mod add;
pub mod amx;
mod autodiff;
mod cpu;
mod cross_entropy;
mod data;
mod dropout;
mod fastmath;
pub mod gemm;
pub mod generic;
mod norm;
mod packed;
mod pages;
mod reshape;
mod rms_norm;
mod rope;
mod softmax;
mod swiglu;
mod tied_head;

pub use packed::{PackedFigures, PackedWeight};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, Tensor, TensorPrimitive};

use crate::peft::rng::KeptPositions;

/// The CPU backend with Burn's operations in place of ft's kernels: the
/// arithmetic CUDA and every other backend run, on the CPU (its integers
/// are 32-bit, which is what makes it a distinct backend type).
pub type GenericCpu = burn::backend::NdArray<f32, i32>;

/// A training backend whose inner (inference) backend has the kernels too.
pub trait AutodiffKernels: AutodiffBackend<InnerBackend: Kernels> + Kernels {}

impl<B> AutodiffKernels for B
where
    B: AutodiffBackend + Kernels,
    B::InnerBackend: Kernels,
{
}

/// An inverted-dropout mask: its stream, rate and, for a tensor of the
/// first positions of whole sequences only, which positions
/// ([`crate::peft::rng::dropout_mask_of`] draws the same values).
#[derive(Clone, Copy, Debug)]
pub struct DropoutMask {
    pub key: u64,
    pub p: f64,
    pub kept: Option<KeptPositions>,
}

/// The fused operations, on a backend's float primitives. Shapes are those
/// of the public functions below; `Option` gradients are computed only
/// when asked for.
pub trait Kernels: Backend {
    /// `lhs · rhs` over the last two dimensions, batch dimensions
    /// broadcast; `packed` is a packed form of `rhs` (or of its transpose).
    fn fused_matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        packed: Option<&PackedWeight>,
    ) -> FloatTensor<Self> {
        let _ = packed;
        generic::matmul::<Self>(lhs, rhs)
    }
    /// `grad · rhsᵀ`, summed over the batch dimensions `lhs` was broadcast
    /// along (`lhs_shape`).
    fn fused_matmul_grad_lhs(
        grad: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        lhs_shape: Shape,
        packed: Option<&PackedWeight>,
    ) -> FloatTensor<Self> {
        let _ = packed;
        generic::matmul_grad_lhs::<Self>(grad, rhs, lhs_shape)
    }
    /// `lhsᵀ · grad`, summed to `rhs_shape`.
    fn fused_matmul_grad_rhs(
        lhs: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        rhs_shape: Shape,
    ) -> FloatTensor<Self> {
        generic::matmul_grad_rhs::<Self>(lhs, grad, rhs_shape)
    }
    /// `a + b`, `b` broadcast to `a`'s shape.
    fn fused_add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_add(a, b)
    }
    /// `grad` summed over the dimensions where `shape` is 1 (the gradient
    /// of a broadcast operand).
    fn fused_sum_to(grad: FloatTensor<Self>, shape: Shape) -> FloatTensor<Self> {
        generic::sum_to::<Self>(grad, shape)
    }
    fn fused_reshape(x: FloatTensor<Self>, shape: Shape) -> FloatTensor<Self> {
        Self::float_reshape(x, shape)
    }
    /// `x / sqrt(mean(x²) + eps) · weight` over the last dimension.
    fn fused_rms_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        generic::rms_norm::<Self>(x, weight, eps)
    }
    /// `(dx, dweight)`.
    fn fused_rms_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
        need: [bool; 2],
    ) -> [Option<FloatTensor<Self>>; 2] {
        generic::rms_norm_backward::<Self>(x, weight, grad, eps, need)
    }
    /// `(x − mean) / sqrt(var + eps) · weight + bias` over the last
    /// dimension (biased variance, as PyTorch).
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        generic::layer_norm::<Self>(x, weight, bias, eps)
    }
    /// `(dx, dweight, dbias)`.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
        need: [bool; 3],
    ) -> [Option<FloatTensor<Self>>; 3] {
        generic::layer_norm_backward::<Self>(x, weight, grad, eps, need)
    }
    /// GELU, the exact erf form (as transformers' BERT).
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        generic::gelu::<Self>(x)
    }
    /// `grad · (Φ(x) + x·φ(x))`, the exact derivative.
    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        generic::gelu_backward::<Self>(x, grad)
    }
    /// `silu(gate) · up`.
    fn fused_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        generic::swiglu::<Self>(gate, up)
    }
    /// `(dgate, dup)`.
    fn fused_swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        need: [bool; 2],
    ) -> [Option<FloatTensor<Self>>; 2] {
        generic::swiglu_backward::<Self>(gate, up, grad, need)
    }
    /// `x·cos + rotate_half(x)·sin` for `x: [batch, heads, seq, head_dim]`
    /// and tables broadcast to it; with `inverse`, the transpose of that
    /// map (rotation by −angle: the backward).
    fn fused_rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        inverse: bool,
    ) -> FloatTensor<Self> {
        generic::rope::<Self>(x, cos, sin, inverse)
    }
    /// `softmax(scores · scale + bias)` over the last dimension of a
    /// rank-4 tensor, `bias` broadcast.
    fn fused_softmax_scaled(
        scores: FloatTensor<Self>,
        scale: f32,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        generic::softmax_scaled::<Self>(scores, scale, bias)
    }
    /// `scale · y ⊙ (dy − Σ dy·y)` per row, from the output `y`.
    fn fused_softmax_backward(
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        generic::softmax_backward::<Self>(y, grad, scale)
    }
    /// `x · mask` (also its own backward).
    fn fused_dropout(x: FloatTensor<Self>, mask: DropoutMask) -> FloatTensor<Self> {
        generic::dropout::<Self>(x, mask)
    }
    /// `log_softmax(logits[b, t, :])[targets[b·n + t]]` for the first `n`
    /// positions of `logits: [batch, seq, vocab]`, 0 without a target; and
    /// each position's log-sum-exp, for the backward. Both `[batch, n]`.
    fn fused_target_log_softmax(
        logits: FloatTensor<Self>,
        targets: &[Option<usize>],
        n: usize,
    ) -> [FloatTensor<Self>; 2] {
        generic::target_log_softmax::<Self>(logits, targets, n)
    }
    /// The logits' gradient from the log-probabilities' (`dlp`).
    fn fused_target_log_softmax_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: &[Option<usize>],
        n: usize,
        dlp: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        generic::target_log_softmax_backward::<Self>(logits, lse, targets, n, dlp)
    }
    /// `log_softmax(hidden · embeddingᵀ)[target]` as
    /// [`Self::fused_target_log_softmax`], for `hidden: [batch, seq, h]` and
    /// `embedding: [vocab, h]`, without the `[positions, vocab]` logits
    /// necessarily being written; with `want_grad`, also `E[t] − pᵀE` for
    /// each position with a target (in order), `[positions, h]`.
    fn fused_tied_head(
        hidden: FloatTensor<Self>,
        embedding: FloatTensor<Self>,
        targets: &[Option<usize>],
        n: usize,
        want_grad: bool,
        packed: Option<&PackedWeight>,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let _ = packed;
        generic::tied_head::<Self>(hidden, embedding, targets, n, want_grad)
    }
    /// The hidden states' gradient: `dlp · (E[t] − pᵀE)` at each position
    /// with a target, 0 elsewhere.
    fn fused_tied_head_backward(
        q: FloatTensor<Self>,
        targets: &[Option<usize>],
        n: usize,
        hidden_shape: Shape,
        dlp: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        generic::tied_head_backward::<Self>(q, targets, n, hidden_shape, dlp)
    }
    /// `weight` (a frozen 2-d weight) packed for bf16 products, or `None`
    /// where this backend has no such form (every default) or the machine
    /// lacks the unit. With `release`, the f32 copy is handed back to the
    /// system once packed: only for weights read by products alone.
    fn pack_frozen(weight: &FloatTensor<Self>, release: bool) -> Option<PackedWeight> {
        let _ = (weight, release);
        None
    }
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn wrap<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// `lhs · rhs` over the last two dimensions, batch dimensions broadcast as
/// in [`Tensor::matmul`].
pub fn matmul<B: Kernels, const D: usize>(lhs: Tensor<B, D>, rhs: Tensor<B, D>) -> Tensor<B, D> {
    wrap(B::fused_matmul(prim(lhs), prim(rhs), None))
}

/// `x · w + bias` for Burn's `[in, out]` weight layout, as
/// [`burn::tensor::module::linear`]; `packed` is `w`'s packed form.
pub fn linear<B: Kernels, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    packed: Option<&PackedWeight>,
) -> Tensor<B, D> {
    let w = prim(unsqueeze::<B, 2, D>(weight));
    let y: Tensor<B, D> = wrap(B::fused_matmul(prim(x), w, packed));
    match bias {
        Some(b) => add(y, unsqueeze::<B, 1, D>(b)),
        None => y,
    }
}

/// `a + b`, where `b` has `a`'s shape or broadcasts to it.
pub fn add<B: Kernels, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    wrap(B::fused_add(prim(a), prim(b)))
}

/// `x.reshape(shape)`; without a copy on the CPU backend when `x` is
/// contiguous.
pub fn reshape<B: Kernels, const D1: usize, const D2: usize>(
    x: Tensor<B, D1>,
    shape: [usize; D2],
) -> Tensor<B, D2> {
    wrap(B::fused_reshape(prim(x), Shape::from(shape.to_vec())))
}

/// `x.unsqueeze::<D2>()` (leading size-1 dimensions), sharing the data.
pub fn unsqueeze<B: Kernels, const D1: usize, const D2: usize>(x: Tensor<B, D1>) -> Tensor<B, D2> {
    let dims = x.dims();
    let mut shape = [1usize; D2];
    shape[D2 - D1..].copy_from_slice(&dims);
    reshape(x, shape)
}

/// Llama's RMSNorm over the last dimension.
pub fn rms_norm<B: Kernels, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    wrap(B::fused_rms_norm(prim(x), prim(weight), eps as f32))
}

/// BERT's LayerNorm over the last dimension.
pub fn layer_norm<B: Kernels, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    wrap(B::fused_layer_norm(
        prim(x),
        prim(weight),
        prim(bias),
        eps as f32,
    ))
}

/// GELU with the exact erf form and its exact derivative (Burn's own
/// backward uses the tanh approximation's).
pub fn gelu<B: Kernels, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    wrap(B::fused_gelu(prim(x)))
}

/// `silu(gate) · up`, Llama's MLP activation.
pub fn swiglu<B: Kernels, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    wrap(B::fused_swiglu(prim(gate), prim(up)))
}

/// `x·cos + rotate_half(x)·sin` for `x: [batch, heads, seq, head_dim]`;
/// the tables get no gradient.
pub fn rope<B: Kernels>(x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
    wrap(B::fused_rope(
        prim(x),
        prim(cos.clone()),
        prim(sin.clone()),
        false,
    ))
}

/// `softmax(scores · scale + bias, 3)`; `bias` broadcasts to `scores` and
/// gets no gradient (it is the attention mask).
pub fn softmax_scaled<B: Kernels>(
    scores: Tensor<B, 4>,
    scale: f64,
    bias: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    wrap(B::fused_softmax_scaled(
        prim(scores),
        scale as f32,
        prim(bias.clone()),
    ))
}

/// `x · mask` with the inverted-dropout mask of stream `key` at rate `p`;
/// with `kept`, `x` holds the first positions of whole sequences and each
/// element gets its whole-sequence mask value.
pub fn dropout<B: Kernels, const D: usize>(
    x: Tensor<B, D>,
    key: u64,
    p: f64,
    kept: Option<KeptPositions>,
) -> Tensor<B, D> {
    wrap(B::fused_dropout(prim(x), DropoutMask { key, p, kept }))
}

/// `log_softmax(logits[b, t, :])[targets[b·n + t]]` for the first `n`
/// positions of each row: `[batch, n]`. A position whose target is `None`
/// (or outside the vocabulary) gets 0 and no gradient.
pub fn target_log_softmax<B: Kernels>(
    logits: Tensor<B, 3>,
    targets: &[Option<usize>],
    n: usize,
) -> Tensor<B, 2> {
    let v = logits.dims()[2];
    let targets = in_vocabulary(targets, v);
    let [lp, _] = B::fused_target_log_softmax(prim(logits), &targets, n);
    wrap(lp)
}

/// [`target_log_softmax`] of `hidden · embeddingᵀ` (a tied LM head), a
/// slice of the vocabulary at a time where the backend can: the logits are
/// never written. The gradient flows to `hidden` (and to the embedding,
/// through the logits, when it is trained).
pub fn tied_head_log_softmax<B: Kernels>(
    hidden: Tensor<B, 3>,
    embedding: Tensor<B, 2>,
    targets: &[Option<usize>],
    n: usize,
    packed: Option<&PackedWeight>,
) -> Tensor<B, 2> {
    let v = embedding.dims()[0];
    let targets = in_vocabulary(targets, v);
    // Autodiff decides from the graph whether the backward's terms are kept.
    let (lp, _) = B::fused_tied_head(prim(hidden), prim(embedding), &targets, n, false, packed);
    wrap(lp)
}

/// Targets outside a vocabulary of `v` words count as none.
fn in_vocabulary(targets: &[Option<usize>], v: usize) -> Vec<Option<usize>> {
    targets.iter().map(|t| t.filter(|&t| t < v)).collect()
}

/// `weight` packed for bf16 products on this backend, if it has such a
/// form (see [`Kernels::pack_frozen`]).
pub fn pack_frozen<B: Kernels>(weight: &Tensor<B, 2>, release: bool) -> Option<PackedWeight> {
    B::pack_frozen(&weight.clone().into_primitive().tensor(), release)
}

#[cfg(test)]
mod tests;
