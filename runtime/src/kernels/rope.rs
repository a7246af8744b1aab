//! Rotary position embedding, `x·cos + rotate_half(x)·sin`, as one pass
//! over the (head-split, strided) query or key view forward and one
//! backward. Burn composes it from two slices, a negation, a concatenation,
//! two products and a sum, each writing a full tensor.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, prim, tensor};
use super::gemm::Strided;
use super::{cast, is, AdNd, Nd};

/// `x·cos + rotate_half(x)·sin` for `x: [batch, heads, seq, head_dim]` (any
/// strides) and tables `[1, 1, seq, head_dim]`; the result is contiguous.
/// `None` where the fast path does not apply.
pub fn rope<B: Backend>(
    x: &Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Option<Tensor<B, 4>> {
    let [_, _, s, d] = x.dims();
    if cos.dims() != [1, 1, s, d] || sin.dims() != [1, 1, s, d] || d % 2 != 0 {
        return None;
    }
    if is::<B, AdNd>() {
        let (x, c, sn): (Tensor<AdNd, 4>, Tensor<AdNd, 4>, Tensor<AdNd, 4>) =
            (cast(x.clone()), cast(cos.clone()), cast(sin.clone()));
        return ad_rope(x, &c.inner(), &sn.inner()).map(cast);
    }
    if is::<B, Nd>() {
        let (x, c, sn): (Tensor<Nd, 4>, Tensor<Nd, 4>, Tensor<Nd, 4>) =
            (cast(x.clone()), cast(cos.clone()), cast(sin.clone()));
        let y = rotate(&prim(&x), &prim(&c), &prim(&sn), false)?;
        return Some(cast(Tensor::<Nd, 4>::from_primitive(
            TensorPrimitive::Float(y),
        )));
    }
    None
}

/// The rotation of `x` (forward) or its transpose applied to `x` (the
/// backward, `inverse`: rotating by −angle), as a contiguous tensor.
///
/// Forward, with `h = d/2`: `y[j] = x[j]·cos[j] − x[j+h]·sin[j]` for
/// `j < h` and `x[j]·cos[j] + x[j−h]·sin[j]` above. Its transpose:
/// `dx[j] = dy[j]·cos[j] + dy[j+h]·sin[j+h]` for `j < h` and
/// `dy[j]·cos[j] − dy[j−h]·sin[j−h]` above.
fn rotate(
    x: &NdArrayTensor,
    cos: &NdArrayTensor,
    sin: &NdArrayTensor,
    inverse: bool,
) -> Option<NdArrayTensor> {
    let v = Strided::of(x)?;
    let (cs, ss) = (contiguous(cos)?, contiguous(sin)?);
    let dims = v.shape.clone();
    let [b, h, s, d] = [dims[0], dims[1], dims[2], dims[3]];
    let half = d / 2;
    if d == 0 || cs.len() != s * d || ss.len() != s * d {
        return None;
    }
    let st = v.strides.clone();
    let base = v.ptr() as usize;
    let mut out = vec![0.0f32; b * h * s * d];
    out.par_chunks_mut(d).enumerate().for_each(|(r, o)| {
        let (p, rest) = (r % s, r / s);
        let (hi, bi) = (rest % h, rest / h);
        let off = bi as isize * st[0] + hi as isize * st[1] + p as isize * st[2];
        // SAFETY: (bi, hi, p, j) lies inside the view's shape.
        let at = |j: usize| unsafe { *(base as *const f32).offset(off + j as isize * st[3]) };
        let (c, sn) = (&cs[p * d..(p + 1) * d], &ss[p * d..(p + 1) * d]);
        for j in 0..half {
            let (lo, hi_) = (at(j), at(j + half));
            if inverse {
                o[j] = lo * c[j] + hi_ * sn[j + half];
                o[j + half] = hi_ * c[j + half] - lo * sn[j];
            } else {
                o[j] = lo * c[j] + -hi_ * sn[j];
                o[j + half] = hi_ * c[j + half] + lo * sn[j + half];
            }
        }
    });
    Some(tensor(out, dims))
}

#[derive(Debug)]
struct RopeBackward;

impl Backward<Nd, 1> for RopeBackward {
    /// The cos and sin tables.
    type State = (NdArrayTensor, NdArrayTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let (cos, sin) = ops.state;
        if let Some(node) = node {
            let dx = rotate(&grad, &cos, &sin, true).expect("f32 gradient");
            grads.register::<Nd>(node.id, dx);
        }
    }
}

fn ad_rope(
    x: Tensor<AdNd, 4>,
    cos: &Tensor<Nd, 4>,
    sin: &Tensor<Nd, 4>,
) -> Option<Tensor<AdNd, 4>> {
    let xp = x.into_primitive().tensor();
    let (c, s) = (prim(cos), prim(sin));
    let y = rotate(&xp.primitive, &c, &s, false)?;
    let out = match RopeBackward
        .prepare::<NoCheckpointing>([xp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((c, s), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}
