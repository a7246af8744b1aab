//! Where each method's settings show in the model it builds, on a tiny
//! random Llama: prompt tuning initialised from a text starts at that
//! text's embeddings; bottleneck adapters sit where their style puts them,
//! in the listed layers only, at the declared width, and their activation
//! changes what they compute.

use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{Activation, AdapterStyle, PromptInit};
use ft_plan::Method;
use ft_runtime::llama::LlamaForCausalLM;
use ft_runtime::peft::{apply, Adaptable, ApplyOptions};
use ft_runtime::tiny::tiny_llama_config;
use ft_runtime::weights::RandomSource;
use ft_runtime::CpuBackend as B;

fn llama() -> LlamaForCausalLM<B> {
    LlamaForCausalLM::load(
        &tiny_llama_config(false),
        &mut RandomSource::new(4),
        &Default::default(),
    )
    .unwrap()
}

fn vals<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// PEFT's `prompt_tuning_init = TEXT`: the text's token ids repeated to
/// the number of virtual tokens, each row that token's embedding.
#[test]
fn prompt_tuning_from_text_starts_at_the_texts_embeddings() {
    let model = llama();
    let method = Method::Prompt {
        virtual_tokens: 5,
        init: PromptInit::Text("two tokens".into()),
    };
    let opts = ApplyOptions {
        seed: 0,
        prompt_init_ids: Some(vec![3, 7]),
    };
    let tuned = apply(model.clone(), &method, &opts).unwrap();
    let prompt = tuned
        .prompt_tuning()
        .expect("prompt tuning")
        .embedding
        .val();
    let expected = model.embed(&[3, 7, 3, 7, 3]);
    assert_eq!(vals(prompt), vals(expected));
    // A random start is not the text's.
    let random = Method::Prompt {
        virtual_tokens: 5,
        init: PromptInit::Random,
    };
    let tuned = apply(model.clone(), &random, &ApplyOptions::default()).unwrap();
    let prompt = tuned.prompt_tuning().unwrap().embedding.val();
    assert_ne!(vals(prompt), vals(model.embed(&[3, 7, 3, 7, 3])));
}

fn adapter(
    style: AdapterStyle,
    size: usize,
    activation: Activation,
    layers: Option<Vec<usize>>,
) -> Method {
    Method::Adapter {
        style,
        size,
        activation,
        layers,
    }
}

/// Houlsby puts an adapter after attention and after the MLP, Pfeiffer
/// after the MLP only; `layers` limits them to those layers; `size` is
/// the bottleneck's width.
#[test]
fn bottleneck_adapters_sit_where_style_layers_and_size_say() {
    let layers = llama().geometry().layers;
    assert!(layers >= 2);
    let houlsby = apply(
        llama(),
        &adapter(AdapterStyle::Houlsby, 3, Activation::Relu, None),
        &ApplyOptions::default(),
    )
    .unwrap();
    for l in 0..layers {
        let (attn, ffn) = houlsby.adapters(l);
        let (attn, ffn) = (attn.expect("after attention"), ffn.expect("after the MLP"));
        let h = houlsby.geometry().hidden;
        assert_eq!(attn.down.weight.dims(), [h, 3]);
        assert_eq!(ffn.up.weight.dims(), [3, h]);
    }
    let pfeiffer = apply(
        llama(),
        &adapter(AdapterStyle::Pfeiffer, 5, Activation::Relu, Some(vec![1])),
        &ApplyOptions::default(),
    )
    .unwrap();
    for l in 0..layers {
        let (attn, ffn) = pfeiffer.adapters(l);
        assert!(attn.is_none(), "Pfeiffer has no adapter after attention");
        assert_eq!(ffn.is_some(), l == 1, "layer {l}");
    }
    let (_, ffn) = pfeiffer.adapters(1);
    assert_eq!(ffn.unwrap().down.weight.dims()[1], 5);
}

/// Two activations, the same weights (the up projection made non-zero):
/// different outputs.
#[test]
fn bottleneck_activations_change_the_output() {
    let ids: Tensor<B, 2, Int> = Tensor::from_data(
        TensorData::new(vec![1i64, 5, 9, 2], [1, 4]),
        &Default::default(),
    );
    let hidden = |activation| {
        let mut m = apply(
            llama(),
            &adapter(AdapterStyle::Pfeiffer, 4, activation, None),
            &ApplyOptions::default(),
        )
        .unwrap();
        for l in 0..m.geometry().layers {
            let (_, ffn) = m.adapter_slots(l);
            let up = &mut ffn.as_mut().unwrap().up;
            let dims = up.weight.dims();
            // The same values for every activation: a fixed pattern.
            let fixed: Vec<f32> = (0..dims[0] * dims[1])
                .map(|i| ((i * 37 % 11) as f32 - 5.0) / 10.0)
                .collect();
            up.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(fixed, dims),
                &Default::default(),
            ));
        }
        vals(m.forward_hidden(ids.clone(), None, None))
    };
    let relu = hidden(Activation::Relu);
    let silu = hidden(Activation::Silu);
    let gelu = hidden(Activation::Gelu);
    assert_ne!(relu, silu);
    assert_ne!(relu, gelu);
    assert_ne!(silu, gelu);
}
