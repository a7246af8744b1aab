//! A model block's `chat_template` and `tokenizer` replace the model's own,
//! on SmolLM2 and the chatterbot pairs: `ft data` shows the examples the
//! run trains on rendered with the recipe's template and tokenized with
//! the recipe's tokenizer, and `ft generate RECIPE` prompts through the
//! recipe's template.

mod common;

use common::{asset, chatterbot_recipe, ft, text, workdir};

const TEMPLATE: &str = "{% for m in messages %}<<{{ m.role }}>> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<<assistant>>\n{% endif %}";

fn recipe(model_block: &str) -> String {
    let model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    chatterbot_recipe(
        "chat([user: \"{question}\"])",
        "peft lora { rank = 4, targets = [q_proj, v_proj] }",
        "steps = 1\nbatch = 2\nmax_len = 64",
        "",
    )
    .replace(
        &format!("model base = gguf(\"{model}\")"),
        &format!("model base = gguf(\"{model}\") {{\n{model_block}\n}}"),
    )
}

/// `ft data`'s output for a recipe: (the report, the tokens of the train
/// split).
fn data(name: &str, recipe: &str) -> (String, u64) {
    let dir = workdir(name, recipe);
    let o = ft(&dir, &["data", "recipe.ft"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let tokens = out
        .lines()
        .find(|l| l.trim_start().starts_with("split train"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "tokens")?;
            words[i - 1].parse().ok()
        })
        .unwrap_or_else(|| panic!("no train tokens in:\n{out}"));
    (out, tokens)
}

#[test]
fn chat_template_and_tokenizer_replace_the_models() {
    let (own, own_tokens) = data("overrides-own", &recipe(""));
    assert!(own.contains("<|im_start|>user"), "{own}");

    let template = format!("  chat_template = {:?}", TEMPLATE);
    let (templated, _) = data("overrides-template", &recipe(&template));
    assert!(templated.contains("<<user>> "), "{templated}");
    assert!(!templated.contains("<|im_start|>"), "{templated}");

    // MiniLM's WordPiece tokenizer splits the same texts differently.
    let tokenizer = format!(
        "  tokenizer = \"{}/tokenizer.json\"",
        asset("models/all-MiniLM-L6-v2")
    );
    let (_, other_tokens) = data("overrides-tokenizer", &recipe(&tokenizer));
    assert_ne!(own_tokens, other_tokens);

    // `ft generate RECIPE` prompts through the recipe's template: the same
    // greedy answer as the rendered prompt given raw.
    let dir = workdir("overrides-generate", &recipe(&template));
    let question = "What is your name?";
    let via_recipe = ft(
        &dir,
        &[
            "generate",
            "recipe.ft",
            "--prompt",
            question,
            "--max-tokens",
            "6",
        ],
    );
    assert!(via_recipe.status.success(), "{}", text(&via_recipe));
    let rendered = format!("<<user>> {question}\n<<assistant>>\n");
    let raw = ft(
        &dir,
        &[
            "generate",
            &asset("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "--no-chat",
            "--prompt",
            &rendered,
            "--max-tokens",
            "6",
        ],
    );
    assert!(raw.status.success(), "{}", text(&raw));
    assert_eq!(via_recipe.stdout, raw.stdout);
}

/// A template whose assistant prefix ends in a space: the tokenizer merges
/// that space into the answer's first token, which is still trained.
#[test]
fn an_assistant_prefix_ending_in_a_space_still_trains_the_answer() {
    let template = "{% for m in messages %}<<{{ m.role }}>> {{ m.content }}{% if m.role == 'assistant' %}<|im_end|>{% endif %}\n{% endfor %}{% if add_generation_prompt %}<<assistant>> {% endif %}";
    let model = asset("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let recipe = format!(
        r#"model base = gguf("{model}") {{
  chat_template = {template:?}
}}

dataset turns = jsonl("turns.jsonl") {{
  messages = chat([user: "{{q}}", assistant: "{{a}}"])
}}

peft lora {{ rank = 4, targets = [q_proj, v_proj] }}

train {{
  steps   = 1
  batch   = 1
  max_len = 64
}}
"#
    );
    let dir = workdir("overrides-template-space", &recipe);
    std::fs::write(
        dir.join("turns.jsonl"),
        "{\"q\": \"Hello\", \"a\": \"Hi there\"}\n",
    )
    .unwrap();
    let o = ft(&dir, &["data", "recipe.ft"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("[[ Hi there<|im_end|>"), "{out}");
}
