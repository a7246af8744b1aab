//! Completion: what may be written at the cursor, from the schema and from
//! the real files (the model's modules, the data's fields).

use std::collections::BTreeSet;

use ft_compiler::check::schema::{self, BlockDef, CallDef, Key, Ty};
use lsp_types::{
    CompletionItem, CompletionItemKind, Documentation, InsertTextFormat, MarkupContent, MarkupKind,
};

use crate::context;
use crate::docs::Document;
use crate::slot::{self, Scope, Slot};

/// A declared name: what kind of block declares it, and the name.
pub struct Declared {
    pub keyword: String,
    pub name: String,
}

/// Names declared in the current text (read line by line, so they are
/// known while the file does not parse) and in the imports of the last
/// analysis.
pub fn declared(doc: &Document) -> Vec<Declared> {
    let mut out: Vec<Declared> = Vec::new();
    for line in doc.text().lines() {
        let mut words = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty());
        let (Some(k), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let after_kw = &line[k.len()..];
        let spaced = after_kw.starts_with([' ', '\t']) && after_kw.trim_start().starts_with(n);
        if matches!(k, "dataset" | "mixture" | "model") && spaced && !n.is_empty() {
            out.push(Declared {
                keyword: k.into(),
                name: n.into(),
            });
        }
    }
    if let Some(a) = doc.latest() {
        for b in a.recipe.blocks.iter().filter(|b| b.file != 0) {
            if let Some(n) = b.name_str() {
                if matches!(b.keyword.name.as_str(), "dataset" | "mixture" | "model") {
                    out.push(Declared {
                        keyword: b.keyword.name.clone(),
                        name: n.into(),
                    });
                }
            }
        }
    }
    out
}

fn md(text: String) -> Option<Documentation> {
    Some(Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value: text,
    }))
}

fn item(
    label: &str,
    kind: CompletionItemKind,
    detail: Option<String>,
    doc: Option<String>,
) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        documentation: doc.and_then(md),
        ..Default::default()
    }
}

fn first_sentence(doc: &str) -> String {
    match doc.find(". ") {
        Some(i) => doc[..=i].to_string(),
        None => doc.to_string(),
    }
}

pub fn key_doc(k: &Key) -> String {
    let mut s = format!("**{}**: {}\n\n{}", k.name, schema::describe(&k.ty), k.doc);
    if let Some(d) = k.default {
        s.push_str(&format!("\n\nDefault: `{d}`"));
    }
    if k.required {
        s.push_str("\n\nRequired.");
    }
    s
}

pub fn call_doc(c: &CallDef) -> String {
    let params: Vec<String> = c
        .params
        .iter()
        .map(|p| match p.default {
            Some(d) => format!("{} = {d}", p.name),
            None => p.name.to_string(),
        })
        .collect();
    let mut s = format!("```ft\n{}({})\n```\n{}", c.name, params.join(", "), c.doc);
    for p in c.params {
        s.push_str(&format!("\n- `{}`: {}", p.name, p.doc));
    }
    s
}

pub fn block_doc(b: &BlockDef) -> String {
    format!(
        "**{}**\n\n{}\n\n```ft\n{}\n```",
        b.keyword, b.doc, b.example
    )
}

fn key_item(k: &Key) -> CompletionItem {
    CompletionItem {
        insert_text: Some(format!("{} = ", k.name)),
        ..item(
            k.name,
            CompletionItemKind::PROPERTY,
            Some(schema::describe(&k.ty)),
            Some(key_doc(k)),
        )
    }
}

fn calls(out: &mut Vec<CompletionItem>, calls: &[CallDef]) {
    for c in calls {
        let mut it = item(
            c.name,
            CompletionItemKind::FUNCTION,
            Some(first_sentence(c.doc)),
            Some(call_doc(c)),
        );
        if !c.bare_ok() {
            it.insert_text = Some(format!("{}($0)", c.name));
            it.insert_text_format = Some(InsertTextFormat::SNIPPET);
        }
        out.push(it);
    }
}

