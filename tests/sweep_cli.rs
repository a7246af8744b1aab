//! `ft sweep` end to end: a sweep over lr × rank on the real MiniLM and
//! movie-review snippets (short budgets), a sweep killed during trial 3 of
//! 6 and resumed (trials 3–6 run, 1–2 are not repeated), and a grid with an
//! invalid combination refused before any trial starts.

mod common;

use common::{ft, quickstart_into, root};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fresh(name: &str) -> PathBuf {
    let dir = root().join("target/sweep-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The only sweep folder under `runs/<name>/`.
fn sweep_dir(dir: &Path, name: &str) -> PathBuf {
    let runs = dir.join("runs").join(name);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sweep-")
        })
        .collect();
    found.sort();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// MiniLM on the first 600 movie snippets: enough to tell settings apart,
/// small enough for CI.
fn minilm_workspace(name: &str, sweep: &str) -> PathBuf {
    let dir = fresh(name);
    let cache = root().join(".cache");
    let snippets = std::fs::read_to_string(cache.join("data/movie_snippets.tsv"))
        .expect("run scripts/fetch-assets.sh");
    let head: Vec<&str> = snippets.lines().take(600).collect();
    std::fs::write(dir.join("snippets.tsv"), head.join("\n") + "\n").unwrap();
    let recipe = format!(
        r#"model encoder = hf("{}") {{
  head = classify(labels = ["negative", "positive"])
}}

dataset reviews = tsv("snippets.tsv", columns = ["id", "score", "text"]) {{
  input = "{{text}}"
  label = if score > 0 then "positive" else "negative"
  split = {{ train = 80%, val = 10%, test = 10%, seed = 42, stratify = label }}
}}

peft lora {{
  rank    = 8
  alpha   = 16
  targets = [query, value]
}}

train {{
  epochs    = 1
  batch     = 8
  max_len   = 48
  optimizer = adamw(lr = 2e-4)
}}

evaluate {{ on = test, metrics = [accuracy, f1] }}

{sweep}
"#,
        cache.join("models/all-MiniLM-L6-v2").display()
    );
    std::fs::write(dir.join("sweep.ft"), recipe).unwrap();
    dir
}

