//! Sampling several tasks together (`mixture tasks { faq = 3, papers = 1,
//! temperature = 2.0 }`).
//!
//! # Shares
//! Each task `i` has `n_i` examples and optionally a weight `w_i`. The base
//! of task `i` is `w_i` when weights are given (all tasks must then have
//! one), else its size `n_i`. With temperature `T` (default 1) the nominal
//! probability is `p_i ∝ base_i^(1/T)`: `T = 1` keeps the weights (or the
//! sizes: examples-proportional mixing), larger `T` flattens toward uniform
//! — with sizes as the base this is the usual `p_i ∝ n_i^(1/T)`.
//!
//! The recipe language defines a temperature with weights differently
//! (`p_i ∝ w_i·n_i^(1/T)`, docs/language.md); ft-pipeline folds that into
//! explicit weights and passes no temperature, so both readings agree on
//! what a recipe means.
//!
//! # Epoch
//! One mixture epoch is `E = Σ n_i` draws — as many draws as there are
//! examples, so "3 epochs" of a mixture costs what 3 epochs of the
//! concatenated data would. Task `i` gets exactly `d_i` of those draws,
//! `d_i ≈ p_i · E` (integer quotas by largest remainder, summing to `E`).
//! With a `cap` `c ≥ 1`, no task is drawn more than `c · n_i` times per
//! epoch (repeated more than `c` times): a task over its cap is clamped to
//! `⌊c · n_i⌋` and the surplus is shared among the others in proportion to
//! their `p_i`, repeatedly, until no task is over (water-filling). Since
//! `c ≥ 1`, `Σ c · n_i ≥ E` and this always succeeds. [`Mixture::shares`]
//! gives the resulting `d_i / E`.
//!
//! # Order
//! Within an epoch, the order of tasks is a uniformly random arrangement of
//! the multiset of quotas (drawn one at a time from the remaining quotas,
//! so memory is `O(tasks)`), different in every epoch. Within a task,
//! examples come as successive shuffled passes (each pass a fresh
//! permutation); passes continue across mixture epochs, so a task that gets
//! fewer draws than examples still sees every example before any repeats.
//!
//! Everything derives from the seed through [`crate::rng`], so a seed gives
//! the same sequence on every machine, and [`MixtureState`] (a few numbers
//! per task) resumes it exactly.

use crate::rng::{mix64, SplitMix64};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureTask {
    pub name: String,
    /// Number of examples.
    pub size: usize,
    /// Relative weight (positive); all tasks have one or none has.
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureSpec {
    pub tasks: Vec<MixtureTask>,
    /// `T > 0`; `None` is 1.
    pub temperature: Option<f64>,
    /// At most this many repetitions of a task per epoch (`≥ 1`).
    pub cap: Option<f64>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MixtureError {
    NoTasks,
    EmptyTask {
        name: String,
    },
    BadWeight {
        name: String,
        weight: f64,
    },
    /// Some tasks have weights and some do not.
    SomeWeightsMissing {
        name: String,
    },
    BadTemperature {
        temperature: f64,
    },
    BadCap {
        cap: f64,
    },
    /// A resume state that does not fit this mixture.
    BadState {
        msg: String,
    },
}

impl fmt::Display for MixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MixtureError::NoTasks => write!(f, "a mixture needs at least one task"),
            MixtureError::EmptyTask { name } => write!(f, "task `{name}` has no examples"),
            MixtureError::BadWeight { name, weight } => {
                write!(
                    f,
                    "task `{name}` has weight {weight}; weights must be positive"
                )
            }
            MixtureError::SomeWeightsMissing { name } => {
                write!(f, "task `{name}` has no weight while others have one")
            }
            MixtureError::BadTemperature { temperature } => {
                write!(f, "temperature {temperature} must be positive")
            }
            MixtureError::BadCap { cap } => write!(f, "cap {cap} must be at least 1"),
            MixtureError::BadState { msg } => write!(f, "cannot resume the mixture: {msg}"),
        }
    }
}

impl std::error::Error for MixtureError {}

/// A validated mixture with its probabilities and per-epoch quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    spec: MixtureSpec,
    probs: Vec<f64>,
    quotas: Vec<usize>,
}

/// One draw: which example of which task, at which step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Draw {
    /// Global draw index, from 0.
    pub step: u64,
    pub epoch: u64,
    pub task: usize,
    /// Index into the task's examples.
    pub example: usize,
}

