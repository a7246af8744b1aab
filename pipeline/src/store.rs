//! The on-disk store of one tokenized dataset: a single file, written once
//! (a temporary file renamed into place) and then memory-mapped, so the
//! examples of a dataset larger than memory are read from the page cache on
//! demand instead of living on the heap.
//!
//! Layout, little-endian:
//!
//! ```text
//! "FTDSTOR1"
//! blobs    one per example, back to back (see `put_blob`)
//! index    one 32-byte record per example, in source order:
//!          blob offset u64 · id u64 · line u64 · file u32 · split u32
//! meta     JSON: name, kind, split names, files, the dataset report
//! footer   index offset u64 · examples u64 · meta offset u64 · meta length u64 · "FTDSEND1"
//! ```
//!
//! A blob ends where the next one starts (the last where the index starts),
//! so the index needs no lengths. [`Store::open`] checks the whole
//! structure once (every blob parses, every row is JSON), so later reads
//! can trust it; a file that fails the check is a cache miss.

use crate::dataset::Example;
use crate::example::{ExampleKind, Sequence, Tokenized};
use crate::report::DatasetReport;
use crate::PipelineError;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"FTDSTOR1";
const END: &[u8; 8] = b"FTDSEND1";
const RECORD: usize = 32;
const FOOTER: usize = 40;
/// `u32::MAX` in a length or label field: absent.
const NONE: u32 = u32::MAX;

/// Everything about a stored dataset that is not per example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub name: String,
    pub kind: ExampleKind,
    pub splits: Vec<String>,
    /// The files examples point into (by index).
    pub files: Vec<PathBuf>,
    pub report: DatasetReport,
}

/// One example's place: its blob and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub offset: u64,
    pub id: u64,
    pub line: u64,
    pub file: u32,
    pub split: u32,
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> PipelineError + '_ {
    move |e| PipelineError::Cache(format!("{what}: {e}"))
}

/// Appends blobs, then writes index, meta and footer.
pub(crate) struct StoreWriter {
    out: BufWriter<File>,
    /// Named when the store becomes a cache entry (renamed on finish).
    named: Option<(tempfile::TempPath, PathBuf)>,
    pos: u64,
    buf: Vec<u8>,
}

impl StoreWriter {
    /// A writer into `dir/<key>.ftds` (through a temporary file in `dir`),
    /// or, without a destination, into an anonymous temporary file that
    /// disappears with the last handle to it.
    pub fn new(dest: Option<(&Path, &str)>) -> Result<StoreWriter, PipelineError> {
        let (file, named) = match dest {
            Some((dir, key)) => {
                std::fs::create_dir_all(dir).map_err(io_err(&dir.display().to_string()))?;
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{key}."))
                    .suffix(".tmp")
                    .tempfile_in(dir)
                    .map_err(io_err(&dir.display().to_string()))?;
                let (file, path) = tmp.into_parts();
                (file, Some((path, entry_path(dir, key))))
            }
            None => (
                tempfile::tempfile().map_err(io_err("temporary data store"))?,
                None,
            ),
        };
        let mut w = StoreWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            named,
            pos: 0,
            buf: Vec::new(),
        };
        w.write(MAGIC)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), PipelineError> {
        self.out
            .write_all(bytes)
            .map_err(io_err("writing the data store"))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Append one example's blob; returns its offset.
    pub fn append(&mut self, tokens: &Tokenized, row: &Value) -> Result<u64, PipelineError> {
        let at = self.pos;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        put_blob(&mut buf, tokens, row);
        self.write(&buf)?;
        self.buf = buf;
        Ok(at)
    }

    /// Write the index and meta, make the file durable and (for a cache
    /// entry) rename it into place; the store is then opened for reading.
    pub fn finish(
        mut self,
        count: usize,
        entries: impl Iterator<Item = Entry>,
        meta: &Meta,
        task: u16,
    ) -> Result<Store, PipelineError> {
        let index_off = self.pos;
        let mut written = 0;
        for e in entries {
            written += 1;
            let mut r = [0u8; RECORD];
            r[0..8].copy_from_slice(&e.offset.to_le_bytes());
            r[8..16].copy_from_slice(&e.id.to_le_bytes());
            r[16..24].copy_from_slice(&e.line.to_le_bytes());
            r[24..28].copy_from_slice(&e.file.to_le_bytes());
            r[28..32].copy_from_slice(&e.split.to_le_bytes());
            self.write(&r)?;
        }
        assert_eq!(written, count, "the index has one record per example");
        let count = count as u64;
        let meta_off = self.pos;
        let json = serde_json::to_vec(meta).map_err(|e| PipelineError::Cache(e.to_string()))?;
        self.write(&json)?;
        let mut f = Vec::with_capacity(FOOTER);
        for v in [index_off, count, meta_off, json.len() as u64] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(END);
        self.write(&f)?;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| PipelineError::Cache(format!("writing the data store: {e}")))?;
        if let Some((tmp, dest)) = self.named {
            // Durable before the rename, so a crash never leaves a
            // complete-looking entry with missing contents.
            file.sync_all().map_err(io_err("syncing the data store"))?;
            tmp.persist(&dest)
                .map_err(|e| PipelineError::Cache(format!("{}: {e}", dest.display())))?;
        }
        file.rewind().map_err(io_err("data store"))?;
        Store::open(&file, task)
            .map_err(|m| PipelineError::Cache(format!("the store just written is unreadable: {m}")))
    }
}

