//! Printing items, blocks and the sequences they contain. Every sequence
//! (items, body entries, list elements, record fields, call arguments) goes
//! through [`Ctx::seq`], so comments, blank lines and alignment follow the
//! same rules everywhere. Text is built bottom-up as strings: each piece
//! knows the column it starts at, which is all the width rules need.

use super::comments::{body_range, nested_in_block, nested_in_expr, Comments};
use super::{INDENT, MAX_BODY_WIDTH};
use crate::syntax::ast::{Arg, Block, Body, Comment, Entry, Expr, Field, File, Item, Span};

/// Prints a parsed file (with no broken items) in the canonical layout.
pub(super) fn file(src: &str, file: &File) -> String {
    let cx = Ctx {
        src,
        comments: Comments::new(&file.comments, src),
    };
    let els: Vec<El> = file.items.iter().map(El::Item).collect();
    let seq = cx.seq(&els, Span::new(0, src.len()), 0, Mode::Top);
    debug_assert!(seq.open.is_none());
    seq.lines
}

pub(super) struct Ctx<'a> {
    pub src: &'a str,
    pub comments: Comments<'a>,
}

/// One element of a sequence.
#[derive(Clone, Copy)]
pub(super) enum El<'a> {
    Item(&'a Item),
    Entry(&'a Entry),
    Elem(&'a Expr),
    Field(&'a Field),
    Arg(&'a Arg),
}

impl<'a> El<'a> {
    fn span(self) -> Span {
        match self {
            El::Item(i) => i.span(),
            El::Entry(e) => e.span(),
            El::Elem(e) => e.span,
            El::Field(f) => f.span,
            El::Arg(a) => a.span,
        }
    }

    /// The key of a `key = value` element: these are the ones aligned.
    fn key(self) -> Option<&'a str> {
        match self {
            El::Entry(Entry::Assign(a)) => Some(&a.key.name),
            El::Field(f) => Some(&f.key.name),
            El::Arg(Arg { name: Some(n), .. }) => Some(&n.name),
            _ => None,
        }
    }

    /// Whether this is `key = "…"` (a long string may span lines).
    fn value_is_string(self) -> bool {
        let value = match self {
            El::Entry(Entry::Assign(a)) => &a.value,
            El::Field(f) => &f.value,
            El::Arg(a) => &a.value,
            _ => return false,
        };
        matches!(value.kind, crate::syntax::ast::ExprKind::Str(_))
    }

    /// The ranges of the sequences nested in this element.
    fn nested(self) -> Vec<Span> {
        let mut out = Vec::new();
        match self {
            El::Item(Item::Let(l)) => nested_in_expr(&l.value, &mut out),
            El::Item(Item::Block(b)) | El::Entry(Entry::Block(b)) => nested_in_block(b, &mut out),
            El::Item(Item::Import(_) | Item::Broken(_)) => {}
            El::Entry(Entry::Assign(a)) => nested_in_expr(&a.value, &mut out),
            El::Entry(Entry::Axis(a)) => nested_in_expr(&a.values, &mut out),
            El::Elem(e) => nested_in_expr(e, &mut out),
            El::Field(f) => nested_in_expr(&f.value, &mut out),
            El::Arg(a) => nested_in_expr(&a.value, &mut out),
        }
        out
    }

    /// Items of one kind that may sit together without a blank line.
    fn groups_with(self, other: El) -> bool {
        matches!(
            (self, other),
            (El::Item(Item::Let(_)), El::Item(Item::Let(_)))
                | (El::Item(Item::Import(_)), El::Item(Item::Import(_)))
        )
    }
}

/// How a sequence is laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// The file's items: one blank line between items.
    Top,
    /// A multi-line body: one entry per line, no commas.
    Body,
    /// A broken list, record or call: a comma after every element.
    Commas,
}

/// A printed sequence: the comment for the opening bracket's line, and the
/// lines (each indented and ending in `\n`).
pub(super) struct Seq<'a> {
    pub open: Option<&'a Comment>,
    pub lines: String,
}

/// What precedes an element on its own lines.
struct Front<'a> {
    /// A blank line before everything else.
    blank: bool,
    /// Leading comments, each with whether a blank line precedes it.
    comments: Vec<(bool, &'a Comment)>,
    /// A blank line between the comments and the element.
    blank_after: bool,
    strays: Vec<&'a Comment>,
}

impl Front<'_> {
    fn has_blank(&self) -> bool {
        self.blank || self.blank_after || self.comments.iter().any(|(b, _)| *b)
    }
}

pub(super) fn width(s: &str) -> usize {
    s.chars().count()
}

