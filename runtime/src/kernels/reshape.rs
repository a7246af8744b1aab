//! Reshapes that share the data. burn-ndarray 0.21 reshapes through
//! `ArrayBase::to_shape(..).into_shared()`, which copies even a contiguous
//! tensor (the borrowed view is cloned into a new array). In a training step
//! that copied every linear layer's weight on each call (`unsqueeze` to
//! `[1, in, out]`, kept by the graph until the backward: 425 MiB on
//! SmolLM2), the logits (100 MiB) and every head split; here a contiguous
//! tensor gets a new shape over the same buffer.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{backend::Backend, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_ndarray::NdArrayTensor;

use super::{cast, is, AdNd, Nd};

/// `x.reshape(shape)`, without a copy when `x` is contiguous on the CPU
/// backend.
pub fn reshape<B: Backend, const D1: usize, const D2: usize>(
    x: Tensor<B, D1>,
    shape: [usize; D2],
) -> Tensor<B, D2> {
    if is::<B, AdNd>() {
        return cast(ad_reshape::<D1, D2>(cast(x), shape));
    }
    if is::<B, Nd>() {
        let t: Tensor<Nd, D1> = cast(x);
        let out = nd_reshape(t.into_primitive().tensor(), &shape);
        return cast(Tensor::<Nd, D2>::from_primitive(TensorPrimitive::Float(
            out,
        )));
    }
    x.reshape(shape)
}

/// `x.unsqueeze::<D2>()` (leading size-1 dimensions), sharing the data.
pub fn unsqueeze<B: Backend, const D1: usize, const D2: usize>(x: Tensor<B, D1>) -> Tensor<B, D2> {
    let dims = x.dims();
    let mut shape = [1usize; D2];
    shape[D2 - D1..].copy_from_slice(&dims);
    reshape(x, shape)
}

/// The reshaped tensor: the same buffer when it is contiguous (in standard
/// order), Burn's copying reshape otherwise.
fn nd_reshape(t: NdArrayTensor, shape: &[usize]) -> NdArrayTensor {
    let shared = match t {
        NdArrayTensor::F32(storage) if storage.view().is_standard_layout() => storage.into_shared(),
        other => {
            return <Nd as FloatTensorOps<Nd>>::float_reshape(other, Shape::from(shape.to_vec()))
        }
    };
    let reshaped = shared
        .into_shape_with_order(shape.to_vec())
        .expect("a contiguous tensor takes any shape of the same size");
    NdArrayTensor::from(reshaped)
}

#[derive(Debug)]
struct ReshapeBackward;

impl Backward<Nd, 1> for ReshapeBackward {
    /// The input's shape.
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        if let Some(node) = node {
            grads.register::<Nd>(node.id, nd_reshape(grad, &ops.state));
        }
    }
}

fn ad_reshape<const D1: usize, const D2: usize>(
    x: Tensor<AdNd, D1>,
    shape: [usize; D2],
) -> Tensor<AdNd, D2> {
    let xp = x.into_primitive().tensor();
    let input_shape = xp.primitive.shape().to_vec();
    let out = nd_reshape(xp.primitive.clone(), &shape);
    let out = match ReshapeBackward
        .prepare::<NoCheckpointing>([xp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(input_shape, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
