//! From pest's pairs to the AST. Each top-level item is parsed on its own
//! (see `scan`); spans are shifted back to file offsets here.

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::sync::OnceLock;

use super::ast::*;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/ft.pest"]
pub struct FtParser;

/// A syntax error from pest, already translated into words.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub span: Span,
    pub found: String,
    pub expected: Vec<&'static str>,
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    P.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::kw_where, Assoc::Left))
            .op(Op::infix(Rule::kw_from, Assoc::Left))
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left)
                | Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left))
            .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
            .op(Op::infix(Rule::op_mul, Assoc::Left) | Op::infix(Rule::op_div, Assoc::Left))
            .op(Op::prefix(Rule::op_neg) | Op::prefix(Rule::op_not))
            .op(Op::postfix(Rule::kw_ascending) | Op::postfix(Rule::kw_descending))
    })
}

/// Parses one top-level item whose text starts at `offset` in the file.
pub fn parse_item(text: &str, offset: usize) -> Result<Item, ParseError> {
    let mut pairs =
        FtParser::parse(Rule::item_only, text).map_err(|e| translate(e, text, offset))?;
    let item_only = pairs.next().expect("item_only");
    let inner = item_only.into_inner().next().expect("an item");
    let cx = Cx { offset };
    Ok(cx.item(inner))
}

struct Cx {
    offset: usize,
}

