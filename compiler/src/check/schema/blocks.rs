//! The blocks of a recipe and their keys.

use super::*;

static MODEL_KEYS: [Key; 4] = [
    key("head", Ty::Calls(HEADS), Some("causal_lm"), "What the model is trained to output: `causal_lm` (a Llama-family decoder) or `classify(labels = [...])` (a BERT-family encoder or a Llama-family decoder)."),
    key("chat_template", Ty::Str, Some("the model's own"), "A Jinja chat template that replaces the model's (from `tokenizer_config.json` or GGUF metadata)."),
    key("tokenizer", Ty::Path, Some("the model's own"), "A `tokenizer.json` to use instead of the model's."),
    key("adapter", Ty::Path, None, "A trained adapter folder (PEFT's `adapter_config.json` + `adapter_model.safetensors`, e.g. a run's `adapter/`) applied on load, with its classifier head. On the trained model, training continues from it (it must be the recipe's `peft` method, FT0618) and `ft eval` applies it; on a DPO reference or a PPO reward model, it is applied to that model. A model used nowhere else is refused (FT0510)."),
];

static DATASET_KEYS: [Key; 12] = [
    key("prompt", Ty::Prompt, None, "The model's input for causal-LM training: a template over the row's fields (\"Q: {question}\\nA:\"), or chat messages rendered with the model's chat template: `chat([system: \"…\", user: \"{question}\"])`. No loss is taken on it."),
    key("completion", Ty::Template, None, "What the model learns to write after the prompt; the loss is taken on these tokens (and the EOS token appended to them)."),
    key("input", Ty::Template, None, "The text to classify, for a `classify` head."),
    key("label", Ty::AnyOf(&[&Ty::Template, &Ty::RowExpr]), None, "The class of a row: a template (\"{sentiment}\") or an expression (`if score > 0 then \"positive\" else \"negative\"`). Its values must be among the head's labels."),
    key("messages", Ty::Prompt, None, "A whole conversation: `chat([user: \"{q}\", assistant: \"{a}\"])`, or `chat(field)` for rows that hold an OpenAI-style list of `{role, content}`. Loss on assistant turns only."),
    key("chosen", Ty::Template, None, "The preferred completion of a preference pair (DPO)."),
    key("rejected", Ty::Template, None, "The dispreferred completion of a preference pair (DPO)."),
    key("shots", Ty::Shots, None, "Few-shot examples prepended to each prompt: `2 from train` draws two rows of the training split (deterministically, never the row itself)."),
    key("split", Ty::Split, Some("{ train = 100% }"), "How rows are assigned to splits: `{ train = 80%, val = 10%, test = 10%, seed = 42, stratify = label, key = id }`. Assignment hashes each row (its `key` field, or its content), so a row keeps its split when the file grows."),
    key("filter", Ty::RowExpr, None, "Keep only the rows for which this is true: `filter = len(text) > 10`. Rows removed are counted in the data report."),
    key("truncate", Ty::Enum(&["truncate", "drop", "error"]), Some("truncate"), "What to do with an example longer than `max_len`: cut it (from the left of the prompt), drop it (counted in the report), or stop with an error."),
    key("on_bad_row", Ty::Enum(&["fail", "skip"]), Some("fail"), "What to do with a malformed row (bad JSON, missing field, wrong type, empty completion): stop, or skip it and count it in the run summary."),
];

static MIXTURE_KEYS: [Key; 3] = [
    key("temperature", positive(), Some("none (weights only)"), "Temperature sampling: task i is drawn with probability ∝ wᵢ·nᵢ^(1/T), nᵢ its size. T = 1 samples in proportion to size; large T approaches uniform."),
    key("cap", positive(), None, "The most times a task's examples may be repeated in one mixture epoch (limits upsampling of small tasks)."),
    key("seed", int(0), Some("train.seed"), "Seed of the sampler."),
];

