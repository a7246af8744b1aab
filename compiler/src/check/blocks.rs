//! Checks each block's structure against the schema: known keyword, name and
//! source where they belong, known keys (did-you-mean), no key twice,
//! required keys present, values of the right type.

use std::collections::{BTreeMap, BTreeSet};

use super::schema::{self, BlockDef, Key, Method, Presence};
use super::types::Types;
use super::value::{Entry, V};
use crate::diagnostics::{suggest, Diagnostic, FileId};
use crate::syntax::ast::{self, Expr, Ident, Span};

crate::declare_codes! {
    /// A top-level block keyword is not part of the language.
    ///
    /// The blocks are `model`, `dataset`, `mixture`, `curriculum`, `peft`,
    /// `train`, `evaluate`, `sweep` and `output`, plus the items `import` and
    /// `let`. The closest keyword is suggested.
    UNKNOWN_BLOCK = "FT0101", "unknown block";

    /// A block has a key that it does not accept.
    ///
    /// Unlike tools that silently ignore unknown configuration keys, ft
    /// rejects them: a typo such as `learning_rate` for the optimizer's `lr`
    /// would otherwise leave the default in place without a word. The
    /// closest key is suggested, and the editor offers it as a quick fix.
    UNKNOWN_KEY = "FT0102", "unknown key";

    /// The same key is set twice in one block or record.
    ///
    /// Which one should win is ambiguous, so neither does: remove one. Both
    /// places are shown.
    DUPLICATE_KEY = "FT0103", "duplicate key";

    /// A block lacks a key it requires.
    ///
    /// For example a prefix-tuning block needs `virtual_tokens`, a sweep
    /// needs `pick`. The help line says what the key means.
    MISSING_KEY = "FT0105", "missing required key";

    /// A block has a name where none is allowed, or lacks one it needs.
    ///
    /// `dataset`, `mixture` and `stage` blocks are named so they can be
    /// referred to (`dataset reviews = …`); `peft` is followed by its method
    /// (`peft lora { … }`); `train`, `evaluate`, `sweep` and `output` take no
    /// name.
    BLOCK_NAME = "FT0107", "block name";

    /// A block lacks its source (`= hf("…")`, `= jsonl("…")`), or has one it
    /// cannot take.
    ///
    /// `model` blocks say where the weights are: `model m = hf("folder")` or
    /// `gguf("file.gguf")`. `dataset` blocks say which file holds the rows:
    /// `dataset d = jsonl("data.jsonl")`. No other block has a source.
    BLOCK_SOURCE = "FT0108", "block source";

    /// A block that may appear once appears twice.
    ///
    /// A recipe has at most one `peft`, `train`, `evaluate`, `curriculum`,
    /// `sweep` and `output` block. Merge the two.
    DUPLICATE_BLOCK = "FT0109", "duplicate block";

    /// A block contains a sub-block it does not accept.
    ///
    /// Only `curriculum` has sub-blocks: its `stage name { … }` entries.
    UNKNOWN_SUB_BLOCK = "FT0110", "unknown sub-block";

    /// `peft` names a method that does not exist.
    ///
    /// The methods are `full`, `lora`, `prefix`, `prompt`, `adapter` and
    /// `ia3`. rsLoRA and DoRA are options of `lora` (`rslora = true`,
    /// `dora = true`).
    UNKNOWN_METHOD = "FT0111", "unknown PEFT method";

    /// A `path in values` entry appears outside a `sweep` block.
    ///
    /// Search axes belong in `sweep { … }`; elsewhere write `key = value`.
    AXIS_OUTSIDE_SWEEP = "FT0112", "search axis outside sweep";
}

/// A block after its structure was checked.
#[derive(Debug, Clone)]
pub struct CBlock {
    pub def: &'static BlockDef,
    pub keyword: Ident,
    pub name: Option<Ident>,
    pub method: Option<&'static Method>,
    pub source: Option<V>,
    pub keys: BTreeMap<String, Entry>,
    /// Every key written, even those whose value did not check, so later
    /// rules do not also call them missing.
    pub written: BTreeSet<String>,
    /// Mixture entries: dataset name and weight.
    pub weights: Vec<(Ident, V)>,
    pub stages: Vec<CBlock>,
    pub axes: Vec<ast::Axis>,
    pub span: Span,
    pub file: FileId,
}

impl CBlock {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.keys.get(key).map(|e| &e.value)
    }
    pub fn has(&self, key: &str) -> bool {
        self.written.contains(key)
    }
    pub fn name_str(&self) -> Option<&str> {
        self.name.as_ref().map(|n| n.name.as_str())
    }
    /// The keys this block accepts (a method's keys for `peft`).
    pub fn key_defs(&self) -> &'static [Key] {
        self.method.map(|m| m.keys).unwrap_or(self.def.keys)
    }
}

