//! Sweeps: a recipe's `sweep` block expands into trial recipes, each checked
//! in full (world checks on the real MiniLM included) and lowered to its own
//! Plan; an invalid combination is one diagnostic naming the trial's values.
//! Needs the assets of `scripts/fetch-assets.sh`.

mod common;

use std::path::Path;

use ft_compiler::driver::{self, Options};
use ft_compiler::sweep;
use ft_plan::{Length, Method, Optimizer};

fn analyze_text(name: &str, text: &str) -> driver::Analysis {
    // In recipes/, so that the recipe's relative paths and imports resolve.
    let path = common::repo_root().join("recipes").join(name);
    // As `ft check` asks: with every trial checked.
    let opts = Options {
        trials: true,
        ..Options::default()
    };
    driver::analyze_text(&path, text, opts)
}

#[test]
fn the_shipped_sweep_expands_to_six_checked_trials() {
    let path = common::repo_root().join("recipes/sweep-minilm.ft");
    let a = driver::analyze_path(&path, Options::default());
    assert!(!a.has_errors(), "{:#?}", a.diagnostics);
    let s = sweep::expand(&a).unwrap();
    assert_eq!(s.axes, ["train.optimizer.lr", "peft.rank"]);
    assert_eq!(s.trials.len(), 6);
    assert_eq!(s.pick.metric, "accuracy");
    assert!(s.pick.maximize);
    let plans = sweep::check_trials(&a, &s, Options::default()).unwrap();
    let got: Vec<(f64, u32)> = plans
        .iter()
        .map(|p| {
            let Optimizer::AdamW { lr, .. } = p.train.optimizer else {
                panic!("adamw")
            };
            let Method::Lora(l) = &p.method else {
                panic!("lora")
            };
            (lr, l.modules[0].rank as u32)
        })
        .collect();
    assert_eq!(
        got,
        [
            (1e-4, 4),
            (1e-4, 8),
            (3e-4, 4),
            (3e-4, 8),
            (1e-3, 4),
            (1e-3, 8)
        ]
    );
    for p in &plans {
        // The budget replaces the recipe's length; trials see val only.
        assert_eq!(p.train.length, Length::Steps(60));
        assert_eq!(p.evaluate.on, ["val"]);
        assert!(p.evaluate.metrics.iter().any(|m| m.name() == "accuracy"));
    }
    // The peft block lives in the imported recipe: the trial carries a copy
    // with the rank written in; the resolved recipe has no budget.
    insta::assert_snapshot!("trial_3_text", s.trials[2].text);
    insta::assert_snapshot!("trial_3_resolved", s.trials[2].resolved);
}

#[test]
fn an_invalid_combination_is_reported_with_its_values_before_any_trial() {
    let text = r#"import "sentiment-minilm.ft"

sweep {
  train.optimizer.lr in [1e-4, 1e-3]
  peft.rank in [8, 5000]
  budget = { steps = 10 }
  pick = min(val.loss)
}
"#;
    // `ft check` reports invalid trials as the recipe's errors, as `ft
    // sweep` does before it starts anything.
    let a = analyze_text("bad-sweep.ft", text);
    let diags: Vec<_> = a.diagnostics.iter().filter(|d| d.is_error()).collect();
    // Trials 2 and 4 have rank 5000, larger than MiniLM's 384-wide layers.
    assert_eq!(diags.len(), 2, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.code.id, "FT0701");
    assert_eq!(
        d.message,
        "trial 2 (train.optimizer.lr = 1e-4, peft.rank = 5000) does not check"
    );
    assert!(
        d.notes.iter().any(|n| n.starts_with("FT0609")),
        "the cause is named: {:?}",
        d.notes
    );
    // The secondary label points at `5000` in the sweep block.
    let at = &d.secondary[0];
    assert_eq!(&text[at.span.start..at.span.end], "5000");
    assert!(diags[1].message.starts_with("trial 4 "));
}

#[test]
fn a_pick_on_test_is_refused_by_the_checker() {
    let text = "import \"sentiment-minilm.ft\"\nsweep {\n  peft.rank in [4, 8]\n  pick = max(test.accuracy)\n}\n";
    let a = analyze_text("test-pick.ft", text);
    let codes: Vec<&str> = a.diagnostics.iter().map(|d| d.code.id).collect();
    assert_eq!(codes, ["FT0408"]);
}