/// Completions at a byte offset of the document's current text.
pub fn complete(doc: &Document, offset: usize) -> Vec<CompletionItem> {
    let ctx = context::at(doc.text(), offset);
    let mut out = Vec::new();
    match slot::resolve(&ctx) {
        Slot::Item => {
            for b in schema::BLOCKS {
                out.push(item(
                    b.keyword,
                    CompletionItemKind::KEYWORD,
                    Some(first_sentence(b.doc)),
                    Some(block_doc(b)),
                ));
            }
            for (k, d) in [
                (
                    "import",
                    "Import the blocks of another recipe: `import \"common.ft\"`.",
                ),
                ("let", "A named constant: `let lr = 2e-4`."),
            ] {
                out.push(item(k, CompletionItemKind::KEYWORD, Some(d.into()), None));
            }
        }
        Slot::Method => {
            for m in schema::PEFT_METHODS {
                out.push(item(
                    m.name,
                    CompletionItemKind::ENUM_MEMBER,
                    Some(first_sentence(m.doc)),
                    Some(m.doc.to_string()),
                ));
            }
        }
        Slot::Source(c) => calls(&mut out, c),
        Slot::Key { scope, seen } => keys(doc, &mut out, scope, &seen),
        Slot::Value(ty, _) => {
            let block = ctx
                .block()
                .and_then(|(k, n)| (k == "dataset").then_some(n))
                .flatten();
            values(doc, &mut out, ty, block);
        }
        Slot::Field => {
            if let Some(name) = ctx.block().and_then(|(_, n)| n) {
                fields(doc, &mut out, name);
            }
        }
        Slot::Metric => {
            for (m, d) in schema::METRICS {
                out.push(item(
                    m,
                    CompletionItemKind::ENUM_MEMBER,
                    Some(d.to_string()),
                    None,
                ));
            }
        }
        Slot::Nothing => {}
    }
    let mut seen = BTreeSet::new();
    out.retain(|i| seen.insert(i.label.clone()));
    out
}

fn keys(doc: &Document, out: &mut Vec<CompletionItem>, scope: Scope, seen: &[String]) {
    let fresh = |k: &&Key| !seen.iter().any(|s| s == k.name);
    match scope {
        Scope::Block(def, method) => {
            let list = method.map_or(def.keys, |m| m.keys);
            out.extend(list.iter().filter(fresh).map(key_item));
            for sub in def.sub_blocks {
                out.push(item(
                    sub.keyword,
                    CompletionItemKind::KEYWORD,
                    Some(first_sentence(sub.doc)),
                    Some(block_doc(sub)),
                ));
            }
            if def.dataset_keys {
                for d in declared(doc).into_iter().filter(|d| d.keyword == "dataset") {
                    if !seen.contains(&d.name) {
                        out.push(CompletionItem {
                            insert_text: Some(format!("{} = ", d.name)),
                            ..item(
                                &d.name,
                                CompletionItemKind::REFERENCE,
                                Some("dataset weight".into()),
                                None,
                            )
                        });
                    }
                }
            }
        }
        Scope::Keys(list) => out.extend(list.iter().filter(fresh).map(key_item)),
        Scope::Split => {
            for s in schema::SPLIT_NAMES
                .iter()
                .filter(|s| !seen.iter().any(|x| x == *s))
            {
                out.push(CompletionItem {
                    insert_text: Some(format!("{s} = ")),
                    ..item(
                        s,
                        CompletionItemKind::PROPERTY,
                        Some("share of the rows".into()),
                        None,
                    )
                });
            }
            out.extend(slot::split_keys().iter().filter(fresh).map(key_item));
        }
        _ => {}
    }
}

fn fields(doc: &Document, out: &mut Vec<CompletionItem>, dataset: &str) {
    for f in doc.fields(dataset) {
        out.push(item(
            &f,
            CompletionItemKind::FIELD,
            Some(format!("field of `{dataset}`'s data")),
            None,
        ));
    }
}

