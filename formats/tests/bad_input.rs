//! Malformed model files: each must be a `FormatError` naming the file and the
//! problem, never a panic.

mod common;
use common::*;
use ft_formats::safetensors::SafetensorsHeader;
use ft_formats::{FormatErrorKind, Gguf, ModelConfig, ModelFiles};

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn truncated_safetensors() {
    let dir = temp_dir("trunc");
    let full = safetensors_bytes(&[("w", "F32", vec![4, 4], f32_bytes(&[1.0; 16]))]);
    let p = write(&dir, "model.safetensors", &full[..full.len() - 10]);
    let err = SafetensorsHeader::read(&p).unwrap_err();
    assert_eq!(err.path, p);
    assert_eq!(
        err.kind,
        FormatErrorKind::TruncatedFile {
            needed: full.len() as u64,
            actual: full.len() as u64 - 10
        }
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    // A file shorter than the declared header.
    let p = write(&dir, "short.safetensors", &full[..20]);
    assert!(matches!(
        SafetensorsHeader::read(&p).unwrap_err().kind,
        FormatErrorKind::TruncatedFile { .. }
    ));
    // A file shorter than the length prefix.
    let p = write(&dir, "tiny.safetensors", &[1, 2, 3]);
    assert!(matches!(
        SafetensorsHeader::read(&p).unwrap_err().kind,
        FormatErrorKind::TruncatedFile { .. }
    ));
}

fn raw_safetensors(header: serde_json::Value, data_len: usize) -> Vec<u8> {
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(vec![0u8; data_len]);
    out
}

#[test]
fn safetensors_wrong_offsets() {
    let dir = temp_dir("offsets");
    // [2,2] F32 needs 16 bytes, offsets say 10.
    let p = write(
        &dir,
        "a.safetensors",
        &raw_safetensors(
            serde_json::json!({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 10]}}),
            10,
        ),
    );
    let err = SafetensorsHeader::read(&p).unwrap_err();
    match &err.kind {
        FormatErrorKind::BadOffsets { tensor, detail } => {
            assert_eq!(tensor, "w");
            assert!(detail.contains("needs 16 bytes"), "{detail}");
        }
        k => panic!("unexpected {k:?}"),
    }
    // Overlapping tensors.
    let p = write(
        &dir,
        "b.safetensors",
        &raw_safetensors(
            serde_json::json!({
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}),
            24,
        ),
    );
    let err = SafetensorsHeader::read(&p).unwrap_err();
    assert!(
        matches!(&err.kind, FormatErrorKind::BadOffsets { tensor, detail } if tensor == "b" && detail.contains("overlaps")),
        "{err}"
    );
    // A gap.
    let p = write(
        &dir,
        "c.safetensors",
        &raw_safetensors(
            serde_json::json!({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}),
            16,
        ),
    );
    let err = SafetensorsHeader::read(&p).unwrap_err();
    assert!(
        matches!(&err.kind, FormatErrorKind::BadOffsets { detail, .. } if detail.contains("gap")),
        "{err}"
    );
    // Unknown dtype, and a header that is not JSON.
    let p = write(
        &dir,
        "d.safetensors",
        &raw_safetensors(
            serde_json::json!({"a": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}}),
            8,
        ),
    );
    let err = SafetensorsHeader::read(&p).unwrap_err();
    assert_eq!(
        err.kind,
        FormatErrorKind::UnknownDtype {
            tensor: "a".into(),
            dtype: "F17".into()
        }
    );
    let mut bad = 5u64.to_le_bytes().to_vec();
    bad.extend(b"{oops");
    let p = write(&dir, "e.safetensors", &bad);
    assert!(matches!(
        SafetensorsHeader::read(&p).unwrap_err().kind,
        FormatErrorKind::BadJson { line: 1, .. }
    ));
    // An absurd header length is refused without allocating it.
    let p = write(&dir, "f.safetensors", &u64::MAX.to_le_bytes());
    assert!(matches!(
        SafetensorsHeader::read(&p).unwrap_err().kind,
        FormatErrorKind::BadHeader { .. }
    ));
}

#[test]
fn safetensors_round_trip_and_non_float() {
    let dir = temp_dir("roundtrip");
    let half: Vec<u8> = [1.5f32, -0.25]
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let bytes = safetensors_bytes(&[
        ("h", "F16", vec![2], half),
        ("ids", "I64", vec![1, 2], vec![0u8; 16]),
        ("w", "F32", vec![2, 1], f32_bytes(&[3.0, 4.0])),
    ]);
    let p = write(&dir, "model.safetensors", &bytes);
    let f = ft_formats::SafetensorsFile::open(&p).unwrap();
    assert_eq!(f.tensor_f32("h").unwrap(), vec![1.5, -0.25]);
    assert_eq!(f.tensor_f32("w").unwrap(), vec![3.0, 4.0]);
    assert_eq!(
        f.tensor_f32("ids").unwrap_err().kind,
        FormatErrorKind::NotFloat {
            tensor: "ids".into(),
            dtype: "I64".into()
        }
    );
    assert_eq!(
        f.tensor_f32("nope").unwrap_err().kind,
        FormatErrorKind::MissingTensor {
            tensor: "nope".into()
        }
    );
}

