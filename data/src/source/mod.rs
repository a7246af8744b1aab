//! Streaming readers for dataset files: JSON Lines, JSON, CSV/TSV, YAML and
//! chatterbot-style YAML conversations.
//!
//! Two entry points:
//! - [`rows`] streams every row of every file a [`SourceSpec`] names, for the
//!   runtime. Files are read incrementally (never slurped whole), so memory
//!   stays bounded by the largest single record.
//! - [`probe`] reads only the header or the first `max_rows` rows, for the
//!   compiler's "world" stage: which fields exist, of which kind, first seen
//!   at which file and line. It must be cheap (~1 ms), since the language
//!   server runs it on every edit.
//!
//! A problem with one row (malformed JSON, wrong field count, invalid
//! UTF-8, ...) is a [`BadRow`] with its file and 1-based line, and the reader
//! goes on with the next row. A problem that makes the rest of a file
//! unreadable (a YAML syntax error, a broken JSON array, a missing `records`
//! key) is also reported as a `BadRow` — with [`BadRowReason::is_fatal`]
//! true — and that file stops there; the next file of a glob is still read.
//! Problems found before any row is read (no such file, a glob that matched
//! nothing, an empty file, a bad CSV header of the first file) are a
//! [`SourceError`].
//!
//! Explicit per-split files (`train.jsonl`, `val.jsonl`) are not this
//! module's business: the caller makes one `SourceSpec` per file and labels
//! the rows itself.

mod delimited;
mod json;
mod jsonl;
mod yaml;

use crate::value::{is_empty_value, visit_paths, ValueKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file formats ft reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A JSON array of records, or an object holding one under `records`.
    Json,
    /// Comma-separated values (any delimiter via `delimiter`).
    Csv,
    /// Tab-separated values.
    Tsv,
    /// A YAML list of mappings, or an object holding one under `records`.
    Yaml,
    /// Chatterbot-corpus YAML: `conversations: [[s0, s1, ...], ...]`; every
    /// consecutive pair `(s_i, s_{i+1})` becomes a row
    /// `{question: s_i, answer: s_{i+1}}`. See [`yaml`](self) module docs.
    YamlPairs,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Yaml => "yaml",
            Format::YamlPairs => "yaml_pairs",
        }
    }
}

/// What to read. Relative paths must already be resolved by the caller
/// (against the recipe's folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub format: Format,
    /// A file, or a glob (`data/*.yml`); the files a glob matches are read
    /// in sorted path order, so the row order is the same on every machine.
    pub pattern: PathBuf,
    /// CSV/TSV: the column names. Without `header` (or with
    /// `header: Some(false)`) the file has no header row; with
    /// `header: Some(true)` the file's header row is skipped and these names
    /// replace it (the counts must agree).
    pub columns: Option<Vec<String>>,
    /// CSV/TSV: the field delimiter; default `,` for CSV and tab for TSV.
    pub delimiter: Option<u8>,
    /// CSV/TSV: whether the first row is a header. Default: true unless
    /// `columns` is given.
    pub header: Option<bool>,
    /// JSON/YAML: dotted key path of the record list inside a top-level
    /// object (`"data"`, `"payload.items"`). `YamlPairs`: the key of the
    /// conversation list, default `conversations`.
    pub records: Option<String>,
}

impl SourceSpec {
    /// A spec with every option at its default.
    pub fn new(format: Format, pattern: impl Into<PathBuf>) -> SourceSpec {
        SourceSpec {
            format,
            pattern: pattern.into(),
            columns: None,
            delimiter: None,
            header: None,
            records: None,
        }
    }
}

/// One row: an object value, and where it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub file: Arc<Path>,
    /// 1-based line where the row starts.
    pub line: usize,
    /// Always a JSON object.
    pub value: Value,
}

impl Row {
    /// Dotted-path lookup into the row (see [`crate::get_path`]).
    pub fn get(&self, path: &str) -> Option<&Value> {
        crate::value::get_path(&self.value, path)
    }
}

