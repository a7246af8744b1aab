//! What `ft plan` tells a person before any training starts: trainable and
//! total parameters (equal to PEFT's counts), a memory estimate at the
//! declared batch and length, and the effective batch. Step counts need the
//! tokenized data, so `ft data` reports them (per curriculum stage), not
//! `ft plan`.

use ft_formats::ModelInventory;
use ft_plan::{Head, Objective, Plan};

use super::figures::{self, Figures};

/// Bytes of activations kept for the backward pass, per layer and token,
/// in units of the hidden size, as measured on ft's CPU runtime (peak
/// resident memory of MiniLM and SmolLM2 runs; docs/benchmarks.md): with
/// the base model frozen (every PEFT method), and when every weight trains
/// (the inputs of each linear are kept for its weight's gradient).
const FROZEN_ACTIVATION_BYTES_PER_H: u64 = 32;
const FULL_ACTIVATION_BYTES_PER_H: u64 = 88;

/// Resident memory of the runtime before any model: the program, the
/// tokenizer, the tokenized data and the allocator's arenas (measured as
/// above).
pub const RUNTIME_BYTES: u64 = 96 << 20;

/// A checkpoint holds a copy of every trainable parameter and of AdamW's
/// two moments (12 bytes a parameter) while the moments themselves are
/// kept (8 more); gradients are gone by then.
const CHECKPOINT_BYTES_PER_PARAM: u64 = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub figures: Figures,
    /// Activations at `batch × max_len` (estimate), including attention
    /// scores and, for causal LMs, the logits; with gradient checkpointing,
    /// one layer's plus every layer's input.
    pub activation_bytes: u64,
    /// What `activation_bytes` is with gradient checkpointing on.
    pub recomputed_activation_bytes: u64,
    pub effective_batch: usize,
    pub method: &'static str,
    /// The runtime itself and the f32 weights of the other models a run
    /// loads (DPO's reference; PPO's reference and reward model).
    pub fixed_bytes: u64,
    /// What writing a checkpoint holds besides the weights.
    pub checkpoint_bytes: u64,
}

impl Summary {
    /// The estimated peak: the fixed part and the weights, plus the larger
    /// of a training step (gradients, optimizer state, activations) and a
    /// checkpoint being written.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes_with(self.activation_bytes)
    }

    /// The estimated peak with these activations.
    pub fn memory_bytes_with(&self, activation_bytes: u64) -> u64 {
        self.fixed_bytes
            + self.figures.weight_bytes
            + (self.figures.train_bytes + activation_bytes).max(self.checkpoint_bytes)
    }

    /// [`Self::memory_bytes`] without the activations: what does not shrink
    /// with the batch.
    pub fn fixed_memory_bytes(&self) -> u64 {
        self.fixed_bytes
            + self.figures.weight_bytes
            + self.figures.train_bytes.max(self.checkpoint_bytes)
    }
}

/// The summary of an analysed recipe's Plan, with the other models it
/// loads: `None` without the trained model's inventory.
pub fn estimate(plan: &Plan, analysis: &crate::driver::Analysis) -> Option<Summary> {
    let inv = inventory(plan, analysis)?;
    let mut s = summarize(plan, inv);
    let weights = |path: &std::path::Path| -> u64 {
        analysis
            .world
            .as_ref()
            .and_then(|w| {
                w.models
                    .iter()
                    .find(|m| super::util::clean_path(&m.path) == path)
            })
            .and_then(|m| m.inventory.as_ref())
            .map_or(0, |i| i.params * figures::WEIGHT_BYTES)
    };
    let policy = inv.params * figures::WEIGHT_BYTES;
    s.fixed_bytes += match &plan.train.objective {
        // The reference: the named model, else a frozen copy of the policy.
        Objective::Dpo { reference, .. } => match reference
            .as_ref()
            .and_then(|r| plan.other_models.iter().find(|m| m.name == *r))
        {
            Some(m) => weights(&m.path),
            None => policy,
        },
        // A frozen copy of the policy and the reward model.
        Objective::Ppo { reward, .. } => {
            policy
                + plan
                    .other_models
                    .iter()
                    .find(|m| m.name == *reward)
                    .map_or(0, |m| weights(&m.path))
        }
        _ => 0,
    };
    Some(s)
}

