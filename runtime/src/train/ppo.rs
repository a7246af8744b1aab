//! `objective = ppo(reward = rm, …)`: PPO of a causal LM (with its PEFT
//! method) against a trained reward model, with a KL penalty to the frozen
//! base model.
//!
//! One optimizer *step* of the run is one PPO iteration:
//! 1. the sampler's `accumulate` micro-batches of `batch` prompts each;
//! 2. a response per prompt, sampled from the current policy (KV cache,
//!    `temperature`, no top-k/top-p, up to `max_new_tokens`, stop at EOS)
//!    with a seed keyed by (seed, step, micro-batch, row);
//! 3. each prompt + response decoded, re-tokenized by the reward model and
//!    scored: the first label's log-odds;
//! 4. per response token: log-probs of the reference (frozen base) and of
//!    the policy, a value from the value head; rewards −kl·(log π − log
//!    π_ref) with the score added at the last token; GAE (γ = 1, λ = 0.95);
//!    advantages whitened per micro-batch;
//! 5. [`PPO_EPOCHS`] passes over the micro-batches, each an AdamW update
//!    (gradients accumulated over the micro-batches, clipped by global
//!    norm) of the clipped surrogate + ½ × the clipped value loss.
//!
//! Dropout is off in PPO's forward passes, so the first pass's ratio is
//! exactly 1 and its log-probs are the rollout policy's. The value head is
//! a linear layer on the final hidden state (detached: the value loss
//! trains the head only); it is saved in checkpoints, not in the adapter.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use ft_pipeline::{BatchData, DataPipeline};
use ft_plan::{Metric, Objective, Plan};
use serde::Serialize;

use super::checkpoint::{self, Checkpoint, CheckpointState, EarlyStopState};
use super::eval::{evaluate, EvalResult};
use super::optim::{self, Optim};
use super::ppo_math::{gae, ppo_losses, shaped_rewards, whiten, PpoInputs};
use super::rollout::{
    grid_logprobs, prompts_of, reward_text, rollout_seed, sample_responses, to_vec, Grid,
    RewardModel,
};
use super::session::{
    early_stop_event, export, folder_lock, log_eval, non_finite, observe_early_stop, open_run,
    scalar, truncate_metrics, write_report, Observed, Sink,
};
use super::{schedule, ErrorKind, Event, RunOptions, RunSummary, TrainError};
use crate::generate::SamplingOptions;
use crate::llama::LlamaForCausalLM;
use crate::peft;

/// Passes over each step's rollouts.
pub const PPO_EPOCHS: usize = 2;
/// GAE's discount and trace decay.
pub const GAMMA: f64 = 1.0;
pub const LAMBDA: f64 = 0.95;
/// The value loss's weight in the total loss.
pub const VALUE_COEF: f64 = 0.5;

/// The policy and its value head: one module, so that the optimizer,
/// checkpoints and resume treat both alike.
#[derive(Module, Debug)]
pub struct PolicyValue<B: Backend> {
    pub policy: LlamaForCausalLM<B>,
    pub value: Linear<B>,
}

impl<B: Backend> PolicyValue<B> {
    /// A zero-initialised value head (values start at 0) on `policy`.
    pub fn new(policy: LlamaForCausalLM<B>, device: &B::Device) -> Self {
        let hidden = policy.model.embed_tokens.weight.dims()[1];
        let value = LinearConfig::new(hidden, 1)
            .with_initializer(Initializer::Zeros)
            .init(device);
        PolicyValue { policy, value }
    }

    /// Response-token log-probs and values over a grid, `[rows, width]`.
    pub fn outputs(
        &self,
        grid: &Grid,
        temperature: f64,
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (hidden, lp) = grid_logprobs(&self.policy, grid, temperature, device);
        let values = self
            .value
            .forward(hidden.detach())
            .reshape([grid.rows, grid.width]);
        (lp, values)
    }
}

