//! The one place diagnostics become text: for a terminal (through miette's
//! graphical handler, with or without colour), as JSON for machines, and as
//! positions for editors (the language server converts from `Located`).

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use super::{Diagnostic, Severity};
use crate::source::{SourceFile, SourceMap};

/// How the terminal output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Colour,
    Plain,
}

impl Style {
    /// Colour only on a terminal and when `NO_COLOR` is unset.
    pub fn detect(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if is_terminal && !no_color {
            Style::Colour
        } else {
            Style::Plain
        }
    }
}

/// Renders diagnostics for a terminal, one after the other.
pub fn terminal(diags: &[Diagnostic], sources: &SourceMap, style: Style) -> String {
    let theme = match style {
        Style::Colour => GraphicalTheme::unicode(),
        Style::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    for d in diags {
        let report = Report::new(d, sources);
        let _ = handler.render_report(&mut out, &report);
    }
    out
}

/// A one-line summary such as `2 errors, 1 warning`.
pub fn summary(diags: &[Diagnostic]) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// A diagnostic with file names and line/column positions resolved: what
/// `--format json` prints and what the language server converts.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub code: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub primary: LocatedLabel,
    pub secondary: Vec<LocatedLabel>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    pub fixes: Vec<LocatedFix>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocatedLabel {
    pub file: String,
    pub message: String,
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocatedFix {
    pub title: String,
    pub replacement: String,
    pub file: String,
    pub start: Position,
    pub end: Position,
}

/// Positions in both conventions: 1-based line/column in characters for
/// people, 0-based line/UTF-16 column for editors, and the byte offset.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Position {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub lsp_line: u32,
    pub lsp_character: u32,
}

fn position(f: &SourceFile, offset: usize) -> Position {
    let (line, column) = f.line_col(offset);
    let (lsp_line, lsp_character) = f.utf16_position(offset);
    Position {
        offset,
        line,
        column,
        lsp_line,
        lsp_character,
    }
}

pub fn locate(d: &Diagnostic, sources: &SourceMap) -> Located {
    let label = |l: &super::Label| {
        let f = sources.get(l.file);
        LocatedLabel {
            file: f.name.clone(),
            message: l.message.clone(),
            start: position(f, l.span.start),
            end: position(f, l.span.end),
        }
    };
    Located {
        code: d.code.id,
        title: d.code.title,
        severity: d.severity,
        message: d.message.clone(),
        file: sources.get(d.primary.file).name.clone(),
        primary: label(&d.primary),
        secondary: d.secondary.iter().map(label).collect(),
        help: d.help.clone(),
        notes: d.notes.clone(),
        fixes: d
            .fixes
            .iter()
            .map(|fx| {
                let f = sources.get(fx.file);
                LocatedFix {
                    title: fx.title.clone(),
                    replacement: fx.replacement.clone(),
                    file: f.name.clone(),
                    start: position(f, fx.span.start),
                    end: position(f, fx.span.end),
                }
            })
            .collect(),
    }
}

/// JSON: an array of located diagnostics.
pub fn json(diags: &[Diagnostic], sources: &SourceMap) -> serde_json::Value {
    serde_json::to_value(diags.iter().map(|d| locate(d, sources)).collect::<Vec<_>>())
        .expect("diagnostics serialise")
}

/// Adapts a diagnostic to miette's protocol for the graphical handler.
struct Report<'a> {
    diag: &'a Diagnostic,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl<'a> Report<'a> {
    fn new(diag: &'a Diagnostic, sources: &SourceMap) -> Self {
        let file = sources.get(diag.primary.file);
        let to_span = |s: crate::syntax::ast::Span| SourceSpan::from((s.start, s.len()));
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            Some(diag.primary.message.clone()).filter(|m| !m.is_empty()),
            to_span(diag.primary.span),
        )];
        let mut elsewhere = Vec::new();
        for l in &diag.secondary {
            if l.file == diag.primary.file {
                labels.push(LabeledSpan::new_with_span(
                    Some(l.message.clone()).filter(|m| !m.is_empty()),
                    to_span(l.span),
                ));
            } else {
                // A label in another file (an import) becomes a note with
                // its location, so the report still reads as one problem.
                let f = sources.get(l.file);
                let (line, col) = f.line_col(l.span.start);
                elsewhere.push(format!("note: {} at {}:{line}:{col}", l.message, f.name));
            }
        }
        let mut help_lines: Vec<String> = diag.help.iter().cloned().collect();
        help_lines.extend(diag.notes.iter().map(|n| format!("note: {n}")));
        help_lines.extend(elsewhere);
        Report {
            diag,
            source: NamedSource::new(file.name.clone(), file.text.to_string()),
            labels,
            help: (!help_lines.is_empty()).then(|| help_lines.join("\n")),
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code.id))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}
