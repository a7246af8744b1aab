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
}

pub fn check_unused(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    dataset_keys(recipe, diags);
    curriculum(recipe, diags);
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
            for key in ["prompt", "messages", "chosen", "rejected"] {
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
