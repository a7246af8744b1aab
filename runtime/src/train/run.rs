//! The training loop.

use crate::backend::{dispatch, OnBackend};
use crate::kernels::{AutodiffKernels, Kernels};
use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::GradientsAccumulator;
use burn::tensor::Tensor;
use ft_pipeline::{BatchData, BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::{Head, Length, Method, Metric, ModelPlan, Objective, Plan, Precision};

use super::driver::{Driver, StepRecord};
use super::eval::evaluate;
use super::optim;
use super::shared::{export, scalar};
use super::task::{classify_loss, lm_loss, sequence_logprobs, Logits, Task};
use super::{Event, RunOptions, RunSummary, TrainError};
use crate::classifier::Classifier;
use crate::llama::LlamaForCausalLM;
use crate::peft::{self, ApplyOptions, ForwardCtx};
use crate::recompute::RecomputeTape;

/// Runs a Plan on the CPU (or, built with `--features cuda`, on the GPU
/// the Plan asks for), on `train.threads` threads when the Plan sets them.
pub fn run(
    plan: &Plan,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError> {
    struct Train<'a> {
        plan: &'a Plan,
        opts: &'a RunOptions,
        on_event: &'a mut dyn FnMut(&Event),
    }
    impl OnBackend for Train<'_> {
        type Output = Result<RunSummary, TrainError>;
        fn run<B: AutodiffKernels>(self, device: &B::Device) -> Self::Output {
            run_on::<B>(self.plan, self.opts, device, self.on_event)
        }
    }
    let work = Train {
        plan,
        opts,
        on_event,
    };
    dispatch(plan.train.device, work).map_err(TrainError::from)?
}

/// The data plan the sampler runs: with gradient accumulation, `steps`
/// count optimizer steps, so the sampler draws `accumulate` micro-batches
/// for each.
fn sampler_plan(plan: &Plan) -> Plan {
    let mut p = plan.clone();
    let k = p.train.accumulate.max(1) as u64;
    if let Length::Steps(n) = p.train.length {
        p.train.length = Length::Steps(n * k);
    }
    if let ft_plan::TrainData::Curriculum { curriculum, .. } = &mut p.data {
        for s in &mut curriculum.stages {
            if let Length::Steps(n) = s.length {
                s.length = Length::Steps(n * k);
            }
        }
    }
    p
}

