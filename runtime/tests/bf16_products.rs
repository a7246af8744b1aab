//! `precision = bf16` on tiny random models (on AMX-BF16 CPUs): with the
//! frozen weights packed and the f32 copies of the `Linear` ones handed
//! back, LoRA steps track the f32 steps, the inference model (`valid()`)
//! agrees, and embeddings — read row by row, so never released — keep
//! working (a read of a released page would stop the test binary); the
//! tied LM head with the loss runs on the embedding's packed forms, close
//! to f32.

#[path = "models/peft_common/mod.rs"]
mod peft_common;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::kernels::{self, amx};
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::{apply, pack_frozen, Adaptable, ApplyOptions, ForwardCtx};
use ft_runtime::tiny::{tiny_bert_classifier, tiny_llama_config};
use ft_runtime::weights::RandomSource;
use peft_common::*;

type AB = Autodiff<NdArray<f32>>;
type Inner = NdArray<f32>;

fn ids<B: burn::tensor::backend::Backend>(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

const BERT_IDS: &[&[i64]] = &[&[1, 5, 9, 2, 7, 3], &[1, 7, 3, 2, 9, 9]];
const LLAMA_IDS: &[&[i64]] = &[&[1, 5, 9, 2, 7, 11, 13, 40]];

fn bert() -> BertForSequenceClassification<AB> {
    tiny_bert_classifier()
}

fn bert_loss(m: &BertForSequenceClassification<AB>, step: u64) -> Tensor<AB, 1> {
    let logits = m.forward_with(ids(BERT_IDS), None, None, &ForwardCtx::train(5, step));
    let target = Tensor::<AB, 2>::from_data(
        TensorData::new(vec![1.0f32, -1.0, 0.5, -0.5, 1.0, 0.0], [2, 3]),
        &Default::default(),
    );
    (logits - target).powi_scalar(2).mean()
}

fn llama() -> LlamaForCausalLM<AB> {
    // Tied: the embedding is also the head, packed but never released.
    LlamaForCausalLM::load(
        &tiny_llama_config(true),
        &mut RandomSource::new(4),
        &Default::default(),
    )
    .unwrap()
}

fn llama_loss(m: &LlamaForCausalLM<AB>, step: u64) -> Tensor<AB, 1> {
    let logits = m.forward_with(ids(LLAMA_IDS), None, None, &ForwardCtx::train(5, step));
    let [_, s, v] = logits.dims();
    let first = logits.clone().narrow(2, 0, 1).sum();
    (logits.powi_scalar(2).sum() * 1e-3 - first) / (s * v) as f64
}

/// Three AdamW steps: the losses, then the inference model's output.
fn train<M: AutodiffModule<AB> + Adaptable<AB>>(
    model: M,
    bf16: bool,
    loss: impl Fn(&M, u64) -> Tensor<AB, 1>,
    infer: impl Fn(&M::InnerModule) -> Vec<f32>,
) -> (Vec<f32>, Vec<f32>, usize) {
    let mut model = model;
    let released = if bf16 {
        let figures = pack_frozen(&mut model, true);
        assert!(figures.weights > 0, "nothing packed");
        figures.released_bytes
    } else {
        0
    };
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut losses = Vec::new();
    for step in 0..3 {
        let l = loss(&model, step);
        losses.push(l.clone().into_scalar());
        let grads = GradientsParams::from_grads(l.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let out = infer(&model.valid());
    (losses, out, released)
}

fn close(what: &str, f32s: &[f32], bf16s: &[f32], tol: f32) {
    let d = max_rel_diff(bf16s, f32s);
    eprintln!("{what}: largest difference {d:.2e} of the largest value");
    assert!(d < tol, "{what}: f32 {f32s:?} vs bf16 {bf16s:?} ({d})");
    assert_ne!(f32s, bf16s, "{what}: bf16 changed nothing");
}

/// Largest difference relative to the largest value, and whether any.
fn rel_diff<const D: usize>(got: Tensor<Inner, D>, want: Tensor<Inner, D>) -> (f32, bool) {
    let (g, w) = (
        got.into_data().to_vec::<f32>().unwrap(),
        want.into_data().to_vec::<f32>().unwrap(),
    );
    (max_rel_diff(&g, &w), g != w)
}

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Inner, D> {
    use burn::tensor::Distribution;
    <Inner as burn::tensor::backend::Backend>::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &Default::default())
}

/// The tied head with the loss on a packed embedding, against f32.
fn tied_head_in_bf16() {
    // The tied head: log-probabilities of targets, and the gradient.
    let (b, s, h, v, n) = (2, 40, 64, 160, 39);
    let targets: Vec<Option<usize>> = (0..b * n).map(|i| Some((i * 37) % v)).collect();
    let hidden = random([b, s, h], 13);
    let emb = random([v, h], 14) * 2.0;
    let head = |hidden: &Tensor<Inner, 3>, packed: Option<&kernels::PackedWeight>| {
        let x = Tensor::<AB, 3>::from_inner(hidden.clone()).require_grad();
        let e = Tensor::<AB, 2>::from_inner(emb.clone());
        let lp = kernels::tied_head_log_softmax(x.clone(), e, &targets, n, packed);
        let g = x.grad(&lp.clone().sum().backward()).expect("gradient");
        (lp.inner(), g)
    };
    let (lp32, g32) = head(&hidden, None);
    let packed = kernels::pack_frozen(&emb, false).expect("packed");
    let (lp16, g16) = head(&hidden, Some(&packed));
    for (what, (d, differs)) in [
        ("tied head log-probabilities", rel_diff(lp16, lp32)),
        ("tied head gradient", rel_diff(g16, g32)),
    ] {
        eprintln!("{what}: largest difference {d:.2e} of the largest value");
        // bf16 inputs (8 bits of mantissa), f32 sums.
        assert!(d < 0.02 && differs, "{what}: {d}, differs {differs}");
    }
}

#[test]
#[ignore = "needs AMX-BF16"]
fn bf16_products_with_released_weights_track_f32() {
    assert!(amx::available(), "this test needs an AMX-BF16 CPU");
    let lora_bert = |m: &BertForSequenceClassification<AB>| lora(m, &["query", "value"], LORA8);
    let bert_out = |m: &BertForSequenceClassification<Inner>| {
        let ctx = ForwardCtx::eval();
        let y = m.forward_with(ids(BERT_IDS), None, None, &ctx);
        y.into_data().to_vec::<f32>().unwrap()
    };
    let mut runs = Vec::new();
    for bf16 in [false, true] {
        let m = bert();
        let method = lora_bert(&m);
        let m = apply(m, &method, &ApplyOptions::default()).unwrap();
        runs.push(train(m, bf16, bert_loss, bert_out));
    }
    // The FFN weights (32 × 64 f32: 8 KiB) hold whole pages to release.
    assert!(runs[1].2 > 0, "nothing released");
    close("bert losses", &runs[0].0, &runs[1].0, 0.02);
    close("bert inference", &runs[0].1, &runs[1].1, 0.02);

    let llama_out = |m: &LlamaForCausalLM<Inner>| {
        let y = m.forward_with(ids(LLAMA_IDS), None, None, &ForwardCtx::eval());
        y.into_data().to_vec::<f32>().unwrap()
    };
    let mut runs = Vec::new();
    for bf16 in [false, true] {
        let m = llama();
        let method = lora(&m, &["q_proj", "v_proj"], LORA8);
        let m = apply(m, &method, &ApplyOptions::default()).unwrap();
        runs.push(train(m, bf16, llama_loss, llama_out));
    }
    assert!(runs[1].2 > 0, "nothing released");
    close("llama losses", &runs[0].0, &runs[1].0, 0.02);
    close("llama inference", &runs[0].1, &runs[1].1, 0.02);

    tied_head_in_bf16();
}
