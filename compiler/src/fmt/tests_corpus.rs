//! Whole-recipe properties, on a corpus that covers every construct and on
//! the project's `recipes/*.ft`:
//!
//! - formatting is idempotent;
//! - the output parses to the same AST (spans aside) and keeps every
//!   comment;
//! - the output does not depend on the input's spacing: the same recipe
//!   re-laid out at random (spaces and line breaks between tokens, where the
//!   language allows them and the layout rules do not look) formats to the
//!   same text.

use super::format;
use crate::syntax::{self, ast::Item};

/// Sample recipes: every block kind, every expression form, comments in
/// every slot, long strings, escapes, odd spacing.
const CORPUS: &[&str] = &[
    // The language sketch's first example.
    r#"model encoder = hf("models/all-MiniLM-L6-v2") {
  head = classify(labels = ["negative", "positive"])
}

dataset reviews = tsv("data/movie_snippets.tsv", columns = [id, score, text]) {
  input = "{text}"
  label = if score > 0 then "positive" else "negative"
  split = { train = 80%, val = 10%, test = 10%, seed = 42, stratify = label }
}

peft lora {
  rank    = 8
  alpha   = 16
  dropout = 0.05
  targets = [query, value]          # checked against the model's real modules
}

train {
  epochs     = 3
  batch      = 16
  max_len    = 128
  optimizer  = adamw(lr = 2e-4, weight_decay = 0.01)
  schedule   = cosine(warmup = 10%)
  early_stop = { metric = val.accuracy, patience = 2 }
}

evaluate { on = test, metrics = [accuracy, f1] }
"#,
    // The sketch's second example, plus output.
    r#"model base = gguf("models/SmolLM2-135M-Instruct.Q4_1.gguf")

dataset faq = yaml_pairs("data/chatterbot/*.yml") {
  prompt     = chat([user: "{question}"])
  completion = "{answer}"
  split      = { train = 90%, val = 10% }
}

dataset papers = jsonl("data/aclsum/train.jsonl") {
  prompt     = "Summarize the approach:\n{abstract}\nSummary:\n"
  completion = "{approach}"
  shots      = 2 from train          # few-shot examples prepended
}

mixture tasks { faq = 3, papers = 1, temperature = 2.0 }

curriculum {
  order  = tokens(prompt) ascending
  pacing = root(start = 20%, full_at = 50%)
  stage short { data = tasks where tokens(prompt) < 128, epochs = 1 }
  stage all   { data = tasks, epochs = 2, lr = 1e-4 }
}

peft prefix { virtual_tokens = 20 }

train { batch = 4, max_len = 512, optimizer = adamw(lr = 3e-4) }
sweep { train.optimizer.lr in [1e-4, 3e-4, 1e-3], pick = min(val.loss) }
output { dir = "runs/{name}", export = [adapter, merged], keep_checkpoints = 2 }
"#,
    // Imports, lets, expressions, long strings, comments everywhere.
    r#"# Shared settings.
import "common.ft"
import "more.ft"   # second

let base_lr = 3e-4
let  scale=(base_lr*2 + 1e-5) / 3
let flags = not true and (false or true)
let neg = -1
let big = 1_000_000


# The model.
model m = hf( "models/x" ) # local folder
{
  head = causal_lm()
}
dataset d = jsonl("d.jsonl") { # rows
  # the prompt, long form
  prompt = """
Answer the question.
  "{question}" \n stays as written
"""
  completion = "{answer}\t\"quoted\""
  label = if score >= 3 then "good" else if score == 2 then "ok" else "bad"
  filter = rows where tokens(prompt) <= 512 and label != "bad"


  shots = 3 from train   ,  order = len(prompt) descending
  messages = [system: "Be brief.", user: "{q}", assistant: "{a}"]
  split = {
    train = 80%, # most
    val = 10%,
    # and the rest
    test = 10%
  }
}
curriculum {
  pacing = linear(start = 10%, full_at = 60%)
  stage warm { data = d where tokens(prompt) < 64, epochs = 1, lr = base_lr / 10 }
  # the long stage
  stage rest {
    data = d
    epochs = 2 # two passes
  }
}
peft lora {
  rank = 16 , alpha = 32
  targets = [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head_projection_extra]
  use_dora = false
}
train {
  optimizer = adamw(
    lr = base_lr, # from the let
    betas = [0.9, 0.999],
    weight_decay = 0.0
  )
  early_stop = { metric = val.loss, patience = 3, mode = min }
}
evaluate {
  on = [val, test]
  metrics = [loss, accuracy,
    # text metrics
    rouge_l]
}
sweep {
  train.optimizer.lr in [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]
  peft.rank in [4, 8, 16]
  pick = max(val.accuracy)
}
output { dir = "runs/x" }
# trailing thoughts

