//! Rows/s and tokens/s of building tokenized data from the real files (read,
//! render, split, tokenize; no cache), for docs/benchmarks.md. Compared with
//! Hugging Face `datasets.map` by bench/data_tokenize.py, which uses the
//! same fast tokenizers: this writes them to `$OUT_DIR` (default
//! /tmp/ft-bench) as tokenizer.json files for it.
//!
//! cargo run --release -p ft-pipeline --example tokenize_bench

use ft_compiler::driver::{self, Options};
use ft_pipeline::{BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::{DataRef, Plan, TrainData};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn lower(root: &Path, recipe: &str) -> Plan {
    let a = driver::analyze_path(&root.join("recipes").join(recipe), Options::default());
    assert!(!a.has_errors(), "{recipe}: {:#?}", a.diagnostics);
    ft_compiler::plan::lower(&a).unwrap()
}

fn measure(label: &str, plan: &Plan, out: &Path, runs: usize) {
    let mut times = Vec::new();
    let (mut rows, mut tokens) = (0usize, 0usize);
    for _ in 0..runs {
        let tok = TextTokenizer::load(&plan.model).unwrap();
        let t = Instant::now();
        let data = DataPipeline::build(plan, tok, &BuildOptions::default()).unwrap();
        times.push(t.elapsed().as_secs_f64());
        rows = 0;
        tokens = 0;
        for d in &data.report().datasets {
            for s in &d.splits {
                rows += s.examples + s.dropped_too_long;
            }
            let b = data.dataset(&d.name).unwrap();
            tokens += b
                .splits
                .iter()
                .flat_map(|s| s.examples.iter())
                .map(|e| e.tokens.seq.len())
                .sum::<usize>();
        }
        let json = data.tokenizer().tokenizer.to_string(false).unwrap();
        std::fs::write(out.join(format!("{label}.tokenizer.json")), json).unwrap();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{label}: {rows} rows, {tokens} tokens; median {:.3} s over {runs} runs → {:.0} rows/s, {:.0} tokens/s",
        median,
        rows as f64 / median,
        tokens as f64 / median
    );
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| "/tmp/ft-bench".into()));
    std::fs::create_dir_all(&out).unwrap();
    println!(
        "threads: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let movies = lower(&root, "sentiment-minilm.ft");
    measure("movie_snippets", &movies, &out, 5);
    // aclsum alone, without the few-shot example, as the Python side does.
    let mut papers = lower(&root, "multitask-curriculum.ft");
    papers.data = TrainData::Dataset(DataRef {
        name: "papers".into(),
        filter: None,
    });
    for d in &mut papers.datasets {
        d.shots = None;
    }
    measure("aclsum", &papers, &out, 5);
}
