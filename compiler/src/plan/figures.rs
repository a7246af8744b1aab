//! The plan figures shown when hovering `peft` or `train`: how many
//! parameters the chosen PEFT method trains on the real model, the model's
//! total, and a memory estimate.
//!
//! The arithmetic is pure (a [`Shape`] of the model and a [`Method`] in,
//! [`Figures`] out) so it is unit-tested without model files; `plan`
//! builds those from the compiler's types. The counts follow Hugging Face
//! PEFT, so a user can compare them with `print_trainable_parameters()`.

use ft_formats::{Family, ModelInventory};

/// Bytes per parameter of f32 weights.
pub const WEIGHT_BYTES: u64 = 4;
/// Bytes per trainable parameter beyond its weight: the gradient plus
/// AdamW's two moments, all f32.
pub const TRAIN_BYTES: u64 = 12;

/// A linear layer of the model: its module path and dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    pub path: String,
    pub layer: Option<usize>,
    pub in_features: u64,
    pub out_features: u64,
}

/// What the figures need to know about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub family: Family,
    /// Parameters of the pretrained model.
    pub params: u64,
    pub hidden: u64,
    /// Width of one layer's keys (or values): `kv_heads × head_dim`, less
    /// than `hidden` with grouped-query attention.
    pub kv_dim: u64,
    pub layers: u64,
    pub linears: Vec<Linear>,
    /// Every parameter tensor: module path (without `.weight`/`.bias`) and
    /// element count, for `full { freeze = […] }`.
    pub tensors: Vec<(String, u64)>,
}

/// A module selector, matched like PEFT's `target_modules`.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Matches a module path equal to it or ending in `.` + it.
    Suffix(String),
    /// Matches the full module path.
    Regex(String),
    /// Every linear layer but the output head.
    AllLinear,
}

/// A PEFT method with the settings that change its size.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Full {
        freeze: Vec<String>,
    },
    Lora {
        rank: u64,
        /// Per-module rank overrides (`rank_for = { value = 16 }`).
        rank_for: Vec<(String, u64)>,
        targets: Option<Vec<Target>>,
        layers: Option<Vec<usize>>,
        dora: bool,
    },
    Ia3 {
        targets: Option<Vec<Target>>,
        feedforward: Option<Vec<Target>>,
        layers: Option<Vec<usize>>,
    },
    Prompt {
        virtual_tokens: u64,
    },
    Prefix {
        virtual_tokens: u64,
        /// With `projection`: the MLP's hidden width.
        projection: Option<u64>,
    },
    Adapter {
        size: u64,
        houlsby: bool,
        layers: Option<Vec<usize>>,
    },
}

/// The figures of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Parameters updated by the optimizer (method plus new head).
    pub trainable: u64,
    /// Parameters of the trained model: pretrained, plus the head and any
    /// adapter weights added.
    pub total: u64,
    /// Of `trainable`, the new classification head.
    pub head: u64,
    /// Linear modules the method attaches to (LoRA, IA3).
    pub modules: usize,
    /// f32 weights of the whole model.
    pub weight_bytes: u64,
    /// Gradients and AdamW state of the trainable parameters.
    pub train_bytes: u64,
}

impl Figures {
    pub fn memory_bytes(&self) -> u64 {
        self.weight_bytes + self.train_bytes
    }
    /// Trainable share of the total, in percent.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.trainable as f64 / self.total as f64
        }
    }
}

impl Target {
    pub fn matches(&self, path: &str, family: Family) -> bool {
        match self {
            Target::Suffix(s) => path == s || path.ends_with(&format!(".{s}")),
            Target::Regex(r) => {
                regex::Regex::new(&format!("^(?:{r})$")).is_ok_and(|re| re.is_match(path))
            }
            Target::AllLinear => !is_output_head(path, family),
        }
    }
}

fn is_output_head(path: &str, family: Family) -> bool {
    match family {
        Family::Llama => path == "lm_head",
        _ => path == "classifier" || path.starts_with("cls."),
    }
}

fn suffixes(names: &[&str]) -> Vec<Target> {
    names
        .iter()
        .map(|n| Target::Suffix(n.to_string()))
        .collect()
}

/// LoRA's default targets: the family's query and value projections (as
/// PEFT's defaults).
pub fn default_lora_targets(family: Family) -> Vec<Target> {
    match family {
        Family::Llama => suffixes(&["q_proj", "v_proj"]),
        Family::Bert => suffixes(&["query", "value"]),
    }
}

