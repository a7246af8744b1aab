//! Checkpoints: everything a run needs to continue exactly where it was —
//! the trainable parameters, the optimizer state, the sampler position, the
//! early-stopping record and the metric history. Frozen weights are not
//! written (they come from the model files, whose hashes the lockfile
//! pins).
//!
//! A checkpoint is a folder `checkpoints/step-N/` written under a temporary
//! name and renamed into place, then named in `checkpoints/latest` (itself
//! replaced atomically), so a crash at any moment leaves the previous
//! checkpoint intact and `latest` pointing at a complete one.

use crate::kernels::Kernels;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use ft_pipeline::sampler::SamplerState;
use serde::{Deserialize, Serialize};

use crate::peft::adapter::{write_f32_tensors, TensorMap};

/// Parameter values by module-visit index: shape and f32 data.
pub type Values = BTreeMap<usize, (Vec<usize>, Vec<f32>)>;

struct Collect {
    index: usize,
    only_trainable: bool,
    out: Values,
}

impl<B: Kernels> ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let i = self.index;
        self.index += 1;
        let t = param.val();
        if self.only_trainable && !t.is_require_grad() {
            return;
        }
        let shape = t.dims().to_vec();
        let data = t.to_data().convert::<f32>().to_vec().expect("f32 data");
        self.out.insert(i, (shape, data));
    }
}

/// The values of the trainable parameters (those with `require_grad`).
pub fn trainable_values<B: Kernels, M: Module<B>>(model: &M) -> Values {
    let mut c = Collect {
        index: 0,
        only_trainable: true,
        out: Values::new(),
    };
    model.visit(&mut c);
    c.out
}

/// The values of every parameter (for bit-identity checks in tests).
pub fn all_values<B: Kernels, M: Module<B>>(model: &M) -> Values {
    let mut c = Collect {
        index: 0,
        only_trainable: false,
        out: Values::new(),
    };
    model.visit(&mut c);
    c.out
}

struct Restore<'a> {
    index: usize,
    values: &'a Values,
    restored: usize,
}

impl<B: Kernels> ModuleMapper<B> for Restore<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let i = self.index;
        self.index += 1;
        let Some((shape, data)) = self.values.get(&i) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        if tensor.dims().as_slice() != shape.as_slice() {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let grad = tensor.is_require_grad();
        let device = tensor.device();
        let mut t =
            Tensor::<B, D>::from_data(TensorData::new(data.clone(), shape.clone()), &device);
        if grad {
            t = t.require_grad();
        }
        self.restored += 1;
        Param::from_mapped_value(id, t, mapper)
    }
}

/// Puts saved values back; returns the model and how many were restored
/// (the caller checks it against the number saved).
pub fn restore<B: Kernels, M: Module<B>>(model: M, values: &Values) -> (M, usize) {
    let mut r = Restore {
        index: 0,
        values,
        restored: 0,
    };
    let m = model.map(&mut r);
    let n = r.restored;
    (m, n)
}

/// The non-tensor part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps completed.
    pub step: u64,
    pub sampler: SamplerState,
    pub optimizer_updates: u64,
    pub early_stop: EarlyStopState,
    /// Training examples and tokens seen so far.
    pub examples_seen: u64,
    pub tokens_seen: u64,
    /// PPO's adaptive KL coefficient after the last step (`kl_target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_coef: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopState {
    pub best: Option<f64>,
    pub best_step: Option<u64>,
    pub bad_evals: u32,
    pub stopped: bool,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

fn read_tensors(path: &Path) -> Result<TensorMap, String> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| io_err(path, e))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name.to_string(), (view.shape().to_vec(), data));
    }
    Ok(out)
}

/// Everything in one checkpoint.
pub struct Checkpoint {
    pub state: CheckpointState,
    pub params: Values,
    /// Optimizer buffers by parameter index.
    pub optimizer: BTreeMap<usize, Vec<Vec<f32>>>,
}

