//! Settings a run would not read. A recipe that checks runs as written, so
//! a key that the trained head, the objective or the training data makes
//! meaningless is refused rather than silently dropped.

use super::blocks::CBlock;
use super::rules::{HEAD_MISMATCH, LENGTH};
use super::value::Val;
use super::Recipe;
use crate::diagnostics::Diagnostic;

crate::declare_codes! {
    /// A curriculum that is not trained on.
    ///
    /// `train { data = … }` names a dataset or mixture, so the recipe's
    /// `curriculum` (its stages, order and pacing) is never used. Train on
    /// it (remove `data`, or name it) or remove it.
    CURRICULUM_UNUSED = "FT0512", "curriculum not trained on";

    /// A setting that has nothing to act on in this recipe.
    ///
    /// A warmup as long as the run, `eval_every` without a validation
    /// split, `evaluate.max_new_tokens` without a metric that generates, a
    /// sweep's `seed` beside the seed of `strategy = random(…)` (which
    /// wins): the run would go on as if the setting were not there. Remove
    /// it, or add what it acts on.
    NO_EFFECT = "FT0513", "setting has no effect";
}

pub fn check_unused(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    dataset_keys(recipe, diags);
    curriculum(recipe, diags);
    no_effect(recipe, diags);
}

fn no_effect(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let warn = |b: &CBlock, key: &str, message: &str, help: &str| {
        Diagnostic::warning(&NO_EFFECT, b.keys[key].key_span, message.to_string())
            .in_file(b.file)
            .label("has no effect")
            .help(help.to_string())
    };
    if let Some(t) = recipe.one("train") {
        let val = recipe
            .all("dataset")
            .any(|d| super::rules::declared_splits(d).iter().any(|s| s == "val"));
        // A warmup of more steps than the run has is cut to the run.
        let steps = t.get("steps").and_then(|v| v.as_i64());
        let warmup = t.get("schedule").and_then(|s| s.arg("warmup"));
        if let (Some(steps), Some(w)) = (steps, warmup) {
            let n = match w.val {
                Val::Fraction(_) => None,
                _ => w.as_i64(),
            };
            if let Some(n) = n {
                if n >= steps && recipe.one("curriculum").is_none() {
                    diags.push(
                        Diagnostic::warning(
                            &NO_EFFECT,
                            w.span,
                            format!(
                                "a warmup of {n} steps is not shorter than the run ({steps} steps)"
                            ),
                        )
                        .in_file(t.file)
                        .label("the learning rate would never reach its peak")
                        .help("use fewer warmup steps, or a share: `warmup = 10%`"),
                    );
                }
            }
        }
        if t.keys.contains_key("eval_every") && !val && !recipe.maybe_broken("dataset") {
            diags.push(warn(
                t,
                "eval_every",
                "no dataset has a `val` split to evaluate on",
                "add `val = 10%` to a dataset's `split`, or remove `eval_every`",
            ));
        }
    }
    if let Some(ev) = recipe.one("evaluate") {
        let generates = match ev.get("metrics").map(|v| &v.val) {
            Some(Val::List(ms)) => ms.iter().any(|m| {
                m.as_word()
                    .is_some_and(|w| ["exact_match", "rouge_l", "reward"].contains(&w))
            }),
            _ => false,
        };
        if ev.keys.contains_key("max_new_tokens") && !generates {
            diags.push(warn(
                ev,
                "max_new_tokens",
                "no metric here generates text",
                "add `exact_match` or `rouge_l` to `metrics`, or remove `max_new_tokens`",
            ));
        }
    }
    if let Some(sw) = recipe.one("sweep") {
        let strategy_seed = sw.get("strategy").and_then(|s| s.arg("seed")).is_some();
        if sw.keys.contains_key("seed") && strategy_seed {
            diags.push(warn(
                sw,
                "seed",
                "`strategy = random(seed = …)` sets the seed of the search",
                "keep one of the two seeds",
            ));
        }
    }
}

fn objective(recipe: &Recipe) -> Option<String> {
    recipe
        .one("train")?
        .get("objective")?
        .as_call()
        .map(|(n, _)| n.to_string())
}

