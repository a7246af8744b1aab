//! Compiler diagnostics → LSP diagnostics: the same ones `ft check` prints,
//! with the code, severity, secondary labels as related information, and
//! help and notes appended to the message (editors show no other place for
//! them).

use std::path::Path;

use ft_compiler::diagnostics::{Diagnostic, Label, Severity};
use ft_compiler::driver::Analysis;
use ft_compiler::syntax::ast::{Item, Span};
use lsp_types as lsp;

use crate::position::{Encoding, Index};

/// The diagnostics to publish for the recipe file (file 0). A problem in an
/// imported file is shown on the `import` that brings it in, with the real
/// place as related information.
pub fn to_lsp(a: &Analysis, enc: Encoding) -> Vec<lsp::Diagnostic> {
    let indexes: Vec<Index> = a.sources.files.iter().map(|f| Index::of(f, enc)).collect();
    a.diagnostics
        .iter()
        .map(|d| convert(d, a, &indexes))
        .collect()
}

fn location(a: &Analysis, indexes: &[Index], l: &Label) -> Option<lsp::Location> {
    let f = a.sources.files.get(l.file)?;
    Some(lsp::Location {
        uri: crate::uri::from_path(&f.path)?,
        range: indexes[l.file].range(l.span),
    })
}

/// The span in the recipe of the `import` through which `file` was loaded
/// (the first import when the chain is longer).
fn import_span(a: &Analysis, file: usize) -> Span {
    let Some(root) = a.files.first() else {
        return Span::default();
    };
    let target = a.sources.files.get(file).map(|f| f.path.as_path());
    let dir = a.sources.get(0).dir();
    let mut first = None;
    for item in &root.items {
        if let Item::Import(im) = item {
            first.get_or_insert(im.span);
            let p = dir.join(&im.path.value);
            let canon = p.canonicalize().unwrap_or(p);
            if Some(canon.as_path()) == target || Some(Path::new(&im.path.value)) == target {
                return im.span;
            }
        }
    }
    first.unwrap_or_default()
}

fn convert(d: &Diagnostic, a: &Analysis, indexes: &[Index]) -> lsp::Diagnostic {
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() && d.primary.message != d.message {
        message.push_str(&format!(" ({})", d.primary.message));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    let mut related: Vec<lsp::DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|l| {
            Some(lsp::DiagnosticRelatedInformation {
                location: location(a, indexes, l)?,
                message: if l.message.is_empty() {
                    "related".into()
                } else {
                    l.message.clone()
                },
            })
        })
        .collect();
    let range = if d.primary.file == 0 {
        indexes[0].range(d.primary.span)
    } else {
        let name = &a.sources.get(d.primary.file).name;
        message = format!("in `{name}`: {message}");
        if let Some(location) = location(a, indexes, &d.primary) {
            related.insert(
                0,
                lsp::DiagnosticRelatedInformation {
                    location,
                    message: "the problem is here".into(),
                },
            );
        }
        indexes[0].range(import_span(a, d.primary.file))
    };
    lsp::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
        }),
        code: Some(lsp::NumberOrString::String(d.code.id.to_string())),
        code_description: None,
        source: Some("ft".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}
