//! Shared by the fixture tests: paths, the generated binary world fixtures,
//! and the rendering of one analysis as stable text.
//!
//! The binary files under `tests/fixtures/` (tiny safetensors models, a
//! truncated one, a pickle checkpoint, a non-UTF-8 recipe) are written by
//! `ensure_world_fixtures` from the descriptions below. They are committed
//! too, so `ft check` works on the fixtures by hand; the tests rewrite any
//! that drifted from what this file says.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ft_compiler::diagnostics::render::{self, Style};
use ft_compiler::driver::{self, Analysis, Options};
use ft_compiler::plan::memory::MemoryProbe;

/// The crate folder (`compiler/`); tests run with it as working directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    crate_dir()
        .parent()
        .expect("compiler/ has a parent")
        .to_path_buf()
}

pub fn fixtures() -> PathBuf {
    crate_dir().join("tests/fixtures")
}

/// `path` relative to the crate folder when it lies inside it, so that file
/// names in diagnostics do not depend on where the repository is checked out.
pub fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(crate_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Analyzes a recipe by its path relative to `compiler/`, with world checks.
pub fn analyze(path: &Path) -> Analysis {
    ensure_world_fixtures();
    // Integration tests run in the crate folder; make sure of it, since every
    // path in the fixtures is relative.
    assert_eq!(
        std::env::current_dir().expect("cwd").canonicalize().ok(),
        crate_dir().canonicalize().ok(),
        "fixture tests must run from the crate folder"
    );
    driver::analyze_path(&relative(path), options())
}

/// The fixtures' options: `ft check`'s (world checks and a sweep's
/// trials), with a fixed 16 GiB of memory so that the memory check
/// (FT0801) says the same on every machine.
pub fn options() -> Options {
    Options {
        world: true,
        memory: MemoryProbe::Fixed(16 << 30),
        trials: true,
    }
}

/// The diagnostics as a terminal shows them (no colour), then the summary
/// line `ft check` prints, with any absolute path of the checkout replaced.
pub fn render(path: &Path, a: &Analysis) -> String {
    let mut out = render::terminal(&a.diagnostics, &a.sources, Style::Plain);
    let status = if a.has_errors() { "✗" } else { "✓" };
    out.push_str(&format!(
        "{status} {}: {}\n",
        relative(path).display(),
        render::summary(&a.diagnostics)
    ));
    scrub(&out)
}

/// Replaces the checkout's absolute paths (which appear, for instance, in
/// the cycle of an import) so snapshots are machine-independent.
pub fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    for (p, with) in [(crate_dir(), "<compiler>"), (repo_root(), "<repo>")] {
        if let Ok(c) = p.canonicalize() {
            out = out.replace(&c.display().to_string(), with);
        }
        out = out.replace(&p.display().to_string(), with);
    }
    out
}

/// The codes of an analysis, in order.
pub fn codes(a: &Analysis) -> Vec<&'static str> {
    a.diagnostics.iter().map(|d| d.code.id).collect()
}

// ── generated binary fixtures ────────────────────────────────────────────

/// A tensor of a hand-made safetensors file: name and shape (all F16 zeros).
type TensorDef = (String, Vec<usize>);

/// A safetensors file: `u64` header length, JSON header (keys sorted, so the
/// bytes are reproducible), then the data (zeros).
pub fn safetensors(tensors: &[TensorDef]) -> Vec<u8> {
    let mut sorted: Vec<&TensorDef> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut entries = vec![r#""__metadata__":{"format":"pt"}"#.to_string()];
    let mut offset = 0usize;
    for (name, shape) in &sorted {
        let bytes = shape.iter().product::<usize>() * 2;
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        entries.push(format!(
            r#""{name}":{{"dtype":"F16","shape":[{}],"data_offsets":[{offset},{}]}}"#,
            dims.join(","),
            offset + bytes
        ));
        offset += bytes;
    }
    let mut header = format!("{{{}}}", entries.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + offset, 0);
    out
}

/// A BERT-style encoder: hidden 16, intermediate 32, `layers` layers.
pub fn tiny_bert_tensors(layers: usize) -> Vec<TensorDef> {
    let mut t: Vec<TensorDef> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![16, 16]),
        ("embeddings.position_embeddings.weight".into(), vec![32, 16]),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, 16],
        ),
        ("pooler.dense.weight".into(), vec![16, 16]),
    ];
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
        ] {
            t.push((format!("{p}.{m}.weight"), vec![16, 16]));
        }
        t.push((format!("{p}.attention.output.dense.weight"), vec![16, 16]));
        t.push((format!("{p}.intermediate.dense.weight"), vec![32, 16]));
        t.push((format!("{p}.output.dense.weight"), vec![16, 32]));
    }
    t
}

/// A Llama-style decoder: hidden 16, intermediate 32, `layers` layers.
pub fn tiny_llama_tensors(layers: usize) -> Vec<TensorDef> {
    tiny_llama_tensors_with_vocab(layers, 16)
}

pub fn tiny_llama_tensors_with_vocab(layers: usize, vocab: usize) -> Vec<TensorDef> {
    let mut t: Vec<TensorDef> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, 16]),
        ("lm_head.weight".into(), vec![vocab, 16]),
    ];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for m in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            t.push((format!("{p}.self_attn.{m}.weight"), vec![16, 16]));
        }
        t.push((format!("{p}.mlp.gate_proj.weight"), vec![32, 16]));
        t.push((format!("{p}.mlp.up_proj.weight"), vec![32, 16]));
        t.push((format!("{p}.mlp.down_proj.weight"), vec![16, 32]));
    }
    t
}

/// Every generated binary fixture: path under `tests/fixtures/` and bytes.
pub fn generated_files() -> Vec<(&'static str, Vec<u8>)> {
    let bert = safetensors(&tiny_bert_tensors(2));
    let mut truncated = bert.clone();
    truncated.truncate(bert.len() / 2);
    let mut non_utf8 =
        b"# Not UTF-8: a Latin-1 byte (0xE9, \"e\" with an acute accent) in a comment.\n\
        train { epochs = 1 } # caf"
            .to_vec();
    non_utf8.extend_from_slice(&[0xE9, b'\n']);
    vec![
        ("world/models/tiny-bert/model.safetensors", bert.clone()),
        (
            "world/models/tiny-llama/model.safetensors",
            safetensors(&tiny_llama_tensors(2)),
        ),
        (
            "world/models/tiny-llama-wide/model.safetensors",
            safetensors(&tiny_llama_tensors_with_vocab(2, 32)),
        ),
        ("world/models/no-tokenizer/model.safetensors", bert),
        ("world/models/truncated/model.safetensors", truncated),
        (
            "world/models/gpt2/model.safetensors",
            safetensors(&[("h.0.attn.c_attn.weight".into(), vec![16, 48])]),
        ),
        // A protocol-2 pickle header, as `torch.save` of old wrote.
        (
            "world/models/pickle/pytorch_model.bin",
            b"\x80\x02}q\x00(X\x06\x00\x00\x00weightq\x01.".to_vec(),
        ),
        ("bad/invalid-utf8.ft", non_utf8),
    ]
}

/// Writes the generated fixtures that are missing or differ (once per test
/// process).
pub fn ensure_world_fixtures() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for (rel, bytes) in generated_files() {
            let path = fixtures().join(rel);
            if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, &bytes).expect("write fixture");
            }
        }
    });
}
