//! YAML through `saphyr-parser`, a maintained pure-Rust YAML 1.2 parser.
//!
//! Why this crate: it is an event (pull) parser that reads from any `char`
//! iterator — so a file is streamed, never loaded whole — and every event
//! carries a span with its 1-based line, so each record gets its line
//! without a second scan. (`serde_yaml_ng` builds whole documents and gives
//! no positions for nested values; `serde_yml` is not maintained.)
//!
//! Records (`Format::Yaml`): the document is a list of mappings, or a
//! mapping holding that list under the dotted `records` key path. Plain
//! scalars are typed by the YAML 1.2 core schema (`null`/`~`/empty → null,
//! `true`/`false`, integers, floats; `.inf`/`.nan` stay strings since JSON
//! has no such numbers); quoted and block scalars are strings. Anchors and
//! aliases are resolved. Only the first document of a stream is read.
//!
//! Pairs (`Format::YamlPairs`, the chatterbot corpus): the document is a
//! mapping whose `conversations` key (or `records`) holds a list of
//! conversations, each a list of turns `[s0, s1, ..., sn]`. Like chatterbot
//! itself, which trains each statement as the response to the one before,
//! every consecutive pair becomes a row: `(s0, s1), (s1, s2), ...,
//! (s(n-1), sn)` — `n` rows for `n + 1` turns, each with the line of its
//! question. A turn is taken as its source text (a turn `3.10` stays
//! "3.10"). A conversation with fewer than two turns is one bad row
//! (`WrongFieldCount`), as is one with a turn that is a list, a mapping or
//! null (`WrongType` naming `conversations.<i>.<turn>`).

