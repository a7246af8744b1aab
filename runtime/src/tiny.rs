//! Tiny configurations of both families, for fast tests with random weights
//! (`weights::RandomSource`). Shapes are small but exercise every feature:
//! grouped-query attention (4 query / 2 KV heads), untied or tied heads,
//! token types, a classifier.

use crate::kernels::Kernels;
use ft_formats::{Family, ModelConfig};

use crate::bert::{BertForSequenceClassification, BertModel};
use crate::peft::new_classifier;
use crate::weights::RandomSource;

/// A 2-layer Llama: hidden 32, 4 heads of 8, 2 KV heads, FFN 64, vocab 64.
pub fn tiny_llama_config(tie_word_embeddings: bool) -> ModelConfig {
    ModelConfig {
        family: Family::Llama,
        model_type: "llama".into(),
        vocab_size: 64,
        hidden_size: 32,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        intermediate_size: 64,
        max_positions: 128,
        rope_theta: 10000.0,
        rope_scaling: None,
        norm_eps: 1e-5,
        tie_word_embeddings,
        type_vocab_size: 0,
        hidden_act: "silu".into(),
        attention_bias: false,
        position_offset: 0,
        num_labels: None,
        id2label: None,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
        pad_token_id: None,
    }
}

/// A 2-layer BERT: hidden 32, 4 heads, FFN 64, vocab 64, 2 token types, 3 labels.
pub fn tiny_bert_config() -> ModelConfig {
    ModelConfig {
        family: Family::Bert,
        model_type: "bert".into(),
        vocab_size: 64,
        hidden_size: 32,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 4,
        head_dim: 8,
        intermediate_size: 64,
        max_positions: 64,
        rope_theta: 0.0,
        rope_scaling: None,
        norm_eps: 1e-12,
        tie_word_embeddings: false,
        type_vocab_size: 2,
        hidden_act: "gelu".into(),
        attention_bias: true,
        position_offset: 0,
        num_labels: Some(3),
        id2label: None,
        bos_token_id: None,
        eos_token_ids: vec![],
        pad_token_id: Some(0),
    }
}

/// The tiny BERT ([`tiny_bert_config`], weights of seed 3) with a fresh
/// 3-label classifier (seed 11): the classifier the runtime's tests share.
pub fn tiny_bert_classifier<B: Kernels>() -> BertForSequenceClassification<B> {
    let bert = BertModel::load(
        &tiny_bert_config(),
        &mut RandomSource::new(3),
        &Default::default(),
    )
    .expect("random weights of the tiny config");
    new_classifier(bert, 3, 0.02, 11)
}
