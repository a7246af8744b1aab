//! Fitting sequences to a maximum length (the truncation policy) and
//! collating them into the flat, row-major batches the trainer consumes.
//!
//! Padding is on the right, with the tokenizer's pad id, masked out of
//! attention and of the loss. Labels follow the Hugging Face convention:
//! `labels[i]` is the id at position `i` when the loss is taken on it, else
//! -100; the shift by one happens in the loss.
//!
//! With packing, the examples of a batch are laid into rows of at most
//! `max_len` tokens in order (first fit), each example whole; `segment_ids`
//! numbers the examples of a row from 1 (0 is padding) and `position_ids`
//! restart at 0 for each example, so attention can be kept inside segments
//! and positions match an unpacked run.

use crate::example::Sequence;
use ft_plan::Truncate;
use serde::{Deserialize, Serialize};

/// The loss-ignore label (PyTorch's `ignore_index`).
pub const IGNORE: i64 = -100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Rows.
    pub batch: usize,
    /// Tokens per row (the longest row: dynamic padding).
    pub seq: usize,
    /// `batch × seq`, row-major.
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u8>,
    /// Causal LM: `batch × seq`, the target id or [`IGNORE`]. Empty for
    /// classification.
    pub labels: Vec<i64>,
    /// Classification: one class index per example.
    pub class_labels: Vec<usize>,
    /// Packed batches: `batch × seq`, 1-based example number within its row
    /// (0 on padding).
    pub segment_ids: Option<Vec<u32>>,
    /// Packed batches: `batch × seq`, positions restarting per example.
    pub position_ids: Option<Vec<u32>>,
    /// Per example (not per row when packed): its task (dataset index).
    pub tasks: Vec<u16>,
    /// Per example: its stable id.
    pub example_ids: Vec<u64>,
}

/// A DPO batch: row `i` of `chosen` and of `rejected` share a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairBatch {
    pub chosen: Batch,
    pub rejected: Batch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchData {
    Single(Batch),
    /// Boxed: twice a batch's header; batches move by value every step.
    Pair(Box<PairBatch>),
}

impl BatchData {
    /// The batch a non-DPO trainer uses (DPO: the chosen side).
    pub fn main(&self) -> &Batch {
        match self {
            BatchData::Single(b) => b,
            BatchData::Pair(p) => &p.chosen,
        }
    }

    /// A stable hash of the whole batch (for determinism checks).
    pub fn fingerprint(&self) -> u64 {
        let bytes = serde_json::to_vec(self).expect("batches serialize");
        ft_data::rng::stable_hash(&bytes)
    }
}

/// What fitting a sequence to `max_len` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Whole,
    Truncated(Sequence),
    /// Longer than `max_len` under `drop` or `error`.
    TooLong,
}

/// Fit a sequence to `max_len` under a policy. Truncation cuts the prompt
/// from the left (after a leading BOS, which stays); if the completion
/// alone is still too long, its end is cut but its final EOS kept. An
/// encoder input (`encoder`) is cut from the right, keeping its last token
/// (the `[SEP]`).
pub fn fit(
    seq: &Sequence,
    max_len: usize,
    policy: Truncate,
    encoder: bool,
    bos: Option<u32>,
) -> Fit {
    if seq.len() <= max_len {
        return Fit::Whole;
    }
    if policy != Truncate::Truncate {
        return Fit::TooLong;
    }
    let max_len = max_len.max(2);
    let mut ids = seq.ids.clone();
    let mut trained = seq.trained.clone();
    let mut prompt_len = seq.prompt_len;
    if encoder {
        let last = ids.len() - 1;
        ids.drain(max_len - 1..last);
        trained.drain(max_len - 1..last);
        prompt_len = prompt_len.min(ids.len());
    } else {
        let keep = usize::from(prompt_len > 0 && bos.is_some() && seq.ids.first() == bos.as_ref());
        let excess = ids.len() - max_len;
        let from_prompt = excess.min(prompt_len - keep);
        ids.drain(keep..keep + from_prompt);
        trained.drain(keep..keep + from_prompt);
        prompt_len -= from_prompt;
        let rest = ids.len().saturating_sub(max_len);
        if rest > 0 {
            let last = ids.len() - 1;
            ids.drain(last - rest..last);
            trained.drain(last - rest..last);
        }
    }
    Fit::Truncated(Sequence {
        ids,
        trained,
        prompt_len,
    })
}

/// One example going into a batch.
pub struct Item<'a> {
    pub seq: &'a Sequence,
    pub class_label: Option<usize>,
    pub task: u16,
    pub id: u64,
}