/// One step's statistics (also written to `metrics.jsonl`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PpoStats {
    /// Mean reward-model score of the rollouts.
    pub reward: f64,
    /// Mean over rollouts of Σ (log π − log π_ref) over the response.
    pub kl: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    /// Share of response tokens whose ratio left [1 − clip, 1 + clip].
    pub clip_frac: f64,
    /// Mean response length in tokens.
    pub response_len: f64,
}

/// One micro-batch of experience.
struct Experience {
    grid: Grid,
    scores: Vec<f64>,
    ref_lp: Vec<f32>,
    old_lp: Vec<f32>,
    old_values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

struct Settings {
    kl: f64,
    clip: f64,
    sampling: SamplingOptions,
    temperature: f64,
    seed: u64,
}

/// Trains `policy` (the PEFT method already injected) with PPO.
pub(super) fn train<B: AutodiffBackend>(
    policy: LlamaForCausalLM<B>,
    plan: &Plan,
    pipe: &DataPipeline,
    opts: &RunOptions,
    device: &B::Device,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError> {
    let Objective::Ppo {
        reward,
        kl,
        clip,
        max_new_tokens,
        temperature,
    } = &plan.train.objective
    else {
        return Err(TrainError::input("not a PPO plan"));
    };
    let rm_plan = plan
        .other_models
        .iter()
        .find(|m| m.name == *reward)
        .ok_or_else(|| TrainError::input(format!("reward model `{reward}` is not declared")))?;
    let rm = RewardModel::<B::InnerBackend>::load(rm_plan, device)?;
    let model_err = |e: ft_formats::FormatError| TrainError::input(e.to_string());
    let (reference, _) =
        crate::load_causal_lm::<B::InnerBackend>(&plan.model.path, device).map_err(model_err)?;
    let counts = peft::parameter_counts(&policy, &plan.method);
    let mut model = PolicyValue::new(policy, device);
    let value_params = model.value.num_params();
    let tok = pipe.tokenizer();
    let settings = Settings {
        kl: *kl,
        clip: *clip,
        temperature: *temperature,
        sampling: SamplingOptions {
            max_new_tokens: *max_new_tokens,
            temperature: *temperature as f32,
            top_p: 1.0,
            seed: 0,
            stop_ids: tok.eos_id.into_iter().collect(),
        },
        seed: plan.seed,
    };

    let started = Instant::now();
    let t = &plan.train;
    let k = t.accumulate.max(1) as u64;
    let lock = folder_lock(plan)?;
    let (run_dir, resuming) = open_run(plan, opts, &lock)?;
    let ck_dir = run_dir.join("checkpoints");
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut sampler = pipe
        .train_sampler()
        .map_err(|e| TrainError::input(e.to_string()))?;
    let total = sampler.total_steps().div_ceil(k);
    let train_examples: usize = pipe
        .report()
        .datasets
        .iter()
        .flat_map(|d| d.splits.iter().filter(|s| s.name == "train"))
        .map(|s| s.examples)
        .sum();
    let steps_per_epoch = (train_examples as u64)
        .div_ceil((t.batch as u64 * k).max(1))
        .max(1);
    let eval_every = t.eval_every.unwrap_or(steps_per_epoch).max(1);
    let has_val = pipe.has_split("val");

    let mut opt = Optim::<B::InnerBackend>::new(t.optimizer.clone());
    let mut state = CheckpointState {
        step: 0,
        sampler: sampler.state().clone(),
        optimizer_updates: 0,
        early_stop: EarlyStopState::default(),
        examples_seen: 0,
        tokens_seen: 0,
    };
    let mut resumed_at = None;
    if resuming {
        let Some(name) = checkpoint::latest(&ck_dir) else {
            return Err(TrainError::input(format!(
                "nothing to resume: {} has no checkpoint yet",
                run_dir.display()
            )));
        };
        let ck = checkpoint::load(&ck_dir.join(&name)).map_err(TrainError::input)?;
        let (m, restored) = checkpoint::restore(model, &ck.params);
        if restored != ck.params.len() {
            return Err(TrainError::input(format!(
                "checkpoint {name} does not fit the model ({restored} of {} tensors restored)",
                ck.params.len()
            )));
        }
        model = m;
        opt.import(ck.state.optimizer_updates, ck.optimizer, device);
        sampler = pipe
            .resume_sampler(ck.state.sampler.clone())
            .map_err(|e| TrainError::input(e.to_string()))?;
        state = ck.state;
        resumed_at = Some(state.step);
        truncate_metrics(&metrics_path, state.step)?;
    }
    let mut sink = Sink::open(&metrics_path)?;
    on_event(&Event::Start {
        run_dir: run_dir.clone(),
        total_steps: total,
        trainable: counts.trainable + value_params,
        total_params: counts.total + value_params,
        train_examples,
        resumed_at,
    });
    let save = |model: &PolicyValue<B>,
                opt: &Optim<B::InnerBackend>,
                state: &CheckpointState,
                name: &str|
     -> Result<PathBuf, TrainError> {
        let ck = Checkpoint {
            state: state.clone(),
            params: checkpoint::trainable_values(model),
            optimizer: opt.export(),
        };
        checkpoint::save(&ck_dir, name, &ck).map_err(TrainError::io)
    };
    let validate = |model: &PolicyValue<B>, split: &str, metrics: &[Metric]| {
        evaluate_ppo(
            &model.valid().policy,
            &rm,
            pipe,
            split,
            metrics,
            &settings,
            device,
        )
    };

    let mut last_val: Option<(u64, EvalResult)> = None;
    while state.step < total && !state.early_stop.stopped {
        if opts.stop.load(Ordering::SeqCst) {
            let p = save(&model, &opt, &state, "last")?;
            checkpoint::set_latest(&ck_dir, "last").map_err(TrainError::io)?;
            on_event(&Event::Interrupted {
                step: state.step,
                checkpoint: p.clone(),
            });
            return Err(TrainError::new(
                ErrorKind::Interrupted,
                format!(
                    "interrupted at step {}; checkpoint {} (continue with --resume)",
                    state.step,
                    p.display()
                ),
            ));
        }
        let step_started = Instant::now();
        let mut batches = Vec::new();
        let (mut stage, mut stage_lr) = (String::new(), None);
        while (batches.len() as u64) < k {
            let Some(tb) = sampler.next() else { break };
            stage = tb.stage_name.clone();
            stage_lr = tb.lr;
            match tb.data {
                BatchData::Single(b) => batches.push(b),
                BatchData::Pair(_) => {
                    return Err(TrainError::input("PPO needs prompts, not preference pairs"))
                }
            }
        }
        if batches.is_empty() {
            break;
        }
        let lr = schedule::lr_at(
            &t.schedule,
            stage_lr.unwrap_or(t.optimizer.lr()),
            state.step,
            total,
        );
        let out = ppo_step(
            model, &reference, &rm, &batches, &settings, &mut opt, lr, t.clip, state.step, pipe,
            device,
        )?;
        model = out.model;
        if !out.loss.is_finite() {
            return Err(non_finite("loss", state.step + 1, &ck_dir));
        }
        if !out.grad_norm.is_finite() {
            return Err(non_finite("gradient norm", state.step + 1, &ck_dir));
        }
        state.step += 1;
        state.optimizer_updates = opt.updates;
        state.sampler = sampler.state().clone();
        state.examples_seen += batches.iter().map(|b| b.batch as u64).sum::<u64>();
        state.tokens_seen += out.tokens as u64;
        let elapsed = step_started.elapsed().as_secs_f64().max(1e-9);
        let s = &out.stats;
        sink.line(serde_json::json!({
            "step": state.step, "split": "train", "loss": out.loss, "lr": lr,
            "grad_norm": out.grad_norm, "stage": stage,
            "tokens_per_s": out.tokens as f64 / elapsed,
            "reward": s.reward, "kl": s.kl, "policy_loss": s.policy_loss,
            "value_loss": s.value_loss, "clip_frac": s.clip_frac,
            "response_len": s.response_len,
        }))?;
        on_event(&Event::Step {
            step: state.step,
            total,
            stage,
            loss: out.loss,
            lr,
            grad_norm: out.grad_norm,
            tokens_per_s: out.tokens as f64 / elapsed,
            eta_s: started.elapsed().as_secs_f64() / (state.step - resumed_at.unwrap_or(0)) as f64
                * (total - state.step) as f64,
            ppo: Some(out.stats),
        });

        let at_eval = state.step % eval_every == 0 || state.step == total;
        if at_eval && has_val {
            let mut wanted: Vec<Metric> = plan
                .evaluate
                .metrics
                .iter()
                .copied()
                .filter(|m| !m.generates() || *m == Metric::Reward)
                .collect();
            if let Some(es) = &t.early_stop {
                if !wanted.contains(&es.metric.metric) {
                    wanted.push(es.metric.metric);
                }
            }
            let r = validate(&model, "val", &wanted)?;
            log_eval(&mut sink, state.step, &r)?;
            last_val = Some((state.step, r.clone()));
            on_event(&Event::Eval {
                step: state.step,
                result: r.clone(),
            });
            if let Some(es) = &t.early_stop {
                match observe_early_stop(&mut state.early_stop, es, state.step, &r) {
                    Observed::Best => {
                        save(&model, &opt, &state, "best")?;
                    }
                    Observed::Stop => on_event(&early_stop_event(&state)),
                    Observed::Worse => {}
                }
            }
        }
        let periodic = opts
            .checkpoint_every
            .is_some_and(|n| state.step % n.max(1) == 0);
        if (at_eval || periodic) && state.step < total && !state.early_stop.stopped {
            let p = save(&model, &opt, &state, "last")?;
            checkpoint::set_latest(&ck_dir, "last").map_err(TrainError::io)?;
            on_event(&Event::Checkpoint {
                step: state.step,
                path: p,
            });
        }
    }
    save(&model, &opt, &state, "last")?;
    checkpoint::set_latest(&ck_dir, "last").map_err(TrainError::io)?;
    if t.early_stop.is_some() && state.early_stop.best_step.is_some_and(|b| b != state.step) {
        let best = checkpoint::load(&ck_dir.join("best")).map_err(TrainError::input)?;
        let (m, _) = checkpoint::restore(model, &best.params);
        model = m;
        last_val = None;
    }
    let mut final_eval = Vec::new();
    for split in &plan.evaluate.on {
        if !pipe.has_split(split) {
            continue;
        }
        let reuse = last_val.as_ref().filter(|(step, r)| {
            *step == state.step
                && r.split == *split
                && plan
                    .evaluate
                    .metrics
                    .iter()
                    .all(|m| r.metrics.contains_key(m.name()))
        });
        let r = match reuse {
            Some((_, r)) => r.clone(),
            None => validate(&model, split, &plan.evaluate.metrics)?,
        };
        sink.line(serde_json::json!({
            "step": state.step, "split": split, "final": true, "metrics": r.metrics, "per_task": r.per_task,
        }))?;
        on_event(&Event::Eval {
            step: state.step,
            result: r.clone(),
        });
        final_eval.push(r);
    }
    let valid = model.valid();
    let export = export(&valid.policy, plan, pipe, &run_dir)?;
    let summary = RunSummary {
        run_dir: run_dir.clone(),
        steps: state.step,
        best_step: state.early_stop.best_step,
        stopped_early: state.early_stop.stopped,
        final_eval,
        export,
        seconds: started.elapsed().as_secs_f64(),
        trainable: counts.trainable + value_params,
    };
    write_report(plan, &summary, &metrics_path, &run_dir)?;
    super::folder::write_atomic(
        &run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .expect("json")
            .as_bytes(),
    )
    .map_err(TrainError::io)?;
    on_event(&Event::Done {
        summary: summary.clone(),
    });
    Ok(summary)
}

struct StepOut<B: AutodiffBackend> {
    model: PolicyValue<B>,
    loss: f64,
    grad_norm: f64,
    tokens: usize,
    stats: PpoStats,
}

/// Rolls out, scores and learns from one step's micro-batches.
#[allow(clippy::too_many_arguments)]
fn ppo_step<B: AutodiffBackend>(
    mut model: PolicyValue<B>,
    reference: &LlamaForCausalLM<B::InnerBackend>,
    rm: &RewardModel<B::InnerBackend>,
    batches: &[ft_pipeline::Batch],
    s: &Settings,
    opt: &mut Optim<B::InnerBackend>,
    lr: f64,
    grad_clip: Option<f64>,
    step: u64,
    pipe: &DataPipeline,
    device: &B::Device,
) -> Result<StepOut<B>, TrainError> {
    let tok = pipe.tokenizer();
    let inner = model.valid();
    let mut exps = Vec::with_capacity(batches.len());
    let mut stats = PpoStats::default();
    let (mut rollouts, mut tokens) = (0usize, 0usize);
    for (m, b) in batches.iter().enumerate() {
        let prompts = prompts_of(b);
        let responses = sample_responses(
            &inner.policy,
            &prompts,
            &s.sampling,
            |i| rollout_seed(s.seed, step, m as u64, i as u64),
            device,
        );
        let texts: Vec<String> = prompts
            .iter()
            .zip(&responses)
            .map(|(p, r)| reward_text(tok, p, r))
            .collect();
        let scores = rm.score(&texts, device)?;
        let grid = Grid::new(&prompts, &responses, tok.pad_id);
        let (_, ref_lp) = grid_logprobs(reference, &grid, s.temperature, device);
        rollouts += prompts.len();
        tokens += prompts
            .iter()
            .chain(&responses)
            .map(Vec::len)
            .sum::<usize>();
        stats.reward += scores.iter().sum::<f64>();
        stats.response_len += responses.iter().map(Vec::len).sum::<usize>() as f64;
        exps.push(Experience {
            grid,
            scores,
            ref_lp: to_vec(ref_lp),
            old_lp: Vec::new(),
            old_values: Vec::new(),
            advantages: Vec::new(),
            returns: Vec::new(),
        });
    }
    drop(inner);
    let k = exps.len() as f64;
    let (mut loss_sum, mut norm_sum, mut passes) = (0.0, 0.0, 0.0);
    for epoch in 0..PPO_EPOCHS {
        let mut accum = GradientsAccumulator::<PolicyValue<B>>::new();
        for e in exps.iter_mut() {
            let g = &e.grid;
            let (lp, values) = model.outputs(g, s.temperature, device);
            if epoch == 0 {
                e.old_lp = to_vec(lp.clone().inner());
                e.old_values = to_vec(values.clone().inner());
                let (adv, ret, kl) = advantages(e, s.kl);
                stats.kl += kl;
                e.advantages = adv;
                e.returns = ret;
            }
            let t = |v: &Vec<f32>| g.tensor::<B>(v.clone(), device);
            let (policy, value, frac) = ppo_losses(
                PpoInputs {
                    logp: lp,
                    old_logp: t(&e.old_lp),
                    advantages: t(&e.advantages),
                    values,
                    old_values: t(&e.old_values),
                    returns: t(&e.returns),
                    mask: t(&g.mask),
                    tokens: g.tokens(),
                },
                s.clip,
            );
            let (pv, vv) = (
                scalar(policy.clone().inner()),
                scalar(value.clone().inner()),
            );
            stats.policy_loss += pv;
            stats.value_loss += vv;
            stats.clip_frac += frac;
            loss_sum += pv + VALUE_COEF * vv;
            passes += 1.0;
            let loss = (policy + value.mul_scalar(VALUE_COEF)).div_scalar(k);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accum.accumulate(&model, grads);
        }
        let (m, info) = optim::step(model, opt, accum.grads(), lr, grad_clip);
        model = m;
        norm_sum += info.grad_norm;
        if !info.grad_norm.is_finite() {
            break;
        }
    }
    let r = rollouts.max(1) as f64;
    stats.reward /= r;
    stats.kl /= r;
    stats.response_len /= r;
    stats.policy_loss /= passes;
    stats.value_loss /= passes;
    stats.clip_frac /= passes;
    Ok(StepOut {
        model,
        loss: loss_sum / passes,
        grad_norm: norm_sum / PPO_EPOCHS as f64,
        tokens,
        stats,
    })
}

/// Shaped rewards, GAE and whitening for one micro-batch from its first
/// pass's log-probs and values: flat advantages and returns, and the sum
/// over rows of each response's KL estimate.
fn advantages(e: &Experience, kl: f64) -> (Vec<f32>, Vec<f32>, f64) {
    let g = &e.grid;
    let (mut advs, mut rets) = (Vec::new(), Vec::new());
    let mut kl_sum = 0.0;
    for r in 0..g.rows {
        let lp = g.row(&e.old_lp, r);
        let ref_lp = g.row(&e.ref_lp, r);
        kl_sum += lp
            .iter()
            .zip(ref_lp)
            .map(|(&a, &b)| (a - b) as f64)
            .sum::<f64>();
        let rewards = shaped_rewards(lp, ref_lp, e.scores[r], kl);
        let (a, ret) = gae(&rewards, g.row(&e.old_values, r), GAMMA, LAMBDA);
        advs.push(a);
        rets.push(ret);
    }
    let mut flat: Vec<f32> = advs.iter().flatten().copied().collect();
    whiten(&mut flat);
    let mut at = 0;
    for a in advs.iter_mut() {
        let n = a.len();
        a.copy_from_slice(&flat[at..at + n]);
        at += n;
    }
    (g.scatter(&advs), g.scatter(&rets), kl_sum)
}

/// PPO's evaluation: `reward` (greedy responses to the split's prompts,
/// scored by the reward model) and the Plan's other non-generating
/// metrics.
fn evaluate_ppo<B: Backend>(
    lm: &LlamaForCausalLM<B>,
    rm: &RewardModel<B>,
    pipe: &DataPipeline,
    split: &str,
    metrics: &[Metric],
    s: &Settings,
    device: &B::Device,
) -> Result<EvalResult, TrainError> {
    let others: Vec<Metric> = metrics
        .iter()
        .copied()
        .filter(|m| *m != Metric::Reward)
        .collect();
    let plan = pipe.plan();
    let mut r = if others.is_empty() {
        EvalResult {
            split: split.to_string(),
            ..Default::default()
        }
    } else {
        evaluate(
            lm,
            None,
            pipe,
            split,
            &others,
            plan.evaluate.batch,
            s.sampling.max_new_tokens,
            device,
        )
        .map_err(TrainError::input)?
    };
    if metrics.contains(&Metric::Reward) {
        let (mean, n) = greedy_reward(lm, rm, pipe, split, s, device)?;
        r.metrics.insert(Metric::Reward.name().into(), mean);
        r.examples = n;
    }
    Ok(r)
}

/// Mean reward of greedy responses to a split's prompts, and how many.
fn greedy_reward<B: Backend>(
    lm: &LlamaForCausalLM<B>,
    rm: &RewardModel<B>,
    pipe: &DataPipeline,
    split: &str,
    s: &Settings,
    device: &B::Device,
) -> Result<(f64, usize), TrainError> {
    let tok = pipe.tokenizer();
    let examples = pipe
        .eval_examples(split)
        .map_err(|e| TrainError::input(e.to_string()))?;
    let greedy = SamplingOptions {
        temperature: 0.0,
        ..s.sampling.clone()
    };
    let prompts: Vec<Vec<u32>> = examples.into_iter().map(|e| e.prompt_ids).collect();
    let responses = sample_responses(lm, &prompts, &greedy, |_| 0, device);
    let texts: Vec<String> = prompts
        .iter()
        .zip(&responses)
        .map(|(p, r)| reward_text(tok, p, r))
        .collect();
    let mut total = 0.0;
    for chunk in texts.chunks(16) {
        total += rm.score(chunk, device)?.iter().sum::<f64>();
    }
    Ok((total / texts.len().max(1) as f64, texts.len()))
}
