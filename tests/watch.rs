//! `ft watch` end to end: rapid saves (plain and by rename) end in one check
//! and one run of the last content; a comment-only edit does not restart a
//! run; stopping leaves no process behind.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recipe(batch: u32, comment: &str) -> String {
    let cache = root().join(".cache");
    assert!(
        cache.join("models/all-MiniLM-L6-v2/config.json").exists(),
        "run scripts/fetch-assets.sh first"
    );
    format!(
        "# {comment}\nmodel m = hf(\"{}\") {{ head = classify(labels = [\"negative\", \"positive\"]) }}\n\
         dataset d = tsv(\"{}\", columns = [\"id\", \"score\", \"text\"]) {{\n  input = \"{{text}}\"\n  label = if score > 0 then \"positive\" else \"negative\"\n}}\n\
         train {{ batch = {batch} }}\n",
        cache.join("models/all-MiniLM-L6-v2").display(),
        cache.join("data/movie_snippets.tsv").display()
    )
}

struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    fn start(recipe: &Path, run_command: &str) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ft"))
            .args([
                "watch",
                "--no-clear",
                "--debounce-ms",
                "150",
                "--run",
                "--run-command",
                run_command,
            ])
            .arg(recipe)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ft watch");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Watch { child, lines }
    }
    fn count(&self, prefix: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
    fn wait_for(&self, prefix: &str, n: usize) {
        let t = Instant::now();
        while self.count(prefix) < n {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no {n}× `{prefix}` in {:#?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    /// Waits until no new line has come for `quiet`.
    fn settle(&self, quiet: Duration) {
        let mut n = self.lines.lock().unwrap().len();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            std::thread::sleep(Duration::from_millis(50));
            let m = self.lines.lock().unwrap().len();
            if m != n {
                n = m;
                since = Instant::now();
            }
        }
    }
    /// The checks, starts and stops printed so far, in order.
    fn events(&self) -> Vec<&'static str> {
        let lines = self.lines.lock().unwrap();
        let kind = |l: &String| {
            [
                ("── check", "check"),
                ("▶ starting", "start"),
                ("■ stopping", "stop"),
            ]
            .into_iter()
            .find_map(|(prefix, kind)| l.starts_with(prefix).then_some(kind))
        };
        lines.iter().filter_map(kind).collect()
    }
    fn interrupt(&mut self) {
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Watch {
    /// A failing test must not leave `ft watch` (and its run) behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: signals our own child process.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGINT);
            }
            let _ = self.child.wait();
        }
    }
}

/// Waits (bounded) until `n` processes carry the marker.
fn await_processes(marker: &str, n: usize) {
    let t = Instant::now();
    while processes_with(marker) != n {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} processes with {marker}, not {n}",
            processes_with(marker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn processes_with(marker: &str) -> usize {
    // Anchored: the watch process's own command line also holds the marker.
    let out = Command::new("pgrep")
        .args(["-f", &format!("^sleep {marker}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn dir(name: &str) -> PathBuf {
    let d = root().join("target/watch-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn rapid_saves_end_in_one_run_of_the_last_content() {
    let d = dir("burst");
    let r = d.join("r.ft");
    std::fs::write(&r, recipe(1, "start")).unwrap();
    let marker = "61.4711";
    let mut w = Watch::start(
        &r,
        &format!(
            "grep -o 'batch = [0-9]*' {}; exec sleep {marker}",
            r.display()
        ),
    );
    w.wait_for("▶ starting the run", 1);
    for i in 2..=101u32 {
        let text = recipe(i, "burst");
        if i % 2 == 0 {
            std::fs::write(&r, text).unwrap();
        } else {
            // Save by rename, as many editors do.
            let tmp = d.join(".r.ft.swp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &r).unwrap();
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    // The last content runs (its run prints the batch), then nothing else:
    // a run of an older content would print after it.
    w.wait_for("batch = 101", 1);
    w.settle(Duration::from_millis(1500));
    let lines = w.lines.lock().unwrap().clone();
    let batches: Vec<&String> = lines.iter().filter(|l| l.starts_with("batch = ")).collect();
    assert_eq!(
        batches.last().map(|s| s.as_str()),
        Some("batch = 101"),
        "{lines:#?}"
    );
    // The burst was debounced: far fewer checks than saves.
    let checks = lines.iter().filter(|l| l.starts_with("── check")).count();
    assert!(checks < 20, "{checks} checks for 100 saves");
    // Exactly one run is alive.
    await_processes(marker, 1);
    w.interrupt();
    await_processes(marker, 0);
}

#[test]
fn comment_edit_does_not_restart_but_a_change_does() {
    let d = dir("comment");
    let r = d.join("r.ft");
    std::fs::write(&r, recipe(4, "first")).unwrap();
    let marker = "62.4711";
    let mut w = Watch::start(&r, &format!("exec sleep {marker}"));
    w.wait_for("▶ starting the run", 1);
    std::fs::write(&r, recipe(4, "only the comment changed")).unwrap();
    w.wait_for("── check", 2);
    std::fs::write(&r, recipe(8, "only the comment changed")).unwrap();
    w.wait_for("── check", 3);
    w.wait_for("▶ starting the run", 2);
    // One loop checks and starts or stops, in order: the comment's check
    // (#2) started nothing, the change's (#3) stopped and restarted.
    assert_eq!(
        w.events(),
        ["check", "start", "check", "check", "stop", "start"],
        "{:#?}",
        w.lines.lock().unwrap()
    );
    await_processes(marker, 1);
    w.interrupt();
    await_processes(marker, 0);
}

#[test]
fn errors_do_not_stop_a_good_run() {
    let d = dir("errors");
    let r = d.join("r.ft");
    std::fs::write(&r, recipe(4, "good")).unwrap();
    let marker = "63.4711";
    let mut w = Watch::start(&r, &format!("exec sleep {marker}"));
    w.wait_for("▶ starting the run", 1);
    std::fs::write(&r, recipe(4, "mid-edit").replace("batch = 4", "batch = ")).unwrap();
    w.wait_for("── check", 2);
    // Fixed again (only a comment differs from the running recipe): the
    // third check comes after everything the second one did.
    std::fs::write(&r, recipe(4, "fixed")).unwrap();
    w.wait_for("── check", 3);
    assert!(
        w.lines.lock().unwrap().iter().any(|l| l.contains("error")),
        "{:#?}",
        w.lines.lock().unwrap()
    );
    assert_eq!(
        w.events(),
        ["check", "start", "check", "check"],
        "{:#?}",
        w.lines.lock().unwrap()
    );
    assert_eq!(processes_with(marker), 1);
    w.interrupt();
}