pub fn check_block(
    t: &mut Types,
    b: &ast::Block,
    file: FileId,
    defs: &'static [BlockDef],
) -> Option<CBlock> {
    let Some(def) = defs.iter().find(|d| d.keyword == b.keyword.name) else {
        let (code, what) = if defs.len() > 1 {
            (&UNKNOWN_BLOCK, "block")
        } else {
            (&UNKNOWN_SUB_BLOCK, "sub-block")
        };
        let mut cands: Vec<&str> = defs.iter().map(|d| d.keyword).collect();
        if defs.len() > 1 {
            cands.extend(["import", "let"]);
        }
        let d = Diagnostic::error(
            code,
            b.keyword.span,
            format!("unknown {what} `{}`", b.keyword.name),
        )
        .label(format!("not a {what} keyword"));
        t.diags
            .push(suggest(d, &b.keyword.name, b.keyword.span, cands, "blocks"));
        return None;
    };
    let mut out = CBlock {
        def,
        keyword: b.keyword.clone(),
        name: b.name.clone(),
        method: None,
        source: None,
        keys: BTreeMap::new(),
        written: BTreeSet::new(),
        weights: Vec::new(),
        stages: Vec::new(),
        axes: Vec::new(),
        span: b.span,
        file,
    };

    // The name, or the PEFT method.
    match (def.name, &b.name) {
        (Presence::Required, None) => {
            let what = if def.name_is_method {
                "a method: `peft lora { … }`".to_string()
            } else {
                format!("a name: `{} my_name …`", def.keyword)
            };
            t.diags.push(
                Diagnostic::error(
                    &BLOCK_NAME,
                    b.keyword.span,
                    format!("`{}` needs {what}", def.keyword),
                )
                .label("name missing after this"),
            );
        }
        (Presence::Forbidden, Some(n)) => {
            t.diags.push(
                Diagnostic::error(
                    &BLOCK_NAME,
                    n.span,
                    format!("`{}` blocks take no name", def.keyword),
                )
                .label("remove this name")
                .fix(
                    Span::new(b.keyword.span.end, n.span.end),
                    "",
                    "Remove the name",
                ),
            );
        }
        _ => {}
    }
    if def.name_is_method {
        // Without its method, a `peft` block's keys cannot be checked (they
        // depend on the method): the missing name is the one error.
        let n = b.name.as_ref()?;
        {
            match schema::method(&n.name) {
                Some(m) => out.method = Some(m),
                None => {
                    let d = Diagnostic::error(
                        &UNKNOWN_METHOD,
                        n.span,
                        format!("unknown PEFT method `{}`", n.name),
                    )
                    .label("not a method");
                    let d = suggest(
                        d,
                        &n.name,
                        n.span,
                        schema::PEFT_METHODS.iter().map(|m| m.name),
                        "methods",
                    );
                    t.diags.push(d);
                    return None;
                }
            }
        }
    }

    // The source.
    match (def.source, &b.source) {
        (Some(calls), Some(src)) => out.source = t.call(src, calls),
        (Some(calls), None) => {
            let example = calls.first().map(|c| c.name).unwrap_or("…");
            let name = b.name.as_ref().map(|n| n.name.as_str()).unwrap_or("name");
            t.diags.push(
                Diagnostic::error(
                    &BLOCK_SOURCE,
                    b.keyword
                        .span
                        .join(b.name.as_ref().map(|n| n.span).unwrap_or(b.keyword.span)),
                    format!("`{}` needs a source", def.keyword),
                )
                .label("no `= …` here")
                .help(format!(
                    "write `{} {name} = {example}(\"path\")`; sources: {}",
                    def.keyword,
                    calls
                        .iter()
                        .map(|c| format!("`{}`", c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
        (None, Some(src)) => {
            t.diags.push(
                Diagnostic::error(
                    &BLOCK_SOURCE,
                    src.span,
                    format!("`{}` blocks take no source", def.keyword),
                )
                .label("remove `= …`"),
            );
        }
        (None, None) => {}
    }

    let key_defs = out.key_defs();
    let entries = b
        .body
        .as_ref()
        .map(|bd| bd.entries.as_slice())
        .unwrap_or(&[]);
    let mut first_seen: BTreeMap<String, Span> = BTreeMap::new();
    for entry in entries {
        match entry {
            ast::Entry::Assign(a) => {
                if let Some(prev) = first_seen.get(&a.key.name) {
                    t.diags.push(
                        Diagnostic::error(
                            &DUPLICATE_KEY,
                            a.key.span,
                            format!("`{}` is set twice", a.key.name),
                        )
                        .label("set again here")
                        .secondary(*prev, "first set here")
                        .help("remove one of them"),
                    );
                    continue;
                }
                first_seen.insert(a.key.name.clone(), a.key.span);
                match key_defs.iter().find(|k| k.name == a.key.name) {
                    Some(k) => {
                        out.written.insert(k.name.to_string());
                        if let Some(value) = t.check(&a.value, &k.ty) {
                            out.keys.insert(
                                k.name.to_string(),
                                Entry {
                                    key_span: a.key.span,
                                    value,
                                },
                            );
                        }
                    }
                    None if def.dataset_keys => {
                        if let Some(w) = t.check(
                            &a.value,
                            &schema::Ty::Float {
                                min: None,
                                min_exclusive: false,
                                max: None,
                                max_exclusive: false,
                            },
                        ) {
                            out.weights.push((a.key.clone(), w));
                        }
                    }
                    None => {
                        let owner = match out.method {
                            Some(m) => format!("`peft {}`", m.name),
                            None => format!("`{}`", def.keyword),
                        };
                        let d = Diagnostic::error(
                            &UNKNOWN_KEY,
                            a.key.span,
                            format!("unknown key `{}` in {owner}", a.key.name),
                        )
                        .label("not a key of this block");
                        let d = suggest(
                            d,
                            &a.key.name,
                            a.key.span,
                            key_defs.iter().map(|k| k.name),
                            "keys",
                        );
                        t.diags
                            .push(misplaced_hint(d, &a.key.name, def, out.method));
                    }
                }
            }
            ast::Entry::Axis(ax) => {
                if def.axes {
                    out.axes.push(ax.clone());
                } else {
                    t.diags.push(
                        Diagnostic::error(
                            &AXIS_OUTSIDE_SWEEP,
                            ax.span,
                            "`… in …` search axes belong in a `sweep` block",
                        )
                        .label("not in a sweep")
                        .help("write `key = value` here, or move this line into `sweep { … }`"),
                    );
                }
            }
            ast::Entry::Block(sub) => {
                if def.sub_blocks.is_empty() {
                    t.diags.push(
                        Diagnostic::error(
                            &UNKNOWN_SUB_BLOCK,
                            sub.keyword.span,
                            format!("`{}` blocks have no sub-blocks", def.keyword),
                        )
                        .label("not allowed here")
                        .help("did you forget a `}` before this line?"),
                    );
                } else if let Some(s) = check_block(t, sub, file, def.sub_blocks) {
                    out.stages.push(s);
                }
            }
        }
    }
    for k in key_defs.iter().filter(|k| k.required) {
        if !out.written.contains(k.name) {
            let head = b
                .name
                .as_ref()
                .map(|n| b.keyword.span.join(n.span))
                .unwrap_or(b.keyword.span);
            t.diags.push(
                Diagnostic::error(&MISSING_KEY, head, format!("missing `{}`", k.name))
                    .label(format!("this block needs `{}`", k.name))
                    .help(format!("add `{} = …`: {}", k.name, k.doc)),
            );
        }
    }
    Some(out)
}

/// When a key belongs to another block (`lr` in `train` belongs to the
/// optimizer), say where it goes.
fn misplaced_hint(d: Diagnostic, key: &str, def: &BlockDef, method: Option<&Method>) -> Diagnostic {
    if d.help
        .as_deref()
        .is_some_and(|h| h.starts_with("did you mean"))
    {
        return d;
    }
    let home = match key {
        "lr" | "learning_rate" | "weight_decay" if def.keyword == "train" => {
            Some("set it in the optimizer: `optimizer = adamw(lr = 2e-4)`".to_string())
        }
        "warmup" if def.keyword == "train" => {
            Some("set it in the schedule: `schedule = cosine(warmup = 10%)`".into())
        }
        _ => None,
    };
    if let Some(h) = home {
        return d.help(h);
    }
    for m in schema::PEFT_METHODS {
        if Some(m.name) != method.map(|m| m.name) && m.key(key).is_some() && def.keyword == "peft" {
            return d.help(format!("`{key}` is a key of `peft {}`", m.name));
        }
    }
    for b in schema::BLOCKS {
        if b.keyword != def.keyword && b.key(key).is_some() {
            return d.help(format!("`{key}` is a key of the `{}` block", b.keyword));
        }
    }
    d
}

/// Expression helper for rules: the raw expression of an axis's values.
pub fn axis_values(ax: &ast::Axis) -> &Expr {
    &ax.values
}
