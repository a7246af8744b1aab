//! The part of a training run that every objective shares, around the
//! objective's own step: the run folder (new or resumed from its last
//! checkpoint), the sampler and optimizer state, interruption, the step's
//! line in `metrics.jsonl` and its event, validation with early stopping
//! and checkpoints, and at the end the best weights restored, the final
//! evaluation, the export, the report and `summary.json`.
//!
//! A loop (supervised/DPO in `run.rs`, PPO in `ppo.rs`) draws its
//! micro-batches with [`Driver::next_batch`], computes and applies its
//! update, and hands the result to [`Driver::record_step`] and
//! [`Driver::after_step`]; [`Driver::finish`] closes the run.

use crate::kernels::{AutodiffKernels, PackedFigures};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::AutodiffModule;
use ft_pipeline::sampler::{TrainBatch, TrainSampler};
use ft_pipeline::DataPipeline;
use ft_plan::{Method, Metric, Plan, Precision};

use super::checkpoint::{self, Checkpoint, CheckpointState, EarlyStopState};
use super::eval::EvalResult;
use super::folder;
use super::optim::Optim;
use super::ppo::PpoStats;
use super::shared::{
    early_stop_event, folder_lock, log_eval, non_finite, observe_early_stop, open_run,
    truncate_metrics, write_report, Observed, Sink,
};
use super::{schedule, ErrorKind, Event, RunOptions, RunSummary, TrainError};

/// Evaluates a model on a split with the given metrics.
pub(super) type Validate<'v, M> =
    dyn FnMut(&M, &str, &[Metric]) -> Result<EvalResult, TrainError> + 'v;

/// What one optimizer step did, for the metrics line and the progress event.
pub(super) struct StepRecord {
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub stage: String,
    /// Tokens and examples the step consumed (all its micro-batches).
    pub tokens: usize,
    pub examples: u64,
    pub ppo: Option<PpoStats>,
}

pub(super) struct Driver<'a, B: AutodiffKernels> {
    plan: &'a Plan,
    pipe: &'a DataPipeline,
    opts: &'a RunOptions,
    sampler: TrainSampler<'a>,
    pub(super) opt: Optim<B::InnerBackend>,
    pub(super) state: CheckpointState,
    /// Optimizer steps in the whole run, and micro-batches per step.
    pub(super) total: u64,
    pub(super) accumulate: u64,
    run_dir: PathBuf,
    ck_dir: PathBuf,
    metrics_path: PathBuf,
    sink: Sink,
    eval_every: u64,
    has_val: bool,
    started: Instant,
    /// Throughput window: since when, tokens seen, at which step.
    window: (Instant, usize, u64),
    /// The last validation result and its step: a final evaluation of the
    /// same weights on `val` reuses it.
    last_val: Option<(u64, EvalResult)>,
    trainable: usize,
}

