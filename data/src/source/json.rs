//! JSON documents: a top-level array of records, or an object holding the
//! array under a dotted `records` key path.
//!
//! Read incrementally with a small structural scanner instead of parsing the
//! whole document: the scanner walks to the record list (skipping sibling
//! values without keeping them), then cuts out one record at a time by
//! tracking only strings and brackets, and hands each record's bytes to
//! serde_json. So memory is bounded by one record, each record gets the line
//! where it starts, and a record with bad content (`{"a": tru}`) is one bad
//! row while the records after it are still read. Only a broken structure
//! (an unterminated string or bracket, a missing comma between records)
//! stops the file. What follows the record list is not read.

use super::jsonl::strip_serde_position;
use super::{io_err, BadRow, BadRowReason, Row, SourceError};
use crate::value::ValueKind;
use serde_json::Value;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

enum State {
    Start,
    FirstInArray,
    AfterRecord,
    Done,
}

pub(crate) struct JsonRows {
    file: Arc<Path>,
    sc: Scanner,
    records: Option<String>,
    state: State,
    capture: Vec<u8>,
}

/// A scanning failure: the reason and the line where it happened.
type Fatal = (BadRowReason, usize);

impl JsonRows {
    pub(crate) fn open(file: Arc<Path>, records: Option<&str>) -> Result<JsonRows, SourceError> {
        let f = File::open(&file).map_err(|e| io_err(&file, &e))?;
        Ok(JsonRows {
            file,
            sc: Scanner::new(f),
            records: records.map(str::to_owned),
            state: State::Start,
            capture: Vec::new(),
        })
    }

    fn navigate(&mut self) -> Result<(), Fatal> {
        let sc = &mut self.sc;
        sc.skip_bom()?;
        sc.skip_ws()?;
        if sc.peek()?.is_none() {
            return Err(sc.syntax("the document is empty"));
        }
        if let Some(path) = self.records.clone() {
            // A missing key is reported at the line of the object that
            // lacks it.
            let not_found = |line| (BadRowReason::RecordsNotFound { key: path.clone() }, line);
            for seg in path.split('.') {
                sc.skip_ws()?;
                let obj_line = sc.line;
                if sc.peek()? != Some(b'{') {
                    return Err(not_found(obj_line));
                }
                sc.bump()?;
                let mut keybuf = Vec::new();
                loop {
                    sc.skip_ws()?;
                    match sc.peek()? {
                        Some(b'}') => return Err(not_found(obj_line)),
                        Some(b'"') => {}
                        _ => return Err(sc.syntax("expected a key")),
                    }
                    keybuf.clear();
                    sc.value(Some(&mut keybuf))?;
                    let key: String = serde_json::from_slice(&keybuf)
                        .map_err(|e| sc.syntax(&strip_serde_position(&e)))?;
                    sc.skip_ws()?;
                    if sc.bump()? != Some(b':') {
                        return Err(sc.syntax("expected `:` after a key"));
                    }
                    sc.skip_ws()?;
                    if key == seg {
                        break;
                    }
                    sc.value(None)?;
                    sc.skip_ws()?;
                    match sc.bump()? {
                        Some(b',') => {}
                        Some(b'}') => return Err(not_found(obj_line)),
                        _ => return Err(sc.syntax("expected `,` or `}`")),
                    }
                }
            }
        }
        sc.skip_ws()?;
        match sc.peek()? {
            Some(b'[') => {
                sc.bump()?;
                Ok(())
            }
            other => Err((
                BadRowReason::NotAList {
                    found: kind_of_first_byte(other),
                },
                sc.line,
            )),
        }
    }

    fn read_record(&mut self) -> Result<Result<Row, BadRow>, Fatal> {
        self.sc.skip_ws()?;
        let line = self.sc.line;
        self.capture.clear();
        self.sc.value(Some(&mut self.capture))?;
        let bad = |reason| {
            Ok(Err(BadRow {
                file: self.file.clone(),
                line,
                reason,
            }))
        };
        if std::str::from_utf8(&self.capture).is_err() {
            return bad(BadRowReason::InvalidUtf8);
        }
        match serde_json::from_slice::<Value>(&self.capture) {
            Ok(value @ Value::Object(_)) => Ok(Ok(Row {
                file: self.file.clone(),
                line,
                value,
            })),
            Ok(other) => bad(BadRowReason::NotAnObject {
                found: ValueKind::of(&other),
            }),
            Err(e) => Ok(Err(BadRow {
                file: self.file.clone(),
                line: line + e.line().saturating_sub(1),
                reason: BadRowReason::MalformedJson {
                    msg: strip_serde_position(&e),
                    fatal: false,
                },
            })),
        }
    }

