//! Byte offsets ↔ LSP positions in the negotiated encoding.
//!
//! The compiler counts bytes; an LSP client counts UTF-16 code units
//! (the default, and VS Code's only choice) or, when both sides agree,
//! UTF-8 bytes. Every conversion goes through [`Index`], so no handler
//! ever does column arithmetic of its own.

use std::sync::Arc;

use ft_compiler::source::SourceFile;
use ft_compiler::syntax::ast::Span;
use lsp_types::{Position, Range};

/// The column unit agreed with the client at `initialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    Utf8,
    #[default]
    Utf16,
}

impl Encoding {
    /// Picks the first encoding the client offers that the server supports;
    /// UTF-16 when it offers none (the protocol's default).
    pub fn negotiate(offered: Option<&[lsp_types::PositionEncodingKind]>) -> Encoding {
        for kind in offered.unwrap_or_default() {
            match kind.as_str() {
                "utf-8" => return Encoding::Utf8,
                "utf-16" => return Encoding::Utf16,
                _ => {}
            }
        }
        Encoding::Utf16
    }

    pub fn kind(self) -> lsp_types::PositionEncodingKind {
        match self {
            Encoding::Utf8 => lsp_types::PositionEncodingKind::UTF8,
            Encoding::Utf16 => lsp_types::PositionEncodingKind::UTF16,
        }
    }
}

/// A text with its line starts, converting positions in one encoding.
#[derive(Debug, Clone)]
pub struct Index {
    file: SourceFile,
    pub encoding: Encoding,
}

impl Index {
    pub fn new(text: impl Into<Arc<str>>, encoding: Encoding) -> Self {
        Index {
            file: SourceFile::new("", "", text),
            encoding,
        }
    }

    /// An index over a compiler source file (an import's text).
    pub fn of(file: &SourceFile, encoding: Encoding) -> Self {
        Index {
            file: file.clone(),
            encoding,
        }
    }

    pub fn text(&self) -> &str {
        &self.file.text
    }

    pub fn position(&self, offset: usize) -> Position {
        match self.encoding {
            Encoding::Utf16 => {
                let (line, character) = self.file.utf16_position(offset);
                Position { line, character }
            }
            Encoding::Utf8 => {
                let mut o = offset.min(self.text().len());
                while !self.text().is_char_boundary(o) {
                    o -= 1;
                }
                let line = self.file.line_of(o);
                Position {
                    line: line as u32,
                    character: (o - self.file.line_start(line)) as u32,
                }
            }
        }
    }

    /// The byte offset of a position; past the end of a line it clamps to
    /// the line's end, past the last line to the end of the text, and a
    /// UTF-8 column inside a character to that character's start.
    pub fn offset(&self, pos: Position) -> usize {
        match self.encoding {
            Encoding::Utf16 => self.file.offset_of_utf16(pos.line, pos.character),
            Encoding::Utf8 => {
                let line = pos.line as usize;
                if line >= self.file.line_count() {
                    return self.text().len();
                }
                let start = self.file.line_start(line);
                let rest = &self.text()[start..];
                let end = start + rest.find('\n').unwrap_or(rest.len());
                let mut o = (start + pos.character as usize).min(end);
                while !self.text().is_char_boundary(o) {
                    o -= 1;
                }
                o
            }
        }
    }

    pub fn range(&self, span: Span) -> Range {
        Range {
            start: self.position(span.start),
            end: self.position(span.end),
        }
    }

    pub fn span(&self, range: Range) -> Span {
        let a = self.offset(range.start);
        let b = self.offset(range.end);
        Span::new(a.min(b), a.max(b))
    }

    /// The range covering the whole text.
    pub fn full_range(&self) -> Range {
        self.range(Span::new(0, self.text().len()))
    }
}

/// Applies one `didChange` content change (ranged or whole) to a text.
pub fn apply_change(
    text: &str,
    change: &lsp_types::TextDocumentContentChangeEvent,
    enc: Encoding,
) -> String {
    match change.range {
        None => change.text.clone(),
        Some(range) => {
            let idx = Index::new(text, enc);
            let span = idx.span(range);
            let mut out = String::with_capacity(text.len() + change.text.len());
            out.push_str(&text[..span.start]);
            out.push_str(&change.text);
            out.push_str(&text[span.end..]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a = \"é😀\" # x\nb = 1\n";

    #[test]
    fn utf16_and_utf8_columns() {
        let after_emoji = TEXT.find("\" #").unwrap();
        let u16 = Index::new(TEXT, Encoding::Utf16);
        let u8 = Index::new(TEXT, Encoding::Utf8);
        assert_eq!(u16.position(after_emoji), Position::new(0, 5 + 1 + 2));
        assert_eq!(u8.position(after_emoji), Position::new(0, 5 + 2 + 4));
        assert_eq!(u16.offset(Position::new(0, 8)), after_emoji);
        assert_eq!(u8.offset(Position::new(0, 11)), after_emoji);
        // Inside the emoji (UTF-8 byte 2 of 4) clamps to its start.
        assert_eq!(u8.offset(Position::new(0, 9)), TEXT.find('😀').unwrap());
        // Past the line end, past the last line.
        assert_eq!(
            u16.offset(Position::new(1, 99)),
            TEXT.find("1\n").unwrap() + 1
        );
        assert_eq!(u8.offset(Position::new(9, 0)), TEXT.len());
    }

    #[test]
    fn negotiation() {
        use lsp_types::PositionEncodingKind as K;
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
        assert_eq!(
            Encoding::negotiate(Some(&[K::UTF32, K::UTF8])),
            Encoding::Utf8
        );
        assert_eq!(
            Encoding::negotiate(Some(&[K::UTF16, K::UTF8])),
            Encoding::Utf16
        );
        assert_eq!(Encoding::negotiate(Some(&[K::UTF32])), Encoding::Utf16);
    }

    #[test]
    fn ranged_change() {
        let c = lsp_types::TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(0, 5), Position::new(0, 8))),
            range_length: None,
            text: "ü".into(),
        };
        assert_eq!(
            apply_change(TEXT, &c, Encoding::Utf16),
            "a = \"ü\" # x\nb = 1\n"
        );
    }
}
