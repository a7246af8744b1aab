//! The memory check: a recipe whose training would not fit in the memory
//! this machine has is reported before the run starts (and before its data
//! is tokenized), with the estimate `ft plan` prints, the memory found, and
//! a batch that would fit.
//!
//! The estimate is the Plan summary's (weights, gradients and optimizer
//! state, activations at `batch × max_len`). The available memory comes
//! from a [`MemoryProbe`] so that tests (and `FT_AVAILABLE_MEMORY`) can fix
//! it; the system probe reads `/proc/meminfo` and the cgroup limit. A CUDA
//! run's memory is the GPU's, which only the runtime can ask for, so
//! `backend = cuda` recipes are not checked here.

use ft_plan::{Device, Method, Plan, TrainData};

use crate::check::blocks::CBlock;
use crate::diagnostics::Diagnostic;
use crate::driver::Analysis;

use super::figures::bytes;
use super::summary::{self, Summary};

crate::declare_codes! {
    /// Training would need more memory than this machine has available.
    ///
    /// `ft plan` estimates the memory of a training step: the model's f32
    /// weights, the gradients and AdamW moments of the trainable parameters,
    /// and the activations kept for the backward pass at `batch × max_len`
    /// (they grow with the batch, and faster than linearly with `max_len`
    /// through the attention scores). When that estimate exceeds the memory
    /// available — `MemAvailable` in `/proc/meminfo`, or the cgroup's
    /// `memory.max` when it is lower — the run would likely be killed or
    /// swap, so this is reported before it starts.
    ///
    /// What to do, cheapest first:
    ///
    /// - lower `batch` and raise `accumulate` by the same factor: the
    ///   optimizer sees the same examples per step, and activations shrink
    ///   with the micro-batch (the help line gives a batch that fits);
    /// - lower `max_len` (check `ft data` for how many rows it truncates);
    /// - `gradient_checkpointing = true` in `train`: each layer's
    ///   activations are recomputed in the backward pass instead of kept,
    ///   so only one layer's are held at a time (plus each layer's input),
    ///   for one more forward pass of the layers per step (the help line
    ///   says when this alone makes the step fit);
    /// - train fewer parameters: `peft lora { … }` instead of `peft full`
    ///   keeps no gradients or optimizer state for the frozen weights;
    /// - a smaller model, when the weights alone do not fit.
    ///
    /// The estimate is an estimate:
    /// set `FT_AVAILABLE_MEMORY` (for example `FT_AVAILABLE_MEMORY=64GiB`)
    /// to check a recipe against another machine's memory. `backend = cuda`
    /// recipes are not checked: the GPU's memory is only known at run time.
    MEMORY_EXCEEDED = "FT0801", "training may not fit in memory";
}

/// Where the available memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryProbe {
    /// `FT_AVAILABLE_MEMORY` when set, otherwise this machine's
    /// (`/proc/meminfo`, cgroup limit).
    #[default]
    System,
    /// A fixed amount, in bytes (tests; checking for another machine).
    Fixed(u64),
    /// No memory check.
    Off,
}

/// Memory found by a probe, and where it was read (shown in the note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    pub source: String,
}

/// The environment variable that overrides the system probe.
pub const ENV: &str = "FT_AVAILABLE_MEMORY";

impl MemoryProbe {
    pub fn available(self) -> Option<Available> {
        match self {
            MemoryProbe::Off => None,
            MemoryProbe::Fixed(bytes) => Some(Available {
                bytes,
                source: "as given".into(),
            }),
            MemoryProbe::System => {
                if let Some(bytes) = std::env::var(ENV).ok().and_then(|v| parse_size(&v)) {
                    return Some(Available {
                        bytes,
                        source: format!("from {ENV}"),
                    });
                }
                system()
            }
        }
    }
}

/// This machine's available memory: `MemAvailable` (memory that can be
/// given to a new process without swapping, page cache included), lowered
/// to the cgroup's limit when one is set (containers, CI runners), since
/// the kernel kills the process at that limit whatever the host has free.
fn system() -> Option<Available> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let host = meminfo.as_deref().and_then(meminfo_available);
    let cgroup = cgroup_limit();
    match (host, cgroup) {
        (Some(h), Some(c)) if c < h => Some(Available {
            bytes: c,
            source: "the cgroup's memory limit".into(),
        }),
        (Some(h), _) => Some(Available {
            bytes: h,
            source: "MemAvailable in /proc/meminfo".into(),
        }),
        (None, Some(c)) => Some(Available {
            bytes: c,
            source: "the cgroup's memory limit".into(),
        }),
        (None, None) => None,
    }
}

