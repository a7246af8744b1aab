//! Every kind of bad row, in every source format: `on_bad_row = fail`
//! stops naming file and line; `skip` counts the row under its reason and
//! keeps the others. (A kind that cannot occur in a format is left out: a
//! CSV row cannot lack a column without having the wrong field count, and
//! a chatterbot conversation has no typed fields.)

mod common;
use common::*;
use ft_data::render::{BinOp, RowExpr};
use ft_data::Format;
use ft_pipeline::PipelineError;
use ft_plan::*;

struct Case {
    format: Format,
    name: &'static str,
    text: &'static str,
    /// Line of the bad row.
    line: usize,
    reason: &'static str,
}

const CASES: &[Case] = &[
    // JSON Lines
    Case { format: Format::Jsonl, name: "malformed.jsonl", text: "{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1}\n{\"q\": \"hi\", \"a\": \n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n", line: 2, reason: "malformed JSON" },
    Case { format: Format::Jsonl, name: "missing.jsonl", text: "{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1}\n{\"q\": \"hi\", \"score\": 1}\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n", line: 2, reason: "missing field `a`" },
    Case { format: Format::Jsonl, name: "type.jsonl", text: "{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1}\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": \"abc\"}\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n", line: 2, reason: "filter: wrong type: `score`" },
    Case { format: Format::Jsonl, name: "empty.jsonl", text: "{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1}\n{\"q\": \"hi\", \"a\": \"  \", \"score\": 1}\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n", line: 2, reason: "empty completion" },
    Case { format: Format::Jsonl, name: "scalar.jsonl", text: "{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1}\n[1, 2]\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n", line: 2, reason: "not a record" },
    // JSON
    Case { format: Format::Json, name: "scalar.json", text: "[\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1},\n3,\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n]\n", line: 3, reason: "not a record" },
    Case { format: Format::Json, name: "missing.json", text: "[\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1},\n{\"q\": \"hi\", \"score\": 1},\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n]\n", line: 3, reason: "missing field `a`" },
    Case { format: Format::Json, name: "type.json", text: "[\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1},\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": [1]},\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n]\n", line: 3, reason: "filter: wrong type: `score`" },
    Case { format: Format::Json, name: "empty.json", text: "[\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1},\n{\"q\": \"hi\", \"a\": null, \"score\": 1},\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": 2}\n]\n", line: 3, reason: "empty completion" },
    // CSV
    Case { format: Format::Csv, name: "count.csv", text: "q,a,score\nhi,yo,1\nhi,yo\nhi,yo,2\n", line: 3, reason: "wrong field count" },
    Case { format: Format::Csv, name: "type.csv", text: "q,a,score\nhi,yo,1\nhi,yo,abc\nhi,yo,2\n", line: 3, reason: "filter: wrong type: `score`" },
    Case { format: Format::Csv, name: "empty.csv", text: "q,a,score\nhi,yo,1\nhi,,1\nhi,yo,2\n", line: 3, reason: "empty completion" },
    // TSV
    Case { format: Format::Tsv, name: "count.tsv", text: "q\ta\tscore\nhi\tyo\t1\nhi\tyo\t1\t9\nhi\tyo\t2\n", line: 3, reason: "wrong field count" },
    Case { format: Format::Tsv, name: "type.tsv", text: "q\ta\tscore\nhi\tyo\t1\nhi\tyo\tabc\nhi\tyo\t2\n", line: 3, reason: "filter: wrong type: `score`" },
    Case { format: Format::Tsv, name: "empty.tsv", text: "q\ta\tscore\nhi\tyo\t1\nhi\t\t1\nhi\tyo\t2\n", line: 3, reason: "empty completion" },
    // YAML
    Case { format: Format::Yaml, name: "scalar.yaml", text: "- q: hi\n  a: yo\n  score: 1\n- just text\n- q: hi\n  a: yo\n  score: 2\n", line: 4, reason: "not a record" },
    Case { format: Format::Yaml, name: "missing.yaml", text: "- q: hi\n  a: yo\n  score: 1\n- q: hi\n  score: 1\n- q: hi\n  a: yo\n  score: 2\n", line: 4, reason: "missing field `a`" },
    Case { format: Format::Yaml, name: "type.yaml", text: "- q: hi\n  a: yo\n  score: 1\n- q: hi\n  a: yo\n  score: abc\n- q: hi\n  a: yo\n  score: 2\n", line: 4, reason: "filter: wrong type: `score`" },
    Case { format: Format::Yaml, name: "empty.yaml", text: "- q: hi\n  a: yo\n  score: 1\n- q: hi\n  a: ''\n  score: 1\n- q: hi\n  a: yo\n  score: 2\n", line: 4, reason: "empty completion" },
    // Chatterbot conversations
    Case { format: Format::YamlPairs, name: "short.yml", text: "conversations:\n- - hi\n  - yo\n- - lonely\n- - hi\n  - yo\n", line: 4, reason: "wrong field count" },
    Case { format: Format::YamlPairs, name: "empty.yml", text: "conversations:\n- - hi\n  - yo\n- - hi\n  - ''\n- - hi\n  - yo\n", line: 4, reason: "empty completion" },
];

