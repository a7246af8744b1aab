//! GGUF (llama.cpp's model format), versions 2 and 3.
//!
//! Layout: magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count, the metadata key/values, the tensor infos (name, dims innermost
//! first, ggml type, offset), padding up to `general.alignment` (default 32),
//! then the tensor data. All integers are little-endian.
//!
//! The file is memory-mapped and parsed from the slice: only the pages the
//! header occupies are read, so opening for a check does not read the weights.
//! [`Gguf::open_header`] additionally skips the content of long metadata arrays
//! (the tokenizer's vocabulary and merges, ~2 MB for SmolLM2), which keeps
//! `ft check` in the millisecond range; [`Gguf::open`] keeps everything.

use crate::dequant::{self, GgmlType};
use crate::error::{FormatError, FormatErrorKind, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Arrays longer than this are not materialized by [`Gguf::open_header`].
const HEADER_ARRAY_LIMIT: u64 = 256;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    /// An array whose content was skipped by a header-only open: its element
    /// type id and length are kept so callers can still tell it is there.
    SkippedArray {
        elem_type: u32,
        len: u64,
    },
}

impl Value {
    /// Any integer type as u64 (negative values are rejected).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            // llama.cpp stores decimal settings such as `1e-5` as f32; going
            // through the shortest decimal form recovers the value the model
            // author wrote (1e-5, not 9.99999974e-6).
            Value::F32(v) => format!("{v}").parse().ok(),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Length of an array, whether materialized or skipped.
    pub fn array_len(&self) -> Option<u64> {
        match self {
            Value::Array(a) => Some(a.len() as u64),
            Value::SkippedArray { len, .. } => Some(*len),
            _ => None,
        }
    }
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    /// ggml order: `dims[0]` is the innermost (contiguous) dimension, so a
    /// PyTorch `[out, in]` weight is stored as `[in, out]`.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    pub nbytes: u64,
}

impl GgufTensor {
    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape in PyTorch convention (outermost first).
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

/// A parsed GGUF file.
pub struct Gguf {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<GgufTensor>,
    pub alignment: u64,
    pub data_start: u64,
    mmap: memmap2::Mmap,
}

impl Gguf {
    /// Parses the whole header including every metadata array.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, None)
    }

    /// Parses the header but skips the content of metadata arrays longer than
    /// 256 entries (see the module docs): for checks and inventories.
    pub fn open_header(path: &Path) -> Result<Self> {
        Self::open_with(path, Some(HEADER_ARRAY_LIMIT))
    }

    fn open_with(path: &Path, array_limit: Option<u64>) -> Result<Self> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: read-only map; we rely on the file not being truncated
        // while it is open, as every mmap-based model loader does.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(path, e))?;
        let mut r = Reader {
            buf: &mmap,
            pos: 0,
            path,
        };
        let magic = r.take(4)?;
        if magic != MAGIC {
            return Err(FormatError::header(
                path,
                format!("bad magic {magic:02x?}; a GGUF file starts with `GGUF`"),
            ));
        }
        let version = r.u32()?;
        if version != 2 && version != 3 {
            return Err(FormatError::header(
                path,
                format!("GGUF version {version} is not supported (only versions 2 and 3)"),
            ));
        }
        let n_tensors = r.u64()?;
        let n_kv = r.u64()?;
        // Every KV needs at least 12 bytes and every tensor info at least 24:
        // reject absurd counts before allocating for them.
        r.check_count(n_kv, 12, "metadata count")?;
        r.check_count(n_tensors, 24, "tensor count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string()?;
            let ty = r.u32()?;
            let value = r.value(ty, array_limit, &key, 0)?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(FormatError::new(
                        path,
                        FormatErrorKind::BadMetadata {
                            key: "general.alignment".into(),
                            detail: format!("{v:?} is not a positive power of two"),
                        },
                    ))
                }
            },
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            tensors.push(r.tensor_info()?);
        }
        let data_start = r.pos.div_ceil(alignment) * alignment;
        let file_len = mmap.len() as u64;
        validate_tensors(path, &mut tensors, alignment, data_start, file_len)?;
        Ok(Gguf {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_start,
            mmap,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of a tensor.
    pub fn tensor_bytes(&self, t: &GgufTensor) -> &[u8] {
        let start = (self.data_start + t.offset) as usize;
        &self.mmap[start..start + t.nbytes as usize]
    }

    /// A tensor dequantized to f32, in ggml order (`dims[0]` fastest), which
    /// is the same memory order as the PyTorch `[out, in]` row-major layout.
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let t = self.tensor(name).ok_or_else(|| {
            FormatError::new(
                &self.path,
                FormatErrorKind::MissingTensor {
                    tensor: name.to_string(),
                },
            )
        })?;
        dequant::dequantize(t.ggml_type, self.tensor_bytes(t), t.numel() as usize).map_err(|name| {
            FormatError::new(
                &self.path,
                FormatErrorKind::UnsupportedGgufType {
                    tensor: t.name.clone(),
                    name,
                },
            )
        })
    }
}

fn validate_tensors(
    path: &Path,
    tensors: &mut [GgufTensor],
    alignment: u64,
    data_start: u64,
    file_len: u64,
) -> Result<()> {
    let bad = |t: &GgufTensor, detail: String| {
        FormatError::new(
            path,
            FormatErrorKind::BadOffsets {
                tensor: t.name.clone(),
                detail,
            },
        )
    };
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| tensors[i].offset);
    let mut prev_end = 0u64;
    let mut prev_name = "";
    for &i in &order {
        let t = &tensors[i];
        if t.offset % alignment != 0 {
            return Err(bad(
                t,
                format!(
                    "offset {} is not a multiple of the alignment {alignment}",
                    t.offset
                ),
            ));
        }
        if t.offset < prev_end {
            return Err(bad(t, format!("overlaps tensor `{prev_name}`")));
        }
        let end = data_start
            .checked_add(t.offset)
            .and_then(|v| v.checked_add(t.nbytes))
            .ok_or_else(|| bad(t, "offset overflows".into()))?;
        if end > file_len {
            return Err(FormatError::new(
                path,
                FormatErrorKind::TruncatedFile {
                    needed: end,
                    actual: file_len,
                },
            ));
        }
        prev_end = t.offset + t.nbytes;
        prev_name = &t.name;
    }
    Ok(())
}

