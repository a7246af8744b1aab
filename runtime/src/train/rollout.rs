//! PPO's experience: responses sampled from the policy for a batch of
//! prompts, their reward-model scores, and the padded grid on which the
//! policy, the reference and the value head are evaluated per response
//! token.
//!
//! Sampling is keyed, not stateful: the response to prompt `i` of
//! micro-batch `m` at step `s` is drawn with the seed
//! `stream_key(ROLLOUT, seed, s, m, i)`, so a resumed run samples exactly
//! what an uninterrupted one would (nothing to save in a checkpoint).

use crate::kernels::Kernels;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ft_pipeline::batch::{Batch, IGNORE};
use ft_pipeline::TextTokenizer;
use ft_plan::{Head, ModelPlan};

use super::ppo_math::reward_score;
use super::TrainError;
use crate::classifier::Classifier;
use crate::llama::LlamaForCausalLM;
use crate::peft::{rng, ForwardCtx};
use crate::recompute::RecomputeTape;

/// The prompts of a pipeline batch: each row's tokens before its first
/// trained position (for PPO data, the rendered prompt; the EOS or
/// completion after it is not used).
pub fn prompts_of(b: &Batch) -> Vec<Vec<u32>> {
    (0..b.batch)
        .map(|r| {
            let row = &b.input_ids[r * b.seq..(r + 1) * b.seq];
            let labels = &b.labels[r * b.seq..(r + 1) * b.seq];
            let real = b.attention_mask[r * b.seq..(r + 1) * b.seq]
                .iter()
                .filter(|&&m| m != 0)
                .count();
            let end = labels.iter().position(|&l| l != IGNORE).unwrap_or(real);
            row[..end.max(1).min(real.max(1))].to_vec()
        })
        .collect()
}

/// The seed of one rollout.
pub fn rollout_seed(seed: u64, step: u64, micro: u64, index: u64) -> u64 {
    rng::stream_key(&[rng::domain::ROLLOUT, seed, step, micro, index])
}

/// The text a reward model reads: prompt and response decoded without
/// special tokens (chat markup and EOS dropped), joined by a newline.
pub fn reward_text(tok: &TextTokenizer, prompt: &[u32], response: &[u32]) -> String {
    let dec = |ids: &[u32]| tok.tokenizer.decode(ids, true).unwrap_or_default();
    let p = dec(prompt);
    let r = dec(response);
    format!("{}\n{}", p.trim(), r.trim())
}

/// A frozen sequence classifier (with its trained adapter) and its
/// tokenizer, scoring texts by the first label's log-odds.
pub struct RewardModel<B: Kernels> {
    pub model: Classifier<B>,
    pub tok: TextTokenizer,
    /// Longest input (the model's positions).
    pub max_len: usize,
}

impl<B: Kernels> RewardModel<B> {
    /// Loads the reward model a Plan names: the encoder, a classifier for
    /// its labels, and the adapter (which brings the trained classifier).
    pub fn load(plan: &ModelPlan, device: &B::Device) -> Result<Self, TrainError> {
        let Head::Classify { labels } = &plan.head else {
            return Err(TrainError::input(format!(
                "reward model `{}` needs a `classify` head",
                plan.name
            )));
        };
        let Some(adapter) = &plan.adapter else {
            return Err(TrainError::input(format!(
                "reward model `{}` has no trained classifier: set `adapter = \"…/adapter\"` \
                 to a classification run's adapter folder",
                plan.name
            )));
        };
        let tok = TextTokenizer::load(plan).map_err(TrainError::from)?;
        let model =
            Classifier::<B>::load(&plan.path, labels.len(), 0, device).map_err(TrainError::from)?;
        let max_len = model.config().max_positions;
        let (model, _) = model
            .with_adapter(adapter)
            .map_err(|e| TrainError::input(format!("the reward model's adapter: {e}")))?;
        Ok(RewardModel {
            model,
            tok,
            max_len,
        })
    }

    /// One score per text (one batched forward pass, right-padded).
    pub fn score(&self, texts: &[String], device: &B::Device) -> Result<Vec<f64>, TrainError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(texts.len());
        for t in texts {
            let mut ids = self.tok.encode(t, true).map_err(TrainError::from)?;
            if ids.len() > self.max_len {
                // Keep the end (the response); the first token stays ([CLS]).
                let cut = ids.len() - self.max_len;
                ids.drain(1..1 + cut);
            }
            rows.push(ids);
        }
        let seq = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let n = rows.len();
        let mut ids = vec![self.tok.pad_id as i64; n * seq];
        let mut mask = vec![0f32; n * seq];
        for (r, row) in rows.iter().enumerate() {
            for (j, &id) in row.iter().enumerate() {
                ids[r * seq + j] = id as i64;
                mask[r * seq + j] = 1.0;
            }
        }
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, seq]), device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [n, seq]), device);
        let logits = self.model.forward(ids, mask);
        let [_, c] = logits.dims();
        let flat: Vec<f32> = logits.into_data().convert::<f32>().to_vec().expect("f32");
        Ok(flat.chunks(c).map(reward_score).collect())
    }
}

