//! safetensors: our own header parser plus mmap access to single tensors.
//!
//! Why our own parser rather than the `safetensors` crate: `ft check` must
//! validate a model without touching its weights, so we read exactly the
//! `8 + N` header bytes, and we want every inconsistency reported as a
//! [`FormatError`] naming the tensor (the crate only has coarse errors and
//! wants the whole buffer). The layout is: a little-endian `u64` N, then N bytes
//! of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
//! {str: str}}`, then the data; offsets are relative to the start of the data.

use crate::error::{FormatError, FormatErrorKind, Result};
use half::{bf16, f16};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The safetensors spec (and the reference implementation) caps headers at
/// 100 MB; anything larger is a corrupt length, not a real header.
const MAX_HEADER: u64 = 100_000_000;

/// Element types a safetensors file may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    pub fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "F8_E5M2" => Dtype::F8E5M2,
            "F8_E4M3" => Dtype::F8E4M3,
            "I16" => Dtype::I16,
            "U16" => Dtype::U16,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I32" => Dtype::I32,
            "U32" => Dtype::U32,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            "U64" => Dtype::U64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    pub fn size(self) -> u64 {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E5M2 | Dtype::F8E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// Whether ft treats tensors of this type as weights (and converts them to
    /// f32). Integer tensors such as BERT's `position_ids` are buffers.
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }
}

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    /// Byte range relative to the start of the data section.
    pub begin: u64,
    pub end: u64,
}

impl TensorEntry {
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A validated safetensors header. Tensors are in data order.
#[derive(Debug, Clone)]
pub struct SafetensorsHeader {
    pub path: PathBuf,
    pub header_len: u64,
    pub file_len: u64,
    pub tensors: Vec<TensorEntry>,
    pub metadata: BTreeMap<String, String>,
}

impl SafetensorsHeader {
    /// Reads and validates only the header (the first `8 + N` bytes).
    pub fn read(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| FormatError::io(path, e))?.len();
        if file_len < 8 {
            return Err(truncated(path, 8, file_len));
        }
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes)
            .map_err(|e| FormatError::io(path, e))?;
        let n = u64::from_le_bytes(len_bytes);
        check_header_len(path, n, file_len)?;
        let mut json = vec![0u8; n as usize];
        file.read_exact(&mut json)
            .map_err(|e| FormatError::io(path, e))?;
        Self::parse_json(path, n, &json, file_len)
    }

    /// Validates a header from bytes already in memory (`bytes` is the whole
    /// file or at least its first `8 + N` bytes; `file_len` is the real size).
    pub fn parse(path: &Path, bytes: &[u8], file_len: u64) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(truncated(path, 8, file_len));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        check_header_len(path, n, file_len)?;
        let end = 8 + n as usize;
        if bytes.len() < end {
            return Err(truncated(path, end as u64, bytes.len() as u64));
        }
        Self::parse_json(path, n, &bytes[8..end], file_len)
    }

    fn parse_json(path: &Path, n: u64, json: &[u8], file_len: u64) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| FormatError::json(path, &e))?;
        let serde_json::Value::Object(map) = value else {
            return Err(FormatError::header(
                path,
                "the JSON header is not an object",
            ));
        };
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(map.len());
        for (name, entry) in map {
            if name == "__metadata__" {
                let serde_json::Value::Object(m) = entry else {
                    return Err(FormatError::header(path, "`__metadata__` is not an object"));
                };
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s) => {
                            metadata.insert(k, s);
                        }
                        _ => {
                            return Err(FormatError::header(
                                path,
                                format!("`__metadata__.{k}` is not a string"),
                            ))
                        }
                    }
                }
                continue;
            }
            tensors.push(parse_entry(path, name, &entry)?);
        }
        validate_layout(path, &mut tensors, 8 + n, file_len)?;
        Ok(SafetensorsHeader {
            path: path.to_path_buf(),
            header_len: n,
            file_len,
            tensors,
            metadata,
        })
    }

    /// Absolute file offset where the data section starts.
    pub fn data_start(&self) -> u64 {
        8 + self.header_len
    }

    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

