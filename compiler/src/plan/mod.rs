//! Stage 4, plan: a checked recipe and what the world checks learnt become
//! the [`ft_plan::Plan`] the runtime consumes.
//!
//! Lowering runs only on an analysis without errors, so every value here
//! has already been type-checked; what is left is filling in defaults (read
//! from the same schema that documents them, so the docs and the Plan
//! cannot disagree), resolving paths against the recipe's folder, and
//! resolving PEFT targets against the real model's modules. A lowering
//! failure is therefore a recipe the runtime cannot run yet (say, PPO), and
//! it is reported as such with the span it concerns.

pub mod figures;

mod data;
pub mod memory;
pub mod method;
pub mod summary;
mod train;
mod util;

use std::path::PathBuf;

use ft_plan::{Export, Head, Method, ModelFormat, ModelPlan, OutputPlan, Plan, PLAN_VERSION};

use crate::check::blocks::CBlock;
use crate::check::value::Val;
use crate::driver::Analysis;
use crate::syntax::ast::Span;
use crate::world::resolve;

/// Why a checked recipe could not be lowered.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerError {
    pub message: String,
    pub file: usize,
    pub span: Option<Span>,
}

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) fn fail<T>(message: impl Into<String>, block: Option<&CBlock>) -> Result<T, LowerError> {
    Err(LowerError {
        message: message.into(),
        file: block.map_or(0, |b| b.file),
        span: block.map(|b| b.span),
    })
}

/// Lowers an analysis without errors to its Plan.
pub fn lower(a: &Analysis) -> Result<Plan, LowerError> {
    if a.has_errors() {
        return fail("the recipe has errors; run `ft check` for them", None);
    }
    let recipe = &a.recipe;
    let path = a.sources.get(0).path.clone();
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recipe".into());
    let seed = recipe
        .one("train")
        .and_then(|t| t.get("seed"))
        .and_then(|v| v.as_i64())
        .map_or(0, |s| s as u64);

    let Some(model_block) = recipe.model() else {
        return fail("the recipe declares no model to train", None);
    };
    let model = model_plan(a, model_block)?;
    let other_models = recipe
        .all("model")
        .filter(|m| !std::ptr::eq(*m, model_block))
        .map(|m| model_plan(a, m))
        .collect::<Result<Vec<_>, _>>()?;
    let inventory = a
        .world
        .as_ref()
        .and_then(|w| {
            w.models
                .iter()
                .find(|m| util::clean_path(&m.path) == model.path)
        })
        .and_then(|m| m.inventory.as_ref());

    let datasets = data::datasets(a, seed)?;
    let train_data = data::train_data(recipe, seed)?;
    let method = method::lower(recipe.one("peft"), &model, inventory)?;
    let train = train::train(recipe, &model)?;
    let evaluate = train::evaluate(recipe, &train);
    let output = output(a, &method);
    Ok(Plan {
        version: PLAN_VERSION,
        recipe: path,
        name,
        seed,
        model,
        other_models,
        datasets,
        data: train_data,
        method,
        train,
        evaluate,
        output,
    })
}

fn output(a: &Analysis, method: &Method) -> OutputPlan {
    let mut out = OutputPlan::default();
    if let Method::Full { .. } = method {
        out.export = Export::Merged;
    }
    let Some(o) = a.recipe.one("output") else {
        return out;
    };
    out.dir = o
        .get("dir")
        .and_then(|v| v.as_str())
        .map(|p| util::clean_path(&resolve(&a.sources, o.file, p)));
    out.export = match o.get("export").and_then(|v| v.as_word()) {
        Some("merged") => Export::Merged,
        Some("both") => Export::Both,
        Some(_) => Export::Adapter,
        None => out.export,
    };
    out.save_every = o
        .get("save_every")
        .and_then(|v| v.as_i64())
        .map(|n| n as u64);
    out.report = o.get("report").and_then(|v| v.as_bool()).unwrap_or(true);
    if let Some(keep) = o.get("keep").and_then(|v| v.as_i64()) {
        out.keep = keep.max(1) as u32;
    }
    out
}

fn model_plan(a: &Analysis, m: &CBlock) -> Result<ModelPlan, LowerError> {
    let Some(src) = &m.source else {
        return fail("the model has no source", Some(m));
    };
    let Some((call, _)) = src.as_call() else {
        return fail("the model's source is not `hf(…)` or `gguf(…)`", Some(m));
    };
    let format = match call {
        "hf" => ModelFormat::Hf,
        "gguf" => ModelFormat::Gguf,
        other => return fail(format!("unknown model source `{other}`"), Some(m)),
    };
    let Some(path) = src.arg("path").and_then(|p| p.as_str()) else {
        return fail("the model's source has no path", Some(m));
    };
    let head = match m.get("head").and_then(|h| h.as_call()) {
        Some(("classify", _)) => {
            let labels = match m.get("head").and_then(|h| h.arg("labels")).map(|v| &v.val) {
                Some(Val::List(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            Head::Classify { labels }
        }
        _ => Head::CausalLm,
    };
    let resolve_opt = |key: &str| -> Option<PathBuf> {
        m.get(key)
            .and_then(|v| v.as_str())
            .map(|p| util::clean_path(&resolve(&a.sources, m.file, p)))
    };
    Ok(ModelPlan {
        name: m.name_str().unwrap_or("model").to_string(),
        path: util::clean_path(&resolve(&a.sources, m.file, path)),
        format,
        head,
        chat_template: m.get("chat_template").and_then(|v| match &v.val {
            Val::Str(s) => Some(s.clone()),
            Val::Template(t) => Some(util::template_text(t)),
            _ => None,
        }),
        tokenizer: resolve_opt("tokenizer"),
        adapter: resolve_opt("adapter"),
    })
}
