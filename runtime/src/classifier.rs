//! Sequence classifiers of both families: BERT's (a head on the pooled
//! `[CLS]` position) and Llama's, with the semantics of transformers'
//! `LlamaForSequenceClassification`: a bias-free `score` linear on the
//! hidden state of each row's last non-padding token. [`Classifier`] is
//! either, loaded from what a model folder holds.

use crate::kernels::Kernels;
use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::{Family, FormatError, FormatErrorKind, ModelConfig, ModelFiles};
use ft_plan::Method;

use crate::bert::{BertForSequenceClassification, BertModel};
use crate::llama::LlamaForCausalLM;
use crate::peft::bottleneck::Bottleneck;
use crate::peft::prompt::{PrefixTuning, PromptTuning};
use crate::peft::{self, Adaptable, AdaptedLinear, ForwardCtx, Geometry, PeftError};
use crate::recompute::RecomputeTape;
use crate::weights::{self, Loader, WeightSource};

/// A Llama-family decoder with a classification head. The decoder is a
/// [`LlamaForCausalLM`] without its LM head, so that every PEFT method and
/// forward path of the causal LM applies unchanged.
#[derive(Module, Debug)]
pub struct LlamaForSequenceClassification<B: Kernels> {
    pub llama: LlamaForCausalLM<B>,
    /// Burn layout `[hidden, labels]`, no bias (transformers' `score`).
    pub score: Linear<B>,
}

impl<B: Kernels> LlamaForSequenceClassification<B> {
    /// Loads decoder and `score`; a checkpoint without `score.weight` is
    /// an error (see [`Self::with_new_head`]).
    pub fn load(
        config: &ModelConfig,
        source: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self, FormatError> {
        let llama = LlamaForCausalLM::load_decoder(config, source, device)?;
        let labels = num_labels(config, source)?;
        let mut l = Loader::<B> { source, device };
        let score = l.linear("score", config.hidden_size, labels, false)?;
        Ok(LlamaForSequenceClassification { llama, score })
    }

    /// A new head with transformers' init (weight normal(0,
    /// `initializer_range`)), drawn from `seed`.
    pub fn with_new_head(
        llama: LlamaForCausalLM<B>,
        num_labels: usize,
        initializer_range: f64,
        seed: u64,
    ) -> Self {
        let device = llama.devices()[0].clone();
        let h = llama.config.hidden_size;
        let score = peft::new_head(h, num_labels, initializer_range, seed, false, &device);
        LlamaForSequenceClassification { llama, score }
    }

    /// Logits `[batch, labels]` (inference).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        self.forward_taped(input_ids, attention_mask, &ForwardCtx::EVAL, None)
    }

    /// Logits in a training step's context, the layers recomputed in the
    /// backward pass when there is a tape.
    ///
    /// The pooled token is each row's rightmost position whose mask is 1
    /// (transformers finds the rightmost token that is not `pad_token_id`;
    /// the two agree wherever padding is what the mask says it is). Virtual
    /// tokens of prompt and prefix tuning are never pooled.
    pub fn forward_taped(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2>>,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Tensor<B, 2> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let last = last_real_token::<B>(attention_mask.as_ref(), b, s, &device);
        let hidden = self
            .llama
            .forward_hidden_taped(input_ids, attention_mask, None, ctx, tape);
        let h = hidden.dims()[2];
        let pooled = hidden
            .gather(1, last.reshape([b, 1, 1]).expand([b, 1, h]))
            .reshape([b, h]);
        self.score.forward(pooled)
    }
}

/// A fine-tuned classifier's label count, from its config.
pub(crate) fn num_labels(
    config: &ModelConfig,
    source: &dyn WeightSource,
) -> Result<usize, FormatError> {
    config.num_labels.ok_or_else(|| {
        FormatError::new(
            source.path(),
            FormatErrorKind::MissingConfigField {
                field: "num_labels (or id2label)".into(),
            },
        )
    })
}

/// Each row's rightmost position with mask 1 (the last position without a
/// mask): `[batch]`.
fn last_real_token<B: Kernels>(
    mask: Option<&Tensor<B, 2>>,
    b: usize,
    s: usize,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    match mask {
        None => Tensor::from_data(TensorData::new(vec![s as i64 - 1; b], [b]), device),
        Some(m) => {
            let positions = Tensor::<B, 1, Int>::arange(0..s as i64, device)
                .float()
                .reshape([1, s])
                .expand([b, s]);
            (positions * m.clone()).argmax(1).reshape([b])
        }
    }
}

/// A sequence classifier of either family.
// One is made per model loaded: boxing the larger variant saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Classifier<B: Kernels> {
    Bert(BertForSequenceClassification<B>),
    Llama(LlamaForSequenceClassification<B>),
}

