//! The arithmetic of PPO with a KL-shaped reward (Ziegler et al. 2019;
//! Ouyang et al. 2022; as TRL's `PPOTrainer`), on plain vectors where it
//! is per-sequence bookkeeping and on tensors where gradients flow:
//!
//! - [`reward_score`]: a reward model's score, the first label's log-odds;
//! - [`shaped_rewards`]: −kl·(log π − log π_ref) per response token, with
//!   the score added at the last one;
//! - [`gae`]: generalised advantage estimation and the value targets;
//! - [`whiten`]: zero mean, unit variance over a batch of advantages;
//! - [`ppo_losses`]: the clipped surrogate, the clipped value loss and the
//!   share of tokens whose ratio left the clip range.

use crate::kernels::Kernels;
use burn::tensor::Tensor;

/// The reward of one text from a classifier's logits: the log-odds of the
/// first label, log p₀ − log(1 − p₀) = ℓ₀ − log Σ_{j>0} e^{ℓⱼ} (for two
/// labels, ℓ₀ − ℓ₁); a single-label head's logit is used as it is.
pub fn reward_score(logits: &[f32]) -> f64 {
    match logits {
        [] => 0.0,
        [only] => *only as f64,
        [first, rest @ ..] => {
            let m = rest.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = m + rest.iter().map(|&l| (l as f64 - m).exp()).sum::<f64>().ln();
            *first as f64 - lse
        }
    }
}

/// Per-token rewards of one response: −kl·(logp − ref_logp) at every token
/// (the sampled-token estimate of KL(π‖π_ref)), and the sequence's `score`
/// added at the last token.
pub fn shaped_rewards(logp: &[f32], ref_logp: &[f32], score: f64, kl: f64) -> Vec<f32> {
    assert_eq!(logp.len(), ref_logp.len());
    let mut r: Vec<f32> = logp
        .iter()
        .zip(ref_logp)
        .map(|(&p, &q)| (-kl * (p as f64 - q as f64)) as f32)
        .collect();
    if let Some(last) = r.last_mut() {
        *last += score as f32;
    }
    r
}

/// Generalised advantage estimation over one response (the value after the
/// last token is 0: the episode ends there):
/// δₜ = rₜ + γ·Vₜ₊₁ − Vₜ, Aₜ = δₜ + γλ·Aₜ₊₁. Returns the advantages and
/// the value targets Aₜ + Vₜ.
pub fn gae(rewards: &[f32], values: &[f32], gamma: f64, lambda: f64) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(rewards.len(), values.len());
    let n = rewards.len();
    let mut adv = vec![0f32; n];
    let mut next_value = 0f64;
    let mut next_adv = 0f64;
    for t in (0..n).rev() {
        let v = values[t] as f64;
        let delta = rewards[t] as f64 + gamma * next_value - v;
        let a = delta + gamma * lambda * next_adv;
        adv[t] = a as f32;
        next_value = v;
        next_adv = a;
    }
    let returns = adv.iter().zip(values).map(|(&a, &v)| a + v).collect();
    (adv, returns)
}

/// Shifts and scales `x` to mean 0 and (population) variance 1; a constant
/// batch becomes all zeros.
pub fn whiten(x: &mut [f32]) {
    if x.is_empty() {
        return;
    }
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let scale = 1.0 / (var + 1e-8).sqrt();
    for v in x.iter_mut() {
        *v = ((*v as f64 - mean) * scale) as f32;
    }
}

/// What one PPO minibatch's losses are made of. Every tensor is `[rows,
/// positions]`; `mask` is 1 at response tokens and `tokens` its sum.
pub struct PpoInputs<B: Kernels> {
    pub logp: Tensor<B, 2>,
    pub old_logp: Tensor<B, 2>,
    pub advantages: Tensor<B, 2>,
    pub values: Tensor<B, 2>,
    pub old_values: Tensor<B, 2>,
    pub returns: Tensor<B, 2>,
    pub mask: Tensor<B, 2>,
    pub tokens: usize,
}

