//! The tile products against bf16 arithmetic computed directly.

use super::*;

/// `Σ bf16(a)·bf16(b)` in f64: what the tile unit computes, up to the
/// order of its f32 additions.
fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, bt: bool) -> Vec<f64> {
    let r = |x: f32| f32_of(bf16(x)) as f64;
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|p| r(a[i * k + p]) * r(if bt { b[j * k + p] } else { b[p * n + j] }))
                .sum();
        }
    }
    out
}

#[test]
fn rounds_to_nearest_even() {
    assert_eq!(bf16(1.0), 0x3f80);
    // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to even (1).
    assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3f80);
    assert_eq!(bf16(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(bf16(-2.5), 0xc020);
    assert!(f32_of(bf16(f32::NAN)).is_nan());
    assert_eq!(f32_of(bf16(f32::INFINITY)), f32::INFINITY);
}

/// Pseudo-random values in [−0.5, 0.5) from a linear congruential stream.
fn uniform(mut seed: u32) -> impl FnMut() -> f32 {
    move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }
}

#[test]
#[ignore = "needs AMX-BF16"]
fn products_match_bf16_arithmetic_on_every_edge() {
    assert!(available(), "this test needs an AMX-BF16 CPU");
    let mut next = uniform(1);
    // Rows that are not a multiple of 32 (edge buffer), inner sizes
    // that are not a multiple of 32 (padding), an odd count of column
    // tiles (single-tile step), inner blocks over several passes (and
    // row pairs in several groups), and no rows at all.
    for (m, k, n) in [
        (37, 70, 48),
        (64, 32, 32),
        (5, 1, 16),
        (33, 2100, 80),
        (600, 40, 16),
        (300, 2100, 32),
        (0, 8, 16),
    ] {
        let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
        let w: Vec<f32> = (0..k * n).map(|_| next()).collect();
        for bt in [false, true] {
            // B as stored ([k, n]) or read through a transpose of [n, k].
            let (rs, cs) = if bt { (1, k as isize) } else { (n as isize, 1) };
            let packed = unsafe { Packed::new(w.as_ptr(), k, n, rs, cs) };
            let mut out = vec![f32::NAN; m * n];
            unsafe { gemm(m, a.as_ptr(), k as isize, 1, &packed, out.as_mut_ptr()) };
            let want = reference(&a, &w, m, k, n, bt);
            let check = |out: &[f32], what: &str| {
                for (i, (g, r)) in out.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (k as f64).sqrt().max(1.0);
                    let at = format!("{what} {m}x{k}x{n} bt={bt} [{i}]");
                    assert!((*g as f64 - r).abs() <= tol, "{at}: {g} vs {r}");
                }
            };
            check(&out, "row-major A");
            // A read through a transpose (column stride ≠ 1).
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let mut out = vec![f32::NAN; m * n];
            unsafe { gemm(m, at.as_ptr(), 1, m as isize, &packed, out.as_mut_ptr()) };
            check(&out, "transposed A");
        }
    }
}

#[test]
#[ignore = "needs AMX-BF16"]
fn windows_write_or_add_their_part_of_the_product() {
    assert!(available(), "this test needs an AMX-BF16 CPU");
    let mut next = uniform(7);
    // B: [k, n] with k not a multiple of 32 (the last block is padded).
    let (m, k, n) = (45, 150, 96);
    let w: Vec<f32> = (0..k * n).map(|_| next()).collect();
    let packed = unsafe { Packed::new(w.as_ptr(), k, n, n as isize, 1) };
    let r = |x: f32| f32_of(bf16(x)) as f64;
    // (column tiles, row blocks): an inner window, and one running to
    // the padded end of B.
    for (tiles, blocks) in [(1..4, 1..3), (2..6, 2..5)] {
        let rows = (blocks.start * TILE_K)..k.min(blocks.end * TILE_K);
        let cols = (tiles.start * TILE_ROWS)..(tiles.end * TILE_ROWS);
        let ka = rows.len();
        // A has exactly the window's inner width, rows 7 apart beyond it.
        let a_rs = ka + 7;
        let a: Vec<f32> = (0..m * a_rs).map(|_| next()).collect();
        let dst_rs = cols.len() + 3;
        for accumulate in [false, true] {
            let start: Vec<f32> = (0..m * dst_rs).map(|_| next()).collect();
            let mut out = start.clone();
            let window = Window {
                tiles: tiles.clone(),
                blocks: blocks.clone(),
                dst_rs,
                accumulate,
            };
            unsafe {
                gemm_window(
                    m,
                    a.as_ptr(),
                    a_rs as isize,
                    1,
                    &packed,
                    &window,
                    out.as_mut_ptr(),
                )
            };
            for i in 0..m {
                for (c, j) in cols.clone().enumerate() {
                    let sum: f64 = (0..ka)
                        .map(|p| r(a[i * a_rs + p]) * r(w[(rows.start + p) * n + j]))
                        .sum();
                    let base = if accumulate {
                        start[i * dst_rs + c] as f64
                    } else {
                        0.0
                    };
                    let got = out[i * dst_rs + c] as f64;
                    let at = format!("{tiles:?} {blocks:?} acc={accumulate} [{i}][{c}]");
                    assert!(
                        (got - base - sum).abs() < 1e-4,
                        "{at}: {got} vs {}",
                        base + sum
                    );
                }
                // Columns past the window are left alone.
                for c in cols.len()..dst_rs {
                    assert_eq!(out[i * dst_rs + c], start[i * dst_rs + c]);
                }
            }
        }
    }
}
