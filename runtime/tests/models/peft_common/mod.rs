//! Helpers shared by the PEFT tests: Plan method builders, parameter
//! snapshots.
#![allow(dead_code)]

use ft_runtime::kernels::{AutodiffKernels, Kernels};
use std::collections::BTreeMap;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use ft_plan::method::PromptInit;
use ft_plan::method::{Ia3Module, Lora, LoraBias, LoraModule, TargetModule, TargetPattern};
use ft_plan::Method;
use ft_runtime::peft::Adaptable;

fn target<B: Kernels, M: Adaptable<B>>(model: &M, path: &str) -> TargetModule {
    let a = model.adapted(path).unwrap();
    TargetModule {
        path: path.to_string(),
        layer: None,
        in_features: a.in_features(),
        out_features: a.out_features(),
    }
}

fn matching<B: Kernels, M: Adaptable<B>>(model: &M, names: &[&str]) -> Vec<String> {
    let pats: Vec<TargetPattern> = names
        .iter()
        .map(|n| TargetPattern::Suffix(n.to_string()))
        .collect();
    model
        .target_paths()
        .into_iter()
        .filter(|p| pats.iter().any(|t| t.matches(p)))
        .collect()
}

#[derive(Clone, Copy)]
pub struct LoraSpec {
    pub rank: usize,
    pub alpha: f64,
    pub rslora: bool,
    pub dora: bool,
    pub dropout: f64,
}

pub const LORA8: LoraSpec = LoraSpec {
    rank: 8,
    alpha: 16.0,
    rslora: false,
    dora: false,
    dropout: 0.0,
};

/// A resolved LoRA method on the modules whose path ends with one of `names`.
pub fn lora<B: Kernels, M: Adaptable<B>>(model: &M, names: &[&str], spec: LoraSpec) -> Method {
    let modules = matching(model, names)
        .iter()
        .map(|p| LoraModule {
            target: target(model, p),
            rank: spec.rank,
            alpha: spec.alpha,
        })
        .collect();
    Method::Lora(Lora {
        rank: spec.rank,
        alpha: spec.alpha,
        dropout: spec.dropout,
        targets: names
            .iter()
            .map(|n| TargetPattern::Suffix(n.to_string()))
            .collect(),
        layers: None,
        rank_for: BTreeMap::new(),
        alpha_for: BTreeMap::new(),
        rslora: spec.rslora,
        dora: spec.dora,
        bias: LoraBias::None,
        modules_to_save: vec!["classifier".into()],
        modules,
    })
}

pub fn ia3<B: Kernels, M: Adaptable<B>>(model: &M, names: &[&str], ff: &[&str]) -> Method {
    let ffp: Vec<TargetPattern> = ff
        .iter()
        .map(|n| TargetPattern::Suffix(n.to_string()))
        .collect();
    let modules = matching(model, names)
        .iter()
        .map(|p| Ia3Module {
            target: target(model, p),
            feedforward: ffp.iter().any(|f| f.matches(p)),
        })
        .collect();
    Method::Ia3 {
        targets: names
            .iter()
            .map(|n| TargetPattern::Suffix(n.to_string()))
            .collect(),
        feedforward: ffp,
        layers: None,
        modules,
        modules_to_save: vec!["classifier".into()],
    }
}

/// Every float parameter by Burn path, with its values.
pub fn snapshot<B: Kernels, M: Module<B>>(m: &M) -> BTreeMap<String, Vec<f32>> {
    struct V(Vec<String>, BTreeMap<String, Vec<f32>>);
    impl<B: Kernels> ModuleVisitor<B> for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let v = p
                .val()
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap();
            let mut key = self.0.join(".");
            while self.1.contains_key(&key) {
                key.push('\'');
            }
            self.1.insert(key, v);
        }
    }
    let mut v = V(Vec::new(), BTreeMap::new());
    m.visit(&mut v);
    v.1
}

/// Number of parameter values with `require_grad` (autodiff backends).
pub fn require_grad_count<B: Kernels, M: Module<B>>(m: &M) -> usize {
    struct V(usize);
    impl<B: Kernels> ModuleVisitor<B> for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if p.is_require_grad() {
                self.0 += p.shape().num_elements();
            }
        }
    }
    let mut v = V(0);
    m.visit(&mut v);
    v.0
}

pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

/// Every parameter's gradient by path (empty for parameters without one).
pub fn gradients<B: AutodiffKernels, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> BTreeMap<String, Vec<f32>> {
    struct Collect<'a> {
        path: Vec<String>,
        grads: &'a GradientsParams,
        out: BTreeMap<String, Vec<f32>>,
    }
    impl<B: AutodiffKernels> ModuleVisitor<B> for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let g = self.grads.get::<B::InnerBackend, D>(p.id);
            let values = g.map_or_else(Vec::new, |g| {
                g.into_data().convert::<f32>().to_vec::<f32>().unwrap()
            });
            self.out.insert(self.path.join("."), values);
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        grads,
        out: BTreeMap::new(),
    };
    model.visit(&mut c);
    c.out
}

/// Burn's autodiff bookkeeping is process-wide, and a backward pass on one
/// thread can free graph steps that another thread's pass still needs
/// (tracel-ai/burn#5573), which loses part of a gradient without an error.
/// The tests that differentiate take this lock, so they run one at a time.
pub fn autodiff_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Prompt tuning with `n` randomly initialised virtual tokens.
pub fn prompt(n: usize) -> Method {
    Method::Prompt {
        virtual_tokens: n,
        init: PromptInit::Random,
    }
}

/// Prefix tuning with `n` virtual tokens, without the projection.
pub fn prefix(n: usize) -> Method {
    Method::Prefix {
        virtual_tokens: n,
        projection: false,
        projection_hidden: None,
    }
}

/// Every linear layer of a Llama decoder layer, by PEFT's names.
pub const LLAMA_LINEARS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];
