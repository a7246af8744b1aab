//! Stage 4b, sweep: a recipe with a `sweep` block becomes one recipe per
//! trial. Each trial is the user's recipe text with the swept values written
//! in (see `edit`), a training budget, and evaluation on the validation
//! split only; each is checked in full, world checks included, and lowered
//! to its own Plan before the first trial starts. An invalid combination is
//! a diagnostic at the sweep's axes that names the trial's values.

pub mod edit;
pub mod space;

use std::path::Path;

use ft_plan::Plan;
use serde::Serialize;

use crate::check::blocks::CBlock;
use crate::check::schema;
use crate::check::sweep::{resolve, AxisTarget};
use crate::check::value::Val;
use crate::diagnostics::Diagnostic;
use crate::driver::{self, Analysis, Options};
use crate::syntax::ast::{self, ExprKind, Item, Span};
use edit::Change;
use space::Domain;

crate::declare_codes! {
    /// A trial of a sweep does not check.
    ///
    /// Every trial of a sweep is the recipe with the trial's values written
    /// in, and each is checked in full (the world checks against the model
    /// and data included) before the first trial starts, so a combination
    /// that cannot run (a LoRA rank larger than a layer, a batch the data
    /// cannot fill) is found at once rather than hours into the sweep. The
    /// message names the trial's values and what is wrong with them; remove
    /// the value from the axis or fix the setting it conflicts with.
    INVALID_TRIAL = "FT0701", "a sweep trial does not check";
}

/// A sweep expanded into trials.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// The swept settings, as written (`train.optimizer.lr`).
    pub axes: Vec<String>,
    pub trials: Vec<Trial>,
    pub pick: Pick,
    /// Trials run at once.
    pub jobs: usize,
    /// `grid`, or `random(n = 8, seed = 0)`.
    pub strategy: String,
    /// What each trial trains for (`steps = 60`), if the sweep sets it.
    pub budget: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// From 1.
    pub index: usize,
    /// The trial's value on each axis, as recipe text.
    pub values: Vec<String>,
    /// The recipe this trial runs: values, budget, evaluation on val.
    pub text: String,
    /// The recipe with only the values written in (what `<recipe>.best.ft`
    /// holds if this trial wins).
    pub resolved: String,
    #[serde(skip)]
    spans: Vec<Span>,
}