fn refuse(d: &CBlock, key: &str, message: String, label: &str, help: &str) -> Diagnostic {
    Diagnostic::error(&HEAD_MISMATCH, d.keys[key].key_span, message)
        .in_file(d.file)
        .label(label)
        .help(help)
}

/// Keys of a dataset that the head or objective gives no use: a classifier
/// reads `input` and `label`; a language model `prompt` + `completion` or
/// `messages` (DPO: `chosen` and `rejected` after the prompt).
fn dataset_keys(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let Some(head) = super::rules::head(recipe) else {
        return;
    };
    let classify = head.is_some();
    let objective = objective(recipe);
    let dpo = objective.as_deref() == Some("dpo");
    for d in recipe.all("dataset") {
        if classify {
            for key in ["prompt", "messages", "chosen", "rejected", "shots"] {
                if d.keys.contains_key(key) {
                    diags.push(refuse(
                        d,
                        key,
                        format!("`{key}` is not read by a `classify` head"),
                        "a classifier reads `input` and `label`",
                        "put the text to classify in `input` (a template can add words around the row's fields)",
                    ));
                }
            }
            continue;
        }
        if d.keys.contains_key("input") {
            diags.push(refuse(
                d,
                "input",
                "`input` is not read by a language-model head".into(),
                "`input` is the text a `classify` head reads",
                "use `prompt` (and `completion`), or declare `head = classify(labels = […])`",
            ));
        }
        if d.keys.contains_key("messages") {
            for key in ["prompt", "completion"] {
                if d.keys.contains_key(key) {
                    diags.push(refuse(
                        d,
                        key,
                        format!("`{key}` beside `messages` would not be read"),
                        "the examples come from `messages`",
                        "keep either `messages` or `prompt`/`completion`",
                    ));
                }
            }
        }
        if !dpo {
            for key in ["chosen", "rejected"] {
                if d.keys.contains_key(key) {
                    diags.push(refuse(
                        d,
                        key,
                        format!("`{key}` is read only by the `dpo` objective"),
                        "not a preference-pair run",
                        "set `objective = dpo(…)` in `train`, or remove it",
                    ));
                }
            }
        }
    }
}

/// A curriculum sets the length with its stages; and one the `train` block
/// does not train on is never used.
fn curriculum(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let (Some(c), Some(t)) = (recipe.one("curriculum"), recipe.one("train")) else {
        return;
    };
    let named = match t.get("data").map(|v| &v.val) {
        Some(Val::Data { name, .. }) => Some(name),
        _ => None,
    };
    if let (None, Some(sweep)) = (named, recipe.one("sweep")) {
        if let Some(e) = sweep.keys.get("budget") {
            diags.push(
                Diagnostic::error(
                    &LENGTH,
                    e.key_span,
                    "a sweep budget with a curriculum would not be read",
                )
                .in_file(sweep.file)
                .label("each trial runs the curriculum's stages")
                .help("remove `budget`, or sweep the stages' own lengths"),
            );
        }
    }
    match named {
        Some(name) if c.name_str() != Some(name.name.as_str()) => {
            diags.push(
                Diagnostic::warning(
                    &CURRICULUM_UNUSED,
                    c.name.as_ref().map_or(c.keyword.span, |n| n.span),
                    "this curriculum is not trained on",
                )
                .in_file(c.file)
                .label("unused")
                .secondary_in(t.file, name.span, format!("`train` trains on `{}`", name.name))
                .help("remove `data` from `train` to train on the curriculum, or remove the curriculum"),
            );
        }
        _ => {
            for key in ["steps", "epochs"] {
                if let Some(e) = t.keys.get(key) {
                    diags.push(
                        Diagnostic::error(
                            &LENGTH,
                            e.key_span,
                            format!("`{key}` in `train` with a curriculum would not be read"),
                        )
                        .in_file(t.file)
                        .label("the curriculum's stages set the length")
                        .help("give each stage its `steps` or `epochs`, and remove this"),
                    );
                }
            }
        }
    }
}
