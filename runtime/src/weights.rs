//! Where model weights come from: a Hugging Face folder (safetensors), a GGUF
//! file, or a seeded random generator for tests.
//!
//! Models ask a [`WeightSource`] for each tensor by its Hugging Face name and
//! PyTorch shape and get f32 values back, one tensor at a time, so the only
//! full copy of the model in memory is the Burn one (the files are mmapped).
//! A missing tensor is an error: ft never silently random-initializes a
//! weight that a checkpoint should have provided.

use crate::kernels::Kernels;
use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Tensor, TensorData};
use ft_formats::{
    hf_to_gguf_name, FormatError, FormatErrorKind, Gguf, HfWeights, ModelConfig, ModelFiles,
    SafetensorsFile, ShardIndex,
};
use std::collections::HashMap;
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, FormatError>;

/// A provider of f32 weights in PyTorch layout (row-major, `[out, in]` for
/// linear weights).
pub trait WeightSource {
    /// Whether the source has a tensor of this name.
    fn has(&self, name: &str) -> bool;
    /// The tensor's values; its shape must equal `shape`.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
    /// The file to name in errors.
    fn path(&self) -> PathBuf;
}

fn bad_shape(path: PathBuf, name: &str, expected: &[usize], actual: Vec<u64>) -> FormatError {
    FormatError::new(
        path,
        FormatErrorKind::BadShape {
            tensor: name.to_string(),
            expected: expected.iter().map(|&d| d as u64).collect(),
            actual,
        },
    )
}

fn missing(path: PathBuf, name: &str) -> FormatError {
    FormatError::new(
        path,
        FormatErrorKind::MissingTensor {
            tensor: name.to_string(),
        },
    )
}

/// Weights of a Hugging Face folder: one `model.safetensors` or the shards
/// listed in `model.safetensors.index.json`.
pub struct SafetensorsSource {
    dir: PathBuf,
    files: Vec<SafetensorsFile>,
    index: HashMap<String, usize>,
}

impl SafetensorsSource {
    pub fn open(weights: &HfWeights) -> Result<Self> {
        let (dir, files) = match weights {
            HfWeights::Single(p) => (p.clone(), vec![SafetensorsFile::open(p)?]),
            HfWeights::Sharded(idx) => {
                let index = ShardIndex::read(idx)?;
                let files = (0..index.shards.len())
                    .map(|i| SafetensorsFile::open(&index.shard_path(i)))
                    .collect::<Result<Vec<_>>>()?;
                (idx.clone(), files)
            }
        };
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            for t in &f.header.tensors {
                index.insert(t.name.clone(), i);
            }
        }
        Ok(SafetensorsSource { dir, files, index })
    }
}

