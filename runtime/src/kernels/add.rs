//! `a + b` in parallel on the default CPU backend, for the adds of every
//! layer: biases, residual connections and adapter outputs (a BERT layer
//! has ten, each over a whole `[tokens, hidden]` activation). burn-ndarray
//! adds on one thread while the other cores wait.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_ndarray::NdArrayTensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::data::{contiguous, prim, shape, tensor, Output};
use super::fastmath::simd_fn;
use super::{cast, is, AdNd, Nd};

/// Elements per parallel task.
const ELEMS_PER_TASK: usize = 16 * 1024;

/// `a + b`, where `b` has `a`'s shape or is a row broadcast along `a`'s
/// last dimension (`[1, …, 1, n]`: a bias); other shapes take Burn's add.
pub fn add<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    if row_len(&a.dims(), &b.dims()).is_some() {
        if is::<B, AdNd>() {
            if let Some(y) = ad_add::<D>(cast(a.clone()), cast(b.clone())) {
                return cast(y);
            }
        } else if is::<B, Nd>() {
            let (x, y): (Tensor<Nd, D>, Tensor<Nd, D>) = (cast(a.clone()), cast(b.clone()));
            if let Some(out) = forward(&prim(&x), &prim(&y)) {
                return cast(Tensor::<Nd, D>::from_primitive(TensorPrimitive::Float(out)));
            }
        }
    }
    a + b
}

/// How many elements of `b` one row of the sum reads: all of `a` when the
/// shapes are equal, the last dimension when `b` is a row broadcast.
fn row_len(a: &[usize], b: &[usize]) -> Option<usize> {
    let n = a.iter().product::<usize>();
    if a == b {
        return Some(n.max(1));
    }
    let (last, lead) = b.split_last()?;
    (lead.iter().all(|&d| d == 1) && a.last() == Some(last) && *last > 0).then_some(*last)
}

simd_fn! {
    fn add_chunk(o: &mut [MaybeUninit<f32>], x: &[f32], y: &[f32]) {
        for ((o, x), y) in o.iter_mut().zip(x).zip(y) {
            o.write(x + y);
        }
    }
}

fn forward(a: &NdArrayTensor, b: &NdArrayTensor) -> Option<NdArrayTensor> {
    let dims = shape(a);
    let row = row_len(&dims, &shape(b))?;
    let (xs, ys) = (contiguous(a)?, contiguous(b)?);
    let mut out = Output::new(xs.len());
    // Tasks of whole rows when `b` repeats, so each task starts at b[0].
    let per_task = if ys.len() == xs.len() {
        ELEMS_PER_TASK
    } else {
        ELEMS_PER_TASK.div_ceil(row) * row
    };
    let same = ys.len() == xs.len();
    out.slice()
        .par_chunks_mut(per_task)
        .zip(xs.par_chunks(per_task))
        .enumerate()
        .for_each(|(t, (o, x))| {
            if same {
                let start = t * per_task;
                add_chunk(o, x, &ys[start..start + x.len()]);
            } else {
                // Whole rows: each row adds the broadcast `b`.
                for (o, x) in o.chunks_mut(row).zip(x.chunks(row)) {
                    add_chunk(o, x, &ys);
                }
            }
        });
    // SAFETY: the chunks cover the whole output.
    Some(tensor(unsafe { out.assume_init() }, dims))
}

/// `da = dy`; `db = dy`, summed over the rows when `b` was broadcast.
#[derive(Debug)]
struct AddBackward;

impl Backward<Nd, 2> for AddBackward {
    /// The shape of `b`.
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<Nd>(&ops.node);
        let b_shape = ops.state;
        if let Some(node) = node_b {
            let db = if shape(&grad) == b_shape {
                grad.clone()
            } else {
                tensor(column_sums(&grad, *b_shape.last().expect("bias")), b_shape)
            };
            grads.register::<Nd>(node.id, db);
        }
        if let Some(node) = node_a {
            grads.register::<Nd>(node.id, grad);
        }
    }
}

/// Sums of each column of `g` seen as `[rows, n]`, in a fixed order (blocks
/// of rows, then the blocks in turn) so that every run gives the same bits.
fn column_sums(g: &NdArrayTensor, n: usize) -> Vec<f32> {
    const ROWS_PER_TASK: usize = 64;
    let gs = contiguous(g).expect("f32 gradient");
    let partial: Vec<Vec<f32>> = gs
        .par_chunks(ROWS_PER_TASK * n)
        .map(|block| {
            let mut s = vec![0.0f32; n];
            for row in block.chunks(n) {
                for (s, v) in s.iter_mut().zip(row) {
                    *s += v;
                }
            }
            s
        })
        .collect();
    let mut sums = vec![0.0f32; n];
    for p in partial {
        for (s, v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    sums
}

fn ad_add<const D: usize>(a: Tensor<AdNd, D>, b: Tensor<AdNd, D>) -> Option<Tensor<AdNd, D>> {
    let b_shape = b.dims().to_vec();
    let (ap, bp) = (a.into_primitive().tensor(), b.into_primitive().tensor());
    let y = forward(&ap.primitive, &bp.primitive)?;
    let out = match AddBackward
        .prepare::<NoCheckpointing>([ap.node.clone(), bp.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(b_shape, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}