#[test]
fn gguf_unknown_tensor_type() {
    let dir = temp_dir("gguf-unknown");
    let mut w = GgufWriter::new();
    w.kv_str("general.architecture", "llama").tensor(
        "blk.0.attn_q.weight",
        &[32, 2],
        99,
        &[0u8; 64],
    );
    let p = write(&dir, "m.gguf", &w.bytes());
    let err = Gguf::open(&p).err().unwrap();
    assert_eq!(err.path, p);
    assert_eq!(
        err.kind,
        FormatErrorKind::UnknownGgufType {
            tensor: "blk.0.attn_q.weight".into(),
            type_id: 99
        }
    );
    assert!(err.to_string().contains("ggml type id 99"), "{err}");
}

#[test]
fn gguf_unsupported_type_and_truncation() {
    let dir = temp_dir("gguf-unsupported");
    let mut w = GgufWriter::new();
    // Q4_K (id 12): 256 elements per 144-byte block.
    w.kv_str("general.architecture", "llama").tensor(
        "blk.0.ffn_up.weight",
        &[256, 1],
        12,
        &[0u8; 144],
    );
    let p = write(&dir, "m.gguf", &w.bytes());
    let g = Gguf::open(&p).unwrap();
    let err = g.tensor_f32("blk.0.ffn_up.weight").unwrap_err();
    assert_eq!(
        err.kind,
        FormatErrorKind::UnsupportedGgufType {
            tensor: "blk.0.ffn_up.weight".into(),
            name: "Q4_K".into()
        }
    );
    assert!(err.to_string().contains("Q4_K"));
    // Cut into the data: the tensor no longer fits.
    let bytes = w.bytes();
    let p = write(&dir, "cut.gguf", &bytes[..bytes.len() - 1]);
    assert!(matches!(
        Gguf::open(&p).err().unwrap().kind,
        FormatErrorKind::TruncatedFile { .. }
    ));
    // Cut into the metadata.
    let p = write(&dir, "cut2.gguf", &bytes[..30]);
    assert!(matches!(
        Gguf::open(&p).err().unwrap().kind,
        FormatErrorKind::TruncatedFile { .. }
    ));
    // Bad magic and an absurd tensor count.
    let p = write(&dir, "magic.gguf", b"GGUX\x03\0\0\0");
    assert!(matches!(
        Gguf::open(&p).err().unwrap().kind,
        FormatErrorKind::BadHeader { .. }
    ));
    let mut huge = b"GGUF".to_vec();
    huge.extend(3u32.to_le_bytes());
    huge.extend(u64::MAX.to_le_bytes());
    huge.extend(0u64.to_le_bytes());
    let p = write(&dir, "huge.gguf", &huge);
    assert!(matches!(
        Gguf::open(&p).err().unwrap().kind,
        FormatErrorKind::BadHeader { .. }
    ));
}

