//! Edits: quick fixes from the diagnostics' did-you-mean fixes, whole-file
//! formatting, and the trainable-parameter inlay hint after `peft …`.

use std::collections::HashMap;

use ft_compiler::driver::Analysis;
use ft_compiler::syntax::ast::{Item, Span};
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, InlayHint, InlayHintKind, InlayHintLabel,
    TextEdit, WorkspaceEdit,
};

use crate::docs::Document;
use crate::navigate::Files;
use crate::position::Encoding;

/// Quick fixes for the diagnostics of the recipe file that touch `range`.
pub fn code_actions(files: &Files, range: Span, enc: Encoding) -> Vec<CodeActionOrCommand> {
    let a = files.analysis;
    let lsp_diags = crate::diagnostics::to_lsp(a, enc);
    let mut out = Vec::new();
    for (d, ld) in a.diagnostics.iter().zip(lsp_diags) {
        let touches = d.primary.file == 0
            && d.primary.span.start <= range.end
            && range.start <= d.primary.span.end;
        if !touches {
            continue;
        }
        let single = d.fixes.len() == 1;
        for fix in &d.fixes {
            let Some(loc) = files.location(fix.file, fix.span) else {
                continue;
            };
            let edit = TextEdit {
                range: loc.range,
                new_text: fix.replacement.clone(),
            };
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: fix.title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![ld.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(loc.uri, vec![edit])])),
                    ..Default::default()
                }),
                is_preferred: Some(single),
                ..Default::default()
            }));
        }
    }
    out
}

/// The whole document formatted, as one edit; nothing when the text is
/// already formatted or does not parse (formatting never guesses).
pub fn format(doc: &Document) -> Option<Vec<TextEdit>> {
    let text = doc.text();
    let formatted = std::panic::catch_unwind(|| ft_compiler::fmt::format(text))
        .ok()?
        .ok()?;
    if formatted == text {
        return Some(Vec::new());
    }
    Some(vec![TextEdit {
        range: doc.index.full_range(),
        new_text: formatted,
    }])
}

/// `: 74,498 trainable (0.33%)` after the method of `peft lora`.
pub fn inlay_hints(doc: &Document, a: &Analysis, enc: Encoding) -> Vec<InlayHint> {
    let Some((f, _, _)) = crate::plan::plan(doc) else {
        return Vec::new();
    };
    let idx = crate::position::Index::of(a.sources.get(0), enc);
    let Some(file) = a.files.first() else {
        return Vec::new();
    };
    file.items
        .iter()
        .filter_map(|item| match item {
            Item::Block(b) if b.keyword.name == "peft" => {
                let end = b.name.as_ref().map_or(b.keyword.span.end, |n| n.span.end);
                Some(InlayHint {
                    position: idx.position(end),
                    label: InlayHintLabel::String(format!(
                        "{} trainable ({:.2}%)",
                        crate::figures::group(f.trainable),
                        f.percent()
                    )),
                    kind: Some(InlayHintKind::TYPE),
                    text_edits: None,
                    tooltip: None,
                    padding_left: Some(true),
                    padding_right: Some(true),
                    data: None,
                })
            }
            _ => None,
        })
        .collect()
}
