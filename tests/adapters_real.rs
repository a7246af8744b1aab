//! A model's `adapter` and DPO's named `reference`, on SmolLM2 and the
//! chatterbot data: a short supervised run makes an adapter; a DPO run
//! against that adapter as its reference starts away from ln 2 (policy
//! and reference differ), one whose policy continues from the adapter
//! starts at ln 2 against the policy as it starts and away from it against
//! the plain model; and `ft eval` applies a model's adapter.

mod common;

use common::{
    asset, chatterbot_recipe, final_loss, ft, root, run_recipe, text, train_losses, workdir,
};

/// A one-step DPO recipe on the preference pairs (no evaluation: the first
/// step's loss is what is compared): `models` declares the models,
/// `objective` names the reference (or not).
fn dpo_recipe(models: &str, objective: &str) -> String {
    format!(
        r#"{models}

dataset prefs = jsonl("{data}") {{
  prompt   = chat([user: "{{prompt}}"])
  chosen   = "{{chosen}}"
  rejected = "{{rejected}}"
  split    = {{ train = 100% }}
}}

peft lora {{ rank = 8, alpha = 16, targets = [q_proj, v_proj] }}

train {{
  model     = policy
  objective = {objective}
  steps     = 1
  batch     = 2
  max_len   = 96
  optimizer = adamw(lr = 1e-3)
}}
"#,
        data = root().join("recipes/data/preferences.jsonl").display(),
    )
}

#[test]
fn smollm2_adapters_warm_start_and_serve_as_dpo_references() {
    let model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    // The adapter: a few supervised steps (a large rate, so it moves).
    let sft = chatterbot_recipe(
        "chat([user: \"{question}\"])",
        "peft lora { rank = 8, alpha = 16, targets = [q_proj, v_proj] }",
        "steps = 4\nbatch = 4\nmax_len = 64\noptimizer = adamw(lr = 5e-3)",
        "evaluate { on = val, metrics = [loss] }",
    );
    let sft_dir = workdir("adapters-sft", &sft);
    let sft_run = run_recipe(&sft_dir);
    let adapter = sft_run.join("adapter");
    let adapter = adapter.display();

    // `ft eval` applies the model's own adapter: the run's final loss.
    let with_adapter = sft.replace(
        &format!("model base = gguf(\"{model}\")"),
        &format!("model base = gguf(\"{model}\") {{\n  adapter = \"{adapter}\"\n}}"),
    );
    let eval_dir = workdir("adapters-eval", &with_adapter);
    let o = ft(
        &eval_dir,
        &[
            "eval",
            "recipe.ft",
            "--split",
            "val",
            "--metric",
            "loss",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let evaluated = v[0]["metrics"]["loss"].as_f64().unwrap();
    let trained = final_loss(&sft_run);
    assert!(
        (evaluated - trained).abs() <= 1e-4 * trained,
        "ft eval with the model's adapter: {evaluated}; the run's own: {trained}"
    );

    let ln2 = std::f64::consts::LN_2;
    let plain = format!("model policy = gguf(\"{model}\")");
    let tuned =
        |name: &str| format!("model {name} = gguf(\"{model}\") {{\n  adapter = \"{adapter}\"\n}}");
    // (run, models, objective, whether policy and reference start equal —
    // every margin 0, the first loss ln 2 — and what it shows).
    let cases = [
        (
            "adapters-dpo-self",
            plain.clone(),
            "dpo(beta = 0.1)",
            true,
            "LoRA starts as the identity: the policy is its own reference",
        ),
        (
            "adapters-dpo-named",
            format!("{plain}\n{}", tuned("sft")),
            "dpo(beta = 0.1, reference = sft)",
            false,
            "the named reference carries the adapter",
        ),
        (
            "adapters-dpo-continued",
            tuned("policy"),
            "dpo(beta = 0.1)",
            true,
            "the default reference is the policy as it starts, adapter included",
        ),
        (
            "adapters-dpo-continued-vs-plain",
            format!("{}\nmodel base = gguf(\"{model}\")", tuned("policy")),
            "dpo(beta = 0.1, reference = base)",
            false,
            "the policy starts from its adapter, not the plain model",
        ),
    ];
    for (name, models, objective, equal, shows) in &cases {
        let losses = train_losses(&run_recipe(&workdir(name, &dpo_recipe(models, objective))));
        assert_eq!(losses.len(), 1, "{name}: {losses:?}");
        let off = (losses[0] - ln2).abs();
        if *equal {
            assert!(off < 1e-5, "{shows}: first loss {}", losses[0]);
        } else {
            assert!(off > 1e-3, "{shows}: first loss {}", losses[0]);
        }
        eprintln!("{name}: first DPO loss {}", losses[0]);
    }
    eprintln!("eval {evaluated} vs {trained}");
}

/// `evaluate.max_new_tokens` bounds what the generation metrics read: the
/// answers cut at one new token score another ROUGE-L than at four.
#[test]
fn generation_metrics_read_at_most_max_new_tokens() {
    let rouge = |n: usize| {
        let recipe = chatterbot_recipe(
            "chat([user: \"{question}\"])",
            "peft lora { rank = 4, targets = [q_proj, v_proj] }",
            "steps = 1\nbatch = 2\nmax_len = 64",
            &format!("evaluate {{ on = val, metrics = [rouge_l], max_new_tokens = {n} }}"),
        );
        let dir = workdir(&format!("max-new-tokens-{n}"), &recipe);
        let o = ft(&dir, &["eval", "recipe.ft", "--format", "json"]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["metrics"]["rouge_l"].as_f64().unwrap()
    };
    let (short, long) = (rouge(1), rouge(4));
    assert!(
        (short - long).abs() > 1e-6,
        "1 token {short}, 4 tokens {long}"
    );
}
