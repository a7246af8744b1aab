//! What every objective's training loop shares: the run folder (new or
//! resumed, with its lockfile), `metrics.jsonl`, the non-finite stop, the
//! export (adapter or merged weights) and the report.

use crate::kernels::Kernels;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use ft_pipeline::DataPipeline;
use ft_plan::{Head, Plan};

use super::checkpoint;
use super::eval::EvalResult;
use super::folder::{self, Lockfile};
use super::report::{svg_chart, Series};
use super::task::Task;
use super::{ErrorKind, RunOptions, RunSummary, TrainError};
use crate::peft;

pub(super) fn scalar<B: Kernels>(t: Tensor<B, 1>) -> f64 {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32")[0] as f64
}

pub(super) struct Sink {
    pub(super) metrics: std::fs::File,
}

impl Sink {
    /// Appends to `metrics.jsonl`.
    pub(super) fn open(path: &Path) -> Result<Sink, TrainError> {
        Ok(Sink {
            metrics: std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| TrainError::io(format!("{}: {e}", path.display())))?,
        })
    }

    pub(super) fn line(&mut self, v: serde_json::Value) -> Result<(), TrainError> {
        writeln!(self.metrics, "{v}").map_err(|e| TrainError::io(format!("metrics.jsonl: {e}")))
    }
}

/// Keeps the lines of `metrics.jsonl` up to `step` (a resume replays
/// the steps after its checkpoint).
/// The run's lockfile (hashes of every input).
pub(super) fn folder_lock(plan: &Plan) -> Result<Lockfile, TrainError> {
    folder::lockfile(plan).map_err(TrainError::input)
}

pub(super) fn truncate_metrics(path: &Path, step: u64) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    folder::write_atomic(path, kept.as_bytes()).map_err(TrainError::io)
}

/// Where this run lives: a new folder, or (resume) the newest one, whose
/// lockfile must match.
pub(super) fn open_run(
    plan: &Plan,
    opts: &RunOptions,
    lock: &Lockfile,
) -> Result<(PathBuf, bool), TrainError> {
    let dir = folder::recipe_runs(&opts.runs_dir, plan);
    if opts.resume {
        let last = match &opts.run_dir {
            Some(d) => Some(d.clone()).filter(|d| d.join("ft.lock").exists()),
            None => folder::last_run(&dir),
        };
        let Some(run) = last else {
            return Err(TrainError::input(format!(
                "nothing to resume: no run of `{}` under {}",
                plan.name,
                dir.display()
            )));
        };
        if run.join("summary.json").exists() {
            return Err(TrainError::input(format!(
                "nothing to resume: {} finished; start a new run without --resume",
                run.display()
            )));
        }
        let text = std::fs::read_to_string(run.join("ft.lock"))
            .map_err(|e| TrainError::input(format!("{}: {e}", run.join("ft.lock").display())))?;
        let old: Lockfile = serde_json::from_str(&text)
            .map_err(|e| TrainError::input(format!("{}: {e}", run.join("ft.lock").display())))?;
        let diff = folder::differences(&old, lock);
        if !diff.is_empty() {
            return Err(TrainError::new(
                ErrorKind::LockMismatch,
                format!(
                    "cannot resume {}: its inputs changed since it started:\n  - {}\nstart a new run without --resume",
                    run.display(),
                    diff.join("\n  - ")
                ),
            ));
        }
        return Ok((run, true));
    }
    let run = match &opts.run_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| TrainError::io(format!("{}: {e}", d.display())))?;
            d.clone()
        }
        None => folder::new_run(&dir).map_err(TrainError::io)?,
    };
    let w = |name: &str, bytes: &[u8]| {
        folder::write_atomic(&run.join(name), bytes).map_err(TrainError::io)
    };
    w("plan.json", plan.to_json().as_bytes())?;
    w(
        "ft.lock",
        serde_json::to_string_pretty(lock).expect("json").as_bytes(),
    )?;
    match &opts.recipe_text {
        Some(text) => w("recipe.ft", text.as_bytes())?,
        None => {
            if let Ok(src) = std::fs::read(&plan.recipe) {
                w("recipe.ft", &src)?;
            }
        }
    }
    Ok((run, false))
}

