//! The fused operations written with Burn's own operations: the defaults of
//! [`super::Kernels`], which CUDA and every backend without kernels of its
//! own run. They follow transformers' arithmetic (as ft's CPU kernels do),
//! and each backward is written out rather than left to autodiff, so that
//! one autodiff implementation serves every backend.

use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{
    backend::Backend, IndexingUpdateOp, Int, Shape, Tensor, TensorData, TensorMetadata,
};

use super::{prim, wrap, DropoutMask};
use crate::peft::rng::dropout_mask_of;

/// `t` as `[rows, last]` and its original shape.
fn rows<B: Backend>(t: FloatTensor<B>) -> (Tensor<B, 2>, Shape) {
    let shape = t.shape();
    let n = *shape.last().expect("rank ≥ 1");
    let rows = shape.num_elements() / n.max(1);
    (wrap(B::float_reshape(t, Shape::from(vec![rows, n]))), shape)
}

fn unrows<B: Backend>(t: Tensor<B, 2>, shape: Shape) -> FloatTensor<B> {
    B::float_reshape(prim(t), shape)
}

fn vector<B: Backend>(t: FloatTensor<B>) -> Tensor<B, 2> {
    let n = t.shape().num_elements();
    wrap(B::float_reshape(t, Shape::from(vec![1, n])))
}

pub fn matmul<B: Backend>(lhs: FloatTensor<B>, rhs: FloatTensor<B>) -> FloatTensor<B> {
    B::float_matmul(lhs, rhs)
}

fn transposed<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let r = t.shape().num_dims();
    B::float_swap_dims(t, r - 2, r - 1)
}

pub fn matmul_grad_lhs<B: Backend>(
    grad: FloatTensor<B>,
    rhs: FloatTensor<B>,
    lhs_shape: Shape,
) -> FloatTensor<B> {
    sum_to::<B>(B::float_matmul(grad, transposed::<B>(rhs)), lhs_shape)
}

pub fn matmul_grad_rhs<B: Backend>(
    lhs: FloatTensor<B>,
    grad: FloatTensor<B>,
    rhs_shape: Shape,
) -> FloatTensor<B> {
    sum_to::<B>(B::float_matmul(transposed::<B>(lhs), grad), rhs_shape)
}

pub fn sum_to<B: Backend>(mut grad: FloatTensor<B>, shape: Shape) -> FloatTensor<B> {
    let have = grad.shape();
    for (d, (&want, &got)) in shape.iter().zip(have.iter()).enumerate() {
        if want == 1 && got != 1 {
            grad = B::float_sum_dim(grad, d);
        }
    }
    grad
}

pub fn rms_norm<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, eps: f32) -> FloatTensor<B> {
    let (x, shape) = rows::<B>(x);
    let inv = (x.clone().powi_scalar(2).mean_dim(1) + eps).sqrt().recip();
    unrows(x * inv * vector::<B>(weight), shape)
}

pub fn rms_norm_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    eps: f32,
    need: [bool; 2],
) -> [Option<FloatTensor<B>>; 2] {
    let (x, shape) = rows::<B>(x);
    let (dy, _) = rows::<B>(grad);
    let w = vector::<B>(weight);
    let inv = (x.clone().powi_scalar(2).mean_dim(1) + eps).sqrt().recip();
    let xhat = x * inv.clone();
    let dx = need[0].then(|| {
        let gw = dy.clone() * w;
        let mean = (gw.clone() * xhat.clone()).mean_dim(1);
        unrows(inv * (gw - xhat.clone() * mean), shape)
    });
    let dw = need[1].then(|| {
        let n = xhat.dims()[1];
        B::float_reshape(prim((dy * xhat).sum_dim(0)), Shape::from(vec![n]))
    });
    [dx, dw]
}

/// `x̂ = (x − mean) / sqrt(var + eps)` per row, and `1 / sqrt(var + eps)`.
fn normalised<B: Backend>(x: Tensor<B, 2>, eps: f32) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let (var, mean) = x.clone().var_mean_bias(1);
    let inv = (var + eps).sqrt().recip();
    ((x - mean) * inv.clone(), inv)
}

pub fn layer_norm<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    eps: f32,
) -> FloatTensor<B> {
    let (x, shape) = rows::<B>(x);
    let (var, mean) = x.clone().var_mean_bias(1);
    let normed = (x - mean) / (var + eps).sqrt();
    unrows(normed * vector::<B>(weight) + vector::<B>(bias), shape)
}

