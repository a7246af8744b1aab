//! Runs a sweep's trials as child `ft run` processes, one after another or
//! `jobs` at a time. A child runs the Plan the sweep checked, in the trial's
//! own run folder, and reports on stdout as JSON events; its stderr goes to
//! a log beside the folder. A child that fails is reported and the sweep
//! goes on; a stop (Ctrl-C, SIGTERM) is passed to the children, which
//! checkpoint, so `ft sweep --resume` continues where they were.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use ft_runtime::train::Event;
use serde_json::Value;

/// One trial to run.
pub struct Job {
    pub index: usize,
    /// `lr = 1e-4, rank = 8`, for progress lines.
    pub label: String,
    /// The trial's recipe text and Plan, written by the sweep.
    pub recipe: PathBuf,
    pub plan: PathBuf,
    /// The trial's run folder.
    pub dir: PathBuf,
    /// Continue from the folder's checkpoint.
    pub resume: bool,
}

/// How a trial ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Its `summary.json`.
    Done(Value),
    /// Exit status and the last lines of its log.
    Failed(String),
    /// Stopped by the user, with a checkpoint.
    Interrupted,
}

enum Msg {
    Event(usize, Box<Event>),
    Exit(usize, Option<i32>),
}

/// Where a trial's stderr goes.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.with_extension("log")
}

/// Runs `jobs`, at most `parallel` at once, until all ended or `stop` is
/// set. `total` is the sweep's trial count (for "trial 3/6").
pub fn run_all(
    jobs: Vec<Job>,
    parallel: usize,
    total: usize,
    stop: Arc<AtomicBool>,
    quiet: bool,
) -> Vec<(usize, Outcome)> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ft"));
    let (tx, rx) = mpsc::channel::<Msg>();
    let pids: Arc<Mutex<Vec<(usize, u32)>>> = Arc::default();
    let mut pending: std::collections::VecDeque<Job> = jobs.into();
    let mut running: Vec<Job> = Vec::new();
    let mut ended = Vec::new();
    let mut forwarded = false;
    let mut line = Line::new(quiet, parallel == 1);
    let threads = (std::thread::available_parallelism().map_or(2, |n| n.get()) / parallel).max(1);
    loop {
        while running.len() < parallel && !stop.load(Ordering::SeqCst) {
            let Some(job) = pending.pop_front() else {
                break;
            };
            match spawn(&exe, &job, parallel, threads, &tx, &pids) {
                Ok(()) => {
                    line.say(format!(
                        "trial {}/{total} ({}): started",
                        job.index, job.label
                    ));
                    running.push(job);
                }
                Err(e) => ended.push((job.index, Outcome::Failed(e))),
            }
        }
        if running.is_empty() {
            break;
        }
        if stop.load(Ordering::SeqCst) && !forwarded {
            // Children in our process group saw a terminal's Ctrl-C
            // themselves; a SIGTERM to this process reaches only us.
            for (_, pid) in pids.lock().expect("pids").iter() {
                unsafe {
                    libc::kill(*pid as i32, libc::SIGTERM);
                }
            }
            forwarded = true;
        }
        let Ok(msg) = rx.recv_timeout(std::time::Duration::from_millis(200)) else {
            continue;
        };
        match msg {
            Msg::Event(i, e) => line.event(i, total, label_of(&running, i), &e),
            Msg::Exit(i, code) => {
                pids.lock().expect("pids").retain(|(j, _)| *j != i);
                let pos = running.iter().position(|j| j.index == i).expect("running");
                let job = running.remove(pos);
                let outcome = outcome(&job, code);
                line.ended(&job, total, &outcome);
                ended.push((i, outcome));
            }
        }
    }
    line.clear();
    ended
}

fn label_of(running: &[Job], i: usize) -> &str {
    running
        .iter()
        .find(|j| j.index == i)
        .map_or("", |j| j.label.as_str())
}

