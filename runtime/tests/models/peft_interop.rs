//! Interop with Hugging Face PEFT on the real models, through committed
//! fixtures written by `scripts/reference/peft_reference.py`:
//! - adapters written by PEFT (`tests/fixtures/peft/<case>/`) load in ft and
//!   give PEFT's outputs (max|ours − ref| / max|ref| ≤ 1e-4);
//! - ft writes them back byte-for-byte in value (the same keys, shapes and
//!   numbers), so what ft exports is what PEFT wrote;
//! - trainable parameter counts equal PEFT's (`counts.json`).
//!
//! The other direction (PEFT loading adapters that ft trained, and
//! transformers loading ft's merged weights) is checked by the script's
//! `check-ft` command on the output of `examples/peft_export.rs`.

use std::path::{Path, PathBuf};

use crate::peft_common::*;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::PromptInit;
use ft_plan::Method;
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::classifier::Classifier;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::adapter::{adapter_tensors, load_adapter, read_safetensors, WEIGHTS_FILE};
use ft_runtime::peft::merge::save_merged;
use ft_runtime::peft::{apply, new_classifier, trainable_parameters, ApplyOptions};
use ft_runtime::CpuBackend as B;
use serde_json::Value;

use crate::assets::{asset, f32s};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peft")
}

fn json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/reference/peft_reference.py)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn rows(v: &Value) -> Vec<Vec<i64>> {
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
}

fn int_tensor(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), rows[0].len()]),
        &Default::default(),
    )
}

fn float_tensor(rows: &[Vec<i64>]) -> Tensor<B, 2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), rows[0].len()]),
        &Default::default(),
    )
}

fn vals<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn minilm_classifier() -> BertForSequenceClassification<B> {
    let (bert, _) = ft_runtime::load_bert::<B>(asset("all-MiniLM-L6-v2"), &Default::default())
        .expect("MiniLM loads");
    new_classifier(bert, 2, 0.02, 0)
}

fn smollm2() -> LlamaForCausalLM<B> {
    ft_runtime::load_causal_lm::<B>(
        asset("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &Default::default(),
    )
    .expect("SmolLM2 loads")
    .0
}

fn check(case: &str, what: &str, ours: &[f32], reference: &[f32]) {
    let e = max_rel_diff(ours, reference);
    eprintln!("{case:16} {what:13} rel err {e:.2e}");
    assert!(e <= TOL, "{case} {what}: relative error {e:.2e} > {TOL:e}");
}

/// The adapter ft would write equals the file PEFT wrote (same keys,
/// shapes, values), but for the copies of its wrappers of
/// `modules_to_save` that PEFT's `bias = "all"` also writes.
fn check_reexport<M: ft_runtime::peft::Adaptable<B>>(case: &str, model: &M, method: &Method) {
    let ours = adapter_tensors(model, method).unwrap();
    let mut theirs = read_safetensors(&fixtures().join(case).join(WEIGHTS_FILE)).unwrap();
    theirs.retain(|k, _| !k.contains(".original_module.") && !k.contains(".modules_to_save."));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{case}: keys"
    );
    for (k, (shape, v)) in &theirs {
        assert_eq!(&ours[k].0, shape, "{case}: shape of {k}");
        assert!(&ours[k].1 == v, "{case}: values of {k}");
    }
}

#[test]
fn peft_written_minilm_adapters_load_and_match() {
    let base = minilm_classifier();
    for case in [
        "minilm-lora",
        "minilm-rslora",
        "minilm-dora",
        "minilm-ia3",
        "minilm-prompt",
    ] {
        let dir = fixtures().join(case);
        let expected = json(&dir.join("expected.json"));
        let (model, method) =
            load_adapter(base.clone(), &dir).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_minilm_outputs(case, &model, &expected);
        check_reexport(case, &model, &method);
    }
}

#[test]
fn peft_written_smollm2_adapters_load_and_match() {
    let base = smollm2();
    for case in ["smollm2-lora", "smollm2-prefix", "smollm2-prompt"] {
        let dir = fixtures().join(case);
        let expected = json(&dir.join("expected.json"));
        let (model, method) =
            load_adapter(base.clone(), &dir).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_smollm2_outputs(case, &model, &expected);
        check_reexport(case, &model, &method);
    }
}

/// PEFT adapters that train base parameters too (`bias = "all"` and
/// `"lora_only"`, `modules_to_save`): they load with PEFT's outputs, ft
/// counts PEFT's trainable parameters, and writes the same file back.
#[test]
fn peft_written_adapters_with_biases_and_saved_modules_load_and_match() {
    let minilm = minilm_classifier();
    for case in ["minilm-lora-bias-all", "minilm-lora-only-saved"] {
        let dir = fixtures().join(case);
        let expected = json(&dir.join("expected.json"));
        let (model, method) =
            load_adapter(minilm.clone(), &dir).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_minilm_outputs(case, &model, &expected);
        assert_eq!(
            trainable_parameters(&model, &method) as u64,
            expected["trainable"].as_u64().unwrap(),
            "{case}: trainable parameters"
        );
        check_reexport(case, &model, &method);
    }
    let case = "smollm2-lora-saved-norm";
    let dir = fixtures().join(case);
    let expected = json(&dir.join("expected.json"));
    let (model, method) = load_adapter(smollm2(), &dir).unwrap_or_else(|e| panic!("{case}: {e}"));
    check_smollm2_outputs(case, &model, &expected);
    assert_eq!(
        trainable_parameters(&model, &method) as u64,
        expected["trainable"].as_u64().unwrap(),
        "{case}: trainable parameters"
    );
    check_reexport(case, &model, &method);
}

