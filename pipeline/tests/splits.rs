//! Splits from the plan: stratified by the derived label (ratios kept
//! within one example), hash splits stable when rows are appended, per-split
//! files, and the leakage report.

mod common;
use common::*;
use ft_data::render::Fields;
use ft_data::Format;
use ft_pipeline::DataPipeline;
use ft_plan::*;
use std::collections::HashMap;

fn classify_fields() -> Fields {
    Fields {
        input: text("{text}"),
        label: sign_label("score"),
        ..Fields::default()
    }
}

fn head() -> Head {
    Head::Classify {
        labels: vec!["negative".into(), "positive".into()],
    }
}

fn tsv(n: usize, positive_every: usize) -> String {
    (0..n)
        .map(|i| {
            let score = if i % positive_every == 0 { 1.5 } else { -0.5 };
            format!("{i}\t{score}\treview number {i}\n")
        })
        .collect()
}

fn tok() -> ft_pipeline::TextTokenizer {
    let nums: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    word_tokenizer(&[&nums.join(" "), "review number same text"], false)
}

/// (split, label) → count.
fn counts(data: &DataPipeline, name: &str) -> HashMap<(String, usize), usize> {
    let mut m = HashMap::new();
    for s in &data.dataset(name).unwrap().splits {
        for e in s.examples.iter() {
            *m.entry((s.name.clone(), e.tokens.class_label.unwrap()))
                .or_default() += 1;
        }
    }
    m
}

#[test]
fn stratifying_by_the_derived_label_keeps_class_ratios_within_one_example() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "r.tsv", &tsv(997, 3));
    let mut source = src(Format::Tsv, &f);
    source.columns = Some(vec!["id".into(), "score".into(), "text".into()]);
    let mut ds = dataset("r", source, classify_fields());
    ds.split = split(&[("train", 0.8), ("val", 0.1), ("test", 0.1)], 42);
    ds.stratify = Some(Stratify::Label);
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("r")),
        head(),
        8,
        16,
        Length::Steps(1),
    );
    let data = build(&p, tok()).unwrap();
    let c = counts(&data, "r");
    let n_pos = (0..997).filter(|i| i % 3 == 0).count() as f64;
    let n_neg = 997.0 - n_pos;
    for (split, frac) in [("train", 0.8), ("val", 0.1), ("test", 0.1)] {
        for (label, n) in [(0, n_neg), (1, n_pos)] {
            let got = c[&(split.to_owned(), label)] as f64;
            assert!(
                (got - n * frac).abs() <= 1.0,
                "{split} label {label}: {got} vs {}",
                n * frac
            );
        }
    }
}

#[test]
fn stratifying_by_a_field_works_too() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..300)
        .map(|i| {
            format!(
                "{{\"text\": \"review number {i}\", \"score\": {}, \"g\": \"{}\"}}\n",
                if i % 2 == 0 { 1 } else { -1 },
                if i % 5 == 0 { "x" } else { "y" }
            )
        })
        .collect();
    let f = write(dir.path(), "r.jsonl", &rows);
    let mut ds = jsonl_ds("r", &f, classify_fields());
    ds.split = split(&[("train", 0.5), ("test", 0.5)], 1);
    ds.stratify = Some(Stratify::Field("g".into()));
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("r")),
        head(),
        8,
        16,
        Length::Steps(1),
    );
    let data = build(&p, tok()).unwrap();
    let train = data.dataset("r").unwrap().split("train").unwrap();
    let xs = train.examples.iter().filter(|e| e.row["g"] == "x").count();
    assert_eq!(xs, 30, "half of the 60 `x` rows");
}

#[test]
fn a_hash_split_keeps_every_old_row_in_its_split_when_rows_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.tsv");
    let mut source = src(Format::Tsv, &f);
    source.columns = Some(vec!["id".into(), "score".into(), "text".into()]);
    let mut ds = dataset("r", source, classify_fields());
    ds.split = split(&[("train", 0.8), ("val", 0.1), ("test", 0.1)], 42);
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("r")),
        head(),
        8,
        16,
        Length::Steps(1),
    );
    let split_of = |data: &DataPipeline| -> HashMap<String, String> {
        data.dataset("r")
            .unwrap()
            .splits
            .iter()
            .flat_map(|s| {
                s.examples
                    .iter()
                    .map(move |e| (e.row["text"].as_str().unwrap().to_owned(), s.name.clone()))
            })
            .collect()
    };
    std::fs::write(&f, tsv(500, 2)).unwrap();
    let before = split_of(&build(&p, tok()).unwrap());
    let mut grown = tsv(500, 2);
    grown.push_str(
        &(500..800)
            .map(|i| format!("{i}\t1\treview number {i}\n"))
            .collect::<String>(),
    );
    std::fs::write(&f, grown).unwrap();
    let after = split_of(&build(&p, tok()).unwrap());
    assert_eq!(after.len(), 800);
    for (text, split) in &before {
        assert_eq!(&after[text], split, "{text} moved");
    }
    let tests = after.values().filter(|s| *s == "test").count();
    assert!(
        (50..110).contains(&tests),
        "about 10% of 800 in test: {tests}"
    );
}

#[test]
fn per_split_files_and_the_leakage_report() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "train.jsonl", "{\"text\": \"Same   text!\", \"score\": 1}\n{\"text\": \"review number 1\", \"score\": -1}\n");
    let test = write(
        dir.path(),
        "test.jsonl",
        "{\"text\": \"review number 2\", \"score\": 1}\n{\"text\": \"same text\", \"score\": 1}\n",
    );
    let mut ds = dataset("r", src(Format::Jsonl, &train), classify_fields());
    ds.source = DataSource::PerSplit(vec![
        ("train".into(), src(Format::Jsonl, &train)),
        ("test".into(), src(Format::Jsonl, &test)),
    ]);
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("r")),
        head(),
        2,
        16,
        Length::Steps(1),
    );
    let data = build(&p, tok()).unwrap();
    let b = data.dataset("r").unwrap();
    assert_eq!(
        b.splits
            .iter()
            .map(|s| (s.name.as_str(), s.examples.len()))
            .collect::<Vec<_>>(),
        [("train", 2), ("test", 2)]
    );
    let leaks = &data.report().datasets[0].leaks;
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0].text, "same text");
    let locs: Vec<(&str, usize)> = leaks[0]
        .locations
        .iter()
        .map(|l| (l.split.as_str(), l.line))
        .collect();
    assert_eq!(locs, [("train", 1), ("test", 2)]);
    assert!(leaks[0].locations[1].file.ends_with("test.jsonl"));
    // Eval batches come per split, in order.
    let eval = data.eval_batches("test", 8).unwrap();
    assert_eq!(eval.len(), 1);
    assert_eq!(eval[0].main().class_labels, vec![1, 1]);
}
