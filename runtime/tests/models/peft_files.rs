//! Adapter files on tiny models: bad adapters are refused with every
//! mismatch listed; merged weights reload as plain models and give the
//! adapted model's outputs; non-mergeable methods are refused.

use std::path::PathBuf;

use crate::peft_common::*;
use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{PromptInit, TargetPattern};
use ft_plan::Method;
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::adapter::{
    load_adapter, read_safetensors, save_adapter, write_safetensors, CONFIG_FILE, WEIGHTS_FILE,
};
use ft_runtime::peft::merge::save_merged;
use ft_runtime::peft::{apply, Adaptable, ApplyOptions, Mismatch, PeftError};
use ft_runtime::tiny::{tiny_bert_classifier, tiny_llama_config};
use ft_runtime::weights::RandomSource;
use ft_runtime::CpuBackend as B;
use serde_json::Value;

fn bert() -> BertForSequenceClassification<B> {
    tiny_bert_classifier()
}

fn llama() -> LlamaForCausalLM<B> {
    LlamaForCausalLM::load(
        &tiny_llama_config(true),
        &mut RandomSource::new(4),
        &Default::default(),
    )
    .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-peft-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

fn vals<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

/// Gives every adapter parameter non-trivial values (LoRA B is zero and
/// IA3 one at init, which would hide merge mistakes).
fn perturb<M: Adaptable<B>>(mut m: M) -> M {
    for p in m.target_paths() {
        let Some(a) = m.adapted_mut(&p) else { continue };
        if let Some(l) = a.lora.as_mut() {
            let b = l.b.val();
            let n = b.shape().num_elements();
            let v: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.02)
                .collect();
            l.b = Param::from_tensor(Tensor::from_data(
                TensorData::new(v, b.shape()),
                &b.device(),
            ));
            if let Some(mag) = l.magnitude.as_mut() {
                *mag = Param::from_tensor(mag.val() * 1.1);
            }
        }
        if let Some(s) = a.ia3.as_mut() {
            let t = s.scale.val();
            let n = t.dims()[0];
            let v: Vec<f32> = (0..n).map(|i| 1.0 + ((i % 5) as f32 - 2.0) * 0.1).collect();
            s.scale = Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), &t.device()));
        }
    }
    m
}

fn saved_lora_adapter(name: &str) -> (PathBuf, Method) {
    let m = bert();
    let method = lora(&m, &["query", "value"], LORA8);
    let m = perturb(apply(m, &method, &ApplyOptions::default()).unwrap());
    let dir = tempdir(name);
    save_adapter(&m, &method, "tiny-bert", &dir).unwrap();
    (dir, method)
}

fn edit_config(dir: &std::path::Path, f: impl FnOnce(&mut Value)) {
    let p = dir.join(CONFIG_FILE);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
}

fn mismatches(r: Result<(impl Sized, Method), PeftError>) -> Vec<Mismatch> {
    match r {
        Err(PeftError::Mismatched { mismatches, .. }) => mismatches,
        Err(e) => panic!("expected a mismatch report, got {e}"),
        Ok(_) => panic!("a bad adapter was accepted"),
    }
}

