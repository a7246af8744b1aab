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

// ---------------------------------------------------------------------------
// Evaluation on rows.
// ---------------------------------------------------------------------------

use crate::value::get_path;
use serde_json::Value;
use std::fmt;

/// The value of a row expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    /// A field that holds a list, an object or null: usable in a template
    /// and with `==`, not in arithmetic.
    Json(Value),
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "string",
            Val::Num(_) => "number",
            Val::Bool(_) => "bool",
            Val::Json(Value::Null) => "null",
            Val::Json(Value::Array(_)) => "list",
            Val::Json(_) => "object",
        }
    }

    /// The text a template shows for this value (see [`value_text`]).
    pub fn to_text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(n) => num_text(*n),
            Val::Bool(b) => b.to_string(),
            Val::Json(v) => value_text(v),
        }
    }
}

/// Why an expression or a template could not be evaluated on a row. The
/// caller turns it into a bad row with the row's file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    MissingField {
        field: String,
    },
    /// A field or an intermediate value of the wrong kind.
    WrongType {
        what: String,
        expected: &'static str,
        found: &'static str,
    },
    UnknownFunction {
        name: String,
    },
    /// `tokens(…)` asked of an evaluator without a tokenizer.
    NoTokenizer,
    DivisionByZero,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::MissingField { field } => write!(f, "missing field `{field}`"),
            EvalError::WrongType {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected a {expected}, found a {found}"),
            EvalError::UnknownFunction { name } => write!(f, "unknown function `{name}`"),
            EvalError::NoTokenizer => write!(f, "`tokens(…)` needs the model's tokenizer"),
            EvalError::DivisionByZero => write!(f, "division by zero"),
        }
    }
}

impl std::error::Error for EvalError {}

/// Counts tokens for `tokens(…)`: given the argument's name (a rendered
/// part such as `prompt`, or a field) and its text if it is a field.
pub trait TokenCounter {
    fn count(&self, name: &str, field_text: Option<&str>) -> Result<usize, EvalError>;
}

/// An evaluator without a tokenizer: `tokens(…)` is an error.
pub struct NoTokens;

impl TokenCounter for NoTokens {
    fn count(&self, _: &str, _: Option<&str>) -> Result<usize, EvalError> {
        Err(EvalError::NoTokenizer)
    }
}

/// Numbers print like JSON does for integers (`3`, not `3.0`).
fn num_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// The text of a field's value in a template: strings as they are, numbers
/// and booleans as JSON prints them, a list of strings joined with single
/// spaces (aclsum's sentence lists read as a paragraph), null as empty,
/// anything else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

impl Template {
    /// A template of literal text only.
    pub fn text(s: &str) -> Template {
        Template {
            parts: vec![Part::Text(s.to_owned())],
        }
    }

    /// The fields it names, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fill the placeholders from a row. A missing field is an error; a
    /// null one renders as empty.
    pub fn render(&self, row: &Value) -> Result<String, EvalError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let v = get_path(row, f)
                        .ok_or_else(|| EvalError::MissingField { field: f.clone() })?;
                    out.push_str(&value_text(v));
                }
            }
        }
        Ok(out)
    }
}

fn field_val(row: &Value, f: &str) -> Result<Val, EvalError> {
    let v = get_path(row, f).ok_or_else(|| EvalError::MissingField {
        field: f.to_owned(),
    })?;
    Ok(match v {
        Value::String(s) => Val::Str(s.clone()),
        Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Val::Bool(*b),
        other => Val::Json(other.clone()),
    })
}

fn as_num(v: &Val, what: &str) -> Result<f64, EvalError> {
    match v {
        Val::Num(n) => Ok(*n),
        // CSV cells that look like numbers are typed already; a string that
        // still parses (a quoted "3") is accepted, as users would expect.
        Val::Str(s) => s.trim().parse().map_err(|_| EvalError::WrongType {
            what: what.to_owned(),
            expected: "number",
            found: "string",
        }),
        other => Err(EvalError::WrongType {
            what: what.to_owned(),
            expected: "number",
            found: other.kind(),
        }),
    }
}

fn as_bool(v: &Val, what: &str) -> Result<bool, EvalError> {
    match v {
        Val::Bool(b) => Ok(*b),
        other => Err(EvalError::WrongType {
            what: what.to_owned(),
            expected: "bool",
            found: other.kind(),
        }),
    }
}

fn describe(e: &RowExpr) -> String {
    match e {
        RowExpr::Field(f) => format!("`{f}`"),
        RowExpr::Call(name, _) => format!("`{name}(…)`"),
        _ => "an operand".to_owned(),
    }
}

