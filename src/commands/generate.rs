//! `ft generate MODEL --prompt "…"`: text generation with a Llama-family
//! model (a Hugging Face folder, a GGUF file, or a recipe's trained model
//! with its adapter), on the CPU or the device asked for.
//!
//! The prompt goes through the model's chat template (as a single user turn,
//! with the assistant prompt appended) unless `--no-chat`. Tokens are printed
//! as they are produced; special tokens such as `<|im_end|>` are not printed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::recipe::ModelArg;
use super::BackendArg;
use ft_runtime::generate::{render_chat_template, ChatMessage, SamplingOptions};
use ft_runtime::infer::{self, InferError};

#[derive(clap::Args)]
pub struct Args {
    /// Model: a Hugging Face folder (config.json + model.safetensors), a
    /// .gguf file, or a recipe (.ft) whose trained model is used with its
    /// `adapter`, `tokenizer` and `chat_template`
    model: PathBuf,
    /// The prompt (a user message, or raw text with --no-chat)
    #[arg(long)]
    prompt: String,
    /// Maximum number of new tokens
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature; 0 means greedy decoding
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling: keep the most likely tokens up to this total probability
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampler (the same seed reproduces the same text)
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Feed the prompt as raw text instead of through the chat template
    #[arg(long)]
    no_chat: bool,
    /// A trained adapter (ft's or Hugging Face PEFT's) to apply to the
    /// model (replaces a recipe's `adapter`)
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The device to run the model on (default: a recipe's `backend`, else
    /// the CPU)
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        return fail(format!(
            "--temperature must be ≥ 0, got {}",
            args.temperature
        ));
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        return fail(format!("--top-p must be in (0, 1], got {}", args.top_p));
    }
    let marg = match ModelArg::resolve(&args.model, args.adapter.clone()) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if let Err(e) = infer::causal_lm_config(&marg.path) {
        return fail(e);
    }
    let tok = match marg.tokenizer() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let text = if args.no_chat {
        args.prompt.clone()
    } else {
        let Some(template) = tok.chat_template.as_deref() else {
            return fail(format!(
                "{}: the model has no chat template; pass --no-chat to use the prompt as raw text",
                args.model.display()
            ));
        };
        let msgs = [ChatMessage {
            role: "user".into(),
            content: args.prompt.clone(),
        }];
        match render_chat_template(
            template,
            &msgs,
            true,
            tok.bos_token.as_deref(),
            tok.eos_token.as_deref(),
        ) {
            Ok(t) => t,
            Err(e) => return fail(format!("{}: {e}", args.model.display())),
        }
    };
    let ids = match tok.tokenizer.encode(text.as_str(), true) {
        Ok(e) => e.get_ids().to_vec(),
        Err(e) => return fail(format!("cannot tokenize the prompt: {e}")),
    };
    if ids.is_empty() {
        return fail("the prompt is empty");
    }
    let opts = SamplingOptions {
        max_new_tokens: args.max_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        stop_ids: tok.eos_token_ids.clone(),
    };
    // Decode the whole answer each step and print what is new, so that a
    // character split over several byte-level tokens is printed once whole.
    let mut out_ids = Vec::new();
    let mut printed = 0usize;
    let mut stdout = std::io::stdout();
    let device = marg.device(args.backend);
    let on_token = &mut |id| {
        out_ids.push(id);
        if let Ok(text) = tok.tokenizer.decode(&out_ids, true) {
            if text.len() > printed && text.is_char_boundary(printed) && !text.ends_with('\u{fffd}')
            {
                let _ = stdout.write_all(&text.as_bytes()[printed..]);
                let _ = stdout.flush();
                printed = text.len();
            }
        }
    };
    match infer::generate(
        device,
        &marg.path,
        marg.adapter.as_deref(),
        &ids,
        &opts,
        on_token,
    ) {
        Ok(_) => {}
        Err(e @ InferError::Adapter(_)) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        Err(e) => return fail(e),
    }
    if let Ok(text) = tok.tokenizer.decode(&out_ids, true) {
        if text.len() > printed && text.is_char_boundary(printed) {
            let _ = stdout.write_all(&text.as_bytes()[printed..]);
        }
    }
    println!();
    ExitCode::SUCCESS
}
