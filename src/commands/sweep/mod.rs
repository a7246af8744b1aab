//! `ft sweep RECIPE`: a hyperparameter search. The compiler expands the
//! recipe's `sweep` block into trials and checks every one before the first
//! starts; each trial then trains in its own run folder under
//! `runs/<recipe>/sweep-NNNN/`, evaluated on the validation split only. The
//! winner — best on validation — is the only trial evaluated on test. The
//! sweep ends with a table (terminal, CSV, JSON), a plot, and the winning
//! settings written back as `<recipe>.best.ft`.
//!
//! `--resume` continues the newest sweep: finished trials are kept, an
//! interrupted one continues from its checkpoint, the rest run.

mod report;
mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ft_compiler::diagnostics::render;
use ft_compiler::driver::Options;
use ft_compiler::sweep::{self, Sweep};
use ft_plan::{Metric, ModelFormat, Plan};
use ft_runtime::train::folder::write_atomic;
use ft_runtime::train::offline::evaluate_plan;
use serde_json::{json, Value};

use report::Row;
use runner::{Job, Outcome};

use super::OutputFormat;

#[derive(clap::Args)]
pub struct Args {
    /// The recipe, with a `sweep` block
    recipe: PathBuf,
    /// Continue the newest sweep of this recipe; finished trials are not run again
    #[arg(long)]
    resume: bool,
    /// Trials to run at the same time, as separate processes (default: the sweep's `jobs`)
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Where run folders go (default: `runs/` beside the recipe)
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Check every trial and list them; train nothing
    #[arg(long)]
    check: bool,
    /// Print only errors and the final table
    #[arg(long, short)]
    quiet: bool,
    /// `json` prints the results as JSON on stdout
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
}

