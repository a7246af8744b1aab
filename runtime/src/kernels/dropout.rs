//! Inverted dropout as one parallel pass whose mask is drawn inside the
//! pass from the counter-based generator ([`crate::peft::rng`]) and drawn
//! again in the backward instead of being kept. Multiplying by a mask
//! tensor costs a serial mask loop, a serial product, and the mask held
//! until the backward (a LoRA layer's whole input: 70 MB per SmolLM2 step).
//! Both paths give exactly the masks of [`crate::peft::rng::dropout_mask`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{backend::Backend, Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::data::{contiguous, prim, shape, tensor, Output};
use super::{cast, is, AdNd, Nd};
use crate::peft::rng::{dropout_mask_of, dropout_value, KeptPositions};

/// Elements per parallel task.
const ELEMS_PER_TASK: usize = 16 * 1024;

/// `x · mask` with the inverted-dropout mask of stream `key` at rate `p`;
/// with `kept`, `x` holds the first positions of whole sequences and each
/// element gets its whole-sequence mask value.
pub fn dropout<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    key: u64,
    p: f64,
    kept: Option<KeptPositions>,
) -> Tensor<B, D> {
    let mask = Mask { key, p, kept };
    if is::<B, AdNd>() {
        if let Some(y) = ad_dropout::<D>(cast(x.clone()), mask) {
            return cast(y);
        }
    } else if is::<B, Nd>() {
        let xn: Tensor<Nd, D> = cast(x.clone());
        if let Some(y) = masked(&prim(&xn), mask) {
            return cast(Tensor::<Nd, D>::from_primitive(TensorPrimitive::Float(y)));
        }
    }
    let width = x.dims()[D - 1];
    let mask = dropout_mask_of(key, p, x.shape().num_elements(), width, kept);
    let mask = Tensor::<B, D>::from_data(TensorData::new(mask, x.shape()), &x.device());
    x * mask
}

/// `o[j] = x[j] · mask[first + j]`. The mask's hash is 64-bit integer
/// arithmetic, which vectorises only with AVX-512 DQ (64-bit lane
/// multiplies); the same integers either way, so the same masks.
fn masked_chunk(o: &mut [MaybeUninit<f32>], x: &[f32], key: u64, p: f64, first: u64) {
    #[inline(always)]
    fn imp(o: &mut [MaybeUninit<f32>], x: &[f32], key: u64, p: f64, first: u64) {
        for (j, (o, x)) in o.iter_mut().zip(x).enumerate() {
            o.write(x * dropout_value(key, p, first + j as u64));
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
        unsafe fn avx512(o: &mut [MaybeUninit<f32>], x: &[f32], key: u64, p: f64, first: u64) {
            imp(o, x, key, p, first)
        }
        if super::fastmath::avx512dq() {
            // SAFETY: the features were detected.
            return unsafe { avx512(o, x, key, p, first) };
        }
    }
    imp(o, x, key, p, first)
}

/// A dropout mask: its stream, rate and, for a tensor of the first
/// positions only, which positions.
#[derive(Clone, Copy, Debug)]
struct Mask {
    key: u64,
    p: f64,
    kept: Option<KeptPositions>,
}

/// `t` (row-major) times the mask, element `i` by mask value `i` (or, with
/// kept positions, by the whole-sequence value of element `i`).
fn masked(t: &burn_ndarray::NdArrayTensor, m: Mask) -> Option<burn_ndarray::NdArrayTensor> {
    let xs = contiguous(t)?;
    let mut out = Output::new(xs.len());
    let Mask { key, p, kept } = m;
    match kept {
        None => out
            .slice()
            .par_chunks_mut(ELEMS_PER_TASK)
            .zip(xs.par_chunks(ELEMS_PER_TASK))
            .enumerate()
            .for_each(|(task, (o, x))| masked_chunk(o, x, key, p, (task * ELEMS_PER_TASK) as u64)),
        // A row's counters are consecutive in the whole sequence too.
        Some(k) => {
            let width = *shape(t).last()?;
            out.slice()
                .par_chunks_mut(width)
                .zip(xs.par_chunks(width))
                .enumerate()
                .for_each(|(row, (o, x))| {
                    let first = k.counter((row * width) as u64, width as u64);
                    masked_chunk(o, x, key, p, first)
                })
        }
    }
    // SAFETY: the chunks cover the output.
    Some(tensor(unsafe { out.assume_init() }, shape(t)))
}

/// `dx = dy · mask`, the mask drawn again from its key.
#[derive(Debug)]
struct DropoutBackward;

impl Backward<Nd, 1> for DropoutBackward {
    type State = Mask;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        if let Some(node) = node {
            let dx = masked(&grad, ops.state).expect("f32 gradient");
            grads.register::<Nd>(node.id, dx);
        }
    }
}

fn ad_dropout<const D: usize>(x: Tensor<AdNd, D>, m: Mask) -> Option<Tensor<AdNd, D>> {
    let xp = x.into_primitive().tensor();
    let y = masked(&xp.primitive, m)?;
    let out = match DropoutBackward
        .prepare::<NoCheckpointing>([xp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(m, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}