static STAGE_KEYS: [Key; 6] = [
    req("data", Ty::Data, "The stage's examples: a dataset, a mixture, or either filtered: `tasks where tokens(prompt) < 128`."),
    key("epochs", positive(), None, "The stage's length in passes over its data (give this or `steps`)."),
    key("steps", int(1), None, "The stage's length in optimizer steps (give this or `epochs`)."),
    key("lr", positive(), Some("train's"), "Peak learning rate during this stage."),
    key("batch", int(1), Some("train's"), "Batch size during this stage."),
    key("max_len", int(1), Some("train's"), "Maximum sequence length during this stage."),
];

static STAGE: [BlockDef; 1] = [BlockDef {
    keyword: "stage",
    doc: "One stage of a curriculum, run in the order written.",
    name: Presence::Required,
    name_is_method: false,
    source: None,
    keys: &STAGE_KEYS,
    sub_blocks: &[],
    singleton: false,
    dataset_keys: false,
    axes: false,
    example: "stage short { data = tasks where tokens(prompt) < 128, epochs = 1 }",
}];

static CURRICULUM_KEYS: [Key; 2] = [
    key("order", Ty::Ordering, Some("the data's order"), "Sort each stage's examples by a difficulty key: `tokens(prompt) ascending`, or any numeric field."),
    key("pacing", Ty::Calls(PACINGS), Some("none"), "How much of the ordered data is available as the stage goes: `linear(start = 20%, full_at = 50%)` or `root(…)`."),
];

static EARLY_STOP_KEYS: [Key; 4] = [
    req(
        "metric",
        Ty::Metric,
        "The validation metric to watch, e.g. `val.accuracy` or `val.loss`.",
    ),
    key(
        "patience",
        int(1),
        Some("3"),
        "Evaluations without improvement before stopping.",
    ),
    key(
        "min_delta",
        non_negative(),
        Some("0"),
        "The smallest change that counts as an improvement.",
    ),
    key(
        "mode",
        Ty::Enum(&["min", "max"]),
        Some("min for loss and perplexity, max otherwise"),
        "Whether lower or higher is better.",
    ),
];

static TRAIN_KEYS: [Key; 20] = [
    key("epochs", positive(), Some("1"), "Passes over the training data (give this or `steps`)."),
    key("steps", int(1), None, "Optimizer steps to run (instead of `epochs`)."),
    key("batch", int(1), Some("8"), "Examples per micro-batch."),
    key("accumulate", int(1), Some("1"), "Micro-batches per optimizer step (gradient accumulation); the effective batch is `batch × accumulate`."),
    key("max_len", int(1), Some("512"), "Maximum tokens per example (prompt and completion together)."),
    key("optimizer", Ty::Calls(OPTIMIZERS), Some("adamw(lr = 2e-4)"), "`adamw(lr, weight_decay, beta1, beta2, eps)` or `sgd(lr, momentum, nesterov, weight_decay)`."),
    key("schedule", Ty::Calls(SCHEDULES), Some("constant"), "Learning-rate schedule: `constant`, `linear(warmup = 10%)`, `cosine(warmup = 100, min_lr = 0)`."),
    key("clip", positive(), None, "Clip the global gradient norm to this value (as PyTorch's `clip_grad_norm_`)."),
    key("seed", int(0), Some("0"), "Seed for initialisation, dropout, shuffling and sampling. Applied before any adapter is created."),
    key("early_stop", Ty::Record(&EARLY_STOP_KEYS), None, "Stop when a validation metric stops improving and restore the best checkpoint: `{ metric = val.accuracy, patience = 2 }`."),
    key("eval_every", int(1), Some("once per epoch"), "Evaluate on the validation split every this many steps."),
    key("data", Ty::Data, Some("the curriculum, else the only mixture or dataset"), "What to train on."),
    key("model", Ty::ModelRef, Some("the only model"), "Which model to train when the recipe declares several (e.g. a policy and a reward model)."),
    key("objective", Ty::Calls(OBJECTIVES), Some("sft for causal_lm, classify for classify"), "The training objective: `sft`, `classify`, `dpo(beta = 0.1)` or `ppo(reward = rm)`."),
    key("packing", Ty::Bool, Some("false"), "Pack several short examples into each row (supervised language-model training only, FT0507). Each example attends only to itself and its positions restart at 0, so a packed step computes what a padded one would, with less padding."),
    key("group_by_length", Ty::Bool, Some("false"), "Batch examples of similar length together, so that less of each batch is padding: each epoch's shuffled order is cut into windows of 50 batches, and each window is sorted by length (longest first). Faster steps on data of mixed lengths; batches are less random. For shuffled single-dataset training (not mixtures or ordered/paced curricula)."),
    key("backend", Ty::Enum(&["cpu", "cuda"]), Some("cpu"), "Where to train. `cuda` needs a binary built with `--features cuda` and an NVIDIA GPU."),
    key("threads", int(1), Some("all cores"), "CPU threads the run's parallel work is spread over."),
    key("precision", Ty::Enum(&["f32", "bf16"]), Some("f32"), "Arithmetic of the products with frozen weights (the base model under LoRA and the other adapter methods). `bf16` rounds both inputs of those products to bfloat16 and accumulates in f32 on the CPU's AMX tile unit (Intel Sapphire Rapids and later): several times faster, with results that differ from f32 at the bfloat16 level (as PyTorch's CPU autocast to bfloat16). Adapters, gradients, norms and the optimizer stay f32. Without AMX, or on CUDA, the run says so and uses f32."),
    key("gradient_checkpointing", Ty::Bool, Some("false"), "Keep only each layer's input during the forward pass and recompute the layer, one at a time, in the backward pass: activation memory falls from every layer's intermediates to one layer's plus a `batch × max_len × hidden` input per layer, for one more forward pass of the layers (about a third more compute). For long sequences and large batches. Gradients are those of the ordinary step (dropout masks are redrawn identically)."),
];

