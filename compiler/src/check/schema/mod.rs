//! The language's vocabulary as data: every block, key, call, type, default
//! and doc string. The checker validates against it, the language server
//! reads hover text and completions from it, and the key reference in
//! `docs/language.md` is generated from it — one table, so they never drift.

mod blocks;
mod calls;
pub mod conformance;
pub mod docs;

pub use blocks::{block, method, BLOCKS, PEFT_METHODS};
pub use calls::*;

/// The type of a key's value.
#[derive(Debug)]
pub enum Ty {
    /// An integer in `[min, max]`.
    Int {
        min: i64,
        max: Option<i64>,
    },
    /// A number in a range; `exclusive` bounds are open.
    Float {
        min: Option<f64>,
        min_exclusive: bool,
        max: Option<f64>,
        max_exclusive: bool,
    },
    /// A share: `10%` or `0.1`, in `[0, 1]`.
    Fraction,
    /// Either a share (`10%`, `0.1`) or a count (`100`), e.g. warmup steps.
    FractionOrCount,
    Bool,
    Str,
    /// A file path (a string), relative to the recipe.
    Path,
    /// A string whose `{field}` placeholders name fields of the data rows.
    Template,
    /// One of these bare words.
    Enum(&'static [&'static str]),
    List(&'static Ty),
    /// `{ key = value, … }` with these keys.
    Record(&'static [Key]),
    /// One of these calls; a call whose parameters all have defaults may be
    /// written as a bare name (`schedule = cosine`).
    Calls(&'static [CallDef]),
    /// A dataset, a mixture, or one of them filtered: `tasks where …`.
    Data,
    /// The name of a declared model.
    ModelRef,
    /// `val.accuracy`: a split and a metric.
    Metric,
    /// An expression over the fields of a row (derived labels).
    RowExpr,
    /// A template, or chat messages: `chat([user: "{q}"])`.
    Prompt,
    /// `N from split`.
    Shots,
    /// `key ascending|descending`, the key a field or `tokens(field)`.
    Ordering,
    /// LoRA/IA3 targets: module names, `regex("…")`, or `all_linear`.
    Targets,
    /// Per-module overrides: `{ query = 16 }`.
    ModuleMap,
    /// Split definition: fractions per split name plus options.
    Split,
    /// Any of the listed types.
    AnyOf(&'static [&'static Ty]),
}

/// A key of a block or record, or a parameter of a call.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    /// The default, as written in a recipe (`None`: no default).
    pub default: Option<&'static str>,
    pub required: bool,
    pub doc: &'static str,
}

#[derive(Debug)]
pub struct CallDef {
    pub name: &'static str,
    pub doc: &'static str,
    /// In positional order.
    pub params: &'static [Key],
}

impl CallDef {
    pub fn param(&self, name: &str) -> Option<&'static Key> {
        self.params.iter().find(|k| k.name == name)
    }
    pub fn bare_ok(&self) -> bool {
        self.params.iter().all(|p| !p.required)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    Forbidden,
}

/// A block keyword (`dataset`) or sub-block (`stage`).
#[derive(Debug)]
pub struct BlockDef {
    pub keyword: &'static str,
    pub doc: &'static str,
    /// Whether the block has a name after its keyword (`dataset reviews`).
    pub name: Presence,
    /// What the name means when it is a method (`peft lora`).
    pub name_is_method: bool,
    /// What may follow `=` (`hf("…")`), if anything.
    pub source: Option<&'static [CallDef]>,
    pub keys: &'static [Key],
    pub sub_blocks: &'static [BlockDef],
    /// At most one such block per recipe.
    pub singleton: bool,
    /// Keys that are not in `keys` name datasets (mixture weights).
    pub dataset_keys: bool,
    /// Entries of the form `path in values` (sweeps).
    pub axes: bool,
    pub example: &'static str,
}

impl BlockDef {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }
}

/// The keys of a PEFT method (`peft lora { … }`).
#[derive(Debug)]
pub struct Method {
    pub name: &'static str,
    pub doc: &'static str,
    pub keys: &'static [Key],
}

impl Method {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }
}

pub const fn key(
    name: &'static str,
    ty: Ty,
    default: Option<&'static str>,
    doc: &'static str,
) -> Key {
    Key {
        name,
        ty,
        default,
        required: false,
        doc,
    }
}

pub const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Key {
    Key {
        name,
        ty,
        default: None,
        required: true,
        doc,
    }
}

pub const fn int(min: i64) -> Ty {
    Ty::Int { min, max: None }
}

pub const fn positive() -> Ty {
    Ty::Float {
        min: Some(0.0),
        min_exclusive: true,
        max: None,
        max_exclusive: false,
    }
}

pub const fn non_negative() -> Ty {
    Ty::Float {
        min: Some(0.0),
        min_exclusive: false,
        max: None,
        max_exclusive: false,
    }
}