pub fn summarize(plan: &Plan, inv: &ModelInventory) -> Summary {
    let labels = match &plan.model.head {
        Head::Classify { labels } => Some(labels.len() as u64),
        Head::CausalLm => None,
    };
    let method = figures::method_of_plan(&plan.method);
    let mut f = figures::compute(&figures::shape_of(inv), &method, labels);
    let saved = figures::saved_base(inv, &plan.method);
    f.trainable += saved;
    f.train_bytes += saved * figures::TRAIN_BYTES;
    let c = &inv.config;
    let (b, s) = (plan.train.batch as u64, plan.train.max_len as u64);
    // DPO runs chosen and rejected sequences through the policy (and the
    // reference, without gradients): twice the sequences.
    let sequences = match plan.train.objective {
        Objective::Dpo { .. } => 2 * b,
        _ => b,
    };
    let full = matches!(plan.method, ft_plan::Method::Full { .. });
    let per_h = if full {
        FULL_ACTIVATION_BYTES_PER_H
    } else {
        FROZEN_ACTIVATION_BYTES_PER_H
    };
    let per_layer = sequences * s * c.hidden_size as u64 * per_h;
    // A tied head whose embedding is frozen is applied a slice of the
    // vocabulary at a time on the CPU: no logits are kept.
    let sliced = c.tie_word_embeddings && !full && plan.train.device == ft_plan::Device::Cpu;
    let logits = match plan.model.head {
        Head::CausalLm if !sliced => sequences * s * c.vocab_size as u64 * 4 * 2,
        _ => 0,
    };
    // Gradient checkpointing keeps each layer's f32 input and, during the
    // backward pass, one layer's activations at a time.
    let layers = c.num_layers as u64;
    let kept = per_layer * layers + logits;
    let recomputed = sequences * s * c.hidden_size as u64 * 4 * layers + per_layer + logits;
    Summary {
        figures: f,
        activation_bytes: if plan.train.gradient_checkpointing {
            recomputed
        } else {
            kept
        },
        recomputed_activation_bytes: recomputed,
        effective_batch: plan.train.batch * plan.train.accumulate,
        method: plan.method.name(),
        fixed_bytes: RUNTIME_BYTES,
        checkpoint_bytes: f.trainable * CHECKPOINT_BYTES_PER_PARAM,
    }
}

/// The human-readable lines of a summary; `stage` names the curriculum
/// stage whose batch and length the memory line is at (the worst one),
/// when not the train block's.
pub fn lines(plan: &Plan, s: &Summary, stage: Option<(&str, usize, usize)>) -> Vec<String> {
    let f = &s.figures;
    let (batch, max_len) = stage.map_or((plan.train.batch, plan.train.max_len), |(_, b, l)| (b, l));
    let at_stage = stage
        .map(|(n, _, _)| format!(", stage `{n}`"))
        .unwrap_or_default();
    let mut out = vec![
        format!(
            "model      {} ({})",
            plan.model.name,
            plan.model.path.display()
        ),
        format!(
            "method     {}: {} trainable of {} parameters ({:.4}%){}",
            s.method,
            figures::group(f.trainable),
            figures::group(f.total),
            f.percent(),
            if f.head > 0 {
                format!(", of which the new head {}", figures::group(f.head))
            } else {
                String::new()
            }
        ),
    ];
    if f.modules > 0 {
        out.push(format!("modules    {} adapted", f.modules));
    }
    out.push(format!(
        "memory     ≈ {} (runtime and other models {}, weights {}, gradients + optimizer {}, activations {} at {} × {}{at_stage}{})",
        figures::bytes(s.memory_bytes()),
        figures::bytes(s.fixed_bytes),
        figures::bytes(f.weight_bytes),
        figures::bytes(f.train_bytes),
        figures::bytes(s.activation_bytes),
        batch,
        max_len,
        if plan.train.gradient_checkpointing {
            ", layers recomputed"
        } else {
            ""
        }
    ));
    out.push(format!(
        "batch      {} × {} accumulated = {} examples per step",
        plan.train.batch, plan.train.accumulate, s.effective_batch
    ));
    out.extend(describe(plan));
    out
}