static EVALUATE_KEYS: [Key; 4] = [
    key("on", Ty::AnyOf(&[&Ty::Enum(SPLIT_NAMES), &Ty::List(&Ty::Enum(SPLIT_NAMES))]), Some("test"), "The split(s) to evaluate on after training."),
    key("metrics", Ty::List(&Ty::Enum(&["loss", "perplexity", "accuracy", "f1", "exact_match", "rouge_l", "margin", "reward"])), Some("[loss]"), "Metrics to report: `loss`, `perplexity`, `accuracy`, `f1`, `exact_match`, `rouge_l`, `margin`, `reward` (PPO)."),
    key("max_new_tokens", int(1), Some("64"), "Tokens generated (greedily) for generation metrics."),
    key("batch", int(1), Some("train's"), "Batch size during evaluation; generation metrics generate for this many prompts at once."),
];

static SWEEP_KEYS: [Key; 5] = [
    key("strategy", Ty::Calls(STRATEGIES), Some("grid"), "`grid` or `random(n = 8, seed = 0)`."),
    key("budget", Ty::Record(&BUDGET_KEYS), Some("train's length"), "Length of each trial: `{ steps = 200 }` or `{ epochs = 1 }`."),
    req("pick", Ty::Calls(PICKS), "How the winner is chosen, always on the validation split: `min(val.loss)`, `max(val.accuracy)`."),
    key("jobs", int(1), Some("1"), "Trials run at the same time (as separate processes)."),
    key("seed", int(0), Some("0"), "Seed of random search."),
];

static BUDGET_KEYS: [Key; 2] = [
    key("steps", int(1), None, "Optimizer steps per trial."),
    key("epochs", positive(), None, "Epochs per trial."),
];

