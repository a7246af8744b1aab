//! Building one dataset of a Plan, streamed: its sources are read row by
//! row; each row is filtered, rendered, given its split key, and — unless
//! few-shot examples make it wait for the split assignment — tokenized and
//! appended to the dataset's on-disk [`Store`] at once. What stays in
//! memory is a few numbers per row ([`GoodRows`]), never its text, so a
//! dataset larger than memory builds.
//!
//! Results are exactly those of building from all rows held at once: bad
//! rows are met in the same phases (reading, filtering and rendering in row
//! order; then split keys; then tokenizing), so `on_bad_row = fail` stops
//! at the same row and the report quotes the same first bad rows. Nothing
//! is dropped without being counted in the [`DatasetReport`].

use crate::assign::{self, ROW};
use crate::example::{
    example_kind, render_row, tokenize_row, ExampleKind, RenderedRow, RowProblem, RowTokens,
    Tokenized,
};
use crate::report::{BadRowNote, DatasetReport, SourceReport};
use crate::spool::{Spool, SpoolMap};
use crate::store::{Entry, Examples, Meta, Store, StoreWriter};
use crate::tokenize::TextTokenizer;
use crate::PipelineError;
use ft_data::rng::{mix64, stable_hash};
use ft_data::split::Splitter;
use ft_data::{rows, BadRowReason, Row, SourceSpec};
use ft_plan::{DataSource, DatasetPlan, Head, Objective, OnBadRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

#[derive(Debug, Clone)]
pub struct SplitExamples {
    pub name: String,
    /// In source order, read from the store on demand.
    pub examples: Examples,
}

/// A dataset after building: its examples per split (in its store), and
/// its report.
#[derive(Debug, Clone)]
pub struct BuiltDataset {
    pub name: String,
    pub kind: ExampleKind,
    pub splits: Vec<SplitExamples>,
    pub report: DatasetReport,
    store: Arc<Store>,
}

impl BuiltDataset {
    pub fn split(&self, name: &str) -> Option<&SplitExamples> {
        self.splits.iter().find(|s| s.name == name)
    }

    /// The store the examples are read from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn from_store(store: Store) -> BuiltDataset {
        let store = Arc::new(store);
        let mut positions: Vec<Vec<u32>> = vec![Vec::new(); store.meta.splits.len()];
        for i in 0..store.len() {
            positions[store.entry(i).split as usize].push(i as u32);
        }
        let splits = store
            .meta
            .splits
            .iter()
            .zip(positions)
            .map(|(name, p)| SplitExamples {
                name: name.clone(),
                examples: Examples::new(store.clone(), p),
            })
            .collect();
        BuiltDataset {
            name: store.meta.name.clone(),
            kind: store.meta.kind,
            splits,
            report: store.meta.report.clone(),
            store,
        }
    }
}

/// How many bad rows the report quotes with file and line.
const NOTED_BAD_ROWS: usize = 20;
/// Rows rendered, then tokenized together on all cores: at most this many,
/// and at most `BLOCK_TEXT` bytes of their text, so the block's share of
/// memory stays small whatever the rows' size.
const BLOCK: usize = 4096;
const BLOCK_TEXT: usize = 1 << 20;
const NO_BLOB: u64 = u64::MAX;

/// When a bad row is met, relative to the others (see the module docs).
#[derive(Clone, Copy)]
enum Phase {
    Read = 0,
    Split = 1,
    Tokenize = 2,
}

struct Reader<'a> {
    ds: &'a DatasetPlan,
    report: DatasetReport,
    /// The first bad rows of each phase, merged in phase order at the end.
    notes: [Vec<BadRowNote>; 3],
    /// The error a later phase ends the build with, once the earlier
    /// phases have met none.
    deferred: [Option<PipelineError>; 3],
}

