//! Headers, inventories and tokenizers of the two real models fetched by
//! `scripts/fetch-assets.sh` (the tests fail, with that instruction, when the
//! cache is missing).

mod common;
use common::*;
use ft_formats::safetensors::SafetensorsHeader;
use ft_formats::{Family, GgmlType, Gguf, ModelFiles, ModelTokenizer};
use std::time::Instant;

#[test]
fn minilm_header() {
    let h = SafetensorsHeader::read(&minilm().join("model.safetensors")).unwrap();
    assert_eq!(h.tensors.len(), 104);
    let ids = h.get("embeddings.position_ids").unwrap();
    assert_eq!((ids.dtype.name(), ids.shape.clone()), ("I64", vec![1, 512]));
    let q = h
        .get("encoder.layer.0.attention.self.query.weight")
        .unwrap();
    assert_eq!((q.dtype.name(), q.shape.clone()), ("F32", vec![384, 384]));
}

#[test]
fn minilm_inventory() {
    let inv = ModelFiles::open(minilm()).unwrap().inventory().unwrap();
    let c = &inv.config;
    assert_eq!(c.family, Family::Bert);
    assert_eq!(
        (c.vocab_size, c.hidden_size, c.num_layers, c.num_heads),
        (30522, 384, 6, 12)
    );
    assert_eq!(
        (c.intermediate_size, c.max_positions, c.type_vocab_size),
        (1536, 512, 2)
    );
    assert_eq!(c.norm_eps, 1e-12);
    assert_eq!(inv.params, 22_713_216);
    // 6 per layer (q, k, v, attention.output.dense, intermediate, output) + pooler.
    assert_eq!(inv.linears.len(), 37);
    let inter = inv
        .linears
        .iter()
        .find(|l| l.path == "encoder.layer.5.intermediate.dense")
        .unwrap();
    assert_eq!(
        (
            inter.in_features,
            inter.out_features,
            inter.layer,
            inter.has_bias
        ),
        (384, 1536, Some(5), true)
    );
    assert!(inv
        .linears
        .iter()
        .any(|l| l.path == "pooler.dense" && l.layer.is_none()));
    assert!(!inv.linears.iter().any(|l| l.path.contains("embeddings")));
    assert!(inv.has_tokenizer);
}

#[test]
fn smollm2_gguf_tensor_table() {
    let g = Gguf::open_header(&smollm2()).unwrap();
    assert_eq!(g.version, 3);
    let count = |t: GgmlType| g.tensors.iter().filter(|x| x.ggml_type == t).count();
    assert_eq!(count(GgmlType::Q4_1), 210);
    assert_eq!(count(GgmlType::Q8_0), 1);
    assert_eq!(count(GgmlType::F32), 61);
    assert_eq!(g.tensors.len(), 272);
    assert_eq!(
        g.tensor("token_embd.weight").unwrap().ggml_type,
        GgmlType::Q8_0
    );
    assert!(g.tensor("output.weight").is_none(), "tied head");
}

#[test]
fn smollm2_inventory() {
    let inv = ModelFiles::open(smollm2()).unwrap().inventory().unwrap();
    let c = &inv.config;
    assert_eq!(c.family, Family::Llama);
    assert_eq!(
        (
            c.num_layers,
            c.hidden_size,
            c.num_heads,
            c.num_kv_heads,
            c.head_dim
        ),
        (30, 576, 9, 3, 64)
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size, c.max_positions),
        (1536, 49152, 8192)
    );
    assert_eq!((c.rope_theta, c.norm_eps), (100000.0, 1e-5));
    assert!(c.tie_word_embeddings);
    assert_eq!(inv.params, 134_515_008);
    assert_eq!(inv.linears.len(), 30 * 7);
    let k = inv
        .linears
        .iter()
        .find(|l| l.path == "model.layers.3.self_attn.k_proj")
        .unwrap();
    assert_eq!(
        (k.in_features, k.out_features, k.layer, k.has_bias),
        (576, 192, Some(3), false)
    );
    let e = inv
        .tensors
        .iter()
        .find(|t| t.hf_name == "model.embed_tokens.weight")
        .unwrap();
    assert_eq!(
        (e.shape.clone(), e.dtype.as_str()),
        (vec![49152, 576], "Q8_0")
    );
    assert!(inv.has_tokenizer);
    assert!(inv
        .chat_template
        .as_deref()
        .unwrap()
        .contains("<|im_start|>"));
}

/// `ft check` reads model headers for every recipe: this must stay in the
/// millisecond range. Debug builds are much slower than release, hence the
/// loose bound; the measured figure is printed (`--nocapture`).
#[test]
fn inventory_is_fast() {
    for path in [minilm(), smollm2()] {
        let files = ModelFiles::open(&path).unwrap();
        files.inventory().unwrap(); // warm the page cache
        let t = Instant::now();
        let n = 5;
        for _ in 0..n {
            ModelFiles::open(&path).unwrap().inventory().unwrap();
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
        println!("inventory of {}: {ms:.2} ms", path.display());
        assert!(ms < 250.0, "inventory took {ms:.1} ms");
    }
}

#[test]
fn real_tokenizers() {
    let t = ModelTokenizer::load(&ModelFiles::open(minilm()).unwrap()).unwrap();
    let enc = t.tokenizer.encode("Hello world", true).unwrap();
    assert_eq!(enc.get_ids(), &[101, 7592, 2088, 102]);

    let t = ModelTokenizer::load(&ModelFiles::open(smollm2()).unwrap()).unwrap();
    assert_eq!(t.tokenizer.get_vocab_size(true), 49152);
    let im_start = t.tokenizer.token_to_id("<|im_start|>").unwrap();
    let enc = t.tokenizer.encode("<|im_start|>user", false).unwrap();
    assert_eq!(enc.get_ids()[0], im_start, "special tokens stay whole");
    assert_eq!(t.eos_token.as_deref(), Some("<|im_end|>"));
    let text = "Hello, world! café  spaces";
    let ids = t.tokenizer.encode(text, false).unwrap().get_ids().to_vec();
    assert_eq!(
        t.tokenizer.decode(&ids, false).unwrap(),
        text,
        "byte-level round trip"
    );
}

#[test]
fn smollm2_dequantizes() {
    let g = Gguf::open(&smollm2()).unwrap();
    let emb = g.tensor_f32("token_embd.weight").unwrap();
    assert_eq!(emb.len(), 49152 * 576);
    assert!(emb.iter().all(|v| v.is_finite()));
    let q = g.tensor_f32("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.len(), 576 * 576);
    let mean_abs = q.iter().map(|v| v.abs() as f64).sum::<f64>() / q.len() as f64;
    assert!(mean_abs > 1e-3 && mean_abs < 1.0, "mean |w| = {mean_abs}");
}
