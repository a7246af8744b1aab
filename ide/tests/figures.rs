//! The plan figures on the real models (scripts/fetch-assets.sh), against
//! the counts Hugging Face PEFT prints for the same configurations.

mod common;

use ft_formats::ModelFiles;
use ft_ide::figures::shape_of;
use ft_ide::figures::{compute, Method, Target};

fn lora(targets: &[&str]) -> Method {
    Method::Lora {
        rank: 8,
        rank_for: Vec::new(),
        targets: Some(
            targets
                .iter()
                .map(|t| Target::Suffix(t.to_string()))
                .collect(),
        ),
        layers: None,
        dora: false,
    }
}

fn shape(rel: &str) -> ft_ide::figures::Shape {
    let path = common::repo().join(".cache/models").join(rel);
    assert!(
        path.exists(),
        "missing {}: run `scripts/fetch-assets.sh` first",
        path.display()
    );
    let inv = ModelFiles::open(&path).unwrap().inventory().unwrap();
    shape_of(&inv)
}

#[test]
fn minilm_lora_query_value_with_two_labels() {
    let s = shape("all-MiniLM-L6-v2");
    let f = compute(&s, &lora(&["query", "value"]), Some(2));
    assert_eq!(f.trainable, 74_498);
    assert_eq!(f.modules, 12);
    assert_eq!(f.total, s.params + 74_498);
}

#[test]
fn smollm2_lora_q_v() {
    let s = shape("SmolLM2-135M-Instruct.Q4_1.gguf");
    let f = compute(&s, &lora(&["q_proj", "v_proj"]), None);
    assert_eq!(f.trainable, 460_800);
    assert_eq!(f.modules, 60);
    eprintln!(
        "SmolLM2: {} of {} parameters trainable",
        f.trainable, f.total
    );
}