/// A bounds-checked little-endian cursor: every read that would run past the
/// end is a `TruncatedFile` error, never a panic.
struct Reader<'a> {
    buf: &'a [u8],
    pos: u64,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let len = self.buf.len() as u64;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= len)
            .ok_or_else(|| {
                FormatError::new(
                    self.path,
                    FormatErrorKind::TruncatedFile {
                        needed: self.pos.saturating_add(n),
                        actual: len,
                    },
                )
            })?;
        let s = &self.buf[self.pos as usize..end as usize];
        self.pos = end;
        Ok(s)
    }

    fn check_count(&self, n: u64, min_size: u64, what: &str) -> Result<()> {
        let left = self.buf.len() as u64 - self.pos;
        // A plausible count that does not fit means the file was cut short;
        // an absurd one (over 2^32 entries) means the header is garbage.
        if n <= u32::MAX as u64 && n * min_size > left {
            return Err(FormatError::new(
                self.path,
                FormatErrorKind::TruncatedFile {
                    needed: self.pos + n * min_size,
                    actual: self.buf.len() as u64,
                },
            ));
        }
        if n.saturating_mul(min_size) > left {
            return Err(FormatError::header(
                self.path,
                format!("{what} {n} cannot fit in the {left} bytes left in the file"),
            ));
        }
        Ok(())
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N as u64)?.try_into().expect("length checked"))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.u64()?;
        let bytes = self.take(n)?;
        // Tokens of byte-level vocabularies are valid UTF-8 by construction;
        // a lossy conversion keeps a damaged name readable in error messages.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn value(&mut self, ty: u32, array_limit: Option<u64>, key: &str, depth: u32) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.arr::<1>()?[0]),
            1 => Value::I8(self.arr::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr()?)),
            3 => Value::I16(i16::from_le_bytes(self.arr()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.arr()?)),
            6 => Value::F32(f32::from_le_bytes(self.arr()?)),
            7 => match self.arr::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.bad_meta(key, format!("bool byte {b} is neither 0 nor 1"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth > 8 {
                    return Err(self.bad_meta(key, "arrays nested deeper than 8 levels".into()));
                }
                let elem = self.u32()?;
                let len = self.u64()?;
                // Each element needs at least one byte (strings 8): refuse
                // lengths the file cannot hold before reserving memory.
                self.check_count(len, if elem == 8 { 8 } else { 1 }, "array length")?;
                if array_limit.is_some_and(|lim| len > lim) {
                    self.skip_array(elem, len, key)?;
                    Value::SkippedArray {
                        elem_type: elem,
                        len,
                    }
                } else {
                    let mut items = Vec::with_capacity(len as usize);
                    for _ in 0..len {
                        items.push(self.value(elem, array_limit, key, depth + 1)?);
                    }
                    Value::Array(items)
                }
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.arr()?)),
            12 => Value::F64(f64::from_le_bytes(self.arr()?)),
            other => return Err(self.bad_meta(key, format!("unknown value type {other}"))),
        })
    }

    fn skip_array(&mut self, elem: u32, len: u64, key: &str) -> Result<()> {
        let fixed = match elem {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match (fixed, elem) {
            (Some(size), _) => {
                self.take(len.saturating_mul(size))?;
            }
            (None, 8) => {
                for _ in 0..len {
                    let n = self.u64()?;
                    self.take(n)?;
                }
            }
            _ => {
                // Nested or unknown element types are rare: parse them.
                for _ in 0..len {
                    self.value(elem, Some(HEADER_ARRAY_LIMIT), key, 1)?;
                }
            }
        }
        Ok(())
    }

    fn bad_meta(&self, key: &str, detail: String) -> FormatError {
        FormatError::new(
            self.path,
            FormatErrorKind::BadMetadata {
                key: key.to_string(),
                detail,
            },
        )
    }

    fn tensor_info(&mut self) -> Result<GgufTensor> {
        let name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > 4 {
            return Err(FormatError::header(
                self.path,
                format!("tensor `{name}` has {n_dims} dimensions (GGUF allows 1 to 4)"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let type_id = self.u32()?;
        let offset = self.u64()?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            FormatError::new(
                self.path,
                FormatErrorKind::UnknownGgufType {
                    tensor: name.clone(),
                    type_id,
                },
            )
        })?;
        let (block, block_bytes) = ggml_type.block();
        let numel = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                FormatError::header(self.path, format!("tensor `{name}`: shape overflows"))
            })?;
        if dims[0] % block != 0 {
            return Err(FormatError::new(
                self.path,
                FormatErrorKind::BadOffsets {
                    tensor: name,
                    detail: format!(
                        "row length {} is not a multiple of the {} block size {block}",
                        dims[0],
                        ggml_type.name()
                    ),
                },
            ));
        }
        let nbytes = (numel / block).checked_mul(block_bytes).ok_or_else(|| {
            FormatError::header(self.path, format!("tensor `{name}`: size overflows"))
        })?;
        Ok(GgufTensor {
            name,
            dims,
            ggml_type,
            offset,
            nbytes,
        })
    }
}