/// `MemAvailable` (kernels since 3.14), else `MemTotal`, in bytes.
fn meminfo_available(text: &str) -> Option<u64> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    field("MemAvailable").or_else(|| field("MemTotal"))
}

/// The memory limit of this process's cgroup: v2's `memory.max` (under the
/// path `/proc/self/cgroup` names, or at the root inside a container's
/// namespace), else v1's `memory.limit_in_bytes`. "max" and v1's huge
/// sentinel mean no limit.
fn cgroup_limit() -> Option<u64> {
    let mut candidates = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") {
        if let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) {
            candidates.push(format!(
                "/sys/fs/cgroup{}/memory.max",
                path.trim_end_matches('/')
            ));
        }
    }
    candidates.push("/sys/fs/cgroup/memory.max".into());
    candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".into());
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| parse_limit(&t))
}

fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    // cgroup v1 writes "no limit" as the largest page-aligned i64.
    (v < 1 << 60).then_some(v)
}

/// `17179869184`, `16GiB`, `16G`, `512 MiB`, `1.5TiB`: bytes. Units are
/// binary, as `free` and `ft plan` print them.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then(|| (n * (1u64 << shift) as f64) as u64)
}

/// The warning for an analysis without errors whose CPU training would not
/// fit in what `probe` reports; `None` when it fits or cannot be estimated
/// (no model inventory, a recipe that does not lower).
pub fn check(a: &Analysis, probe: MemoryProbe) -> Option<Diagnostic> {
    if a.has_errors() || probe == MemoryProbe::Off {
        return None;
    }
    let plan = a.plan.as_ref()?.as_ref().ok()?;
    if plan.train.device != Device::Cpu {
        return None;
    }
    let available = probe.available()?;
    let (s, plan_at, stage) = worst(plan, a)?;
    let at = match stage {
        Some(name) => a
            .recipe
            .one("curriculum")
            .and_then(|c| c.stages.iter().find(|b| b.name_str() == Some(name))),
        None => a.recipe.one("train"),
    };
    warning(&plan_at, &s, &available, at, a.recipe.model(), stage)
}

/// The estimate that must fit: a curriculum stage may train at its own
/// batch and length, so the worst of the train block's and the stages',
/// with the Plan at that batch and length and the stage's name.
pub fn worst<'a>(plan: &'a Plan, a: &Analysis) -> Option<(Summary, Plan, Option<&'a str>)> {
    let mut worst = (summary::estimate(plan, a)?, plan.clone(), None);
    if let TrainData::Curriculum { curriculum, .. } = &plan.data {
        for stage in &curriculum.stages {
            if stage.batch.is_none() && stage.max_len.is_none() {
                continue;
            }
            let mut p = plan.clone();
            p.train.batch = stage.batch.unwrap_or(plan.train.batch);
            p.train.max_len = stage.max_len.unwrap_or(plan.train.max_len);
            let s = summary::estimate(&p, a)?;
            if s.memory_bytes() > worst.0.memory_bytes() {
                worst = (s, p, Some(stage.name.as_str()));
            }
        }
    }
    Some(worst)
}

/// The largest micro-batch whose estimate fits in `available`, at the same
/// `max_len`: activations are proportional to the batch, the rest is not.
pub fn batch_that_fits(plan: &Plan, s: &Summary, available: u64) -> u64 {
    let per_example = s.activation_bytes / (plan.train.batch.max(1) as u64);
    if per_example == 0 || available <= s.fixed_memory_bytes() {
        return 0;
    }
    (available - s.fixed_bytes - s.figures.weight_bytes - s.figures.train_bytes) / per_example
}

