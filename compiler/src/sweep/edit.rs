//! Settings written into recipe text. A trial is the user's recipe with a
//! few values changed, so it is made by editing the text at the spans the
//! parser recorded: comments, layout and everything not swept stay exactly
//! as written, and the result is a recipe a person can read and run.

use crate::check::schema::{self, Ty};
use crate::syntax::ast::{Block, Entry, ExprKind, Span};

/// One change to a block: `path` below the block keyword (`["optimizer",
/// "lr"]` for `train.optimizer.lr`), and the new value as recipe text.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Set(Vec<String>, String),
    /// Remove a key (a budget in steps drops `epochs`).
    Remove(String),
}

/// A replacement of `span` in a text by `text`.
#[derive(Debug, Clone)]
struct Splice {
    span: Span,
    text: String,
}

/// Applies splices, last first so earlier offsets stay valid; insertions at
/// one point keep their order.
fn apply(text: &str, mut splices: Vec<Splice>) -> String {
    splices.sort_by_key(|s| std::cmp::Reverse((s.span.start, s.span.end)));
    let mut out = text.to_string();
    // Stable sort + reverse would reverse equal insertions: group them.
    let mut i = 0;
    while i < splices.len() {
        let at = splices[i].span;
        let mut j = i;
        let mut joined = String::new();
        while j < splices.len() && splices[j].span == at && at.start == at.end {
            j += 1;
        }
        if j > i {
            for s in splices[i..j].iter().rev() {
                joined.push_str(&s.text);
            }
            out.replace_range(at.start..at.end, &joined);
            i = j;
        } else {
            out.replace_range(at.start..at.end, &splices[i].text);
            i += 1;
        }
    }
    out
}

/// The text of `block` (which lies in `file_text`) with `changes` made.
/// `keys` are the block's schema keys, used when a missing setting must be
/// written with its default call (`optimizer = adamw(lr = …)`).
pub fn edit_block(
    file_text: &str,
    block: &Block,
    keys: &[schema::Key],
    changes: &[Change],
) -> String {
    let base = block.span.start;
    let own = &file_text[block.span.start..block.span.end];
    let rel = |s: Span| Span {
        start: s.start - base,
        end: s.end - base,
    };
    let entries: &[Entry] = block.body.as_ref().map_or(&[], |b| &b.entries);
    let assign = |key: &str| {
        entries.iter().find_map(|e| match e {
            Entry::Assign(a) if a.key.name == key => Some(a),
            _ => None,
        })
    };
    // Where new entries go: on their own line before the closing brace.
    let (close, indent) = match &block.body {
        Some(b) => (
            Span {
                start: b.span.end - 1 - base,
                end: b.span.end - 1 - base,
            },
            entry_indent(file_text, entries.first().map(|e| e.span())),
        ),
        None => (
            Span {
                start: own.len(),
                end: own.len(),
            },
            "  ".to_string(),
        ),
    };
    let mut splices = Vec::new();
    let mut added = Vec::new();
    for change in changes {
        match change {
            Change::Remove(key) => {
                if let Some(a) = assign(key) {
                    splices.push(Splice {
                        span: rel(line_of(file_text, a.span)),
                        text: String::new(),
                    });
                }
            }
            Change::Set(path, value) => match (assign(&path[0]), path.get(1)) {
                (Some(a), None) => splices.push(Splice {
                    span: rel(a.value.span),
                    text: value.clone(),
                }),
                (Some(a), Some(part)) => {
                    splices.push(set_part(file_text, &a.value, part, value, base))
                }
                (None, None) => added.push(format!("{} = {value}", path[0])),
                (None, Some(part)) => {
                    let key = keys.iter().find(|k| k.name == path[0]);
                    added.push(format!(
                        "{} = {}",
                        path[0],
                        new_compound(key.map(|k| (&k.ty, k.default)), part, value)
                    ));
                }
            },
        }
    }
    if !added.is_empty() {
        splices.push(added_entries(file_text, block, close, &indent, &added));
    }
    apply(own, splices)
}

