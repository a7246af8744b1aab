//! The training loop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use ft_pipeline::{BatchData, BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::{Head, Length, Method, Objective, Plan};

use super::checkpoint::{self, Checkpoint, CheckpointState, EarlyStopState};
use super::eval::{evaluate, EvalResult};
use super::folder::{self, Lockfile};
use super::optim::{self, Optim};
use super::report::{svg_chart, Series};
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
                    return Err(TrainError::input(
                        "PPO training is not implemented in this version of the runtime; \
                         use `objective = dpo(…)` for preference tuning",
                    ))
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

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32")[0] as f64
}

struct Sink {
    metrics: std::fs::File,
}

impl Sink {
    fn line(&mut self, v: serde_json::Value) -> Result<(), TrainError> {
        writeln!(self.metrics, "{v}").map_err(|e| TrainError::io(format!("metrics.jsonl: {e}")))
    }
}

/// Keeps the lines of `metrics.jsonl` up to `step` (a resume replays
/// the steps after its checkpoint).
fn truncate_metrics(path: &Path, step: u64) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    folder::write_atomic(path, kept.as_bytes()).map_err(TrainError::io)
}

/// Where this run lives: a new folder, or (resume) the newest one, whose
/// lockfile must match.
fn open_run(
    plan: &Plan,
    opts: &RunOptions,
    lock: &Lockfile,
) -> Result<(PathBuf, bool), TrainError> {
    let dir = folder::recipe_runs(&opts.runs_dir, plan);
    if opts.resume {
        let last = match &opts.run_dir {
            Some(d) => Some(d.clone()).filter(|d| d.join("ft.lock").exists()),
            None => folder::last_run(&dir),
        };
        let Some(run) = last else {
            return Err(TrainError::input(format!(
                "nothing to resume: no run of `{}` under {}",
                plan.name,
                dir.display()
            )));
        };
        if run.join("summary.json").exists() {
            return Err(TrainError::input(format!(
                "nothing to resume: {} finished; start a new run without --resume",
                run.display()
            )));
        }
        let text = std::fs::read_to_string(run.join("ft.lock"))
            .map_err(|e| TrainError::input(format!("{}: {e}", run.join("ft.lock").display())))?;
        let old: Lockfile = serde_json::from_str(&text)
            .map_err(|e| TrainError::input(format!("{}: {e}", run.join("ft.lock").display())))?;
        let diff = folder::differences(&old, lock);
        if !diff.is_empty() {
            return Err(TrainError::new(
                ErrorKind::LockMismatch,
                format!(
                    "cannot resume {}: its inputs changed since it started:\n  - {}\nstart a new run without --resume",
                    run.display(),
                    diff.join("\n  - ")
                ),
            ));
        }
        return Ok((run, true));
    }
    let run = match &opts.run_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| TrainError::io(format!("{}: {e}", d.display())))?;
            d.clone()
        }
        None => folder::new_run(&dir).map_err(TrainError::io)?,
    };
    let w = |name: &str, bytes: &[u8]| {
        folder::write_atomic(&run.join(name), bytes).map_err(TrainError::io)
    };
    w("plan.json", plan.to_json().as_bytes())?;
    w(
        "ft.lock",
        serde_json::to_string_pretty(lock).expect("json").as_bytes(),
    )?;
    match &opts.recipe_text {
        Some(text) => w("recipe.ft", text.as_bytes())?,
        None => {
            if let Ok(src) = std::fs::read(&plan.recipe) {
                w("recipe.ft", &src)?;
            }
        }
    }
    Ok((run, false))
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
    let lock = folder::lockfile(plan).map_err(TrainError::input)?;
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
    let mut sink = Sink {
        metrics: std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| TrainError::io(format!("{}: {e}", metrics_path.display())))?,
    };
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
                let v = r
                    .metrics
                    .get(es.metric.metric.name())
                    .copied()
                    .unwrap_or(f64::NAN);
                let better = match state.early_stop.best {
                    None => v.is_finite(),
                    Some(b) if es.metric.metric.maximize() => v > b + es.min_delta,
                    Some(b) => v < b - es.min_delta,
                };
                if better {
                    state.early_stop.best = Some(v);
                    state.early_stop.best_step = Some(state.step);
                    state.early_stop.bad_evals = 0;
                    save(&model, &opt, &state, "best")?;
                } else {
                    state.early_stop.bad_evals += 1;
                    if state.early_stop.bad_evals >= es.patience {
                        state.early_stop.stopped = true;
                        on_event(&Event::EarlyStop {
                            step: state.step,
                            best_step: state.early_stop.best_step.unwrap_or(0),
                            best: state.early_stop.best.unwrap_or(f64::NAN),
                        });
                    }
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

fn non_finite(what: &str, step: u64, ck_dir: &Path) -> TrainError {
    let last = checkpoint::latest(ck_dir)
        .map(|n| format!("the last good checkpoint is {}", ck_dir.join(n).display()))
        .unwrap_or_else(|| "no checkpoint was written yet".into());
    TrainError::new(
        ErrorKind::NonFinite,
        format!(
            "the {what} became NaN or infinite at step {step}; {last}. \
             Lower the learning rate, set `clip = 1.0` in `train`, or check the data"
        ),
    )
}

fn log_eval(sink: &mut Sink, step: u64, r: &EvalResult) -> Result<(), TrainError> {
    sink.line(serde_json::json!({
        "step": step, "split": r.split, "metrics": r.metrics, "per_task": r.per_task,
    }))
}

/// Writes the adapter in PEFT's format (or ft's own for bottleneck
/// adapters); full fine-tuning writes the whole model in the Hugging Face
/// layout (`merged/`).
fn export<B: Backend, M: Task<B>>(
    model: &M,
    plan: &Plan,
    pipe: &DataPipeline,
    run_dir: &Path,
) -> Result<Option<PathBuf>, TrainError> {
    if let Method::Full { .. } = plan.method {
        let dir = run_dir.join("merged");
        peft::merge::save_merged(model, &dir)
            .map_err(|e| TrainError::io(format!("writing the trained weights: {e}")))?;
        complete_merged(&dir, plan, pipe)?;
        return Ok(Some(dir));
    }
    let dir = run_dir.join("adapter");
    let base = plan.model.path.display().to_string();
    match peft::adapter::save_adapter(model, &plan.method, &base, &dir) {
        Ok(()) => Ok(Some(dir)),
        Err(e) => Err(TrainError::io(format!("exporting the adapter: {e}"))),
    }
}

/// Makes a merged folder usable on its own: the tokenizer beside the
/// weights, and the recipe's label names in `config.json`.
fn complete_merged(dir: &Path, plan: &Plan, pipe: &DataPipeline) -> Result<(), TrainError> {
    let tok_path = dir.join("tokenizer.json");
    let json = pipe
        .tokenizer()
        .tokenizer
        .to_string(true)
        .map_err(|e| TrainError::io(format!("serializing the tokenizer: {e}")))?;
    folder::write_atomic(&tok_path, json.as_bytes()).map_err(TrainError::io)?;
    if let Head::Classify { labels } = &plan.model.head {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| TrainError::io(format!("{}: {e}", cfg_path.display())))?;
        let mut cfg: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TrainError::io(format!("{}: {e}", cfg_path.display())))?;
        let id2label: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), serde_json::Value::from(l.as_str())))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), serde_json::Value::from(i)))
            .collect();
        cfg["id2label"] = id2label.into();
        cfg["label2id"] = label2id.into();
        let mut out = serde_json::to_string_pretty(&cfg).expect("json");
        out.push('\n');
        folder::write_atomic(&cfg_path, out.as_bytes()).map_err(TrainError::io)?;
    }
    Ok(())
}

