//! Helpers shared by the end-to-end tests that drive the real `ft` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ft ARGS` in `dir`.
pub fn ft(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ft"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ft")
}

/// Copies the files (not sub-folders) of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Copies the quickstart's tiny model and its snippets into `dir` (as
/// `models/tiny-sentiment/` and `data/quickstart-snippets.tsv`, the paths
/// recipes/quickstart.ft names) and returns the quickstart's text.
pub fn quickstart_into(dir: &Path) -> String {
    copy_dir(
        &root().join("recipes/models/tiny-sentiment"),
        &dir.join("models/tiny-sentiment"),
    );
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(
        root().join("recipes/data/quickstart-snippets.tsv"),
        dir.join("data/quickstart-snippets.tsv"),
    )
    .unwrap();
    std::fs::read_to_string(root().join("recipes/quickstart.ft")).unwrap()
}

/// Everything `ft` printed, stdout then stderr (for failure messages).
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The path of a fetched asset under `.cache/` (models, data).
pub fn asset(rel: &str) -> String {
    let p = root().join(".cache").join(rel);
    assert!(
        p.exists(),
        "missing {}: run scripts/fetch-assets.sh",
        p.display()
    );
    p.display().to_string()
}

/// The run folder that `ft run --format json` reported in its `done` event.
pub fn finished_run_dir(o: &Output) -> PathBuf {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "done")
        .and_then(|v| v["summary"]["run_dir"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no `done` event in the output:\n{}", text(o)))
}
