//! Stage 1, syntax: text → AST with spans, reporting every syntax error of
//! the file in one run.

pub mod ast;
pub mod parse;
pub mod scan;

use ast::{Broken, File, Ident, Item, Span};
use scan::LexError;

use crate::diagnostics::Diagnostic;

crate::declare_codes! {
    /// A recipe does not follow the grammar of the `.ft` language here.
    ///
    /// The message says what was found and what the parser expected at that
    /// point. Only the item (the top-level block) that contains the error is
    /// skipped: every other block of the file is still parsed and checked,
    /// so fix the errors in any order.
    ///
    /// ```ft
    /// train {
    ///   epochs = = 3      # error: expected a value, found `=`
    /// }
    /// ```
    ///
    /// Entries in a block are `key = value`, separated by newlines or commas.
    SYNTAX_ERROR = "FT0001", "syntax error";

    /// The file is not valid UTF-8 text.
    ///
    /// Recipes are read as UTF-8. The position of the first invalid byte is
    /// shown. The file may be binary, or saved in another encoding (Latin-1,
    /// UTF-16): re-save it as UTF-8.
    INVALID_UTF8 = "FT0002", "invalid UTF-8";

    /// A string is opened with `"` but not closed on the same line, or a
    /// `"""` long string is never closed.
    ///
    /// Ordinary strings end on the line they start. For text over several
    /// lines (prompt templates), use a long string:
    ///
    /// ```ft
    /// prompt = """
    /// Summarize:
    /// {abstract}
    /// """
    /// ```
    UNTERMINATED_STRING = "FT0003", "unterminated string";

    /// Brackets are nested deeper than the compiler accepts (64 levels), or
    /// one expression chains more than 32 operators.
    ///
    /// No recipe needs this depth; it usually means generated or corrupted
    /// input. Operators nest like brackets (`- - - x`, `if … else if …`,
    /// `1 + 1 + …` build trees as deep as they are long), so both limits
    /// protect the compiler from exhausting its stack.
    TOO_DEEP = "FT0004", "nesting too deep";

    /// A closing bracket has no matching opening bracket.
    ///
    /// Look for a `}` left over after deleting a block, or one closed twice.
    UNEXPECTED_CLOSE = "FT0005", "unmatched closing bracket";

    /// The recipe is empty: it declares nothing.
    ///
    /// A recipe needs at least a `model`, a `dataset` and a `train` block.
    /// Start from one of the examples in `recipes/`, for instance
    /// `recipes/sentiment-minilm.ft`.
    EMPTY_RECIPE = "FT0006", "empty recipe";
}

/// At most this many syntax errors are reported per file; past that the
/// input is likely not a recipe at all.
const MAX_SYNTAX_ERRORS: usize = 30;

/// Parses a recipe's text. Never fails: what does not parse becomes
/// `Item::Broken` plus diagnostics.
pub fn parse(text: &str) -> (File, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let scanned = scan::scan(text);
    let mut file = File {
        items: Vec::new(),
        comments: scanned.comments,
    };
    if scanned.chunks.is_empty() {
        diags.push(
            Diagnostic::error(&EMPTY_RECIPE, Span::new(0, 0), "the recipe is empty")
                .help("declare at least a `model`, a `dataset` and a `train` block; see the examples in `recipes/`"),
        );
        return (file, diags);
    }
    for chunk in scanned.chunks {
        let chunk_text = &text[chunk.span.start..chunk.span.end];
        if !chunk.errors.is_empty() {
            for e in &chunk.errors {
                diags.push(lex_diagnostic(e));
            }
            file.items
                .push(Item::Broken(recover_header(chunk_text, chunk.span)));
            continue;
        }
        match parse::parse_item(chunk_text, chunk.span.start) {
            Ok(item) => file.items.push(item),
            Err(e) => {
                if let Some(d) = missing_value(chunk_text, chunk.span.start, &e) {
                    diags.push(d);
                    file.items
                        .push(Item::Broken(recover_header(chunk_text, chunk.span)));
                    continue;
                }
                let expected = if e.expected.is_empty() {
                    String::new()
                } else {
                    format!("expected {}", join_or(&e.expected))
                };
                let msg = if expected.is_empty() {
                    format!("unexpected {}", e.found)
                } else {
                    format!("{expected}, found {}", e.found)
                };
                let mut d = Diagnostic::error(&SYNTAX_ERROR, e.span, msg).label("here");
                d = match hint(chunk_text, &e) {
                    Some(h) => d.help(h),
                    None => d,
                };
                diags.push(d);
                file.items
                    .push(Item::Broken(recover_header(chunk_text, chunk.span)));
            }
        }
        if diags.len() >= MAX_SYNTAX_ERRORS {
            break;
        }
    }
    (file, diags)
}