impl Reader<'_> {
    /// A bad row: stop (`fail`) or count it under its reason (`skip`).
    fn bad(
        &mut self,
        phase: Phase,
        file: &Path,
        line: usize,
        key: String,
        msg: String,
    ) -> Result<(), PipelineError> {
        if self.ds.on_bad_row == OnBadRow::Fail {
            let e = PipelineError::BadRow {
                dataset: self.ds.name.clone(),
                file: file.to_path_buf(),
                line,
                reason: msg,
            };
            return match phase {
                Phase::Read => Err(e),
                _ => {
                    self.defer(phase, e);
                    Ok(())
                }
            };
        }
        *self.report.skipped.entry(key).or_default() += 1;
        let notes = &mut self.notes[phase as usize];
        if notes.len() < NOTED_BAD_ROWS {
            notes.push(BadRowNote {
                file: file.to_path_buf(),
                line,
                reason: msg,
            });
        }
        Ok(())
    }

    fn defer(&mut self, phase: Phase, e: PipelineError) {
        self.deferred[phase as usize].get_or_insert(e);
    }

    /// Whether the build already ends in an error: then tokenizing more
    /// rows cannot change the outcome.
    fn doomed(&self) -> bool {
        self.deferred.iter().any(Option::is_some)
    }

    fn end_phase(&mut self, phase: Phase) -> Result<(), PipelineError> {
        match self.deferred[phase as usize].take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
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

/// What the build keeps of every row that was read, passed the filter and
/// rendered ("good" rows, numbered in source order): a few numbers each.
#[derive(Default)]
pub(crate) struct GoodRows {
    /// Position among the rows read (the example id and few-shot draws
    /// derive from it).
    pub ordinal: Vec<u64>,
    /// Index into the build's file table.
    pub file: Vec<u32>,
    pub line: Vec<u64>,
    /// Per-split sources: which source the row came from.
    pub source: Vec<u32>,
    /// Hash splits: the key hash and (stratified) the stratum number.
    pub key: Vec<u64>,
    pub stratum: Vec<u32>,
    /// [`assign::text_hash`] of the row's leakage text.
    pub text: Vec<u64>,
    /// Offset of the row's spool record.
    pub spool: Vec<u64>,
    /// Offset of its example in the store; `NO_BLOB` when tokenizing
    /// refused the row (or has not happened yet).
    pub blob: Vec<u64>,
}

impl GoodRows {
    pub fn len(&self) -> usize {
        self.ordinal.len()
    }
}

/// A row waiting in the current block to be tokenized.
struct Pending {
    good: usize,
    rendered: RenderedRow,
    row: Value,
}

struct Build<'a> {
    r: Reader<'a>,
    tok: &'a TextTokenizer,
    kind: ExampleKind,
    head: &'a Head,
    splitter: Option<Result<Splitter, PipelineError>>,
    /// Few-shot datasets tokenize after the split assignment.
    shots: bool,
    good: GoodRows,
    files: Vec<PathBuf>,
    file_ids: HashMap<Arc<Path>, u32>,
    strata: HashMap<String, u32>,
    /// Until the pass over the source ends.
    spool: Option<Spool>,
    store: StoreWriter,
    pending: Vec<Pending>,
    /// Text bytes of the pending rows.
    pending_text: usize,
    ordinal: u64,
}

