//! Building one dataset of a Plan: read its sources (streamed), deal with
//! bad rows (`on_bad_row`), apply its filter, render every row, assign
//! splits (hash, stratified by a field or the derived label, or per-split
//! files), prepend few-shot examples, tokenize, and report leakage.
//! Nothing is dropped without being counted in the [`DatasetReport`].

use crate::example::{
    example_kind, label_text, prepend_shots, render_row, tokenize_row, ExampleKind, PromptText,
    RenderedRow, RowProblem, RowTokens, Tokenized,
};
use crate::report::{BadRowNote, DatasetReport, SourceReport};
use crate::tokenize::TextTokenizer;
use crate::PipelineError;
use ft_data::rng::{mix64, stable_hash, SplitMix64};
use ft_data::split::{find_leaks, normalize_text, LeakItem, SplitItem, Splitter};
use ft_data::{rows, BadRowReason, Row, SourceSpec};
use ft_plan::{DataSource, DatasetPlan, Head, Objective, OnBadRow, Stratify};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One example, tokenized, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Stable id: the dataset's name and the row's position in its source.
    pub id: u64,
    /// Index of the dataset in `Plan::datasets` (the task, for per-task
    /// metrics).
    pub task: u16,
    pub file: PathBuf,
    pub line: usize,
    pub tokens: Tokenized,
    /// The row's fields, for stage filters and ordering keys.
    pub row: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitExamples {
    pub name: String,
    /// In source order.
    pub examples: Vec<Example>,
}

/// A dataset after building: its examples per split, and its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltDataset {
    pub name: String,
    pub kind: ExampleKind,
    pub splits: Vec<SplitExamples>,
    pub report: DatasetReport,
}

impl BuiltDataset {
    pub fn split(&self, name: &str) -> Option<&SplitExamples> {
        self.splits.iter().find(|s| s.name == name)
    }
}

/// How many bad rows the report quotes with file and line.
const NOTED_BAD_ROWS: usize = 20;

struct Reader<'a> {
    ds: &'a DatasetPlan,
    report: DatasetReport,
}

impl Reader<'_> {
    /// A bad row: stop (`fail`) or count it under its reason (`skip`).
    fn bad(
        &mut self,
        file: &Path,
        line: usize,
        key: String,
        msg: String,
    ) -> Result<(), PipelineError> {
        if self.ds.on_bad_row == OnBadRow::Fail {
            return Err(PipelineError::BadRow {
                dataset: self.ds.name.clone(),
                file: file.to_path_buf(),
                line,
                reason: msg,
            });
        }
        *self.report.skipped.entry(key).or_default() += 1;
        if self.report.bad_rows.len() < NOTED_BAD_ROWS {
            self.report.bad_rows.push(BadRowNote {
                file: file.to_path_buf(),
                line,
                reason: msg,
            });
        }
        Ok(())
    }

    fn read(
        &mut self,
        split: Option<&str>,
        spec: &SourceSpec,
        out: &mut Vec<(Option<String>, Row)>,
    ) -> Result<(), PipelineError> {
        let it = rows(spec).map_err(|e| PipelineError::Source {
            dataset: self.ds.name.clone(),
            error: e,
        })?;
        let files: Vec<PathBuf> = it.files().map(Path::to_path_buf).collect();
        let mut src = SourceReport {
            split: split.map(str::to_owned),
            pattern: spec.pattern.clone(),
            files,
            rows_read: 0,
            bad_rows: 0,
        };
        for item in it {
            src.rows_read += 1;
            match item {
                Ok(row) => out.push((split.map(str::to_owned), row)),
                Err(bad) => {
                    src.bad_rows += 1;
                    let key = reason_key(&bad.reason);
                    self.bad(&bad.file, bad.line, key, bad.reason.to_string())?;
                }
            }
        }
        self.report.sources.push(src);
        Ok(())
    }
}

/// The report's name for a source-level reason (messages without their
/// per-row detail, so equal reasons count together).
fn reason_key(r: &BadRowReason) -> String {
    match r {
        BadRowReason::MalformedJson { .. } => "malformed JSON".into(),
        BadRowReason::MalformedYaml { .. } => "malformed YAML".into(),
        BadRowReason::MalformedCsv { .. } => "malformed CSV".into(),
        BadRowReason::NotAnObject { .. } => "not a record".into(),
        BadRowReason::WrongFieldCount { .. } => "wrong field count".into(),
        BadRowReason::InvalidUtf8 => "invalid UTF-8".into(),
        BadRowReason::RecordsNotFound { .. } | BadRowReason::NotAList { .. } => {
            "no record list".into()
        }
        BadRowReason::MissingField { field } => format!("missing field `{field}`"),
        BadRowReason::WrongType { field, .. } => format!("wrong type: `{field}`"),
        BadRowReason::EmptyField { field } => format!("empty `{field}`"),
        BadRowReason::File { .. } | BadRowReason::Io { .. } => "unreadable file".into(),
    }
}