impl<'a, B: AutodiffKernels> Driver<'a, B> {
    /// Opens the run folder (or, with `--resume`, the newest one, whose
    /// checkpoint is restored into `model`) and reports the start.
    /// `counts` are the trainable and total parameters to report. Under
    /// `precision = bf16`, `pack` packs the (restored) model's frozen
    /// weights and says what it packed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open<M: AutodiffModule<B>>(
        model: M,
        counts: (usize, usize),
        pack: &mut dyn FnMut(&mut M) -> PackedFigures,
        plan: &'a Plan,
        pipe: &'a DataPipeline,
        opts: &'a RunOptions,
        device: &B::Device,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(Self, M), TrainError> {
        let started = Instant::now();
        let t = &plan.train;
        let accumulate = t.accumulate.max(1) as u64;
        let lock = folder_lock(plan)?;
        let (run_dir, resuming) = open_run(plan, opts, &lock)?;
        let ck_dir = run_dir.join("checkpoints");
        let metrics_path = run_dir.join("metrics.jsonl");
        let input = TrainError::from;
        let mut sampler = pipe.train_sampler().map_err(input)?;
        let total = sampler.total_steps().div_ceil(accumulate);
        let train_examples: usize = pipe
            .report()
            .datasets
            .iter()
            .flat_map(|d| d.splits.iter().filter(|s| s.name == "train"))
            .map(|s| s.examples)
            .sum();
        let steps_per_epoch = (train_examples as u64)
            .div_ceil((t.batch as u64 * accumulate).max(1))
            .max(1);
        let mut opt = Optim::<B::InnerBackend>::new(t.optimizer.clone());
        let mut state = CheckpointState {
            step: 0,
            sampler: sampler.state().clone(),
            optimizer_updates: 0,
            early_stop: EarlyStopState::default(),
            examples_seen: 0,
            tokens_seen: 0,
            kl_coef: None,
        };
        let mut model = model;
        let mut resumed_at = None;
        if resuming {
            let Some(name) = checkpoint::latest(&ck_dir) else {
                return Err(TrainError::input(format!(
                    "nothing to resume: {} has no checkpoint yet",
                    run_dir.display()
                )));
            };
            let ck = checkpoint::load(&ck_dir.join(&name)).map_err(TrainError::input)?;
            let (m, restored) = checkpoint::restore(model, &ck.params);
            if restored != ck.params.len() {
                return Err(TrainError::input(format!(
                    "checkpoint {name} does not fit the model ({restored} of {} tensors restored)",
                    ck.params.len()
                )));
            }
            model = m;
            opt.import(ck.state.optimizer_updates, ck.optimizer, device);
            sampler = pipe
                .resume_sampler(ck.state.sampler.clone())
                .map_err(input)?;
            state = ck.state;
            resumed_at = Some(state.step);
            truncate_metrics(&metrics_path, state.step)?;
        }
        let sink = Sink::open(&metrics_path)?;
        let packed = match t.precision {
            Precision::F32 => None,
            Precision::Bf16 => Some(pack(&mut model)).filter(|f| f.weights > 0),
        };
        let precision = match (t.precision, &packed) {
            (Precision::F32, _) => "f32".to_string(),
            (Precision::Bf16, Some(f)) => format!(
                "bf16: products with {} frozen weights in bfloat16 on AMX ({} MiB packed, \
                 {} MiB of f32 copies released)",
                f.weights,
                f.packed_bytes >> 20,
                f.released_bytes >> 20
            ),
            (Precision::Bf16, None) => "f32: `precision = bf16` needs the CPU backend on a CPU \
                 with AMX-BF16 and frozen weights; every product stays f32"
                .to_string(),
        };
        on_event(&Event::Start {
            run_dir: run_dir.clone(),
            total_steps: total,
            trainable: counts.0,
            total_params: counts.1,
            train_examples,
            resumed_at,
            precision,
            threads: rayon::current_num_threads(),
        });
        let window = (Instant::now(), 0, state.step);
        let driver = Driver {
            plan,
            pipe,
            opts,
            sampler,
            opt,
            state,
            total,
            accumulate,
            run_dir,
            ck_dir,
            metrics_path,
            sink,
            eval_every: t.eval_every.unwrap_or(steps_per_epoch).max(1),
            has_val: pipe.has_split("val"),
            started,
            window,
            last_val: None,
            trainable: counts.0,
        };
        Ok((driver, model))
    }

    /// Whether the run has steps left (and has not stopped early).
    pub(super) fn running(&self) -> bool {
        self.state.step < self.total && !self.state.early_stop.stopped
    }

    /// The next micro-batch, or `None` when the data is used up.
    pub(super) fn next_batch(&mut self) -> Option<TrainBatch> {
        self.sampler.next()
    }

    /// The learning rate of the coming step (the stage's own, if it sets
    /// one, through the schedule).
    pub(super) fn lr(&self, stage_lr: Option<f64>) -> f64 {
        let t = &self.plan.train;
        schedule::lr_at(
            &t.schedule,
            stage_lr.unwrap_or(t.optimizer.lr()),
            self.state.step,
            self.total,
        )
    }

    /// The error that stops a run whose `what` became NaN or infinite in
    /// the coming step.
    pub(super) fn non_finite(&self, what: &str) -> TrainError {
        non_finite(what, self.state.step + 1, &self.ck_dir)
    }

