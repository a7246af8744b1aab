//! Each source format on small files written by the test: values, typing,
//! line numbers, options, globs and file-level errors.

use ft_data::{probe, rows, Format, Row, SourceError, SourceSpec, ValueKind};
use serde_json::json;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn good(spec: &SourceSpec) -> Vec<Row> {
    rows(spec)
        .unwrap()
        .map(|r| r.unwrap_or_else(|b| panic!("unexpected bad row {b}")))
        .collect()
}

fn lines(rows: &[Row]) -> Vec<usize> {
    rows.iter().map(|r| r.line).collect()
}

#[test]
fn jsonl_lines_skip_blanks_and_bom() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.jsonl",
        b"\xEF\xBB\xBF{\"a\": 1}\r\n\r\n   \n{\"a\": 2, \"m\": {\"t\": \"x\"}}\n",
    );
    let r = good(&SourceSpec::new(Format::Jsonl, &p));
    assert_eq!(lines(&r), [1, 4]);
    assert_eq!(r[1].get("m.t"), Some(&json!("x")));
}

#[test]
fn json_array_records_get_their_lines() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.json",
        b"[\n  {\"q\": \"a, ] } [\\\" {\", \"n\": 1},\n  {\n    \"q\": \"b\"\n  }\n  ,{\"q\": \"c\"}]\n",
    );
    let r = good(&SourceSpec::new(Format::Json, &p));
    assert_eq!(lines(&r), [2, 3, 6]);
    assert_eq!(r[0].value, json!({"q": "a, ] } [\" {", "n": 1}));
    assert_eq!(r[2].value["q"], "c");
}

#[test]
fn json_records_under_a_nested_key_skip_siblings() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.json",
        br#"{"version": {"x": [1, {"data": []}]}, "note": "data",
 "payload": {"count": 2, "items": [
   {"id": 1},
   {"id": 2}
 ]}, "after": [}"#,
    );
    let spec = SourceSpec {
        records: Some("payload.items".into()),
        ..SourceSpec::new(Format::Json, &p)
    };
    let r = good(&spec);
    assert_eq!(lines(&r), [3, 4]);
    assert_eq!(r[1].value, json!({"id": 2}));
    // An empty list is no rows, not an error.
    let e = write(d.path(), "e.json", b"{\"data\": []}");
    let spec = SourceSpec {
        records: Some("data".into()),
        ..SourceSpec::new(Format::Json, &e)
    };
    assert!(good(&spec).is_empty());
}

#[test]
fn csv_header_quotes_multiline_cells_and_crlf() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.csv",
        b"id,text,score\r\n1,\"hello, \"\"world\"\"\",0.5\r\n2,\"two\r\nlines\",-1\r\n\r\n3,,007\r\n",
    );
    let spec = SourceSpec::new(Format::Csv, &p);
    let r = good(&spec);
    assert_eq!(lines(&r), [2, 3, 6]);
    assert_eq!(
        r[0].value,
        json!({"id": 1, "text": "hello, \"world\"", "score": 0.5})
    );
    assert_eq!(r[1].value["text"], "two\nlines");
    assert_eq!(r[2].value, json!({"id": 3, "text": "", "score": "007"}));
    let pr = probe(&spec, 10).unwrap();
    assert_eq!(pr.header_line, Some(1));
    let f: Vec<_> = pr
        .fields
        .iter()
        .map(|f| (&*f.name, f.kind, f.line))
        .collect();
    assert_eq!(
        f,
        [
            ("id", ValueKind::Number, 1),
            ("text", ValueKind::String, 1),
            ("score", ValueKind::Mixed, 1)
        ]
    );
    // The header alone tells the fields.
    assert_eq!(probe(&spec, 0).unwrap().fields.len(), 3);
}