/// New entries: each on its own line before the closing brace, or, in a
/// block written on one line, after a comma (`evaluate { on = val, … }`).
fn added_entries(
    file_text: &str,
    block: &Block,
    close: Span,
    indent: &str,
    added: &[String],
) -> Splice {
    let Some(body) = &block.body else {
        let lines: Vec<String> = added.iter().map(|a| format!("\n{indent}{a}")).collect();
        return Splice {
            span: close,
            text: format!(" {{{}\n}}", lines.concat()),
        };
    };
    let inside = &file_text[body.span.start + 1..body.span.end - 1];
    if inside.contains('\n') {
        let ends_line = inside.trim_end_matches([' ', '\t']).ends_with('\n');
        let mut text = String::new();
        for a in added {
            text.push('\n');
            text.push_str(indent);
            text.push_str(a);
        }
        if ends_line {
            // The brace's own line keeps its indentation: insert before it.
            text.remove(0);
            text.push('\n');
            let line_start = file_text[..body.span.end - 1]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let at = line_start - block.span.start;
            return Splice {
                span: Span { start: at, end: at },
                text,
            };
        }
        text.push('\n');
        return Splice { span: close, text };
    }
    // One line: after the last entry, before the space and brace.
    let at = body.span.start + 1 + inside.trim_end().len() - block.span.start;
    let sep = if inside.trim().is_empty() { " " } else { ", " };
    let mut text = String::new();
    for (i, a) in added.iter().enumerate() {
        text.push_str(if i == 0 { sep } else { ", " });
        text.push_str(a);
    }
    if inside.trim().is_empty() {
        text.push(' ');
    }
    Splice {
        span: Span { start: at, end: at },
        text,
    }
}

/// `lr = V` inside `adamw(…)` or `{ … }`: replaced if written, else added.
fn set_part(
    file_text: &str,
    value: &crate::syntax::ast::Expr,
    part: &str,
    new: &str,
    base: usize,
) -> Splice {
    let rel = |s: usize| s - base;
    match &value.kind {
        ExprKind::Call { args, .. } => {
            if let Some(a) = args
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == part))
            {
                return Splice {
                    span: Span {
                        start: rel(a.value.span.start),
                        end: rel(a.value.span.end),
                    },
                    text: new.to_string(),
                };
            }
            let end = value.span.end - 1; // the closing parenthesis
            let sep = if args.is_empty() { "" } else { ", " };
            Splice {
                span: Span {
                    start: rel(end),
                    end: rel(end),
                },
                text: format!("{sep}{part} = {new}"),
            }
        }
        ExprKind::Record(fields) => {
            if let Some(f) = fields.iter().find(|f| f.key.name == part) {
                return Splice {
                    span: Span {
                        start: rel(f.value.span.start),
                        end: rel(f.value.span.end),
                    },
                    text: new.to_string(),
                };
            }
            // Before the closing brace, after any space before it.
            let inner = &file_text[value.span.start..value.span.end - 1];
            let end = value.span.start + inner.trim_end().len();
            let sep = if fields.is_empty() { " " } else { ", " };
            Splice {
                span: Span {
                    start: rel(end),
                    end: rel(end),
                },
                text: format!("{sep}{part} = {new}"),
            }
        }
        // `schedule = cosine` written without arguments.
        ExprKind::Path(p) if p.len() == 1 => Splice {
            span: Span {
                start: rel(value.span.start),
                end: rel(value.span.end),
            },
            text: format!("{}({part} = {new})", p[0].name),
        },
        _ => Splice {
            span: Span {
                start: rel(value.span.start),
                end: rel(value.span.end),
            },
            text: format!("{{ {part} = {new} }}"),
        },
    }
}

/// A call or record holding one setting, for a key the block does not
/// write: the default call's name (`adamw(lr = 3e-4)`), or a record.
fn new_compound(key: Option<(&Ty, Option<&str>)>, part: &str, value: &str) -> String {
    match key {
        Some((Ty::Calls(defs), default)) => {
            let callee = default
                .and_then(|d| d.split('(').next())
                .map(str::trim)
                .filter(|c| defs.iter().any(|d| d.name == *c))
                .or_else(|| {
                    defs.iter()
                        .find(|d| d.params.iter().any(|p| p.name == part))
                        .map(|d| d.name)
                })
                .unwrap_or(defs[0].name);
            format!("{callee}({part} = {value})")
        }
        _ => format!("{{ {part} = {value} }}"),
    }
}