#[test]
fn a_method_axis_writes_whole_peft_blocks_and_random_search_is_seeded() {
    let text = r#"import "sentiment-minilm.ft"

sweep {
  peft in [lora(rank = 4, alpha = 8, targets = [query, value]), ia3(targets = [key, value, output.dense], feedforward = [output.dense])]
  train.optimizer.lr in loguniform(1e-5, 1e-3)
  strategy = random(n = 4, seed = 3)
  budget = { epochs = 1 }
  pick = min(val.loss)
}
"#;
    let a = analyze_text("method-sweep.ft", text);
    assert!(!a.has_errors(), "{:#?}", a.diagnostics);
    let s = sweep::expand(&a).unwrap();
    assert_eq!(s.trials.len(), 4);
    let again = sweep::expand(&a).unwrap();
    let values = |s: &sweep::Sweep| {
        s.trials
            .iter()
            .map(|t| t.values.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&s), values(&again), "seeded draws repeat");
    let plans =
        sweep::check_trials(&a, &s, Options::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    for (t, p) in s.trials.iter().zip(&plans) {
        let Optimizer::AdamW { lr, .. } = p.train.optimizer else {
            panic!("adamw")
        };
        assert!((1e-5..=1e-3).contains(&lr), "{lr}");
        let want_ia3 = t.values[0].starts_with("ia3");
        assert_eq!(
            matches!(p.method, Method::Ia3 { .. }),
            want_ia3,
            "{}",
            t.text
        );
        assert_eq!(p.train.length, Length::Epochs(1.0));
    }
}

#[test]
fn trial_recipes_read_back_as_recipes() {
    // Every trial text is itself a recipe a person can run: parse it and
    // check it without the sweep machinery.
    let path = common::repo_root().join("recipes/sweep-minilm.ft");
    let a = driver::analyze_path(&path, Options::default());
    let s = sweep::expand(&a).unwrap();
    for t in &s.trials {
        let ta = driver::analyze_text(Path::new(&path), &t.resolved, Options::default());
        assert!(!ta.has_errors(), "{}: {:#?}", t.resolved, ta.diagnostics);
        assert!(ta.recipe.one("sweep").is_none());
    }
}

/// Trials are checked where they are asked for (`ft check`, `ft sweep`),
/// not on every analysis: the editor's and `ft run`'s analysis of a sweep
/// recipe checks the recipe itself, and lowers its Plan once.
#[test]
fn trials_are_checked_only_when_asked() {
    let text = r#"import "sentiment-minilm.ft"

sweep {
  peft.rank in [8, 5000]
  budget = { steps = 10 }
  pick = min(val.loss)
}
"#;
    let path = common::repo_root().join("recipes/editor.ft");
    let a = driver::analyze_text(&path, text, Options::default());
    assert!(!a.has_errors(), "{:#?}", a.diagnostics);
    let plan = a.plan.as_ref().expect("lowered while checking");
    assert_eq!(plan.as_ref().unwrap(), &a.plan().unwrap());
    assert!(analyze_text("editor.ft", text).has_errors());
}

/// `sweep.seed` seeds a random search (when `random(…)` names none): the
/// same seed draws the same trials, another seed others. `min(…)` picks
/// the lowest value, `max(…)` the highest.
#[test]
fn sweep_seed_draws_the_trials_and_min_picks_the_lowest() {
    let recipe = |seed: u64, pick: &str| {
        format!(
            "import \"sentiment-minilm.ft\"\n\nsweep {{\n  train.optimizer.lr in loguniform(1e-5, 1e-3)\n  strategy = random(n = 3)\n  seed = {seed}\n  pick = {pick}(val.loss)\n}}\n"
        )
    };
    let values = |seed: u64| {
        let a = analyze_text("seeded-sweep.ft", &recipe(seed, "min"));
        assert!(!a.has_errors(), "{:#?}", a.diagnostics);
        sweep::expand(&a)
            .unwrap()
            .trials
            .iter()
            .map(|t| t.values.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(1), values(1));
    assert_ne!(values(1), values(2));

    let pick = |kind: &str| {
        let a = analyze_text("picked-sweep.ft", &recipe(1, kind));
        sweep::expand(&a).unwrap().pick
    };
    let min = pick("min");
    assert!(min.better(0.1, 0.2) && !min.better(0.2, 0.1));
    let max = pick("max");
    assert!(max.better(0.2, 0.1) && !max.better(0.1, 0.2));
}