/// Words for a type in messages and docs: "expected an integer ≥ 1".
pub fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Int { min, max: None } => format!("an integer ≥ {min}"),
        Ty::Int {
            min,
            max: Some(max),
        } => format!("an integer from {min} to {max}"),
        Ty::Float {
            min,
            min_exclusive,
            max,
            max_exclusive,
        } => {
            let lo = min.map(|m| format!("{} {m}", if *min_exclusive { ">" } else { "≥" }));
            let hi = max.map(|m| format!("{} {m}", if *max_exclusive { "<" } else { "≤" }));
            match (lo, hi) {
                (Some(l), Some(h)) => format!("a number {l} and {h}"),
                (Some(l), None) => format!("a number {l}"),
                (None, Some(h)) => format!("a number {h}"),
                (None, None) => "a number".into(),
            }
        }
        Ty::Fraction => "a share such as `10%` or `0.1`".into(),
        Ty::FractionOrCount => "a share (`10%`) or a number of steps (`100`)".into(),
        Ty::Bool => "`true` or `false`".into(),
        Ty::Str => "a string".into(),
        Ty::Path => "a path (a string)".into(),
        Ty::Template => "a template string such as \"{text}\"".into(),
        Ty::Enum(words) => format!(
            "one of {}",
            words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::List(inner) => format!("a list of {}", strip_article(&describe(inner))),
        Ty::Record(_) => "a record `{ key = value, … }`".into(),
        Ty::Calls(calls) => format!(
            "one of {}",
            calls
                .iter()
                .map(|c| format!("`{}(…)`", c.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Data => "a dataset or mixture name, optionally with `where …`".into(),
        Ty::ModelRef => "the name of a model".into(),
        Ty::Metric => "a metric such as `val.accuracy`".into(),
        Ty::RowExpr => "an expression over the row's fields".into(),
        Ty::Prompt => "a template string or `chat([…])`".into(),
        Ty::Shots => "`N from split`".into(),
        Ty::Ordering => "`key ascending` or `key descending`".into(),
        Ty::Targets => "a list of module names, `regex(\"…\")` or `all_linear`".into(),
        Ty::ModuleMap => "a record of module names to numbers".into(),
        Ty::Split => "a split record such as `{ train = 80%, val = 10%, test = 10% }`".into(),
        Ty::AnyOf(tys) => tys
            .iter()
            .map(|t| describe(t))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn strip_article(s: &str) -> String {
    s.strip_prefix("an ")
        .or_else(|| s.strip_prefix("a "))
        .map(|r| format!("{r}s"))
        .unwrap_or_else(|| s.to_string())
}

/// The split names a recipe may use.
pub const SPLIT_NAMES: &[&str] = &["train", "val", "test"];

/// Metrics by name, with what they need.
pub const METRICS: &[(&str, &str)] = &[
    ("loss", "mean loss over the split"),
    ("perplexity", "exp(mean token loss); causal LM only"),
    ("accuracy", "share of correct labels (classification heads)"),
    ("f1", "macro-averaged F1 over the labels (classification)"),
    (
        "exact_match",
        "generated answer equals the reference after normalisation (causal LM)",
    ),
    (
        "rouge_l",
        "ROUGE-L F-measure of the greedy generation against the reference (causal LM)",
    ),
    ("margin", "mean chosen-minus-rejected reward margin (DPO)"),
    (
        "reward",
        "mean reward-model score of greedy responses (PPO)",
    ),
];

pub fn metric_names() -> impl Iterator<Item = &'static str> + Clone {
    METRICS.iter().map(|(n, _)| *n)
}

/// Every setting a recipe can write, named as the conformance table names
/// it: `block.key` (records and sub-blocks continue the path:
/// `train.early_stop.metric`, `curriculum.stage.epochs`), `peft METHOD.key`
/// for a method's keys, and `call(param)` for a call's parameters
/// (`adamw(lr)`, `hf(path)`), each once, in schema order.
pub fn settings() -> Vec<String> {
    fn ty(t: &Ty, path: &str, out: &mut Vec<String>) {
        match t {
            Ty::Record(keys) => {
                for k in keys.iter() {
                    setting(k, &format!("{path}.{}", k.name), out);
                }
            }
            Ty::Calls(cs) => call_params(cs, out),
            Ty::List(inner) => ty(inner, path, out),
            Ty::AnyOf(tys) => tys.iter().for_each(|t| ty(t, path, out)),
            // The split record's options besides the shares.
            Ty::Split => {
                for option in ["seed", "stratify", "key"] {
                    push(format!("{path}.{option}"), out);
                }
            }
            _ => {}
        }
    }
    fn push(name: String, out: &mut Vec<String>) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    fn setting(k: &Key, path: &str, out: &mut Vec<String>) {
        push(path.to_string(), out);
        ty(&k.ty, path, out);
    }
    fn call_params(cs: &[CallDef], out: &mut Vec<String>) {
        for c in cs {
            for p in c.params {
                let name = format!("{}({})", c.name, p.name);
                push(name.clone(), out);
                ty(&p.ty, &name, out);
            }
        }
    }
    fn block(b: &BlockDef, prefix: &str, out: &mut Vec<String>) {
        let path = format!("{prefix}{}", b.keyword);
        if let Some(sources) = b.source {
            call_params(sources, out);
        }
        for k in b.keys {
            setting(k, &format!("{path}.{}", k.name), out);
        }
        for sub in b.sub_blocks {
            block(sub, &format!("{path}."), out);
        }
    }
    let mut out = Vec::new();
    for b in BLOCKS {
        block(b, "", &mut out);
    }
    for m in PEFT_METHODS {
        for k in m.keys {
            setting(k, &format!("peft {}.{}", m.name, k.name), &mut out);
        }
    }
    out
}
