//! The fast paths against Burn's own operations on the same backend, on
//! small pseudo-random tensors: forward values and every gradient, for the
//! layouts the models use (contiguous, transposed and head-split views,
//! broadcast operands).

use burn::backend::Autodiff;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::{
    add, dropout, gelu, layer_norm, linear, matmul, reshape, rms_norm, rope, softmax_scaled,
    swiglu, target_log_softmax,
};
use crate::CpuBackend;

type Ad = Autodiff<CpuBackend>;

fn rand<B: Backend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

fn assert_close<B: Backend, const D: usize>(got: Tensor<B, D>, want: Tensor<B, D>, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let g = got.into_data().to_vec::<f32>().unwrap();
    let w = want.into_data().to_vec::<f32>().unwrap();
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

/// Runs `f` with the fast [`matmul`] and with Burn's, on tracked copies of
/// `inputs` (`tracked[i]` says which require a gradient), and compares the
/// outputs and the gradients of `sum(out · weights)`.
fn check<const D: usize, const E: usize>(
    inputs: Vec<Tensor<CpuBackend, E>>,
    tracked: &[bool],
    f: impl Fn(&[Tensor<Ad, E>], bool) -> Tensor<Ad, D>,
    what: &str,
) {
    let run = |fast: bool| {
        let xs: Vec<Tensor<Ad, E>> = inputs
            .iter()
            .zip(tracked)
            .map(|(x, t)| {
                let x = Tensor::<Ad, E>::from_inner(x.clone());
                if *t {
                    x.require_grad()
                } else {
                    x
                }
            })
            .collect();
        let out = f(&xs, fast);
        let w = rand::<Ad, D>(out.dims(), 99);
        let grads = (out.clone() * w).sum().backward();
        let gs: Vec<Option<Tensor<CpuBackend, E>>> = xs.iter().map(|x| x.grad(&grads)).collect();
        (out.inner(), gs)
    };
    let (out, gs) = run(true);
    let (want, want_gs) = run(false);
    assert_close(out, want, &format!("{what}: output"));
    for (i, (g, w)) in gs.into_iter().zip(want_gs).enumerate() {
        match (g, w) {
            (Some(g), Some(w)) => assert_close(g, w, &format!("{what}: grad {i}")),
            (None, None) => {}
            (g, w) => panic!(
                "{what}: grad {i} present {} vs {}",
                g.is_some(),
                w.is_some()
            ),
        }
    }
}

fn mm<B: super::Kernels, const D: usize>(
    a: Tensor<B, D>,
    b: Tensor<B, D>,
    fast: bool,
) -> Tensor<B, D> {
    if fast {
        matmul(a, b)
    } else {
        a.matmul(b)
    }
}

#[test]
fn linear_layer_with_trainable_and_frozen_weight() {
    for tracked in [
        [true, true, true],
        [true, false, false],
        [false, true, true],
    ] {
        check(
            vec![rand([3, 5, 7], 1), rand([1, 7, 4], 2), rand([1, 1, 4], 3)],
            &tracked,
            |x, fast| {
                let w = x[1].clone().squeeze_dim::<2>(0);
                let b = x[2].clone().reshape([4]);
                if fast {
                    linear(x[0].clone(), w, Some(b), None)
                } else {
                    burn::tensor::module::linear(x[0].clone(), w, Some(b))
                }
            },
            &format!("linear {tracked:?}"),
        );
    }
}

#[test]
fn two_dimensional_and_low_rank_products() {
    check(
        vec![rand([6, 9], 4), rand([9, 2], 5)],
        &[true, true],
        |x, fast| mm(x[0].clone(), x[1].clone(), fast),
        "2-d",
    );
    // LoRA's shape: x [b, s, in] · A [in, r] · B [r, out].
    check(
        vec![rand([2, 4, 8], 6), rand([1, 8, 2], 7), rand([1, 2, 8], 8)],
        &[true, true, true],
        |x, fast| mm(mm(x[0].clone(), x[1].clone(), fast), x[2].clone(), fast),
        "lora",
    );
}

#[test]
fn attention_products_on_head_split_views() {
    // q, k, v as the models make them: [b, s, h] → [b, heads, s, d] views.
    check(
        vec![
            rand([2, 5, 12], 9),
            rand([2, 5, 12], 10),
            rand([2, 5, 12], 11),
        ],
        &[true, true, true],
        |x, fast| {
            let split = |t: Tensor<Ad, 3>| t.reshape([2, 5, 3, 4]).swap_dims(1, 2);
            let (q, k, v) = (
                split(x[0].clone()),
                split(x[1].clone()),
                split(x[2].clone()),
            );
            let scores = mm(q, k.swap_dims(2, 3), fast);
            let probs = burn::tensor::activation::softmax(scores, 3);
            mm(probs, v, fast).swap_dims(1, 2).reshape([2, 5, 12])
        },
        "attention",
    );
}

#[test]
fn broadcast_and_strided_operands() {
    // A broadcast left operand: its gradient sums over the batch.
    check(
        vec![rand([1, 4, 6], 12), rand([3, 6, 2], 13)],
        &[true, true],
        |x, fast| mm(x[0].clone(), x[1].clone(), fast),
        "broadcast lhs",
    );
    // A transposed input that cannot fold its batch into the rows.
    check(
        vec![rand([5, 3, 7], 14), rand([1, 7, 4], 15)],
        &[true, true],
        |x, fast| mm(x[0].clone().swap_dims(0, 1), x[1].clone(), fast),
        "strided input",
    );
    // Size-1 batch and matrix dimensions.
    check(
        vec![rand([2, 1, 7], 16), rand([1, 7, 1], 17)],
        &[true, true],
        |x, fast| mm(x[0].clone(), x[1].clone(), fast),
        "size-1 dims",
    );
}

#[test]
fn inference_backend_matches() {
    let (x, w) = (
        rand::<CpuBackend, 3>([3, 5, 7], 18),
        rand::<CpuBackend, 2>([7, 4], 19),
    );
    let b = rand::<CpuBackend, 1>([4], 20);
    assert_close(
        linear(x.clone(), w.clone(), Some(b.clone()), None),
        burn::tensor::module::linear(x.clone(), w, Some(b)),
        "inference linear",
    );
    let y = rand::<CpuBackend, 3>([3, 7, 2], 21);
    assert_close(
        matmul(x.clone(), y.clone()),
        x.matmul(y),
        "inference matmul",
    );
}

#[test]
fn fused_attention_softmax_matches_burn() {
    // A padding mask broadcast over heads, as attention_bias makes it, and
    // scores from a transposed view.
    let mask = rand::<CpuBackend, 4>([2, 1, 5, 6], 22)
        .greater_elem(0.5)
        .float()
        * crate::layers::MASKED;
    for tracked in [true, false] {
        let m = Tensor::<Ad, 4>::from_inner(mask.clone());
        check(
            vec![rand([2, 3, 6, 5], 23)],
            &[tracked],
            |x, fast| {
                let s = x[0].clone().swap_dims(2, 3);
                if fast {
                    softmax_scaled(s, 0.125, &m)
                } else {
                    burn::tensor::activation::softmax(s * 0.125 + m.clone(), 3)
                }
            },
            "softmax",
        );
    }
    let s = rand::<CpuBackend, 4>([2, 3, 5, 6], 24);
    assert_close(
        softmax_scaled(s.clone(), 0.5, &mask),
        burn::tensor::activation::softmax(s * 0.5 + mask, 3),
        "inference softmax",
    );
}

/// The composite LayerNorm of `crate::layers::LayerNorm` (Burn's ops).
fn layer_norm_ref<const D: usize>(
    x: Tensor<Ad, D>,
    w: Tensor<Ad, 1>,
    b: Tensor<Ad, 1>,
    eps: f64,
) -> Tensor<Ad, D> {
    let (var, mean) = x.clone().var_mean_bias(D - 1);
    // Not `/ sqrt(..)`: burn-ndarray's division differentiates through
    // `recip`, which on CPUs without AVX-512 is the 12-bit approximation
    // (relative error ≈ 2.4e-4, above these tests' tolerance).
    (x - mean) * (var + eps).powf_scalar(-0.5) * w.unsqueeze() + b.unsqueeze()
}

#[test]
fn fused_layer_norm_matches_burn() {
    // 70 rows: more than one parallel task, the last one partial.
    for tracked in [
        [true, true, true],
        [true, false, false],
        [false, true, true],
    ] {
        check(
            vec![
                rand([7, 10, 16], 25),
                rand([1, 1, 16], 26),
                rand([1, 1, 16], 27),
            ],
            &tracked,
            |x, fast| {
                let (w, b) = (x[1].clone().reshape([16]), x[2].clone().reshape([16]));
                // A transposed input: the kernel reads it in row order.
                let input = x[0].clone().swap_dims(0, 1);
                if fast {
                    layer_norm(input, w, b, 1e-12)
                } else {
                    layer_norm_ref(input, w, b, 1e-12)
                }
            },
            &format!("layer norm {tracked:?}"),
        );
    }
}

#[test]
fn fused_gelu_matches_the_exact_derivative() {
    // Burn's own gelu backward uses the tanh approximation's derivative;
    // the reference here is the erf form differentiated by autodiff.
    check(
        vec![rand::<CpuBackend, 3>([3, 7, 40], 28) * 4.0],
        &[true],
        |x, fast| {
            let x = x[0].clone();
            if fast {
                gelu(x)
            } else {
                x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) / 2.0
            }
        },
        "gelu",
    );
    let x = rand::<CpuBackend, 2>([5, 9], 29) * 3.0;
    assert_close(
        gelu(x.clone()),
        burn::tensor::activation::gelu(x),
        "inference gelu",
    );
}

