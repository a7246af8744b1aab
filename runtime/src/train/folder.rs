//! The run folder `runs/<recipe>/<id>/` and its lockfile.
//!
//! Layout: `plan.json` (the resolved recipe), `recipe.ft` (a copy of what
//! was written), `ft.lock` (hashes of everything the result depends on),
//! `metrics.jsonl`, `checkpoints/`, `adapter/` (or `merged/`), `report.md`
//! with `loss.svg` / `metrics.svg`, and `summary.json` once finished.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ft_plan::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a run's result depends on; a resume refuses when any differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lockfile {
    pub ft_version: String,
    pub burn_version: String,
    pub plan_version: u32,
    pub seed: u64,
    /// SHA-256 of the Plan's JSON (the resolved recipe).
    pub plan: String,
    /// File → SHA-256: recipe, data files, model files, tokenizer.
    pub files: BTreeMap<String, String>,
}

pub fn sha256_file(path: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Files the model is made of (a GGUF file, or a folder's weights, config
/// and tokenizer).
fn model_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().is_some_and(|e| {
                            e == "safetensors" || e == "json" || e == "gguf" || e == "model"
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn lockfile(plan: &Plan) -> Result<Lockfile, String> {
    let mut files = BTreeMap::new();
    let mut add = |p: &Path| -> Result<(), String> {
        files.insert(p.display().to_string(), sha256_file(p)?);
        Ok(())
    };
    add(&plan.recipe)?;
    for m in std::iter::once(&plan.model).chain(&plan.other_models) {
        for f in model_files(&m.path) {
            add(&f)?;
        }
        if let Some(t) = &m.tokenizer {
            add(t)?;
        }
    }
    for ds in &plan.datasets {
        for f in ft_pipeline::cache::data_files(ds).map_err(|e| e.to_string())? {
            add(&f)?;
        }
    }
    let mut h = Sha256::new();
    h.update(plan.to_json().as_bytes());
    Ok(Lockfile {
        ft_version: crate::version().to_string(),
        burn_version: "0.21.0".into(),
        plan_version: ft_plan::PLAN_VERSION,
        seed: plan.seed,
        plan: format!("{:x}", h.finalize()),
        files,
    })
}

/// What changed between a run's lockfile and now, in words.
pub fn differences(old: &Lockfile, new: &Lockfile) -> Vec<String> {
    let mut out = Vec::new();
    if old.ft_version != new.ft_version {
        out.push(format!("ft {} → {}", old.ft_version, new.ft_version));
    }
    if old.plan_version != new.plan_version {
        out.push("the Plan format changed".into());
    }
    if old.plan != new.plan {
        out.push("the recipe's meaning (its Plan) changed".into());
    }
    for (f, h) in &old.files {
        match new.files.get(f) {
            Some(n) if n != h => out.push(format!("{f} changed")),
            None => out.push(format!("{f} is no longer used")),
            _ => {}
        }
    }
    for f in new.files.keys() {
        if !old.files.contains_key(f) {
            out.push(format!("{f} is new"));
        }
    }
    out
}

/// `runs/<name>/`, the recipe's runs.
pub fn recipe_runs(runs_dir: &Path, plan: &Plan) -> PathBuf {
    runs_dir.join(&plan.name)
}

fn run_ids(dir: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// A new run folder: the next number (`0001`, `0002`, …).
pub fn new_run(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let next = run_ids(dir).last().map_or(1, |i| i + 1);
    let p = dir.join(format!("{next:04}"));
    std::fs::create_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

/// The newest run folder, if any.
pub fn last_run(dir: &Path) -> Option<PathBuf> {
    run_ids(dir).last().map(|i| dir.join(format!("{i:04}")))
}

/// Writes a file atomically (the adapter writer's temporary sibling, then
/// rename), with the error as text.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::peft::adapter::write_atomic(path, bytes).map_err(|e| e.to_string())
}
