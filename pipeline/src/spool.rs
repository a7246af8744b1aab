//! A temporary, append-only file of per-row records the build needs again
//! after its pass over the source (a row's normalised text for the leakage
//! report; with few-shot examples, the rendered row itself), read back
//! memory-mapped by offset. It lives as long as the build and is never
//! named in the cache.

use crate::PipelineError;
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub(crate) struct Spool {
    out: BufWriter<File>,
    pos: u64,
}

fn err(e: std::io::Error) -> PipelineError {
    PipelineError::Cache(format!("temporary row spool: {e}"))
}

impl Spool {
    /// A spool in `dir` (the cache folder, so it shares its disk) or the
    /// system's temporary folder; the file has no name once created.
    pub fn new(dir: Option<&Path>) -> Result<Spool, PipelineError> {
        let file = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(err)?;
                tempfile::tempfile_in(d)
            }
            None => tempfile::tempfile(),
        }
        .map_err(err)?;
        Ok(Spool {
            out: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
        })
    }

    /// Append a record of parts (each length-prefixed); returns its offset.
    pub fn put(&mut self, parts: &[&[u8]]) -> Result<u64, PipelineError> {
        let at = self.pos;
        for p in parts {
            self.out
                .write_all(&(p.len() as u64).to_le_bytes())
                .map_err(err)?;
            self.out.write_all(p).map_err(err)?;
            self.pos += 8 + p.len() as u64;
        }
        Ok(at)
    }

    /// Done writing: the records, mapped.
    pub fn finish(self) -> Result<SpoolMap, PipelineError> {
        let file = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        if self.pos == 0 {
            // An empty file cannot be mapped on every platform.
            return Ok(SpoolMap { map: None });
        }
        // SAFETY: the file is anonymous and only this build holds it.
        let map = unsafe { Mmap::map(&file) }.map_err(err)?;
        Ok(SpoolMap { map: Some(map) })
    }
}

pub(crate) struct SpoolMap {
    map: Option<Mmap>,
}

impl SpoolMap {
    /// Part `k` of the record at `offset`.
    pub fn part(&self, offset: u64, k: usize) -> &[u8] {
        let b = self.map.as_deref().expect("a record was written");
        let mut at = offset as usize;
        for _ in 0..k {
            let n = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) as usize;
            at += 8 + n;
        }
        let n = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) as usize;
        &b[at + 8..at + 8 + n]
    }
}
