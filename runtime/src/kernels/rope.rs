//! Rotary position embedding, `x·cos + rotate_half(x)·sin`, as one pass
//! over the (head-split, strided) query or key view forward and one
//! backward. Burn composes it from two slices, a negation, a concatenation,
//! two products and a sum, each writing a full tensor.

use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::data::{contiguous, tensor};
use super::gemm::Strided;

/// The rotation of `x` (forward) or its transpose applied to `x` (the
/// backward, `inverse`: rotating by −angle), as a contiguous tensor.
///
/// Forward, with `h = d/2`: `y[j] = x[j]·cos[j] − x[j+h]·sin[j]` for
/// `j < h` and `x[j]·cos[j] + x[j−h]·sin[j]` above. Its transpose:
/// `dx[j] = dy[j]·cos[j] + dy[j+h]·sin[j+h]` for `j < h` and
/// `dy[j]·cos[j] − dy[j−h]·sin[j−h]` above.
pub(super) fn rotate(
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
