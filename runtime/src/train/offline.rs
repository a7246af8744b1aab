//! `ft eval`: a Plan's model (the base, or with an adapter from a run or
//! from PEFT) evaluated on splits, without training.

use crate::backend::{dispatch, OnBackend};
use crate::kernels::{AutodiffKernels, Kernels};
use std::path::Path;

use ft_pipeline::{BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::{Head, Metric, Plan};

use super::eval::{evaluate, EvalResult};
use super::task::Task;
use super::TrainError;
use crate::classifier::Classifier;
use crate::peft::{self, Adaptable};

/// Evaluates on `splits` with `metrics` (the Plan's `evaluate` block when
/// empty), on the Plan's device. An adapter folder is loaded and checked
/// against the model; a classification head comes from the adapter
/// (`modules_to_save`).
pub fn evaluate_plan(
    plan: &Plan,
    adapter: Option<&Path>,
    splits: &[String],
    metrics: &[Metric],
    cache_dir: Option<&Path>,
) -> Result<Vec<EvalResult>, TrainError> {
    struct Eval<'a> {
        plan: &'a Plan,
        adapter: Option<&'a Path>,
        splits: &'a [String],
        metrics: &'a [Metric],
        cache_dir: Option<&'a Path>,
    }
    impl OnBackend for Eval<'_> {
        type Output = Result<Vec<EvalResult>, TrainError>;
        fn run<AB: AutodiffKernels>(self, device: &AB::Device) -> Self::Output {
            let Eval {
                plan,
                adapter,
                splits,
                metrics,
                cache_dir,
            } = self;
            evaluate_on::<AB::InnerBackend>(plan, adapter, splits, metrics, cache_dir, device)
        }
    }
    let work = Eval {
        plan,
        adapter,
        splits,
        metrics,
        cache_dir,
    };
    dispatch(plan.train.device, work).map_err(TrainError::from)?
}

fn evaluate_on<B: Kernels>(
    plan: &Plan,
    adapter: Option<&Path>,
    splits: &[String],
    metrics: &[Metric],
    cache_dir: Option<&Path>,
    device: &B::Device,
) -> Result<Vec<EvalResult>, TrainError> {
    let device = device.clone();
    let tok = TextTokenizer::load(&plan.model).map_err(TrainError::from)?;
    let pipe = DataPipeline::build(
        plan,
        tok,
        &BuildOptions {
            cache_dir: cache_dir.map(Path::to_path_buf),
        },
    )
    .map_err(TrainError::from)?;
    let model_err = TrainError::from;
    // `--adapter` replaces the model's own `adapter`.
    let adapter = adapter.or(plan.model.adapter.as_deref());
    let splits: Vec<String> = if splits.is_empty() {
        plan.evaluate.on.clone()
    } else {
        splits.to_vec()
    };
    let metrics: Vec<Metric> = if metrics.is_empty() {
        plan.evaluate.metrics.clone()
    } else {
        metrics.to_vec()
    };
    match &plan.model.head {
        Head::Classify { labels } => {
            let model = Classifier::<B>::load(&plan.model.path, labels.len(), plan.seed, &device)
                .map_err(model_err)?;
            match model {
                Classifier::Bert(m) => run_splits(
                    &with_adapter(m, adapter)?,
                    &pipe,
                    &splits,
                    &metrics,
                    plan,
                    &device,
                ),
                Classifier::Llama(m) => run_splits(
                    &with_adapter(m, adapter)?,
                    &pipe,
                    &splits,
                    &metrics,
                    plan,
                    &device,
                ),
            }
        }
        Head::CausalLm => {
            let (lm, _) =
                crate::load_causal_lm::<B>(&plan.model.path, &device).map_err(model_err)?;
            let model = with_adapter(lm, adapter)?;
            run_splits(&model, &pipe, &splits, &metrics, plan, &device)
        }
    }
}

fn with_adapter<B: Kernels, M: Adaptable<B>>(
    model: M,
    adapter: Option<&Path>,
) -> Result<M, TrainError> {
    match adapter {
        None => Ok(model),
        Some(dir) => peft::adapter::load_adapter(model, dir)
            .map(|(m, _)| m)
            .map_err(TrainError::from),
    }
}

fn run_splits<B: Kernels, M: Task<B>>(
    model: &M,
    pipe: &DataPipeline,
    splits: &[String],
    metrics: &[Metric],
    plan: &Plan,
    device: &B::Device,
) -> Result<Vec<EvalResult>, TrainError> {
    splits
        .iter()
        .map(|s| {
            evaluate(
                model,
                None,
                pipe,
                s,
                metrics,
                plan.evaluate.batch,
                plan.evaluate.max_new_tokens,
                device,
            )
            .map_err(TrainError::input)
        })
        .collect()
}
