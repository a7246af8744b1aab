//! Type-checks one expression against the type the schema gives its key,
//! producing a checked value or diagnostics (with did-you-mean where a word
//! was misspelt). Constant arithmetic and `let` names are resolved here.

use std::collections::{BTreeMap, HashMap};

use super::schema::{self, describe, CallDef, Key, Ty};
pub use super::template::parse_template;
use super::value::*;
use crate::diagnostics::{suggest, Diagnostic};
use crate::syntax::ast::{BinOp, Expr, ExprKind, Field, Ident, Span, StrLit, UnOp};

crate::declare_codes! {
    /// A value has the wrong type for its key.
    ///
    /// Each key expects one kind of value; `ft explain` on the key's block
    /// or hovering the key in an editor shows which. Common cases: quoting a
    /// word that should be bare (`schedule = "cosine"` → `schedule = cosine`),
    /// or giving a number where a list is expected (`targets = query` →
    /// `targets = [query]`).
    WRONG_TYPE = "FT0201", "wrong type";

    /// A word is not one of the values this key accepts.
    ///
    /// Enumerations such as `truncate = truncate | drop | error` accept only
    /// the listed words. The message suggests the closest one.
    UNKNOWN_VALUE = "FT0202", "unknown value";

    /// A number is outside the range its key allows.
    ///
    /// Ranges exist to catch mistakes before training starts: a LoRA rank of
    /// 0, a dropout of 1 (every activation dropped), a negative learning
    /// rate, a share over 100%.
    OUT_OF_RANGE = "FT0203", "value out of range";

    /// A function-like value names a function that does not exist here.
    ///
    /// For example `optimizer = adam(lr = 1e-4)`: the optimizers are
    /// `adamw` and `sgd`. Each key accepts its own set of calls.
    UNKNOWN_CALL = "FT0204", "unknown function";

    /// A call is given an argument it does not take.
    ///
    /// `adamw(lr = 2e-4, decay = 0.01)`: the argument is `weight_decay`.
    UNKNOWN_ARGUMENT = "FT0205", "unknown argument";

    /// A call lacks a required argument.
    ///
    /// `adamw()` needs at least `lr`; `classify()` needs its `labels`.
    MISSING_ARGUMENT = "FT0206", "missing argument";

    /// A call is given more positional arguments than it has parameters, or
    /// the same argument twice.
    ///
    /// Name the arguments to make the intent clear: `hf("path")` takes one
    /// positional argument; options are named (`tsv("f.tsv", columns = [a, b])`).
    TOO_MANY_ARGUMENTS = "FT0207", "too many arguments";

    /// A whole number is required here.
    ///
    /// Counts such as `batch`, `rank`, `steps` and `virtual_tokens` cannot
    /// be fractional, and cannot be given as percentages.
    NOT_AN_INTEGER = "FT0208", "integer expected";

    /// A template string has a malformed placeholder.
    ///
    /// Placeholders are `{field}` or `{nested.field}`. A literal brace is
    /// written `{{` or `}}`. An unclosed `{` or an empty `{}` is an error.
    BAD_TEMPLATE = "FT0209", "malformed template";

    /// A `regex("…")` target is not a valid regular expression.
    ///
    /// The syntax is Rust's `regex` crate (like Python's `re` without
    /// look-around). The pattern must match the whole module path, as in
    /// PEFT: `regex(".*\\.(query|value)")`.
    BAD_REGEX = "FT0210", "invalid regular expression";

    /// A list that must not be empty is empty.
    ///
    /// `targets = []` would train nothing; `labels = []` has no classes.
    EMPTY_LIST = "FT0211", "empty list";

    /// A list repeats an element.
    ///
    /// Repeated labels or targets are almost always a copy-paste slip; the
    /// second occurrence is shown with the first.
    DUPLICATE_ELEMENT = "FT0212", "duplicate element";

    /// A string uses an escape sequence that does not exist.
    ///
    /// Valid escapes are `\n`, `\t`, `\r`, `\"` and `\\`. To write a
    /// backslash, double it.
    BAD_ESCAPE = "FT0213", "invalid escape";

    /// A name used as a value is not defined.
    ///
    /// Values may refer to `let` constants (`lr = base_lr`) declared in this
    /// recipe or an imported one. Check the spelling, or declare the
    /// constant: `let base_lr = 2e-4`.
    UNDEFINED_CONSTANT = "FT0214", "undefined constant";

    /// `let` constants refer to each other in a cycle.
    ///
    /// `let a = b` and `let b = a` have no value. Give one of them a
    /// literal value.
    LET_CYCLE = "FT0215", "cyclic constant";

    /// A number literal is too large to represent.
    ///
    /// Numbers are 64-bit floating point; `1e400` is infinite.
    NUMBER_TOO_LARGE = "FT0216", "number too large";

    /// A record has a key it does not accept.
    ///
    /// Records (`{ key = value }`) have a fixed set of keys, listed in
    /// `docs/language.md` and shown on hover. The closest valid key is
    /// suggested.
    UNKNOWN_RECORD_KEY = "FT0217", "unknown key in record";

    /// A record lacks a required key.
    ///
    /// `early_stop = { patience = 2 }` needs the `metric` to watch.
    MISSING_RECORD_KEY = "FT0218", "missing key in record";
}

