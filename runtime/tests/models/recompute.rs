//! Gradient checkpointing ([`RecomputeTape`]): a step whose layers are
//! recomputed in the backward pass gives the loss and the parameter
//! gradients of the ordinary step, for every PEFT method and full
//! fine-tuning, on both model families — with LoRA dropout (the recomputed
//! layers must draw the same masks), a padded row, a tied head whose
//! embedding also trains below the layers, and two forward passes in one
//! loss (as DPO's chosen and rejected sequences).

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;

use crate::peft_common::*;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{Activation, AdapterStyle};
use ft_plan::Method;
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::{apply, Adaptable, ApplyOptions, ForwardCtx};
use ft_runtime::recompute::RecomputeTape;
use ft_runtime::tiny::{tiny_bert_classifier, tiny_llama_config};
use ft_runtime::weights::RandomSource;

type AB = Autodiff<NdArray<f32>>;

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<AB, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn ids(rows: &[&[i64]]) -> Tensor<AB, 2, Int> {
    let n = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), n]), &Default::default())
}

/// Two rows of five tokens, the second with one padded position.
fn mask() -> Tensor<AB, 2> {
    let mut m = vec![1.0f32; 10];
    m[9] = 0.0;
    tensor(m, [2, 5])
}

/// A model under test: a smooth loss over two forward passes.
trait TwoPassLoss: AutodiffModule<AB> + Adaptable<AB> {
    fn loss(&self, ctx: &ForwardCtx, tape: Option<&RecomputeTape<AB>>) -> Tensor<AB, 1>;
}

impl TwoPassLoss for BertForSequenceClassification<AB> {
    fn loss(&self, ctx: &ForwardCtx, tape: Option<&RecomputeTape<AB>>) -> Tensor<AB, 1> {
        let target = tensor(vec![1.0f32, -1.0, 0.5, -0.5, 1.0, 0.0], [2, 3]);
        let a = self.forward_taped(
            ids(&[&[1, 5, 9, 2, 6], &[1, 7, 3, 2, 0]]),
            Some(mask()),
            None,
            ctx,
            tape,
        );
        let b = self.forward_taped(ids(&[&[1, 8, 4, 4, 2]]), None, None, ctx, tape);
        (a - target).powi_scalar(2).mean() + b.powi_scalar(2).mean().mul_scalar(0.5)
    }
}

impl TwoPassLoss for LlamaForCausalLM<AB> {
    fn loss(&self, ctx: &ForwardCtx, tape: Option<&RecomputeTape<AB>>) -> Tensor<AB, 1> {
        let pass = |rows: &[&[i64]], mask: Option<Tensor<AB, 2>>| {
            let hidden = self.forward_hidden_taped(ids(rows), mask, None, ctx, tape);
            let logits = self.head(hidden);
            let [_, s, v] = logits.dims();
            let first = logits.clone().narrow(2, 0, 1).sum();
            (logits.powi_scalar(2).sum() * 1e-3 - first) / (s * v) as f64
        };
        pass(&[&[1, 5, 9, 2, 6], &[1, 7, 3, 2, 0]], Some(mask())) + pass(&[&[4, 4, 8]], None)
    }
}

fn methods<M: Adaptable<AB>>(
    m: &M,
    linears: &[&str],
    ia3_names: [&[&str]; 2],
) -> Vec<(&'static str, Method)> {
    let dropout = |dora| LoraSpec {
        dora,
        dropout: 0.3,
        ..LORA8
    };
    vec![
        ("lora+dropout", lora(m, linears, dropout(false))),
        ("dora+dropout", lora(m, linears, dropout(true))),
        ("ia3", ia3(m, ia3_names[0], ia3_names[1])),
        ("prompt", prompt(3)),
        ("prefix", prefix(2)),
        (
            "prefix+projection",
            Method::Prefix {
                virtual_tokens: 2,
                projection: true,
                projection_hidden: Some(8),
            },
        ),
        (
            "houlsby",
            Method::Adapter {
                style: AdapterStyle::Houlsby,
                size: 4,
                activation: Activation::Gelu,
                layers: None,
            },
        ),
        ("full", Method::Full { freeze: vec![] }),
    ]
}

