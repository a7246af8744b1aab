//! Reading adapters back: `adapter_config.json` + `adapter_model.safetensors`
//! written by ft or by Hugging Face PEFT, checked against the model with
//! every mismatch reported at once, then injected (see [`load_adapter`]).

use crate::kernels::Kernels;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use ft_plan::method::{
    Activation, AdapterStyle, Ia3Module, Lora, LoraBias, LoraModule, TargetModule, TargetPattern,
};
use ft_plan::Method;
use serde_json::Value;

use super::adapter::*;
use super::inject::{apply, set_trainable, Adaptable, ApplyOptions};
use super::{Mismatch, PeftError};

/// Reads every tensor of a safetensors file as f32.
pub fn read_safetensors(path: &Path) -> Result<TensorMap, PeftError> {
    let f = ft_formats::SafetensorsFile::open(path).map_err(|e| PeftError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut out = TensorMap::new();
    for t in &f.header.tensors {
        let v = f.tensor_f32(&t.name).map_err(|e| PeftError::Format {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        out.insert(
            t.name.clone(),
            (t.shape.iter().map(|&d| d as usize).collect(), v),
        );
    }
    Ok(out)
}

/// The layer index in a module path (`…layer.3.…`, `…layers.3.…`).
fn layer_of(path: &str) -> Option<usize> {
    let parts: Vec<&str> = path.split('.').collect();
    parts
        .windows(2)
        .find(|w| w[0] == "layer" || w[0] == "layers")
        .and_then(|w| w[1].parse().ok())
}

/// PEFT's target rule for a config's `target_modules`: a list entry
/// matches a name equal to it or ending with `.entry`; a string is a regex
/// matched against the whole name.
fn config_patterns(v: &Value) -> Vec<TargetPattern> {
    match v {
        Value::String(s) if s == "all-linear" => vec![TargetPattern::AllLinear],
        Value::String(s) => vec![TargetPattern::Regex(s.clone())],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str())
            .map(|s| TargetPattern::Suffix(s.to_string()))
            .collect(),
        _ => vec![],
    }
}

struct ConfigReader<'a> {
    config: &'a Value,
    problems: Vec<Mismatch>,
}

impl ConfigReader<'_> {
    fn bad(&mut self, field: &str, detail: impl Into<String>) {
        self.problems.push(Mismatch::Config {
            field: field.into(),
            detail: detail.into(),
        });
    }
    fn usize(&mut self, field: &str) -> usize {
        match self.config.get(field).and_then(|v| v.as_u64()) {
            Some(v) => v as usize,
            None => {
                self.bad(field, "missing or not a non-negative integer");
                0
            }
        }
    }
    fn f64_or(&self, field: &str, default: f64) -> f64 {
        self.config
            .get(field)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    }
    fn bool_or(&self, field: &str, default: bool) -> bool {
        self.config
            .get(field)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }
    fn expect_eq(&mut self, field: &str, model_value: usize) {
        if let Some(v) = self.config.get(field).and_then(|v| v.as_u64()) {
            if v as usize != model_value {
                self.bad(field, format!("{v}, but the model has {model_value}"));
            }
        }
    }
}

/// Resolves config patterns against the model: `(plan path, module name)`
/// of every matched linear, and a mismatch for each pattern matching none.
fn resolve<B: Kernels, M: Adaptable<B>>(
    model: &M,
    patterns: &[TargetPattern],
    layers: Option<&[usize]>,
    problems: &mut Vec<Mismatch>,
) -> Vec<(String, String)> {
    let all: Vec<(String, String)> = model
        .target_paths()
        .into_iter()
        .map(|p| {
            let n = model.module_name(&p);
            (p, n)
        })
        .filter(|(_, n)| {
            layers.is_none_or(|ls| layer_of(n).is_some_and(|l| ls.contains(&l)))
                && !n.ends_with(M::HEAD_NAME)
        })
        .collect();
    for pat in patterns {
        if !all.iter().any(|(_, n)| pat.matches(n)) {
            let text = match pat {
                TargetPattern::Suffix(s) | TargetPattern::Regex(s) => s.clone(),
                TargetPattern::AllLinear => "all-linear".into(),
            };
            problems.push(Mismatch::TargetAbsent(text));
        }
    }
    all.into_iter()
        .filter(|(_, n)| patterns.iter().any(|p| p.matches(n)))
        .collect()
}

