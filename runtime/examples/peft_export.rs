//! Trains every PEFT method a few steps on the real MiniLM and SmolLM2,
//! exports the adapters (and merged weights where a method merges) and
//! ft's outputs, for `scripts/reference/peft_reference.py check-ft DIR`,
//! which loads them with `peft.PeftModel.from_pretrained` / transformers
//! and compares.
//!
//!     cargo run -p ft-runtime --example peft_export -- /tmp/ft-export
//!     .cache/venv-ref/bin/python scripts/reference/peft_reference.py check-ft /tmp/ft-export

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{
    Ia3Module, Lora, LoraBias, LoraModule, PromptInit, TargetModule, TargetPattern,
};
use ft_plan::Method;
use ft_runtime::peft::adapter::save_adapter;
use ft_runtime::peft::merge::{save_merged, Mergeable};
use ft_runtime::peft::{apply, new_classifier, Adaptable, ApplyOptions, ForwardCtx};
use serde_json::{json, Value};

type AB = Autodiff<NdArray<f32>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture_inputs(case: &str) -> (Vec<Vec<i64>>, Vec<Vec<i64>>) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peft")
        .join(case)
        .join("expected.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let rows = |v: &Value| -> Vec<Vec<i64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect()
            })
            .collect()
    };
    (rows(&v["input_ids"]), rows(&v["attention_mask"]))
}

fn ints(rows: &[Vec<i64>]) -> Tensor<AB, 2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), rows[0].len()]),
        &Default::default(),
    )
}

fn floats(rows: &[Vec<i64>]) -> Tensor<AB, 2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), rows[0].len()]),
        &Default::default(),
    )
}

