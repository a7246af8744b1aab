//! The one train sampler: determinism (pinned), resume, mixture shares,
//! curriculum stages/filters/order/pacing, per-stage overrides, packing.

mod common;
use common::*;
use ft_data::curriculum::{Direction, Pacing};
use ft_data::render::{BinOp, RowExpr};
use ft_pipeline::{BatchData, DataPipeline, SamplerState};
use ft_plan::*;
use std::path::Path;

/// Rows `{"d": k, "q": "q k", "a": "a k"}` for k in `ks` (file order).
fn rows(dir: &Path, name: &str, ks: &[u32]) -> std::path::PathBuf {
    let text: String = ks
        .iter()
        .map(|k| format!("{{\"d\": {k}, \"q\": \"q {k}\", \"a\": \"a {k}\"}}\n"))
        .collect();
    write(dir, name, &text)
}

fn tok() -> ft_pipeline::TextTokenizer {
    let nums: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let joined = nums.join(" ");
    word_tokenizer(&[&joined, "q a Q A"], false)
}

/// The `d` field of every example of a batch, in row order.
fn ds_of(data: &DataPipeline, b: &BatchData) -> Vec<u64> {
    let ids = &b.main().example_ids;
    ids.iter()
        .map(|id| {
            data.dataset("t")
                .or_else(|| data.dataset("a"))
                .into_iter()
                .chain(data.dataset("b"))
                .flat_map(|d| d.splits.iter().flat_map(|s| s.examples.iter()))
                .find(|e| e.id == *id)
                .unwrap()
                .row["d"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn lt(field: &str, v: f64) -> RowExpr {
    RowExpr::Binary(BinOp::Le, common::field(field), Box::new(RowExpr::Num(v)))
}

fn curriculum_plan(dir: &Path, pacing: Pacing) -> Plan {
    // Difficulty 1..=10, written out of order.
    let f = rows(dir, "t.jsonl", &[7, 3, 10, 1, 5, 9, 2, 8, 4, 6]);
    let ds = jsonl_ds("t", &f, completion_fields("Q {q}", "A {a}"));
    let stages = vec![
        StagePlan {
            name: "short".into(),
            data: DataRef {
                name: "t".into(),
                filter: Some(lt("d", 4.0)),
            },
            length: Length::Epochs(1.0),
            lr: Some(1e-3),
            batch: Some(2),
            max_len: Some(8),
        },
        StagePlan {
            name: "all".into(),
            data: data_ref("t"),
            length: Length::Epochs(1.0),
            lr: None,
            batch: None,
            max_len: None,
        },
    ];
    let data = TrainData::Curriculum {
        curriculum: CurriculumPlan {
            order: Some((OrderKey::Field("d".into()), Direction::Ascending)),
            pacing,
            stages,
        },
        mixtures: Vec::new(),
    };
    plan(vec![ds], data, Head::CausalLm, 5, 32, Length::Steps(1))
}

#[test]
fn an_ordered_curriculum_gives_exactly_the_documented_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let p = curriculum_plan(dir.path(), Pacing::None);
    let data = build(&p, tok()).unwrap();
    let batches: Vec<_> = data.train_sampler().unwrap().collect();
    // Stage `short`: d ≤ 4 in ascending order, batch 2, one epoch = 2 steps;
    // stage `all`: all ten ascending, batch 5 (train's), 2 steps.
    let seq: Vec<Vec<u64>> = batches.iter().map(|b| ds_of(&data, &b.data)).collect();
    assert_eq!(
        seq,
        vec![
            vec![1, 2],
            vec![3, 4],
            vec![1, 2, 3, 4, 5],
            vec![6, 7, 8, 9, 10]
        ]
    );
    let meta: Vec<_> = batches
        .iter()
        .map(|b| (b.step, b.stage_name.as_str(), b.lr, b.max_len))
        .collect();
    assert_eq!(
        meta,
        vec![
            (0, "short", Some(1e-3), 8),
            (1, "short", Some(1e-3), 8),
            (2, "all", None, 32),
            (3, "all", None, 32)
        ]
    );
    let r = &data.report().stages;
    assert_eq!(
        (r[0].filtered, r[0].steps, r[1].filtered, r[1].steps),
        (6, 2, 0, 2)
    );
}

#[test]
fn pacing_draws_only_from_the_competence_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let pacing = Pacing::Linear {
        start: 0.2,
        full_at: 0.5,
    };
    let mut p = curriculum_plan(dir.path(), pacing);
    // Stage `all`: 4 steps of 5 (two epochs); T = 0.5 · 4 = 2 steps;
    // c(t) = min(1, 0.2 + 0.4 t): m = ⌈10 c⌉ = 2, 6, 10, 10.
    if let TrainData::Curriculum { curriculum, .. } = &mut p.data {
        curriculum.stages[1].length = Length::Epochs(2.0);
    }
    let data = build(&p, tok()).unwrap();
    let batches: Vec<_> = data.train_sampler().unwrap().collect();
    let all: Vec<Vec<u64>> = batches
        .iter()
        .filter(|b| b.stage_name == "all")
        .map(|b| ds_of(&data, &b.data))
        .collect();
    assert_eq!(all.len(), 4);
    for (t, limit) in [(0, 2), (1, 6), (2, 10), (3, 10)] {
        assert!(
            all[t].iter().all(|&d| d <= limit),
            "step {t}: {:?} beyond the first {limit}",
            all[t]
        );
    }
    // The draws themselves are pinned (seeded by plan.seed): a change to
    // seeding or to the lowering shows up here.
    assert_eq!(
        all,
        vec![
            vec![2, 2, 2, 2, 2],
            vec![3, 1, 2, 6, 5],
            vec![6, 9, 2, 1, 5],
            vec![4, 6, 2, 1, 7]
        ]
    );
}

fn mixture_plan(
    dir: &Path,
    weights: (Option<f64>, Option<f64>),
    temperature: Option<f64>,
    cap: Option<f64>,
) -> Plan {
    let a = rows(dir, "a.jsonl", &(0..100).collect::<Vec<_>>());
    let b = rows(dir, "b.jsonl", &(100..500).collect::<Vec<_>>());
    let mixture = MixturePlan {
        name: "mix".into(),
        tasks: vec![("a".into(), weights.0), ("b".into(), weights.1)],
        temperature,
        cap,
        seed: 3,
    };
    plan(
        vec![
            jsonl_ds("a", &a, completion_fields("Q {q}", "A {a}")),
            jsonl_ds("b", &b, completion_fields("Q {q}", "A {a}")),
        ],
        TrainData::Mixture {
            mixture,
            filter: None,
        },
        Head::CausalLm,
        10,
        32,
        Length::Steps(1000),
    )
}

fn share_of_a(data: &DataPipeline) -> f64 {
    let mut a = 0usize;
    let mut n = 0usize;
    for b in data.train_sampler().unwrap() {
        let tasks = &b.data.main().tasks;
        a += tasks.iter().filter(|&&t| t == 0).count();
        n += tasks.len();
    }
    assert_eq!(n, 10_000);
    a as f64 / n as f64
}

#[test]
fn mixture_shares_match_weights_and_temperature_within_two_percent() {
    let dir = tempfile::tempdir().unwrap();
    // Weights only: 3 : 1.
    let d = build(
        &mixture_plan(dir.path(), (Some(3.0), Some(1.0)), None, None),
        tok(),
    )
    .unwrap();
    let s = share_of_a(&d);
    assert!((s - 0.75).abs() < 0.02, "{s}");
    // Weights and T = 2: 3·√100 : 1·√400 = 30 : 20.
    let d = build(
        &mixture_plan(dir.path(), (Some(3.0), Some(1.0)), Some(2.0), None),
        tok(),
    )
    .unwrap();
    let s = share_of_a(&d);
    assert!((s - 0.6).abs() < 0.02, "{s}");
    // No weights, T = 1: examples-proportional, 100 : 400.
    let d = build(
        &mixture_plan(dir.path(), (None, None), Some(1.0), None),
        tok(),
    )
    .unwrap();
    let s = share_of_a(&d);
    assert!((s - 0.2).abs() < 0.02, "{s}");
    // Weights 9 : 1 with cap 2: a may be drawn at most 2·100 times per
    // mixture epoch of 500 draws: 40%.
    let d = build(
        &mixture_plan(dir.path(), (Some(9.0), Some(1.0)), None, Some(2.0)),
        tok(),
    )
    .unwrap();
    let s = share_of_a(&d);
    assert!((s - 0.4).abs() < 0.02, "{s}");
}

/// A stable hash of the first `n` batches.
fn first_batches_hash(data: &DataPipeline, n: usize) -> u64 {
    let mut h = 0u64;
    for b in data.train_sampler().unwrap().take(n) {
        h = ft_data::rng::mix64(h ^ b.data.fingerprint());
    }
    h
}

#[test]
fn the_same_plan_gives_byte_identical_batches_pinned_across_machines() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = mixture_plan(dir.path(), (Some(3.0), Some(1.0)), Some(2.0), None);
    p.train.packing = true;
    let a = first_batches_hash(&build(&p, tok()).unwrap(), 50);
    let b = first_batches_hash(&build(&p, tok()).unwrap(), 50);
    assert_eq!(a, b);
    // Pinned: the sampler, the seeds and the batch layout are the same on
    // every machine; a change here is a change in every recorded run.
    assert_eq!(a, PINNED_FIRST_50, "got {a:#018x}");
    // A different mixture seed gives different batches (the mixture's seed
    // is the recipe's `seed`, defaulting to train.seed in the compiler).
    if let TrainData::Mixture { mixture, .. } = &mut p.data {
        mixture.seed += 1;
    }
    assert_ne!(first_batches_hash(&build(&p, tok()).unwrap(), 50), a);
    // A single dataset is shuffled by plan.seed.
    let dir2 = tempfile::tempdir().unwrap();
    let mut q = curriculum_plan(dir2.path(), ft_data::curriculum::Pacing::None);
    q.data = TrainData::Dataset(data_ref("t"));
    q.train.length = Length::Epochs(3.0);
    let one = first_batches_hash(&build(&q, tok()).unwrap(), 6);
    q.seed += 1;
    assert_ne!(first_batches_hash(&build(&q, tok()).unwrap(), 6), one);
}

const PINNED_FIRST_50: u64 = 0xbb4b_076b_d7cf_8599;

#[test]
fn resuming_from_a_saved_state_gives_exactly_the_following_batches() {
    let dir = tempfile::tempdir().unwrap();
    // A single dataset over several shuffled epochs: the sampler keeps an
    // epoch's order between steps, a resumed one rebuilds it.
    let mut single = curriculum_plan(dir.path(), Pacing::None);
    single.data = TrainData::Dataset(data_ref("t"));
    single.train.length = Length::Epochs(12.0);
    for p in [
        mixture_plan(dir.path(), (Some(3.0), Some(1.0)), Some(2.0), None),
        curriculum_plan(
            dir.path(),
            Pacing::Root {
                start: 0.2,
                full_at: 0.5,
            },
        ),
        single,
    ] {
        let data = build(&p, tok()).unwrap();
        let all: Vec<_> = data.train_sampler().unwrap().take(40).collect();
        for cut in [0, 1, 2, 3, 17] {
            let mut s = data.train_sampler().unwrap();
            for _ in 0..cut {
                s.next();
            }
            let saved = serde_json::to_string(s.state()).unwrap();
            let state: SamplerState = serde_json::from_str(&saved).unwrap();
            let resumed: Vec<_> = data.resume_sampler(state).unwrap().take(40 - cut).collect();
            assert_eq!(
                resumed,
                all[cut.min(all.len())..],
                "resume after {cut} batches"
            );
        }
    }
}

#[test]
fn a_state_from_another_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = build(&curriculum_plan(dir.path(), Pacing::None), tok()).unwrap();
    let state = SamplerState {
        step: 99,
        stage: 1,
        stage_step: 1,
        ..SamplerState::default()
    };
    assert!(data.resume_sampler(state).is_err());
}

