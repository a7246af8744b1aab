//! [`Kernels`] for `Autodiff<B>`, once for every `B: Kernels`: each
//! forward is `B`'s, recorded with a backward that calls `B`'s backward
//! operation and registers only the gradients the graph asks for. What a
//! backward keeps is the least it needs: a norm keeps its input, not the
//! intermediate tensors a composite would; dropout keeps only its key.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{Shape, TensorMetadata};

use super::{DropoutMask, Kernels, PackedWeight};

/// Registers `grad` for a parent node, if the graph tracks it.
macro_rules! register {
    ($grads:expr, $node:expr, $grad:expr) => {
        if let (Some(node), Some(grad)) = ($node, $grad) {
            $grads.register::<B>(node.id, grad);
        }
    };
}

/// Records a stateful operation: `$backward` over the parents `$nodes`,
/// the output `$out`, and (only when tracked) the state `$state`.
macro_rules! record {
    ($backward:expr, $nodes:expr, $state:expr, $out:expr) => {{
        let out = $out;
        match $backward.prepare::<C>($nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish($state, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }};
}

#[derive(Debug)]
struct MatmulBackward;

/// `lhs` (kept only if `rhs` needs a gradient), `rhs` (only if `lhs`
/// does), both shapes, and `rhs`'s packed form.
type MatmulState<B> = (
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Shape,
    Shape,
    Option<PackedWeight>,
);

impl<B: Kernels> Backward<B, 2> for MatmulBackward {
    type State = MatmulState<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (a, b, a_shape, b_shape, packed) = ops.state;
        let da = b.map(|b| B::fused_matmul_grad_lhs(grad.clone(), b, a_shape, packed.as_ref()));
        let db = a.map(|a| B::fused_matmul_grad_rhs(a, grad, b_shape));
        register!(grads, node_a, da);
        register!(grads, node_b, db);
    }
}

#[derive(Debug)]
struct AddBackward;

impl<B: Kernels> Backward<B, 2> for AddBackward {
    /// The shape of `b`.
    type State = Shape;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let db = node_b.as_ref().map(|_| {
            if grad.shape() == ops.state {
                grad.clone()
            } else {
                B::fused_sum_to(grad.clone(), ops.state.clone())
            }
        });
        register!(grads, node_b, db);
        register!(grads, node_a, Some(grad));
    }
}

#[derive(Debug)]
struct ReshapeBackward;

impl<B: Kernels> Backward<B, 1> for ReshapeBackward {
    /// The input's shape.
    type State = Shape;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        register!(grads, node, Some(B::fused_reshape(grad, ops.state)));
    }
}

#[derive(Debug)]
struct RmsNormBackward;

impl<B: Kernels> Backward<B, 2> for RmsNormBackward {
    /// The input, the weight, eps.
    type State = (FloatTensor<B>, FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, eps) = ops.state;
        let need = [node_x.is_some(), node_w.is_some()];
        let [dx, dw] = B::fused_rms_norm_backward(x, w, grad, eps, need);
        register!(grads, node_x, dx);
        register!(grads, node_w, dw);
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: Kernels> Backward<B, 3> for LayerNormBackward {
    /// The input, the weight, eps.
    type State = (FloatTensor<B>, FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, eps) = ops.state;
        let need = [node_x.is_some(), node_w.is_some(), node_b.is_some()];
        let [dx, dw, db] = B::fused_layer_norm_backward(x, w, grad, eps, need);
        register!(grads, node_x, dx);
        register!(grads, node_w, dw);
        register!(grads, node_b, db);
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: Kernels> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        register!(grads, node, Some(B::fused_gelu_backward(ops.state, grad)));
    }
}

#[derive(Debug)]
struct SwigluBackward;

impl<B: Kernels> Backward<B, 2> for SwigluBackward {
    /// The gate and up inputs.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_g, node_u] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (g, u) = ops.state;
        let need = [node_g.is_some(), node_u.is_some()];
        let [dg, du] = B::fused_swiglu_backward(g, u, grad, need);
        register!(grads, node_g, dg);
        register!(grads, node_u, du);
    }
}

#[derive(Debug)]
struct RopeBackward;

impl<B: Kernels> Backward<B, 1> for RopeBackward {
    /// The cos and sin tables.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (cos, sin) = ops.state;
        register!(grads, node, Some(B::fused_rope(grad, cos, sin, true)));
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: Kernels> Backward<B, 1> for SoftmaxBackward {
    /// The output and the scale.
    type State = (FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (y, scale) = ops.state;
        register!(grads, node, Some(B::fused_softmax_backward(y, grad, scale)));
    }
}

#[derive(Debug)]
struct DropoutBackward;

impl<B: Kernels> Backward<B, 1> for DropoutBackward {
    /// The mask, drawn again from its key.
    type State = DropoutMask;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        register!(grads, node, Some(B::fused_dropout(grad, ops.state)));
    }
}

#[derive(Debug)]
struct TargetLogSoftmaxBackward;

impl<B: Kernels> Backward<B, 1> for TargetLogSoftmaxBackward {
    /// The logits, the log-sum-exps, the targets and `n`.
    type State = (FloatTensor<B>, FloatTensor<B>, Vec<Option<usize>>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (logits, lse, targets, n) = ops.state;
        let dx = B::fused_target_log_softmax_backward(logits, lse, &targets, n, grad);
        register!(grads, node, Some(dx));
    }
}

#[derive(Debug)]
struct TiedHeadBackward;

impl<B: Kernels> Backward<B, 1> for TiedHeadBackward {
    /// `E[t] − pᵀE` per position with a target, the targets, `n` and the
    /// hidden states' shape.
    type State = (FloatTensor<B>, Vec<Option<usize>>, usize, Shape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (q, targets, n, shape) = ops.state;
        let dh = B::fused_tied_head_backward(q, &targets, n, shape, grad);
        register!(grads, node, Some(dh));
    }
}

