//! How a mixture's written weights and temperature become sampling weights.

/// A task's sampling weight as the language defines it: `w·n^(1/T)` with a
/// temperature, `w` without one; without written weights, `n^(1/T)`
/// (`n`, examples-proportional, without a temperature). `ft_data`'s
/// mixture then only normalises these and applies the cap.
pub fn mixture_weight(weight: Option<f64>, size: usize, temperature: Option<f64>) -> f64 {
    let n = size as f64;
    match (weight, temperature) {
        (Some(w), Some(t)) => w * n.powf(1.0 / t),
        (Some(w), None) => w,
        (None, Some(t)) => n.powf(1.0 / t),
        (None, None) => n,
    }
}
