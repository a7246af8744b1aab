//! Every PEFT method on tiny random models: a few optimizer steps with
//! Burn's autodiff leave the frozen parameters bit-identical and change
//! every trainable one; the trainable count equals the parameters with
//! `require_grad`; dropout is deterministic and resumable.

use ft_runtime::kernels::AutodiffKernels;
use std::collections::BTreeMap;

use crate::peft_common::*;
use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{Activation, AdapterStyle, PromptInit, TargetPattern};
use ft_plan::Method;
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::adapter::{load_adapter, save_adapter};
use ft_runtime::peft::{apply, parameter_counts, Adaptable, ApplyOptions, ForwardCtx};
use ft_runtime::tiny::{tiny_bert_classifier, tiny_llama_config};
use ft_runtime::weights::RandomSource;

type AB = Autodiff<NdArray<f32>>;

fn ids<B: burn::tensor::backend::Backend>(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

fn bert() -> BertForSequenceClassification<AB> {
    tiny_bert_classifier()
}

fn llama() -> LlamaForCausalLM<AB> {
    LlamaForCausalLM::load(
        &tiny_llama_config(false),
        &mut RandomSource::new(4),
        &Default::default(),
    )
    .unwrap()
}

trait Loss<B: AutodiffKernels>: AutodiffModule<B> + Adaptable<B> {
    fn loss(&self, ctx: &ForwardCtx) -> Tensor<B, 1>;
}

impl Loss<AB> for BertForSequenceClassification<AB> {
    fn loss(&self, ctx: &ForwardCtx) -> Tensor<AB, 1> {
        let logits = self.forward_with(ids(&[&[1, 5, 9, 2], &[1, 7, 3, 2]]), None, None, ctx);
        let target = Tensor::<AB, 2>::from_data(
            TensorData::new(vec![1.0f32, -1.0, 0.5, -0.5, 1.0, 0.0], [2, 3]),
            &Default::default(),
        );
        (logits - target).powi_scalar(2).mean()
    }
}

impl Loss<AB> for LlamaForCausalLM<AB> {
    fn loss(&self, ctx: &ForwardCtx) -> Tensor<AB, 1> {
        let logits = self.forward_with(ids(&[&[1, 5, 9, 2, 7]]), None, None, ctx);
        let [_, s, v] = logits.dims();
        // Push the first token's logit up everywhere: any smooth loss works.
        let first = logits.clone().narrow(2, 0, 1).sum();
        (logits.powi_scalar(2).sum() * 1e-3 - first) / (s * v) as f64
    }
}

/// Trains `steps` steps and checks frozen/trainable parameters.
fn train_and_check<M: Loss<AB>>(model: M, method: &Method, what: &str) -> M {
    let model = apply(
        model,
        method,
        &ApplyOptions {
            seed: 5,
            prompt_init_ids: Some(vec![3, 4, 5]),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let counts = parameter_counts(&model, method);
    assert!(
        counts.trainable > 0 && counts.trainable <= counts.total,
        "{what}: {counts:?}"
    );
    if let Method::Full { freeze } = method {
        // The freeze patterns must have frozen something.
        assert!(
            freeze.is_empty() || counts.trainable < counts.total,
            "{what}: {counts:?}"
        );
    }
    assert_eq!(
        require_grad_count(&model),
        counts.trainable,
        "{what}: require_grad count"
    );
    let before = snapshot(&model);
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut model = model;
    for step in 0..3 {
        let loss = model.loss(&ForwardCtx::train(5, step));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let after = snapshot(&model);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let trainable = trainable_paths(&model, method);
    let mut changed = 0;
    for (k, v) in &before {
        if trainable.contains(k) {
            assert_ne!(v, &after[k], "{what}: trainable `{k}` did not change");
            changed += v.len();
        } else {
            assert!(v == &after[k], "{what}: frozen `{k}` changed");
        }
    }
    assert_eq!(changed, counts.trainable, "{what}: trainable values");
    model
}

/// Paths of parameters that require grad (from the autodiff flags).
fn trainable_paths<M: Loss<AB>>(model: &M, _method: &Method) -> Vec<String> {
    use burn::module::{ModuleVisitor, Param};
    struct V(Vec<String>, Vec<String>, BTreeMap<String, ()>);
    impl ModuleVisitor<AB> for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<AB, D>>) {
            let mut key = self.0.join(".");
            while self.2.contains_key(&key) {
                key.push('\'');
            }
            self.2.insert(key.clone(), ());
            if p.is_require_grad() {
                self.1.push(key);
            }
        }
    }
    let mut v = V(Vec::new(), Vec::new(), BTreeMap::new());
    model.visit(&mut v);
    v.1
}

#[test]
fn every_method_trains_only_its_parameters_on_tiny_bert() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = bert();
    let methods = vec![
        ("lora", lora(&m, &["query", "value"], LORA8)),
        (
            "rslora+dropout",
            lora(
                &m,
                &["query", "value"],
                LoraSpec {
                    rslora: true,
                    dropout: 0.1,
                    ..LORA8
                },
            ),
        ),
        (
            "dora",
            lora(
                &m,
                &["query", "value", "dense"],
                LoraSpec {
                    dora: true,
                    ..LORA8
                },
            ),
        ),
        (
            "ia3",
            ia3(&m, &["key", "value", "output.dense"], &["output.dense"]),
        ),
        ("prompt-random", prompt(4)),
        (
            "prompt-text",
            Method::Prompt {
                virtual_tokens: 5,
                init: PromptInit::Text("abc".into()),
            },
        ),
        ("prefix", prefix(3)),
        (
            "prefix-mlp",
            Method::Prefix {
                virtual_tokens: 3,
                projection: true,
                projection_hidden: Some(16),
            },
        ),
        (
            "houlsby",
            Method::Adapter {
                style: AdapterStyle::Houlsby,
                size: 4,
                activation: Activation::Relu,
                layers: None,
            },
        ),
        (
            "pfeiffer",
            Method::Adapter {
                style: AdapterStyle::Pfeiffer,
                size: 4,
                activation: Activation::Gelu,
                layers: Some(vec![1]),
            },
        ),
        (
            "full",
            Method::Full {
                freeze: vec![TargetPattern::Suffix("embeddings".into())],
            },
        ),
    ];
    for (what, method) in methods {
        train_and_check(bert(), &method, &format!("bert {what}"));
    }
}

#[test]
fn every_method_trains_only_its_parameters_on_tiny_llama() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = llama();
    let methods = vec![
        ("lora", lora(&m, &["q_proj", "v_proj"], LORA8)),
        (
            "dora+dropout",
            lora(
                &m,
                &["q_proj", "down_proj"],
                LoraSpec {
                    dora: true,
                    dropout: 0.2,
                    ..LORA8
                },
            ),
        ),
        (
            "ia3",
            ia3(&m, &["k_proj", "v_proj", "down_proj"], &["down_proj"]),
        ),
        ("prompt", prompt(4)),
        ("prefix", prefix(3)),
        (
            "houlsby",
            Method::Adapter {
                style: AdapterStyle::Houlsby,
                size: 4,
                activation: Activation::Silu,
                layers: None,
            },
        ),
        (
            "full",
            Method::Full {
                freeze: vec![TargetPattern::Suffix("embed_tokens".into())],
            },
        ),
    ];
    for (what, method) in methods {
        train_and_check(llama(), &method, &format!("llama {what}"));
    }
}

