//! Packing (`train { packing = true }`): a packed batch gives the loss and
//! the parameter gradients of the same examples padded one per row. Each
//! example attends only within itself, its positions restart at 0 and its
//! first token is no target — on a tiny random model under every PEFT
//! method (virtual tokens included) and on the real SmolLM2 with LoRA.

use burn::backend::{Autodiff, NdArray};
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Tensor};
use ft_pipeline::batch::{collate, Item};
use ft_pipeline::example::Sequence;
use ft_pipeline::{Batch, IGNORE};
use ft_plan::Method;
use ft_runtime::kernels::AutodiffKernels;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::{apply, ApplyOptions, ForwardCtx};
use ft_runtime::tiny::tiny_llama_config;
use ft_runtime::train::task::{lm_loss, Logits, Task};
use ft_runtime::weights::RandomSource;

use crate::assets::asset;
use crate::peft_common::*;

type AB = Autodiff<NdArray<f32>>;

/// Examples of different lengths; some train on every token (no prompt),
/// so a packed example's first token would be a target if the boundary
/// were not masked.
fn sequences(vocab: u32, seed: u32) -> Vec<Sequence> {
    let shapes = [(7, 3), (4, 0), (9, 5), (3, 0), (6, 2), (5, 5)];
    let mut x = seed;
    shapes
        .iter()
        .map(|&(n, prompt)| {
            let ids = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    3 + (x >> 8) % (vocab - 3)
                })
                .collect();
            Sequence {
                ids,
                trained: (0..n).map(|i| i >= prompt).collect(),
                prompt_len: prompt,
            }
        })
        .collect()
}

fn batches(seqs: &[Sequence], max_len: usize) -> (Batch, Batch) {
    let items: Vec<Item> = seqs
        .iter()
        .enumerate()
        .map(|(i, seq)| Item {
            seq,
            class_label: None,
            task: 0,
            id: i as u64,
        })
        .collect();
    let packed = collate(&items, 0, Some(max_len));
    let plain = collate(&items, 0, None);
    assert!(packed.batch < plain.batch, "the examples share rows");
    assert!(
        packed.segment_ids.as_ref().unwrap().iter().any(|&s| s > 1),
        "some row holds two examples"
    );
    (packed, plain)
}

/// The loss of a batch and every parameter's gradient.
fn step<B: AutodiffKernels>(
    model: &LlamaForCausalLM<B>,
    batch: &Batch,
) -> (f64, std::collections::BTreeMap<String, Vec<f32>>) {
    let Logits::Tokens(logits) = model.logits(batch, &ForwardCtx::EVAL) else {
        unreachable!("a causal LM gives token logits")
    };
    let (loss, _): (Tensor<B, 1>, usize) = lm_loss(logits, &batch.labels);
    let value = loss.clone().into_scalar().elem::<f64>();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (value, gradients(model, &grads))
}

/// The largest difference between two steps: of the loss and of each
/// parameter's gradient, relative to that gradient's own scale.
fn worst_difference<B: AutodiffKernels>(
    model: &LlamaForCausalLM<B>,
    a: &Batch,
    b: &Batch,
    what: &str,
) -> f32 {
    let (a_loss, a_grads) = step(model, a);
    let (b_loss, b_grads) = step(model, b);
    let mut worst = ((a_loss - b_loss).abs() / b_loss.abs()) as f32;
    let mut trained = 0;
    for (k, want) in &b_grads {
        let got = &a_grads[k];
        assert_eq!(got.is_empty(), want.is_empty(), "{what}: `{k}`");
        if !want.is_empty() {
            worst = worst.max(max_rel_diff(got, want));
            trained += 1;
        }
    }
    assert!(trained > 0, "{what}: nothing trained");
    worst
}

/// `batch` with `extra` more padding columns on every row: the same
/// examples, the same arithmetic, only longer rows.
fn wider(batch: &Batch, extra: usize) -> Batch {
    let seq = batch.seq + extra;
    let widen = |v: &[u32], fill: u32| -> Vec<u32> {
        v.chunks(batch.seq)
            .flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(fill, extra)))
            .collect()
    };
    let mask: Vec<u32> = batch.attention_mask.iter().map(|&m| m as u32).collect();
    Batch {
        seq,
        input_ids: widen(&batch.input_ids, 0),
        attention_mask: widen(&mask, 0).into_iter().map(|m| m as u8).collect(),
        labels: batch
            .labels
            .chunks(batch.seq)
            .flat_map(|row| {
                row.iter()
                    .copied()
                    .chain(std::iter::repeat_n(IGNORE, extra))
            })
            .collect(),
        ..batch.clone()
    }
}

#[test]
fn a_packed_batch_gives_the_loss_and_gradients_of_the_unpacked_one_on_a_tiny_llama() {
    let _serial = crate::peft_common::autodiff_lock();
    let base = LlamaForCausalLM::<AB>::load(
        &tiny_llama_config(false),
        &mut RandomSource::new(11),
        &Default::default(),
    )
    .unwrap();
    let (packed, plain) = batches(&sequences(64, 7), 12);
    let every = LLAMA_LINEARS;
    let methods = [
        ("full", Method::Full { freeze: vec![] }),
        ("lora", lora(&base, &every, LORA8)),
        ("prompt", prompt(3)),
        ("prefix", prefix(2)),
    ];
    for (what, method) in methods {
        let options = ApplyOptions {
            seed: 3,
            prompt_init_ids: None,
        };
        let model = apply(base.clone(), &method, &options).unwrap();
        let d = worst_difference(&model, &packed, &plain, what);
        assert!(d <= 1e-5, "{what}: packed and unpacked steps differ by {d}");
    }
}

#[test]
fn a_packed_batch_gives_the_loss_and_gradients_of_the_unpacked_one_on_smollm2() {
    let _serial = crate::peft_common::autodiff_lock();
    let (base, _) = ft_runtime::load_causal_lm::<AB>(
        asset("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &Default::default(),
    )
    .unwrap();
    let (packed, plain) = batches(&sequences(49_152, 3), 24);
    let model = apply(
        base.clone(),
        &lora(&base, &["q_proj", "v_proj"], LORA8),
        &ApplyOptions {
            seed: 3,
            prompt_init_ids: None,
        },
    )
    .unwrap();
    // Through 30 layers in f32, rows of other lengths round differently
    // (the products' blocking follows the number of keys): the same
    // examples with only more padding move the first layers' gradients by
    // this much, which is the floor a packed step is held to.
    let floor = worst_difference(&model, &wider(&plain, 17), &plain, "padding");
    assert!(floor < 1e-3, "padding alone moves a gradient by {floor}");
    let d = worst_difference(&model, &packed, &plain, "smollm2 lora");
    println!("SmolLM2 packed vs unpacked: {d:.2e} (wider padding: {floor:.2e})");
    assert!(
        d <= 1e-5_f32.max(2.0 * floor),
        "packed and unpacked steps differ by {d}; more padding alone by {floor}"
    );
}