fn truncated(path: &Path, needed: u64, actual: u64) -> FormatError {
    FormatError::new(path, FormatErrorKind::TruncatedFile { needed, actual })
}

fn check_header_len(path: &Path, n: u64, file_len: u64) -> Result<()> {
    if n > MAX_HEADER {
        return Err(FormatError::header(
            path,
            format!(
                "declared header length {n} exceeds the 100 MB limit (not a safetensors file?)"
            ),
        ));
    }
    if 8 + n > file_len {
        return Err(truncated(path, 8 + n, file_len));
    }
    Ok(())
}

fn parse_entry(path: &Path, name: String, entry: &serde_json::Value) -> Result<TensorEntry> {
    let bad = |detail: String| FormatError::header(path, format!("tensor `{name}`: {detail}"));
    let obj = entry
        .as_object()
        .ok_or_else(|| bad("entry is not an object".into()))?;
    let dtype_s = obj
        .get("dtype")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("missing string `dtype`".into()))?;
    let dtype = Dtype::parse(dtype_s).ok_or_else(|| {
        FormatError::new(
            path,
            FormatErrorKind::UnknownDtype {
                tensor: name.clone(),
                dtype: dtype_s.to_string(),
            },
        )
    })?;
    let shape = obj
        .get("shape")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("missing array `shape`".into()))?
        .iter()
        .map(|d| d.as_u64())
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| bad("`shape` must hold non-negative integers".into()))?;
    let offsets = obj
        .get("data_offsets")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("missing array `data_offsets`".into()))?;
    let (begin, end) = match offsets.as_slice() {
        [a, b] => match (a.as_u64(), b.as_u64()) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(bad(
                    "`data_offsets` must be two non-negative integers".into()
                ))
            }
        },
        _ => return Err(bad("`data_offsets` must have exactly two entries".into())),
    };
    Ok(TensorEntry {
        name,
        dtype,
        shape,
        begin,
        end,
    })
}

/// Offsets must describe exactly the bytes of each tensor, in one contiguous
/// run starting at 0, and the run must end exactly at the end of the file
/// (the reference implementation rejects trailing bytes too).
fn validate_layout(
    path: &Path,
    tensors: &mut [TensorEntry],
    data_start: u64,
    file_len: u64,
) -> Result<()> {
    let bad = |t: &TensorEntry, detail: String| {
        FormatError::new(
            path,
            FormatErrorKind::BadOffsets {
                tensor: t.name.clone(),
                detail,
            },
        )
    };
    for t in tensors.iter() {
        if t.end < t.begin {
            return Err(bad(t, format!("end {} is before begin {}", t.end, t.begin)));
        }
        let bytes = t
            .shape
            .iter()
            .try_fold(t.dtype.size(), |acc, &d| acc.checked_mul(d));
        match bytes {
            Some(b) if b == t.end - t.begin => {}
            Some(b) => {
                return Err(bad(
                    t,
                    format!(
                        "shape {:?} of {} needs {b} bytes but the offsets [{}, {}] span {}",
                        t.shape,
                        t.dtype.name(),
                        t.begin,
                        t.end,
                        t.end - t.begin
                    ),
                ))
            }
            None => return Err(bad(t, format!("shape {:?} overflows", t.shape))),
        }
    }
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut pos = 0u64;
    for t in tensors.iter() {
        if t.begin < pos {
            return Err(bad(
                t,
                format!(
                    "overlaps the previous tensor (begins at {} < {pos})",
                    t.begin
                ),
            ));
        }
        if t.begin > pos {
            return Err(bad(
                t,
                format!(
                    "leaves a gap: begins at {} but the previous tensor ends at {pos}",
                    t.begin
                ),
            ));
        }
        pos = t.end;
    }
    let needed = data_start + pos;
    if needed > file_len {
        return Err(truncated(path, needed, file_len));
    }
    if needed < file_len {
        return Err(FormatError::header(
            path,
            format!(
                "{} bytes after the last tensor; the header does not describe the whole file",
                file_len - needed
            ),
        ));
    }
    Ok(())
}

