//! Settings the language accepts that the runtime does not carry out yet.
//! A recipe that checks runs as written, so each of these is refused here,
//! with what to do instead, until the run honours it.

use super::blocks::CBlock;
use super::value::{Val, V};
use super::Recipe;
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::Span;

crate::declare_codes! {
    /// The recipe asks for something the language describes but the run
    /// does not carry out yet.
    ///
    /// A recipe that `ft check` accepts runs exactly as written, so a
    /// setting the runtime would ignore or mishandle is refused instead:
    ///
    /// - `output { keep = N }`: a run keeps its last and its best
    ///   checkpoint;
    /// - `dpo(reference = NAME)` naming a model other than the policy: the
    ///   reference is the policy's own frozen weights;
    /// - `model { adapter = "…" }` on a model other than a PPO reward model:
    ///   training does not start from an adapter yet;
    /// - `head = classify(…)` on a Llama-family model: classifiers are
    ///   BERT-family encoders for now;
    /// - LoRA `bias = all` or `bias = lora_only`: only `none`;
    /// - `modules_to_save` naming anything but the classification head
    ///   (`classifier`, `score`).
    NOT_YET = "FT0510", "not supported yet";
}

pub fn check_pending(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    training(recipe, diags);
    adapters(recipe, diags);
    peft(recipe, diags);
}

fn refuse(b: &CBlock, span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::error(&NOT_YET, span, message)
        .in_file(b.file)
        .label("not supported yet")
        .help(help)
}

fn training(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let Some(t) = recipe.one("train") else {
        return;
    };
    let objective = t.get("objective");
    if let Some(("dpo", _)) = objective.and_then(V::as_call) {
        let reference = objective.and_then(|o| o.arg("reference"));
        if let (Some(Val::ModelRef(id)), Some(policy)) = (reference.map(|v| &v.val), recipe.model())
        {
            let same = recipe
                .named("model", &id.name)
                .is_some_and(|r| same_weights(r, policy));
            if !same {
                diags.push(refuse(
                    t,
                    id.span,
                    format!(
                        "a DPO reference other than the policy's own weights is not supported yet (`{}`)",
                        id.name
                    ),
                    "remove `reference`: the reference is a frozen copy of the policy as it starts",
                ));
            }
        }
    }
}

/// Whether two model blocks load the same files (same source call, same
/// path, no adapter on either).
fn same_weights(a: &CBlock, b: &CBlock) -> bool {
    let source = |m: &CBlock| {
        let (name, _) = m.source.as_ref()?.as_call()?;
        let path = m.source.as_ref()?.arg("path")?.as_str()?.to_string();
        Some((m.file, name.to_string(), path))
    };
    source(a).is_some() && source(a) == source(b) && !a.has("adapter") && !b.has("adapter")
}

/// `adapter` is applied to a PPO reward model only.
fn adapters(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let reward = recipe
        .one("train")
        .and_then(|t| t.get("objective"))
        .filter(|o| o.as_call().is_some_and(|(n, _)| n == "ppo"))
        .and_then(|o| o.arg("reward"))
        .and_then(|v| match &v.val {
            Val::ModelRef(id) => Some(id.name.clone()),
            _ => None,
        });
    for m in recipe.all("model") {
        let Some(e) = m.keys.get("adapter") else {
            continue;
        };
        if reward.is_some() && m.name_str() == reward.as_deref() {
            continue;
        }
        diags.push(refuse(
            m,
            e.key_span,
            "a model's `adapter` is applied to a PPO reward model only, not yet to a trained or evaluated model".into(),
            "remove `adapter`; `ft eval RECIPE --adapter DIR` and `ft generate MODEL --adapter DIR` apply a trained adapter",
        ));
    }
}

fn peft(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let Some(p) = recipe.one("peft") else {
        return;
    };
    if let Some(e) = p.keys.get("bias") {
        if e.value.as_word().is_some_and(|w| w != "none") {
            diags.push(refuse(
                p,
                e.key_span,
                "LoRA biases are not trained yet: only `bias = none`".into(),
                "remove `bias` (the default is `none`)",
            ));
        }
    }
    if let Some(Val::List(items)) = p.get("modules_to_save").map(|v| &v.val) {
        for item in items {
            let Some(name) = item.as_str() else {
                continue;
            };
            if !["classifier", "score"].contains(&name) {
                diags.push(refuse(
                    p,
                    item.span,
                    format!("`{name}` in modules_to_save is not supported yet: only the classification head is trained in full"),
                    "remove it: a `classify` head is trained and saved under every method",
                ));
            }
        }
    }
}
