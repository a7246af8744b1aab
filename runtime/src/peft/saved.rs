//! Base-model parameters that a LoRA or IA3 adapter trains and saves beside
//! its own, as PEFT defines them: biases under LoRA's `bias = "all"` (every
//! bias of the model) or `"lora_only"` (those of the adapted layers), and
//! every parameter of a `modules_to_save` module other than the new
//! classification head (which [`super::Adaptable::head`] covers).
//!
//! PEFT names them by their transformers path under `base_model.model.`; a
//! layer it wraps (a LoRA or IA3 target) keeps its own weights under
//! `base_layer` (`…query.base_layer.bias`).

use crate::kernels::Kernels;
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use ft_plan::method::LoraBias;
use ft_plan::Method;

use super::adapter::{values, TensorMap, TUNER};
use super::inject::{Adaptable, PEFT_SEGMENTS};
use super::linear::transpose_vec;

/// The method's adapted modules, its bias rule and its extra modules to
/// save ([`ft_plan::method::BaseParams`]).
fn parts(method: &Method) -> Option<(Vec<&str>, LoraBias, Vec<&str>)> {
    let p = method.base_params()?;
    Some((p.adapted, p.bias, p.modules_to_save))
}

/// PEFT's `modules_to_save` rule: a module is saved when its name ends
/// with an entry, as text (`norm` saves `model.norm` and every
/// `…input_layernorm`); a parameter, when one of its modules is.
fn in_saved_module(to_save: &[&str], module: &str) -> bool {
    let parts: Vec<&str> = module.split('.').collect();
    (1..=parts.len()).any(|n| {
        let ancestor = parts[..n].join(".");
        to_save.iter().any(|m| ancestor.ends_with(m))
    })
}

/// Whether the HF module `module` is one the method adapts (Plan paths may
/// omit the classifier's `bert.` prefix).
fn is_adapted(adapted: &[&str], module: &str) -> bool {
    adapted
        .iter()
        .any(|t| module == *t || module.ends_with(&format!(".{t}")))
}

/// The HF module path of a parameter's Burn path, when it is a base-model
/// parameter (not the head, not one a method adds).
fn base_module<B: Kernels, M: Adaptable<B>>(burn_path: &[String]) -> Option<String> {
    if burn_path.first().is_some_and(|s| s == M::HEAD_NAME)
        || burn_path
            .iter()
            .any(|s| PEFT_SEGMENTS.contains(&s.as_str()))
    {
        return None;
    }
    M::hf_module_path(&burn_path[..burn_path.len().saturating_sub(1)].join("."))
}

/// Whether the parameter at `burn_path` is trained and saved with the
/// adapter (see the module documentation).
pub fn saves_base_param<B: Kernels, M: Adaptable<B>>(
    method: &Method,
    burn_path: &[String],
) -> bool {
    let Some((adapted, bias, to_save)) = parts(method) else {
        return false;
    };
    let Some(module) = base_module::<B, M>(burn_path) else {
        return false;
    };
    let is_bias = burn_path.last().is_some_and(|s| s == "bias");
    in_saved_module(&to_save, &module)
        || match bias {
            LoraBias::None => false,
            LoraBias::All => is_bias,
            LoraBias::LoraOnly => is_bias && is_adapted(&adapted, &module),
        }
}

/// PEFT's name of a saved base parameter.
fn peft_name<B: Kernels, M: Adaptable<B>>(method: &Method, burn_path: &[String]) -> Option<String> {
    let (adapted, _, _) = parts(method)?;
    let module = base_module::<B, M>(burn_path)?;
    let param = burn_path.last()?;
    let wrapped = burn_path.iter().any(|s| s == "base") && is_adapted(&adapted, &module);
    Some(if wrapped {
        format!("{TUNER}{module}.base_layer.{param}")
    } else {
        format!("{TUNER}{module}.{param}")
    })
}

/// Burn path of the current parameter and whether it sits in a `Linear`
/// (whose weight Burn stores transposed).
#[derive(Default)]
struct Walk {
    path: Vec<String>,
    containers: Vec<String>,
}

