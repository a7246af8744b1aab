//! The values a sweep tries: each axis's domain (a list, or a range), and
//! the strategy that turns domains into trials (every combination, or `n`
//! drawn at random with a seed).

use crate::syntax::ast::Span;

/// What one axis ranges over.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// Values as recipe text, with where each is written.
    List(Vec<(String, Span)>),
    /// `loguniform(low, high)` / `uniform(low, high)`; `int` rounds draws
    /// for integer settings.
    Range {
        low: f64,
        high: f64,
        log: bool,
        int: bool,
        span: Span,
    },
}

/// One trial's value on one axis: recipe text and the span it comes from.
pub type Choice = (String, Span);

impl Domain {
    /// The points a grid takes: a list's values, or three points of a range
    /// (its ends and middle, geometric for a log range).
    fn grid_points(&self) -> Vec<Choice> {
        match self {
            Domain::List(v) => v.clone(),
            Domain::Range {
                low,
                high,
                log,
                int,
                span,
            } => {
                let mid = if *log {
                    (low * high).sqrt()
                } else {
                    (low + high) / 2.0
                };
                let mut pts: Vec<Choice> = [*low, mid, *high]
                    .iter()
                    .map(|x| (number_text(*x, *int), *span))
                    .collect();
                pts.dedup_by(|a, b| a.0 == b.0);
                pts
            }
        }
    }

    fn draw(&self, rng: &mut SplitMix) -> Choice {
        match self {
            Domain::List(v) => v[(rng.next() % v.len() as u64) as usize].clone(),
            Domain::Range {
                low,
                high,
                log,
                int,
                span,
            } => {
                let u = rng.unit();
                let x = if *log {
                    (low.ln() + u * (high.ln() - low.ln())).exp()
                } else {
                    low + u * (high - low)
                };
                (number_text(x, *int), *span)
            }
        }
    }
}

/// Every combination, the first axis varying slowest (as nested loops in
/// the order the axes are written).
pub fn grid(domains: &[Domain]) -> Vec<Vec<Choice>> {
    let mut trials: Vec<Vec<Choice>> = vec![Vec::new()];
    for d in domains {
        let pts = d.grid_points();
        trials = trials
            .into_iter()
            .flat_map(|t| {
                pts.iter().map(move |p| {
                    let mut t = t.clone();
                    t.push(p.clone());
                    t
                })
            })
            .collect();
    }
    trials
}

/// `n` combinations drawn with `seed`; a combination drawn twice is drawn
/// again (up to a bound, since a small grid may hold fewer than `n`).
pub fn random(domains: &[Domain], n: usize, seed: u64) -> Vec<Vec<Choice>> {
    let mut rng = SplitMix(seed);
    let mut out: Vec<Vec<Choice>> = Vec::new();
    let mut attempts = 0;
    while out.len() < n && attempts < n * 50 {
        attempts += 1;
        let t: Vec<Choice> = domains.iter().map(|d| d.draw(&mut rng)).collect();
        let texts = |t: &Vec<Choice>| t.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
        if !out.iter().any(|o| texts(o) == texts(&t)) {
            out.push(t);
        }
    }
    out
}

/// A number as recipe text: integers plainly, others with four significant
/// digits (`3.162e-4`), which the grammar reads back exactly as printed.
pub fn number_text(x: f64, int: bool) -> String {
    if int {
        return format!("{}", x.round() as i64);
    }
    let a = x.abs();
    if a != 0.0 && !(1e-2..1e4).contains(&a) {
        format!("{x:.3e}")
    } else {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0');
        let s = s.strip_suffix('.').unwrap_or(s);
        s.to_string()
    }
}

/// SplitMix64: small, seedable, and the same on every platform, so a random
/// sweep draws the same trials everywhere (the formatter's tests use it too).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Domain {
        Domain::List(v.iter().map(|s| (s.to_string(), Span::default())).collect())
    }

    fn texts(trials: &[Vec<Choice>]) -> Vec<Vec<&str>> {
        trials
            .iter()
            .map(|t| t.iter().map(|c| c.0.as_str()).collect())
            .collect()
    }

    #[test]
    fn grid_is_every_combination_first_axis_slowest() {
        let t = grid(&[list(&["1e-4", "3e-4"]), list(&["4", "8", "16"])]);
        assert_eq!(
            texts(&t),
            vec![
                vec!["1e-4", "4"],
                vec!["1e-4", "8"],
                vec!["1e-4", "16"],
                vec!["3e-4", "4"],
                vec!["3e-4", "8"],
                vec!["3e-4", "16"],
            ]
        );
    }

    #[test]
    fn grid_over_a_log_range_takes_ends_and_geometric_middle() {
        let d = Domain::Range {
            low: 1e-4,
            high: 1e-2,
            log: true,
            int: false,
            span: Span::default(),
        };
        assert_eq!(
            texts(&grid(&[d])),
            vec![vec!["1.000e-4"], vec!["1.000e-3"], vec!["0.01"]]
        );
    }

    #[test]
    fn random_draws_are_seeded_distinct_and_in_range() {
        let d = Domain::Range {
            low: 1e-5,
            high: 1e-3,
            log: true,
            int: false,
            span: Span::default(),
        };
        let a = random(&[d.clone(), list(&["4", "8"])], 6, 7);
        let b = random(&[d.clone(), list(&["4", "8"])], 6, 7);
        let c = random(&[d, list(&["4", "8"])], 6, 8);
        assert_eq!(texts(&a), texts(&b));
        assert_ne!(texts(&a), texts(&c));
        assert_eq!(a.len(), 6);
        for t in &a {
            let x: f64 = t[0].0.parse().unwrap();
            assert!((1e-5..=1e-3).contains(&x), "{x}");
        }
    }

    #[test]
    fn random_stops_when_the_space_is_smaller_than_n() {
        assert_eq!(random(&[list(&["a", "b"])], 5, 0).len(), 2);
    }

    #[test]
    fn numbers_print_as_recipe_text() {
        assert_eq!(number_text(0.000316227, false), "3.162e-4");
        assert_eq!(number_text(0.05, false), "0.05");
        assert_eq!(number_text(12.6, true), "13");
    }
}
