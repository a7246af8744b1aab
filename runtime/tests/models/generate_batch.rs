//! Batched generation ([`generate_batch`]): prompts of different lengths,
//! left-padded into one batch, give each row what [`generate`] gives it
//! alone — greedy and sampled, on the plain model and under the methods
//! that add positions (prompt tuning prepends virtual tokens, prefix tuning
//! a past), whose rotary positions must skip each row's padding. The real
//! model's case is in `parity.rs` (SmolLM2 against transformers).

use crate::peft_common::*;
use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::Method;
use ft_runtime::generate::{generate, generate_batch, SamplingOptions};
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::{apply, ApplyOptions};
use ft_runtime::tiny::tiny_llama_config;
use ft_runtime::weights::RandomSource;

type B = NdArray<f32>;

fn models() -> Vec<(&'static str, LlamaForCausalLM<B>)> {
    let dev = Default::default();
    let base = |seed| {
        let mut src = RandomSource::new(seed);
        LlamaForCausalLM::<B>::load(&tiny_llama_config(false), &mut src, &dev).unwrap()
    };
    let adapted = |method: Method| apply(base(7), &method, &ApplyOptions::default()).unwrap();
    let m = base(7);
    vec![
        ("base", base(7)),
        ("lora", adapted(lora(&m, &["q_proj", "v_proj"], LORA8))),
        ("prompt", adapted(prompt(3))),
        ("prefix", adapted(prefix(2))),
    ]
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![1, 5, 9, 12, 30],
        vec![1, 7],
        vec![1, 40, 41, 42, 43, 44, 45, 46, 47],
        vec![3],
    ]
}

#[test]
fn each_row_of_a_batch_generates_what_it_generates_alone() {
    let dev = Default::default();
    for (name, model) in models() {
        for temperature in [0.0, 1.0] {
            let opts = SamplingOptions {
                max_new_tokens: 10,
                temperature,
                stop_ids: vec![2],
                ..Default::default()
            };
            let seed = |i: usize| 100 + i as u64;
            let batch = generate_batch(&model, &prompts(), &opts, seed, &dev);
            for (i, p) in prompts().iter().enumerate() {
                let alone = SamplingOptions {
                    seed: seed(i),
                    ..opts.clone()
                };
                let want = generate(&model, p, &alone, &dev, |_| {});
                assert_eq!(batch[i], want, "{name}, temperature {temperature}, row {i}");
            }
        }
    }
}

/// The logits of a left-padded row's last position equal the unpadded
/// row's: positions (rotary) start after the padding and the padding is
/// masked. Without the per-row positions this differs by far more than
/// rounding (checked by the second assertion).
#[test]
fn a_left_padded_row_has_its_own_positions() {
    let dev = Default::default();
    for (name, model) in models() {
        let short = [1i64, 7, 9];
        let alone = last_logits(&model, &[&short], &[], &dev);
        let padded = last_logits(&model, &[&[0, 0, 1, 7, 9]], &[2], &dev);
        assert!(max_rel_diff(&padded, &alone) < 1e-5, "{name}");
        // Shifted positions (no padding, same tokens later): really different.
        let shifted = last_logits(&model, &[&[5, 5, 1, 7, 9]], &[], &dev);
        assert!(max_rel_diff(&shifted, &alone) > 1e-3, "{name}");
    }
}

fn last_logits(
    model: &LlamaForCausalLM<B>,
    rows: &[&[i64]],
    pads: &[usize],
    dev: &burn::backend::ndarray::NdArrayDevice,
) -> Vec<f32> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [rows.len(), n]), dev);
    let mut cache = model.new_cache();
    let mask = (!pads.is_empty()).then(|| {
        cache.pads = pads.to_vec();
        let m: Vec<f32> = pads
            .iter()
            .flat_map(|&p| (0..n).map(move |c| f32::from(c >= p)))
            .collect();
        Tensor::<B, 2>::from_data(TensorData::new(m, [rows.len(), n]), dev)
    });
    let hidden = model.forward_hidden(ids, mask, Some(&mut cache));
    model
        .head(hidden.narrow(1, n - 1, 1))
        .into_data()
        .to_vec()
        .unwrap()
}
