//! Hover: the schema's documentation for keywords, keys, calls, values and
//! metrics; the declaration of a named dataset, mixture or model; and on
//! `peft` and `train`, the plan figures computed on the real model.

use ft_compiler::check::schema::{self, Ty};
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind};

use crate::complete::{block_doc, call_doc, declared, key_doc};
use crate::context::{self, Place};
use crate::docs::Document;
use crate::figures;
use crate::slot::{self, Scope, Slot};

pub fn hover(doc: &Document, offset: usize) -> Option<Hover> {
    let text = doc.text();
    let (ws, we) = context::word_at(text, offset);
    if ws == we {
        return None;
    }
    let word = &text[ws..we];
    let ctx = context::at(text, we);
    let value = match &ctx.place {
        Place::Comment | Place::Str { placeholder: None } => None,
        Place::Str {
            placeholder: Some(_),
        } => field(doc, &ctx, word),
        Place::Code => code(doc, &ctx, word).or_else(|| declaration(doc, word)),
    }?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: Some(doc.index.range(ft_compiler::syntax::ast::Span::new(ws, we))),
    })
}

fn field(doc: &Document, ctx: &context::Context, word: &str) -> Option<String> {
    let dataset = ctx.block().and_then(|(_, n)| n)?;
    let fields = doc.fields(dataset);
    let known = fields.iter().any(|f| f == word);
    Some(if known {
        format!("**{word}**: a field of `{dataset}`'s data")
    } else {
        format!(
            "**{word}**: not a field of `{dataset}`'s data (fields: {})",
            fields.join(", ")
        )
    })
}

fn code(doc: &Document, ctx: &context::Context, word: &str) -> Option<String> {
    match slot::resolve(ctx) {
        Slot::Item => {
            let b = schema::block(word)?;
            let mut s = block_doc(b);
            if matches!(word, "peft" | "train") {
                if let Some(f) = plan_markdown(doc) {
                    s = format!("{f}\n\n---\n\n{s}");
                }
            }
            Some(s)
        }
        Slot::Method => {
            let m = schema::method(word)?;
            let mut s = format!("**peft {}**\n\n{}", m.name, m.doc);
            if let Some(f) = plan_markdown(doc) {
                s = format!("{f}\n\n---\n\n{s}");
            }
            Some(s)
        }
        Slot::Source(calls) => schema::find_call(calls, word).map(call_doc),
        Slot::Key { scope, .. } => {
            if let Some(k) = scope.key(word) {
                return Some(key_doc(k));
            }
            match scope {
                Scope::Block(def, _) => def
                    .sub_blocks
                    .iter()
                    .find(|b| b.keyword == word)
                    .map(block_doc),
                Scope::Split if schema::SPLIT_NAMES.contains(&word) => Some(format!(
                    "**{word}**: the share of rows in the `{word}` split"
                )),
                Scope::Split => slot::split_keys()
                    .iter()
                    .find(|k| k.name == word)
                    .map(key_doc),
                _ => None,
            }
        }
        Slot::Value(ty, key) => value(doc, ty, key, word),
        Slot::Metric => schema::METRICS
            .iter()
            .find(|(m, _)| *m == word)
            .map(|(m, d)| format!("**{m}**: {d}")),
        Slot::Field | Slot::Nothing => None,
    }
}

fn value(
    doc: &Document,
    ty: &'static Ty,
    key: Option<&'static schema::Key>,
    word: &str,
) -> Option<String> {
    match ty {
        Ty::Enum(words) if words.contains(&word) => {
            let metric = schema::METRICS
                .iter()
                .find(|(m, _)| *m == word && key.is_some_and(|k| k.name == "metrics"))
                .map(|(_, d)| format!(": {d}"))
                .unwrap_or_default();
            Some(match key {
                Some(k) => format!("`{word}`{metric}\n\nA value of **{}**: {}", k.name, k.doc),
                None => format!("`{word}`"),
            })
        }
        Ty::Calls(calls) => schema::find_call(calls, word).map(call_doc),
        Ty::Metric if schema::SPLIT_NAMES.contains(&word) => {
            Some(format!("**{word}**: the `{word}` split"))
        }
        Ty::Targets => target(doc, word),
        Ty::List(inner) => value(doc, inner, key, word),
        Ty::AnyOf(tys) => tys.iter().find_map(|t| value(doc, t, key, word)),
        _ => None,
    }
}

fn target(doc: &Document, word: &str) -> Option<String> {
    if word == "all_linear" {
        return Some("**all_linear**: every linear layer but the output head".into());
    }
    let (_, inv) = doc.model(None)?;
    let matched: Vec<_> = inv
        .linears
        .iter()
        .filter(|l| l.path == word || l.path.ends_with(&format!(".{word}")))
        .collect();
    let first = matched.first()?;
    let same = matched
        .iter()
        .all(|l| (l.in_features, l.out_features) == (first.in_features, first.out_features));
    let shape = if same {
        format!("{} → {}", first.in_features, first.out_features)
    } else {
        "of several shapes".into()
    };
    Some(format!(
        "**{word}**: {} module{} of the model, {shape}\n\ne.g. `{}`",
        matched.len(),
        if matched.len() == 1 { "" } else { "s" },
        first.path
    ))
}

/// The line that declares a dataset, mixture or model.
fn declaration(doc: &Document, word: &str) -> Option<String> {
    let d = declared(doc).into_iter().find(|d| d.name == word)?;
    let declares = |l: &str| {
        let mut words = l
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty());
        words.next() == Some(d.keyword.as_str()) && words.next() == Some(word)
    };
    let line = doc
        .text()
        .lines()
        .find(|l| declares(l))
        .map(str::to_string)
        .or_else(|| {
            let a = doc.latest()?;
            let b = a
                .recipe
                .blocks
                .iter()
                .find(|b| b.name_str() == Some(word))?;
            let f = a.sources.get(b.file);
            let start = b.keyword.span.start;
            let text = &f.text[start..];
            Some(text.lines().next()?.to_string())
        })?;
    let line = line.trim_end().trim_end_matches('{').trim_end();
    Some(format!("```ft\n{line}\n```\n{} `{}`", d.keyword, d.name))
}

fn plan_markdown(doc: &Document) -> Option<String> {
    let (f, method, a) = crate::plan::plan(doc)?;
    let model = a
        .recipe
        .model()
        .and_then(|m| m.name_str())
        .map(|n| format!(" on `{n}`"))
        .unwrap_or_default();
    let mut s = format!(
        "**Plan: {method}{model}**\n\n| | |\n|---|---|\n| trainable parameters | {} ({:.2}%) |\n| total parameters | {} ({}) |\n",
        figures::group(f.trainable),
        f.percent(),
        figures::group(f.total),
        figures::short(f.total),
    );
    if f.modules > 0 {
        s.push_str(&format!("| adapted modules | {} |\n", f.modules));
    }
    if f.head > 0 {
        s.push_str(&format!(
            "| classification head | {} |\n",
            figures::group(f.head)
        ));
    }
    s.push_str(&format!(
        "| memory (f32 weights + grads + AdamW) | {} = {} + {} |\n",
        figures::bytes(f.memory_bytes()),
        figures::bytes(f.weight_bytes),
        figures::bytes(f.train_bytes),
    ));
    s.push_str("\nActivations are not included; they grow with `batch × max_len`.");
    Some(s)
}
