//! JSON Lines: one object per line. Blank lines are skipped (they are not
//! rows); each other line is one row or one bad row, so a broken line never
//! hides the lines after it.

use super::{io_err, BadRow, BadRowReason, Row, SourceError};
use crate::value::ValueKind;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct JsonlRows {
    file: Arc<Path>,
    reader: BufReader<File>,
    buf: Vec<u8>,
    line: usize,
    done: bool,
}

impl JsonlRows {
    pub(crate) fn open(file: Arc<Path>) -> Result<JsonlRows, SourceError> {
        let f = File::open(&file).map_err(|e| io_err(&file, &e))?;
        Ok(JsonlRows {
            file,
            reader: BufReader::with_capacity(64 * 1024, f),
            buf: Vec::new(),
            line: 0,
            done: false,
        })
    }

    fn bad(&self, reason: BadRowReason) -> Option<Result<Row, BadRow>> {
        Some(Err(BadRow {
            file: self.file.clone(),
            line: self.line,
            reason,
        }))
    }
}

impl Iterator for JsonlRows {
    type Item = Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    self.line += 1;
                    return self.bad(BadRowReason::Io { msg: e.to_string() });
                }
            }
            self.line += 1;
            let mut bytes: &[u8] = &self.buf;
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if std::str::from_utf8(bytes).is_err() {
                return self.bad(BadRowReason::InvalidUtf8);
            }
            return match serde_json::from_slice::<Value>(bytes) {
                Ok(value @ Value::Object(_)) => Some(Ok(Row {
                    file: self.file.clone(),
                    line: self.line,
                    value,
                })),
                Ok(other) => self.bad(BadRowReason::NotAnObject {
                    found: ValueKind::of(&other),
                }),
                Err(e) => self.bad(BadRowReason::MalformedJson {
                    msg: strip_serde_position(&e),
                    fatal: false,
                }),
            };
        }
    }
}

/// serde_json's message without its "at line L column C" suffix (ours is
/// the file's line, not the record's), but with the column kept.
pub(crate) fn strip_serde_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}
