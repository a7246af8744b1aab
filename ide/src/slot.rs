//! The schema's view of a cursor [`Context`]: which block, record or call
//! it is in ([`Scope`]) and what may be written there ([`Slot`]). Kept apart
//! from the lexical scan so that each can be read (and changed) alone.

use ft_compiler::check::schema::{self, BlockDef, CallDef, Key, Method, Ty};

use crate::context::{ident, Context, Owner, Place, Tok};

/// The schema's view of where the cursor is.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Root,
    Block(&'static BlockDef, Option<&'static Method>),
    Keys(&'static [Key]),
    /// The elements of a list of this type.
    Elem(&'static Ty),
    /// A split record: split names and options.
    Split,
    Unknown,
}

/// What is expected at the cursor.
#[derive(Debug, Clone)]
pub enum Slot {
    /// A top-level item keyword.
    Item,
    /// The method after `peft`.
    Method,
    /// The source after `model m =` / `dataset d =`.
    Source(&'static [CallDef]),
    /// A key of a body, record or call (those in `seen` are written).
    Key {
        scope: Scope,
        seen: Vec<String>,
    },
    /// A value of a key.
    Value(&'static Ty, Option<&'static Key>),
    /// A field of the dataset's rows, in a `{placeholder}`.
    Field,
    /// A metric after `split.`.
    Metric,
    Nothing,
}

impl Scope {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        match self {
            Scope::Block(def, method) => method.and_then(|m| m.key(name)).or_else(|| def.key(name)),
            Scope::Keys(keys) => keys.iter().find(|k| k.name == name),
            _ => None,
        }
    }
}

static SPLIT_OPTION_KEYS: [Key; 3] = [
    schema::key(
        "seed",
        schema::int(0),
        None,
        "Seed of the hash that assigns rows to splits.",
    ),
    schema::key(
        "stratify",
        Ty::RowExpr,
        None,
        "A field (or `label`) whose classes are split in the same proportions.",
    ),
    schema::key(
        "key",
        Ty::RowExpr,
        Some("the row's content"),
        "Field(s) that identify a row, hashed to pick its split.",
    ),
];

/// The keys of a split record: split names take a share.
pub fn split_keys() -> &'static [Key] {
    &SPLIT_OPTION_KEYS
}