#[test]
fn csv_other_delimiter_declared_columns_and_header_override() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "a.csv", b"a;b\n1;x\n");
    let spec = SourceSpec {
        delimiter: Some(b';'),
        ..SourceSpec::new(Format::Csv, &p)
    };
    assert_eq!(good(&spec)[0].value, json!({"a": 1, "b": "x"}));
    let spec = SourceSpec {
        delimiter: Some(b';'),
        columns: Some(vec!["k".into(), "v".into()]),
        header: Some(true),
        ..SourceSpec::new(Format::Csv, &p)
    };
    let r = good(&spec);
    assert_eq!((r[0].line, &r[0].value), (2, &json!({"k": 1, "v": "x"})));
    let spec = SourceSpec {
        delimiter: Some(b';'),
        columns: Some(vec!["k".into(), "v".into()]),
        ..SourceSpec::new(Format::Csv, &p)
    };
    assert_eq!(lines(&good(&spec)), [1, 2]);
}

/// A TSV with a header row is read by its names; `delimiter` replaces the
/// tab; `header = true` with `columns` skips the file's own header row.
#[test]
fn tsv_header_names_and_other_delimiter() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "a.tsv", b"id\ttext\n1\thello there\n");
    let r = good(&SourceSpec::new(Format::Tsv, &p));
    assert_eq!(
        (r[0].line, &r[0].value),
        (2, &json!({"id": 1, "text": "hello there"}))
    );
    let renamed = SourceSpec {
        columns: Some(vec!["k".into(), "v".into()]),
        header: Some(true),
        ..SourceSpec::new(Format::Tsv, &p)
    };
    assert_eq!(good(&renamed)[0].value, json!({"k": 1, "v": "hello there"}));
    let q = write(d.path(), "b.tsv", b"id|text\n2|a\tb\n");
    let piped = SourceSpec {
        delimiter: Some(b'|'),
        ..SourceSpec::new(Format::Tsv, &q)
    };
    // The tab is data now, the bar separates.
    assert_eq!(good(&piped)[0].value, json!({"id": 2, "text": "a\tb"}));
}

#[test]
fn tsv_without_header_keeps_stray_quotes() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.tsv",
        b"\xEF\xBB\xBF1\t2.5\ta 9\" TV\r\n2\t-3\tok\r\n",
    );
    let spec = SourceSpec {
        columns: Some(vec!["id".into(), "score".into(), "text".into()]),
        ..SourceSpec::new(Format::Tsv, &p)
    };
    let r = good(&spec);
    assert_eq!(lines(&r), [1, 2]);
    assert_eq!(
        r[0].value,
        json!({"id": 1, "score": 2.5, "text": "a 9\" TV"})
    );
    let no_cols = SourceSpec::new(Format::Tsv, &p);
    let no_cols = SourceSpec {
        header: Some(false),
        ..no_cols
    };
    assert!(matches!(rows(&no_cols), Err(SourceError::BadSpec { .. })));
}

#[test]
fn yaml_list_and_records_with_core_schema_types() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.yml",
        b"# comment\n- name: a\n  n: 3\n  f: 1.5\n  ok: true\n  none: ~\n  quoted: '3'\n  meta: {t: x}\n- &b\n  name: |\n    block\n    text\n- name: \"q\"\n  tags: [x, y]\n",
    );
    let r = good(&SourceSpec::new(Format::Yaml, &p));
    // An anchored record starts on its `- &b` line.
    assert_eq!(lines(&r), [2, 9, 13]);
    assert_eq!(
        r[0].value,
        json!({"name": "a", "n": 3, "f": 1.5, "ok": true, "none": null, "quoted": "3",
               "meta": {"t": "x"}})
    );
    assert_eq!(r[1].value["name"], "block\ntext\n");
    let pr = probe(&SourceSpec::new(Format::Yaml, &p), 10).unwrap();
    assert_eq!(pr.field("meta.t").unwrap().kind, ValueKind::String);
    assert_eq!(pr.field("tags").unwrap().line, 13);
    assert_eq!(pr.field("name").unwrap().rows_present, 3);

    let p = write(
        d.path(),
        "b.yaml",
        b"info: {v: 1}\ndata:\n  rows:\n    - {a: 1}\n    - a: 2\n",
    );
    let spec = SourceSpec {
        records: Some("data.rows".into()),
        ..SourceSpec::new(Format::Yaml, &p)
    };
    assert_eq!(lines(&good(&spec)), [4, 5]);
}