/// The roles a chat message may have.
pub const CHAT_ROLES: &[&str] = &["system", "user", "assistant"];

pub struct Types<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
    pub lets: &'a HashMap<String, Expr>,
    /// Lets being expanded, to detect cycles.
    pub expanding: Vec<String>,
}

impl Types<'_> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn wrong_type(&mut self, e: &Expr, ty: &Ty) {
        let d = Diagnostic::error(
            &WRONG_TYPE,
            e.span,
            format!("expected {}, found {}", describe(ty), e.describe()),
        )
        .label(format!("this is {}", e.describe()));
        let d = match (&e.kind, ty) {
            (ExprKind::Str(s), Ty::Enum(words)) if words.contains(&s.value.as_str()) => d
                .help(format!("write the word without quotes: `{}`", s.value))
                .fix(
                    e.span,
                    s.value.clone(),
                    format!("Remove the quotes from `{}`", s.value),
                ),
            (_, Ty::List(_)) if !matches!(e.kind, ExprKind::List(_)) => {
                d.help("put the value in a list: `[…]`")
            }
            _ => d,
        };
        self.err(d);
    }

    /// Checks the value of the `let` constant that the bare name `e` refers
    /// to, with `f`, while that constant is marked as being expanded (so a
    /// cycle ends instead of recursing forever). `None`: `e` is not a
    /// constant. `Some(None)`: it is, and `f` reported a problem, or the
    /// constant is part of a cycle.
    fn via_let<T>(
        &mut self,
        e: &Expr,
        f: impl FnOnce(&mut Self, &Expr) -> Option<T>,
    ) -> Option<Option<T>> {
        let id = e.as_ident()?;
        let value = self.lets.get(&id.name)?.clone();
        if let Some(pos) = self.expanding.iter().position(|n| *n == id.name) {
            // Reported once per cycle: where it closes on its first-declared
            // constant, when that is where the expansion started.
            let d = Diagnostic::error(
                &LET_CYCLE,
                id.span,
                format!("`{}` is defined in terms of itself", id.name),
            )
            .label("cycle through here")
            .note(format!(
                "cycle: {} → {}",
                self.expanding[pos..].join(" → "),
                id.name
            ))
            .help("give one of the constants in the cycle a literal value");
            let dup = self
                .diags
                .iter()
                .any(|o| o.code == d.code && o.primary.span == d.primary.span);
            let first = self.expanding[pos..]
                .iter()
                .min_by_key(|n| self.lets.get(*n).map(|v| v.span.start));
            if pos == 0 && first == Some(&id.name) && !dup {
                self.err(d);
            }
            return Some(None);
        }
        let sub = Expr {
            kind: value.kind,
            span: e.span,
        };
        self.expanding.push(id.name.clone());
        let r = f(self, &sub);
        self.expanding.pop();
        Some(r)
    }

    /// Folds constant arithmetic: `2e-4 * 2`, `-1`, `base_lr / 10`.
    /// Returns the number and whether it was written as a percentage.
    pub fn const_num(&mut self, e: &Expr) -> Option<Result<(f64, bool), ()>> {
        match &e.kind {
            ExprKind::Number {
                value,
                percent,
                text,
            } => {
                if value.is_infinite() {
                    self.err(
                        Diagnostic::error(
                            &NUMBER_TOO_LARGE,
                            e.span,
                            format!("`{text}` is too large"),
                        )
                        .label("infinite as a 64-bit float"),
                    );
                    return Some(Err(()));
                }
                Some(Ok((*value, *percent)))
            }
            ExprKind::Paren(inner) => self.const_num(inner),
            ExprKind::Unary {
                op: UnOp::Neg,
                expr,
            } => self.const_num(expr).map(|r| r.map(|(v, p)| (-v, p))),
            ExprKind::Binary { op, lhs, rhs }
                if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div) =>
            {
                let l = self.const_num(lhs)?;
                let r = self.const_num(rhs)?;
                let ((a, pa), (b, pb)) = match (l, r) {
                    (Ok(l), Ok(r)) => (l, r),
                    _ => return Some(Err(())),
                };
                let v = match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    _ => a / b,
                };
                Some(Ok((v, pa || pb)))
            }
            ExprKind::Path(p) if p.len() == 1 => match self.via_let(e, |t, sub| t.const_num(sub)) {
                Some(Some(r)) => Some(r),
                Some(None) => Some(Err(())),
                None => None,
            },
            _ => None,
        }
    }

    /// Checks `e` against `ty`. `None` means a diagnostic was reported.
    pub fn check(&mut self, e: &Expr, ty: &Ty) -> Option<V> {
        let span = e.span;
        let v = |val| Some(V { val, span });
        match ty {
            Ty::Int { min, max } => {
                let (n, percent) = self.number(e, ty)?;
                if percent || n.fract() != 0.0 {
                    self.err(
                        Diagnostic::error(
                            &NOT_AN_INTEGER,
                            span,
                            format!("expected a whole number, found `{}`", text_of(e)),
                        )
                        .label("not a whole number"),
                    );
                    return None;
                }
                let i = n as i64;
                if i < *min || max.is_some_and(|m| i > m) {
                    self.out_of_range(e, ty);
                    return None;
                }
                v(Val::Int(i))
            }
            Ty::Float {
                min,
                min_exclusive,
                max,
                max_exclusive,
            } => {
                let (n, percent) = self.number(e, ty)?;
                let n = if percent { n / 100.0 } else { n };
                let below = min.is_some_and(|m| if *min_exclusive { n <= m } else { n < m });
                let above = max.is_some_and(|m| if *max_exclusive { n >= m } else { n > m });
                if below || above {
                    self.out_of_range(e, ty);
                    return None;
                }
                v(Val::Float(n))
            }
            Ty::Fraction => {
                let (n, percent) = self.number(e, ty)?;
                let f = if percent { n / 100.0 } else { n };
                if !(0.0..=1.0).contains(&f) {
                    self.out_of_range(e, ty);
                    return None;
                }
                v(Val::Fraction(f))
            }
            Ty::FractionOrCount => {
                let (n, percent) = self.number(e, ty)?;
                if percent || n < 1.0 {
                    let f = if percent { n / 100.0 } else { n };
                    if !(0.0..=1.0).contains(&f) {
                        self.out_of_range(e, ty);
                        return None;
                    }
                    v(Val::Fraction(f))
                } else if n.fract() == 0.0 {
                    v(Val::Count(n as u64))
                } else {
                    self.err(
                        Diagnostic::error(&NOT_AN_INTEGER, span, "a number of steps must be whole")
                            .label("not a whole number")
                            .help("give a share such as `10%`, or a whole number of steps"),
                    );
                    None
                }
            }
            Ty::Bool => match &e.kind {
                ExprKind::Bool(b) => v(Val::Bool(*b)),
                _ => match self.via_let(e, |t, sub| t.check(sub, ty)) {
                    Some(r) => r,
                    None => self.mismatch(e, ty),
                },
            },
            Ty::Str | Ty::Path => match &e.kind {
                ExprKind::Str(s) => {
                    let s = self.string(s)?;
                    v(Val::Str(s))
                }
                _ => match self.via_let(e, |t, sub| t.check(sub, ty)) {
                    Some(r) => r,
                    None => self.mismatch(e, ty),
                },
            },
            Ty::Template => match &e.kind {
                ExprKind::Str(s) => {
                    let t = self.template(s)?;
                    v(Val::Template(t))
                }
                _ => match self.via_let(e, |t, sub| t.check(sub, ty)) {
                    Some(r) => r,
                    None => self.mismatch(e, ty),
                },
            },
            Ty::Enum(words) => match e.as_ident() {
                Some(id) if words.contains(&id.name.as_str()) => v(Val::Word(id.name.clone())),
                Some(id) => {
                    if let Some(r) = self.via_let(e, |t, sub| t.check(sub, ty)) {
                        return r;
                    }
                    let d = Diagnostic::error(
                        &UNKNOWN_VALUE,
                        id.span,
                        format!("unknown value `{}`", id.name),
                    )
                    .label("not one of the accepted values");
                    let d = suggest(
                        d,
                        &id.name,
                        id.span,
                        words.iter().copied(),
                        "accepted values",
                    );
                    self.err(d);
                    None
                }
                None => self.mismatch(e, ty),
            },
            Ty::List(inner) => match &e.kind {
                ExprKind::List(items) => {
                    let out: Vec<V> = items.iter().filter_map(|i| self.check(i, inner)).collect();
                    if out.len() != items.len() {
                        return None;
                    }
                    self.no_duplicates(&out);
                    v(Val::List(out))
                }
                _ => match self.via_let(e, |t, sub| t.check(sub, ty)) {
                    Some(r) => r,
                    None => self.mismatch(e, ty),
                },
            },
            Ty::Record(keys) => match &e.kind {
                ExprKind::Record(fields) => {
                    let map = self.record(fields, keys, span)?;
                    v(Val::Record(map))
                }
                _ => self.mismatch(e, ty),
            },
            Ty::Calls(defs) => self.call(e, defs),
            Ty::AnyOf(tys) => {
                let ty = tys
                    .iter()
                    .find(|t| shape_fits(e, t))
                    .copied()
                    .unwrap_or(tys[0]);
                if !tys.iter().any(|t| shape_fits(e, t)) {
                    let joined = tys
                        .iter()
                        .map(|t| describe(t))
                        .collect::<Vec<_>>()
                        .join(" or ");
                    self.err(
                        Diagnostic::error(
                            &WRONG_TYPE,
                            span,
                            format!("expected {joined}, found {}", e.describe()),
                        )
                        .label(format!("this is {}", e.describe())),
                    );
                    return None;
                }
                self.check(e, ty)
            }
            // The remaining types carry meaning the other modules decide;
            // `special` checks their shape.
            _ => super::special::check_special(self, e, ty),
        }
    }

    pub fn mismatch(&mut self, e: &Expr, ty: &Ty) -> Option<V> {
        self.wrong_type(e, ty);
        None
    }

    fn out_of_range(&mut self, e: &Expr, ty: &Ty) {
        self.err(
            Diagnostic::error(
                &OUT_OF_RANGE,
                e.span,
                format!("`{}` is out of range", text_of(e)),
            )
            .label(format!("expected {}", describe(ty))),
        );
    }

    /// A numeric value (folding constants); reports a type error otherwise.
    fn number(&mut self, e: &Expr, ty: &Ty) -> Option<(f64, bool)> {
        match self.const_num(e) {
            Some(Ok(n)) => Some(n),
            Some(Err(())) => None,
            None => {
                if let Some(id) = e.as_ident() {
                    let names: Vec<&str> = self.lets.keys().map(String::as_str).collect();
                    let d = Diagnostic::error(
                        &UNDEFINED_CONSTANT,
                        id.span,
                        format!("`{}` is not defined", id.name),
                    )
                    .label(format!("expected {}", describe(ty)));
                    let d = suggest(d, &id.name, id.span, names, "constants in scope");
                    self.err(d);
                    None
                } else {
                    self.mismatch(e, ty);
                    None
                }
            }
        }
    }

    pub fn string(&mut self, s: &StrLit) -> Option<String> {
        for span in &s.bad_escapes {
            self.err(
                Diagnostic::error(&BAD_ESCAPE, *span, "unknown escape")
                    .label("not an escape")
                    .help("valid escapes are \\n, \\t, \\r, \\\" and \\\\"),
            );
        }
        s.bad_escapes.is_empty().then(|| s.value.clone())
    }

    pub fn template(&mut self, s: &StrLit) -> Option<Template> {
        let text = self.string(s)?;
        match parse_template(&text, s.verbatim.then_some(s.content_start)) {
            Ok(t) => Some(t),
            Err((at, msg)) => {
                let span = if s.verbatim {
                    Span::new(s.content_start + at, s.content_start + at + 1)
                } else {
                    s.span
                };
                self.err(
                    Diagnostic::error(&BAD_TEMPLATE, span, msg)
                        .label("here")
                        .help("placeholders are `{field}`; write `{{` and `}}` for literal braces"),
                );
                None
            }
        }
    }

    fn no_duplicates(&mut self, items: &[V]) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        for it in items {
            let key = match &it.val {
                Val::Str(s) | Val::Word(s) => s.clone(),
                Val::Int(i) => i.to_string(),
                _ => continue,
            };
            if let Some(first) = seen.get(&key) {
                self.err(
                    Diagnostic::error(
                        &DUPLICATE_ELEMENT,
                        it.span,
                        format!("`{key}` appears twice in this list"),
                    )
                    .label("repeated here")
                    .secondary(*first, "first here")
                    .help("remove one of them"),
                );
            } else {
                seen.insert(key, it.span);
            }
        }
    }

    pub fn record(
        &mut self,
        fields: &[Field],
        keys: &'static [Key],
        span: Span,
    ) -> Option<BTreeMap<String, Entry>> {
        let mut map: BTreeMap<String, Entry> = BTreeMap::new();
        let mut ok = true;
        for f in fields {
            let Some(k) = keys.iter().find(|k| k.name == f.key.name) else {
                let d = Diagnostic::error(
                    &UNKNOWN_RECORD_KEY,
                    f.key.span,
                    format!("unknown key `{}`", f.key.name),
                )
                .label("not a key of this record");
                let d = suggest(
                    d,
                    &f.key.name,
                    f.key.span,
                    keys.iter().map(|k| k.name),
                    "keys",
                );
                self.err(d);
                ok = false;
                continue;
            };
            if let Some(prev) = map.get(k.name) {
                self.err(
                    Diagnostic::error(
                        &super::blocks::DUPLICATE_KEY,
                        f.key.span,
                        format!("`{}` is set twice", k.name),
                    )
                    .label("set again here")
                    .secondary(prev.key_span, "first set here"),
                );
                ok = false;
                continue;
            }
            match self.check(&f.value, &k.ty) {
                Some(value) => {
                    map.insert(
                        k.name.to_string(),
                        Entry {
                            key_span: f.key.span,
                            value,
                        },
                    );
                }
                None => ok = false,
            }
        }
        for k in keys.iter().filter(|k| k.required) {
            if !map.contains_key(k.name) && !fields.iter().any(|f| f.key.name == k.name) {
                self.err(
                    Diagnostic::error(&MISSING_RECORD_KEY, span, format!("missing `{}`", k.name))
                        .label(format!("`{}` is required here", k.name))
                        .help(format!("add `{} = …`: {}", k.name, k.doc)),
                );
                ok = false;
            }
        }
        ok.then_some(map)
    }

    /// A call (or a bare name for a call without required parameters).
    pub fn call(&mut self, e: &Expr, defs: &'static [CallDef]) -> Option<V> {
        let (callee, args): (&Ident, &[crate::syntax::ast::Arg]) = match &e.kind {
            ExprKind::Call { callee, args } => (callee, args),
            ExprKind::Path(p) if p.len() == 1 => (&p[0], &[]),
            _ => {
                if let Some(r) = self.via_let(e, |t, sub| t.call(sub, defs)) {
                    return r;
                }
                return self.mismatch(e, &Ty::Calls(defs));
            }
        };
        let Some(def) = schema::find_call(defs, &callee.name) else {
            if let Some(r) = self.via_let(e, |t, sub| t.call(sub, defs)) {
                return r;
            }
            let d = Diagnostic::error(
                &UNKNOWN_CALL,
                callee.span,
                format!("unknown function `{}`", callee.name),
            )
            .label("not accepted here");
            let d = suggest(
                d,
                &callee.name,
                callee.span,
                defs.iter().map(|d| d.name),
                "accepted here",
            );
            self.err(d);
            return None;
        };
        let mut map: BTreeMap<String, Entry> = BTreeMap::new();
        let mut ok = true;
        let mut positional = 0;
        for a in args {
            let param = match &a.name {
                Some(n) => match def.param(&n.name) {
                    Some(p) => p,
                    None => {
                        let d = Diagnostic::error(
                            &UNKNOWN_ARGUMENT,
                            n.span,
                            format!("`{}` takes no argument `{}`", def.name, n.name),
                        )
                        .label("unknown argument");
                        let d = suggest(
                            d,
                            &n.name,
                            n.span,
                            def.params.iter().map(|p| p.name),
                            "its arguments",
                        );
                        self.err(d);
                        ok = false;
                        continue;
                    }
                },
                None => {
                    let Some(p) = def.params.get(positional) else {
                        self.err(
                            Diagnostic::error(
                                &TOO_MANY_ARGUMENTS,
                                a.span,
                                format!(
                                    "`{}` takes at most {} positional argument(s)",
                                    def.name,
                                    def.params.len()
                                ),
                            )
                            .label("extra argument")
                            .help("name optional arguments: `name = value`"),
                        );
                        ok = false;
                        continue;
                    };
                    positional += 1;
                    p
                }
            };
            let key_span = a.name.as_ref().map(|n| n.span).unwrap_or(a.span);
            if let Some(prev) = map.get(param.name) {
                self.err(
                    Diagnostic::error(
                        &TOO_MANY_ARGUMENTS,
                        key_span,
                        format!("`{}` is given twice", param.name),
                    )
                    .label("again here")
                    .secondary(prev.key_span, "first here"),
                );
                ok = false;
                continue;
            }
            match self.check(&a.value, &param.ty) {
                Some(value) => {
                    map.insert(param.name.to_string(), Entry { key_span, value });
                }
                None => ok = false,
            }
        }
        for p in def.params.iter().filter(|p| p.required) {
            if !map.contains_key(p.name) && ok {
                self.err(
                    Diagnostic::error(
                        &MISSING_ARGUMENT,
                        e.span,
                        format!("`{}` needs `{}`", def.name, p.name),
                    )
                    .label(format!("missing `{}`", p.name))
                    .help(format!("add `{} = …`: {}", p.name, p.doc)),
                );
                ok = false;
            }
        }
        ok.then(|| V {
            val: Val::Call {
                name: def.name.to_string(),
                name_span: callee.span,
                args: map,
            },
            span: e.span,
        })
    }
}

/// Whether an expression has the outward shape of a type (used to pick a
/// branch of `AnyOf` before checking it fully).
fn shape_fits(e: &Expr, ty: &Ty) -> bool {
    match (ty, &e.kind) {
        (Ty::Template | Ty::Str | Ty::Path, ExprKind::Str(_)) => true,
        (Ty::RowExpr, k) => !matches!(k, ExprKind::Str(_)),
        (Ty::Enum(_), ExprKind::Path(p)) => p.len() == 1,
        (Ty::List(_), ExprKind::List(_)) => true,
        _ => false,
    }
}

pub fn text_of(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Number { text, .. } => text.clone(),
        ExprKind::Unary {
            op: UnOp::Neg,
            expr,
        } => format!("-{}", text_of(expr)),
        ExprKind::Path(p) => p
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        _ => e.describe().to_string(),
    }
}
