//! Names: declarations are unique, references resolve to a declaration of
//! the right kind, declared datasets are used.

use super::blocks::CBlock;
use super::value::Val;
use super::Recipe;
use crate::diagnostics::{suggest, Diagnostic};
use crate::syntax::ast::Ident;

crate::declare_codes! {
    /// Two declarations share a name.
    ///
    /// Models, datasets, mixtures, stages and `let` constants are referred
    /// to by name, so names are unique across all of them (including those
    /// of imported files). Both declarations are shown; rename one.
    DUPLICATE_NAME = "FT0104", "duplicate name";

    /// A name is used but never declared.
    ///
    /// `data = reviws` where the dataset is `reviews`; the closest declared
    /// name of the right kind is suggested. Names from imported recipes are
    /// in scope too.
    UNDEFINED_NAME = "FT0113", "undefined name";

    /// A name refers to a declaration of the wrong kind.
    ///
    /// For example `train.data` naming a model, or a mixture listing another
    /// mixture (mixtures combine datasets; nest them by listing the
    /// datasets).
    WRONG_KIND = "FT0114", "reference to the wrong kind";

    /// A dataset is declared but nothing trains or evaluates on it.
    ///
    /// When a recipe declares several datasets, the training data is named
    /// by `train.data`, a mixture or a curriculum stage. An unused dataset is
    /// probably a forgotten entry in a mixture.
    UNUSED_DATASET = "FT0115", "unused dataset";
}

pub fn check_names(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    // Unique names across models, datasets and mixtures.
    let named: Vec<&CBlock> = recipe
        .blocks
        .iter()
        .filter(|b| matches!(b.keyword.name.as_str(), "model" | "dataset" | "mixture"))
        .filter(|b| b.name.is_some())
        .collect();
    for (i, b) in named.iter().enumerate() {
        let n = b.name.as_ref().expect("named");
        if let Some(first) = named[..i].iter().find(|o| o.name_str() == Some(&n.name)) {
            diags.push(
                Diagnostic::error(
                    &DUPLICATE_NAME,
                    n.span,
                    format!("`{}` is declared twice", n.name),
                )
                .in_file(b.file)
                .label(format!("this {} …", b.keyword.name))
                .secondary_in(
                    first.file,
                    first.name.as_ref().expect("named").span,
                    format!("… has the name of this {}", first.keyword.name),
                )
                .help("rename one of them"),
            );
        }
    }
    if let Some(c) = recipe.one("curriculum") {
        for (i, s) in c.stages.iter().enumerate() {
            let Some(n) = &s.name else { continue };
            if let Some(first) = c.stages[..i].iter().find(|o| o.name_str() == Some(&n.name)) {
                diags.push(
                    Diagnostic::error(
                        &DUPLICATE_NAME,
                        n.span,
                        format!("two stages are named `{}`", n.name),
                    )
                    .in_file(s.file)
                    .label("second stage")
                    .secondary(first.name.as_ref().expect("named").span, "first stage"),
                );
            }
        }
    }

    let mut used: Vec<String> = Vec::new();
    // Data references.
    let mut data_refs: Vec<(&CBlock, &Ident)> = Vec::new();
    if let Some(t) = recipe.one("train") {
        if let Some(Val::Data { name, .. }) = t.get("data").map(|v| &v.val) {
            data_refs.push((t, name));
        }
    }
    if let Some(c) = recipe.one("curriculum") {
        for s in &c.stages {
            if let Some(Val::Data { name, .. }) = s.get("data").map(|v| &v.val) {
                data_refs.push((s, name));
            }
        }
    }
    for (owner, id) in data_refs {
        if resolve(recipe, owner, id, &["dataset", "mixture"], diags) {
            used.push(id.name.clone());
            if let Some(m) = recipe.named("mixture", &id.name) {
                used.extend(m.weights.iter().map(|(n, _)| n.name.clone()));
            }
        }
    }
    for m in recipe.all("mixture") {
        for (id, _) in &m.weights {
            if recipe.named("mixture", &id.name).is_some() {
                diags.push(
                    Diagnostic::error(
                        &WRONG_KIND,
                        id.span,
                        format!("`{}` is a mixture; a mixture combines datasets", id.name),
                    )
                    .in_file(m.file)
                    .label("a mixture inside a mixture")
                    .help("list that mixture's datasets here instead"),
                );
            } else {
                resolve(recipe, m, id, &["dataset"], diags);
            }
        }
    }
    // Model references.
    if let Some(t) = recipe.one("train") {
        let mut refs: Vec<&Ident> = Vec::new();
        if let Some(Val::ModelRef(id)) = t.get("model").map(|v| &v.val) {
            refs.push(id);
        }
        if let Some(obj) = t.get("objective") {
            for arg in ["reference", "reward"] {
                if let Some(Val::ModelRef(id)) = obj.arg(arg).map(|v| &v.val) {
                    refs.push(id);
                }
            }
        }
        for id in refs {
            resolve(recipe, t, id, &["model"], diags);
        }
    }

    // Unused datasets, when there is a choice. Without `train.data` and a
    // curriculum, the training data is the only mixture, else the only
    // dataset; with several candidates it is ambiguous (FT0508), and no
    // dataset is singled out as unused.
    let datasets: Vec<&CBlock> = recipe.all("dataset").collect();
    let designated = recipe.one("train").and_then(|t| t.get("data")).is_some()
        || recipe.one("curriculum").is_some();
    let mixtures: Vec<&CBlock> = recipe.all("mixture").collect();
    let implicit = !designated
        && match mixtures.as_slice() {
            [only] => {
                used.extend(only.weights.iter().map(|(n, _)| n.name.clone()));
                false
            }
            _ => true,
        };
    if !implicit
        && !recipe.maybe_broken("train")
        && !recipe.maybe_broken("curriculum")
        && !recipe.maybe_broken("mixture")
    {
        for d in datasets.iter().filter(|d| d.file == 0) {
            let Some(n) = &d.name else { continue };
            if !used.contains(&n.name) {
                diags.push(
                    Diagnostic::warning(&UNUSED_DATASET, n.span, format!("dataset `{}` is never used", n.name))
                        .label("declared here")
                        .help("train on it (`train { data = … }`), add it to a mixture or a curriculum stage, or remove it"),
                );
            }
        }
    }
}

