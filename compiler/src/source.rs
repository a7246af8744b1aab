//! Source files and positions. Byte offsets are the compiler's currency;
//! lines and columns (1-based for people, UTF-16 for editors) are derived
//! here and nowhere else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::syntax::ast::Span;

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The name shown in diagnostics (the path as the user gave it).
    pub name: String,
    pub text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    pub fn new(
        path: impl Into<PathBuf>,
        name: impl Into<String>,
        text: impl Into<Arc<str>>,
    ) -> Self {
        let text: Arc<str> = text.into();
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path: path.into(),
            name: name.into(),
            text,
            line_starts: starts.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// 0-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        }
    }

    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len())
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// 1-based line and column (in characters) for people.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.clamp(offset);
        let line = self.line_of(offset);
        let col = self.text[self.line_starts[line]..offset].chars().count();
        (line + 1, col + 1)
    }

    /// 0-based line and UTF-16 column, as the Language Server Protocol counts.
    pub fn utf16_position(&self, offset: usize) -> (u32, u32) {
        let offset = self.clamp(offset);
        let line = self.line_of(offset);
        let col: usize = self.text[self.line_starts[line]..offset]
            .chars()
            .map(char::len_utf16)
            .sum();
        (line as u32, col as u32)
    }

    /// The byte offset of a 0-based line and UTF-16 column (clamped to the
    /// line's end).
    pub fn offset_of_utf16(&self, line: u32, col: u32) -> usize {
        let line = line as usize;
        if line >= self.line_starts.len() {
            return self.text.len();
        }
        let start = self.line_starts[line];
        let end = self
            .line_starts
            .get(line + 1)
            .copied()
            .unwrap_or(self.text.len());
        let mut units = 0u32;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= col || c == '\n' {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        end
    }

    fn clamp(&self, offset: usize) -> usize {
        let mut o = offset.min(self.text.len());
        while !self.text.is_char_boundary(o) {
            o -= 1;
        }
        o
    }

    pub fn slice(&self, span: Span) -> &str {
        &self.text[self.clamp(span.start)..self.clamp(span.end)]
    }
}

/// All files involved in one compilation: the recipe (id 0) and its imports.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, file: SourceFile) -> usize {
        self.files.push(file);
        self.files.len() - 1
    }
    pub fn get(&self, id: usize) -> &SourceFile {
        &self.files[id]
    }
    pub fn find(&self, path: &Path) -> Option<usize> {
        self.files.iter().position(|f| f.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_positions_round_trip() {
        let f = SourceFile::new("x.ft", "x.ft", "a = \"é😀\"\nb = 1\n");
        let off = "a = \"é😀".len();
        let (l, c) = f.utf16_position(off);
        assert_eq!((l, c), (0, 5 + 1 + 2));
        assert_eq!(f.offset_of_utf16(l, c), off);
        assert_eq!(f.line_col(f.text.find('b').unwrap()), (2, 1));
    }
}
