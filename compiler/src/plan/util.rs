//! Small conversions the lowering shares: schema defaults, templates and
//! row expressions into `ft-data`'s rendering IR.

use ft_data::render::{BinOp, Part, RowExpr, Template};

use crate::check::blocks::CBlock;
use crate::check::schema::{CallDef, Key};
use crate::check::value::{Template as CTemplate, TemplatePart, Val, V};
use crate::syntax::ast::{self, Expr, ExprKind, UnOp};

use super::{fail, LowerError};

/// A schema default as a number: `"1e-8"`, `"10%"` (0.1), `"false"` (0).
fn parse_default(text: &str) -> Option<f64> {
    if let Some(p) = text.strip_suffix('%') {
        return p.trim().parse::<f64>().ok().map(|v| v / 100.0);
    }
    match text {
        "true" => Some(1.0),
        "false" => Some(0.0),
        _ => text.replace('_', "").parse().ok(),
    }
}

fn default_of(keys: &[Key], name: &str) -> Option<f64> {
    keys.iter()
        .find(|k| k.name == name)
        .and_then(|k| k.default)
        .and_then(parse_default)
}

/// A call argument, else the call's documented default.
pub fn call_num(v: &V, def: &CallDef, name: &str) -> f64 {
    v.arg(name)
        .and_then(V::as_f64)
        .or_else(|| default_of(def.params, name))
        .unwrap_or(0.0)
}

pub fn call_bool(v: &V, def: &CallDef, name: &str) -> bool {
    v.arg(name)
        .and_then(V::as_bool)
        .unwrap_or_else(|| default_of(def.params, name) == Some(1.0))
}

/// A block's key, else its documented default.
pub fn key_num(b: &CBlock, name: &str) -> Option<f64> {
    b.get(name)
        .and_then(V::as_f64)
        .or_else(|| default_of(b.key_defs(), name))
}

pub fn key_usize(b: &CBlock, name: &str) -> Option<usize> {
    key_num(b, name).map(|v| v as usize)
}

pub fn key_bool(b: &CBlock, name: &str) -> bool {
    b.get(name)
        .and_then(V::as_bool)
        .unwrap_or_else(|| default_of(b.key_defs(), name) == Some(1.0))
}

pub fn key_word<'a>(b: &'a CBlock, name: &str) -> Option<&'a str> {
    b.get(name).and_then(|v| v.as_word())
}

/// The name of a call value; a bare word is a call without arguments.
pub fn call_name(v: &V) -> Option<&str> {
    match &v.val {
        Val::Call { name, .. } => Some(name),
        Val::Word(w) => Some(w),
        _ => None,
    }
}

pub fn find_call<'a>(defs: &'a [CallDef], name: &str) -> Option<&'a CallDef> {
    defs.iter().find(|d| d.name == name)
}

pub fn template(t: &CTemplate) -> Template {
    Template {
        parts: t
            .parts
            .iter()
            .map(|p| match p {
                TemplatePart::Text(s) => Part::Text(s.clone()),
                TemplatePart::Field { path, .. } => Part::Field(path.clone()),
            })
            .collect(),
    }
}

/// A template's text with its placeholders written back (`{field}`).
pub fn template_text(t: &CTemplate) -> String {
    t.parts
        .iter()
        .map(|p| match p {
            TemplatePart::Text(s) => s.replace('{', "{{").replace('}', "}}"),
            TemplatePart::Field { path, .. } => format!("{{{path}}}"),
        })
        .collect()
}

/// A row expression from its syntax (the checker has already typed it).
pub fn row_expr(e: &Expr, block: &CBlock) -> Result<RowExpr, LowerError> {
    Ok(match &e.kind {
        ExprKind::Number { value, percent, .. } => {
            RowExpr::Num(if *percent { value / 100.0 } else { *value })
        }
        ExprKind::Str(s) => match crate::check::template::parse_template(&s.value, None) {
            Ok(t) => RowExpr::Template(template(&t)),
            Err((_, msg)) => return fail(format!("a string in an expression: {msg}"), Some(block)),
        },
        ExprKind::Bool(b) => RowExpr::Bool(*b),
        ExprKind::Path(ids) => RowExpr::Field(
            ids.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        ExprKind::Paren(x) => row_expr(x, block)?,
        ExprKind::Unary { op, expr } => {
            let x = Box::new(row_expr(expr, block)?);
            match op {
                UnOp::Neg => RowExpr::Neg(x),
                UnOp::Not => RowExpr::Not(x),
            }
        }
        ExprKind::Binary { op, lhs, rhs } => RowExpr::Binary(
            bin_op(*op),
            Box::new(row_expr(lhs, block)?),
            Box::new(row_expr(rhs, block)?),
        ),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => RowExpr::If(
            Box::new(row_expr(cond, block)?),
            Box::new(row_expr(then, block)?),
            Box::new(row_expr(otherwise, block)?),
        ),
        ExprKind::Call { callee, args } => RowExpr::Call(
            callee.name.clone(),
            args.iter()
                .map(|a| row_expr(&a.value, block))
                .collect::<Result<_, _>>()?,
        ),
        _ => return fail("this expression cannot be evaluated on a row", Some(block)),
    })
}

fn bin_op(op: ast::BinOp) -> BinOp {
    match op {
        ast::BinOp::Or => BinOp::Or,
        ast::BinOp::And => BinOp::And,
        ast::BinOp::Eq => BinOp::Eq,
        ast::BinOp::Ne => BinOp::Ne,
        ast::BinOp::Lt => BinOp::Lt,
        ast::BinOp::Le => BinOp::Le,
        ast::BinOp::Gt => BinOp::Gt,
        ast::BinOp::Ge => BinOp::Ge,
        ast::BinOp::Add => BinOp::Add,
        ast::BinOp::Sub => BinOp::Sub,
        ast::BinOp::Mul => BinOp::Mul,
        ast::BinOp::Div => BinOp::Div,
    }
}

/// `recipes/../data/x.tsv` → `data/x.tsv`, without touching the file
/// system (the Plan names files as a person would).
pub fn clean_path(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
