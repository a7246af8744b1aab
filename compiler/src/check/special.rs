//! The shapes of the language's special values: data references with
//! filters, metrics, row expressions, chat messages, few-shot clauses,
//! curriculum orderings, PEFT targets and splits.

use std::collections::BTreeMap;

use super::schema::{self, Ty};
use super::types::{Types, BAD_REGEX, CHAT_ROLES, EMPTY_LIST, UNKNOWN_CALL};
use super::value::*;
use crate::diagnostics::{suggest, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Order, UnOp};

crate::declare_codes! {
    /// A metric reference names a split or metric that does not exist.
    ///
    /// Metrics are written `split.metric`: the split is `train`, `val` or
    /// `test`; the metric one of `loss`, `perplexity`, `accuracy`, `f1`,
    /// `exact_match`, `rouge_l`, `margin`. Example: `val.accuracy`.
    UNKNOWN_METRIC = "FT0219", "unknown metric";

    /// A row expression uses something that is not allowed in it.
    ///
    /// Row expressions (derived labels, filters) may use the row's fields,
    /// numbers, strings, comparisons, `and`/`or`/`not`, arithmetic,
    /// `if … then … else …`, and the functions `tokens(…)`, `len(…)`,
    /// `lower(…)`.
    BAD_ROW_EXPR = "FT0220", "invalid row expression";

    /// A chat message has a role other than `system`, `user` or `assistant`.
    ///
    /// Write messages as `chat([system: "…", user: "{question}", assistant: "{answer}"])`.
    /// The loss is taken on `assistant` turns only.
    UNKNOWN_ROLE = "FT0221", "unknown chat role";

    /// A split record is malformed: a split name that does not exist, a
    /// fraction out of range, or shares that do not add up to 100%.
    ///
    /// `split = { train = 80%, val = 10%, test = 10%, seed = 42 }`. The
    /// shares must sum to exactly 100% (or 1.0); split names are `train`,
    /// `val` and `test`.
    SPLIT_SUM = "FT0401", "split shares do not sum to 100%";
}