#[test]
fn fused_rms_norm_matches_burn() {
    // 70 rows: more than one parallel task, the last one partial.
    for tracked in [[true, true], [true, false], [false, true]] {
        check(
            vec![rand([7, 10, 16], 30), rand([1, 1, 16], 31)],
            &tracked,
            |x, fast| {
                let w = x[1].clone().reshape([16]);
                let input = x[0].clone().swap_dims(0, 1);
                if fast {
                    rms_norm(input, w, 1e-5)
                } else {
                    // `powf(-0.5)`, not `sqrt().recip()`: see `layer_norm_ref`.
                    let inv = (input.clone().powi_scalar(2).mean_dim(2) + 1e-5).powf_scalar(-0.5);
                    input * inv * w.unsqueeze()
                }
            },
            &format!("rms norm {tracked:?}"),
        );
    }
}

#[test]
fn fused_swiglu_matches_burn() {
    for tracked in [[true, true], [true, false], [false, true]] {
        check(
            // More elements than one parallel task holds.
            vec![
                rand::<CpuBackend, 3>([3, 7, 1000], 32) * 4.0,
                rand([3, 7, 1000], 33),
            ],
            &tracked,
            |x, fast| {
                let (g, u) = (x[0].clone(), x[1].clone());
                if fast {
                    swiglu(g, u)
                } else {
                    burn::tensor::activation::silu(g) * u
                }
            },
            &format!("swiglu {tracked:?}"),
        );
    }
}

