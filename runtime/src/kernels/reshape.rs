//! Reshapes that share the data. burn-ndarray 0.21 reshapes through
//! `ArrayBase::to_shape(..).into_shared()`, which copies even a contiguous
//! tensor (the borrowed view is cloned into a new array). In a training step
//! that copied every linear layer's weight on each call (`unsqueeze` to
//! `[1, in, out]`, kept by the graph until the backward: 425 MiB on
//! SmolLM2), the logits (100 MiB) and every head split; here a contiguous
//! tensor gets a new shape over the same buffer.

use burn::tensor::ops::FloatTensorOps;
use burn::tensor::Shape;
use burn_ndarray::NdArrayTensor;

use crate::CpuBackend as Nd;

/// The reshaped tensor: the same buffer when it is contiguous (in standard
/// order), Burn's copying reshape otherwise.
pub(super) fn nd_reshape(t: NdArrayTensor, shape: &[usize]) -> NdArrayTensor {
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
