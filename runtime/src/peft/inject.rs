//! Injecting a Plan's method into a model: the [`Adaptable`] trait the two
//! model families implement, [`apply`], and which parameters train.

use crate::kernels::{Kernels, PackedWeight};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Int, Tensor, TensorData};
use ft_plan::method::{Lora, PromptInit, TargetPattern};
use ft_plan::Method;

use super::bottleneck::Bottleneck;
use super::prompt::{PrefixTuning, PromptTuning};
use super::{rng, AdaptedLinear, PeftError};
use crate::bert::{BertForSequenceClassification, BertModel};
use crate::llama::LlamaForCausalLM;

/// The shapes a method needs from a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// What [`apply`] needs of a model family.
pub trait Adaptable<B: Kernels>: Module<B> + Sized {
    fn geometry(&self) -> Geometry;
    /// The adapted linear at an HF module path.
    fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>>;
    fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>>;
    /// Token embeddings `[n, hidden]` of these ids (prompt init from text).
    fn embed(&self, ids: &[u32]) -> Tensor<B, 2>;
    fn prompt_tuning_mut(&mut self) -> &mut Option<PromptTuning<B>>;
    fn prefix_tuning_mut(&mut self) -> &mut Option<PrefixTuning<B>>;
    fn prompt_tuning(&self) -> Option<&PromptTuning<B>>;
    fn prefix_tuning(&self) -> Option<&PrefixTuning<B>>;
    /// The bottleneck slots of a layer: (after attention, after the MLP).
    #[allow(clippy::type_complexity)]
    fn adapter_slots(
        &mut self,
        layer: usize,
    ) -> (&mut Option<Bottleneck<B>>, &mut Option<Bottleneck<B>>);
    #[allow(clippy::type_complexity)]
    fn adapters(&self, layer: usize) -> (Option<&Bottleneck<B>>, Option<&Bottleneck<B>>);
    /// The HF module path of a Burn parameter path (without `.weight`), for
    /// `freeze` patterns; `None` for parameters PEFT methods add.
    fn hf_module_path(burn_path: &str) -> Option<String>;
    /// The module name of the classification head, in transformers and in
    /// Burn (`classifier` for BERT, `score` for Llama).
    const HEAD_NAME: &'static str = "classifier";
    /// A new classification head (always trained in full).
    fn head(&self) -> Option<&Linear<B>> {
        None
    }
    fn head_mut(&mut self) -> Option<&mut Linear<B>> {
        None
    }
    /// An LM head: the weight it multiplies by, the slot for its packed
    /// form ([`super::pack_frozen`]), and whether only products read that
    /// weight (not a tied embedding, whose rows are looked up).
    fn lm_head_mut(&mut self) -> Option<(Tensor<B, 2>, &mut Option<PackedWeight>, bool)> {
        None
    }
    /// PEFT's `task_type` for this model.
    fn task_type(&self) -> &'static str;
    /// The module name, in the transformers model of [`Self::task_type`],
    /// of a Plan module path (`encoder.layer.0.attention.self.query` is
    /// `bert.encoder.layer.0.attention.self.query` under
    /// `BertForSequenceClassification`).
    fn module_name(&self, path: &str) -> String;
    /// The module name of layer `i` (`bert.encoder.layer.3`, `model.layers.3`).
    fn layer_name(&self, i: usize) -> String;
    /// Plan paths of every linear layer PEFT may target.
    fn target_paths(&self) -> Vec<String>;
}

/// Options of [`apply`] that are not in the method.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The seed of every initialisation (the Plan's `seed`).
    pub seed: u64,
    /// For `PromptInit::Text`: the text's token ids as the model's tokenizer
    /// gives them with special tokens (PEFT calls `tokenizer(text)`).
    pub prompt_init_ids: Option<Vec<u32>>,
}

