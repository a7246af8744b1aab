//! Curriculum: ordered stages, each with its own pool of examples, length,
//! difficulty order and pacing — flattened into ONE deterministic iterator
//! of [`CurriculumItem`]s that the trainer consumes, resumable from a
//! [`CurriculumPos`].
//!
//! # Steps and stages
//! A step is one optimizer step of `batch_size` examples. Stage `s` runs
//! `T_s` steps: `Steps(n)` → `n`; `Epochs(e)` → `⌈e · N_s / batch_size⌉`
//! for a pool of `N_s` examples. Stages run in order; the global step
//! continues across stage boundaries.
//!
//! # Order
//! With `keys` (one number per pool entry, e.g. `tokens(prompt)`), the pool
//! is sorted by key — ascending or descending; equal keys keep pool order
//! (a stable sort) — so "easy first" is the prefix of the sorted pool.
//!
//! # Pacing (Platanios et al. 2019, "Competence-based curriculum learning")
//! Competence `c(t)` is the share of the sorted pool available at stage step
//! `t` (0-based), with `c0 = start` and `T = full_at · T_s` steps:
//! - linear: `c(t) = min(1, t · (1 − c0) / T + c0)`
//! - root:   `c(t) = min(1, sqrt(t · (1 − c0²) / T + c0²))`
//!
//! The available prefix holds `m(t) = clamp(⌈c(t) · N − 1e-9⌉, 1, N)`
//! examples (the epsilon keeps `0.1 · 10` from rounding up to 2), and
//! each example of step `t` is drawn uniformly, with replacement, from that
//! prefix — as in the paper.
//!
//! Without pacing, the stage walks whole epochs over the pool: in sorted
//! order when it has keys (every epoch the same order: a pure ordering
//! curriculum), else a fresh shuffle per epoch. An epoch may end mid-batch;
//! the batch then continues with the next epoch.
//!
//! # Determinism and resume
//! Every draw derives from `(seed, stage, step)` or `(seed, stage, epoch)`
//! through [`crate::rng`], never from the history of earlier draws, so a
//! position `(stage, stage_step, slot)` is the whole state.

use crate::rng::{mix64, SplitMix64};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Pacing {
    /// Whole epochs (ordered by key if there are keys, else shuffled).
    None,
    /// `start` and `full_at` are fractions in `(0, 1]`.
    Linear {
        start: f64,
        full_at: f64,
    },
    Root {
        start: f64,
        full_at: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum StageLength {
    Epochs(f64),
    Steps(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    /// Example indices (into whatever example table the caller keeps).
    pub pool: Vec<usize>,
    /// Difficulty per pool entry (parallel to `pool`).
    pub keys: Option<Vec<f64>>,
    pub direction: Direction,
    pub pacing: Pacing,
    pub length: StageLength,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurriculumSpec {
    pub stages: Vec<Stage>,
    pub batch_size: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CurriculumError {
    NoStages,
    BatchSizeZero,
    EmptyPool {
        stage: String,
    },
    KeysLength {
        stage: String,
        keys: usize,
        pool: usize,
    },
    NanKey {
        stage: String,
        index: usize,
    },
    PacingWithoutOrder {
        stage: String,
    },
    BadPacing {
        stage: String,
        msg: String,
    },
    BadLength {
        stage: String,
    },
    BadPosition {
        msg: String,
    },
}

impl fmt::Display for CurriculumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurriculumError::NoStages => write!(f, "a curriculum needs at least one stage"),
            CurriculumError::BatchSizeZero => write!(f, "the batch size must be positive"),
            CurriculumError::EmptyPool { stage } => write!(f, "stage `{stage}` has no data"),
            CurriculumError::KeysLength { stage, keys, pool } => {
                write!(
                    f,
                    "stage `{stage}`: {keys} ordering keys for {pool} examples"
                )
            }
            CurriculumError::NanKey { stage, index } => {
                write!(f, "stage `{stage}`: ordering key {index} is not a number")
            }
            CurriculumError::PacingWithoutOrder { stage } => {
                write!(f, "stage `{stage}` has pacing but no ordering key")
            }
            CurriculumError::BadPacing { stage, msg } => write!(f, "stage `{stage}`: {msg}"),
            CurriculumError::BadLength { stage } => {
                write!(
                    f,
                    "stage `{stage}` must last a positive number of epochs or steps"
                )
            }
            CurriculumError::BadPosition { msg } => write!(f, "cannot resume: {msg}"),
        }
    }
}

impl std::error::Error for CurriculumError {}

/// One example to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CurriculumItem {
    pub stage: usize,
    /// An entry of the stage's `pool`.
    pub example: usize,
    /// Global optimizer step (0-based, continuing across stages).
    pub step: u64,
    /// Step within the stage.
    pub stage_step: u64,
}

/// The position of the next item: the whole resume state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CurriculumPos {
    pub stage: usize,
    pub stage_step: u64,
    /// Index within the batch.
    pub slot: usize,
}