    fn save<M: AutodiffModule<B>>(&self, model: &M, name: &str) -> Result<PathBuf, TrainError> {
        let ck = Checkpoint {
            state: self.state.clone(),
            params: checkpoint::trainable_values(model),
            optimizer: self.opt.export(),
        };
        checkpoint::save(&self.ck_dir, name, &ck).map_err(TrainError::io)
    }

    /// A checkpoint of the current step (`step-N`), named the latest; the
    /// oldest step checkpoints beyond `output.keep` are removed after it.
    fn save_last<M: AutodiffModule<B>>(&self, model: &M) -> Result<PathBuf, TrainError> {
        let name = format!("step-{}", self.state.step);
        let p = self.save(model, &name)?;
        checkpoint::set_latest(&self.ck_dir, &name).map_err(TrainError::io)?;
        checkpoint::prune(&self.ck_dir, self.plan.output.keep as usize).map_err(TrainError::io)?;
        Ok(p)
    }

    /// When the run was asked to stop (Ctrl-C): a checkpoint of the state
    /// before the coming step, and the error that ends the run.
    pub(super) fn check_interrupt<M: AutodiffModule<B>>(
        &self,
        model: &M,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), TrainError> {
        if !self.opts.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let p = self.save_last(model)?;
        on_event(&Event::Interrupted {
            step: self.state.step,
            checkpoint: p.clone(),
        });
        Err(TrainError::new(
            ErrorKind::Interrupted,
            format!(
                "interrupted at step {}; checkpoint {} (continue with --resume)",
                self.state.step,
                p.display()
            ),
        ))
    }

    /// Counts a finished optimizer step: the state a checkpoint keeps, its
    /// line in `metrics.jsonl` and the progress event.
    pub(super) fn record_step(
        &mut self,
        r: StepRecord,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), TrainError> {
        let st = &mut self.state;
        st.step += 1;
        st.optimizer_updates = self.opt.updates;
        st.sampler = self.sampler.state().clone();
        st.examples_seen += r.examples;
        st.tokens_seen += r.tokens as u64;
        self.window.1 += r.tokens;
        let elapsed = self.window.0.elapsed().as_secs_f64().max(1e-9);
        let tokens_per_s = self.window.1 as f64 / elapsed;
        let per_step = elapsed / (st.step - self.window.2).max(1) as f64;
        let mut line = serde_json::json!({
            "step": st.step, "split": "train", "loss": r.loss, "lr": r.lr,
            "grad_norm": r.grad_norm, "stage": r.stage, "tokens_per_s": tokens_per_s,
        });
        if let (Some(stats), Some(obj)) = (&r.ppo, line.as_object_mut()) {
            if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(stats) {
                obj.extend(fields);
            }
        }
        self.sink.line(line)?;
        on_event(&Event::Step {
            step: st.step,
            total: self.total,
            stage: r.stage,
            loss: r.loss,
            lr: r.lr,
            grad_norm: r.grad_norm,
            tokens_per_s,
            eta_s: per_step * (self.total - st.step) as f64,
            ppo: r.ppo,
        });
        if st.step - self.window.2 >= 20 {
            self.window = (Instant::now(), 0, st.step);
        }
        Ok(())
    }

    /// After a step: validation on `val` (with `wanted` metrics) when one
    /// is due, early stopping with its `best` checkpoint, and the `last`
    /// checkpoint at evaluations and every `--checkpoint-every` steps.
    pub(super) fn after_step<M: AutodiffModule<B>>(
        &mut self,
        model: &M,
        wanted: &[Metric],
        validate: &mut Validate<'_, M>,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), TrainError> {
        let step = self.state.step;
        let at_eval = step % self.eval_every == 0 || step == self.total;
        if at_eval && self.has_val {
            let r = validate(model, "val", wanted)?;
            log_eval(&mut self.sink, step, &r)?;
            self.last_val = Some((step, r.clone()));
            on_event(&Event::Eval {
                step,
                result: r.clone(),
            });
            if let Some(es) = &self.plan.train.early_stop {
                match observe_early_stop(&mut self.state.early_stop, es, step, &r) {
                    Observed::Best => {
                        self.save(model, "best")?;
                    }
                    Observed::Stop => on_event(&early_stop_event(&self.state)),
                    Observed::Worse => {}
                }
            }
        }
        let periodic = self
            .opts
            .checkpoint_every
            .or(self.plan.output.save_every)
            .is_some_and(|n| step % n.max(1) == 0);
        if (at_eval || periodic) && self.running() {
            let path = self.save_last(model)?;
            on_event(&Event::Checkpoint { step, path });
        }
        Ok(())
    }

