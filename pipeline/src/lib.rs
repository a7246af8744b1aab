//! `ft-pipeline`: a Plan's data, from files to the batches the trainer
//! consumes. No Burn.
//!
//! ```no_run
//! # fn main() -> Result<(), ft_pipeline::PipelineError> {
//! # let plan = ft_plan::Plan::from_json(&std::fs::read_to_string("plan.json").unwrap()).unwrap();
//! use ft_pipeline::{BuildOptions, DataPipeline, TextTokenizer};
//! let tok = TextTokenizer::load(&plan.model)?;
//! let data = DataPipeline::build(&plan, tok, &BuildOptions { cache_dir: Some(".cache/ft/data".into()) })?;
//! print!("{}", data.report().to_text());
//! let mut sampler = data.train_sampler()?;
//! while let Some(batch) = sampler.next() {
//!     // train on batch.data; save sampler.state() with each checkpoint
//! }
//! # Ok(()) }
//! ```
//!
//! - [`example`]: rows rendered (templates, chat templates, few-shot) and
//!   tokenized with their loss masks;
//! - [`dataset`]: sources streamed, bad rows, filters, splits, leakage;
//! - [`store`]: a tokenized dataset on disk, memory-mapped (a dataset
//!   larger than memory builds and trains: the heap holds a few numbers
//!   per row, not its text or tokens);
//! - [`cache`]: the content-addressed cache of those stores;
//! - [`sampler`]: the one train sampler (dataset, mixture, curriculum);
//! - [`batch`]: truncation and collation (padding, packing);
//! - [`report`]: the data report and the loss-mask view of examples.

mod assign;
pub mod batch;
pub mod cache;
pub mod dataset;
pub mod example;
mod length_groups;
mod mixing;
pub mod report;
pub mod sampler;
mod spool;
pub mod store;
pub mod tokenize;

pub use batch::{Batch, BatchData, PairBatch, IGNORE};
pub use dataset::{BuiltDataset, Example};
pub use report::{render_example, DataReport, DatasetReport, SplitReport, StageReport};
pub use sampler::{SamplerState, TrainBatch, TrainSampler};
pub use store::Examples;
pub use tokenize::TextTokenizer;

use batch::collate;
use ft_data::SourceError;
use ft_plan::{Plan, TrainData};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum PipelineError {
    /// The Plan asks for something the data cannot give.
    Plan(String),
    Source {
        dataset: String,
        error: SourceError,
    },
    /// A bad row under `on_bad_row = fail`, or one no policy can skip.
    BadRow {
        dataset: String,
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// An example longer than `max_len` under `truncate = error`.
    TooLong {
        dataset: String,
        file: PathBuf,
        line: usize,
        len: usize,
        max_len: usize,
    },
    Tokenizer(String),
    ChatTemplate(String),
    /// A conversation whose trained tokens do not include the EOS token:
    /// the model would never learn to stop.
    EosNotTrained {
        eos: String,
    },
    Sampler(String),
    Cache(String),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Plan(m) => f.write_str(m),
            PipelineError::Source { dataset, error } => write!(f, "dataset `{dataset}`: {error}"),
            PipelineError::BadRow {
                dataset,
                file,
                line,
                reason,
            } => write!(
                f,
                "{}:{line}: {reason} (dataset `{dataset}`; `on_bad_row = skip` skips and counts such rows)",
                file.display()
            ),
            PipelineError::TooLong {
                dataset,
                file,
                line,
                len,
                max_len,
            } => write!(
                f,
                "{}:{line}: the example has {len} tokens, more than max_len = {max_len} (dataset `{dataset}` has `truncate = error`)",
                file.display()
            ),
            PipelineError::Tokenizer(m) => write!(f, "tokenizer: {m}"),
            PipelineError::ChatTemplate(m) => write!(f, "chat template: {m}"),
            PipelineError::EosNotTrained { eos } => write!(
                f,
                "the chat template's assistant turns do not end with the EOS token `{eos}`, so the model would not learn to stop"
            ),
            PipelineError::Sampler(m) => f.write_str(m),
            PipelineError::Cache(m) => write!(f, "data cache: {m}"),
        }
    }
}

