//! Using a model without training it — text generation, sentence
//! embeddings, classification — on the device asked for ([`crate::backend`]).
//! Each function opens the model (and an adapter), tokenizes, checks the
//! input against the model and runs it; the command line only parses
//! arguments and prints what comes back.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_formats::{FormatError, ModelConfig, ModelTokenizer};

use crate::backend::{dispatch, BackendError, Device, OnBackend};
use crate::classifier::Classifier;
use crate::generate::SamplingOptions;
use crate::kernels::{AutodiffKernels, Kernels};
use crate::peft::PeftError;

/// Why a model could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Model(#[from] FormatError),
    #[error("{0}")]
    Adapter(#[from] PeftError),
    #[error("cannot tokenize {text:?}: {detail}")]
    Tokenize { text: String, detail: String },
    #[error("{text:?} has no tokens")]
    Empty { text: String },
    #[error("{text:?} has {tokens} tokens; the model takes at most {max}")]
    TooLong {
        text: String,
        tokens: usize,
        max: usize,
    },
    #[error(
        "prompt ({tokens} tokens) + {new} new tokens exceeds the model's context of {context} tokens"
    )]
    ContextExceeded {
        tokens: usize,
        new: usize,
        context: usize,
    },
    #[error(
        "{}: the adapter saves no classification head; is it a classification run's?",
        .0.display()
    )]
    NoHead(PathBuf),
    #[error(
        "{0}\n(`ft classify` needs a fine-tuned classification checkpoint, or a base model \
         with --adapter; an encoder such as all-MiniLM-L6-v2 has no classifier head — use `ft embed`)"
    )]
    NotAClassifier(FormatError),
}

/// The ids of `text` (with the tokenizer's special tokens), checked to be
/// non-empty and to fit `max` positions.
pub fn encode(tok: &ModelTokenizer, text: &str, max: usize) -> Result<Vec<u32>, InferError> {
    let ids = tok
        .tokenizer
        .encode(text, true)
        .map_err(|e| InferError::Tokenize {
            text: text.to_string(),
            detail: e.to_string(),
        })?
        .get_ids()
        .to_vec();
    if ids.is_empty() {
        return Err(InferError::Empty { text: text.into() });
    }
    if ids.len() > max {
        return Err(InferError::TooLong {
            text: text.into(),
            tokens: ids.len(),
            max,
        });
    }
    Ok(ids)
}

fn row<B: Kernels>(ids: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [1, n]), device)
}

/// The config of a Llama-family model, read without its weights (to
/// refuse another family before anything else is done with it).
pub fn causal_lm_config(model: &Path) -> Result<ModelConfig, InferError> {
    let files = ft_formats::ModelFiles::open(model)?;
    let config = files.config()?;
    crate::llama::require_llama(&config, model)?;
    Ok(config)
}

/// Generates from a Llama-family model (with an adapter, if given) after
/// `prompt`, calling `on_token` with each new id; returns them all.
pub fn generate(
    device: Device,
    model: &Path,
    adapter: Option<&Path>,
    prompt: &[u32],
    opts: &SamplingOptions,
    on_token: &mut dyn FnMut(u32),
) -> Result<Vec<u32>, InferError> {
    struct Work<'a> {
        model: &'a Path,
        adapter: Option<&'a Path>,
        prompt: &'a [u32],
        opts: &'a SamplingOptions,
        on_token: &'a mut dyn FnMut(u32),
    }
    impl OnBackend for Work<'_> {
        type Output = Result<Vec<u32>, InferError>;
        fn run<AB: AutodiffKernels>(self, device: &AB::Device) -> Self::Output {
            let (lm, _) = crate::load_causal_lm::<AB::InnerBackend>(self.model, device)?;
            let lm = match self.adapter {
                Some(dir) => crate::peft::adapter::load_adapter(lm, dir)?.0,
                None => lm,
            };
            let context = lm.config.max_positions;
            let new = self.opts.max_new_tokens;
            if self.prompt.len() + new > context {
                return Err(InferError::ContextExceeded {
                    tokens: self.prompt.len(),
                    new,
                    context,
                });
            }
            Ok(crate::generate::generate(
                &lm,
                self.prompt,
                self.opts,
                device,
                self.on_token,
            ))
        }
    }
    let work = Work {
        model,
        adapter,
        prompt,
        opts,
        on_token,
    };
    dispatch(device, work)?
}