pub fn layer_norm_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    eps: f32,
    need: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let (x, shape) = rows::<B>(x);
    let (dy, _) = rows::<B>(grad);
    let n = x.dims()[1];
    let (xhat, inv) = normalised(x, eps);
    let dx = need[0].then(|| {
        let g = dy.clone() * vector::<B>(weight);
        let mean_g = g.clone().mean_dim(1);
        let mean_gx = (g.clone() * xhat.clone()).mean_dim(1);
        unrows((g - mean_g - xhat.clone() * mean_gx) * inv, shape)
    });
    let column = |t: Tensor<B, 2>| B::float_reshape(prim(t.sum_dim(0)), Shape::from(vec![n]));
    let dw = need[1].then(|| column(dy.clone() * xhat));
    let db = need[2].then(|| column(dy));
    [dx, dw, db]
}

pub fn gelu<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let (x, shape) = rows::<B>(x);
    unrows(burn::tensor::activation::gelu(x), shape)
}

pub fn gelu_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let (x, shape) = rows::<B>(x);
    let (dy, _) = rows::<B>(grad);
    let cdf = ((x.clone() * std::f32::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5;
    let pdf = (x.clone().powi_scalar(2) * -0.5).exp()
        * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
    unrows(dy * (cdf + x * pdf), shape)
}

pub fn swiglu<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    let (g, shape) = rows::<B>(gate);
    let (u, _) = rows::<B>(up);
    unrows(g.clone() * sigmoid(g) * u, shape)
}

pub fn swiglu_backward<B: Backend>(
    gate: FloatTensor<B>,
    up: FloatTensor<B>,
    grad: FloatTensor<B>,
    need: [bool; 2],
) -> [Option<FloatTensor<B>>; 2] {
    let (g, shape) = rows::<B>(gate);
    let (u, _) = rows::<B>(up);
    let (dy, _) = rows::<B>(grad);
    let s = sigmoid(g.clone());
    let dg = need[0].then(|| {
        let dsilu = s.clone() + g.clone() * s.clone() * (s.clone().neg() + 1.0);
        unrows(dy.clone() * u * dsilu, shape.clone())
    });
    let du = need[1].then(|| unrows(dy * g * s, shape));
    [dg, du]
}

/// `rotate_half` (`[−x₂, x₁]`), or its transpose (`[x₂, −x₁]`).
fn rotate_half<B: Backend>(x: Tensor<B, 4>, transpose: bool) -> Tensor<B, 4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.narrow(3, d / 2, d / 2);
    if transpose {
        Tensor::cat(vec![x2, x1.neg()], 3)
    } else {
        Tensor::cat(vec![x2.neg(), x1], 3)
    }
}

pub fn rope<B: Backend>(
    x: FloatTensor<B>,
    cos: FloatTensor<B>,
    sin: FloatTensor<B>,
    inverse: bool,
) -> FloatTensor<B> {
    let (x, cos, sin): (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) = (wrap(x), wrap(cos), wrap(sin));
    let y = if inverse {
        x.clone() * cos + rotate_half(x * sin, true)
    } else {
        x.clone() * cos + rotate_half(x, false) * sin
    };
    prim(y)
}

pub fn softmax_scaled<B: Backend>(
    scores: FloatTensor<B>,
    scale: f32,
    bias: FloatTensor<B>,
) -> FloatTensor<B> {
    let (s, b): (Tensor<B, 4>, Tensor<B, 4>) = (wrap(scores), wrap(bias));
    prim(softmax(s * scale + b, 3))
}

pub fn softmax_backward<B: Backend>(
    y: FloatTensor<B>,
    grad: FloatTensor<B>,
    scale: f32,
) -> FloatTensor<B> {
    let (y, dy): (Tensor<B, 4>, Tensor<B, 4>) = (wrap(y), wrap(grad));
    let dot = (dy.clone() * y.clone()).sum_dim(3);
    prim(y * (dy - dot) * scale)
}

pub fn dropout<B: Backend>(x: FloatTensor<B>, mask: DropoutMask) -> FloatTensor<B> {
    let (x, shape) = rows::<B>(x);
    let [r, width] = x.dims();
    let m = dropout_mask_of(mask.key, mask.p, r * width, width, mask.kept);
    let m = Tensor::<B, 2>::from_data(TensorData::new(m, [r, width]), &x.device());
    unrows(x * m, shape)
}

/// Each target's index (0 without one) `[batch, n, 1]` and whether it has
/// one, `[batch, n]`.
fn target_tensors<B: Backend>(
    targets: &[Option<usize>],
    b: usize,
    n: usize,
    device: &B::Device,
) -> (Tensor<B, 3, Int>, Tensor<B, 2>) {
    let idx: Vec<i64> = targets.iter().map(|t| t.unwrap_or(0) as i64).collect();
    let has: Vec<f32> = targets.iter().map(|t| t.map_or(0.0, |_| 1.0)).collect();
    (
        Tensor::from_data(TensorData::new(idx, [b, n, 1]), device),
        Tensor::from_data(TensorData::new(has, [b, n]), device),
    )
}

