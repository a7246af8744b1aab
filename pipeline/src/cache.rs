//! The content-addressed cache of tokenized datasets.
//!
//! A dataset's key is the SHA-256 of: a format version, the dataset's part
//! of the Plan (source, fields, split, shots, filter, policies), the head's
//! labels and the objective, the Plan's seed (few-shot draws depend on it),
//! the tokenizer's fingerprint, and every data file's path and content hash.
//! An entry is the dataset's [`Store`] file (`<key>.ftds`: token ids, loss
//! masks and rows, an index of offsets, and the report), written while the
//! source streams through the build and renamed into place when complete,
//! so a crash never leaves a half-written entry that a later run would
//! trust; it is read memory-mapped. `max_len` is not in the key: truncation
//! is applied when batches are made, so one entry serves every length.

use crate::dataset::BuiltDataset;
use crate::store::Store;
use crate::tokenize::hex;
use crate::PipelineError;
use ft_data::{resolve_files, SourceSpec};
use ft_plan::{DataSource, DatasetPlan, Head, Objective};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bumped when the tokenized form or its meaning changes.
const CACHE_FORMAT: &str = "ft-pipeline-cache-2";

/// The data files a dataset reads, in reading order.
pub fn data_files(ds: &DatasetPlan) -> Result<Vec<PathBuf>, PipelineError> {
    let specs: Vec<&SourceSpec> = match &ds.source {
        DataSource::Single(s) => vec![s],
        DataSource::PerSplit(v) => v.iter().map(|(_, s)| s).collect(),
    };
    let mut files = Vec::new();
    for s in specs {
        files.extend(
            resolve_files(&s.pattern).map_err(|e| PipelineError::Source {
                dataset: ds.name.clone(),
                error: e,
            })?,
        );
    }
    Ok(files)
}

fn hash_file(h: &mut Sha256, path: &Path) -> Result<(), PipelineError> {
    let io = |e: std::io::Error| PipelineError::Cache(format!("{}: {e}", path.display()));
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

/// The cache key of one dataset (hex SHA-256).
pub fn cache_key(
    ds: &DatasetPlan,
    head: &Head,
    objective: &Objective,
    seed: u64,
    tokenizer_fingerprint: &str,
) -> Result<String, PipelineError> {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(CACHE_FORMAT.as_bytes());
    part(
        serde_json::to_string(ds)
            .expect("plans serialize")
            .as_bytes(),
    );
    part(
        serde_json::to_string(head)
            .expect("plans serialize")
            .as_bytes(),
    );
    part(
        serde_json::to_string(objective)
            .expect("plans serialize")
            .as_bytes(),
    );
    part(&seed.to_le_bytes());
    part(tokenizer_fingerprint.as_bytes());
    let files = data_files(ds)?;
    for f in &files {
        let mut fh = Sha256::new();
        hash_file(&mut fh, f)?;
        part(f.to_string_lossy().as_bytes());
        part(&fh.finalize());
    }
    Ok(hex(&h.finalize()))
}

/// The cached dataset under this key, if there is a sound entry (a
/// corrupt or truncated one is a miss, and the caller overwrites it). The
/// examples stay on disk, memory-mapped; `task` is the dataset's index in
/// the Plan at hand.
pub fn load(dir: &Path, key: &str, task: u16) -> Option<BuiltDataset> {
    Store::open_entry(dir, key, task).map(BuiltDataset::from_store)
}
