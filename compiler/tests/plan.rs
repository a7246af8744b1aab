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

/// A recipe under `tests/fixtures/good/` with its `peft` block replaced,
/// lowered.
fn lower_with_peft(name: &str, peft: &str) -> Plan {
    common::ensure_world_fixtures();
    let text =
        std::fs::read_to_string(common::fixtures().join("good/causal-tiny-llama.ft")).unwrap();
    let start = text.find("peft ").expect("a peft block");
    let end = start
        + text[start..]
            .find("\n}")
            .map_or_else(|| text[start..].find('\n').unwrap(), |e| e + 2);
    // Beside the original, so its relative paths hold; one file per test.
    let path = common::fixtures().join(format!("good/.{name}.ft"));
    std::fs::write(&path, format!("{}{peft}{}", &text[..start], &text[end..])).unwrap();
    let a = driver::analyze_path(&path, Options::default());
    let _ = std::fs::remove_file(&path);
    assert!(!a.has_errors(), "{peft}: {:#?}", a.diagnostics);
    plan::lower(&a).unwrap()
}

/// LoRA's `layers`, `rank_for` and `alpha_for` reach the adapted modules:
/// only the listed layers, each module with its own rank and alpha.
#[test]
fn lora_layers_and_per_module_rank_and_alpha_reach_the_modules() {
    let plan = lower_with_peft(
        "lora-layers",
        "peft lora {\n  rank = 4\n  alpha = 8\n  targets = [q_proj, v_proj]\n  layers = [1]\n  rank_for = { v_proj = 2 }\n  alpha_for = { v_proj = 3 }\n}",
    );
    let Method::Lora(l) = &plan.method else {
        panic!("not lora")
    };
    let got: Vec<(&str, usize, f64)> = l
        .modules
        .iter()
        .map(|m| (m.target.path.as_str(), m.rank, m.alpha))
        .collect();
    assert_eq!(
        got,
        [
            ("model.layers.1.self_attn.q_proj", 4, 8.0),
            ("model.layers.1.self_attn.v_proj", 2, 3.0),
        ]
    );
}

/// IA3's `layers`: only the listed layers' modules are scaled.
#[test]
fn ia3_layers_reach_the_modules() {
    let plan = lower_with_peft(
        "ia3-layers",
        "peft ia3 {\n  targets = [k_proj, v_proj, down_proj]\n  feedforward = [down_proj]\n  layers = [0]\n}",
    );
    let Method::Ia3 { modules, .. } = &plan.method else {
        panic!("not ia3")
    };
    let mut got: Vec<(&str, bool)> = modules
        .iter()
        .map(|m| (m.target.path.as_str(), m.feedforward))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("model.layers.0.mlp.down_proj", true),
            ("model.layers.0.self_attn.k_proj", false),
            ("model.layers.0.self_attn.v_proj", false),
        ]
    );
}