/// Injects `method` into `model` and leaves only its parameters trainable
/// (`require_grad`), so that Burn's optimizers update nothing else. Call it
/// on a model of an autodiff backend before training.
pub fn apply<B: Kernels, M: Adaptable<B>>(
    mut model: M,
    method: &Method,
    opts: &ApplyOptions,
) -> Result<M, PeftError> {
    let g = model.geometry();
    match method {
        Method::Full { .. } => {}
        Method::Lora(lora) => inject_lora(&mut model, lora, opts.seed)?,
        Method::Ia3 { modules, .. } => {
            let mut absent = Vec::new();
            for m in modules {
                match model.adapted_mut(&m.target.path) {
                    Some(layer) => layer.add_ia3(m.feedforward),
                    None => absent.push(m.target.path.clone()),
                }
            }
            if !absent.is_empty() {
                return Err(PeftError::TargetsAbsent(absent));
            }
        }
        Method::Prompt {
            virtual_tokens,
            init,
        } => {
            let n = *virtual_tokens;
            let prompt = match init {
                PromptInit::Random => {
                    let device = model.devices()[0].clone();
                    PromptTuning::random(n, g.hidden, opts.seed, &device)
                }
                PromptInit::Text(text) => {
                    let ids = opts.prompt_init_ids.as_ref().ok_or_else(|| {
                        PeftError::Invalid(format!(
                            "prompt tuning from the text {text:?} needs its token ids"
                        ))
                    })?;
                    if ids.is_empty() {
                        return Err(PeftError::Invalid(format!(
                            "the prompt init text {text:?} has no tokens"
                        )));
                    }
                    // PEFT: repeat the ids ceil(n/len) times, then cut to n.
                    let ids: Vec<u32> = ids.iter().copied().cycle().take(n).collect();
                    PromptTuning {
                        embedding: Param::from_tensor(model.embed(&ids).detach()),
                    }
                }
            };
            *model.prompt_tuning_mut() = Some(prompt);
        }
        Method::Prefix {
            virtual_tokens,
            projection,
            projection_hidden,
        } => {
            let device = model.devices()[0].clone();
            // PEFT's default `encoder_hidden_size` is the token dimension.
            let hidden = projection.then(|| projection_hidden.unwrap_or(g.kv_heads * g.head_dim));
            *model.prefix_tuning_mut() = Some(PrefixTuning::new(
                *virtual_tokens,
                g.layers,
                g.kv_heads,
                g.head_dim,
                hidden,
                opts.seed,
                &device,
            ));
        }
        Method::Adapter {
            style,
            size,
            activation,
            layers,
        } => {
            let device = model.devices()[0].clone();
            for l in 0..g.layers {
                if layers.as_ref().is_some_and(|ls| !ls.contains(&l)) {
                    continue;
                }
                let (attn, ffn) = model.adapter_slots(l);
                if *style == ft_plan::method::AdapterStyle::Houlsby {
                    *attn = Some(Bottleneck::new(
                        g.hidden,
                        *size,
                        *activation,
                        opts.seed,
                        2 * l as u64,
                        &device,
                    ));
                }
                *ffn = Some(Bottleneck::new(
                    g.hidden,
                    *size,
                    *activation,
                    opts.seed,
                    2 * l as u64 + 1,
                    &device,
                ));
            }
        }
    }
    let absent = super::saved::absent_modules_to_save(&model, method);
    if !absent.is_empty() {
        return Err(PeftError::Invalid(format!(
            "modules_to_save {absent:?} match no module of the model"
        )));
    }
    Ok(set_trainable(model, method))
}

fn strip_bert_prefix(path: &str) -> &str {
    ["bert.", "roberta."]
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .unwrap_or(path)
}

fn inject_lora<B: Kernels, M: Adaptable<B>>(
    model: &mut M,
    lora: &Lora,
    seed: u64,
) -> Result<(), PeftError> {
    let mut absent = Vec::new();
    for (i, m) in lora.modules.iter().enumerate() {
        match model.adapted_mut(&m.target.path) {
            Some(layer) => layer.add_lora(
                m.rank,
                m.alpha,
                lora.rslora,
                lora.dora,
                lora.dropout,
                i as u64,
                seed,
            ),
            None => absent.push(m.target.path.clone()),
        }
    }
    if absent.is_empty() {
        Ok(())
    } else {
        Err(PeftError::TargetsAbsent(absent))
    }
}

/// Field names of the parameters PEFT methods add (segments of a Burn
/// parameter path).
pub(crate) const PEFT_SEGMENTS: &[&str] = &[
    "lora",
    "ia3",
    "prompt_tuning",
    "prefix_tuning",
    "attn_adapter",
    "ffn_adapter",
    "adapter",
];

