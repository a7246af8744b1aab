//! `ft run RECIPE`: check, plan and train; the run folder holds the
//! metrics, checkpoints, the exported adapter and a report.
//!
//! Ctrl-C stops after the current step with a checkpoint (`--resume`
//! continues); a second Ctrl-C exits at once.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ft_compiler::diagnostics::render;
use ft_compiler::driver::Analysis;
use ft_runtime::train::eval::EvalResult;
use ft_runtime::train::{self, ErrorKind, Event, RunOptions};

use super::OutputFormat;

#[derive(clap::Args)]
pub struct Args {
    /// The recipe
    recipe: PathBuf,
    /// Continue the newest run of this recipe from its last checkpoint
    #[arg(long)]
    resume: bool,
    /// Where run folders go (default: `runs/` beside the recipe)
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Do not read or write the tokenized-data cache
    #[arg(long)]
    no_cache: bool,
    /// Also write a checkpoint every N steps (besides evaluations)
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<u64>,
    /// Print only errors and the final summary
    #[arg(long, short)]
    quiet: bool,
    /// `json` prints one event per line on stdout
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// Train on this device instead of the recipe's `backend`
    #[arg(long, value_enum)]
    backend: Option<super::BackendArg>,
    /// (for `ft sweep`) run this Plan (JSON); RECIPE is the trial's recipe
    /// text, kept in the run folder
    #[arg(long, hide = true, value_name = "PLAN.json")]
    plan: Option<PathBuf>,
    /// (for `ft sweep`) this exact run folder
    #[arg(long, hide = true, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

/// A sweep trial: the Plan the sweep checked, and the trial's recipe text.
fn trial_plan(
    plan: &std::path::Path,
    recipe: &std::path::Path,
) -> Result<(ft_plan::Plan, String), String> {
    let json = std::fs::read_to_string(plan).map_err(|e| format!("{}: {e}", plan.display()))?;
    let plan: ft_plan::Plan =
        serde_json::from_str(&json).map_err(|e| format!("{}: not a Plan: {e}", plan.display()))?;
    let text = std::fs::read_to_string(recipe).map_err(|e| format!("{}: {e}", recipe.display()))?;
    Ok((plan, text))
}

/// The cache of tokenized data: `$FT_CACHE_DIR`, else `.ft-cache/` beside
/// the runs.
fn cache_dir(runs: &std::path::Path) -> PathBuf {
    std::env::var_os("FT_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| runs.join(".cache"))
}

pub fn run(args: Args) -> ExitCode {
    let (mut plan, recipe_text, analysis) = match &args.plan {
        Some(p) => match trial_plan(p, &args.recipe) {
            Ok((plan, text)) => (plan, Some(text), None),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => match super::recipe::load(&args.recipe) {
            Ok((p, analysis)) => (p, None, Some(analysis)),
            Err(code) => return code,
        },
    };
    if let Some(b) = args.backend {
        plan.train.device = b.into();
    }
    let runs = super::recipe::runs_dir(args.runs.clone(), &plan);
    let mut opts = RunOptions::new(runs.clone());
    opts.resume = args.resume;
    opts.checkpoint_every = args.checkpoint_every;
    opts.run_dir = args.run_dir.clone();
    opts.recipe_text = recipe_text;
    if !args.no_cache {
        opts.cache_dir = Some(cache_dir(&runs));
    }
    let stop = opts.stop.clone();
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (Ctrl-C again to quit at once)…");
    });
    let mut progress = Progress::new(args.format, args.quiet);
    if let Some(analysis) = analysis {
        progress = progress.with_analysis(analysis);
    }
    match train::run(&plan, &opts, &mut |e| progress.event(e)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            progress.clear();
            eprintln!("error: {e}");
            match e.kind() {
                ErrorKind::Interrupted => ExitCode::from(130),
                ErrorKind::Io => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

/// Renders run events: a redrawn line on a terminal, plain lines
/// otherwise, JSON lines with `--format json`.
pub struct Progress {
    format: OutputFormat,
    quiet: bool,
    terminal: bool,
    drawn: bool,
    every: u64,
    /// The last evaluation printed: the final evaluation repeats the last
    /// periodic one when they fall on the same step and split.
    last_eval: Option<(u64, EvalResult)>,
    /// The recipe's analysis, to place warnings about its data.
    analysis: Option<Analysis>,
}

fn duration(secs: f64) -> String {
    let s = Duration::from_secs_f64(secs.max(0.0)).as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

impl Progress {
    pub fn new(format: OutputFormat, quiet: bool) -> Self {
        Progress {
            format,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
            every: 1,
            last_eval: None,
            analysis: None,
        }
    }

    /// Warnings about the data point into the recipe.
    pub fn with_analysis(mut self, analysis: Analysis) -> Self {
        self.analysis = Some(analysis);
        self
    }

    pub fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn say(&mut self, line: String) {
        self.clear();
        eprintln!("{line}");
    }

    pub fn event(&mut self, e: &Event) {
        if self.format == OutputFormat::Json {
            // A reader that went away (a killed sweep) must not stop the
            // run before it checkpoints: write errors are ignored.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(e).expect("events serialize")
            );
            let _ = out.flush();
            return;
        }
        match e {
            Event::Start {
                run_dir,
                total_steps,
                trainable,
                total_params,
                train_examples,
                resumed_at,
                precision,
                threads,
            } => {
                self.every = (total_steps / 20).max(1);
                if self.quiet {
                    return;
                }
                self.say(format!(
                    "run {}: {} steps over {} training examples; {} of {} parameters trainable; {} thread{}{}",
                    run_dir.display(),
                    total_steps,
                    train_examples,
                    trainable,
                    total_params,
                    threads,
                    if *threads == 1 { "" } else { "s" },
                    resumed_at
                        .map(|s| format!("; resumed at step {s}"))
                        .unwrap_or_default()
                ));
                if precision != "f32" {
                    self.say(format!("precision {precision}"));
                }
            }
            Event::Step {
                step,
                total,
                stage,
                loss,
                lr,
                tokens_per_s,
                eta_s,
                ppo,
                ..
            } => {
                if self.quiet {
                    return;
                }
                let rl = ppo
                    .as_ref()
                    .map(|p| format!(" reward {:.3} kl {:.3}", p.reward, p.kl))
                    .unwrap_or_default();
                let line = format!(
                    "step {step}/{total} [{stage}] loss {loss:.4}{rl} lr {lr:.2e} {:.0} tok/s ETA {}",
                    tokens_per_s,
                    duration(*eta_s)
                );
                if self.terminal {
                    eprint!("\r\x1b[2K{line}");
                    let _ = std::io::stderr().flush();
                    self.drawn = true;
                } else if step % self.every == 0 || step == total {
                    eprintln!("{line}");
                }
            }
            Event::Eval { step, result } => {
                if self.quiet && !result.split.eq("test") {
                    return;
                }
                let seen = Some((*step, result.clone()));
                if self.last_eval == seen {
                    return;
                }
                self.last_eval = seen;
                let metrics: Vec<String> = result
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                self.say(format!(
                    "eval {} at step {step} ({} examples): {}",
                    result.split,
                    result.examples,
                    metrics.join(", ")
                ));
                for (task, m) in &result.per_task {
                    let ms: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                    self.say(format!("  {task}: {}", ms.join(", ")));
                }
            }
            Event::Checkpoint { .. } => {}
            Event::EarlyStop {
                step,
                best_step,
                best,
            } => self.say(format!(
                "early stop at step {step}: no improvement; restoring step {best_step} ({best:.4})"
            )),
            Event::Interrupted { step, checkpoint } => self.say(format!(
                "interrupted at step {step}; checkpoint {}",
                checkpoint.display()
            )),
            Event::Leakage { dataset, leaks } => {
                self.clear();
                let found = self
                    .analysis
                    .as_ref()
                    .and_then(|a| Some((a, ft_compiler::leakage::leakage(a, dataset, leaks)?)));
                match found {
                    Some((a, d)) => eprint!(
                        "{}",
                        render::terminal(&[d], &a.sources, super::stderr_style())
                    ),
                    None => eprintln!(
                        "warning[{}]: {} text(s) of dataset `{dataset}` are in more than one split (`ft data` lists them)",
                        ft_compiler::leakage::LEAKAGE.id,
                        leaks.len()
                    ),
                }
            }
            Event::Done { summary } => {
                let written: Vec<String> = summary
                    .export
                    .iter()
                    .chain(
                        summary
                            .merged
                            .iter()
                            .filter(|m| summary.export.as_ref() != Some(*m)),
                    )
                    .map(|p| p.display().to_string())
                    .collect();
                let exported = if written.is_empty() {
                    "nothing exported".to_string()
                } else {
                    format!("exported {}", written.join(" and "))
                };
                for (dataset, reasons) in &summary.skipped_rows {
                    let n: usize = reasons.values().sum();
                    self.say(format!(
                        "skipped {n} bad row(s) of dataset `{dataset}` (on_bad_row = skip): {}",
                        reasons
                            .iter()
                            .map(|(why, k)| format!("{k} {why}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let report = summary.run_dir.join("report.md");
                self.say(format!(
                    "done: {} steps in {:.1} s; {exported}{}",
                    summary.steps,
                    summary.seconds,
                    if report.is_file() {
                        format!("; report {}", report.display())
                    } else {
                        String::new()
                    }
                ))
            }
        }
    }
}