impl std::error::Error for PipelineError {}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Where tokenized datasets are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// One evaluation example, for generation metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalExample {
    pub task: u16,
    pub id: u64,
    pub file: PathBuf,
    pub line: usize,
    /// What the model is given (the fitted prompt).
    pub prompt_ids: Vec<u32>,
    /// The reference answer (completion, chosen, or last assistant turn).
    pub reference: Option<String>,
    pub class_label: Option<usize>,
}

/// A Plan's data, built: every dataset the training data uses, tokenized.
pub struct DataPipeline {
    plan: Plan,
    tok: TextTokenizer,
    /// Parallel to `plan.datasets`; `None` for datasets training never uses.
    built: Vec<Option<BuiltDataset>>,
    report: DataReport,
}

impl DataPipeline {
    /// Read, render, split and tokenize the datasets the Plan's training
    /// data uses (from the cache when nothing changed), check the
    /// truncation policy at `train.max_len`, and lay out the sampler's
    /// stages (checking every stage has data).
    pub fn build(
        plan: &Plan,
        tok: TextTokenizer,
        opts: &BuildOptions,
    ) -> Result<DataPipeline, PipelineError> {
        let used = used_datasets(plan)?;
        let mut built: Vec<Option<BuiltDataset>> = vec![None; plan.datasets.len()];
        for &i in &used {
            let ds = &plan.datasets[i];
            let head = &plan.model.head;
            let objective = &plan.train.objective;
            let key = match &opts.cache_dir {
                Some(_) => Some(cache::cache_key(
                    ds,
                    head,
                    objective,
                    plan.seed,
                    &tok.fingerprint,
                )?),
                None => None,
            };
            let dest = opts.cache_dir.as_deref().zip(key.as_deref());
            let cached = dest.and_then(|(dir, k)| cache::load(dir, k, i as u16));
            let b = match cached {
                Some(mut b) => {
                    b.report.from_cache = true;
                    b
                }
                None => {
                    dataset::build_dataset(ds, i as u16, head, objective, plan.seed, &tok, dest)?
                }
            };
            built[i] = Some(b);
        }
        let mut p = DataPipeline {
            plan: plan.clone(),
            tok,
            built,
            report: DataReport::default(),
        };
        let mut datasets = Vec::new();
        for &i in &used {
            let b = p.built(i).expect("built above");
            let mut rep = b.report.clone();
            rep.splits.clear();
            for s in &b.splits {
                let (mut examples, mut tokens, mut trained_tokens) = (0, 0, 0);
                let (truncated, dropped) =
                    sampler::fit_split(&p, i, &s.examples, p.plan.train.max_len, |_, _, f| {
                        examples += 1;
                        tokens += f.seq.len() + f.rejected.as_ref().map_or(0, |r| r.len());
                        trained_tokens += f.seq.trained_tokens();
                        Ok(())
                    })?;
                rep.splits.push(SplitReport {
                    name: s.name.clone(),
                    examples,
                    tokens,
                    trained_tokens,
                    truncated,
                    dropped_too_long: dropped,
                    max_len: p.plan.train.max_len,
                });
            }
            datasets.push(rep);
        }
        let (_, stages) = TrainSampler::new(&p)?;
        p.report = DataReport { datasets, stages };
        Ok(p)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tok
    }

    pub fn report(&self) -> &DataReport {
        &self.report
    }

    /// A built dataset by its index in `Plan::datasets`.
    pub fn built(&self, index: usize) -> Option<&BuiltDataset> {
        self.built.get(index).and_then(Option::as_ref)
    }

    pub fn dataset(&self, name: &str) -> Option<&BuiltDataset> {
        self.built.iter().flatten().find(|b| b.name == name)
    }

    /// Whether any dataset in use has this split (cheap; nothing is
    /// fitted or batched).
    pub fn has_split(&self, split: &str) -> bool {
        self.built
            .iter()
            .flatten()
            .any(|b| b.split(split).is_some_and(|s| !s.examples.is_empty()))
    }

