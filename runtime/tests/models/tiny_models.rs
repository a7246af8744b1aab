//! Tiny random-weight models: properties that must hold for any weights
//! (KV cache = full forward, causality, padding invariance, GQA shapes,
//! HF path resolution, missing tensors are errors).

use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::FormatErrorKind;
use ft_runtime::bert::{BertForSequenceClassification, BertModel};
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::tiny::{tiny_bert_config, tiny_llama_config};
use ft_runtime::weights::{unpermute_rows, RandomSource, WeightSource};
use ft_runtime::CpuBackend as B;

fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

fn mask(rows: &[&[f32]]) -> Tensor<B, 2> {
    let n = rows[0].len();
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

fn vec_of<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn llama(tied: bool) -> LlamaForCausalLM<B> {
    LlamaForCausalLM::load(
        &tiny_llama_config(tied),
        &mut RandomSource::new(1),
        &Default::default(),
    )
    .unwrap()
}

#[test]
fn kv_cache_matches_full_forward() {
    let m = llama(true);
    let seq: [i64; 7] = [5, 9, 13, 2, 40, 7, 33];
    let full = m.forward(ids(&[&seq]), None, None); // [1, 7, vocab]
    let mut cache = m.new_cache();
    let first = m.forward(ids(&[&seq[..4]]), None, Some(&mut cache));
    assert_eq!(cache.len(), 4);
    let mut steps = vec![vec_of(first)];
    for &t in &seq[4..] {
        steps.push(vec_of(m.forward(ids(&[&[t]]), None, Some(&mut cache))));
    }
    assert_eq!(cache.len(), 7);
    let incremental: Vec<f32> = steps.concat();
    let d = max_diff(&incremental, &vec_of(full));
    assert!(
        d < 1e-5,
        "cached decoding differs from the full forward by {d}"
    );
}

#[test]
fn causal_and_right_padding_invariant() {
    let m = llama(false);
    assert!(m.lm_head.is_some());
    let a: [i64; 5] = [3, 14, 15, 9, 26];
    let alone = vec_of(m.forward(ids(&[&a]), None, None));
    // Changing a later token must not change earlier positions.
    let changed = vec_of(m.forward(ids(&[&[3, 14, 15, 9, 60]]), None, None));
    let v = 64;
    assert!(max_diff(&alone[..4 * v], &changed[..4 * v]) < 1e-6);
    assert!(
        max_diff(&alone[4 * v..], &changed[4 * v..]) > 1e-4,
        "the last position must see its token"
    );
    // Right-padded in a batch with a longer row: real positions unchanged.
    let batch = m.forward(
        ids(&[&[3, 14, 15, 9, 26, 0, 0], &[1, 2, 3, 4, 5, 6, 7]]),
        Some(mask(&[&[1., 1., 1., 1., 1., 0., 0.], &[1.; 7]])),
        None,
    );
    let row0 = vec_of(batch.narrow(0, 0, 1).narrow(1, 0, 5));
    let d = max_diff(&row0, &alone);
    assert!(d < 1e-5, "padding changed real positions by {d}");
}

#[test]
fn gqa_shapes_and_path_resolution() {
    let mut m = llama(true);
    let paths = m.linear_paths();
    assert_eq!(paths.len(), 2 * 7, "tied: no lm_head linear");
    for p in &paths {
        assert!(m.linear_mut(p).is_some(), "{p} must resolve");
    }
    let k = m.linear("model.layers.1.self_attn.k_proj").unwrap();
    assert_eq!(
        k.weight.dims(),
        [32, 16],
        "Burn keeps [in, out]; 2 KV heads × 8"
    );
    assert_eq!(
        m.linear("model.layers.0.mlp.down_proj")
            .unwrap()
            .weight
            .dims(),
        [64, 32]
    );
    assert!(
        m.linear_mut("model.layers.2.self_attn.q_proj").is_none(),
        "only 2 layers"
    );
    assert!(m.linear_mut("model.layers.0.self_attn.query").is_none());
    assert!(m.linear_mut("lm_head").is_none());
}

/// A source that lacks one tensor.
struct Without(RandomSource, &'static str);
impl WeightSource for Without {
    fn has(&self, name: &str) -> bool {
        name != self.1
    }
    fn tensor(&mut self, name: &str, shape: &[usize]) -> ft_runtime::weights::Result<Vec<f32>> {
        if name == self.1 {
            return Err(ft_formats::FormatError::new(
                "<test>",
                FormatErrorKind::MissingTensor {
                    tensor: name.into(),
                },
            ));
        }
        self.0.tensor(name, shape)
    }
    fn path(&self) -> std::path::PathBuf {
        "<test>".into()
    }
}

#[test]
fn missing_tensors_are_errors() {
    let dev = Default::default();
    let mut src = Without(RandomSource::new(0), "model.layers.1.mlp.up_proj.weight");
    let err = LlamaForCausalLM::<B>::load(&tiny_llama_config(true), &mut src, &dev)
        .err()
        .unwrap();
    assert_eq!(
        err.kind,
        FormatErrorKind::MissingTensor {
            tensor: "model.layers.1.mlp.up_proj.weight".into()
        }
    );
    // An untied model needs lm_head.
    let mut src = Without(RandomSource::new(0), "lm_head.weight");
    assert!(LlamaForCausalLM::<B>::load(&tiny_llama_config(false), &mut src, &dev).is_err());
    let mut src = Without(
        RandomSource::new(0),
        "encoder.layer.0.output.LayerNorm.bias",
    );
    let err = BertModel::<B>::load(&tiny_bert_config(), &mut src, &dev)
        .err()
        .unwrap();
    assert!(matches!(err.kind, FormatErrorKind::MissingTensor { .. }));
}

#[test]
fn bert_padding_invariant_and_classifier() {
    let dev = Default::default();
    let cfg = tiny_bert_config();
    let mut m = BertModel::<B>::load(&cfg, &mut RandomSource::new(3), &dev).unwrap();
    let alone = vec_of(m.forward(ids(&[&[1, 20, 21, 22, 2]]), None, None));
    let batch = m.forward(
        ids(&[&[1, 20, 21, 22, 2, 0, 0], &[1, 5, 6, 7, 8, 9, 2]]),
        Some(mask(&[&[1., 1., 1., 1., 1., 0., 0.], &[1.; 7]])),
        None,
    );
    let row0 = vec_of(batch.narrow(0, 0, 1).narrow(1, 0, 5));
    assert!(max_diff(&row0, &alone) < 1e-5);
    // Token types change the output.
    let typed = vec_of(m.forward(
        ids(&[&[1, 20, 21, 22, 2]]),
        None,
        Some(ids(&[&[0, 0, 1, 1, 1]])),
    ));
    assert!(max_diff(&typed, &alone) > 1e-4);
    assert_eq!(m.linear_paths().len(), 2 * 6 + 1);
    assert!(m
        .linear_mut("encoder.layer.1.attention.self.value")
        .is_some());
    assert!(m
        .linear_mut("bert.encoder.layer.1.intermediate.dense")
        .is_some());
    assert!(m
        .linear_mut("encoder.layer.1.attention.self.q_proj")
        .is_none());
    let mut clf =
        BertForSequenceClassification::with_new_head(m, 3, &mut RandomSource::new(9), &dev)
            .unwrap();
    assert_eq!(clf.classifier.weight.dims(), [32, 3]);
    let logits = clf.forward(ids(&[&[1, 20, 2], &[1, 21, 2]]), None, None);
    assert_eq!(logits.dims(), [2, 3]);
    assert!(clf.linear_mut("classifier").is_some());
}

/// llama.cpp's `permute` (convert_hf_to_gguf.py), to check that
/// `unpermute_rows` is its exact inverse.
fn llama_cpp_permute(w: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    // w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2)
    let half = rows / n_head / 2;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let src = h * 2 * half + j * half + i;
                let dst = h * 2 * half + i * 2 + j;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

#[test]
fn unpermute_inverts_llama_cpp_permute() {
    let (rows, cols, heads) = (24, 3, 3);
    let w: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
    let p = llama_cpp_permute(&w, rows, cols, heads);
    assert_ne!(p, w);
    assert_eq!(unpermute_rows(&p, &[rows, cols], heads), w);
}
