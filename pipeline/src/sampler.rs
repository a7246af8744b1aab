//! ONE deterministic, resumable train sampler over a Plan's `TrainData`:
//! a dataset, a mixture, or a curriculum of stages — the trainer has no
//! other way to get training batches.
//!
//! A dataset or a mixture is a curriculum of one stage (named `train`,
//! lasting `train.length`, no order, no pacing). Each stage has one pool per
//! task: the task's `train` split, fitted to the stage's `max_len` (its
//! truncation policy applied, drops counted) and filtered by the stage's
//! `where`. A stage lasts `steps`, or `⌈epochs · N / batch⌉` steps for
//! `N` examples in its pools (for a mixture, one mixture epoch is also `N`
//! draws — see `ft_data::mixture`).
//!
//! A mixture draws task `i` with probability ∝ `wᵢ·nᵢ^(1/T)` (language.md;
//! `wᵢ` alone without a temperature, `nᵢ^(1/T)` without weights), `nᵢ` the
//! task's pool in the stage; `cap` then limits repeats per mixture epoch.
//!
//! The sampler yields micro-batches of `batch` examples: `Length::Steps(n)`
//! is `n` batches. With gradient accumulation the caller scales the Plan's
//! step counts (train's and every stage's) by `accumulate` before building.
//!
//! Within a stage, example choice is `ft_data::curriculum`'s, per task:
//! - one task: the curriculum's own sequence — shuffled epochs (unordered),
//!   the sorted pool in order (ordered, unpaced), or uniform draws from the
//!   competence prefix of the sorted pool (paced);
//! - a mixture: the mixture's sampler picks the task of every slot
//!   (weights, temperature, cap); the example is then the task's shuffled
//!   pass (unordered), its next example in sorted order (ordered, unpaced),
//!   or a draw from its competence prefix at the current stage step (paced).
//!
//! Seeds derive from `plan.seed` (per stage and task) and from the
//! mixture's seed (per stage), so the same Plan gives the same batches on
//! every machine. [`SamplerState`] is the whole position: resuming from it
//! gives exactly the batches that would have followed.

use crate::batch::{collate, fit, BatchData, Fit, Item, PairBatch};
use crate::example::{ExampleKind, Sequence, Tokenized};
pub use crate::mixing::mixture_weight;
use crate::report::StageReport;
use crate::store::{Examples, Store};
use crate::{DataPipeline, PipelineError};
use ft_data::curriculum::{
    Curriculum, CurriculumPos, CurriculumSpec, Direction, Pacing, Stage, StageLength,
};
use ft_data::mixture::{Mixture, MixtureSampler, MixtureSpec, MixtureState, MixtureTask};
use ft_data::render::{EvalError, RowExpr, TokenCounter};
use ft_data::rng::mix64;
use ft_plan::{DataRef, Length, MixturePlan, OrderKey, TrainData, Truncate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An example fitted to a stage's `max_len`.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    pub seq: Sequence,
    pub rejected: Option<Sequence>,
    pub class_label: Option<usize>,
    pub task: u16,
    pub id: u64,
    /// Whether fitting cut it.
    pub cut: bool,
}

impl Fitted {
    pub(crate) fn item(&self, rejected: bool) -> Item<'_> {
        Item {
            seq: if rejected {
                self.rejected.as_ref().unwrap_or(&self.seq)
            } else {
                &self.seq
            },
            class_label: self.class_label,
            task: self.task,
            id: self.id,
        }
    }
}

/// Fitting one dataset's examples to a length under its policy.
pub(crate) struct Fitter<'p> {
    ds: &'p ft_plan::DatasetPlan,
    encoder: bool,
    bos: Option<u32>,
    max_len: usize,
}

