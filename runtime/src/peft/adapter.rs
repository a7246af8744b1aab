//! Adapters on disk in Hugging Face PEFT's format: `adapter_config.json` +
//! `adapter_model.safetensors` (metadata `{"format":"pt"}`, PyTorch `[out,
//! in]` orientation, keys `base_model.model.<module>.lora_A.weight`, …), so
//! `peft.PeftModel.from_pretrained` loads what ft writes and ft loads what
//! PEFT writes. Bottleneck adapters, which PEFT lacks, use ft's own format
//! in the same two files (docs/adapters.md).
//!
//! Loading refuses any disagreement between the config, the tensors and
//! the model, listing every one ([`PeftError::Mismatched`]); PEFT itself
//! only warns about missing keys.

use crate::kernels::Kernels;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use ft_plan::method::{Activation, AdapterStyle, LoraBias};
use ft_plan::Method;
use serde_json::{json, Value};

use super::inject::Adaptable;
use super::linear::transpose_vec;
use super::PeftError;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// `peft_type` of ft's bottleneck adapters.
pub const FT_BOTTLENECK: &str = "FT_BOTTLENECK";

/// Named f32 tensors: shape and row-major values.
pub type TensorMap = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

pub(crate) const TUNER: &str = "base_model.model.";

pub(crate) fn values<B: Kernels, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 tensor data")
}

/// A Burn `[in, out]` matrix as PyTorch `[out, in]`.
pub(crate) fn torch_matrix<B: Kernels>(t: Tensor<B, 2>) -> (Vec<usize>, Vec<f32>) {
    let [i, o] = t.dims();
    (vec![o, i], transpose_vec(&values(t), i, o))
}

pub(crate) fn burn_matrix<B: Kernels>(
    shape: &[usize],
    v: &[f32],
    device: &B::Device,
) -> Tensor<B, 2> {
    let (o, i) = (shape[0], shape[1]);
    Tensor::from_data(TensorData::new(transpose_vec(v, o, i), [i, o]), device)
}

pub(crate) fn head_prefix(method: &Method) -> &'static str {
    // Prompt-learning models wrap the transformers model one level less.
    match method {
        Method::Prompt { .. } | Method::Prefix { .. } => "base_model.",
        _ => TUNER,
    }
}

/// The adapter's tensors, named and shaped as PEFT saves them.
pub fn adapter_tensors<B: Kernels, M: Adaptable<B>>(
    model: &M,
    method: &Method,
) -> Result<TensorMap, PeftError> {
    let mut out = TensorMap::new();
    match method {
        Method::Full { .. } => {
            return Err(PeftError::Invalid(
                "full fine-tuning has no adapter: export merged weights instead".into(),
            ))
        }
        Method::Lora(lora) => {
            for m in &lora.modules {
                let layer = model
                    .adapted(&m.target.path)
                    .ok_or_else(|| PeftError::TargetsAbsent(vec![m.target.path.clone()]))?;
                let l = layer.lora.as_ref().ok_or_else(|| {
                    PeftError::Invalid(format!("`{}` has no LoRA adapter", m.target.path))
                })?;
                let name = format!("{TUNER}{}", model.module_name(&m.target.path));
                out.insert(format!("{name}.lora_A.weight"), torch_matrix(l.a.val()));
                out.insert(format!("{name}.lora_B.weight"), torch_matrix(l.b.val()));
                if let Some(mag) = &l.magnitude {
                    out.insert(
                        format!("{name}.lora_magnitude_vector"),
                        (mag.dims().to_vec(), values(mag.val())),
                    );
                }
            }
        }
        Method::Ia3 { modules, .. } => {
            for m in modules {
                let layer = model
                    .adapted(&m.target.path)
                    .ok_or_else(|| PeftError::TargetsAbsent(vec![m.target.path.clone()]))?;
                let s = layer.ia3.as_ref().ok_or_else(|| {
                    PeftError::Invalid(format!("`{}` has no IA3 scaling", m.target.path))
                })?;
                let n = s.scale.dims()[0];
                let shape = if s.feedforward {
                    vec![1, n]
                } else {
                    vec![n, 1]
                };
                let name = format!("{TUNER}{}", model.module_name(&m.target.path));
                out.insert(format!("{name}.ia3_l"), (shape, values(s.scale.val())));
            }
        }
        Method::Prompt { .. } => {
            let p = model
                .prompt_tuning()
                .ok_or_else(|| PeftError::Invalid("the model has no prompt tuning".into()))?;
            let e = p.embedding.val();
            out.insert("prompt_embeddings".into(), (e.dims().to_vec(), values(e)));
        }
        Method::Prefix { .. } => {
            let p = model
                .prefix_tuning()
                .ok_or_else(|| PeftError::Invalid("the model has no prefix tuning".into()))?;
            let v = p.values();
            out.insert("prompt_embeddings".into(), (v.dims().to_vec(), values(v)));
        }
        Method::Adapter { .. } => {
            for i in 0..model.geometry().layers {
                let (attn, ffn) = model.adapters(i);
                for (slot, a) in [("attn_adapter", attn), ("ffn_adapter", ffn)] {
                    let Some(a) = a else { continue };
                    let name = format!("{TUNER}{}.{slot}", model.layer_name(i));
                    for (part, lin) in [("down", &a.down), ("up", &a.up)] {
                        out.insert(
                            format!("{name}.{part}.weight"),
                            torch_matrix(lin.weight.val()),
                        );
                        if let Some(b) = &lin.bias {
                            out.insert(
                                format!("{name}.{part}.bias"),
                                (b.dims().to_vec(), values(b.val())),
                            );
                        }
                    }
                }
            }
        }
    }
    out.extend(super::saved::saved_base_tensors(model, method));
    if let Some(head) = model.head() {
        let p = format!("{}{}", head_prefix(method), M::HEAD_NAME);
        out.insert(format!("{p}.weight"), torch_matrix(head.weight.val()));
        if let Some(b) = &head.bias {
            out.insert(format!("{p}.bias"), (b.dims().to_vec(), values(b.val())));
        }
    }
    Ok(out)
}