impl Cx {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(s.start() + self.offset, s.end() + self.offset)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn item(&self, p: Pair<Rule>) -> Item {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::import_item => {
                let mut it = p.into_inner().filter(|p| p.as_rule() != Rule::kw_import);
                let path = self.string(it.next().expect("import path"));
                Item::Import(Import { path, span })
            }
            Rule::let_item => {
                let mut it = p.into_inner().filter(|p| p.as_rule() != Rule::kw_let);
                let name = self.ident(it.next().expect("let name"));
                let value = self.expr(it.next().expect("let value"));
                Item::Let(Let { name, value, span })
            }
            Rule::block => Item::Block(self.block(p)),
            r => unreachable!("item rule {r:?}"),
        }
    }

    fn block(&self, p: Pair<Rule>) -> Block {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let keyword = self.ident(it.next().expect("block keyword"));
        let mut block = Block {
            keyword,
            name: None,
            source: None,
            body: None,
            span,
        };
        for part in it {
            match part.as_rule() {
                Rule::block_name => {
                    block.name = Some(self.ident(part.into_inner().next().expect("name")))
                }
                Rule::block_source => {
                    block.source = Some(self.expr(part.into_inner().next().expect("source")))
                }
                Rule::body => block.body = Some(self.body(part)),
                r => unreachable!("block part {r:?}"),
            }
        }
        block
    }

    fn body(&self, p: Pair<Rule>) -> Body {
        let span = self.span(&p);
        let entries = p
            .into_inner()
            .map(|e| {
                let espan = self.span(&e);
                match e.as_rule() {
                    Rule::assign => {
                        let mut it = e.into_inner();
                        let key = self.ident(it.next().expect("key"));
                        let value = self.expr(it.next().expect("value"));
                        Entry::Assign(Assign {
                            key,
                            value,
                            span: espan,
                        })
                    }
                    Rule::axis => {
                        let mut it = e.into_inner();
                        let path = it
                            .next()
                            .expect("path")
                            .into_inner()
                            .map(|i| self.ident(i))
                            .collect();
                        let values = self.expr(it.nth(1).expect("values"));
                        Entry::Axis(Axis {
                            path,
                            values,
                            span: espan,
                        })
                    }
                    Rule::sub_block => Entry::Block(self.block(e)),
                    r => unreachable!("entry {r:?}"),
                }
            })
            .collect();
        Body { entries, span }
    }

    fn expr(&self, p: Pair<Rule>) -> Expr {
        debug_assert_eq!(p.as_rule(), Rule::expr);
        self.pratt_expr(p.into_inner())
    }

    fn pratt_expr(&self, pairs: Pairs<Rule>) -> Expr {
        pratt()
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, rhs| {
                let span = self.span(&op).join(rhs.span);
                let op = if op.as_rule() == Rule::op_neg {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                Expr {
                    kind: ExprKind::Unary {
                        op,
                        expr: Box::new(rhs),
                    },
                    span,
                }
            })
            .map_postfix(|lhs, op| {
                let span = lhs.span.join(self.span(&op));
                let order = if op.as_rule() == Rule::kw_ascending {
                    Order::Ascending
                } else {
                    Order::Descending
                };
                Expr {
                    kind: ExprKind::Ordered {
                        key: Box::new(lhs),
                        order,
                    },
                    span,
                }
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.join(rhs.span);
                let (lhs, rhs) = (Box::new(lhs), Box::new(rhs));
                let kind = match op.as_rule() {
                    Rule::kw_where => ExprKind::Where {
                        data: lhs,
                        cond: rhs,
                    },
                    Rule::kw_from => ExprKind::From {
                        count: lhs,
                        source: rhs,
                    },
                    r => ExprKind::Binary {
                        op: match r {
                            Rule::op_or => BinOp::Or,
                            Rule::op_and => BinOp::And,
                            Rule::op_eq => BinOp::Eq,
                            Rule::op_ne => BinOp::Ne,
                            Rule::op_lt => BinOp::Lt,
                            Rule::op_le => BinOp::Le,
                            Rule::op_gt => BinOp::Gt,
                            Rule::op_ge => BinOp::Ge,
                            Rule::op_add => BinOp::Add,
                            Rule::op_sub => BinOp::Sub,
                            Rule::op_mul => BinOp::Mul,
                            Rule::op_div => BinOp::Div,
                            r => unreachable!("infix {r:?}"),
                        },
                        lhs,
                        rhs,
                    },
                };
                Expr { kind, span }
            })
            .parse(pairs)
    }

    fn primary(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::number => {
                let text = p.as_str().to_string();
                let percent = text.ends_with('%');
                let digits: String = text
                    .trim_end_matches('%')
                    .chars()
                    .filter(|c| *c != '_')
                    .collect();
                // The grammar only admits well-formed literals; an overflow
                // to infinity is caught by the checker (FT0005).
                let value = digits.parse::<f64>().unwrap_or(f64::INFINITY);
                ExprKind::Number {
                    value,
                    percent,
                    text,
                }
            }
            Rule::string => ExprKind::Str(self.string(p)),
            Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
            Rule::list => ExprKind::List(p.into_inner().map(|e| self.list_elem(e)).collect()),
            Rule::record => ExprKind::Record(
                p.into_inner()
                    .map(|f| {
                        let fspan = self.span(&f);
                        let mut it = f.into_inner();
                        Field {
                            key: self.ident(it.next().expect("key")),
                            value: self.expr(it.next().expect("value")),
                            span: fspan,
                        }
                    })
                    .collect(),
            ),
            Rule::call => {
                let mut it = p.into_inner();
                let callee = self.ident(it.next().expect("callee"));
                let args = it
                    .map(|a| {
                        let aspan = self.span(&a);
                        let inner = a.into_inner().next().expect("arg");
                        match inner.as_rule() {
                            Rule::named_arg => {
                                let mut it = inner.into_inner();
                                Arg {
                                    name: Some(self.ident(it.next().expect("name"))),
                                    value: self.expr(it.next().expect("value")),
                                    span: aspan,
                                }
                            }
                            _ => Arg {
                                name: None,
                                value: self.expr(inner),
                                span: aspan,
                            },
                        }
                    })
                    .collect();
                ExprKind::Call { callee, args }
            }
            Rule::path => ExprKind::Path(p.into_inner().map(|i| self.ident(i)).collect()),
            Rule::paren => {
                ExprKind::Paren(Box::new(self.expr(p.into_inner().next().expect("inner"))))
            }
            Rule::if_expr => {
                let mut it = p.into_inner().filter(|p| {
                    !matches!(p.as_rule(), Rule::kw_if | Rule::kw_then | Rule::kw_else)
                });
                let cond = self.expr(it.next().expect("cond"));
                let then = self.expr(it.next().expect("then"));
                let otherwise = self.expr(it.next().expect("else"));
                ExprKind::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                }
            }
            Rule::expr => return self.expr(p),
            r => unreachable!("primary {r:?}"),
        };
        Expr { kind, span }
    }

    fn list_elem(&self, p: Pair<Rule>) -> Expr {
        match p.as_rule() {
            Rule::pair => {
                let span = self.span(&p);
                let mut it = p.into_inner();
                let key = self.ident(it.next().expect("role"));
                let value = self.expr(it.next().expect("value"));
                Expr {
                    kind: ExprKind::Pair {
                        key,
                        value: Box::new(value),
                    },
                    span,
                }
            }
            _ => self.expr(p),
        }
    }

    fn string(&self, p: Pair<Rule>) -> StrLit {
        let span = self.span(&p);
        let inner = p.into_inner().next().expect("string kind");
        let long = inner.as_rule() == Rule::long_string;
        let content = inner.into_inner().next().expect("string content");
        let raw = content.as_str();
        let content_start = content.as_span().start() + self.offset;
        let (value, verbatim, bad) = if long || !raw.contains('\\') {
            (raw.to_string(), true, Vec::new())
        } else {
            let (v, bad) = unescape(raw);
            (v, false, bad)
        };
        StrLit {
            value,
            span,
            content_start,
            long,
            verbatim,
            bad_escapes: bad
                .into_iter()
                .map(|i| Span::new(content_start + i, content_start + i + 2))
                .collect(),
        }
    }
}