/// The column after `text` when it starts at column `col`.
pub(super) fn end_col(col: usize, text: &str) -> usize {
    match text.rfind('\n') {
        Some(i) => width(&text[i + 1..]),
        None => col + width(text),
    }
}

pub(super) fn push_comment(out: &mut String, c: &Comment) {
    out.push('#');
    out.push_str(c.text.trim_end());
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

impl<'a> Ctx<'a> {
    /// Prints a sequence of elements one per line at `indent`, with their
    /// comments and blank lines; `range` is what the sequence owns (between
    /// its brackets, or the whole file).
    pub fn seq(&self, els: &[El<'_>], range: Span, indent: usize, mode: Mode) -> Seq<'a> {
        let spans: Vec<Span> = els.iter().map(|e| self.comments.tight(e.span())).collect();
        let mut att = self.comments.attach(range, &spans);
        if mode == Mode::Top {
            // No bracket at top level (only a byte-order mark can put a
            // comment "after code" there): an ordinary own-line comment.
            if let Some(c) = att.open.take() {
                match att.leading.first_mut() {
                    Some(l) => l.insert(0, c),
                    None => att.dangling.insert(0, c),
                }
            }
        }
        let suffix = usize::from(mode == Mode::Commas);

        // Blank lines and comments before each element.
        let mut fronts = Vec::with_capacity(els.len());
        let mut last_end = range.start;
        for (i, el) in els.iter().enumerate() {
            let lead = &att.leading[i];
            let first = lead.first().map_or(spans[i].start, |c| c.span.start);
            let gap = self.comments.blank_between(last_end, first);
            let blank = i > 0
                && match mode {
                    Mode::Top => !el.groups_with(els[i - 1]) || gap,
                    _ => gap,
                };
            let comments = lead
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let b = k > 0
                        && self
                            .comments
                            .blank_between(lead[k - 1].span.end, c.span.start);
                    (b, *c)
                })
                .collect();
            let blank_after = lead
                .last()
                .is_some_and(|c| self.comments.blank_between(c.span.end, spans[i].start));
            fronts.push(Front {
                blank,
                comments,
                blank_after,
                strays: self.comments.strays(spans[i], &el.nested()),
            });
            last_end = att.trailing[i].map_or(spans[i].end, |c| c.span.end);
        }

        // Each element's text: `key = ` is added when printing, after the
        // alignment padding is known.
        let pieces: Vec<(Option<&str>, String)> = els
            .iter()
            .map(|el| match el.key() {
                Some(k) => {
                    let col = indent + width(k) + 3;
                    (Some(k), self.value_of(*el, indent, col, suffix))
                }
                None => (None, self.element(*el, indent, suffix)),
            })
            .collect();

        // Alignment groups: runs of single-line `key = value`.
        let mut pad_to = vec![0; els.len()];
        // A `"""` string value counts as one line: its first line holds the
        // key, the rest is the user's text.
        let alignable = |i: usize| {
            pieces[i].0.is_some() && (!pieces[i].1.contains('\n') || els[i].value_is_string())
        };
        let mut i = 0;
        while i < els.len() {
            if !alignable(i) {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < els.len() && alignable(j + 1) && !fronts[j + 1].has_blank() {
                j += 1;
            }
            let w = (i..=j)
                .map(|k| pieces[k].0.map_or(0, width))
                .max()
                .unwrap_or(0);
            pad_to[i..=j].fill(w);
            i = j + 1;
        }

        let mut out = String::new();
        for (i, (front, (key, text))) in fronts.iter().zip(&pieces).enumerate() {
            if front.blank {
                out.push('\n');
            }
            for (b, c) in &front.comments {
                if *b {
                    out.push('\n');
                }
                push_indent(&mut out, indent);
                push_comment(&mut out, c);
                out.push('\n');
            }
            if front.blank_after {
                out.push('\n');
            }
            for c in &front.strays {
                push_indent(&mut out, indent);
                push_comment(&mut out, c);
                out.push('\n');
            }
            push_indent(&mut out, indent);
            if let Some(k) = key {
                out.push_str(k);
                push_indent(&mut out, pad_to[i].saturating_sub(width(k)));
                out.push_str(" = ");
            }
            out.push_str(text);
            if mode == Mode::Commas {
                out.push(',');
            }
            if let Some(c) = att.trailing[i] {
                out.push_str("  ");
                push_comment(&mut out, c);
            }
            out.push('\n');
        }
        for c in &att.dangling {
            if !out.is_empty() && self.comments.blank_between(last_end, c.span.start) {
                out.push('\n');
            }
            push_indent(&mut out, indent);
            push_comment(&mut out, c);
            out.push('\n');
            last_end = c.span.end;
        }
        Seq {
            open: att.open,
            lines: out,
        }
    }

    /// The text of a `key = value` element after its `= `, starting at `col`.
    fn value_of(&self, el: El<'_>, indent: usize, col: usize, suffix: usize) -> String {
        let value = match el {
            El::Entry(Entry::Assign(a)) => &a.value,
            El::Field(f) => &f.value,
            El::Arg(a) => &a.value,
            _ => unreachable!("value_of on an element without a key"),
        };
        self.expr(value, indent, col, suffix)
    }

    /// The whole text of an element without a key, starting at `indent`.
    fn element(&self, el: El<'_>, indent: usize, suffix: usize) -> String {
        match el {
            El::Item(Item::Import(i)) => {
                format!("import {}", self.text(i.path.span))
            }
            El::Item(Item::Let(l)) => {
                let head = format!("let {} = ", l.name.name);
                let value = self.expr(&l.value, indent, indent + width(&head), suffix);
                head + &value
            }
            El::Item(Item::Block(b)) | El::Entry(Entry::Block(b)) => self.block(b, indent),
            El::Item(Item::Broken(b)) => self.text(b.span).to_string(),
            El::Entry(Entry::Axis(a)) => {
                let head = format!("{} in ", path_text(&a.path));
                let value = self.expr(&a.values, indent, indent + width(&head), suffix);
                head + &value
            }
            El::Elem(e) | El::Arg(Arg { value: e, .. }) => self.expr(e, indent, indent, suffix),
            El::Entry(Entry::Assign(_)) | El::Field(_) => {
                unreachable!("keyed elements are printed by value_of")
            }
        }
    }

    /// The source text under a span (strings are copied, never re-escaped).
    pub fn text(&self, span: Span) -> &'a str {
        &self.src[span.start..span.end]
    }

    /// `keyword name = source { body }`, starting at column `indent`.
    fn block(&self, b: &Block, indent: usize) -> String {
        let mut s = b.keyword.name.clone();
        if let Some(n) = &b.name {
            s.push(' ');
            s.push_str(&n.name);
        }
        if let Some(src) = &b.source {
            s.push_str(" = ");
            let suffix = if b.body.is_some() { 2 } else { 0 };
            let value = self.expr(src, indent, end_col(indent, &s), suffix);
            s.push_str(&value);
        }
        if let (Some(body), Some(range)) = (&b.body, body_range(b)) {
            s.push(' ');
            let body = self.body(body, range, indent, end_col(indent, &s));
            s.push_str(&body);
        }
        s
    }

    /// A body starting at column `col` on a line indented by `indent`;
    /// `range`: the comments it owns ([`body_range`]).
    fn body(&self, body: &Body, range: Span, indent: usize, col: usize) -> String {
        let has_comments = self.comments.any_within(range);
        if body.entries.is_empty() && !has_comments {
            return "{}".to_string();
        }
        if !has_comments {
            if let Some(line) = self.one_line_body(body, col) {
                return line;
            }
        }
        let els: Vec<El> = body.entries.iter().map(El::Entry).collect();
        let seq = self.seq(&els, range, indent + INDENT, Mode::Body);
        let mut s = String::from("{");
        if let Some(c) = seq.open {
            s.push_str("  ");
            push_comment(&mut s, c);
        }
        s.push('\n');
        s.push_str(&seq.lines);
        push_indent(&mut s, indent);
        s.push('}');
        s
    }

    /// `{ a = 1, b = 2 }` when the user wrote the body starting on the
    /// `{` line and it is short and simple enough (module docs, rule 1).
    fn one_line_body(&self, body: &Body, col: usize) -> Option<String> {
        let first = body.entries.first()?;
        if self
            .comments
            .newline_between(body.span.start, first.span().start)
        {
            return None;
        }
        let mut parts = Vec::with_capacity(body.entries.len());
        for e in &body.entries {
            let part = match e {
                Entry::Assign(a) => format!("{} = {}", a.key.name, self.flat(&a.value)),
                Entry::Axis(a) => format!("{} in {}", path_text(&a.path), self.flat(&a.values)),
                Entry::Block(_) => return None,
            };
            if part.contains('\n') {
                return None;
            }
            parts.push(part);
        }
        let line = format!("{{ {} }}", parts.join(", "));
        (col + width(&line) <= MAX_BODY_WIDTH).then_some(line)
    }
}

pub(super) fn path_text(path: &[crate::syntax::ast::Ident]) -> String {
    let mut s = String::new();
    for (i, p) in path.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&p.name);
    }
    s
}