/// The diagnostic itself (pure, for a given estimate and memory). `train`
/// is the block whose `batch` and `max_len` the plan trains at (the train
/// block, or the curriculum stage named by `stage`).
pub fn warning(
    plan: &Plan,
    s: &Summary,
    available: &Available,
    train: Option<&CBlock>,
    model: Option<&CBlock>,
    stage: Option<&str>,
) -> Option<Diagnostic> {
    let need = s.memory_bytes();
    if need <= available.bytes {
        return None;
    }
    let t = &plan.train;
    let entry = |key: &str| {
        train
            .and_then(|b| b.keys.get(key))
            .map(|e| e.key_span.join(e.value.span))
    };
    // Point at what the user can change: `batch` (or `max_len`) when
    // written, else the train block (defaults apply), else the model.
    let (span, file) = match (entry("batch").or(entry("max_len")), train, model) {
        (Some(span), Some(b), _) => (span, b.file),
        (None, Some(b), _) => (b.keyword.span, b.file),
        (None, None, Some(m)) => (m.keyword.span, m.file),
        _ => (Default::default(), 0),
    };
    let mut d = Diagnostic::warning(
        &MEMORY_EXCEEDED,
        span,
        format!(
            "training needs ≈ {}, more than the {} of memory available",
            bytes(need),
            bytes(available.bytes)
        ),
    )
    .in_file(file)
    .label(format!(
        "activations ≈ {} at batch {} × max_len {}{}",
        bytes(s.activation_bytes),
        t.batch,
        t.max_len,
        stage
            .map(|n| format!(" in stage `{n}`"))
            .unwrap_or_default()
    ));
    if let (Some(span), Some(b)) = (entry("max_len"), train) {
        if entry("batch").is_some() {
            d = d.secondary_in(b.file, span, "activations grow with this");
        }
    }
    d = d
        .note(format!(
            "estimate: runtime and other models {}, weights {}, gradients + optimizer {}, activations {}",
            bytes(s.fixed_bytes),
            bytes(s.figures.weight_bytes),
            bytes(s.figures.train_bytes),
            bytes(s.activation_bytes)
        ))
        .note(format!(
            "available: {} ({})",
            bytes(available.bytes),
            available.source
        ));
    let fits = batch_that_fits(plan, s, available.bytes);
    let effective = (t.batch * t.accumulate) as u64;
    let help = if fits >= 1 {
        // With the accumulate that keeps at least as many examples per
        // optimizer step.
        format!(
            "use `batch = {fits}` and `accumulate = {}`, or lower `max_len`",
            effective.div_ceil(fits)
        )
    } else if s.fixed_memory_bytes() > available.bytes {
        match plan.method {
            Method::Full { .. } => format!(
                "the weights, gradients and optimizer state alone need {}: train an adapter \
                 (`peft lora {{ … }}`) instead of every parameter, or use a smaller model",
                bytes(s.fixed_memory_bytes())
            ),
            _ => format!(
                "the weights alone need {}: use a smaller model",
                bytes(s.figures.weight_bytes)
            ),
        }
    } else {
        "even one example does not fit at this length: lower `max_len`".into()
    };
    // Recomputing the layers, when that alone fits, comes first: the
    // examples per step and the length stay as written.
    let recomputed = s.memory_bytes_with(s.recomputed_activation_bytes);
    let help = if !t.gradient_checkpointing && recomputed <= available.bytes {
        let otherwise = if fits >= 1 {
            help
        } else {
            "lower `max_len`".into()
        };
        format!(
            "set `gradient_checkpointing = true` (≈ {} in all: layers are recomputed in the \
             backward pass, about a third more compute), or {otherwise}",
            bytes(recomputed)
        )
    } else {
        help
    };
    Some(d.help(help))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("16GiB"), Some(16 << 30));
        assert_eq!(parse_size(" 16 G "), Some(16 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5TiB"), Some(3 << 39));
        assert_eq!(parse_size("4k"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:       24567890 kB\nMemFree:         4000000 kB\n\
                    MemAvailable:   22000000 kB\nBuffers:  1 kB\n";
        assert_eq!(meminfo_available(text), Some(22_000_000 * 1024));
        // Old kernels have no MemAvailable: the total is the best we know.
        assert_eq!(
            meminfo_available("MemTotal: 1000 kB\nMemFree: 10 kB\n"),
            Some(1000 * 1024)
        );
        assert_eq!(meminfo_available("nonsense"), None);
    }

    #[test]
    fn cgroup_limits() {
        assert_eq!(parse_limit("8589934592\n"), Some(8 << 30));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
    }

    #[test]
    fn probes() {
        assert_eq!(MemoryProbe::Off.available(), None);
        assert_eq!(MemoryProbe::Fixed(5).available().map(|a| a.bytes), Some(5));
    }
}