# end of file
"#,
    // Breaking: long calls, nested lists, records in lists.
    r#"dataset mixed = splits(train = jsonl("data/some/quite/long/path/train.jsonl"), val = jsonl("data/some/quite/long/path/val.jsonl")) {
  prompt = chat([system: "You are a careful assistant that answers in one sentence.", user: "{question}"])
  weights = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15], [16, 17, 18], [19, 20, 21]]
  records = [{ name = "first", weight = 1.5 }, { name = "second", weight = 2.5 }, { name = "third", weight = 3 }]
}
mixture all { mixed = 1, other = 2, third = 3, fourth = 4, fifth = 5, sixth = 6, seventh = 7 }
"#,
];

fn files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("corpus[{i}]"), t.to_string()))
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "ft") {
                let text = std::fs::read_to_string(&p).expect("readable recipe");
                out.push((p.display().to_string(), text));
            }
        }
    }
    out
}

/// The AST as JSON without spans: what the recipe means, not where.
fn shape(text: &str) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !matches!(k.as_str(), "span" | "content_start" | "bad_escapes"));
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let (file, diags) = syntax::parse(text);
    assert!(
        !file.items.iter().any(|i| matches!(i, Item::Broken(_))),
        "{diags:#?}"
    );
    let mut v = serde_json::to_value(&file.items).expect("AST serializes");
    strip(&mut v);
    v
}

fn comment_texts(text: &str) -> Vec<String> {
    let mut v: Vec<String> = syntax::parse(text)
        .0
        .comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn formatting_twice_is_formatting_once() {
    for (name, text) in files() {
        let once = format(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let twice = format(&once).unwrap();
        assert_eq!(twice, once, "{name} is not a fixed point:\n{once}");
    }
}

#[test]
fn output_means_the_same_and_keeps_every_comment() {
    for (name, text) in files() {
        let out = format(&text).unwrap();
        assert_eq!(shape(&out), shape(&text), "{name}: the AST changed");
        assert_eq!(
            comment_texts(&out),
            comment_texts(&text),
            "{name}: comments changed"
        );
    }
}

#[test]
fn comments_keep_their_kind_in_the_corpus() {
    // Trailing comments stay trailing, own-line ones stay own-line (the
    // corpus has no comment inside an element, which would move).
    for (name, text) in files() {
        let kinds = |t: &str| {
            let mut v: Vec<(String, bool)> = syntax::parse(t)
                .0
                .comments
                .iter()
                .map(|c| (c.text.trim_end().to_string(), c.trailing))
                .collect();
            v.sort();
            v
        };
        assert_eq!(kinds(&format(&text).unwrap()), kinds(&text), "{name}");
    }
}

#[test]
fn lines_fit_unless_a_single_token_is_too_long() {
    for (name, text) in files() {
        let out = format(&text).unwrap();
        let mut in_long = false;
        for line in out.lines() {
            let quotes = line.matches("\"\"\"").count();
            let inside = in_long;
            in_long ^= quotes % 2 == 1;
            if inside || quotes > 0 || line.trim_start().starts_with('#') || line.contains("  #") {
                continue;
            }
            assert!(line.chars().count() <= 100, "{name}: too long: {line}");
        }
    }
}

// ── random re-layout ─────────────────────────────────────────────────────

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    Word,
    Str,
    Comment,
    Punct,
}

/// The tokens of a recipe with their byte ranges (a test-only lexer: dotted
/// paths and numbers with exponents and `%` are single tokens, since no
/// space may go inside them).
fn tokens(src: &str) -> Vec<(usize, usize, Tok)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
            Tok::Comment
        } else if src[i..].starts_with("\"\"\"") {
            i += 3 + src[i + 3..].find("\"\"\"").expect("closed") + 3;
            Tok::Str
        } else if c == b'"' {
            i += 1;
            while b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            Tok::Str
        } else if word(c) {
            while i < b.len()
                && (word(b[i])
                    || (b[i] == b'.' && i + 1 < b.len() && word(b[i + 1]))
                    || ((b[i] == b'-' || b[i] == b'+')
                        && c.is_ascii_digit()
                        && matches!(b[i - 1], b'e' | b'E'))
                    || b[i] == b'%')
            {
                i += 1;
            }
            Tok::Word
        } else {
            let two = src.get(i..i + 2).unwrap_or("");
            i += if matches!(two, "==" | "!=" | "<=" | ">=") {
                2
            } else {
                1
            };
            Tok::Punct
        };
        out.push((start, i, kind));
    }
    out
}

/// A deterministic generator, enough for shuffling spaces.
struct Rng(crate::sweep::space::SplitMix);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn indent(&mut self) -> String {
        " ".repeat(1 + self.below(6) as usize)
    }
}