#[test]
fn a_mixture_stage_filters_every_task_and_paces_within_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = mixture_plan(dir.path(), (Some(1.0), Some(1.0)), None, None);
    let TrainData::Mixture { mixture, .. } = p.data.clone() else {
        unreachable!()
    };
    p.data = TrainData::Curriculum {
        curriculum: CurriculumPlan {
            order: Some((OrderKey::Field("d".into()), Direction::Descending)),
            pacing: Pacing::Root {
                start: 0.1,
                full_at: 1.0,
            },
            stages: vec![StagePlan {
                name: "odd".into(),
                data: DataRef {
                    name: "mix".into(),
                    // d < 50 or d ≥ 450: 50 of a, 50 of b.
                    filter: Some(RowExpr::Binary(
                        BinOp::Or,
                        Box::new(lt("d", 49.0)),
                        Box::new(RowExpr::Binary(
                            BinOp::Ge,
                            common::field("d"),
                            Box::new(RowExpr::Num(450.0)),
                        )),
                    )),
                },
                length: Length::Steps(20),
                lr: None,
                batch: Some(4),
                max_len: None,
            }],
        },
        mixtures: vec![mixture],
    };
    let data = build(&p, tok()).unwrap();
    assert_eq!(
        data.report().stages[0].tasks,
        vec![("a".to_owned(), 50), ("b".to_owned(), 50)]
    );
    assert_eq!(data.report().stages[0].filtered, 400);
    let first = data.train_sampler().unwrap().next().unwrap();
    // Step 0: competence 0.1 → the 5 hardest (descending) of each task.
    for d in ds_of(&data, &first.data) {
        assert!((45..50).contains(&d) || (495..500).contains(&d), "{d}");
    }
}