static OUTPUT_KEYS: [Key; 5] = [
    key("dir", Ty::Path, Some("\"runs\" beside the recipe"), "Where run folders go (`<dir>/<recipe name>/<id>/`), relative to the recipe; `ft run --runs DIR` overrides it."),
    key("export", Ty::Enum(&["adapter", "merged", "both"]), Some("adapter (`merged` for `peft full`)"), "What to write at the end: the adapter in PEFT's format, the merged full weights (safetensors, Hugging Face layout), or both. `peft full` writes `merged` (it has no adapter); prefix, prompt and bottleneck adapters write `adapter` (they cannot be merged; FT0511)."),
    key("save_every", int(1), None, "Also write a checkpoint every this many steps (atomically), besides those at evaluations; `ft run --checkpoint-every N` overrides it."),
    key("keep", int(1), Some("2"), "How many of the newest step checkpoints (`checkpoints/step-N/`) stay on disk; older ones are removed as new ones are written. The best one (early stopping) is kept apart."),
    key("report", Ty::Bool, Some("true"), "Write the report (curves as SVG and a summary) into the run folder."),
];

pub static BLOCKS: &[BlockDef] = &[
    BlockDef {
        keyword: "model",
        doc: "The pretrained model to fine-tune: where its files are and the head to train. A recipe may declare several named models (a policy and a reward model); `train.model` then says which one is trained.",
        name: Presence::Optional,
        name_is_method: false,
        source: Some(MODEL_SOURCES),
        keys: &MODEL_KEYS,
        sub_blocks: &[],
        singleton: false,
        dataset_keys: false,
        axes: false,
        example: "model encoder = hf(\"models/all-MiniLM-L6-v2\") {\n  head = classify(labels = [\"negative\", \"positive\"])\n}",
    },
    BlockDef {
        keyword: "dataset",
        doc: "A named source of examples: the file it reads, how a row becomes text, few-shot examples, and its split.",
        name: Presence::Required,
        name_is_method: false,
        source: Some(DATA_SOURCES),
        keys: &DATASET_KEYS,
        sub_blocks: &[],
        singleton: false,
        dataset_keys: false,
        axes: false,
        example: "dataset reviews = tsv(\"data/snippets.tsv\", columns = [id, score, text]) {\n  input = \"{text}\"\n  label = if score > 0 then \"positive\" else \"negative\"\n  split = { train = 80%, val = 10%, test = 10%, seed = 42, stratify = label }\n}",
    },
    BlockDef {
        keyword: "mixture",
        doc: "Several datasets sampled together (multi-task). Each entry `name = weight` names a dataset; sampling probability ∝ weight (× size^(1/T) with a temperature). One mixture epoch is as many draws as the tasks' sizes (after caps) add up to.",
        name: Presence::Required,
        name_is_method: false,
        source: None,
        keys: &MIXTURE_KEYS,
        sub_blocks: &[],
        singleton: false,
        dataset_keys: true,
        axes: false,
        example: "mixture tasks { faq = 3, papers = 1, temperature = 2.0 }",
    },
    BlockDef {
        keyword: "curriculum",
        doc: "Ordered training stages, each with its own data, length and overrides, and an ordering of examples by difficulty with a pacing function. The whole curriculum becomes one deterministic sampler.",
        name: Presence::Optional,
        name_is_method: false,
        source: None,
        keys: &CURRICULUM_KEYS,
        sub_blocks: &STAGE,
        singleton: true,
        dataset_keys: false,
        axes: false,
        example: "curriculum {\n  order  = tokens(prompt) ascending\n  pacing = root(start = 20%, full_at = 50%)\n  stage short { data = tasks where tokens(prompt) < 128, epochs = 1 }\n  stage all   { data = tasks, epochs = 2, lr = 1e-4 }\n}",
    },
    BlockDef {
        keyword: "peft",
        doc: "The fine-tuning method, named after the keyword: `full`, `lora`, `prefix`, `prompt`, `adapter` or `ia3`. Base weights are frozen for every method but `full`.",
        name: Presence::Required,
        name_is_method: true,
        source: None,
        keys: &[],
        sub_blocks: &[],
        singleton: true,
        dataset_keys: false,
        axes: false,
        example: "peft lora {\n  rank    = 8\n  alpha   = 16\n  dropout = 0.05\n  targets = [query, value]\n}",
    },
    BlockDef {
        keyword: "train",
        doc: "How to train: optimizer, schedule, batch, length, early stopping, seed and backend.",
        name: Presence::Forbidden,
        name_is_method: false,
        source: None,
        keys: &TRAIN_KEYS,
        sub_blocks: &[],
        singleton: true,
        dataset_keys: false,
        axes: false,
        example: "train {\n  epochs     = 3\n  batch      = 16\n  max_len    = 128\n  optimizer  = adamw(lr = 2e-4, weight_decay = 0.01)\n  schedule   = cosine(warmup = 10%)\n  early_stop = { metric = val.accuracy, patience = 2 }\n}",
    },
    BlockDef {
        keyword: "evaluate",
        doc: "What to measure after training, and on which split.",
        name: Presence::Forbidden,
        name_is_method: false,
        source: None,
        keys: &EVALUATE_KEYS,
        sub_blocks: &[],
        singleton: true,
        dataset_keys: false,
        axes: false,
        example: "evaluate { on = test, metrics = [accuracy, f1] }",
    },
    BlockDef {
        keyword: "sweep",
        doc: "A hyperparameter search. Each `path in values` entry is an axis over any setting of the recipe (`train.optimizer.lr`, `peft.rank`, or `peft` itself); the winner is picked on the validation split only.",
        name: Presence::Forbidden,
        name_is_method: false,
        source: None,
        keys: &SWEEP_KEYS,
        sub_blocks: &[],
        singleton: true,
        dataset_keys: false,
        axes: true,
        example: "sweep {\n  train.optimizer.lr in [1e-4, 3e-4, 1e-3]\n  peft.rank in [4, 8, 16]\n  budget = { steps = 200 }\n  pick = max(val.accuracy)\n}",
    },
    BlockDef {
        keyword: "output",
        doc: "Where the run folder goes, what is exported, how often checkpoints are written.",
        name: Presence::Forbidden,
        name_is_method: false,
        source: None,
        keys: &OUTPUT_KEYS,
        sub_blocks: &[],
        singleton: true,
        dataset_keys: false,
        axes: false,
        example: "output { dir = \"runs\", export = both }",
    },
];

