//! Every kind of bad row, in every source format, with its line; and the
//! rows around a bad row are still read.

use ft_data::{
    check_row, probe, rows, BadRowReason as R, FieldCheck, Format, Row, SourceSpec, ValueKind,
};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// (line, Ok(first field value as text) | Err(reason)) for each item.
fn outcome(spec: &SourceSpec) -> Vec<(usize, Result<String, R>)> {
    rows(spec)
        .unwrap()
        .map(|r| match r {
            Ok(row) => (row.line, Ok(first_value(&row))),
            Err(b) => (b.line, Err(b.reason)),
        })
        .collect()
}

fn first_value(row: &Row) -> String {
    let (_, v) = row.value.as_object().unwrap().iter().next().unwrap();
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn ok(line: usize, v: &str) -> (usize, Result<String, R>) {
    (line, Ok(v.to_owned()))
}

fn bad(line: usize, r: R) -> (usize, Result<String, R>) {
    (line, Err(r))
}

fn malformed_json(out: &(usize, Result<String, R>)) -> bool {
    matches!(out.1, Err(R::MalformedJson { fatal: false, .. }))
}

#[test]
fn jsonl_bad_rows() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.jsonl",
        b"{\"a\": \"1\"}\n{\"a\": tru}\n[1, 2]\n\"s\"\n{\"a\": \"\xff\"}\n{\"a\": \"6\"}\n{\"a\": \"7\"",
    );
    let got = outcome(&SourceSpec::new(Format::Jsonl, &p));
    assert_eq!(got.len(), 7);
    assert_eq!(got[0], ok(1, "1"));
    assert!(malformed_json(&got[1]), "{:?}", got[1]);
    assert_eq!(got[1].0, 2);
    assert_eq!(
        got[2],
        bad(
            3,
            R::NotAnObject {
                found: ValueKind::List
            }
        )
    );
    assert_eq!(
        got[3],
        bad(
            4,
            R::NotAnObject {
                found: ValueKind::String
            }
        )
    );
    assert_eq!(got[4], bad(5, R::InvalidUtf8));
    assert_eq!(got[5], ok(6, "6"));
    assert!(malformed_json(&got[6]) && got[6].0 == 7, "{:?}", got[6]);
}

#[test]
fn json_bad_records_are_skipped_one_by_one() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.json",
        b"[{\"a\": \"1\"},\n {\"a\":\n   tru},\n 3,\n {\"a\": \"\xff\"},\n {\"a\": \"5\"}]",
    );
    let got = outcome(&SourceSpec::new(Format::Json, &p));
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0], ok(1, "1"));
    // The error's own line inside the record.
    assert!(malformed_json(&got[1]) && got[1].0 == 3, "{:?}", got[1]);
    assert_eq!(
        got[2],
        bad(
            4,
            R::NotAnObject {
                found: ValueKind::Number
            }
        )
    );
    assert_eq!(got[3], bad(5, R::InvalidUtf8));
    assert_eq!(got[4], ok(6, "5"));
}

#[test]
fn json_broken_structure_stops_the_file() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], usize, usize); 5] = [
        // name, bytes, good rows before, line of the fatal bad row
        ("unterminated.json", b"[{\"a\": \"1\"},\n{\"a\": \"2", 1, 2),
        (
            "missing_comma.json",
            b"[{\"a\": \"1\"}\n{\"a\": \"2\"}]",
            1,
            2,
        ),
        ("trailing_comma.json", b"[{\"a\": \"1\"},\n]", 1, 2),
        ("stray_close.json", b"[{\"a\": \"1\"]}]", 0, 1),
        ("blank.json", b"  \n\n", 0, 3),
    ];
    for (name, bytes, good, line) in cases {
        let p = write(d.path(), name, bytes);
        let got = outcome(&SourceSpec::new(Format::Json, &p));
        assert_eq!(got.len(), good + 1, "{name}: {got:?}");
        assert!(got[..good].iter().all(|g| g.1.is_ok()), "{name}");
        let last = got.last().unwrap();
        assert!(
            matches!(last.1, Err(R::MalformedJson { fatal: true, .. })),
            "{name}: {last:?}"
        );
        assert_eq!(last.0, line, "{name}");
        assert!(last.1.as_ref().unwrap_err().is_fatal());
    }
}

#[test]
fn json_and_yaml_record_list_errors() {
    let d = tempfile::tempdir().unwrap();
    for (format, name, bytes) in [
        (
            Format::Json,
            "a.json",
            &b"{\"meta\": 1,\n \"rows\": []}"[..],
        ),
        (Format::Yaml, "a.yml", b"meta: 1\nrows: []\n"),
    ] {
        let p = write(d.path(), name, bytes);
        let spec = SourceSpec {
            records: Some("data".into()),
            ..SourceSpec::new(format, &p)
        };
        let got = outcome(&spec);
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(
            got[0].1,
            Err(R::RecordsNotFound { key: "data".into() }),
            "{name}"
        );
        // At the line of the object that lacks the key.
        assert_eq!(got[0].0, 1, "{name}");
        // Without `records`, an object is not a list of records.
        let got = outcome(&SourceSpec::new(format, &p));
        assert_eq!(
            got,
            [bad(
                1,
                R::NotAList {
                    found: ValueKind::Object
                }
            )],
            "{name}"
        );
        let spec = SourceSpec {
            records: Some("meta".into()),
            ..SourceSpec::new(format, &p)
        };
        assert_eq!(
            outcome(&spec),
            [bad(
                1,
                R::NotAList {
                    found: ValueKind::Number
                }
            )],
            "{name}"
        );
    }
}

