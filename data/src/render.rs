//! What a row becomes: the rendering IR a Plan carries for each dataset
//! (templates, row expressions, chat turns), and its evaluation on rows.
//!
//! The compiler lowers a recipe's `prompt`/`completion`/`input`/`label`/
//! `messages`/`chosen`/`rejected` entries and `filter`s into these types;
//! the runtime evaluates them on every [`Row`](crate::Row). Nothing here
//! knows the recipe syntax.

use serde::{Deserialize, Serialize};

/// A template: literal text and `{field.path}` placeholders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Part {
    Text(String),
    /// A dotted field path (`meta.title`).
    Field(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// An expression over a row's fields (`if score > 0 then "positive" else
/// "negative"`, `len(text) > 10 and lang == "en"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RowExpr {
    /// A field of the row, or a rendered part (`prompt`) inside `tokens(…)`.
    Field(String),
    Template(Template),
    Num(f64),
    Bool(bool),
    Not(Box<RowExpr>),
    Neg(Box<RowExpr>),
    Binary(BinOp, Box<RowExpr>, Box<RowExpr>),
    If(Box<RowExpr>, Box<RowExpr>, Box<RowExpr>),
    /// `len(x)`, `lower(x)`, `tokens(x)` (tokens needs the tokenizer and is
    /// evaluated by the caller that has one).
    Call(String, Vec<RowExpr>),
}

/// One chat turn: a role (`system`, `user`, `assistant`) and its template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub role: String,
    pub content: Template,
}

/// How one part of an example is made from a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Text {
    Template(Template),
    Expr(RowExpr),
    /// Chat turns rendered with the model's chat template.
    Chat(Vec<ChatTurn>),
    /// A field holding an OpenAI-style list of `{role, content}` messages.
    ChatField(String),
}

/// The parts of an example a dataset declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fields {
    pub prompt: Option<Text>,
    pub completion: Option<Text>,
    pub input: Option<Text>,
    pub label: Option<Text>,
    pub messages: Option<Text>,
    pub chosen: Option<Text>,
    pub rejected: Option<Text>,
}