/// A row that could not be used, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadRow {
    pub file: Arc<Path>,
    /// 1-based line where the bad row starts (for file-level problems, the
    /// line where reading stopped).
    pub line: usize,
    pub reason: BadRowReason,
}

/// Why a row is bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BadRowReason {
    /// A JSON record that is not valid JSON. Fatal for the file only when the
    /// structure of a `.json` document is broken (record boundaries lost).
    MalformedJson { msg: String, fatal: bool },
    /// A YAML syntax error: always fatal for the file.
    MalformedYaml { msg: String },
    /// A CSV record the CSV reader rejected.
    MalformedCsv { msg: String },
    /// A record that parsed but is not an object (`[1,2]`, `"x"`, `3`).
    NotAnObject { found: ValueKind },
    /// A CSV row with the wrong number of fields, or a YAML conversation
    /// with fewer than two turns (`expected` is then the minimum).
    WrongFieldCount { expected: usize, found: usize },
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// The record list is not where `records` says (fatal).
    RecordsNotFound { key: String },
    /// The record list is not a list (fatal).
    NotAList { found: ValueKind },
    /// A field a [`FieldCheck`] requires is absent.
    MissingField { field: String },
    /// A field has the wrong kind of value.
    WrongType {
        field: String,
        expected: ValueKind,
        found: ValueKind,
    },
    /// A required field is null, blank, or an empty list/object.
    EmptyField { field: String },
    /// A later file of a glob could not be opened or its header is bad (the
    /// first file's problems are a [`SourceError`] instead). Fatal.
    File { msg: String },
    /// Reading failed mid-file (fatal).
    Io { msg: String },
}

