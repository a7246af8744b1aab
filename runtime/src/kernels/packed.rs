//! A frozen weight packed for bf16 products on AMX, owned by the layer that
//! multiplies by it (a `Linear`, or the tied LM head's embedding) and
//! handed to each product with it. Dropping the last clone drops the
//! packed tiles and, if the f32 copy was handed back to the system, makes
//! its pages accessible again before the tensor itself can be freed.

use std::sync::Arc;

use burn_ndarray::NdArrayTensor;

use super::amx::Packed;
use super::gemm::Strided;

#[derive(Clone)]
pub struct PackedWeight(Arc<Inner>);

/// A view of the weight: its data pointer, `[k, n]` and strides.
type View = (usize, usize, usize, isize, isize);

struct Inner {
    /// `W: [k, n]` as stored, and `Wᵀ`, each keyed by its view (pointer,
    /// `k`, `n`, strides), where `n` allowed packing.
    forms: Vec<(View, Packed)>,
    /// A clone of the tensor: its memory stays reserved for as long as the
    /// packed forms are used in its place.
    _keep: NdArrayTensor,
    /// Pages of the f32 copy handed back to the system.
    released: Option<(usize, usize)>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedWeight")
            .field("forms", &self.0.forms.len())
            .field("released", &self.0.released.map(|r| r.1))
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(range) = self.released {
            super::pages::restore(&[range]);
        }
    }
}

impl PackedWeight {
    /// Packs a 2-d tensor in both orientations (each where its columns fill
    /// whole tiles); with `release`, hands its f32 pages back once both are
    /// packed. `None` without AMX or when no orientation can be packed.
    pub(super) fn pack(t: &NdArrayTensor, release: bool) -> Option<PackedWeight> {
        if !super::amx::available() {
            return None;
        }
        let v = Strided::of(t)?;
        if v.shape.len() != 2 {
            return None;
        }
        let mut forms = Vec::new();
        for view in [v.clone(), v.clone().t()] {
            let key = (
                view.ptr() as usize,
                view.shape[0],
                view.shape[1],
                view.strides[0],
                view.strides[1],
            );
            // SAFETY: the view describes the tensor's own elements.
            if let Some(p) = unsafe { Packed::of_view(&view) } {
                forms.push((key, p));
            }
        }
        if forms.is_empty() {
            return None;
        }
        // Only when both orientations are packed: a product in the other one
        // would read the f32 copy.
        let released = (release && forms.len() == 2)
            .then(|| super::pages::release(&v))
            .flatten();
        Some(PackedWeight(Arc::new(Inner {
            forms,
            _keep: t.clone(),
            released,
        })))
    }

    /// The packed form of the view `B: [k, n]` at `ptr` with strides
    /// `rs, cs`, if it is one of this weight's.
    pub fn view(
        &self,
        ptr: *const f32,
        k: usize,
        n: usize,
        rs: isize,
        cs: isize,
    ) -> Option<&Packed> {
        let key = (ptr as usize, k, n, rs, cs);
        self.0.forms.iter().find(|(k, _)| *k == key).map(|(_, p)| p)
    }

    /// The packed form of a product's right operand, if it is this weight
    /// (in either orientation).
    pub(super) fn operand(&self, b: &Strided) -> Option<&Packed> {
        if b.shape.len() < 2 {
            return None;
        }
        let nb = b.shape.len() - 2;
        if b.shape[..nb].iter().any(|&d| d != 1) {
            return None;
        }
        self.view(
            b.ptr(),
            b.shape[nb],
            b.shape[nb + 1],
            b.strides[nb],
            b.strides[nb + 1],
        )
    }

    pub fn packed_bytes(&self) -> usize {
        self.0.forms.iter().map(|(_, p)| p.bytes()).sum()
    }

    pub fn released_bytes(&self) -> usize {
        self.0.released.map_or(0, |r| r.1)
    }
}

/// What packing a model's frozen weights did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackedFigures {
    pub weights: usize,
    pub packed_bytes: usize,
    /// f32 copies handed back to the system.
    pub released_bytes: usize,
}

impl PackedFigures {
    pub fn add(&mut self, p: &PackedWeight) {
        self.weights += 1;
        self.packed_bytes += p.packed_bytes();
        self.released_bytes += p.released_bytes();
    }
}
