//! Lowering: every recipe in recipes/ becomes a Plan (snapshotted as JSON,
//! machine paths replaced), and the figures on the real models equal
//! PEFT's counts. Needs the assets of `scripts/fetch-assets.sh`.

mod common;

use ft_compiler::driver::{self, Options};
use ft_compiler::plan::{self, summary};
use ft_plan::{Method, Plan};

fn lower(name: &str) -> (Plan, driver::Analysis) {
    let path = common::repo_root().join("recipes").join(name);
    let a = driver::analyze_path(&path, Options::default());
    assert!(!a.has_errors(), "{name}: {:#?}", a.diagnostics);
    let plan = plan::lower(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
    (plan, a)
}

fn portable_json(plan: &Plan) -> String {
    let root = common::repo_root();
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    plan.to_json()
        .replace(&root.display().to_string(), "<repo>")
}

#[test]
fn every_recipe_lowers_and_round_trips() {
    for entry in std::fs::read_dir(common::repo_root().join("recipes")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "ft") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (plan, _) = lower(&name);
        let back = Plan::from_json(&plan.to_json()).unwrap();
        assert_eq!(back, plan, "{name}: the Plan does not survive JSON");
        insta::assert_snapshot!(name.replace(".ft", ""), portable_json(&plan));
    }
}

#[test]
fn minilm_lora_figures_equal_peft() {
    let (plan, a) = lower("sentiment-minilm.ft");
    let Method::Lora(l) = &plan.method else {
        panic!("not lora")
    };
    assert_eq!(l.modules.len(), 12);
    assert!(l.modules.iter().all(|m| m.rank == 8 && m.alpha == 16.0));
    assert_eq!(l.modules_to_save, vec!["classifier".to_string()]);
    let inv = a.world.as_ref().unwrap().models[0]
        .inventory
        .as_ref()
        .unwrap();
    let s = summary::summarize(&plan, inv);
    assert_eq!(s.figures.trainable, 74_498);
    assert_eq!(s.figures.head, 770);
}

#[test]
fn smollm2_lora_figures_equal_peft() {
    let (plan, a) = lower("faq-smollm2.ft");
    let inv = a.world.as_ref().unwrap().models[0]
        .inventory
        .as_ref()
        .unwrap();
    let s = summary::summarize(&plan, inv);
    assert_eq!(s.figures.trainable, 460_800);
    let Method::Lora(l) = &plan.method else {
        panic!("not lora")
    };
    assert_eq!(l.modules.len(), 60);
    assert_eq!(l.modules[0].target.path, "model.layers.0.self_attn.q_proj");
    assert_eq!(l.modules[1].target.out_features, 192);
}