/// A validated curriculum: sorted pools and stage lengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curriculum {
    spec: CurriculumSpec,
    /// Each stage's pool in difficulty order (or as given, without keys).
    ordered: Vec<Vec<usize>>,
    steps: Vec<u64>,
}

const TAG_PACED: u64 = 0x6375_7272_7061_6365; // "currpace"
const TAG_EPOCH: u64 = 0x6375_7272_6570_6F63; // "currepoc"

fn derive(seed: u64, tag: u64, a: u64, b: u64) -> u64 {
    mix64(mix64(mix64(seed ^ tag) ^ a) ^ b)
}

impl Curriculum {
    pub fn new(spec: CurriculumSpec) -> Result<Curriculum, CurriculumError> {
        if spec.stages.is_empty() {
            return Err(CurriculumError::NoStages);
        }
        if spec.batch_size == 0 {
            return Err(CurriculumError::BatchSizeZero);
        }
        let mut ordered = Vec::new();
        let mut steps = Vec::new();
        for st in &spec.stages {
            let name = || st.name.clone();
            let n = st.pool.len();
            if n == 0 {
                return Err(CurriculumError::EmptyPool { stage: name() });
            }
            let mut pool = st.pool.clone();
            if let Some(keys) = &st.keys {
                if keys.len() != n {
                    return Err(CurriculumError::KeysLength {
                        stage: name(),
                        keys: keys.len(),
                        pool: n,
                    });
                }
                if let Some(index) = keys.iter().position(|k| k.is_nan()) {
                    return Err(CurriculumError::NanKey {
                        stage: name(),
                        index,
                    });
                }
                let mut idx: Vec<usize> = (0..n).collect();
                idx.sort_by(|&a, &b| match st.direction {
                    Direction::Ascending => keys[a].total_cmp(&keys[b]),
                    Direction::Descending => keys[b].total_cmp(&keys[a]),
                });
                pool = idx.into_iter().map(|i| st.pool[i]).collect();
            }
            match st.pacing {
                Pacing::None => {}
                Pacing::Linear { start, full_at } | Pacing::Root { start, full_at } => {
                    if st.keys.is_none() {
                        return Err(CurriculumError::PacingWithoutOrder { stage: name() });
                    }
                    for (what, v) in [("start", start), ("full_at", full_at)] {
                        if !(v > 0.0 && v <= 1.0) {
                            return Err(CurriculumError::BadPacing {
                                stage: name(),
                                msg: format!("pacing {what} = {v} must be in (0, 1]"),
                            });
                        }
                    }
                }
            }
            let t = match st.length {
                StageLength::Steps(s) => s,
                StageLength::Epochs(e) if e > 0.0 && e.is_finite() => {
                    (e * n as f64 / spec.batch_size as f64 - 1e-9).ceil() as u64
                }
                StageLength::Epochs(_) => 0,
            };
            if t == 0 {
                return Err(CurriculumError::BadLength { stage: name() });
            }
            ordered.push(pool);
            steps.push(t);
        }
        Ok(Curriculum {
            spec,
            ordered,
            steps,
        })
    }

