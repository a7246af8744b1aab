//! `exp` for the element-wise kernels (softmax, GELU, SwiGLU, the LM
//! loss): a branch-free polynomial that the compiler vectorises, where
//! libm's `expf` is a call per element — it was 9 % of a MiniLM training
//! step. Relative error below 2e-7 (a couple of f32 ulps) over the whole
//! range; 0 below −87.3 (where f32 underflows), +∞ above 88.7, NaN kept.

/// `e^x`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer held in the low bits.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.7);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // Cephes' expf polynomial on |r| ≤ ln 2 / 2.
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from exponent bits, as 2^(n/2) · 2^(n − n/2) so that both
    // factors stay normal for every n in [-126, 128].
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e * pow2(n >> 1) * pow2(n - (n >> 1));
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// `Σ xs` over eight running sums (which the compiler keeps in one
/// vector register), added in a fixed order: the same result on every
/// machine, unlike a sum whose order depends on the vector width.
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// Whether this CPU has AVX2 and FMA, detected once and kept in a cache
/// line of its own that is only ever read afterwards: the kernels ask once
/// per row (the attention softmax: 24,576 rows per BERT layer), from
/// every thread.
pub fn avx2_fma() -> bool {
    cpu_flags() & AVX2_FMA != 0
}

/// Whether this CPU has AVX-512 F, DQ and VL (vector 64-bit multiplies
/// and conversions: the dropout hash).
pub fn avx512dq() -> bool {
    cpu_flags() & AVX512DQ != 0
}

/// Whether this CPU has AVX-512 F, DQ, VL and BW (and AVX2 and FMA): the
/// widest version of a `simd_fn!`.
pub fn avx512() -> bool {
    cpu_flags() & AVX512 != 0
}

const KNOWN: u8 = 1;
const AVX2_FMA: u8 = 2;
const AVX512DQ: u8 = 4;
const AVX512: u8 = 8;

fn cpu_flags() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    #[repr(align(128))]
    struct Flags(AtomicU8);
    static FLAGS: Flags = Flags(AtomicU8::new(0));
    let f = FLAGS.0.load(Ordering::Relaxed);
    if f & KNOWN != 0 {
        return f;
    }
    let mut f = KNOWN;
    #[cfg(target_arch = "x86_64")]
    {
        use std::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            f |= AVX2_FMA;
        }
        if has!("avx512f") && has!("avx512dq") && has!("avx512vl") {
            f |= AVX512DQ;
            if has!("avx512bw") && f & AVX2_FMA != 0 {
                f |= AVX512;
            }
        }
    }
    FLAGS.0.store(f, Ordering::Relaxed);
    f
}

/// Defines a function whose body is compiled three times: for AVX-512
/// (16 lanes), for AVX2 and FMA (8 lanes), each taken when this CPU has
/// it, and for plain x86-64 (SSE2, 4 lanes). The body is inlined into
/// each, so its loops are vectorised for each; passing a closure to a
/// `#[target_feature]` function instead leaves the closure compiled for
/// SSE2 when the compiler declines to inline it. The arithmetic is the
/// same in every version (no contraction into FMAs unless written, sums in
/// a fixed order), so results do not depend on which one runs.
macro_rules! simd_fn {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if crate::kernels::fastmath::avx512() {
                    // SAFETY: the features were just detected.
                    return unsafe { avx512($($arg),*) };
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if crate::kernels::fastmath::avx2_fma() {
                    // SAFETY: the features were just detected.
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

#[cfg(test)]
mod tests {
    use super::exp;

    #[test]
    fn matches_libm_over_the_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }
}
