//! Evaluation metrics: accuracy, macro-F1, exact match, ROUGE-L (F-measure
//! over whitespace tokens, lower-cased, as `rouge_score` without stemming),
//! perplexity from the mean token loss.

/// Share of predictions equal to their label.
pub fn accuracy(pred: &[usize], gold: &[usize]) -> f64 {
    if gold.is_empty() {
        return 0.0;
    }
    pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len() as f64
}

/// Macro-averaged F1 over `classes` classes (sklearn's `average="macro"`,
/// a class with no predictions and no labels counts 0, as with
/// `zero_division=0`, but only classes that occur in gold or predictions
/// are averaged).
pub fn macro_f1(pred: &[usize], gold: &[usize], classes: usize) -> f64 {
    let mut f1s = Vec::new();
    for c in 0..classes {
        let tp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g == c)
            .count() as f64;
        let fp = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p == c && **g != c)
            .count() as f64;
        let fn_ = pred
            .iter()
            .zip(gold)
            .filter(|(p, g)| **p != c && **g == c)
            .count() as f64;
        if tp + fp + fn_ == 0.0 {
            continue;
        }
        f1s.push(if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fn_)
        });
    }
    if f1s.is_empty() {
        0.0
    } else {
        f1s.iter().sum::<f64>() / f1s.len() as f64
    }
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Share of generations equal to the reference after whitespace and case
/// normalisation.
pub fn exact_match(generated: &[String], references: &[String]) -> f64 {
    if references.is_empty() {
        return 0.0;
    }
    generated
        .iter()
        .zip(references)
        .filter(|(g, r)| normalize(g) == normalize(r))
        .count() as f64
        / references.len() as f64
}

fn tokens(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ROUGE-L F-measure of one candidate against one reference.
pub fn rouge_l(candidate: &str, reference: &str) -> f64 {
    let (c, r) = (tokens(candidate), tokens(reference));
    if c.is_empty() || r.is_empty() {
        return 0.0;
    }
    let l = lcs(&c, &r) as f64;
    if l == 0.0 {
        return 0.0;
    }
    let (p, rec) = (l / c.len() as f64, l / r.len() as f64);
    2.0 * p * rec / (p + rec)
}

/// Mean ROUGE-L over pairs.
pub fn mean_rouge_l(generated: &[String], references: &[String]) -> f64 {
    if references.is_empty() {
        return 0.0;
    }
    generated
        .iter()
        .zip(references)
        .map(|(g, r)| rouge_l(g, r))
        .sum::<f64>()
        / references.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics() {
        let gold = [0, 0, 1, 1, 1];
        let pred = [0, 1, 1, 1, 0];
        assert!((accuracy(&pred, &gold) - 0.6).abs() < 1e-12);
        // class 0: tp 1 fp 1 fn 1 → 0.5; class 1: tp 2 fp 1 fn 1 → 2/3.
        assert!((macro_f1(&pred, &gold, 2) - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(macro_f1(&[0, 0], &[0, 0], 2), 1.0);
    }

    #[test]
    fn generation_metrics() {
        assert_eq!(exact_match(&["Paris ".into()], &["paris".into()]), 1.0);
        assert_eq!(exact_match(&["Lyon".into()], &["Paris".into()]), 0.0);
        // LCS "the cat on the mat" vs "the cat sat on the mat": 5 of 5 / 6.
        let r = rouge_l("the cat on the mat", "the cat sat on the mat");
        let (p, rec) = (1.0, 5.0 / 6.0);
        assert!((r - 2.0 * p * rec / (p + rec)).abs() < 1e-12);
        assert_eq!(rouge_l("", "x"), 0.0);
    }
}
