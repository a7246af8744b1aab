//! Assigning rows to named splits (`train = 80%, val = 10%, test = 10%`),
//! and the leakage report.
//!
//! # Hash-based assignment
//! Every row has a stable key ([`SplitKey`]): its normalised content, or
//! the values of declared id fields. `u = hash(seed, key)` is a number in
//! `[0, 1)`, and the row goes to the split whose cumulative-fraction
//! interval holds `u`.
//!
//! - Without `stratify`, a row's split is a pure function of `(seed, key)`:
//!   appending rows to a file, reordering it, or dropping other rows never
//!   moves a row to another split. Split sizes are binomial around their
//!   fractions (10,605 rows at 10% → about 1,060 ± 31).
//! - With `stratify`, rows are grouped by the stratum value (the class
//!   label), each stratum is ordered by `u`, and cut at `round(n_c · F_j)`
//!   for the cumulative fractions `F_j`. Each split then holds within one
//!   example of `n_c · f_j` of every class, so class ratios are kept. The
//!   price: appending rows to a stratum can move old rows at the cut points —
//!   each appended row moves at most one old row per cut (at most
//!   `appended × (splits − 1)` in all), since a cut `round(n · F)` moves by
//!   at most one position per added row.
//!
//! Content keys normalise strings like the leakage report does, so exact
//! and near-exact duplicates (case, spacing, punctuation) always land in the
//! same split instead of leaking across.
//!
//! Explicit per-split files (`split = { train = "train.jsonl", ... }`) are
//! the caller's business: it reads each file as its own source and labels
//! the rows; nothing here is involved except [`find_leaks`].

use crate::rng::{mix64, stable_hash, unit_f64};
use crate::source::Row;
use crate::value::get_path;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One named split and its share of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitPart {
    pub name: String,
    /// In `(0, 1]`; the fractions of a spec sum to 1.
    pub fraction: f64,
}

/// What identifies a row for hashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitKey {
    /// The whole row, strings normalised (see [`normalize_text`]), keys in
    /// sorted order.
    Content,
    /// The values of these fields (dotted paths), e.g. a declared `id`.
    Fields(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    pub parts: Vec<SplitPart>,
    pub seed: u64,
    /// Field path whose value is the stratum, when [`Splitter::item`] builds
    /// the items; callers with a derived label build [`SplitItem`]s
    /// themselves.
    pub stratify: Option<String>,
    pub key: SplitKey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SplitError {
    NoParts,
    /// Fractions must sum to 1 (within 1e-9).
    FractionsDontSum {
        sum: f64,
    },
    BadFraction {
        name: String,
        fraction: f64,
    },
    DuplicateName {
        name: String,
    },
    /// A row lacks a key or stratify field.
    MissingField {
        field: String,
        file: PathBuf,
        line: usize,
    },
    /// Stratified items and unstratified items mixed in one call.
    MixedStrata,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::NoParts => write!(f, "a split needs at least one part"),
            SplitError::FractionsDontSum { sum } => {
                write!(f, "split fractions sum to {sum}, not 1")
            }
            SplitError::BadFraction { name, fraction } => {
                write!(
                    f,
                    "split `{name}` has fraction {fraction}; it must be in (0, 1]"
                )
            }
            SplitError::DuplicateName { name } => write!(f, "split `{name}` is named twice"),
            SplitError::MissingField { field, file, line } => {
                write!(f, "{}:{line}: missing field `{field}`", file.display())
            }
            SplitError::MixedStrata => write!(f, "some items have a stratum and some do not"),
        }
    }
}

impl std::error::Error for SplitError {}

/// The input of an assignment: a row's key hash and, when stratifying, its
/// stratum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SplitItem {
    /// [`Splitter::key_hash`] of the row (already mixed with the seed).
    pub hash: u64,
    pub stratum: Option<String>,
}

/// The split of every item, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub names: Vec<String>,
    /// `split_of[i]` is the index into `names` of item `i`'s split.
    pub split_of: Vec<usize>,
    /// Items per split.
    pub counts: Vec<usize>,
    /// Stratified: items per (stratum, split), strata in sorted order.
    pub strata: BTreeMap<String, Vec<usize>>,
}

impl Assignment {
    /// Indices of the items in the named split, ascending.
    pub fn indices(&self, split: &str) -> Vec<usize> {
        let Some(j) = self.names.iter().position(|n| n == split) else {
            return Vec::new();
        };
        (0..self.split_of.len())
            .filter(|&i| self.split_of[i] == j)
            .collect()
    }
}

/// A validated split spec, ready to assign.
#[derive(Debug, Clone)]
pub struct Splitter {
    spec: SplitSpec,
    /// Cumulative fractions; the last is exactly 1.
    cumulative: Vec<f64>,
}

