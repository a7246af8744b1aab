//! Template strings: literal text and `{field}` placeholders, with the
//! placeholders' positions in the file so that a missing field is pointed
//! at exactly.

use super::value::{Template, TemplatePart};
use crate::syntax::ast::Span;

/// Splits a template into text and `{field}` parts. `base` is the file
/// offset of the text when it maps one-to-one onto the file.
pub fn parse_template(text: &str, base: Option<usize>) -> Result<Template, (usize, String)> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                lit.push('{');
                i += 2;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                lit.push('}');
                i += 2;
            }
            b'{' => {
                let Some(close) = text[i + 1..].find('}') else {
                    return Err((i, "this `{` is not closed".into()));
                };
                let name = text[i + 1..i + 1 + close].trim();
                let valid = !name.is_empty()
                    && name.split('.').all(|seg| {
                        !seg.is_empty()
                            && seg
                                .chars()
                                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == ' ')
                    });
                if !valid {
                    return Err((
                        i,
                        if name.is_empty() {
                            "empty placeholder `{}`".into()
                        } else {
                            format!("`{{{name}}}` is not a field name")
                        },
                    ));
                }
                if !lit.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut lit)));
                }
                let span = match base {
                    Some(b) => Span::new(b + i + 1, b + i + 1 + close),
                    None => Span::default(),
                };
                parts.push(TemplatePart::Field {
                    path: name.to_string(),
                    span,
                });
                i += close + 2;
            }
            b'}' => return Err((i, "unmatched `}`".into())),
            _ => {
                let c = text[i..].chars().next().expect("char");
                lit.push(c);
                i += c.len_utf8();
            }
        }
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Text(lit));
    }
    Ok(Template {
        parts,
        exact_spans: base.is_some(),
    })
}