pub(super) fn non_finite(what: &str, step: u64, ck_dir: &Path) -> TrainError {
    let last = checkpoint::latest(ck_dir)
        .map(|n| format!("the last good checkpoint is {}", ck_dir.join(n).display()))
        .unwrap_or_else(|| "no checkpoint was written yet".into());
    TrainError::new(
        ErrorKind::NonFinite,
        format!(
            "the {what} became NaN or infinite at step {step}; {last}. \
             Lower the learning rate, set `clip = 1.0` in `train`, or check the data"
        ),
    )
}

pub(super) fn log_eval(sink: &mut Sink, step: u64, r: &EvalResult) -> Result<(), TrainError> {
    sink.line(serde_json::json!({
        "step": step, "split": r.split, "metrics": r.metrics, "per_task": r.per_task,
    }))
}

/// Writes the adapter in PEFT's format (or ft's own for bottleneck
/// adapters); full fine-tuning writes the whole model in the Hugging Face
/// layout (`merged/`).
pub(super) fn export<B: Kernels, M: Task<B>>(
    model: &M,
    plan: &Plan,
    pipe: &DataPipeline,
    run_dir: &Path,
) -> Result<Option<PathBuf>, TrainError> {
    let export = plan.output.export;
    let mut written = None;
    if export.merged(&plan.method) {
        let dir = run_dir.join("merged");
        peft::merge::save_merged(model, &dir)
            .map_err(|e| TrainError::io(format!("writing the merged weights: {e}")))?;
        complete_merged(&dir, plan, pipe)?;
        written = Some(dir);
    }
    if export.adapter(&plan.method) {
        let dir = run_dir.join("adapter");
        let base = plan.model.path.display().to_string();
        peft::adapter::save_adapter(model, &plan.method, &base, &dir)
            .map_err(|e| TrainError::io(format!("exporting the adapter: {e}")))?;
        written = Some(dir);
    }
    Ok(written)
}

/// Makes a merged folder usable on its own: the tokenizer beside the
/// weights, and the recipe's label names in `config.json`.
pub(super) fn complete_merged(
    dir: &Path,
    plan: &Plan,
    pipe: &DataPipeline,
) -> Result<(), TrainError> {
    let tok_path = dir.join("tokenizer.json");
    let json = pipe
        .tokenizer()
        .tokenizer
        .to_string(true)
        .map_err(|e| TrainError::io(format!("serializing the tokenizer: {e}")))?;
    folder::write_atomic(&tok_path, json.as_bytes()).map_err(TrainError::io)?;
    if let Head::Classify { labels } = &plan.model.head {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| TrainError::io(format!("{}: {e}", cfg_path.display())))?;
        let mut cfg: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TrainError::io(format!("{}: {e}", cfg_path.display())))?;
        let id2label: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), serde_json::Value::from(l.as_str())))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), serde_json::Value::from(i)))
            .collect();
        cfg["id2label"] = id2label.into();
        cfg["label2id"] = label2id.into();
        let mut out = serde_json::to_string_pretty(&cfg).expect("json");
        out.push('\n');
        folder::write_atomic(&cfg_path, out.as_bytes()).map_err(TrainError::io)?;
    }
    Ok(())
}

pub(super) fn write_report(
    plan: &Plan,
    s: &RunSummary,
    metrics_path: &Path,
    run_dir: &Path,
) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(metrics_path).unwrap_or_default();
    let mut train = Vec::new();
    let mut val: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for l in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        let step = v["step"].as_f64().unwrap_or(0.0);
        if v["split"] == "train" {
            train.push((step, v["loss"].as_f64().unwrap_or(f64::NAN)));
        } else if v["split"] == "val" && v.get("final").is_none() {
            if let Some(m) = v["metrics"].as_object() {
                for (k, x) in m {
                    val.entry(k.clone())
                        .or_default()
                        .push((step, x.as_f64().unwrap_or(f64::NAN)));
                }
            }
        }
    }
    let mut loss = vec![Series {
        name: "train loss".into(),
        points: train,
    }];
    if let Some(v) = val.remove("loss") {
        loss.push(Series {
            name: "val loss".into(),
            points: v,
        });
    }
    let w = |name: &str, body: String| {
        folder::write_atomic(&run_dir.join(name), body.as_bytes()).map_err(TrainError::io)
    };
    w(
        "loss.svg",
        svg_chart(&format!("{}: loss", plan.name), &loss),
    )?;
    let others: Vec<Series> = val
        .into_iter()
        .map(|(name, points)| Series {
            name: format!("val {name}"),
            points,
        })
        .collect();
    if !others.is_empty() {
        w(
            "metrics.svg",
            svg_chart(&format!("{}: validation metrics", plan.name), &others),
        )?;
    }
    let mut md =
        format!(
        "# {} — run {}\n\n- method: {} ({} trainable parameters)\n- steps: {}{}\n- time: {:.1} s\n",
        plan.name,
        run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        plan.method.name(),
        s.trainable,
        s.steps,
        if s.stopped_early {
            format!(" (stopped early; best step {})", s.best_step.unwrap_or(0))
        } else {
            String::new()
        },
        s.seconds
    );
    if let Some(e) = &s.export {
        md.push_str(&format!("- export: `{}`\n", e.display()));
    }
    md.push_str("\n![loss](loss.svg)\n");
    if !others.is_empty() {
        md.push_str("\n![metrics](metrics.svg)\n");
    }
    md.push_str("\n## Final evaluation\n\n| split | metric | value |\n|---|---|---|\n");
    for r in &s.final_eval {
        for (k, v) in &r.metrics {
            md.push_str(&format!("| {} | {k} | {v:.4} |\n", r.split));
        }
        for (task, m) in &r.per_task {
            for (k, v) in m {
                md.push_str(&format!("| {} ({task}) | {k} | {v:.4} |\n", r.split));
            }
        }
    }
    w("report.md", md)
}