/// Resolves `\n`, `\t`, `\r`, `\"` and `\\`. Unknown escapes are kept as
/// written and their byte offsets returned; the checker reports them.
pub fn unescape(raw: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(raw.len());
    let mut bad = Vec::new();
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().map(|(_, c)| c) {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                bad.push(i);
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    (out, bad)
}

fn translate(e: pest::error::Error<Rule>, text: &str, offset: usize) -> ParseError {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found = found_at(text, pos);
    let mut expected: Vec<&'static str> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|r| rule_words(*r)).collect()
        }
        ErrorVariant::CustomError { .. } => vec![],
    };
    expected.sort();
    expected.dedup();
    let len = if found == "end of input" {
        0
    } else {
        found.trim_matches('`').len().max(1)
    };
    ParseError {
        span: Span::new(pos + offset, (pos + len).min(text.len()).max(pos) + offset),
        found,
        expected,
    }
}

fn found_at(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    let Some(first) = rest.chars().next() else {
        return "end of input".to_string();
    };
    if first.is_alphanumeric() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        format!("`{word}`")
    } else {
        format!("`{first}`")
    }
}

/// The words a user understands for what pest expected.
fn rule_words(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "the end of the item",
        Rule::ident | Rule::block_name | Rule::path => "a name",
        Rule::expr
        | Rule::number
        | Rule::string
        | Rule::boolean
        | Rule::list
        | Rule::record
        | Rule::call
        | Rule::if_expr => "a value",
        Rule::body => "`{`",
        Rule::block_source => "`=`",
        Rule::assign | Rule::axis | Rule::sub_block | Rule::field | Rule::named_arg => {
            "`key = value`"
        }
        Rule::arg => "an argument",
        Rule::kw_then => "`then`",
        Rule::kw_else => "`else`",
        Rule::kw_in => "`in`",
        Rule::kw_where
        | Rule::kw_from
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div => "an operator",
        Rule::kw_ascending | Rule::kw_descending => "`ascending` or `descending`",
        _ => return None,
    })
}