/// A row that survived reading, filtering and rendering.
struct Good {
    ordinal: usize,
    split: Option<String>,
    row: Row,
    rendered: RenderedRow,
}

pub fn build_dataset(
    ds: &DatasetPlan,
    task: u16,
    head: &Head,
    objective: &Objective,
    seed: u64,
    tok: &TextTokenizer,
) -> Result<BuiltDataset, PipelineError> {
    let kind = example_kind(&ds.name, &ds.fields, objective)?;
    if ds.shots.is_some() && !matches!(kind, ExampleKind::Completion | ExampleKind::Pair) {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: `shots` are prepended to a `prompt`; this dataset has none",
            ds.name
        )));
    }
    let mut r = Reader {
        ds,
        report: DatasetReport {
            name: ds.name.clone(),
            ..DatasetReport::default()
        },
    };
    let mut raw = Vec::new();
    match &ds.source {
        DataSource::Single(spec) => r.read(None, spec, &mut raw)?,
        DataSource::PerSplit(parts) => {
            for (name, spec) in parts {
                r.read(Some(name), spec, &mut raw)?;
            }
        }
    }

    // Filter, then render: a row the filter removes is counted as filtered
    // even if it would not have rendered.
    let mut good = Vec::with_capacity(raw.len());
    for (ordinal, (split, row)) in raw.into_iter().enumerate() {
        if let Some(filter) = &ds.filter {
            let counter = RowTokens {
                tok,
                fields: &ds.fields,
                row: &row.value,
            };
            match filter.test(&row.value, &counter) {
                Ok(true) => {}
                Ok(false) => {
                    r.report.filtered += 1;
                    continue;
                }
                Err(e) => {
                    let p = RowProblem::Eval(e);
                    r.bad(
                        &row.file,
                        row.line,
                        format!("filter: {}", p.key()),
                        format!("the filter: {p}"),
                    )?;
                    continue;
                }
            }
        }
        match render_row(kind, &ds.fields, head, &row.value) {
            Ok(rendered) => good.push(Good {
                ordinal,
                split,
                row,
                rendered,
            }),
            Err(p) => r.bad(&row.file, row.line, p.key(), p.to_string())?,
        }
    }

    let (names, split_of) = assign_splits(&mut r, &mut good)?;
    let leak_texts: Vec<String> = good.iter().map(|g| g.rendered.leak_text()).collect();
    r.report.leaks = find_leaks(good.iter().zip(&split_of).zip(&leak_texts).map(
        |((g, &j), text)| LeakItem {
            split: &names[j],
            file: &g.row.file,
            line: g.row.line,
            text,
        },
    ));
    if let Some(shots) = &ds.shots {
        add_shots(
            ds,
            seed,
            shots.count,
            &shots.split,
            &names,
            &split_of,
            &mut good,
        )?;
    }

    let mut splits: Vec<SplitExamples> = names
        .iter()
        .map(|n| SplitExamples {
            name: n.clone(),
            examples: Vec::new(),
        })
        .collect();
    let name_hash = stable_hash(ds.name.as_bytes());
    let tokenized = tokenize_all(tok, &good);
    for ((g, &j), tokens) in good.into_iter().zip(&split_of).zip(tokenized) {
        let tokens = match tokens {
            Ok(t) => t,
            // A chat template that refuses a row's messages (its
            // `raise_exception`) is that row's problem; others stop.
            Err(PipelineError::ChatTemplate(msg)) => {
                r.bad(
                    &g.row.file,
                    g.row.line,
                    "chat template refused the row".into(),
                    msg,
                )?;
                continue;
            }
            Err(e) => return Err(e),
        };
        splits[j].examples.push(Example {
            id: mix64(name_hash ^ mix64(g.ordinal as u64 + 1)),
            task,
            file: g.row.file.to_path_buf(),
            line: g.row.line,
            tokens,
            row: g.row.value,
        });
    }
    Ok(BuiltDataset {
        name: ds.name.clone(),
        kind,
        splits,
        report: r.report,
    })
}

