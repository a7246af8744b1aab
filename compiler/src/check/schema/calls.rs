//! Function-like values: model and data sources, heads, optimizers,
//! schedules, pacing functions, objectives and sweep strategies.

use super::*;

pub static MODEL_SOURCES: &[CallDef] = &[
    CallDef {
        name: "hf",
        doc: "A Hugging Face model folder: `config.json`, `model.safetensors` (or a sharded index) and `tokenizer.json`.",
        params: &[req("path", Ty::Path, "The folder, relative to the recipe.")],
    },
    CallDef {
        name: "gguf",
        doc: "A GGUF file (llama.cpp). Weights are dequantized (F32, F16, BF16, Q8_0, Q4_0, Q4_1); the tokenizer and chat template come from its metadata.",
        params: &[req("path", Ty::Path, "The `.gguf` file, relative to the recipe.")],
    },
];

static TABULAR_PARAMS: [Key; 4] = [
    req(
        "path",
        Ty::Path,
        "The file or a glob such as `data/*.csv`, relative to the recipe.",
    ),
    key(
        "columns",
        Ty::List(&Ty::Str),
        None,
        "Column names when the file has no header row.",
    ),
    key(
        "header",
        Ty::Bool,
        Some("true unless `columns` is given"),
        "Whether the first row names the columns.",
    ),
    key(
        "delimiter",
        Ty::Str,
        Some("\",\" for csv, \"\\t\" for tsv"),
        "The field separator (one character).",
    ),
];

/// Every data source: the file readers, then `splits(…)` (last, so the
/// file readers are a prefix of this table).
pub static DATA_SOURCES: &[CallDef] = &ALL_DATA_SOURCES;

/// The sources that read files (all but `splits`), shared with `splits`'s
/// parameters rather than written twice.
pub static DATA_FILE_SOURCES: &[CallDef] = ALL_DATA_SOURCES.split_at(6).0;

static ALL_DATA_SOURCES: [CallDef; 7] = [
    CallDef {
        name: "jsonl",
        doc: "One JSON object per line.",
        params: &[req("path", Ty::Path, "The file or a glob, relative to the recipe.")],
    },
    CallDef {
        name: "json",
        doc: "A JSON array of objects, or an object holding one (see `records`).",
        params: &[
            req("path", Ty::Path, "The file or a glob, relative to the recipe."),
            key("records", Ty::Str, None, "Dotted key of the array of records, e.g. \"data.rows\"."),
        ],
    },
    CallDef {
        name: "csv",
        doc: "Comma-separated values with RFC 4180 quoting.",
        params: &TABULAR_PARAMS,
    },
    CallDef {
        name: "tsv",
        doc: "Tab-separated values.",
        params: &TABULAR_PARAMS,
    },
    CallDef {
        name: "yaml",
        doc: "A YAML list of records, or a mapping holding one (see `records`).",
        params: &[
            req("path", Ty::Path, "The file or a glob, relative to the recipe."),
            key("records", Ty::Str, None, "Dotted key of the list of records."),
        ],
    },
    CallDef {
        name: "yaml_pairs",
        doc: "Conversation lists (chatterbot's `conversations: [[q, a, …]]`), read as rows with fields `question` and `answer`, one per consecutive pair.",
        params: &[req("path", Ty::Path, "The file or a glob, relative to the recipe.")],
    },
    CallDef {
        name: "splits",
        doc: "One source per split, when the data comes already split: `splits(train = jsonl(\"a\"), val = jsonl(\"b\"))`.",
        params: &[
            key("train", Ty::Calls(DATA_FILE_SOURCES), None, "The training rows."),
            key("val", Ty::Calls(DATA_FILE_SOURCES), None, "The validation rows."),
            key("test", Ty::Calls(DATA_FILE_SOURCES), None, "The test rows."),
        ],
    },
];

pub static HEADS: &[CallDef] = &[
    CallDef {
        name: "causal_lm",
        doc: "Next-token prediction with the model's language-model head (tied to the embeddings where the model ties them).",
        params: &[],
    },
    CallDef {
        name: "classify",
        doc: "A new sequence-classification head, trained in full and saved with the adapter (`modules_to_save`): on a BERT-family encoder `classifier` (with a bias) on the pooled first token, as transformers' `BertForSequenceClassification`; on a Llama-family decoder `score` (no bias) on each row's last real token, as `LlamaForSequenceClassification`. Either can be a PPO reward model.",
        params: &[req("labels", Ty::List(&Ty::Str), "The class names, in label-id order.")],
    },
];