#[test]
fn a_saved_adapter_loads_back_to_the_same_outputs() {
    let m = bert();
    let method = lora(
        &m,
        &["query", "value"],
        LoraSpec {
            dora: true,
            ..LORA8
        },
    );
    let m = perturb(apply(m, &method, &ApplyOptions::default()).unwrap());
    let dir = tempdir("roundtrip");
    save_adapter(&m, &method, "tiny-bert", &dir).unwrap();
    let (loaded, back) = load_adapter(bert(), &dir).unwrap();
    let Method::Lora(l) = back else { panic!() };
    assert!(l.dora && l.modules.len() == 4);
    let x = || ids(&[&[1, 5, 9, 2]]);
    assert_eq!(
        vals(m.forward(x(), None, None)),
        vals(loaded.forward(x(), None, None))
    );
    let header = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    let text = String::from_utf8_lossy(&header[8..200]);
    assert!(text.contains(r#""__metadata__":{"format":"pt"}"#), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_unexpected_and_misshapen_tensors_are_all_listed() {
    let (dir, _) = saved_lora_adapter("tensors");
    let mut t = read_safetensors(&dir.join(WEIGHTS_FILE)).unwrap();
    let a0 = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight";
    let b1 = "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight";
    t.remove(a0).unwrap();
    t.insert(b1.into(), (vec![32, 4], vec![0.0; 128]));
    t.insert(
        "base_model.model.bert.pooler.dense.lora_A.weight".into(),
        (vec![8, 32], vec![0.0; 256]),
    );
    write_safetensors(&dir.join(WEIGHTS_FILE), &t).unwrap();
    let got = mismatches(load_adapter(bert(), &dir));
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.contains(&Mismatch::MissingKey(a0.into())));
    assert!(got.contains(&Mismatch::WrongShape {
        key: b1.into(),
        expected: vec![32, 8],
        actual: vec![32, 4]
    }));
    assert!(got.contains(&Mismatch::UnexpectedKey(
        "base_model.model.bert.pooler.dense.lora_A.weight".into()
    )));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_config_disagreeing_with_its_tensors_is_refused() {
    let (dir, _) = saved_lora_adapter("rank");
    edit_config(&dir, |c| c["r"] = 4.into());
    let got = mismatches(load_adapter(bert(), &dir));
    // Every lora_A and lora_B of the 4 modules is the wrong shape for r=4.
    assert_eq!(got.len(), 8, "{got:?}");
    assert!(got.iter().all(|m| matches!(m, Mismatch::WrongShape { .. })));
    let report = PeftError::Mismatched {
        dir: dir.clone(),
        mismatches: got,
    }
    .to_string();
    assert!(
        report.contains("8 problems") && report.contains("lora_B.weight"),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn targets_absent_from_the_model_are_refused() {
    let (dir, _) = saved_lora_adapter("targets");
    edit_config(&dir, |c| {
        c["target_modules"] = serde_json::json!(["q_proj", "query", "value"]);
        c["task_type"] = "SEQ_CLS".into();
    });
    let got = mismatches(load_adapter(bert(), &dir));
    assert_eq!(got, vec![Mismatch::TargetAbsent("q_proj".into())]);
    // The same adapter on a Llama: wrong task, no such modules, no head.
    let got = mismatches(load_adapter(llama(), &dir));
    assert!(got
        .iter()
        .any(|m| matches!(m, Mismatch::Config { field, .. } if field == "task_type")));
    for t in ["q_proj", "query", "value"] {
        if t != "q_proj" {
            assert!(
                got.contains(&Mismatch::TargetAbsent(t.into())),
                "{t}: {got:?}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_peft_types_and_missing_files_are_refused() {
    let (dir, _) = saved_lora_adapter("type");
    edit_config(&dir, |c| c["peft_type"] = "LOHA".into());
    let got = mismatches(load_adapter(bert(), &dir));
    assert!(matches!(&got[0], Mismatch::Config { field, .. } if field == "peft_type"));
    std::fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
    assert!(matches!(
        load_adapter(bert(), &dir),
        Err(PeftError::Format { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merged_weights_reload_as_plain_models_with_the_same_outputs() {
    let x = || ids(&[&[1, 5, 9, 2, 7]]);
    let m = llama();
    for method in [
        lora(&m, &["q_proj", "v_proj", "down_proj"], LORA8),
        lora(
            &m,
            &["k_proj", "o_proj"],
            LoraSpec {
                dora: true,
                rslora: true,
                ..LORA8
            },
        ),
        ia3(&m, &["k_proj", "v_proj", "down_proj"], &["down_proj"]),
        Method::Full {
            freeze: vec![TargetPattern::Suffix("embed_tokens".into())],
        },
    ] {
        let adapted = perturb(apply(llama(), &method, &ApplyOptions::default()).unwrap());
        let dir = tempdir(&format!("merged-llama-{}", method.name()));
        save_merged(&adapted, &dir).unwrap();
        let (plain, _) = ft_runtime::load_causal_lm::<B>(&dir, &Default::default()).unwrap();
        let d = max_rel_diff(
            &vals(plain.forward(x(), None, None)),
            &vals(adapted.forward(x(), None, None)),
        );
        assert!(d < 1e-5, "llama {}: {d}", method.name());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let m = bert();
    for method in [
        lora(
            &m,
            &["query", "value", "dense"],
            LoraSpec {
                dora: true,
                ..LORA8
            },
        ),
        ia3(&m, &["key", "value", "output.dense"], &["output.dense"]),
    ] {
        let adapted = perturb(apply(bert(), &method, &ApplyOptions::default()).unwrap());
        let dir = tempdir(&format!("merged-bert-{}", method.name()));
        save_merged(&adapted, &dir).unwrap();
        let files = ft_formats::ModelFiles::open(&dir).unwrap();
        let config = files.config().unwrap();
        assert_eq!(config.num_labels, Some(3));
        let mut source = ft_runtime::weights::open_source(&files, &config).unwrap();
        let plain =
            BertForSequenceClassification::<B>::load(&config, source.as_mut(), &Default::default())
                .unwrap();
        let x = || ids(&[&[1, 5, 9, 2]]);
        let d = max_rel_diff(
            &vals(plain.forward(x(), None, None)),
            &vals(adapted.forward(x(), None, None)),
        );
        assert!(d < 1e-5, "bert {}: {d}", method.name());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn methods_that_add_computation_are_not_merged() {
    for method in [
        Method::Prompt {
            virtual_tokens: 2,
            init: PromptInit::Random,
        },
        Method::Prefix {
            virtual_tokens: 2,
            projection: false,
            projection_hidden: None,
        },
    ] {
        let m = apply(llama(), &method, &ApplyOptions::default()).unwrap();
        let dir = tempdir("unmergeable");
        let err = save_merged(&m, &dir).unwrap_err().to_string();
        assert!(err.contains("cannot be merged"), "{err}");
        assert!(!dir.join("model.safetensors").exists());
    }
}
