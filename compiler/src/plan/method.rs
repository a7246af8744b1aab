//! The `peft` block into a [`Method`], with its targets resolved against
//! the real model's linear layers (PEFT's matching rules), so that the
//! runtime, the figures and the exported adapter name the same modules.

use std::collections::BTreeMap;

use ft_formats::{Family, LinearInfo, ModelInventory};
use ft_plan::method::{
    Activation, AdapterStyle, Ia3Module, Lora, LoraBias, LoraModule, PromptInit, TargetModule,
};
use ft_plan::{Head, Method, ModelPlan, TargetPattern};

use crate::check::blocks::CBlock;
use crate::check::value::{Target, Val, V};

use super::figures;
use super::util::{call_name, key_bool, key_num, key_usize, key_word};
use super::{fail, LowerError};

pub fn lower(
    peft: Option<&CBlock>,
    model: &ModelPlan,
    inventory: Option<&ModelInventory>,
) -> Result<Method, LowerError> {
    let head_modules: Vec<String> = match &model.head {
        Head::Classify { .. } => vec!["classifier".to_string()],
        Head::CausalLm => Vec::new(),
    };
    let Some(b) = peft else {
        return Ok(Method::Full { freeze: Vec::new() });
    };
    let Some(m) = b.method else {
        return fail("the `peft` block names no method", Some(b));
    };
    let needs_inventory = matches!(m.name, "lora" | "ia3");
    let inv = match inventory {
        Some(inv) => Some(inv),
        None if needs_inventory => {
            return fail(
                "the model's files could not be read, so the targets cannot be resolved",
                Some(b),
            )
        }
        None => None,
    };
    let family = inv.map(|i| i.config.family);
    let layers = layers_of(b);
    let extra_save = strings(b.get("modules_to_save"));
    let mut modules_to_save = head_modules;
    modules_to_save.extend(extra_save.into_iter().filter(|m| m != "classifier"));

    Ok(match m.name {
        "full" => Method::Full {
            freeze: strings(b.get("freeze"))
                .into_iter()
                .map(TargetPattern::Suffix)
                .collect(),
        },
        "lora" => {
            let inv = inv.expect("checked above");
            let family = inv.config.family;
            let targets = patterns(b.get("targets"))
                .unwrap_or_else(|| from_figures(&figures::default_lora_targets(family)));
            let rank = key_usize(b, "rank").unwrap_or(8);
            let alpha = key_num(b, "alpha").unwrap_or(8.0);
            let rank_for = module_map(b.get("rank_for"));
            let alpha_for = module_map(b.get("alpha_for"));
            let modules = resolve(inv, &targets, &layers, family)
                .map(|l| {
                    let over = |map: &BTreeMap<String, f64>| {
                        map.iter()
                            .find(|(k, _)| TargetPattern::Suffix((*k).clone()).matches(&l.path))
                            .map(|(_, v)| *v)
                    };
                    LoraModule {
                        target: target_module(l),
                        rank: over(&rank_for).map_or(rank, |r| r as usize),
                        alpha: over(&alpha_for).unwrap_or(alpha),
                    }
                })
                .collect();
            Method::Lora(Lora {
                rank,
                alpha,
                dropout: key_num(b, "dropout").unwrap_or(0.0),
                targets,
                layers,
                rank_for: rank_for.into_iter().map(|(k, v)| (k, v as usize)).collect(),
                alpha_for,
                rslora: key_bool(b, "rslora"),
                dora: key_bool(b, "dora"),
                bias: match key_word(b, "bias") {
                    Some("all") => LoraBias::All,
                    Some("lora_only") => LoraBias::LoraOnly,
                    _ => LoraBias::None,
                },
                modules_to_save,
                modules,
            })
        }
        "ia3" => {
            let inv = inv.expect("checked above");
            let family = inv.config.family;
            let (dt, df) = figures::default_ia3_targets(family);
            let targets = patterns(b.get("targets")).unwrap_or_else(|| from_figures(&dt));
            let feedforward = patterns(b.get("feedforward")).unwrap_or_else(|| from_figures(&df));
            let modules = resolve(inv, &targets, &layers, family)
                .map(|l| Ia3Module {
                    target: target_module(l),
                    feedforward: feedforward
                        .iter()
                        .any(|t| pattern_matches(t, &l.path, family)),
                })
                .collect();
            Method::Ia3 {
                targets,
                feedforward,
                layers,
                modules,
                modules_to_save,
            }
        }
        "prefix" => Method::Prefix {
            virtual_tokens: key_usize(b, "virtual_tokens").unwrap_or(20),
            projection: key_bool(b, "projection"),
            projection_hidden: b
                .get("projection_hidden")
                .and_then(|v| v.as_i64())
                .map(|v| v as usize),
        },
        "prompt" => Method::Prompt {
            virtual_tokens: key_usize(b, "virtual_tokens").unwrap_or(20),
            init: match b.get("init") {
                Some(v) if call_name(v) == Some("text") => {
                    let text = v
                        .arg("text")
                        .and_then(|t| t.as_str().map(String::from))
                        .or_else(|| match &v.val {
                            Val::Call { args, .. } => args
                                .values()
                                .find_map(|e| e.value.as_str().map(String::from)),
                            _ => None,
                        })
                        .unwrap_or_default();
                    PromptInit::Text(text)
                }
                _ => PromptInit::Random,
            },
        },
        "adapter" => Method::Adapter {
            style: match key_word(b, "style") {
                Some("houlsby") => AdapterStyle::Houlsby,
                _ => AdapterStyle::Pfeiffer,
            },
            size: key_usize(b, "size").unwrap_or(64),
            activation: match key_word(b, "activation") {
                Some("gelu") => Activation::Gelu,
                Some("silu") => Activation::Silu,
                _ => Activation::Relu,
            },
            layers,
        },
        other => {
            let _ = family;
            return fail(format!("unknown PEFT method `{other}`"), Some(b));
        }
    })
}