/// Prompt + response rows, right-padded, and where each response's tokens
/// are predicted. Column `c` of the per-token grid is sequence position
/// `start + c`, whose logits predict the token at `start + c + 1`; the
/// grid starts at the earliest position that predicts a response token,
/// so prompt positions before it cost no LM-head work.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub rows: usize,
    /// Tokens per row (the longest prompt + response).
    pub seq: usize,
    pub ids: Vec<i64>,
    pub attention: Vec<f32>,
    /// The first sequence position of the grid.
    pub start: usize,
    /// Grid columns: `seq − 1 − start`.
    pub width: usize,
    /// `rows × width`: the token each column predicts (0 outside responses).
    pub targets: Vec<i64>,
    /// `rows × width`: 1 at response tokens.
    pub mask: Vec<f32>,
    /// Per row: its first response column and its response length.
    pub spans: Vec<(usize, usize)>,
}

impl Grid {
    pub fn new(prompts: &[Vec<u32>], responses: &[Vec<u32>], pad: u32) -> Grid {
        let rows = prompts.len();
        let seq = prompts
            .iter()
            .zip(responses)
            .map(|(p, r)| p.len() + r.len())
            .max()
            .unwrap_or(2)
            .max(2);
        let start = prompts
            .iter()
            .map(|p| p.len().max(1) - 1)
            .min()
            .unwrap_or(0)
            .min(seq - 2);
        let width = seq - 1 - start;
        let mut ids = vec![pad as i64; rows * seq];
        let mut attention = vec![0f32; rows * seq];
        let mut targets = vec![0i64; rows * width];
        let mut mask = vec![0f32; rows * width];
        let mut spans = Vec::with_capacity(rows);
        for (r, (p, resp)) in prompts.iter().zip(responses).enumerate() {
            for (j, &id) in p.iter().chain(resp).enumerate() {
                ids[r * seq + j] = id as i64;
                attention[r * seq + j] = 1.0;
            }
            let first = p.len() - 1 - start;
            for (j, &id) in resp.iter().enumerate() {
                targets[r * width + first + j] = id as i64;
                mask[r * width + first + j] = 1.0;
            }
            spans.push((first, resp.len()));
        }
        Grid {
            rows,
            seq,
            ids,
            attention,
            start,
            width,
            targets,
            mask,
            spans,
        }
    }

    /// Response tokens in all rows.
    pub fn tokens(&self) -> usize {
        self.spans.iter().map(|s| s.1).sum()
    }

    /// Row `r`'s response values out of a flat `rows × width` grid.
    pub fn row<'a>(&self, flat: &'a [f32], r: usize) -> &'a [f32] {
        let (first, len) = self.spans[r];
        &flat[r * self.width + first..r * self.width + first + len]
    }

    /// A flat grid with each row's response values in place (0 elsewhere).
    pub fn scatter(&self, per_row: &[Vec<f32>]) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.width];
        for (r, vals) in per_row.iter().enumerate() {
            let (first, len) = self.spans[r];
            out[r * self.width + first..r * self.width + first + len].copy_from_slice(vals);
        }
        out
    }

    pub fn tensor<B: Kernels>(&self, flat: Vec<f32>, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(flat, [self.rows, self.width]), device)
    }
}

/// The causal LM's final hidden states over the grid's positions
/// `[rows, width, hidden]`, and the log-probabilities of the response
/// tokens `[rows, width]` (0 outside responses) at `temperature`.
pub fn grid_logprobs<B: Kernels>(
    lm: &LlamaForCausalLM<B>,
    grid: &Grid,
    temperature: f64,
    device: &B::Device,
    tape: Option<&RecomputeTape<B>>,
) -> (Tensor<B, 3>, Tensor<B, 2>) {
    let (rows, seq, width) = (grid.rows, grid.seq, grid.width);
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(grid.ids.clone(), [rows, seq]), device);
    let mask =
        Tensor::<B, 2>::from_data(TensorData::new(grid.attention.clone(), [rows, seq]), device);
    let hidden = lm
        .forward_hidden_taped(ids, Some(mask), None, &ForwardCtx::EVAL, tape)
        .narrow(1, grid.start, width);
    let mut logits = lm.head(hidden.clone());
    if temperature != 1.0 {
        logits = logits.div_scalar(temperature);
    }
    let idx = Tensor::<B, 3, Int>::from_data(
        TensorData::new(grid.targets.clone(), [rows, width, 1]),
        device,
    );
    let lp = log_softmax(logits, 2).gather(2, idx).reshape([rows, width]);
    (hidden, lp * grid.tensor::<B>(grid.mask.clone(), device))
}