    /// The training sampler from the start.
    pub fn train_sampler(&self) -> Result<TrainSampler<'_>, PipelineError> {
        Ok(TrainSampler::new(self)?.0)
    }

    /// The training sampler continuing from a checkpoint's state: the
    /// batches that follow are exactly those an uninterrupted run gets.
    pub fn resume_sampler(&self, state: SamplerState) -> Result<TrainSampler<'_>, PipelineError> {
        TrainSampler::new(self)?.0.with_state(state)
    }

    /// A split's examples of every dataset in use (datasets in Plan order,
    /// examples in source order), fitted to `train.max_len`.
    pub fn eval_examples(&self, split: &str) -> Result<Vec<EvalExample>, PipelineError> {
        let mut out = Vec::new();
        for (i, b) in self.built.iter().enumerate() {
            let Some(s) = b.as_ref().and_then(|b| b.split(split)) else {
                continue;
            };
            let store = s.examples.store();
            sampler::fit_split(
                self,
                i,
                &s.examples,
                self.plan.train.max_len,
                |pos, _, f| {
                    let e = store.entry(pos);
                    out.push(EvalExample {
                        task: f.task,
                        id: f.id,
                        file: store.file(&e).to_path_buf(),
                        line: e.line as usize,
                        prompt_ids: f.seq.ids[..f.seq.prompt_len].to_vec(),
                        reference: store.tokens(pos).reference,
                        class_label: f.class_label,
                    });
                    Ok(())
                },
            )?;
        }
        Ok(out)
    }

    /// Evaluation batches of a split, in order, `batch` examples each (no
    /// packing; the last batch may be smaller). DPO data gives pairs. Unlike
    /// the train sampler, this holds the split's (fitted) tokens in memory:
    /// evaluation splits are a small share of a dataset.
    pub fn eval_batches(&self, split: &str, batch: usize) -> Result<Vec<BatchData>, PipelineError> {
        let batch = batch.max(1);
        let mut fitted = Vec::new();
        for (i, b) in self.built.iter().enumerate() {
            if let Some(s) = b.as_ref().and_then(|b| b.split(split)) {
                sampler::fit_split(self, i, &s.examples, self.plan.train.max_len, |_, _, f| {
                    fitted.push(f);
                    Ok(())
                })?;
            }
        }
        let pad = self.tok.pad_id;
        Ok(fitted
            .chunks(batch)
            .map(|chunk| {
                let items =
                    |rejected: bool| -> Vec<_> { chunk.iter().map(|f| f.item(rejected)).collect() };
                if chunk[0].rejected.is_some() {
                    BatchData::Pair(Box::new(PairBatch {
                        chosen: collate(&items(false), pad, None),
                        rejected: collate(&items(true), pad, None),
                    }))
                } else {
                    BatchData::Single(collate(&items(false), pad, None))
                }
            })
            .collect())
    }
}

/// Indices (into `Plan::datasets`) of the datasets the training data uses,
/// in Plan order.
fn used_datasets(plan: &Plan) -> Result<Vec<usize>, PipelineError> {
    let mut names: Vec<String> = Vec::new();
    let mut add_ref = |name: &str, mixtures: &[ft_plan::MixturePlan]| match mixtures
        .iter()
        .find(|m| m.name == name)
    {
        Some(m) => names.extend(m.tasks.iter().map(|(t, _)| t.clone())),
        None => names.push(name.to_owned()),
    };
    match &plan.data {
        TrainData::Dataset(r) => add_ref(&r.name, &[]),
        TrainData::Mixture { mixture, .. } => add_ref(&mixture.name, std::slice::from_ref(mixture)),
        TrainData::Curriculum {
            curriculum,
            mixtures,
        } => {
            for s in &curriculum.stages {
                add_ref(&s.data.name, mixtures);
            }
        }
    }
    let mut out = Vec::new();
    for n in names {
        let i = plan
            .datasets
            .iter()
            .position(|d| d.name == *n)
            .ok_or_else(|| {
                PipelineError::Plan(format!(
                    "the training data names `{n}`, which is no dataset of the plan"
                ))
            })?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}
