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
    let examples = |d: &DataPipeline| {
        d.dataset("d")
            .unwrap()
            .splits
            .iter()
            .map(|s| (s.name.clone(), s.examples.iter().collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    assert_eq!(examples(&first), examples(&second));
    let mut report = second.report().datasets[0].clone();
    report.from_cache = false;
    assert_eq!(first.report().datasets[0], report);
    // The cached examples are really used: tamper with the entry's first
    // token id (the store's first blob starts after its 8-byte magic with
    // the sequence's length and prompt length) and the pipeline serves the
    // tampered id (so it did not re-tokenize).
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(entry.extension().unwrap(), "ftds");
    let mut bytes = std::fs::read(&entry).unwrap();
    let first_id = first.dataset("d").unwrap().splits[0]
        .examples
        .get(0)
        .unwrap()
        .tokens
        .seq
        .ids[0];
    assert_eq!(bytes[16..20], first_id.to_le_bytes());
    bytes[16..20].copy_from_slice(&4242u32.to_le_bytes());
    // Entries are replaced by rename, never rewritten in place (builds
    // still running have the old one mapped): so does the tampering.
    let replace = |bytes: &[u8]| {
        let tmp = cache.join("replacement");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &entry).unwrap();
    };
    replace(&bytes);
    let tampered = run(&p, tok());
    assert!(tampered.report().datasets[0].from_cache);
    assert_eq!(
        tampered.dataset("d").unwrap().splits[0]
            .examples
            .get(0)
            .unwrap()
            .tokens
            .seq
            .ids[0],
        4242
    );
    drop(tampered);
    // A truncated entry (a crash mid-copy, a full disk) is a miss, and the
    // rebuild replaces it.
    replace(&bytes[..bytes.len() - 3]);
    let rebuilt = run(&p, tok());
    assert!(!rebuilt.report().datasets[0].from_cache);
    assert_eq!(examples(&rebuilt), examples(&first));
    assert!(run(&p, tok()).report().datasets[0].from_cache);

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