/// A new adapter leaves the model's function unchanged (LoRA B = 0, DoRA
/// magnitude = ‖W‖, IA3 = 1, bottleneck up = 0).
#[test]
fn fresh_adapters_are_the_identity() {
    let _serial = crate::peft_common::autodiff_lock();
    let x = || ids::<AB>(&[&[1, 5, 9, 2, 7]]);
    let base = llama().forward(x(), None, None);
    let m = llama();
    for method in [
        lora(&m, &["q_proj", "v_proj", "gate_proj"], LORA8),
        lora(
            &m,
            &["q_proj", "o_proj"],
            LoraSpec {
                dora: true,
                ..LORA8
            },
        ),
        ia3(&m, &["k_proj", "down_proj"], &["down_proj"]),
        Method::Adapter {
            style: AdapterStyle::Houlsby,
            size: 4,
            activation: Activation::Relu,
            layers: None,
        },
    ] {
        let adapted = apply(llama(), &method, &ApplyOptions::default()).unwrap();
        let out = adapted.forward(x(), None, None);
        let d = max_rel_diff(&vals(out), &vals(base.clone()));
        assert!(d < 1e-5, "{}: {d}", method.name());
    }
}

fn vals<const D: usize>(t: Tensor<AB, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn dropout_masks_are_a_function_of_seed_and_step() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = llama();
    let method = lora(
        &m,
        &["q_proj", "v_proj"],
        LoraSpec {
            dropout: 0.5,
            ..LORA8
        },
    );
    let mut model = apply(m, &method, &ApplyOptions::default()).unwrap();
    // Non-zero B so that dropout on the LoRA path shows in the output.
    for p in model.target_paths() {
        if let Some(l) = model.adapted_mut(&p).and_then(|a| a.lora.as_mut()) {
            l.b = burn::module::Param::from_tensor(l.b.val().ones_like() * 0.1);
        }
    }
    let x = || ids::<AB>(&[&[1, 5, 9, 2, 7]]);
    let run = |ctx: ForwardCtx| vals(model.forward_with(x(), None, None, &ctx));
    assert_eq!(run(ForwardCtx::train(1, 7)), run(ForwardCtx::train(1, 7)));
    assert_ne!(run(ForwardCtx::train(1, 7)), run(ForwardCtx::train(1, 8)));
    assert_ne!(run(ForwardCtx::train(1, 7)), run(ForwardCtx::train(2, 7)));
    // Evaluation: no dropout, whatever the step.
    assert_eq!(run(ForwardCtx::EVAL), vals(model.forward(x(), None, None)));
}

