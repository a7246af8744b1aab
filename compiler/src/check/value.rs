//! Checked values: what a recipe's expressions mean once their types are
//! known. Percentages are shares in `[0, 1]`, `let` names are substituted,
//! constant arithmetic is folded; row expressions stay as syntax for the
//! data pipeline.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::syntax::ast::{Expr, Ident, Order, Span};

#[derive(Debug, Clone, Serialize)]
pub struct V {
    pub val: Val,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum Val {
    Int(i64),
    Float(f64),
    /// A share in `[0, 1]`, written as `10%` or `0.1`.
    Fraction(f64),
    /// A count written where a share was also allowed (warmup steps).
    Count(u64),
    Bool(bool),
    Str(String),
    /// A template: literal text and `{field}` placeholders.
    Template(Template),
    /// A bare word from an enumeration.
    Word(String),
    List(Vec<V>),
    Record(BTreeMap<String, Entry>),
    Call {
        name: String,
        name_span: Span,
        args: BTreeMap<String, Entry>,
    },
    /// A dataset or mixture, maybe filtered.
    Data {
        name: Ident,
        filter: Option<Expr>,
    },
    ModelRef(Ident),
    Metric {
        split: Ident,
        metric: Ident,
    },
    /// An expression over a row's fields.
    RowExpr(Expr),
    /// Chat messages: `(role, template)` in order, or the name of a field
    /// holding a list of `{role, content}`.
    Chat(ChatMessages),
    Shots {
        count: u64,
        split: Ident,
    },
    Ordering {
        key: OrderKey,
        order: Order,
    },
    Targets(Vec<Target>),
    /// A `{ module = number }` override map.
    ModuleMap(BTreeMap<String, (f64, Span)>),
    Split(SplitDecl),
}

/// A key's value together with the span of the key itself (for messages
/// like "set here").
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub key_span: Span,
    pub value: V,
}

#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    /// True when parts' spans point into the file (no escapes in the string).
    pub exact_spans: bool,
}

#[derive(Debug, Clone, Serialize)]
pub enum TemplatePart {
    Text(String),
    /// `{meta.title}`: a dotted field path, and its span in the file.
    Field {
        path: String,
        span: Span,
    },
}

impl Template {
    pub fn fields(&self) -> impl Iterator<Item = (&str, Span)> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Field { path, span } => Some((path.as_str(), *span)),
            TemplatePart::Text(_) => None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub enum ChatMessages {
    Turns(Vec<(Ident, Template)>),
    Field(Ident),
}

#[derive(Debug, Clone, Serialize)]
pub enum OrderKey {
    /// `tokens(prompt)`: token count of a rendered part or field.
    Tokens(Ident),
    /// A numeric field of the row.
    Field(Ident),
}

#[derive(Debug, Clone, Serialize)]
pub enum Target {
    /// Matches a module path that ends with these components.
    Suffix(String, Span),
    /// Matches the full module path.
    Regex(String, Span),
    /// Every linear layer except the output head.
    AllLinear(Span),
}

impl Target {
    pub fn span(&self) -> Span {
        match self {
            Target::Suffix(_, s) | Target::Regex(_, s) | Target::AllLinear(s) => *s,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitDecl {
    /// `(name, share, span)` in the order written.
    pub parts: Vec<(String, f64, Span)>,
    pub seed: Option<u64>,
    pub stratify: Option<Ident>,
    /// Fields whose values identify a row for hash assignment.
    pub key: Vec<Ident>,
}

impl V {
    pub fn as_f64(&self) -> Option<f64> {
        match self.val {
            Val::Int(i) => Some(i as f64),
            Val::Float(f) | Val::Fraction(f) => Some(f),
            Val::Count(c) => Some(c as f64),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self.val {
            Val::Int(i) => Some(i),
            Val::Count(c) => Some(c as i64),
            Val::Float(f) if f.fract() == 0.0 => Some(f as i64),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self.val {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_word(&self) -> Option<&str> {
        match &self.val {
            Val::Word(w) => Some(w),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_template(&self) -> Option<&Template> {
        match &self.val {
            Val::Template(t) => Some(t),
            _ => None,
        }
    }
    /// The call's name and arguments; a bare word stands for a call with no
    /// arguments.
    pub fn as_call(&self) -> Option<(&str, Option<&BTreeMap<String, Entry>>)> {
        match &self.val {
            Val::Call { name, args, .. } => Some((name, Some(args))),
            _ => None,
        }
    }
    pub fn arg(&self, name: &str) -> Option<&V> {
        match &self.val {
            Val::Call { args, .. } | Val::Record(args) => args.get(name).map(|e| &e.value),
            _ => None,
        }
    }
}
