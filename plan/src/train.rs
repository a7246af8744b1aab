//! How to train and evaluate: objective, length, optimizer, schedule,
//! early stopping and metrics, with every default filled in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Objective {
    /// Causal-LM fine-tuning; loss on completion (assistant) tokens only.
    Sft,
    /// Sequence classification with cross-entropy over the head's labels.
    Classify,
    /// Direct preference optimisation against a frozen reference.
    Dpo {
        beta: f64,
        /// The reference: a model of `Plan::other_models`, by name (with
        /// its adapter, if it has one); `None`, the policy as it starts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// PPO against a reward model (named in `Plan::other_models`): the
    /// reward is the model's first-label log-odds on prompt + response;
    /// `kl` weighs the per-token KL penalty against the frozen base, `clip`
    /// is the ratio clip range, `max_new_tokens` the length of a rollout.
    Ppo {
        reward: String,
        kl: f64,
        clip: f64,
        max_new_tokens: usize,
        /// Sampling temperature of the rollouts (1 samples from the policy
        /// itself; no top-k/top-p).
        temperature: f64,
        /// Adaptive KL (Ziegler et al. 2019): the KL per response (nats)
        /// the coefficient is steered towards, starting from `kl`; `None`
        /// keeps `kl` fixed.
        #[serde(default)]
        kl_target: Option<f64>,
        /// How fast the adaptive coefficient moves (in rollouts).
        #[serde(default = "default_kl_horizon")]
        kl_horizon: f64,
    },
}

fn default_kl_horizon() -> f64 {
    10_000.0
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Length {
    Epochs(f64),
    Steps(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    AdamW {
        lr: f64,
        weight_decay: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    Sgd {
        lr: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::AdamW { lr, .. } | Optimizer::Sgd { lr, .. } => *lr,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleKind {
    Constant,
    Linear,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Warmup {
    Steps(u64),
    /// A share of the total steps.
    Fraction(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub warmup: Warmup,
    /// The floor of linear/cosine decay.
    pub min_lr: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    Loss,
    Perplexity,
    Accuracy,
    F1,
    ExactMatch,
    RougeL,
    /// DPO: mean of (chosen − rejected) implicit reward.
    Margin,
    /// PPO: mean reward-model score of greedy responses.
    Reward,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Perplexity => "perplexity",
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::ExactMatch => "exact_match",
            Metric::RougeL => "rouge_l",
            Metric::Margin => "margin",
            Metric::Reward => "reward",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Some(match name {
            "loss" => Metric::Loss,
            "perplexity" => Metric::Perplexity,
            "accuracy" => Metric::Accuracy,
            "f1" => Metric::F1,
            "exact_match" => Metric::ExactMatch,
            "rouge_l" => Metric::RougeL,
            "margin" => Metric::Margin,
            "reward" => Metric::Reward,
            _ => return None,
        })
    }

    /// Whether larger is better.
    pub fn maximize(self) -> bool {
        !matches!(self, Metric::Loss | Metric::Perplexity)
    }

    /// Whether computing it needs greedy generation.
    pub fn generates(self) -> bool {
        matches!(self, Metric::ExactMatch | Metric::RougeL | Metric::Reward)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRef {
    pub split: String,
    pub metric: Metric,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    pub metric: MetricRef,
    /// Evaluations without improvement before stopping.
    pub patience: u32,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Whether a larger value is better (`mode = max`); the metric's own
    /// direction unless the recipe says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximize: Option<bool>,
}

impl EarlyStop {
    /// Whether a larger value of the watched metric is an improvement.
    pub fn maximizes(&self) -> bool {
        self.maximize
            .unwrap_or_else(|| self.metric.metric.maximize())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Device {
    Cpu,
    Cuda,
}

/// The arithmetic of products with frozen weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout.
    #[default]
    F32,
    /// Inputs rounded to bfloat16, products accumulated in f32 (AMX).
    Bf16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPlan {
    pub objective: Objective,
    pub length: Length,
    pub batch: usize,
    pub accumulate: usize,
    pub max_len: usize,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Global gradient-norm clipping (PyTorch's `clip_grad_norm_`).
    pub clip: Option<f64>,
    pub early_stop: Option<EarlyStop>,
    /// Evaluate every this many steps; `None` is once per epoch.
    pub eval_every: Option<u64>,
    pub packing: bool,
    /// Batches of similar lengths (less padding) in shuffled single-dataset
    /// stages.
    #[serde(default)]
    pub group_by_length: bool,
    pub device: Device,
    pub threads: Option<usize>,
    /// Frozen-weight products in bf16 (older plans: f32).
    #[serde(default)]
    pub precision: Precision,
    /// Recompute each layer in the backward pass instead of keeping its
    /// activations (older plans: off).
    #[serde(default)]
    pub gradient_checkpointing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPlan {
    pub on: Vec<String>,
    pub metrics: Vec<Metric>,
    pub max_new_tokens: usize,
    pub batch: usize,
}
