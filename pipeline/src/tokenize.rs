//! The model's tokenizer as the pipeline uses it: plain and offset-carrying
//! encodes, the chat template, EOS and padding ids, and a fingerprint for
//! the tokenized-data cache.

use crate::PipelineError;
use ft_formats::{ModelFiles, ModelTokenizer};
use ft_plan::ModelPlan;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokenizers::Tokenizer;

pub struct TextTokenizer {
    pub tokenizer: Tokenizer,
    /// The chat template in force (the recipe's override, else the model's).
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// The id appended to completions (the model's EOS).
    pub eos_id: Option<u32>,
    /// The id padding positions hold (masked out, so its value only has to
    /// be a valid id): the tokenizer's pad token, else 0.
    pub pad_id: u32,
    /// SHA-256 (hex) of the tokenizer's JSON, the chat template and the
    /// special tokens: part of the cache key.
    pub fingerprint: String,
}

/// Names of padding tokens in common vocabularies, tried in order when the
/// tokenizer declares no padding.
const PAD_NAMES: &[&str] = &["[PAD]", "<pad>", "<|pad|>", "<|padding|>"];

impl TextTokenizer {
    /// The tokenizer of a Plan's model: its own, or the recipe's
    /// `tokenizer` override; the recipe's `chat_template` wins over the
    /// model's.
    pub fn load(model: &ModelPlan) -> Result<TextTokenizer, PipelineError> {
        let mt = Self::model_tokenizer(
            &model.path,
            model.tokenizer.as_deref(),
            model.chat_template.as_deref(),
        )?;
        Ok(TextTokenizer::new(mt))
    }

    /// The tokenizer of the model at `path`, its tokenizer and chat
    /// template replaced by the given ones.
    pub fn model_tokenizer(
        path: &Path,
        tokenizer: Option<&Path>,
        chat_template: Option<&str>,
    ) -> Result<ModelTokenizer, PipelineError> {
        let err = |e: &dyn std::fmt::Display| PipelineError::Tokenizer(e.to_string());
        let files = ModelFiles::open(path).map_err(|e| err(&e))?;
        let mut mt = ModelTokenizer::load(&files).map_err(|e| err(&e))?;
        if let Some(path) = tokenizer {
            mt.tokenizer = ft_formats::tokenizer::tokenizer_from_json(path).map_err(|e| err(&e))?;
        }
        if let Some(t) = chat_template {
            mt.chat_template = Some(t.to_string());
        }
        Ok(mt)
    }

    pub fn new(mt: ModelTokenizer) -> TextTokenizer {
        let tok = mt.tokenizer;
        let eos_id = mt
            .eos_token
            .as_deref()
            .and_then(|e| tok.token_to_id(e))
            .or_else(|| mt.eos_token_ids.first().copied());
        let pad_id = tok
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| PAD_NAMES.iter().find_map(|n| tok.token_to_id(n)))
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(tok.to_string(false).unwrap_or_default().as_bytes());
        for part in [&mt.chat_template, &mt.bos_token, &mt.eos_token] {
            h.update([0xFF]);
            h.update(part.as_deref().unwrap_or("").as_bytes());
        }
        h.update(format!("{eos_id:?}/{pad_id}").as_bytes());
        TextTokenizer {
            tokenizer: tok,
            chat_template: mt.chat_template,
            bos_token: mt.bos_token,
            eos_token: mt.eos_token,
            eos_id,
            pad_id,
            fingerprint: hex(&h.finalize()),
        }
    }

    /// Token ids of a text. `special`: let the tokenizer add its special
    /// tokens (`[CLS] … [SEP]`, a Llama BOS); off for text that already
    /// holds them (a rendered chat template) and for completions.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, PipelineError> {
        self.tokenizer
            .encode_fast(text, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| PipelineError::Tokenizer(e.to_string()))
    }

    /// Token ids and their byte spans in `text` (no special tokens added).
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<Span>), PipelineError> {
        let e = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| PipelineError::Tokenizer(e.to_string()))?;
        Ok((e.get_ids().to_vec(), e.get_offsets().to_vec()))
    }

    /// The text of some ids, special tokens shown.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, false).unwrap_or_default()
    }
}

/// A token's byte range in the text it came from.
pub type Span = (usize, usize);

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