#[test]
fn csv_and_tsv_bad_rows() {
    let d = tempfile::tempdir().unwrap();
    for (format, name, sep) in [(Format::Csv, "a.csv", ","), (Format::Tsv, "a.tsv", "\t")] {
        let text = "a,b\r\n1,x\r\n2\r\n3,y,extra\r\n4,@\r\n\"5\nfive\",z\r\n6,w".replace(',', sep);
        // `@` stands for an invalid UTF-8 byte.
        let bytes: Vec<u8> = text
            .bytes()
            .map(|b| if b == b'@' { 0xFF } else { b })
            .collect();
        let p = write(d.path(), name, &bytes);
        let got = outcome(&SourceSpec::new(format, &p));
        assert_eq!(
            got,
            [
                ok(2, "1"),
                bad(
                    3,
                    R::WrongFieldCount {
                        expected: 2,
                        found: 1
                    }
                ),
                bad(
                    4,
                    R::WrongFieldCount {
                        expected: 2,
                        found: 3
                    }
                ),
                bad(5, R::InvalidUtf8),
                ok(6, "5\nfive"),
                ok(8, "6"),
            ],
            "{name}"
        );
    }
}

#[test]
fn yaml_bad_rows() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.yml",
        b"- a: '1'\n- just a string\n- [1, 2]\n- a: '4'\n",
    );
    assert_eq!(
        outcome(&SourceSpec::new(Format::Yaml, &p)),
        [
            ok(1, "1"),
            bad(
                2,
                R::NotAnObject {
                    found: ValueKind::String
                }
            ),
            bad(
                3,
                R::NotAnObject {
                    found: ValueKind::List
                }
            ),
            ok(4, "4"),
        ]
    );
    // A syntax error stops the file at its line; rows before it stand.
    let p = write(
        d.path(),
        "b.yml",
        b"- a: '1'\n- a: '2'\n- a: [unclosed\n- a: '4'\n",
    );
    let got = outcome(&SourceSpec::new(Format::Yaml, &p));
    assert_eq!(got[..2], [ok(1, "1"), ok(2, "2")]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(got[2].1, Err(R::MalformedYaml { .. })), "{got:?}");
    assert!((3..=5).contains(&got[2].0), "{got:?}");
    // Invalid UTF-8 stops the file at the record holding it.
    let p = write(
        d.path(),
        "c.yml",
        b"- a: '1'\n- a: '2'\n- a: '\xff'\n- a: '4'\n",
    );
    assert_eq!(
        outcome(&SourceSpec::new(Format::Yaml, &p)),
        [ok(1, "1"), ok(2, "2"), bad(3, R::InvalidUtf8)]
    );
}

#[test]
fn yaml_pairs_bad_conversations() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "c.yml",
        b"conversations:\n- - Q1\n  - A1\n- - lonely\n- a string\n- - Q\n  - [nested]\n- - Q\n  -\n- - Q2\n  - A2\n- - Q3\n  - '\xff'\n- - Q4\n  - A4\n",
    );
    let got = outcome(&SourceSpec::new(Format::YamlPairs, &p));
    assert_eq!(
        got,
        [
            // `first_value` reads the sorted first key: "answer".
            ok(2, "A1"),
            bad(
                4,
                R::WrongFieldCount {
                    expected: 2,
                    found: 1
                }
            ),
            bad(
                5,
                R::WrongType {
                    field: "conversations.2".into(),
                    expected: ValueKind::List,
                    found: ValueKind::String
                }
            ),
            bad(
                6,
                R::WrongType {
                    field: "conversations.3.1".into(),
                    expected: ValueKind::String,
                    found: ValueKind::List
                }
            ),
            bad(
                8,
                R::WrongType {
                    field: "conversations.4.1".into(),
                    expected: ValueKind::String,
                    found: ValueKind::Null
                }
            ),
            ok(10, "A2"),
            bad(13, R::InvalidUtf8),
        ]
    );
    // A file whose conversations key is missing.
    let p = write(d.path(), "d.yml", b"categories: [x]\n");
    assert_eq!(
        outcome(&SourceSpec::new(Format::YamlPairs, &p)),
        [bad(
            1,
            R::RecordsNotFound {
                key: "conversations".into()
            }
        )]
    );
}