/// Whether the parameter at a Burn module path trains under `method`.
pub fn is_trainable<B: Kernels, M: Adaptable<B>>(method: &Method, burn_path: &[String]) -> bool {
    if burn_path.first().is_some_and(|s| s == M::HEAD_NAME) {
        return true;
    }
    if let Method::Full { freeze } = method {
        let module = burn_path[..burn_path.len().saturating_sub(1)].join(".");
        return match M::hf_module_path(&module) {
            Some(hf) => !within(freeze, &hf),
            None => true,
        };
    }
    if burn_path
        .iter()
        .any(|s| PEFT_SEGMENTS.contains(&s.as_str()))
    {
        return true;
    }
    super::saved::saves_base_param::<B, M>(method, burn_path)
}

/// Whether a module or any module containing it matches a pattern (PEFT's
/// suffix rule): what `freeze` freezes, what `modules_to_save` saves.
pub(crate) fn within(patterns: &[TargetPattern], hf_module: &str) -> bool {
    let parts: Vec<&str> = hf_module.split('.').collect();
    (1..=parts.len()).any(|n| {
        let ancestor = parts[..n].join(".");
        patterns.iter().any(|p| p.matches(&ancestor))
    })
}

struct PathTracker(Vec<String>);

impl PathTracker {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
}

struct TrainableMapper<'a, B: Kernels, M: Adaptable<B>> {
    path: PathTracker,
    method: &'a Method,
    _m: std::marker::PhantomData<(B, M)>,
}

impl<B: Kernels, M: Adaptable<B>> ModuleMapper<B> for TrainableMapper<'_, B, M> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let train = is_trainable::<B, M>(self.method, &self.path.0);
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.detach().set_require_grad(train), mapper)
    }
}

/// Sets `require_grad` on every parameter from [`is_trainable`].
pub fn set_trainable<B: Kernels, M: Adaptable<B>>(model: M, method: &Method) -> M {
    let mut mapper = TrainableMapper::<B, M> {
        path: PathTracker(Vec::new()),
        method,
        _m: std::marker::PhantomData,
    };
    model.map(&mut mapper)
}

/// Trainable and total parameter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCounts {
    pub trainable: usize,
    pub total: usize,
}

struct CountVisitor<'a, B: Kernels, M: Adaptable<B>> {
    path: PathTracker,
    method: &'a Method,
    counts: ParamCounts,
    _m: std::marker::PhantomData<(B, M)>,
}

impl<B: Kernels, M: Adaptable<B>> ModuleVisitor<B> for CountVisitor<'_, B, M> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let n = param.shape().num_elements();
        self.counts.total += n;
        if is_trainable::<B, M>(self.method, &self.path.0) {
            self.counts.trainable += n;
        }
    }
}

/// Trainable parameters under `method` (what PEFT's
/// `print_trainable_parameters` reports) and all parameters. Counted from
/// the module tree, so it holds on any backend; on an autodiff backend it
/// equals the count of parameters with `require_grad` after [`apply`].
pub fn parameter_counts<B: Kernels, M: Adaptable<B>>(model: &M, method: &Method) -> ParamCounts {
    let mut v = CountVisitor::<B, M> {
        path: PathTracker(Vec::new()),
        method,
        counts: ParamCounts {
            trainable: 0,
            total: 0,
        },
        _m: std::marker::PhantomData,
    };
    model.visit(&mut v);
    v.counts
}

/// The trainable parameter count under `method`.
pub fn trainable_parameters<B: Kernels, M: Adaptable<B>>(model: &M, method: &Method) -> usize {
    parameter_counts(model, method).trainable
}

/// A new classifier head for `num_labels` with transformers' init:
/// weight normal(0, `initializer_range`), bias zero, from `seed`.
pub fn new_classifier<B: Kernels>(
    bert: BertModel<B>,
    num_labels: usize,
    initializer_range: f64,
    seed: u64,
) -> BertForSequenceClassification<B> {
    let h = bert.config.hidden_size;
    let device = bert.devices()[0].clone();
    let classifier = new_head(h, num_labels, initializer_range, seed, true, &device);
    BertForSequenceClassification { bert, classifier }
}

/// A head `[hidden, labels]`: weight normal(0, `initializer_range`) from
/// `seed` (drawn in PyTorch's `[labels, hidden]` order), bias (if any) zero.
pub fn new_head<B: Kernels>(
    hidden: usize,
    num_labels: usize,
    initializer_range: f64,
    seed: u64,
    bias: bool,
    device: &B::Device,
) -> Linear<B> {
    let key = rng::stream_key(&[rng::domain::HEAD, seed]);
    let w = rng::normal_vec(key, num_labels * hidden, initializer_range as f32);
    let w = super::linear::transpose_vec(&w, num_labels, hidden);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(w, [hidden, num_labels]),
            device,
        )),
        bias: bias.then(|| Param::from_tensor(Tensor::zeros([num_labels], device))),
    }
}