fn target<B: Kernels, M: Adaptable<B>>(
    model: &M,
    path: &str,
    layer: Option<usize>,
) -> TargetModule {
    let a = model.adapted(path).expect("resolved path");
    TargetModule {
        path: path.to_string(),
        layer,
        in_features: a.in_features(),
        out_features: a.out_features(),
    }
}

/// The method an adapter config describes, resolved against `model`.
fn method_from_config<B: Kernels, M: Adaptable<B>>(
    model: &M,
    config: &Value,
    problems: &mut Vec<Mismatch>,
) -> Option<Method> {
    let mut r = ConfigReader {
        config,
        problems: Vec::new(),
    };
    let g = model.geometry();
    let peft_type = config
        .get("peft_type")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if let Some(task) = config.get("task_type").and_then(|v| v.as_str()) {
        if task != model.task_type() {
            r.bad(
                "task_type",
                format!("{task}, but the model is loaded for {}", model.task_type()),
            );
        }
    }
    let layers: Option<Vec<usize>> = match config.get("layers_to_transform") {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as usize]),
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as usize)
                .collect(),
        ),
        _ => None,
    };
    if r.bool_or("fan_in_fan_out", false) {
        r.bad(
            "fan_in_fan_out",
            "true is for GPT-2 Conv1D layers, which these models lack",
        );
    }
    let to_save: Vec<String> = match config.get("modules_to_save") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    };
    let method = match peft_type {
        "LORA" => {
            let rank = r.usize("r");
            let alpha = r.f64_or("lora_alpha", 8.0);
            let bias = match config
                .get("bias")
                .and_then(|v| v.as_str())
                .unwrap_or("none")
            {
                "none" => LoraBias::None,
                "all" => LoraBias::All,
                "lora_only" => LoraBias::LoraOnly,
                other => {
                    r.bad(
                        "bias",
                        format!("`{other}` is not one of none, all, lora_only"),
                    );
                    LoraBias::None
                }
            };
            let patterns = config_patterns(config.get("target_modules").unwrap_or(&Value::Null));
            if patterns.is_empty() {
                r.bad("target_modules", "missing or empty");
            }
            let pattern_map = |field: &str| -> Vec<(String, f64)> {
                config
                    .get(field)
                    .and_then(|v| v.as_object())
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (rank_pat, alpha_pat) = (pattern_map("rank_pattern"), pattern_map("alpha_pattern"));
            let pick = |pats: &[(String, f64)], name: &str| {
                pats.iter()
                    .find(|(k, _)| TargetPattern::Suffix(k.clone()).matches(name))
                    .map(|(_, v)| *v)
            };
            let modules = resolve(model, &patterns, layers.as_deref(), &mut r.problems)
                .into_iter()
                .map(|(path, name)| LoraModule {
                    target: target(model, &path, layer_of(&name)),
                    rank: pick(&rank_pat, &name).map_or(rank, |v| v as usize),
                    alpha: pick(&alpha_pat, &name).unwrap_or(alpha),
                })
                .collect();
            Method::Lora(Lora {
                rank,
                alpha,
                dropout: r.f64_or("lora_dropout", 0.0),
                targets: patterns,
                layers: layers.clone(),
                rank_for: rank_pat
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as usize))
                    .collect(),
                alpha_for: alpha_pat.into_iter().collect(),
                rslora: r.bool_or("use_rslora", false),
                dora: r.bool_or("use_dora", false),
                bias,
                modules_to_save: to_save.clone(),
                modules,
            })
        }
        "IA3" => {
            let patterns = config_patterns(config.get("target_modules").unwrap_or(&Value::Null));
            let ff = config_patterns(config.get("feedforward_modules").unwrap_or(&Value::Null));
            let modules = resolve(model, &patterns, layers.as_deref(), &mut r.problems)
                .into_iter()
                .map(|(path, name)| Ia3Module {
                    target: target(model, &path, layer_of(&name)),
                    feedforward: ff.iter().any(|p| p.matches(&name)),
                })
                .collect();
            Method::Ia3 {
                targets: patterns,
                feedforward: ff,
                layers: layers.clone(),
                modules,
                modules_to_save: to_save.clone(),
            }
        }
        "PROMPT_TUNING" => {
            r.expect_eq("token_dim", g.hidden);
            r.expect_eq("num_transformer_submodules", 1);
            Method::Prompt {
                virtual_tokens: r.usize("num_virtual_tokens"),
                init: ft_plan::method::PromptInit::Random,
            }
        }
        "PREFIX_TUNING" => {
            r.expect_eq("token_dim", g.kv_heads * g.head_dim);
            r.expect_eq("num_layers", g.layers);
            r.expect_eq("num_attention_heads", g.kv_heads);
            r.expect_eq("num_transformer_submodules", 1);
            Method::Prefix {
                virtual_tokens: r.usize("num_virtual_tokens"),
                projection: false,
                projection_hidden: None,
            }
        }
        FT_BOTTLENECK => {
            let style = match config.get("style").and_then(|v| v.as_str()) {
                Some("houlsby") => AdapterStyle::Houlsby,
                Some("pfeiffer") => AdapterStyle::Pfeiffer,
                other => {
                    r.bad("style", format!("{other:?} is not houlsby or pfeiffer"));
                    AdapterStyle::Pfeiffer
                }
            };
            let activation = match config.get("activation").and_then(|v| v.as_str()) {
                Some("relu") => Activation::Relu,
                Some("gelu") => Activation::Gelu,
                Some("silu") => Activation::Silu,
                other => {
                    r.bad("activation", format!("{other:?} is not relu, gelu or silu"));
                    Activation::Relu
                }
            };
            Method::Adapter {
                style,
                size: r.usize("size"),
                activation,
                layers: config.get("layers").and_then(|v| v.as_array()).map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as usize)
                        .collect()
                }),
            }
        }
        other => {
            r.bad(
                "peft_type",
                format!("`{other}` is not supported (LORA, IA3, PROMPT_TUNING, PREFIX_TUNING, {FT_BOTTLENECK})"),
            );
            problems.append(&mut r.problems);
            return None;
        }
    };
    if model.head().is_some() && !to_save.iter().any(|m| m == M::HEAD_NAME) {
        r.bad(
            "modules_to_save",
            format!(
                "the model has a classification head but the adapter does not save `{}`",
                M::HEAD_NAME
            ),
        );
    }
    problems.append(&mut r.problems);
    Some(method)
}