/// Train 4 SGD steps with dropout in one go, or 2 steps, save the adapter,
/// load it into a fresh model, and 2 more: the adapters are bit-identical.
#[test]
fn a_resumed_run_reproduces_an_uninterrupted_one() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = bert();
    let method = lora(
        &m,
        &["query", "value"],
        LoraSpec {
            dropout: 0.3,
            ..LORA8
        },
    );
    let sgd_steps = |mut model: BertForSequenceClassification<AB>, steps: std::ops::Range<u64>| {
        let mut optim = SgdConfig::new().init();
        for step in steps {
            let loss = model.loss(&ForwardCtx::train(9, step));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.5, model, grads);
        }
        model
    };
    let opts = ApplyOptions {
        seed: 9,
        prompt_init_ids: None,
    };
    let straight = sgd_steps(apply(bert(), &method, &opts).unwrap(), 0..4);
    let half = sgd_steps(apply(bert(), &method, &opts).unwrap(), 0..2);
    let dir = tempdir("resume");
    save_adapter(&half, &method, "tiny", &dir).unwrap();
    let (resumed, loaded) = load_adapter(bert(), &dir).unwrap();
    let Method::Lora(l) = &loaded else {
        panic!("not LoRA")
    };
    assert_eq!(l.dropout, 0.3);
    let resumed = sgd_steps(resumed, 2..4);
    let (a, b) = (snapshot(&straight), snapshot(&resumed));
    let lora_keys: Vec<_> = a
        .keys()
        .filter(|k| k.contains("lora") || k.starts_with("classifier"))
        .collect();
    assert!(!lora_keys.is_empty());
    for k in lora_keys {
        assert!(a[k] == b[k], "`{k}` differs after resuming");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ft-peft-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// With virtual tokens, cached decoding (as `generate` does it) equals the
/// full forward, and right padding leaves the real positions unchanged:
/// the virtual tokens enter once and the caller's mask covers real tokens.
#[test]
fn virtual_tokens_work_with_the_kv_cache_and_padding() {
    let _serial = crate::peft_common::autodiff_lock();
    for method in [
        prompt(3),
        Method::Prefix {
            virtual_tokens: 3,
            projection: true,
            projection_hidden: Some(8),
        },
    ] {
        let m = apply(llama(), &method, &ApplyOptions::default()).unwrap();
        let seq = [1i64, 5, 9, 2, 7, 11];
        let full = vals(m.forward(ids(&[&seq]), None, None));
        let vocab = 64;
        let mut cache = m.new_cache();
        let mut stepped = vals(m.forward(ids(&[&seq[..3]]), None, Some(&mut cache)));
        for &t in &seq[3..] {
            stepped.extend(vals(m.forward(ids(&[&[t]]), None, Some(&mut cache))));
        }
        assert_eq!(
            full.len(),
            seq.len() * vocab,
            "{}: real tokens only",
            method.name()
        );
        let d = max_rel_diff(&stepped, &full);
        assert!(d < 1e-5, "{}: cached vs full {d}", method.name());

        let mask = |rows: &[&[f32]]| -> Tensor<AB, 2> {
            let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
            Tensor::from_data(
                TensorData::new(flat, [rows.len(), rows[0].len()]),
                &Default::default(),
            )
        };
        let short = vals(m.forward(ids(&[&seq[..4]]), None, None));
        let padded = m.forward(
            ids(&[&seq[..6], &[seq[0], seq[1], seq[2], seq[3], 0, 0]]),
            Some(mask(&[&[1.0; 6], &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]])),
            None,
        );
        let row = vals(padded.narrow(0, 1, 1).narrow(1, 0, 4));
        let d = max_rel_diff(&row, &short);
        assert!(d < 1e-5, "{}: padded vs alone {d}", method.name());
    }
}

