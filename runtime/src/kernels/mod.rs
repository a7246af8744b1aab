//! Fast paths for the hot tensor operations of training and inference on
//! the default CPU backend, behind functions generic over any Burn backend.
//!
//! The models stay generic (`B: Backend`); [`matmul`] and [`linear`] check
//! at run time whether `B` is [`crate::CpuBackend`] or `Autodiff` of it and
//! then compute with [`gemm::bmm`] (one large strided GEMM where Burn's
//! NdArray runs one matrixmultiply call per batch entry), with a
//! hand-written backward that only computes the gradients the graph needs
//! (a frozen weight gets none, and its input gradient reads the weight
//! through transposed strides instead of copying it). Any other backend
//! (Flex, CUDA, f64) takes Burn's own operations, so results there are
//! unchanged.
//!
//! The element-wise passes (LayerNorm, RMSNorm, GELU, SwiGLU, RoPE, the
//! attention softmax, dropout, adds, the LM loss) are single fused passes
//! split over rayon's threads, compiled for AVX2 where the CPU has it
//! (`fastmath::simd_fn!`) with a vectorisable `exp`; their outputs are
//! written without a zero-fill first.

mod add;
pub mod amx;
mod cross_entropy;
mod data;
mod dropout;
mod fastmath;
pub mod gemm;
mod norm;
mod pages;
mod reshape;
mod rms_norm;
mod rope;
mod softmax;
mod swiglu;
mod tied_head;

pub use add::add;
pub use cross_entropy::target_log_softmax;
pub use dropout::dropout;
pub use norm::{gelu, layer_norm};
pub use reshape::{reshape, unsqueeze};
pub use rms_norm::rms_norm;
pub use rope::rope;
pub use softmax::softmax_scaled;
pub use swiglu::swiglu;
pub use tied_head::tied_head_log_softmax;

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;

use crate::CpuBackend;

type Nd = CpuBackend;
type AdNd = Autodiff<CpuBackend>;

/// Moves a value to a type known (by `TypeId`) to be its own.
fn cast<A: 'static, T: 'static>(x: A) -> T {
    let mut slot = Some(x);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
        .expect("cast between identical types")
}

fn is<B: 'static, T: 'static>() -> bool {
    TypeId::of::<B>() == TypeId::of::<T>()
}

/// Whether [`matmul`] and [`linear`] take the fast path on backend `B`.
pub fn fast<B: Backend>() -> bool {
    is::<B, AdNd>() || is::<B, Nd>()
}

/// `lhs · rhs` over the last two dimensions, batch dimensions broadcast as
/// in [`Tensor::matmul`].
pub fn matmul<B: Backend, const D: usize>(lhs: Tensor<B, D>, rhs: Tensor<B, D>) -> Tensor<B, D> {
    if is::<B, AdNd>() {
        return cast(ad_matmul::<D>(cast(lhs), cast(rhs)));
    }
    if is::<B, Nd>() {
        return cast(nd_matmul::<D>(cast(lhs), cast(rhs)));
    }
    lhs.matmul(rhs)
}

/// `x · w + bias` for Burn's `[in, out]` weight layout, as
/// [`burn::tensor::module::linear`].
pub fn linear<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    if D < 2 || !fast::<B>() {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let y = matmul(x, unsqueeze::<B, 2, D>(weight));
    match bias {
        Some(b) => add(y, unsqueeze::<B, 1, D>(b)),
        None => y,
    }
}

