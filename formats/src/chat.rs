//! Chat templates: rendering a Hugging Face chat template (Jinja) the way
//! transformers' `apply_chat_template` does. Lives here, without Burn, so the
//! data pipeline renders training prompts with exactly the code generation
//! uses.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Renders a Hugging Face chat template (Jinja) the way transformers does:
/// variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`,
/// the `raise_exception` function, Python string methods (`.strip()`, ...),
/// and `trim_blocks`/`lstrip_blocks` on.
pub fn render_chat_template(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos_token: Option<&str>,
    eos_token: Option<&str>,
) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", template)
        .map_err(|e| format!("the chat template does not parse: {e}"))?;
    let ctx = minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token.unwrap_or(""),
        eos_token => eos_token.unwrap_or(""),
    };
    env.get_template("chat")
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("rendering the chat template failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_template_renders_like_transformers() {
        let t = "{% for m in messages %}<|{{ m.role }}|>{{ m.content.strip() }}\n{% endfor %}\
                 {% if add_generation_prompt %}<|assistant|>{% endif %}";
        let msgs = [ChatMessage {
            role: "user".into(),
            content: "  hi ".into(),
        }];
        assert_eq!(
            render_chat_template(t, &msgs, true, None, None).unwrap(),
            "<|user|>hi\n<|assistant|>"
        );
        let err = render_chat_template(
            "{{ raise_exception('no system') }}",
            &msgs,
            true,
            None,
            None,
        );
        assert!(err.unwrap_err().contains("no system"));
    }
}
