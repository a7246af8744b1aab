//! Training-step worker for `bench/step.py`: LoRA r8 α16 (dropout 0.1) on
//! the attention query and value projections, AdamW, on all-MiniLM-L6-v2
//! (2-label sequence classification) or SmolLM2-135M (causal LM loss);
//! `bench/step.py` runs the same configuration on PEFT/PyTorch.
//!
//! `step_worker minilm|smollm2 PATH BATCH SEQ [f32|bf16]` (`bf16`: frozen
//! weights multiplied in bfloat16 on AMX, as `precision = bf16`); prints `ready LOAD_SECONDS
//! TRAINABLE`, then `STEP_MS LOSS` for each `step` line on stdin, and
//! `VmHWM_KIB` for `rss`; exits on anything else.

use std::io::BufRead;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsAccumulator, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{Lora, LoraBias, LoraModule, TargetModule};
use ft_plan::Method;
use ft_runtime::peft::{
    apply, new_classifier, trainable_parameters, Adaptable, ApplyOptions, ForwardCtx,
};
use ft_runtime::recompute::RecomputeTape;
use ft_runtime::train::task::lm_loss;
use ft_runtime::CpuBackend;

type AB = Autodiff<CpuBackend>;

fn lora<M: Adaptable<AB>>(m: &M, suffixes: &[&str]) -> Method {
    let modules = m
        .target_paths()
        .into_iter()
        .filter(|p| suffixes.iter().any(|s| p.ends_with(s)))
        .map(|path| {
            let a = m.adapted(&path).expect("target");
            LoraModule {
                target: TargetModule {
                    in_features: a.in_features(),
                    out_features: a.out_features(),
                    path,
                    layer: None,
                },
                rank: 8,
                alpha: 16.0,
            }
        })
        .collect();
    Method::Lora(Lora {
        rank: 8,
        alpha: 16.0,
        dropout: 0.1,
        targets: vec![],
        layers: None,
        rank_for: Default::default(),
        alpha_for: Default::default(),
        rslora: false,
        dora: false,
        bias: LoraBias::None,
        modules_to_save: vec![],
        modules,
    })
}

/// One AdamW step on `loss(model, tape)`; returns the loss. With
/// `recompute`, the layers are recomputed in the backward pass (gradient
/// checkpointing) as the trainer does.
fn step<M: AutodiffModule<AB> + Adaptable<AB>, O: Optimizer<M, AB>>(
    model: M,
    optim: &mut O,
    recompute: bool,
    loss: impl Fn(&M, Option<&RecomputeTape<AB>>) -> Tensor<AB, 1>,
) -> (M, f32) {
    let tape = recompute.then(RecomputeTape::new);
    let l = loss(&model, tape.as_ref());
    let value = l.clone().into_scalar();
    let mut accum = GradientsAccumulator::new();
    ft_runtime::recompute::accumulate(tape, l.backward(), &model, &mut accum);
    (optim.step(1e-4, model, accum.grads()), value)
}

fn vm_hwm_kib() -> u64 {
    ft_runtime::peak_rss_bytes().unwrap_or(0) / 1024
}

fn serve(mut one_step: impl FnMut(u64) -> f32) {
    let mut n = 0u64;
    for line in std::io::stdin().lock().lines() {
        match line.expect("stdin").trim() {
            "step" => {
                let t = Instant::now();
                let loss = one_step(n);
                n += 1;
                println!("{:.3} {loss}", t.elapsed().as_secs_f64() * 1000.0);
            }
            "rss" => println!("{}", vm_hwm_kib()),
            _ => break,
        }
    }
}

fn main() {
    ft_runtime::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    if !(5..=6).contains(&args.len()) {
        eprintln!("usage: step_worker minilm|smollm2 PATH BATCH SEQ [f32|bf16][+recompute]");
        std::process::exit(2);
    }
    let (kind, path) = (args[1].as_str(), &args[2]);
    let b: usize = args[3].parse().expect("BATCH");
    let s: usize = args[4].parse().expect("SEQ");
    let bf16 = args.get(5).is_some_and(|p| p.starts_with("bf16"));
    let recompute = args.get(5).is_some_and(|p| p.ends_with("+recompute"));
    let frozen_bf16 = |f: ft_runtime::kernels::PackedFigures| {
        if bf16 {
            eprintln!(
                "bf16: {} frozen weights packed ({} MiB)",
                f.weights,
                f.packed_bytes >> 20
            );
            assert!(
                f.weights > 0,
                "bf16 asked for, but this CPU has no AMX-BF16"
            );
        }
    };
    let dev = Default::default();
    // The token ids of bench/step.py (and bench/peft_step.py).
    let ids: Vec<i64> = (0..b * s)
        .map(|i| 1000 + (i as i64 * 7919) % 20000)
        .collect();
    let ids: Tensor<AB, 2, Int> = Tensor::from_data(TensorData::new(ids, [b, s]), &dev);
    let t = Instant::now();
    match kind {
        "minilm" => {
            let (bert, _) = ft_runtime::load_bert::<AB>(path, &dev).expect("load");
            let base = new_classifier(bert, 2, 0.02, 0);
            let mut method = lora(&base, &["query", "value"]);
            if let Method::Lora(l) = &mut method {
                l.modules_to_save = vec!["classifier".into()];
            }
            let mut model = apply(base, &method, &ApplyOptions::default()).expect("apply");
            frozen_bf16(if bf16 {
                ft_runtime::peft::pack_frozen(&mut model, true)
            } else {
                Default::default()
            });
            let labels: Vec<i64> = (0..b as i64).map(|i| i % 2).collect();
            let labels: Tensor<AB, 2, Int> =
                Tensor::from_data(TensorData::new(labels, [b, 1]), &dev);
            let mut optim = AdamWConfig::new().init();
            println!(
                "ready {:.3} {}",
                t.elapsed().as_secs_f64(),
                trainable_parameters(&model, &method)
            );
            serve(|n| {
                let (m, loss) = step(model.clone(), &mut optim, recompute, |m, tape| {
                    let ctx = ForwardCtx::train(0, n);
                    let logits = m.forward_taped(ids.clone(), None, None, &ctx, tape);
                    log_softmax(logits, 1)
                        .gather(1, labels.clone())
                        .mean()
                        .neg()
                });
                model = m;
                loss
            });
        }
        "smollm2" => {
            let (lm, _) = ft_runtime::load_causal_lm::<AB>(path, &dev).expect("load");
            let method = lora(&lm, &["q_proj", "v_proj"]);
            let mut model = apply(lm, &method, &ApplyOptions::default()).expect("apply");
            frozen_bf16(if bf16 {
                ft_runtime::peft::pack_frozen(&mut model, true)
            } else {
                Default::default()
            });
            let mut optim = AdamWConfig::new().init();
            println!(
                "ready {:.3} {}",
                t.elapsed().as_secs_f64(),
                trainable_parameters(&model, &method)
            );
            // transformers' causal LM loss (position t predicts token t + 1),
            // computed as ft's trainer computes it.
            let labels: Vec<i64> = ids.to_data().to_vec().expect("ids");
            serve(|n| {
                let (m, loss) = step(model.clone(), &mut optim, recompute, |m, tape| {
                    let ctx = ForwardCtx::train(0, n);
                    let hidden = m.forward_hidden_taped(ids.clone(), None, None, &ctx, tape);
                    lm_loss(m.token_logits(hidden), &labels).0
                });
                model = m;
                loss
            });
        }
        other => panic!("unknown model kind {other}"),
    }
}
