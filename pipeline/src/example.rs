//! From a row to an example: the dataset's parts rendered to text (plain
//! templates or the model's chat template), few-shot examples prepended,
//! then tokenized with a per-token loss mask.
//!
//! Prompt and completion are tokenized separately and concatenated, so the
//! boundary of the loss mask is exact whatever the tokenizer's merges; the
//! model's EOS id is appended to every completion and trained. Whole
//! conversations (`messages`) are rendered once and tokenized with byte
//! offsets; a token is trained when it starts inside an assistant turn's
//! span (the turn's text and its end-of-turn marker, without the trailing
//! newline), found by rendering the conversation up to each assistant turn
//! with and without the generation prompt.

use crate::tokenize::TextTokenizer;
use crate::PipelineError;
use ft_data::render::{ChatTurn, EvalError, Fields, NoTokens, Text, TokenCounter};
use ft_formats::chat::{render_chat_template, ChatMessage};
use ft_plan::{Head, Objective};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A prompt as rendered text: plain, or chat turns not yet templated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PromptText {
    Plain(String),
    Chat(Vec<ChatMessage>),
}

/// The parts of one row, rendered. Serialized when few-shot examples make
/// a dataset's rows wait on disk for the split assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RenderedRow {
    /// Causal LM: prompt and completion.
    Completion {
        prompt: PromptText,
        completion: String,
    },
    /// A whole conversation, loss on assistant turns.
    Messages(Vec<ChatMessage>),
    /// Classification.
    Classify { input: String, label: usize },
    /// DPO.
    Pair {
        prompt: PromptText,
        chosen: String,
        rejected: String,
    },
}

/// Why a row cannot become an example. Counted per [`RowProblem::key`]
/// when `on_bad_row = skip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    Eval(EvalError),
    Empty { part: &'static str },
    UnknownLabel { label: String, labels: Vec<String> },
    NotMessages { field: String },
}

impl RowProblem {
    /// The reason's name in the report's per-reason counts.
    pub fn key(&self) -> String {
        match self {
            RowProblem::Eval(EvalError::MissingField { field }) => {
                format!("missing field `{field}`")
            }
            RowProblem::Eval(EvalError::WrongType { what, .. }) => format!("wrong type: {what}"),
            RowProblem::Eval(e) => e.to_string(),
            RowProblem::Empty { part } => format!("empty {part}"),
            RowProblem::UnknownLabel { label, .. } => format!("unknown label `{label}`"),
            RowProblem::NotMessages { field } => format!("`{field}` is not a message list"),
        }
    }
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowProblem::Eval(e) => write!(f, "{e}"),
            RowProblem::Empty { part } => write!(f, "the {part} is empty"),
            RowProblem::UnknownLabel { label, labels } => {
                write!(
                    f,
                    "label `{label}` is not one of the head's labels {labels:?}"
                )
            }
            RowProblem::NotMessages { field } => write!(
                f,
                "field `{field}` is not a list of {{role, content}} messages"
            ),
        }
    }
}

impl From<EvalError> for RowProblem {
    fn from(e: EvalError) -> Self {
        RowProblem::Eval(e)
    }
}

/// What kind of examples a dataset makes, decided once from the objective
/// and the parts it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExampleKind {
    Completion,
    Messages,
    Classify,
    Pair,
}

