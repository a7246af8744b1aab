//! Tokenizers: `tokenizer.json` of a Hugging Face folder, or a GPT-2
//! byte-level BPE rebuilt from GGUF metadata.
//!
//! The GGUF construction mirrors what transformers (5.x,
//! `integrations/gguf/gguf_tokenizer_mapping.py`) does when it loads a GGUF
//! file with `gguf_file=` and `tokenizer.ggml.model == "gpt2"`: BPE over
//! `tokenizer.ggml.tokens`/`merges` (tokens not spelled in the GPT-2 byte
//! alphabet are respelled into it), a ByteLevel pre-tokenizer without prefix
//! space using the GPT-2 regex (or, for the `tokenizer.ggml.pre` values listed
//! in [`pre_split`], that split regex followed by ByteLevel), no normalizer;
//! tokens of `token_type` 3 (control) spelled in the byte alphabet become
//! special tokens and those of type 4 (user-defined) plain added tokens.
//! Matching transformers matters: the parity tests compare token ids.

use crate::error::{FormatError, FormatErrorKind, Result};
use crate::gguf::{Gguf, Value};
use crate::inventory::ModelFiles;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

/// ggml's token type for control (special) tokens.
const TOKEN_TYPE_CONTROL: u64 = 3;
/// ggml's token type for user-defined tokens (matched whole, not special).
const TOKEN_TYPE_USER: u64 = 4;

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex transformers uses for a `tokenizer.ggml.pre` value; `None`
/// means the plain GPT-2 ByteLevel regex (e.g. SmolLM2's "smollm").
pub fn pre_split(pre: &str) -> Option<&'static str> {
    match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx" | "pixtral" => {
            Some(LLAMA3_SPLIT)
        }
        "qwen2" | "deepseek-r1-qwen" | "megrez" => Some(QWEN2_SPLIT),
        _ => None,
    }
}

/// GPT-2's byte → printable character table (`bytes_to_unicode`).
fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).expect("latin-1")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("small code point")
        };
    }
    table
}

/// A tokenizer with what generation needs besides the vocabulary.
pub struct ModelTokenizer {
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Ids that end generation (the EOS token, plus config.json's list if any).
    pub eos_token_ids: Vec<u32>,
}

impl ModelTokenizer {
    pub fn load(files: &ModelFiles) -> Result<Self> {
        match files {
            ModelFiles::HfFolder {
                dir,
                tokenizer,
                tokenizer_config,
                ..
            } => {
                let path = tokenizer
                    .as_ref()
                    .ok_or_else(|| FormatError::new(dir, FormatErrorKind::NoTokenizer))?;
                let tok = tokenizer_from_json(path)?;
                let inv = files.inventory()?;
                let (bos, eos) = match tokenizer_config {
                    Some(tc) => special_names(tc)?,
                    None => (None, None),
                };
                let mut eos_ids = inv.config.eos_token_ids.clone();
                if let Some(id) = eos.as_deref().and_then(|e| tok.token_to_id(e)) {
                    if !eos_ids.contains(&id) {
                        eos_ids.push(id);
                    }
                }
                Ok(ModelTokenizer {
                    tokenizer: tok,
                    chat_template: inv.chat_template,
                    bos_token: bos,
                    eos_token: eos,
                    eos_token_ids: eos_ids,
                })
            }
            ModelFiles::Gguf { path } => {
                let g = Gguf::open(path)?;
                let tok = tokenizer_from_gguf(&g)?;
                let name_of = |key: &str| {
                    g.get(key)
                        .and_then(Value::as_u64)
                        .and_then(|id| tok.id_to_token(id as u32))
                };
                let eos_ids = g
                    .get("tokenizer.ggml.eos_token_id")
                    .and_then(Value::as_u64)
                    .map(|v| v as u32)
                    .into_iter()
                    .collect();
                Ok(ModelTokenizer {
                    chat_template: g
                        .get("tokenizer.chat_template")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    bos_token: name_of("tokenizer.ggml.bos_token_id"),
                    eos_token: name_of("tokenizer.ggml.eos_token_id"),
                    eos_token_ids: eos_ids,
                    tokenizer: tok,
                })
            }
        }
    }
}

/// Loads a `tokenizer.json`; a parse failure names the line and column.
///
/// Padding and truncation saved in the file (sentence-transformers saves
/// "pad to 128") are switched off, as transformers does for a plain
/// `tokenizer(text)` call: the runtime pads batches itself.
pub fn tokenizer_from_json(path: &Path) -> Result<Tokenizer> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    let mut tok = tokenizer_from_bytes(path, &bytes)?;
    tok.with_padding(None);
    tok.with_truncation(None).map_err(|e| {
        FormatError::new(
            path,
            FormatErrorKind::BadTokenizer {
                detail: e.to_string(),
            },
        )
    })?;
    Ok(tok)
}