fn target_module(l: &LinearInfo) -> TargetModule {
    TargetModule {
        path: l.path.clone(),
        layer: l.layer,
        in_features: l.in_features as usize,
        out_features: l.out_features as usize,
    }
}

/// PEFT's rule, with `all_linear` excluding the output head.
fn pattern_matches(t: &TargetPattern, path: &str, family: Family) -> bool {
    match t {
        TargetPattern::Regex(r) => {
            regex::Regex::new(&format!("^(?:{r})$")).is_ok_and(|re| re.is_match(path))
        }
        TargetPattern::AllLinear => figures::Target::AllLinear.matches(path, family),
        TargetPattern::Suffix(_) => t.matches(path),
    }
}

fn resolve<'a>(
    inv: &'a ModelInventory,
    targets: &'a [TargetPattern],
    layers: &'a Option<Vec<usize>>,
    family: Family,
) -> impl Iterator<Item = &'a LinearInfo> + 'a {
    inv.linears.iter().filter(move |l| {
        let in_layers = match (layers, l.layer) {
            (Some(set), Some(i)) => set.contains(&i),
            (Some(_), None) => false,
            (None, _) => true,
        };
        in_layers && targets.iter().any(|t| pattern_matches(t, &l.path, family))
    })
}

fn from_figures(ts: &[figures::Target]) -> Vec<TargetPattern> {
    ts.iter()
        .map(|t| match t {
            figures::Target::Suffix(s) => TargetPattern::Suffix(s.clone()),
            figures::Target::Regex(r) => TargetPattern::Regex(r.clone()),
            figures::Target::AllLinear => TargetPattern::AllLinear,
        })
        .collect()
}

/// A `targets`-typed value as the Plan's patterns.
pub fn patterns(v: Option<&V>) -> Option<Vec<TargetPattern>> {
    match &v?.val {
        Val::Targets(ts) => Some(
            ts.iter()
                .map(|t| match t {
                    Target::Suffix(s, _) => TargetPattern::Suffix(s.clone()),
                    Target::Regex(r, _) => TargetPattern::Regex(r.clone()),
                    Target::AllLinear(_) => TargetPattern::AllLinear,
                })
                .collect(),
        ),
        _ => None,
    }
}

fn strings(v: Option<&V>) -> Vec<String> {
    match v.map(|v| &v.val) {
        Some(Val::List(items)) => items
            .iter()
            .filter_map(|v| match &v.val {
                Val::Str(s) | Val::Word(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn module_map(v: Option<&V>) -> BTreeMap<String, f64> {
    match v.map(|v| &v.val) {
        Some(Val::ModuleMap(m)) => m.iter().map(|(k, (n, _))| (k.clone(), *n)).collect(),
        _ => BTreeMap::new(),
    }
}

/// A block's `layers` list.
pub fn layers_of(b: &CBlock) -> Option<Vec<usize>> {
    match &b.get("layers")?.val {
        Val::List(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_i64())
                .filter_map(|i| usize::try_from(i).ok())
                .collect(),
        ),
        _ => None,
    }
}