impl Trial {
    /// `train.optimizer.lr = 1e-4, peft.rank = 8`.
    pub fn describe(&self, axes: &[String]) -> String {
        axes.iter()
            .zip(&self.values)
            .map(|(a, v)| format!("{a} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How the winner is chosen: a validation metric, lowest or highest.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pick {
    /// `accuracy`, `loss`, …
    pub metric: String,
    pub maximize: bool,
}

impl Pick {
    /// Whether `a` beats `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        if self.maximize {
            a > b
        } else {
            a < b
        }
    }
    pub fn describe(&self) -> String {
        let f = if self.maximize { "max" } else { "min" };
        format!("{f}(val.{})", self.metric)
    }
}

/// Expands the sweep of a checked recipe (no errors) into trials; `None`
/// when the recipe has no sweep.
pub fn expand(a: &Analysis) -> Option<Sweep> {
    let sw = a.recipe.one("sweep")?;
    let sweep_text = &a.sources.get(sw.file).text;
    let pick = pick_of(sw);
    let mut domains = Vec::new();
    for ax in &sw.axes {
        domains.push(domain_of(a, ax, sweep_text));
    }
    let (choices, strategy) = match sw.get("strategy").map(|v| &v.val) {
        Some(Val::Call { name, args, .. }) if name == "random" => {
            let int = |k: &str| args.get(k).and_then(|e| e.value.as_i64());
            let n = int("n").unwrap_or(1).max(1) as usize;
            let seed = int("seed")
                .or_else(|| sw.get("seed").and_then(|v| v.as_i64()))
                .unwrap_or(0) as u64;
            (
                space::random(&domains, n, seed),
                format!("random(n = {n}, seed = {seed})"),
            )
        }
        _ => (space::grid(&domains), "grid".to_string()),
    };
    let budget = sw.get("budget").and_then(|v| match &v.val {
        Val::Record(r) => r
            .get("steps")
            .map(|e| ("steps", e))
            .or_else(|| r.get("epochs").map(|e| ("epochs", e)))
            .map(|(k, e)| (k, text_at(sweep_text, e.value.span).to_string())),
        _ => None,
    });
    let axes: Vec<String> = sw
        .axes
        .iter()
        .map(|ax| {
            ax.path
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    let trials = choices
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let values: Vec<String> = c.iter().map(|(t, _)| t.clone()).collect();
            let settings: Vec<(&ast::Axis, &str)> = sw
                .axes
                .iter()
                .zip(values.iter().map(String::as_str))
                .collect();
            Trial {
                index: i + 1,
                text: trial_text(a, sw, &settings, budget.as_ref(), Some(&pick)),
                resolved: trial_text(a, sw, &settings, None, None),
                values,
                spans: c.iter().map(|(_, s)| *s).collect(),
            }
        })
        .collect();
    Some(Sweep {
        axes,
        trials,
        pick,
        jobs: sw.get("jobs").and_then(|v| v.as_i64()).unwrap_or(1).max(1) as usize,
        strategy,
        budget: budget.map(|(k, v)| format!("{k} = {v}")),
    })
}

/// Checks and lowers every trial: their Plans, or a diagnostic per invalid
/// trial (at the sweep's values for it, naming them and what is wrong).
pub fn check_trials(
    a: &Analysis,
    sweep: &Sweep,
    opts: Options,
) -> Result<Vec<Plan>, Vec<Diagnostic>> {
    let path = a.sources.get(0).path.clone();
    let sw_file = a.recipe.one("sweep").map_or(0, |b| b.file);
    let mut plans = Vec::new();
    let mut diags = Vec::new();
    for t in &sweep.trials {
        let ta = driver::analyze_one(&path, &t.text, opts);
        let problems: Vec<String> = if ta.has_errors() {
            ta.diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{}: {}", d.code.id, d.message))
                .collect()
        } else {
            match ta.plan() {
                Ok(p) => {
                    plans.push(p);
                    continue;
                }
                Err(e) => vec![e.message],
            }
        };
        diags.push(invalid_trial(t, sweep, sw_file, problems));
    }
    if diags.is_empty() {
        Ok(plans)
    } else {
        Err(diags)
    }
}

fn invalid_trial(t: &Trial, sweep: &Sweep, file: usize, problems: Vec<String>) -> Diagnostic {
    let mut d = Diagnostic::error(
        &INVALID_TRIAL,
        t.spans.first().copied().unwrap_or_default(),
        format!(
            "trial {} ({}) does not check",
            t.index,
            t.describe(&sweep.axes)
        ),
    )
    .in_file(file)
    .label(format!("{} = {}", sweep.axes[0], t.values[0]));
    for (i, s) in t.spans.iter().enumerate().skip(1) {
        d = d.secondary(*s, format!("{} = {}", sweep.axes[i], t.values[i]));
    }
    for p in problems {
        d = d.note(p);
    }
    d.help("remove the value from its axis, or change the setting it conflicts with")
}

/// The pick, already checked to be a validation metric (FT0408 otherwise).
fn pick_of(sw: &CBlock) -> Pick {
    let (name, metric) = match sw.get("pick").map(|v| &v.val) {
        Some(Val::Call { name, args, .. }) => match args.get("metric").map(|e| &e.value.val) {
            Some(Val::Metric { metric, .. }) => (name.as_str(), metric.name.clone()),
            _ => (name.as_str(), "loss".to_string()),
        },
        _ => ("min", "loss".to_string()),
    };
    Pick {
        metric,
        maximize: name == "max",
    }
}

fn text_at(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

fn domain_of(a: &Analysis, ax: &ast::Axis, text: &str) -> Domain {
    let int = matches!(
        resolve(&a.recipe, &ax.path),
        Ok(AxisTarget::Setting(schema::Ty::Int { .. }))
    );
    match &ax.values.kind {
        ExprKind::List(items) => Domain::List(
            items
                .iter()
                .map(|e| (text_at(text, e.span).to_string(), e.span))
                .collect(),
        ),
        ExprKind::Call { callee, args } => {
            let num = |k: &str, i: usize| {
                args.iter()
                    .find(|x| x.name.as_ref().is_some_and(|n| n.name == k))
                    .or_else(|| args.get(i).filter(|x| x.name.is_none()))
                    .and_then(|x| number(&x.value))
                    .unwrap_or(0.0)
            };
            Domain::Range {
                low: num("low", 0),
                high: num("high", 1),
                log: callee.name == "loguniform",
                int,
                span: ax.values.span,
            }
        }
        _ => unreachable!("axes are checked to be lists or ranges"),
    }
}

fn number(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Number { value, percent, .. } => {
            Some(if *percent { value / 100.0 } else { *value })
        }
        ExprKind::Unary {
            op: ast::UnOp::Neg,
            expr,
        } => number(expr).map(|x| -x),
        ExprKind::Paren(e) => number(e),
        _ => None,
    }
}

/// The recipe for one trial: the root file with the sweep block removed and
/// the swept blocks rewritten (a block that lives in an imported file is
/// copied into the recipe, where it overrides the imported one).
fn trial_text(
    a: &Analysis,
    sw: &CBlock,
    settings: &[(&ast::Axis, &str)],
    budget: Option<&(&str, String)>,
    pick: Option<&Pick>,
) -> String {
    // Changes per block keyword, in the order first touched.
    let mut changes: Vec<(&str, Vec<Change>)> = Vec::new();
    let mut method: Option<&str> = None;
    let mut push = |kw: &'static str, c: Change| match changes.iter_mut().find(|(k, _)| *k == kw) {
        Some((_, v)) => v.push(c),
        None => changes.push((kw, vec![c])),
    };
    for (ax, value) in settings {
        let kw: &'static str = match ax.path[0].name.as_str() {
            "train" => "train",
            "peft" => "peft",
            _ => "evaluate",
        };
        if ax.path.len() == 1 {
            method = Some(*value);
            continue;
        }
        let rest = ax.path[1..].iter().map(|i| i.name.clone()).collect();
        push(kw, Change::Set(rest, value.to_string()));
    }
    if let Some((key, n)) = budget {
        let other = if *key == "steps" { "epochs" } else { "steps" };
        push("train", Change::Remove(other.into()));
        push("train", Change::Set(vec![key.to_string()], n.clone()));
    }
    if let Some(p) = pick {
        push("evaluate", Change::Set(vec!["on".into()], "val".into()));
        if let Some(m) = metrics_with(a, &p.metric) {
            push("evaluate", Change::Set(vec!["metrics".into()], m));
        }
    }

    let root = &a.sources.get(0).text;
    let mut replace: Vec<(Span, String)> = Vec::new();
    let mut appended = String::new();
    if sw.file == 0 {
        replace.push((whole_lines(root, sw.span), String::new()));
    }
    if let Some(m) = method {
        let extra = changes
            .iter()
            .find(|(k, _)| *k == "peft")
            .map_or(&[][..], |(_, c)| c.as_slice());
        let (span, text) = method_block(a, m, extra);
        match span {
            Some(s) => replace.push((s, text)),
            None => appended.push_str(&format!("\n{text}\n")),
        }
    }
    for (kw, ch) in &changes {
        if *kw == "peft" && method.is_some() {
            // A method axis rewrote the block, these keys included.
            continue;
        }
        let (block, src) = ast_block(a, kw);
        let keys = block_keys(a, kw);
        match block {
            Some((file, b)) => {
                let text = edit::edit_block(src, b, keys, ch);
                if file == 0 {
                    replace.push((b.span, text));
                } else {
                    appended.push_str(&format!(
                        "\n# From {}, for this trial:\n{text}\n",
                        relative_name(a, file)
                    ));
                }
            }
            None => {
                let stub = format!("{kw} {{\n}}");
                let (f, _) = crate::syntax::parse(&stub);
                if let Some(Item::Block(b)) = f.items.first() {
                    appended.push_str(&format!("\n{}\n", edit::edit_block(&stub, b, keys, ch)));
                }
            }
        }
    }
    let mut out = edit::splice_file(root, replace);
    if !appended.is_empty() {
        out.truncate(out.trim_end().len());
        out.push('\n');
        out.push_str(&appended);
    }
    out
}

