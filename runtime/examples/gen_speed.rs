//! Times loading and greedy generation of a Llama-family model:
//! `cargo run --release -p ft-runtime --example gen_speed -- MODEL [TOKENS]`.
use ft_formats::ModelTokenizer;
use ft_runtime::generate::{generate, SamplingOptions};
use ft_runtime::CpuBackend as B;

fn main() {
    ft_runtime::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let dev = Default::default();
    let t = std::time::Instant::now();
    let (model, files) = ft_runtime::load_causal_lm::<B>(&args[1], &dev).expect("load");
    println!("load {:.2} s", t.elapsed().as_secs_f64());
    let tok = ModelTokenizer::load(&files).expect("tokenizer");
    let ids = tok
        .tokenizer
        .encode("Once upon a time, in a land far away,", false)
        .unwrap()
        .get_ids()
        .to_vec();
    let opts = SamplingOptions {
        max_new_tokens: n,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let out = generate(&model, &ids, &opts, &dev, |_| {});
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} tokens in {s:.2} s ({:.1} tok/s): {:?}",
        out.len(),
        out.len() as f64 / s,
        tok.tokenizer.decode(&out, false).unwrap()
    );
}
