//! Parity with PyTorch + transformers on the real models. The reference
//! values are in `tests/fixtures/*.json`, written by
//! `scripts/reference/models.py`; the models by `scripts/fetch-assets.sh`.
//!
//! Error measure: for each stored vector, `max|ours − ref| / max|ref|` (the
//! error relative to the vector's scale, so that near-zero entries do not
//! dominate); it must be ≤ 1e-4. Token ids must be equal.

use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::{ModelFiles, ModelTokenizer};
use ft_runtime::generate::{
    generate, generate_batch, render_chat_template, ChatMessage, SamplingOptions,
};
use ft_runtime::CpuBackend as B;
use serde_json::Value;

use crate::assets::{asset, f32s};
use std::path::Path;

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/reference/models.py)", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// max|a − b| / max|b|
fn rel_err(ours: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
    let diff = ours
        .iter()
        .zip(reference)
        .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
    diff / scale.max(1e-12)
}

fn check(what: &str, ours: &[f32], reference: &[f32], worst: &mut f64) {
    let e = rel_err(ours, reference);
    println!("{what}: relative error {e:.2e}");
    *worst = worst.max(e);
    assert!(e <= TOL, "{what}: relative error {e:.3e} > {TOL:e}");
}

fn int_tensor(rows: &[Vec<u32>]) -> Tensor<B, 2, Int> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().map(|&t| t as i64))
        .collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

#[test]
fn tokenizers_match_transformers() {
    let fx = fixture("tokenizers.json");
    let bert = ModelTokenizer::load(&ModelFiles::open(asset("all-MiniLM-L6-v2")).unwrap()).unwrap();
    let smol =
        ModelTokenizer::load(&ModelFiles::open(asset("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap())
            .unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let b = bert.tokenizer.encode(text, true).unwrap();
        assert_eq!(
            b.get_ids(),
            ids_of(&case["minilm"]),
            "MiniLM ids for {text:?}"
        );
        let s = smol.tokenizer.encode(text, true).unwrap();
        assert_eq!(
            s.get_ids(),
            ids_of(&case["smollm2"]),
            "SmolLM2 ids for {text:?}"
        );
    }
}

#[test]
fn minilm_matches_pytorch() {
    let fx = fixture("minilm.json");
    let dev = Default::default();
    let (model, files) = ft_runtime::load_bert::<B>(asset("all-MiniLM-L6-v2"), &dev).unwrap();
    let tok = ModelTokenizer::load(&files).unwrap();
    let mut worst = 0f64;
    for (n, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let ids = tok
            .tokenizer
            .encode(case["text"].as_str().unwrap(), true)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(ids, ids_of(&case["input_ids"]));
        let h = model.forward(int_tensor(std::slice::from_ref(&ids)), None, None);
        let [_, s, d] = h.dims();
        let all: Vec<f32> = h.clone().into_data().to_vec().unwrap();
        let row = |p: usize| &all[p * d..(p + 1) * d];
        check(
            &format!("sentence {n} [CLS]"),
            row(0),
            &f32s(&case["cls"]),
            &mut worst,
        );
        for (p, r) in case["token_positions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["tokens"].as_array().unwrap())
        {
            let p = p.as_u64().unwrap() as usize;
            assert!(p < s);
            check(
                &format!("sentence {n} token {p}"),
                row(p),
                &f32s(r),
                &mut worst,
            );
        }
        let pooled: Vec<f32> = model.pool(h).unwrap().into_data().to_vec().unwrap();
        check(
            &format!("sentence {n} pooled"),
            &pooled,
            &f32s(&case["pooled"]),
            &mut worst,
        );
    }
    let batch = &fx["padded_batch"];
    let rows: Vec<Vec<u32>> = batch["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids_of)
        .collect();
    let mask: Vec<f32> = batch["attention_mask"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(f32s)
        .collect();
    let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [rows.len(), rows[0].len()]), &dev);
    let h = model.forward(int_tensor(&rows), Some(mask), None);
    let d = h.dims()[2];
    let all: Vec<f32> = h.into_data().to_vec().unwrap();
    let seq = rows[0].len();
    for (i, want) in batch["cls"].as_array().unwrap().iter().enumerate() {
        check(
            &format!("padded batch row {i} [CLS]"),
            &all[i * seq * d..i * seq * d + d],
            &f32s(want),
            &mut worst,
        );
    }
    println!("MiniLM worst relative error: {worst:.2e}");
}

/// The worst relative error of SmolLM2's logits (top-10 and a slice of
/// each prompt's last position) against transformers, on backend `K`.
fn smollm2_logits_error<K: ft_runtime::kernels::Kernels>() -> f64 {
    let fx = fixture("smollm2.json");
    let dev = Default::default();
    let (model, _) =
        ft_runtime::load_causal_lm::<K>(asset("SmolLM2-135M-Instruct.Q4_1.gguf"), &dev).unwrap();
    let mut worst = 0f64;
    for case in fx["cases"].as_array().unwrap() {
        let ids = ids_of(&case["input_ids"]);
        let s = ids.len();
        let input = Tensor::<K, 2, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, s]),
            &dev,
        );
        let hidden = model.forward_hidden(input, None, None).narrow(1, s - 1, 1);
        let logits: Vec<f32> = model.head(hidden).into_data().to_vec().unwrap();
        let top = ids_of(&case["top_ids"]);
        let at_top: Vec<f32> = top.iter().map(|&i| logits[i as usize]).collect();
        worst = worst.max(rel_err(&at_top, &f32s(&case["top_logits"])));
        let start = case["slice_start"].as_u64().unwrap() as usize;
        let want = f32s(&case["slice"]);
        worst = worst.max(rel_err(&logits[start..start + want.len()], &want));
    }
    worst
}