/// The clipped surrogate −min(ρA, clip(ρ, 1±ε)A) and the clipped value
/// loss ½·max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²), both averaged
/// over the response tokens (ρ = exp(log π − log π_old)), and the share of
/// tokens whose ratio is outside [1 − ε, 1 + ε] (a plain number).
pub fn ppo_losses<B: Kernels>(x: PpoInputs<B>, clip: f64) -> (Tensor<B, 1>, Tensor<B, 1>, f64) {
    let n = x.tokens.max(1) as f64;
    let ratio = (x.logp - x.old_logp).exp();
    let outside = ratio
        .clone()
        .sub_scalar(1.0)
        .abs()
        .greater_elem(clip)
        .float()
        .mul(x.mask.clone())
        .sum()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32")[0] as f64;
    let neg_adv = x.advantages.neg();
    let pg1 = neg_adv.clone() * ratio.clone();
    let pg2 = neg_adv * ratio.clamp(1.0 - clip, 1.0 + clip);
    let policy = (pg1.max_pair(pg2) * x.mask.clone()).sum().div_scalar(n);
    let clipped = x.old_values.clone() + (x.values.clone() - x.old_values).clamp(-clip, clip);
    let v1 = (x.values - x.returns.clone()).powi_scalar(2);
    let v2 = (clipped - x.returns).powi_scalar(2);
    let value = (v1.max_pair(v2) * x.mask).sum().div_scalar(2.0 * n);
    (policy, value, outside / n)
}