pub fn check_special(t: &mut Types, e: &Expr, ty: &Ty) -> Option<V> {
    let span = e.span;
    let ok = |val| Some(V { val, span });
    match ty {
        Ty::Data => match &e.unparen().kind {
            ExprKind::Path(p) if p.len() == 1 => ok(Val::Data {
                name: p[0].clone(),
                filter: None,
            }),
            ExprKind::Where { data, cond } => {
                let name = data.as_ident()?.clone();
                row_expr(t, cond)?;
                ok(Val::Data {
                    name,
                    filter: Some((**cond).clone()),
                })
            }
            _ => t.mismatch(e, ty),
        },
        Ty::ModelRef => match e.as_ident() {
            Some(id) => ok(Val::ModelRef(id.clone())),
            None => t.mismatch(e, ty),
        },
        Ty::Metric => {
            let Some(p) = e.as_path() else {
                return t.mismatch(e, ty);
            };
            if p.len() != 2 {
                t.diags.push(
                    Diagnostic::error(&UNKNOWN_METRIC, span, "a metric is written `split.metric`")
                        .label("expected e.g. `val.accuracy`"),
                );
                return None;
            }
            let (split, metric) = (&p[0], &p[1]);
            let mut bad = false;
            if !schema::SPLIT_NAMES.contains(&split.name.as_str()) {
                let d = Diagnostic::error(
                    &UNKNOWN_METRIC,
                    split.span,
                    format!("unknown split `{}`", split.name),
                )
                .label("not a split");
                t.diags.push(suggest(
                    d,
                    &split.name,
                    split.span,
                    schema::SPLIT_NAMES.iter().copied(),
                    "splits",
                ));
                bad = true;
            }
            if !schema::metric_names().any(|m| m == metric.name) {
                let d = Diagnostic::error(
                    &UNKNOWN_METRIC,
                    metric.span,
                    format!("unknown metric `{}`", metric.name),
                )
                .label("not a metric");
                t.diags.push(suggest(
                    d,
                    &metric.name,
                    metric.span,
                    schema::metric_names(),
                    "metrics",
                ));
                bad = true;
            }
            (!bad).then(|| V {
                val: Val::Metric {
                    split: split.clone(),
                    metric: metric.clone(),
                },
                span,
            })
        }
        Ty::RowExpr => {
            row_expr(t, e)?;
            ok(Val::RowExpr(e.clone()))
        }
        Ty::Prompt => match &e.kind {
            ExprKind::Str(s) => t.template(s).map(|tp| V {
                val: Val::Template(tp),
                span,
            }),
            ExprKind::Call { callee, args } if callee.name == "chat" => {
                let [arg] = args.as_slice() else {
                    t.diags.push(
                        Diagnostic::error(
                            &super::types::TOO_MANY_ARGUMENTS,
                            span,
                            "`chat` takes one argument",
                        )
                        .label("here")
                        .help("`chat([user: \"{question}\"])` or `chat(messages_field)`"),
                    );
                    return None;
                };
                match &arg.value.kind {
                    ExprKind::Path(p) if p.len() == 1 => {
                        ok(Val::Chat(ChatMessages::Field(p[0].clone())))
                    }
                    ExprKind::List(items) => {
                        let mut turns = Vec::new();
                        for it in items {
                            let ExprKind::Pair { key, value } = &it.kind else {
                                t.diags.push(
                                    Diagnostic::error(
                                        &super::types::WRONG_TYPE,
                                        it.span,
                                        "a chat message is `role: \"template\"`",
                                    )
                                    .label("expected `user: \"…\"`"),
                                );
                                return None;
                            };
                            if !CHAT_ROLES.contains(&key.name.as_str()) {
                                let d = Diagnostic::error(
                                    &UNKNOWN_ROLE,
                                    key.span,
                                    format!("unknown role `{}`", key.name),
                                )
                                .label("not a chat role");
                                t.diags.push(suggest(
                                    d,
                                    &key.name,
                                    key.span,
                                    CHAT_ROLES.iter().copied(),
                                    "roles",
                                ));
                                return None;
                            }
                            let ExprKind::Str(s) = &value.kind else {
                                return t.mismatch(value, &Ty::Template);
                            };
                            turns.push((key.clone(), t.template(s)?));
                        }
                        if turns.is_empty() {
                            t.diags.push(
                                Diagnostic::error(
                                    &EMPTY_LIST,
                                    arg.span,
                                    "a chat needs at least one message",
                                )
                                .label("empty"),
                            );
                            return None;
                        }
                        ok(Val::Chat(ChatMessages::Turns(turns)))
                    }
                    _ => t.mismatch(&arg.value, &Ty::List(&Ty::Template)),
                }
            }
            ExprKind::Call { callee, .. } => {
                let d = Diagnostic::error(
                    &UNKNOWN_CALL,
                    callee.span,
                    format!("unknown function `{}`", callee.name),
                )
                .label("expected a template string or `chat([…])`");
                t.diags
                    .push(suggest(d, &callee.name, callee.span, ["chat"], "accepted"));
                None
            }
            _ => t.mismatch(e, ty),
        },
        Ty::Shots => {
            let ExprKind::From { count, source } = &e.kind else {
                let d = t.mismatch(e, ty);
                if let Some(last) = t.diags.last_mut() {
                    last.help = Some("write `2 from train`".into());
                }
                return d;
            };
            let n = t.check(
                count,
                &Ty::Int {
                    min: 1,
                    max: Some(64),
                },
            )?;
            let Some(split) = source.as_ident() else {
                return t.mismatch(source, &Ty::Enum(schema::SPLIT_NAMES));
            };
            t.check(source, &Ty::Enum(schema::SPLIT_NAMES))?;
            ok(Val::Shots {
                count: n.as_i64()? as u64,
                split: split.clone(),
            })
        }
        Ty::Ordering => {
            let (key, order) = match &e.kind {
                ExprKind::Ordered { key, order } => (&**key, *order),
                _ => (e, Order::Ascending),
            };
            let key = match &key.kind {
                ExprKind::Path(p) if p.len() == 1 => OrderKey::Field(p[0].clone()),
                ExprKind::Call { callee, args } if callee.name == "tokens" && args.len() == 1 => {
                    match args[0].value.as_ident() {
                        Some(id) => OrderKey::Tokens(id.clone()),
                        None => {
                            return t.mismatch(
                                &args[0].value,
                                &Ty::Enum(&["prompt", "completion", "input"]),
                            )
                        }
                    }
                }
                _ => return t.mismatch(key, ty),
            };
            ok(Val::Ordering { key, order })
        }
        Ty::Targets => targets(t, e),
        Ty::ModuleMap => {
            let ExprKind::Record(fields) = &e.kind else {
                return t.mismatch(e, ty);
            };
            let mut map = BTreeMap::new();
            for f in fields {
                let v = t.check(&f.value, &schema::positive())?;
                map.insert(f.key.name.clone(), (v.as_f64()?, f.key.span));
            }
            ok(Val::ModuleMap(map))
        }
        Ty::Split => split(t, e),
        _ => t.mismatch(e, ty),
    }
}

