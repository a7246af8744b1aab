//! Where each comment goes. The parser keeps comments aside (`File.comments`,
//! in source order); the printer asks this module, for each sequence it
//! prints, which comments sit between that sequence's elements and which
//! fall inside an element where no comment slot exists. The rules are in
//! the module documentation of `fmt`; they only look at the AST spans and at
//! line breaks, so the printed output is classified the same way again.

use crate::syntax::ast::{Block, Comment, Expr, ExprKind, Span};

/// The file's comments plus its text, to see line breaks between spans.
pub(super) struct Comments<'a> {
    list: &'a [Comment],
    src: &'a str,
}

/// The comments a sequence owns, by slot.
#[derive(Debug, Default)]
pub(super) struct Attached<'a> {
    /// On the line of the opening bracket, before the first element.
    pub open: Option<&'a Comment>,
    /// Own-line comments before each element.
    pub leading: Vec<Vec<&'a Comment>>,
    /// The comment at the end of each element's last line.
    pub trailing: Vec<Option<&'a Comment>>,
    /// Own-line comments after the last element.
    pub dangling: Vec<&'a Comment>,
}

impl<'a> Comments<'a> {
    pub fn new(list: &'a [Comment], src: &'a str) -> Self {
        debug_assert!(list.windows(2).all(|w| w[0].span.start < w[1].span.start));
        Comments { list, src }
    }

    /// The comments that start inside `span`.
    pub fn within(&self, span: Span) -> &'a [Comment] {
        let lo = self.list.partition_point(|c| c.span.start < span.start);
        let hi = self.list.partition_point(|c| c.span.start < span.end);
        &self.list[lo..hi.max(lo)]
    }

    pub fn any_within(&self, span: Span) -> bool {
        !self.within(span).is_empty()
    }

    /// Whether the source has a line break between the two offsets.
    pub fn newline_between(&self, from: usize, to: usize) -> bool {
        from < to && self.src.as_bytes()[from..to].contains(&b'\n')
    }

    /// Whether the source has a blank line between the two offsets: a line
    /// with nothing but spaces on it (a comma alone on a line is not blank).
    pub fn blank_between(&self, from: usize, to: usize) -> bool {
        if from >= to {
            return false;
        }
        let mut after_newline = false;
        for b in &self.src.as_bytes()[from..to] {
            match b {
                b'\n' if after_newline => return true,
                b'\n' => after_newline = true,
                b' ' | b'\t' | b'\r' => {}
                _ => after_newline = false,
            }
        }
        false
    }

    /// `span` without the blanks and comments at its end. The parser's
    /// spans of entries, fields and arguments run on over the whitespace
    /// (and comments) that pest skips after an optional last part, such as
    /// an expression's `postfix*`: a trailing comment would otherwise count
    /// as inside the entry before it.
    pub fn tight(&self, span: Span) -> Span {
        let bytes = self.src.as_bytes();
        let mut end = span.end;
        loop {
            while end > span.start && bytes[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            let i = self.list.partition_point(|c| c.span.end < end);
            match self.list.get(i) {
                Some(c) if c.span.end == end && c.span.start >= span.start => end = c.span.start,
                _ => return Span::new(span.start, end),
            }
        }
    }

    /// Sorts the comments inside `range` that are not inside any of
    /// `elems` (sorted, disjoint spans) into the sequence's slots.
    pub fn attach(&self, range: Span, elems: &[Span]) -> Attached<'a> {
        let n = elems.len();
        let mut att = Attached {
            open: None,
            leading: vec![Vec::new(); n],
            trailing: vec![None; n],
            dangling: Vec::new(),
        };
        for c in self.within(range) {
            let at = c.span.start;
            // First element that ends after the comment starts.
            let idx = elems.partition_point(|s| s.end <= at);
            if idx < n && elems[idx].start <= at {
                continue; // inside an element: its own business
            }
            match idx.checked_sub(1) {
                Some(prev) if !self.newline_between(elems[prev].end, at) => {
                    att.trailing[prev] = Some(c);
                }
                None if c.trailing && att.open.is_none() => att.open = Some(c),
                _ if idx < n => att.leading[idx].push(c),
                _ => att.dangling.push(c),
            }
        }
        att
    }

    /// The comments inside an element that no nested sequence owns
    /// (`nested`: the ranges of the element's outermost lists, records,
    /// calls and bodies). They are printed before the element.
    pub fn strays(&self, elem: Span, nested: &[Span]) -> Vec<&'a Comment> {
        self.within(elem)
            .iter()
            .filter(|c| {
                !nested
                    .iter()
                    .any(|n| n.start <= c.span.start && c.span.start < n.end)
            })
            .collect()
    }
}

