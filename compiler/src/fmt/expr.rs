//! Printing expressions. `flat` is the one-line form; `expr` chooses, for
//! every list, record and call, between that form and one element per line
//! (module docs). Everything else (operators, `if`, `where`, `from`, pairs,
//! parentheses) is always written on one line around its operands, and only
//! the lists, records and calls inside it break.

use super::comments::call_range;
use super::print::{end_col, path_text, push_comment, width, Ctx, El, Mode};
use super::{INDENT, MAX_WIDTH};
use crate::syntax::ast::{Arg, Expr, ExprKind, Order, Span, UnOp};

/// A piece of an operator expression: fixed text or an operand.
enum Part<'e> {
    Lit(&'static str),
    Own(String),
    E(&'e Expr),
}

/// Whether `text` starting at column `col`, followed by `suffix` columns,
/// stays within `limit`. A multi-line `"""` string counts only with its
/// first and last lines: the lines between are the user's text.
fn fits(col: usize, text: &str, suffix: usize, limit: usize) -> bool {
    match (text.find('\n'), text.rfind('\n')) {
        (Some(first), Some(last)) => {
            col + width(&text[..first]) <= limit && width(&text[last + 1..]) + suffix <= limit
        }
        _ => col + width(text) + suffix <= limit,
    }
}

impl Ctx<'_> {
    /// The one-line form of an expression.
    pub fn flat(&self, e: &Expr) -> String {
        let mut s = String::new();
        self.flat_into(e, &mut s);
        s
    }

    fn flat_into(&self, e: &Expr, s: &mut String) {
        match &e.kind {
            ExprKind::Number { text, .. } => s.push_str(text),
            ExprKind::Str(lit) => s.push_str(self.text(lit.span)),
            ExprKind::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            ExprKind::Path(p) => s.push_str(&path_text(p)),
            ExprKind::List(xs) => {
                s.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    self.flat_into(x, s);
                }
                s.push(']');
            }
            ExprKind::Record(fields) if fields.is_empty() => s.push_str("{}"),
            ExprKind::Record(fields) => {
                s.push_str("{ ");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(&f.key.name);
                    s.push_str(" = ");
                    self.flat_into(&f.value, s);
                }
                s.push_str(" }");
            }
            ExprKind::Call { callee, args } => {
                s.push_str(&callee.name);
                s.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    if let Some(n) = &a.name {
                        s.push_str(&n.name);
                        s.push_str(" = ");
                    }
                    self.flat_into(&a.value, s);
                }
                s.push(')');
            }
            _ => {
                for part in self.parts(e) {
                    match part {
                        Part::Lit(t) => s.push_str(t),
                        Part::Own(t) => s.push_str(&t),
                        Part::E(x) => self.flat_into(x, s),
                    }
                }
            }
        }
    }

    /// An operator expression as a sequence of text and operands.
    fn parts<'e>(&self, e: &'e Expr) -> Vec<Part<'e>> {
        use Part::{Lit, Own, E};
        match &e.kind {
            ExprKind::Pair { key, value } => vec![Own(format!("{}: ", key.name)), E(value)],
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => vec![
                Lit("if "),
                E(cond),
                Lit(" then "),
                E(then),
                Lit(" else "),
                E(otherwise),
            ],
            ExprKind::Binary { op, lhs, rhs } => {
                vec![E(lhs), Own(format!(" {} ", op.symbol())), E(rhs)]
            }
            ExprKind::Unary {
                op: UnOp::Neg,
                expr,
            } => vec![Lit("-"), E(expr)],
            ExprKind::Unary {
                op: UnOp::Not,
                expr,
            } => vec![Lit("not "), E(expr)],
            ExprKind::Where { data, cond } => vec![E(data), Lit(" where "), E(cond)],
            ExprKind::From { count, source } => vec![E(count), Lit(" from "), E(source)],
            ExprKind::Ordered { key, order } => vec![
                E(key),
                Lit(match order {
                    Order::Ascending => " ascending",
                    Order::Descending => " descending",
                }),
            ],
            ExprKind::Paren(x) => vec![Lit("("), E(x), Lit(")")],
            // Leaves and sequences are printed directly.
            _ => vec![Own(self.flat(e))],
        }
    }

    /// Prints `e` starting at column `col` on a line indented by `indent`,
    /// with `suffix` columns of text following it on its last line.
    pub fn expr(&self, e: &Expr, indent: usize, col: usize, suffix: usize) -> String {
        match &e.kind {
            ExprKind::List(xs) => {
                let els: Vec<El> = xs.iter().map(El::Elem).collect();
                let flat = self.flat(e);
                self.sequence(e.span, &els, ("[", "]"), flat, indent, col, suffix)
            }
            ExprKind::Record(fields) => {
                let els: Vec<El> = fields.iter().map(El::Field).collect();
                let flat = self.flat(e);
                self.sequence(e.span, &els, ("{", "}"), flat, indent, col, suffix)
            }
            ExprKind::Call { callee, args } => {
                let els: Vec<El> = args.iter().map(|a: &Arg| El::Arg(a)).collect();
                let head = &callee.name;
                let flat = self.flat(e).split_off(head.len());
                let range = call_range(callee.span, e.span);
                let col = col + width(head);
                let rest = self.sequence(range, &els, ("(", ")"), flat, indent, col, suffix);
                format!("{head}{rest}")
            }
            ExprKind::Number { .. } | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Path(_) => {
                self.flat(e)
            }
            _ => {
                let flat = self.flat(e);
                if !self.comments.any_within(e.span) && fits(col, &flat, suffix, MAX_WIDTH) {
                    return flat;
                }
                self.operands(&self.parts(e), indent, col, suffix)
            }
        }
    }

    /// Prints operator parts in a row; each operand is told how much of the
    /// row follows it on its line, so that a list inside a `where` breaks
    /// when the whole row would not fit.
    fn operands(&self, parts: &[Part<'_>], indent: usize, col: usize, suffix: usize) -> String {
        let flats: Vec<String> = parts
            .iter()
            .map(|p| match p {
                Part::Lit(t) => t.to_string(),
                Part::Own(t) => t.clone(),
                Part::E(x) => self.flat(x),
            })
            .collect();
        let mut out = String::new();
        let mut at = col;
        for (i, part) in parts.iter().enumerate() {
            let text = match part {
                Part::Lit(t) => t.to_string(),
                Part::Own(t) => t.clone(),
                Part::E(x) => self.expr(x, indent, at, rest_width(&flats[i + 1..], suffix)),
            };
            at = end_col(at, &text);
            out.push_str(&text);
        }
        out
    }

    /// A list, record or call's arguments (`flat`: their one-line form):
    /// flat when it fits and holds no comment, else one element per line.
    #[allow(clippy::too_many_arguments)]
    fn sequence(
        &self,
        range: Span,
        els: &[El<'_>],
        (open, close): (&str, &str),
        flat: String,
        indent: usize,
        col: usize,
        suffix: usize,
    ) -> String {
        let has_comments = self.comments.any_within(range);
        if els.is_empty() && !has_comments {
            return flat;
        }
        if !has_comments && fits(col, &flat, suffix, MAX_WIDTH) {
            return flat;
        }
        let seq = self.seq(els, range, indent + INDENT, Mode::Commas);
        let mut s = String::from(open);
        if let Some(c) = seq.open {
            s.push_str("  ");
            push_comment(&mut s, c);
        }
        s.push('\n');
        s.push_str(&seq.lines);
        s.extend(std::iter::repeat_n(' ', indent));
        s.push_str(close);
        s
    }
}

/// The width of what follows an operand on its line: the flat parts after
/// it up to the first line break, plus the caller's suffix if no break.
fn rest_width(flats: &[String], suffix: usize) -> usize {
    let mut w = 0;
    for f in flats {
        match f.find('\n') {
            Some(i) => return w + width(&f[..i]),
            None => w += width(f),
        }
    }
    w + suffix
}