pub fn block(keyword: &str) -> Option<&'static BlockDef> {
    BLOCKS.iter().find(|b| b.keyword == keyword)
}

static FULL_KEYS: [Key; 1] = [key(
    "freeze",
    Ty::List(&Ty::Str),
    Some("[]"),
    "Parts to keep frozen, matched like targets (quoted module names): `[\"embeddings\"]`, `[\"model.embed_tokens\"]`.",
)];

static LORA_KEYS: [Key; 11] = [
    key("rank", int(1), Some("8"), "The rank r of the update B·A."),
    key("alpha", positive(), Some("8"), "The scale numerator: the update is scaled by α/r (α/√r with `rslora`)."),
    key("dropout", Ty::Float { min: Some(0.0), min_exclusive: false, max: Some(1.0), max_exclusive: true }, Some("0"), "Dropout on the adapter's input."),
    key("targets", Ty::Targets, Some("the model family's attention projections"), "Modules to adapt, matched like PEFT: an entry matches a module-path suffix (`query` matches `encoder.layer.0.attention.self.query`); `regex(\"…\")` matches the full path; `all_linear` adapts every linear layer but the output head."),
    key("layers", Ty::List(&Ty::Int { min: 0, max: None }), Some("all layers"), "Only adapt these layer indices."),
    key("rank_for", Ty::ModuleMap, Some("{}"), "Per-module rank overrides: `{ value = 16 }`."),
    key("alpha_for", Ty::ModuleMap, Some("{}"), "Per-module alpha overrides."),
    key("rslora", Ty::Bool, Some("false"), "Rank-stabilised scaling α/√r."),
    key("dora", Ty::Bool, Some("false"), "Weight-decomposed LoRA: adds a trainable magnitude vector per output."),
    key("bias", Ty::Enum(&["none", "all", "lora_only"]), Some("none"), "Which biases of the base model train with the adapter and are saved in it, as in PEFT: `none`; `all` (every bias of the model); `lora_only` (the biases of the adapted layers)."),
    key("modules_to_save", Ty::List(&Ty::Str), Some("the new head, if any"), "Modules of the base model trained in full and saved with the adapter, as in PEFT: a module is saved when its name ends with an entry (`embeddings.LayerNorm`; `norm` saves every norm of a Llama). A new classification head is always saved."),
];

