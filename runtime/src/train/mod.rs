//! Training: a Plan becomes a trained model in a run folder.
//!
//! - [`run`]: the entry point (`ft run`): builds the data pipeline, loads the
//!   model, injects the PEFT method, trains with the Plan's objective,
//!   optimizer and schedule, evaluates, stops early, checkpoints (exact
//!   resume), exports the adapter and writes the report.
//! - [`optim`]: AdamW/SGD with global-norm clipping; [`schedule`]: learning
//!   rates; [`task`]: the two model kinds and their losses; [`eval`] and
//!   [`metrics`]: evaluation; [`checkpoint`], [`folder`], [`report`]: what
//!   lands on disk.
//!
//! The runtime never sees the recipe's syntax: everything comes from the
//! [`ft_plan::Plan`].

pub mod checkpoint;
mod continued;
mod driver;
pub mod eval;
pub mod folder;
pub mod metrics;
pub mod offline;
pub mod optim;
mod ppo;
pub mod ppo_math;
pub mod report;
pub mod rollout;
mod run;
pub mod schedule;
mod shared;
pub mod task;
mod threads;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use eval::EvalResult;
pub use ppo::{PolicyValue, PpoStats};
pub use run::{run, run_on};

/// How to run a Plan (what is not in the Plan itself).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where run folders go (`<runs_dir>/<recipe>/<id>/`).
    pub runs_dir: PathBuf,
    /// Where tokenized data is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Continue the newest run of this recipe from its last checkpoint.
    pub resume: bool,
    /// Set (e.g. by Ctrl-C) to stop after the current step with a
    /// checkpoint.
    pub stop: Arc<AtomicBool>,
    /// Write a checkpoint every this many steps besides evaluations.
    pub checkpoint_every: Option<u64>,
    /// This exact run folder instead of the next numbered one (a sweep's
    /// trial folder); with `resume`, the folder to continue.
    pub run_dir: Option<PathBuf>,
    /// The recipe text to keep in the run folder when it is not the file
    /// the Plan names (a sweep trial's recipe).
    pub recipe_text: Option<String>,
}

impl RunOptions {
    pub fn new(runs_dir: PathBuf) -> Self {
        RunOptions {
            runs_dir,
            cache_dir: None,
            resume: false,
            stop: Arc::new(AtomicBool::new(false)),
            checkpoint_every: None,
            run_dir: None,
            recipe_text: None,
        }
    }
}

/// What a run reports as it goes (rendered by the CLI as a progress line,
/// plain lines, or a JSON event stream, which a sweep reads back from its
/// trials as these same events).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        run_dir: PathBuf,
        total_steps: u64,
        trainable: usize,
        total_params: usize,
        train_examples: usize,
        resumed_at: Option<u64>,
        /// The arithmetic of the frozen-weight products, in words (`f32`,
        /// or what `precision = bf16` got).
        precision: String,
        /// The threads the run's parallel work is spread over.
        threads: usize,
    },
    Step {
        step: u64,
        total: u64,
        stage: String,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
        eta_s: f64,
        /// PPO's step statistics (reward, KL, losses, clip fraction).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ppo: Option<PpoStats>,
    },
    Eval {
        step: u64,
        result: EvalResult,
    },
    Checkpoint {
        step: u64,
        path: PathBuf,
    },
    EarlyStop {
        step: u64,
        best_step: u64,
        best: f64,
    },
    Interrupted {
        step: u64,
        checkpoint: PathBuf,
    },
    /// Texts of a dataset that the split assignment put in more than one
    /// split (sent once the data is built, before training).
    Leakage {
        dataset: String,
        leaks: Vec<ft_data::split::Leak>,
    },
    Done {
        summary: RunSummary,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub steps: u64,
    pub best_step: Option<u64>,
    pub stopped_early: bool,
    pub final_eval: Vec<EvalResult>,
    /// The exported adapter (PEFT format), else the merged weights (with
    /// `export = both`, `merged/` is beside `adapter/`).
    pub export: Option<PathBuf>,
    /// The merged weights, when the run wrote them.
    pub merged: Option<PathBuf>,
    pub seconds: f64,
    pub trainable: usize,
    /// The run's peak resident memory (what `ft plan`'s estimate is
    /// checked against), where the system reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Rows left out by `on_bad_row = skip`, per dataset and reason.
    pub skipped_rows: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The inputs (data, model, adapter) are bad: exit 1.
    Input,
    /// Loss or gradients became NaN/Inf.
    NonFinite,
    /// A resume found different inputs.
    LockMismatch,
    /// Stopped by the user, with a checkpoint.
    Interrupted,
    /// Files could not be written.
    Io,
}

/// Why a run stopped, with the typed cause where it has one: a data file
/// or row the pipeline refused (its file and line), a model or adapter that
/// could not be used, a device this build lacks.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] ft_pipeline::PipelineError),
    #[error(transparent)]
    Model(#[from] ft_formats::FormatError),
    #[error(transparent)]
    Adapter(#[from] crate::peft::PeftError),
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// Other bad inputs, in words.
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    NonFinite(String),
    #[error("{0}")]
    LockMismatch(String),
    #[error("{0}")]
    Interrupted(String),
    #[error("{0}")]
    Io(String),
}

impl TrainError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let m = message.into();
        match kind {
            ErrorKind::Input => TrainError::Input(m),
            ErrorKind::NonFinite => TrainError::NonFinite(m),
            ErrorKind::LockMismatch => TrainError::LockMismatch(m),
            ErrorKind::Interrupted => TrainError::Interrupted(m),
            ErrorKind::Io => TrainError::Io(m),
        }
    }
    pub(crate) fn input(message: impl Into<String>) -> Self {
        TrainError::Input(message.into())
    }
    pub(crate) fn io(message: impl Into<String>) -> Self {
        TrainError::Io(message.into())
    }
    /// What kind of failure this is (the command line's exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TrainError::Data(_)
            | TrainError::Model(_)
            | TrainError::Adapter(_)
            | TrainError::Backend(_)
            | TrainError::Input(_) => ErrorKind::Input,
            TrainError::NonFinite(_) => ErrorKind::NonFinite,
            TrainError::LockMismatch(_) => ErrorKind::LockMismatch,
            TrainError::Interrupted(_) => ErrorKind::Interrupted,
            TrainError::Io(_) => ErrorKind::Io,
        }
    }
}