/// Where a sampler is; `serde` it into a checkpoint to resume exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixtureState {
    pub step: u64,
    pub epoch: u64,
    /// Draws left per task in the current epoch.
    pub remaining: Vec<usize>,
    /// The epoch's task-order generator.
    pub rng: u64,
    /// Per task: completed passes, and position in the current pass.
    pub pass: Vec<u64>,
    pub pos: Vec<usize>,
}

const TAG_EPOCH: u64 = 0x6D69_7874_6570_6F63; // "mixtepoc"
const TAG_PASS: u64 = 0x6D69_7874_7061_7373; // "mixtpass"

fn derive(seed: u64, tag: u64, a: u64, b: u64) -> u64 {
    mix64(mix64(mix64(seed ^ tag) ^ a) ^ b)
}

impl Mixture {
    pub fn new(spec: MixtureSpec) -> Result<Mixture, MixtureError> {
        if spec.tasks.is_empty() {
            return Err(MixtureError::NoTasks);
        }
        let weighted = spec.tasks[0].weight.is_some();
        for t in &spec.tasks {
            if t.size == 0 {
                return Err(MixtureError::EmptyTask {
                    name: t.name.clone(),
                });
            }
            match t.weight {
                Some(w) if !(w > 0.0 && w.is_finite()) => {
                    return Err(MixtureError::BadWeight {
                        name: t.name.clone(),
                        weight: w,
                    })
                }
                w if w.is_some() != weighted => {
                    return Err(MixtureError::SomeWeightsMissing {
                        name: t.name.clone(),
                    })
                }
                _ => {}
            }
        }
        let temp = spec.temperature.unwrap_or(1.0);
        if !(temp > 0.0 && temp.is_finite()) {
            return Err(MixtureError::BadTemperature { temperature: temp });
        }
        if let Some(c) = spec.cap {
            if c.is_nan() || c < 1.0 {
                return Err(MixtureError::BadCap { cap: c });
            }
        }
        let bases: Vec<f64> = spec
            .tasks
            .iter()
            .map(|t| t.weight.unwrap_or(t.size as f64).powf(1.0 / temp))
            .collect();
        let total: f64 = bases.iter().sum();
        let probs: Vec<f64> = bases.iter().map(|b| b / total).collect();
        let sizes: Vec<usize> = spec.tasks.iter().map(|t| t.size).collect();
        let quotas = quotas(&probs, &sizes, spec.cap);
        Ok(Mixture {
            spec,
            probs,
            quotas,
        })
    }

    pub fn spec(&self) -> &MixtureSpec {
        &self.spec
    }

    /// Nominal probabilities `p_i` (before the cap).
    pub fn probabilities(&self) -> &[f64] {
        &self.probs
    }

    /// Draws per task in one epoch.
    pub fn quotas(&self) -> &[usize] {
        &self.quotas
    }

    /// Draws per epoch: `Σ n_i`.
    pub fn epoch_len(&self) -> u64 {
        self.quotas.iter().sum::<usize>() as u64
    }

    /// Effective shares after the cap: `d_i / E`.
    pub fn shares(&self) -> Vec<f64> {
        let e = self.epoch_len() as f64;
        self.quotas.iter().map(|&q| q as f64 / e).collect()
    }

    /// A sampler from the start.
    pub fn sampler(&self) -> MixtureSampler {
        let k = self.quotas.len();
        let state = MixtureState {
            step: 0,
            epoch: 0,
            remaining: self.quotas.clone(),
            rng: derive(self.spec.seed, TAG_EPOCH, 0, 0),
            pass: vec![0; k],
            pos: vec![0; k],
        };
        MixtureSampler {
            mixture: self.clone(),
            perms: vec![Vec::new(); k],
            state,
        }
    }

    /// A sampler continuing from a saved state.
    pub fn resume(&self, state: MixtureState) -> Result<MixtureSampler, MixtureError> {
        let k = self.quotas.len();
        if state.remaining.len() != k || state.pass.len() != k || state.pos.len() != k {
            return Err(MixtureError::BadState {
                msg: format!("the state has a different number of tasks than {k}"),
            });
        }
        for i in 0..k {
            if state.remaining[i] > self.quotas[i] || state.pos[i] > self.spec.tasks[i].size {
                return Err(MixtureError::BadState {
                    msg: format!("task `{}` is past its end", self.spec.tasks[i].name),
                });
            }
        }
        Ok(MixtureSampler {
            mixture: self.clone(),
            perms: vec![Vec::new(); k],
            state,
        })
    }

