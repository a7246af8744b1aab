//! Model checks from headers: the files exist and parse, the tokenizer is
//! there, the head fits the family, PEFT targets exist (with per-layer
//! coverage), ranks fit the layers, `max_len` fits the positions.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ft_formats::{Family, FormatError, FormatErrorKind, LinearInfo, ModelFiles, ModelInventory};

use super::*;
use crate::check::blocks::CBlock;
use crate::check::value::{Target, Val};
use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::syntax::ast::Span;

#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: Option<String>,
    pub path: PathBuf,
    pub inventory: Option<ModelInventory>,
}

pub fn check_models(
    recipe: &Recipe,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ModelInfo> {
    let mut out = Vec::new();
    for m in recipe.all("model") {
        let Some(src) = &m.source else { continue };
        let Some(path_v) = src.arg("path") else {
            continue;
        };
        let Some(path_str) = path_v.as_str() else {
            continue;
        };
        let path = resolve(sources, m.file, path_str);
        let span = path_v.span;
        let inventory = load(&path, span, m, diags);
        if inventory.is_some() {
            super::adapter::check_adapter(m, &path, sources, diags);
        }
        if let Some(inv) = &inventory {
            head_fits(m, inv, diags);
            if recipe.model().is_some_and(|t| std::ptr::eq(t, m)) {
                peft_fits(recipe, inv, diags);
                max_len_fits(recipe, inv, diags);
            }
        }
        out.push(ModelInfo {
            name: m.name_str().map(String::from),
            path,
            inventory,
        });
    }
    out
}

fn load(
    path: &std::path::Path,
    span: Span,
    m: &CBlock,
    diags: &mut Vec<Diagnostic>,
) -> Option<ModelInventory> {
    if !path.exists() {
        let mut d = Diagnostic::error(
            &MODEL_NOT_FOUND,
            span,
            format!("`{}` does not exist", path.display()),
        )
        .in_file(m.file)
        .label("no such file or folder");
        if path.to_string_lossy().contains(".cache/") {
            d = d.help("the example models are fetched by `scripts/fetch-assets.sh`");
        } else {
            d = d.help("paths are relative to the recipe's folder");
        }
        diags.push(d);
        return None;
    }
    let result = ModelFiles::open(path).and_then(|f| f.inventory());
    match result {
        Ok(inv) => {
            if !inv.has_tokenizer && !m.has("tokenizer") {
                diags.push(
                    Diagnostic::error(&MODEL_NO_TOKENIZER, span, "the model has no tokenizer")
                        .in_file(m.file)
                        .label("no tokenizer.json here")
                        .help("add `tokenizer.json` to the folder, or set `tokenizer = \"path/to/tokenizer.json\"`"),
                );
            }
            Some(inv)
        }
        Err(e) => {
            diags.push(format_error(&e, span).in_file(m.file));
            None
        }
    }
}

fn format_error(e: &FormatError, span: Span) -> Diagnostic {
    let (code, help) = match &e.kind {
        FormatErrorKind::PickleRefused => (
            &PICKLE_REFUSED,
            "convert once with PyTorch: `model.save_pretrained(dir, safe_serialization=True)`",
        ),
        FormatErrorKind::NoWeights | FormatErrorKind::NoConfig => (
            &MODEL_NO_WEIGHTS,
            "a Hugging Face folder needs config.json and model.safetensors (or model.safetensors.index.json)",
        ),
        FormatErrorKind::NoTokenizer => (&MODEL_NO_TOKENIZER, "add tokenizer.json, or set `tokenizer = \"…\"`"),
        FormatErrorKind::UnsupportedArchitecture { .. } => (
            &UNSUPPORTED_MODEL,
            "ft implements Llama-family decoders and BERT-family encoders",
        ),
        FormatErrorKind::Io { .. } => (&MODEL_NOT_FOUND, "check the path"),
        _ => (&MODEL_MALFORMED, "the file may be truncated or not what its name says; fetch it again"),
    };
    Diagnostic::error(code, span, e.to_string())
        .label("while reading this model")
        .help(help)
}

fn head_fits(m: &CBlock, inv: &ModelInventory, diags: &mut Vec<Diagnostic>) {
    let head = m
        .get("head")
        .and_then(|h| h.as_call())
        .map(|(n, _)| n)
        .unwrap_or("causal_lm");
    if inv.config.family == Family::Bert
        && head == "causal_lm"
        && !(m.has("head") && m.get("head").is_none())
    {
        let span = m
            .keys
            .get("head")
            .map(|e| e.value.span)
            .unwrap_or(m.keyword.span);
        diags.push(
            Diagnostic::error(
                &HEAD_FAMILY,
                span,
                format!(
                    "`{}` is an encoder; it has no language-model head",
                    inv.config.model_type
                ),
            )
            .in_file(m.file)
            .label(if m.has("head") {
                "causal_lm here"
            } else {
                "the default head is causal_lm"
            })
            .help("train a classifier: `head = classify(labels = [\"negative\", \"positive\"])`"),
        );
    }
}

/// Does a target match a module path (PEFT's rule)?
pub fn matches(target: &Target, l: &LinearInfo, family: Family) -> bool {
    match target {
        Target::Suffix(s, _) => l.path == *s || l.path.ends_with(&format!(".{s}")),
        Target::Regex(r, _) => {
            regex::Regex::new(&format!("^(?:{r})$")).is_ok_and(|re| re.is_match(&l.path))
        }
        Target::AllLinear(_) => !is_output_head(&l.path, family),
    }
}

fn is_output_head(path: &str, family: Family) -> bool {
    match family {
        Family::Llama => path == "lm_head",
        _ => path == "classifier" || path.starts_with("cls."),
    }
}

fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn peft_fits(recipe: &Recipe, inv: &ModelInventory, diags: &mut Vec<Diagnostic>) {
    let Some(p) = recipe.one("peft") else { return };
    let layers_total = inv.config.num_layers;
    // `layers = [..]` within range.
    let mut layer_filter: Option<BTreeSet<usize>> = None;
    if let Some(v) = p.get("layers") {
        if let Val::List(items) = &v.val {
            let mut set = BTreeSet::new();
            for it in items {
                if let Some(i) = it.as_i64() {
                    if i as usize >= layers_total {
                        diags.push(
                            Diagnostic::error(
                                &LAYER_OUT_OF_RANGE,
                                it.span,
                                format!("layer {i} does not exist"),
                            )
                            .in_file(p.file)
                            .label(format!(
                                "the model has layers 0 to {}",
                                layers_total.saturating_sub(1)
                            )),
                        );
                    }
                    set.insert(i as usize);
                }
            }
            layer_filter = Some(set);
        }
    }
    modules_to_save_fit(recipe, p, inv, diags);
    let Some(Val::Targets(targets)) = p.get("targets").map(|v| &v.val) else {
        return;
    };
    let family = inv.config.family;
    let leaves: BTreeSet<&str> = inv
        .linears
        .iter()
        .filter(|l| !is_output_head(&l.path, family))
        .map(|l| leaf(&l.path))
        .collect();
    let rank = p.get("rank").and_then(|v| v.as_i64());
    let rank_for = match p.get("rank_for").map(|v| &v.val) {
        Some(Val::ModuleMap(m)) => m.clone(),
        _ => Default::default(),
    };
    overrides_fit(p, targets, inv, diags);
    for t in targets {
        let matched: Vec<&LinearInfo> = inv
            .linears
            .iter()
            .filter(|l| matches(t, l, family))
            .collect();
        if matched.is_empty() {
            let written = match t {
                Target::Suffix(s, _) | Target::Regex(s, _) => s.as_str(),
                Target::AllLinear(_) => "all_linear",
            };
            let list = leaves
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut d = Diagnostic::error(
                &UNKNOWN_TARGET,
                t.span(),
                format!(
                    "`{written}` matches no module of `{}`",
                    inv.config.model_type
                ),
            )
            .in_file(p.file)
            .label("no such module in this model");
            let suggestion = did_you_mean(leaf(written), leaves.iter().copied())
                .or_else(|| family_equivalent(leaf(written), &leaves));
            if let Some(best) = suggestion {
                d = d.help(format!(
                    "did you mean `{best}`? this model's linear layers are {list}"
                ));
                if matches!(t, Target::Suffix(..)) {
                    d = d.fix(t.span(), best, format!("Replace with `{best}`"));
                }
            } else {
                d = d.help(format!("this model's linear layers are {list}"));
            }
            d = d.note(format!(
                "read from the model's header: {} layers, {} linear modules, e.g. `{}`",
                layers_total,
                inv.linears.len(),
                inv.linears
                    .iter()
                    .find(|l| l.layer == Some(0))
                    .map(|l| l.path.as_str())
                    .unwrap_or("")
            ));
            diags.push(d);
            continue;
        }
        // Coverage per layer.
        let covered: BTreeSet<usize> = matched.iter().filter_map(|l| l.layer).collect();
        let in_layers = matched.iter().any(|l| l.layer.is_some());
        if in_layers && layer_filter.is_none() && covered.len() < layers_total {
            let shown: Vec<String> = covered.iter().map(|i| i.to_string()).collect();
            diags.push(
                Diagnostic::warning(&PARTIAL_TARGET, t.span(), format!("this target covers {} of {} layers", covered.len(), layers_total))
                    .in_file(p.file)
                    .label("matches only some layers")
                    .note(format!("layers covered: {}", shown.join(", ")))
                    .help("if intended, say so with `layers = […]`; otherwise name the module without a layer index"),
            );
        }
        // Rank against each matched layer.
        if p.method.is_some_and(|m| m.name == "lora") {
            let r = rank_for
                .get(leaf(&matched[0].path))
                .map(|(r, _)| *r as i64)
                .or(rank)
                .unwrap_or(8);
            if let Some(small) = matched
                .iter()
                .find(|l| r as u64 >= l.in_features.min(l.out_features))
            {
                let span = p.keys.get("rank").map(|e| e.value.span).unwrap_or(t.span());
                diags.push(
                    Diagnostic::error(
                        &RANK_TOO_LARGE,
                        span,
                        format!("rank {r} is not below `{}`'s dimensions", small.path),
                    )
                    .in_file(p.file)
                    .label(format!(
                        "{} is {}×{}",
                        small.path, small.out_features, small.in_features
                    ))
                    .help(format!(
                        "use a rank below {}",
                        small.in_features.min(small.out_features)
                    )),
                );
            }
        }
    }
}

/// `rank_for`/`alpha_for` entries and IA3's `feedforward` name modules
/// among those the targets adapt: any other would be silently unused.
fn overrides_fit(
    p: &CBlock,
    targets: &[Target],
    inv: &ModelInventory,
    diags: &mut Vec<Diagnostic>,
) {
    let family = inv.config.family;
    let adapted: Vec<&LinearInfo> = inv
        .linears
        .iter()
        .filter(|l| targets.iter().any(|t| matches(t, l, family)))
        .collect();
    if adapted.is_empty() {
        return;
    }
    let names = || {
        let leaves: BTreeSet<&str> = adapted.iter().map(|l| leaf(&l.path)).collect();
        leaves
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for key in ["rank_for", "alpha_for"] {
        let Some(Val::ModuleMap(m)) = p.get(key).map(|v| &v.val) else {
            continue;
        };
        for (module, (_, span)) in m {
            let suffix = |path: &str| path == module || path.ends_with(&format!(".{module}"));
            if !adapted.iter().any(|l| suffix(&l.path)) {
                diags.push(
                    Diagnostic::error(
                        &UNKNOWN_TARGET,
                        *span,
                        format!("`{module}` in {key} matches none of the adapted modules"),
                    )
                    .in_file(p.file)
                    .label("this override would not apply")
                    .help(format!("the targets adapt {}", names())),
                );
            }
        }
    }
    if let Some(Val::Targets(ff)) = p.get("feedforward").map(|v| &v.val) {
        for t in ff {
            if !adapted.iter().any(|l| matches(t, l, family)) {
                diags.push(
                    Diagnostic::error(
                        &UNKNOWN_TARGET,
                        t.span(),
                        "this feed-forward module is not among the targets",
                    )
                    .in_file(p.file)
                    .label("feedforward names which of the targets are feed-forward")
                    .help(format!("add it to `targets` too (they adapt {})", names())),
                );
            }
        }
    }
}

/// Each `modules_to_save` entry names a module of the model (PEFT's
/// suffix rule); the classification head is one when the model has a
/// `classify` head.
fn modules_to_save_fit(
    recipe: &Recipe,
    p: &CBlock,
    inv: &ModelInventory,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(Val::List(items)) = p.get("modules_to_save").map(|v| &v.val) else {
        return;
    };
    let classify = recipe
        .model()
        .and_then(|m| m.get("head"))
        .and_then(|h| h.as_call())
        .is_some_and(|(n, _)| n == "classify");
    let modules: BTreeSet<&str> = inv
        .tensors
        .iter()
        .filter_map(|t| t.hf_name.rsplit_once('.').map(|(m, _)| m))
        .collect();
    let found = |name: &str| {
        modules.iter().any(|m| {
            let parts: Vec<&str> = m.split('.').collect();
            (1..=parts.len()).any(|n| {
                let a = parts[..n].join(".");
                // PEFT's rule: the module name ends with the entry.
                a.ends_with(name)
            })
        })
    };
    for item in items {
        let Some(name) = item.as_str() else { continue };
        if (classify && ["classifier", "score"].contains(&name)) || found(name) {
            continue;
        }
        let mut d = Diagnostic::error(
            &UNKNOWN_TARGET,
            item.span,
            format!(
                "`{name}` in modules_to_save matches no module of `{}`",
                inv.config.model_type
            ),
        )
        .in_file(p.file)
        .label("no such module in this model");
        d = if name == "lm_head" && inv.config.tie_word_embeddings {
            d.help("this model ties its LM head to `embed_tokens`: save `embed_tokens` instead")
        } else if ["classifier", "score"].contains(&name) {
            d.help("the classification head exists only with `head = classify(…)`")
        } else {
            let top: BTreeSet<&str> = modules
                .iter()
                .filter(|m| !m.contains(".layers.") && !m.contains(".layer."))
                .copied()
                .collect();
            d.help(format!(
                "modules are named by their path in the model's weights, e.g. {}",
                top.iter()
                    .take(6)
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        diags.push(d);
    }
}

/// Llama names for BERT names and back, for the did-you-mean.
fn family_equivalent<'a>(written: &str, leaves: &BTreeSet<&'a str>) -> Option<&'a str> {
    let pairs = [
        ("q_proj", "query"),
        ("k_proj", "key"),
        ("v_proj", "value"),
        ("o_proj", "dense"),
        ("up_proj", "dense"),
        ("query_key_value", "query"),
        ("c_attn", "query"),
    ];
    pairs.iter().find_map(|(a, b)| {
        let other = if written == *a {
            *b
        } else if written == *b {
            *a
        } else {
            return None;
        };
        leaves.get(other).copied()
    })
}

fn max_len_fits(recipe: &Recipe, inv: &ModelInventory, diags: &mut Vec<Diagnostic>) {
    let limit = inv
        .config
        .max_positions
        .saturating_sub(inv.config.position_offset) as i64;
    let mut check = |b: &CBlock| {
        if let Some(v) = b.get("max_len") {
            if let Some(n) = v.as_i64() {
                if n > limit {
                    diags.push(
                        Diagnostic::error(
                            &MAX_LEN_TOO_LARGE,
                            v.span,
                            format!("max_len {n} is beyond the model's {limit} positions"),
                        )
                        .in_file(b.file)
                        .label(format!("the model supports {limit}"))
                        .help(format!("use `max_len = {limit}` or less")),
                    );
                }
            }
        }
    };
    if let Some(t) = recipe.one("train") {
        check(t);
    }
    if let Some(c) = recipe.one("curriculum") {
        for s in &c.stages {
            check(s);
        }
    }
}