#[test]
fn fused_rope_matches_burn() {
    let rope_tables = crate::layers::Rope {
        inv_freq: vec![1.0, 0.1, 0.01, 0.001],
        head_dim: 8,
    };
    let (cos, sin) = rope_tables.tables::<Ad>(3, 5, &Default::default());
    check(
        // q as the models make it: [b, s, h·d] → [b, h, s, d] view.
        vec![rand([2, 5, 24], 34)],
        &[true],
        |x, fast| {
            let q = x[0].clone().reshape([2, 5, 3, 8]).swap_dims(1, 2);
            if fast {
                rope(q, &cos, &sin)
            } else {
                crate::layers::apply_rope_composite(q, &cos, &sin)
            }
        },
        "rope",
    );
}

#[test]
fn fused_target_log_softmax_matches_burn() {
    let (b, s, v, n) = (2, 4, 37, 3);
    // Row 0 position 1 has no target (it gets 0 and no gradient).
    let targets = [Some(5), None, Some(36), Some(0), Some(17), Some(2)];
    check(
        vec![rand::<CpuBackend, 3>([b, s, v], 35) * 8.0],
        &[true],
        |x, fast| {
            let logits = x[0].clone();
            if fast {
                target_log_softmax(logits, &targets, n)
            } else {
                let idx: Vec<i64> = targets.iter().map(|t| t.unwrap_or(0) as i64).collect();
                let mask: Vec<f32> = targets.iter().map(|t| t.map_or(0.0, |_| 1.0)).collect();
                let idx = Tensor::<Ad, 3, burn::tensor::Int>::from_data(
                    TensorData::new(idx, [b, n, 1]),
                    &Default::default(),
                );
                let mask =
                    Tensor::<Ad, 2>::from_data(TensorData::new(mask, [b, n]), &Default::default());
                burn::tensor::activation::log_softmax(logits.narrow(1, 0, n), 2)
                    .gather(2, idx)
                    .reshape([b, n])
                    * mask
            }
        },
        "target log-softmax",
    );
    let outside = target_log_softmax(rand::<Ad, 3>([b, s, v], 36), &[Some(v); 6], n);
    assert_eq!(
        outside.into_data().to_vec::<f32>().unwrap(),
        vec![0.0; 6],
        "a target outside the vocabulary counts as none"
    );
}

