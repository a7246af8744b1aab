//! Split assignment, the leakage report and few-shot draws, computed from
//! the few numbers the build keeps per row ([`GoodRows`]) rather than from
//! the rows: key hashes, stratum numbers, and a 64-bit hash of each row's
//! normalised text. Results are those of comparing the texts themselves,
//! up to a hash collision (for `n` distinct texts, about `n²/2⁶⁵`: one in
//! ten million for a million rows).

use crate::dataset::GoodRows;
use crate::example::{PromptText, RenderedRow};
use crate::spool::SpoolMap;
use crate::PipelineError;
use ft_data::rng::{mix64, stable_hash, SplitMix64};
use ft_data::split::{normalize_text, Leak, Location, Splitter};
use ft_plan::{DataSource, DatasetPlan, Stratify};
use std::path::PathBuf;

/// The spool record's parts: the normalised text, then (few-shot datasets
/// only) the rendered row as JSON and the row as JSON.
pub(crate) const TEXT: usize = 0;
pub(crate) const RENDERED: usize = 1;
pub(crate) const ROW: usize = 2;

/// The hash kept of a row's leakage text: 0 when it normalises to nothing
/// (such texts never leak, and as shots they compare equal to each other,
/// as the empty texts did). Returns the normalised text too, for the spool.
pub(crate) fn text_hash(leak_text: &str) -> (u64, String) {
    let norm = normalize_text(leak_text);
    if norm.is_empty() {
        (0, norm)
    } else {
        (stable_hash(norm.as_bytes()).max(1), norm)
    }
}

/// Whether rows are grouped by a stratum when split (then the build keeps
/// a stratum number per row).
pub(crate) fn stratified(ds: &DatasetPlan, splitter: &Splitter) -> bool {
    ds.stratify.is_some() || splitter.spec().stratify.is_some()
}

/// Split names (declared order) and each good row's split index.
pub(crate) fn assign(
    ds: &DatasetPlan,
    splitter: Option<&Splitter>,
    good: &GoodRows,
) -> (Vec<String>, Vec<u32>) {
    match (&ds.source, splitter) {
        (DataSource::PerSplit(parts), _) => {
            let names: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
            // A source's split is the first part of its name.
            let of_source: Vec<u32> = parts
                .iter()
                .map(|(n, _)| names.iter().position(|x| x == n).unwrap_or(0) as u32)
                .collect();
            let of = good.source.iter().map(|&s| of_source[s as usize]).collect();
            (names, of)
        }
        (DataSource::Single(_), None) => (vec!["train".to_owned()], vec![0; good.len()]),
        (DataSource::Single(_), Some(s)) => {
            let names = s.spec().parts.iter().map(|p| p.name.clone()).collect();
            let strata = stratified(ds, s).then_some(&good.stratum[..]);
            (names, s.assign_compact(&good.key, strata))
        }
    }
}

/// The stratum of a row under the dataset's `stratify` (`Ok(None)` when
/// it has none), as the original row-holding pipeline read it.
pub(crate) fn stratum_of(
    ds: &DatasetPlan,
    splitter: &Splitter,
    row: &ft_data::Row,
) -> Result<Option<String>, (String, String)> {
    use serde_json::Value;
    match &ds.stratify {
        Some(Stratify::Label) => crate::example::label_text(&ds.fields, &row.value)
            .map(Some)
            .map_err(|p| (p.key(), p.to_string())),
        Some(Stratify::Field(f)) => Ok(Some(match row.get(f) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => {
                return Err((
                    format!("missing field `{f}`"),
                    format!("missing field `{f}` (stratify)"),
                ))
            }
        })),
        None => splitter
            .item(row)
            .map(|i| i.stratum)
            .map_err(|e| ("split key".to_owned(), e.to_string())),
    }
}

