//! `ft run` on real weights and real data (the assets of
//! `scripts/fetch-assets.sh`), kept short for CI: SmolLM2-135M with LoRA
//! on chatterbot questions (validation loss falls; generation metrics are
//! scored; the adapter generates),
//! and SmolLM2 with DPO on chatterbot preference pairs (the implicit reward
//! margin grows from zero); and `precision = bf16` against f32 on the same
//! run (the losses agree to bfloat16's precision); and
//! `gradient_checkpointing = true` against the ordinary run (the same
//! losses, to rounding).

mod common;

use common::{
    asset, chatterbot_recipe, final_loss, final_metrics, ft, root, run_recipe, text, train_losses,
    workdir,
};
use std::path::Path;

/// `(step, value)` of every non-final validation metric `name`.
fn val_curve(run: &Path, name: &str) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "val" && v.get("final").is_none())
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["metrics"][name].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn smollm2_lora_on_chatterbot_lowers_validation_loss_and_generates() {
    let recipe = chatterbot_recipe(
        "chat([system: \"You are a helpful assistant.\", user: \"{question}\"])",
        "peft lora { rank = 8, alpha = 16, targets = [q_proj, v_proj] }",
        "steps = 12\nbatch = 4\nmax_len = 96\noptimizer = adamw(lr = 1e-3)\neval_every = 6",
        "evaluate { on = val, metrics = [loss, perplexity, rouge_l, exact_match], max_new_tokens = 12, batch = 3 }",
    );
    let dir = workdir("smollm2-lora", &recipe);
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.join("runs/recipe/0001");
    let curve = val_curve(&run, "loss");
    assert_eq!(curve.iter().map(|c| c.0).collect::<Vec<_>>(), vec![6, 12]);
    assert!(
        curve[1].1 < curve[0].1,
        "validation loss did not fall: {curve:?}"
    );
    // Generation metrics (final evaluation): the validation prompts
    // generated three at a time (left-padded batches), scored against the
    // answers.
    let last = final_metrics(&run);
    println!("final: {last}");
    for metric in ["rouge_l", "exact_match"] {
        let score = last[metric].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&score), "{metric}: {last}");
    }
    assert!(
        last["rouge_l"].as_f64() > Some(0.0),
        "no overlap at all: {last}"
    );
    for f in [
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // The targets as PEFT writes the user's, not one entry per layer.
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "v_proj"])
    );
    let o = ft(
        &dir,
        &[
            "generate",
            &asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "--adapter",
            run.join("adapter").to_str().unwrap(),
            "--prompt",
            "Are you sentient?",
            "--max-tokens",
            "16",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
}

#[test]
#[ignore = "needs AMX-BF16"]
fn smollm2_bf16_products_track_the_f32_run() {
    let recipe = |precision: &str| {
        chatterbot_recipe(
            "chat([user: \"{question}\"])",
            "peft lora { rank = 8, alpha = 16, targets = [q_proj, v_proj] }",
            &format!("steps = 4\nbatch = 4\nmax_len = 64\noptimizer = adamw(lr = 1e-3)\nprecision = {precision}"),
            "evaluate { on = val, metrics = [loss] }",
        )
    };
    let mut runs = Vec::new();
    for precision in ["f32", "bf16"] {
        let dir = workdir(&format!("smollm2-{precision}"), &recipe(precision));
        let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
        assert!(o.status.success(), "{}", text(&o));
        let said = text(&o);
        if precision == "bf16" {
            assert!(
                said.contains("precision bf16: products with"),
                "no bf16 products (this test needs an AMX-BF16 CPU): {said}"
            );
            // LoRA: the frozen projections live on only in bf16 (their f32
            // pages are handed back and guarded: any read of them other
            // than a product — the final evaluation, the adapter export —
            // would have stopped the run).
            let released: u64 = said
                .split(" MiB of f32 copies released")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no release reported: {said}"));
            assert!(released > 300, "{said}");
        }
        runs.push(dir.join("runs/recipe/0001"));
    }
    let (f32_losses, bf16_losses) = (train_losses(&runs[0]), train_losses(&runs[1]));
    assert_eq!(f32_losses.len(), 4);
    assert_eq!(bf16_losses.len(), 4);
    for (a, b) in f32_losses.iter().zip(&bf16_losses) {
        // bf16 keeps 8 bits of mantissa: per-product errors of ~0.4 %
        // average out over a loss; a wrong product would not.
        assert!(
            (a - b).abs() / a < 0.01,
            "f32 {f32_losses:?} vs bf16 {bf16_losses:?}"
        );
    }
    assert_ne!(f32_losses, bf16_losses, "bf16 products changed nothing");
    let (f32_val, bf16_val) = (final_loss(&runs[0]), final_loss(&runs[1]));
    assert!(
        (f32_val - bf16_val).abs() / f32_val < 0.01,
        "final val loss f32 {f32_val} vs bf16 {bf16_val}"
    );
    assert!(runs[1].join("adapter/adapter_model.safetensors").is_file());
    eprintln!("train losses f32 {f32_losses:?} bf16 {bf16_losses:?}; val {f32_val} / {bf16_val}");
}

#[test]
fn smollm2_gradient_checkpointing_trains_as_the_ordinary_run() {
    // LoRA dropout on: the recomputed layers must draw the masks of the
    // first forward pass, or the losses part after the first step.
    let recipe = |checkpointing: bool| {
        chatterbot_recipe(
            "chat([user: \"{question}\"])",
            "peft lora { rank = 8, alpha = 16, dropout = 0.1, targets = [q_proj, v_proj, down_proj] }",
            &format!("steps = 3\nbatch = 4\nmax_len = 64\noptimizer = adamw(lr = 1e-3)\ngradient_checkpointing = {checkpointing}"),
            "evaluate { on = val, metrics = [loss] }",
        )
    };
    let mut runs = Vec::new();
    for checkpointing in [false, true] {
        let dir = workdir(
            &format!("smollm2-checkpointing-{checkpointing}"),
            &recipe(checkpointing),
        );
        runs.push(run_recipe(&dir));
    }
    let (plain, recomputed) = (train_losses(&runs[0]), train_losses(&runs[1]));
    assert_eq!(plain.len(), 3);
    assert_eq!(recomputed.len(), 3);
    // Gradients agree to rounding (the order of a few sums differs), so
    // the losses after two updates do too.
    for (a, b) in plain.iter().zip(&recomputed) {
        assert!(
            (a - b).abs() / a < 1e-4,
            "plain {plain:?} vs recomputed {recomputed:?}"
        );
    }
    assert!(
        plain[2] < plain[0],
        "training did not lower the loss: {plain:?}"
    );
    let (a, b) = (final_loss(&runs[0]), final_loss(&runs[1]));
    assert!((a - b).abs() / a < 1e-4, "final val loss {a} vs {b}");
    eprintln!("train losses {plain:?} / {recomputed:?}; val {a} / {b}");
}

/// `packing = true`: the batch's examples share rows, each attending only
/// to itself with positions from 0, so the run trains as the padded one
/// (to f32 rounding) on fewer, fuller rows.
#[test]
fn smollm2_packed_batches_train_as_padded_ones() {
    let recipe = |packing: bool| {
        chatterbot_recipe(
            "chat([user: \"{question}\"])",
            "peft lora { rank = 8, alpha = 16, targets = [q_proj, v_proj] }",
            &format!("steps = 3\nbatch = 8\nmax_len = 96\noptimizer = adamw(lr = 1e-3)\npacking = {packing}"),
            "evaluate { on = val, metrics = [loss] }",
        )
    };
    let mut runs = Vec::new();
    for packing in [false, true] {
        let dir = workdir(&format!("smollm2-packing-{packing}"), &recipe(packing));
        runs.push(run_recipe(&dir));
    }
    let (padded, packed) = (train_losses(&runs[0]), train_losses(&runs[1]));
    assert_eq!(padded.len(), 3);
    assert_eq!(packed.len(), 3);
    for (a, b) in padded.iter().zip(&packed) {
        assert!(
            (a - b).abs() / a < 1e-4,
            "padded {padded:?} vs packed {packed:?}"
        );
    }
    let (a, b) = (final_loss(&runs[0]), final_loss(&runs[1]));
    assert!((a - b).abs() / a < 1e-4, "final val loss {a} vs {b}");
    eprintln!("train losses {padded:?} / {packed:?}; val {a} / {b}");
}

#[test]
fn smollm2_dpo_margin_grows() {
    dpo_margin_grows("f32");
}

/// With `precision = bf16`: the policy's and the reference model's frozen
/// products in bf16 on AMX.
#[test]
#[ignore = "needs AMX-BF16"]
fn smollm2_dpo_margin_grows_with_bf16_products() {
    dpo_margin_grows("bf16");
}

fn dpo_margin_grows(precision: &str) {
    let recipe = format!(
        r#"model policy = gguf("{model}")

dataset prefs = jsonl("{data}") {{
  prompt   = chat([user: "{{prompt}}"])
  chosen   = "{{chosen}}"
  rejected = "{{rejected}}"
  split    = {{ train = 90%, val = 10%, seed = 1 }}
}}

peft lora {{ rank = 8, alpha = 16, targets = [q_proj, v_proj] }}

train {{
  objective  = dpo(beta = 0.1)
  steps      = 8
  batch      = 2
  max_len    = 96
  optimizer  = adamw(lr = 1e-3)
  eval_every = 4
  precision  = {precision}
}}

evaluate {{ on = val, metrics = [loss, margin] }}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        data = root().join("recipes/data/preferences.jsonl").display(),
    );
    let dir = workdir(&format!("smollm2-dpo-{precision}"), &recipe);
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    if precision == "bf16" {
        // The reference model is registered too: more than the policy's
        // 211 frozen weights, its linear weights' f32 copies released.
        let said = text(&o);
        assert!(
            said.contains("precision bf16: products with"),
            "no bf16 products (this test needs an AMX-BF16 CPU): {said}"
        );
        let count: usize = said
            .split("products with ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("weight count");
        assert!(count > 400, "reference not registered: {said}");
    }
    let curve = val_curve(&dir.join("runs/recipe/0001"), "margin");
    assert_eq!(curve.len(), 2, "{curve:?}");
    // LoRA's B starts at zero, so the policy starts equal to the reference
    // (margin 0); training on the pairs makes the chosen answers likelier.
    assert!(
        curve[0].1 > 0.0 && curve[1].1 > curve[0].1,
        "margin did not grow: {curve:?}"
    );
}
