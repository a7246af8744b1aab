//! The scanner: one linear pass over the text that finds comments, lexical
//! errors (unterminated strings, runaway nesting) and the boundaries of
//! top-level items. Cutting the file into items *before* pest sees it is what
//! gives error recovery: each item is parsed on its own, so a syntax error in
//! one block never hides the errors in the others.

use super::ast::{Comment, Span};

/// Words that open a top-level item. A line that starts with one of them in
/// column 0 always starts a new item, even inside unbalanced brackets: that
/// is where an unclosed `{` in the previous block is recovered from.
pub const ITEM_KEYWORDS: &[&str] = &[
    "model",
    "dataset",
    "mixture",
    "curriculum",
    "peft",
    "train",
    "evaluate",
    "sweep",
    "output",
    "import",
    "let",
];

/// Nesting deeper than this is refused before pest runs: a recursive-descent
/// parser would otherwise exhaust the stack on `[[[[…]]]]`.
pub const MAX_DEPTH: usize = 64;

/// Operators (and `if`, `where`, …) allowed in one stretch of an expression
/// between brackets, commas and `=`. Operators nest too: `- - - x`,
/// `if … else if …` and `1 + 1 + …` build a tree as deep as they are long,
/// and every stage walks trees recursively. With brackets capped at
/// [`MAX_DEPTH`], this bounds the depth of any expression tree.
pub const MAX_OPERATORS: usize = 32;

/// Words that act as operators in expressions.
const OPERATOR_WORDS: &[&str] = &[
    "not",
    "and",
    "or",
    "if",
    "then",
    "else",
    "where",
    "from",
    "ascending",
    "descending",
];

#[derive(Debug, Clone)]
pub struct Chunk {
    pub span: Span,
    /// Lexical problems inside this chunk; a chunk with any is not parsed.
    pub errors: Vec<LexError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LexError {
    UnterminatedString { span: Span, long: bool },
    TooDeep { span: Span },
    TooManyOperators { span: Span },
    UnexpectedClose { span: Span },
}

#[derive(Debug, Default)]
pub struct Scan {
    pub chunks: Vec<Chunk>,
    pub comments: Vec<Comment>,
}

pub fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut out = Scan::default();
    let mut depth: usize = 0;
    let mut chunk_start: Option<usize> = None;
    let mut errors: Vec<LexError> = Vec::new();
    let mut line_has_code = false;
    // End of the last code (not comment, not blank): chunks end there, so a
    // comment between two items belongs to neither item's span.
    let mut last_code_end = 0;
    // Operators since the last bracket, comma or `=` (see MAX_OPERATORS).
    let mut operators: usize = 0;
    // A byte-order mark is not code: skip it so it does not become an item.
    let start = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    let mut i = start;

    let close_chunk =
        |start: Option<usize>, end: usize, errors: &mut Vec<LexError>, out: &mut Scan| {
            if let Some(s) = start {
                let end = trim_end(text, s, end.max(s));
                if end > s {
                    out.chunks.push(Chunk {
                        span: Span::new(s, end),
                        errors: std::mem::take(errors),
                    });
                }
            }
        };

    while i < bytes.len() {
        let c = bytes[i];
        let at_line_start = i == start || bytes[i - 1] == b'\n';
        if at_line_start {
            line_has_code = false;
            if is_ident_start(c) {
                let word = word_at(text, i);
                let is_keyword = ITEM_KEYWORDS.contains(&word);
                if depth == 0 || is_keyword {
                    close_chunk(chunk_start, last_code_end, &mut errors, &mut out);
                    chunk_start = Some(i);
                    depth = 0;
                }
            }
        }
        let is_operator = match c {
            b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'!' => true,
            // `==`, `<=`, `>=`, `!=`: an operator; a lone `=` separates.
            b'=' => bytes.get(i + 1) == Some(&b'=') || (i > 0 && b"<>!=".contains(&bytes[i - 1])),
            _ if is_ident_start(c) && (i == 0 || !is_ident_char(bytes[i - 1])) => {
                OPERATOR_WORDS.contains(&word_at(text, i))
            }
            _ => false,
        };
        if is_operator {
            operators += 1;
            if operators == MAX_OPERATORS + 1
                && !errors
                    .iter()
                    .any(|e| matches!(e, LexError::TooManyOperators { .. }))
            {
                errors.push(LexError::TooManyOperators {
                    span: Span::new(i, i + 1),
                });
            }
        } else if matches!(c, b',' | b'=' | b'{' | b'[' | b'(' | b'}' | b']' | b')') {
            operators = 0;
        }
        match c {
            b'#' => {
                let end = text[i..].find('\n').map(|n| i + n).unwrap_or(text.len());
                let body = text[i + 1..end].trim_end_matches('\r');
                out.comments.push(Comment {
                    text: body.to_string(),
                    span: Span::new(i, i + 1 + body.len()),
                    trailing: line_has_code,
                });
                i = end;
                continue;
            }
            b'"' => {
                if chunk_start.is_none() {
                    chunk_start = Some(i);
                }
                line_has_code = true;
                i = skip_string(text, i, &mut errors);
                last_code_end = i;
                continue;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth == MAX_DEPTH + 1 {
                    errors.push(LexError::TooDeep {
                        span: Span::new(i, i + 1),
                    });
                }
            }
            b'}' | b']' | b')' => {
                if depth == 0 {
                    // Stray closer at top level: its own (broken) chunk, so
                    // the item before it still parses.
                    if chunk_start.is_none() {
                        chunk_start = Some(i);
                    }
                    errors.push(LexError::UnexpectedClose {
                        span: Span::new(i, i + 1),
                    });
                } else {
                    depth -= 1;
                }
            }
            _ => {}
        }
        if !c.is_ascii_whitespace() {
            line_has_code = true;
            last_code_end = i + utf8_len(c);
            if chunk_start.is_none() {
                chunk_start = Some(i);
            }
        }
        i += utf8_len(c);
    }
    close_chunk(chunk_start, last_code_end, &mut errors, &mut out);
    out
}

