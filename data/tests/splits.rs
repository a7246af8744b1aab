//! Split assignment and the leakage report.

use ft_data::split::{
    find_leaks, leakage_report, normalize_text, LeakItem, SplitError, SplitItem, SplitKey,
    SplitPart, SplitSpec, Splitter,
};
use ft_data::{rows, Format, Row, SourceSpec};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn spec(parts: &[(&str, f64)], seed: u64, key: SplitKey) -> SplitSpec {
    SplitSpec {
        parts: parts
            .iter()
            .map(|&(n, f)| SplitPart {
                name: n.into(),
                fraction: f,
            })
            .collect(),
        seed,
        stratify: None,
        key,
    }
}

fn tvt(seed: u64) -> SplitSpec {
    spec(
        &[("train", 0.8), ("val", 0.1), ("test", 0.1)],
        seed,
        SplitKey::Content,
    )
}

fn row(line: usize, value: serde_json::Value) -> Row {
    Row {
        file: Arc::from(Path::new("mem.jsonl")),
        line,
        value,
    }
}

fn synthetic(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let label = ["a", "b", "b", "c", "c", "c", "c"][i % 7];
            row(
                i + 1,
                json!({"id": i, "text": format!("example number {i}"), "label": label}),
            )
        })
        .collect()
}

#[test]
fn bad_specs_are_refused() {
    let e = Splitter::new(spec(&[("a", 0.8), ("b", 0.1)], 0, SplitKey::Content)).unwrap_err();
    assert!(matches!(e, SplitError::FractionsDontSum { sum } if (sum - 0.9).abs() < 1e-12));
    let e = Splitter::new(spec(&[("a", 1.2), ("b", -0.2)], 0, SplitKey::Content)).unwrap_err();
    assert!(matches!(e, SplitError::BadFraction { .. }));
    let e = Splitter::new(spec(&[("a", 0.5), ("a", 0.5)], 0, SplitKey::Content)).unwrap_err();
    assert_eq!(e, SplitError::DuplicateName { name: "a".into() });
    assert_eq!(
        Splitter::new(spec(&[], 0, SplitKey::Content)).unwrap_err(),
        SplitError::NoParts
    );
    // Fractions written as percentages that do not add exactly in binary.
    Splitter::new(spec(
        &[("a", 0.7), ("b", 0.2), ("c", 0.1)],
        0,
        SplitKey::Content,
    ))
    .unwrap();
}

#[test]
fn hash_assignment_is_deterministic_and_near_the_fractions() {
    let rows = synthetic(20_000);
    let s = Splitter::new(tvt(42)).unwrap();
    let a = s.assign_rows(&rows).unwrap();
    assert_eq!(a, s.assign_rows(&rows).unwrap());
    // Binomial: sd of the 10% split is sqrt(20000 * .1 * .9) ≈ 42; allow 4 sd.
    for (count, frac) in a.counts.iter().zip([0.8, 0.1, 0.1]) {
        let expect = 20_000.0 * frac;
        assert!(
            (*count as f64 - expect).abs() < 4.0 * (expect * (1.0 - frac)).sqrt(),
            "{:?}",
            a.counts
        );
    }
    let b = Splitter::new(tvt(43)).unwrap().assign_rows(&rows).unwrap();
    let differ = a
        .split_of
        .iter()
        .zip(&b.split_of)
        .filter(|(x, y)| x != y)
        .count();
    assert!(
        differ > 4_000,
        "another seed must give another split: {differ}"
    );
}

#[test]
fn appending_rows_never_moves_an_old_row() {
    let all = synthetic(3_000);
    let s = Splitter::new(tvt(7)).unwrap();
    let before = s.assign_rows(&all[..2_000]).unwrap();
    let after = s.assign_rows(&all).unwrap();
    assert_eq!(before.split_of[..], after.split_of[..2_000]);
    // With an id key, reordering and editing other fields change nothing.
    let by_id = Splitter::new(spec(
        &[("train", 0.9), ("val", 0.1)],
        1,
        SplitKey::Fields(vec!["id".into()]),
    ))
    .unwrap();
    let a = by_id.assign_rows(&all).unwrap();
    let mut edited: Vec<Row> = all.iter().rev().cloned().collect();
    for r in &mut edited {
        r.value["text"] = json!("rewritten");
    }
    let b = by_id.assign_rows(&edited).unwrap();
    for i in 0..all.len() {
        assert_eq!(a.split_of[i], b.split_of[all.len() - 1 - i]);
    }
}

#[test]
fn near_duplicates_share_a_split_under_content_keys() {
    let s = Splitter::new(tvt(3)).unwrap();
    let x = s
        .key_hash(&row(1, json!({"t": "Hello,   World!"})))
        .unwrap();
    let y = s.key_hash(&row(9, json!({"t": "hello world"}))).unwrap();
    let z = s
        .key_hash(&row(9, json!({"t": "hello world", "u": 1})))
        .unwrap();
    assert_eq!(x, y);
    assert_ne!(x, z);
    assert_eq!(
        normalize_text("  The Rock -- is\tBACK!  "),
        "the rock is back"
    );
}

fn check_stratified(a: &ft_data::split::Assignment, fractions: &[f64]) {
    for (class, per_split) in &a.strata {
        let n: usize = per_split.iter().sum();
        for (c, f) in per_split.iter().zip(fractions) {
            let ideal = n as f64 * f;
            assert!(
                (*c as f64 - ideal).abs() <= 1.0,
                "class {class}: {per_split:?} of {n}"
            );
        }
    }
}