/// Resolves a name to a block of one of `kinds`; reports and returns false
/// when it does not.
fn resolve(
    recipe: &Recipe,
    owner: &CBlock,
    id: &Ident,
    kinds: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    if kinds.iter().any(|k| recipe.named(k, &id.name).is_some()) {
        return true;
    }
    if recipe.broken_name(&id.name) {
        return false; // declared by an item that did not parse; already reported
    }
    let kind_words = kinds.join(" or ");
    if let Some(other) = recipe
        .blocks
        .iter()
        .find(|b| b.name_str() == Some(&id.name) && !kinds.contains(&b.keyword.name.as_str()))
    {
        diags.push(
            Diagnostic::error(
                &WRONG_KIND,
                id.span,
                format!(
                    "`{}` is a {}, not a {kind_words}",
                    id.name, other.keyword.name
                ),
            )
            .in_file(owner.file)
            .label(format!("expected a {kind_words}"))
            .secondary_in(
                other.file,
                other.name.as_ref().expect("named").span,
                format!("`{}` is declared here", id.name),
            ),
        );
        return false;
    }
    let candidates: Vec<&str> = recipe
        .blocks
        .iter()
        .filter(|b| kinds.contains(&b.keyword.name.as_str()))
        .filter_map(|b| b.name_str())
        .collect();
    let d = Diagnostic::error(
        &UNDEFINED_NAME,
        id.span,
        format!("no {kind_words} is named `{}`", id.name),
    )
    .in_file(owner.file)
    .label("undefined");
    let d = suggest(
        d,
        &id.name,
        id.span,
        candidates.iter().copied(),
        &format!("declared {kind_words}s"),
    );
    diags.push(d.in_file(owner.file));
    false
}