/// Reads a file's bytes as a recipe: invalid UTF-8 is a diagnostic, not a
/// panic. Returns the text to parse (empty on failure).
// The error is the diagnostic itself, produced once per file: boxing it
// would only move the allocation.
#[allow(clippy::result_large_err)]
pub fn decode(bytes: &[u8]) -> Result<&str, Diagnostic> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        Diagnostic::error(
            &INVALID_UTF8,
            Span::new(0, 0),
            format!(
                "the file is not valid UTF-8: invalid byte 0x{:02x} at byte {at} (line {line})",
                bytes[at]
            ),
        )
        .help("save the recipe as UTF-8 text")
    })
}

fn lex_diagnostic(e: &LexError) -> Diagnostic {
    match e {
        LexError::UnterminatedString { span, long: false } => Diagnostic::error(
            &UNTERMINATED_STRING,
            *span,
            "this string is not closed on its line",
        )
        .label("string starts here")
        .help("close it with `\"`, or use a `\"\"\"` long string for text over several lines"),
        LexError::UnterminatedString { span, long: true } => Diagnostic::error(
            &UNTERMINATED_STRING,
            *span,
            "this long string is never closed",
        )
        .label("opened here")
        .help("close it with `\"\"\"`"),
        LexError::TooDeep { span } => Diagnostic::error(
            &TOO_DEEP,
            *span,
            format!("brackets nested deeper than {} levels", scan::MAX_DEPTH),
        )
        .label("too deep from here"),
        LexError::TooManyOperators { span } => Diagnostic::error(
            &TOO_DEEP,
            *span,
            format!(
                "more than {} operators in one expression",
                scan::MAX_OPERATORS
            ),
        )
        .label("too many from here")
        .help("split the expression with `let` constants"),
        LexError::UnexpectedClose { span } => Diagnostic::error(
            &UNEXPECTED_CLOSE,
            *span,
            "this closing bracket has no opening bracket",
        )
        .label("unmatched")
        .help("remove it, or add the opening bracket it closes"),
    }
}

/// Extra words for the most common mistakes.
fn hint(chunk: &str, e: &parse::ParseError) -> Option<String> {
    if e.found == "end of input" && chunk.matches('{').count() > chunk.matches('}').count() {
        return Some("a `{` is not closed: add the missing `}`".into());
    }
    if e.found == "`:`" {
        return Some("entries are written `key = value`, not `key: value`".into());
    }
    if e.found == "`=`" && e.expected.contains(&"a value") {
        return Some("a value is missing before this `=`, or there is one `=` too many".into());
    }
    None
}