/// Registers every frozen 2-d weight of `module` (those without
/// `require_grad`) for bf16 products on AMX ([`amx`]); returns how many.
/// With `release_linear`, the f32 copies of the weights of `Linear`
/// modules are handed back once packed (see [`amx::register`]): right
/// when nothing else reads them — not under DoRA (which takes the norms of
/// `W`) nor full fine-tuning (whose export writes every weight). Other
/// frozen matrices (embeddings, read row by row) keep theirs.
/// Nothing is registered on other backends or without AMX.
pub fn register_frozen_bf16<B: Backend, M: Module<B>>(module: &M, release_linear: bool) -> usize {
    struct Visit {
        count: usize,
        release_linear: bool,
        /// The container types entered (`Struct:Linear`, `Vec`, …).
        containers: Vec<String>,
    }
    impl<B: Backend> ModuleVisitor<B> for Visit {
        fn enter_module(&mut self, _: &str, container_type: &str) {
            self.containers.push(container_type.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            if D != 2 || t.is_require_grad() {
                return;
            }
            let in_linear = self.containers.last().is_some_and(|c| c == "Struct:Linear");
            if let Some(p) = nd_primitive(t) {
                if amx::register(&p, self.release_linear && in_linear) {
                    self.count += 1;
                }
            }
        }
    }
    if !fast::<B>() || !amx::available() {
        return 0;
    }
    let mut visit = Visit {
        count: 0,
        release_linear,
        containers: Vec::new(),
    };
    module.visit(&mut visit);
    visit.count
}

/// Frozen weights registered for bf16 products ([`register_frozen_bf16`])
/// for as long as this lives; dropping it unregisters every weight in the
/// registry (after which a model whose f32 copies were released must not
/// be used). Its figures are the registry's: a model registered just
/// before (DPO's reference) is counted with the one registered here.
pub struct FrozenBf16 {
    pub weights: usize,
    pub packed_bytes: usize,
    /// f32 copies handed back to the kernel.
    pub released_bytes: usize,
}

impl FrozenBf16 {
    /// Registers `module`'s frozen weights; `None` if nothing is
    /// registered (no AMX, another backend, nothing frozen).
    pub fn register<B: Backend, M: Module<B>>(
        module: &M,
        release_linear: bool,
    ) -> Option<FrozenBf16> {
        register_frozen_bf16(module, release_linear);
        let weights = amx::registered();
        (weights > 0).then(|| FrozenBf16 {
            weights,
            packed_bytes: amx::packed_bytes(),
            released_bytes: amx::released_bytes(),
        })
    }
}

impl Drop for FrozenBf16 {
    fn drop(&mut self) {
        amx::clear();
    }
}

/// The NdArray tensor under a tensor of the CPU backend (or its autodiff).
fn nd_primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> Option<NdArrayTensor> {
    if is::<B, AdNd>() {
        let t: Tensor<AdNd, D> = cast(t);
        return Some(t.into_primitive().tensor().primitive);
    }
    if is::<B, Nd>() {
        let t: Tensor<Nd, D> = cast(t);
        return Some(t.into_primitive().tensor());
    }
    None
}

fn batch_of(shape: &[usize]) -> Vec<usize> {
    shape[..shape.len() - 2].to_vec()
}

fn nd_product(l: &NdArrayTensor, r: &NdArrayTensor) -> Option<NdArrayTensor> {
    let (a, b) = (gemm::Strided::of(l)?, gemm::Strided::of(r)?);
    let out_batch: Vec<usize> = batch_of(&a.shape)
        .iter()
        .zip(batch_of(&b.shape))
        .map(|(x, y)| (*x).max(y))
        .collect();
    Some(gemm::bmm(&a, &b, &out_batch))
}

fn nd_matmul<const D: usize>(lhs: Tensor<Nd, D>, rhs: Tensor<Nd, D>) -> Tensor<Nd, D> {
    match nd_product(
        &lhs.clone().into_primitive().tensor(),
        &rhs.clone().into_primitive().tensor(),
    ) {
        Some(out) => Tensor::from_primitive(TensorPrimitive::Float(out)),
        None => lhs.matmul(rhs),
    }
}

/// The backward of `C = A · B`: `dA = dC · Bᵀ`, `dB = Aᵀ · dC`, each
/// summed over the batch dimensions its operand was broadcast along, and
/// each only when that operand is tracked.
#[derive(Debug)]
struct MatmulBackward;

/// `A` (kept only if `B` needs a gradient), `B` (only if `A` does), and the
/// batch shapes of `A` and `B`.
type MatmulState = (
    Option<NdArrayTensor>,
    Option<NdArrayTensor>,
    Vec<usize>,
    Vec<usize>,
);

impl Backward<Nd, 2> for MatmulBackward {
    type State = MatmulState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let (a, b, a_batch, b_batch) = ops.state;
        let dc = gemm::Strided::of(&grad).expect("f32 gradient");
        if let (Some(node), Some(b)) = (node_a, b.as_ref()) {
            let bt = gemm::Strided::of(b).expect("f32 operand").t();
            grads.register::<Nd>(node.id, gemm::bmm(&dc, &bt, &a_batch));
        }
        if let (Some(node), Some(a)) = (node_b, a.as_ref()) {
            let at = gemm::Strided::of(a).expect("f32 operand").t();
            grads.register::<Nd>(node.id, gemm::bmm(&at, &dc, &b_batch));
        }
    }
}

fn ad_matmul<const D: usize>(lhs: Tensor<AdNd, D>, rhs: Tensor<AdNd, D>) -> Tensor<AdNd, D> {
    let (l, r) = (
        lhs.clone().into_primitive().tensor(),
        rhs.clone().into_primitive().tensor(),
    );
    let Some(out) = nd_product(&l.primitive, &r.primitive) else {
        return lhs.matmul(rhs);
    };
    let (l_tracked, r_tracked) = (l.is_tracked(), r.is_tracked());
    let a_batch = batch_of(&lhs.dims());
    let b_batch = batch_of(&rhs.dims());
    let out = match MatmulBackward
        .prepare::<NoCheckpointing>([l.node.clone(), r.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            (
                r_tracked.then(|| l.primitive.clone()),
                l_tracked.then(|| r.primitive.clone()),
                a_batch,
                b_batch,
            ),
            out,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(test)]
mod tests;
