//! The tokenized-data cache: a rerun with the same inputs reads it; a
//! changed data file, plan part or tokenizer misses it.

mod common;
use common::*;
use ft_pipeline::{BuildOptions, DataPipeline};
use ft_plan::*;

#[test]
fn a_second_build_reads_the_cache_and_changes_invalidate_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let f = write(
        dir.path(),
        "d.jsonl",
        "{\"q\": \"hi\", \"a\": \"yo\"}\n{\"q\": \"yo\", \"a\": \"hi\"}\n",
    );
    let p = plan(
        vec![jsonl_ds("d", &f, completion_fields("{q}", "{a}"))],
        TrainData::Dataset(data_ref("d")),
        Head::CausalLm,
        1,
        32,
        Length::Steps(1),
    );
    let opts = BuildOptions {
        cache_dir: Some(cache.clone()),
    };
    let tok = || word_tokenizer(&["hi yo again"], false);
    let run = |p: &Plan, t| DataPipeline::build(p, t, &opts).unwrap();

    let first = run(&p, tok());
    assert!(!first.report().datasets[0].from_cache);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        1,
        "one entry written"
    );
    let second = run(&p, tok());
    assert!(
        second.report().datasets[0].from_cache,
        "same inputs: read from the cache"
    );
    assert_eq!(
        first.dataset("d"),
        second
            .dataset("d")
            .map(|d| {
                let mut d = d.clone();
                d.report.from_cache = false;
                d
            })
            .as_ref()
    );
    // The cached examples are really used: tamper with the entry's tokens
    // and the pipeline serves the tampered ids (so it did not re-tokenize).
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&entry).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["splits"][0]["examples"][0]["tokens"]["seq"]["ids"][0] = 4242.into();
    std::fs::write(&entry, v.to_string()).unwrap();
    assert_eq!(
        run(&p, tok()).dataset("d").unwrap().splits[0].examples[0]
            .tokens
            .seq
            .ids[0],
        4242
    );

    // A changed data file misses.
    std::fs::write(&f, "{\"q\": \"hi\", \"a\": \"again\"}\n").unwrap();
    let changed = run(&p, tok());
    assert!(!changed.report().datasets[0].from_cache);
    assert_eq!(changed.dataset("d").unwrap().splits[0].examples.len(), 1);
    // A changed plan part misses.
    let mut p2 = p.clone();
    p2.datasets[0].fields = completion_fields("Q {q}", "{a}");
    assert!(
        !run(&p2, word_tokenizer(&["hi yo again Q"], false))
            .report()
            .datasets[0]
            .from_cache
    );
    // A changed tokenizer misses.
    assert!(
        !run(&p, word_tokenizer(&["again yo hi"], false))
            .report()
            .datasets[0]
            .from_cache
    );
    // max_len is not part of the key: truncation happens at batching.
    let mut p3 = p.clone();
    p3.train.max_len = 3;
    assert!(run(&p3, tok()).report().datasets[0].from_cache);
}
