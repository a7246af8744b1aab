//! The Plan: the one interface between the ft compiler and the ft runtime.
//!
//! The compiler lowers a checked recipe to a [`Plan`] (`ft plan --format
//! json` prints it); the runtime consumes nothing else. Every path in a Plan
//! is absolute (resolved against the recipe's folder), every default is
//! filled in, every `let` is substituted, and module targets are resolved
//! against the real model, so the runtime never re-derives a decision the
//! compiler made. The data parts reuse `ft-data`'s types (sources, splits,
//! the rendering IR) so that the data layer stays syntax-free too.

pub mod method;
pub mod train;

use std::path::PathBuf;

use ft_data::render::{Fields, RowExpr};
use ft_data::split::SplitSpec;
use ft_data::SourceSpec;
use serde::{Deserialize, Serialize};

pub use method::{Method, TargetPattern};
pub use train::{
    Device, EarlyStop, EvalPlan, Length, Metric, MetricRef, Objective, Optimizer, Precision,
    Schedule, ScheduleKind, TrainPlan, Warmup,
};

/// Bumped whenever a Plan's meaning changes, so a run folder written by an
/// older ft is not resumed by a newer one that would read it differently.
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// The recipe file (absolute) and its name without extension, which
    /// names the run folder (`runs/<name>/…`).
    pub recipe: PathBuf,
    pub name: String,
    /// The seed of everything random: adapter initialisation, dropout,
    /// shuffling, sampling.
    pub seed: u64,
    /// The model being trained.
    pub model: ModelPlan,
    /// Other models (a DPO reference is the trained model without its
    /// adapter and needs no entry; a PPO reward model does).
    pub other_models: Vec<ModelPlan>,
    pub datasets: Vec<DatasetPlan>,
    /// What the trainer samples from.
    pub data: TrainData,
    pub method: Method,
    pub train: TrainPlan,
    pub evaluate: EvalPlan,
    /// What a run writes (the recipe's `output` block).
    #[serde(default)]
    pub output: OutputPlan,
}

/// What a run writes besides its metrics and checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPlan {
    /// Where run folders go (`<dir>/<recipe>/<id>/`); `None`: `runs/`
    /// beside the recipe, or the command line's choice.
    pub dir: Option<PathBuf>,
    pub export: Export,
    /// A checkpoint every this many steps, besides those at evaluations.
    pub save_every: Option<u64>,
    /// `report.md` and its plots.
    pub report: bool,
    /// How many of the newest step checkpoints stay on disk (the best one,
    /// kept for early stopping, is apart from these).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_keep() -> u32 {
    2
}

impl Default for OutputPlan {
    fn default() -> Self {
        OutputPlan {
            dir: None,
            export: Export::Adapter,
            save_every: None,
            report: true,
            keep: default_keep(),
        }
    }
}

/// What a run exports at its end. Full fine-tuning has no adapter: it
/// always writes merged weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Export {
    /// PEFT's adapter folder (`adapter/`).
    Adapter,
    /// The full weights with the adapter folded in (`merged/`).
    Merged,
    Both,
}

impl Export {
    /// Whether a run with this method writes `adapter/`.
    pub fn adapter(self, method: &Method) -> bool {
        !matches!(method, Method::Full { .. }) && self != Export::Merged
    }
    /// Whether a run with this method writes `merged/`.
    pub fn merged(self, method: &Method) -> bool {
        matches!(method, Method::Full { .. }) || self != Export::Adapter
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelFormat {
    /// A Hugging Face folder: config.json + safetensors + tokenizer.json.
    Hf,
    /// One GGUF file.
    Gguf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Head {
    /// The model's own language-modelling head.
    CausalLm,
    /// A new classification head over these labels (index = class id),
    /// trained in full and saved with the adapter.
    Classify { labels: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPlan {
    pub name: String,
    pub path: PathBuf,
    pub format: ModelFormat,
    pub head: Head,
    /// Replaces the model's own chat template.
    pub chat_template: Option<String>,
    /// Replaces the model's own tokenizer.
    pub tokenizer: Option<PathBuf>,
    /// A trained adapter folder (PEFT format) applied on load: how a PPO
    /// reward model gets its trained classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<PathBuf>,
}

/// Where a dataset's rows come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// One source, cut into splits by [`DatasetPlan::split`].
    Single(SourceSpec),
    /// Already split: `(split name, source)` in the order written.
    PerSplit(Vec<(String, SourceSpec)>),
}

/// What stratifies a split: a field of the row, or the derived label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stratify {
    Field(String),
    /// The dataset's `label` part, evaluated on the row.
    Label,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Truncate {
    /// Cut the prompt from the left so the completion survives.
    Truncate,
    /// Drop the example (counted in the data report).
    Drop,
    /// Stop with an error naming the row.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnBadRow {
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shots {
    pub count: usize,
    /// The split the examples are drawn from (never `test`).
    pub split: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetPlan {
    pub name: String,
    pub source: DataSource,
    pub fields: Fields,
    /// For a [`DataSource::Single`] source: the split. `None` means every
    /// row is in `train`.
    pub split: Option<SplitSpec>,
    /// Set when the split is stratified by the derived label (then
    /// `split.stratify` is `None` and the runtime builds the strata).
    pub stratify: Option<Stratify>,
    pub shots: Option<Shots>,
    pub filter: Option<RowExpr>,
    pub truncate: Truncate,
    pub on_bad_row: OnBadRow,
}

/// A dataset or mixture, maybe filtered (`tasks where tokens(prompt) < 128`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRef {
    /// A dataset's name, or a mixture's.
    pub name: String,
    pub filter: Option<RowExpr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixturePlan {
    pub name: String,
    /// `(dataset, weight)`; weights are `None` when none was written.
    pub tasks: Vec<(String, Option<f64>)>,
    pub temperature: Option<f64>,
    pub cap: Option<f64>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderKey {
    /// Token count of a rendered part (`prompt`, `completion`, `input`).
    Tokens(String),
    /// A numeric field of the row.
    Field(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    pub name: String,
    pub data: DataRef,
    pub length: Length,
    pub lr: Option<f64>,
    pub batch: Option<usize>,
    pub max_len: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurriculumPlan {
    pub order: Option<(OrderKey, ft_data::curriculum::Direction)>,
    pub pacing: ft_data::curriculum::Pacing,
    pub stages: Vec<StagePlan>,
}

/// What the trainer samples from. Whatever it is, it lowers into one
/// deterministic sampler in the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainData {
    Dataset(DataRef),
    Mixture {
        mixture: MixturePlan,
        filter: Option<RowExpr>,
    },
    Curriculum {
        curriculum: CurriculumPlan,
        mixtures: Vec<MixturePlan>,
    },
}

impl Plan {
    pub fn dataset(&self, name: &str) -> Option<&DatasetPlan> {
        self.datasets.iter().find(|d| d.name == name)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Plan always serializes")
    }

    pub fn from_json(text: &str) -> Result<Plan, serde_json::Error> {
        serde_json::from_str(text)
    }
}