pub(crate) fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

pub(crate) fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::Silu => "silu",
    }
}

/// Whether PEFT's `target_modules` entry `entry` selects module `name`.
fn selects(entry: &str, name: &str) -> bool {
    name == entry
        || name
            .strip_suffix(entry)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The names PEFT writes for `chosen` among `universe` (module names):
/// the fewest trailing components (`q_proj`, `output.dense`), with no layer
/// number among them, that select exactly `chosen`. A layer subset has no
/// such names, so its full list is kept.
fn peft_names(chosen: &[String], universe: &[String]) -> Vec<String> {
    let want: BTreeSet<&str> = chosen.iter().map(String::as_str).collect();
    let depth = chosen
        .iter()
        .map(|c| c.split('.').count())
        .max()
        .unwrap_or(0);
    for k in 1..depth {
        let mut short: Vec<String> = Vec::new();
        for c in chosen {
            let parts: Vec<&str> = c.split('.').collect();
            let tail = &parts[parts.len().saturating_sub(k)..];
            if tail.iter().any(|p| p.parse::<usize>().is_ok()) {
                return chosen.to_vec();
            }
            let tail = tail.join(".");
            if !short.contains(&tail) {
                short.push(tail);
            }
        }
        let selected: BTreeSet<&str> = universe
            .iter()
            .map(String::as_str)
            .filter(|u| short.iter().any(|t| selects(t, u)))
            .collect();
        if selected == want {
            return short;
        }
    }
    chosen.to_vec()
}

/// IA3's `target_modules` and `feedforward_modules` (which PEFT requires
/// to be a subset of the former): short names where each of them selects
/// only feed-forward or only other modules, the full names otherwise.
fn ia3_names(names: &[String], ff: &[String], universe: &[String]) -> (Vec<String>, Vec<String>) {
    let targets = peft_names(names, universe);
    let is_ff = |n: &String| ff.contains(n);
    let mut short_ff = Vec::new();
    for t in &targets {
        let hits: Vec<&String> = names.iter().filter(|n| selects(t, n)).collect();
        match (hits.iter().all(|n| is_ff(n)), hits.iter().any(|n| is_ff(n))) {
            (true, true) => short_ff.push(t.clone()),
            (false, false) => {}
            _ => return (names.to_vec(), ff.to_vec()),
        }
    }
    (targets, short_ff)
}

/// `adapter_config.json`: only the fields ft uses (older PEFT versions
/// refuse unknown keys). Targets are written as PEFT writes the user's
/// (`q_proj`, `v_proj`), as short as still selects exactly the modules ft
/// adapted; the full module names where only they do (a layer subset).
pub fn adapter_config<B: Kernels, M: Adaptable<B>>(
    model: &M,
    method: &Method,
    base_model: &str,
) -> Value {
    let g = model.geometry();
    let task = model.task_type();
    let universe: Vec<String> = model
        .target_paths()
        .iter()
        .map(|p| model.module_name(p))
        .collect();
    // The user's modules, then the head (PEFT adds it for SEQ_CLS).
    let mut to_save: Vec<String> = match method {
        Method::Lora(l) => l.modules_to_save.clone(),
        Method::Ia3 {
            modules_to_save, ..
        } => modules_to_save.clone(),
        _ => Vec::new(),
    };
    to_save.retain(|m| m != "classifier" && m != "score");
    if model.head().is_some() {
        to_save.push(M::HEAD_NAME.to_string());
    }
    let to_save = if to_save.is_empty() {
        Value::Null
    } else {
        json!(to_save)
    };
    match method {
        Method::Lora(lora) => {
            let names: Vec<String> = lora
                .modules
                .iter()
                .map(|m| model.module_name(&m.target.path))
                .collect();
            let targets = peft_names(&names, &universe);
            let r = lora.modules.first().map_or(lora.rank, |m| m.rank);
            let alpha = lora.modules.first().map_or(lora.alpha, |m| m.alpha);
            let mut rank_pattern = serde_json::Map::new();
            let mut alpha_pattern = serde_json::Map::new();
            for (m, name) in lora.modules.iter().zip(&names) {
                if m.rank != r {
                    rank_pattern.insert(name.clone(), json!(m.rank));
                }
                if m.alpha != alpha {
                    alpha_pattern.insert(name.clone(), number(m.alpha));
                }
            }
            json!({
                "peft_type": "LORA",
                "task_type": task,
                "base_model_name_or_path": base_model,
                "r": r,
                "lora_alpha": number(alpha),
                "lora_dropout": lora.dropout,
                "target_modules": targets,
                "rank_pattern": rank_pattern,
                "alpha_pattern": alpha_pattern,
                "bias": match lora.bias {
                    LoraBias::None => "none",
                    LoraBias::All => "all",
                    LoraBias::LoraOnly => "lora_only",
                },
                "fan_in_fan_out": false,
                "modules_to_save": to_save,
                "use_rslora": lora.rslora,
                "use_dora": lora.dora,
                "init_lora_weights": true,
                "inference_mode": true,
            })
        }
        Method::Ia3 { modules, .. } => {
            let names: Vec<String> = modules
                .iter()
                .map(|m| model.module_name(&m.target.path))
                .collect();
            let ff: Vec<String> = modules
                .iter()
                .filter(|m| m.feedforward)
                .map(|m| model.module_name(&m.target.path))
                .collect();
            let (names, ff) = ia3_names(&names, &ff, &universe);
            json!({
                "peft_type": "IA3",
                "task_type": task,
                "base_model_name_or_path": base_model,
                "target_modules": names,
                "feedforward_modules": ff,
                "fan_in_fan_out": false,
                "modules_to_save": to_save,
                "init_ia3_weights": true,
                "inference_mode": true,
            })
        }
        Method::Prompt { virtual_tokens, .. } => json!({
            "peft_type": "PROMPT_TUNING",
            "task_type": task,
            "base_model_name_or_path": base_model,
            "num_virtual_tokens": virtual_tokens,
            "token_dim": g.hidden,
            "num_transformer_submodules": 1,
            "num_attention_heads": g.heads,
            "num_layers": g.layers,
            // The embeddings are in the file; "TEXT" would make PEFT load a
            // tokenizer to re-initialise them.
            "prompt_tuning_init": "RANDOM",
            "modules_to_save": to_save,
            "inference_mode": true,
        }),
        Method::Prefix { virtual_tokens, .. } => json!({
            "peft_type": "PREFIX_TUNING",
            "task_type": task,
            "base_model_name_or_path": base_model,
            "num_virtual_tokens": virtual_tokens,
            "token_dim": g.kv_heads * g.head_dim,
            "num_transformer_submodules": 1,
            "num_attention_heads": g.kv_heads,
            "num_layers": g.layers,
            "encoder_hidden_size": g.kv_heads * g.head_dim,
            // The saved values are the projection's output (as PEFT saves
            // them), so the adapter on disk has no projection.
            "prefix_projection": false,
            "modules_to_save": to_save,
            "inference_mode": true,
        }),
        Method::Adapter {
            style,
            size,
            activation,
            layers,
        } => json!({
            "peft_type": FT_BOTTLENECK,
            "ft_format_version": 1,
            "task_type": task,
            "base_model_name_or_path": base_model,
            "style": match style { AdapterStyle::Houlsby => "houlsby", AdapterStyle::Pfeiffer => "pfeiffer" },
            "size": size,
            "activation": activation_name(*activation),
            "layers": layers,
            "modules_to_save": to_save,
        }),
        Method::Full { .. } => Value::Null,
    }
}

/// Writes a safetensors file (f32, keys sorted, metadata `format: pt`)
/// atomically: to a temporary file in the same folder, then renamed.
pub fn write_safetensors(path: &Path, tensors: &TensorMap) -> Result<(), PeftError> {
    let entries: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(k, (shape, v))| (k.as_str(), shape.as_slice(), v.as_slice()))
        .collect();
    write_f32_tensors(path, &entries).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => PeftError::Invalid(e.to_string()),
        _ => PeftError::Io {
            path: path.to_path_buf(),
            error: e,
        },
    })
}