    /// Ends the run: the final checkpoint, the best weights restored when
    /// early stopping saw a better step, the final evaluation on the
    /// Plan's splits, the export, the report and `summary.json`.
    pub(super) fn finish<M: AutodiffModule<B>>(
        mut self,
        model: M,
        validate: &mut Validate<'_, M>,
        export: impl FnOnce(&M, &Path) -> Result<Option<PathBuf>, TrainError>,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<RunSummary, TrainError> {
        let mut model = model;
        self.save_last(&model)?;
        let st = &self.state;
        let t = &self.plan.train;
        if t.early_stop.is_some() && st.early_stop.best_step.is_some_and(|b| b != st.step) {
            let best = checkpoint::load(&self.ck_dir.join("best")).map_err(TrainError::input)?;
            model = checkpoint::restore(model, &best.params).0;
            self.last_val = None;
        }
        let plan = self.plan;
        let mut final_eval = Vec::new();
        for split in &plan.evaluate.on {
            if !self.pipe.has_split(split) {
                continue;
            }
            let reuse = self.last_val.as_ref().filter(|(step, r)| {
                *step == self.state.step
                    && r.split == *split
                    && plan
                        .evaluate
                        .metrics
                        .iter()
                        .all(|m| r.metrics.contains_key(m.name()))
            });
            let r = match reuse {
                Some((_, r)) => r.clone(),
                None => validate(&model, split, &plan.evaluate.metrics)?,
            };
            self.sink.line(serde_json::json!({
                "step": self.state.step, "split": split, "final": true,
                "metrics": r.metrics, "per_task": r.per_task,
            }))?;
            on_event(&Event::Eval {
                step: self.state.step,
                result: r.clone(),
            });
            final_eval.push(r);
        }
        let export = export(&model, &self.run_dir)?;
        let summary = RunSummary {
            run_dir: self.run_dir.clone(),
            steps: self.state.step,
            best_step: self.state.early_stop.best_step,
            stopped_early: self.state.early_stop.stopped,
            final_eval,
            export,
            merged: Some(self.run_dir.join("merged")).filter(|d| d.join("config.json").is_file()),
            seconds: self.started.elapsed().as_secs_f64(),
            trainable: self.trainable,
            peak_rss_bytes: crate::peak_rss_bytes(),
            skipped_rows: self
                .pipe
                .report()
                .datasets
                .iter()
                .filter(|d| !d.skipped.is_empty())
                .map(|d| (d.name.clone(), d.skipped.clone()))
                .collect(),
        };
        if plan.output.report {
            write_report(plan, &summary, &self.metrics_path, &self.run_dir)?;
        }
        folder::write_atomic(
            &self.run_dir.join("summary.json"),
            serde_json::to_string_pretty(&summary)
                .expect("json")
                .as_bytes(),
        )
        .map_err(TrainError::io)?;
        on_event(&Event::Done {
            summary: summary.clone(),
        });
        Ok(summary)
    }
}

/// Whether, under `precision = bf16`, the frozen `Linear` weights can give
/// up their f32 copies once packed: every method whose training and export
/// use them only in products. Not DoRA (its magnitude divides by the norms
/// of `W + BA`) nor full fine-tuning (its export writes every weight).
pub(super) fn releases_frozen_linear(method: &Method) -> bool {
    match method {
        Method::Full { .. } => false,
        Method::Lora(l) => !l.dora,
        Method::Prefix { .. }
        | Method::Prompt { .. }
        | Method::Adapter { .. }
        | Method::Ia3 { .. } => true,
    }
}