pub fn example_kind(
    name: &str,
    fields: &Fields,
    objective: &Objective,
) -> Result<ExampleKind, PipelineError> {
    let need = |what: &str| {
        PipelineError::Plan(format!(
            "dataset `{name}` needs {what} for the {objective:?} objective"
        ))
    };
    match objective {
        Objective::Classify => match (&fields.input, &fields.label) {
            (Some(_), Some(_)) => Ok(ExampleKind::Classify),
            _ => Err(need("`input` and `label`")),
        },
        Objective::Dpo { .. } => match (&fields.prompt, &fields.chosen, &fields.rejected) {
            (Some(_), Some(_), Some(_)) => Ok(ExampleKind::Pair),
            _ => Err(need("`prompt`, `chosen` and `rejected`")),
        },
        Objective::Sft => {
            if fields.messages.is_some() {
                Ok(ExampleKind::Messages)
            } else if fields.prompt.is_some() && fields.completion.is_some() {
                Ok(ExampleKind::Completion)
            } else {
                Err(need("`prompt` and `completion`, or `messages`"))
            }
        }
        // PPO generates its own responses: a prompt is enough (a
        // completion, when declared, is kept as the reference only).
        Objective::Ppo { .. } => {
            if fields.messages.is_some() {
                Ok(ExampleKind::Messages)
            } else if fields.prompt.is_some() {
                Ok(ExampleKind::Completion)
            } else {
                Err(need("`prompt` (or `messages`)"))
            }
        }
    }
}

/// Render a plain text part (a template or an expression).
pub fn render_text(text: &Text, row: &Value) -> Result<String, RowProblem> {
    match text {
        Text::Template(t) => Ok(t.render(row)?),
        Text::Expr(e) => Ok(e.eval(row, &NoTokens)?.to_text()),
        Text::Chat(turns) => Ok(render_turns(turns, row)?
            .into_iter()
            .map(|m| m.content)
            .collect::<Vec<_>>()
            .join("\n")),
        Text::ChatField(f) => Ok(chat_field(f, row)?
            .into_iter()
            .map(|m| m.content)
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

fn render_turns(turns: &[ChatTurn], row: &Value) -> Result<Vec<ChatMessage>, RowProblem> {
    turns
        .iter()
        .map(|t| {
            Ok(ChatMessage {
                role: t.role.clone(),
                content: t.content.render(row)?,
            })
        })
        .collect()
}

fn chat_field(field: &str, row: &Value) -> Result<Vec<ChatMessage>, RowProblem> {
    let v = ft_data::get_path(row, field).ok_or_else(|| {
        RowProblem::Eval(EvalError::MissingField {
            field: field.to_owned(),
        })
    })?;
    let not = || RowProblem::NotMessages {
        field: field.to_owned(),
    };
    let list = v.as_array().ok_or_else(not)?;
    list.iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str).ok_or_else(not)?;
            let content = m.get("content").and_then(Value::as_str).ok_or_else(not)?;
            Ok(ChatMessage {
                role: role.to_owned(),
                content: content.to_owned(),
            })
        })
        .collect()
}

fn render_prompt(text: &Text, row: &Value) -> Result<PromptText, RowProblem> {
    Ok(match text {
        Text::Chat(turns) => PromptText::Chat(render_turns(turns, row)?),
        Text::ChatField(f) => PromptText::Chat(chat_field(f, row)?),
        other => PromptText::Plain(render_text(other, row)?),
    })
}

fn non_empty(s: String, part: &'static str) -> Result<String, RowProblem> {
    if s.trim().is_empty() {
        Err(RowProblem::Empty { part })
    } else {
        Ok(s)
    }
}

/// The label text of a row (for stratifying by the derived label too).
pub fn label_text(fields: &Fields, row: &Value) -> Result<String, RowProblem> {
    match &fields.label {
        Some(t) => non_empty(render_text(t, row)?, "label"),
        None => Err(RowProblem::Empty { part: "label" }),
    }
}

