//! The curriculum iterator on a small fixture: stage boundaries, pacing,
//! the exact sequence, and resume.

use ft_data::curriculum::{
    Curriculum, CurriculumError, CurriculumItem, CurriculumPos, CurriculumSpec, Direction, Pacing,
    Stage, StageLength,
};

fn stage(
    name: &str,
    pool: Vec<usize>,
    keys: Option<Vec<f64>>,
    direction: Direction,
    pacing: Pacing,
    length: StageLength,
) -> Stage {
    Stage {
        name: name.into(),
        pool,
        keys,
        direction,
        pacing,
        length,
    }
}

/// Four stages, batch 2, seed 7:
/// 0 `short`:  pool 10..=13, keys [3,1,4,2] ascending → [11,13,10,12];
///             linear(start 25%, full_at 50%), 4 steps.
/// 1 `all`:    pool 0..8, keys = the index, descending → [7,6,...,0];
///             root(start 50%, full_at 100%), 1 epoch = 4 steps.
/// 2 `tail`:   pool 20..=22, no keys, no pacing, 2 epochs = 3 steps.
/// 3 `sorted`: pool 30..=32, keys [1,2,0] descending → [31,30,32], no
///             pacing, 2 steps.
fn fixture() -> Curriculum {
    use Direction::*;
    Curriculum::new(CurriculumSpec {
        stages: vec![
            stage(
                "short",
                vec![10, 11, 12, 13],
                Some(vec![3.0, 1.0, 4.0, 2.0]),
                Ascending,
                Pacing::Linear {
                    start: 0.25,
                    full_at: 0.5,
                },
                StageLength::Steps(4),
            ),
            stage(
                "all",
                (0..8).collect(),
                Some((0..8).map(f64::from).collect()),
                Descending,
                Pacing::Root {
                    start: 0.5,
                    full_at: 1.0,
                },
                StageLength::Epochs(1.0),
            ),
            stage(
                "tail",
                vec![20, 21, 22],
                None,
                Ascending,
                Pacing::None,
                StageLength::Epochs(2.0),
            ),
            stage(
                "sorted",
                vec![30, 31, 32],
                Some(vec![1.0, 2.0, 0.0]),
                Descending,
                Pacing::None,
                StageLength::Steps(2),
            ),
        ],
        batch_size: 2,
        seed: 7,
    })
    .unwrap()
}

