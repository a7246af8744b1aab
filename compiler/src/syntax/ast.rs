//! The abstract syntax tree of a recipe. Every node carries its byte span in
//! the source file, so any later stage (check, world, plan, the language
//! server) can point at exactly what it is talking about.

use serde::Serialize;

/// A half-open byte range `[start, end)` in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
    pub fn contains(&self, offset: usize) -> bool {
        self.start <= offset && offset <= self.end
    }
    /// A span shifted by `by` bytes: items are parsed on their own and then
    /// placed back at their offset in the file.
    pub fn shift(self, by: usize) -> Span {
        Span::new(self.start + by, self.end + by)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A parsed recipe file: its items in source order and its comments (kept
/// aside for the formatter, which puts them back).
#[derive(Debug, Clone, Default, Serialize)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comment {
    /// The text after `#`, without the line break.
    pub text: String,
    pub span: Span,
    /// True when code precedes the comment on the same line.
    pub trailing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub enum Item {
    Import(Import),
    Let(Let),
    Block(Block),
    /// An item that did not parse. What could be recovered of its header
    /// (keyword and name) is kept so that later stages neither report it as
    /// missing nor report references to it as undefined.
    Broken(Broken),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Import(i) => i.span,
            Item::Let(l) => l.span,
            Item::Block(b) => b.span,
            Item::Broken(b) => b.span,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Import {
    pub path: StrLit,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Let {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub keyword: Option<Ident>,
    pub name: Option<Ident>,
    pub span: Span,
}

/// `keyword name = source { body }`; every part but the keyword is optional.
/// Used for top-level blocks and for sub-blocks such as `stage short { … }`.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    pub keyword: Ident,
    pub name: Option<Ident>,
    pub source: Option<Expr>,
    pub body: Option<Body>,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Body {
    pub entries: Vec<Entry>,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub enum Entry {
    /// `key = value`
    Assign(Assign),
    /// `train.optimizer.lr in [1e-4, 3e-4]` (sweeps)
    Axis(Axis),
    /// `stage short { … }`
    Block(Block),
}

impl Entry {
    pub fn span(&self) -> Span {
        match self {
            Entry::Assign(a) => a.span,
            Entry::Axis(a) => a.span,
            Entry::Block(b) => b.span,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Assign {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Axis {
    pub path: Vec<Ident>,
    pub values: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrLit {
    /// The string's value with escapes resolved.
    pub value: String,
    pub span: Span,
    /// Where the value's text starts in the file (after the opening quotes),
    /// so positions inside a template can be mapped back to the file.
    pub content_start: usize,
    /// True for `"""…"""` strings.
    pub long: bool,
    /// Whether the value equals the source text byte for byte (no escapes),
    /// which makes offsets inside the value valid file offsets.
    pub verbatim: bool,
    /// Spans of escapes that do not exist (`\q`); kept as written in `value`.
    pub bad_escapes: Vec<Span>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Order {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, Serialize)]
pub enum ExprKind {
    /// `3`, `2e-4`, `80%` (a percentage keeps its written value: 80, not 0.8).
    Number {
        value: f64,
        percent: bool,
        text: String,
    },
    Str(StrLit),
    Bool(bool),
    List(Vec<Expr>),
    /// `user: "{question}"` inside a list (chat messages).
    Pair {
        key: Ident,
        value: Box<Expr>,
    },
    Record(Vec<Field>),
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    /// `score`, `val.accuracy`, `common.reviews`.
    Path(Vec<Ident>),
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    /// `tasks where tokens(prompt) < 128`
    Where {
        data: Box<Expr>,
        cond: Box<Expr>,
    },
    /// `2 from train`
    From {
        count: Box<Expr>,
        source: Box<Expr>,
    },
    /// `tokens(prompt) ascending`
    Ordered {
        key: Box<Expr>,
        order: Order,
    },
    /// `(expr)`, kept so the formatter can print what the user wrote.
    Paren(Box<Expr>),
}

#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

impl Expr {
    /// The dotted path if this expression is a plain reference.
    pub fn as_path(&self) -> Option<&[Ident]> {
        match &self.kind {
            ExprKind::Path(p) => Some(p),
            _ => None,
        }
    }
    /// The single identifier if this expression is a bare name.
    pub fn as_ident(&self) -> Option<&Ident> {
        match &self.kind {
            ExprKind::Path(p) if p.len() == 1 => Some(&p[0]),
            _ => None,
        }
    }
    /// Peels parentheses.
    pub fn unparen(&self) -> &Expr {
        match &self.kind {
            ExprKind::Paren(e) => e.unparen(),
            _ => self,
        }
    }
    /// A short name for the kind of value, used in "expected X, found Y".
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ExprKind::Number { percent: true, .. } => "a percentage",
            ExprKind::Number { value, .. } if value.fract() == 0.0 => "an integer",
            ExprKind::Number { .. } => "a number",
            ExprKind::Str(_) => "a string",
            ExprKind::Bool(_) => "a boolean",
            ExprKind::List(_) => "a list",
            ExprKind::Pair { .. } => "a `role: value` pair",
            ExprKind::Record(_) => "a record `{ … }`",
            ExprKind::Call { .. } => "a call",
            ExprKind::Path(p) if p.len() == 1 => "a name",
            ExprKind::Path(_) => "a dotted reference",
            ExprKind::If { .. } => "an `if` expression",
            ExprKind::Binary { .. } | ExprKind::Unary { .. } => "an expression",
            ExprKind::Where { .. } => "a `where` filter",
            ExprKind::From { .. } => "a `from` expression",
            ExprKind::Ordered { .. } => "an ordering",
            ExprKind::Paren(e) => e.describe(),
        }
    }
}