/// Burn's own operations (the path CUDA runs) and ft's CPU kernels are
/// both within the tolerance of transformers on SmolLM2.
#[test]
fn smollm2_generic_path_matches_pytorch_too() {
    let kernels = smollm2_logits_error::<B>();
    let generic = smollm2_logits_error::<ft_runtime::kernels::GenericCpu>();
    println!("SmolLM2 against transformers: kernels {kernels:.2e}, generic {generic:.2e}");
    assert!(
        kernels <= TOL && generic <= TOL,
        "{kernels:e} / {generic:e}"
    );
}

/// Burn's Flex CPU backend (built with `--features flex`), which takes
/// every default of the kernels trait, against transformers.
#[cfg(feature = "flex")]
#[test]
fn smollm2_on_flex_against_pytorch() {
    let flex = smollm2_logits_error::<burn::backend::Flex>();
    println!("SmolLM2 on burn-flex against transformers: {flex:.2e}");
    assert!(flex <= TOL, "{flex:e}");
}

#[test]
fn smollm2_matches_pytorch_and_answers_paris() {
    let fx = fixture("smollm2.json");
    let dev = Default::default();
    let t = std::time::Instant::now();
    let (model, files) =
        ft_runtime::load_causal_lm::<B>(asset("SmolLM2-135M-Instruct.Q4_1.gguf"), &dev).unwrap();
    println!("SmolLM2 load: {:.2} s", t.elapsed().as_secs_f64());
    let tok = ModelTokenizer::load(&files).unwrap();
    let mut worst = 0f64;
    for (n, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let ids = tok
            .tokenizer
            .encode(case["prompt"].as_str().unwrap(), true)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(ids, ids_of(&case["input_ids"]));
        let s = ids.len();
        let logits = model.head(model.forward_hidden(int_tensor(&[ids]), None, None).narrow(
            1,
            s - 1,
            1,
        ));
        let logits: Vec<f32> = logits.into_data().to_vec().unwrap();
        let top = ids_of(&case["top_ids"]);
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        assert_eq!(order[0] as u32, top[0], "prompt {n}: top-1 token");
        let at_top: Vec<f32> = top.iter().map(|&i| logits[i as usize]).collect();
        check(
            &format!("prompt {n} top-10 logits"),
            &at_top,
            &f32s(&case["top_logits"]),
            &mut worst,
        );
        let start = case["slice_start"].as_u64().unwrap() as usize;
        let want = f32s(&case["slice"]);
        check(
            &format!("prompt {n} logits[{start}..]"),
            &logits[start..start + want.len()],
            &want,
            &mut worst,
        );
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max
            + logits
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let want_lse = case["logsumexp"].as_f64().unwrap();
        assert!(
            ((lse - want_lse) / want_lse).abs() < TOL,
            "prompt {n}: logsumexp {lse} vs {want_lse}"
        );
    }
    println!("SmolLM2 worst relative error: {worst:.2e}");

    // The chat template, its tokens and greedy decoding, against transformers.
    let chat = &fx["chat"];
    let msgs = [ChatMessage {
        role: "user".into(),
        content: chat["question"].as_str().unwrap().into(),
    }];
    let rendered = render_chat_template(
        tok.chat_template.as_deref().unwrap(),
        &msgs,
        true,
        tok.bos_token.as_deref(),
        tok.eos_token.as_deref(),
    )
    .unwrap();
    assert_eq!(rendered, chat["rendered"].as_str().unwrap());
    let ids = tok
        .tokenizer
        .encode(rendered.as_str(), true)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids, ids_of(&chat["input_ids"]));
    let want = ids_of(&chat["greedy_ids"]);
    let opts = SamplingOptions {
        max_new_tokens: want.len(),
        stop_ids: tok.eos_token_ids.clone(),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let out = generate(&model, &ids, &opts, &dev, |_| {});
    println!(
        "greedy: {} tokens in {:.2} s",
        out.len(),
        t.elapsed().as_secs_f64()
    );
    let text = tok.tokenizer.decode(&out, false).unwrap();
    println!("answer: {text:?}");
    assert_eq!(
        out, want,
        "greedy tokens differ from transformers ({text:?})"
    );
    assert!(text.contains("Paris"), "{text:?}");

    // The same question in a batch with shorter and longer prompts (left
    // padding, one forward pass per token for all rows): the chat row still
    // decodes transformers' greedy tokens, the others what they decode alone.
    let encode = |t: &str| tok.tokenizer.encode(t, true).unwrap().get_ids().to_vec();
    let prompts = vec![
        encode("The capital of Italy is"),
        ids.clone(),
        encode("Hi"),
        ids[..ids.len() - 3].to_vec(),
    ];
    let t = std::time::Instant::now();
    let batch = generate_batch(&model, &prompts, &opts, |_| 0, &dev);
    println!(
        "greedy, batch of {}: {:.2} s",
        prompts.len(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        batch[1], want,
        "the chat row of a batch differs from transformers"
    );
    for (r, p) in prompts.iter().enumerate() {
        let alone = generate(&model, p, &opts, &dev, |_| {});
        assert_eq!(
            batch[r], alone,
            "row {r} of the batch differs from its own generation"
        );
    }
}