/// Render a row's parts for its kind of example.
pub fn render_row(
    kind: ExampleKind,
    fields: &Fields,
    head: &Head,
    row: &Value,
) -> Result<RenderedRow, RowProblem> {
    let part = |t: &Option<Text>, name: &'static str| -> Result<String, RowProblem> {
        non_empty(
            render_text(t.as_ref().expect("checked by example_kind"), row)?,
            name,
        )
    };
    Ok(match kind {
        ExampleKind::Completion => RenderedRow::Completion {
            prompt: render_prompt(fields.prompt.as_ref().expect("checked"), row)?,
            // Only PPO declares no completion (example_kind checks).
            completion: match &fields.completion {
                Some(_) => part(&fields.completion, "completion")?,
                None => String::new(),
            },
        },
        ExampleKind::Messages => {
            let msgs = match fields.messages.as_ref().expect("checked") {
                Text::Chat(turns) => render_turns(turns, row)?,
                Text::ChatField(f) => chat_field(f, row)?,
                other => vec![ChatMessage {
                    role: "user".into(),
                    content: render_text(other, row)?,
                }],
            };
            if !msgs
                .iter()
                .any(|m| m.role == "assistant" && !m.content.trim().is_empty())
            {
                return Err(RowProblem::Empty {
                    part: "assistant turn",
                });
            }
            RenderedRow::Messages(msgs)
        }
        ExampleKind::Classify => {
            let label = label_text(fields, row)?;
            let labels = match head {
                Head::Classify { labels } => labels,
                Head::CausalLm => {
                    return Err(RowProblem::UnknownLabel {
                        label,
                        labels: Vec::new(),
                    })
                }
            };
            let index = labels.iter().position(|l| *l == label).ok_or_else(|| {
                RowProblem::UnknownLabel {
                    label: label.clone(),
                    labels: labels.clone(),
                }
            })?;
            RenderedRow::Classify {
                input: part(&fields.input, "input")?,
                label: index,
            }
        }
        ExampleKind::Pair => RenderedRow::Pair {
            prompt: render_prompt(fields.prompt.as_ref().expect("checked"), row)?,
            chosen: part(&fields.chosen, "chosen completion")?,
            rejected: part(&fields.rejected, "rejected completion")?,
        },
    })
}

impl RenderedRow {
    /// The text compared across splits by the leakage report.
    pub fn leak_text(&self) -> String {
        match self {
            RenderedRow::Completion { prompt, completion } => {
                format!("{} {completion}", prompt_plain(prompt))
            }
            RenderedRow::Messages(m) => m
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            RenderedRow::Classify { input, .. } => input.clone(),
            RenderedRow::Pair { prompt, chosen, .. } => {
                format!("{} {chosen}", prompt_plain(prompt))
            }
        }
    }

    /// The prompt and the completion, for use as a few-shot example.
    pub fn as_shot(&self) -> Option<(&PromptText, &str)> {
        match self {
            RenderedRow::Completion { prompt, completion } => Some((prompt, completion)),
            RenderedRow::Pair { prompt, chosen, .. } => Some((prompt, chosen)),
            _ => None,
        }
    }

    pub fn prompt_mut(&mut self) -> Option<&mut PromptText> {
        match self {
            RenderedRow::Completion { prompt, .. } | RenderedRow::Pair { prompt, .. } => {
                Some(prompt)
            }
            _ => None,
        }
    }
}

