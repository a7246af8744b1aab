//! Benchmark worker for `bench/models.py`: loads one model, then times a
//! forward pass on a fixed random batch each time it reads `run` on stdin
//! (so that the driver can interleave ft and PyTorch runs).
//!
//! Built with `--features flex` it runs on the Flex backend instead of NdArray.
//!
//! `bench_worker minilm|smollm2 PATH BATCH SEQ`; prints `ready LOAD_SECONDS`,
//! then one `FORWARD_MS` line per `run`; exits on `quit` or end of input.

use std::io::BufRead;
use std::time::Instant;

use burn::tensor::{Int, Tensor, TensorData};
#[cfg(feature = "flex")]
type B = burn::backend::Flex;
#[cfg(not(feature = "flex"))]
use ft_runtime::CpuBackend as B;

fn main() {
    ft_runtime::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_worker minilm|smollm2 PATH BATCH SEQ");
        std::process::exit(2);
    }
    let (kind, path) = (args[1].as_str(), &args[2]);
    let batch: usize = args[3].parse().expect("BATCH");
    let seq: usize = args[4].parse().expect("SEQ");
    let dev = Default::default();
    // Token ids from a fixed LCG, shared with torch_worker.py.
    let mut state = 12345u64;
    let vocab = if kind == "minilm" { 30522 } else { 49152 };
    let ids: Vec<i64> = (0..batch * seq)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % (vocab - 1000) + 1000) as i64
        })
        .collect();
    let input = || Tensor::<B, 2, Int>::from_data(TensorData::new(ids.clone(), [batch, seq]), &dev);
    let t = Instant::now();
    let forward: Box<dyn Fn() -> f32> = match kind {
        "minilm" => {
            let (m, _) = ft_runtime::load_bert::<B>(path, &dev).expect("load");
            println!("ready {:.3}", t.elapsed().as_secs_f64());
            Box::new(move || m.forward(input(), None, None).sum().into_scalar())
        }
        "smollm2" => {
            let (m, _) = ft_runtime::load_causal_lm::<B>(path, &dev).expect("load");
            println!("ready {:.3}", t.elapsed().as_secs_f64());
            Box::new(move || m.forward(input(), None, None).sum().into_scalar())
        }
        other => panic!("unknown model kind {other}"),
    };
    for line in std::io::stdin().lock().lines() {
        match line.expect("stdin").trim() {
            "run" => {
                let t = Instant::now();
                let s = forward();
                println!("{:.3} {s}", t.elapsed().as_secs_f64() * 1000.0);
            }
            _ => break,
        }
    }
}