impl WeightSource for SafetensorsSource {
    fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| missing(self.dir.clone(), name))?;
        let f = &self.files[i];
        let entry = f.header.get(name).expect("indexed");
        if entry
            .shape
            .iter()
            .map(|&d| d as usize)
            .ne(shape.iter().copied())
        {
            return Err(bad_shape(
                f.header.path.clone(),
                name,
                shape,
                entry.shape.clone(),
            ));
        }
        f.tensor_f32(name)
    }

    fn path(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// Weights of a GGUF file, asked for by Hugging Face name.
///
/// llama.cpp's converter permutes the rows of `q_proj` and `k_proj` so that
/// its rotary kernel can rotate adjacent pairs; transformers' GGUF loader
/// (`LlamaTensorProcessor._reverse_permute_weights`) undoes that so the HF
/// rotate-half convention applies. We do exactly the same, for the
/// architectures llama.cpp permutes (llama, mistral; not qwen2, which uses
/// the NeoX layout natively).
pub struct GgufSource {
    gguf: Gguf,
    num_heads: usize,
    num_kv_heads: usize,
    unpermute: bool,
}

impl GgufSource {
    pub fn open(path: &std::path::Path, config: &ModelConfig) -> Result<Self> {
        Ok(GgufSource {
            gguf: Gguf::open_header(path)?,
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
            unpermute: matches!(config.model_type.as_str(), "llama" | "mistral"),
        })
    }

    fn gguf_name(name: &str) -> String {
        hf_to_gguf_name(name).unwrap_or_else(|| name.to_string())
    }
}

impl WeightSource for GgufSource {
    fn has(&self, name: &str) -> bool {
        self.gguf.tensor(&Self::gguf_name(name)).is_some()
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let gname = Self::gguf_name(name);
        let t = self
            .gguf
            .tensor(&gname)
            .ok_or_else(|| missing(self.gguf.path.clone(), name))?;
        let actual = t.shape();
        if actual.iter().map(|&d| d as usize).ne(shape.iter().copied()) {
            return Err(bad_shape(self.gguf.path.clone(), name, shape, actual));
        }
        let mut data = self.gguf.tensor_f32(&gname)?;
        if self.unpermute {
            if name.contains(".self_attn.q_proj.") {
                data = unpermute_rows(&data, shape, self.num_heads);
            } else if name.contains(".self_attn.k_proj.") {
                data = unpermute_rows(&data, shape, self.num_kv_heads);
            }
        }
        Ok(data)
    }

    fn path(&self) -> PathBuf {
        self.gguf.path.clone()
    }
}

/// Inverse of llama.cpp's `permute`: rows are `[n_head, dim/2, 2]` in the
/// file and `[n_head, 2, dim/2]` in HF order (numpy: `w.reshape(n_head, dim,
/// 2, ...).swapaxes(1, 2)`).
pub fn unpermute_rows(data: &[f32], shape: &[usize], n_head: usize) -> Vec<f32> {
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let half = rows / n_head / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let src = h * 2 * half + i * 2 + j;
                let dst = h * 2 * half + j * half + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Seeded pseudo-random weights for tests of tiny models: deterministic,
/// small values (±0.1), norm weights near 1, so activations stay in range.
pub struct RandomSource {
    state: u64,
}

impl RandomSource {
    pub fn new(seed: u64) -> Self {
        RandomSource {
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    pub fn next_f32(&mut self) -> f32 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

impl WeightSource for RandomSource {
    fn has(&self, _name: &str) -> bool {
        true
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let is_norm_weight = name.ends_with("norm.weight") || name.ends_with("LayerNorm.weight");
        Ok((0..n)
            .map(|_| {
                let u = self.next_f32() * 0.2 - 0.1;
                if is_norm_weight {
                    1.0 + u
                } else {
                    u
                }
            })
            .collect())
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("<random>")
    }
}

/// Opens the weight source for a located model.
pub fn open_source(files: &ModelFiles, config: &ModelConfig) -> Result<Box<dyn WeightSource>> {
    Ok(match files {
        ModelFiles::HfFolder { weights, .. } => Box::new(SafetensorsSource::open(weights)?),
        ModelFiles::Gguf { path } => Box::new(GgufSource::open(path, config)?),
    })
}

/// Loading helpers shared by the model families.
pub struct Loader<'a, B: Kernels> {
    pub source: &'a mut dyn WeightSource,
    pub device: &'a B::Device,
}

impl<B: Kernels> Loader<'_, B> {
    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>> {
        let v = self.source.tensor(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(v, shape), self.device))
    }

    /// A linear layer from PyTorch `[out, in]` (and bias `[out]`). Burn keeps
    /// `[in, out]`, so the weight is transposed here, on the CPU, into a
    /// contiguous buffer (a transposed view would slow every matmul).
    pub fn linear(
        &mut self,
        path: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Linear<B>> {
        let w = self
            .source
            .tensor(&format!("{path}.weight"), &[d_out, d_in])?;
        let mut t = vec![0.0f32; w.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = w[o * d_in + i];
            }
        }
        let weight = Tensor::from_data(TensorData::new(t, [d_in, d_out]), self.device);
        let bias = if bias {
            Some(Param::from_tensor(
                self.tensor(&format!("{path}.bias"), [d_out])?,
            ))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    pub fn embedding(&mut self, name: &str, n: usize, d: usize) -> Result<Embedding<B>> {
        Ok(Embedding {
            weight: Param::from_tensor(self.tensor(&format!("{name}.weight"), [n, d])?),
        })
    }
}
