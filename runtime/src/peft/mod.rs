//! PEFT methods as Burn modules, and adapters in Hugging Face PEFT's format.
//!
//! - [`AdaptedLinear`]: every linear layer of both model families; holds an
//!   optional LoRA (rsLoRA, DoRA) adapter or IA3 scaling.
//! - [`prompt`]: prompt and prefix tuning; [`bottleneck`]: Houlsby/Pfeiffer.
//! - [`apply`]: the one entry point the trainer calls to inject a Plan's
//!   method and leave only its parameters trainable;
//!   [`parameter_counts`] / [`trainable_parameters`].
//! - [`ForwardCtx`]: how a training step reaches the layers (train/eval,
//!   seed, step) so that dropout is deterministic and resumable.
//! - [`adapter`]: export/import of `adapter_config.json` +
//!   `adapter_model.safetensors`; [`merge`]: merged full weights.

pub mod adapter;
mod adapter_import;
pub mod bottleneck;
pub mod inject;
pub mod linear;
pub mod merge;
pub mod prompt;
pub mod rng;
mod saved;

pub use inject::{
    apply, new_classifier, new_head, parameter_counts, trainable_parameters, Adaptable,
    ApplyOptions, Geometry, ParamCounts,
};
pub use linear::{lora_scaling, AdaptedLinear, Ia3Scale, LoraAdapter};
pub use rng::ForwardCtx;

use std::fmt;
use std::path::PathBuf;

use crate::kernels::{Kernels, PackedFigures};

/// Packs the model's frozen weights that enter products — the base weight
/// of every linear layer that gets no gradient, and an LM head's weight
/// (its own or the tied embedding) — for bf16 products, where the backend
/// has such a form (`precision = bf16` on AMX). Each layer owns its packed
/// weight. With `release_linear`, the f32 copies of the linear weights are
/// handed back to the system: right when nothing else reads them (not
/// under DoRA, which takes the norms of `W`, nor full fine-tuning, whose
/// export writes every weight). A tied embedding keeps its copy (its rows
/// are looked up).
pub fn pack_frozen<B: Kernels, M: Adaptable<B>>(
    model: &mut M,
    release_linear: bool,
) -> PackedFigures {
    let mut figures = PackedFigures::default();
    for path in model.target_paths() {
        let Some(layer) = model.adapted_mut(&path) else {
            continue;
        };
        let w = layer.base.weight.val();
        if w.is_require_grad() {
            continue;
        }
        layer.packed = crate::kernels::pack_frozen(&w, release_linear);
        if let Some(p) = &layer.packed {
            figures.add(p);
        }
    }
    if let Some((weight, slot, products_only)) = model.lm_head_mut() {
        if !weight.is_require_grad() {
            *slot = crate::kernels::pack_frozen(&weight, release_linear && products_only);
            if let Some(p) = slot.as_ref() {
                figures.add(p);
            }
        }
    }
    figures
}

/// One way an adapter's files disagree with its config or with the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// A tensor the config implies is not in the file.
    MissingKey(String),
    /// A tensor in the file that the config does not account for.
    UnexpectedKey(String),
    WrongShape {
        key: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    /// A module the adapter targets that the model does not have.
    TargetAbsent(String),
    /// A config field that contradicts the tensors or the model.
    Config { field: String, detail: String },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::MissingKey(k) => write!(f, "missing tensor `{k}`"),
            Mismatch::UnexpectedKey(k) => write!(f, "unexpected tensor `{k}`"),
            Mismatch::WrongShape {
                key,
                expected,
                actual,
            } => write!(
                f,
                "tensor `{key}` has shape {actual:?}, expected {expected:?}"
            ),
            Mismatch::TargetAbsent(p) => write!(f, "target module `{p}` is not in the model"),
            Mismatch::Config { field, detail } => write!(f, "config `{field}`: {detail}"),
        }
    }
}

#[derive(Debug)]
pub enum PeftError {
    /// Resolved targets the model does not have.
    TargetsAbsent(Vec<String>),
    /// A method setting ft cannot honour.
    Invalid(String),
    /// An adapter folder that does not match its config or the model:
    /// every mismatch found, not just the first.
    Mismatched {
        dir: PathBuf,
        mismatches: Vec<Mismatch>,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Format {
        path: PathBuf,
        detail: String,
    },
}

impl fmt::Display for PeftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeftError::TargetsAbsent(p) => {
                write!(f, "target modules not in the model: {}", p.join(", "))
            }
            PeftError::Invalid(s) => f.write_str(s),
            PeftError::Mismatched { dir, mismatches } => {
                write!(
                    f,
                    "adapter {} does not match ({} problem{}):",
                    dir.display(),
                    mismatches.len(),
                    if mismatches.len() == 1 { "" } else { "s" }
                )?;
                for m in mismatches {
                    write!(f, "\n  - {m}")?;
                }
                Ok(())
            }
            PeftError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            PeftError::Format { path, detail } => write!(f, "{}: {detail}", path.display()),
        }
    }
}

impl std::error::Error for PeftError {}