fn tokenizer_from_bytes(path: &Path, bytes: &[u8]) -> Result<Tokenizer> {
    Tokenizer::from_bytes(bytes).map_err(|e| match e.downcast_ref::<serde_json::Error>() {
        Some(je) => FormatError::json(path, je),
        None => FormatError::new(
            path,
            FormatErrorKind::BadTokenizer {
                detail: e.to_string(),
            },
        ),
    })
}

/// Builds the byte-level BPE tokenizer stored in GGUF metadata.
pub fn tokenizer_from_gguf(g: &Gguf) -> Result<Tokenizer> {
    let path = g.path.as_path();
    let bad = |detail: String| FormatError::new(path, FormatErrorKind::BadTokenizer { detail });
    let model = g
        .get("tokenizer.ggml.model")
        .ok_or_else(|| FormatError::new(path, FormatErrorKind::NoTokenizer))?
        .as_str()
        .ok_or_else(|| bad("`tokenizer.ggml.model` is not a string".into()))?;
    if model != "gpt2" {
        return Err(bad(format!(
            "tokenizer model `{model}` is not supported (only GPT-2 byte-level BPE, \"gpt2\")"
        )));
    }
    let strings = |key: &str| -> Result<Vec<&str>> {
        let arr = g
            .get(key)
            .ok_or_else(|| bad(format!("no `{key}`")))?
            .as_array()
            .ok_or_else(|| bad(format!("`{key}` is not an array (opened header-only?)")))?;
        arr.iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| bad(format!("`{key}` holds a non-string")))
            })
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    bad(format!(
                        "merge `{m}` is not two tokens separated by a space"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let table = byte_alphabet();
    let in_alphabet = |t: &str| t.chars().all(|c| table.contains(&c));
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let spelled = if in_alphabet(t) {
                t.to_string()
            } else {
                t.bytes().map(|b| table[b as usize]).collect()
            };
            (spelled, i as u32)
        })
        .collect();
    // No unk token, as in transformers: every byte has a token.
    let builder = BPE::builder().vocab_and_merges(vocab, merges);
    let bpe = builder.build().map_err(|e| bad(e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    let pre = g
        .get("tokenizer.ggml.pre")
        .and_then(Value::as_str)
        .unwrap_or("");
    match pre_split(pre) {
        None => {
            tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
        Some(re) => {
            let split = Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| bad(format!("split regex for `{pre}`: {e}")))?;
            tok.with_pre_tokenizer(Some(Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])));
        }
    }
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    if let Some(types) = g.get("tokenizer.ggml.token_type").and_then(Value::as_array) {
        let of_type = |ty: u64| {
            types
                .iter()
                .enumerate()
                .filter(move |(_, t)| t.as_u64() == Some(ty))
                .filter_map(|(i, _)| tokens.get(i).copied())
        };
        // A "control" token spelled outside the byte alphabet is a llama.cpp
        // mislabel; transformers skips it, and so do we.
        let specials: Vec<AddedToken> = of_type(TOKEN_TYPE_CONTROL)
            .filter(|t| in_alphabet(t))
            .map(|t| AddedToken::from(t.to_string(), true).normalized(false))
            .collect();
        tok.add_special_tokens(&specials);
        let user: Vec<AddedToken> = of_type(TOKEN_TYPE_USER)
            .filter(|t| in_alphabet(t))
            .map(|t| AddedToken::from(t.to_string(), false).normalized(false))
            .collect();
        tok.add_tokens(&user);
    }
    Ok(tok)
}

/// bos/eos token strings from tokenizer_config.json (a string or an
/// `{"content": ...}` object).
fn special_names(path: &Path) -> Result<(Option<String>, Option<String>)> {
    let text = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| FormatError::json(path, &e))?;
    let name = |k: &str| match json.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v) => v
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        None => None,
    };
    Ok((name("bos_token"), name("eos_token")))
}