type Ad<B, C> = Autodiff<B, C>;

impl<B: Kernels, C: CheckpointStrategy> Kernels for Ad<B, C> {
    fn fused_matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        packed: Option<&PackedWeight>,
    ) -> FloatTensor<Self> {
        let out = B::fused_matmul(lhs.primitive.clone(), rhs.primitive.clone(), packed);
        let state = (
            rhs.is_tracked().then(|| lhs.primitive.clone()),
            lhs.is_tracked().then(|| rhs.primitive.clone()),
            lhs.primitive.shape(),
            rhs.primitive.shape(),
            packed.cloned(),
        );
        record!(
            MatmulBackward,
            [lhs.node.clone(), rhs.node.clone()],
            state,
            out
        )
    }

    fn fused_add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::fused_add(a.primitive.clone(), b.primitive.clone());
        record!(
            AddBackward,
            [a.node.clone(), b.node.clone()],
            b.primitive.shape(),
            out
        )
    }

    fn fused_reshape(x: FloatTensor<Self>, shape: Shape) -> FloatTensor<Self> {
        let out = B::fused_reshape(x.primitive.clone(), shape);
        record!(ReshapeBackward, [x.node.clone()], x.primitive.shape(), out)
    }

    fn fused_rms_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        let out = B::fused_rms_norm(x.primitive.clone(), weight.primitive.clone(), eps);
        let state = (x.primitive, weight.primitive, eps);
        record!(RmsNormBackward, [x.node, weight.node], state, out)
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        let out = B::fused_layer_norm(
            x.primitive.clone(),
            weight.primitive.clone(),
            bias.primitive,
            eps,
        );
        let state = (x.primitive, weight.primitive, eps);
        record!(
            LayerNormBackward,
            [x.node, weight.node, bias.node],
            state,
            out
        )
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::fused_gelu(x.primitive.clone());
        record!(GeluBackward, [x.node], x.primitive, out)
    }

    fn fused_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::fused_swiglu(gate.primitive.clone(), up.primitive.clone());
        let state = (gate.primitive, up.primitive);
        record!(SwigluBackward, [gate.node, up.node], state, out)
    }

    fn fused_rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        inverse: bool,
    ) -> FloatTensor<Self> {
        let (cos, sin) = (cos.primitive, sin.primitive);
        let out = B::fused_rope(x.primitive, cos.clone(), sin.clone(), inverse);
        // The transpose of the inverse is the forward rotation; the
        // backward recorded is the inverse of the forward's.
        debug_assert!(!inverse, "only the forward rotation is differentiated");
        record!(RopeBackward, [x.node], (cos, sin), out)
    }

    fn fused_softmax_scaled(
        scores: FloatTensor<Self>,
        scale: f32,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let y = B::fused_softmax_scaled(scores.primitive, scale, bias.primitive);
        let kept = y.clone();
        record!(SoftmaxBackward, [scores.node], (kept, scale), y)
    }

    fn fused_dropout(x: FloatTensor<Self>, mask: DropoutMask) -> FloatTensor<Self> {
        let out = B::fused_dropout(x.primitive, mask);
        record!(DropoutBackward, [x.node], mask, out)
    }

    fn fused_target_log_softmax(
        logits: FloatTensor<Self>,
        targets: &[Option<usize>],
        n: usize,
    ) -> [FloatTensor<Self>; 2] {
        let [lp, lse] = B::fused_target_log_softmax(logits.primitive.clone(), targets, n);
        let state = (logits.primitive, lse.clone(), targets.to_vec(), n);
        let lp = record!(TargetLogSoftmaxBackward, [logits.node], state, lp);
        [lp, constant::<B, C>(lse)]
    }

    fn fused_tied_head(
        hidden: FloatTensor<Self>,
        embedding: FloatTensor<Self>,
        targets: &[Option<usize>],
        n: usize,
        _want_grad: bool,
        packed: Option<&PackedWeight>,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        if embedding.is_tracked() {
            // A trained embedding gets its gradient through the logits.
            let [b, s, h] = hidden.primitive.shape().dims::<3>();
            let v = embedding.primitive.shape()[0];
            let flat = Self::fused_reshape(hidden, Shape::from(vec![b * s, h]));
            let et = <Self as FloatTensorOps<Self>>::float_swap_dims(embedding, 0, 1);
            let logits = Self::fused_matmul(flat, et, packed);
            let logits = Self::fused_reshape(logits, Shape::from(vec![b, s, v]));
            let [lp, _] = Self::fused_target_log_softmax(logits, targets, n);
            return (lp, None);
        }
        let shape = hidden.primitive.shape();
        let want = hidden.is_tracked();
        let (lp, q) = B::fused_tied_head(
            hidden.primitive,
            embedding.primitive,
            targets,
            n,
            want,
            packed,
        );
        let lp = match q {
            Some(q) => {
                let state = (q, targets.to_vec(), n, shape);
                record!(TiedHeadBackward, [hidden.node], state, lp)
            }
            None => constant::<B, C>(lp),
        };
        (lp, None)
    }

    fn pack_frozen(weight: &FloatTensor<Self>, release: bool) -> Option<PackedWeight> {
        B::pack_frozen(&weight.primitive, release)
    }
}

/// A tensor outside the graph.
fn constant<B: Kernels, C: CheckpointStrategy>(t: FloatTensor<B>) -> FloatTensor<Ad<B, C>> {
    <Ad<B, C> as burn::tensor::backend::AutodiffBackend>::from_inner(t)
}
