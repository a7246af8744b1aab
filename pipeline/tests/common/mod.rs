//! Helpers shared by the pipeline's tests: hand-built Plans, a tiny
//! word-level tokenizer (sequences a reader can count by eye), fixture
//! files, and the real assets fetched by `scripts/fetch-assets.sh` (tests
//! on real files fail, never skip, when they are missing).
#![allow(dead_code)]

use ft_data::render::{BinOp, ChatTurn, Fields, Part, RowExpr, Template, Text};
use ft_data::split::{SplitKey, SplitPart, SplitSpec};
use ft_data::{Format, SourceSpec};
use ft_formats::ModelTokenizer;
use ft_pipeline::{BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Tokenizer};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn asset(rel: &str) -> PathBuf {
    let p = repo_root().join(".cache").join(rel);
    let probe = if rel.contains('*') {
        p.parent().unwrap().to_path_buf()
    } else {
        p.clone()
    };
    assert!(
        probe.exists(),
        "missing test asset {}: run `scripts/fetch-assets.sh` first",
        probe.display()
    );
    p
}

pub const SPECIALS: &[&str] = &[
    "[UNK]",
    "[PAD]",
    "<s>",
    "</s>",
    "<|im_start|>",
    "<|im_end|>",
];

/// A ChatML template like SmolLM2's, without the default system prompt.
pub const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A word-level tokenizer over every word and punctuation run of `texts`
/// (split as the `Whitespace` pre-tokenizer splits: `\w+|[^\w\s]+`), ids in
/// first-seen order after the special tokens. EOS is `</s>` unless `chat`,
/// then `<|im_end|>` with the ChatML template.
pub fn word_tokenizer(texts: &[&str], chat: bool) -> TextTokenizer {
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for s in SPECIALS {
        let n = vocab.len() as u32;
        vocab.insert((*s).to_owned(), n);
    }
    for t in texts {
        for w in words(t) {
            let n = vocab.len() as u32;
            vocab.entry(w).or_insert(n);
        }
    }
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok.add_special_tokens(
        &SPECIALS
            .iter()
            .map(|s| AddedToken::from(*s, true))
            .collect::<Vec<_>>(),
    );
    let eos = if chat { "<|im_end|>" } else { "</s>" };
    TextTokenizer::new(ModelTokenizer {
        eos_token_ids: vec![tok.token_to_id(eos).unwrap()],
        tokenizer: tok,
        chat_template: chat.then(|| CHATML.to_owned()),
        bos_token: Some("<s>".into()),
        eos_token: Some(eos.into()),
    })
}

