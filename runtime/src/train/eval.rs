//! Evaluation on a split: loss and the Plan's metrics, overall and per
//! task (dataset) for mixtures. Generation metrics decode greedily.

use crate::kernels::Kernels;
use std::collections::BTreeMap;

use burn::tensor::Tensor;
use ft_pipeline::{BatchData, DataPipeline};
use ft_plan::{Metric, Objective};
use serde::{Deserialize, Serialize};

use super::metrics;
use super::task::{classify_losses, count_targets, sequence_logprobs, Logits, Task};
use crate::generate::{generate_batch, SamplingOptions};
use crate::peft::ForwardCtx;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub split: String,
    pub examples: usize,
    pub metrics: BTreeMap<String, f64>,
    /// Per task (dataset name), when the split mixes several.
    pub per_task: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Default)]
struct Acc {
    loss_sum: f64,
    loss_count: f64,
    pred: Vec<usize>,
    gold: Vec<usize>,
    margin_sum: f64,
    pairs: usize,
}

impl Acc {
    fn finish(&self, wanted: &[Metric], classes: usize, out: &mut BTreeMap<String, f64>) {
        let loss = self.loss_sum / self.loss_count.max(1.0);
        for m in wanted {
            let v = match m {
                Metric::Loss => loss,
                Metric::Perplexity => loss.exp(),
                Metric::Accuracy => metrics::accuracy(&self.pred, &self.gold),
                Metric::F1 => metrics::macro_f1(&self.pred, &self.gold, classes),
                Metric::Margin => self.margin_sum / self.pairs.max(1) as f64,
                // Generated and scored elsewhere (reward: by PPO's reward model).
                Metric::ExactMatch | Metric::RougeL | Metric::Reward => continue,
            };
            out.insert(m.name().to_string(), v);
        }
    }
}

fn to_f64<B: Kernels, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(|v| v as f64)
        .collect()
}

/// Evaluates `model` (no dropout) on `split`. `reference` is DPO's frozen
/// reference model.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: Kernels, M: Task<B>>(
    model: &M,
    reference: Option<&M>,
    pipe: &DataPipeline,
    split: &str,
    wanted: &[Metric],
    batch: usize,
    max_new_tokens: usize,
    device: &B::Device,
) -> Result<EvalResult, String> {
    let plan = pipe.plan();
    let classes = match &plan.model.head {
        ft_plan::Head::Classify { labels } => labels.len(),
        ft_plan::Head::CausalLm => 0,
    };
    let beta = match plan.train.objective {
        Objective::Dpo { beta, .. } => beta,
        _ => 0.1,
    };
    let task_names: Vec<String> = plan.datasets.iter().map(|d| d.name.clone()).collect();
    let batches = pipe.eval_batches(split, batch).map_err(|e| e.to_string())?;
    let mut all = Acc::default();
    let mut per: BTreeMap<u16, Acc> = BTreeMap::new();
    let mut examples = 0;
    let ctx = ForwardCtx::EVAL;
    for bd in &batches {
        match bd {
            BatchData::Single(b) => {
                examples += b.tasks.len();
                match model.logits(b, &ctx) {
                    Logits::Classes(logits) => {
                        let preds: Vec<usize> = logits
                            .clone()
                            .argmax(1)
                            .into_data()
                            .convert::<i64>()
                            .to_vec::<i64>()
                            .expect("ints")
                            .into_iter()
                            .map(|v| v as usize)
                            .collect();
                        let losses = to_f64(classify_losses(logits, &b.class_labels));
                        for (i, &t) in b.tasks.iter().enumerate() {
                            let l = losses[i];
                            for acc in [&mut all, per.entry(t).or_default()] {
                                acc.loss_sum += l;
                                acc.loss_count += 1.0;
                                acc.pred.push(preds[i]);
                                acc.gold.push(b.class_labels[i]);
                            }
                        }
                    }
                    Logits::Tokens(logits) => {
                        let sums = to_f64(sequence_logprobs(logits, &b.labels));
                        for (i, &t) in b.tasks.iter().enumerate() {
                            let row = &b.labels[i * b.seq..(i + 1) * b.seq];
                            let n = count_targets(row, b.seq) as f64;
                            for acc in [&mut all, per.entry(t).or_default()] {
                                acc.loss_sum -= sums[i];
                                acc.loss_count += n;
                            }
                        }
                    }
                }
            }
            BatchData::Pair(p) => {
                examples += p.chosen.tasks.len();
                let lp = |m: &M, b| match m.logits(b, &ctx) {
                    Logits::Tokens(l) => Ok(sequence_logprobs(l, &b.labels)),
                    Logits::Classes(_) => Err("DPO needs a causal LM".to_string()),
                };
                let pc = lp(model, &p.chosen)?;
                let pr = lp(model, &p.rejected)?;
                let (rc, rr) = match reference {
                    Some(r) => (lp(r, &p.chosen)?, lp(r, &p.rejected)?),
                    None => (pc.clone().zeros_like(), pr.clone().zeros_like()),
                };
                let margins = to_f64((pc - rc) - (pr - rr));
                for (i, &t) in p.chosen.tasks.iter().enumerate() {
                    let m = beta * margins[i];
                    // −log σ(m), stably.
                    let l = if m > 0.0 {
                        (-m).exp().ln_1p()
                    } else {
                        -m + m.exp().ln_1p()
                    };
                    for acc in [&mut all, per.entry(t).or_default()] {
                        acc.loss_sum += l;
                        acc.loss_count += 1.0;
                        acc.margin_sum += m;
                        acc.pairs += 1;
                    }
                }
            }
        }
    }
    let mut result = EvalResult {
        split: split.to_string(),
        examples,
        ..Default::default()
    };
    all.finish(wanted, classes, &mut result.metrics);
    if per.len() > 1 {
        for (t, acc) in &per {
            let mut m = BTreeMap::new();
            acc.finish(wanted, classes, &mut m);
            let name = task_names
                .get(*t as usize)
                .cloned()
                .unwrap_or(t.to_string());
            result.per_task.insert(name, m);
        }
    }
    if wanted
        .iter()
        .any(|m| matches!(m, Metric::ExactMatch | Metric::RougeL))
    {
        generation_metrics(
            model,
            pipe,
            split,
            wanted,
            batch,
            max_new_tokens,
            device,
            &mut result,
        )?;
    }
    Ok(result)
}