impl BadRowReason {
    /// Whether the rest of the file was skipped after this.
    pub fn is_fatal(&self) -> bool {
        match self {
            BadRowReason::MalformedJson { fatal, .. } => *fatal,
            BadRowReason::MalformedYaml { .. }
            | BadRowReason::RecordsNotFound { .. }
            | BadRowReason::NotAList { .. }
            | BadRowReason::File { .. }
            | BadRowReason::Io { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for BadRowReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRowReason::MalformedJson { msg, .. } => write!(f, "malformed JSON: {msg}"),
            BadRowReason::MalformedYaml { msg } => write!(f, "malformed YAML: {msg}"),
            BadRowReason::MalformedCsv { msg } => write!(f, "malformed CSV: {msg}"),
            BadRowReason::NotAnObject { found } => {
                write!(f, "expected a record (an object), found a {found}")
            }
            BadRowReason::WrongFieldCount { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            BadRowReason::InvalidUtf8 => write!(f, "invalid UTF-8"),
            BadRowReason::RecordsNotFound { key } => {
                write!(f, "no record list under key `{key}`")
            }
            BadRowReason::NotAList { found } => {
                write!(f, "expected a list of records, found a {found}")
            }
            BadRowReason::MissingField { field } => write!(f, "missing field `{field}`"),
            BadRowReason::WrongType {
                field,
                expected,
                found,
            } => write!(f, "field `{field}`: expected a {expected}, found a {found}"),
            BadRowReason::EmptyField { field } => write!(f, "field `{field}` is empty"),
            BadRowReason::File { msg } => f.write_str(msg),
            BadRowReason::Io { msg } => write!(f, "read error: {msg}"),
        }
    }
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// Problems found before any row could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceError {
    /// A plain path (no glob characters) that does not exist.
    NotFound {
        pattern: PathBuf,
    },
    /// A glob that matched no file.
    GlobMatchedNothing {
        pattern: PathBuf,
    },
    /// A glob that is not a valid pattern.
    BadPattern {
        pattern: PathBuf,
        msg: String,
    },
    Io {
        path: PathBuf,
        msg: String,
    },
    /// A file of zero bytes.
    EmptyFile {
        path: PathBuf,
    },
    /// A CSV/TSV header that cannot be used (empty or duplicate names,
    /// invalid UTF-8, a count that disagrees with `columns`, or a glob's
    /// files with different headers).
    BadHeader {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// An option that makes no sense for the format (`columns` on JSONL).
    BadSpec {
        msg: String,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::NotFound { pattern } => write!(f, "no such file: {}", pattern.display()),
            SourceError::GlobMatchedNothing { pattern } => {
                write!(f, "no file matches {}", pattern.display())
            }
            SourceError::BadPattern { pattern, msg } => {
                write!(f, "bad file pattern {}: {msg}", pattern.display())
            }
            SourceError::Io { path, msg } => write!(f, "{}: {msg}", path.display()),
            SourceError::EmptyFile { path } => write!(f, "{}: the file is empty", path.display()),
            SourceError::BadHeader { path, line, msg } => {
                write!(f, "{}:{line}: bad header: {msg}", path.display())
            }
            SourceError::BadSpec { msg } => f.write_str(msg),
        }
    }
}

impl std::error::Error for SourceError {}

/// What probing found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Every file the pattern names, in reading order (not only those read).
    pub files: Vec<PathBuf>,
    /// Every field path seen, in order of first appearance (within a JSON
    /// object, keys come in sorted order; CSV columns in header order).
    pub fields: Vec<FieldInfo>,
    /// Rows read, good and bad (at most `max_rows`).
    pub rows_read: usize,
    pub bad_rows: Vec<BadRow>,
    /// CSV/TSV with a header: the header's line in the first file.
    pub header_line: Option<usize>,
}

impl Probe {
    /// The field with this exact dotted path, if seen.
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field seen while probing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// Dotted path (`meta.title`).
    pub name: String,
    /// Where it was first seen (for CSV with a header: the header line).
    pub file: PathBuf,
    pub line: usize,
    /// Kinds merged over the probed rows (null does not make it Mixed).
    pub kind: ValueKind,
    /// Seen as null in some probed row.
    pub nullable: bool,
    /// In how many of the good probed rows the field was present.
    pub rows_present: usize,
}

/// Stream every row of every file `spec` names.
///
/// Resolves the pattern and checks every file exists and is non-empty up
/// front; opens files one at a time as the iteration reaches them.
pub fn rows(spec: &SourceSpec) -> Result<Rows, SourceError> {
    check_spec(spec)?;
    let files = resolve_files(&spec.pattern)?;
    for f in &files {
        check_not_empty(f)?;
    }
    let mut it = Rows {
        spec: spec.clone(),
        files: files.into_iter().map(Arc::from).collect(),
        next_file: 0,
        current: None,
    };
    // Open the first file now so that its header problems are an error here.
    let first = it.files[0].clone();
    it.current = Some(open_file(spec, first)?);
    it.next_file = 1;
    Ok(it)
}

type FileRows = Box<dyn Iterator<Item = Result<Row, BadRow>> + Send>;

/// The row stream of [`rows`]: files in order, rows in file order.
pub struct Rows {
    spec: SourceSpec,
    files: Vec<Arc<Path>>,
    next_file: usize,
    current: Option<FileRows>,
}

impl Rows {
    /// The files being read, in order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|p| &**p)
    }
}

impl Iterator for Rows {
    type Item = Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(cur) = &mut self.current {
                match cur.next() {
                    Some(item) => return Some(item),
                    None => self.current = None,
                }
            }
            let file = self.files.get(self.next_file)?.clone();
            self.next_file += 1;
            match open_file(&self.spec, file.clone()) {
                Ok(r) => self.current = Some(r),
                Err(e) => {
                    let line = match &e {
                        SourceError::BadHeader { line, .. } => *line,
                        _ => 0,
                    };
                    return Some(Err(BadRow {
                        file,
                        line,
                        reason: BadRowReason::File { msg: e.to_string() },
                    }));
                }
            }
        }
    }
}