#[test]
fn one_epoch_of_a_dataset_visits_every_example_once_in_a_seeded_shuffle() {
    let dir = tempfile::tempdir().unwrap();
    let f = rows(dir.path(), "t.jsonl", &(0..30).collect::<Vec<_>>());
    let mut p = plan(
        vec![jsonl_ds("t", &f, completion_fields("Q {q}", "A {a}"))],
        TrainData::Dataset(data_ref("t")),
        Head::CausalLm,
        6,
        32,
        Length::Epochs(2.0),
    );
    let data = build(&p, tok()).unwrap();
    let seen: Vec<u64> = data
        .train_sampler()
        .unwrap()
        .flat_map(|b| ds_of(&data, &b.data))
        .collect();
    assert_eq!(seen.len(), 60, "2 epochs of 30 in batches of 6 = 10 steps");
    for epoch in seen.chunks(30) {
        let mut e = epoch.to_vec();
        e.sort_unstable();
        assert_eq!(e, (0..30).collect::<Vec<u64>>());
    }
    assert_ne!(seen[..30], seen[30..], "each epoch is shuffled afresh");
    assert_ne!(seen[..30].to_vec(), (0..30).collect::<Vec<u64>>());
    // Eval batches keep file order.
    let eval: Vec<u64> = data
        .eval_batches("train", 7)
        .unwrap()
        .iter()
        .flat_map(|b| ds_of(&data, b))
        .collect();
    assert_eq!(eval, (0..30).collect::<Vec<u64>>());
    // Packing: the same examples per step, fewer rows.
    p.train.packing = true;
    let packed = build(&p, tok()).unwrap();
    let b = packed.train_sampler().unwrap().next().unwrap();
    let m = b.data.main();
    // Examples are 7 tokens ("Q q k A a k" + EOS): 4 fit a row of 32.
    assert_eq!((m.batch, m.seq), (2, 28));
    assert_eq!(m.example_ids.len(), 6);
    let pos = m.position_ids.as_ref().unwrap();
    assert_eq!(&pos[..14], &[0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]);
    let seg = m.segment_ids.as_ref().unwrap();
    assert_eq!(
        &seg[26..30],
        &[4, 4, 1, 1],
        "row 0 ends in example 4, row 1 starts"
    );
}