impl Build<'_> {
    fn file_id(&mut self, f: &Arc<Path>) -> u32 {
        if let Some(&id) = self.file_ids.get(f) {
            return id;
        }
        let id = self.files.len() as u32;
        self.files.push(f.to_path_buf());
        self.file_ids.insert(f.clone(), id);
        id
    }

    fn read(
        &mut self,
        source: u32,
        split: Option<&str>,
        spec: &SourceSpec,
    ) -> Result<(), PipelineError> {
        let it = rows(spec).map_err(|e| PipelineError::Source {
            dataset: self.r.ds.name.clone(),
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
                Ok(row) => {
                    self.row(source, row)?;
                    self.ordinal += 1;
                }
                Err(bad) => {
                    src.bad_rows += 1;
                    let key = reason_key(&bad.reason);
                    self.r.bad(
                        Phase::Read,
                        &bad.file,
                        bad.line,
                        key,
                        bad.reason.to_string(),
                    )?;
                }
            }
        }
        self.r.report.sources.push(src);
        Ok(())
    }

    /// One row read: filter, render, split key; then tokenize it (or spool
    /// it for few-shot examples).
    fn row(&mut self, source: u32, row: Row) -> Result<(), PipelineError> {
        let ds = self.r.ds;
        // Filter, then render: a row the filter removes is counted as
        // filtered even if it would not have rendered.
        if let Some(filter) = &ds.filter {
            let counter = RowTokens {
                tok: self.tok,
                fields: &ds.fields,
                row: &row.value,
            };
            match filter.test(&row.value, &counter) {
                Ok(true) => {}
                Ok(false) => {
                    self.r.report.filtered += 1;
                    return Ok(());
                }
                Err(e) => {
                    let p = RowProblem::Eval(e);
                    return self.r.bad(
                        Phase::Read,
                        &row.file,
                        row.line,
                        format!("filter: {}", p.key()),
                        format!("the filter: {p}"),
                    );
                }
            }
        }
        let rendered = match render_row(self.kind, &ds.fields, self.head, &row.value) {
            Ok(r) => r,
            Err(p) => {
                return self
                    .r
                    .bad(Phase::Read, &row.file, row.line, p.key(), p.to_string())
            }
        };
        let (mut key, mut stratum) = (0, 0);
        if let Some(Ok(splitter)) = &self.splitter {
            if self.r.deferred[Phase::Split as usize].is_some() {
                // The build ends with that error; only reading errors
                // (which come first) can still change which one.
                return Ok(());
            }
            let item = splitter
                .key_hash(&row)
                .map_err(|e| ("split key".to_owned(), e.to_string()))
                .and_then(|h| Ok((h, assign::stratum_of(ds, splitter, &row)?)));
            match item {
                Ok((h, s)) => {
                    key = h;
                    if let Some(s) = s {
                        let n = self.strata.len() as u32;
                        stratum = *self.strata.entry(s).or_insert(n);
                    }
                }
                Err((k, msg)) => return self.r.bad(Phase::Split, &row.file, row.line, k, msg),
            }
        }
        let g = self.good.len();
        if g == u32::MAX as usize {
            return Err(PipelineError::Plan(format!(
                "dataset `{}` has more than {} rows",
                ds.name,
                u32::MAX
            )));
        }
        let file = self.file_id(&row.file);
        let leak_text = rendered.leak_text();
        let (text, norm) = assign::text_hash(&leak_text);
        let spool = self.spool.as_mut().expect("the pass is on");
        let spooled = if self.shots && !self.r.doomed() {
            let r = serde_json::to_vec(&rendered).expect("rendered rows serialize");
            let v = serde_json::to_vec(&row.value).expect("JSON values serialize");
            spool.put(&[norm.as_bytes(), &r, &v])?
        } else {
            spool.put(&[norm.as_bytes()])?
        };
        let good = &mut self.good;
        good.ordinal.push(self.ordinal);
        good.file.push(file);
        good.line.push(row.line as u64);
        if matches!(ds.source, DataSource::PerSplit(_)) {
            good.source.push(source);
        }
        if matches!(self.splitter, Some(Ok(_))) {
            good.key.push(key);
            good.stratum.push(stratum);
        }
        good.text.push(text);
        good.spool.push(spooled);
        good.blob.push(NO_BLOB);
        if !self.shots && !self.r.doomed() {
            self.pending.push(Pending {
                good: g,
                rendered,
                row: row.value,
            });
            self.pending_text += leak_text.len();
            if self.pending.len() >= BLOCK || self.pending_text >= BLOCK_TEXT {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Tokenize the pending rows (on all cores) and append them to the
    /// store in order.
    fn flush(&mut self) -> Result<(), PipelineError> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_text = 0;
        for (p, tokens) in pending.iter().zip(tokenize_all(self.tok, &pending)) {
            if self.r.doomed() {
                break;
            }
            match tokens {
                Ok(t) => self.good.blob[p.good] = self.store.append(&t, &p.row)?,
                // A chat template that refuses a row's messages (its
                // `raise_exception`) is that row's problem; others stop.
                Err(PipelineError::ChatTemplate(msg)) => {
                    let file = self.files[self.good.file[p.good] as usize].clone();
                    let line = self.good.line[p.good] as usize;
                    let key = "chat template refused the row".to_owned();
                    self.r.bad(Phase::Tokenize, &file, line, key, msg)?;
                }
                Err(e) => self.r.defer(Phase::Tokenize, e),
            }
        }
        Ok(())
    }

    /// Few-shot datasets: now that splits are known, every spooled row gets
    /// its shots and is tokenized.
    fn shots_pass(
        &mut self,
        seed: u64,
        names: &[String],
        split_of: &[u32],
        spool: &SpoolMap,
    ) -> Result<(), PipelineError> {
        let ds = self.r.ds;
        let Some(shots) = &ds.shots else {
            return Ok(());
        };
        let pool = assign::shot_pool(ds, shots.count, &shots.split, names, split_of)?;
        for i in 0..self.good.len() {
            let picked =
                assign::pick_shots(ds, seed, shots.count, &shots.split, &pool, &self.good, i)?;
            if self.r.doomed() {
                // A row already failed to tokenize: only a shots error
                // (which the original met first) can still change the outcome.
                continue;
            }
            let rendered = assign::with_shots(spool, &self.good, i, &picked);
            let row_json = spool.part(self.good.spool[i], ROW);
            self.pending_text += row_json.len();
            let row = serde_json::from_slice(row_json).expect("spooled by this build");
            self.pending.push(Pending {
                good: i,
                rendered,
                row,
            });
            if self.pending.len() >= BLOCK || self.pending_text >= BLOCK_TEXT {
                self.flush()?;
            }
        }
        self.flush()
    }
}

/// Build a dataset into a store: the cache entry `dest` = (folder, key), or
/// an anonymous temporary file.
#[allow(clippy::too_many_arguments)]
pub fn build_dataset(
    ds: &DatasetPlan,
    task: u16,
    head: &Head,
    objective: &Objective,
    seed: u64,
    tok: &TextTokenizer,
    dest: Option<(&Path, &str)>,
) -> Result<BuiltDataset, PipelineError> {
    let kind = example_kind(&ds.name, &ds.fields, objective)?;
    if ds.shots.is_some() && !matches!(kind, ExampleKind::Completion | ExampleKind::Pair) {
        return Err(PipelineError::Plan(format!(
            "dataset `{}`: `shots` are prepended to a `prompt`; this dataset has none",
            ds.name
        )));
    }
    let splitter = match (&ds.source, &ds.split) {
        (DataSource::Single(_), Some(spec)) => Some(
            Splitter::new(spec.clone())
                .map_err(|e| PipelineError::Plan(format!("dataset `{}`: {e}", ds.name))),
        ),
        _ => None,
    };
    let mut b = Build {
        r: Reader {
            ds,
            report: DatasetReport {
                name: ds.name.clone(),
                ..DatasetReport::default()
            },
            notes: Default::default(),
            deferred: Default::default(),
        },
        tok,
        kind,
        head,
        splitter,
        shots: ds.shots.is_some(),
        good: GoodRows::default(),
        files: Vec::new(),
        file_ids: HashMap::new(),
        strata: HashMap::new(),
        spool: Some(Spool::new(dest.map(|d| d.0))?),
        store: StoreWriter::new(dest)?,
        pending: Vec::new(),
        pending_text: 0,
        ordinal: 0,
    };
    if let Some(Err(e)) = &b.splitter {
        // An invalid split spec is met before any split key.
        b.r.defer(Phase::Split, e.clone());
    }
    match &ds.source {
        DataSource::Single(spec) => b.read(0, None, spec)?,
        DataSource::PerSplit(parts) => {
            for (k, (name, spec)) in parts.iter().enumerate() {
                b.read(k as u32, Some(name), spec)?;
            }
        }
    }
    b.flush()?;
    b.r.end_phase(Phase::Split)?;
    let splitter = b
        .splitter
        .take()
        .map(|s| s.expect("an error ended the build"));
    let (names, split_of) = assign::assign(ds, splitter.as_ref(), &b.good);
    // The key hashes and strata are spent.
    b.good.key = Vec::new();
    b.good.stratum = Vec::new();
    let spool = b.spool.take().expect("the pass is over").finish()?;
    b.r.report.leaks = assign::leaks(&names, &split_of, &b.good, &b.files, &spool);
    b.shots_pass(seed, &names, &split_of, &spool)?;
    drop(spool);
    b.r.end_phase(Phase::Tokenize)?;

    let mut report = b.r.report;
    report.bad_rows =
        b.r.notes
            .into_iter()
            .flatten()
            .take(NOTED_BAD_ROWS)
            .collect();
    let name_hash = stable_hash(ds.name.as_bytes());
    let good = &b.good;
    // Streamed into the store's index, never collected.
    let count = good.blob.iter().filter(|&&o| o != NO_BLOB).count();
    let entries = (0..good.len())
        .filter(|&g| good.blob[g] != NO_BLOB)
        .map(|g| Entry {
            offset: good.blob[g],
            id: mix64(name_hash ^ mix64(good.ordinal[g] + 1)),
            line: good.line[g],
            file: good.file[g],
            split: split_of[g],
        });
    let meta = Meta {
        name: ds.name.clone(),
        kind,
        splits: names,
        files: b.files,
        report,
    };
    let store = b.store.finish(count, entries, &meta, task)?;
    Ok(BuiltDataset::from_store(store))
}

/// Tokenize a block of rows on all cores: rows are cut into one contiguous
/// chunk per thread and the results joined in row order, so the output is
/// the same whatever the number of threads.
fn tokenize_all(tok: &TextTokenizer, rows: &[Pending]) -> Vec<Result<Tokenized, PipelineError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(64);
    std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|rows| {
                s.spawn(move || {
                    rows.iter()
                        .map(|p| tokenize_row(tok, &p.rendered))
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