impl Splitter {
    /// Check the spec: at least one part, unique names, each fraction in
    /// `(0, 1]`, and a sum of 1 within 1e-9. (The compiler reports these
    /// with spans first; this is the runtime's own guard.)
    pub fn new(spec: SplitSpec) -> Result<Splitter, SplitError> {
        if spec.parts.is_empty() {
            return Err(SplitError::NoParts);
        }
        let mut sum = 0.0;
        let mut cumulative = Vec::with_capacity(spec.parts.len());
        for (i, p) in spec.parts.iter().enumerate() {
            if !(p.fraction > 0.0 && p.fraction <= 1.0) {
                return Err(SplitError::BadFraction {
                    name: p.name.clone(),
                    fraction: p.fraction,
                });
            }
            if spec.parts[..i].iter().any(|q| q.name == p.name) {
                return Err(SplitError::DuplicateName {
                    name: p.name.clone(),
                });
            }
            sum += p.fraction;
            cumulative.push(sum);
        }
        if (sum - 1.0).abs() > 1e-9 {
            return Err(SplitError::FractionsDontSum { sum });
        }
        *cumulative.last_mut().unwrap() = 1.0;
        Ok(Splitter { spec, cumulative })
    }

    pub fn spec(&self) -> &SplitSpec {
        &self.spec
    }

    /// The seeded hash of a row's key.
    pub fn key_hash(&self, row: &Row) -> Result<u64, SplitError> {
        let mut text = String::new();
        match &self.spec.key {
            SplitKey::Content => canonical(&row.value, &mut text),
            SplitKey::Fields(fields) => {
                for f in fields {
                    let v = get_path(&row.value, f).ok_or_else(|| missing(f, row))?;
                    canonical(v, &mut text);
                    text.push('\u{1F}');
                }
            }
        }
        Ok(mix64(stable_hash(text.as_bytes()) ^ mix64(self.spec.seed)))
    }

    /// The [`SplitItem`] of a row, with the stratum read from the
    /// `stratify` field (strings as is, other values as JSON).
    pub fn item(&self, row: &Row) -> Result<SplitItem, SplitError> {
        let stratum = match &self.spec.stratify {
            None => None,
            Some(f) => Some(match get_path(&row.value, f) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => return Err(missing(f, row)),
            }),
        };
        Ok(SplitItem {
            hash: self.key_hash(row)?,
            stratum,
        })
    }

    /// The split of an unstratified row: a pure function of its hash.
    pub fn split_of_hash(&self, hash: u64) -> usize {
        let u = unit_f64(hash);
        self.cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.cumulative.len() - 1)
    }

    /// Assign items: by hash alone when no item has a stratum, by exact
    /// per-stratum cuts when all have one (see the module docs).
    pub fn assign(&self, items: &[SplitItem]) -> Result<Assignment, SplitError> {
        let names: Vec<String> = self.spec.parts.iter().map(|p| p.name.clone()).collect();
        let k = names.len();
        let stratified = items.first().is_some_and(|i| i.stratum.is_some());
        if items.iter().any(|i| i.stratum.is_some() != stratified) {
            return Err(SplitError::MixedStrata);
        }
        let hashes: Vec<u64> = items.iter().map(|i| i.hash).collect();
        // Strata numbered in sorted order, so `strata` below is too.
        let mut numbers: BTreeMap<&str, u32> = BTreeMap::new();
        for it in items {
            numbers
                .entry(it.stratum.as_deref().unwrap_or_default())
                .or_insert(0);
        }
        for (n, v) in numbers.values_mut().enumerate() {
            *v = n as u32;
        }
        let ids: Vec<u32> = items
            .iter()
            .map(|it| numbers[it.stratum.as_deref().unwrap_or_default()])
            .collect();
        let split_of: Vec<usize> = self
            .assign_compact(&hashes, stratified.then_some(&ids[..]))
            .into_iter()
            .map(|j| j as usize)
            .collect();
        let mut strata: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        if stratified {
            let mut per: Vec<Vec<usize>> = vec![vec![0; k]; numbers.len()];
            for (&s, &j) in ids.iter().zip(&split_of) {
                per[s as usize][j] += 1;
            }
            for (name, &s) in &numbers {
                strata.insert((*name).to_owned(), std::mem::take(&mut per[s as usize]));
            }
        }
        let mut counts = vec![0; k];
        for &j in &split_of {
            counts[j] += 1;
        }
        Ok(Assignment {
            names,
            split_of,
            counts,
            strata,
        })
    }

    /// [`Splitter::assign`] on compact items, for callers that stream rows
    /// and keep only a few bytes per row: each item's key hash and, when
    /// stratifying, a number for its stratum (any numbering: only equality
    /// matters). Returns each item's split index. The same items give the
    /// same splits as [`Splitter::assign`].
    pub fn assign_compact(&self, hashes: &[u64], strata: Option<&[u32]>) -> Vec<u32> {
        let k = self.cumulative.len();
        let Some(strata) = strata else {
            return hashes
                .iter()
                .map(|&h| self.split_of_hash(h) as u32)
                .collect();
        };
        assert_eq!(strata.len(), hashes.len(), "one stratum per item");
        let mut split_of = vec![0u32; hashes.len()];
        // Every stratum ordered by hash; equal hashes (duplicate keys) by
        // position.
        let mut order: Vec<u32> = (0..hashes.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (strata[i as usize], hashes[i as usize], i));
        for members in order.chunk_by(|&a, &b| strata[a as usize] == strata[b as usize]) {
            let n = members.len();
            let mut start = 0;
            for (j, &c) in self.cumulative.iter().enumerate() {
                let cut = if j == k - 1 {
                    n
                } else {
                    (n as f64 * c).round() as usize
                };
                for &i in &members[start..cut.max(start)] {
                    split_of[i as usize] = j as u32;
                }
                start = start.max(cut);
            }
        }
        split_of
    }

    /// Convenience: items from rows ([`Splitter::item`]) and assign.
    pub fn assign_rows(&self, rows: &[Row]) -> Result<Assignment, SplitError> {
        let items = rows
            .iter()
            .map(|r| self.item(r))
            .collect::<Result<Vec<_>, _>>()?;
        self.assign(&items)
    }
}

