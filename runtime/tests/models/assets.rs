//! The pinned real models (`scripts/fetch-assets.sh`), and reference values
//! read from the committed JSON fixtures.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fetched model under `.cache/models`; fails, naming the command that
/// fetches it, when it is missing.
pub fn asset(rel: &str) -> PathBuf {
    let p = root().join(".cache/models").join(rel);
    assert!(
        p.exists(),
        "missing test asset {}: run `scripts/fetch-assets.sh` first",
        p.display()
    );
    p
}

pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