fn case_plan(dir: &std::path::Path, c: &Case, policy: OnBadRow) -> Plan {
    let f = write(dir, c.name, c.text);
    let pairs = c.format == Format::YamlPairs;
    let fields = if pairs {
        completion_fields("{question}", "{answer}")
    } else {
        completion_fields("{q}", "{a}")
    };
    let mut ds = dataset("d", src(c.format, &f), fields);
    if !pairs {
        ds.filter = Some(RowExpr::Binary(
            BinOp::Gt,
            field("score"),
            Box::new(RowExpr::Num(-100.0)),
        ));
    }
    ds.on_bad_row = policy;
    plan(
        vec![ds],
        TrainData::Dataset(data_ref("d")),
        Head::CausalLm,
        1,
        32,
        Length::Steps(1),
    )
}

#[test]
fn every_kind_of_bad_row_in_every_format_fails_with_file_and_line_or_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let tok = || word_tokenizer(&["hi yo lonely"], false);
    for c in CASES {
        let err = build(&case_plan(dir.path(), c, OnBadRow::Fail), tok()).err();
        match &err {
            Some(PipelineError::BadRow { file, line, .. }) => {
                assert!(file.ends_with(c.name), "{}: {file:?}", c.name);
                assert_eq!(*line, c.line, "{}: {}", c.name, err.as_ref().unwrap());
                assert!(err
                    .as_ref()
                    .unwrap()
                    .to_string()
                    .contains(&format!("{}:{}", c.name, c.line)));
            }
            other => panic!("{}: expected a bad row, got {other:?}", c.name),
        }
        let data = build(&case_plan(dir.path(), c, OnBadRow::Skip), tok())
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let rep = &data.report().datasets[0];
        assert_eq!(
            rep.skipped.get(c.reason),
            Some(&1),
            "{}: {:?}",
            c.name,
            rep.skipped
        );
        assert_eq!(
            rep.skipped.values().sum::<usize>(),
            1,
            "{}: {:?}",
            c.name,
            rep.skipped
        );
        assert_eq!(rep.bad_rows[0].line, c.line, "{}", c.name);
        assert_eq!(rep.splits[0].examples, 2, "{}: the good rows stay", c.name);
    }
}

#[test]
fn rows_removed_by_a_filter_are_counted_not_bad() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f.jsonl", "{\"q\": \"hi\", \"a\": \"yo\", \"score\": 1}\n{\"q\": \"hi\", \"a\": \"yo\", \"score\": -1}\n");
    let mut ds = jsonl_ds("d", &f, completion_fields("{q}", "{a}"));
    ds.filter = Some(RowExpr::Binary(
        BinOp::Gt,
        field("score"),
        Box::new(RowExpr::Num(0.0)),
    ));
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("d")),
        Head::CausalLm,
        1,
        32,
        Length::Steps(1),
    );
    let data = build(&p, word_tokenizer(&["hi yo"], false)).unwrap();
    let rep = &data.report().datasets[0];
    assert_eq!(
        (rep.filtered, rep.skipped.len(), rep.splits[0].examples),
        (1, 0, 1)
    );
    assert_eq!(rep.sources[0].rows_read, 2);
}
