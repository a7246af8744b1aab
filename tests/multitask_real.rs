//! A mixture of two real tasks (chatterbot answers, ACLSum approach
//! summaries) trained through a two-stage curriculum on SmolLM2, end to
//! end: the stages run in order for their steps at their learning rates,
//! both tasks are drawn, and every validation metric — the loss and the
//! generation metrics — is reported per task as well as overall.

mod common;

use common::{asset, final_metrics, ft, text, workdir};

#[test]
fn smollm2_mixture_through_a_curriculum_reports_every_metric_per_task() {
    let recipe = format!(
        r#"model base = gguf("{model}")

dataset faq = yaml_pairs("{chatterbot}/*.yml") {{
  prompt     = chat([user: "{{question}}"])
  completion = "{{answer}}"
  split      = {{ train = 85%, val = 15%, seed = 7, key = question }}
  filter     = len(question) < 20 and len(answer) < 40
  on_bad_row = skip
}}

dataset papers = splits(
  train = jsonl("{aclsum}/train.jsonl"),
  val   = jsonl("{aclsum}/val.jsonl"),
) {{
  prompt     = "Approach of \"{{title}}\":"
  completion = " {{summary.approach}}"
  filter     = len(summary.approach) < 160
  truncate   = drop
}}

mixture tasks {{ faq = 3, papers = 1, temperature = 2.0 }}

curriculum {{
  order = tokens(prompt) ascending
  stage short {{ data = tasks where tokens(prompt) < 24, steps = 2 }}
  stage all   {{ data = tasks, steps = 2, lr = 2e-4 }}
}}

peft lora {{ rank = 8, alpha = 16, targets = [q_proj, v_proj] }}

train {{
  batch     = 4
  max_len   = 96
  optimizer = adamw(lr = 1e-3)
}}

evaluate {{ on = val, metrics = [loss, exact_match, rouge_l], max_new_tokens = 6 }}
"#,
        model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        chatterbot = asset("data/chatterbot"),
        aclsum = asset("data/aclsum"),
    );
    let dir = workdir("multitask-curriculum", &recipe);
    let o = ft(&dir, &["run", "recipe.ft", "--runs", "runs", "--no-cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.join("runs/recipe/0001");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The stages in order, two steps each, the second at its own rate.
    let train: Vec<&serde_json::Value> = lines.iter().filter(|v| v["split"] == "train").collect();
    let stages: Vec<&str> = train.iter().map(|v| v["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["short", "short", "all", "all"], "{train:?}");
    let lr = |i: usize| train[i]["lr"].as_f64().unwrap();
    assert!(lr(0) > 2e-4 && lr(3) <= 2e-4, "{train:?}");
    // Every metric overall and for each task.
    let last = final_metrics(&run);
    let per_task = lines
        .iter()
        .rev()
        .find(|v| v["final"] == true)
        .map(|v| v["per_task"].clone())
        .unwrap();
    for metric in ["loss", "exact_match", "rouge_l"] {
        assert!(last[metric].is_number(), "{metric} overall: {last}");
        for task in ["faq", "papers"] {
            let v = per_task[task][metric].as_f64();
            assert!(
                v.is_some_and(f64::is_finite),
                "{metric} of {task}: {per_task}"
            );
        }
    }
    // The overall loss lies between the tasks' (a token-weighted mean).
    let (a, b) = (
        per_task["faq"]["loss"].as_f64().unwrap(),
        per_task["papers"]["loss"].as_f64().unwrap(),
    );
    let all = last["loss"].as_f64().unwrap();
    assert!(
        all >= a.min(b) - 1e-9 && all <= a.max(b) + 1e-9,
        "{a} {b} {all}"
    );
    eprintln!("per task: {per_task}");
}