/// An imported file's path relative to the recipe's folder, as an import
/// line would name it.
fn relative_name(a: &Analysis, file: usize) -> String {
    let root = a.sources.get(0).dir();
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let p = &a.sources.get(file).path;
    p.strip_prefix(&root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| a.sources.get(file).name.clone())
}

/// `[accuracy, f1]` with the pick's metric added, if `evaluate` lacks it.
fn metrics_with(a: &Analysis, metric: &str) -> Option<String> {
    let written: Vec<String> = match a.recipe.one("evaluate").and_then(|e| e.get("metrics")) {
        Some(v) => match &v.val {
            Val::List(items) => items
                .iter()
                .filter_map(|i| match &i.val {
                    Val::Word(w) => Some(w.clone()),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        },
        None => vec!["loss".into()],
    };
    if written.iter().any(|m| m == metric) {
        return None;
    }
    let mut all = written;
    all.push(metric.to_string());
    Some(format!("[{}]", all.join(", ")))
}

/// The AST of the effective block `kw` and the text of its file.
fn ast_block<'a>(a: &'a Analysis, kw: &str) -> (Option<(usize, &'a ast::Block)>, &'a str) {
    let Some(cb) = a.recipe.one(kw) else {
        return (None, "");
    };
    let found = a.files[cb.file].items.iter().find_map(|i| match i {
        Item::Block(b) if b.span == cb.span => Some(b),
        _ => None,
    });
    (found.map(|b| (cb.file, b)), &a.sources.get(cb.file).text)
}

fn block_keys(a: &Analysis, kw: &str) -> &'static [schema::Key] {
    if kw == "peft" {
        return a
            .recipe
            .one("peft")
            .and_then(|p| p.method)
            .map_or(&[][..], |m| m.keys);
    }
    schema::block(kw).map_or(&[][..], |b| b.keys)
}

/// The `peft` block for a method axis value (`lora(rank = 4)`): the same
/// method keeps its block with the given keys set; another method gets a
/// block of its own with just those keys. Returns the span it replaces in
/// the recipe (`None`: append it).
fn method_block(a: &Analysis, value: &str, extra: &[Change]) -> (Option<Span>, String) {
    let (callee, mut args) = parse_method(value);
    // `peft.rank` swept beside `peft` itself: the rank goes into the method.
    for c in extra {
        if let Change::Set(path, v) = c {
            match args.iter_mut().find(|(k, _)| *k == path[0]) {
                Some(slot) => slot.1 = v.clone(),
                None => args.push((path[0].clone(), v.clone())),
            }
        }
    }
    let (block, src) = ast_block(a, "peft");
    let same = a
        .recipe
        .one("peft")
        .and_then(|p| p.method)
        .is_some_and(|m| m.name == callee);
    let changes: Vec<Change> = args
        .iter()
        .map(|(k, v)| Change::Set(vec![k.clone()], v.clone()))
        .collect();
    let text = match (block, same) {
        (Some((_, b)), true) => edit::edit_block(
            src,
            b,
            schema::method(&callee).map_or(&[][..], |m| m.keys),
            &changes,
        ),
        _ => {
            let mut t = format!("peft {callee} {{\n");
            for (k, v) in &args {
                t.push_str(&format!("  {k} = {v}\n"));
            }
            t.push('}');
            t
        }
    };
    match block {
        Some((0, b)) => (Some(b.span), text),
        _ => (None, text),
    }
}

/// `lora(rank = 4, alpha = 8)` → `("lora", [("rank", "4"), ("alpha", "8")])`.
fn parse_method(value: &str) -> (String, Vec<(String, String)>) {
    let src = format!("peft {{ m = {value} }}");
    let (f, _) = crate::syntax::parse(&src);
    let expr = f.items.iter().find_map(|i| match i {
        Item::Block(b) => b.body.as_ref().and_then(|body| {
            body.entries.iter().find_map(|e| match e {
                ast::Entry::Assign(a) => Some(a.value.clone()),
                _ => None,
            })
        }),
        _ => None,
    });
    match expr.map(|e| e.kind) {
        Some(ExprKind::Call { callee, args }) => (
            callee.name,
            args.into_iter()
                .filter_map(|x| {
                    x.name
                        .map(|n| (n.name, text_at(&src, x.value.span).to_string()))
                })
                .collect(),
        ),
        Some(ExprKind::Path(p)) if p.len() == 1 => (p[0].name.clone(), vec![]),
        _ => (value.to_string(), vec![]),
    }
}

/// A span widened to whole lines when nothing else is on them, so removing
/// a block leaves no blank indentation behind.
fn whole_lines(text: &str, span: Span) -> Span {
    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[span.end..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i + 1);
    if text[start..span.start].trim().is_empty() && text[span.end..end].trim().is_empty() {
        Span { start, end }
    } else {
        span
    }
}

/// The path `<recipe>.best.ft` beside the recipe.
pub fn best_path(recipe: &Path) -> std::path::PathBuf {
    let stem = recipe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recipe".into());
    recipe.with_file_name(format!("{stem}.best.ft"))
}