/// Texts in more than one split: each with its first (file, line) in every
/// split, in the order the texts were first seen — `find_leaks` over the
/// rows, from the hashes (the texts are read back from the spool only for
/// the leaks).
pub(crate) fn leaks(
    names: &[String],
    split_of: &[u32],
    good: &GoodRows,
    files: &[PathBuf],
    spool: &SpoolMap,
) -> Vec<Leak> {
    let mut by_text: Vec<(u64, u32)> = good
        .text
        .iter()
        .enumerate()
        .filter(|(_, &h)| h != 0)
        .map(|(i, &h)| (h, i as u32))
        .collect();
    by_text.sort_unstable();
    let mut out: Vec<(u32, Leak)> = Vec::new();
    for run in by_text.chunk_by(|a, b| a.0 == b.0) {
        // Rows of a run are in source order: the first of each split wins.
        let mut locs: Vec<(u32, u32)> = Vec::new();
        for &(_, i) in run {
            let j = split_of[i as usize];
            if !locs.iter().any(|&(s, _)| s == j) {
                locs.push((j, i));
            }
        }
        if locs.len() < 2 {
            continue;
        }
        let first = run[0].1;
        let text = String::from_utf8_lossy(spool.part(good.spool[first as usize], TEXT));
        out.push((
            first,
            Leak {
                text: text.into_owned(),
                locations: locs
                    .into_iter()
                    .map(|(j, i)| Location {
                        split: names[j as usize].clone(),
                        file: files[good.file[i as usize] as usize].clone(),
                        line: good.line[i as usize] as usize,
                    })
                    .collect(),
            },
        ));
    }
    out.sort_by_key(|(first, _)| *first);
    out.into_iter().map(|(_, l)| l).collect()
}

/// The rows few-shot examples are drawn from: those of split `from`.
pub(crate) fn shot_pool(
    ds: &DatasetPlan,
    count: usize,
    from: &str,
    names: &[String],
    split_of: &[u32],
) -> Result<Vec<u32>, PipelineError> {
    let Some(j) = names.iter().position(|n| n == from) else {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: shots come from split `{from}`, which it does not have",
            ds.name
        )));
    };
    let pool: Vec<u32> = (0..split_of.len() as u32)
        .filter(|&i| split_of[i as usize] == j as u32)
        .collect();
    if pool.is_empty() && count > 0 && !split_of.is_empty() {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: shots come from split `{from}`, which has no rows",
            ds.name
        )));
    }
    Ok(pool)
}

/// The `count` shots of good row `i`. Draws are a function of (seed,
/// dataset, row), never the row itself nor a row with the same normalised
/// text.
pub(crate) fn pick_shots(
    ds: &DatasetPlan,
    seed: u64,
    count: usize,
    from: &str,
    pool: &[u32],
    good: &GoodRows,
    i: usize,
) -> Result<Vec<u32>, PipelineError> {
    let base = mix64(seed ^ stable_hash(ds.name.as_bytes()) ^ 0x5348_4F54_5321);
    let allowed = |k: u32| k as usize != i && good.text[k as usize] != good.text[i];
    let mut rng = SplitMix64::new(mix64(base ^ mix64(good.ordinal[i])));
    let mut chosen: Vec<u32> = Vec::with_capacity(count);
    let mut tries = 0;
    while chosen.len() < count && tries < 64 * count {
        tries += 1;
        let k = pool[rng.below(pool.len() as u64) as usize];
        if allowed(k) && !chosen.contains(&k) {
            chosen.push(k);
        }
    }
    if chosen.len() < count {
        // Few eligible rows: take them in pool order from a random start.
        let start = rng.below(pool.len() as u64) as usize;
        for off in 0..pool.len() {
            let k = pool[(start + off) % pool.len()];
            if chosen.len() < count && allowed(k) && !chosen.contains(&k) {
                chosen.push(k);
            }
        }
    }
    if chosen.len() < count {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: {count} shots from `{from}` wanted, but it has only {} other rows",
            ds.name,
            chosen.len()
        )));
    }
    Ok(chosen)
}

/// A spooled rendered row.
pub(crate) fn rendered_at(spool: &SpoolMap, offset: u64) -> RenderedRow {
    serde_json::from_slice(spool.part(offset, RENDERED)).expect("spooled by this build")
}

/// Row `i` with its shots prepended to its prompt.
pub(crate) fn with_shots(
    spool: &SpoolMap,
    good: &GoodRows,
    i: usize,
    shots: &[u32],
) -> RenderedRow {
    let mut own = rendered_at(spool, good.spool[i]);
    let drawn: Vec<RenderedRow> = shots
        .iter()
        .map(|&k| rendered_at(spool, good.spool[k as usize]))
        .collect();
    let picked: Vec<(&PromptText, &str)> = drawn.iter().filter_map(RenderedRow::as_shot).collect();
    if let Some(prompt) = own.prompt_mut() {
        crate::example::prepend_shots(prompt, &picked);
    }
    own
}