fn vals<const D: usize>(t: Tensor<AB, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn targets<M: Adaptable<AB>>(m: &M, names: &[&str]) -> Vec<TargetModule> {
    m.target_paths()
        .into_iter()
        .filter(|p| {
            names
                .iter()
                .any(|n| TargetPattern::Suffix(n.to_string()).matches(p))
        })
        .map(|p| {
            let a = m.adapted(&p).unwrap();
            TargetModule {
                path: p,
                layer: None,
                in_features: a.in_features(),
                out_features: a.out_features(),
            }
        })
        .collect()
}

fn lora<M: Adaptable<AB>>(m: &M, names: &[&str], rslora: bool, dora: bool) -> Method {
    Method::Lora(Lora {
        rank: 8,
        alpha: 16.0,
        dropout: 0.1,
        targets: names
            .iter()
            .map(|n| TargetPattern::Suffix(n.to_string()))
            .collect(),
        layers: None,
        rank_for: Default::default(),
        alpha_for: Default::default(),
        rslora,
        dora,
        bias: LoraBias::None,
        modules_to_save: vec!["classifier".into()],
        modules: targets(m, names)
            .into_iter()
            .map(|target| LoraModule {
                target,
                rank: 8,
                alpha: 16.0,
            })
            .collect(),
    })
}

fn ia3<M: Adaptable<AB>>(m: &M, names: &[&str], ff: &[&str]) -> Method {
    Method::Ia3 {
        targets: names
            .iter()
            .map(|n| TargetPattern::Suffix(n.to_string()))
            .collect(),
        feedforward: ff
            .iter()
            .map(|n| TargetPattern::Suffix(n.to_string()))
            .collect(),
        layers: None,
        modules: targets(m, names)
            .into_iter()
            .map(|target| Ia3Module {
                feedforward: ff
                    .iter()
                    .any(|f| TargetPattern::Suffix(f.to_string()).matches(&target.path)),
                target,
            })
            .collect(),
        modules_to_save: vec!["classifier".into()],
    }
}

fn train<M: AutodiffModule<AB> + Adaptable<AB>>(
    model: M,
    method: &Method,
    loss: impl Fn(&M, &ForwardCtx) -> Tensor<AB, 1>,
) -> M {
    let mut model = apply(
        model,
        method,
        &ApplyOptions {
            seed: 42,
            prompt_init_ids: None,
        },
    )
    .unwrap();
    let mut optim = AdamWConfig::new().init();
    for step in 0..3 {
        let l = loss(&model, &ForwardCtx::train(42, step));
        eprintln!("  step {step}: loss {:.5}", l.clone().into_scalar());
        let grads = GradientsParams::from_grads(l.backward(), &model);
        model = optim.step(2e-2, model, grads);
    }
    model
}

fn write(dir: &Path, v: Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("ft_outputs.json"),
        serde_json::to_string(&v).unwrap(),
    )
    .unwrap();
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: peft_export OUT_DIR"));
    let dev = Default::default();
    let models = root().join(".cache/models");

    let (ids, mask) = fixture_inputs("minilm-lora");
    let (bert, _) = ft_runtime::load_bert::<AB>(models.join("all-MiniLM-L6-v2"), &dev).unwrap();
    let base = new_classifier(bert, 2, 0.02, 42);
    let labels: Tensor<AB, 1, Int> = Tensor::from_data(TensorData::new(vec![1i64, 0], [2]), &dev);
    let qv = ["query", "value"];
    let cases = vec![
        ("minilm-lora", lora(&base, &qv, false, false), true),
        ("minilm-rslora", lora(&base, &qv, true, false), true),
        ("minilm-dora", lora(&base, &qv, false, true), true),
        (
            "minilm-ia3",
            ia3(&base, &["key", "value", "output.dense"], &["output.dense"]),
            true,
        ),
        (
            "minilm-prompt",
            Method::Prompt {
                virtual_tokens: 8,
                init: PromptInit::Random,
            },
            false,
        ),
    ];
    for (case, method, merge) in cases {
        eprintln!("{case}");
        let model = train(base.clone(), &method, |m, ctx| {
            let logits = m.forward_with(ints(&ids), Some(floats(&mask)), None, ctx);
            let lp = log_softmax(logits, 1);
            lp.gather(1, labels.clone().unsqueeze_dim(1)).mean().neg()
        });
        let dir = out.join(case);
        save_adapter(
            &model,
            &method,
            &models.join("all-MiniLM-L6-v2").display().to_string(),
            &dir,
        )
        .unwrap();
        let logits = model.forward(ints(&ids), Some(floats(&mask)), None);
        let hidden = model.bert.forward(ints(&ids), Some(floats(&mask)), None);
        write(
            &dir,
            json!({"input_ids": ids, "attention_mask": mask, "logits": vals(logits), "hidden": vals(hidden)}),
        );
        if merge {
            save_merged(&model, &dir.join("merged")).unwrap();
        }
    }

    let (ids, mask) = fixture_inputs("smollm2-lora");
    let (llama, _) =
        ft_runtime::load_causal_lm::<AB>(models.join("SmolLM2-135M-Instruct.Q4_1.gguf"), &dev)
            .unwrap();
    let cases = vec![
        (
            "smollm2-lora",
            lora(&llama, &["q_proj", "v_proj"], false, false),
            true,
        ),
        (
            "smollm2-prefix",
            Method::Prefix {
                virtual_tokens: 4,
                projection: true,
                projection_hidden: None,
            },
            false,
        ),
        (
            "smollm2-prompt",
            Method::Prompt {
                virtual_tokens: 4,
                init: PromptInit::Random,
            },
            false,
        ),
    ];
    let n = ids[0].len();
    for (case, method, merge) in cases {
        eprintln!("{case}");
        let model = train(llama.clone(), &method, |m, ctx| {
            // Next-token cross-entropy on the prompt.
            let logits = m.forward_with(ints(&ids), Some(floats(&mask)), None, ctx);
            let lp = log_softmax(logits.narrow(1, 0, n - 1), 2);
            let next: Vec<i64> = ids[0][1..].to_vec();
            let next: Tensor<AB, 3, Int> =
                Tensor::from_data(TensorData::new(next, [1, n - 1, 1]), &Default::default());
            lp.gather(2, next).mean().neg()
        });
        let dir = out.join(case);
        save_adapter(&model, &method, &models.display().to_string(), &dir).unwrap();
        let hidden = model.forward_hidden(ints(&ids), Some(floats(&mask)), None);
        let logits = model.head(hidden.clone()).narrow(2, 1000, 64);
        write(
            &dir,
            json!({"input_ids": ids, "attention_mask": mask, "hidden": vals(hidden), "logits_slice": vals(logits)}),
        );
        if merge {
            save_merged(&model, &dir.join("merged")).unwrap();
        }
    }
    let _ = Mergeable::<AB>::hf_config(&llama);
    eprintln!("wrote {}", out.display());
}
