//! `ft fmt`: the one canonical layout of a recipe.
//!
//! The formatter prints the AST back (it never edits the text in place), so
//! two recipes that parse to the same tree and carry the same comments print
//! the same, whatever their spacing was. It only depends on the original
//! layout in the three places listed under "What the user keeps" below.
//! Formatting is idempotent: `format(format(x)) == format(x)`.
//!
//! A file with syntax errors is never formatted: guessing at a broken item
//! could lose text. [`format`] returns the diagnostics instead.
//!
//! # Canonical layout
//!
//! - Indentation is 2 spaces per level; output uses `\n` line ends and ends
//!   with exactly one newline (an empty file stays empty).
//! - Top-level items are separated by exactly one blank line. The exception
//!   is a run of `import`s or a run of `let`s, which the user may keep
//!   together (see below).
//! - `key = value`, `role: value`, `a.b in values`, `x + y`: single spaces
//!   around `=`, `in` and every binary operator, one space after `:`, none
//!   inside brackets of lists and calls, one inside `{ }` of records and
//!   one-line bodies.
//! - Strings are copied byte for byte from the source (escapes and `"""`
//!   long strings untouched), numbers keep their written text (`1e-4`,
//!   `10_000`, `80%`), parentheses are kept where the user wrote them.
//! - Lists, records and calls go on one line when that line fits in
//!   100 columns and nothing inside them is a comment. Otherwise they are
//!   written one element per line, each followed by a comma, closing bracket
//!   on its own line at the opening line's indentation. The decision is
//!   greedy, outermost first: an outer list that does not fit breaks, and
//!   each inner one is tried again on its own line. Only the first and last
//!   line of a multi-line `"""` string count for the width (the middle is
//!   the user's text, which no layout can change).
//! - Alignment: inside a multi-line body, record or call, consecutive
//!   single-line `key = value` entries form a group, and the `=` of a group
//!   is aligned one space after its longest key (as in the language sketch).
//!   A group ends at a blank line, at an entry that is not `key = value`
//!   (a sub-block, a sweep axis, a positional argument) and at an entry that
//!   spans several lines; own-line comments do not end it. Whether a value
//!   fits is decided before padding, so padding never changes a layout.
//! - Trailing comments are written two spaces after the code, as `#text`
//!   with the text as written (trailing blanks removed). Trailing comments
//!   are not aligned with each other.
//!
//! # What the user keeps
//!
//! 1. **One-line bodies.** A block body is written on one line,
//!    `evaluate { on = test, metrics = [accuracy, f1] }`, when the source has
//!    no line break between its `{` and its first entry, it contains no
//!    comment and no sub-block, every entry fits on one line, and the whole
//!    line fits in 80 columns. Otherwise it gets one entry per line (no
//!    commas). This is the rule prettier uses for objects: to expand a body,
//!    break the line after its `{`; to collapse one, join its first entry to
//!    the `{`. An empty body without comments is `{}`.
//! 2. **Blank lines** between entries, list elements, comments and (for runs
//!    of `import`s or `let`s) items are kept, collapsed to one. Never right
//!    after an opening bracket or before a closing one.
//! 3. **Comments**, all of them, where they were (see below).
//!
//! # Comments
//!
//! Every comment of the file is printed exactly once. Each sequence (the
//! file's items, a body's entries, a list's elements, a record's fields, a
//! call's arguments) owns the comments between its elements:
//!
//! - a comment on the same line after an element (after its comma, if any)
//!   stays at the end of that element's last line;
//! - a comment on the line of the opening bracket, before any element,
//!   stays after the bracket (`train {  # note`); so does one after a
//!   block's header when its `{` is on the next line, and one between a
//!   call's name and its `(`;
//! - a comment on its own line is written on its own line before the next
//!   element, or before the closing bracket when no element follows.
//!
//! A list, record, call or body with a comment anywhere inside it is always
//! multi-line. A comment that falls *inside* an element where no comment
//! slot exists (`lr = # note` then the value on the next line, or between a
//! block's keyword and its name) is moved to its own line just before that
//! element, after the element's other leading comments. It never leaves the
//! innermost list, record, call or body that contains it, so a second run
//! finds it as an ordinary leading comment and prints the same text.

mod comments;
mod expr;
mod print;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;

use std::fmt;

use crate::diagnostics::Diagnostic;
use crate::syntax::{self, ast::Item};

/// Lists, records and calls stay on one line up to this column.
pub const MAX_WIDTH: usize = 100;
/// One-line block bodies stay on one line up to this column (tighter than
/// [`MAX_WIDTH`]: a block header plus entries reads worse when long).
pub const MAX_BODY_WIDTH: usize = 80;
/// Spaces per indentation level.
pub const INDENT: usize = 2;

/// Why a recipe was not formatted: it does not parse. Carries the syntax
/// diagnostics, ready for the usual rendering.
#[derive(Debug, Clone)]
pub struct FormatError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "the recipe has {n} syntax error{s}; it is formatted once it parses"
        )
    }
}

impl std::error::Error for FormatError {}

/// Formats a recipe's text into the canonical layout described in the module
/// documentation. Refuses (returns the syntax diagnostics) when any item of
/// the file does not parse.
pub fn format(text: &str) -> Result<String, FormatError> {
    let (file, diagnostics) = syntax::parse(text);
    if file.items.iter().any(|i| matches!(i, Item::Broken(_))) {
        return Err(FormatError { diagnostics });
    }
    Ok(print::file(text, &file))
}
