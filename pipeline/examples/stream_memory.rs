//! Peak memory of building a large dataset and sampling a whole epoch from
//! it, for docs/benchmarks.md: a JSONL file of ROWS rows (two fields of
//! WORDS long words each, plus a row number) is generated once under DIR,
//! then built (hash split train 90% / val 10%, word-level tokenizer, the
//! store written to DIR/cache) and every training batch of one epoch is
//! drawn. Measure with
//!
//! ```sh
//! cargo build -p ft-pipeline --example stream_memory
//! /usr/bin/time -v $CARGO_TARGET_DIR/debug/examples/stream_memory 1000000 64 /tmp/ft-big
//! ```
//!
//! (the dev profile optimises ft-pipeline and its dependencies; see the
//! workspace's Cargo.toml).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use ft_pipeline::{BuildOptions, DataPipeline};
use ft_plan::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

const WORDS: &[&str] = &[
    "photosynthesis",
    "thermodynamics",
    "circumnavigate",
    "extraordinarily",
    "misunderstanding",
    "responsibilities",
    "characterization",
    "incomprehensible",
    "internationalize",
    "electromagnetism",
    "counterproductive",
    "disproportionately",
];

fn words(k: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[(k * 7 + i * 5 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(1_000_000, |a| a.parse().unwrap());
    let n_words: usize = args.get(2).map_or(64, |a| a.parse().unwrap());
    let dir = PathBuf::from(args.get(3).map_or("/tmp/ft-big", String::as_str));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("big-{rows}x{n_words}.jsonl"));
    if !path.exists() {
        let t = Instant::now();
        let tmp = dir.join("big.jsonl.tmp");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
        for k in 0..rows {
            writeln!(
                w,
                "{{\"id\": {k}, \"q\": \"question {k}: {}\", \"a\": \"{}\"}}",
                words(k, n_words),
                words(k + 3, n_words)
            )
            .unwrap();
        }
        w.flush().unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let mut ds = jsonl_ds("big", &path, completion_fields("{q}", "{a}"));
    ds.split = split(&[("train", 0.9), ("val", 0.1)], 11);
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("big")),
        Head::CausalLm,
        32,
        256,
        Length::Epochs(1.0),
    );
    let vocab = format!("question : {}", WORDS.join(" "));
    let tok = word_tokenizer(&[&vocab], false);
    let cache = dir.join("cache");
    // A fresh build every run: the figure is the build's, not a cache hit's.
    let _ = std::fs::remove_dir_all(&cache);

    let t = Instant::now();
    let data = DataPipeline::build(
        &p,
        tok,
        &BuildOptions {
            cache_dir: Some(cache.clone()),
        },
    )
    .unwrap();
    let build_s = t.elapsed().as_secs_f64();
    print!("{}", data.report().to_text());
    let store = data.dataset("big").unwrap().store().bytes() as u64;

    let t = Instant::now();
    let (mut steps, mut tokens) = (0u64, 0usize);
    for b in data.train_sampler().unwrap() {
        steps += 1;
        tokens += b
            .data
            .main()
            .attention_mask
            .iter()
            .filter(|&&m| m != 0)
            .count();
    }
    let sample_s = t.elapsed().as_secs_f64();
    println!(
        "file {:.0} MiB ({rows} rows); store {:.0} MiB; build {build_s:.1} s; \
         one epoch: {steps} batches, {tokens} tokens in {sample_s:.1} s",
        mib(size),
        mib(store),
    );
}
