//! The figures of a recipe: its checked `peft` block and its model's
//! inventory turned into the pure inputs of [`crate::figures`].

use ft_compiler::check::blocks::CBlock;
use ft_compiler::check::value::Val;
use ft_compiler::driver::Analysis;
use ft_compiler::plan::method;

use crate::docs::Document;
use crate::figures::{self, Figures, Method, Target};

/// The figures of the recipe's PEFT method on its model, from the newest
/// analysis that knows both; with the method's name.
pub fn plan(doc: &Document) -> Option<(Figures, String, &Analysis)> {
    doc.analyses().find_map(|a| {
        let peft = a.recipe.one("peft")?;
        let method = method_of(peft)?;
        let inv = crate::docs::model_of(a, None)?;
        let labels = a.recipe.model().and_then(head_labels);
        let f = figures::compute(&figures::shape_of(inv), &method, labels);
        Some((f, peft.method?.name.to_string(), a))
    })
}

fn targets_of(b: &CBlock, key: &str) -> Option<Vec<Target>> {
    method::patterns(b.get(key)).map(|ps| ps.iter().map(figures::target_of).collect())
}

fn layers_of(b: &CBlock) -> Option<Vec<usize>> {
    method::layers_of(b)
}

fn int_of(b: &CBlock, key: &str, default: u64) -> u64 {
    b.get(key)
        .and_then(|v| v.as_i64())
        .and_then(|i| u64::try_from(i).ok())
        .unwrap_or(default)
}

/// The method of a checked `peft` block (defaults as in the schema).
pub fn method_of(b: &CBlock) -> Option<Method> {
    let m = b.method?;
    Some(match m.name {
        "full" => Method::Full {
            freeze: match b.get("freeze").map(|v| &v.val) {
                Some(Val::List(items)) => items
                    .iter()
                    .filter_map(|v| match &v.val {
                        Val::Str(s) | Val::Word(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
        },
        "lora" => Method::Lora {
            rank: int_of(b, "rank", 8),
            rank_for: match b.get("rank_for").map(|v| &v.val) {
                Some(Val::ModuleMap(m)) => m
                    .iter()
                    .filter(|(_, (r, _))| *r >= 1.0)
                    .map(|(k, (r, _))| (k.clone(), *r as u64))
                    .collect(),
                _ => Vec::new(),
            },
            targets: targets_of(b, "targets"),
            layers: layers_of(b),
            dora: b.get("dora").and_then(|v| v.as_bool()).unwrap_or(false),
        },
        "ia3" => Method::Ia3 {
            targets: targets_of(b, "targets"),
            feedforward: targets_of(b, "feedforward"),
            layers: layers_of(b),
        },
        "prompt" => Method::Prompt {
            virtual_tokens: int_of(b, "virtual_tokens", 0),
        },
        "prefix" => Method::Prefix {
            virtual_tokens: int_of(b, "virtual_tokens", 0),
            projection: b
                .get("projection")
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
                .then(|| int_of(b, "projection_hidden", 0)),
        },
        "adapter" => Method::Adapter {
            size: int_of(b, "size", 64),
            houlsby: b.get("style").and_then(|v| v.as_word()) == Some("houlsby"),
            layers: layers_of(b),
        },
        _ => return None,
    })
}

/// The label count of a model block's `classify(labels = […])` head.
pub fn head_labels(model: &CBlock) -> Option<u64> {
    let head = model.get("head")?;
    let (name, _) = head.as_call()?;
    if name != "classify" {
        return None;
    }
    match &head.arg("labels")?.val {
        Val::List(items) => Some(items.len() as u64),
        _ => None,
    }
}