    /// The permutation of task `i`'s examples for pass `p`.
    fn permutation(&self, i: usize, p: u64) -> Vec<u32> {
        let n = self.spec.tasks[i].size;
        let mut v: Vec<u32> = (0..n as u32).collect();
        SplitMix64::new(derive(self.spec.seed, TAG_PASS, i as u64, p)).shuffle(&mut v);
        v
    }
}

/// Integer draws per task per epoch (see the module docs).
fn quotas(probs: &[f64], sizes: &[usize], cap: Option<f64>) -> Vec<usize> {
    let e: usize = sizes.iter().sum();
    let k = probs.len();
    let limit: Vec<f64> = sizes
        .iter()
        .map(|&n| cap.map_or(f64::INFINITY, |c| (c * n as f64).floor()))
        .collect();
    let mut real = vec![0.0; k];
    let mut active: Vec<bool> = vec![true; k];
    let mut budget = e as f64;
    loop {
        let mass: f64 = (0..k).filter(|&i| active[i]).map(|i| probs[i]).sum();
        for i in (0..k).filter(|&i| active[i]) {
            real[i] = budget * probs[i] / mass;
        }
        let over: Vec<usize> = (0..k)
            .filter(|&i| active[i] && real[i] > limit[i])
            .collect();
        if over.is_empty() {
            break;
        }
        for i in over {
            real[i] = limit[i];
            budget -= limit[i];
            active[i] = false;
        }
        if !active.contains(&true) {
            break;
        }
    }
    let mut q: Vec<usize> = real.iter().map(|r| r.floor() as usize).collect();
    let mut left = e - q.iter().sum::<usize>();
    // Largest remainder first; ties to the lower index; never over a limit.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| {
        let fa = real[a] - real[a].floor();
        let fb = real[b] - real[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    while left > 0 {
        let before = left;
        for &i in &order {
            if left > 0 && ((q[i] + 1) as f64) <= limit[i] {
                q[i] += 1;
                left -= 1;
            }
        }
        assert!(left < before, "mixture quotas cannot be met under the cap");
    }
    q
}

/// The endless stream of draws; take `epochs × epoch_len` of them.
#[derive(Debug, Clone)]
pub struct MixtureSampler {
    mixture: Mixture,
    /// Current pass permutation per task (rebuilt lazily, e.g. on resume).
    perms: Vec<Vec<u32>>,
    state: MixtureState,
}

impl MixtureSampler {
    /// The state to save for resuming at the next draw.
    pub fn state(&self) -> &MixtureState {
        &self.state
    }

    fn next_example(&mut self, i: usize) -> usize {
        let n = self.mixture.spec.tasks[i].size;
        if self.state.pos[i] == n {
            self.state.pos[i] = 0;
            self.state.pass[i] += 1;
            self.perms[i].clear();
        }
        if self.perms[i].is_empty() {
            self.perms[i] = self.mixture.permutation(i, self.state.pass[i]);
        }
        let ex = self.perms[i][self.state.pos[i]] as usize;
        self.state.pos[i] += 1;
        ex
    }
}

impl Iterator for MixtureSampler {
    type Item = Draw;

    fn next(&mut self) -> Option<Draw> {
        let st = &mut self.state;
        let mut left: usize = st.remaining.iter().sum();
        if left == 0 {
            st.epoch += 1;
            st.remaining.clone_from(&self.mixture.quotas);
            st.rng = derive(self.mixture.spec.seed, TAG_EPOCH, st.epoch, 0);
            left = st.remaining.iter().sum();
        }
        let mut rng = SplitMix64::new(st.rng);
        let mut x = rng.below(left as u64) as usize;
        st.rng = rng.state;
        let mut task = 0;
        for (i, &r) in st.remaining.iter().enumerate() {
            if x < r {
                task = i;
                break;
            }
            x -= r;
        }
        st.remaining[task] -= 1;
        let draw = Draw {
            step: st.step,
            epoch: st.epoch,
            task,
            example: 0,
        };
        st.step += 1;
        let example = self.next_example(task);
        Some(Draw { example, ..draw })
    }
}