/// The cache entry of a key.
pub(crate) fn entry_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.ftds"))
}

fn put_seq(buf: &mut Vec<u8>, s: &Sequence) {
    buf.extend_from_slice(&(s.ids.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(s.prompt_len as u32).to_le_bytes());
    for id in &s.ids {
        buf.extend_from_slice(&id.to_le_bytes());
    }
    buf.extend(s.trained.iter().map(|&t| u8::from(t)));
}

/// A blob: the sequence (length u32, prompt length u32, ids u32 each,
/// trained flags a byte each), a byte saying whether a rejected sequence
/// follows (and it, in the same form), the class label (u32, `NONE` when
/// absent), the reference text (length u32 or `NONE`, UTF-8 bytes), and
/// the row as JSON (length u32, bytes).
fn put_blob(buf: &mut Vec<u8>, t: &Tokenized, row: &Value) {
    put_seq(buf, &t.seq);
    match &t.rejected {
        Some(r) => {
            buf.push(1);
            put_seq(buf, r);
        }
        None => buf.push(0),
    }
    let label = t.class_label.map_or(NONE, |l| l as u32);
    buf.extend_from_slice(&label.to_le_bytes());
    match &t.reference {
        Some(r) => {
            buf.extend_from_slice(&(r.len() as u32).to_le_bytes());
            buf.extend_from_slice(r.as_bytes());
        }
        None => buf.extend_from_slice(&NONE.to_le_bytes()),
    }
    let json = serde_json::to_vec(row).expect("JSON values serialize");
    buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
    buf.extend_from_slice(&json);
}

/// A blob's parts, borrowed from the map.
struct RawSeq<'a> {
    ids: &'a [u8],
    trained: &'a [u8],
    prompt_len: usize,
}

impl RawSeq<'_> {
    fn len(&self) -> usize {
        self.trained.len()
    }

    fn to_seq(&self) -> Sequence {
        Sequence {
            ids: self
                .ids
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
            trained: self.trained.iter().map(|&b| b != 0).collect(),
            prompt_len: self.prompt_len,
        }
    }
}

struct Blob<'a> {
    seq: RawSeq<'a>,
    rejected: Option<RawSeq<'a>>,
    class_label: Option<usize>,
    reference: Option<&'a str>,
    row: &'a [u8],
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn seq(&mut self) -> Option<RawSeq<'a>> {
        let n = self.u32()? as usize;
        let prompt_len = self.u32()? as usize;
        let ids = self.take(n.checked_mul(4)?)?;
        let trained = self.take(n)?;
        (prompt_len <= n).then_some(RawSeq {
            ids,
            trained,
            prompt_len,
        })
    }
}

fn parse_blob(b: &[u8]) -> Option<Blob<'_>> {
    let mut c = Cursor { b, at: 0 };
    let seq = c.seq()?;
    let rejected = match c.take(1)?[0] {
        0 => None,
        1 => Some(c.seq()?),
        _ => return None,
    };
    let class_label = match c.u32()? {
        NONE => None,
        l => Some(l as usize),
    };
    let reference = match c.u32()? {
        NONE => None,
        n => Some(std::str::from_utf8(c.take(n as usize)?).ok()?),
    };
    let n = c.u32()? as usize;
    let row = c.take(n)?;
    (c.at == b.len()).then_some(Blob {
        seq,
        rejected,
        class_label,
        reference,
        row,
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A stored dataset, memory-mapped.
pub struct Store {
    map: Mmap,
    index_off: usize,
    count: usize,
    pub(crate) meta: Meta,
    /// The dataset's index in the Plan: not stored, since one entry serves
    /// any Plan that has the same dataset wherever it sits.
    task: u16,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.meta.name)
            .field("examples", &self.count)
            .field("bytes", &self.map.len())
            .finish()
    }
}