/// The classifier computes its last layer for position 0 only
/// (`BertModel::forward_first`): its logits and one SGD step's update
/// must be those of the whole computation (`forward_all`, then pooling),
/// with dropout on every adapted module, padding, and the methods that
/// change the positions (prompt and prefix tuning).
#[test]
fn the_classifier_shortcut_matches_the_whole_last_layer() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = bert();
    let every = ["query", "key", "value", "dense"];
    let methods = vec![
        (
            "lora+dropout",
            lora(
                &m,
                &every,
                LoraSpec {
                    dropout: 0.3,
                    ..LORA8
                },
            ),
        ),
        (
            "dora+dropout",
            lora(
                &m,
                &every,
                LoraSpec {
                    dora: true,
                    dropout: 0.3,
                    ..LORA8
                },
            ),
        ),
        (
            "ia3",
            ia3(&m, &["key", "value", "output.dense"], &["output.dense"]),
        ),
        ("prompt", prompt(4)),
        ("prefix", prefix(3)),
        (
            "houlsby",
            Method::Adapter {
                style: AdapterStyle::Houlsby,
                size: 4,
                activation: Activation::Gelu,
                layers: None,
            },
        ),
    ];
    let input = || ids::<AB>(&[&[1, 5, 9, 2, 6], &[1, 7, 3, 2, 0]]);
    let mask = || {
        Tensor::<AB, 2>::from_data(
            TensorData::new(
                vec![1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
                [2, 5],
            ),
            &Default::default(),
        )
    };
    let ctx = ForwardCtx::train(7, 3);
    let target = || {
        Tensor::<AB, 2>::from_data(
            TensorData::new(vec![1.0f32, -1.0, 0.5, -0.5, 1.0, 0.0], [2, 3]),
            &Default::default(),
        )
    };
    for (what, method) in methods {
        let options = ApplyOptions {
            seed: 5,
            prompt_init_ids: None,
        };
        let model = apply(bert(), &method, &options).unwrap_or_else(|e| panic!("{what}: {e}"));
        let shortcut = model.forward_with(input(), Some(mask()), None, &ctx);
        let (hidden, _) = model.bert.forward_all(input(), Some(mask()), None, &ctx);
        let [b, _, h] = hidden.dims();
        let pooled = model
            .bert
            .pool_with(hidden.clone(), &ctx)
            .unwrap_or_else(|| hidden.narrow(1, 0, 1).reshape([b, h]));
        let whole = model.classifier.forward(pooled);
        let (s, w) = (
            shortcut.clone().into_data().to_vec::<f32>().unwrap(),
            whole.clone().into_data().to_vec::<f32>().unwrap(),
        );
        assert!(max_rel_diff(&s, &w) < 1e-5, "{what}: logits {s:?} vs {w:?}");
        let step = |logits: Tensor<AB, 2>| {
            let loss = (logits - target()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            snapshot(&SgdConfig::new().init().step(1.0, model.clone(), grads))
        };
        let (after_s, after_w) = (step(shortcut), step(whole));
        let before = snapshot(&model);
        let mut moved = 0;
        for (k, v) in &after_w {
            let d = max_rel_diff(&after_s[k], v);
            assert!(d < 1e-5, "{what}: `{k}` after one step differs by {d}");
            moved += usize::from(after_s[k] != before[k]);
        }
        assert!(moved > 0, "{what}: nothing trained");
    }
}