/// `log_softmax(h · Eᵀ)[target]` by Burn's composite (zero where there is
/// no target).
fn dense_head_log_softmax<B: Backend>(
    hidden: Tensor<B, 3>,
    embedding: Tensor<B, 2>,
    targets: &[Option<usize>],
    n: usize,
) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    let v = embedding.dims()[0];
    let logits = hidden
        .reshape([b * s, h])
        .matmul(embedding.transpose())
        .reshape([b, s, v]);
    let idx: Vec<i64> = targets.iter().map(|t| t.unwrap_or(0) as i64).collect();
    let mask: Vec<f32> = targets.iter().map(|t| t.map_or(0.0, |_| 1.0)).collect();
    let device = Default::default();
    let idx =
        Tensor::<B, 3, burn::tensor::Int>::from_data(TensorData::new(idx, [b, n, 1]), &device);
    let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [b, n]), &device);
    burn::tensor::activation::log_softmax(logits.narrow(1, 0, n), 2)
        .gather(2, idx)
        .reshape([b, n])
        * mask
}

#[test]
fn tied_head_with_the_loss_matches_the_logits_path() {
    let (b, s, h, v, n) = (2, 5, 32, 96, 4);
    // No target at row 0 position 2; targets in the first and last slice.
    let targets = [
        Some(3),
        Some(95),
        None,
        Some(40),
        Some(0),
        Some(64),
        Some(31),
        Some(90),
    ];
    // A frozen embedding (the fused path) and a trained one (through the
    // logits).
    for tracked in [[true, false], [true, true]] {
        check(
            vec![
                rand::<CpuBackend, 3>([b, s, h], 41),
                rand([1, v, h], 42) * 3.0,
            ],
            &tracked,
            |x, fast| {
                let e = x[1].clone().reshape([v, h]);
                if fast {
                    super::tied_head_log_softmax(x[0].clone(), e, &targets, n, None)
                } else {
                    dense_head_log_softmax(x[0].clone(), e, &targets, n)
                }
            },
            &format!("tied head, tracked {tracked:?}"),
        );
    }
    // Slices of 32 words (the running maximum moves) against the default
    // operations' log-probabilities and `E[t] − pᵀE`.
    let x = rand::<CpuBackend, 3>([b, s, h], 43);
    let e = rand::<CpuBackend, 2>([v, h], 44) * 3.0;
    let (xp, ep) = (x.into_primitive().tensor(), e.into_primitive().tensor());
    let sliced = super::tied_head::forward(&xp, &ep, &targets, n, true, Some(32), None)
        .expect("row-major embedding");
    let (lp, q) = super::generic::tied_head::<CpuBackend>(xp, ep, &targets, n, true);
    let t = |p| Tensor::<CpuBackend, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(p));
    assert_close(t(sliced.lp), t(lp), "sliced log-probabilities");
    assert_close(t(sliced.grad.unwrap()), t(q.unwrap()), "sliced E[t] − pᵀE");
}

#[test]
fn grouped_query_attention_without_repeating_keys() {
    // 6 query heads over 2 KV heads: the group's queries stacked as rows
    // (as LlamaAttention does) against transformers' repeat_kv.
    let (b, s, nh, nkv, d) = (2, 5, 6, 2, 4);
    check(
        vec![
            rand([b, nh, s, d], 37),
            rand([b, nkv, s, d], 38),
            rand([b, nkv, s, d], 39),
        ],
        &[true, true, true],
        |x, fast| {
            let (q, k, v) = (x[0].clone(), x[1].clone(), x[2].clone());
            let rep = nh / nkv;
            if fast {
                let scores = matmul(q.reshape([b, nkv, rep * s, d]), k.swap_dims(2, 3));
                let probs = burn::tensor::activation::softmax(scores.reshape([b, nh, s, s]), 3);
                matmul(probs.reshape([b, nkv, rep * s, s]), v).reshape([b, nh, s, d])
            } else {
                let r = |t: Tensor<Ad, 4>| {
                    t.unsqueeze_dim::<5>(2)
                        .expand([b, nkv, rep, s, d])
                        .reshape([b, nh, s, d])
                };
                let probs = burn::tensor::activation::softmax(q.matmul(r(k).swap_dims(2, 3)), 3);
                probs.matmul(r(v))
            }
        },
        "grouped-query attention",
    );
}