/// MissingField, WrongType and EmptyField are checks on good rows, the same
/// in every format.
#[test]
fn field_checks_in_every_format() {
    let d = tempfile::tempdir().unwrap();
    let files: [(Format, &str, &[u8]); 6] = [
        (
            Format::Jsonl,
            "f.jsonl",
            b"{\"text\": \"ok\", \"score\": 1}\n{\"score\": 1}\n{\"text\": \"x\", \"score\": \"high\"}\n{\"text\": \"  \", \"score\": 2}\n",
        ),
        (
            Format::Json,
            "f.json",
            b"[{\"text\": \"ok\", \"score\": 1},\n{\"score\": 1},\n{\"text\": \"x\", \"score\": \"high\"},\n{\"text\": \"  \", \"score\": 2}]",
        ),
        (
            Format::Csv,
            "f.csv",
            b"id,text,score\n1,ok,1\n2,x,\n3,x,high\n4,  ,2\n",
        ),
        (
            Format::Tsv,
            "f.tsv",
            b"id\ttext\tscore\n1\tok\t1\n2\tx\t\n3\tx\thigh\n4\t  \t2\n",
        ),
        (
            Format::Yaml,
            "f.yml",
            b"- {text: ok, score: 1}\n- {score: 1}\n- {text: x, score: high}\n- {text: '  ', score: 2}\n",
        ),
        (
            Format::YamlPairs,
            "p.yml",
            b"conversations:\n- [ok, fine]\n- [x, y]\n- [x, y]\n- ['  ', y]\n",
        ),
    ];
    for (format, name, bytes) in files {
        let p = write(d.path(), name, bytes);
        let spec = SourceSpec::new(format, &p);
        // CSV has no absent cells (an empty cell is ""), so its second row
        // lacks `score` by emptiness; the pairs format only has two fields.
        let checks = match format {
            Format::YamlPairs => vec![
                check("question", Some(ValueKind::String), true),
                check("answer", None, false),
                check("context", None, false),
            ],
            _ => vec![
                check("text", Some(ValueKind::String), true),
                check("score", Some(ValueKind::Number), true),
            ],
        };
        let got: Vec<_> = rows(&spec)
            .unwrap()
            .map(|r| {
                let r = check_row(r.unwrap(), &checks);
                r.map(|r| r.line).map_err(|b| (b.line, b.reason))
            })
            .collect();
        let expected: Vec<Result<usize, (usize, R)>> = match format {
            Format::YamlPairs => vec![
                Err((
                    2,
                    R::MissingField {
                        field: "context".into(),
                    },
                )),
                Err((
                    3,
                    R::MissingField {
                        field: "context".into(),
                    },
                )),
                Err((
                    4,
                    R::MissingField {
                        field: "context".into(),
                    },
                )),
                Err((
                    5,
                    R::EmptyField {
                        field: "question".into(),
                    },
                )),
            ],
            Format::Csv | Format::Tsv => vec![
                Ok(2),
                Err((
                    3,
                    R::EmptyField {
                        field: "score".into(),
                    },
                )),
                Err((4, wrong("score"))),
                Err((
                    5,
                    R::EmptyField {
                        field: "text".into(),
                    },
                )),
            ],
            _ => vec![
                Ok(1),
                Err((
                    2,
                    R::MissingField {
                        field: "text".into(),
                    },
                )),
                Err((3, wrong("score"))),
                Err((
                    4,
                    R::EmptyField {
                        field: "text".into(),
                    },
                )),
            ],
        };
        assert_eq!(got, expected, "{name}");
    }
}

fn check(field: &str, kind: Option<ValueKind>, non_empty: bool) -> FieldCheck {
    FieldCheck {
        field: field.into(),
        kind,
        non_empty,
    }
}

fn wrong(field: &str) -> R {
    R::WrongType {
        field: field.into(),
        expected: ValueKind::Number,
        found: ValueKind::String,
    }
}

#[test]
fn a_later_glob_file_that_cannot_be_opened_is_a_bad_row() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.csv", b"x,y\n1,2\n");
    write(d.path(), "b.csv", b"x,x\n1,2\n");
    let spec = SourceSpec::new(Format::Csv, d.path().join("*.csv"));
    let got: Vec<_> = rows(&spec).unwrap().collect();
    assert_eq!(got.len(), 2);
    let b = got[1].as_ref().unwrap_err();
    assert!(b.file.ends_with("b.csv"));
    assert!(matches!(b.reason, R::File { .. }) && b.reason.is_fatal());
    assert_eq!(b.line, 1);
}

#[test]
fn probe_collects_bad_rows_and_counts_them() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "a.jsonl",
        b"{\"a\": 1}\noops\n{\"a\": null}\n{\"a\": 2}\n",
    );
    let pr = probe(&SourceSpec::new(Format::Jsonl, &p), 3).unwrap();
    assert_eq!(pr.rows_read, 3);
    assert_eq!(pr.bad_rows.len(), 1);
    assert_eq!(pr.bad_rows[0].line, 2);
    assert_eq!(
        pr.bad_rows[0].to_string(),
        format!(
            "{}:2: malformed JSON: expected value (column 1)",
            p.display()
        )
    );
    let a = pr.field("a").unwrap();
    assert_eq!(
        (a.kind, a.nullable, a.rows_present),
        (ValueKind::Number, true, 2)
    );
}