#[test]
fn a_sweep_over_lr_and_rank_on_minilm_picks_on_val_and_tests_only_the_winner() {
    let dir = minilm_workspace(
        "minilm",
        "sweep {\n  train.optimizer.lr in [1e-5, 2e-3]\n  peft.rank in [2, 8]\n  budget = { steps = 12 }\n  pick = max(val.accuracy)\n}",
    );
    let out = ft(&dir, &["sweep", "sweep.ft"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let sw = sweep_dir(&dir, "sweep");
    let results = json(&sw.join("sweep-results.json"));
    let trials = results["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let winner = results["winner"].as_u64().unwrap() as usize;
    let best = trials
        .iter()
        .map(|t| t["val"].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(trials[winner - 1]["val"].as_f64().unwrap(), best);
    for t in trials {
        let i = t["trial"].as_u64().unwrap() as usize;
        let run = sw.join(format!("trial-{i:02}"));
        let summary = json(&run.join("summary.json"));
        assert_eq!(summary["steps"], 12);
        // Trials evaluate on val only: the test split chooses nothing.
        let splits: Vec<&str> = summary["final_eval"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["split"].as_str().unwrap())
            .collect();
        assert_eq!(splits, ["val"], "trial {i}");
        assert!(run.join("adapter/adapter_model.safetensors").exists());
        assert_eq!(t["test"].is_null(), i != winner, "trial {i}: {t}");
        // The value recorded in the table is the one the run reported.
        let v = summary["final_eval"][0]["metrics"]["accuracy"]
            .as_f64()
            .unwrap();
        assert_eq!(t["val"].as_f64().unwrap(), v);
    }
    let test = &trials[winner - 1]["test"];
    assert!(
        test["accuracy"].as_f64().is_some() && test["f1"].as_f64().is_some(),
        "{test}"
    );
    for f in [
        "sweep-results.csv",
        "sweep-plot.svg",
        "sweep-results.txt",
        "best.ft",
    ] {
        assert!(sw.join(f).exists(), "{f}");
    }
    let csv = std::fs::read_to_string(sw.join("sweep-results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let svg = std::fs::read_to_string(sw.join("sweep-plot.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 8, "4 trials × 2 axes");

    // The winning settings, written back, check and run as a recipe.
    let best = std::fs::read_to_string(dir.join("sweep.best.ft")).unwrap();
    let values: Vec<&str> = trials[winner - 1]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(best.contains(&format!("lr = {}", values[0])), "{best}");
    assert!(best.contains(&format!("rank    = {}", values[1])), "{best}");
    assert!(!best.contains("sweep {"), "{best}");
    let check = ft(&dir, &["check", "sweep.best.ft"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn an_invalid_combination_fails_at_check_time_before_any_trial() {
    let dir = minilm_workspace(
        "invalid",
        "sweep {\n  train.optimizer.lr in [1e-4, 1e-3]\n  peft.rank in [8, 5000]\n  budget = { steps = 5 }\n  pick = min(val.loss)\n}",
    );
    let out = ft(&dir, &["sweep", "sweep.ft"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("FT0701"), "{err}");
    assert!(
        err.contains("trial 2 (train.optimizer.lr = 1e-4, peft.rank = 5000)"),
        "{err}"
    );
    assert!(err.contains("FT0609"), "the cause is named: {err}");
    assert!(!dir.join("runs").exists(), "no trial started");
}

/// The quickstart's tiny model: six quick trials.
fn tiny_workspace(name: &str) -> PathBuf {
    let dir = fresh(name);
    let quick = quickstart_into(&dir);
    let sweep = "\nsweep {\n  train.optimizer.lr in [3e-4, 1e-3, 3e-3]\n  train.batch in [16, 32]\n  budget = { steps = 40 }\n  pick = max(val.accuracy)\n}\n";
    std::fs::write(dir.join("recipe.ft"), format!("{quick}{sweep}")).unwrap();
    dir
}

#[test]
fn a_sweep_killed_during_trial_3_resumes_with_trials_3_to_6_only() {
    let dir = tiny_workspace("resume");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ft"))
        .args(["sweep", "recipe.ft"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("trial 3/6") && line.ends_with("started") {
            break;
        }
    }
    assert!(seen.contains("trial 2/6"), "{seen}");
    // Kill the sweep outright as soon as trial 3 reports its first step (a
    // line in its metrics.jsonl), 39 steps before its end; the trial gets
    // SIGTERM from the kernel (parent-death signal).
    let sw = sweep_dir(&dir, "recipe");
    let metrics = sw.join("trial-03/metrics.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !std::fs::read_to_string(&metrics).is_ok_and(|m| m.contains("\"split\":\"train\"")) {
        assert!(
            std::time::Instant::now() < deadline,
            "trial 3 reported no step"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Wait for the orphaned trial to checkpoint and exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let log = sw.join("trial-03.log");
    while std::time::Instant::now() < deadline {
        let pids = Command::new("pgrep")
            .args(["-f", &sw.join("trial-03").display().to_string()])
            .output()
            .unwrap();
        if pids.stdout.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(sw.join("trial-01/summary.json").exists());
    assert!(sw.join("trial-02/summary.json").exists());
    assert!(
        !sw.join("trial-03/summary.json").exists(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let mtime = |p: PathBuf| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = (
        mtime(sw.join("trial-01/summary.json")),
        mtime(sw.join("trial-02/summary.json")),
    );

    let out = ft(&dir, &["sweep", "recipe.ft", "--resume"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let started: Vec<usize> = err
        .lines()
        .filter(|l| l.ends_with("started"))
        .filter_map(|l| l.strip_prefix("trial ")?.split('/').next()?.parse().ok())
        .collect();
    assert_eq!(started, [3, 4, 5, 6], "{err}");
    assert!(
        err.contains("2 trial(s) finished before; running 4"),
        "{err}"
    );
    assert_eq!(
        before,
        (
            mtime(sw.join("trial-01/summary.json")),
            mtime(sw.join("trial-02/summary.json"))
        ),
        "finished trials are not run again"
    );
    for i in 1..=6 {
        assert!(
            sw.join(format!("trial-{i:02}/summary.json")).exists(),
            "trial {i}"
        );
    }
    let results = json(&sw.join("sweep-results.json"));
    assert_eq!(
        results["trials"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| !t["test"].is_null())
            .count(),
        1,
        "only the winner has a test score"
    );
    // A resume of a finished sweep changes nothing but the report.
    let again = ft(&dir, &["sweep", "recipe.ft", "--resume"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(!err.contains("started"), "{err}");
}

/// `jobs = 2` runs two trials at a time (the second starts before the
/// first is done) with the results of one at a time.
#[test]
fn two_jobs_run_trials_side_by_side_with_the_same_results() {
    let losses = |jobs: usize| {
        let dir = fresh(&format!("jobs-{jobs}"));
        let quick = quickstart_into(&dir);
        let sweep = format!(
            "\nsweep {{\n  train.optimizer.lr in [1e-3, 3e-3]\n  budget = {{ steps = 4 }}\n  pick = max(val.accuracy)\n  jobs = {jobs}\n}}\n"
        );
        std::fs::write(dir.join("recipe.ft"), format!("{quick}{sweep}")).unwrap();
        let out = ft(&dir, &["sweep", "recipe.ft"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        let sw = sweep_dir(&dir, "recipe");
        let loss = |i: usize| {
            json(&sw.join(format!("trial-{i:02}/summary.json")))["final_eval"][0]["metrics"]["loss"]
                .as_f64()
                .unwrap()
        };
        let second_started = err.find("trial 2/2 (lr = 3e-3): started").unwrap();
        let first_done = err.find("trial 1/2 (lr = 1e-3): done").unwrap();
        ((loss(1), loss(2)), second_started < first_done)
    };
    let (one, overlapped_one) = losses(1);
    let (two, overlapped_two) = losses(2);
    assert!(!overlapped_one, "one job runs trials one after the other");
    assert!(overlapped_two, "two jobs overlap");
    // Each of two jobs gets half the threads, and sums split
    // differently may round differently.
    for (a, b) in [(one.0, two.0), (one.1, two.1)] {
        assert!((a - b).abs() <= 1e-6 * a.abs(), "one job {a}, two jobs {b}");
    }
}
