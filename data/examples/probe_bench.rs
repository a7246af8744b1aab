//! Times `probe` (what `ft check` and the language server pay per dataset)
//! and a full `rows` read on the real data sets in `.cache/data`.
//!
//! Run: `cargo run --release -p ft-data --example probe_bench [max_rows]`
//! (after `scripts/fetch-assets.sh`).

use ft_data::{probe, rows, Format, SourceSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let max_rows: usize = std::env::args()
        .nth(1)
        .map_or(100, |s| s.parse().expect("max_rows"));
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/data");
    assert!(
        data.exists(),
        "missing {}: run scripts/fetch-assets.sh first",
        data.display()
    );
    let specs = [
        (
            "movie_snippets.tsv",
            SourceSpec {
                columns: Some(vec!["id".into(), "score".into(), "text".into()]),
                ..SourceSpec::new(Format::Tsv, data.join("movie_snippets.tsv"))
            },
        ),
        (
            "aclsum/train.jsonl",
            SourceSpec::new(Format::Jsonl, data.join("aclsum/train.jsonl")),
        ),
        (
            "chatterbot/*.yml",
            SourceSpec::new(Format::YamlPairs, data.join("chatterbot/*.yml")),
        ),
    ];
    println!("probe: median of 200 runs, max_rows = {max_rows}; full read: median of 10");
    for (name, spec) in &specs {
        let mut t = Vec::new();
        for _ in 0..200 {
            let s = Instant::now();
            let p = probe(spec, max_rows).unwrap();
            t.push(s.elapsed());
            std::hint::black_box(p);
        }
        let probe_t = median(t);
        let mut t = Vec::new();
        let mut n = 0;
        let mut bytes = 0u64;
        for f in ft_data::resolve_files(&spec.pattern).unwrap() {
            bytes += std::fs::metadata(f).unwrap().len();
        }
        for _ in 0..10 {
            let s = Instant::now();
            n = rows(spec).unwrap().filter(|r| r.is_ok()).count();
            t.push(s.elapsed());
        }
        let full = median(t);
        println!(
            "{name:>20}: probe {:>8.3} ms | full read {n:>6} rows in {:>7.2} ms = {:>9.0} rows/s, {:>6.1} MB/s",
            probe_t.as_secs_f64() * 1e3,
            full.as_secs_f64() * 1e3,
            n as f64 / full.as_secs_f64(),
            bytes as f64 / 1e6 / full.as_secs_f64(),
        );
    }
}