#[test]
fn reshape_shares_contiguous_data_and_copies_views() {
    // A contiguous input (a free reshape) and a transposed one (a copy),
    // forward and gradient, against Burn's reshape.
    for transposed in [false, true] {
        check(
            vec![rand([4, 6, 5], 40)],
            &[true],
            |x, fast| {
                let input = if transposed {
                    x[0].clone().swap_dims(0, 2).swap_dims(1, 2)
                } else {
                    x[0].clone()
                };
                let shape = if transposed { [5, 2, 12] } else { [2, 12, 5] };
                if fast {
                    reshape(input, shape)
                } else {
                    input.reshape(shape)
                }
            },
            &format!("reshape (transposed {transposed})"),
        );
    }
    // On the inference backend the result reads the input's buffer.
    let x = rand::<CpuBackend, 2>([6, 4], 41);
    let y: Tensor<CpuBackend, 3> = reshape(x.clone(), [2, 3, 4]);
    let (xp, yp) = (
        x.into_primitive().tensor(),
        y.clone().into_primitive().tensor(),
    );
    let ptr = |t: &burn_ndarray::NdArrayTensor| super::gemm::Strided::of(t).expect("f32").ptr();
    assert_eq!(ptr(&xp), ptr(&yp), "no copy");
    assert_eq!(y.dims(), [2, 3, 4]);
}

#[test]
fn parallel_add_matches_burn_for_residuals_and_biases() {
    // More elements than one parallel task holds; rows that do not divide
    // a task. A residual (same shapes) and a bias (a broadcast row).
    for (what, b_shape) in [("residual", [3, 7, 1000]), ("bias", [1, 1, 1000])] {
        for tracked in [[true, true], [true, false], [false, true]] {
            check(
                vec![rand::<CpuBackend, 3>([3, 7, 1000], 40), rand(b_shape, 41)],
                &tracked,
                |x, fast| {
                    let (a, b) = (x[0].clone(), x[1].clone());
                    if fast {
                        add(a, b)
                    } else {
                        a + b
                    }
                },
                &format!("{what} add {tracked:?}"),
            );
        }
    }
}

#[test]
fn fused_dropout_draws_the_masks_of_the_counter_stream() {
    use crate::peft::rng::dropout_mask;
    let (key, p) = (0x1234_5678_9abc_def0, 0.1);
    check(
        vec![rand::<CpuBackend, 3>([3, 7, 1000], 44)],
        &[true],
        |x, fast| {
            let x = x[0].clone();
            if fast {
                dropout(x, key, p, None)
            } else {
                let mask = dropout_mask(key, p, x.shape().num_elements());
                x.clone() * Tensor::from_data(TensorData::new(mask, x.shape()), &x.device())
            }
        },
        "dropout",
    );
}

/// The first 2 of 7 positions get the mask values they have in the whole
/// `[3, 7, 1000]` tensor: the fused kernel (forward and gradient) against
/// the whole mask narrowed.
#[test]
fn fused_dropout_of_kept_positions_draws_the_whole_sequence_masks() {
    use crate::peft::rng::{dropout_mask, KeptPositions};
    let (key, p) = (0x0fed_cba9_8765_4321, 0.25);
    let kept = KeptPositions { kept: 2, of: 7 };
    check(
        vec![rand::<CpuBackend, 3>([3, 2, 1000], 45)],
        &[true],
        |x, fast| {
            let x = x[0].clone();
            if fast {
                dropout(x, key, p, Some(kept))
            } else {
                let whole = dropout_mask(key, p, 3 * 7 * 1000);
                let whole: Tensor<_, 3> =
                    Tensor::from_data(TensorData::new(whole, [3, 7, 1000]), &x.device());
                x * whole.narrow(1, 0, 2)
            }
        },
        "dropout of kept positions",
    );
}