fn write_report(
    plan: &Plan,
    s: &RunSummary,
    metrics_path: &Path,
    run_dir: &Path,
) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(metrics_path).unwrap_or_default();
    let mut train = Vec::new();
    let mut val: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for l in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        let step = v["step"].as_f64().unwrap_or(0.0);
        if v["split"] == "train" {
            train.push((step, v["loss"].as_f64().unwrap_or(f64::NAN)));
        } else if v["split"] == "val" && v.get("final").is_none() {
            if let Some(m) = v["metrics"].as_object() {
                for (k, x) in m {
                    val.entry(k.clone())
                        .or_default()
                        .push((step, x.as_f64().unwrap_or(f64::NAN)));
                }
            }
        }
    }
    let mut loss = vec![Series {
        name: "train loss".into(),
        points: train,
    }];
    if let Some(v) = val.remove("loss") {
        loss.push(Series {
            name: "val loss".into(),
            points: v,
        });
    }
    let w = |name: &str, body: String| {
        folder::write_atomic(&run_dir.join(name), body.as_bytes()).map_err(TrainError::io)
    };
    w(
        "loss.svg",
        svg_chart(&format!("{}: loss", plan.name), &loss),
    )?;
    let others: Vec<Series> = val
        .into_iter()
        .map(|(name, points)| Series {
            name: format!("val {name}"),
            points,
        })
        .collect();
    if !others.is_empty() {
        w(
            "metrics.svg",
            svg_chart(&format!("{}: validation metrics", plan.name), &others),
        )?;
    }
    let mut md =
        format!(
        "# {} — run {}\n\n- method: {} ({} trainable parameters)\n- steps: {}{}\n- time: {:.1} s\n",
        plan.name,
        run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        plan.method.name(),
        s.trainable,
        s.steps,
        if s.stopped_early {
            format!(" (stopped early; best step {})", s.best_step.unwrap_or(0))
        } else {
            String::new()
        },
        s.seconds
    );
    if let Some(e) = &s.export {
        md.push_str(&format!("- export: `{}`\n", e.display()));
    }
    md.push_str("\n![loss](loss.svg)\n");
    if !others.is_empty() {
        md.push_str("\n![metrics](metrics.svg)\n");
    }
    md.push_str("\n## Final evaluation\n\n| split | metric | value |\n|---|---|---|\n");
    for r in &s.final_eval {
        for (k, v) in &r.metrics {
            md.push_str(&format!("| {} | {k} | {v:.4} |\n", r.split));
        }
        for (task, m) in &r.per_task {
            for (k, v) in m {
                md.push_str(&format!("| {} ({task}) | {k} | {v:.4} |\n", r.split));
            }
        }
    }
    w("report.md", md)
}
