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