/// The data, length, optimizer and evaluation of a plan, in words.
pub fn describe(plan: &Plan) -> Vec<String> {
    use ft_plan::{Optimizer, TrainData, Warmup};
    let t = &plan.train;
    let data = match &plan.data {
        TrainData::Dataset(d) => format!("dataset `{}`{}", d.name, filtered(&d.filter)),
        TrainData::Mixture { mixture, filter } => format!(
            "mixture `{}` of {}{}",
            mixture.name,
            mixture
                .tasks
                .iter()
                .map(|(n, w)| match w {
                    Some(w) => format!("{n} ×{w}"),
                    None => n.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            filtered(filter)
        ),
        TrainData::Curriculum { curriculum, .. } => format!(
            "curriculum of {} stages: {}",
            curriculum.stages.len(),
            curriculum
                .stages
                .iter()
                .map(|s| format!("{} ({})", s.name, length(&s.length)))
                .collect::<Vec<_>>()
                .join(" → ")
        ),
    };
    let opt = match &t.optimizer {
        Optimizer::AdamW {
            lr, weight_decay, ..
        } => format!("adamw lr {lr:e}, weight decay {weight_decay}"),
        Optimizer::Sgd { lr, momentum, .. } => format!("sgd lr {lr:e}, momentum {momentum}"),
    };
    let warmup = match t.schedule.warmup {
        Warmup::Steps(0) => String::new(),
        Warmup::Steps(n) => format!(" after {n} warmup steps"),
        Warmup::Fraction(f) => format!(" after {:.0}% warmup", f * 100.0),
    };
    let mut out = vec![
        format!("data       {data}"),
        format!(
            "length     {}",
            match &plan.data {
                // The stages set the length, one after the other.
                TrainData::Curriculum { curriculum, .. } => curriculum
                    .stages
                    .iter()
                    .map(|s| length(&s.length))
                    .collect::<Vec<_>>()
                    .join(" + "),
                _ => length(&t.length),
            }
        ),
        format!(
            "optimizer  {opt}; {:?} schedule{warmup}{}",
            t.schedule.kind,
            t.clip
                .map(|c| format!("; clip global norm at {c}"))
                .unwrap_or_default()
        ),
    ];
    if let Some(es) = &t.early_stop {
        out.push(format!(
            "early stop on {}.{} (patience {})",
            es.metric.split,
            es.metric.metric.name(),
            es.patience
        ));
    }
    out.push(format!(
        "evaluate   {} on {}",
        plan.evaluate
            .metrics
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
        plan.evaluate.on.join(", ")
    ));
    out
}

fn length(l: &ft_plan::Length) -> String {
    match l {
        ft_plan::Length::Epochs(e) => format!("{e} epochs"),
        ft_plan::Length::Steps(s) => format!("{s} steps"),
    }
}

fn filtered(f: &Option<ft_data::render::RowExpr>) -> &'static str {
    if f.is_some() {
        " (filtered)"
    } else {
        ""
    }
}

/// The inventory of the model a plan trains, from the world checks.
pub fn inventory<'a>(
    plan: &Plan,
    analysis: &'a crate::driver::Analysis,
) -> Option<&'a ModelInventory> {
    analysis
        .world
        .as_ref()?
        .models
        .iter()
        .find(|m| super::util::clean_path(&m.path) == plan.model.path)?
        .inventory
        .as_ref()
}
