//! Diagnostics are plain data: a code, a message, labelled spans, help and
//! notes, and optional machine-applicable fixes. Every stage produces them;
//! one module (`render`) turns them into terminal text, JSON or editor
//! diagnostics, so all three always say the same thing.
//!
//! Each code is declared next to the check that raises it, with its long
//! explanation as the doc comment (printed by `ft explain`). `registry`
//! gathers them all.

pub mod registry;
pub mod render;

use crate::syntax::ast::Span;
use serde::Serialize;

/// A stable diagnostic code such as `FT0102`, with its one-line title and
/// its long explanation.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    pub id: &'static str,
    pub title: &'static str,
    pub explanation: &'static str,
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id)
    }
}

/// Declares diagnostic codes. The doc comment of each becomes its long
/// explanation, so the text that `ft explain` prints lives right beside the
/// check that raises the code.
#[macro_export]
macro_rules! declare_codes {
    ($( $(#[doc = $doc:expr])* $name:ident = $id:literal, $title:literal; )*) => {
        $(
            $(#[doc = $doc])*
            pub static $name: $crate::diagnostics::Code = $crate::diagnostics::Code {
                id: $id,
                title: $title,
                explanation: concat!($($doc, "\n",)*),
            };
        )*
        /// Every code declared in this module.
        pub static CODES: &[&$crate::diagnostics::Code] = &[$(&$name),*];
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Which file a span points into: 0 is the recipe being checked, others are
/// imported files (see `SourceMap`).
pub type FileId = usize;

#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
}

/// A replacement that fixes the problem: the did-you-mean suggestions become
/// quick fixes in the editor.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    pub file: FileId,
    pub span: Span,
    pub replacement: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub code: &'static Code,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    pub fn error(code: &'static Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            primary: Label {
                file: 0,
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
            fixes: Vec::new(),
        }
    }
    pub fn warning(code: &'static Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Self::error(code, span, message)
        }
    }
    /// The text under the primary span.
    pub fn label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }
    pub fn in_file(mut self, file: FileId) -> Self {
        self.primary.file = file;
        for f in &mut self.fixes {
            f.file = file;
        }
        self
    }
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        let file = self.primary.file;
        self.secondary.push(Label {
            file,
            span,
            message: message.into(),
        });
        self
    }
    pub fn secondary_in(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            file,
            span,
            message: message.into(),
        });
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
    pub fn fix(
        mut self,
        span: Span,
        replacement: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        self.fixes.push(Fix {
            file: self.primary.file,
            span,
            replacement: replacement.into(),
            title: title.into(),
        });
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `word` by edit distance, if close enough to be a
/// plausible typo. Used by every did-you-mean.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&lower, &c.to_ascii_lowercase());
        let dist = strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase());
        let close = dist <= 2.max(word.len() / 3) || score >= 0.88;
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Adds a did-you-mean help and quick fix to a diagnostic when a candidate is
/// close; otherwise lists the candidates (up to a handful).
pub fn suggest<'a>(
    d: Diagnostic,
    word: &str,
    span: Span,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    kind: &str,
) -> Diagnostic {
    match did_you_mean(word, candidates.clone()) {
        Some(best) => d.help(format!("did you mean `{best}`?")).fix(
            span,
            best,
            format!("Replace with `{best}`"),
        ),
        None => {
            let all: Vec<&str> = candidates.into_iter().collect();
            if all.is_empty() {
                d
            } else {
                let shown: Vec<String> = all.iter().take(12).map(|c| format!("`{c}`")).collect();
                let more = if all.len() > 12 {
                    format!(" and {} more", all.len() - 12)
                } else {
                    String::new()
                };
                d.help(format!("{kind}: {}{more}", shown.join(", ")))
            }
        }
    }
}