/// Loads an adapter folder onto `model`: returns the model with the
/// adapter injected (its parameters trainable, as after [`apply`]) and the
/// method the adapter describes. Every mismatch between config, tensors
/// and model is reported at once.
pub fn load_adapter<B: Kernels, M: Adaptable<B>>(
    model: M,
    dir: &Path,
) -> Result<(M, Method), PeftError> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).map_err(|error| PeftError::Io {
        path: config_path.clone(),
        error,
    })?;
    let config: Value = serde_json::from_str(&text).map_err(|e| PeftError::Format {
        path: config_path.clone(),
        detail: e.to_string(),
    })?;
    let file = read_safetensors(&dir.join(WEIGHTS_FILE))?;
    let mut problems = Vec::new();
    let method = method_from_config(&model, &config, &mut problems);
    let Some(method) = method.filter(|_| problems.is_empty()) else {
        return Err(PeftError::Mismatched {
            dir: dir.to_path_buf(),
            mismatches: problems,
        });
    };
    // What the config implies, shaped by the model: inject, then compare.
    let model = apply(model, &method, &ApplyOptions::default())?;
    let expected = adapter_tensors(&model, &method)?;
    for (k, (shape, _)) in &expected {
        match file.get(k) {
            None => problems.push(Mismatch::MissingKey(k.clone())),
            Some((s, _)) if s != shape => {
                // PEFT's prompt embeddings may cover more submodules.
                problems.push(Mismatch::WrongShape {
                    key: k.clone(),
                    expected: shape.clone(),
                    actual: s.clone(),
                })
            }
            _ => {}
        }
    }
    for k in file.keys() {
        // With `bias = "all"`, PEFT also saves the biases of its wrappers
        // of modules_to_save (`….original_module.bias`,
        // `….modules_to_save.bias`); the module's own name holds the value.
        let wrapper = k.contains(".original_module.") || k.contains(".modules_to_save.");
        if !expected.contains_key(k) && !wrapper {
            problems.push(Mismatch::UnexpectedKey(k.clone()));
        }
    }
    if !problems.is_empty() {
        return Err(PeftError::Mismatched {
            dir: dir.to_path_buf(),
            mismatches: problems,
        });
    }
    let model = assign(model, &method, &file);
    let model = super::saved::assign_saved_base(model, &method, &file);
    Ok((set_trainable(model, &method), method))
}