pub static OPTIMIZERS: &[CallDef] = &[
    CallDef {
        name: "adamw",
        doc: "AdamW (decoupled weight decay), as `torch.optim.AdamW`.",
        params: &[
            req("lr", positive(), "The peak learning rate."),
            key(
                "weight_decay",
                non_negative(),
                Some("0.0"),
                "Decoupled weight decay.",
            ),
            key(
                "beta1",
                Ty::Float {
                    min: Some(0.0),
                    min_exclusive: false,
                    max: Some(1.0),
                    max_exclusive: true,
                },
                Some("0.9"),
                "First-moment decay.",
            ),
            key(
                "beta2",
                Ty::Float {
                    min: Some(0.0),
                    min_exclusive: false,
                    max: Some(1.0),
                    max_exclusive: true,
                },
                Some("0.999"),
                "Second-moment decay.",
            ),
            key("eps", positive(), Some("1e-8"), "Added to the denominator."),
        ],
    },
    CallDef {
        name: "sgd",
        doc: "Stochastic gradient descent with optional momentum.",
        params: &[
            req("lr", positive(), "The learning rate."),
            key(
                "momentum",
                Ty::Float {
                    min: Some(0.0),
                    min_exclusive: false,
                    max: Some(1.0),
                    max_exclusive: true,
                },
                Some("0.0"),
                "Momentum factor.",
            ),
            key("nesterov", Ty::Bool, Some("false"), "Nesterov momentum."),
            key("weight_decay", non_negative(), Some("0.0"), "L2 penalty."),
        ],
    },
];

pub static SCHEDULES: &[CallDef] = &[
    CallDef {
        name: "constant",
        doc: "A constant learning rate after an optional warmup.",
        params: &[key(
            "warmup",
            Ty::FractionOrCount,
            Some("0"),
            "Linear warmup: a share of all steps (`10%`) or a number of steps.",
        )],
    },
    CallDef {
        name: "linear",
        doc: "Linear warmup, then linear decay to zero.",
        params: &[key(
            "warmup",
            Ty::FractionOrCount,
            Some("0"),
            "Linear warmup: a share of all steps or a number of steps.",
        )],
    },
    CallDef {
        name: "cosine",
        doc: "Linear warmup, then cosine decay to `min_lr`.",
        params: &[
            key(
                "warmup",
                Ty::FractionOrCount,
                Some("0"),
                "Linear warmup: a share of all steps or a number of steps.",
            ),
            key(
                "min_lr",
                non_negative(),
                Some("0"),
                "The learning rate at the end.",
            ),
        ],
    },
];

pub static PACINGS: &[CallDef] = &[
    CallDef {
        name: "linear",
        doc: "Competence grows linearly: c(t) = min(1, start + t·(1 − start)/full_at).",
        params: &[
            key("start", Ty::Fraction, Some("10%"), "The share of the ordered data available at the first step."),
            key("full_at", Ty::Fraction, Some("50%"), "When (as a share of the stage) all data is available."),
        ],
    },
    CallDef {
        name: "root",
        doc: "Competence grows as a square root: c(t) = min(1, √(start² + t·(1 − start²)/full_at)) (Platanios et al., 2019).",
        params: &[
            key("start", Ty::Fraction, Some("10%"), "The share of the ordered data available at the first step."),
            key("full_at", Ty::Fraction, Some("50%"), "When (as a share of the stage) all data is available."),
        ],
    },
    CallDef {
        name: "none",
        doc: "No pacing: all of the stage's data from the first step, in the declared order.",
        params: &[],
    },
];

