//! Times `ft check` on recipes: parse, check and the world checks (model
//! header, data header/first rows), in-process, median of many runs.
//!
//!     cargo run --release -p ft-compiler --example check_bench -- recipes/*.ft
//!
//! Prints one Markdown table row per recipe; docs/benchmarks.md keeps them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ft_compiler::driver::{analyze_path, Options};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let files: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let runs = 50;
    println!("| recipe | diagnostics | median, syntax+check | median, with world checks | max, with world checks |");
    println!("|---|---|---|---|---|");
    for f in files {
        // Warm the page cache once, as an editor or a second run would.
        let first = analyze_path(&f, Options::default());
        let no_world: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(analyze_path(
                    &f,
                    Options {
                        world: false,
                        ..Options::default()
                    },
                ));
                t.elapsed()
            })
            .collect();
        let world: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(analyze_path(&f, Options::default()));
                t.elapsed()
            })
            .collect();
        let max = *world.iter().max().expect("runs");
        println!(
            "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            f.display(),
            first.diagnostics.len(),
            median(no_world).as_secs_f64() * 1e3,
            median(world).as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
}