/// The ordinary step's gradients against the recomputed step's, each
/// parameter relative to its own gradient's scale.
fn check<M: TwoPassLoss>(model: M, methods: Vec<(&str, Method)>, family: &str) {
    let ctx = ForwardCtx::train(7, 3);
    for (what, method) in methods {
        let options = ApplyOptions {
            seed: 5,
            prompt_init_ids: None,
        };
        let model =
            apply(model.clone(), &method, &options).unwrap_or_else(|e| panic!("{what}: {e}"));
        let step = |checkpointed: bool| {
            let tape = checkpointed.then(RecomputeTape::new);
            let loss = model.loss(&ctx, tape.as_ref());
            let value = loss.clone().into_scalar();
            let mut accum = GradientsAccumulator::<M>::new();
            match tape {
                Some(tape) => {
                    assert_eq!(tape.len(), 2, "{family} {what}: one stack per pass");
                    tape.backward(loss.backward(), &model, &mut accum);
                }
                None => {
                    accum.accumulate(&model, GradientsParams::from_grads(loss.backward(), &model))
                }
            }
            (value, gradients(&model, &accum.grads()))
        };
        let ((plain_loss, plain), (ckpt_loss, ckpt)) = (step(false), step(true));
        assert_eq!(plain_loss, ckpt_loss, "{family} {what}: loss");
        let largest = plain.values().flatten().fold(0f32, |m, x| m.max(x.abs()));
        let floor = largest * 1e-4;
        let mut trained = 0;
        for (k, p) in &plain {
            let c = &ckpt[k];
            assert_eq!(
                p.is_empty(),
                c.is_empty(),
                "{family} {what}: `{k}` has a gradient in one step only"
            );
            if p.is_empty() {
                continue;
            }
            // The two steps sum a node's gradient contributions in orders
            // that can differ (Burn orders a backward pass by depth from
            // its root), so values agree to rounding. A DoRA magnitude's
            // gradient is a sum over every token of terms of both signs
            // that mostly cancel, which magnifies that rounding (≈ 1e-4
            // seen); a wrong mask or a missing term is off by far more.
            // A gradient that is zero in exact arithmetic (a key's bias:
            // softmax ignores a shift common to a query's scores) is
            // rounding noise in both, so the scale has a floor.
            let tol = if k.ends_with("lora.magnitude") {
                1e-3
            } else {
                1e-5
            };
            let scale = p.iter().fold(floor, |m, x| m.max(x.abs()));
            let d = c
                .iter()
                .zip(p)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
                / scale;
            assert!(d < tol, "{family} {what}: `{k}`'s gradient differs by {d}");
            trained += 1;
        }
        assert!(trained > 0, "{family} {what}: nothing trained");
    }
}

#[test]
fn recomputed_layers_give_the_gradients_of_the_ordinary_step_on_bert() {
    let _serial = crate::peft_common::autodiff_lock();
    let m = tiny_bert_classifier::<AB>();
    let every = ["query", "key", "value", "dense"];
    let ia3_names: [&[&str]; 2] = [&["key", "value", "output.dense"], &["output.dense"]];
    let methods = methods(&m, &every, ia3_names);
    check(m, methods, "bert");
}

#[test]
fn recomputed_layers_give_the_gradients_of_the_ordinary_step_on_llama() {
    let _serial = crate::peft_common::autodiff_lock();
    let every = LLAMA_LINEARS;
    let ia3_names: [&[&str]; 2] = [&["k_proj", "v_proj", "down_proj"], &["down_proj"]];
    // Tied: under full fine-tuning the embedding trains both as the head
    // and below the layers.
    for tied in [true, false] {
        let config = tiny_llama_config(tied);
        let m =
            LlamaForCausalLM::<AB>::load(&config, &mut RandomSource::new(4), &Default::default())
                .unwrap();
        let methods = methods(&m, &every, ia3_names);
        check(m, methods, if tied { "llama (tied)" } else { "llama" });
    }
}