/// Writes `dir/name` atomically (temp folder, then rename).
pub fn save(dir: &Path, name: &str, ck: &Checkpoint) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    // Written from the checkpoint's own values, without copies: for full
    // fine-tuning they are three times the model.
    let names: Vec<String> = ck.params.keys().map(|i| format!("param.{i}")).collect();
    let params: Vec<(&str, &[usize], &[f32])> = names
        .iter()
        .zip(ck.params.values())
        .map(|(n, (shape, v))| (n.as_str(), shape.as_slice(), v.as_slice()))
        .collect();
    let file = tmp.join("params.safetensors");
    write_f32_tensors(&file, &params).map_err(|e| io_err(&file, e))?;
    let mut opt_names = Vec::new();
    let mut lens = Vec::new();
    for (i, bufs) in &ck.optimizer {
        for (j, b) in bufs.iter().enumerate() {
            opt_names.push(format!("opt.{i}.{j}"));
            lens.push([b.len()]);
        }
    }
    let bufs = ck.optimizer.values().flatten();
    let opt: Vec<(&str, &[usize], &[f32])> = opt_names
        .iter()
        .zip(&lens)
        .zip(bufs)
        .map(|((n, len), b)| (n.as_str(), len.as_slice(), b.as_slice()))
        .collect();
    let file = tmp.join("optimizer.safetensors");
    write_f32_tensors(&file, &opt).map_err(|e| io_err(&file, e))?;
    let state = serde_json::to_string_pretty(&ck.state).expect("json");
    std::fs::write(tmp.join("state.json"), state).map_err(|e| io_err(&tmp, e))?;
    let target = dir.join(name);
    if target.exists() {
        let old = dir.join(format!(".old-{name}-{}", std::process::id()));
        std::fs::rename(&target, &old).map_err(|e| io_err(&target, e))?;
        std::fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
    }
    Ok(target)
}

/// Records `name` as the latest checkpoint (atomic replace).
pub fn set_latest(dir: &Path, name: &str) -> Result<(), String> {
    let tmp = dir.join(".latest.tmp");
    std::fs::write(&tmp, name).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, dir.join("latest")).map_err(|e| io_err(dir, e))
}

/// Removes the oldest `step-N` checkpoints so that `keep` remain (never
/// the one `latest` names, nor `best`).
pub fn prune(dir: &Path, keep: usize) -> Result<(), String> {
    let latest = latest(dir);
    let mut steps: Vec<(u64, String)> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("step-")?.parse().ok()?;
            Some((n, name))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for (_, name) in steps.into_iter().take(excess) {
        if Some(&name) != latest.as_ref() {
            std::fs::remove_dir_all(dir.join(&name)).map_err(|e| io_err(&dir.join(&name), e))?;
        }
    }
    Ok(())
}

pub fn latest(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("latest"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| dir.join(s).join("state.json").is_file())
}

pub fn load(path: &Path) -> Result<Checkpoint, String> {
    let state_path = path.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| io_err(&state_path, e))?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| io_err(&state_path, e))?;
    let mut params = Values::new();
    for (k, v) in read_tensors(&path.join("params.safetensors"))? {
        if let Some(i) = k.strip_prefix("param.").and_then(|i| i.parse().ok()) {
            params.insert(i, v);
        }
    }
    let mut optimizer: BTreeMap<usize, Vec<Vec<f32>>> = BTreeMap::new();
    for (k, (_, data)) in read_tensors(&path.join("optimizer.safetensors"))? {
        let mut it = k.strip_prefix("opt.").unwrap_or("").split('.');
        if let (Some(Ok(i)), Some(Ok(j))) = (it.next().map(str::parse), it.next().map(str::parse)) {
            let bufs = optimizer.entry(i).or_default();
            let j: usize = j;
            if bufs.len() <= j {
                bufs.resize(j + 1, Vec::new());
            }
            bufs[j] = data;
        }
    }
    Ok(Checkpoint {
        state,
        params,
        optimizer,
    })
}