fn missing(field: &str, row: &Row) -> SplitError {
    SplitError::MissingField {
        field: field.to_owned(),
        file: row.file.to_path_buf(),
        line: row.line,
    }
}

/// A canonical text of a value: object keys sorted (serde_json's default
/// map is ordered), strings normalised, numbers as JSON prints them.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push('"');
            out.push_str(&normalize_text(s));
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (k, x) in m {
                out.push_str(k);
                out.push(':');
                canonical(x, out);
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Text normalised for duplicate detection: lower case, punctuation and
/// symbols removed, runs of whitespace collapsed to one space, trimmed.
/// `"The Rock -- is  BACK!"` → `"the rock is back"`.
pub fn normalize_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if c.is_alphanumeric() {
            if space {
                out.push(' ');
                space = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Where a text occurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub split: String,
    pub file: PathBuf,
    pub line: usize,
}

/// One normalised text found in more than one split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    pub text: String,
    /// The first occurrence in each split it appears in, in split order.
    pub locations: Vec<Location>,
}

/// One text to check for leakage: which split it is in, and where.
#[derive(Debug, Clone)]
pub struct LeakItem<'a> {
    pub split: &'a str,
    pub file: &'a Path,
    pub line: usize,
    pub text: &'a str,
}

/// Texts whose normalised form appears in two or more splits, each with
/// its first (file, line) in every split, ordered by the first location
/// seen. Texts that normalise to nothing are ignored.
pub fn find_leaks<'a>(items: impl IntoIterator<Item = LeakItem<'a>>) -> Vec<Leak> {
    // normalised text -> (order seen, first location per split)
    let mut seen: HashMap<String, (usize, Vec<Location>)> = HashMap::new();
    let mut order = 0;
    for it in items {
        let norm = normalize_text(it.text);
        if norm.is_empty() {
            continue;
        }
        let entry = seen.entry(norm).or_insert_with(|| {
            order += 1;
            (order, Vec::new())
        });
        if !entry.1.iter().any(|l| l.split == it.split) {
            entry.1.push(Location {
                split: it.split.to_owned(),
                file: it.file.to_path_buf(),
                line: it.line,
            });
        }
    }
    let mut leaks: Vec<(usize, Leak)> = seen
        .into_iter()
        .filter(|(_, (_, locs))| locs.len() > 1)
        .map(|(text, (o, locations))| (o, Leak { text, locations }))
        .collect();
    leaks.sort_by_key(|(o, _)| *o);
    leaks.into_iter().map(|(_, l)| l).collect()
}

/// Convenience: the leakage report over rows and their assignment, reading
/// the text from `field` (rows lacking it are skipped).
pub fn leakage_report(rows: &[Row], assignment: &Assignment, field: &str) -> Vec<Leak> {
    let texts: Vec<(Arc<Path>, usize, usize, String)> = rows
        .iter()
        .zip(&assignment.split_of)
        .filter_map(|(r, &j)| {
            let t = match get_path(&r.value, field)? {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            Some((r.file.clone(), r.line, j, t))
        })
        .collect();
    find_leaks(texts.iter().map(|(file, line, j, text)| LeakItem {
        split: &assignment.names[*j],
        file,
        line: *line,
        text,
    }))
}
