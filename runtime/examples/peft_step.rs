//! Training-step time of each PEFT method on MiniLM (2-label classifier,
//! batch 16 × 128, AdamW, LoRA dropout 0.1 on), for bench/peft_step.py,
//! which runs the same configurations on PEFT/PyTorch.
//!
//!     cargo run --release -p ft-runtime --example peft_step -- METHOD [STEPS]
//!
//! Prints one line: `METHOD median_ms trainable_params`.

use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{
    Activation, AdapterStyle, Ia3Module, Lora, LoraBias, LoraModule, PromptInit, TargetModule,
    TargetPattern,
};
use ft_plan::Method;
use ft_runtime::bert::BertForSequenceClassification;
use ft_runtime::peft::{
    apply, new_classifier, trainable_parameters, Adaptable, ApplyOptions, ForwardCtx,
};

type AB = Autodiff<NdArray<f32>>;

fn targets(m: &BertForSequenceClassification<AB>, names: &[&str]) -> Vec<TargetModule> {
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

fn method(m: &BertForSequenceClassification<AB>, name: &str) -> Method {
    let lora = |rslora, dora| {
        Method::Lora(Lora {
            rank: 8,
            alpha: 16.0,
            dropout: 0.1,
            targets: vec![],
            layers: None,
            rank_for: Default::default(),
            alpha_for: Default::default(),
            rslora,
            dora,
            bias: LoraBias::None,
            modules_to_save: vec!["classifier".into()],
            modules: targets(m, &["query", "value"])
                .into_iter()
                .map(|target| LoraModule {
                    target,
                    rank: 8,
                    alpha: 16.0,
                })
                .collect(),
        })
    };
    match name {
        "full" => Method::Full { freeze: vec![] },
        "lora" => lora(false, false),
        "dora" => lora(false, true),
        "ia3" => Method::Ia3 {
            targets: vec![],
            feedforward: vec![],
            layers: None,
            modules: targets(m, &["key", "value", "output.dense"])
                .into_iter()
                .map(|target| Ia3Module {
                    feedforward: target.path.ends_with("output.dense"),
                    target,
                })
                .collect(),
            modules_to_save: vec!["classifier".into()],
        },
        "prompt" => Method::Prompt {
            virtual_tokens: 20,
            init: PromptInit::Random,
        },
        "prefix" => Method::Prefix {
            virtual_tokens: 20,
            projection: false,
            projection_hidden: None,
        },
        "houlsby" => Method::Adapter {
            style: AdapterStyle::Houlsby,
            size: 64,
            activation: Activation::Relu,
            layers: None,
        },
        other => panic!("unknown method {other}"),
    }
}

fn main() {
    ft_runtime::tune_allocator();
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("usage: peft_step METHOD [STEPS]");
    let steps: usize = args.next().map_or(5, |s| s.parse().unwrap());
    let dev = Default::default();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (bert, _) =
        ft_runtime::load_bert::<AB>(root.join(".cache/models/all-MiniLM-L6-v2"), &dev).unwrap();
    let base = new_classifier(bert, 2, 0.02, 0);
    let method = method(&base, &name);
    let mut model = apply(
        base,
        &method,
        &ApplyOptions {
            seed: 0,
            prompt_init_ids: None,
        },
    )
    .unwrap();
    let trainable = trainable_parameters(&model, &method);
    let (b, s) = (16, 128);
    let ids: Vec<i64> = (0..b * s)
        .map(|i| 1000 + (i as i64 * 7919) % 20000)
        .collect();
    let ids: Tensor<AB, 2, Int> = Tensor::from_data(TensorData::new(ids, [b, s]), &dev);
    let labels: Vec<i64> = (0..b as i64).map(|i| i % 2).collect();
    let labels: Tensor<AB, 2, Int> = Tensor::from_data(TensorData::new(labels, [b, 1]), &dev);
    let mut optim = AdamWConfig::new().init();
    let mut times = Vec::new();
    for step in 0..=steps {
        let t = Instant::now();
        let logits =
            model.forward_with(ids.clone(), None, None, &ForwardCtx::train(0, step as u64));
        let loss = log_softmax(logits, 1)
            .gather(1, labels.clone())
            .mean()
            .neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        if step > 0 {
            // Step 0 is warm-up (allocations, thread pool).
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{name} {:.0} {trainable}", times[times.len() / 2]);
}