static PREFIX_KEYS: [Key; 3] = [
    req("virtual_tokens", int(1), "Number of trainable key/value prefix positions in every layer's attention."),
    key("projection", Ty::Bool, Some("false"), "Reparameterise the prefixes through an MLP during training (as in the paper; PEFT's `prefix_projection`)."),
    key("projection_hidden", int(1), Some("the model's hidden size"), "Hidden size of that MLP."),
];

static PROMPT_KEYS: [Key; 2] = [
    req(
        "virtual_tokens",
        int(1),
        "Number of trainable embeddings prepended to the input.",
    ),
    key(
        "init",
        Ty::Calls(PROMPT_INITS),
        Some("random"),
        "`random` or `text(\"Classify the sentiment:\")`.",
    ),
];

static ADAPTER_KEYS: [Key; 4] = [
    key(
        "style",
        Ty::Enum(&["houlsby", "pfeiffer"]),
        Some("pfeiffer"),
        "Houlsby: an adapter after attention and after the MLP; Pfeiffer: after the MLP only.",
    ),
    key("size", int(1), Some("64"), "Bottleneck width."),
    key(
        "activation",
        Ty::Enum(&["relu", "gelu", "silu"]),
        Some("relu"),
        "Nonlinearity between the projections.",
    ),
    key(
        "layers",
        Ty::List(&Ty::Int { min: 0, max: None }),
        Some("all layers"),
        "Only add adapters to these layer indices.",
    ),
];

static IA3_KEYS: [Key; 3] = [
    key("targets", Ty::Targets, Some("PEFT's: `[k_proj, v_proj, down_proj]` (Llama), `[key, value, output.dense]` (BERT, where `output.dense` is both the attention output and the MLP's down projection)"), "Modules whose activations are rescaled."),
    key("feedforward", Ty::Targets, Some("PEFT's: `[down_proj]` (Llama), `[output.dense]` (BERT: both `output.dense` modules)"), "Which of the targets are feed-forward modules (scaled on their input rather than their output)."),
    key("layers", Ty::List(&Ty::Int { min: 0, max: None }), Some("all layers"), "Only adapt these layer indices."),
];

pub static PEFT_METHODS: &[Method] = &[
    Method {
        name: "full",
        doc: "Full fine-tuning: every parameter is trained, except the parts named in `freeze`.",
        keys: &FULL_KEYS,
    },
    Method {
        name: "lora",
        doc: "LoRA: y = Wx + s·B(A(dropout(x))), A Kaiming-uniform, B zeros, s = α/r. With `rslora` and `dora` variants.",
        keys: &LORA_KEYS,
    },
    Method {
        name: "prefix",
        doc: "Prefix tuning: trainable key/value prefixes in every attention layer.",
        keys: &PREFIX_KEYS,
    },
    Method {
        name: "prompt",
        doc: "Prompt tuning: trainable input embeddings prepended to every example.",
        keys: &PROMPT_KEYS,
    },
    Method {
        name: "adapter",
        doc: "Bottleneck adapters (Houlsby or Pfeiffer): down-projection, nonlinearity, up-projection initialised near identity, residual. Saved in ft's own documented format (PEFT has no such type).",
        keys: &ADAPTER_KEYS,
    },
    Method {
        name: "ia3",
        doc: "IA3: learned vectors that rescale keys, values and the MLP's intermediate activation.",
        keys: &IA3_KEYS,
    },
];

pub fn method(name: &str) -> Option<&'static Method> {
    PEFT_METHODS.iter().find(|m| m.name == name)
}