impl Walk {
    fn enter(&mut self, name: &str, container: &str) {
        self.path.push(name.to_string());
        self.containers.push(container.to_string());
    }
    fn exit(&mut self) {
        self.path.pop();
        self.containers.pop();
    }
    fn in_linear(&self) -> bool {
        self.containers.last().is_some_and(|c| c == "Struct:Linear")
    }
}

struct Collect<'a, B: Kernels, M: Adaptable<B>> {
    walk: Walk,
    method: &'a Method,
    out: TensorMap,
    _m: std::marker::PhantomData<(B, M)>,
}

impl<B: Kernels, M: Adaptable<B>> ModuleVisitor<B> for Collect<'_, B, M> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.walk.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.walk.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let path = &self.walk.path;
        if !saves_base_param::<B, M>(self.method, path) {
            return;
        }
        let Some(name) = peft_name::<B, M>(self.method, path) else {
            return;
        };
        let t = param.val();
        let shape = t.dims().to_vec();
        let v = values(t);
        let entry = if D == 2 && self.walk.in_linear() {
            // Burn [in, out] -> PyTorch [out, in].
            (
                vec![shape[1], shape[0]],
                transpose_vec(&v, shape[0], shape[1]),
            )
        } else {
            (shape, v)
        };
        self.out.insert(name, entry);
    }
}

/// The saved base parameters of `model`, by PEFT name, in PyTorch layout.
pub fn saved_base_tensors<B: Kernels, M: Adaptable<B>>(model: &M, method: &Method) -> TensorMap {
    let mut c = Collect::<B, M> {
        walk: Walk::default(),
        method,
        out: TensorMap::new(),
        _m: std::marker::PhantomData,
    };
    model.visit(&mut c);
    c.out
}

struct Assign<'a, B: Kernels, M: Adaptable<B>> {
    walk: Walk,
    method: &'a Method,
    file: &'a TensorMap,
    _m: std::marker::PhantomData<(B, M)>,
}

impl<B: Kernels, M: Adaptable<B>> ModuleMapper<B> for Assign<'_, B, M> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.walk.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.walk.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let path = &self.walk.path;
        let found = saves_base_param::<B, M>(self.method, path)
            .then(|| peft_name::<B, M>(self.method, path))
            .flatten()
            .and_then(|name| self.file.get(&name));
        let Some((shape, v)) = found else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let device = tensor.device();
        let data = if D == 2 && self.walk.in_linear() {
            // PyTorch [out, in] -> Burn [in, out].
            TensorData::new(transpose_vec(v, shape[0], shape[1]), [shape[1], shape[0]])
        } else {
            TensorData::new(v.clone(), shape.clone())
        };
        Param::from_mapped_value(id, Tensor::from_data(data, &device), mapper)
    }
}

/// `model` with its saved base parameters replaced by the adapter file's
/// (already checked against [`saved_base_tensors`]'s names and shapes).
pub fn assign_saved_base<B: Kernels, M: Adaptable<B>>(
    model: M,
    method: &Method,
    file: &TensorMap,
) -> M {
    let mut a = Assign::<B, M> {
        walk: Walk::default(),
        method,
        file,
        _m: std::marker::PhantomData,
    };
    model.map(&mut a)
}

/// Entries of `modules_to_save` (other than the heads) that match no
/// module of `model`: PEFT would fail on them; ft says which.
pub fn absent_modules_to_save<B: Kernels, M: Adaptable<B>>(
    model: &M,
    method: &Method,
) -> Vec<String> {
    let Some((_, _, to_save)) = parts(method) else {
        return Vec::new();
    };
    let saved = saved_base_tensors(model, method);
    to_save
        .iter()
        .filter(|m| {
            !saved.keys().any(|k| {
                let module = k.strip_prefix(TUNER).unwrap_or(k);
                let module = module.rsplit_once('.').map_or(module, |(m, _)| m);
                in_saved_module(&[m], module)
            })
        })
        .map(|m| m.to_string())
        .collect()
}
