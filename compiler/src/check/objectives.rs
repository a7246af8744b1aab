//! The rules of `train.objective`: the objective against the model's head
//! and the data (DPO's pairs and reference, PPO's reward model), and
//! packing, which only supervised language-model training can use.

use super::blocks::CBlock;
use super::rules::{OBJECTIVE_MISMATCH, PACKING_UNFIT};
use super::value::{Val, V};
use super::Recipe;
use crate::diagnostics::Diagnostic;

/// `head`: `None` without a model, `Some(None)` for a causal LM,
/// `Some(Some(labels))` for a classifier.
pub(super) fn check_objective(
    recipe: &Recipe,
    t: &CBlock,
    head: &Option<Option<Vec<String>>>,
    diags: &mut Vec<Diagnostic>,
) {
    // Objective vs head and data.
    if let (Some(obj), Some(h)) = (t.get("objective"), &head) {
        let (name, _) = obj.as_call().unwrap_or(("", None));
        let ok = match name {
            "classify" => h.is_some(),
            "sft" | "dpo" | "ppo" => h.is_none(),
            _ => true,
        };
        if !ok {
            let want = if name == "classify" {
                "a `classify` head"
            } else {
                "a `causal_lm` head"
            };
            diags.push(
                Diagnostic::error(
                    &OBJECTIVE_MISMATCH,
                    obj.span,
                    format!("`{name}` needs {want}"),
                )
                .in_file(t.file)
                .label("does not fit the model's head")
                .help("change the objective or the model's `head`"),
            );
        }
        if name == "dpo" {
            let reference = match obj.arg("reference").map(|v| &v.val) {
                Some(Val::ModelRef(id)) => Some(id),
                _ => None,
            };
            let classifier = reference
                .and_then(|id| recipe.named("model", &id.name))
                .and_then(|m| m.get("head"))
                .and_then(V::as_call)
                .is_some_and(|(n, _)| n == "classify");
            if let (Some(id), true) = (reference, classifier) {
                diags.push(
                    Diagnostic::error(
                        &OBJECTIVE_MISMATCH,
                        id.span,
                        format!("DPO reference `{}` is a classifier", id.name),
                        )
                    .in_file(t.file)
                    .label("the reference scores the pairs' tokens as the policy does")
                    .help("name a causal LM with the policy's tokenizer, or leave `reference` out (the policy as it starts)"),
                );
            }
            for d in recipe.all("dataset") {
                if !(d.has("chosen") && d.has("rejected")) {
                    diags.push(
                        Diagnostic::error(
                            &OBJECTIVE_MISMATCH,
                            d.name.as_ref().map(|n| n.span).unwrap_or(d.keyword.span),
                            "DPO needs preference pairs",
                        )
                        .in_file(d.file)
                        .label("no `chosen` and `rejected` here")
                        .help("add `chosen = \"{good}\"` and `rejected = \"{bad}\"`"),
                    );
                }
            }
        }
        if name == "ppo" {
            let zero_kl = obj.arg("kl").filter(|v| v.as_f64() == Some(0.0));
            if let (Some(kl), Some(_)) = (zero_kl, obj.arg("kl_target")) {
                diags.push(
                    Diagnostic::error(
                        &OBJECTIVE_MISMATCH,
                        kl.span,
                        "an adaptive KL cannot start at 0",
                    )
                    .in_file(t.file)
                    .label("`kl_target` scales this coefficient: 0 stays 0")
                    .help("start from a small coefficient, e.g. `kl = 0.05`, or drop `kl_target`"),
                );
            }
            if let Some(Val::ModelRef(id)) = obj.arg("reward").map(|v| &v.val) {
                if let Some(rm) = recipe.named("model", &id.name) {
                    let is_cls = rm
                        .get("head")
                        .and_then(|h| h.as_call())
                        .is_some_and(|(n, _)| n == "classify");
                    if !is_cls {
                        diags.push(
                            Diagnostic::error(
                                &OBJECTIVE_MISMATCH,
                                id.span,
                                format!("reward model `{}` has no `classify` head", id.name),
                            )
                            .in_file(t.file)
                            .label("a reward model scores text")
                            .help("declare it with `head = classify(labels = [\"reward\"])`"),
                        );
                    } else if !rm.has("adapter") {
                        diags.push(
                            Diagnostic::error(
                                &OBJECTIVE_MISMATCH,
                                id.span,
                                format!("reward model `{}` has no trained classifier", id.name),
                            )
                            .in_file(t.file)
                            .label("its classifier head would be random")
                            .help("train it first (e.g. `ft run recipes/sentiment-minilm.ft`) and add `adapter = \"…/adapter\"` to the model"),
                        );
                    }
                }
            }
        }
    }
    if t.get("packing").and_then(V::as_bool) == Some(true) {
        let objective = t.get("objective").and_then(V::as_call).map(|(n, _)| n);
        let unfit = match (objective, &head) {
            (_, Some(Some(_))) | (Some("classify"), _) => Some("a classification head"),
            (Some("dpo"), _) => Some("DPO's preference pairs"),
            (Some("ppo"), _) => Some("PPO's generated rows"),
            _ => None,
        };
        if let Some(what) = unfit {
            diags.push(
                Diagnostic::error(
                    &PACKING_UNFIT,
                    t.keys["packing"].key_span,
                    format!("packing does not apply to {what}"),
                )
                .in_file(t.file)
                .label("packing is for supervised language-model training")
                .help("remove `packing = true`"),
            );
        }
    }
}