/// The range a call's arguments own: from the end of the callee's name to
/// the closing parenthesis (so a comment before the `(` goes after it).
pub(super) fn call_range(callee: Span, call: Span) -> Span {
    Span::new(callee.end, call.end)
}

/// Collects the ranges of the outermost sequences inside an expression.
pub(super) fn nested_in_expr(e: &Expr, out: &mut Vec<Span>) {
    match &e.kind {
        ExprKind::List(_) | ExprKind::Record(_) => out.push(e.span),
        ExprKind::Call { callee, .. } => out.push(call_range(callee.span, e.span)),
        ExprKind::Pair { value, .. } => nested_in_expr(value, out),
        ExprKind::Paren(x) | ExprKind::Unary { expr: x, .. } => nested_in_expr(x, out),
        ExprKind::Ordered { key, .. } => nested_in_expr(key, out),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            nested_in_expr(cond, out);
            nested_in_expr(then, out);
            nested_in_expr(otherwise, out);
        }
        ExprKind::Binary { lhs: a, rhs: b, .. }
        | ExprKind::Where { data: a, cond: b }
        | ExprKind::From {
            count: a,
            source: b,
        } => {
            nested_in_expr(a, out);
            nested_in_expr(b, out);
        }
        ExprKind::Number { .. } | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Path(_) => {}
    }
}

/// The range a block's body owns: from the end of the header, so that a
/// comment between the header and the `{` (`model m = hf("x") # note` with
/// the `{` on the next line) goes after the `{`, not before the block.
pub(super) fn body_range(b: &Block) -> Option<Span> {
    let header_end = match (&b.source, &b.name) {
        (Some(s), _) => s.span.end,
        (None, Some(n)) => n.span.end,
        (None, None) => b.keyword.span.end,
    };
    b.body
        .as_ref()
        .map(|body| Span::new(header_end, body.span.end))
}

/// Collects the ranges of the sequences inside a block: its source's and
/// its body.
pub(super) fn nested_in_block(b: &Block, out: &mut Vec<Span>) {
    if let Some(s) = &b.source {
        nested_in_expr(s, out);
    }
    out.extend(body_range(b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn spans_of_items(f: &crate::syntax::ast::File) -> Vec<Span> {
        f.items.iter().map(|i| i.span()).collect()
    }

    #[test]
    fn slots_at_top_level() {
        let src = "# lead\nlet a = 1  # tail\n\n# dangling\n";
        let (f, _) = parse(src);
        let c = Comments::new(&f.comments, src);
        let att = c.attach(Span::new(0, src.len()), &spans_of_items(&f));
        assert_eq!(att.leading[0].len(), 1);
        assert_eq!(att.trailing[0].unwrap().text, " tail");
        assert_eq!(att.dangling.len(), 1);
        assert!(att.open.is_none());
    }

    #[test]
    fn comment_inside_element_is_not_attached() {
        let src = "let a = # inside\n  1\n";
        let (f, _) = parse(src);
        let c = Comments::new(&f.comments, src);
        let att = c.attach(Span::new(0, src.len()), &spans_of_items(&f));
        assert!(att.leading[0].is_empty() && att.dangling.is_empty());
        assert_eq!(c.strays(f.items[0].span(), &[]).len(), 1);
    }

    #[test]
    fn blank_and_newline_detection() {
        let src = "a\n \t\r\nb\n,\nc";
        let c = Comments::new(&[], src);
        assert!(c.blank_between(0, 6));
        assert!(!c.blank_between(6, 11));
        assert!(c.newline_between(6, 11));
        assert!(!c.newline_between(5, 3));
    }
}
