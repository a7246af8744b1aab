//! The one error type of `ft-formats`.
//!
//! It is plain data (no boxed sources, no `io::Error`) so that the compiler can
//! turn it into a diagnostic, compare it in tests and cache it, and so that a
//! bad model file is always reported as "this file, this problem" rather than a
//! panic deep inside a loader.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with one model file. `path` is the file (or folder) at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatError {
    pub path: PathBuf,
    pub kind: FormatErrorKind,
}

/// What went wrong. Every variant carries enough detail to print a useful
/// message on its own.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatErrorKind {
    /// The operating system refused (not found, permission denied, ...).
    Io { detail: String },
    /// The file ends before a structure it declares.
    TruncatedFile { needed: u64, actual: u64 },
    /// The file's header is not what the format requires.
    BadHeader { detail: String },
    /// A tensor's declared location or size is inconsistent.
    BadOffsets { tensor: String, detail: String },
    /// A safetensors dtype name we do not know.
    UnknownDtype { tensor: String, dtype: String },
    /// A GGUF tensor type id that is not a ggml type at all.
    UnknownGgufType { tensor: String, type_id: u32 },
    /// A real ggml type that ft cannot dequantize (yet).
    UnsupportedGgufType { tensor: String, name: String },
    /// A tensor that is not floating point where weights were asked for.
    NotFloat { tensor: String, dtype: String },
    /// A tensor the model needs is absent.
    MissingTensor { tensor: String },
    /// A tensor has a shape the model does not expect.
    BadShape {
        tensor: String,
        expected: Vec<u64>,
        actual: Vec<u64>,
    },
    /// A GGUF metadata key has the wrong type or an invalid value.
    BadMetadata { key: String, detail: String },
    /// config.json (or GGUF metadata) lacks a field the architecture needs.
    MissingConfigField { field: String },
    /// A config field is present but unusable.
    BadConfigField { field: String, detail: String },
    /// The architecture is not one ft implements.
    UnsupportedArchitecture { name: String },
    /// A JSON file does not parse.
    BadJson {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A pickle checkpoint: ft never unpickles (it can execute arbitrary code).
    PickleRefused,
    /// A model folder without any weights file ft can read.
    NoWeights,
    /// A model folder without config.json.
    NoConfig,
    /// No tokenizer.json (folder) or no `tokenizer.ggml.*` metadata (GGUF).
    NoTokenizer,
    /// The tokenizer definition exists but cannot be built.
    BadTokenizer { detail: String },
    /// The path is neither a model folder, a safetensors file nor a GGUF file.
    UnknownModelFormat,
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, FormatError>;

impl FormatError {
    pub fn new(path: impl Into<PathBuf>, kind: FormatErrorKind) -> Self {
        FormatError {
            path: path.into(),
            kind,
        }
    }

    pub(crate) fn io(path: &Path, err: std::io::Error) -> Self {
        let detail = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        FormatError::new(path, FormatErrorKind::Io { detail })
    }

    pub(crate) fn json(path: &Path, err: &serde_json::Error) -> Self {
        FormatError::new(
            path,
            FormatErrorKind::BadJson {
                line: err.line(),
                col: err.column(),
                msg: err.to_string(),
            },
        )
    }

    pub(crate) fn header(path: &Path, detail: impl Into<String>) -> Self {
        FormatError::new(
            path,
            FormatErrorKind::BadHeader {
                detail: detail.into(),
            },
        )
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl fmt::Display for FormatErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FormatErrorKind::*;
        match self {
            Io { detail } => write!(f, "cannot read: {detail}"),
            TruncatedFile { needed, actual } => write!(
                f,
                "file is truncated: it needs at least {needed} bytes but has {actual}"
            ),
            BadHeader { detail } => write!(f, "bad header: {detail}"),
            BadOffsets { tensor, detail } => {
                write!(f, "tensor `{tensor}` has bad data offsets: {detail}")
            }
            UnknownDtype { tensor, dtype } => {
                write!(f, "tensor `{tensor}` has unknown dtype `{dtype}`")
            }
            UnknownGgufType { tensor, type_id } => write!(
                f,
                "tensor `{tensor}` has ggml type id {type_id}, which is not a known ggml type"
            ),
            UnsupportedGgufType { tensor, name } => write!(
                f,
                "tensor `{tensor}` is stored as ggml type {name}, which ft cannot dequantize; \
                 supported types are F32, F16, BF16, Q8_0, Q4_0 and Q4_1 \
                 (re-quantize the model, e.g. with llama.cpp's `llama-quantize`)"
            ),
            NotFloat { tensor, dtype } => {
                write!(f, "tensor `{tensor}` has dtype {dtype}, not a floating-point type")
            }
            MissingTensor { tensor } => write!(f, "the model has no tensor `{tensor}`"),
            BadShape {
                tensor,
                expected,
                actual,
            } => write!(
                f,
                "tensor `{tensor}` has shape {actual:?}, but the config implies {expected:?}"
            ),
            BadMetadata { key, detail } => write!(f, "metadata key `{key}`: {detail}"),
            MissingConfigField { field } => {
                write!(f, "the model config has no `{field}`, which this architecture needs")
            }
            BadConfigField { field, detail } => write!(f, "config field `{field}`: {detail}"),
            UnsupportedArchitecture { name } => write!(
                f,
                "architecture `{name}` is not supported; ft implements the BERT family \
                 (bert, roberta, xlm-roberta) and the Llama family (llama, mistral, qwen2)"
            ),
            BadJson { line, col, msg } => {
                write!(f, "invalid JSON at line {line}, column {col}: {msg}")
            }
            PickleRefused => write!(
                f,
                "this is a pickle checkpoint; ft does not load pickles because unpickling can \
                 run arbitrary code. Convert it to safetensors first, e.g. in Python: \
                 `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)` \
                 or `safetensors.torch.save_file(torch.load(path, weights_only=True), \
                 \"model.safetensors\")`"
            ),
            NoWeights => write!(
                f,
                "no weights found: expected model.safetensors or model.safetensors.index.json"
            ),
            NoConfig => write!(f, "no config.json found next to the weights"),
            NoTokenizer => write!(
                f,
                "no tokenizer found: expected tokenizer.json (or tokenizer.ggml.* metadata in a GGUF file)"
            ),
            BadTokenizer { detail } => write!(f, "cannot build the tokenizer: {detail}"),
            UnknownModelFormat => write!(
                f,
                "not a model: expected a Hugging Face model folder (config.json + \
                 model.safetensors), a .safetensors file or a .gguf file"
            ),
        }
    }
}

impl std::error::Error for FormatError {}