#[test]
fn stratified_keeps_class_ratios_within_one_example() {
    let rows = synthetic(1_001);
    let mut sp = tvt(5);
    sp.stratify = Some("label".into());
    let s = Splitter::new(sp).unwrap();
    let a = s.assign_rows(&rows).unwrap();
    assert_eq!(a.strata.len(), 3);
    check_stratified(&a, &[0.8, 0.1, 0.1]);
    assert_eq!(a.counts.iter().sum::<usize>(), 1_001);
    // Every row's split agrees with the per-stratum counts.
    for (class, per_split) in &a.strata {
        for (j, &c) in per_split.iter().enumerate() {
            let got = (0..rows.len())
                .filter(|&i| rows[i].value["label"] == json!(class) && a.split_of[i] == j)
                .count();
            assert_eq!(got, c);
        }
    }
    // Appending moves at most one old row per cut per appended row.
    let more = synthetic(1_101);
    let b = s.assign_rows(&more).unwrap();
    let moved = (0..1_001)
        .filter(|&i| a.split_of[i] != b.split_of[i])
        .count();
    assert!(moved <= 100 * 2, "{moved}");
    // A missing stratify field is an error with the row's place.
    let e = s.assign_rows(&[row(4, json!({"text": "x"}))]).unwrap_err();
    assert_eq!(
        e,
        SplitError::MissingField {
            field: "label".into(),
            file: PathBuf::from("mem.jsonl"),
            line: 4
        }
    );
}

fn movie_rows() -> Vec<Row> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/data/movie_snippets.tsv");
    assert!(
        p.exists(),
        "missing {}: run scripts/fetch-assets.sh first",
        p.display()
    );
    let spec = SourceSpec {
        columns: Some(vec!["id".into(), "score".into(), "text".into()]),
        ..SourceSpec::new(Format::Tsv, p)
    };
    rows(&spec).unwrap().map(Result::unwrap).collect()
}

#[test]
fn movie_snippets_stratified_by_a_derived_label() {
    let rows = movie_rows();
    let s = Splitter::new(tvt(42)).unwrap();
    // The label is derived (`if score > 0 then "positive" else "negative"`),
    // so the caller builds the items with its own stratum.
    let items: Vec<SplitItem> = rows
        .iter()
        .map(|r| SplitItem {
            hash: s.key_hash(r).unwrap(),
            stratum: Some(
                if r.value["score"].as_f64().unwrap() > 0.0 {
                    "positive"
                } else {
                    "negative"
                }
                .into(),
            ),
        })
        .collect();
    let a = s.assign(&items).unwrap();
    check_stratified(&a, &[0.8, 0.1, 0.1]);
    assert_eq!(a.strata["positive"].iter().sum::<usize>(), 5242);
    assert_eq!(a.strata["negative"].iter().sum::<usize>(), 5326 + 37);
    assert_eq!(a.counts.iter().sum::<usize>(), 10_605);
    // The report finds texts repeated across splits, each with both places.
    let leaks = leakage_report(&rows, &a, "text");
    for l in &leaks {
        assert!(l.locations.len() >= 2);
        let mut splits: Vec<_> = l.locations.iter().map(|l| &l.split).collect();
        splits.dedup();
        assert_eq!(splits.len(), l.locations.len(), "{l:?}");
        for loc in &l.locations {
            let r = rows.iter().find(|r| r.line == loc.line).unwrap();
            assert_eq!(normalize_text(r.value["text"].as_str().unwrap()), l.text);
        }
    }
    // The file repeats two texts (under different ids); with seed 42 one of
    // them straddles two splits.
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert!(leaks[0].text == "a pretentious mess" || leaks[0].text.starts_with("stock up on"));
    // Keyed by the text itself, duplicates cannot straddle splits.
    let by_text = Splitter::new(spec(
        &[("train", 0.8), ("val", 0.1), ("test", 0.1)],
        42,
        SplitKey::Fields(vec!["text".into()]),
    ))
    .unwrap();
    let a = by_text.assign_rows(&rows).unwrap();
    assert!(leakage_report(&rows, &a, "text").is_empty());
}

#[test]
fn leaks_across_explicit_split_files() {
    let train = Path::new("train.jsonl");
    let test = Path::new("test.jsonl");
    let items = [
        LeakItem {
            split: "train",
            file: train,
            line: 1,
            text: "What is AI?",
        },
        LeakItem {
            split: "train",
            file: train,
            line: 2,
            text: "unique one",
        },
        LeakItem {
            split: "train",
            file: train,
            line: 3,
            text: "what is   ai",
        },
        LeakItem {
            split: "test",
            file: test,
            line: 7,
            text: "WHAT IS AI!",
        },
        LeakItem {
            split: "test",
            file: test,
            line: 8,
            text: "Unique two",
        },
        LeakItem {
            split: "val",
            file: test,
            line: 9,
            text: "--",
        },
        LeakItem {
            split: "test",
            file: test,
            line: 10,
            text: "--",
        },
    ];
    let leaks = find_leaks(items);
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0].text, "what is ai");
    let locs: Vec<_> = leaks[0]
        .locations
        .iter()
        .map(|l| (l.split.as_str(), l.file.to_str().unwrap(), l.line))
        .collect();
    assert_eq!(
        locs,
        [("train", "train.jsonl", 1), ("test", "test.jsonl", 7)]
    );
}