    fn step(&mut self) -> Result<Option<Result<Row, BadRow>>, Fatal> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => {
                    self.navigate()?;
                    self.state = State::FirstInArray;
                }
                State::FirstInArray => {
                    self.sc.skip_ws()?;
                    if self.sc.peek()? == Some(b']') {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    self.state = State::AfterRecord;
                    return self.read_record().map(Some);
                }
                State::AfterRecord => {
                    self.sc.skip_ws()?;
                    match self.sc.bump()? {
                        Some(b']') => {
                            self.state = State::Done;
                            return Ok(None);
                        }
                        Some(b',') => {
                            self.sc.skip_ws()?;
                            if self.sc.peek()? == Some(b']') {
                                return Err(self.sc.syntax("trailing comma in the record list"));
                            }
                            return self.read_record().map(Some);
                        }
                        None => return Err(self.sc.syntax("unterminated record list")),
                        Some(_) => {
                            return Err(self.sc.syntax("expected `,` or `]` after a record"))
                        }
                    }
                }
            }
        }
    }
}

impl Iterator for JsonRows {
    type Item = Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(item) => item,
            Err((reason, line)) => {
                self.state = State::Done;
                Some(Err(BadRow {
                    file: self.file.clone(),
                    line,
                    reason,
                }))
            }
        }
    }
}

fn kind_of_first_byte(b: Option<u8>) -> ValueKind {
    match b {
        Some(b'{') => ValueKind::Object,
        Some(b'[') => ValueKind::List,
        Some(b'"') => ValueKind::String,
        Some(b't' | b'f') => ValueKind::Bool,
        Some(b'n') | None => ValueKind::Null,
        Some(_) => ValueKind::Number,
    }
}

/// A byte reader with one byte of lookahead and a line counter.
struct Scanner {
    src: File,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// 1-based line of the next byte.
    line: usize,
}

impl Scanner {
    fn new(src: File) -> Scanner {
        Scanner {
            src,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            line: 1,
        }
    }

    fn syntax(&self, msg: &str) -> Fatal {
        (
            BadRowReason::MalformedJson {
                msg: msg.to_owned(),
                fatal: true,
            },
            self.line,
        )
    }

    fn fill(&mut self) -> Result<bool, Fatal> {
        if self.pos < self.len {
            return Ok(true);
        }
        loop {
            match self.src.read(&mut self.buf) {
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err((BadRowReason::Io { msg: e.to_string() }, self.line)),
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<Option<u8>, Fatal> {
        Ok(if self.fill()? {
            Some(self.buf[self.pos])
        } else {
            None
        })
    }

    #[inline]
    fn bump(&mut self) -> Result<Option<u8>, Fatal> {
        let b = self.peek()?;
        if let Some(c) = b {
            self.pos += 1;
            if c == b'\n' {
                self.line += 1;
            }
        }
        Ok(b)
    }

    fn skip_bom(&mut self) -> Result<(), Fatal> {
        if self.peek()? == Some(0xEF) {
            for want in [0xEF, 0xBB, 0xBF] {
                if self.bump()? != Some(want) {
                    return Err(self.syntax("invalid byte at the start of the document"));
                }
            }
        }
        Ok(())
    }

    fn skip_ws(&mut self) -> Result<(), Fatal> {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek()? {
            self.bump()?;
        }
        Ok(())
    }

    /// Consume one value, copying its bytes into `out` if given. Only the
    /// structure is checked (strings, matching brackets); the content is
    /// serde_json's job.
    fn value(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), Fatal> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.bump()? else {
                return Err(self.syntax(if stack.is_empty() {
                    "expected a value, found the end of the file"
                } else {
                    "unterminated object or array"
                }));
            };
            if let Some(o) = out.as_deref_mut() {
                o.push(c);
            }
            match c {
                b'"' => self.rest_of_string(out.as_deref_mut())?,
                b'{' => stack.push(b'}'),
                b'[' => stack.push(b']'),
                b'}' | b']' if stack.pop() != Some(c) => {
                    return Err(self.syntax(&format!("unexpected `{}`", c as char)));
                }
                // The guard above popped the matching opener.
                b'}' | b']' => {}
                b',' | b':' if stack.is_empty() => {
                    return Err(self.syntax(&format!("unexpected `{}`", c as char)));
                }
                _ if stack.is_empty() => {
                    // A scalar: runs until a delimiter.
                    while let Some(n) = self.peek()? {
                        if matches!(n, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                            break;
                        }
                        self.bump()?;
                        if let Some(o) = out.as_deref_mut() {
                            o.push(n);
                        }
                    }
                }
                _ => {}
            }
            if stack.is_empty() {
                return Ok(());
            }
        }
    }

    fn rest_of_string(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), Fatal> {
        loop {
            let Some(c) = self.bump()? else {
                return Err(self.syntax("unterminated string"));
            };
            if let Some(o) = out.as_deref_mut() {
                o.push(c);
            }
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let Some(e) = self.bump()? else {
                        return Err(self.syntax("unterminated string"));
                    };
                    if let Some(o) = out.as_deref_mut() {
                        o.push(e);
                    }
                }
                _ => {}
            }
        }
    }
}