/// Puts the (already validated) tensors into the injected model.
fn assign<B: Kernels, M: Adaptable<B>>(mut model: M, method: &Method, file: &TensorMap) -> M {
    let device = model.devices()[0].clone();
    let get = |k: &str| file.get(k).expect("validated");
    let vec1 = |k: &str| -> Tensor<B, 1> {
        let (_, v) = get(k);
        Tensor::from_data(TensorData::new(v.clone(), [v.len()]), &device)
    };
    let mat = |k: &str| -> Tensor<B, 2> {
        let (s, v) = get(k);
        burn_matrix(s, v, &device)
    };
    let plain = |k: &str| -> Tensor<B, 2> {
        let (s, v) = get(k);
        Tensor::from_data(TensorData::new(v.clone(), [s[0], s[1]]), &device)
    };
    match method {
        Method::Lora(lora) => {
            for m in &lora.modules {
                let name = format!("{TUNER}{}", model.module_name(&m.target.path));
                let l = model
                    .adapted_mut(&m.target.path)
                    .and_then(|a| a.lora.as_mut())
                    .expect("injected");
                l.a = Param::from_tensor(mat(&format!("{name}.lora_A.weight")));
                l.b = Param::from_tensor(mat(&format!("{name}.lora_B.weight")));
                if l.magnitude.is_some() {
                    l.magnitude = Some(Param::from_tensor(vec1(&format!(
                        "{name}.lora_magnitude_vector"
                    ))));
                }
            }
        }
        Method::Ia3 { modules, .. } => {
            for m in modules {
                let name = format!("{TUNER}{}", model.module_name(&m.target.path));
                let s = model
                    .adapted_mut(&m.target.path)
                    .and_then(|a| a.ia3.as_mut())
                    .expect("injected");
                s.scale = Param::from_tensor(vec1(&format!("{name}.ia3_l")));
            }
        }
        Method::Prompt { .. } => {
            model
                .prompt_tuning_mut()
                .as_mut()
                .expect("injected")
                .embedding = Param::from_tensor(plain("prompt_embeddings"));
        }
        Method::Prefix { .. } => {
            model
                .prefix_tuning_mut()
                .as_mut()
                .expect("injected")
                .embedding = Param::from_tensor(plain("prompt_embeddings"));
        }
        Method::Adapter { .. } => {
            for i in 0..model.geometry().layers {
                let prefix = format!("{TUNER}{}", model.layer_name(i));
                let (attn, ffn) = model.adapter_slots(i);
                for (slot, a) in [("attn_adapter", attn), ("ffn_adapter", ffn)] {
                    let Some(a) = a.as_mut() else { continue };
                    let name = format!("{prefix}.{slot}");
                    a.down.weight = Param::from_tensor(mat(&format!("{name}.down.weight")));
                    a.down.bias = Some(Param::from_tensor(vec1(&format!("{name}.down.bias"))));
                    a.up.weight = Param::from_tensor(mat(&format!("{name}.up.weight")));
                    a.up.bias = Some(Param::from_tensor(vec1(&format!("{name}.up.bias"))));
                }
            }
        }
        Method::Full { .. } => {}
    }
    let hp = format!("{}{}", head_prefix(method), M::HEAD_NAME);
    if let Some(head) = model.head_mut() {
        head.weight = Param::from_tensor(mat(&format!("{hp}.weight")));
        if head.bias.is_some() {
            head.bias = Some(Param::from_tensor(vec1(&format!("{hp}.bias"))));
        }
    }
    model
}

/// For tests and tools: a tensor map from `(name, shape, values)`.
pub fn tensor_map(items: Vec<(String, Vec<usize>, Vec<f32>)>) -> TensorMap {
    items.into_iter().map(|(k, s, v)| (k, (s, v))).collect()
}

/// The label count of the classification head an adapter folder saves
/// (`…classifier.weight` or `…score.weight`, PyTorch `[labels, hidden]`),
/// `None` when it saves none.
pub fn head_labels(dir: &Path) -> Result<Option<usize>, PeftError> {
    let tensors = read_safetensors(&dir.join(super::adapter::WEIGHTS_FILE))?;
    Ok(tensors
        .iter()
        .find(|(k, _)| k.ends_with(".classifier.weight") || k.ends_with(".score.weight"))
        .map(|(_, (shape, _))| shape[0]))
}