/// transformers' `LlamaForSequenceClassification` on SmolLM2 with a
/// PEFT LoRA adapter whose `score` head is seeded: the rightmost real
/// token of each row is pooled (the second row is padded). The merged
/// weights ft writes reload as a classifier with the same logits.
#[test]
fn peft_written_smollm2_classifier_loads_and_matches() {
    let case = "smollm2-classify-lora";
    let dir = fixtures().join(case);
    let expected = json(&dir.join("expected.json"));
    let device = Default::default();
    let base = Classifier::<B>::load(&asset("SmolLM2-135M-Instruct.Q4_1.gguf"), 2, 0, &device)
        .expect("SmolLM2 loads as a classifier");
    let (model, method) = base
        .with_adapter(&dir)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let Classifier::Llama(model) = model else {
        panic!("SmolLM2 is a Llama-family classifier")
    };
    let ids = rows(&expected["input_ids"]);
    let mask = rows(&expected["attention_mask"]);
    let logits = model.forward(int_tensor(&ids), Some(float_tensor(&mask)));
    check(
        case,
        "logits",
        &vals(logits.clone()),
        &f32s(&expected["logits"]),
    );
    check_reexport(case, &model, &method);

    let merged = crate::peft_training::tempdir("classifier-merged");
    save_merged(&model, &merged).unwrap();
    let reloaded = Classifier::<B>::load(&merged, 2, 0, &device).expect("merged reloads");
    let again = reloaded.forward(int_tensor(&ids), float_tensor(&mask));
    check(case, "merged logits", &vals(again), &vals(logits));
    let _ = std::fs::remove_dir_all(&merged);
}

/// MiniLM's logits and last hidden states against PEFT's.
fn check_minilm_outputs(case: &str, model: &BertForSequenceClassification<B>, expected: &Value) {
    let ids = rows(&expected["input_ids"]);
    let mask = rows(&expected["attention_mask"]);
    let logits = model.forward(int_tensor(&ids), Some(float_tensor(&mask)), None);
    check(case, "logits", &vals(logits), &f32s(&expected["logits"]));
    let hidden = model
        .bert
        .forward(int_tensor(&ids), Some(float_tensor(&mask)), None);
    check(case, "hidden", &vals(hidden), &f32s(&expected["hidden"]));
}

/// SmolLM2's last hidden states and a slice of its logits against PEFT's.
fn check_smollm2_outputs(case: &str, model: &LlamaForCausalLM<B>, expected: &Value) {
    let ids = rows(&expected["input_ids"]);
    let mask = rows(&expected["attention_mask"]);
    let hidden = model.forward_hidden(int_tensor(&ids), Some(float_tensor(&mask)), None);
    check(
        case,
        "hidden",
        &vals(hidden.clone()),
        &f32s(&expected["hidden"]),
    );
    let logits = model.head(hidden).narrow(2, 1000, 64);
    check(
        case,
        "logits_slice",
        &vals(logits),
        &f32s(&expected["logits_slice"]),
    );
}

fn counts() -> Value {
    json(&fixtures().join("counts.json"))
}

fn expect_count(family: &str, case: &str, got: usize) {
    let want = counts()[family][case]["trainable"].as_u64().unwrap() as usize;
    eprintln!("{family:8} {case:18} ft {got:>8}  peft {want:>8}");
    assert_eq!(got, want, "{family} {case}: trainable parameters");
}

#[test]
fn trainable_counts_equal_peft_on_minilm() {
    let m = minilm_classifier();
    let qv = &["query", "value"];
    let cases = vec![
        ("lora", lora(&m, qv, LORA8)),
        (
            "rslora",
            lora(
                &m,
                qv,
                LoraSpec {
                    rslora: true,
                    ..LORA8
                },
            ),
        ),
        (
            "dora",
            lora(
                &m,
                qv,
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
        (
            "prompt",
            Method::Prompt {
                virtual_tokens: 8,
                init: PromptInit::Random,
            },
        ),
        (
            "prefix",
            Method::Prefix {
                virtual_tokens: 8,
                projection: false,
                projection_hidden: None,
            },
        ),
        (
            "prefix-projection",
            Method::Prefix {
                virtual_tokens: 8,
                projection: true,
                projection_hidden: Some(64),
            },
        ),
    ];
    for (case, method) in cases {
        let model = apply(m.clone(), &method, &ApplyOptions::default()).unwrap();
        expect_count("minilm", case, trainable_parameters(&model, &method));
    }
    assert_eq!(
        trainable_parameters(
            &apply(m.clone(), &lora(&m, qv, LORA8), &ApplyOptions::default()).unwrap(),
            &lora(&m, qv, LORA8)
        ),
        74_498,
        "the issue's figure"
    );
}

#[test]
fn trainable_counts_equal_peft_on_smollm2() {
    let m = smollm2();
    let qv = &["q_proj", "v_proj"];
    let cases = vec![
        ("lora", lora(&m, qv, LORA8)),
        (
            "dora",
            lora(
                &m,
                qv,
                LoraSpec {
                    dora: true,
                    ..LORA8
                },
            ),
        ),
        (
            "ia3",
            ia3(&m, &["k_proj", "v_proj", "down_proj"], &["down_proj"]),
        ),
        (
            "prompt",
            Method::Prompt {
                virtual_tokens: 8,
                init: PromptInit::Random,
            },
        ),
        (
            "prefix",
            Method::Prefix {
                virtual_tokens: 8,
                projection: false,
                projection_hidden: None,
            },
        ),
    ];
    for (case, method) in cases {
        let model = apply(m.clone(), &method, &ApplyOptions::default()).unwrap();
        expect_count("smollm2", case, trainable_parameters(&model, &method));
    }
}