/// `batch =` with nothing after it on its line: the parser reads the next
/// line's key as the value and stops at that key's `=` (or stops at the
/// block's `}`). Said as what it is, at the key that has no value, rather
/// than as a surprise token a line later.
fn missing_value(chunk: &str, offset: usize, e: &parse::ParseError) -> Option<Diagnostic> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let before = chunk.get(..e.span.start.checked_sub(offset)?)?;
    let before = match e.found.as_str() {
        // The next line's key, read as a value, comes off first.
        "`=`" => {
            let line = before.trim_end_matches([' ', '\t']);
            let key = line.trim_end_matches(is_word);
            if key.len() == line.len() {
                return None;
            }
            key
        }
        "`}`" => before,
        _ => return None,
    };
    // A line break between the `=` and what follows it.
    let trimmed = before.trim_end();
    if !before[trimmed.len()..].contains('\n') {
        return None;
    }
    let head = trimmed.strip_suffix('=')?.trim_end();
    let key = &head[head.trim_end_matches(is_word).len()..];
    if key.is_empty() {
        return None;
    }
    let start = offset + head.len() - key.len();
    Some(
        Diagnostic::error(
            &SYNTAX_ERROR,
            Span::new(start, offset + trimmed.len()),
            format!("`{key}` has no value"),
        )
        .label("a value is needed after this `=`")
        .help(format!(
            "write the value on the same line (`{key} = …`), or remove the line"
        )),
    )
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What can be read of a broken item's header: its keyword and name, so
/// that references to it are not reported as undefined.
fn recover_header(text: &str, span: Span) -> Broken {
    let mut words = Vec::new();
    let mut pos = 0;
    for _ in 0..2 {
        let rest = &text[pos..];
        let skip = rest.len() - rest.trim_start().len();
        let start = pos + skip;
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len() - start);
        if len == 0 || !text[start..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            break;
        }
        words.push(Ident {
            name: text[start..start + len].to_string(),
            span: Span::new(span.start + start, span.start + start + len),
        });
        pos = start + len;
    }
    let mut it = words.into_iter();
    let keyword = it.next();
    let name = if keyword.as_ref().is_some_and(|k| k.name == "import") {
        None
    } else {
        it.next()
    };
    Broken {
        keyword,
        name,
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ast::{ExprKind, Item};

    #[test]
    fn parses_the_sketch_example() {
        let text = r#"
model encoder = hf("models/all-MiniLM-L6-v2") {
  head = classify(labels = ["negative", "positive"])
}

dataset reviews = tsv("data/movie_snippets.tsv", columns = [id, score, text]) {
  input = "{text}"
  label = if score > 0 then "positive" else "negative"
  split = { train = 80%, val = 10%, test = 10%, seed = 42, stratify = label }
}

peft lora {
  rank    = 8
  targets = [query, value]          # checked against the model
}

curriculum {
  order  = tokens(prompt) ascending
  stage short { data = tasks where tokens(prompt) < 128, epochs = 1 }
}
sweep { train.optimizer.lr in [1e-4, 3e-4, 1e-3], pick = min(val.loss) }
dataset faq = yaml_pairs("x/*.yml") { prompt = chat([user: "{question}"]), shots = 2 from train }
"#;
        let (file, diags) = parse(text);
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(file.items.len(), 6);
        assert_eq!(file.comments.len(), 1);
        let Item::Block(b) = &file.items[1] else {
            panic!()
        };
        assert_eq!(b.keyword.name, "dataset");
        assert_eq!(b.name.as_ref().unwrap().name, "reviews");
        assert_eq!(&text[b.keyword.span.start..b.keyword.span.end], "dataset");
        let ast::Entry::Assign(a) = &b.body.as_ref().unwrap().entries[1] else {
            panic!()
        };
        assert!(matches!(a.value.kind, ExprKind::If { .. }));
    }

    #[test]
    fn five_broken_blocks_five_errors() {
        let text = "model m = hf(\"x\") {\n head = = 1\n}\ndataset d = jsonl(\"a\") {\n prompt = \n}\npeft lora { rank = [1, }\ntrain { epochs = 3 lr = }\nevaluate { on = ( }\n";
        let (file, diags) = parse(text);
        assert_eq!(diags.len(), 5, "{diags:#?}");
        assert_eq!(file.items.len(), 5);
        assert!(file.items.iter().all(|i| matches!(i, Item::Broken(_))));
    }

    #[test]
    fn error_in_one_block_keeps_the_others() {
        let text = "train {\n  epochs = 3\n\nevaluate { on = test }\n";
        let (file, diags) = parse(text);
        assert_eq!(diags.len(), 1);
        assert!(matches!(file.items[1], Item::Block(_)));
    }

    #[test]
    fn numbers_and_percentages() {
        let (file, d) = parse("let a = 2e-4\nlet b = 80%\nlet c = 10_000\n");
        assert!(d.is_empty());
        let vals: Vec<(f64, bool)> = file
            .items
            .iter()
            .map(|i| match i {
                Item::Let(l) => match l.value.kind {
                    ExprKind::Number { value, percent, .. } => (value, percent),
                    _ => panic!(),
                },
                _ => panic!(),
            })
            .collect();
        assert_eq!(vals, vec![(2e-4, false), (80.0, true), (10000.0, false)]);
    }
}