    pub fn spec(&self) -> &CurriculumSpec {
        &self.spec
    }

    /// Steps per stage.
    pub fn stage_steps(&self) -> &[u64] {
        &self.steps
    }

    pub fn total_steps(&self) -> u64 {
        self.steps.iter().sum()
    }

    /// A stage's pool in difficulty order.
    pub fn ordered_pool(&self, stage: usize) -> &[usize] {
        &self.ordered[stage]
    }

    /// Competence `c(t)` at a stage step (1 for unpaced stages).
    pub fn competence(&self, stage: usize, t: u64) -> f64 {
        let st = &self.spec.stages[stage];
        let big_t = |full_at: f64| (full_at * self.steps[stage] as f64).max(f64::MIN_POSITIVE);
        let t = t as f64;
        match st.pacing {
            Pacing::None => 1.0,
            Pacing::Linear { start, full_at } => {
                (t * (1.0 - start) / big_t(full_at) + start).min(1.0)
            }
            Pacing::Root { start, full_at } => {
                let c0 = start * start;
                (t * (1.0 - c0) / big_t(full_at) + c0).sqrt().min(1.0)
            }
        }
    }

    /// Size of the available prefix `m(t)` at a stage step.
    pub fn available(&self, stage: usize, t: u64) -> usize {
        let n = self.ordered[stage].len();
        let m = (self.competence(stage, t) * n as f64 - 1e-9).ceil();
        (m.max(1.0) as usize).min(n)
    }

    /// The example at a position (no iteration state needed).
    pub fn example_at(&self, pos: CurriculumPos) -> usize {
        let st = &self.spec.stages[pos.stage];
        let pool = &self.ordered[pos.stage];
        let seed = self.spec.seed;
        match st.pacing {
            Pacing::Linear { .. } | Pacing::Root { .. } => {
                let m = self.available(pos.stage, pos.stage_step);
                let mut rng =
                    SplitMix64::new(derive(seed, TAG_PACED, pos.stage as u64, pos.stage_step));
                let mut pick = 0;
                for _ in 0..=pos.slot {
                    pick = rng.below(m as u64) as usize;
                }
                pool[pick]
            }
            Pacing::None => {
                let n = pool.len() as u64;
                let k = pos.stage_step * self.spec.batch_size as u64 + pos.slot as u64;
                let (epoch, i) = (k / n, (k % n) as usize);
                if st.keys.is_some() {
                    pool[i]
                } else {
                    self.epoch_order(pos.stage, epoch)[i]
                }
            }
        }
    }

    /// The pool of an unpaced, unkeyed stage in the order of its `epoch`
    /// (a seeded shuffle): item `k` of the stage is `epoch_order(stage,
    /// k / n)[k % n]`. Public so that a caller drawing step by step can keep
    /// an epoch's order instead of shuffling the pool at every step.
    pub fn epoch_order(&self, stage: usize, epoch: u64) -> Vec<usize> {
        let mut v = self.ordered[stage].clone();
        SplitMix64::new(derive(self.spec.seed, TAG_EPOCH, stage as u64, epoch)).shuffle(&mut v);
        v
    }

