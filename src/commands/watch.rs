//! `ft watch RECIPE [--run]`: re-check on every save and redraw the
//! diagnostics; with `--run`, (re)start training when the recipe's meaning
//! changes. Decisions come from the pure `crate::watch::step`; this module
//! performs them: file events (notify, debounced, on parent folders so saves
//! by rename are seen), checks, and the run's process group.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::Duration;

use ft_compiler::diagnostics::render;
use ft_compiler::driver::{self, Analysis, Options};
use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult};

use crate::watch::{step, Action, Event, State};

#[derive(clap::Args)]
pub struct Args {
    /// The recipe to watch
    recipe: PathBuf,
    /// Train whenever the recipe checks clean; restart only when its meaning changes
    #[arg(long)]
    run: bool,
    /// Shell command that trains (default: `ft run RECIPE`)
    #[arg(long, hide = true)]
    run_command: Option<String>,
    /// Quiet period after the last change before re-checking, in milliseconds
    #[arg(long, default_value_t = 50)]
    debounce_ms: u64,
    /// Never clear the screen (for logs)
    #[arg(long)]
    no_clear: bool,
}

enum Msg {
    Files(Vec<PathBuf>),
    Exited(u32, bool),
    Interrupt,
}

pub fn run(args: Args) -> ExitCode {
    if !args.recipe.is_file() {
        eprintln!(
            "error: cannot read `{}`: no such file",
            args.recipe.display()
        );
        return ExitCode::from(2);
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    let fs_tx = tx.clone();
    let mut debouncer = match new_debouncer(
        Duration::from_millis(args.debounce_ms),
        None,
        move |res: DebounceEventResult| {
            if let Ok(events) = res {
                // Only changes of content or names: the checks themselves open
                // and read the files, which must not trigger another check.
                let paths: Vec<PathBuf> = events
                    .into_iter()
                    .filter(|e| {
                        matches!(
                            e.event.kind,
                            EventKind::Create(_)
                                | EventKind::Remove(_)
                                | EventKind::Modify(
                                    ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any
                                )
                                | EventKind::Any
                        )
                    })
                    .flat_map(|e| e.event.paths)
                    .collect();
                if !paths.is_empty() {
                    let _ = fs_tx.send(Msg::Files(paths));
                }
            }
        },
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot watch files: {e}");
            return ExitCode::from(2);
        }
    };
    let int_tx = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = int_tx.send(Msg::Interrupt);
    });

    let clear = !args.no_clear && std::io::stdout().is_terminal();
    let mut state = State {
        run: args.run,
        ..State::default()
    };
    let mut watched_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut inputs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut child: Option<u32> = None;
    let mut checks = 0usize;
    let mut queue: Vec<Action> = vec![Action::Check];

    loop {
        while let Some(action) = (!queue.is_empty()).then(|| queue.remove(0)) {
            match action {
                Action::Check => {
                    let analysis = driver::analyze_path(&args.recipe, Options::default());
                    checks += 1;
                    // Watch before drawing: a save right after the redraw
                    // must not be missed.
                    inputs = analysis
                        .input_files()
                        .iter()
                        .map(|p| canonical(p))
                        .collect();
                    for dir in watch_dirs(&inputs) {
                        if watched_dirs.insert(dir.clone()) {
                            let _ = debouncer.watch(&dir, RecursiveMode::NonRecursive);
                        }
                    }
                    draw(&analysis, checks, clear);
                    let event = Event::Checked {
                        errors: analysis.has_errors(),
                        fingerprint: analysis.fingerprint(),
                    };
                    queue.extend(step(&mut state, event));
                }
                Action::Redraw => {}
                Action::StopRun => {
                    if let Some(pid) = child.take() {
                        println!("■ stopping the run (pid {pid})");
                        stop_group(pid);
                    }
                }
                Action::StartRun(fp) => match spawn_run(&args) {
                    Ok(c) => {
                        let pid = c.id();
                        println!("▶ starting the run (pid {pid}, recipe {fp:016x})");
                        child = Some(pid);
                        let exit_tx = tx.clone();
                        std::thread::spawn(move || {
                            let mut c = c;
                            let ok = c.wait().map(|s| s.success()).unwrap_or(false);
                            let _ = exit_tx.send(Msg::Exited(pid, ok));
                        });
                    }
                    Err(e) => println!("✗ cannot start the run: {e}"),
                },
                Action::Exit => {
                    return ExitCode::SUCCESS;
                }
            }
            let _ = std::io::stdout().flush();
        }
        let event = match rx.recv() {
            Ok(Msg::Files(paths)) => {
                if !paths.iter().any(|p| relevant(p, &inputs)) {
                    continue;
                }
                Event::FilesChanged
            }
            Ok(Msg::Exited(pid, success)) => {
                if child != Some(pid) {
                    continue; // a run we already stopped
                }
                child = None;
                println!("{} the run ended", if success { "✓" } else { "✗" });
                Event::RunExited { success }
            }
            Ok(Msg::Interrupt) | Err(_) => Event::Interrupt,
        };
        queue.extend(step(&mut state, event));
    }
}

fn draw(a: &Analysis, n: usize, clear: bool) {
    let mut out = String::new();
    if clear {
        out.push_str("\x1b[2J\x1b[H");
    }
    let style = if clear {
        super::stderr_style()
    } else {
        render::Style::Plain
    };
    out.push_str(&render::terminal(&a.diagnostics, &a.sources, style));
    out.push_str(&format!(
        "── check #{n}: {} ({}) — watching {} files\n",
        a.sources.get(0).name,
        render::summary(&a.diagnostics),
        a.input_files().len()
    ));
    print!("{out}");
}

/// Files are compared by canonical folder plus name, since a file being
/// replaced by rename may briefly not exist.
fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (
        p.parent().and_then(|d| d.canonicalize().ok()),
        p.file_name(),
    ) {
        (Some(d), Some(n)) => d.join(n),
        _ => p.to_path_buf(),
    }
}

/// Parent folders of the inputs (and model folders themselves): a watch on
/// a file misses editors that save by writing a new file and renaming it.
fn watch_dirs(inputs: &BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    inputs
        .iter()
        .filter_map(|p| {
            if p.is_dir() {
                Some(p.clone())
            } else {
                p.parent().map(Path::to_path_buf)
            }
        })
        .collect()
}

fn relevant(p: &Path, inputs: &BTreeSet<PathBuf>) -> bool {
    let c = canonical(p);
    inputs.contains(&c) || inputs.iter().any(|i| i.is_dir() && c.starts_with(i))
}

fn spawn_run(args: &Args) -> std::io::Result<std::process::Child> {
    let mut cmd = match &args.run_command {
        Some(shell) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(shell);
            c
        }
        None => {
            let mut c = Command::new(std::env::current_exe()?);
            c.arg("run").arg(&args.recipe);
            c
        }
    };
    // Its own process group, so stopping it reaches every process it
    // started and none is left behind.
    cmd.process_group(0);
    cmd.spawn()
}

/// SIGINT first (a run saves a checkpoint and exits), SIGKILL after a grace
/// period.
fn stop_group(pid: u32) {
    let pgid = -(pid as i32);
    // SAFETY: kill(2) with a negative pid signals that process group; it
    // touches no memory of ours.
    unsafe {
        libc::kill(pgid, libc::SIGINT);
    }
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: signal 0 only tests whether the group still exists.
        if unsafe { libc::kill(pgid, 0) } != 0 {
            return;
        }
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(pgid, libc::SIGKILL);
    }
}