#[test]
fn stage_lengths_order_and_pacing_follow_the_formulas() {
    let c = fixture();
    assert_eq!(c.stage_steps(), [4, 4, 3, 2]);
    assert_eq!(c.total_steps(), 13);
    assert_eq!(c.ordered_pool(0), [11, 13, 10, 12]);
    assert_eq!(c.ordered_pool(1), [7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(c.ordered_pool(3), [31, 30, 32]);
    // linear: c(t) = min(1, t(1 - .25)/2 + .25) with T = 50% of 4 steps.
    let lin: Vec<f64> = (0..4).map(|t| c.competence(0, t)).collect();
    assert_eq!(lin, [0.25, 0.625, 1.0, 1.0]);
    assert_eq!(
        (0..4).map(|t| c.available(0, t)).collect::<Vec<_>>(),
        [1, 3, 4, 4]
    );
    // root: c(t) = min(1, sqrt(t(1 - .25)/4 + .25)) with T = 4 steps.
    for t in 0..4u64 {
        let want = (t as f64 * 0.75 / 4.0 + 0.25).sqrt().min(1.0);
        assert!((c.competence(1, t) - want).abs() < 1e-15);
    }
    assert_eq!(
        (0..4).map(|t| c.available(1, t)).collect::<Vec<_>>(),
        [4, 6, 7, 8]
    );
    assert_eq!(c.competence(2, 0), 1.0);
}

#[test]
fn the_sequence_is_exactly_the_documented_one() {
    let c = fixture();
    let items: Vec<CurriculumItem> = c.iter().collect();
    assert_eq!(items.len(), 26);
    // Stage boundaries and global steps.
    let stages: Vec<usize> = items.iter().map(|i| i.stage).collect();
    assert_eq!(
        stages,
        [[0; 8].as_slice(), &[1; 8], &[2; 6], &[3; 4]].concat()
    );
    let steps: Vec<u64> = items.iter().map(|i| i.step).collect();
    assert_eq!(steps, (0..13).flat_map(|s| [s, s]).collect::<Vec<_>>());
    assert_eq!(items[8].stage_step, 0);
    // Each paced draw comes from the available prefix; step 0 of `short`
    // can only be the easiest example.
    for it in &items[..16] {
        let m = c.available(it.stage, it.stage_step);
        assert!(
            c.ordered_pool(it.stage)[..m].contains(&it.example),
            "{it:?}"
        );
    }
    assert_eq!((items[0].example, items[1].example), (11, 11));
    // `tail`: two shuffled epochs, each a permutation of the pool.
    for epoch in items[16..22].chunks(3) {
        let mut e: Vec<usize> = epoch.iter().map(|i| i.example).collect();
        e.sort();
        assert_eq!(e, [20, 21, 22]);
    }
    // `sorted`: the descending order, wrapping into a second epoch.
    let sorted: Vec<usize> = items[22..].iter().map(|i| i.example).collect();
    assert_eq!(sorted, [31, 30, 32, 31]);
    // The whole sequence, as an independent Python transcription of the
    // module docs and `rng` computes it for seed 7.
    let all: Vec<usize> = items.iter().map(|i| i.example).collect();
    assert_eq!(all, PINNED);
    // Random access agrees with iteration.
    let mut it = c.iter();
    for item in &items {
        let pos = it.position();
        assert_eq!(c.example_at(pos), item.example);
        it.next();
    }
}

const PINNED: [usize; 26] = [
    11, 11, 13, 10, 13, 12, 11, 12, 5, 5, 4, 3, 3, 6, 3, 7, 22, 21, 20, 20, 22, 21, 31, 30, 32, 31,
];

#[test]
fn resumes_from_any_position() {
    let c = fixture();
    let all: Vec<CurriculumItem> = c.iter().collect();
    let mut it = c.iter();
    for k in 0..=all.len() {
        let pos: CurriculumPos =
            serde_json::from_str(&serde_json::to_string(&it.position()).unwrap()).unwrap();
        let rest: Vec<CurriculumItem> = c.resume(pos).unwrap().collect();
        assert_eq!(rest, all[k..], "resumed at item {k}: {pos:?}");
        it.next();
    }
    assert_eq!(
        it.position(),
        CurriculumPos {
            stage: 4,
            stage_step: 0,
            slot: 0
        }
    );
    assert!(c
        .resume(CurriculumPos {
            stage: 0,
            stage_step: 9,
            slot: 0
        })
        .is_err());
}

#[test]
fn invalid_curricula_are_refused() {
    let one = |s: Stage| {
        Curriculum::new(CurriculumSpec {
            stages: vec![s],
            batch_size: 4,
            seed: 0,
        })
    };
    let lin = Pacing::Linear {
        start: 0.2,
        full_at: 0.5,
    };
    let d = Direction::Ascending;
    let e = one(stage(
        "a",
        vec![],
        None,
        d,
        Pacing::None,
        StageLength::Steps(1),
    ))
    .unwrap_err();
    assert_eq!(e, CurriculumError::EmptyPool { stage: "a".into() });
    let e = one(stage("a", vec![1], None, d, lin, StageLength::Steps(1))).unwrap_err();
    assert_eq!(e, CurriculumError::PacingWithoutOrder { stage: "a".into() });
    let e = one(stage(
        "a",
        vec![1, 2],
        Some(vec![1.0]),
        d,
        lin,
        StageLength::Steps(1),
    ));
    assert!(matches!(
        e,
        Err(CurriculumError::KeysLength {
            keys: 1,
            pool: 2,
            ..
        })
    ));
    let e = one(stage(
        "a",
        vec![1],
        Some(vec![f64::NAN]),
        d,
        lin,
        StageLength::Steps(1),
    ));
    assert!(matches!(e, Err(CurriculumError::NanKey { index: 0, .. })));
    let bad = Pacing::Root {
        start: 0.0,
        full_at: 0.5,
    };
    let e = one(stage(
        "a",
        vec![1],
        Some(vec![1.0]),
        d,
        bad,
        StageLength::Steps(1),
    ));
    assert!(matches!(e, Err(CurriculumError::BadPacing { .. })));
    let e = one(stage(
        "a",
        vec![1],
        None,
        d,
        Pacing::None,
        StageLength::Epochs(0.0),
    ));
    assert!(matches!(e, Err(CurriculumError::BadLength { .. })));
    assert_eq!(
        Curriculum::new(CurriculumSpec {
            stages: vec![],
            batch_size: 1,
            seed: 0
        })
        .unwrap_err(),
        CurriculumError::NoStages
    );
}

/// `epoch_order` is the iterator's own order for an unpaced, unkeyed stage
/// (the train sampler keeps one epoch's order instead of reshuffling at
/// every step, and must give the same items).
#[test]
fn epoch_order_is_the_sequence_of_a_shuffled_stage() {
    let c = fixture();
    let tail: Vec<usize> = c
        .iter()
        .filter(|it| it.stage == 2)
        .map(|it| it.example)
        .collect();
    assert_eq!(tail.len(), 6, "2 epochs of 3");
    let from_epochs: Vec<usize> = (0..6u64)
        .map(|k| c.epoch_order(2, k / 3)[(k % 3) as usize])
        .collect();
    assert_eq!(tail, from_epochs);
    assert_ne!(c.epoch_order(2, 0), c.epoch_order(2, 1), "epochs reshuffle");
}