pub fn to_vec<B: Kernels, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate_batch, SamplingOptions};
    use crate::tiny::tiny_llama_config;
    use crate::weights::RandomSource;

    type B = burn::backend::NdArray<f32>;

    fn tiny_lm() -> LlamaForCausalLM<B> {
        let cfg = tiny_llama_config(true);
        let mut src = RandomSource::new(11);
        LlamaForCausalLM::load(&cfg, &mut src, &Default::default()).unwrap()
    }

    #[test]
    fn grid_places_responses_after_their_prompts() {
        let g = Grid::new(&[vec![5, 6, 7], vec![8, 9]], &[vec![10, 11], vec![12]], 0);
        assert_eq!(g.seq, 5);
        // Earliest predicting position: prompt 2's last token (position 1).
        assert_eq!((g.start, g.width), (1, 3));
        assert_eq!(g.ids, vec![5, 6, 7, 10, 11, 8, 9, 12, 0, 0]);
        assert_eq!(g.targets, vec![0, 10, 11, 12, 0, 0]);
        assert_eq!(g.mask, vec![0., 1., 1., 1., 0., 0.]);
        assert_eq!(g.spans, vec![(1, 2), (0, 1)]);
        let flat = g.scatter(&[vec![1.0, 2.0], vec![3.0]]);
        assert_eq!(g.row(&flat, 0), &[1.0, 2.0]);
        assert_eq!(g.row(&flat, 1), &[3.0]);
    }

    #[test]
    fn grid_logprobs_match_full_logits() {
        let lm = tiny_lm();
        let device = Default::default();
        let prompts = vec![vec![1, 4, 9], vec![1, 3]];
        let responses = vec![vec![20, 30], vec![40, 2]];
        let g = Grid::new(&prompts, &responses, 0);
        // At PPO's `temperature`, the log-probabilities of the logits
        // divided by it (the distribution the rollouts sample from).
        let mut rows = Vec::new();
        for temperature in [1.0, 0.5] {
            let (_, lp) = grid_logprobs(&lm, &g, temperature, &device, None);
            let lp = to_vec(lp);
            // Row 1 alone, unpadded: position 1 predicts 40, position 2
            // predicts 2.
            let ids = Tensor::<B, 2, Int>::from_data(
                TensorData::new(vec![1i64, 3, 40, 2], [1, 4]),
                &device,
            );
            let logits = lm.forward(ids, None, None).div_scalar(temperature);
            let full = to_vec(log_softmax(logits, 2));
            let v = 64;
            let want = [full[v + 40], full[2 * v + 2]];
            let got = g.row(&lp, 1).to_vec();
            for (a, b) in got.iter().zip(want) {
                assert!((a - b).abs() < 1e-4, "{got:?} vs {want:?}");
            }
            rows.push(got);
        }
        assert_ne!(rows[0], rows[1], "the temperature changes them");
    }

    #[test]
    fn rollouts_are_reproducible_from_their_keys() {
        let lm = tiny_lm();
        let device = Default::default();
        let prompts = vec![vec![1, 4, 9], vec![1, 3]];
        let opts = SamplingOptions {
            max_new_tokens: 6,
            temperature: 1.0,
            stop_ids: vec![2],
            ..Default::default()
        };
        let draw = |step| {
            generate_batch(
                &lm,
                &prompts,
                &opts,
                |i| rollout_seed(7, step, 0, i as u64),
                &device,
            )
        };
        let a = draw(3);
        assert_eq!(a, draw(3));
        assert_ne!(a, draw(4));
        for r in &a {
            assert!(!r.is_empty() && r.len() <= 6);
            // Stops right after an EOS.
            if let Some(p) = r.iter().position(|&t| t == 2) {
                assert_eq!(p, r.len() - 1);
            }
        }
    }

    #[test]
    fn prompts_stop_at_the_first_trained_token() {
        let b = Batch {
            batch: 2,
            seq: 4,
            input_ids: vec![1, 5, 6, 2, 1, 7, 2, 0],
            attention_mask: vec![1, 1, 1, 1, 1, 1, 1, 0],
            labels: vec![IGNORE, IGNORE, IGNORE, 2, IGNORE, IGNORE, 2, IGNORE],
            class_labels: vec![],
            segment_ids: None,
            position_ids: None,
            tasks: vec![0, 0],
            example_ids: vec![0, 1],
        };
        assert_eq!(prompts_of(&b), vec![vec![1, 5, 6], vec![1, 7]]);
    }
}
