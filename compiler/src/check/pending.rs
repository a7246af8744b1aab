//! Settings the language accepts that the runtime does not carry out yet.
//! A recipe that checks runs as written, so each of these is refused here,
//! with what to do instead, until the run honours it.

use super::blocks::CBlock;
use super::value::Val;
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
    /// - `model { adapter = "…" }` on a model that is evaluated only (a
    ///   declared model neither trained, nor a DPO reference, nor a PPO
    ///   reward model).
    NOT_YET = "FT0510", "not supported yet";
}

pub fn check_pending(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    adapters(recipe, diags);
}

fn refuse(b: &CBlock, span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::error(&NOT_YET, span, message)
        .in_file(b.file)
        .label("not supported yet")
        .help(help)
}

/// A model's `adapter` is applied where the model is used: the trained
/// model continues from it, a DPO reference and a PPO reward model load
/// it. A model used nowhere else would not apply it.
fn adapters(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let objective = recipe.one("train").and_then(|t| t.get("objective"));
    let named = |arg: &str| match objective.and_then(|o| o.arg(arg)).map(|v| &v.val) {
        Some(Val::ModelRef(id)) => Some(id.name.clone()),
        _ => None,
    };
    let used: Vec<String> = [named("reward"), named("reference")]
        .into_iter()
        .flatten()
        .collect();
    let trained = recipe.model();
    for m in recipe.all("model") {
        let Some(e) = m.keys.get("adapter") else {
            continue;
        };
        let is_trained = trained.is_some_and(|t| std::ptr::eq(t, m));
        if is_trained || m.name_str().is_some_and(|n| used.iter().any(|u| u == n)) {
            continue;
        }
        diags.push(refuse(
            m,
            e.key_span,
            "this model's `adapter` would not be applied: the model is neither trained nor a DPO reference nor a PPO reward model".into(),
            "remove `adapter`; `ft eval RECIPE --adapter DIR` and `ft generate MODEL --adapter DIR` apply a trained adapter",
        ));
    }
}
