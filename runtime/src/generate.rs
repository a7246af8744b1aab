//! Text generation with a Llama-family model: chat templates (minijinja, as
//! transformers' `apply_chat_template`), greedy or temperature/top-p
//! sampling with a seeded generator, KV cache, stop at EOS.

use crate::kernels::Kernels;
use burn::tensor::{Int, Tensor, TensorData};

use crate::llama::{KvCache, LlamaForCausalLM};

// Chat templates live in ft-formats (the data pipeline renders prompts
// with them, without Burn); re-exported for this module's callers.
pub use ft_formats::chat::{render_chat_template, ChatMessage};

/// How to pick each next token.
#[derive(Debug, Clone)]
pub struct SamplingOptions {
    pub max_new_tokens: usize,
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability
    /// reaches `top_p` (1.0 keeps everything).
    pub top_p: f32,
    pub seed: u64,
    /// Generation stops after emitting any of these.
    pub stop_ids: Vec<u32>,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            max_new_tokens: 64,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop_ids: vec![],
        }
    }
}

/// A small deterministic generator (splitmix64) so that a seed reproduces a
/// sample on every platform and backend.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks a token from one row of logits.
pub fn sample(logits: &[f32], opts: &SamplingOptions, rng: &mut Rng) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 {
                    (i, v)
                } else {
                    best
                }
            })
            .0 as u32
    };
    if opts.temperature <= 0.0 {
        return argmax();
    }
    let t = opts.temperature as f64;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u32, ((v as f64 - max) / t).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= total);
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if opts.top_p < 1.0 {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cum += p.1;
            if cum >= opts.top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep.max(1));
    }
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut r = rng.next_f64() * total;
    for &(id, p) in &probs {
        if r < p {
            return id;
        }
        r -= p;
    }
    probs.last().map_or_else(argmax, |p| p.0)
}

/// Each row's logits at its last position, `[rows · vocab]`.
fn last_logits<B: Kernels>(model: &LlamaForCausalLM<B>, hidden: Tensor<B, 3>) -> Vec<f32> {
    let n = hidden.dims()[1];
    model
        .head(hidden.narrow(1, n - 1, 1))
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 logits")
}

/// Generates up to `max_new_tokens` after `prompt` (token ids), calling
/// `on_token` for each new token; returns the new tokens (including the stop
/// token if one was produced).
pub fn generate<B: Kernels>(
    model: &LlamaForCausalLM<B>,
    prompt: &[u32],
    opts: &SamplingOptions,
    device: &B::Device,
    mut on_token: impl FnMut(u32),
) -> Vec<u32> {
    let mut rng = Rng::new(opts.seed);
    let mut cache = model.new_cache();
    let mut out = Vec::new();
    let mut input: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
    for _ in 0..opts.max_new_tokens {
        let n = input.len();
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(std::mem::take(&mut input), [1, n]),
            device,
        );
        let hidden = model.forward_hidden(ids, None, Some(&mut cache));
        let logits = last_logits(model, hidden);
        let next = sample(&logits, opts, &mut rng);
        out.push(next);
        on_token(next);
        if opts.stop_ids.contains(&next) {
            break;
        }
        input.push(next as i64);
    }
    out
}

/// Generates for several prompts at once: one forward pass per new token
/// for the whole batch, so each step reads the weights once rather than
/// once per prompt (decoding is bound by reading them). Prompts are padded
/// on the left, every row gets its own generator (`seeds(i)`), and a row
/// that has produced a stop token is fed on but no longer extended. Each
/// row gets what [`generate`] gives it alone, up to the rounding of
/// products over a longer, padded row (masked columns add exact zeros).
pub fn generate_batch<B: Kernels>(
    model: &LlamaForCausalLM<B>,
    prompts: &[Vec<u32>],
    opts: &SamplingOptions,
    seeds: impl Fn(usize) -> u64,
    device: &B::Device,
) -> Vec<Vec<u32>> {
    let b = prompts.len();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if b == 0 || width == 0 || opts.max_new_tokens == 0 {
        return vec![Vec::new(); b];
    }
    let pads: Vec<usize> = prompts.iter().map(|p| width - p.len()).collect();
    let mut rngs: Vec<Rng> = (0..b).map(|i| Rng::new(seeds(i))).collect();
    let mut cache = KvCache::left_padded(model.model.layers.len(), pads.clone());
    // Mask columns per row: padding 0, tokens 1; one column per step after.
    let mut mask: Vec<Vec<f32>> = pads
        .iter()
        .map(|&p| (0..width).map(|c| f32::from(c >= p)).collect())
        .collect();
    // The pad id is irrelevant (masked); a row's own first token is a valid id.
    let mut input: Vec<i64> = prompts
        .iter()
        .zip(&pads)
        .flat_map(|(p, &pad)| {
            let fill = p.first().copied().unwrap_or(0) as i64;
            std::iter::repeat_n(fill, pad).chain(p.iter().map(|&t| t as i64))
        })
        .collect();
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    for _ in 0..opts.max_new_tokens {
        let n = input.len() / b;
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(std::mem::take(&mut input), [b, n]),
            device,
        );
        let cols = mask[0].len();
        let flat: Vec<f32> = mask.iter().flatten().copied().collect();
        let m = Tensor::<B, 2>::from_data(TensorData::new(flat, [b, cols]), device);
        let hidden = model.forward_hidden(ids, Some(m), Some(&mut cache));
        let logits = last_logits(model, hidden);
        let vocab = logits.len() / b;
        for r in 0..b {
            let next = if done[r] {
                // Fed on so that the batch stays rectangular; never read.
                out[r].last().copied().unwrap_or(0)
            } else {
                let next = sample(&logits[r * vocab..(r + 1) * vocab], opts, &mut rngs[r]);
                out[r].push(next);
                done[r] = opts.stop_ids.contains(&next);
                next
            };
            input.push(next as i64);
            mask[r].push(1.0);
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax_and_top_p_restricts() {
        let logits = [0.1f32, 3.0, 2.9, -1.0];
        let mut rng = Rng::new(1);
        assert_eq!(sample(&logits, &SamplingOptions::default(), &mut rng), 1);
        // top_p tiny: only the most likely token survives.
        let opts = SamplingOptions {
            temperature: 1.0,
            top_p: 0.01,
            ..Default::default()
        };
        for _ in 0..20 {
            assert_eq!(sample(&logits, &opts, &mut rng), 1);
        }
        // With sampling, both 1 and 2 appear, 3 practically never; a seed reproduces.
        let opts = SamplingOptions {
            temperature: 1.0,
            top_p: 1.0,
            ..Default::default()
        };
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..200)
                .map(|_| sample(&logits, &opts, &mut r))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        assert!(a.contains(&1) && a.contains(&2));
    }
}