impl<B: Kernels> Classifier<B> {
    /// The model folder's own classifier when it has one (merged weights
    /// of a run, a fine-tuned checkpoint), else a new head for `labels`
    /// drawn from `seed` (an adapter then brings its trained one).
    pub fn load(
        path: &Path,
        labels: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, FormatError> {
        Self::open(path, Some((labels, seed)), device)
    }

    /// The model folder's own classifier; without one, an error naming the
    /// missing head.
    pub fn load_trained(path: &Path, device: &B::Device) -> Result<Self, FormatError> {
        Self::open(path, None, device)
    }

    fn open(
        path: &Path,
        new_head: Option<(usize, u64)>,
        device: &B::Device,
    ) -> Result<Self, FormatError> {
        let files = ModelFiles::open(path)?;
        let config = files.config()?;
        let mut source = weights::open_source(&files, &config)?;
        let head = match config.family {
            Family::Bert => "classifier",
            Family::Llama => "score",
        };
        let src = source.as_mut();
        if !src.has(&format!("{head}.weight")) {
            let Some((labels, seed)) = new_head else {
                return Err(FormatError::new(
                    path,
                    FormatErrorKind::MissingTensor {
                        tensor: format!("{head}.weight"),
                    },
                ));
            };
            return Ok(match config.family {
                Family::Bert => {
                    let bert = BertModel::load(&config, src, device)?;
                    Classifier::Bert(peft::new_classifier(bert, labels, 0.02, seed))
                }
                Family::Llama => {
                    let llama = LlamaForCausalLM::load_decoder(&config, src, device)?;
                    Classifier::Llama(LlamaForSequenceClassification::with_new_head(
                        llama, labels, 0.02, seed,
                    ))
                }
            });
        }
        let model = match config.family {
            Family::Bert => {
                Classifier::Bert(BertForSequenceClassification::load(&config, src, device)?)
            }
            Family::Llama => {
                Classifier::Llama(LlamaForSequenceClassification::load(&config, src, device)?)
            }
        };
        let found = model.labels();
        match new_head {
            Some((labels, _)) if labels != found => Err(FormatError::new(
                path,
                FormatErrorKind::BadConfigField {
                    field: "num_labels".into(),
                    detail: format!(
                        "its classifier has {found} labels; the recipe's head declares {labels}"
                    ),
                },
            )),
            _ => Ok(model),
        }
    }

    /// The model with a trained adapter folder loaded onto it (its head
    /// included), and the adapter's method.
    pub fn with_adapter(self, dir: &Path) -> Result<(Self, Method), PeftError> {
        Ok(match self {
            Classifier::Bert(m) => {
                let (m, method) = peft::adapter::load_adapter(m, dir)?;
                (Classifier::Bert(m), method)
            }
            Classifier::Llama(m) => {
                let (m, method) = peft::adapter::load_adapter(m, dir)?;
                (Classifier::Llama(m), method)
            }
        })
    }

    /// Logits `[batch, labels]` of right-padded rows (inference).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        match self {
            Classifier::Bert(m) => m.forward(input_ids, Some(attention_mask), None),
            Classifier::Llama(m) => m.forward(input_ids, Some(attention_mask)),
        }
    }

    pub fn labels(&self) -> usize {
        match self {
            Classifier::Bert(m) => m.classifier.weight.dims()[1],
            Classifier::Llama(m) => m.score.weight.dims()[1],
        }
    }

    pub fn config(&self) -> &ModelConfig {
        match self {
            Classifier::Bert(m) => &m.bert.config,
            Classifier::Llama(m) => &m.llama.config,
        }
    }
}

impl<B: Kernels> Adaptable<B> for LlamaForSequenceClassification<B> {
    const HEAD_NAME: &'static str = "score";
    fn geometry(&self) -> Geometry {
        self.llama.geometry()
    }
    fn adapted_mut(&mut self, path: &str) -> Option<&mut AdaptedLinear<B>> {
        self.llama.adapted_mut(path)
    }
    fn adapted(&self, path: &str) -> Option<&AdaptedLinear<B>> {
        self.llama.adapted(path)
    }
    fn embed(&self, ids: &[u32]) -> Tensor<B, 2> {
        Adaptable::embed(&self.llama, ids)
    }
    fn prompt_tuning_mut(&mut self) -> &mut Option<PromptTuning<B>> {
        self.llama.prompt_tuning_mut()
    }
    fn prefix_tuning_mut(&mut self) -> &mut Option<PrefixTuning<B>> {
        self.llama.prefix_tuning_mut()
    }
    fn prompt_tuning(&self) -> Option<&PromptTuning<B>> {
        self.llama.model.prompt_tuning.as_ref()
    }
    fn prefix_tuning(&self) -> Option<&PrefixTuning<B>> {
        self.llama.model.prefix_tuning.as_ref()
    }
    fn adapter_slots(
        &mut self,
        layer: usize,
    ) -> (&mut Option<Bottleneck<B>>, &mut Option<Bottleneck<B>>) {
        self.llama.adapter_slots(layer)
    }
    fn adapters(&self, layer: usize) -> (Option<&Bottleneck<B>>, Option<&Bottleneck<B>>) {
        Adaptable::adapters(&self.llama, layer)
    }
    fn hf_module_path(burn_path: &str) -> Option<String> {
        match burn_path.strip_prefix("llama.") {
            Some(rest) => LlamaForCausalLM::<B>::hf_module_path(rest),
            None => Some(burn_path.to_string()),
        }
    }
    fn head(&self) -> Option<&Linear<B>> {
        Some(&self.score)
    }
    fn head_mut(&mut self) -> Option<&mut Linear<B>> {
        Some(&mut self.score)
    }
    fn task_type(&self) -> &'static str {
        "SEQ_CLS"
    }
    fn module_name(&self, path: &str) -> String {
        self.llama.module_name(path)
    }
    fn layer_name(&self, i: usize) -> String {
        self.llama.layer_name(i)
    }
    fn target_paths(&self) -> Vec<String> {
        self.llama.target_paths()
    }
}