impl<'p> Fitter<'p> {
    pub fn new(p: &'p DataPipeline, dataset: usize, max_len: usize) -> Fitter<'p> {
        Fitter {
            ds: &p.plan.datasets[dataset],
            encoder: p.built(dataset).map(|b| b.kind) == Some(ExampleKind::Classify),
            bos: p
                .tok
                .bos_token
                .as_deref()
                .and_then(|b| p.tok.tokenizer.token_to_id(b)),
            max_len,
        }
    }

    /// The example fitted, and whether it was truncated; `None` when it is
    /// too long for its policy (dropped, or an error under `error`).
    fn fit(&self, t: Tokenized) -> Option<(Sequence, Option<Sequence>, bool)> {
        let max_len = self.max_len;
        // A DPO pair loses the same prompt tokens on both sides: each side
        // is fitted to its own length less the cut the longer one needs.
        let longest = t
            .rejected
            .as_ref()
            .map_or(t.seq.len(), |r| r.len().max(t.seq.len()));
        let cut = longest.saturating_sub(max_len);
        let one = |s: &Sequence| {
            let target = if cut > 0 && self.ds.truncate == Truncate::Truncate {
                s.len().saturating_sub(cut).clamp(1, max_len)
            } else {
                max_len
            };
            fit(s, target, self.ds.truncate, self.encoder, self.bos)
        };
        let a = one(&t.seq);
        let b = t.rejected.as_ref().map(one);
        if a == Fit::TooLong || b == Some(Fit::TooLong) {
            return None;
        }
        let take = |f: Fit, s: Sequence| match f {
            Fit::Truncated(t) => (t, true),
            _ => (s, false),
        };
        let (seq, ta) = take(a, t.seq);
        let (rejected, tb) = match (b, t.rejected) {
            (Some(f), Some(r)) => {
                let (s, t) = take(f, r);
                (Some(s), t)
            }
            _ => (None, false),
        };
        Some((seq, rejected, ta || tb))
    }

    /// Example `pos` of `store`, fitted (`None`: too long).
    pub fn fit_at(&self, store: &Store, pos: usize) -> Option<Fitted> {
        let t = store.tokens(pos);
        let class_label = t.class_label;
        let (seq, rejected, cut) = self.fit(t)?;
        Some(Fitted {
            seq,
            rejected,
            class_label,
            task: store.task(),
            id: store.entry(pos).id,
            cut,
        })
    }
}

/// Fit one split's examples to `max_len` under the dataset's policy,
/// reading them from the store one at a time: `each` gets every kept
/// example's store position, its tokens as built, and its fitted form.
/// Returns the (truncated, dropped) counts; the `error` policy stops at the
/// first example too long.
pub(crate) fn fit_split(
    p: &DataPipeline,
    dataset: usize,
    examples: &Examples,
    max_len: usize,
    mut each: impl FnMut(usize, &Sequence, Fitted) -> Result<(), PipelineError>,
) -> Result<(usize, usize), PipelineError> {
    let fitter = Fitter::new(p, dataset, max_len);
    let store = examples.store();
    let (mut truncated, mut dropped) = (0, 0);
    for &pos in examples.positions() {
        let pos = pos as usize;
        let t = store.tokens(pos);
        // Kept for `where` filters and ordering keys, which see the
        // example as built.
        let built = t.seq.clone();
        let class_label = t.class_label;
        let Some((seq, rejected, cut)) = fitter.fit(t) else {
            if fitter.ds.truncate == Truncate::Error {
                let e = store.entry(pos);
                return Err(PipelineError::TooLong {
                    dataset: fitter.ds.name.clone(),
                    file: store.file(&e).to_path_buf(),
                    line: e.line as usize,
                    len: store.longest(pos),
                    max_len,
                });
            }
            dropped += 1;
            continue;
        };
        truncated += usize::from(cut);
        let f = Fitted {
            seq,
            rejected,
            class_label,
            task: store.task(),
            id: store.entry(pos).id,
            cut,
        };
        each(pos, &built, f)?;
    }
    Ok((truncated, dropped))
}

/// `tokens(…)` on a built example: `prompt`, `completion` and `input`
/// are counted on its (fitted) tokens; other names are fields.
pub(crate) struct ExampleTokens<'a> {
    pub p: &'a DataPipeline,
    pub seq: &'a Sequence,
}

impl TokenCounter for ExampleTokens<'_> {
    fn count(&self, name: &str, field_text: Option<&str>) -> Result<usize, EvalError> {
        match name {
            "prompt" => Ok(self.seq.prompt_len),
            "completion" | "chosen" => Ok(self.seq.len() - self.seq.prompt_len),
            "input" | "messages" => Ok(self.seq.len()),
            _ => {
                let text = field_text.ok_or_else(|| EvalError::MissingField {
                    field: name.to_owned(),
                })?;
                self.p
                    .tok
                    .encode(text, false)
                    .map(|v| v.len())
                    .map_err(|_| EvalError::NoTokenizer)
            }
        }
    }
}