/// Generates for the split's prompts, `batch` at a time (one pass over the
/// weights per token for all of them), and scores against the references.
#[allow(clippy::too_many_arguments)]
fn generation_metrics<B: Kernels, M: Task<B>>(
    model: &M,
    pipe: &DataPipeline,
    split: &str,
    wanted: &[Metric],
    batch: usize,
    max_new_tokens: usize,
    device: &B::Device,
    result: &mut EvalResult,
) -> Result<(), String> {
    let Some(lm) = model.causal_lm() else {
        return Err("exact_match and rouge_l need a causal LM".into());
    };
    let tok = pipe.tokenizer();
    let examples = pipe.eval_examples(split).map_err(|e| e.to_string())?;
    let opts = SamplingOptions {
        max_new_tokens,
        stop_ids: tok.eos_id.into_iter().collect(),
        ..Default::default()
    };
    let scored: Vec<&ft_pipeline::EvalExample> =
        examples.iter().filter(|e| e.reference.is_some()).collect();
    let prompts: Vec<Vec<u32>> = scored.iter().map(|e| e.prompt_ids.clone()).collect();
    let references: Vec<String> = scored
        .iter()
        .map(|e| e.reference.clone().unwrap_or_default())
        .collect();
    let mut generated = Vec::with_capacity(references.len());
    for prompts in prompts.chunks(batch.max(1)) {
        for ids in generate_batch(lm, prompts, &opts, |_| opts.seed, device) {
            let ids: Vec<u32> = ids.into_iter().filter(|i| Some(*i) != tok.eos_id).collect();
            generated.push(tok.decode(&ids));
        }
    }
    let score = |m: &Metric, generated: &[String], references: &[String]| match m {
        Metric::ExactMatch => Some(metrics::exact_match(generated, references)),
        Metric::RougeL => Some(metrics::mean_rouge_l(generated, references)),
        _ => None,
    };
    for m in wanted {
        if let Some(v) = score(m, &generated, &references) {
            result.metrics.insert(m.name().into(), v);
        }
    }
    // Per task, as the other metrics are when the split mixes several.
    if !result.per_task.is_empty() {
        let names: Vec<String> = pipe
            .plan()
            .datasets
            .iter()
            .map(|d| d.name.clone())
            .collect();
        let mut tasks: Vec<u16> = scored.iter().map(|e| e.task).collect();
        tasks.sort();
        tasks.dedup();
        for t in tasks {
            let pick = |v: &[String]| -> Vec<String> {
                v.iter()
                    .zip(&scored)
                    .filter(|(_, e)| e.task == t)
                    .map(|(s, _)| s.clone())
                    .collect()
            };
            let (g, r) = (pick(&generated), pick(&references));
            let name = names.get(t as usize).cloned().unwrap_or(t.to_string());
            let per = result.per_task.entry(name).or_default();
            for m in wanted {
                if let Some(v) = score(m, &g, &r) {
                    per.insert(m.name().into(), v);
                }
            }
        }
    }
    Ok(())
}
