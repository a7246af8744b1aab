//! The kinds of model the trainer drives, behind one trait: BERT and
//! Llama sequence classifiers and a Llama causal LM. A pipeline [`Batch`] goes in;
//! logits come out; the losses (`classify_loss`, `lm_loss`,
//! `sequence_logprobs`) follow PyTorch's conventions exactly (mean
//! cross-entropy; causal-LM labels shifted by one, -100 ignored).

use crate::kernels::Kernels;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_pipeline::batch::{Batch, IGNORE};

use crate::bert::BertForSequenceClassification;
use crate::classifier::LlamaForSequenceClassification;
use crate::llama::{LlamaForCausalLM, Packed, TokenLogits};
use crate::peft::merge::Mergeable;
use crate::peft::{Adaptable, ForwardCtx};
use crate::recompute::RecomputeTape;

/// What a model outputs for a batch.
pub enum Logits<B: Kernels> {
    /// `[batch, classes]`.
    Classes(Tensor<B, 2>),
    /// `[batch, seq, vocab]` (for a tied head, possibly not yet computed).
    Tokens(TokenLogits<B>),
}

pub trait Task<B: Kernels>: Adaptable<B> + Mergeable<B> {
    fn logits(&self, batch: &Batch, ctx: &ForwardCtx) -> Logits<B> {
        self.logits_taped(batch, ctx, None)
    }
    /// [`Self::logits`]; with a tape the layers are recomputed in the
    /// backward pass rather than kept (gradient checkpointing).
    fn logits_taped(
        &self,
        batch: &Batch,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Logits<B>;
    /// The causal LM, when this task is one (for generation metrics).
    fn causal_lm(&self) -> Option<&LlamaForCausalLM<B>> {
        None
    }
}

pub fn input_tensors<B: Kernels>(
    batch: &Batch,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2>) {
    let shape = [batch.batch, batch.seq];
    let ids: Vec<i64> = batch.input_ids.iter().map(|&i| i as i64).collect();
    let mask: Vec<f32> = batch.attention_mask.iter().map(|&m| m as f32).collect();
    (
        Tensor::from_data(TensorData::new(ids, shape), device),
        Tensor::from_data(TensorData::new(mask, shape), device),
    )
}

impl<B: Kernels> Task<B> for BertForSequenceClassification<B> {
    fn logits_taped(
        &self,
        batch: &Batch,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Logits<B> {
        let device = self.classifier.weight.device();
        let (ids, mask) = input_tensors::<B>(batch, &device);
        Logits::Classes(self.forward_taped(ids, Some(mask), None, ctx, tape))
    }
}

impl<B: Kernels> Task<B> for LlamaForSequenceClassification<B> {
    fn logits_taped(
        &self,
        batch: &Batch,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Logits<B> {
        let device = self.score.weight.device();
        let (ids, mask) = input_tensors::<B>(batch, &device);
        Logits::Classes(self.forward_taped(ids, Some(mask), ctx, tape))
    }
}

impl<B: Kernels> Task<B> for LlamaForCausalLM<B> {
    fn logits_taped(
        &self,
        batch: &Batch,
        ctx: &ForwardCtx,
        tape: Option<&RecomputeTape<B>>,
    ) -> Logits<B> {
        let device = self.model.embed_tokens.weight.device();
        let (ids, mask) = input_tensors::<B>(batch, &device);
        let hidden = match (&batch.segment_ids, &batch.position_ids) {
            (Some(segments), Some(positions)) => {
                let packed = Packed {
                    segments: segments.clone(),
                    positions: positions.clone(),
                };
                self.forward_hidden_packed(ids, &packed, ctx, tape)
            }
            _ => self.forward_hidden_taped(ids, Some(mask), None, ctx, tape),
        };
        Logits::Tokens(self.token_logits(hidden))
    }