struct TaskPool {
    /// Index of the task in the stage's mixture as written.
    task: usize,
    /// The task's `train` split.
    split: Examples,
    /// Store positions of the examples the stage keeps (fitted to its
    /// `max_len` and through its `where`): fitted again, from the store,
    /// when a batch takes them.
    examples: Vec<u32>,
    /// This task's example order within the stage (a one-stage curriculum).
    order: Curriculum,
    /// With `group_by_length`, the fitted length of each kept example (as
    /// `examples`): epochs are grouped by it.
    lengths: Option<Vec<u32>>,
}

struct StageRun {
    name: String,
    batch: usize,
    max_len: usize,
    lr: Option<f64>,
    steps: u64,
    tasks: Vec<TaskPool>,
    mixture: Option<Mixture>,
    paced: bool,
    keyed: bool,
}

/// Where the sampler is: save it in a checkpoint, resume with
/// [`DataPipeline::resume_sampler`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerState {
    /// Global step of the next batch.
    pub step: u64,
    pub stage: usize,
    pub stage_step: u64,
    /// The current stage's mixture sampler, once it has drawn.
    pub mixture: Option<MixtureState>,
    /// Ordered, unpaced mixture stages: examples taken per task.
    pub task_pos: Vec<u64>,
}

/// One training step's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainBatch {
    pub step: u64,
    pub stage: usize,
    pub stage_name: String,
    /// The stage's learning-rate override.
    pub lr: Option<f64>,
    pub max_len: usize,
    pub data: BatchData,
}

pub struct TrainSampler<'p> {
    p: &'p DataPipeline,
    stages: Vec<StageRun>,
    state: SamplerState,
    mixer: Option<MixtureSampler>,
    /// (stage, epoch, order) of a shuffled single-task stage: its epoch's
    /// order is a shuffle of the whole pool, made once per epoch rather
    /// than at every step.
    epoch: Option<(usize, u64, Vec<usize>)>,
}

const TAG_STAGE: u64 = 0x7069_7065_7374_6167; // "pipestag"

struct StageDecl {
    name: String,
    data: DataRef,
    length: Length,
    batch: usize,
    max_len: usize,
    lr: Option<f64>,
}

impl<'p> TrainSampler<'p> {
    pub(crate) fn new(
        p: &'p DataPipeline,
    ) -> Result<(TrainSampler<'p>, Vec<StageReport>), PipelineError> {
        let plan = &p.plan;
        let t = &plan.train;
        let whole = |data: DataRef| StageDecl {
            name: "train".into(),
            data,
            length: t.length,
            batch: t.batch,
            max_len: t.max_len,
            lr: None,
        };
        let (decls, mixtures, order, pacing): (Vec<StageDecl>, Vec<MixturePlan>, _, _) =
            match &plan.data {
                TrainData::Dataset(r) => (vec![whole(r.clone())], Vec::new(), None, Pacing::None),
                TrainData::Mixture { mixture, filter } => (
                    vec![whole(DataRef {
                        name: mixture.name.clone(),
                        filter: filter.clone(),
                    })],
                    vec![mixture.clone()],
                    None,
                    Pacing::None,
                ),
                TrainData::Curriculum {
                    curriculum,
                    mixtures,
                } => (
                    curriculum
                        .stages
                        .iter()
                        .map(|s| StageDecl {
                            name: s.name.clone(),
                            data: s.data.clone(),
                            length: s.length,
                            batch: s.batch.unwrap_or(t.batch),
                            max_len: s.max_len.unwrap_or(t.max_len),
                            lr: s.lr,
                        })
                        .collect(),
                    mixtures.clone(),
                    curriculum.order.clone(),
                    curriculum.pacing,
                ),
            };
        let mut stages = Vec::new();
        let mut reports = Vec::new();
        for (si, d) in decls.iter().enumerate() {
            let (run, rep) = build_stage(p, si, d, &mixtures, order.as_ref(), pacing)?;
            stages.push(run);
            reports.push(rep);
        }
        Ok((
            TrainSampler {
                p,
                stages,
                state: SamplerState::default(),
                mixer: None,
                epoch: None,
            },
            reports,
        ))
    }