/// What a validation result meant for early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Observed {
    /// A new best (the caller saves `checkpoints/best`).
    Best,
    /// Not better, and patience ran out: the run stops.
    Stop,
    Worse,
}

/// Updates the early-stopping record with a validation result.
pub(super) fn observe_early_stop(
    st: &mut checkpoint::EarlyStopState,
    es: &ft_plan::EarlyStop,
    step: u64,
    r: &EvalResult,
) -> Observed {
    let v = r
        .metrics
        .get(es.metric.metric.name())
        .copied()
        .unwrap_or(f64::NAN);
    let better = match st.best {
        None => v.is_finite(),
        Some(b) if es.maximizes() => v > b + es.min_delta,
        Some(b) => v < b - es.min_delta,
    };
    if better {
        st.best = Some(v);
        st.best_step = Some(step);
        st.bad_evals = 0;
        return Observed::Best;
    }
    st.bad_evals += 1;
    if st.bad_evals >= es.patience {
        st.stopped = true;
        return Observed::Stop;
    }
    Observed::Worse
}

pub(super) fn early_stop_event(state: &checkpoint::CheckpointState) -> super::Event {
    super::Event::EarlyStop {
        step: state.step,
        best_step: state.early_stop.best_step.unwrap_or(0),
        best: state.early_stop.best.unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ft_plan::{EarlyStop, Metric, MetricRef};

    fn watch(mode: Option<bool>, min_delta: f64) -> EarlyStop {
        EarlyStop {
            metric: MetricRef {
                split: "val".into(),
                metric: Metric::Loss,
            },
            patience: 2,
            min_delta,
            maximize: mode,
        }
    }

    /// The stopping step of a sequence of validation losses.
    fn stops_at(es: &EarlyStop, losses: &[f64]) -> Option<u64> {
        let mut st = checkpoint::EarlyStopState::default();
        for (i, &l) in losses.iter().enumerate() {
            let r = EvalResult {
                split: "val".into(),
                metrics: [("loss".to_string(), l)].into(),
                ..Default::default()
            };
            if let Observed::Stop = observe_early_stop(&mut st, es, i as u64 + 1, &r) {
                return Some(i as u64 + 1);
            }
        }
        None
    }

    #[test]
    fn mode_sets_which_direction_improves() {
        let rising = [1.0, 1.1, 1.2, 1.3];
        // A loss is minimised: rising twice stops at the third evaluation.
        assert_eq!(stops_at(&watch(None, 0.0), &rising), Some(3));
        assert_eq!(stops_at(&watch(Some(false), 0.0), &rising), Some(3));
        // `mode = max` on the same metric: every evaluation improves.
        assert_eq!(stops_at(&watch(Some(true), 0.0), &rising), None);
    }

    #[test]
    fn min_delta_is_the_smallest_improvement() {
        let creeping = [1.0, 0.99, 0.98, 0.97];
        assert_eq!(stops_at(&watch(None, 0.0), &creeping), None);
        // Gains of 0.01 are below a min_delta of 0.05: two bad evaluations.
        assert_eq!(stops_at(&watch(None, 0.05), &creeping), Some(3));
    }
}