pub static OBJECTIVES: &[CallDef] = &[
    CallDef {
        name: "sft",
        doc: "Supervised fine-tuning: causal-LM loss on the completion (or assistant) tokens only.",
        params: &[],
    },
    CallDef {
        name: "classify",
        doc: "Cross-entropy on the label, for a `classify` head.",
        params: &[],
    },
    CallDef {
        name: "dpo",
        doc: "Direct Preference Optimization on `chosen`/`rejected` pairs against a frozen reference model.",
        params: &[
            key("beta", positive(), Some("0.1"), "Strength of the KL constraint."),
            key("reference", Ty::ModelRef, Some("the policy as it starts"), "The frozen reference model: a declared causal LM with the policy's tokenizer (FT0620), with its `adapter` applied when it has one. Without it, the policy as it starts (for LoRA-style methods, the base model; with a model `adapter`, the base model with that adapter)."),
        ],
    },
    CallDef {
        name: "ppo",
        doc: "Proximal Policy Optimization against a reward model (a `classify` model whose first label is the reward).",
        params: &[
            req("reward", Ty::ModelRef, "The reward model."),
            key("kl", non_negative(), Some("0.05"), "KL penalty against the initial policy."),
            key("clip", positive(), Some("0.2"), "PPO clip range."),
            key("max_new_tokens", int(1), Some("64"), "Tokens generated per rollout."),
            key("temperature", positive(), Some("1.0"), "Sampling temperature of the rollouts (1 samples the policy itself)."),
            key("kl_target", positive(), Some("none (a fixed kl)"), "Adaptive KL penalty: steer the coefficient, starting from `kl`, so that the rollouts' KL to the initial policy (nats per response) approaches this (Ziegler et al. 2019; TRL's `adap_kl_ctrl`)."),
            key("kl_horizon", int(1), Some("10000"), "How fast the adaptive coefficient moves: after each step it is multiplied by 1 + clip(KL / kl_target − 1, ±0.2) × rollouts / kl_horizon."),
        ],
    },
];

pub static STRATEGIES: &[CallDef] = &[
    CallDef {
        name: "grid",
        doc: "Every combination of the axes' values.",
        params: &[],
    },
    CallDef {
        name: "random",
        doc: "`n` combinations drawn at random (ranges are sampled; lists are drawn from).",
        params: &[
            req("n", int(1), "Number of trials."),
            key("seed", int(0), Some("0"), "Seed for the draws."),
        ],
    },
];

/// Values a sweep axis may range over besides a list.
pub static RANGES: &[CallDef] = &[
    CallDef {
        name: "loguniform",
        doc:
            "Log-uniform between two positive numbers (random search; grid search takes 3 points).",
        params: &[
            req("low", positive(), "Lower bound."),
            req("high", positive(), "Upper bound."),
        ],
    },
    CallDef {
        name: "uniform",
        doc: "Uniform between two numbers.",
        params: &[
            req(
                "low",
                Ty::Float {
                    min: None,
                    min_exclusive: false,
                    max: None,
                    max_exclusive: false,
                },
                "Lower bound.",
            ),
            req(
                "high",
                Ty::Float {
                    min: None,
                    min_exclusive: false,
                    max: None,
                    max_exclusive: false,
                },
                "Upper bound.",
            ),
        ],
    },
];

pub static PICKS: &[CallDef] = &[
    CallDef {
        name: "min",
        doc: "The trial with the lowest value of a validation metric.",
        params: &[req("metric", Ty::Metric, "e.g. `val.loss`.")],
    },
    CallDef {
        name: "max",
        doc: "The trial with the highest value of a validation metric.",
        params: &[req("metric", Ty::Metric, "e.g. `val.accuracy`.")],
    },
];

pub static PROMPT_INITS: &[CallDef] = &[
    CallDef {
        name: "random",
        doc: "Virtual tokens initialised at random (as PEFT's RANDOM).",
        params: &[],
    },
    CallDef {
        name: "text",
        doc: "Virtual tokens initialised from the embeddings of a text's tokens (as PEFT's TEXT), repeated to fill.",
        params: &[req("text", Ty::Str, "The initialisation text.")],
    },
];

/// Functions usable inside row expressions and filters.
pub const ROW_FUNCTIONS: &[(&str, &str)] = &[
    ("tokens", "Number of tokens of a field or rendered part (`tokens(prompt)`), with the model's tokenizer."),
    ("len", "Number of characters of a field."),
    ("lower", "A field in lower case."),
];

pub fn find_call<'a>(calls: &'a [CallDef], name: &str) -> Option<&'a CallDef> {
    calls.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sources_are_every_source_but_splits() {
        let names: Vec<&str> = DATA_FILE_SOURCES.iter().map(|c| c.name).collect();
        assert_eq!(names, ["jsonl", "json", "csv", "tsv", "yaml", "yaml_pairs"]);
        assert_eq!(DATA_SOURCES.len(), DATA_FILE_SOURCES.len() + 1);
        assert_eq!(DATA_SOURCES.last().map(|c| c.name), Some("splits"));
    }
}