fn prompt_plain(p: &PromptText) -> String {
    match p {
        PromptText::Plain(s) => s.clone(),
        PromptText::Chat(m) => m
            .iter()
            .filter(|m| m.role != "system")
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Prepend few-shot examples to a prompt. Plain prompts get each shot's
/// prompt and completion followed by a blank line; chat prompts get each
/// shot as its user turns and an assistant answer, after the system turns.
pub fn prepend_shots(prompt: &mut PromptText, shots: &[(&PromptText, &str)]) {
    match prompt {
        PromptText::Plain(p) => {
            let mut text = String::new();
            for (sp, sc) in shots {
                text.push_str(&prompt_plain(sp));
                text.push_str(sc);
                text.push_str("\n\n");
            }
            text.push_str(p);
            *p = text;
        }
        PromptText::Chat(msgs) => {
            let system = msgs.iter().take_while(|m| m.role == "system").count();
            let mut inserted = Vec::new();
            for (sp, sc) in shots {
                match sp {
                    PromptText::Chat(sm) => {
                        inserted.extend(sm.iter().filter(|m| m.role != "system").cloned())
                    }
                    PromptText::Plain(s) => inserted.push(ChatMessage {
                        role: "user".into(),
                        content: s.clone(),
                    }),
                }
                inserted.push(ChatMessage {
                    role: "assistant".into(),
                    content: (*sc).to_owned(),
                });
            }
            msgs.splice(system..system, inserted);
        }
    }
}

/// A token sequence with its loss mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub ids: Vec<u32>,
    /// Per token: whether the loss is taken on it (it is a target).
    pub trained: Vec<bool>,
    /// Tokens at the start that form the prompt (the part truncation cuts
    /// from the left); for generation, the ids the model is given.
    pub prompt_len: usize,
}

impl Sequence {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn trained_tokens(&self) -> usize {
        self.trained.iter().filter(|&&t| t).count()
    }
}

fn chat_text(
    tok: &TextTokenizer,
    msgs: &[ChatMessage],
    generation_prompt: bool,
) -> Result<String, PipelineError> {
    let template = tok.chat_template.as_deref().ok_or_else(|| {
        PipelineError::Tokenizer(
            "chat(…) needs a chat template, and the model has none (set `chat_template`)".into(),
        )
    })?;
    render_chat_template(
        template,
        msgs,
        generation_prompt,
        tok.bos_token.as_deref(),
        tok.eos_token.as_deref(),
    )
    .map_err(PipelineError::ChatTemplate)
}

fn prompt_ids(tok: &TextTokenizer, prompt: &PromptText) -> Result<Vec<u32>, PipelineError> {
    match prompt {
        PromptText::Plain(p) => tok.encode(p, true),
        // The template writes its own special tokens (BOS included).
        PromptText::Chat(m) => tok.encode(&chat_text(tok, m, true)?, false),
    }
}

fn eos(tok: &TextTokenizer) -> Result<u32, PipelineError> {
    tok.eos_id.ok_or_else(|| {
        PipelineError::Tokenizer(
            "the tokenizer has no EOS token; completions must end with one".into(),
        )
    })
}

/// `prompt` untrained, then `completion` and EOS trained. The EOS check of
/// the issue: the last token is the EOS and it is trained.
fn completion_seq(
    tok: &TextTokenizer,
    prompt: &[u32],
    completion: &str,
) -> Result<Sequence, PipelineError> {
    let mut ids = prompt.to_vec();
    let mut trained = vec![false; ids.len()];
    let c = tok.encode(completion, false)?;
    trained.extend(std::iter::repeat_n(true, c.len() + 1));
    ids.extend(c);
    ids.push(eos(tok)?);
    debug_assert!(trained.last() == Some(&true));
    Ok(Sequence {
        ids,
        trained,
        prompt_len: prompt.len(),
    })
}

/// Tokenize a whole conversation with the loss on assistant turns.
fn messages_seq(tok: &TextTokenizer, msgs: &[ChatMessage]) -> Result<Sequence, PipelineError> {
    let full = chat_text(tok, msgs, false)?;
    let mut spans = Vec::new();
    for (k, m) in msgs.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let before = chat_text(tok, &msgs[..k], true)?;
        let through = chat_text(tok, &msgs[..=k], false)?;
        if !through.starts_with(&before) || !full.starts_with(&through) {
            return Err(PipelineError::ChatTemplate(
                "the chat template renders earlier turns differently as the conversation grows, \
                 so assistant tokens cannot be located"
                    .into(),
            ));
        }
        let end = before.len() + through[before.len()..].trim_end().len();
        spans.push((before.len(), end));
    }
    let (ids, offsets) = tok.encode_with_offsets(&full)?;
    // A token is trained when it overlaps an assistant turn: one that
    // straddles the turn's start (a template whose assistant prefix ends in
    // a space, merged into the answer's first token) is the answer's.
    let trained: Vec<bool> = offsets
        .iter()
        .map(|&(s, e)| e > s && spans.iter().any(|&(a, b)| s < b && e > a))
        .collect();
    let last_start = spans.last().map_or(0, |s| s.0);
    let prompt_len = offsets
        .iter()
        .position(|&(_, e)| e > last_start)
        .unwrap_or(ids.len());
    let eos = eos(tok)?;
    if !ids.iter().zip(&trained).any(|(&id, &t)| t && id == eos) {
        return Err(PipelineError::EosNotTrained {
            eos: tok.decode(&[eos]),
        });
    }
    Ok(Sequence {
        ids,
        trained,
        prompt_len,
    })
}

