//! The optimizer against its definitions: clipping by the *global* gradient
//! norm (PyTorch's `clip_grad_norm_`, one factor for every tensor — not
//! Burn's per-tensor clipping), SGD's plain step, and AdamW's first step,
//! checked parameter by parameter on a tiny BERT classifier.

use ft_runtime::kernels::AutodiffKernels;
use std::collections::BTreeMap;

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::Optimizer;
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::peft::ForwardCtx;
use ft_runtime::tiny::tiny_bert_classifier;
use ft_runtime::train::checkpoint::all_values;
use ft_runtime::train::optim::{grad_norm, step, Optim};
use ft_runtime::train::task::classify_loss;

type AB = Autodiff<NdArray<f32>>;

fn model() -> BertForSequenceClassification<AB> {
    tiny_bert_classifier()
}

fn grads(m: &BertForSequenceClassification<AB>) -> GradientsParams {
    let ids: Tensor<AB, 2, Int> = Tensor::from_data(
        TensorData::new(vec![1i64, 5, 7, 2, 1, 9, 4, 2], [2, 4]),
        &Default::default(),
    );
    let logits = m.forward_with(ids, None, None, &ForwardCtx::EVAL);
    GradientsParams::from_grads(classify_loss(logits, &[0, 2]).backward(), m)
}

/// Every gradient, flattened, by parameter visit index.
struct Collect<'a> {
    grads: &'a GradientsParams,
    index: usize,
    out: BTreeMap<usize, Vec<f32>>,
}

impl<B: AutodiffKernels> ModuleVisitor<B> for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(p.id) {
            self.out
                .insert(self.index, g.into_data().convert::<f32>().to_vec().unwrap());
        }
        self.index += 1;
    }
}

fn grad_values(
    m: &BertForSequenceClassification<AB>,
    g: &GradientsParams,
) -> BTreeMap<usize, Vec<f32>> {
    let mut c = Collect {
        grads: g,
        index: 0,
        out: BTreeMap::new(),
    };
    m.visit(&mut c);
    c.out
}