fn embed_rows<B: Kernels>(weight: Tensor<B, 2>, ids: &[u32]) -> Tensor<B, 2> {
    let device = weight.device();
    let idx: Tensor<B, 1, Int> = Tensor::from_data(
        TensorData::new(
            ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            [ids.len()],
        ),
        &device,
    );
    weight.select(0, idx)
}

/// BERT module names: Burn field → HF module path.
fn bert_hf_path(burn: &str) -> Option<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = burn.split('.').collect();
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        match p {
            "layers" => {
                out.push("encoder.layer".to_string());
            }
            "self_attn" => out.push("self".into()),
            "layer_norm" => out.push("LayerNorm".into()),
            "intermediate" => out.push("intermediate.dense".into()),
            "pooler" => out.push("pooler.dense".into()),
            "base" => {}
            s if PEFT_SEGMENTS.contains(&s) => return None,
            s => out.push(s.to_string()),
        }
        i += 1;
    }
    Some(out.join("."))
}

impl<B: Kernels> Adaptable<B> for BertModel<B> {
    fn geometry(&self) -> Geometry {
        let c = &self.config;
        Geometry {
            layers: self.layers.len(),
            hidden: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_heads,
            head_dim: c.hidden_size / c.num_heads,
        }
    }
    fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>> {
        BertModel::adapted_mut(self, path)
    }
    fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>> {
        BertModel::adapted(self, path)
    }
    fn embed(&self, ids: &[u32]) -> Tensor<B, 2> {
        embed_rows(self.embeddings.word_embeddings.weight.val(), ids)
    }
    fn prompt_tuning_mut(&mut self) -> &mut Option<PromptTuning<B>> {
        &mut self.prompt_tuning
    }
    fn prefix_tuning_mut(&mut self) -> &mut Option<PrefixTuning<B>> {
        &mut self.prefix_tuning
    }
    fn prompt_tuning(&self) -> Option<&PromptTuning<B>> {
        self.prompt_tuning.as_ref()
    }
    fn prefix_tuning(&self) -> Option<&PrefixTuning<B>> {
        self.prefix_tuning.as_ref()
    }
    fn adapter_slots(
        &mut self,
        layer: usize,
    ) -> (&mut Option<Bottleneck<B>>, &mut Option<Bottleneck<B>>) {
        let l = &mut self.layers[layer];
        (&mut l.attention.output.adapter, &mut l.output.adapter)
    }
    fn adapters(&self, layer: usize) -> (Option<&Bottleneck<B>>, Option<&Bottleneck<B>>) {
        let l = &self.layers[layer];
        (
            l.attention.output.adapter.as_ref(),
            l.output.adapter.as_ref(),
        )
    }
    fn hf_module_path(burn_path: &str) -> Option<String> {
        bert_hf_path(burn_path)
    }
    fn task_type(&self) -> &'static str {
        "FEATURE_EXTRACTION"
    }
    fn module_name(&self, path: &str) -> String {
        strip_bert_prefix(path).to_string()
    }
    fn layer_name(&self, i: usize) -> String {
        format!("encoder.layer.{i}")
    }
    fn target_paths(&self) -> Vec<String> {
        self.linear_paths()
    }
}