/// The whole line(s) of an entry, newline included, when nothing else is on
/// them; else just the entry.
fn line_of(text: &str, span: Span) -> Span {
    // An entry's span runs on over the newline that ends it.
    let span = Span {
        start: span.start,
        end: span.start + text[span.start..span.end].trim_end().len(),
    };
    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[span.end..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i + 1);
    let before = &text[start..span.start];
    let after = &text[span.end..end];
    let after_code = after.split('#').next().unwrap_or("");
    if before.trim().is_empty() && after_code.trim().is_empty() {
        Span { start, end }
    } else {
        span
    }
}

/// The indentation of the block's first entry (two spaces if none).
fn entry_indent(text: &str, first: Option<Span>) -> String {
    first
        .map(|s| {
            let start = text[..s.start].rfind('\n').map_or(0, |i| i + 1);
            text[start..s.start]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect()
        })
        .filter(|s: &String| !s.is_empty())
        .unwrap_or_else(|| "  ".into())
}

/// The recipe text with the spans removed (the sweep block) and replaced.
pub fn splice_file(text: &str, replace: Vec<(Span, String)>) -> String {
    apply(
        text,
        replace
            .into_iter()
            .map(|(span, text)| Splice { span, text })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::{self, ast::Item};

    fn edit(src: &str, keys: &[schema::Key], changes: &[Change]) -> String {
        let (file, diags) = syntax::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let Item::Block(b) = &file.items[0] else {
            panic!("not a block")
        };
        edit_block(src, b, keys, changes)
    }

    fn train_keys() -> &'static [schema::Key] {
        schema::block("train").unwrap().keys
    }

    fn set(path: &str, v: &str) -> Change {
        Change::Set(path.split('.').map(String::from).collect(), v.into())
    }

    #[test]
    fn replaces_written_values_and_keeps_comments() {
        let src = "train {\n  epochs = 3  # three\n  optimizer = adamw(lr = 2e-4, weight_decay = 0.01)\n}";
        let out = edit(
            src,
            train_keys(),
            &[set("optimizer.lr", "1e-3"), set("epochs", "1")],
        );
        assert_eq!(
            out,
            "train {\n  epochs = 1  # three\n  optimizer = adamw(lr = 1e-3, weight_decay = 0.01)\n}"
        );
    }

    #[test]
    fn adds_missing_settings_on_their_own_lines() {
        let src = "train {\n  epochs = 3\n}";
        let out = edit(
            src,
            train_keys(),
            &[
                set("optimizer.lr", "1e-3"),
                set("steps", "60"),
                Change::Remove("epochs".into()),
            ],
        );
        assert_eq!(
            out,
            "train {\n  optimizer = adamw(lr = 1e-3)\n  steps = 60\n}"
        );
    }

    #[test]
    fn adds_inside_calls_and_records() {
        let src = "train {\n  optimizer = adamw(weight_decay = 0.1)\n  early_stop = { metric = val.loss }\n  schedule = cosine\n}";
        let out = edit(
            src,
            train_keys(),
            &[
                set("optimizer.lr", "3e-4"),
                set("early_stop.patience", "2"),
                set("schedule.warmup", "10%"),
            ],
        );
        assert_eq!(out, "train {\n  optimizer = adamw(weight_decay = 0.1, lr = 3e-4)\n  early_stop = { metric = val.loss, patience = 2 }\n  schedule = cosine(warmup = 10%)\n}");
    }

    #[test]
    fn one_line_blocks_get_a_new_line() {
        let src = "evaluate { on = test }";
        let keys = schema::block("evaluate").unwrap().keys;
        let out = edit(
            src,
            keys,
            &[set("on", "val"), set("metrics", "[loss, accuracy]")],
        );
        assert_eq!(out, "evaluate { on = val, metrics = [loss, accuracy] }");
    }
}