fn targets(t: &mut Types, e: &Expr) -> Option<V> {
    let one = |t: &mut Types, e: &Expr| -> Option<Target> {
        match &e.kind {
            ExprKind::Path(p) if p.len() == 1 && p[0].name == "all_linear" => {
                Some(Target::AllLinear(e.span))
            }
            ExprKind::Path(p) => Some(Target::Suffix(
                p.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
                e.span,
            )),
            ExprKind::Str(s) if s.value == "all-linear" => Some(Target::AllLinear(e.span)),
            ExprKind::Str(s) => Some(Target::Suffix(s.value.clone(), e.span)),
            ExprKind::Call { callee, args } if callee.name == "regex" && args.len() == 1 => {
                let ExprKind::Str(s) = &args[0].value.kind else {
                    t.mismatch(&args[0].value, &Ty::Str);
                    return None;
                };
                if let Err(err) = regex::Regex::new(&s.value) {
                    let msg = err.to_string();
                    let last = msg
                        .lines()
                        .last()
                        .unwrap_or("invalid pattern")
                        .trim()
                        .to_string();
                    t.diags.push(
                        Diagnostic::error(
                            &BAD_REGEX,
                            s.span,
                            format!("invalid regular expression: {last}"),
                        )
                        .label("does not compile"),
                    );
                    return None;
                }
                Some(Target::Regex(s.value.clone(), e.span))
            }
            ExprKind::Call { callee, .. } => {
                let d = Diagnostic::error(
                    &UNKNOWN_CALL,
                    callee.span,
                    format!("unknown function `{}`", callee.name),
                )
                .label("targets are names, `regex(\"…\")` or `all_linear`");
                t.diags
                    .push(suggest(d, &callee.name, callee.span, ["regex"], "accepted"));
                None
            }
            _ => {
                t.mismatch(e, &Ty::Targets);
                None
            }
        }
    };
    let list: Vec<Target> = match &e.kind {
        ExprKind::List(items) => {
            if items.is_empty() {
                t.diags.push(
                    Diagnostic::error(&EMPTY_LIST, e.span, "no targets: nothing would be trained")
                        .label("empty")
                        .help("name modules such as `[query, value]`, or `all_linear`"),
                );
                return None;
            }
            let out: Vec<Target> = items.iter().filter_map(|i| one(t, i)).collect();
            if out.len() != items.len() {
                return None;
            }
            out
        }
        _ => vec![one(t, e)?],
    };
    Some(V {
        val: Val::Targets(list),
        span: e.span,
    })
}

