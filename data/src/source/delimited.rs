//! CSV and TSV through the `csv` crate: RFC 4180 quoting (a quote only
//! starts a quoted field at the start of the field, so `9" TV` in a TSV
//! cell is read as is), any delimiter, `\n`/`\r\n`/`\r` line ends, blank
//! lines skipped.
//!
//! The reader runs in flexible mode so that a row with the wrong number of
//! fields is a bad row with its line, not the end of the file. Cells that
//! are JSON number literals become numbers (see [`crate::typed_cell`]);
//! all other cells, including empty ones, are strings.
//!
//! `\r\n` is turned into `\n` before the CSV reader sees the bytes, and a
//! final `\n` is added if the file lacks one: the `csv` crate counts lines
//! by `\n` only, and leaves the `\n` of a `\r\n` for the next record, which
//! made line numbers of CRLF files wrong (see [`line_of`]). A `\r\n` inside a
//! quoted cell thereby becomes `\n`, which is what a model should see anyway.

use super::{io_err, BadRow, BadRowReason, Format, Row, SourceError, SourceSpec};
use crate::value::typed_cell;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Header {
    pub(crate) names: Vec<String>,
    /// The header row's line, if the file has one.
    pub(crate) line: Option<usize>,
}

pub(crate) struct DelimitedRows {
    file: Arc<Path>,
    reader: csv::Reader<CrlfToLf>,
    names: Vec<Arc<str>>,
    record: csv::ByteRecord,
    /// Without a header row, the first data cell may carry the UTF-8 BOM.
    strip_bom: bool,
    done: bool,
}

fn builder(spec: &SourceSpec) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    let delim = spec.delimiter.unwrap_or(match spec.format {
        Format::Tsv => b'\t',
        _ => b',',
    });
    b.delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024);
    b
}

/// The 1-based line where the record just read starts.
///
/// Not `rec.position()`: the csv crate takes that before skipping blank
/// lines, so every blank line shifted later rows by one. Instead count back
/// from the line after the record (the input always ends with `\n`, see
/// [`CrlfToLf`], so every record has a terminator) over the newlines inside
/// its quoted cells.
fn line_of<R: Read>(reader: &csv::Reader<R>, rec: &csv::ByteRecord) -> usize {
    let inner: usize = rec
        .iter()
        .map(|f| f.iter().filter(|&&b| b == b'\n').count())
        .sum();
    (reader.position().line() as usize).saturating_sub(1 + inner)
}

/// Open the file and consume its header row (if it has one).
fn open_reader(
    spec: &SourceSpec,
    path: &Path,
) -> Result<(csv::Reader<CrlfToLf>, Header), SourceError> {
    let f = File::open(path).map_err(|e| io_err(path, &e))?;
    let mut reader = builder(spec).from_reader(CrlfToLf::new(f));
    let has_header = spec.header.unwrap_or(spec.columns.is_none());
    if !has_header {
        let Some(cols) = &spec.columns else {
            return Err(SourceError::BadSpec {
                msg: "a file without a header row needs `columns`".into(),
            });
        };
        check_names(path, 0, cols)?;
        return Ok((
            reader,
            Header {
                names: cols.clone(),
                line: None,
            },
        ));
    }
    let mut rec = csv::ByteRecord::new();
    let bad = |line, msg: String| SourceError::BadHeader {
        path: path.to_path_buf(),
        line,
        msg,
    };
    match reader.read_byte_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return Err(bad(1, "no header row".into())),
        Err(e) => return Err(bad(1, e.to_string())),
    }
    let line = line_of(&reader, &rec);
    let mut names = Vec::with_capacity(rec.len());
    for (i, field) in rec.iter().enumerate() {
        let field = if i == 0 {
            field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
        } else {
            field
        };
        let name = std::str::from_utf8(field)
            .map_err(|_| bad(line, format!("column {} is not valid UTF-8", i + 1)))?;
        names.push(name.trim().to_owned());
    }
    if let Some(cols) = &spec.columns {
        if cols.len() != names.len() {
            return Err(bad(
                line,
                format!(
                    "the header has {} columns but `columns` names {}",
                    names.len(),
                    cols.len()
                ),
            ));
        }
        names = cols.clone();
    }
    check_names(path, line, &names)?;
    Ok((
        reader,
        Header {
            names,
            line: Some(line),
        },
    ))
}