/// The tokenized form of a rendered row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokenized {
    /// The sequence trained on (DPO: the chosen one).
    pub seq: Sequence,
    /// DPO: the rejected sequence (same prompt).
    pub rejected: Option<Sequence>,
    pub class_label: Option<usize>,
    /// The reference answer for generation metrics (completion, chosen, or
    /// the last assistant turn).
    pub reference: Option<String>,
}

pub fn tokenize_row(tok: &TextTokenizer, r: &RenderedRow) -> Result<Tokenized, PipelineError> {
    Ok(match r {
        RenderedRow::Completion { prompt, completion } => Tokenized {
            seq: completion_seq(tok, &prompt_ids(tok, prompt)?, completion)?,
            rejected: None,
            class_label: None,
            reference: Some(completion.clone()).filter(|c| !c.is_empty()),
        },
        RenderedRow::Messages(msgs) => Tokenized {
            seq: messages_seq(tok, msgs)?,
            rejected: None,
            class_label: None,
            reference: msgs
                .iter()
                .rev()
                .find(|m| m.role == "assistant")
                .map(|m| m.content.clone()),
        },
        RenderedRow::Classify { input, label } => {
            let ids = tok.encode(input, true)?;
            Tokenized {
                seq: Sequence {
                    trained: vec![false; ids.len()],
                    prompt_len: ids.len(),
                    ids,
                },
                rejected: None,
                class_label: Some(*label),
                reference: None,
            }
        }
        RenderedRow::Pair {
            prompt,
            chosen,
            rejected,
        } => {
            let p = prompt_ids(tok, prompt)?;
            Tokenized {
                seq: completion_seq(tok, &p, chosen)?,
                rejected: Some(completion_seq(tok, &p, rejected)?),
                class_label: None,
                reference: Some(chosen.clone()),
            }
        }
    })
}

/// `tokens(…)` on a raw row (dataset filters): a declared part is rendered
/// and tokenized; any other name is a field whose text is tokenized.
pub struct RowTokens<'a> {
    pub tok: &'a TextTokenizer,
    pub fields: &'a Fields,
    pub row: &'a Value,
}

impl TokenCounter for RowTokens<'_> {
    fn count(&self, name: &str, field_text: Option<&str>) -> Result<usize, EvalError> {
        let f = self.fields;
        let part = match name {
            "prompt" => f.prompt.as_ref(),
            "completion" => f.completion.as_ref(),
            "input" => f.input.as_ref(),
            "messages" => f.messages.as_ref(),
            "chosen" => f.chosen.as_ref(),
            "rejected" => f.rejected.as_ref(),
            _ => None,
        };
        let text = match part {
            Some(Text::Chat(turns)) => {
                let msgs = render_turns(turns, self.row).map_err(problem_to_eval)?;
                chat_text(self.tok, &msgs, name == "prompt").map_err(|_| EvalError::NoTokenizer)?
            }
            Some(t) => render_text(t, self.row).map_err(problem_to_eval)?,
            None => field_text
                .ok_or_else(|| EvalError::MissingField {
                    field: name.to_owned(),
                })?
                .to_owned(),
        };
        self.tok
            .encode(&text, false)
            .map(|ids| ids.len())
            .map_err(|_| EvalError::NoTokenizer)
    }
}

fn problem_to_eval(p: RowProblem) -> EvalError {
    match p {
        RowProblem::Eval(e) => e,
        other => EvalError::MissingField {
            field: other.to_string(),
        },
    }
}
