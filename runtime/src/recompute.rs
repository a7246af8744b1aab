//! Gradient checkpointing (the recipe's `gradient_checkpointing = true`):
//! a layer stack whose activations are not kept for the backward pass but
//! recomputed there, one layer at a time.
//!
//! The forward pass runs every layer *untracked* (parameters detached), so
//! nothing inside a layer is recorded, and keeps only each layer's input.
//! The last layer's output becomes a fresh leaf from which the head and the
//! loss are computed as usual. After the loss's backward pass,
//! [`RecomputeTape::backward`] walks the layers from the top: it reruns
//! layer `i` tracked from its saved input (a leaf), back-propagates the
//! gradient arriving at its output (`Σ y·g`, whose gradient with respect
//! to `y` is exactly `g`), takes the gradient at the input for layer `i−1`,
//! and hands the layer's parameter gradients to the accumulator. Last, the
//! part below the layers (embeddings, prompt tuning's virtual tokens,
//! prefix tuning's keys and values) is back-propagated from the gradients
//! that reached its outputs.
//!
//! Activation memory falls from every layer's intermediates to one layer's
//! plus one `[batch, seq, hidden]` input per layer, for one more forward
//! pass of the layers. Dropout masks are pure functions of the step, the
//! micro-batch and the module ([`crate::peft::rng`]), so the recomputed
//! layer draws the masks of the first run and the gradients are those of
//! the ordinary step (tested to float tolerance for every method).
//!
//! Why not inside Burn's autodiff graph, as one custom operation per layer:
//! its backward would have to run a nested backward pass, and Burn 0.21's
//! graph client locks every graph after a backward pass — including the
//! one whose backward is in progress, which deadlocks. Here every backward
//! pass is a top-level one over a small graph.

use crate::kernels::{AutodiffKernels, Kernels};
use std::cell::RefCell;

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Tensor;

/// A layer's prefix keys and values (prefix tuning), `[batch, heads, n, d]`.
pub type KeyValues<B> = (Tensor<B, 4>, Tensor<B, 4>);

/// A layer rerun in the backward pass: the input and the prefix in, the
/// output out.
type LayerFn<B> = Box<dyn Fn(Tensor<B, 3>, Option<&KeyValues<B>>) -> Tensor<B, 3>>;

struct Segment<B: Kernels> {
    /// The layer's input, untracked.
    input: Tensor<B, 3>,
    /// The prefix, an untracked copy…
    prefix: Option<KeyValues<B>>,
    /// …and the tracked original, whose gradients go below the layers.
    prefix_tracked: Option<KeyValues<B>>,
    layer: LayerFn<B>,
}

/// One forward pass through a layer stack.
struct Pass<B: Kernels> {
    /// The stack's input as computed (tracked when something below trains).
    bottom: Tensor<B, 3>,
    segments: Vec<Segment<B>>,
    /// The leaf standing for the stack's output.
    top: Tensor<B, 3>,
}

/// The layer stacks run by a training step's forward passes (one per pass:
/// DPO's chosen and rejected sequences are two), for
/// [`RecomputeTape::backward`] to recompute.
pub struct RecomputeTape<B: Kernels> {
    passes: RefCell<Vec<Pass<B>>>,
}

impl<B: Kernels> Default for RecomputeTape<B> {
    fn default() -> Self {
        RecomputeTape {
            passes: RefCell::new(Vec::new()),
        }
    }
}

/// The same values, cut from any graph and not tracked.
fn untracked<const D: usize, B: Kernels>(t: &Tensor<B, D>) -> Tensor<B, D> {
    t.clone().detach().set_require_grad(false)
}