/// Writes f32 tensors `(name, shape, values)` as a safetensors file,
/// atomically (a temporary file renamed over `path`), streaming the values
/// rather than building the file in memory: a checkpoint or merged model
/// costs no second copy of its weights.
pub fn write_f32_tensors(path: &Path, tensors: &[(&str, &[usize], &[f32])]) -> std::io::Result<()> {
    use std::io::Write;
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, shape, v) in tensors {
        let n: usize = shape.iter().product();
        if n != v.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("tensor `{name}`: {} values for shape {shape:?}", v.len()),
            ));
        }
        header.insert(
            name.to_string(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * n]}),
        );
        offset += 4 * n;
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).expect("json");
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    out.write_all(&(h.len() as u64).to_le_bytes())?;
    out.write_all(&h)?;
    let mut chunk = Vec::with_capacity(1 << 16);
    for (_, _, v) in tensors {
        for part in v.chunks(1 << 14) {
            chunk.clear();
            chunk.extend(part.iter().flat_map(|x| x.to_le_bytes()));
            out.write_all(&chunk)?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes to `<path>.tmp-<pid>` and renames over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PeftError> {
    let io = |error| PeftError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Saves the adapter of `model` under `method` into `dir` (created if
/// needed): the tensors first, the config last, each file atomically.
pub fn save_adapter<B: Kernels, M: Adaptable<B>>(
    model: &M,
    method: &Method,
    base_model: &str,
    dir: &Path,
) -> Result<(), PeftError> {
    let tensors = adapter_tensors(model, method)?;
    std::fs::create_dir_all(dir).map_err(|error| PeftError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    write_safetensors(&dir.join(WEIGHTS_FILE), &tensors)?;
    let config = adapter_config(model, method, base_model);
    let mut text = serde_json::to_string_pretty(&config).expect("json");
    text.push('\n');
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
}

pub use super::adapter_import::{head_labels, load_adapter, read_safetensors, tensor_map};

#[cfg(test)]
mod tests {
    use super::*;

    fn llama(layers: usize) -> Vec<String> {
        let kinds = ["q_proj", "k_proj", "v_proj", "o_proj"];
        (0..layers)
            .flat_map(|i| kinds.map(|k| format!("model.layers.{i}.self_attn.{k}")))
            .chain((0..layers).flat_map(|i| {
                ["gate_proj", "up_proj", "down_proj"].map(|k| format!("model.layers.{i}.mlp.{k}"))
            }))
            .collect()
    }

    fn pick(universe: &[String], ends: &[&str]) -> Vec<String> {
        universe
            .iter()
            .filter(|u| ends.iter().any(|e| u.ends_with(e)))
            .cloned()
            .collect()
    }

    #[test]
    fn every_layer_gets_the_short_names_peft_writes() {
        let u = llama(3);
        let chosen = pick(&u, &[".q_proj", ".v_proj"]);
        assert_eq!(peft_names(&chosen, &u), ["q_proj", "v_proj"]);
    }

    #[test]
    fn a_layer_subset_keeps_its_full_names() {
        let u = llama(3);
        let chosen = pick(&u, &["layers.1.self_attn.q_proj"]);
        assert_eq!(peft_names(&chosen, &u), chosen);
    }

    #[test]
    fn short_names_that_would_select_more_are_lengthened() {
        // BERT: `dense` alone would also select the attention's and the
        // intermediate's; `attention.output.dense` is the one chosen.
        let u: Vec<String> = (0..2)
            .flat_map(|i| {
                [
                    "attention.self.query",
                    "attention.output.dense",
                    "intermediate.dense",
                    "output.dense",
                ]
                .map(|k| format!("encoder.layer.{i}.{k}"))
            })
            .collect();
        let chosen = pick(&u, &["attention.output.dense"]);
        assert_eq!(peft_names(&chosen, &u), ["attention.output.dense"]);
    }

    #[test]
    fn ia3_feedforward_names_are_among_the_targets() {
        let u = llama(2);
        let names = pick(&u, &[".k_proj", ".v_proj", ".down_proj"]);
        let ff = pick(&u, &[".down_proj"]);
        let (targets, short_ff) = ia3_names(&names, &ff, &u);
        assert_eq!(targets, ["k_proj", "v_proj", "down_proj"]);
        assert_eq!(short_ff, ["down_proj"]);
    }
}
