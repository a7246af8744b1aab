//! The fine-tuning method of a Plan, with its targets resolved against the
//! real model (so the runtime, the figures and the exported
//! `adapter_config.json` all name the same modules).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A `targets` entry as written (kept for `adapter_config.json`, which
/// records the user's patterns, not the resolved list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetPattern {
    /// Matches a module path equal to it or ending with `.` + it (PEFT).
    Suffix(String),
    /// Matches the full module path (PEFT's `re.fullmatch`).
    Regex(String),
    /// Every linear layer but the output head.
    AllLinear,
}

/// One adapted linear module, resolved: its HF path and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetModule {
    /// The HF module path without the `base_model.model.` prefix, e.g.
    /// `encoder.layer.0.attention.self.query`, `model.layers.3.self_attn.q_proj`.
    pub path: String,
    pub layer: Option<usize>,
    pub in_features: usize,
    pub out_features: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoraBias {
    None,
    All,
    LoraOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lora {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub targets: Vec<TargetPattern>,
    pub layers: Option<Vec<usize>>,
    /// Per-module overrides, keyed by the pattern written (PEFT's
    /// `rank_pattern` / `alpha_pattern`).
    pub rank_for: BTreeMap<String, usize>,
    pub alpha_for: BTreeMap<String, f64>,
    pub rslora: bool,
    pub dora: bool,
    pub bias: LoraBias,
    /// Extra modules trained in full and saved with the adapter (the new
    /// classification head is always among them when there is one).
    pub modules_to_save: Vec<String>,
    /// Resolved: every adapted module, with its own rank and alpha.
    pub modules: Vec<LoraModule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraModule {
    pub target: TargetModule,
    pub rank: usize,
    pub alpha: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdapterStyle {
    Houlsby,
    Pfeiffer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    Relu,
    Gelu,
    Silu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PromptInit {
    Random,
    /// Initialise from the embeddings of this text's tokens (repeated or
    /// cut to `virtual_tokens`, as PEFT does).
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Method {
    /// Every parameter trains except modules matching `freeze`.
    Full {
        freeze: Vec<TargetPattern>,
    },
    Lora(Lora),
    Prefix {
        virtual_tokens: usize,
        projection: bool,
        projection_hidden: Option<usize>,
    },
    Prompt {
        virtual_tokens: usize,
        init: PromptInit,
    },
    Adapter {
        style: AdapterStyle,
        size: usize,
        activation: Activation,
        layers: Option<Vec<usize>>,
    },
    Ia3 {
        targets: Vec<TargetPattern>,
        feedforward: Vec<TargetPattern>,
        layers: Option<Vec<usize>>,
        /// Resolved targets; `feedforward` says whether it scales its input.
        modules: Vec<Ia3Module>,
        modules_to_save: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ia3Module {
    pub target: TargetModule,
    pub feedforward: bool,
}

/// What a LoRA or IA3 method trains of the base model besides its own
/// parameters (PEFT's `bias` and `modules_to_save`): the adapted modules'
/// paths, the bias rule, and the modules to save (the new head's names,
/// `classifier` and `score`, left out).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseParams<'a> {
    pub adapted: Vec<&'a str>,
    pub bias: LoraBias,
    pub modules_to_save: Vec<&'a str>,
}

impl Method {
    /// See [`BaseParams`]; `None` for the other methods.
    pub fn base_params(&self) -> Option<BaseParams<'_>> {
        let (adapted, bias, to_save): (Vec<&str>, LoraBias, &[String]) = match self {
            Method::Lora(l) => (
                l.modules.iter().map(|m| m.target.path.as_str()).collect(),
                l.bias,
                &l.modules_to_save,
            ),
            Method::Ia3 {
                modules,
                modules_to_save,
                ..
            } => (
                modules.iter().map(|m| m.target.path.as_str()).collect(),
                LoraBias::None,
                modules_to_save,
            ),
            _ => return None,
        };
        Some(BaseParams {
            adapted,
            bias,
            modules_to_save: to_save
                .iter()
                .map(String::as_str)
                .filter(|m| !["classifier", "score"].contains(m))
                .collect(),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Method::Full { .. } => "full",
            Method::Lora(_) => "lora",
            Method::Prefix { .. } => "prefix",
            Method::Prompt { .. } => "prompt",
            Method::Adapter { .. } => "adapter",
            Method::Ia3 { .. } => "ia3",
        }
    }
}

impl TargetPattern {
    /// PEFT's rule: a plain name matches a path equal to it or ending with
    /// `.name`; a regex must match the whole path.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            TargetPattern::Suffix(s) => path == s || path.ends_with(&format!(".{s}")),
            TargetPattern::Regex(r) => regex_full_match(r, path),
            TargetPattern::AllLinear => true,
        }
    }
}

/// A tiny full-match for the regexes targets use. The compiler validates
/// and resolves regex targets with the `regex` crate; the runtime only
/// needs this for re-checking imported adapters, so it stays dependency-free
/// by accepting exact text or `.*`-joined pieces.
fn regex_full_match(pattern: &str, path: &str) -> bool {
    let pieces: Vec<&str> = pattern.split(".*").collect();
    if pieces.len() == 1 {
        return pattern == path;
    }
    let mut rest = path;
    for (i, piece) in pieces.iter().enumerate() {
        let piece = piece.replace("\\.", ".");
        if i == 0 {
            match rest.strip_prefix(piece.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == pieces.len() - 1 {
            return rest.ends_with(piece.as_str());
        } else {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
    }
    true
}
