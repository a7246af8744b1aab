//! The `output` block against the fine-tuning method: what can be exported.

use super::Recipe;
use crate::diagnostics::Diagnostic;

crate::declare_codes! {
    /// `output.export` asks for something the method cannot produce.
    ///
    /// Full fine-tuning trains every weight and has no adapter: it exports
    /// `merged` weights. Prefix tuning, prompt tuning and bottleneck
    /// adapters add computation rather than changing weights, so they
    /// cannot be merged into the model: they export their `adapter`. LoRA
    /// (with its variants) and IA3 can export either, or `both`.
    EXPORT_MISMATCH = "FT0511", "export does not fit the method";
}

pub fn check_output(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let Some(o) = recipe.one("output") else {
        return;
    };
    let Some(e) = o.keys.get("export") else {
        return;
    };
    let method = recipe
        .one("peft")
        .and_then(|p| p.method)
        .map_or("full", |m| m.name);
    let export = e.value.as_word().unwrap_or("adapter");
    let problem = match (method, export) {
        ("full", "adapter" | "both") => Some((
            "full fine-tuning has no adapter to export".to_string(),
            "use `export = merged` (what `peft full` writes)",
        )),
        ("prefix" | "prompt" | "adapter", "merged" | "both") => Some((
            format!("`peft {method}` adds computation rather than changing weights: it cannot be merged"),
            "use `export = adapter`",
        )),
        _ => None,
    };
    if let Some((message, help)) = problem {
        diags.push(
            Diagnostic::error(&EXPORT_MISMATCH, e.value.span, message)
                .in_file(o.file)
                .label(format!("`export = {export}`"))
                .help(help),
        );
    }
}
