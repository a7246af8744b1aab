//! Counter-based randomness for PEFT: every random number is a pure function
//! of `(seed, stream, counter)`, never of Burn's global RNG or of how many
//! numbers were drawn before. A dropout mask therefore depends only on the
//! seed, the optimizer step, the micro-batch and the module, so a run resumed
//! at step N draws exactly the masks an uninterrupted run draws at step N;
//! and adapter initialisation does not shift when another module is added.

/// What a forward pass needs to know about the training step: whether
/// dropout is active and, if so, which masks to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardCtx {
    /// Training mode (dropout on). Evaluation and inference: `false`.
    pub train: bool,
    /// The run's seed (the Plan's `seed`).
    pub seed: u64,
    /// The optimizer step being computed (0-based).
    pub step: u64,
    /// The micro-batch within the step (gradient accumulation), 0 otherwise.
    pub micro: u64,
    /// Set when the tensors of this forward hold only the first positions
    /// of their sequences ([`KeptPositions`]); `None` for whole sequences.
    pub kept: Option<KeptPositions>,
}

/// A forward over the first `kept` positions of sequences of `of`
/// positions: a classifier's last layer computes only the position its
/// head reads. Dropout then draws, for each element, the mask value that
/// element has in the whole-sequence computation, so the result does not
/// depend on the shortcut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptPositions {
    pub kept: usize,
    pub of: usize,
}

impl KeptPositions {
    /// The whole-sequence counter of element `i` of a row-major tensor
    /// `[.., kept, width]`.
    #[inline(always)]
    pub fn counter(self, i: u64, width: u64) -> u64 {
        let (row, col) = (i / width, i % width);
        let (seq, pos) = (row / self.kept as u64, row % self.kept as u64);
        (seq * self.of as u64 + pos) * width + col
    }
}

impl ForwardCtx {
    /// Evaluation / inference: no dropout.
    pub const EVAL: ForwardCtx = ForwardCtx {
        train: false,
        seed: 0,
        step: 0,
        micro: 0,
        kept: None,
    };

    pub fn eval() -> Self {
        Self::EVAL
    }

    pub fn train(seed: u64, step: u64) -> Self {
        ForwardCtx {
            train: true,
            seed,
            step,
            micro: 0,
            kept: None,
        }
    }

    pub fn with_micro(self, micro: u64) -> Self {
        ForwardCtx { micro, ..self }
    }

    /// This context for a forward over the first `kept` of `of` positions.
    pub fn with_kept(self, kept: usize, of: usize) -> Self {
        ForwardCtx {
            kept: Some(KeptPositions { kept, of }),
            ..self
        }
    }
}

/// The splitmix64 finaliser: a bijective 64-bit mix with good avalanche.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stream key from its parts, each mixed in turn so that nearby tuples
/// give unrelated streams.
pub fn stream_key(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5851_f42d_4c95_7f2d, |acc, &p| {
        mix64(acc ^ mix64(p.wrapping_add(0x9e37_79b9_7f4a_7c15)))
    })
}

/// Uniform in `[0, 1)` (24 bits, exact in f32) for `counter` of `key`.
#[inline(always)]
pub fn uniform(key: u64, counter: u64) -> f32 {
    let z = mix64(key ^ counter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// A standard normal (Box–Muller on two counters).
pub fn normal(key: u64, counter: u64) -> f32 {
    let u1 = uniform(key, 2 * counter).max(1.0 / (1u64 << 24) as f32);
    let u2 = uniform(key, 2 * counter + 1);
    let r = (-2.0 * (u1 as f64).ln()).sqrt();
    (r * (2.0 * std::f64::consts::PI * u2 as f64).cos()) as f32
}

/// Domain tags, so that initialisation and dropout never share a stream.
pub mod domain {
    pub const LORA_A: u64 = 1;
    pub const DROPOUT: u64 = 2;
    pub const PROMPT: u64 = 3;
    pub const PREFIX: u64 = 4;
    pub const ADAPTER: u64 = 5;
    pub const HEAD: u64 = 6;
    pub const PREFIX_MLP: u64 = 7;
    pub const ROLLOUT: u64 = 8;
}

/// `n` values uniform in `[-bound, bound)` for one stream.
pub fn uniform_vec(key: u64, n: usize, bound: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| (uniform(key, i) * 2.0 - 1.0) * bound)
        .collect()
}

/// `n` values normal(0, std) for one stream.
pub fn normal_vec(key: u64, n: usize, std: f32) -> Vec<f32> {
    (0..n as u64).map(|i| normal(key, i) * std).collect()
}

/// The stream of the dropout masks of `module` in a forward pass.
pub fn dropout_key(ctx: &ForwardCtx, module: u64) -> u64 {
    stream_key(&[domain::DROPOUT, ctx.seed, ctx.step, ctx.micro, module])
}

/// Element `i` of an inverted-dropout mask of stream `key`: 0 with
/// probability `p`, else `1 / (1 - p)`.
#[inline(always)]
pub fn dropout_value(key: u64, p: f64, i: u64) -> f32 {
    if uniform(key, i) < p as f32 {
        0.0
    } else {
        (1.0 / (1.0 - p)) as f32
    }
}

/// The first `n` elements of the inverted-dropout mask of stream `key`.
pub fn dropout_mask(key: u64, p: f64, n: usize) -> Vec<f32> {
    (0..n as u64).map(|i| dropout_value(key, p, i)).collect()
}

/// The mask of a tensor of `n` elements whose rows are `width` long, for
/// the positions `kept` of the whole sequences (all of them if `None`).
pub fn dropout_mask_of(
    key: u64,
    p: f64,
    n: usize,
    width: usize,
    kept: Option<KeptPositions>,
) -> Vec<f32> {
    match kept {
        None => dropout_mask(key, p, n),
        Some(k) => (0..n as u64)
            .map(|i| dropout_value(key, p, k.counter(i, width as u64)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_depend_only_on_their_coordinates() {
        let a = ForwardCtx::train(7, 3);
        let m1 = dropout_mask(dropout_key(&a, 5), 0.1, 1000);
        // Drawing other masks in between changes nothing.
        let _ = dropout_mask(dropout_key(&ForwardCtx::train(7, 4), 5), 0.1, 1000);
        assert_eq!(m1, dropout_mask(dropout_key(&a, 5), 0.1, 1000));
        assert_ne!(m1, dropout_mask(dropout_key(&a, 6), 0.1, 1000));
        assert_ne!(
            m1,
            dropout_mask(dropout_key(&ForwardCtx::train(7, 4), 5), 0.1, 1000)
        );
        assert_ne!(
            m1,
            dropout_mask(dropout_key(&a.with_micro(1), 5), 0.1, 1000)
        );
        let dropped = m1.iter().filter(|&&v| v == 0.0).count();
        assert!(
            (60..140).contains(&dropped),
            "{dropped} of 1000 dropped at p=0.1"
        );
    }

    #[test]
    fn normals_have_unit_variance() {
        let v = normal_vec(stream_key(&[1, 2]), 20000, 1.0);
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
