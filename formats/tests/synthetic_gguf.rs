//! A hand-built Llama GGUF: metadata → config, llama.cpp names → HF names,
//! quantized tensors → f32, and the tokenizer built from metadata.

mod common;
use common::*;
use ft_formats::{Family, Gguf, ModelFiles, ModelTokenizer};

fn q8_block(d: f32, q: impl Fn(usize) -> i8) -> Vec<u8> {
    let mut b = half::f16::from_f32(d).to_le_bytes().to_vec();
    b.extend((0..32).map(|i| q(i) as u8));
    b
}

fn tiny_llama_gguf() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.kv_str("general.architecture", "llama")
        .kv_u32("llama.embedding_length", 32)
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.feed_forward_length", 64)
        .kv_u32("llama.attention.head_count", 4)
        .kv_u32("llama.attention.head_count_kv", 2)
        .kv_u32("llama.context_length", 128)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array(
            "tokenizer.ggml.tokens",
            &["a", "b", "ab", "Ġ", "Ġab", "<|end|>"],
        )
        .kv_str_array("tokenizer.ggml.merges", &["a b", "Ġ ab"])
        .kv_i32_array("tokenizer.ggml.token_type", &[1, 1, 1, 1, 1, 3])
        .kv_u32("tokenizer.ggml.eos_token_id", 5)
        .kv_str("tokenizer.chat_template", "{{ messages }}");
    // token_embd: vocab 6 × hidden 32, Q8_0 (one block per row).
    let embd: Vec<u8> = (0..6)
        .flat_map(|r| q8_block(0.5, move |i| (i as i8) - r as i8))
        .collect();
    w.tensor("token_embd.weight", &[32, 6], 8, &embd);
    w.tensor("blk.0.attn_norm.weight", &[32], 0, &f32_bytes(&[1.0; 32]));
    let q4_1: Vec<u8> = (0..32)
        .flat_map(|_| {
            let mut b = half::f16::from_f32(1.0).to_le_bytes().to_vec();
            b.extend(half::f16::from_f32(-8.0).to_le_bytes());
            b.extend([0x21u8; 16]);
            b
        })
        .collect();
    w.tensor("blk.0.attn_q.weight", &[32, 32], 3, &q4_1);
    w.tensor("output_norm.weight", &[32], 0, &f32_bytes(&[2.0; 32]));
    w.bytes()
}

#[test]
fn tiny_llama_from_gguf() {
    let dir = temp_dir("tiny-gguf");
    let p = dir.join("tiny.gguf");
    std::fs::write(&p, tiny_llama_gguf()).unwrap();
    let files = ModelFiles::open(&p).unwrap();
    let inv = files.inventory().unwrap();
    let c = &inv.config;
    assert_eq!(c.family, Family::Llama);
    assert_eq!(
        (
            c.hidden_size,
            c.num_layers,
            c.num_heads,
            c.num_kv_heads,
            c.head_dim
        ),
        (32, 1, 4, 2, 8)
    );
    assert_eq!(
        (c.vocab_size, c.intermediate_size, c.max_positions),
        (6, 64, 128)
    );
    assert!(c.tie_word_embeddings, "no output.weight means a tied head");
    assert_eq!(c.eos_token_ids, vec![5]);
    let names: Vec<&str> = inv.tensors.iter().map(|t| t.hf_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "model.embed_tokens.weight",
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.norm.weight"
        ]
    );
    assert_eq!(
        inv.tensors[0].shape,
        vec![6, 32],
        "PyTorch [vocab, hidden] order"
    );
    assert_eq!(inv.linears.len(), 1);
    assert_eq!(inv.linears[0].path, "model.layers.0.self_attn.q_proj");
    assert_eq!(inv.linears[0].layer, Some(0));
    assert_eq!(inv.params, 6 * 32 + 32 + 32 * 32 + 32);
    assert!(inv.has_tokenizer);
    assert_eq!(inv.chat_template.as_deref(), Some("{{ messages }}"));

    let g = Gguf::open(&p).unwrap();
    let e = g.tensor_f32("token_embd.weight").unwrap();
    assert_eq!(e.len(), 6 * 32);
    assert_eq!(e[32 * 2 + 5], 0.5 * 3.0, "row 2, column 5 = 0.5·(5−2)");
    let q = g.tensor_f32("blk.0.attn_q.weight").unwrap();
    assert_eq!(&q[..2], &[1.0 - 8.0, 1.0 - 8.0]);
    assert_eq!(q[16], 2.0 - 8.0, "high nibbles are elements 16..32");

    let tok = ModelTokenizer::load(&files).unwrap();
    assert_eq!(tok.eos_token.as_deref(), Some("<|end|>"));
    let enc = tok.tokenizer.encode("ab ab<|end|>", false).unwrap();
    assert_eq!(enc.get_ids(), &[2, 4, 5]);
    assert_eq!(tok.tokenizer.decode(&[2, 4], false).unwrap(), "ab ab");
}