impl Store {
    /// Map and check a store file; `Err` names what is wrong.
    pub(crate) fn open(file: &File, task: u16) -> Result<Store, String> {
        // SAFETY: store files are only ever written under a temporary name
        // and renamed into place (or are anonymous), never modified after,
        // so the mapped bytes cannot change under us.
        let map = unsafe { Mmap::map(file) }.map_err(|e| e.to_string())?;
        let b = &map[..];
        if b.len() < MAGIC.len() + FOOTER || &b[..8] != MAGIC || &b[b.len() - 8..] != END {
            return Err("not a data store (magic)".into());
        }
        let f = b.len() - FOOTER;
        let (index_off, count, meta_off, meta_len) = (
            u64_at(b, f) as usize,
            u64_at(b, f + 8) as usize,
            u64_at(b, f + 16) as usize,
            u64_at(b, f + 24) as usize,
        );
        if count
            .checked_mul(RECORD)
            .and_then(|n| n.checked_add(index_off))
            != Some(meta_off)
            || meta_off.checked_add(meta_len) != Some(f)
            || index_off < MAGIC.len()
        {
            return Err("inconsistent footer".into());
        }
        let meta: Meta = serde_json::from_slice(&b[meta_off..f]).map_err(|e| e.to_string())?;
        let s = Store {
            map,
            index_off,
            count,
            meta,
            task,
        };
        let mut prev = MAGIC.len() as u64;
        for i in 0..count {
            let e = s.entry(i);
            if e.offset != prev
                || e.file as usize >= s.meta.files.len()
                || e.split as usize >= s.meta.splits.len()
            {
                return Err(format!("index record {i} is inconsistent"));
            }
            let end = s.blob_end(i);
            if end < e.offset {
                return Err(format!("index record {i} is inconsistent"));
            }
            let blob = parse_blob(&s.map[e.offset as usize..end as usize])
                .ok_or_else(|| format!("example {i} is malformed"))?;
            serde_json::from_slice::<serde::de::IgnoredAny>(blob.row)
                .map_err(|e| format!("example {i}'s row: {e}"))?;
            prev = end;
        }
        if prev != index_off as u64 {
            return Err("blobs and index disagree".into());
        }
        Ok(s)
    }

    /// Open the cache entry of `key`, if there is a sound one.
    pub(crate) fn open_entry(dir: &Path, key: &str, task: u16) -> Option<Store> {
        let file = File::open(entry_path(dir, key)).ok()?;
        Store::open(&file, task).ok()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the file (mapped, not held on the heap).
    pub fn bytes(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn task(&self) -> u16 {
        self.task
    }

    pub(crate) fn entry(&self, i: usize) -> Entry {
        let at = self.index_off + i * RECORD;
        let r = &self.map[at..at + RECORD];
        Entry {
            offset: u64_at(r, 0),
            id: u64_at(r, 8),
            line: u64_at(r, 16),
            file: u32::from_le_bytes(r[24..28].try_into().expect("4 bytes")),
            split: u32::from_le_bytes(r[28..32].try_into().expect("4 bytes")),
        }
    }

    fn blob_end(&self, i: usize) -> u64 {
        if i + 1 < self.count {
            u64_at(&self.map, self.index_off + (i + 1) * RECORD)
        } else {
            self.index_off as u64
        }
    }

    fn blob(&self, i: usize) -> Blob<'_> {
        let start = self.entry(i).offset as usize;
        parse_blob(&self.map[start..self.blob_end(i) as usize]).expect("checked when opened")
    }

    /// The longer of the sequence and the rejected one: enough to know how
    /// an example fits a length without decoding it.
    pub(crate) fn longest(&self, i: usize) -> usize {
        let b = self.blob(i);
        b.rejected
            .as_ref()
            .map_or(b.seq.len(), |r| r.len().max(b.seq.len()))
    }

    pub(crate) fn tokens(&self, i: usize) -> Tokenized {
        let b = self.blob(i);
        Tokenized {
            seq: b.seq.to_seq(),
            rejected: b.rejected.as_ref().map(RawSeq::to_seq),
            class_label: b.class_label,
            reference: b.reference.map(str::to_owned),
        }
    }

    pub(crate) fn row(&self, i: usize) -> Value {
        serde_json::from_slice(self.blob(i).row).expect("checked when opened")
    }

    pub(crate) fn file(&self, e: &Entry) -> &Path {
        &self.meta.files[e.file as usize]
    }

    /// Example `i`, decoded (ids, mask and row copied out of the map).
    pub fn example(&self, i: usize) -> Example {
        let e = self.entry(i);
        Example {
            id: e.id,
            task: self.task,
            file: self.file(&e).to_path_buf(),
            line: e.line as usize,
            tokens: self.tokens(i),
            row: self.row(i),
        }
    }
}

/// One split's examples: positions in a [`Store`], read on demand. The
/// iterator hands out decoded copies, so holding a split costs four bytes
/// per example, not its tokens.
#[derive(Clone)]
pub struct Examples {
    store: Arc<Store>,
    positions: Arc<[u32]>,
}

impl std::fmt::Debug for Examples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Examples({} of {:?})", self.positions.len(), self.store)
    }
}

impl Examples {
    pub(crate) fn new(store: Arc<Store>, positions: Vec<u32>) -> Examples {
        Examples {
            store,
            positions: positions.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The `k`-th example of the split (source order), decoded.
    pub fn get(&self, k: usize) -> Option<Example> {
        self.positions
            .get(k)
            .map(|&i| self.store.example(i as usize))
    }

    /// The examples in source order, each decoded as it is reached.
    pub fn iter(&self) -> impl Iterator<Item = Example> + '_ {
        self.positions
            .iter()
            .map(|&i| self.store.example(i as usize))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Positions in the store, in source order.
    pub(crate) fn positions(&self) -> &[u32] {
        &self.positions
    }
}