fn calls_in(ty: &'static Ty) -> Option<&'static [CallDef]> {
    match ty {
        Ty::Calls(c) => Some(c),
        Ty::AnyOf(tys) => tys.iter().find_map(|t| calls_in(t)),
        _ => None,
    }
}

fn list_elem(ty: &'static Ty) -> Option<&'static Ty> {
    match ty {
        Ty::List(inner) => Some(inner),
        Ty::Targets => Some(&Ty::Targets),
        Ty::AnyOf(tys) => tys.iter().find_map(|t| list_elem(t)),
        _ => None,
    }
}

fn record_keys(ty: &'static Ty) -> Option<Scope> {
    match ty {
        Ty::Record(keys) => Some(Scope::Keys(keys)),
        Ty::Split => Some(Scope::Split),
        Ty::AnyOf(tys) => tys.iter().find_map(|t| record_keys(t)),
        _ => None,
    }
}

/// The type of `key` in a scope; a split's own names are shares.
fn key_ty(scope: Scope, key: &str) -> Option<(&'static Ty, Option<&'static Key>)> {
    static SHARE: Ty = Ty::Fraction;
    match scope {
        Scope::Split if schema::SPLIT_NAMES.contains(&key) => Some((&SHARE, None)),
        Scope::Split => SPLIT_OPTION_KEYS
            .iter()
            .find(|k| k.name == key)
            .map(|k| (&k.ty, Some(k))),
        _ => scope.key(key).map(|k| (&k.ty, Some(k))),
    }
}

/// Walks the frames through the schema to the innermost scope.
pub fn scope_of(ctx: &Context) -> Scope {
    scope_upto(ctx, ctx.frames.len())
}

/// The scope of the first `n` frames.
fn scope_upto(ctx: &Context, n: usize) -> Scope {
    let mut scope = Scope::Root;
    for f in &ctx.frames[1..n.max(1)] {
        scope = match (&f.owner, scope) {
            (
                Owner::Block {
                    keyword,
                    name,
                    sub: false,
                },
                _,
            ) => match schema::block(keyword) {
                Some(def) => Scope::Block(
                    def,
                    def.name_is_method
                        .then(|| name.as_deref().and_then(schema::method))
                        .flatten(),
                ),
                None => Scope::Unknown,
            },
            (
                Owner::Block {
                    keyword, sub: true, ..
                },
                Scope::Block(def, _),
            ) => def
                .sub_blocks
                .iter()
                .find(|d| d.keyword == keyword)
                .map_or(Scope::Unknown, |d| Scope::Block(d, None)),
            (Owner::Record { key: Some(k) }, s) => key_ty(s, k)
                .and_then(|(t, _)| record_keys(t))
                .unwrap_or(Scope::Unknown),
            (Owner::List { key: Some(k) }, s) => key_ty(s, k)
                .and_then(|(t, _)| list_elem(t))
                .map_or(Scope::Unknown, Scope::Elem),
            (Owner::List { key: None }, Scope::Elem(t)) => {
                list_elem(t).map_or(Scope::Unknown, Scope::Elem)
            }
            (Owner::Call { name, key }, s) => {
                let calls = match (key, s) {
                    (Some(k), s) => key_ty(s, k).and_then(|(t, _)| calls_in(t)),
                    (None, Scope::Root) => ctx.frames[0]
                        .seg
                        .first()
                        .and_then(|t| ident(Some(t)))
                        .and_then(|kw| schema::block(&kw))
                        .and_then(|d| d.source),
                    (None, Scope::Elem(t)) => calls_in(t),
                    _ => None,
                };
                calls
                    .and_then(|c| schema::find_call(c, name))
                    .map_or(Scope::Unknown, |c| Scope::Keys(c.params))
            }
            (Owner::Paren, s) => s,
            _ => Scope::Unknown,
        };
    }
    scope
}

/// What the cursor expects.
pub fn resolve(ctx: &Context) -> Slot {
    match &ctx.place {
        Place::Comment => return Slot::Nothing,
        Place::Str {
            placeholder: Some(_),
        } => {
            return if ctx.block().is_some_and(|(k, _)| k == "dataset") {
                Slot::Field
            } else {
                Slot::Nothing
            };
        }
        Place::Str { placeholder: None } => return Slot::Nothing,
        Place::Code => {}
    }
    let dotted = ctx.dotted();
    if dotted.len() == 1 && schema::SPLIT_NAMES.contains(&dotted[0]) {
        return Slot::Metric;
    }
    if !dotted.is_empty() {
        return Slot::Nothing;
    }
    let f = ctx.frame();
    let scope = scope_of(ctx);
    match (&f.owner, scope) {
        (Owner::Root, _) => match &f.seg[..] {
            [] => Slot::Item,
            [Tok::Ident(k)] if k == "peft" => Slot::Method,
            [Tok::Ident(k), .., Tok::Punct('=')] => schema::block(k)
                .and_then(|d| d.source)
                .map_or(Slot::Nothing, Slot::Source),
            _ => Slot::Nothing,
        },
        (Owner::List { key }, Scope::Elem(t)) => {
            // The key whose list this is (`metrics = [`), for its docs.
            let parent = scope_upto(ctx, ctx.frames.len() - 1);
            let key = key
                .as_deref()
                .and_then(|k| key_ty(parent, k))
                .and_then(|(_, k)| k);
            Slot::Value(t, key)
        }
        (_, Scope::Unknown) => Slot::Nothing,
        (_, s) => match &f.key {
            Some(k) => key_ty(s, k).map_or(Slot::Nothing, |(t, key)| Slot::Value(t, key)),
            None if f.seg.is_empty() => Slot::Key {
                scope: s,
                seen: f.seen.clone(),
            },
            None => Slot::Nothing,
        },
    }
}