pub fn words(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_word = None;
    for c in t.chars() {
        if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur_word = None;
            continue;
        }
        let w = c.is_alphanumeric() || c == '_';
        if cur_word.is_some_and(|x| x != w) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
        cur_word = Some(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A template from `{field}` syntax (no escapes needed in tests).
pub fn tpl(s: &str) -> Template {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        if i > 0 {
            parts.push(Part::Text(rest[..i].to_owned()));
        }
        let j = rest[i..].find('}').unwrap() + i;
        parts.push(Part::Field(rest[i + 1..j].to_owned()));
        rest = &rest[j + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Template { parts }
}

pub fn text(s: &str) -> Option<Text> {
    Some(Text::Template(tpl(s)))
}

pub fn chat(turns: &[(&str, &str)]) -> Option<Text> {
    Some(Text::Chat(
        turns
            .iter()
            .map(|(r, c)| ChatTurn {
                role: (*r).to_owned(),
                content: tpl(c),
            })
            .collect(),
    ))
}

pub fn field(f: &str) -> Box<RowExpr> {
    Box::new(RowExpr::Field(f.into()))
}

/// `if FIELD > 0 then "positive" else "negative"`
pub fn sign_label(f: &str) -> Option<Text> {
    Some(Text::Expr(RowExpr::If(
        Box::new(RowExpr::Binary(
            BinOp::Gt,
            field(f),
            Box::new(RowExpr::Num(0.0)),
        )),
        Box::new(RowExpr::Template(Template::text("positive"))),
        Box::new(RowExpr::Template(Template::text("negative"))),
    )))
}

pub fn split(parts: &[(&str, f64)], seed: u64) -> Option<SplitSpec> {
    Some(SplitSpec {
        parts: parts
            .iter()
            .map(|(n, f)| SplitPart {
                name: (*n).to_owned(),
                fraction: *f,
            })
            .collect(),
        seed,
        stratify: None,
        key: SplitKey::Content,
    })
}

pub fn dataset(name: &str, source: SourceSpec, fields: Fields) -> DatasetPlan {
    DatasetPlan {
        name: name.to_owned(),
        source: DataSource::Single(source),
        fields,
        split: None,
        stratify: None,
        shots: None,
        filter: None,
        truncate: Truncate::Truncate,
        on_bad_row: OnBadRow::Fail,
    }
}

pub fn src(format: Format, path: impl Into<PathBuf>) -> SourceSpec {
    SourceSpec::new(format, path)
}

pub fn completion_fields(prompt: &str, completion: &str) -> Fields {
    Fields {
        prompt: text(prompt),
        completion: text(completion),
        ..Fields::default()
    }
}

pub fn data_ref(name: &str) -> DataRef {
    DataRef {
        name: name.to_owned(),
        filter: None,
    }
}

/// A Plan training `data` on `datasets` with SFT (classify for a classify
/// head).
pub fn plan(
    datasets: Vec<DatasetPlan>,
    data: TrainData,
    head: Head,
    batch: usize,
    max_len: usize,
    length: Length,
) -> Plan {
    let objective = match head {
        Head::Classify { .. } => Objective::Classify,
        Head::CausalLm => Objective::Sft,
    };
    Plan {
        version: PLAN_VERSION,
        recipe: PathBuf::from("/tmp/test.ft"),
        name: "test".into(),
        seed: 7,
        model: ModelPlan {
            name: "m".into(),
            path: PathBuf::from("/nonexistent"),
            format: ModelFormat::Hf,
            head,
            chat_template: None,
            tokenizer: None,
            adapter: None,
        },
        other_models: Vec::new(),
        datasets,
        data,
        method: Method::Full { freeze: Vec::new() },
        train: TrainPlan {
            objective,
            length,
            batch,
            accumulate: 1,
            max_len,
            optimizer: Optimizer::AdamW {
                lr: 1e-4,
                weight_decay: 0.0,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            schedule: Schedule {
                kind: ScheduleKind::Constant,
                warmup: Warmup::Steps(0),
                min_lr: 0.0,
            },
            clip: None,
            early_stop: None,
            eval_every: None,
            packing: false,
            group_by_length: false,
            device: Device::Cpu,
            threads: None,
            precision: Default::default(),
            gradient_checkpointing: false,
        },
        evaluate: EvalPlan {
            on: vec!["test".into()],
            metrics: vec![Metric::Loss],
            max_new_tokens: 16,
            batch: 4,
        },
        output: Default::default(),
    }
}

pub fn build(plan: &Plan, tok: TextTokenizer) -> Result<DataPipeline, ft_pipeline::PipelineError> {
    DataPipeline::build(plan, tok, &BuildOptions::default())
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn smollm2() -> TextTokenizer {
    let files =
        ft_formats::ModelFiles::open(asset("models/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    TextTokenizer::new(ModelTokenizer::load(&files).unwrap())
}

pub fn minilm() -> TextTokenizer {
    let files = ft_formats::ModelFiles::open(asset("models/all-MiniLM-L6-v2")).unwrap();
    TextTokenizer::new(ModelTokenizer::load(&files).unwrap())
}

pub fn jsonl_ds(name: &str, path: &Path, fields: Fields) -> DatasetPlan {
    dataset(name, src(Format::Jsonl, path), fields)
}