/// Read the header and at most `max_rows` rows (good or bad), across the
/// files in order, and report the fields seen.
///
/// For CSV/TSV with a header, every file's header is read (only the header
/// line) and must equal the first file's; the fields come from the header,
/// so a column is known even when `max_rows` is 0.
pub fn probe(spec: &SourceSpec, max_rows: usize) -> Result<Probe, SourceError> {
    check_spec(spec)?;
    let files = resolve_files(&spec.pattern)?;
    for f in &files {
        check_not_empty(f)?;
    }
    let mut fields: Vec<FieldInfo> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut header_line = None;
    if matches!(spec.format, Format::Csv | Format::Tsv) {
        let mut first: Option<Vec<String>> = None;
        for (i, f) in files.iter().enumerate() {
            let h = delimited::read_header(spec, f)?;
            if i == 0 {
                header_line = h.line;
                for name in &h.names {
                    index.insert(name.clone(), fields.len());
                    fields.push(FieldInfo {
                        name: name.clone(),
                        file: f.clone(),
                        line: h.line.unwrap_or(1),
                        kind: ValueKind::Null,
                        nullable: false,
                        rows_present: 0,
                    });
                }
                first = Some(h.names);
            } else if first.as_ref() != Some(&h.names) {
                return Err(SourceError::BadHeader {
                    path: f.clone(),
                    line: h.line.unwrap_or(1),
                    msg: format!(
                        "columns {:?} differ from {:?} in {}",
                        h.names,
                        first.as_deref().unwrap_or_default(),
                        files[0].display()
                    ),
                });
            }
        }
    }
    let mut rows_read = 0;
    let mut bad_rows = Vec::new();
    for f in &files {
        if rows_read >= max_rows {
            break;
        }
        let file: Arc<Path> = Arc::from(f.as_path());
        let reader = open_file(spec, file)?;
        for item in reader {
            if rows_read >= max_rows {
                break;
            }
            rows_read += 1;
            match item {
                Ok(row) => visit_paths(&row.value, &mut |path, v| {
                    let kind = ValueKind::of(v);
                    // Look up before inserting: most paths are already known,
                    // and this runs for every field of every probed row.
                    let i = match index.get(path) {
                        Some(&i) => i,
                        None => {
                            index.insert(path.to_owned(), fields.len());
                            fields.push(FieldInfo {
                                name: path.to_owned(),
                                file: row.file.to_path_buf(),
                                line: row.line,
                                kind: ValueKind::Null,
                                nullable: false,
                                rows_present: 0,
                            });
                            fields.len() - 1
                        }
                    };
                    let fi = &mut fields[i];
                    fi.kind = if fi.rows_present == 0 {
                        kind
                    } else {
                        fi.kind.merge(kind)
                    };
                    fi.nullable |= kind == ValueKind::Null;
                    fi.rows_present += 1;
                }),
                Err(bad) => bad_rows.push(bad),
            }
        }
    }
    Ok(Probe {
        files,
        fields,
        rows_read,
        bad_rows,
        header_line,
    })
}

/// A requirement on a row's field, checked by [`check_row`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCheck {
    /// Dotted path.
    pub field: String,
    /// The kind the value must have (`None`: any kind).
    pub kind: Option<ValueKind>,
    /// Whether null, blank strings and empty lists/objects are refused.
    pub non_empty: bool,
}