pub fn target_log_softmax<B: Backend>(
    logits: FloatTensor<B>,
    targets: &[Option<usize>],
    n: usize,
) -> [FloatTensor<B>; 2] {
    let logits: Tensor<B, 3> = wrap(logits);
    let [b, _, _] = logits.dims();
    let (idx, has) = target_tensors::<B>(targets, b, n, &logits.device());
    let l = logits.narrow(1, 0, n);
    let lse = l.clone().max_dim(2) + (l.clone() - l.clone().max_dim(2)).exp().sum_dim(2).log();
    let lp = (l.gather(2, idx) - lse.clone()).reshape([b, n]) * has;
    [prim(lp), prim(lse.reshape([b, n]))]
}

pub fn target_log_softmax_backward<B: Backend>(
    logits: FloatTensor<B>,
    lse: FloatTensor<B>,
    targets: &[Option<usize>],
    n: usize,
    dlp: FloatTensor<B>,
) -> FloatTensor<B> {
    let logits: Tensor<B, 3> = wrap(logits);
    let [b, s, v] = logits.dims();
    let device = logits.device();
    let (idx, has) = target_tensors::<B>(targets, b, n, &device);
    let g = (wrap::<B, 2>(dlp) * has).reshape([b, n, 1]);
    let probs = (logits.narrow(1, 0, n) - wrap::<B, 2>(lse).reshape([b, n, 1])).exp();
    let dl = (probs * g.clone().neg()).scatter(2, idx, g, IndexingUpdateOp::Add);
    let dl = if n < s {
        Tensor::cat(vec![dl, Tensor::zeros([b, s - n, v], &device)], 1)
    } else {
        dl
    };
    prim(dl)
}

/// For each position with a target, in order: its row of the hidden states
/// (`b·seq + t`), its index in the log-probabilities (`b·n + t`) and the
/// target.
pub(super) fn target_rows(
    targets: &[Option<usize>],
    n: usize,
    s: usize,
) -> Vec<(usize, usize, usize)> {
    targets
        .iter()
        .enumerate()
        .filter_map(|(r, t)| t.map(|t| ((r / n) * s + r % n, r, t)))
        .collect()
}

fn ints<B: Backend>(v: impl Iterator<Item = usize>, device: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = v.map(|i| i as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

pub fn tied_head<B: Backend>(
    hidden: FloatTensor<B>,
    embedding: FloatTensor<B>,
    targets: &[Option<usize>],
    n: usize,
    want_grad: bool,
) -> (FloatTensor<B>, Option<FloatTensor<B>>) {
    let (hidden, e): (Tensor<B, 3>, Tensor<B, 2>) = (wrap(hidden), wrap(embedding));
    let [b, s, h] = hidden.dims();
    let device = hidden.device();
    let rows = target_rows(targets, n, s);
    if rows.is_empty() {
        let q = want_grad.then(|| prim(Tensor::<B, 2>::zeros([0, h], &device)));
        return (prim(Tensor::<B, 2>::zeros([b, n], &device)), q);
    }
    let m = rows.len();
    let hc = hidden
        .reshape([b * s, h])
        .select(0, ints::<B>(rows.iter().map(|r| r.0), &device));
    let logits = hc.matmul(e.clone().transpose());
    let t = ints::<B>(rows.iter().map(|r| r.2), &device);
    let lp_rows = log_softmax(logits.clone(), 1).gather(1, t.clone().reshape([m, 1]));
    let lp = Tensor::<B, 1>::zeros([b * n], &device).select_assign(
        0,
        ints::<B>(rows.iter().map(|r| r.1), &device),
        lp_rows.reshape([m]),
        IndexingUpdateOp::Add, // into zeros, each row once
    );
    let q = want_grad.then(|| prim(e.clone().select(0, t) - softmax(logits, 1).matmul(e)));
    (prim(lp.reshape([b, n])), q)
}

pub fn tied_head_backward<B: Backend>(
    q: FloatTensor<B>,
    targets: &[Option<usize>],
    n: usize,
    hidden_shape: Shape,
    dlp: FloatTensor<B>,
) -> FloatTensor<B> {
    let q: Tensor<B, 2> = wrap(q);
    let [b, s, h] = hidden_shape.dims::<3>();
    let device = q.device();
    let rows = target_rows(targets, n, s);
    let dh = Tensor::<B, 2>::zeros([b * s, h], &device);
    if rows.is_empty() {
        return prim(dh.reshape([b, s, h]));
    }
    let m = rows.len();
    let g = wrap::<B, 2>(dlp)
        .reshape([b * n])
        .select(0, ints::<B>(rows.iter().map(|r| r.1), &device))
        .reshape([m, 1]);
    let dh = dh.select_assign(
        0,
        ints::<B>(rows.iter().map(|r| r.0), &device),
        q * g,
        IndexingUpdateOp::Add, // into zeros, each row once
    );
    prim(dh.reshape([b, s, h]))
}
