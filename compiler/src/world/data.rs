//! Data checks from headers and first rows: the files exist, parse, and
//! have every field the dataset's templates, labels and filters use.

use std::collections::BTreeMap;

use ft_data::{Format, Probe, SourceError, SourceSpec};

use super::*;
use crate::check::blocks::CBlock;
use crate::check::value::{ChatMessages, Entry, Val, V};
use crate::diagnostics::{suggest, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Span};

/// Rows read per file to learn its fields: enough to see optional fields,
/// few enough to stay in the millisecond range on large records.
const PROBE_ROWS: usize = 32;

/// Names in row expressions that mean a rendered part, not a data field.
const PARTS: &[&str] = &[
    "prompt",
    "completion",
    "input",
    "label",
    "chosen",
    "rejected",
    "messages",
];

#[derive(Debug, Clone)]
pub struct DataInfo {
    pub dataset: String,
    /// Per source (one, or one per split with `splits(…)`).
    pub probes: Vec<(String, Probe)>,
}

impl DataInfo {
    pub fn field_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .probes
            .iter()
            .flat_map(|(_, p)| p.fields.iter().map(|f| f.name.as_str()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

pub fn check_data(
    recipe: &Recipe,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<DataInfo> {
    let mut out = Vec::new();
    for d in recipe.all("dataset") {
        let Some(src) = &d.source else { continue };
        let mut specs: Vec<(String, &V)> = Vec::new();
        match src.as_call() {
            Some(("splits", Some(args))) => {
                for (k, e) in args {
                    specs.push((k.clone(), &e.value));
                }
            }
            Some(_) => specs.push((String::new(), src)),
            None => continue,
        }
        let mut probes = Vec::new();
        for (split, v) in specs {
            let Some(spec) = spec_of(v, sources, d.file) else {
                continue;
            };
            let span = v.arg("path").map(|p| p.span).unwrap_or(v.span);
            match ft_data::probe(&spec, PROBE_ROWS) {
                Ok(p) => {
                    report_bad_rows(&p, span, d, diags);
                    probes.push((split, p));
                }
                Err(e) => diags.push(source_error(&e, span).in_file(d.file)),
            }
        }
        if !probes.is_empty() && probes.iter().all(|(_, p)| !p.fields.is_empty()) {
            check_fields(d, &probes, diags);
        }
        out.push(DataInfo {
            dataset: d.name_str().unwrap_or_default().to_string(),
            probes,
        });
    }
    out
}

pub(crate) fn spec_of(v: &V, sources: &SourceMap, file: usize) -> Option<SourceSpec> {
    let (name, _) = v.as_call()?;
    let format = match name {
        "jsonl" => Format::Jsonl,
        "json" => Format::Json,
        "csv" => Format::Csv,
        "tsv" => Format::Tsv,
        "yaml" => Format::Yaml,
        "yaml_pairs" => Format::YamlPairs,
        _ => return None,
    };
    let path = resolve(sources, file, v.arg("path")?.as_str()?);
    let mut spec = SourceSpec::new(format, path);
    if let Some(Val::List(cols)) = v.arg("columns").map(|c| &c.val) {
        spec.columns = Some(
            cols.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
        );
    }
    spec.header = v.arg("header").and_then(|h| h.as_bool());
    spec.delimiter = v
        .arg("delimiter")
        .and_then(|d| d.as_str())
        .and_then(|s| s.bytes().next());
    spec.records = v.arg("records").and_then(|r| r.as_str()).map(String::from);
    Some(spec)
}

fn source_error(e: &SourceError, span: Span) -> Diagnostic {
    match e {
        SourceError::NotFound { .. } | SourceError::GlobMatchedNothing { .. } => {
            let mut d =
                Diagnostic::error(&DATA_NOT_FOUND, span, e.to_string()).label("no such data file");
            if !span.is_empty() {
                d = d.help("paths are relative to the recipe's folder; the example datasets are fetched by `scripts/fetch-assets.sh`");
            }
            d
        }
        SourceError::BadHeader { .. } => Diagnostic::error(&DATA_UNREADABLE, span, e.to_string())
            .label("while reading this file's header")
            .help("name the columns in the recipe: `columns = [\"id\", \"text\", …]`, with `header = true` to skip the file's own header line"),
        _ => Diagnostic::error(&DATA_UNREADABLE, span, e.to_string())
            .label("while reading this file"),
    }
}

fn report_bad_rows(p: &Probe, span: Span, block: &CBlock, diags: &mut Vec<Diagnostic>) {
    let Some(first) = p.bad_rows.first() else {
        return;
    };
    let skip = block.get("on_bad_row").and_then(|v| v.as_word()) == Some("skip");
    // With the default `on_bad_row = fail`, training stops at the first
    // malformed row, whatever its reason.
    let fatal = !p.bad_rows.is_empty();
    let msg = format!(
        "{} of the first {} rows are malformed; first at {}:{}: {}",
        p.bad_rows.len(),
        p.rows_read,
        first.file.display(),
        first.line,
        first.reason
    );
    let diag = if fatal && !skip {
        Diagnostic::error(&BAD_ROWS, span, msg)
    } else {
        Diagnostic::warning(&BAD_ROWS, span, msg)
    };
    diags.push(
        diag.in_file(block.file)
            .label("in this file")
            .help(if skip {
                "these rows will be skipped and counted"
            } else {
                "fix the rows, or set `on_bad_row = skip` to skip and count them"
            }),
    );
}

/// Every data field the dataset uses, with where it is used.
fn used_fields(d: &CBlock) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    let declared: Vec<&str> = PARTS.iter().copied().filter(|p| d.has(p)).collect();
    for (key, e) in &d.keys {
        collect(key, e, &declared, &mut out);
    }
    out
}

fn collect(key: &str, e: &Entry, declared: &[&str], out: &mut Vec<(String, Span)>) {
    match &e.value.val {
        Val::Template(t) => {
            let exact = t.exact_spans;
            out.extend(
                t.fields()
                    .map(|(f, s)| (f.to_string(), if exact { s } else { e.value.span })),
            );
        }
        Val::Chat(ChatMessages::Turns(turns)) => {
            for (_, t) in turns {
                let exact = t.exact_spans;
                out.extend(
                    t.fields()
                        .map(|(f, s)| (f.to_string(), if exact { s } else { e.value.span })),
                );
            }
        }
        Val::Chat(ChatMessages::Field(id)) => out.push((id.name.clone(), id.span)),
        Val::RowExpr(expr) => expr_fields(expr, declared, out),
        Val::Split(s) => {
            // `stratify = label` means the dataset's label; without one,
            // FT0402 already reports it.
            if let Some(st) = s.stratify.as_ref().filter(|st| st.name != "label") {
                out.push((st.name.clone(), st.span));
            }
            out.extend(s.key.iter().map(|k| (k.name.clone(), k.span)));
        }
        _ => {
            let _ = key;
        }
    }
}

fn expr_fields(e: &Expr, declared: &[&str], out: &mut Vec<(String, Span)>) {
    match &e.kind {
        ExprKind::Path(p) => {
            let name = p
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".");
            if !declared.contains(&name.as_str()) {
                out.push((name, e.span));
            }
        }
        ExprKind::Paren(x) | ExprKind::Unary { expr: x, .. } => expr_fields(x, declared, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr_fields(lhs, declared, out);
            expr_fields(rhs, declared, out);
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            expr_fields(cond, declared, out);
            expr_fields(then, declared, out);
            expr_fields(otherwise, declared, out);
        }
        ExprKind::Call { args, .. } => {
            for a in args {
                expr_fields(&a.value, declared, out);
            }
        }
        _ => {}
    }
}

fn check_fields(d: &CBlock, probes: &[(String, Probe)], diags: &mut Vec<Diagnostic>) {
    let mut reported: BTreeMap<String, ()> = BTreeMap::new();
    for (field, span) in used_fields(d) {
        for (split, p) in probes {
            if p.field(&field).is_some() || reported.contains_key(&field) {
                continue;
            }
            reported.insert(field.clone(), ());
            let names: Vec<&str> = p.fields.iter().map(|f| f.name.as_str()).collect();
            let file = p
                .files
                .first()
                .map(|f| f.display().to_string())
                .unwrap_or_default();
            let whence = match p.header_line {
                Some(l) => format!("{file}:{l} (header)"),
                None => format!(
                    "{file}, first {} rows from line {}",
                    p.rows_read,
                    p.fields.first().map(|f| f.line).unwrap_or(1)
                ),
            };
            let split_note = if split.is_empty() {
                String::new()
            } else {
                format!(" ({split} split)")
            };
            let diag = Diagnostic::error(
                &UNKNOWN_FIELD,
                span,
                format!("the data has no field `{field}`{split_note}"),
            )
            .in_file(d.file)
            .label("not in the data")
            .note(format!("fields read from {whence}: {}", names.join(", ")));
            diags
                .push(suggest(diag, &field, span, names.iter().copied(), "fields").in_file(d.file));
        }
    }
}
