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

use crate::kernels::{AutodiffKernels, Kernels};
use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::GradientsAccumulator;
use burn::tensor::Tensor;
use ft_pipeline::{BatchData, DataPipeline};
use ft_plan::{Metric, Objective, Plan};
use serde::{Deserialize, Serialize};

use super::driver::{Driver, StepRecord};
use super::eval::{evaluate, EvalResult};
use super::optim::{self, Optim};
use super::ppo_math::{adapt_kl, gae, ppo_losses, shaped_rewards, whiten, PpoInputs};
use super::rollout::{
    grid_logprobs, prompts_of, reward_text, rollout_seed, to_vec, Grid, RewardModel,
};
use super::shared::{export, scalar};
use super::{Event, RunOptions, RunSummary, TrainError};
use crate::generate::{generate_batch, SamplingOptions};
use crate::llama::LlamaForCausalLM;
use crate::peft;
use crate::recompute::RecomputeTape;

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
pub struct PolicyValue<B: Kernels> {
    pub policy: LlamaForCausalLM<B>,
    pub value: Linear<B>,
}

impl<B: Kernels> PolicyValue<B> {
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
        tape: Option<&RecomputeTape<B>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (hidden, lp) = grid_logprobs(&self.policy, grid, temperature, device, tape);
        let values = self
            .value
            .forward(hidden.detach())
            .reshape([grid.rows, grid.width]);
        (lp, values)
    }
}

/// One step's statistics (also written to `metrics.jsonl`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The KL coefficient the step's rewards used (moves with `kl_target`).
    pub kl_coef: f64,
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
    /// The KL coefficient before the first step.
    kl: f64,
    /// Adaptive KL: target and horizon.
    kl_target: Option<(f64, f64)>,
    clip: f64,
    sampling: SamplingOptions,
    temperature: f64,
    seed: u64,
    /// Gradient checkpointing of the policy's layers.
    recompute: bool,
}

/// Trains `policy` (the PEFT method already injected) with PPO.
pub(super) fn train<B: AutodiffKernels>(
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
        kl_target,
        kl_horizon,
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
    // The KL reference: the policy as it starts (with its adapter, when
    // training continues from one).
    let reference = super::run::load_lm::<B::InnerBackend>(&plan.model, device)?;
    let counts = peft::parameter_counts(&policy, &plan.method);
    let model = PolicyValue::new(policy, device);
    let value_params = model.value.num_params();
    let tok = pipe.tokenizer();
    let settings = Settings {
        kl: *kl,
        kl_target: kl_target.map(|t| (t, *kl_horizon)),
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
        recompute: plan.train.gradient_checkpointing,
    };

    let release = super::driver::releases_frozen_linear(&plan.method);
    let (mut run, mut model) = Driver::<B>::open(
        model,
        (counts.trainable + value_params, counts.total + value_params),
        &mut |m: &mut PolicyValue<B>| crate::peft::pack_frozen(&mut m.policy, release),
        plan,
        pipe,
        opts,
        device,
        on_event,
    )?;
    let mut validate = |model: &PolicyValue<B>, split: &str, metrics: &[Metric]| {
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
    // Validation during training: the reward and the metrics that need no
    // generation, plus the one early stopping watches.
    let mut wanted: Vec<Metric> = plan
        .evaluate
        .metrics
        .iter()
        .copied()
        .filter(|m| !m.generates() || *m == Metric::Reward)
        .collect();
    if let Some(es) = &plan.train.early_stop {
        if !wanted.contains(&es.metric.metric) {
            wanted.push(es.metric.metric);
        }
    }

    while run.running() {
        run.check_interrupt(&model, on_event)?;
        let mut batches = Vec::new();
        let (mut stage, mut stage_lr) = (String::new(), None);
        while (batches.len() as u64) < run.accumulate {
            let Some(tb) = run.next_batch() else { break };
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
        let lr = run.lr(stage_lr);
        let step = run.state.step;
        let kl_coef = run.state.kl_coef.unwrap_or(settings.kl);
        let out = ppo_step(
            model,
            &reference,
            &rm,
            &batches,
            &settings,
            kl_coef,
            &mut run.opt,
            lr,
            plan.train.clip,
            step,
            pipe,
            device,
        )?;
        model = out.model;
        if !out.loss.is_finite() {
            return Err(run.non_finite("loss"));
        }
        if !out.grad_norm.is_finite() {
            return Err(run.non_finite("gradient norm"));
        }
        let rollouts: usize = batches.iter().map(|b| b.batch).sum();
        if let Some((target, horizon)) = settings.kl_target {
            // Kept in the checkpoint state: a resumed run goes on with it.
            let next = adapt_kl(kl_coef, out.stats.kl, target, horizon, rollouts as f64);
            run.state.kl_coef = Some(next);
        }
        let record = StepRecord {
            loss: out.loss,
            lr,
            grad_norm: out.grad_norm,
            stage,
            tokens: out.tokens,
            examples: rollouts as u64,
            ppo: Some(out.stats),
        };
        run.record_step(record, on_event)?;
        run.after_step(&model, &wanted, &mut validate, on_event)?;
    }
    let export =
        |model: &PolicyValue<B>, dir: &Path| export(&model.valid().policy, plan, pipe, dir);
    run.finish(model, &mut validate, export, on_event)
}

struct StepOut<B: AutodiffKernels> {
    model: PolicyValue<B>,
    loss: f64,
    grad_norm: f64,
    tokens: usize,
    stats: PpoStats,
}

/// Rolls out, scores and learns from one step's micro-batches.
#[allow(clippy::too_many_arguments)]
fn ppo_step<B: AutodiffKernels>(
    mut model: PolicyValue<B>,
    reference: &LlamaForCausalLM<B::InnerBackend>,
    rm: &RewardModel<B::InnerBackend>,
    batches: &[ft_pipeline::Batch],
    s: &Settings,
    kl_coef: f64,
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
        let responses = generate_batch(
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
        let (_, ref_lp) = grid_logprobs(reference, &grid, s.temperature, device, None);
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
            let tape = s.recompute.then(RecomputeTape::new);
            let (lp, values) = model.outputs(g, s.temperature, device, tape.as_ref());
            if epoch == 0 {
                e.old_lp = to_vec(lp.clone().inner());
                e.old_values = to_vec(values.clone().inner());
                let (adv, ret, kl) = advantages(e, kl_coef);
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
            crate::recompute::accumulate(tape, loss.backward(), &model, &mut accum);
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
    stats.kl_coef = kl_coef;
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
fn evaluate_ppo<B: Kernels>(
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
fn greedy_reward<B: Kernels>(
    lm: &LlamaForCausalLM<B>,
    rm: &RewardModel<B>,
    pipe: &DataPipeline,
    split: &str,
    s: &Settings,
    device: &B::Device,
) -> Result<(f64, usize), TrainError> {
    let tok = pipe.tokenizer();
    let examples = pipe.eval_examples(split).map_err(TrainError::from)?;
    let greedy = SamplingOptions {
        temperature: 0.0,
        ..s.sampling.clone()
    };
    let prompts: Vec<Vec<u32>> = examples.into_iter().map(|e| e.prompt_ids).collect();
    let responses = generate_batch(lm, &prompts, &greedy, |_| 0, device);
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