/// A memory-mapped safetensors file. Pages are only read when a tensor is
/// converted, so loading converts one tensor at a time without a second copy
/// of the file in memory.
pub struct SafetensorsFile {
    pub header: SafetensorsHeader,
    mmap: memmap2::Mmap,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let header = SafetensorsHeader::read(path)?;
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        // SAFETY: the map is read-only; like every mmap-based loader we rely on
        // nobody truncating the model file while it is loaded.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(path, e))?;
        if (mmap.len() as u64) != header.file_len {
            return Err(FormatError::header(
                path,
                "the file changed size while being opened",
            ));
        }
        Ok(SafetensorsFile { header, mmap })
    }

    /// The raw little-endian bytes of a tensor.
    pub fn bytes(&self, name: &str) -> Result<(&TensorEntry, &[u8])> {
        let t = self.header.get(name).ok_or_else(|| {
            FormatError::new(
                &self.header.path,
                FormatErrorKind::MissingTensor {
                    tensor: name.to_string(),
                },
            )
        })?;
        let start = (self.header.data_start() + t.begin) as usize;
        let end = (self.header.data_start() + t.end) as usize;
        Ok((t, &self.mmap[start..end]))
    }

    /// A tensor converted to f32 (row-major, the file's shape).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let (t, bytes) = self.bytes(name)?;
        to_f32(&self.header.path, t, bytes)
    }
}

/// Converts F32/F16/BF16/F64 little-endian bytes to f32; other dtypes are a
/// [`FormatErrorKind::NotFloat`] error (they are buffers, not weights).
pub fn to_f32(path: &Path, t: &TensorEntry, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match t.dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => {
            return Err(FormatError::new(
                path,
                FormatErrorKind::NotFloat {
                    tensor: t.name.clone(),
                    dtype: other.name().to_string(),
                },
            ))
        }
    })
}

/// `model.safetensors.index.json`: which shard holds which tensor.
#[derive(Debug, Clone)]
pub struct ShardIndex {
    pub path: PathBuf,
    /// Shard file names, in first-seen order, relative to the index's folder.
    pub shards: Vec<String>,
    /// Tensor name → index into `shards`.
    pub weight_map: BTreeMap<String, usize>,
}

impl ShardIndex {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| FormatError::json(path, &e))?;
        let map = value
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| FormatError::header(path, "no object `weight_map`"))?;
        let mut shards: Vec<String> = Vec::new();
        let mut weight_map = BTreeMap::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                FormatError::header(path, format!("`weight_map.{tensor}` is not a string"))
            })?;
            if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                return Err(FormatError::header(
                    path,
                    format!("shard name `{file}` must be a plain file name in the same folder"),
                ));
            }
            let idx = match shards.iter().position(|s| s == file) {
                Some(i) => i,
                None => {
                    shards.push(file.to_string());
                    shards.len() - 1
                }
            };
            weight_map.insert(tensor.clone(), idx);
        }
        Ok(ShardIndex {
            path: path.to_path_buf(),
            shards,
            weight_map,
        })
    }

    pub fn shard_path(&self, i: usize) -> PathBuf {
        self.path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.shards[i])
    }

    /// Reads every shard's header and checks that the index and the shards
    /// agree (each indexed tensor is in its shard, nothing is unindexed).
    pub fn read_headers(&self) -> Result<Vec<SafetensorsHeader>> {
        let headers = (0..self.shards.len())
            .map(|i| SafetensorsHeader::read(&self.shard_path(i)))
            .collect::<Result<Vec<_>>>()?;
        for (tensor, &i) in &self.weight_map {
            if headers[i].get(tensor).is_none() {
                return Err(FormatError::new(
                    &headers[i].path,
                    FormatErrorKind::MissingTensor {
                        tensor: tensor.clone(),
                    },
                ));
            }
        }
        for h in &headers {
            for t in &h.tensors {
                if !self.weight_map.contains_key(&t.name) {
                    return Err(FormatError::header(
                        &self.path,
                        format!(
                            "tensor `{}` in {} is not in the index",
                            t.name,
                            h.path.display()
                        ),
                    ));
                }
            }
        }
        Ok(headers)
    }
}