/// Collate examples; `pack` = `Some(max_len)` packs them into rows.
pub fn collate(items: &[Item], pad_id: u32, pack: Option<usize>) -> Batch {
    // Rows as lists of item indices.
    let rows: Vec<Vec<usize>> = match pack {
        None => (0..items.len()).map(|i| vec![i]).collect(),
        Some(max_len) => {
            let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
            for (i, it) in items.iter().enumerate() {
                let n = it.seq.len();
                match rows.iter_mut().find(|(used, _)| used + n <= max_len) {
                    Some((used, members)) => {
                        *used += n;
                        members.push(i);
                    }
                    None => rows.push((n, vec![i])),
                }
            }
            rows.into_iter().map(|(_, m)| m).collect()
        }
    };
    let seq = rows
        .iter()
        .map(|r| r.iter().map(|&i| items[i].seq.len()).sum::<usize>())
        .max()
        .unwrap_or(0);
    let b = rows.len();
    let classify = items.iter().any(|it| it.class_label.is_some());
    let mut out = Batch {
        batch: b,
        seq,
        input_ids: vec![pad_id; b * seq],
        attention_mask: vec![0; b * seq],
        labels: if classify {
            Vec::new()
        } else {
            vec![IGNORE; b * seq]
        },
        class_labels: Vec::new(),
        segment_ids: pack.map(|_| vec![0; b * seq]),
        position_ids: pack.map(|_| vec![0; b * seq]),
        tasks: Vec::with_capacity(items.len()),
        example_ids: Vec::with_capacity(items.len()),
    };
    for (r, members) in rows.iter().enumerate() {
        let mut at = r * seq;
        for (k, &i) in members.iter().enumerate() {
            let s = items[i].seq;
            for (p, (&id, &t)) in s.ids.iter().zip(&s.trained).enumerate() {
                out.input_ids[at] = id;
                out.attention_mask[at] = 1;
                // A packed example's first token is no target: it would be
                // predicted from the end of the example before it.
                if !classify && t && (pack.is_none() || p > 0) {
                    out.labels[at] = id as i64;
                }
                if let Some(seg) = &mut out.segment_ids {
                    seg[at] = k as u32 + 1;
                }
                if let Some(pos) = &mut out.position_ids {
                    pos[at] = p as u32;
                }
                at += 1;
            }
        }
    }
    // Per-example metadata in row-major order: item order unpacked; when
    // packed, the order the examples sit in the rows.
    for m in &rows {
        for &i in m {
            out.class_labels.extend(items[i].class_label);
            out.tasks.push(items[i].task);
            out.example_ids.push(items[i].id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: usize, prompt: usize) -> Sequence {
        Sequence {
            ids: (1..=n as u32).collect(),
            trained: (0..n).map(|i| i >= prompt).collect(),
            prompt_len: prompt,
        }
    }

    #[test]
    fn truncation_cuts_the_prompt_from_the_left_and_keeps_bos_and_eos() {
        // ids 1..=10, prompt 1..=6 (id 1 is BOS), completion 7..=10.
        let s = seq(10, 6);
        let Fit::Truncated(t) = fit(&s, 7, Truncate::Truncate, false, Some(1)) else {
            panic!()
        };
        assert_eq!(t.ids, vec![1, 5, 6, 7, 8, 9, 10]);
        assert_eq!(t.prompt_len, 3);
        assert_eq!(t.trained_tokens(), 4);
        // Completion longer than the room: prompt gone but BOS, completion cut
        // at its end, EOS (10) kept.
        let Fit::Truncated(t) = fit(&s, 4, Truncate::Truncate, false, Some(1)) else {
            panic!()
        };
        assert_eq!(t.ids, vec![1, 7, 8, 10]);
        assert_eq!(fit(&s, 7, Truncate::Drop, false, None), Fit::TooLong);
        assert_eq!(fit(&s, 7, Truncate::Error, false, None), Fit::TooLong);
        assert_eq!(fit(&s, 10, Truncate::Error, false, None), Fit::Whole);
        // Encoder input: cut from the right, [SEP] (last) kept.
        let e = seq(6, 6);
        let Fit::Truncated(t) = fit(&e, 4, Truncate::Truncate, true, None) else {
            panic!()
        };
        assert_eq!(t.ids, vec![1, 2, 3, 6]);
    }

    #[test]
    fn packing_restarts_positions_and_numbers_segments() {
        // b has no prompt: its first token, packed after a, is still no target.
        let (a, b, c) = (seq(3, 1), seq(2, 0), seq(4, 2));
        let items = [
            Item {
                seq: &a,
                class_label: None,
                task: 0,
                id: 10,
            },
            Item {
                seq: &b,
                class_label: None,
                task: 1,
                id: 11,
            },
            Item {
                seq: &c,
                class_label: None,
                task: 0,
                id: 12,
            },
        ];
        let batch = collate(&items, 0, Some(5));
        // Row 0: a (3) + b (2) = 5; row 1: c (4) + 1 pad.
        assert_eq!((batch.batch, batch.seq), (2, 5));
        assert_eq!(batch.input_ids, vec![1, 2, 3, 1, 2, 1, 2, 3, 4, 0]);
        assert_eq!(
            batch.segment_ids.unwrap(),
            vec![1, 1, 1, 2, 2, 1, 1, 1, 1, 0]
        );
        assert_eq!(
            batch.position_ids.unwrap(),
            vec![0, 1, 2, 0, 1, 0, 1, 2, 3, 0]
        );
        assert_eq!(batch.attention_mask, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(
            batch.labels,
            vec![-100, 2, 3, -100, 2, -100, -100, 3, 4, -100]
        );
        assert_eq!(batch.example_ids, vec![10, 11, 12]);
        // Unpacked: right padding to the longest.
        let plain = collate(&items, 7, None);
        assert_eq!((plain.batch, plain.seq), (3, 4));
        assert_eq!(&plain.input_ids[4..8], &[1, 2, 7, 7]);
        // Alone in its row, b's first label is never read (the shift).
        assert_eq!(&plain.labels[4..8], &[1, 2, -100, -100]);
        assert!(plain.segment_ids.is_none());
    }
}