fn sgd(lr: f64) -> Optimizer {
    Optimizer::Sgd {
        lr,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

#[test]
fn clipping_scales_every_gradient_by_one_global_factor() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = model();
    let g = grads(&m);
    let gv = grad_values(&m, &g);
    assert!(gv.len() > 10, "every parameter trains");
    let norm = gv
        .values()
        .flat_map(|v| v.iter())
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    assert!((grad_norm(&m, &g) - norm).abs() <= 1e-6 * norm);
    let before = all_values(&m);
    let max_norm = norm / 4.0;
    let mut opt = Optim::new(sgd(1.0));
    let (m2, info) = step(m.clone(), &mut opt, g, 1.0, Some(max_norm));
    assert!(info.clipped);
    let after = all_values(&m2);
    let scale = max_norm / (norm + 1e-6);
    for (i, grad) in &gv {
        let (w0, w1) = (&before[i].1, &after[i].1);
        for k in 0..grad.len() {
            let expected = w0[k] as f64 - scale * grad[k] as f64;
            assert!(
                (w1[k] as f64 - expected).abs() <= 1e-6 * (1.0 + expected.abs()),
                "param {i}[{k}]: {} vs {expected}",
                w1[k]
            );
        }
    }
    // A clip above the norm changes nothing.
    let g = grads(&m);
    let mut opt = Optim::new(sgd(1.0));
    let (_, info) = step(m, &mut opt, g, 1.0, Some(norm * 2.0));
    assert!(!info.clipped);
}

#[test]
fn adamw_first_step_matches_torch_formula() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = model();
    let g = grads(&m);
    let gv = grad_values(&m, &g);
    let before = all_values(&m);
    let (lr, wd, b1, b2, eps) = (1e-2, 0.1, 0.9, 0.999, 1e-8);
    let mut opt = Optim::new(Optimizer::AdamW {
        lr,
        weight_decay: wd,
        beta1: b1,
        beta2: b2,
        eps,
    });
    let (m2, _) = step(m, &mut opt, g, lr, None);
    let after = all_values(&m2);
    for (i, grad) in &gv {
        for (k, &gk) in grad.iter().enumerate() {
            let gk = gk as f64;
            // torch.optim.AdamW, step 1: decay, then m̂ = g, v̂ = g².
            let w = before[i].1[k] as f64 * (1.0 - lr * wd);
            let (mh, vh) = (
                gk * (1.0 - b1) / (1.0 - b1),
                gk * gk * (1.0 - b2) / (1.0 - b2),
            );
            let expected = w - lr * mh / (vh.sqrt() + eps);
            let got = after[i].1[k] as f64;
            assert!(
                (got - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                "param {i}[{k}]: {got} vs {expected}"
            );
        }
    }
    assert_eq!(opt.updates, 1);
    let _ = m2.valid();
}

/// Two steps of `optimizer` at `lr`: the values before, the gradients of
/// each step (by parameter visit index), and the values after.
type Flat = BTreeMap<usize, Vec<f32>>;

fn two_steps(optimizer: Optimizer, lr: f64) -> (Flat, [Flat; 2], Flat) {
    let m = model();
    let flat = |v: ft_runtime::train::checkpoint::Values| -> Flat {
        v.into_iter().map(|(i, (_, v))| (i, v)).collect()
    };
    let before = flat(all_values(&m));
    let mut opt = Optim::new(optimizer);
    let g1 = grads(&m);
    let gv1 = grad_values(&m, &g1);
    let (m, _) = step(m, &mut opt, g1, lr, None);
    let g2 = grads(&m);
    let gv2 = grad_values(&m, &g2);
    let (m, _) = step(m, &mut opt, g2, lr, None);
    assert_eq!(opt.updates, 2);
    (before, [gv1, gv2], flat(all_values(&m)))
}

/// Every trained value after two steps against `rule(w, g1, g2)`.
fn check_two_steps(what: &str, optimizer: Optimizer, lr: f64, rule: impl Fn(f64, f64, f64) -> f64) {
    let (before, [g1, g2], after) = two_steps(optimizer, lr);
    assert!(!g1.is_empty());
    for (i, grad1) in &g1 {
        for (k, &a) in grad1.iter().enumerate() {
            let expected = rule(before[i][k] as f64, a as f64, g2[i][k] as f64);
            let got = after[i][k] as f64;
            assert!(
                (got - expected).abs() <= 2e-5 * (1.0 + expected.abs()),
                "{what}: param {i}[{k}]: {got} vs {expected}"
            );
        }
    }
}

/// torch.optim.AdamW over two steps, with betas and an eps that matter.
#[test]
fn adamw_two_steps_match_torch_formula() {
    let _serial = crate::peft_common::autodiff_lock();
    let (lr, wd, b1, b2, eps) = (1e-2, 0.1, 0.8, 0.95, 1e-3);
    let optimizer = Optimizer::AdamW {
        lr,
        weight_decay: wd,
        beta1: b1,
        beta2: b2,
        eps,
    };
    check_two_steps("adamw", optimizer, lr, |w, g1, g2| {
        let (mut w, mut m, mut v) = (w, 0.0, 0.0);
        for (t, g) in [(1, g1), (2, g2)] {
            w *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let (mh, vh) = (m / (1.0 - b1.powi(t)), v / (1.0 - b2.powi(t)));
            w -= lr * mh / (vh.sqrt() + eps);
        }
        w
    });
}

/// torch.optim.SGD over two steps: weight decay added to the gradient,
/// the momentum buffer (no dampening), and Nesterov's look-ahead.
#[test]
fn sgd_two_steps_match_torch_formula() {
    let _serial = crate::peft_common::autodiff_lock();
    let (lr, momentum, wd) = (0.05, 0.9, 0.1);
    for nesterov in [false, true] {
        let optimizer = Optimizer::Sgd {
            lr,
            momentum,
            nesterov,
            weight_decay: wd,
        };
        check_two_steps(
            &format!("sgd nesterov={nesterov}"),
            optimizer,
            lr,
            |w, g1, g2| {
                let (mut w, mut buf) = (w, None::<f64>);
                for g in [g1, g2] {
                    let g = g + wd * w;
                    let b = buf.map_or(g, |b| momentum * b + g);
                    buf = Some(b);
                    w -= lr * if nesterov { g + momentum * b } else { b };
                }
                w
            },
        );
    }
}