    fn causal_lm(&self) -> Option<&LlamaForCausalLM<B>> {
        Some(self)
    }
}

/// Cross-entropy per example of `[batch, classes]` logits against class
/// indices: `[batch]`.
pub fn classify_losses<B: Kernels>(logits: Tensor<B, 2>, labels: &[usize]) -> Tensor<B, 1> {
    let [b, _] = logits.dims();
    let device = logits.device();
    let idx: Tensor<B, 2, Int> = Tensor::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [b, 1]),
        &device,
    );
    log_softmax(logits, 1).gather(1, idx).reshape([b]).neg()
}

/// Mean cross-entropy (PyTorch's `CrossEntropyLoss`).
pub fn classify_loss<B: Kernels>(logits: Tensor<B, 2>, labels: &[usize]) -> Tensor<B, 1> {
    classify_losses(logits, labels).mean()
}

/// Per-position log-probabilities of the next-token targets and their
/// mask: `([batch, seq-1], [batch, seq-1])` (mask 1 where a label counts).
pub fn target_logprobs<B: Kernels>(
    logits: impl Into<TokenLogits<B>>,
    labels: &[i64],
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let logits = logits.into();
    let [b, s, v] = logits.dims();
    let device = logits.device();
    let n = s - 1;
    let mut idx = Vec::with_capacity(b * n);
    let mut mask = Vec::with_capacity(b * n);
    for r in 0..b {
        for t in 1..s {
            let l = labels[r * s + t];
            let keep = l != IGNORE && (l as usize) < v;
            idx.push(if keep { l } else { 0 });
            mask.push(if keep { 1.0f32 } else { 0.0 });
        }
    }
    let targets: Vec<Option<usize>> = idx
        .iter()
        .zip(&mask)
        .map(|(&i, &m)| (m > 0.0).then_some(i as usize))
        .collect();
    let mask: Tensor<B, 2> = Tensor::from_data(TensorData::new(mask, [b, n]), &device);
    // A tied head with the loss, a slice of the vocabulary at a time: the
    // logits are never written.
    let lp = match logits {
        TokenLogits::Tied {
            hidden,
            embedding,
            packed,
        } => crate::kernels::tied_head_log_softmax(hidden, embedding, &targets, n, packed.as_ref()),
        // Never materialises log_softmax over the vocabulary.
        TokenLogits::Dense(logits) => crate::kernels::target_log_softmax(logits, &targets, n),
    };
    (lp, mask)
}

/// Mean next-token cross-entropy over the labelled positions (HF's causal
/// LM loss), and how many positions it averages.
pub fn lm_loss<B: Kernels>(
    logits: impl Into<TokenLogits<B>>,
    labels: &[i64],
) -> (Tensor<B, 1>, usize) {
    let logits = logits.into();
    let count = count_targets(labels, logits.dims()[1]);
    let (lp, _) = target_logprobs(logits, labels);
    (lp.sum().div_scalar(count.max(1) as f64).neg(), count)
}

/// Sum of the labelled tokens' log-probabilities per sequence (DPO).
pub fn sequence_logprobs<B: Kernels>(
    logits: impl Into<TokenLogits<B>>,
    labels: &[i64],
) -> Tensor<B, 1> {
    let (lp, _) = target_logprobs(logits, labels);
    let b = lp.dims()[0];
    lp.sum_dim(1).reshape([b])
}

/// Labelled next-token positions of a `[batch, seq]` label grid.
pub fn count_targets(labels: &[i64], seq: usize) -> usize {
    labels
        .chunks(seq.max(1))
        .map(|row| row.iter().skip(1).filter(|&&l| l != IGNORE).count())
        .sum()
}

/// DPO's loss (Rafailov et al. 2023, sigmoid form) and the mean implicit
/// reward margin: −log σ(β·((π_c − ref_c) − (π_r − ref_r))).
pub fn dpo_loss<B: Kernels>(
    policy_chosen: Tensor<B, 1>,
    policy_rejected: Tensor<B, 1>,
    ref_chosen: Tensor<B, 1>,
    ref_rejected: Tensor<B, 1>,
    beta: f64,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected);
    let logits = margin.clone().mul_scalar(beta);
    // −log σ(x) = softplus(−x) = log(1 + e^{−x}), computed stably.
    let loss = burn::tensor::activation::softplus(logits.neg(), 1.0).mean();
    (loss, margin.mul_scalar(beta).mean())
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::NdArray<f32>;

    #[test]
    fn lm_loss_shifts_and_ignores() {
        let device = Default::default();
        // One row of 3 positions, vocab 2; uniform logits: every target has
        // log-prob ln(1/2). Labels: position 0 is never a target (shift);
        // position 1 ignored; position 2 counts → loss ln 2 over 1 token.
        let logits = Tensor::<B, 3>::zeros([1, 3, 2], &device);
        let (loss, n) = lm_loss(logits, &[1, IGNORE, 0]);
        assert_eq!(n, 1);
        let v: f32 = loss.into_scalar();
        assert!((v - std::f32::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn classify_loss_is_mean_cross_entropy() {
        let device = Default::default();
        let logits = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 10.0, 0.0], [2, 2]),
            &device,
        );
        let v: f32 = classify_loss(logits, &[1, 0]).into_scalar();
        let expected = (std::f32::consts::LN_2 + (1.0 + (-10.0f32).exp()).ln()) / 2.0;
        assert!((v - expected).abs() < 1e-5);
    }

    #[test]
    fn dpo_loss_scales_the_margin_by_beta() {
        let device = Default::default();
        let t = |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v, [2]), &device);
        // Margins (π_c − ref_c) − (π_r − ref_r): 1.5 and −0.5.
        let (pc, pr, rc, rr) = (
            t(vec![-1.0, -2.0]),
            t(vec![-3.0, -1.0]),
            t(vec![-0.5, -1.5]),
            t(vec![-1.0, -1.0]),
        );
        for beta in [0.1, 2.0] {
            let (loss, margin) = dpo_loss(pc.clone(), pr.clone(), rc.clone(), rr.clone(), beta);
            let softplus = |x: f64| (1.0 + x.exp()).ln();
            let want = (softplus(-beta * 1.5) + softplus(beta * 0.5)) / 2.0;
            let got: f32 = loss.into_scalar();
            assert!(
                (got as f64 - want).abs() < 1e-6,
                "beta {beta}: {got} vs {want}"
            );
            let m: f32 = margin.into_scalar();
            assert!(
                (m as f64 - beta * 0.5).abs() < 1e-6,
                "beta {beta}: margin {m}"
            );
        }
    }
}