/// How a sentence embedding is read from the token states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the token states.
    Mean,
    /// The first ([CLS]) token's state.
    Cls,
}

/// One embedding per text from a BERT-family encoder, L2-normalised with
/// `normalize` (what sentence-transformers models are trained for).
pub fn embed(
    device: Device,
    model: &Path,
    texts: &[String],
    pooling: Pooling,
    normalize: bool,
) -> Result<Vec<Vec<f32>>, InferError> {
    struct Work<'a> {
        model: &'a Path,
        texts: &'a [String],
        pooling: Pooling,
        normalize: bool,
    }
    impl OnBackend for Work<'_> {
        type Output = Result<Vec<Vec<f32>>, InferError>;
        fn run<AB: AutodiffKernels>(self, device: &AB::Device) -> Self::Output {
            let (bert, files) = crate::load_bert::<AB::InnerBackend>(self.model, device)?;
            let tok = ModelTokenizer::load(&files)?;
            let max = bert.config.max_positions;
            let mut out = Vec::with_capacity(self.texts.len());
            for text in self.texts {
                let ids = encode(&tok, text, max)?;
                let h = bert.forward(row(&ids, device), None, None);
                let d = h.dims()[2];
                let pooled = match self.pooling {
                    Pooling::Mean => h.mean_dim(1).reshape([d]),
                    Pooling::Cls => h.narrow(1, 0, 1).reshape([d]),
                };
                let mut v: Vec<f32> = pooled.into_data().to_vec().unwrap_or_default();
                if self.normalize {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                out.push(v);
            }
            Ok(out)
        }
    }
    dispatch(
        device,
        Work {
            model,
            texts,
            pooling,
            normalize,
        },
    )?
}

/// A classifier's answers: its config and, per text, each label's
/// probability.
pub struct Classified {
    pub config: ModelConfig,
    pub probabilities: Vec<Vec<f32>>,
}

/// Class probabilities of each text from a sequence classifier: a trained
/// checkpoint, or a base model with a classification adapter (the head's
/// size is the adapter's, else `labels`, else the checkpoint's own).
pub fn classify(
    device: Device,
    model: &Path,
    adapter: Option<&Path>,
    labels: Option<usize>,
    tok: &ModelTokenizer,
    texts: &[String],
) -> Result<Classified, InferError> {
    let labels = match adapter {
        Some(dir) => Some(
            crate::peft::adapter::head_labels(dir)?
                .ok_or_else(|| InferError::NoHead(dir.to_path_buf()))?,
        ),
        None => labels,
    };
    struct Work<'a> {
        model: &'a Path,
        adapter: Option<&'a Path>,
        labels: Option<usize>,
        tok: &'a ModelTokenizer,
        texts: &'a [String],
    }
    impl OnBackend for Work<'_> {
        type Output = Result<Classified, InferError>;
        fn run<AB: AutodiffKernels>(self, device: &AB::Device) -> Self::Output {
            type B<AB> = <AB as burn::tensor::backend::AutodiffBackend>::InnerBackend;
            let loaded = match self.labels {
                Some(n) => Classifier::<B<AB>>::load(self.model, n, 0, device),
                None => Classifier::<B<AB>>::load_trained(self.model, device),
            };
            let mut model = loaded.map_err(InferError::NotAClassifier)?;
            if let Some(dir) = self.adapter {
                model = model.with_adapter(dir)?.0;
            }
            let config = model.config().clone();
            let mut probabilities = Vec::with_capacity(self.texts.len());
            for text in self.texts {
                let ids = encode(self.tok, text, config.max_positions)?;
                let mask = Tensor::<B<AB>, 2>::ones([1, ids.len()], device);
                let p = softmax(model.forward(row(&ids, device), mask), 1);
                probabilities.push(p.into_data().to_vec().unwrap_or_default());
            }
            Ok(Classified {
                config,
                probabilities,
            })
        }
    }
    dispatch(
        device,
        Work {
            model,
            adapter,
            labels,
            tok,
            texts,
        },
    )?
}
