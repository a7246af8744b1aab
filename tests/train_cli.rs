//! `ft run` end to end on the quickstart's tiny in-repo model: a run that
//! learns, a run killed with SIGKILL and resumed that ends bit-identical to
//! an uninterrupted one, a resume refused because the data changed, and
//! early stopping that restores the best weights.
//!
//! Each test copies the quickstart's model and data into its own folder,
//! so runs never share files.

mod common;

use common::{ft, quickstart_into, root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A folder with the tiny model, the snippets and `recipe.ft` made from
/// the quickstart with `train` replaced.
fn workspace(name: &str, train: &str, evaluate: &str) -> PathBuf {
    let dir = root().join("target/train-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let quick = quickstart_into(&dir);
    let head = &quick[..quick.find("train {").unwrap()];
    std::fs::write(
        dir.join("recipe.ft"),
        format!("{head}{train}\n\n{evaluate}\n"),
    )
    .unwrap();
    dir
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn quickstart_learns_and_writes_its_run_folder() {
    let dir = root().join("target/train-tests/quickstart-runs");
    let _ = std::fs::remove_dir_all(&dir);
    let o = ft(
        &root(),
        &[
            "run",
            "recipes/quickstart.ft",
            "--runs",
            dir.to_str().unwrap(),
            "--no-cache",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.join("quickstart/0001");
    for f in [
        "plan.json",
        "recipe.ft",
        "ft.lock",
        "metrics.jsonl",
        "report.md",
        "loss.svg",
        "summary.json",
        "merged/model.safetensors",
        "merged/config.json",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let s = summary(&run);
    let test = s["final_eval"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["split"] == "test")
        .expect("a test evaluation");
    // Two balanced classes: chance is 0.5; the tiny model learns to ~0.67.
    let acc = test["metrics"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "test accuracy {acc}");
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let train: Vec<f64> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(train.len() as u64, s["steps"].as_u64().unwrap());
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    assert!(mean(&train[train.len() - 20..]) < mean(&train[..20]) - 0.1);
    // The merged weights are a classifier `ft classify` can load.
    let o = ft(
        &root(),
        &[
            "classify",
            run.join("merged").to_str().unwrap(),
            "--text",
            "a wonderful, moving film",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}

const SHORT: &str = "train {
  steps     = 40
  batch     = 16
  max_len   = 48
  optimizer = adamw(lr = 1e-3, weight_decay = 0.01)
  schedule  = cosine(warmup = 5)
  clip      = 1.0
}";

fn weights(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("merged/model.safetensors")).unwrap()
}

fn last_step(metrics: &Path) -> u64 {
    std::fs::read_to_string(metrics)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn killed_run_resumes_bit_identical_and_refuses_changed_data() {
    let eval = "evaluate { on = test, metrics = [accuracy] }";
    let a = workspace("resume-a", SHORT, eval);
    let o = ft(&a, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let reference = weights(&a.join("runs/recipe/0001"));

    let b = workspace("resume-b", SHORT, eval);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ft"))
        .args([
            "run",
            "recipe.ft",
            "--runs",
            "runs",
            "--no-cache",
            "--checkpoint-every",
            "5",
        ])
        .current_dir(&b)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = b.join("runs/recipe/0001/metrics.jsonl");
    let started = Instant::now();
    // Kill between checkpoints (steps 5, 10, 15, … are checkpointed).
    while last_step(&metrics) < 17 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the run did not progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = last_step(&metrics);
    assert!(killed_at < 40, "killed too late ({killed_at})");

    // Changed data: the resume is refused, naming the file.
    let data = b.join("data/quickstart-snippets.tsv");
    let original = std::fs::read(&data).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"99999\t1.5\tan extra row\n");
    std::fs::write(&data, &changed).unwrap();
    let o = ft(
        &b,
        &[
            "run",
            "recipe.ft",
            "--runs",
            "runs",
            "--no-cache",
            "--resume",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("quickstart-snippets.tsv changed"),
        "{}",
        text(&o)
    );
    std::fs::write(&data, &original).unwrap();

    let o = ft(
        &b,
        &[
            "run",
            "recipe.ft",
            "--runs",
            "runs",
            "--no-cache",
            "--resume",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let resumed: u64 = out
        .split("resumed at step ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume reported: {out}"));
    assert!(
        resumed % 5 == 0 && resumed <= killed_at && resumed >= 15,
        "resumed at {resumed}"
    );
    assert!(
        weights(&b.join("runs/recipe/0001")) == reference,
        "the resumed run's weights differ from the uninterrupted run's"
    );
    // The metric history has each step once.
    let steps: Vec<u64> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=40).collect::<Vec<_>>());
}

#[test]
fn early_stopping_restores_the_best_weights() {
    // A learning rate far too high: validation loss soon stops improving.
    let train = "train {
  steps      = 60
  batch      = 16
  max_len    = 48
  optimizer  = adamw(lr = 3e-2)
  eval_every = 4
  early_stop = { metric = val.loss, patience = 2 }
}";
    let dir = workspace(
        "early-stop",
        train,
        "evaluate { on = val, metrics = [loss] }",
    );
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.join("runs/recipe/0001");
    let s = summary(&run);
    assert_eq!(s["stopped_early"], true, "{s}");
    let best_step = s["best_step"].as_u64().unwrap();
    let steps = s["steps"].as_u64().unwrap();
    // `patience = 2` evaluations without improvement, one every 4 steps.
    assert_eq!(
        steps,
        best_step + 2 * 4,
        "best {best_step}, stopped at {steps}"
    );
    // The final evaluation runs on the restored weights: its validation
    // loss is the best one recorded, exactly.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at_best = lines
        .iter()
        .find(|v| v["split"] == "val" && v["step"] == best_step && v.get("final").is_none())
        .unwrap()["metrics"]["loss"]
        .as_f64()
        .unwrap();
    let all_val: Vec<f64> = lines
        .iter()
        .filter(|v| v["split"] == "val" && v.get("final").is_none())
        .map(|v| v["metrics"]["loss"].as_f64().unwrap())
        .collect();
    assert!(all_val.iter().all(|&v| v >= at_best), "{all_val:?}");
    let final_loss = s["final_eval"][0]["metrics"]["loss"].as_f64().unwrap();
    assert_eq!(final_loss, at_best);
}

/// The default build is CPU-only: a recipe that asks for CUDA is refused
/// with what to do, before any run folder is made, and a recipe that does
/// not ask trains on the CPU (the Plan says so). Every command that runs a
/// model goes through the same dispatcher, so `--backend cuda` (or a
/// recipe's `backend = cuda`) is refused by each with the same message.
#[test]
#[cfg(not(feature = "cuda"))]
fn cpu_build_refuses_cuda_and_never_picks_it_by_default() {
    let dir = workspace(
        "cuda-refused",
        "train {\n  steps = 2\n  backend = cuda\n}",
        "",
    );
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let refusal = "error: the recipe asks for `backend = cuda`, but this ft was built without \
                   CUDA: rebuild with `cargo build --release --features cuda`";
    assert!(text(&o).contains(refusal), "{}", text(&o));
    assert!(!dir.join("runs").exists(), "a refused run leaves no folder");
    for args in [
        &["eval", "recipe.ft", "--split", "val"][..],
        &["classify", "recipe.ft", "--text", "good"],
    ] {
        let o = ft(&dir, args);
        assert_ne!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(refusal), "{args:?}: {}", text(&o));
    }
    let dir = workspace("cpu-default", "train {\n  steps = 2\n}", "");
    let plan = ft(&dir, &["plan", "recipe.ft", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["train"]["device"], "Cpu");
    for args in [
        &["run", "recipe.ft", "--runs", "runs", "--backend", "cuda"][..],
        &["eval", "recipe.ft", "--split", "val", "--backend", "cuda"],
        &[
            "classify",
            "recipe.ft",
            "--text",
            "good",
            "--backend",
            "cuda",
        ],
        &[
            "embed",
            "models/tiny-sentiment",
            "--text",
            "good",
            "--backend",
            "cuda",
        ],
    ] {
        let o = ft(&dir, args);
        assert_ne!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(refusal), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
    }
    assert!(!dir.join("runs").exists(), "a refused run leaves no folder");
}

/// `threads = N` spreads the run's parallel work over N threads, whatever
/// the machine's core count (the run reports what its pool has), and the
/// recipe trains to the same numbers: the work is split, not changed.
#[test]
fn threads_set_the_runs_pool() {
    let mut losses = Vec::new();
    for n in [1, 3] {
        let dir = workspace(
            &format!("threads-{n}"),
            &format!("train {{\n  steps = 4\n  batch = 8\n  threads = {n}\n}}"),
            "",
        );
        let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
        assert!(o.status.success(), "{}", text(&o));
        let said = if n == 1 {
            "; 1 thread\n"
        } else {
            "; 3 threads\n"
        };
        assert!(text(&o).contains(said), "{}", text(&o));
        let s = summary(&dir.join("runs/recipe/0001"));
        losses.push(s["final_eval"][0]["metrics"]["loss"].as_f64().unwrap());
    }
    // Sums split over other threads may round differently.
    let (a, b) = (losses[0], losses[1]);
    assert!(
        (a - b).abs() <= 1e-4 * a.abs(),
        "1 thread {a}, 3 threads {b}"
    );
}

/// The `output` block: run folders under `dir`, a checkpoint every
/// `save_every` steps, no report with `report = false`, and with
/// `export = both` an adapter and merged weights that give the run's own
/// final test loss when evaluated again — the adapter on the base model,
/// the merged folder on its own.
#[test]
fn output_block_places_checkpoints_and_exports_both() {
    let dir = workspace(
        "output-both",
        "train {\n  steps = 6\n  batch = 16\n  optimizer = adamw(lr = 5e-3)\n}\n\n\
         output {\n  dir = \"elsewhere\"\n  export = both\n  save_every = 2\n  keep = 2\n  report = false\n}",
        "evaluate { on = test, metrics = [loss] }",
    );
    let recipe = std::fs::read_to_string(dir.join("recipe.ft"))
        .unwrap()
        .replace(
            "peft full {}",
            "peft lora { rank = 4, alpha = 8, targets = [query, value] }",
        );
    std::fs::write(dir.join("recipe.ft"), &recipe).unwrap();
    let o = ft(
        &dir,
        &["run", "recipe.ft", "--no-cache", "--format", "json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.join("elsewhere/recipe/0001");
    assert!(!dir.join("runs").exists(), "run folders go under `dir`");
    let checkpoints: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "checkpoint")
        .filter_map(|e| e["step"].as_u64())
        .collect();
    // Step 6 ends the run, whose final checkpoint is written either way.
    assert_eq!(checkpoints, [2, 4], "{}", text(&o));
    // `keep = 2`: the two newest step checkpoints remain; the latest is
    // the last step's.
    let kept: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(kept, ["step-4", "step-6"]);
    assert_eq!(
        std::fs::read_to_string(run.join("checkpoints/latest")).unwrap(),
        "step-6"
    );
    assert!(!run.join("report.md").exists(), "report = false");
    assert!(run.join("adapter/adapter_model.safetensors").is_file());
    assert!(run.join("merged/model.safetensors").is_file());

    let trained = summary(&run)["final_eval"][0]["metrics"]["loss"]
        .as_f64()
        .unwrap();
    let eval_loss = |dir: &Path, args: &[&str]| -> f64 {
        let mut all = vec!["eval", "recipe.ft", "--split", "test", "--metric", "loss"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let o = ft(dir, &all);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["metrics"]["loss"].as_f64().unwrap()
    };
    let adapter = run.join("adapter");
    let with_adapter = eval_loss(&dir, &["--adapter", adapter.to_str().unwrap()]);
    // The merged folder alone, as the model of a recipe without `peft`.
    let merged_dir = dir.join("merged-eval");
    std::fs::create_dir_all(&merged_dir).unwrap();
    let merged_recipe = recipe
        .replace(
            "hf(\"models/tiny-sentiment\")",
            &format!("hf(\"{}\")", run.join("merged").display()),
        )
        .replace(
            "data/quickstart-snippets.tsv",
            &dir.join("data/quickstart-snippets.tsv")
                .display()
                .to_string(),
        );
    let merged_recipe = merged_recipe[..merged_recipe.find("peft lora").unwrap()].to_string()
        + "train {\n  steps = 6\n  batch = 16\n}\n\nevaluate { on = test, metrics = [loss] }\n";
    std::fs::write(merged_dir.join("recipe.ft"), merged_recipe).unwrap();
    let merged = eval_loss(&merged_dir, &[]);
    // `ft export` merges the run's adapter as the run itself did.
    let exported = dir.join("exported");
    let o = ft(
        &dir,
        &[
            "export",
            adapter.to_str().unwrap(),
            "--merged",
            exported.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(exported.join("model.safetensors")).unwrap(),
        std::fs::read(run.join("merged/model.safetensors")).unwrap(),
        "ft export's merged weights differ from the run's"
    );
    let o = ft(&dir, &["export", adapter.to_str().unwrap(), "--check"]);
    assert!(o.status.success(), "{}", text(&o));
    for (what, loss) in [("adapter", with_adapter), ("merged", merged)] {
        assert!(
            (loss - trained).abs() <= 1e-4 * trained.abs(),
            "{what}: test loss {loss}, the run's own {trained}"
        );
    }
}

/// When the last periodic validation is also the final evaluation (same
/// step, same split), the run prints it once.
#[test]
fn the_final_evaluation_is_printed_once() {
    let dir = workspace(
        "final-eval-once",
        "train {\n  steps = 4\n  batch = 16\n  eval_every = 2\n}",
        "evaluate { on = val, metrics = [loss] }",
    );
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    assert_eq!(said.matches("eval val at step 2 ").count(), 1, "{said}");
    assert_eq!(said.matches("eval val at step 4 ").count(), 1, "{said}");
}

/// FT0619: texts in more than one split are named by `ft check` and by
/// `ft run` (not only by `ft data`); splitting by the text keeps equal
/// texts together and the warning goes.
#[test]
fn check_and_run_warn_of_texts_in_two_splits() {
    let dir = workspace("leakage", "train {\n  steps = 1\n  batch = 8\n}", "");
    let data = dir.join("data/quickstart-snippets.tsv");
    let mut rows = std::fs::read_to_string(&data).unwrap();
    for i in 0..30 {
        rows.push_str(&format!(
            "dup-{i}\t2.0\tAn utterly unforgettable duplicate.\n"
        ));
    }
    std::fs::write(&data, rows).unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "recipe.ft"];
        args.extend_from_slice(extra);
        ft(&dir, &args)
    };
    let o = check(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("FT0619"), "{said}");
    assert!(
        said.contains("an utterly unforgettable duplicate")
            && said.contains("quickstart-snippets.tsv:"),
        "the text and where it is: {said}"
    );
    assert_eq!(check(&["--deny-warnings"]).status.code(), Some(1));
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("FT0619"), "{}", text(&o));
    // Rows with the same text now share a split.
    let recipe = std::fs::read_to_string(dir.join("recipe.ft"))
        .unwrap()
        .replace("stratify = label }", "stratify = label, key = text }");
    std::fs::write(dir.join("recipe.ft"), recipe).unwrap();
    let o = check(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("FT0619"), "{}", text(&o));
}

/// A loss or gradient that becomes NaN or infinite stops the run at that
/// step (exit 1), naming the last good checkpoint and what to change.
#[test]
fn a_non_finite_loss_stops_the_run_and_names_the_last_checkpoint() {
    let dir = workspace(
        "non-finite",
        "train {\n  steps = 6\n  batch = 8\n  optimizer = sgd(lr = 1e30)\n}",
        "",
    );
    let o = ft(
        &dir,
        &[
            "run",
            "recipe.ft",
            "--runs",
            "runs",
            "--no-cache",
            "--checkpoint-every",
            "1",
        ],
    );
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(said.contains("became NaN or infinite at step"), "{said}");
    assert!(said.contains("the last good checkpoint is"), "{said}");
    assert!(said.contains("Lower the learning rate"), "{said}");
    let named = said
        .split("the last good checkpoint is ")
        .nth(1)
        .and_then(|rest| rest.split(". Lower").next())
        .unwrap();
    assert!(
        dir.join(named).join("params.safetensors").is_file(),
        "the named checkpoint {named} is not there"
    );
}

/// `evaluate.batch` sets how many examples go through the model at once;
/// the metrics are those of one at a time.
#[test]
fn evaluation_batch_size_leaves_the_metrics_unchanged() {
    let metrics = |batch: usize| {
        let dir = workspace(
            &format!("eval-batch-{batch}"),
            "train {\n  steps = 1\n}",
            &format!("evaluate {{ on = test, metrics = [loss, accuracy], batch = {batch} }}"),
        );
        let o = ft(&dir, &["eval", "recipe.ft", "--format", "json"]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["metrics"].clone()
    };
    let (one, many) = (metrics(1), metrics(64));
    let loss = |m: &serde_json::Value| m["loss"].as_f64().unwrap();
    assert!(
        (loss(&one) - loss(&many)).abs() <= 1e-5 * loss(&one),
        "batch 1: {one}; batch 64: {many}"
    );
    assert_eq!(one["accuracy"], many["accuracy"]);
}

/// `train.data` picks which of several datasets training draws from.
#[test]
fn train_data_names_the_dataset_trained_on() {
    let examples = |data: &str| {
        let dir = workspace(
            &format!("train-data-{data}"),
            &format!("train {{\n  data = {data}\n  steps = 1\n  batch = 8\n}}"),
            "",
        );
        // A second dataset: the first 60 snippets.
        let rows: String = std::fs::read_to_string(dir.join("data/quickstart-snippets.tsv"))
            .unwrap()
            .lines()
            .take(60)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.join("data/few.tsv"), rows).unwrap();
        let recipe = std::fs::read_to_string(dir.join("recipe.ft")).unwrap().replace(
            "peft full",
            "dataset few = tsv(\"data/few.tsv\", columns = [\"id\", \"score\", \"text\"]) {\n  input = \"{text}\"\n  label = if score > 0 then \"positive\" else \"negative\"\n  split = { train = 80%, val = 20%, seed = 1 }\n}\n\npeft full",
        );
        std::fs::write(dir.join("recipe.ft"), recipe).unwrap();
        let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
        assert!(o.status.success(), "{}", text(&o));
        let said = text(&o);
        said.split(" steps over ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no example count: {said}"))
    };
    let (few, all) = (examples("few"), examples("snippets"));
    assert!((30..=60).contains(&few), "few: {few}");
    assert!(all > 1000, "snippets: {all}");
}

/// Rows left out by `on_bad_row = skip` are counted in the run's summary
/// and said at its end, not only by `ft check`.
#[test]
fn skipped_rows_are_counted_in_the_run_summary() {
    let dir = workspace("skipped-rows", "train {\n  steps = 2\n  batch = 8\n}", "");
    let recipe = std::fs::read_to_string(dir.join("recipe.ft")).unwrap();
    let recipe = recipe.replace(
        "stratify = label }",
        "stratify = label }\n  on_bad_row = skip",
    );
    std::fs::write(dir.join("recipe.ft"), recipe).unwrap();
    let data = dir.join("data/quickstart-snippets.tsv");
    let mut rows = std::fs::read_to_string(&data).unwrap();
    rows.push_str("900001\tnot-a-score\tA row whose score is not a number.\n");
    rows.push_str("900002\tnot-a-score\tAnother one.\n");
    std::fs::write(&data, rows).unwrap();
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = summary(&dir.join("runs/recipe/0001"));
    let skipped: u64 = s["skipped_rows"]["snippets"]
        .as_object()
        .unwrap_or_else(|| panic!("{s}"))
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(skipped, 2, "{s}");
    assert!(
        text(&o).contains("skipped 2 bad row(s) of dataset `snippets`"),
        "{}",
        text(&o)
    );
}