fn split(t: &mut Types, e: &Expr) -> Option<V> {
    let ExprKind::Record(fields) = &e.kind else {
        return t.mismatch(e, &Ty::Split);
    };
    let mut decl = SplitDecl {
        parts: Vec::new(),
        seed: None,
        stratify: None,
        key: Vec::new(),
    };
    let mut ok = true;
    let options = ["seed", "stratify", "key"];
    for f in fields {
        let name = f.key.name.as_str();
        if let Some(prev) = fields
            .iter()
            .take_while(|g| !std::ptr::eq(*g, f))
            .find(|g| g.key.name == name)
        {
            t.diags.push(
                Diagnostic::error(
                    &super::blocks::DUPLICATE_KEY,
                    f.key.span,
                    format!("`{name}` is set twice"),
                )
                .label("set again here")
                .secondary(prev.key.span, "first set here"),
            );
            ok = false;
            continue;
        }
        match name {
            "train" | "val" | "test" => match t.check(&f.value, &Ty::Fraction) {
                Some(v) => decl.parts.push((name.to_string(), v.as_f64()?, f.span)),
                None => ok = false,
            },
            "seed" => match t.check(&f.value, &schema::int(0)) {
                Some(v) => decl.seed = Some(v.as_i64()? as u64),
                None => ok = false,
            },
            "stratify" => match f.value.as_ident() {
                Some(id) => decl.stratify = Some(id.clone()),
                None => {
                    t.mismatch(&f.value, &Ty::Enum(&["label", "a field name"]));
                    ok = false;
                }
            },
            "key" => match &f.value.kind {
                ExprKind::Path(p) if p.len() == 1 => decl.key.push(p[0].clone()),
                ExprKind::List(items) if items.iter().all(|i| i.as_ident().is_some()) => decl
                    .key
                    .extend(items.iter().filter_map(|i| i.as_ident().cloned())),
                _ => {
                    t.mismatch(&f.value, &Ty::List(&Ty::Str));
                    ok = false;
                }
            },
            other => {
                let d = Diagnostic::error(
                    &super::types::UNKNOWN_RECORD_KEY,
                    f.key.span,
                    format!("unknown key `{other}` in split"),
                )
                .label("not a split name or option");
                let cands = schema::SPLIT_NAMES.iter().copied().chain(options);
                t.diags.push(suggest(
                    d,
                    other,
                    f.key.span,
                    cands,
                    "split names and options",
                ));
                ok = false;
            }
        }
    }
    if ok && !decl.parts.is_empty() {
        let sum: f64 = decl.parts.iter().map(|p| p.1).sum();
        if (sum - 1.0).abs() > 1e-9 {
            let shown: Vec<String> = decl
                .parts
                .iter()
                .map(|(n, f, _)| format!("{n} {}%", fmt_pct(*f)))
                .collect();
            t.diags.push(
                Diagnostic::error(
                    &SPLIT_SUM,
                    e.span,
                    format!("split shares sum to {}%, not 100%", fmt_pct(sum)),
                )
                .label(shown.join(" + "))
                .help(if sum < 1.0 {
                    format!("add {}% to one of the splits", fmt_pct(1.0 - sum))
                } else {
                    format!("remove {}% from the splits", fmt_pct(sum - 1.0))
                }),
            );
            return None;
        }
    }
    ok.then_some(V {
        val: Val::Split(decl),
        span: e.span,
    })
}

fn fmt_pct(f: f64) -> String {
    let p = (f * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

/// Validates the shape of a row expression: fields, literals, operators,
/// `if`, and the row functions.
pub fn row_expr(t: &mut Types, e: &Expr) -> Option<()> {
    match &e.kind {
        ExprKind::Number { .. } | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Path(_) => {
            Some(())
        }
        ExprKind::Paren(inner) => row_expr(t, inner),
        ExprKind::Unary {
            op: UnOp::Neg | UnOp::Not,
            expr,
        } => row_expr(t, expr),
        ExprKind::Binary { lhs, rhs, .. } => {
            let a = row_expr(t, lhs);
            let b = row_expr(t, rhs);
            a.and(b)
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            let a = row_expr(t, cond);
            let b = row_expr(t, then);
            let c = row_expr(t, otherwise);
            a.and(b).and(c)
        }
        ExprKind::Call { callee, args } => {
            if !schema::ROW_FUNCTIONS.iter().any(|(n, _)| *n == callee.name) {
                let d = Diagnostic::error(
                    &UNKNOWN_CALL,
                    callee.span,
                    format!("unknown function `{}`", callee.name),
                )
                .label("not a row function");
                t.diags.push(suggest(
                    d,
                    &callee.name,
                    callee.span,
                    schema::ROW_FUNCTIONS.iter().map(|(n, _)| *n),
                    "row functions",
                ));
                return None;
            }
            if args.len() != 1 || args[0].name.is_some() {
                t.diags.push(
                    Diagnostic::error(
                        &super::types::TOO_MANY_ARGUMENTS,
                        e.span,
                        format!("`{}` takes one field", callee.name),
                    )
                    .label("expected one argument"),
                );
                return None;
            }
            row_expr(t, &args[0].value)
        }
        _ => {
            t.diags.push(
                Diagnostic::error(&BAD_ROW_EXPR, e.span, format!("{} is not allowed in a row expression", e.describe()))
                    .label("not allowed here")
                    .help("row expressions use fields, literals, operators, `if … then … else …` and `tokens`, `len`, `lower`"),
            );
            None
        }
    }
}