/// IA3's defaults: keys, values and the feed-forward output, of which the
/// last is a feed-forward module.
pub fn default_ia3_targets(family: Family) -> (Vec<Target>, Vec<Target>) {
    match family {
        Family::Llama => (
            suffixes(&["k_proj", "v_proj", "down_proj"]),
            suffixes(&["down_proj"]),
        ),
        Family::Bert => (
            suffixes(&["key", "value", "output.dense"]),
            suffixes(&["output.dense"]),
        ),
    }
}

fn in_layers(l: &Linear, layers: &Option<Vec<usize>>) -> bool {
    match (layers, l.layer) {
        (Some(set), Some(i)) => set.contains(&i),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Computes the figures; `head_labels` is the label count of a new
/// `classify` head (trained in every method, as PEFT's `modules_to_save`).
pub fn compute(shape: &Shape, method: &Method, head_labels: Option<u64>) -> Figures {
    // BERT's `classifier` has a bias; Llama's `score` has none, and a
    // Llama classifier drops the LM head (an untied one is not loaded).
    let head = head_labels.map_or(0, |n| match shape.family {
        Family::Llama => n * shape.hidden,
        _ => n * shape.hidden + n,
    });
    let dropped: u64 = match (head_labels, shape.family) {
        (Some(_), Family::Llama) => shape
            .tensors
            .iter()
            .filter(|(path, _)| path == "lm_head")
            .map(|(_, n)| n)
            .sum(),
        _ => 0,
    };
    let shape = &Shape {
        params: shape.params - dropped,
        tensors: shape
            .tensors
            .iter()
            .filter(|(path, _)| dropped == 0 || path != "lm_head")
            .cloned()
            .collect(),
        ..shape.clone()
    };
    let mut modules = 0;
    // (trainable by the method, parameters added to the model)
    let (trainable, added) = match method {
        Method::Full { freeze } => {
            let frozen: u64 = shape
                .tensors
                .iter()
                .filter(|(path, _)| freeze.iter().any(|f| frozen_by(path, f)))
                .map(|(_, n)| n)
                .sum();
            (shape.params.saturating_sub(frozen), 0)
        }
        Method::Lora {
            rank,
            rank_for,
            targets,
            layers,
            dora,
        } => {
            let targets = targets
                .clone()
                .unwrap_or_else(|| default_lora_targets(shape.family));
            let mut n = 0;
            for l in &shape.linears {
                if !in_layers(l, layers)
                    || !targets.iter().any(|t| t.matches(&l.path, shape.family))
                {
                    continue;
                }
                let r = rank_for
                    .iter()
                    .find(|(m, _)| Target::Suffix(m.clone()).matches(&l.path, shape.family))
                    .map_or(*rank, |(_, r)| *r);
                modules += 1;
                n += r * (l.in_features + l.out_features);
                if *dora {
                    n += l.out_features;
                }
            }
            (n, n)
        }
        Method::Ia3 {
            targets,
            feedforward,
            layers,
        } => {
            let (dt, df) = default_ia3_targets(shape.family);
            let targets = targets.clone().unwrap_or(dt);
            let ff = feedforward.clone().unwrap_or(df);
            let mut n = 0;
            for l in &shape.linears {
                if !in_layers(l, layers)
                    || !targets.iter().any(|t| t.matches(&l.path, shape.family))
                {
                    continue;
                }
                modules += 1;
                n += if ff.iter().any(|t| t.matches(&l.path, shape.family)) {
                    l.in_features
                } else {
                    l.out_features
                };
            }
            (n, n)
        }
        Method::Prompt { virtual_tokens } => {
            let n = virtual_tokens * shape.hidden;
            (n, n)
        }
        Method::Prefix {
            virtual_tokens,
            projection,
        } => {
            // PEFT sizes the prefixes by the key/value width (GQA aware);
            // with `prefix_projection` it trains the embedding and the MLP
            // that makes the prefixes from it.
            let out = 2 * shape.layers * shape.kv_dim;
            let n = match projection {
                None => virtual_tokens * out,
                Some(p) => {
                    // 0: the default width, the model's hidden size.
                    let p = if *p == 0 { shape.hidden } else { *p };
                    virtual_tokens * shape.hidden + (shape.hidden * p + p) + (p * out + out)
                }
            };
            (n, n)
        }
        Method::Adapter {
            size,
            houlsby,
            layers,
        } => {
            let per = shape.hidden * size + size + size * shape.hidden + shape.hidden;
            let count = match layers {
                Some(set) => set.iter().filter(|&&i| (i as u64) < shape.layers).count() as u64,
                None => shape.layers,
            };
            let n = per * count * if *houlsby { 2 } else { 1 };
            (n, n)
        }
    };
    let trainable = trainable + head;
    let total = shape.params + added + head;
    Figures {
        trainable,
        total,
        head,
        modules,
        weight_bytes: total * WEIGHT_BYTES,
        train_bytes: trainable * TRAIN_BYTES,
    }
}

/// Base-model parameters a LoRA or IA3 adapter trains besides its own
/// (PEFT's `bias` and `modules_to_save`, the new head apart), counted from
/// the model's tensors as the runtime selects them.
pub fn saved_base(inv: &ModelInventory, method: &ft_plan::Method) -> u64 {
    use ft_plan::method::LoraBias;
    let Some(ft_plan::method::BaseParams {
        adapted,
        bias,
        modules_to_save: to_save,
    }) = method.base_params()
    else {
        return 0;
    };
    let suffix = |path: &str, s: &str| path == s || path.ends_with(&format!(".{s}"));
    inv.tensors
        .iter()
        .filter(|t| !t.dtype.starts_with('I') && !t.dtype.starts_with('U'))
        .filter(|t| {
            let (module, param) = t.hf_name.rsplit_once('.').unwrap_or(("", &t.hf_name));
            let parts: Vec<&str> = module.split('.').collect();
            let saved = (1..=parts.len()).any(|n| {
                let ancestor = parts[..n].join(".");
                // PEFT's rule: the module name ends with the entry.
                to_save.iter().any(|m| ancestor.ends_with(m))
            });
            saved
                || match bias {
                    LoraBias::None => false,
                    LoraBias::All => param == "bias",
                    LoraBias::LoraOnly => {
                        param == "bias" && adapted.iter().any(|a| suffix(module, a))
                    }
                }
        })
        .map(|t| t.shape.iter().product::<u64>())
        .sum()
}

/// `freeze = [embeddings]` freezes every tensor under a module whose path
/// contains that component sequence.
fn frozen_by(path: &str, part: &str) -> bool {
    path == part
        || path.starts_with(&format!("{part}."))
        || path.ends_with(&format!(".{part}"))
        || path.contains(&format!(".{part}."))
}

/// The shape of a model from its inventory.
pub fn shape_of(inv: &ModelInventory) -> Shape {
    let c = &inv.config;
    Shape {
        family: c.family,
        params: inv.params,
        hidden: c.hidden_size as u64,
        kv_dim: (c.num_kv_heads * c.head_dim) as u64,
        layers: c.num_layers as u64,
        linears: inv
            .linears
            .iter()
            .map(|l| Linear {
                path: l.path.clone(),
                layer: l.layer,
                in_features: l.in_features,
                out_features: l.out_features,
            })
            .collect(),
        tensors: inv
            .tensors
            .iter()
            .filter(|t| !t.dtype.starts_with('I') && !t.dtype.starts_with('U'))
            .map(|t| {
                let path = t
                    .hf_name
                    .strip_suffix(".weight")
                    .or_else(|| t.hf_name.strip_suffix(".bias"))
                    .unwrap_or(&t.hf_name);
                (path.to_string(), t.shape.iter().product())
            })
            .collect(),
    }
}

/// The figures' view of a Plan's target pattern.
pub fn target_of(t: &ft_plan::TargetPattern) -> Target {
    match t {
        ft_plan::TargetPattern::Suffix(s) => Target::Suffix(s.clone()),
        ft_plan::TargetPattern::Regex(r) => Target::Regex(r.clone()),
        ft_plan::TargetPattern::AllLinear => Target::AllLinear,
    }
}

/// The figures' view of a Plan's method.
pub fn method_of_plan(m: &ft_plan::Method) -> Method {
    use ft_plan::Method as P;
    let target = target_of;
    match m {
        P::Full { freeze } => Method::Full {
            freeze: freeze
                .iter()
                .map(|t| match t {
                    ft_plan::TargetPattern::Suffix(s) | ft_plan::TargetPattern::Regex(s) => {
                        s.clone()
                    }
                    ft_plan::TargetPattern::AllLinear => String::new(),
                })
                .collect(),
        },
        P::Lora(l) => Method::Lora {
            rank: l.rank as u64,
            rank_for: l
                .rank_for
                .iter()
                .map(|(k, v)| (k.clone(), *v as u64))
                .collect(),
            targets: Some(l.targets.iter().map(target).collect()),
            layers: l.layers.clone(),
            dora: l.dora,
        },
        P::Ia3 {
            targets,
            feedforward,
            layers,
            ..
        } => Method::Ia3 {
            targets: Some(targets.iter().map(target).collect()),
            feedforward: Some(feedforward.iter().map(target).collect()),
            layers: layers.clone(),
        },
        P::Prompt { virtual_tokens, .. } => Method::Prompt {
            virtual_tokens: *virtual_tokens as u64,
        },
        P::Prefix {
            virtual_tokens,
            projection,
            projection_hidden,
        } => Method::Prefix {
            virtual_tokens: *virtual_tokens as u64,
            projection: projection.then(|| projection_hidden.map_or(0, |h| h as u64)),
        },
        P::Adapter {
            style,
            size,
            layers,
            ..
        } => Method::Adapter {
            size: *size as u64,
            houlsby: *style == ft_plan::method::AdapterStyle::Houlsby,
            layers: layers.clone(),
        },
    }
}

/// `74,498`: thousands separated, as people read counts.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `22.7M`, `135M`, `1.2B`: a count at a glance.
pub fn short(n: u64) -> String {
    let f = n as f64;
    let (v, unit) = if f >= 1e9 {
        (f / 1e9, "B")
    } else if f >= 1e6 {
        (f / 1e6, "M")
    } else if f >= 1e3 {
        (f / 1e3, "K")
    } else {
        return n.to_string();
    };
    if v >= 100.0 {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.1}{unit}")
    }
}

/// `86.4 MiB`.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    let gib = 1024.0 * 1024.0 * 1024.0;
    if f >= gib {
        format!("{:.2} GiB", f / gib)
    } else {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MiniLM-L6 (all-MiniLM-L6-v2): 6 BERT layers, hidden 384, FFN 1536.
    fn minilm() -> Shape {
        let mut linears = Vec::new();
        for i in 0..6 {
            let p = format!("encoder.layer.{i}");
            for (name, inf, outf) in [
                ("attention.self.query", 384, 384),
                ("attention.self.key", 384, 384),
                ("attention.self.value", 384, 384),
                ("attention.output.dense", 384, 384),
                ("intermediate.dense", 384, 1536),
                ("output.dense", 1536, 384),
            ] {
                linears.push(Linear {
                    path: format!("{p}.{name}"),
                    layer: Some(i),
                    in_features: inf,
                    out_features: outf,
                });
            }
        }
        Shape {
            family: Family::Bert,
            params: 22_713_216,
            hidden: 384,
            kv_dim: 384,
            layers: 6,
            linears,
            tensors: vec![("embeddings.word_embeddings".into(), 30522 * 384)],
        }
    }

    /// SmolLM2-135M: 30 Llama layers, hidden 576, 9 heads of 64, 3 KV heads.
    fn smollm2() -> Shape {
        let mut linears = Vec::new();
        for i in 0..30 {
            for (name, inf, outf) in [
                ("self_attn.q_proj", 576, 576),
                ("self_attn.k_proj", 576, 192),
                ("self_attn.v_proj", 576, 192),
                ("self_attn.o_proj", 576, 576),
                ("mlp.gate_proj", 576, 1536),
                ("mlp.up_proj", 576, 1536),
                ("mlp.down_proj", 1536, 576),
            ] {
                linears.push(Linear {
                    path: format!("model.layers.{i}.{name}"),
                    layer: Some(i),
                    in_features: inf,
                    out_features: outf,
                });
            }
        }
        Shape {
            family: Family::Llama,
            params: 134_515_008,
            hidden: 576,
            kv_dim: 192,
            layers: 30,
            linears,
            tensors: Vec::new(),
        }
    }

    fn lora(rank: u64, targets: &[&str]) -> Method {
        Method::Lora {
            rank,
            rank_for: Vec::new(),
            targets: Some(suffixes(targets)),
            layers: None,
            dora: false,
        }
    }

    #[test]
    fn minilm_lora_with_classify_head() {
        let f = compute(&minilm(), &lora(8, &["query", "value"]), Some(2));
        assert_eq!(f.head, 770);
        assert_eq!(f.trainable, 73_728 + 770);
        assert_eq!(f.trainable, 74_498);
        assert_eq!(f.modules, 12);
        assert_eq!(f.total, 22_713_216 + 74_498);
        assert_eq!(f.weight_bytes, f.total * 4);
        assert_eq!(f.train_bytes, 74_498 * 12);
    }

    #[test]
    fn smollm2_lora_q_v() {
        let f = compute(&smollm2(), &lora(8, &["q_proj", "v_proj"]), None);
        assert_eq!(f.trainable, 460_800);
        assert_eq!(f.modules, 60);
        // The defaults for Llama are the same projections.
        let d = Method::Lora {
            rank: 8,
            rank_for: Vec::new(),
            targets: None,
            layers: None,
            dora: false,
        };
        assert_eq!(compute(&smollm2(), &d, None).trainable, 460_800);
    }

    #[test]
    fn lora_variants() {
        let s = smollm2();
        // DoRA adds one magnitude per output: 30 × (576 + 192).
        let dora = Method::Lora {
            rank: 8,
            rank_for: Vec::new(),
            targets: Some(suffixes(&["q_proj", "v_proj"])),
            layers: Some(vec![0, 1]),
            dora: true,
        };
        assert_eq!(compute(&s, &dora, None).trainable, 2 * (15_360 + 768));
        // A per-module rank.
        let rf = Method::Lora {
            rank: 8,
            rank_for: vec![("v_proj".into(), 16)],
            targets: Some(suffixes(&["q_proj", "v_proj"])),
            layers: None,
            dora: false,
        };
        assert_eq!(compute(&s, &rf, None).trainable, 30 * (8 * 1152 + 16 * 768));
        // all_linear skips nothing in the layers (lm_head is not listed).
        let all = Method::Lora {
            rank: 1,
            rank_for: Vec::new(),
            targets: Some(vec![Target::AllLinear]),
            layers: None,
            dora: false,
        };
        let per_layer = 1152 + 768 + 768 + 1152 + 2112 * 3;
        assert_eq!(compute(&s, &all, None).trainable, 30 * per_layer);
        // A regex matches the full path.
        let re = Method::Lora {
            rank: 2,
            rank_for: Vec::new(),
            targets: Some(vec![Target::Regex(
                r"model\.layers\.0\.self_attn\.q_proj".into(),
            )]),
            layers: None,
            dora: false,
        };
        assert_eq!(compute(&s, &re, None).trainable, 2 * 1152);
    }

    #[test]
    fn other_methods() {
        let s = smollm2();
        assert_eq!(
            compute(&s, &Method::Prompt { virtual_tokens: 20 }, None).trainable,
            20 * 576
        );
        assert_eq!(
            compute(
                &s,
                &Method::Prefix {
                    virtual_tokens: 10,
                    projection: None
                },
                None
            )
            .trainable,
            10 * 2 * 30 * 192
        );
        let full = compute(&s, &Method::Full { freeze: vec![] }, None);
        assert_eq!(full.trainable, s.params);
        assert_eq!(full.total, s.params);
        let ia3 = Method::Ia3 {
            targets: None,
            feedforward: None,
            layers: None,
        };
        // k (192) + v (192) outputs, down_proj's input (1536), per layer.
        assert_eq!(compute(&s, &ia3, None).trainable, 30 * (192 + 192 + 1536));
        let ad = Method::Adapter {
            size: 64,
            houlsby: false,
            layers: None,
        };
        assert_eq!(
            compute(&s, &ad, None).trainable,
            30 * (576 * 64 + 64 + 64 * 576 + 576)
        );
    }

    #[test]
    fn prefix_counts_equal_peft() {
        // PEFT 0.21.2 on MiniLM with a 2-label head (peft_reference.py):
        // 37,634 plain and 328,002 with a 64-wide projection, for 8 tokens.
        let m = minilm();
        let plain = Method::Prefix {
            virtual_tokens: 8,
            projection: None,
        };
        assert_eq!(compute(&m, &plain, Some(2)).trainable, 37_634);
        let proj = Method::Prefix {
            virtual_tokens: 8,
            projection: Some(64),
        };
        assert_eq!(compute(&m, &proj, Some(2)).trainable, 328_002);
    }

    #[test]
    fn full_with_freeze() {
        let m = minilm();
        let f = compute(
            &m,
            &Method::Full {
                freeze: vec!["embeddings".into()],
            },
            Some(2),
        );
        assert_eq!(f.trainable, m.params - 30522 * 384 + 770);
    }

    #[test]
    fn formatting() {
        assert_eq!(group(74_498), "74,498");
        assert_eq!(group(460_800), "460,800");
        assert_eq!(group(12), "12");
        assert_eq!(group(1_000_000), "1,000,000");
        assert_eq!(short(22_713_216), "22.7M");
        assert_eq!(short(134_515_008), "135M");
        assert_eq!(short(999), "999");
        assert_eq!(bytes(1024 * 1024 * 3 / 2), "1.5 MiB");
    }
}
