//! Times loading and greedy generation of a Llama-family model:
//! `cargo run --release -p ft-runtime --example gen_speed -- MODEL [TOKENS [BATCH]]`.
//! With `BATCH`, also generates for that many prompts of different lengths,
//! one at a time and then as one left-padded batch (`generate_batch`, as
//! PPO's rollouts and generation metrics do), and reports both rates.
use ft_formats::ModelTokenizer;
use ft_runtime::generate::{generate, generate_batch, SamplingOptions};
use ft_runtime::CpuBackend as B;

const PROMPTS: [&str; 4] = [
    "Once upon a time, in a land far away,",
    "The capital of France is",
    "Write a short poem about the sea and the wind that blows across it at night.",
    "Hello",
];

fn main() {
    ft_runtime::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let batch: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let dev = Default::default();
    let t = std::time::Instant::now();
    let (model, files) = ft_runtime::load_causal_lm::<B>(&args[1], &dev).expect("load");
    println!("load {:.2} s", t.elapsed().as_secs_f64());
    let tok = ModelTokenizer::load(&files).expect("tokenizer");
    let encode = |text: &str| {
        tok.tokenizer
            .encode(text, false)
            .unwrap()
            .get_ids()
            .to_vec()
    };
    let opts = SamplingOptions {
        max_new_tokens: n,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let out = generate(&model, &encode(PROMPTS[0]), &opts, &dev, |_| {});
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} tokens in {s:.2} s ({:.1} tok/s): {:?}",
        out.len(),
        out.len() as f64 / s,
        tok.tokenizer.decode(&out, false).unwrap()
    );
    if batch == 0 {
        return;
    }
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|i| encode(PROMPTS[i % PROMPTS.len()]))
        .collect();
    let t = std::time::Instant::now();
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| generate(&model, p, &opts, &dev, |_| {}))
        .collect();
    let s_alone = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let together = generate_batch(&model, &prompts, &opts, |_| 0, &dev);
    let s_batch = t.elapsed().as_secs_f64();
    let tokens: usize = together.iter().map(Vec::len).sum();
    println!(
        "{batch} prompts, {tokens} tokens: one at a time {s_alone:.2} s ({:.1} tok/s), \
         batched {s_batch:.2} s ({:.1} tok/s), {:.2}x; same tokens: {}",
        tokens as f64 / s_alone,
        tokens as f64 / s_batch,
        s_alone / s_batch,
        alone == together
    );
}
