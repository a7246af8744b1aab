//! The training loop.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use ft_pipeline::{BatchData, BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::{Head, Length, Method, Objective, Plan};

use super::checkpoint::{self, Checkpoint, CheckpointState, EarlyStopState};
use super::eval::{evaluate, EvalResult};
use super::folder;
use super::optim::{self, Optim};
use super::session::{
    early_stop_event, export, folder_lock, log_eval, non_finite, observe_early_stop, open_run,
    scalar, truncate_metrics, write_report, Observed, Sink,
};
use super::task::{classify_loss, lm_loss, sequence_logprobs, Logits, Task};
use super::{schedule, ErrorKind, Event, RunOptions, RunSummary, TrainError};
use crate::peft::{self, ApplyOptions, ForwardCtx};

/// Runs a Plan on the CPU (or, built with `--features cuda`, on the GPU
/// the Plan asks for).
pub fn run(
    plan: &Plan,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError> {
    match plan.train.device {
        ft_plan::Device::Cpu => {
            type B = burn::backend::Autodiff<crate::CpuBackend>;
            run_on::<B>(plan, opts, &Default::default(), on_event)
        }
        #[cfg(feature = "cuda")]
        ft_plan::Device::Cuda => {
            type B = burn::backend::Autodiff<burn::backend::Cuda>;
            run_on::<B>(plan, opts, &Default::default(), on_event)
        }
        #[cfg(not(feature = "cuda"))]
        ft_plan::Device::Cuda => Err(TrainError::input(
            "the recipe asks for `backend = cuda`, but this ft was built without CUDA: \
             rebuild with `cargo build --release --features cuda`",
        )),
    }
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

pub fn run_on<B: AutodiffBackend>(
    plan: &Plan,
    opts: &RunOptions,
    device: &B::Device,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunSummary, TrainError> {
    let tok = TextTokenizer::load(&plan.model).map_err(|e| TrainError::input(e.to_string()))?;
    let prompt_init_ids = match &plan.method {
        Method::Prompt {
            init: ft_plan::method::PromptInit::Text(t),
            ..
        } => Some(
            tok.encode(t, true)
                .map_err(|e| TrainError::input(e.to_string()))?,
        ),
        _ => None,
    };
    let pipe = DataPipeline::build(
        &sampler_plan(plan),
        tok,
        &BuildOptions {
            cache_dir: opts.cache_dir.clone(),
        },
    )
    .map_err(|e| TrainError::input(e.to_string()))?;
    let apply_opts = ApplyOptions {
        seed: plan.seed,
        prompt_init_ids,
    };
    let model_err = |e: ft_formats::FormatError| TrainError::input(e.to_string());
    let peft_err = |e: peft::PeftError| TrainError::input(e.to_string());
    match &plan.model.head {
        Head::Classify { labels } => {
            let (bert, _) = crate::load_bert::<B>(&plan.model.path, device).map_err(model_err)?;
            let model = peft::new_classifier(bert, labels.len(), 0.02, plan.seed);
            let model = peft::apply(model, &plan.method, &apply_opts).map_err(peft_err)?;
            train_loop::<B, _>(model, None, plan, &pipe, opts, device, on_event)
        }
        Head::CausalLm => {
            let (lm, _) =
                crate::load_causal_lm::<B>(&plan.model.path, device).map_err(model_err)?;
            let reference = match plan.train.objective {
                Objective::Dpo { .. } => Some(
                    crate::load_causal_lm::<B::InnerBackend>(&plan.model.path, device)
                        .map_err(model_err)?
                        .0,
                ),
                Objective::Ppo { .. } => {
                    let model = peft::apply(lm, &plan.method, &apply_opts).map_err(peft_err)?;
                    return super::ppo::train::<B>(model, plan, &pipe, opts, device, on_event);
                }
                _ => None,
            };
            let model = peft::apply(lm, &plan.method, &apply_opts).map_err(peft_err)?;
            train_loop::<B, _>(model, reference, plan, &pipe, opts, device, on_event)
        }
    }
}

/// The loss of one micro-batch, as a scalar tensor, and the tokens it saw.
fn batch_loss<B: AutodiffBackend, M>(
    model: &M,
    reference: Option<&M::InnerModule>,
    data: &BatchData,
    ctx: &ForwardCtx,
    objective: &Objective,
) -> Result<(Tensor<B, 1>, usize), TrainError>
where
    M: Task<B> + AutodiffModule<B>,
    M::InnerModule: Task<B::InnerBackend>,
{
    let tokens = |b: &ft_pipeline::Batch| b.attention_mask.iter().filter(|&&m| m != 0).count();
    match data {
        BatchData::Single(b) => match model.logits(b, ctx) {
            Logits::Classes(l) => Ok((classify_loss(l, &b.class_labels), tokens(b))),
            Logits::Tokens(l) => Ok((lm_loss(l, &b.labels).0, tokens(b))),
        },
        BatchData::Pair(p) => {
            let Objective::Dpo { beta } = objective else {
                return Err(TrainError::input(
                    "preference pairs need `objective = dpo(…)`",
                ));
            };
            let lp = |l: Logits<B>, labels: &[i64]| match l {
                Logits::Tokens(l) => Ok(sequence_logprobs(l, labels)),
                Logits::Classes(_) => Err(TrainError::input("DPO needs a causal LM")),
            };
            let pc = lp(model.logits(&p.chosen, ctx), &p.chosen.labels)?;
            let pr = lp(model.logits(&p.rejected, ctx), &p.rejected.labels)?;
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
fn train_loop<B: AutodiffBackend, M>(
    mut model: M,
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
    let started = Instant::now();
    let t = &plan.train;
    let k = t.accumulate.max(1) as u64;
    let lock = folder_lock(plan)?;
    let (run_dir, resuming) = open_run(plan, opts, &lock)?;
    let ck_dir = run_dir.join("checkpoints");
    let metrics_path = run_dir.join("metrics.jsonl");

    let counts = peft::parameter_counts(&model, &plan.method);
    let mut sampler = pipe
        .train_sampler()
        .map_err(|e| TrainError::input(e.to_string()))?;
    let micro_total = sampler.total_steps();
    let total = micro_total.div_ceil(k);
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
        trainable: counts.trainable,
        total_params: counts.total,
        train_examples,
        resumed_at,
    });

    let save = |model: &M,
                opt: &Optim<B::InnerBackend>,
                state: &CheckpointState,
                name: &str|
     -> Result<PathBuf, TrainError> {
        let ck = Checkpoint {
            state: state.clone(),
            params: checkpoint::trainable_values(model),
            optimizer: opt.export(),
        };
        let p = checkpoint::save(&ck_dir, name, &ck).map_err(TrainError::io)?;
        Ok(p)
    };

    // The last validation result and the step it was taken at: a final
    // evaluation of the same weights on `val` reuses it.
    let mut last_val: Option<(u64, EvalResult)> = None;
    let mut window = (Instant::now(), 0usize, state.step);
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
        let mut accum = GradientsAccumulator::<M>::new();
        let mut loss_sum = 0.0;
        let mut micro = 0u64;
        let mut stage = String::new();
        let mut stage_lr = None;
        while micro < k {
            let Some(tb) = sampler.next() else { break };
            stage = tb.stage_name.clone();
            stage_lr = tb.lr;
            let ctx = ForwardCtx::train(plan.seed, state.step).with_micro(micro);
            let (loss, tokens) =
                batch_loss::<B, M>(&model, reference.as_ref(), &tb.data, &ctx, &t.objective)?;
            let loss = if k > 1 {
                loss.div_scalar(k as f64)
            } else {
                loss
            };
            let value = scalar(loss.clone().inner());
            if !value.is_finite() {
                return Err(non_finite("loss", state.step + 1, &ck_dir));
            }
            loss_sum += value;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accum.accumulate(&model, grads);
            state.examples_seen += tb.data.main().tasks.len() as u64;
            state.tokens_seen += tokens as u64;
            window.1 += tokens;
            micro += 1;
        }
        if micro == 0 {
            break;
        }
        let loss_value = if micro < k {
            loss_sum * k as f64 / micro as f64
        } else {
            loss_sum
        };
        let lr = schedule::lr_at(
            &t.schedule,
            stage_lr.unwrap_or(t.optimizer.lr()),
            state.step,
            total,
        );
        let (m, info) = optim::step(model, &mut opt, accum.grads(), lr, t.clip);
        model = m;
        if !info.grad_norm.is_finite() {
            return Err(non_finite("gradient norm", state.step + 1, &ck_dir));
        }
        state.step += 1;
        state.optimizer_updates = opt.updates;
        state.sampler = sampler.state().clone();
        let elapsed = window.0.elapsed().as_secs_f64().max(1e-9);
        let tokens_per_s = window.1 as f64 / elapsed;
        let per_step = elapsed / (state.step - window.2).max(1) as f64;
        sink.line(serde_json::json!({
            "step": state.step, "split": "train", "loss": loss_value, "lr": lr,
            "grad_norm": info.grad_norm, "stage": stage, "tokens_per_s": tokens_per_s,
        }))?;
        on_event(&Event::Step {
            step: state.step,
            total,
            stage,
            loss: loss_value,
            lr,
            grad_norm: info.grad_norm,
            tokens_per_s,
            eta_s: per_step * (total - state.step) as f64,
            ppo: None,
        });
        if state.step - window.2 >= 20 {
            window = (Instant::now(), 0, state.step);
        }

        let at_eval = state.step % eval_every == 0 || state.step == total;
        if at_eval && has_val {
            let mut wanted = plan.evaluate.metrics.clone();
            if let Some(es) = &t.early_stop {
                if !wanted.contains(&es.metric.metric) {
                    wanted.push(es.metric.metric);
                }
            }
            wanted.retain(|m| {
                !m.generates() || t.early_stop.as_ref().is_some_and(|e| e.metric.metric == *m)
            });
            let valid = model.valid();
            let r = evaluate(
                &valid,
                reference.as_ref(),
                pipe,
                "val",
                &wanted,
                plan.evaluate.batch,
                plan.evaluate.max_new_tokens,
                device,
            )
            .map_err(TrainError::input)?;
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
    // The final state; with early stopping, the best weights are restored.
    save(&model, &opt, &state, "last")?;
    checkpoint::set_latest(&ck_dir, "last").map_err(TrainError::io)?;
    if t.early_stop.is_some() && state.early_stop.best_step.is_some_and(|b| b != state.step) {
        let best = checkpoint::load(&ck_dir.join("best")).map_err(TrainError::input)?;
        let (m, _) = checkpoint::restore(model, &best.params);
        model = m;
        last_val = None;
    }

    let valid = model.valid();
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
            None => evaluate(
                &valid,
                reference.as_ref(),
                pipe,
                split,
                &plan.evaluate.metrics,
                plan.evaluate.batch,
                plan.evaluate.max_new_tokens,
                device,
            )
            .map_err(TrainError::input)?,
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
    let export = export(&valid, plan, pipe, &run_dir)?;
    let summary = RunSummary {
        run_dir: run_dir.clone(),
        steps: state.step,
        best_step: state.early_stop.best_step,
        stopped_early: state.early_stop.stopped,
        final_eval,
        export,
        seconds: started.elapsed().as_secs_f64(),
        trainable: counts.trainable,
    };
    write_report(plan, &summary, &metrics_path, &run_dir)?;
    folder::write_atomic(
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