#[test]
fn config_missing_fields() {
    let dir = temp_dir("config");
    let p = write(
        &dir,
        "config.json",
        br#"{"model_type": "bert", "hidden_size": 384, "num_attention_heads": 12}"#,
    );
    let err = ModelConfig::from_config_json(&p).unwrap_err();
    assert_eq!(
        err.kind,
        FormatErrorKind::MissingConfigField {
            field: "vocab_size".into()
        }
    );
    assert!(err.to_string().contains("`vocab_size`"), "{err}");
    let p = write(&dir, "c2.json", br#"{"hidden_size": 384}"#);
    assert_eq!(
        ModelConfig::from_config_json(&p).unwrap_err().kind,
        FormatErrorKind::MissingConfigField {
            field: "model_type".into()
        }
    );
    let p = write(&dir, "c3.json", br#"{"model_type": "gpt_neox"}"#);
    assert_eq!(
        ModelConfig::from_config_json(&p).unwrap_err().kind,
        FormatErrorKind::UnsupportedArchitecture {
            name: "gpt_neox".into()
        }
    );
    let p = write(
        &dir,
        "c4.json",
        b"{\n  \"model_type\": \"llama\",\n  \"hidden_size\": \"big\"\n}",
    );
    assert!(matches!(
        ModelConfig::from_config_json(&p).unwrap_err().kind,
        FormatErrorKind::BadConfigField { field, .. } if field == "hidden_size"
    ));
    let p = write(
        &dir,
        "c5.json",
        b"{\n  \"model_type\": \"llama\",\n  oops\n}",
    );
    assert!(matches!(
        ModelConfig::from_config_json(&p).unwrap_err().kind,
        FormatErrorKind::BadJson { line: 3, .. }
    ));
}

#[test]
fn tokenizer_json_that_does_not_parse() {
    let dir = temp_dir("tokenizer");
    let p = write(
        &dir,
        "tokenizer.json",
        b"{\n  \"version\": \"1.0\",\n  \"model\": [\n",
    );
    let err = ft_formats::tokenizer::tokenizer_from_json(&p).unwrap_err();
    assert_eq!(err.path, p);
    assert!(
        matches!(err.kind, FormatErrorKind::BadJson { line: 4, .. }),
        "{err:?}"
    );
    // Valid JSON that is not a tokenizer.
    let p = write(&dir, "t2.json", br#"{"model": 3}"#);
    let err = ft_formats::tokenizer::tokenizer_from_json(&p).unwrap_err();
    assert!(
        matches!(
            err.kind,
            FormatErrorKind::BadJson { .. } | FormatErrorKind::BadTokenizer { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn pickles_are_refused_and_folders_need_weights() {
    let dir = temp_dir("pickle");
    let p = write(&dir, "pytorch_model.bin", &[0x80, 0x02, 0x7d]);
    assert_eq!(
        ModelFiles::open(&p).unwrap_err().kind,
        FormatErrorKind::PickleRefused
    );
    let err = ModelFiles::open(&dir).unwrap_err();
    assert_eq!(err.kind, FormatErrorKind::PickleRefused);
    assert!(
        err.to_string().contains("safetensors"),
        "the message says how to convert: {err}"
    );
    let p = write(&dir, "weights", &[0x80, 0x02, 0x7d]);
    assert_eq!(
        ModelFiles::open(&p).unwrap_err().kind,
        FormatErrorKind::PickleRefused
    );
    let empty = temp_dir("empty");
    assert_eq!(
        ModelFiles::open(&empty).unwrap_err().kind,
        FormatErrorKind::NoWeights
    );
    write(&empty, "model.safetensors", &safetensors_bytes(&[]));
    assert_eq!(
        ModelFiles::open(&empty).unwrap_err().kind,
        FormatErrorKind::NoConfig
    );
    assert!(matches!(
        ModelFiles::open(empty.join("missing")).unwrap_err().kind,
        FormatErrorKind::Io { .. }
    ));
}

#[test]
fn sharded_safetensors_index() {
    let dir = temp_dir("sharded");
    let config = br#"{"model_type": "bert", "vocab_size": 4, "hidden_size": 2, "num_attention_heads": 1,
        "num_hidden_layers": 1, "intermediate_size": 4, "max_position_embeddings": 8, "type_vocab_size": 2}"#;
    write(&dir, "config.json", config);
    write(
        &dir,
        "a.safetensors",
        &safetensors_bytes(&[(
            "embeddings.word_embeddings.weight",
            "F32",
            vec![4, 2],
            f32_bytes(&[0.0; 8]),
        )]),
    );
    write(
        &dir,
        "b.safetensors",
        &safetensors_bytes(&[
            (
                "encoder.layer.0.attention.self.query.weight",
                "F32",
                vec![2, 2],
                f32_bytes(&[1.0; 4]),
            ),
            (
                "encoder.layer.0.attention.self.query.bias",
                "F32",
                vec![2],
                f32_bytes(&[0.0; 2]),
            ),
        ]),
    );
    let index = serde_json::json!({"metadata": {}, "weight_map": {
        "embeddings.word_embeddings.weight": "a.safetensors",
        "encoder.layer.0.attention.self.query.weight": "b.safetensors",
        "encoder.layer.0.attention.self.query.bias": "b.safetensors"}});
    write(
        &dir,
        "model.safetensors.index.json",
        index.to_string().as_bytes(),
    );
    let inv = ModelFiles::open(&dir).unwrap().inventory().unwrap();
    assert_eq!(inv.tensors.len(), 3);
    assert_eq!(inv.params, 8 + 4 + 2);
    assert_eq!(inv.linears.len(), 1);
    assert!(inv.linears[0].has_bias);
    // The index names a tensor its shard lacks.
    let index = serde_json::json!({"weight_map": {
        "embeddings.word_embeddings.weight": "a.safetensors",
        "encoder.layer.0.attention.self.key.weight": "b.safetensors"}});
    write(
        &dir,
        "model.safetensors.index.json",
        index.to_string().as_bytes(),
    );
    let err = ModelFiles::open(&dir).unwrap().inventory().unwrap_err();
    assert!(err.path.ends_with("b.safetensors"), "{err}");
    assert!(
        matches!(&err.kind, FormatErrorKind::MissingTensor { tensor } if tensor.ends_with("self.key.weight"))
    );
    // A shard name escaping the folder is refused.
    let index = serde_json::json!({"weight_map": {"x": "../a.safetensors"}});
    write(
        &dir,
        "model.safetensors.index.json",
        index.to_string().as_bytes(),
    );
    assert!(matches!(
        ModelFiles::open(&dir)
            .unwrap()
            .inventory()
            .unwrap_err()
            .kind,
        FormatErrorKind::BadHeader { .. }
    ));
}