    /// Continue from a saved state.
    pub(crate) fn with_state(mut self, state: SamplerState) -> Result<Self, PipelineError> {
        let bad = |m: String| Err(PipelineError::Sampler(format!("cannot resume: {m}")));
        if state.stage > self.stages.len()
            || (state.stage < self.stages.len()
                && state.stage_step > self.stages[state.stage].steps)
        {
            return bad(format!(
                "stage {} step {} is outside this plan's curriculum",
                state.stage, state.stage_step
            ));
        }
        let expected: u64 = self.stages[..state.stage.min(self.stages.len())]
            .iter()
            .map(|s| s.steps)
            .sum::<u64>()
            + state.stage_step;
        if expected != state.step {
            return bad(format!(
                "step {} does not match stage {} step {}",
                state.step, state.stage, state.stage_step
            ));
        }
        if let (Some(st), Some(ms)) = (self.stages.get(state.stage), &state.mixture) {
            match &st.mixture {
                Some(m) => {
                    self.mixer = Some(
                        m.resume(ms.clone())
                            .map_err(|e| PipelineError::Sampler(e.to_string()))?,
                    );
                }
                None => return bad("the state has a mixture but the stage has none".into()),
            }
        }
        self.state = state;
        Ok(self)
    }

    /// The position to save (the state before the next batch).
    pub fn state(&self) -> &SamplerState {
        &self.state
    }

    /// Steps of all stages together.
    pub fn total_steps(&self) -> u64 {
        self.stages.iter().map(|s| s.steps).sum()
    }

    /// Steps per stage, in order.
    pub fn stage_steps(&self) -> Vec<u64> {
        self.stages.iter().map(|s| s.steps).collect()
    }

    fn pick(&mut self) -> Vec<(usize, usize)> {
        let st = &self.stages[self.state.stage];
        let t = self.state.stage_step;
        let Some(mixture) = &st.mixture else {
            let order = &st.tasks[0].order;
            if !st.keyed && !st.paced {
                // The curriculum's sequence of shuffled epochs (see
                // `Curriculum::epoch_order`).
                let n = order.ordered_pool(0).len() as u64;
                let mut out = Vec::with_capacity(st.batch);
                for slot in 0..st.batch as u64 {
                    let k = t * st.batch as u64 + slot;
                    let (epoch, i) = (k / n, (k % n) as usize);
                    let stage = self.state.stage;
                    if !matches!(&self.epoch, Some((s, e, _)) if *s == stage && *e == epoch) {
                        let mut this = order.epoch_order(0, epoch);
                        if let Some(lengths) = &st.tasks[0].lengths {
                            crate::length_groups::group_by_length(&mut this, lengths, st.batch);
                        }
                        self.epoch = Some((stage, epoch, this));
                    }
                    out.push((0, self.epoch.as_ref().expect("set above").2[i]));
                }
                return out;
            }
            let it = order
                .resume(CurriculumPos {
                    stage: 0,
                    stage_step: t,
                    slot: 0,
                })
                .expect("the step is inside the stage");
            return it.take(st.batch).map(|item| (0, item.example)).collect();
        };
        let mixer = self.mixer.get_or_insert_with(|| mixture.sampler());
        if self.state.task_pos.len() != st.tasks.len() {
            self.state.task_pos = vec![0; st.tasks.len()];
        }
        let mut out = Vec::with_capacity(st.batch);
        for slot in 0..st.batch {
            let draw = mixer.next().expect("mixtures never end");
            let task = &st.tasks[draw.task];
            let ex = if st.paced {
                task.order.example_at(CurriculumPos {
                    stage: 0,
                    stage_step: t,
                    slot,
                })
            } else if st.keyed {
                let pool = task.order.ordered_pool(0);
                let k = self.state.task_pos[draw.task];
                self.state.task_pos[draw.task] += 1;
                pool[(k % pool.len() as u64) as usize]
            } else {
                draw.example
            };
            out.push((draw.task, ex));
        }
        self.state.mixture = Some(mixer.state().clone());
        out
    }
}

impl Iterator for TrainSampler<'_> {
    type Item = TrainBatch;

    fn next(&mut self) -> Option<TrainBatch> {
        while self.state.stage < self.stages.len()
            && self.state.stage_step >= self.stages[self.state.stage].steps
        {
            self.state.stage += 1;
            self.state.stage_step = 0;
            self.state.mixture = None;
            self.state.task_pos.clear();
            self.mixer = None;
        }
        if self.state.stage >= self.stages.len() {
            return None;
        }
        let picks = self.pick();
        let st = &self.stages[self.state.stage];
        let fitted: Vec<Fitted> = picks
            .iter()
            .map(|&(t, e)| {
                let pool = &st.tasks[t];
                let store = pool.split.store();
                Fitter::new(self.p, store.task() as usize, st.max_len)
                    .fit_at(store, pool.examples[e] as usize)
                    .expect("the stage kept only examples that fit")
            })
            .collect();
        let kind = self.p.built(fitted[0].task as usize).map(|b| b.kind);
        // Packing is for causal-LM sequences: a classifier pools one
        // sequence per row, and a DPO pair's rows must stay aligned.
        let pack = (self.p.plan.train.packing
            && !matches!(kind, Some(ExampleKind::Classify | ExampleKind::Pair)))
        .then_some(st.max_len);
        let items =
            |rejected: bool| -> Vec<Item> { fitted.iter().map(|f| f.item(rejected)).collect() };
        let pad = self.p.tok.pad_id;
        let data = if kind == Some(ExampleKind::Pair) {
            BatchData::Pair(Box::new(PairBatch {
                chosen: collate(&items(false), pad, pack),
                rejected: collate(&items(true), pad, pack),
            }))
        } else {
            BatchData::Single(collate(&items(false), pad, pack))
        };
        let out = TrainBatch {
            step: self.state.step,
            stage: self.state.stage,
            stage_name: st.name.clone(),
            lr: st.lr,
            max_len: st.max_len,
            data,
        };
        self.state.stage_step += 1;
        self.state.step += 1;
        Some(out)
    }
}