fn check_names(path: &Path, line: usize, names: &[String]) -> Result<(), SourceError> {
    let mut seen = HashSet::new();
    for (i, n) in names.iter().enumerate() {
        let msg = if n.is_empty() {
            format!("column {} has no name", i + 1)
        } else if !seen.insert(n.as_str()) {
            format!("column `{n}` appears twice")
        } else {
            continue;
        };
        return Err(SourceError::BadHeader {
            path: path.to_path_buf(),
            line,
            msg,
        });
    }
    Ok(())
}

/// Read only the header (or the declared columns) of a file.
pub(crate) fn read_header(spec: &SourceSpec, path: &Path) -> Result<Header, SourceError> {
    open_reader(spec, path).map(|(_, h)| h)
}

impl DelimitedRows {
    pub(crate) fn open(spec: &SourceSpec, file: Arc<Path>) -> Result<DelimitedRows, SourceError> {
        let (reader, header) = open_reader(spec, &file)?;
        Ok(DelimitedRows {
            file,
            reader,
            strip_bom: header.line.is_none(),
            names: header.names.into_iter().map(Arc::from).collect(),
            record: csv::ByteRecord::new(),
            done: false,
        })
    }

    fn bad(&self, line: usize, reason: BadRowReason) -> Option<Result<Row, BadRow>> {
        Some(Err(BadRow {
            file: self.file.clone(),
            line,
            reason,
        }))
    }
}

impl Iterator for DelimitedRows {
    type Item = Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                if let csv::ErrorKind::Io(_) = e.kind() {
                    self.done = true;
                    return self.bad(line, BadRowReason::Io { msg: e.to_string() });
                }
                return self.bad(line, BadRowReason::MalformedCsv { msg: e.to_string() });
            }
        }
        let line = line_of(&self.reader, &self.record);
        if self.record.len() != self.names.len() {
            return self.bad(
                line,
                BadRowReason::WrongFieldCount {
                    expected: self.names.len(),
                    found: self.record.len(),
                },
            );
        }
        let mut map = Map::new();
        let strip_bom = std::mem::take(&mut self.strip_bom);
        for (i, (name, cell)) in self.names.iter().zip(self.record.iter()).enumerate() {
            let cell = match cell.strip_prefix(b"\xEF\xBB\xBF") {
                Some(rest) if i == 0 && strip_bom => rest,
                _ => cell,
            };
            let Ok(text) = std::str::from_utf8(cell) else {
                return self.bad(line, BadRowReason::InvalidUtf8);
            };
            map.insert(name.to_string(), typed_cell(text));
        }
        Some(Ok(Row {
            file: self.file.clone(),
            line,
            value: Value::Object(map),
        }))
    }
}

/// A reader that drops each `\r` directly followed by `\n`.
pub(crate) struct CrlfToLf {
    src: File,
    buf: Box<[u8]>,
    /// A `\r` at the end of the last chunk, not yet known to precede `\n`.
    held_cr: bool,
    /// The last byte handed out (to add a final `\n` when missing).
    last: Option<u8>,
}

impl CrlfToLf {
    fn new(src: File) -> CrlfToLf {
        CrlfToLf {
            src,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            held_cr: false,
            last: None,
        }
    }
}

impl Read for CrlfToLf {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // Read at most out.len() - 1 bytes so a held `\r` always fits.
        let want = out.len().saturating_sub(1).min(self.buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.src.read(&mut self.buf[..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        let mut o = 0;
        if n == 0 {
            if std::mem::take(&mut self.held_cr) {
                out[0] = b'\r';
                self.last = Some(b'\r');
                return Ok(1);
            }
            if self.last.is_some_and(|b| b != b'\n') {
                out[0] = b'\n';
                self.last = Some(b'\n');
                return Ok(1);
            }
            return Ok(0);
        }
        if std::mem::take(&mut self.held_cr) && self.buf[0] != b'\n' {
            out[o] = b'\r';
            o += 1;
        }
        let chunk = &self.buf[..n];
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\r' {
                match chunk.get(i + 1) {
                    Some(b'\n') => continue,
                    Some(_) => {}
                    None => {
                        self.held_cr = true;
                        continue;
                    }
                }
            }
            out[o] = b;
            o += 1;
        }
        if o == 0 {
            // The chunk was a lone held `\r`: ask for more rather than
            // signal end of file.
            return self.read(out);
        }
        self.last = Some(out[o - 1]);
        Ok(o)
    }
}