impl RowExpr {
    /// Evaluate on a row. `and`/`or` short-circuit; comparisons compare
    /// numbers numerically when both sides are numbers (or numeric
    /// strings), else as text.
    pub fn eval(&self, row: &Value, tokens: &dyn TokenCounter) -> Result<Val, EvalError> {
        Ok(match self {
            RowExpr::Field(f) => field_val(row, f)?,
            RowExpr::Template(t) => Val::Str(t.render(row)?),
            RowExpr::Num(n) => Val::Num(*n),
            RowExpr::Bool(b) => Val::Bool(*b),
            RowExpr::Not(e) => Val::Bool(!as_bool(&e.eval(row, tokens)?, &describe(e))?),
            RowExpr::Neg(e) => Val::Num(-as_num(&e.eval(row, tokens)?, &describe(e))?),
            RowExpr::If(c, a, b) => {
                if as_bool(&c.eval(row, tokens)?, &describe(c))? {
                    a.eval(row, tokens)?
                } else {
                    b.eval(row, tokens)?
                }
            }
            RowExpr::Binary(op, l, r) => {
                let lv = l.eval(row, tokens)?;
                match op {
                    BinOp::And if !as_bool(&lv, &describe(l))? => return Ok(Val::Bool(false)),
                    BinOp::Or if as_bool(&lv, &describe(l))? => return Ok(Val::Bool(true)),
                    _ => {}
                }
                let rv = r.eval(row, tokens)?;
                binary(*op, &lv, &rv, l, r)?
            }
            RowExpr::Call(name, args) => call(name, args, row, tokens)?,
        })
    }

    /// Evaluate a filter: it must give a boolean.
    pub fn test(&self, row: &Value, tokens: &dyn TokenCounter) -> Result<bool, EvalError> {
        as_bool(&self.eval(row, tokens)?, "the filter")
    }
}

fn binary(op: BinOp, lv: &Val, rv: &Val, l: &RowExpr, r: &RowExpr) -> Result<Val, EvalError> {
    use std::cmp::Ordering;
    let nums = || -> Result<(f64, f64), EvalError> {
        Ok((as_num(lv, &describe(l))?, as_num(rv, &describe(r))?))
    };
    let order = || -> Result<Ordering, EvalError> {
        match (lv, rv) {
            (Val::Str(a), Val::Str(b)) => Ok(a.cmp(b)),
            _ => {
                let (a, b) = nums()?;
                Ok(a.partial_cmp(&b).unwrap_or(Ordering::Equal))
            }
        }
    };
    let equal = || -> bool {
        match (lv, rv) {
            (Val::Num(_), Val::Str(_)) | (Val::Str(_), Val::Num(_)) => {
                nums().map(|(a, b)| a == b).unwrap_or(false)
            }
            (Val::Json(a), b) | (b, Val::Json(a)) if !matches!(b, Val::Json(_)) => {
                value_text(a) == b.to_text()
            }
            _ => lv == rv,
        }
    };
    Ok(match op {
        BinOp::And | BinOp::Or => Val::Bool(as_bool(rv, &describe(r))?),
        BinOp::Eq => Val::Bool(equal()),
        BinOp::Ne => Val::Bool(!equal()),
        BinOp::Lt => Val::Bool(order()? == Ordering::Less),
        BinOp::Le => Val::Bool(order()? != Ordering::Greater),
        BinOp::Gt => Val::Bool(order()? == Ordering::Greater),
        BinOp::Ge => Val::Bool(order()? != Ordering::Less),
        BinOp::Add => match (lv, rv) {
            // `+` on two strings concatenates (`title + ": " + text`).
            (Val::Str(a), Val::Str(b)) => Val::Str(format!("{a}{b}")),
            _ => {
                let (a, b) = nums()?;
                Val::Num(a + b)
            }
        },
        BinOp::Sub => {
            let (a, b) = nums()?;
            Val::Num(a - b)
        }
        BinOp::Mul => {
            let (a, b) = nums()?;
            Val::Num(a * b)
        }
        BinOp::Div => {
            let (a, b) = nums()?;
            if b == 0.0 {
                return Err(EvalError::DivisionByZero);
            }
            Val::Num(a / b)
        }
    })
}

