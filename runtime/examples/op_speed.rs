//! Micro-timings of the CPU backend ops a decode step uses (diagnostics).
use burn::tensor::{Distribution, Tensor};
use ft_runtime::CpuBackend as B;
fn time<F: FnMut()>(name: &str, n: usize, mut f: F) {
    f();
    let t = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name}: {:.3} ms",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}
fn main() {
    let d = Default::default();
    let w = Tensor::<B, 2>::random([576, 1536], Distribution::Default, &d);
    let x3 = Tensor::<B, 3>::random([1, 1, 576], Distribution::Default, &d);
    let x2 = Tensor::<B, 2>::random([1, 576], Distribution::Default, &d);
    time("matmul 3d [1,1,576]x[576,1536]", 50, || {
        let _ = x3.clone().matmul(w.clone().unsqueeze()).into_data();
    });
    time("matmul 2d [1,576]x[576,1536]", 50, || {
        let _ = x2.clone().matmul(w.clone()).into_data();
    });
    let e = Tensor::<B, 2>::random([49152, 576], Distribution::Default, &d);
    time("head E·hT", 10, || {
        let _ = e.clone().matmul(x2.clone().transpose()).into_data();
    });
    let xp = Tensor::<B, 3>::random([1, 37, 576], Distribution::Default, &d);
    time("prefill matmul [1,37,576]x[576,1536]", 20, || {
        let _ = xp.clone().matmul(w.clone().unsqueeze()).into_data();
    });
}
