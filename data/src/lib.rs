//! `ft-data`: the data layer of ft, between files on disk and the trainer.
//!
//! - [`source`]: streaming readers for JSONL, JSON, CSV/TSV, YAML and
//!   chatterbot-style YAML conversations, and the cheap [`probe`] the
//!   compiler uses to learn which fields a file has (with file and line).
//! - [`split`]: hash-based train/val/test assignment (optionally stratified)
//!   and the cross-split leakage report.
//! - [`curriculum`]: ordered stages with difficulty order and competence
//!   pacing, as one deterministic, resumable iterator.
//! - [`mixture`]: multi-task sampling by weights or temperature, with a
//!   cap on repeats, in deterministic, resumable epochs.
//! - [`rng`]: the small PRNG and stable hash everything seeded uses, so a
//!   seed gives the same result on every machine.
//!
//! This crate knows neither the recipe syntax nor Burn: the compiler turns
//! a recipe's `dataset` into a [`SourceSpec`], and the runtime consumes the
//! [`Row`]s.

pub mod curriculum;
pub mod mixture;
pub mod render;
pub mod rng;
pub mod source;
pub mod split;
pub mod value;

pub use source::{
    check_row, probe, resolve_files, rows, BadRow, BadRowReason, FieldCheck, FieldInfo, Format,
    Probe, Row, Rows, SourceError, SourceSpec,
};
pub use value::{get_path, typed_cell, ValueKind};
