//! The data report (`ft data`, the run summary): per source, dataset,
//! split and stage — rows, tokens, truncations, skipped rows per reason,
//! filtered rows, leakage — and a renderer of examples that shows which
//! tokens are trained.

use crate::example::Sequence;
use crate::tokenize::TextTokenizer;
use ft_data::split::Leak;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataReport {
    pub datasets: Vec<DatasetReport>,
    pub stages: Vec<StageReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// The split, for per-split sources.
    pub split: Option<String>,
    pub pattern: PathBuf,
    pub files: Vec<PathBuf>,
    /// Rows read, good and bad.
    pub rows_read: usize,
    pub bad_rows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadRowNote {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    pub name: String,
    /// Whether the tokenized data came from the cache.
    pub from_cache: bool,
    pub sources: Vec<SourceReport>,
    /// Rows skipped (`on_bad_row = skip`), per reason.
    pub skipped: BTreeMap<String, usize>,
    /// The first skipped rows, with file and line.
    pub bad_rows: Vec<BadRowNote>,
    /// Rows the dataset's `filter` removed.
    pub filtered: usize,
    pub splits: Vec<SplitReport>,
    /// The same normalised text in two splits.
    pub leaks: Vec<Leak>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    pub name: String,
    /// Examples kept (after truncation policy at `max_len`).
    pub examples: usize,
    pub tokens: usize,
    pub trained_tokens: usize,
    /// Examples cut to `max_len` (`truncate`).
    pub truncated: usize,
    /// Examples dropped as too long (`drop`).
    pub dropped_too_long: usize,
    pub max_len: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    pub name: String,
    /// (dataset, examples available to the stage).
    pub tasks: Vec<(String, usize)>,
    /// Examples the stage's `where` removed.
    pub filtered: usize,
    pub truncated: usize,
    pub dropped_too_long: usize,
    pub steps: u64,
    pub batch: usize,
    pub max_len: usize,
    pub lr: Option<f64>,
}

impl DataReport {
    /// A human-readable summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for d in &self.datasets {
            let _ = writeln!(
                s,
                "dataset {}{}",
                d.name,
                if d.from_cache {
                    " (tokenized data from the cache)"
                } else {
                    ""
                }
            );
            for src in &d.sources {
                let split = src
                    .split
                    .as_deref()
                    .map(|x| format!("{x}: "))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  source {split}{} — {} file(s), {} rows read, {} bad",
                    src.pattern.display(),
                    src.files.len(),
                    src.rows_read,
                    src.bad_rows
                );
            }
            for (reason, n) in &d.skipped {
                let _ = writeln!(s, "  skipped {n} row(s): {reason}");
            }
            for b in &d.bad_rows {
                let _ = writeln!(s, "    {}:{}: {}", b.file.display(), b.line, b.reason);
            }
            if d.filtered > 0 {
                let _ = writeln!(s, "  filtered out {} row(s)", d.filtered);
            }
            for sp in &d.splits {
                let _ = writeln!(
                    s,
                    "  split {:<6} {:>7} examples {:>9} tokens ({} trained), max_len {}: {} truncated, {} dropped",
                    sp.name, sp.examples, sp.tokens, sp.trained_tokens, sp.max_len, sp.truncated, sp.dropped_too_long
                );
            }
            if d.leaks.is_empty() {
                let _ = writeln!(s, "  leakage: none");
            } else {
                let _ = writeln!(
                    s,
                    "  leakage: {} text(s) in more than one split",
                    d.leaks.len()
                );
                for l in d.leaks.iter().take(5) {
                    let locs: Vec<String> = l
                        .locations
                        .iter()
                        .map(|x| format!("{} {}:{}", x.split, x.file.display(), x.line))
                        .collect();
                    let _ = writeln!(s, "    \"{}\" — {}", l.text, locs.join(", "));
                }
            }
        }
        for st in &self.stages {
            let tasks: Vec<String> = st.tasks.iter().map(|(n, k)| format!("{n} {k}")).collect();
            let _ = writeln!(
                s,
                "stage {}: {} — {} steps × batch {}, max_len {}{}; {} filtered, {} truncated, {} dropped",
                st.name,
                tasks.join(", "),
                st.steps,
                st.batch,
                st.max_len,
                st.lr.map(|lr| format!(", lr {lr}")).unwrap_or_default(),
                st.filtered,
                st.truncated,
                st.dropped_too_long
            );
        }
        s
    }
}

/// An example's text with the trained tokens marked: green on a terminal
/// (`ansi`), else between `[[` and `]]`.
pub fn render_example(tok: &TextTokenizer, seq: &Sequence, ansi: bool) -> String {
    let (open, close) = if ansi {
        ("\x1b[1;32m", "\x1b[0m")
    } else {
        ("[[", "]]")
    };
    let mut out = String::new();
    let mut i = 0;
    while i < seq.ids.len() {
        let t = seq.trained[i];
        let j = (i..seq.ids.len())
            .find(|&k| seq.trained[k] != t)
            .unwrap_or(seq.ids.len());
        let text = tok.decode(&seq.ids[i..j]);
        if t {
            out.push_str(open);
            out.push_str(&text);
            out.push_str(close);
        } else {
            out.push_str(&text);
        }
        i = j;
    }
    out
}