use super::{io_err, BadRow, BadRowReason, Row, SourceError};
use crate::value::ValueKind;
use saphyr_parser::{BufferedInput, Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

type Fatal = (BadRowReason, usize);

enum State {
    Start,
    InList,
    Done,
}

pub(crate) struct YamlRows {
    file: Arc<Path>,
    parser: Parser<'static, BufferedInput<Utf8Chars>>,
    /// Line of the first invalid UTF-8 byte (0: none seen yet).
    bad_utf8: Arc<AtomicUsize>,
    records: Option<String>,
    pairs: bool,
    state: State,
    pending: VecDeque<Result<Row, BadRow>>,
    anchors: HashMap<usize, Value>,
    /// Index of the next record in the list (for `WrongType` paths).
    index: usize,
    /// Last line touched by the events of the record being built.
    last_line: usize,
}

impl YamlRows {
    pub(crate) fn open(
        file: Arc<Path>,
        records: Option<&str>,
        pairs: bool,
    ) -> Result<YamlRows, SourceError> {
        let f = File::open(&file).map_err(|e| io_err(&file, &e))?;
        let bad_utf8 = Arc::new(AtomicUsize::new(0));
        let chars = Utf8Chars {
            src: f,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            line: 1,
            first: true,
            bad: bad_utf8.clone(),
        };
        Ok(YamlRows {
            file,
            parser: Parser::new_from_iter(chars),
            bad_utf8,
            records: records.map(str::to_owned),
            pairs,
            state: State::Start,
            pending: VecDeque::new(),
            anchors: HashMap::new(),
            index: 0,
            last_line: 0,
        })
    }

    fn utf8_error(&self) -> Option<Fatal> {
        match self.bad_utf8.load(Ordering::Relaxed) {
            0 => None,
            line => Some((BadRowReason::InvalidUtf8, line)),
        }
    }

    fn ev(&mut self) -> Result<(Event<'static>, Span), Fatal> {
        match self.parser.next() {
            Some(Ok((e, span))) => {
                if !matches!(e, Event::MappingEnd | Event::SequenceEnd) {
                    self.last_line = self.last_line.max(span.end.line());
                }
                Ok((e, span))
            }
            Some(Err(e)) => Err(self.utf8_error().unwrap_or((
                BadRowReason::MalformedYaml {
                    msg: e.info().to_owned(),
                },
                e.marker().line(),
            ))),
            None => Err(self.utf8_error().unwrap_or((
                BadRowReason::MalformedYaml {
                    msg: "unexpected end of the stream".into(),
                },
                self.last_line,
            ))),
        }
    }

    /// Build the value of the node that starts with `first`.
    fn node(&mut self, first: Event<'static>, span: Span) -> Result<Value, Fatal> {
        match first {
            Event::Scalar(text, style, anchor, tag) => {
                let v = match (&tag, style) {
                    (Some(t), _) if t.suffix == "str" => Value::String(text.into_owned()),
                    (_, ScalarStyle::Plain) => plain_scalar(&text),
                    _ => Value::String(text.into_owned()),
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (e, s) = self.ev()?;
                    if e == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(e, s)?);
                }
                let v = Value::Array(items);
                if anchor != 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                loop {
                    let (e, s) = self.ev()?;
                    if e == Event::MappingEnd {
                        break;
                    }
                    let key = match self.node(e, s)? {
                        Value::String(k) => k,
                        Value::Null => "null".to_owned(),
                        other => other.to_string(),
                    };
                    let (e, s) = self.ev()?;
                    let v = self.node(e, s)?;
                    map.insert(key, v);
                }
                let v = Value::Object(map);
                if anchor != 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::Alias(id) => self.anchors.get(&id).cloned().ok_or((
                BadRowReason::MalformedYaml {
                    msg: "alias to an unknown anchor".into(),
                },
                span.start.line(),
            )),
            other => Err((
                BadRowReason::MalformedYaml {
                    msg: format!("unexpected {other:?}"),
                },
                span.start.line(),
            )),
        }
    }

    /// Walk from the stream start to just inside the record list.
    fn navigate(&mut self) -> Result<(), Fatal> {
        let (mut e, mut span) = self.ev()?;
        while matches!(e, Event::StreamStart | Event::DocumentStart(_)) {
            (e, span) = self.ev()?;
        }
        if let Some(path) = self.records.clone() {
            let not_found = || BadRowReason::RecordsNotFound { key: path.clone() };
            // A missing key is reported at the line of the mapping that
            // lacks it.
            for seg in path.split('.') {
                if !matches!(e, Event::MappingStart(..)) {
                    return Err((not_found(), span.start.line()));
                }
                let map_line = span.start.line();
                loop {
                    let (k, ks) = self.ev()?;
                    if k == Event::MappingEnd {
                        return Err((not_found(), map_line));
                    }
                    let key = self.node(k, ks)?;
                    (e, span) = self.ev()?;
                    if key.as_str() == Some(seg) {
                        break;
                    }
                    self.node(e, span)?;
                }
            }
        }
        match e {
            Event::SequenceStart(..) => Ok(()),
            Event::StreamEnd | Event::DocumentEnd => Err((
                BadRowReason::NotAList {
                    found: ValueKind::Null,
                },
                span.start.line(),
            )),
            other => {
                let line = span.start.line();
                let v = self.node(other, span)?;
                Err((
                    BadRowReason::NotAList {
                        found: ValueKind::of(&v),
                    },
                    line,
                ))
            }
        }
    }

    fn bad(&self, line: usize, reason: BadRowReason) -> Result<Row, BadRow> {
        Err(BadRow {
            file: self.file.clone(),
            line,
            reason,
        })
    }

    /// Read the next list item into `pending`; false at the end of the list.
    fn read_item(&mut self) -> Result<bool, Fatal> {
        let (e, span) = self.ev()?;
        if e == Event::SequenceEnd {
            return match self.utf8_error() {
                Some(f) => Err(f),
                None => Ok(false),
            };
        }
        let line = span.start.line();
        self.last_line = line;
        let index = self.index;
        self.index += 1;
        if self.pairs {
            return self.read_conversation(e, span, index);
        }
        let v = self.node(e, span)?;
        self.check_utf8_before_yield()?;
        let item = match v {
            Value::Object(_) => Ok(Row {
                file: self.file.clone(),
                line,
                value: v,
            }),
            other => self.bad(
                line,
                BadRowReason::NotAnObject {
                    found: ValueKind::of(&other),
                },
            ),
        };
        self.pending.push_back(item);
        Ok(true)
    }

    /// The input ends at an invalid UTF-8 byte; a record that reaches that
    /// line may be cut short, so it is not yielded.
    fn check_utf8_before_yield(&self) -> Result<(), Fatal> {
        match self.utf8_error() {
            Some((r, line)) if line <= self.last_line => Err((r, line)),
            _ => Ok(()),
        }
    }

    fn read_conversation(
        &mut self,
        first: Event<'static>,
        span: Span,
        index: usize,
    ) -> Result<bool, Fatal> {
        let line = span.start.line();
        let key = self.records.clone().unwrap_or_default();
        if !matches!(first, Event::SequenceStart(..)) {
            let v = self.node(first, span)?;
            self.check_utf8_before_yield()?;
            let item = self.bad(
                line,
                BadRowReason::WrongType {
                    field: format!("{key}.{index}"),
                    expected: ValueKind::List,
                    found: ValueKind::of(&v),
                },
            );
            self.pending.push_back(item);
            return Ok(true);
        }
        let mut turns: Vec<(String, usize)> = Vec::new();
        let mut wrong: Option<BadRowReason> = None;
        loop {
            let (e, s) = self.ev()?;
            if e == Event::SequenceEnd {
                break;
            }
            let turn_line = s.start.line();
            let turn = match e {
                Event::Scalar(text, style, anchor, _) => {
                    let v = Value::String(text.to_string());
                    if anchor != 0 {
                        self.anchors.insert(anchor, v);
                    }
                    if style == ScalarStyle::Plain && plain_scalar(&text).is_null() {
                        Err(ValueKind::Null)
                    } else {
                        Ok(text.into_owned())
                    }
                }
                other => match self.node(other, s)? {
                    Value::String(t) => Ok(t),
                    v => Err(ValueKind::of(&v)),
                },
            };
            match turn {
                Ok(t) => turns.push((t, turn_line)),
                Err(found) => {
                    wrong.get_or_insert(BadRowReason::WrongType {
                        field: format!("{key}.{index}.{}", turns.len()),
                        expected: ValueKind::String,
                        found,
                    });
                    turns.push((String::new(), turn_line));
                }
            }
        }
        self.check_utf8_before_yield()?;
        if let Some(reason) = wrong {
            let item = self.bad(line, reason);
            self.pending.push_back(item);
        } else if turns.len() < 2 {
            let item = self.bad(
                line,
                BadRowReason::WrongFieldCount {
                    expected: 2,
                    found: turns.len(),
                },
            );
            self.pending.push_back(item);
        } else {
            for w in turns.windows(2) {
                let mut map = Map::new();
                map.insert("question".into(), Value::String(w[0].0.clone()));
                map.insert("answer".into(), Value::String(w[1].0.clone()));
                self.pending.push_back(Ok(Row {
                    file: self.file.clone(),
                    line: w[0].1,
                    value: Value::Object(map),
                }));
            }
        }
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<Result<Row, BadRow>>, Fatal> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            match self.state {
                State::Done => return Ok(None),
                State::Start => {
                    self.navigate()?;
                    self.state = State::InList;
                }
                State::InList => {
                    if !self.read_item()? {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

impl Iterator for YamlRows {
    type Item = Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(item) => item,
            Err((reason, line)) => {
                self.state = State::Done;
                self.pending.clear();
                Some(Err(BadRow {
                    file: self.file.clone(),
                    line,
                    reason,
                }))
            }
        }
    }
}

/// Type a plain scalar by the YAML 1.2 core schema.
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let b = s.as_bytes();
    let unsigned = b.strip_prefix(b"-").or(b.strip_prefix(b"+")).unwrap_or(b);
    if !unsigned.is_empty() && unsigned.iter().all(u8::is_ascii_digit) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
    }
    for (prefix, radix) in [("0o", 8), ("0x", 16)] {
        if let Some(digits) = s.strip_prefix(prefix) {
            if let Ok(i) = i64::from_str_radix(digits, radix) {
                return Value::Number(i.into());
            }
        }
    }
    if is_core_float(unsigned) {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, sign already removed.
fn is_core_float(b: &[u8]) -> bool {
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    let mut i = 0;
    let int = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) && !int {
            return false;
        }
    } else if !int {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Decodes a file's bytes to chars as the YAML parser pulls them. Invalid
/// UTF-8 (or a read error) ends the input and records its line in `bad`.
struct Utf8Chars {
    src: File,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    line: usize,
    first: bool,
    bad: Arc<AtomicUsize>,
}

impl Utf8Chars {
    fn byte(&mut self) -> Option<u8> {
        if self.pos == self.len {
            loop {
                match self.src.read(&mut self.buf) {
                    Ok(0) => return None,
                    Ok(n) => {
                        self.pos = 0;
                        self.len = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.bad.store(self.line, Ordering::Relaxed);
                        return None;
                    }
                }
            }
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Some(b)
    }

    fn decode(&mut self) -> Option<char> {
        let b0 = self.byte()?;
        if b0 < 0x80 {
            if b0 == b'\n' {
                self.line += 1;
            }
            return Some(b0 as char);
        }
        let n = match b0 {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 0,
        };
        let mut bytes = [b0, 0, 0, 0];
        let ok = n > 0
            && (1..n).all(|i| match self.byte() {
                Some(b) => {
                    bytes[i] = b;
                    true
                }
                None => false,
            });
        match ok.then(|| std::str::from_utf8(&bytes[..n]).ok()).flatten() {
            Some(s) => s.chars().next(),
            None => {
                self.bad.store(self.line, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Iterator for Utf8Chars {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.bad.load(Ordering::Relaxed) != 0 {
            return None;
        }
        let c = self.decode()?;
        if std::mem::take(&mut self.first) && c == '\u{FEFF}' {
            return self.decode();
        }
        Some(c)
    }
}