fn call(
    name: &str,
    args: &[RowExpr],
    row: &Value,
    tokens: &dyn TokenCounter,
) -> Result<Val, EvalError> {
    let one = || -> Result<&RowExpr, EvalError> {
        match args {
            [a] => Ok(a),
            _ => Err(EvalError::WrongType {
                what: format!("`{name}(…)`"),
                expected: "single argument",
                found: "list",
            }),
        }
    };
    Ok(match name {
        "len" => match one()?.eval(row, tokens)? {
            Val::Str(s) => Val::Num(s.chars().count() as f64),
            Val::Json(Value::Array(a)) => Val::Num(a.len() as f64),
            other => Val::Num(other.to_text().chars().count() as f64),
        },
        "lower" => Val::Str(one()?.eval(row, tokens)?.to_text().to_lowercase()),
        "tokens" => {
            let arg = one()?;
            match arg {
                // A bare name: a rendered part (`prompt`) or a field. The
                // counter decides; it gets the field's text when there is one.
                RowExpr::Field(f) => {
                    let text = get_path(row, f).map(value_text);
                    Val::Num(tokens.count(f, text.as_deref())? as f64)
                }
                other => {
                    let text = other.eval(row, tokens)?.to_text();
                    Val::Num(tokens.count("", Some(&text))? as f64)
                }
            }
        }
        _ => {
            return Err(EvalError::UnknownFunction {
                name: name.to_owned(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> Box<RowExpr> {
        Box::new(RowExpr::Field(name.into()))
    }

    #[test]
    fn templates_render_nested_fields_lists_and_numbers() {
        let row = json!({"meta": {"title": "T"}, "s": ["a .", "b ."], "n": 3, "x": null});
        let t = Template {
            parts: vec![
                Part::Field("meta.title".into()),
                Part::Text(": ".into()),
                Part::Field("s".into()),
                Part::Text(" #".into()),
                Part::Field("n".into()),
                Part::Field("x".into()),
            ],
        };
        assert_eq!(t.render(&row).unwrap(), "T: a . b . #3");
        let missing = Template {
            parts: vec![Part::Field("meta.nope".into())],
        };
        assert_eq!(
            missing.render(&row),
            Err(EvalError::MissingField {
                field: "meta.nope".into()
            })
        );
    }

    #[test]
    fn derived_labels_filters_and_functions() {
        let label = RowExpr::If(
            Box::new(RowExpr::Binary(
                BinOp::Gt,
                f("score"),
                Box::new(RowExpr::Num(0.0)),
            )),
            Box::new(RowExpr::Template(Template::text("positive"))),
            Box::new(RowExpr::Template(Template::text("negative"))),
        );
        let pos = json!({"score": 2.5, "text": "Good Film", "lang": "en"});
        let neg = json!({"score": -1, "text": "bad", "lang": "en"});
        assert_eq!(
            label.eval(&pos, &NoTokens).unwrap(),
            Val::Str("positive".into())
        );
        assert_eq!(
            label.eval(&neg, &NoTokens).unwrap(),
            Val::Str("negative".into())
        );
        // len(text) > 3 and lang == "en"
        let filter = RowExpr::Binary(
            BinOp::And,
            Box::new(RowExpr::Binary(
                BinOp::Gt,
                Box::new(RowExpr::Call(
                    "len".into(),
                    vec![RowExpr::Field("text".into())],
                )),
                Box::new(RowExpr::Num(3.0)),
            )),
            Box::new(RowExpr::Binary(
                BinOp::Eq,
                f("lang"),
                Box::new(RowExpr::Template(Template::text("en"))),
            )),
        );
        assert!(filter.test(&pos, &NoTokens).unwrap());
        assert!(!filter.test(&neg, &NoTokens).unwrap());
        let lower = RowExpr::Call("lower".into(), vec![RowExpr::Field("text".into())]);
        assert_eq!(
            lower.eval(&pos, &NoTokens).unwrap(),
            Val::Str("good film".into())
        );
        // A string field in arithmetic is a typed error, not a panic.
        let bad = RowExpr::Binary(BinOp::Gt, f("lang"), Box::new(RowExpr::Num(0.0)));
        assert!(matches!(
            bad.eval(&pos, &NoTokens),
            Err(EvalError::WrongType { .. })
        ));
        let toks = RowExpr::Call("tokens".into(), vec![RowExpr::Field("prompt".into())]);
        assert_eq!(toks.eval(&pos, &NoTokens), Err(EvalError::NoTokenizer));
    }

    #[test]
    fn tokens_asks_the_counter_with_the_field_text() {
        struct Words;
        impl TokenCounter for Words {
            fn count(&self, name: &str, text: Option<&str>) -> Result<usize, EvalError> {
                match (name, text) {
                    ("prompt", None) => Ok(99),
                    (_, Some(t)) => Ok(t.split_whitespace().count()),
                    _ => Err(EvalError::NoTokenizer),
                }
            }
        }
        let row = json!({"text": "one two three"});
        let t = |arg: &str| RowExpr::Call("tokens".into(), vec![RowExpr::Field(arg.into())]);
        assert_eq!(t("text").eval(&row, &Words).unwrap(), Val::Num(3.0));
        assert_eq!(t("prompt").eval(&row, &Words).unwrap(), Val::Num(99.0));
    }
}