#[test]
fn yaml_pairs_are_consecutive_turns() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "c.yml",
        b"categories:\n- test\nconversations:\n- - Hi\n  - Hello\n- - A\n  - B\n  - 3.10\n  - |\n    D\n",
    );
    let r = good(&SourceSpec::new(Format::YamlPairs, &p));
    let got: Vec<_> = r
        .iter()
        .map(|r| {
            (
                r.line,
                r.value["question"].as_str().unwrap(),
                r.value["answer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (4, "Hi", "Hello"),
            (6, "A", "B"),
            (7, "B", "3.10"),
            (8, "3.10", "D\n")
        ]
    );
}

#[test]
fn globs_read_files_in_sorted_order() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "b.jsonl", b"{\"f\": \"b\"}\n");
    write(d.path(), "a.jsonl", b"{\"f\": \"a\"}\n{\"f\": \"a2\"}\n");
    write(d.path(), "c.txt", b"not matched\n");
    let spec = SourceSpec::new(Format::Jsonl, d.path().join("*.jsonl"));
    let r = good(&spec);
    let got: Vec<_> = r.iter().map(|r| r.value["f"].as_str().unwrap()).collect();
    assert_eq!(got, ["a", "a2", "b"]);
    let pr = probe(&spec, 2).unwrap();
    assert_eq!(pr.files.len(), 2);
    assert_eq!(pr.rows_read, 2);
}

#[test]
fn file_level_errors() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.jsonl");
    assert_eq!(
        rows(&SourceSpec::new(Format::Jsonl, &missing)).err(),
        Some(SourceError::NotFound { pattern: missing })
    );
    let glob = d.path().join("*.csv");
    assert!(matches!(
        probe(&SourceSpec::new(Format::Csv, &glob), 5),
        Err(SourceError::GlobMatchedNothing { .. })
    ));
    let empty = write(d.path(), "e.jsonl", b"");
    assert!(matches!(
        probe(&SourceSpec::new(Format::Jsonl, &empty), 5),
        Err(SourceError::EmptyFile { .. })
    ));
    let spec = SourceSpec {
        columns: Some(vec!["a".into()]),
        ..SourceSpec::new(Format::Jsonl, &empty)
    };
    assert!(matches!(rows(&spec), Err(SourceError::BadSpec { .. })));
    let e = SourceError::NotFound {
        pattern: "x/y.tsv".into(),
    };
    assert_eq!(e.to_string(), "no such file: x/y.tsv");
}

#[test]
fn csv_headers_that_cannot_be_used() {
    let d = tempfile::tempdir().unwrap();
    for (name, bytes, msg) in [
        (
            "dup.csv",
            &b"a,b,a\n1,2,3\n"[..],
            "column `a` appears twice",
        ),
        ("blank.csv", b"a,,c\n1,2,3\n", "column 2 has no name"),
        ("utf.csv", b"a,\xff\n1,2\n", "column 2 is not valid UTF-8"),
    ] {
        let p = write(d.path(), name, bytes);
        match rows(&SourceSpec::new(Format::Csv, &p)) {
            Err(SourceError::BadHeader { line, msg: m, .. }) => {
                assert_eq!((line, m.as_str()), (1, msg), "{name}")
            }
            other => panic!("{name}: {:?}", other.map(|_| ())),
        }
    }
    let p = write(d.path(), "n.csv", b"a,b\n1,2\n");
    let spec = SourceSpec {
        columns: Some(vec!["x".into()]),
        header: Some(true),
        ..SourceSpec::new(Format::Csv, &p)
    };
    assert!(matches!(
        probe(&spec, 1),
        Err(SourceError::BadHeader { .. })
    ));
    // The files of a glob must agree on their header.
    write(d.path(), "m.csv", b"a,c\n1,2\n");
    let spec = SourceSpec::new(Format::Csv, d.path().join("[mn].csv"));
    match probe(&spec, 1) {
        Err(SourceError::BadHeader { path, .. }) => assert!(path.ends_with("n.csv")),
        other => panic!("{other:?}"),
    }
}