fn spawn(
    exe: &Path,
    job: &Job,
    parallel: usize,
    threads: usize,
    tx: &mpsc::Sender<Msg>,
    pids: &Arc<Mutex<Vec<(usize, u32)>>>,
) -> Result<(), String> {
    let log = std::fs::File::create(log_path(&job.dir))
        .map_err(|e| format!("{}: {e}", log_path(&job.dir).display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg(&job.recipe)
        .arg("--plan")
        .arg(&job.plan)
        .arg("--run-dir")
        .arg(&job.dir)
        .args(["--format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    if job.resume {
        cmd.arg("--resume");
    }
    if parallel > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Trials side by side share the cores rather than each taking all.
        cmd.env("RAYON_NUM_THREADS", threads.to_string());
    }
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        // A child outlives a killed sweep by no more than a signal: it
        // gets SIGTERM and checkpoints.
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    pids.lock().expect("pids").push((job.index, child.id()));
    let stdout = child.stdout.take().expect("piped");
    let tx = tx.clone();
    let index = job.index;
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(e) = serde_json::from_str::<Event>(&l) {
                let _ = tx.send(Msg::Event(index, Box::new(e)));
            }
        }
        let code = child.wait().ok().and_then(|s| s.code());
        let _ = tx.send(Msg::Exit(index, code));
    });
    Ok(())
}

fn outcome(job: &Job, code: Option<i32>) -> Outcome {
    let summary = std::fs::read_to_string(job.dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    match (code, summary) {
        (Some(0), Some(s)) => Outcome::Done(s),
        (Some(130), _) => Outcome::Interrupted,
        (code, _) => {
            let log = std::fs::read_to_string(log_path(&job.dir)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Outcome::Failed(format!(
                "{}: {}",
                code.map_or("killed by a signal".to_string(), |c| format!("exit {c}")),
                tail.join(" / ")
            ))
        }
    }
}

/// Progress: a line per trial event; with one trial at a time on a
/// terminal, the step is redrawn in place.
struct Line {
    quiet: bool,
    redraw: bool,
    drawn: bool,
    /// Each trial's last evaluation line: the final evaluation repeats the
    /// last periodic one when they fall on the same step.
    last_eval: std::collections::HashMap<usize, String>,
}

impl Line {
    fn new(quiet: bool, one_at_a_time: bool) -> Self {
        Line {
            quiet,
            redraw: one_at_a_time && std::io::stderr().is_terminal(),
            drawn: false,
            last_eval: Default::default(),
        }
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn say(&mut self, s: String) {
        if !self.quiet {
            self.clear();
            eprintln!("{s}");
        }
    }

    fn event(&mut self, i: usize, total: usize, label: &str, e: &Event) {
        match e {
            Event::Step {
                step,
                total: n,
                loss,
                ..
            } if self.redraw && !self.quiet => {
                eprint!("\r\x1b[2Ktrial {i}/{total}: step {step}/{n} loss {loss:.4}");
                let _ = std::io::stderr().flush();
                self.drawn = true;
            }
            Event::Eval { step, result } => {
                let ms: Vec<String> = result
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                let line = format!(
                    "trial {i}/{total} ({label}): {} at step {step}: {}",
                    result.split,
                    ms.join(", ")
                );
                if self.last_eval.get(&i) != Some(&line) {
                    self.last_eval.insert(i, line.clone());
                    self.say(line);
                }
            }
            Event::EarlyStop {
                step, best_step, ..
            } => self.say(format!(
                "trial {i}/{total}: early stop at step {step}, best step {best_step}"
            )),
            _ => {}
        }
    }

    fn ended(&mut self, job: &Job, total: usize, o: &Outcome) {
        let what = match o {
            Outcome::Done(s) => format!(
                "done: {} steps in {:.1} s",
                s["steps"],
                s["seconds"].as_f64().unwrap_or(0.0)
            ),
            Outcome::Failed(why) => format!("FAILED ({why}); the sweep goes on"),
            Outcome::Interrupted => "interrupted (checkpoint kept)".into(),
        };
        self.say(format!(
            "trial {}/{total} ({}): {what}",
            job.index, job.label
        ));
    }
}