    /// All items from the start.
    pub fn iter(&self) -> CurriculumIter<'_> {
        CurriculumIter {
            c: self,
            pos: CurriculumPos::default(),
            step_base: 0,
            cache: None,
            paced: None,
        }
    }

    /// Items from a saved position.
    pub fn resume(&self, pos: CurriculumPos) -> Result<CurriculumIter<'_>, CurriculumError> {
        let ok = pos.stage < self.steps.len()
            && pos.stage_step < self.steps[pos.stage]
            && pos.slot < self.spec.batch_size;
        let at_end = pos.stage == self.steps.len() && pos.stage_step == 0 && pos.slot == 0;
        if !ok && !at_end {
            return Err(CurriculumError::BadPosition {
                msg: format!("{pos:?} is outside the curriculum"),
            });
        }
        Ok(CurriculumIter {
            c: self,
            pos,
            step_base: self.steps[..pos.stage].iter().sum(),
            cache: None,
            paced: None,
        })
    }
}

/// The iterator over a curriculum's items.
#[derive(Debug, Clone)]
pub struct CurriculumIter<'a> {
    c: &'a Curriculum,
    pos: CurriculumPos,
    /// Global step at the start of the current stage.
    step_base: u64,
    /// (stage, epoch, shuffled order) for unpaced, unkeyed stages.
    cache: Option<(usize, u64, Vec<usize>)>,
    /// (stage, step, generator) for the current paced step.
    paced: Option<(usize, u64, SplitMix64)>,
}

impl CurriculumIter<'_> {
    /// The position of the next item; save it to resume.
    pub fn position(&self) -> CurriculumPos {
        self.pos
    }

    fn example(&mut self) -> usize {
        let c = self.c;
        let pos = self.pos;
        let st = &c.spec.stages[pos.stage];
        match st.pacing {
            Pacing::Linear { .. } | Pacing::Root { .. } => {
                let m = c.available(pos.stage, pos.stage_step) as u64;
                let fresh =
                    !matches!(self.paced, Some((s, t, _)) if s == pos.stage && t == pos.stage_step);
                if fresh || pos.slot == 0 {
                    // Mid-batch after a resume: replay the batch's earlier draws.
                    let mut rng = SplitMix64::new(derive(
                        c.spec.seed,
                        TAG_PACED,
                        pos.stage as u64,
                        pos.stage_step,
                    ));
                    for _ in 0..pos.slot {
                        rng.below(m);
                    }
                    self.paced = Some((pos.stage, pos.stage_step, rng));
                }
                let rng = &mut self.paced.as_mut().unwrap().2;
                c.ordered[pos.stage][rng.below(m) as usize]
            }
            Pacing::None if st.keys.is_none() => {
                let n = c.ordered[pos.stage].len() as u64;
                let k = pos.stage_step * c.spec.batch_size as u64 + pos.slot as u64;
                let (epoch, i) = (k / n, (k % n) as usize);
                if !matches!(&self.cache, Some((s, e, _)) if *s == pos.stage && *e == epoch) {
                    self.cache = Some((pos.stage, epoch, c.epoch_order(pos.stage, epoch)));
                }
                self.cache.as_ref().unwrap().2[i]
            }
            Pacing::None => c.example_at(pos),
        }
    }
}

impl Iterator for CurriculumIter<'_> {
    type Item = CurriculumItem;

    fn next(&mut self) -> Option<CurriculumItem> {
        if self.pos.stage >= self.c.steps.len() {
            return None;
        }
        let example = self.example();
        let item = CurriculumItem {
            stage: self.pos.stage,
            example,
            step: self.step_base + self.pos.stage_step,
            stage_step: self.pos.stage_step,
        };
        self.pos.slot += 1;
        if self.pos.slot == self.c.spec.batch_size {
            self.pos.slot = 0;
            self.pos.stage_step += 1;
            if self.pos.stage_step == self.c.steps[self.pos.stage] {
                self.step_base += self.pos.stage_step;
                self.pos.stage += 1;
                self.pos.stage_step = 0;
                self.paced = None;
                self.cache = None;
            }
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let b = self.c.spec.batch_size as u64;
        let total = self.c.total_steps() * b;
        let done = (self.step_base + self.pos.stage_step) * b + self.pos.slot as u64;
        let left = total.saturating_sub(done) as usize;
        (left, Some(left))
    }
}
