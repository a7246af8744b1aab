//! Sweep axes: each `path in values` names a setting of the recipe, and
//! every value it ranges over is checked against that setting's type, so an
//! invalid trial is found before the first one starts.

use super::blocks::CBlock;
use super::rules::BAD_AXIS;
use super::schema::{self, Ty};
use super::types::Types;
use super::Recipe;
use crate::diagnostics::{suggest, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Ident};

/// Where an axis points.
pub enum AxisTarget {
    /// A key (or call argument) with its type.
    Setting(&'static Ty),
    /// `peft`: the whole method.
    Method,
}

pub fn resolve(
    recipe: &Recipe,
    path: &[Ident],
) -> Result<AxisTarget, (usize, String, Vec<&'static str>)> {
    let head = &path[0];
    let block_names = ["train", "peft", "evaluate"];
    if !block_names.contains(&head.name.as_str()) {
        return Err((
            0,
            format!("`{}` is not a block a sweep can change", head.name),
            block_names.to_vec(),
        ));
    }
    if head.name == "peft" && path.len() == 1 {
        return Ok(AxisTarget::Method);
    }
    let keys: &'static [schema::Key] = match head.name.as_str() {
        "peft" => match recipe.one("peft").and_then(|p| p.method) {
            Some(m) => m.keys,
            None => return Err((0, "the recipe has no `peft` block to sweep".into(), vec![])),
        },
        kw => schema::block(kw).map(|b| b.keys).unwrap_or(&[]),
    };
    let Some(seg) = path.get(1) else {
        return Err((
            0,
            format!("name a key of `{}`: `{}.key`", head.name, head.name),
            keys.iter().map(|k| k.name).collect(),
        ));
    };
    let Some(key) = keys.iter().find(|k| k.name == seg.name) else {
        return Err((
            1,
            format!("`{}` has no key `{}`", head.name, seg.name),
            keys.iter().map(|k| k.name).collect(),
        ));
    };
    match (&key.ty, path.get(2)) {
        (ty, None) => Ok(AxisTarget::Setting(ty)),
        (Ty::Calls(defs), Some(arg)) => {
            let params: Vec<&'static schema::Key> =
                defs.iter().flat_map(|d| d.params.iter()).collect();
            match params.iter().find(|p| p.name == arg.name) {
                Some(p) if path.len() == 3 => Ok(AxisTarget::Setting(&p.ty)),
                Some(_) => Err((3, "too deep".into(), vec![])),
                None => Err((
                    2,
                    format!(
                        "`{}.{}` has no argument `{}`",
                        head.name, seg.name, arg.name
                    ),
                    params.iter().map(|p| p.name).collect(),
                )),
            }
        }
        (Ty::Record(rk), Some(arg)) => match rk.iter().find(|k| k.name == arg.name) {
            Some(k) if path.len() == 3 => Ok(AxisTarget::Setting(&k.ty)),
            Some(_) => Err((3, "too deep".into(), vec![])),
            None => Err((
                2,
                format!("`{}.{}` has no key `{}`", head.name, seg.name, arg.name),
                rk.iter().map(|k| k.name).collect(),
            )),
        },
        (_, Some(_)) => Err((
            2,
            format!("`{}.{}` has no parts", head.name, seg.name),
            vec![],
        )),
    }
}

pub fn check_axes(recipe: &Recipe, sweep: &CBlock, diags: &mut Vec<Diagnostic>) {
    let lets = recipe
        .lets
        .iter()
        .map(|(k, (_, _, e))| (k.clone(), e.clone()))
        .collect();
    let mut local = Vec::new();
    {
        let mut t = Types {
            diags: &mut local,
            lets: &lets,
            expanding: Vec::new(),
        };
        for ax in &sweep.axes {
            match resolve(recipe, &ax.path) {
                Err((i, msg, cands)) => {
                    let at = &ax.path[i.min(ax.path.len() - 1)];
                    let d = Diagnostic::error(&BAD_AXIS, at.span, msg).label("no such setting");
                    t.diags
                        .push(suggest(d, &at.name, at.span, cands, "settings"));
                }
                Ok(target) => check_values(&mut t, &ax.values, &target, recipe),
            }
        }
    }
    diags.extend(local.into_iter().map(|d| d.in_file(sweep.file)));
}

fn check_values(t: &mut Types, values: &Expr, target: &AxisTarget, recipe: &Recipe) {
    match (&values.kind, target) {
        (ExprKind::List(items), AxisTarget::Setting(ty)) => {
            for it in items {
                t.check(it, ty);
            }
        }
        (ExprKind::List(items), AxisTarget::Method) => {
            for it in items {
                check_method(t, it);
            }
        }
        (ExprKind::Call { callee, .. }, AxisTarget::Setting(Ty::Float { .. } | Ty::Int { .. })) => {
            if let Some(v) = t.call(values, schema::RANGES) {
                if let (Some(lo), Some(hi)) = (
                    v.arg("low").and_then(|v| v.as_f64()),
                    v.arg("high").and_then(|v| v.as_f64()),
                ) {
                    if lo >= hi {
                        t.diags.push(
                            Diagnostic::error(
                                &BAD_AXIS,
                                values.span,
                                format!("`{}` needs low < high", callee.name),
                            )
                            .label(format!("{lo} ≥ {hi}")),
                        );
                    }
                }
            }
            let _ = recipe;
        }
        _ => {
            t.diags.push(
                Diagnostic::error(
                    &BAD_AXIS,
                    values.span,
                    "an axis ranges over a list of values or `loguniform(low, high)`",
                )
                .label(format!("found {}", values.describe()))
                .help("write `in [1e-4, 3e-4]`"),
            );
        }
    }
}

/// `lora(rank = 4)` as a value of the `peft` axis: a method and its keys.
fn check_method(t: &mut Types, e: &Expr) {
    let (callee, args) = match &e.kind {
        ExprKind::Call { callee, args } => (callee, args.as_slice()),
        ExprKind::Path(p) if p.len() == 1 => (&p[0], &[][..]),
        _ => {
            t.mismatch(e, &Ty::Enum(&["lora(…)", "ia3(…)"]));
            return;
        }
    };
    let Some(m) = schema::method(&callee.name) else {
        let d = Diagnostic::error(
            &super::blocks::UNKNOWN_METHOD,
            callee.span,
            format!("unknown PEFT method `{}`", callee.name),
        )
        .label("not a method");
        t.diags.push(suggest(
            d,
            &callee.name,
            callee.span,
            schema::PEFT_METHODS.iter().map(|m| m.name),
            "methods",
        ));
        return;
    };
    for a in args {
        let Some(n) = &a.name else {
            t.diags.push(
                Diagnostic::error(
                    &BAD_AXIS,
                    a.span,
                    "method settings are named: `lora(rank = 4)`",
                )
                .label("unnamed"),
            );
            continue;
        };
        match m.key(&n.name) {
            Some(k) => {
                t.check(&a.value, &k.ty);
            }
            None => {
                let d = Diagnostic::error(
                    &super::blocks::UNKNOWN_KEY,
                    n.span,
                    format!("unknown key `{}` in `peft {}`", n.name, m.name),
                )
                .label("not a key of this method");
                t.diags.push(suggest(
                    d,
                    &n.name,
                    n.span,
                    m.keys.iter().map(|k| k.name),
                    "keys",
                ));
            }
        }
    }
}