fn numeric(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn build_stage(
    p: &DataPipeline,
    si: usize,
    d: &StageDecl,
    mixtures: &[MixturePlan],
    order: Option<&(OrderKey, Direction)>,
    pacing: Pacing,
) -> Result<(StageRun, StageReport), PipelineError> {
    let plan = &p.plan;
    let err = |m: String| PipelineError::Sampler(format!("stage `{}`: {m}", d.name));
    let mixture = mixtures.iter().find(|m| m.name == d.data.name);
    let tasks: Vec<(String, Option<f64>)> = match mixture {
        Some(m) => m.tasks.clone(),
        None => vec![(d.data.name.clone(), None)],
    };
    let mut report = StageReport {
        name: d.name.clone(),
        batch: d.batch,
        max_len: d.max_len,
        lr: d.lr,
        ..StageReport::default()
    };
    let mut pools = Vec::new();
    for (ti, (name, _)) in tasks.iter().enumerate() {
        let di = plan
            .datasets
            .iter()
            .position(|x| &x.name == name)
            .ok_or_else(|| err(format!("no dataset or mixture `{name}`")))?;
        let built = p
            .built(di)
            .ok_or_else(|| err(format!("dataset `{name}` was not built")))?;
        let train = built
            .split("train")
            .ok_or_else(|| err(format!("dataset `{name}` has no `train` split")))?;
        // One pass over the split, as the slurping pipeline's three (fit
        // all, filter all, key all) would report: a too-long example
        // first, then the first filter error, then the first key error.
        let store = train.examples.store();
        let needs_row = d.data.filter.is_some() || order.is_some();
        let mut kept: Vec<u32> = Vec::new();
        let mut lengths: Vec<u32> = Vec::new();
        let mut keys: Vec<f64> = Vec::new();
        let (mut filter_err, mut key_err) = (None, None);
        // Truncations are counted among the examples the stage keeps.
        let mut truncated = 0;
        let (_, dropped) = fit_split(p, di, &train.examples, d.max_len, |pos, seq, f| {
            if filter_err.is_some() {
                return Ok(());
            }
            let e = store.entry(pos);
            let at = Located {
                dataset: name,
                file: store.file(&e),
                line: e.line as usize,
                row: if needs_row {
                    store.row(pos)
                } else {
                    Value::Null
                },
                seq,
            };
            let keep = match &d.data.filter {
                None => true,
                Some(expr) => match test(expr, p, &at) {
                    Ok(k) => k,
                    Err(e) => {
                        filter_err = Some(at.bad(format!("stage `{}` filter: {e}", d.name)));
                        return Ok(());
                    }
                },
            };
            if !keep {
                report.filtered += 1;
                return Ok(());
            }
            kept.push(pos as u32);
            truncated += usize::from(f.cut);
            let rejected = f.rejected.as_ref().map_or(0, |r| r.ids.len());
            lengths.push(f.seq.ids.len().max(rejected) as u32);
            if let (Some((key, _)), None) = (order, &key_err) {
                match order_key(key, p, &at) {
                    Ok(k) => keys.push(k),
                    Err(e) => key_err = Some(e),
                }
            }
            Ok(())
        })?;
        if let Some(e) = filter_err.or(key_err) {
            return Err(e);
        }
        report.truncated += truncated;
        report.dropped_too_long += dropped;
        report.tasks.push((name.clone(), kept.len()));
        if kept.is_empty() {
            // A task with nothing left (a `where` no example of it meets)
            // sits the stage out; the report shows it with 0 examples.
            continue;
        }
        let keys = order.is_some().then_some(keys);
        pools.push((train.examples.clone(), kept, keys, lengths, ti));
    }
    if pools.is_empty() {
        return Err(err(format!(
            "no example of {} is left for this stage",
            tasks
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    let n: usize = pools.iter().map(|(_, k, _, _, _)| k.len()).sum();
    let steps = match d.length {
        Length::Steps(s) => s,
        Length::Epochs(e) if e > 0.0 && e.is_finite() => {
            (e * n as f64 / d.batch as f64 - 1e-9).ceil() as u64
        }
        Length::Epochs(_) => 0,
    };
    if steps == 0 || d.batch == 0 {
        return Err(err(
            "it must last at least one step of at least one example".into(),
        ));
    }
    report.steps = steps;
    let direction = order.map_or(Direction::Ascending, |(_, d)| *d);
    let keyed = order.is_some();
    let paced = !matches!(pacing, Pacing::None);
    let mut task_pools = Vec::new();
    // Grouping reorders a shuffled epoch; ordered, paced and mixed stages
    // have no such epoch (the checker says so).
    let grouped = plan.train.group_by_length && mixture.is_none() && !keyed && !paced;
    for (split, kept, keys, lengths, ti) in pools {
        let spec = CurriculumSpec {
            stages: vec![Stage {
                name: d.name.clone(),
                pool: (0..kept.len()).collect(),
                keys,
                direction,
                pacing,
                length: StageLength::Steps(steps),
            }],
            batch_size: d.batch,
            seed: mix64(mix64(plan.seed ^ TAG_STAGE) ^ mix64(si as u64 + 1) ^ (ti as u64 + 1)),
        };
        let order = Curriculum::new(spec).map_err(|e| err(e.to_string()))?;
        task_pools.push(TaskPool {
            task: ti,
            split,
            examples: kept,
            order,
            lengths: grouped.then_some(lengths),
        });
    }
    let mixture = match mixture {
        None => None,
        Some(m) => Some(
            Mixture::new(MixtureSpec {
                tasks: task_pools
                    .iter()
                    .map(|pool| MixtureTask {
                        name: tasks[pool.task].0.clone(),
                        size: pool.examples.len(),
                        weight: Some(mixture_weight(
                            tasks[pool.task].1,
                            pool.examples.len(),
                            m.temperature,
                        )),
                    })
                    .collect(),
                // The temperature is folded into the weights (see
                // `mixture_weight`).
                temperature: None,
                cap: m.cap,
                seed: mix64(m.seed ^ mix64(si as u64 + 1)),
            })
            .map_err(|e| err(e.to_string()))?,
        ),
    };
    Ok((
        StageRun {
            name: d.name.clone(),
            batch: d.batch,
            max_len: d.max_len,
            lr: d.lr,
            steps,
            tasks: task_pools,
            mixture,
            paced,
            keyed,
        },
        report,
    ))
}

/// An example as a stage's `where` and ordering key see it: as built,
/// before fitting to the stage's `max_len` (`tokens(prompt) < 128` is about
/// the prompt, not what truncation left of it), with where it came from.
struct Located<'a> {
    dataset: &'a str,
    file: &'a std::path::Path,
    line: usize,
    /// `Null` when neither a filter nor a key needs it (not decoded).
    row: Value,
    seq: &'a Sequence,
}

impl Located<'_> {
    fn bad(&self, reason: String) -> PipelineError {
        PipelineError::BadRow {
            dataset: self.dataset.to_owned(),
            file: self.file.to_path_buf(),
            line: self.line,
            reason,
        }
    }
}

fn test(expr: &RowExpr, p: &DataPipeline, f: &Located) -> Result<bool, EvalError> {
    expr.test(&f.row, &ExampleTokens { p, seq: f.seq })
}

fn order_key(key: &OrderKey, p: &DataPipeline, f: &Located) -> Result<f64, PipelineError> {
    match key {
        OrderKey::Tokens(part) => {
            let text = ft_data::get_path(&f.row, part).map(ft_data::render::value_text);
            ExampleTokens { p, seq: f.seq }
                .count(part, text.as_deref())
                .map(|n| n as f64)
                .map_err(|e| f.bad(format!("ordering key: {e}")))
        }
        OrderKey::Field(field) => ft_data::get_path(&f.row, field)
            .and_then(numeric)
            .ok_or_else(|| {
                f.bad(format!(
                    "ordering key: `{field}` is missing or not a number"
                ))
            }),
    }
}