fn values(doc: &Document, out: &mut Vec<CompletionItem>, ty: &'static Ty, dataset: Option<&str>) {
    match ty {
        Ty::Enum(words) => {
            for w in *words {
                out.push(item(w, CompletionItemKind::ENUM_MEMBER, None, None));
            }
        }
        Ty::Bool => {
            for w in ["true", "false"] {
                out.push(item(w, CompletionItemKind::KEYWORD, None, None));
            }
        }
        Ty::Calls(c) => calls(out, c),
        Ty::Data | Ty::ModelRef => {
            let kinds: &[&str] = if matches!(ty, Ty::Data) {
                &["dataset", "mixture"]
            } else {
                &["model"]
            };
            for d in declared(doc) {
                if kinds.contains(&d.keyword.as_str()) {
                    out.push(item(
                        &d.name,
                        CompletionItemKind::REFERENCE,
                        Some(d.keyword.clone()),
                        None,
                    ));
                }
            }
        }
        Ty::Metric => {
            for (m, d) in schema::METRICS {
                out.push(CompletionItem {
                    filter_text: Some(format!("val.{m}")),
                    ..item(
                        &format!("val.{m}"),
                        CompletionItemKind::ENUM_MEMBER,
                        Some(d.to_string()),
                        None,
                    )
                });
            }
        }
        Ty::Targets => targets(doc, out),
        Ty::List(inner) => values(doc, out, inner, dataset),
        Ty::AnyOf(tys) => {
            for t in *tys {
                values(doc, out, t, dataset);
            }
        }
        Ty::RowExpr => {
            if let Some(d) = dataset {
                fields(doc, out, d);
            }
        }
        Ty::Prompt => {
            out.push(CompletionItem {
                insert_text: Some("chat([$0])".into()),
                insert_text_format: Some(InsertTextFormat::SNIPPET),
                ..item(
                    "chat",
                    CompletionItemKind::FUNCTION,
                    Some("chat messages".into()),
                    None,
                )
            });
        }
        _ => {}
    }
}

/// PEFT targets read from the model: each distinct module name (the last
/// path component, matched as a suffix in every layer), then every full
/// module path (as a string: paths hold layer numbers).
fn targets(doc: &Document, out: &mut Vec<CompletionItem>) {
    out.push(item(
        "all_linear",
        CompletionItemKind::CONSTANT,
        Some("every linear layer but the output head".into()),
        None,
    ));
    out.push(CompletionItem {
        insert_text: Some("regex(\"$0\")".into()),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..item(
            "regex",
            CompletionItemKind::FUNCTION,
            Some("match full module paths".into()),
            None,
        )
    });
    let Some((_, inv)) = doc.model(None) else {
        return;
    };
    // Each leaf name with its count and shape (`None` once two differ).
    struct Leaf<'a> {
        name: &'a str,
        shape: Option<(u64, u64)>,
        count: usize,
    }
    let mut leaves: Vec<Leaf> = Vec::new();
    for l in &inv.linears {
        let name = l.path.rsplit('.').next().unwrap_or(&l.path);
        let shape = Some((l.in_features, l.out_features));
        match leaves.iter_mut().find(|e| e.name == name) {
            Some(e) => {
                e.count += 1;
                if e.shape != shape {
                    e.shape = None;
                }
            }
            None => leaves.push(Leaf {
                name,
                shape,
                count: 1,
            }),
        }
    }
    for (i, leaf) in leaves.iter().enumerate() {
        let count = leaf.count;
        let modules = if count == 1 { "module" } else { "modules" };
        let detail = match leaf.shape {
            Some((inf, outf)) => format!("{count} {modules}, {inf} → {outf}"),
            None => format!("{count} {modules} of several shapes"),
        };
        out.push(CompletionItem {
            sort_text: Some(format!("0{i:04}")),
            ..item(leaf.name, CompletionItemKind::MODULE, Some(detail), None)
        });
    }
    for (i, l) in inv.linears.iter().enumerate() {
        let bare = l
            .path
            .split('.')
            .all(|p| p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
        out.push(CompletionItem {
            insert_text: (!bare).then(|| format!("\"{}\"", l.path)),
            sort_text: Some(format!("1{i:06}")),
            ..item(
                &l.path,
                CompletionItemKind::MODULE,
                Some(format!("{} → {}", l.in_features, l.out_features)),
                None,
            )
        });
    }
}
