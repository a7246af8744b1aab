//! The `train` and `evaluate` blocks into the Plan's [`TrainPlan`] and
//! [`EvalPlan`], every default read from the schema that documents it.

use ft_plan::{
    Device, EarlyStop, EvalPlan, Head, Length, Metric, MetricRef, ModelPlan, Objective, Optimizer,
    Precision, Schedule, ScheduleKind, TrainPlan, Warmup,
};

use crate::check::blocks::CBlock;
use crate::check::schema::{self, Key, OBJECTIVES, OPTIMIZERS, SCHEDULES};
use crate::check::value::{Val, V};
use crate::check::Recipe;

use super::util::{call_bool, call_name, call_num, find_call};
use super::{fail, LowerError};

/// A key of a block that may be absent: its value, else the schema default.
fn num(block: Option<&CBlock>, keyword: &str, key: &str) -> Option<f64> {
    if let Some(v) = block.and_then(|b| b.get(key)).and_then(V::as_f64) {
        return Some(v);
    }
    let keys: &[Key] = schema::block(keyword).map_or(&[], |d| d.keys);
    keys.iter()
        .find(|k| k.name == key)
        .and_then(|k| k.default)
        .and_then(|d| d.replace('_', "").parse().ok())
}

pub fn train(recipe: &Recipe, model: &ModelPlan) -> Result<TrainPlan, LowerError> {
    let t = recipe.one("train");
    let get = |key: &str| t.and_then(|t| t.get(key));
    let objective = match get("objective") {
        Some(v) => {
            let name = call_name(v).unwrap_or("sft");
            let def = find_call(OBJECTIVES, name);
            match (name, def) {
                ("dpo", Some(def)) => Objective::Dpo {
                    beta: call_num(v, def, "beta"),
                    // Naming the trained model itself is its own weights.
                    reference: match v.arg("reference").map(|r| &r.val) {
                        Some(Val::ModelRef(id)) if id.name != model.name => Some(id.name.clone()),
                        _ => None,
                    },
                },
                ("ppo", Some(def)) => Objective::Ppo {
                    reward: match v.arg("reward").map(|r| &r.val) {
                        Some(Val::ModelRef(id)) => id.name.clone(),
                        _ => return fail("`ppo` needs `reward = MODEL`", t),
                    },
                    kl: call_num(v, def, "kl"),
                    clip: call_num(v, def, "clip"),
                    max_new_tokens: call_num(v, def, "max_new_tokens") as usize,
                    temperature: call_num(v, def, "temperature"),
                    kl_target: v.arg("kl_target").and_then(V::as_f64),
                    kl_horizon: call_num(v, def, "kl_horizon"),
                },
                ("classify", _) => Objective::Classify,
                _ => Objective::Sft,
            }
        }
        None => match model.head {
            Head::Classify { .. } => Objective::Classify,
            Head::CausalLm => Objective::Sft,
        },
    };
    let length = match get("steps").and_then(|v| v.as_i64()) {
        Some(s) => Length::Steps(s as u64),
        None => Length::Epochs(num(t, "train", "epochs").unwrap_or(1.0)),
    };
    let optimizer = match get("optimizer") {
        Some(v) => optimizer(v, t)?,
        None => Optimizer::AdamW {
            lr: 2e-4,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    };
    let schedule = match get("schedule") {
        Some(v) => {
            let name = call_name(v).unwrap_or("constant");
            let Some(def) = find_call(SCHEDULES, name) else {
                return fail(format!("unknown schedule `{name}`"), t);
            };
            Schedule {
                kind: match name {
                    "linear" => ScheduleKind::Linear,
                    "cosine" => ScheduleKind::Cosine,
                    _ => ScheduleKind::Constant,
                },
                warmup: match v.arg("warmup").map(|w| &w.val) {
                    Some(Val::Fraction(f)) => Warmup::Fraction(*f),
                    Some(Val::Count(c)) => Warmup::Steps(*c),
                    Some(Val::Int(i)) => Warmup::Steps((*i).max(0) as u64),
                    _ => Warmup::Steps(0),
                },
                min_lr: call_num(v, def, "min_lr"),
            }
        }
        None => Schedule {
            kind: ScheduleKind::Constant,
            warmup: Warmup::Steps(0),
            min_lr: 0.0,
        },
    };
    let early_stop = match get("early_stop") {
        Some(v) => {
            let metric = match v.arg("metric").map(|m| &m.val) {
                Some(Val::Metric { split, metric }) => MetricRef {
                    split: split.name.clone(),
                    metric: Metric::from_name(&metric.name)
                        .ok_or(())
                        .or_else(|_| fail(format!("unknown metric `{}`", metric.name), t))?,
                },
                _ => return fail("`early_stop` needs `metric = val.METRIC`", t),
            };
            Some(EarlyStop {
                patience: v.arg("patience").and_then(|p| p.as_i64()).unwrap_or(3) as u32,
                min_delta: v.arg("min_delta").and_then(V::as_f64).unwrap_or(0.0),
                maximize: v
                    .arg("mode")
                    .and_then(|m| m.as_word())
                    .map(|m| m == "max")
                    .or(Some(metric.metric.maximize())),
                metric,
            })
        }
        None => None,
    };
    Ok(TrainPlan {
        objective,
        length,
        batch: num(t, "train", "batch").unwrap_or(8.0) as usize,
        accumulate: num(t, "train", "accumulate").unwrap_or(1.0) as usize,
        max_len: num(t, "train", "max_len").unwrap_or(512.0) as usize,
        optimizer,
        schedule,
        clip: get("clip").and_then(V::as_f64),
        early_stop,
        eval_every: get("eval_every").and_then(|v| v.as_i64()).map(|v| v as u64),
        packing: get("packing").and_then(V::as_bool).unwrap_or(false),
        group_by_length: get("group_by_length").and_then(V::as_bool).unwrap_or(false),
        device: match get("backend").and_then(|v| v.as_word()) {
            Some("cuda") => Device::Cuda,
            _ => Device::Cpu,
        },
        threads: get("threads").and_then(|v| v.as_i64()).map(|v| v as usize),
        precision: match get("precision").and_then(|v| v.as_word()) {
            Some("bf16") => Precision::Bf16,
            _ => Precision::F32,
        },
        gradient_checkpointing: get("gradient_checkpointing")
            .and_then(V::as_bool)
            .unwrap_or(false),
    })
}

fn optimizer(v: &V, t: Option<&CBlock>) -> Result<Optimizer, LowerError> {
    let name = call_name(v).unwrap_or("adamw");
    let Some(def) = find_call(OPTIMIZERS, name) else {
        return fail(format!("unknown optimizer `{name}`"), t);
    };
    let lr = call_num(v, def, "lr");
    Ok(match name {
        "sgd" => Optimizer::Sgd {
            lr,
            momentum: call_num(v, def, "momentum"),
            nesterov: call_bool(v, def, "nesterov"),
            weight_decay: call_num(v, def, "weight_decay"),
        },
        _ => Optimizer::AdamW {
            lr,
            weight_decay: call_num(v, def, "weight_decay"),
            beta1: call_num(v, def, "beta1"),
            beta2: call_num(v, def, "beta2"),
            eps: call_num(v, def, "eps"),
        },
    })
}

pub fn evaluate(recipe: &Recipe, train: &TrainPlan) -> EvalPlan {
    let e = recipe.one("evaluate");
    let get = |key: &str| e.and_then(|b| b.get(key));
    let words = |v: &V| -> Vec<String> {
        match &v.val {
            Val::Word(w) => vec![w.clone()],
            Val::List(items) => items
                .iter()
                .filter_map(|i| i.as_word().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    let on = get("on").map(words).unwrap_or_else(|| vec!["test".into()]);
    let metrics = get("metrics")
        .map(words)
        .unwrap_or_else(|| vec!["loss".into()])
        .iter()
        .filter_map(|m| Metric::from_name(m))
        .collect();
    EvalPlan {
        on,
        metrics,
        max_new_tokens: num(e, "evaluate", "max_new_tokens").unwrap_or(64.0) as usize,
        batch: get("batch")
            .and_then(|v| v.as_i64())
            .map_or(train.batch, |b| b as usize),
    }
}