pub fn run(args: Args) -> ExitCode {
    let (base, analysis) = match super::recipe::load(&args.recipe) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let report_errors = |diags: Vec<ft_compiler::diagnostics::Diagnostic>| {
        eprint!(
            "{}",
            render::terminal(&diags, &analysis.sources, super::stderr_style())
        );
        eprintln!("✗ {}: {}", args.recipe.display(), render::summary(&diags));
        ExitCode::from(1)
    };
    let Some(sweep) = sweep::expand(&analysis) else {
        eprintln!(
            "error: {} has no `sweep` block: add one (see `ft explain FT0505`, docs/sweeps.md) or train once with `ft run`",
            args.recipe.display()
        );
        return ExitCode::from(2);
    };
    // Checked already while loading (an invalid trial is an error of the
    // recipe); this gives each trial's Plan.
    let plans = match sweep::check_trials(&analysis, &sweep, Options::default()) {
        Ok(p) => p,
        Err(d) => return report_errors(d),
    };
    eprintln!(
        "sweep: {} trials over {} ({}), picked by {} on the validation split; all {} checked",
        sweep.trials.len(),
        sweep.axes.join(" × "),
        sweep.strategy,
        sweep.pick.describe(),
        sweep.trials.len()
    );
    if args.check {
        for t in &sweep.trials {
            println!("trial {}: {}", t.index, t.describe(&sweep.axes));
        }
        return ExitCode::SUCCESS;
    }

    let runs = super::recipe::runs_dir(args.runs.clone(), &base);
    let dir = match open_sweep(&runs.join(&base.name), &sweep, args.resume) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("sweep folder {}", dir.display());

    let mut jobs = Vec::new();
    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    for (t, plan) in sweep.trials.iter().zip(&plans) {
        let stem = dir.join(format!("trial-{:02}", t.index));
        if let Some(s) = finished(&stem) {
            outcomes.insert(t.index, Outcome::Done(s));
            continue;
        }
        let resume = args.resume && stem.join("ft.lock").exists() && has_checkpoint(&stem);
        if !resume && stem.exists() {
            // A trial that died before its first checkpoint starts over.
            let _ = std::fs::remove_dir_all(&stem);
        }
        let recipe = stem.with_extension("ft");
        let plan_path = stem.with_extension("plan.json");
        let written = write_atomic(&recipe, t.text.as_bytes())
            .and_then(|_| write_atomic(&plan_path, plan.to_json().as_bytes()));
        if let Err(e) = written {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        jobs.push(Job {
            index: t.index,
            label: t.describe(&short_axes(&sweep.axes)),
            recipe,
            plan: plan_path,
            dir: stem,
            resume,
        });
    }
    let skipped = outcomes.len();
    if skipped > 0 {
        eprintln!("{skipped} trial(s) finished before; running {}", jobs.len());
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        eprintln!("\nstopping: trials checkpoint and exit; continue with `ft sweep --resume`");
    });
    let parallel = args.jobs.unwrap_or(sweep.jobs).max(1);
    for (i, o) in runner::run_all(jobs, parallel, sweep.trials.len(), stop.clone(), args.quiet) {
        outcomes.insert(i, o);
    }
    let interrupted = stop.load(Ordering::SeqCst)
        || outcomes.len() < sweep.trials.len()
        || outcomes.values().any(|o| matches!(o, Outcome::Interrupted));

    let mut rows = rows(&sweep, &outcomes, &dir);
    let winner = pick_winner(&sweep, &rows);
    let mut test_note =
        "only the winner is evaluated on the test split; no trial was chosen by it".to_string();
    if let (Some(w), false) = (winner, interrupted) {
        let plan = &plans[w - 1];
        match test_eval(plan, &base, &sweep, &rows[w - 1], &runs) {
            Ok(m) => rows[w - 1].test = Some(m),
            Err(e) => test_note = format!("the winner was not evaluated on test: {e}"),
        }
    }
    let metric = &sweep.pick.metric;
    let table = report::table(&sweep.axes, metric, &rows, winner);
    let results = report::Results {
        recipe: args.recipe.display().to_string(),
        axes: &sweep.axes,
        pick: sweep.pick.describe(),
        strategy: &sweep.strategy,
        budget: sweep.budget.as_deref(),
        winner,
        test_note: test_note.clone(),
        trials: &rows,
    };
    let json = serde_json::to_string_pretty(&results).expect("json");
    let files = [
        (
            "sweep-results.csv",
            report::csv(&sweep.axes, metric, &rows, winner),
        ),
        ("sweep-results.json", json.clone()),
        (
            "sweep-plot.svg",
            report::plot(&sweep.axes, metric, &rows, winner),
        ),
        ("sweep-results.txt", table.clone()),
    ];
    for (name, text) in files {
        if let Err(e) = write_atomic(&dir.join(name), text.as_bytes()) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    match args.format {
        OutputFormat::Json => println!("{json}"),
        OutputFormat::Human => eprint!("\n{table}"),
    }
    if interrupted {
        eprintln!(
            "sweep interrupted: continue with `ft sweep {} --resume`",
            args.recipe.display()
        );
        return ExitCode::from(130);
    }
    let Some(w) = winner else {
        eprintln!(
            "error: no trial finished; see the logs in {}",
            dir.display()
        );
        return ExitCode::from(1);
    };
    let best = sweep::best_path(&args.recipe);
    let t = &sweep.trials[w - 1];
    let header = format!(
        "# Written by `ft sweep {}`: trial {} of {} won with {} = {}\n# ({}). Run it with `ft run {}`.\n",
        args.recipe.display(),
        w,
        sweep.trials.len(),
        sweep.pick.describe(),
        rows[w - 1].val.map_or("?".into(), |v| format!("{v:.4}")),
        t.describe(&sweep.axes),
        best.display()
    );
    let text = format!("{header}{}", t.resolved);
    if let Err(e) = write_atomic(&best, text.as_bytes())
        .and_then(|_| write_atomic(&dir.join("best.ft"), text.as_bytes()))
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    eprintln!(
        "winner: trial {w} ({}); {test_note}\nresults in {}; settings written to {}",
        t.describe(&sweep.axes),
        dir.display(),
        best.display()
    );
    ExitCode::SUCCESS
}

/// `lr`, `rank` for progress lines: the last part of each axis.
fn short_axes(axes: &[String]) -> Vec<String> {
    axes.iter()
        .map(|a| a.rsplit('.').next().unwrap_or(a).to_string())
        .collect()
}

/// The sweep's folder: a new `sweep-NNNN`, or with `resume` the newest one,
/// whose trials must be the ones this recipe expands to now.
fn open_sweep(root: &Path, sweep: &Sweep, resume: bool) -> Result<PathBuf, String> {
    let ids: Vec<u32> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("sweep-"))
                        .and_then(|n| n.parse().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    let last = ids.iter().max().copied();
    let state = json!({
        "axes": sweep.axes,
        "pick": sweep.pick.describe(),
        "trials": sweep.trials.iter().map(|t| json!({"index": t.index, "values": t.values, "recipe": t.text})).collect::<Vec<_>>(),
    });
    if resume {
        let Some(id) = last else {
            return Err(format!(
                "nothing to resume: no sweep under {}",
                root.display()
            ));
        };
        let dir = root.join(format!("sweep-{id:04}"));
        let old: Value = std::fs::read_to_string(dir.join("sweep.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| format!("{}: no readable sweep.json", dir.display()))?;
        if old != state {
            return Err(format!(
                "cannot resume {}: the sweep's trials changed since it started (values, budget or recipe); start a new sweep without --resume",
                dir.display()
            ));
        }
        return Ok(dir);
    }
    let dir = root.join(format!("sweep-{:04}", last.map_or(1, |i| i + 1)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_atomic(
        &dir.join("sweep.json"),
        serde_json::to_string_pretty(&state)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(dir)
}

fn finished(dir: &Path) -> Option<Value> {
    std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

fn has_checkpoint(dir: &Path) -> bool {
    // The trainer's own test: a trial killed while writing its first
    // checkpoint leaves only a temporary folder, which `--resume` of the
    // trial would refuse ("nothing to resume"); such a trial starts over.
    ft_runtime::train::checkpoint::latest(&dir.join("checkpoints")).is_some()
}

/// The picked metric from a run summary's validation evaluation.
fn val_metric(summary: &Value, metric: &str) -> Option<f64> {
    summary["final_eval"]
        .as_array()?
        .iter()
        .find(|r| r["split"] == "val")
        .and_then(|r| r["metrics"][metric].as_f64())
}

fn rows(sweep: &Sweep, outcomes: &BTreeMap<usize, Outcome>, dir: &Path) -> Vec<Row> {
    sweep
        .trials
        .iter()
        .map(|t| {
            let o = outcomes.get(&t.index);
            let s = match o {
                Some(Outcome::Done(s)) => Some(s),
                _ => None,
            };
            Row {
                trial: t.index,
                values: t.values.clone(),
                status: match o {
                    Some(Outcome::Done(_)) => "done".into(),
                    Some(Outcome::Failed(why)) => format!("failed: {why}"),
                    Some(Outcome::Interrupted) => "interrupted".into(),
                    None => "not run".into(),
                },
                val: s.and_then(|s| val_metric(s, &sweep.pick.metric)),
                test: None,
                steps: s.and_then(|s| s["steps"].as_u64()),
                seconds: s.and_then(|s| s["seconds"].as_f64()),
                run_dir: dir
                    .join(format!("trial-{:02}", t.index))
                    .display()
                    .to_string(),
            }
        })
        .collect()
}

/// The best finished trial on validation (the first of equals).
fn pick_winner(sweep: &Sweep, rows: &[Row]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for r in rows {
        let Some(v) = r.val.filter(|v| v.is_finite()) else {
            continue;
        };
        if best.is_none_or(|(_, b)| sweep.pick.better(v, b)) {
            best = Some((r.trial, v));
        }
    }
    best.map(|(i, _)| i)
}

/// The winner on the test split, with the recipe's own evaluation metrics
/// and the picked one: its adapter, or its merged weights.
fn test_eval(
    trial_plan: &Plan,
    base: &Plan,
    sweep: &Sweep,
    row: &Row,
    runs: &Path,
) -> Result<BTreeMap<String, f64>, String> {
    let run_dir = PathBuf::from(&row.run_dir);
    let summary = finished(&run_dir).ok_or("its run has no summary")?;
    let export = summary["export"]
        .as_str()
        .map(PathBuf::from)
        .ok_or("it exported nothing")?;
    let mut plan = trial_plan.clone();
    let adapter = if export.join("adapter_config.json").exists() {
        Some(export.as_path())
    } else {
        // Full fine-tuning exports merged weights in the HF layout.
        plan.model.path = export.clone();
        plan.model.format = ModelFormat::Hf;
        None
    };
    let mut metrics: Vec<Metric> = base.evaluate.metrics.clone();
    if let Some(m) = Metric::from_name(&sweep.pick.metric) {
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    let cache = runs.join(".cache");
    let results = evaluate_plan(
        &plan,
        adapter,
        &["test".to_string()],
        &metrics,
        Some(&cache),
    )
    .map_err(|e| e.to_string())?;
    results
        .into_iter()
        .find(|r| r.split == "test")
        .map(|r| r.metrics)
        .ok_or_else(|| "the recipe has no test split".to_string())
}