/// The adaptive KL controller's next coefficient (Ziegler et al. 2019, as
/// TRL's `AdaptiveKLController`): the KL's relative error to the target,
/// clipped to ±0.2, moves the coefficient by that fraction per `horizon`
/// rollouts — up when the policy drifts further than the target, down when
/// it stays closer.
pub fn adapt_kl(coef: f64, kl: f64, target: f64, horizon: f64, rollouts: f64) -> f64 {
    let error = (kl / target - 1.0).clamp(-0.2, 0.2);
    coef * (1.0 + error * rollouts / horizon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    type B = burn::backend::Autodiff<burn::backend::NdArray<f32>>;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn reward_is_first_label_log_odds() {
        // Two labels: ℓ₀ − ℓ₁.
        assert!(close(reward_score(&[2.0, -1.0]), 3.0));
        // Three: log p₀ − log(1 − p₀) from the softmax itself.
        let l = [0.5f32, 1.0, -2.0];
        let z: f64 = l.iter().map(|&v| (v as f64).exp()).sum();
        let p0 = (l[0] as f64).exp() / z;
        assert!(close(reward_score(&l), p0.ln() - (1.0 - p0).ln()));
        // One label: the logit.
        assert!(close(reward_score(&[-0.7]), -0.7));
    }

    #[test]
    fn kl_shaping_penalises_every_token_and_scores_the_last() {
        let r = shaped_rewards(&[-1.0, -2.0, -0.5], &[-1.5, -2.0, -1.0], 3.0, 0.1);
        assert!(close(r[0] as f64, -0.05));
        assert!(close(r[1] as f64, 0.0));
        assert!(close(r[2] as f64, -0.05 + 3.0));
        // No penalty without a KL weight.
        assert_eq!(
            shaped_rewards(&[-1.0, -2.0], &[0.0, 0.0], 1.0, 0.0),
            vec![0.0, 1.0]
        );
    }

    #[test]
    fn gae_matches_a_hand_computation() {
        // γ = 1, λ = 0.95, rewards [0, 0, 1], values [0.1, 0.2, 0.3]:
        // δ₂ = 1 − 0.3 = 0.7; δ₁ = 0 + 0.3 − 0.2 = 0.1; δ₀ = 0 + 0.2 − 0.1 = 0.1
        // A₂ = 0.7; A₁ = 0.1 + 0.95·0.7 = 0.765; A₀ = 0.1 + 0.95·0.765 = 0.82675
        let (a, ret) = gae(&[0.0, 0.0, 1.0], &[0.1, 0.2, 0.3], 1.0, 0.95);
        for (x, y) in a.iter().zip([0.82675, 0.765, 0.7]) {
            assert!(close(*x as f64, y), "{a:?}");
        }
        for (x, y) in ret.iter().zip([0.92675, 0.965, 1.0]) {
            assert!(close(*x as f64, y), "{ret:?}");
        }
        // λ = 1, γ = 1: the advantage is the reward-to-go minus the value.
        let (a, _) = gae(&[1.0, 2.0, 3.0], &[0.5, 0.5, 0.5], 1.0, 1.0);
        assert_eq!(a, vec![5.5, 4.5, 2.5]);
    }

    #[test]
    fn whitening_gives_zero_mean_unit_variance() {
        let mut x = vec![1.0f32, 2.0, 3.0, 10.0];
        whiten(&mut x);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        let var: f32 = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{x:?}");
        let mut c = vec![2.0f32; 3];
        whiten(&mut c);
        assert_eq!(c, vec![0.0; 3]);
    }

    fn t(v: &[f32]) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), [1, v.len()]),
            &Default::default(),
        )
    }

    fn grad_of(logp: &[f32], old: &[f32], adv: &[f32], clip: f64) -> (Vec<f32>, f64, f64) {
        let lp = t(logp).require_grad();
        let n = logp.len();
        let (policy, _, frac) = ppo_losses(
            PpoInputs {
                logp: lp.clone(),
                old_logp: t(old),
                advantages: t(adv),
                values: t(&vec![0.0; n]),
                old_values: t(&vec![0.0; n]),
                returns: t(&vec![0.0; n]),
                mask: t(&vec![1.0; n]),
                tokens: n,
            },
            clip,
        );
        let value: f32 = policy.clone().into_scalar();
        let g = lp.grad(&policy.backward()).expect("grad");
        (g.into_data().to_vec().unwrap(), value as f64, frac)
    }

    #[test]
    fn clipped_ratios_get_no_gradient() {
        let old = [0.0f32; 4];
        // Ratios e^0.5 ≈ 1.65 and e^−0.5 ≈ 0.61 are outside [0.8, 1.2];
        // e^0.1 ≈ 1.105 is inside.
        let logp = [0.5f32, 0.5, -0.5, 0.1];
        let adv = [1.0f32, -1.0, -1.0, 1.0];
        let (g, loss, frac) = grad_of(&logp, &old, &adv, 0.2);
        // Token 0: ρ > 1 + ε with A > 0 → clipped term is the max → no gradient.
        assert_eq!(g[0], 0.0);
        // Token 1: ρ > 1 + ε with A < 0 → the unclipped term wins → gradient −A·ρ/n.
        assert!(close(g[1] as f64, (0.5f64).exp() / 4.0), "{g:?}");
        // Token 2: ρ < 1 − ε with A < 0 → clipped → no gradient.
        assert_eq!(g[2], 0.0);
        // Token 3: inside the range → −A·ρ/n.
        assert!(close(g[3] as f64, -(0.1f64).exp() / 4.0), "{g:?}");
        assert!(close(frac, 0.75));
        let expected = (-1.2 + (0.5f64).exp() + 0.8 - (0.1f64).exp()) / 4.0;
        assert!(close(loss, expected), "{loss} vs {expected}");
    }

    #[test]
    fn value_loss_is_clipped_around_the_old_values() {
        let v = t(&[1.0, 0.1]).require_grad();
        let (_, value, _) = ppo_losses(
            PpoInputs {
                logp: t(&[0.0, 0.0]),
                old_logp: t(&[0.0, 0.0]),
                advantages: t(&[0.0, 0.0]),
                values: v.clone(),
                old_values: t(&[0.0, 0.0]),
                returns: t(&[2.0, 0.0]),
                mask: t(&[1.0, 1.0]),
                tokens: 2,
            },
            0.2,
        );
        // Row 0: unclipped (1 − 2)² = 1, clipped (0.2 − 2)² = 3.24 → 3.24,
        // whose gradient in V is 0 (the clipped value does not move).
        // Row 1: (0.1)² = 0.01 both ways.
        let loss: f32 = value.clone().into_scalar();
        assert!(close(loss as f64, (3.24 + 0.01) / 4.0), "{loss}");
        let g: Vec<f32> = v
            .grad(&value.backward())
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(g[0], 0.0);
        assert!(close(g[1] as f64, 0.1 / 2.0), "{g:?}");
    }

    #[test]
    fn the_kl_coefficient_moves_towards_the_target_by_at_most_a_fifth_per_horizon() {
        // KL above the target: the coefficient grows; by 20 % of a horizon's
        // worth at most, however far off the KL is.
        assert!((adapt_kl(0.1, 7.2, 6.0, 100.0, 10.0) - 0.1 * 1.02).abs() < 1e-12);
        assert!((adapt_kl(0.1, 600.0, 6.0, 100.0, 10.0) - 0.1 * 1.02).abs() < 1e-12);
        // Below it: shrinks; at it: unchanged.
        assert!((adapt_kl(0.1, 5.4, 6.0, 100.0, 10.0) - 0.1 * 0.99).abs() < 1e-12);
        assert!((adapt_kl(0.1, 0.0, 6.0, 100.0, 100.0) - 0.1 * 0.8).abs() < 1e-12);
        assert_eq!(adapt_kl(0.1, 6.0, 6.0, 100.0, 10.0), 0.1);
    }
}