/// Where the layout rules look at the source, collected from the AST: the
/// starts of items (which must stay in column 0 after a line break) and the
/// `{` of bodies (whose line break before the first entry is kept).
fn anchors(src: &str) -> (Vec<usize>, Vec<usize>) {
    use crate::syntax::ast::{Block, Entry};
    fn bodies(b: &Block, out: &mut Vec<usize>) {
        if let Some(body) = &b.body {
            out.push(body.span.start);
            for e in &body.entries {
                if let Entry::Block(sub) = e {
                    bodies(sub, out);
                }
            }
        }
    }
    let (file, _) = syntax::parse(src);
    let items = file.items.iter().map(|i| i.span().start).collect();
    let mut body_opens = Vec::new();
    for i in &file.items {
        if let Item::Block(b) = i {
            bodies(b, &mut body_opens);
        }
    }
    (items, body_opens)
}

/// The same recipe with different spaces and line breaks between tokens.
/// Kept as they are: blank lines, the line structure around comments, line
/// breaks before items and after a body's `{` (the documented places where
/// the layout is the user's).
fn relayout(src: &str, rng: &mut Rng) -> String {
    let toks = tokens(src);
    let (items, body_opens) = anchors(src);
    let mut out = String::new();
    for (k, &(start, end, kind)) in toks.iter().enumerate() {
        if k == 0 {
            out.push_str(&src[..start]);
        } else {
            let (pstart, pend, pkind) = toks[k - 1];
            let gap = &src[pend..start];
            let nl = gap.matches('\n').count();
            // A comment later on this line: no line break may come between.
            let comment_ahead = toks[k..]
                .iter()
                .take_while(|t| !src[pend..t.0].contains('\n'))
                .any(|t| t.2 == Tok::Comment);
            let words =
                matches!(pkind, Tok::Word | Tok::Str) || matches!(kind, Tok::Word | Tok::Str);
            let spaces = |rng: &mut Rng| " ".repeat(rng.below(3) as usize + usize::from(words));
            let new = if items.contains(&start) {
                gap.to_string()
            } else if nl >= 2 {
                format!("\n\n{}", rng.indent())
            } else if pkind == Tok::Comment || (kind == Tok::Comment && nl == 1) {
                format!("\n{}", rng.indent())
            } else if kind == Tok::Comment || comment_ahead {
                " ".repeat(1 + rng.below(3) as usize)
            } else if body_opens.contains(&pstart) {
                if nl == 1 {
                    format!("\n{}", rng.indent())
                } else {
                    spaces(rng)
                }
            } else if rng.below(4) == 0 {
                format!("\n{}", rng.indent())
            } else {
                spaces(rng)
            };
            out.push_str(&new);
        }
        out.push_str(&src[start..end]);
    }
    if let Some(&(_, end, _)) = toks.last() {
        out.push_str(&src[end..]);
    }
    out
}

#[test]
fn layout_of_the_input_does_not_matter() {
    let mut rng = Rng(crate::sweep::space::SplitMix(0x5EED));
    for (name, text) in files() {
        let expected = format(&text).unwrap();
        for round in 0..25 {
            let shuffled = relayout(&text, &mut rng);
            let got = format(&shuffled).unwrap_or_else(|e| {
                panic!("{name} round {round}: re-layout does not parse ({e}):\n{shuffled}")
            });
            if got != expected {
                let _ = std::fs::write("/tmp/fmt-got.ft", &got);
                let _ = std::fs::write("/tmp/fmt-expected.ft", &expected);
                let _ = std::fs::write("/tmp/fmt-input.ft", &shuffled);
                let diff: Vec<String> = got
                    .lines()
                    .zip(expected.lines())
                    .filter(|(a, b)| a != b)
                    .take(3)
                    .map(|(a, b)| format!("  got:      {a}\n  expected: {b}"))
                    .collect();
                panic!(
                    "{name} round {round}: different output\n{}\nfor\n{shuffled}",
                    diff.join("\n")
                );
            }
        }
    }
}

#[test]
fn relayout_really_changes_the_text() {
    let mut rng = Rng(crate::sweep::space::SplitMix(7));
    let text = CORPUS[0];
    let shuffled = relayout(text, &mut rng);
    assert_ne!(shuffled, text);
    assert_eq!(
        tokens(&shuffled).len(),
        tokens(text).len(),
        "tokens are kept"
    );
}

#[test]
fn a_typical_recipe_formats_quickly() {
    // A few hundred microseconds in release builds; this debug-build bound
    // only catches accidental quadratic behaviour.
    let text = CORPUS[2];
    let start = std::time::Instant::now();
    let runs = 20;
    for _ in 0..runs {
        format(text).unwrap();
    }
    let each = start.elapsed() / runs;
    eprintln!("format: {each:?} per run ({} bytes)", text.len());
    assert!(each.as_millis() < 50, "{each:?} per format");
}