impl<B: Kernels> Adaptable<B> for BertForSequenceClassification<B> {
    fn geometry(&self) -> Geometry {
        self.bert.geometry()
    }
    fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>> {
        self.bert.adapted_mut(path)
    }
    fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>> {
        self.bert.adapted(path)
    }
    fn embed(&self, ids: &[u32]) -> Tensor<B, 2> {
        self.bert.embed(ids)
    }
    fn prompt_tuning_mut(&mut self) -> &mut Option<PromptTuning<B>> {
        &mut self.bert.prompt_tuning
    }
    fn prefix_tuning_mut(&mut self) -> &mut Option<PrefixTuning<B>> {
        &mut self.bert.prefix_tuning
    }
    fn prompt_tuning(&self) -> Option<&PromptTuning<B>> {
        self.bert.prompt_tuning.as_ref()
    }
    fn prefix_tuning(&self) -> Option<&PrefixTuning<B>> {
        self.bert.prefix_tuning.as_ref()
    }
    fn adapter_slots(
        &mut self,
        layer: usize,
    ) -> (&mut Option<Bottleneck<B>>, &mut Option<Bottleneck<B>>) {
        self.bert.adapter_slots(layer)
    }
    fn adapters(&self, layer: usize) -> (Option<&Bottleneck<B>>, Option<&Bottleneck<B>>) {
        Adaptable::adapters(&self.bert, layer)
    }
    fn hf_module_path(burn_path: &str) -> Option<String> {
        match burn_path.strip_prefix("bert.") {
            Some(rest) => bert_hf_path(rest).map(|p| format!("bert.{p}")),
            None => Some(burn_path.to_string()),
        }
    }
    fn head(&self) -> Option<&Linear<B>> {
        Some(&self.classifier)
    }
    fn head_mut(&mut self) -> Option<&mut Linear<B>> {
        Some(&mut self.classifier)
    }
    fn task_type(&self) -> &'static str {
        "SEQ_CLS"
    }
    fn module_name(&self, path: &str) -> String {
        format!("bert.{}", strip_bert_prefix(path))
    }
    fn layer_name(&self, i: usize) -> String {
        format!("bert.encoder.layer.{i}")
    }
    fn target_paths(&self) -> Vec<String> {
        self.bert.linear_paths()
    }
}

impl<B: Kernels> Adaptable<B> for LlamaForCausalLM<B> {
    fn lm_head_mut(&mut self) -> Option<(Tensor<B, 2>, &mut Option<PackedWeight>, bool)> {
        match &self.lm_head {
            Some(l) => Some((l.weight.val(), &mut self.head_packed, true)),
            None => Some((
                self.model.embed_tokens.weight.val(),
                &mut self.head_packed,
                false,
            )),
        }
    }
    fn geometry(&self) -> Geometry {
        let c = &self.config;
        Geometry {
            layers: self.model.layers.len(),
            hidden: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
        }
    }
    fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>> {
        LlamaForCausalLM::adapted_mut(self, path)
    }
    fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>> {
        LlamaForCausalLM::adapted(self, path)
    }
    fn embed(&self, ids: &[u32]) -> Tensor<B, 2> {
        embed_rows(self.model.embed_tokens.weight.val(), ids)
    }
    fn prompt_tuning_mut(&mut self) -> &mut Option<PromptTuning<B>> {
        &mut self.model.prompt_tuning
    }
    fn prefix_tuning_mut(&mut self) -> &mut Option<PrefixTuning<B>> {
        &mut self.model.prefix_tuning
    }
    fn prompt_tuning(&self) -> Option<&PromptTuning<B>> {
        self.model.prompt_tuning.as_ref()
    }
    fn prefix_tuning(&self) -> Option<&PrefixTuning<B>> {
        self.model.prefix_tuning.as_ref()
    }
    fn adapter_slots(
        &mut self,
        layer: usize,
    ) -> (&mut Option<Bottleneck<B>>, &mut Option<Bottleneck<B>>) {
        let l = &mut self.model.layers[layer];
        (&mut l.attn_adapter, &mut l.ffn_adapter)
    }
    fn adapters(&self, layer: usize) -> (Option<&Bottleneck<B>>, Option<&Bottleneck<B>>) {
        let l = &self.model.layers[layer];
        (l.attn_adapter.as_ref(), l.ffn_adapter.as_ref())
    }
    fn hf_module_path(burn_path: &str) -> Option<String> {
        let parts: Vec<&str> = burn_path.split('.').collect();
        if parts.iter().any(|s| PEFT_SEGMENTS.contains(s)) {
            return None;
        }
        Some(
            parts
                .into_iter()
                .filter(|s| *s != "base")
                .collect::<Vec<_>>()
                .join("."),
        )
    }
    fn task_type(&self) -> &'static str {
        "CAUSAL_LM"
    }
    fn module_name(&self, path: &str) -> String {
        path.to_string()
    }
    fn layer_name(&self, i: usize) -> String {
        format!("model.layers.{i}")
    }
    fn target_paths(&self) -> Vec<String> {
        self.linear_paths()
            .into_iter()
            .filter(|p| p != "lm_head")
            .collect()
    }
}