/// Check a row against field requirements: the first failing check makes
/// it a `BadRow` (MissingField, WrongType or EmptyField) at the row's line.
///
/// The runtime uses this to drop rows whose template fields are absent
/// instead of failing deep inside tokenization.
pub fn check_row(row: Row, checks: &[FieldCheck]) -> Result<Row, BadRow> {
    for c in checks {
        let reason = match row.get(&c.field) {
            None => Some(BadRowReason::MissingField {
                field: c.field.clone(),
            }),
            Some(v) if c.non_empty && is_empty_value(v) => Some(BadRowReason::EmptyField {
                field: c.field.clone(),
            }),
            Some(v) => match c.kind {
                // A null in an optional field (non_empty false) is accepted.
                Some(k) if !v.is_null() && ValueKind::of(v) != k => Some(BadRowReason::WrongType {
                    field: c.field.clone(),
                    expected: k,
                    found: ValueKind::of(v),
                }),
                _ => None,
            },
        };
        if let Some(reason) = reason {
            return Err(BadRow {
                file: row.file,
                line: row.line,
                reason,
            });
        }
    }
    Ok(row)
}

fn check_spec(spec: &SourceSpec) -> Result<(), SourceError> {
    let delimited = matches!(spec.format, Format::Csv | Format::Tsv);
    let bad = |what: &str| {
        Err(SourceError::BadSpec {
            msg: format!("`{what}` does not apply to {} files", spec.format.name()),
        })
    };
    if !delimited {
        if spec.columns.is_some() {
            return bad("columns");
        }
        if spec.delimiter.is_some() {
            return bad("delimiter");
        }
        if spec.header.is_some() {
            return bad("header");
        }
    }
    if matches!(spec.format, Format::Jsonl | Format::Csv | Format::Tsv) && spec.records.is_some() {
        return bad("records");
    }
    if let Some(cols) = &spec.columns {
        if cols.is_empty() {
            return Err(SourceError::BadSpec {
                msg: "`columns` is empty".into(),
            });
        }
    }
    Ok(())
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expand a file or glob pattern into a sorted list of files.
pub fn resolve_files(pattern: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let text = pattern.to_string_lossy();
    if !has_glob_chars(&text) {
        return match std::fs::metadata(pattern) {
            Ok(m) if m.is_file() => Ok(vec![pattern.to_path_buf()]),
            Ok(_) => Err(SourceError::Io {
                path: pattern.to_path_buf(),
                msg: "not a regular file".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SourceError::NotFound {
                pattern: pattern.to_path_buf(),
            }),
            Err(e) => Err(SourceError::Io {
                path: pattern.to_path_buf(),
                msg: e.to_string(),
            }),
        };
    }
    let paths = glob::glob(&text).map_err(|e| SourceError::BadPattern {
        pattern: pattern.to_path_buf(),
        msg: e.to_string(),
    })?;
    let mut files = Vec::new();
    for p in paths {
        match p {
            Ok(p) if p.is_file() => files.push(p),
            Ok(_) => {}
            Err(e) => {
                return Err(SourceError::Io {
                    path: e.path().to_path_buf(),
                    msg: e.error().to_string(),
                })
            }
        }
    }
    if files.is_empty() {
        return Err(SourceError::GlobMatchedNothing {
            pattern: pattern.to_path_buf(),
        });
    }
    files.sort();
    Ok(files)
}

fn check_not_empty(path: &Path) -> Result<(), SourceError> {
    let m = std::fs::metadata(path).map_err(|e| io_err(path, &e))?;
    if m.len() == 0 {
        return Err(SourceError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

pub(crate) fn io_err(path: &Path, e: &std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

fn open_file(spec: &SourceSpec, file: Arc<Path>) -> Result<FileRows, SourceError> {
    Ok(match spec.format {
        Format::Jsonl => Box::new(jsonl::JsonlRows::open(file)?),
        Format::Json => Box::new(json::JsonRows::open(file, spec.records.as_deref())?),
        Format::Csv | Format::Tsv => Box::new(delimited::DelimitedRows::open(spec, file)?),
        Format::Yaml => Box::new(yaml::YamlRows::open(file, spec.records.as_deref(), false)?),
        Format::YamlPairs => Box::new(yaml::YamlRows::open(
            file,
            Some(spec.records.as_deref().unwrap_or("conversations")),
            true,
        )?),
    })
}