/// Skips a string starting at `i` (on its opening quote); returns the offset
/// after it. Short strings end at the line's end at the latest.
fn skip_string(text: &str, i: usize, errors: &mut Vec<LexError>) -> usize {
    let bytes = text.as_bytes();
    if text[i..].starts_with("\"\"\"") {
        match text[i + 3..].find("\"\"\"") {
            Some(n) => return i + 3 + n + 3,
            None => {
                errors.push(LexError::UnterminatedString {
                    span: Span::new(i, i + 3),
                    long: true,
                });
                return text.len();
            }
        }
    }
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            b'\n' => break,
            c => j += utf8_len(c),
        }
    }
    let end = j.min(bytes.len());
    let end = trim_end(text, i, end);
    errors.push(LexError::UnterminatedString {
        span: Span::new(i, end.max(i + 1)),
        long: false,
    });
    end
}

fn trim_end(text: &str, start: usize, end: usize) -> usize {
    let trimmed = text[start..end].trim_end();
    start + trimmed.len()
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn word_at(text: &str, i: usize) -> &str {
    let end = text[i..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(|n| i + n)
        .unwrap_or(text.len());
    &text[i..end]
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xFF => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str) -> Vec<&str> {
        scan(text)
            .chunks
            .iter()
            .map(|c| &text[c.span.start..c.span.end])
            .collect()
    }

    #[test]
    fn cuts_at_column_zero_items() {
        let text = "model m = hf(\"x\")\n\ntrain {\n  epochs = 3\n}\n# c\npeft lora { rank = 8 }\n";
        assert_eq!(
            chunks(text),
            vec![
                "model m = hf(\"x\")",
                "train {\n  epochs = 3\n}",
                "peft lora { rank = 8 }"
            ]
        );
    }

    #[test]
    fn unclosed_brace_recovers_at_next_keyword() {
        let text = "train {\n  epochs = 3\n\nevaluate { on = test }\n";
        let s = scan(text);
        assert_eq!(s.chunks.len(), 2);
    }

    #[test]
    fn indented_lines_inside_braces_do_not_cut() {
        let text = "dataset d = jsonl(\"a\") {\nprompt = \"x\"\n}\n";
        assert_eq!(chunks(text).len(), 1);
    }

    #[test]
    fn comments_are_collected_with_trailing_flag() {
        let s = scan("# lead\ntrain { epochs = 1 } # tail\n");
        assert_eq!(s.comments.len(), 2);
        assert!(!s.comments[0].trailing);
        assert!(s.comments[1].trailing);
        assert_eq!(s.comments[1].text, " tail");
    }

    #[test]
    fn hash_inside_string_is_not_a_comment() {
        let s = scan("let x = \"a # b\"\n");
        assert!(s.comments.is_empty());
    }

    #[test]
    fn unterminated_string_is_reported() {
        let s = scan("let x = \"abc\nlet y = 2\n");
        assert_eq!(s.chunks.len(), 2);
        assert!(matches!(
            s.chunks[0].errors[0],
            LexError::UnterminatedString { .. }
        ));
        assert!(s.chunks[1].errors.is_empty());
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let text = "\u{FEFF}# c\ntrain { epochs = 1 }\n";
        let s = scan(text);
        assert_eq!(s.chunks.len(), 1);
        assert_eq!(
            &text[s.chunks[0].span.start..s.chunks[0].span.end],
            "train { epochs = 1 }"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("let x = {}{}", "[".repeat(200), "]".repeat(200));
        let s = scan(&text);
        assert!(matches!(s.chunks[0].errors[0], LexError::TooDeep { .. }));
    }
}