/// Runs a Plan on backend `B` (on `train.threads` threads when the Plan
/// sets them).
pub fn run_on<B: AutodiffKernels>(
    plan: &Plan,
    opts: &RunOptions,
    device: &B::Device,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError> {
    match plan.train.threads {
        Some(n) => super::threads::with_threads(n, on_event, |on_event| {
            run_here::<B>(plan, opts, device, on_event)
        })?,
        None => run_here::<B>(plan, opts, device, on_event),
    }
}

fn run_here<B: AutodiffKernels>(
    plan: &Plan,
    opts: &RunOptions,
    device: &B::Device,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError> {
    let tok = TextTokenizer::load(&plan.model).map_err(TrainError::from)?;
    let prompt_init_ids = match &plan.method {
        Method::Prompt {
            init: ft_plan::method::PromptInit::Text(t),
            ..
        } => Some(tok.encode(t, true).map_err(TrainError::from)?),
        _ => None,
    };
    let pipe = DataPipeline::build(
        &sampler_plan(plan),
        tok,
        &BuildOptions {
            cache_dir: opts.cache_dir.clone(),
        },
    )
    .map_err(TrainError::from)?;
    for d in &pipe.report().datasets {
        if !d.leaks.is_empty() {
            on_event(&Event::Leakage {
                dataset: d.name.clone(),
                leaks: d.leaks.clone(),
            });
        }
    }
    let apply_opts = ApplyOptions {
        seed: plan.seed,
        prompt_init_ids,
    };
    let model_err = TrainError::from;
    match &plan.model.head {
        Head::Classify { labels } => {
            let model = Classifier::<B>::load(&plan.model.path, labels.len(), plan.seed, device)
                .map_err(model_err)?;
            match model {
                Classifier::Bert(m) => {
                    let m = start(m, plan, &apply_opts)?;
                    train_loop::<B, _>(m, None, plan, &pipe, opts, device, on_event)
                }
                Classifier::Llama(m) => {
                    let m = start(m, plan, &apply_opts)?;
                    train_loop::<B, _>(m, None, plan, &pipe, opts, device, on_event)
                }
            }
        }
        Head::CausalLm => {
            let reference = match &plan.train.objective {
                Objective::Dpo { reference, .. } => {
                    // The named model, else the policy as it starts (its
                    // adapter included).
                    let named = match reference {
                        Some(name) => Some(
                            plan.other_models
                                .iter()
                                .find(|m| m.name == *name)
                                .ok_or_else(|| {
                                    TrainError::input(format!(
                                        "DPO reference `{name}` is not declared"
                                    ))
                                })?,
                        ),
                        None => None,
                    };
                    Some(load_lm::<B::InnerBackend>(
                        named.unwrap_or(&plan.model),
                        device,
                    )?)
                }
                _ => None,
            };
            let (lm, _) =
                crate::load_causal_lm::<B>(&plan.model.path, device).map_err(model_err)?;
            let model = start(lm, plan, &apply_opts)?;
            if let Objective::Ppo { .. } = plan.train.objective {
                return super::ppo::train::<B>(model, plan, &pipe, opts, device, on_event);
            }
            train_loop::<B, _>(model, reference, plan, &pipe, opts, device, on_event)
        }
    }
}

/// A causal LM as the Plan names it: its weights, with its adapter (if it
/// has one) applied.
pub(super) fn load_lm<B: Kernels>(
    m: &ModelPlan,
    device: &B::Device,
) -> Result<LlamaForCausalLM<B>, TrainError> {
    let (lm, _) = crate::load_causal_lm::<B>(&m.path, device).map_err(TrainError::from)?;
    match &m.adapter {
        Some(dir) => peft::adapter::load_adapter(lm, dir)
            .map(|(lm, _)| lm)
            .map_err(TrainError::from),
        None => Ok(lm),
    }
}

/// The trained model: the recipe's method applied to `model`, or, when the
/// Plan's model names an adapter, that adapter loaded to continue from (it
/// must be the method the recipe declares).
fn start<B: Kernels, M: peft::Adaptable<B>>(
    model: M,
    plan: &Plan,
    apply_opts: &ApplyOptions,
) -> Result<M, TrainError> {
    let Some(dir) = &plan.model.adapter else {
        return peft::apply(model, &plan.method, apply_opts).map_err(TrainError::from);
    };
    let (model, found) = peft::adapter::load_adapter(model, dir).map_err(TrainError::from)?;
    if let Some(difference) = super::continued::difference(&found, &plan.method) {
        return Err(TrainError::input(format!(
            "the adapter {} is not the recipe's `peft` method ({difference}): declare the method it was trained with",
            dir.display()
        )));
    }
    Ok(model)
}

/// The loss of one micro-batch, as a scalar tensor, and the tokens it saw.
fn batch_loss<B: AutodiffKernels, M>(
    model: &M,
    reference: Option<&M::InnerModule>,
    data: &BatchData,
    ctx: &ForwardCtx,
    objective: &Objective,
    tape: Option<&RecomputeTape<B>>,
) -> Result<(Tensor<B, 1>, usize), TrainError>
where
    M: Task<B> + AutodiffModule<B>,
    M::InnerModule: Task<B::InnerBackend>,
{
    let tokens = |b: &ft_pipeline::Batch| b.attention_mask.iter().filter(|&&m| m != 0).count();
    match data {
        BatchData::Single(b) => match model.logits_taped(b, ctx, tape) {
            Logits::Classes(l) => Ok((classify_loss(l, &b.class_labels), tokens(b))),
            Logits::Tokens(l) => Ok((lm_loss(l, &b.labels).0, tokens(b))),
        },
        BatchData::Pair(p) => {
            let Objective::Dpo { beta, .. } = objective else {
                return Err(TrainError::input(
                    "preference pairs need `objective = dpo(…)`",
                ));
            };
            let lp = |l: Logits<B>, labels: &[i64]| match l {
                Logits::Tokens(l) => Ok(sequence_logprobs(l, labels)),
                Logits::Classes(_) => Err(TrainError::input("DPO needs a causal LM")),
            };
            let pc = lp(model.logits_taped(&p.chosen, ctx, tape), &p.chosen.labels)?;
            let pr = lp(
                model.logits_taped(&p.rejected, ctx, tape),
                &p.rejected.labels,
            )?;
            let Some(r) = reference else {
                return Err(TrainError::input("DPO needs its reference model"));
            };
            let eval = ForwardCtx::EVAL;
            let rlp = |b: &ft_pipeline::Batch| -> Result<Tensor<B, 1>, TrainError> {
                match r.logits(b, &eval) {
                    Logits::Tokens(l) => Ok(Tensor::from_inner(sequence_logprobs(l, &b.labels))),
                    Logits::Classes(_) => Err(TrainError::input("DPO needs a causal LM")),
                }
            };
            let (rc, rr) = (rlp(&p.chosen)?, rlp(&p.rejected)?);
            let (loss, _) = super::task::dpo_loss(pc, pr, rc, rr, *beta);
            Ok((loss, tokens(&p.chosen) + tokens(&p.rejected)))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn train_loop<B: AutodiffKernels, M>(
    model: M,
    reference: Option<M::InnerModule>,
    plan: &Plan,
    pipe: &DataPipeline,
    opts: &RunOptions,
    device: &B::Device,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError>
where
    M: Task<B> + AutodiffModule<B>,
    M::InnerModule: Task<B::InnerBackend>,
{
    let t = &plan.train;
    let counts = peft::parameter_counts(&model, &plan.method);
    // DPO's reference model only ever runs forward: every frozen product
    // in bf16, its linear weights' f32 copies handed back. The run reports
    // both models' packed weights.
    let mut reference = reference;
    let reference_packed = match (t.precision, reference.as_mut()) {
        (Precision::Bf16, Some(r)) => peft::pack_frozen(r, true),
        _ => Default::default(),
    };
    let release = super::driver::releases_frozen_linear(&plan.method);
    let (mut run, mut model) = Driver::<B>::open(
        model,
        (counts.trainable, counts.total),
        &mut |m: &mut M| {
            let mut f = peft::pack_frozen(m, release);
            f.weights += reference_packed.weights;
            f.packed_bytes += reference_packed.packed_bytes;
            f.released_bytes += reference_packed.released_bytes;
            f
        },
        plan,
        pipe,
        opts,
        device,
        on_event,
    )?;
    // Validation during training skips generating metrics (slow), except
    // the one early stopping watches.
    let mut wanted = plan.evaluate.metrics.clone();
    if let Some(es) = &t.early_stop {
        if !wanted.contains(&es.metric.metric) {
            wanted.push(es.metric.metric);
        }
    }
    wanted
        .retain(|m| !m.generates() || t.early_stop.as_ref().is_some_and(|e| e.metric.metric == *m));
    let mut validate = |model: &M, split: &str, metrics: &[Metric]| {
        evaluate(
            &model.valid(),
            reference.as_ref(),
            pipe,
            split,
            metrics,
            plan.evaluate.batch,
            plan.evaluate.max_new_tokens,
            device,
        )
        .map_err(TrainError::input)
    };

    let k = run.accumulate;
    while run.running() {
        run.check_interrupt(&model, on_event)?;
        let mut accum = GradientsAccumulator::<M>::new();
        let (mut loss_sum, mut micro, mut tokens, mut examples) = (0.0, 0u64, 0usize, 0u64);
        let (mut stage, mut stage_lr) = (String::new(), None);
        while micro < k {
            let Some(tb) = run.next_batch() else { break };
            stage = tb.stage_name.clone();
            stage_lr = tb.lr;
            let ctx = ForwardCtx::train(plan.seed, run.state.step).with_micro(micro);
            let tape = t.gradient_checkpointing.then(RecomputeTape::new);
            let (loss, n) = batch_loss::<B, M>(
                &model,
                reference.as_ref(),
                &tb.data,
                &ctx,
                &t.objective,
                tape.as_ref(),
            )?;
            let loss = if k > 1 {
                loss.div_scalar(k as f64)
            } else {
                loss
            };
            let value = scalar(loss.clone().inner());
            if !value.is_finite() {
                return Err(run.non_finite("loss"));
            }
            loss_sum += value;
            crate::recompute::accumulate(tape, loss.backward(), &model, &mut accum);
            examples += tb.data.main().tasks.len() as u64;
            tokens += n;
            micro += 1;
        }
        if micro == 0 {
            break;
        }
        // A short last step (the data ran out) is averaged over the
        // micro-batches it had.
        let loss = if micro < k {
            loss_sum * k as f64 / micro as f64
        } else {
            loss_sum
        };
        let lr = run.lr(stage_lr);
        let (m, info) = optim::step(model, &mut run.opt, accum.grads(), lr, t.clip);
        model = m;
        if !info.grad_norm.is_finite() {
            return Err(run.non_finite("gradient norm"));
        }
        let record = StepRecord {
            loss,
            lr,
            grad_norm: info.grad_norm,
            stage,
            tokens,
            examples,
            ppo: None,
        };
        run.record_step(record, on_event)?;
        run.after_step(&model, &wanted, &mut validate, on_event)?;
    }
    let export = |model: &M, dir: &Path| export(&model.valid(), plan, pipe, dir);
    run.finish(model, &mut validate, export, on_event)
}