/// Tokenize every row, on all cores: rows are cut into one contiguous
/// chunk per thread and the results joined in row order, so the output is
/// the same whatever the number of threads.
fn tokenize_all(tok: &TextTokenizer, good: &[Good]) -> Vec<Result<Tokenized, PipelineError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = good.len().div_ceil(threads).max(64);
    std::thread::scope(|s| {
        let handles: Vec<_> = good
            .chunks(chunk)
            .map(|rows| {
                s.spawn(move || {
                    rows.iter()
                        .map(|g| tokenize_row(tok, &g.rendered))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a tokenizing thread panicked"))
            .collect()
    })
}

/// Split names (declared order) and each good row's split index. Rows
/// whose key or stratum cannot be read are bad rows (and removed).
fn assign_splits(
    r: &mut Reader,
    good: &mut Vec<Good>,
) -> Result<(Vec<String>, Vec<usize>), PipelineError> {
    let ds = r.ds;
    match (&ds.source, &ds.split) {
        (DataSource::PerSplit(parts), _) => {
            let names: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
            let of = good
                .iter()
                .map(|g| {
                    let s = g.split.as_deref().unwrap_or_default();
                    names.iter().position(|n| n == s).unwrap_or(0)
                })
                .collect();
            Ok((names, of))
        }
        (DataSource::Single(_), None) => Ok((vec!["train".to_owned()], vec![0; good.len()])),
        (DataSource::Single(_), Some(spec)) => {
            let splitter = Splitter::new(spec.clone())
                .map_err(|e| PipelineError::Plan(format!("dataset `{}`: {e}", ds.name)))?;
            let mut items = Vec::with_capacity(good.len());
            let mut keep = Vec::with_capacity(good.len());
            for g in good.drain(..) {
                let item = (|| -> Result<SplitItem, (String, String)> {
                    let hash = splitter
                        .key_hash(&g.row)
                        .map_err(|e| ("split key".to_owned(), e.to_string()))?;
                    let stratum = match &ds.stratify {
                        Some(Stratify::Label) => Some(
                            label_text(&ds.fields, &g.row.value)
                                .map_err(|p| (p.key(), p.to_string()))?,
                        ),
                        Some(Stratify::Field(f)) => Some(match g.row.get(f) {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => {
                                return Err((
                                    format!("missing field `{f}`"),
                                    format!("missing field `{f}` (stratify)"),
                                ))
                            }
                        }),
                        None => {
                            splitter
                                .item(&g.row)
                                .map_err(|e| ("split key".to_owned(), e.to_string()))?
                                .stratum
                        }
                    };
                    Ok(SplitItem { hash, stratum })
                })();
                match item {
                    Ok(it) => {
                        items.push(it);
                        keep.push(g);
                    }
                    Err((key, msg)) => r.bad(&g.row.file, g.row.line, key, msg)?,
                }
            }
            *good = keep;
            let a = splitter
                .assign(&items)
                .map_err(|e| PipelineError::Plan(format!("dataset `{}`: {e}", ds.name)))?;
            Ok((a.names, a.split_of))
        }
    }
}

/// Prepend `count` few-shot examples from split `from` to every row's
/// prompt. Draws are a function of (seed, dataset, row), never the row
/// itself nor a row with the same normalised text.
fn add_shots(
    ds: &DatasetPlan,
    seed: u64,
    count: usize,
    from: &str,
    names: &[String],
    split_of: &[usize],
    good: &mut [Good],
) -> Result<(), PipelineError> {
    let Some(j) = names.iter().position(|n| n == from) else {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: shots come from split `{from}`, which it does not have",
            ds.name
        )));
    };
    let pool: Vec<usize> = (0..good.len()).filter(|&i| split_of[i] == j).collect();
    if pool.is_empty() && count > 0 && !good.is_empty() {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: shots come from split `{from}`, which has no rows",
            ds.name
        )));
    }
    let texts: Vec<String> = good
        .iter()
        .map(|g| normalize_text(&g.rendered.leak_text()))
        .collect();
    let shots: Vec<Option<(PromptText, String)>> = good
        .iter()
        .map(|g| g.rendered.as_shot().map(|(p, c)| (p.clone(), c.to_owned())))
        .collect();
    let base = mix64(seed ^ stable_hash(ds.name.as_bytes()) ^ 0x5348_4F54_5321);
    for i in 0..good.len() {
        let allowed = |k: usize| k != i && texts[k] != texts[i];
        let mut rng = SplitMix64::new(mix64(base ^ mix64(good[i].ordinal as u64)));
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
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
        let picked: Vec<(&PromptText, &str)> = chosen
            .iter()
            .filter_map(|&k| shots[k].as_ref().map(|(p, c)| (p, c.as_str())))
            .collect();
        if let Some(prompt) = good[i].rendered.prompt_mut() {
            prepend_shots(prompt, &picked);
        }
    }
    Ok(())
}
