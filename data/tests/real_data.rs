//! Reads the real data sets fetched by `scripts/fetch-assets.sh`. These tests
//! fail (never skip) when the cache is missing.

use ft_data::{probe, rows, Format, SourceSpec, ValueKind};
use std::path::PathBuf;

fn cache(rel: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join(".cache/data").join(rel);
    let probe_path = if rel.contains('*') {
        p.parent().unwrap().to_path_buf()
    } else {
        p.clone()
    };
    assert!(
        probe_path.exists(),
        "missing {}: run scripts/fetch-assets.sh first",
        probe_path.display()
    );
    p
}

fn movies() -> SourceSpec {
    SourceSpec {
        columns: Some(vec!["id".into(), "score".into(), "text".into()]),
        ..SourceSpec::new(Format::Tsv, cache("movie_snippets.tsv"))
    }
}

#[test]
fn movie_snippets_all_rows_typed_with_lines() {
    let mut n = 0;
    let (mut pos, mut neg, mut zero) = (0, 0, 0);
    for (i, r) in rows(&movies()).unwrap().enumerate() {
        let r = r.unwrap_or_else(|b| panic!("bad row: {b}"));
        assert_eq!(r.line, i + 1);
        assert_eq!(r.value["id"].as_u64(), Some(i as u64 + 1));
        let s = r.value["score"].as_f64().expect("score is a number");
        let text = r.value["text"].as_str().unwrap();
        assert!(
            !text.ends_with('\r'),
            "CRLF leaked into the text at line {}",
            r.line
        );
        match s.partial_cmp(&0.0).unwrap() {
            std::cmp::Ordering::Greater => pos += 1,
            std::cmp::Ordering::Less => neg += 1,
            std::cmp::Ordering::Equal => zero += 1,
        }
        n += 1;
    }
    assert_eq!(n, 10_605);
    assert_eq!((pos, neg, zero), (5242, 5326, 37));
}

#[test]
fn movie_snippets_probe() {
    let p = probe(&movies(), 50).unwrap();
    assert_eq!(p.rows_read, 50);
    assert!(p.bad_rows.is_empty());
    assert_eq!(p.header_line, None);
    let kinds: Vec<_> = p.fields.iter().map(|f| (f.name.as_str(), f.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("id", ValueKind::Number),
            ("score", ValueKind::Number),
            ("text", ValueKind::String)
        ]
    );
}

#[test]
fn aclsum_jsonl_rows_and_nested_fields() {
    for (split, count) in [("train", 100), ("val", 50), ("test", 100)] {
        let spec = SourceSpec::new(Format::Jsonl, cache(&format!("aclsum/{split}.jsonl")));
        let all: Vec<_> = rows(&spec).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(all.len(), count, "{split}");
        assert!(all.iter().enumerate().all(|(i, r)| r.line == i + 1));
        assert!(all
            .iter()
            .all(|r| r.get("summary.approach").is_some_and(|v| v.is_string())));
    }
    let spec = SourceSpec::new(Format::Jsonl, cache("aclsum/train.jsonl"));
    let p = probe(&spec, 10).unwrap();
    for (name, kind) in [
        ("id", ValueKind::String),
        ("summary", ValueKind::Object),
        ("summary.approach", ValueKind::String),
        ("sentences.abstract", ValueKind::List),
    ] {
        let f = p
            .field(name)
            .unwrap_or_else(|| panic!("no field {name}: {:?}", p.fields));
        assert_eq!(f.kind, kind, "{name}");
        assert_eq!(f.line, 1);
        assert_eq!(f.rows_present, 10);
    }
}

#[test]
fn chatterbot_pairs_match_the_corpus() {
    let spec = SourceSpec::new(Format::YamlPairs, cache("chatterbot/*.yml"));
    let (all, bad): (Vec<_>, Vec<_>) = rows(&spec).unwrap().partition(|r| r.is_ok());
    let all: Vec<_> = all.into_iter().map(Result::unwrap).collect();
    // The corpus holds one malformed conversation: in trivia.yml a missing
    // `- ` makes the question and `- '22'` one plain multi-line string (as
    // PyYAML reads it too). The rest give 2,306 consecutive pairs (the
    // field notes' 2,393 counted that string's 88 characters as turns).
    let bad: Vec<_> = bad.into_iter().map(Result::unwrap_err).collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].file.ends_with("trivia.yml"));
    assert_eq!(bad[0].line, 35);
    assert_eq!(
        bad[0].reason,
        ft_data::BadRowReason::WrongType {
            field: "conversations.13".into(),
            expected: ValueKind::List,
            found: ValueKind::String
        }
    );
    assert_eq!(all.len(), 2306);
    let first = &all[0];
    assert!(first.file.ends_with("ai.yml"));
    assert_eq!(first.line, 5);
    assert_eq!(first.value["question"], "What is AI?");
    assert!(first.value["answer"]
        .as_str()
        .unwrap()
        .starts_with("Artificial Intelligence is"));
    let p = probe(&spec, 20).unwrap();
    assert_eq!(p.files.len(), 21);
    let names: Vec<_> = p.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["answer", "question"]);
}