impl<B: Kernels> RecomputeTape<B> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `layers` in order from `x` and returns the last one's output as
    /// a leaf of the graph. `prefix(i)` is layer `i`'s prefix (possibly
    /// tracked); `f(layer, i, x, prefix)` is one layer's forward. `f` is
    /// kept (with a clone of each layer) to rerun the layers in the
    /// backward pass, so it owns what it captures.
    pub fn run<L, F>(
        &self,
        x: Tensor<B, 3>,
        layers: &[L],
        prefix: impl Fn(usize) -> Option<KeyValues<B>>,
        f: F,
    ) -> Tensor<B, 3>
    where
        L: Module<B> + 'static,
        F: Fn(&L, usize, Tensor<B, 3>, Option<&KeyValues<B>>) -> Tensor<B, 3> + Clone + 'static,
    {
        let mut h = untracked(&x);
        let mut segments = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let prefix_tracked = prefix(i);
            let kv = prefix_tracked
                .as_ref()
                .map(|(k, v)| (untracked(k), untracked(v)));
            let y = f(&layer.clone().no_grad(), i, h.clone(), kv.as_ref());
            let (owned, g) = (layer.clone(), f.clone());
            segments.push(Segment {
                input: h,
                prefix: kv,
                prefix_tracked,
                layer: Box::new(move |x, kv| g(&owned, i, x, kv)),
            });
            h = y;
        }
        let top = h.require_grad();
        self.passes.borrow_mut().push(Pass {
            bottom: x,
            segments,
            top: top.clone(),
        });
        top
    }

    /// Forward passes recorded so far.
    pub fn len(&self) -> usize {
        self.passes.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B: AutodiffKernels> RecomputeTape<B> {
    /// Completes a backward pass: `grads` are the loss's gradients (the head
    /// and everything above the recorded stacks); the parameter gradients
    /// of every layer and of what lies below go into `accum` with them.
    pub fn backward<M: AutodiffModule<B>>(
        self,
        grads: B::Gradients,
        model: &M,
        accum: &mut GradientsAccumulator<M>,
    ) {
        let passes = self.passes.into_inner();
        let tops: Vec<_> = passes.iter().map(|p| p.top.grad(&grads)).collect();
        accum.accumulate(model, GradientsParams::from_grads(grads, model));
        for (pass, top) in passes.into_iter().zip(tops) {
            // A stack the loss does not depend on has nothing to give.
            let Some(mut g) = top else { continue };
            let device = pass.top.device();
            // Gradient terms of what lies below the layers: Σ t·∂L/∂t.
            let mut below: Vec<Tensor<B, 1>> = Vec::new();
            for seg in pass.segments.into_iter().rev() {
                let x = Tensor::<B, 3>::from_inner(seg.input.inner()).require_grad();
                let leaf = |t: &Tensor<B, 4>| Tensor::from_inner(t.clone().inner()).require_grad();
                let kv = seg.prefix.as_ref().map(|(k, v)| (leaf(k), leaf(v)));
                let y = (seg.layer)(x.clone(), kv.as_ref());
                let layer_grads = (y * Tensor::from_inner(g)).sum().backward();
                g = x
                    .grad(&layer_grads)
                    .expect("a layer's output depends on its input");
                if let (Some((k, v)), Some((tk, tv))) = (kv, seg.prefix_tracked) {
                    for (leaf, tracked) in [(k, tk), (v, tv)] {
                        if let Some(g_kv) = leaf.grad(&layer_grads) {
                            below.push((tracked * Tensor::from_inner(g_kv)).sum());
                        }
                    }
                }
                accum.accumulate(model, GradientsParams::from_grads(layer_grads, model));
            }
            // The anchor makes the sum a graph even when nothing below the
            // layers trains (its own gradient is dropped).
            let anchor = Tensor::<B, 1>::zeros([1], &device).require_grad();
            let sum = below.into_iter().fold(
                (pass.bottom * Tensor::from_inner(g)).sum() + anchor,
                |acc, t| acc + t,
            );
            accum.accumulate(model, GradientsParams::from_grads(sum.backward(), model));
        }
    }
}

/// A micro-batch's gradients into `accum`: through the tape when its
/// layers are to be recomputed, straight from `grads` otherwise.
pub fn accumulate<B: AutodiffKernels, M: AutodiffModule<B>>(
    tape: Option<RecomputeTape<B>>,
    grads: B::Gradients,
    model: &M,
    accum: &mut GradientsAccumulator<M>,
) {
    match tape {
        Some(tape) => tape.backward(grads, model, accum),
        None => accum.accumulate(model, GradientsParams::from_grads(grads, model)),
    }
}