#[test]
fn grouping_by_length_cuts_padding_keeps_epochs_whole_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Questions of 1 to 40 words, in a scrambled file order.
    let text: String = (0..400u32)
        .map(|k| {
            let words = vec![k.to_string(); 1 + ((k * 37) % 40) as usize].join(" ");
            format!("{{\"d\": {k}, \"q\": \"{words}\", \"a\": \"a\"}}\n")
        })
        .collect();
    let f = write(dir.path(), "t.jsonl", &text);
    let mut p = plan(
        vec![jsonl_ds("t", &f, completion_fields("Q {q}", "A {a}"))],
        TrainData::Dataset(data_ref("t")),
        Head::CausalLm,
        8,
        64,
        Length::Epochs(3.0),
    );
    let padding = |p: &Plan| -> (usize, Vec<u64>) {
        let data = build(p, tok()).unwrap();
        let mut pad = 0;
        let mut seen = Vec::new();
        for b in data.train_sampler().unwrap() {
            let m = b.data.main();
            pad += m.attention_mask.iter().filter(|&&x| x == 0).count();
            seen.extend(ds_of(&data, &b.data));
        }
        (pad, seen)
    };
    let (plain, plain_seen) = padding(&p);
    p.train.group_by_length = true;
    let (grouped, seen) = padding(&p);
    assert!(grouped * 4 < plain, "padding {plain} → {grouped}");
    assert_eq!(seen.len(), 1200);
    for epoch in seen.chunks(400) {
        let mut e = epoch.to_vec();
        e.sort_unstable();
        assert_eq!(
            e,
            (0..400).collect::<Vec<u64>>(),
            "an epoch visits each example once"
        );
    }
    assert_ne!(seen, plain_seen);
    // Resumed mid-epoch and across an epoch boundary: the same batches.
    let data = build(&p, tok()).unwrap();
    let all: Vec<_> = data.train_sampler().unwrap().collect();
    for cut in [1, 37, 50, 51, 99] {
        let mut s = data.train_sampler().unwrap();
        for _ in 0..cut {
            s.next();
        }
        let state = s.state().clone();
        let resumed: Vec<_> = data.resume_sampler(state).unwrap().collect();
        assert_eq!(resumed, all[cut..], "resume after {cut} batches");
    }
}

/// A stage's `max_len` cuts its batches to that length; the next stage,
/// at train's, keeps the whole examples; each stage reports its own cuts.
#[test]
fn a_stages_max_len_cuts_only_its_own_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = curriculum_plan(dir.path(), Pacing::None);
    let TrainData::Curriculum { curriculum, .. } = &mut p.data else {
        unreachable!()
    };
    curriculum.stages[0].max_len = Some(4);
    let data = build(&p, tok()).unwrap();
    let seqs: Vec<(String, usize)> = data
        .train_sampler()
        .unwrap()
        .map(|b| (b.stage_name.clone(), b.data.main().seq))
        .collect();
    // "Q q k A a k" and EOS: 7 tokens whole.
    assert_eq!(
        seqs,
        vec![
            ("short".to_string(), 4),
            ("short".to_string(), 4),
            ("all".to_string(), 7),
            ("all".to_string(), 7)
        ]
    );
    // The report counts the cut examples among those each stage keeps:
    // the four of `short`'s filter, none of `all`.
    let r = &data.report().stages;
    assert_eq!((r[0].truncated, r[1].truncated), (4, 0));
}
