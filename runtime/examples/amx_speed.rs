//! Rates of the AMX bf16 product (`precision = bf16`) on the shapes of a
//! SmolLM2 and a MiniLM training step (diagnostics; `bench/step.py` is the
//! benchmark that counts). `amx_speed [REPEATS]`.
use burn::tensor::{Distribution, Tensor};
use ft_runtime::kernels::amx;
use ft_runtime::kernels::gemm::Strided;
use ft_runtime::CpuBackend as B;

fn main() {
    if !amx::available() {
        println!("no AMX on this CPU");
        return;
    }
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(1);
    let d = Default::default();
    // (name, rows of A, k, n, B transposed): x·W and dY·Wᵀ of the step.
    let shapes = [
        ("smollm2 up x·W", 512, 576, 1536, false),
        ("smollm2 down dY·Wᵀ", 512, 576, 1536, true),
        ("smollm2 head h·Eᵀ", 512, 576, 49152, true),
        ("smollm2 head dL·E", 512, 49152, 576, false),
        ("minilm ffn x·W", 2048, 384, 1536, false),
        ("minilm attn x·W", 2048, 384, 384, false),
    ];
    for (name, m, k, n, bt) in shapes {
        let w = if bt {
            Tensor::<B, 2>::random([n, k], Distribution::Default, &d)
        } else {
            Tensor::<B, 2>::random([k, n], Distribution::Default, &d)
        };
        let weight = ft_runtime::kernels::pack_frozen(&w, false).expect("packed on AMX");
        let wp = w.into_primitive().tensor();
        let view = Strided::of(&wp).expect("f32 weight");
        let view = if bt { view.t() } else { view };
        let (rs, cs) = (view.strides[0], view.strides[1]);
        let packed = weight.view(view.ptr(), k, n, rs, cs).expect("packed");
        let a = vec![0.5f32; m * k];
        let mut out = vec![0f32; m * n];
        let run = |out: &mut Vec<f32>| unsafe {
            amx::gemm(m, a.as_ptr(), k as isize, 1, packed, out.as_mut_ptr())
        };
        run(&mut out);
        // The median of single runs: other tenants of the machine come and go.
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let t = std::time::Instant::now();
                run(&mut out);
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let s = times[reps / 2];
        let gflop = 2.0 * (m * k * n) as f64 / 1e9;
        println!(
            "{name:22} {m}×{k}×{n}: {:8.3} ms  {:7.1} GFLOP/s",
            s * 1e3,
            gflop / s
        );
    }
}
