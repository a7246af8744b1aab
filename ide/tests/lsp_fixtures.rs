//! LSP fixture tests in the style of nickel's lsp-harness: each recipe in
//! `tests/lsp_fixtures/*.ft` is opened in the real server (in process, as
//! in `lsp.rs`), the requests written in it are sent, and the JSON
//! responses are compared with an insta snapshot
//! (`tests/snapshots/lsp_fixtures__fixture@<name>.ft.snap`).
//!
//! A fixture is opened at its own path, so its relative paths resolve from
//! `ide/tests/lsp_fixtures/` (the real model is
//! `../../../.cache/models/all-MiniLM-L6-v2`). `shared/` holds files the
//! fixtures import; it is not a case itself. Requests are comments:
//!
//! - a marker line, `#` followed only by `^request` words: each `^` names
//!   the column (in characters) of the nearest line above that is not a
//!   marker line; requests: `hover`, `complete`, `definition`,
//!   `references` (declaration included), `actions` (code actions for the
//!   empty range there);
//! - a directive line, `#! word word …`: whole-document requests
//!   `symbols`, `format`, `inlay`, and `needs-assets` (the case reads the
//!   real model and data: it fails, naming `scripts/fetch-assets.sh`, when
//!   they have not been fetched).
//!
//! When `lsp_fixtures/before/<name>.ft` exists, it is opened first and
//! analysed (the last good tree), then replaced by the fixture's text, as
//! when a user is mid-edit; requests are sent after the new diagnostics.
//!
//! Every snapshot starts with the diagnostics published on open, then one
//! section per request in file order: the request, the cursor shown as `‸`
//! in its line, and the response as pretty JSON. Machine-specific paths are
//! replaced by `<dir>` (the fixture folder) and `<repo>`.

mod common;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use common::{repo, require_assets, tdp, Client};
use lsp_types::{self as lsp, request as req, Position, Range, Uri};
use serde_json::Value;

/// A request written in a fixture.
#[derive(Debug)]
struct Ask {
    kind: String,
    /// Line and character (in chars) of a positional request.
    at: Option<(usize, usize)>,
}

/// The requests of a fixture, and whether it needs the fetched assets.
fn parse(text: &str) -> (Vec<Ask>, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let mut asks = Vec::new();
    let mut needs_assets = false;
    let mut target: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("#!") {
            for word in rest.split_whitespace() {
                match word {
                    "needs-assets" => needs_assets = true,
                    "symbols" | "format" | "inlay" => asks.push(Ask {
                        kind: word.into(),
                        at: None,
                    }),
                    w => panic!("line {}: unknown directive `{w}`", i + 1),
                }
            }
            continue;
        }
        match markers(line) {
            Some(ms) => {
                let t = target.unwrap_or_else(|| panic!("line {}: nothing above", i + 1));
                asks.extend(ms.into_iter().map(|(col, kind)| Ask {
                    kind,
                    at: Some((t, col)),
                }));
            }
            None => target = Some(i),
        }
    }
    (asks, needs_assets)
}

/// The `^request` markers of a marker line, with their character columns.
fn markers(line: &str) -> Option<Vec<(usize, String)>> {
    let body = line.trim_start().strip_prefix('#')?;
    if body.trim().is_empty() || body.starts_with('!') {
        return None;
    }
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = line.chars().take_while(|c| c.is_whitespace()).count() + 1;
    while i < chars.len() {
        match chars[i] {
            c if c.is_whitespace() => i += 1,
            '^' => {
                let word: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                if !matches!(
                    word.as_str(),
                    "hover" | "complete" | "definition" | "references" | "actions"
                ) {
                    return None;
                }
                out.push((i, word.clone()));
                i += 1 + word.len();
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lsp_fixtures")
        .canonicalize()
        .unwrap()
}

fn uri_of(path: &Path) -> Uri {
    Uri::from_str(&format!("file://{}", path.display())).unwrap()
}

/// The UTF-16 position of a character column.
fn position(text: &str, (line, col): (usize, usize)) -> Position {
    let l = text.lines().nth(line).unwrap_or("");
    let character: usize = l.chars().take(col).map(char::len_utf16).sum();
    Position::new(line as u32, character as u32)
}

/// The line of a request with the cursor drawn in it.
fn cursor_line(text: &str, (line, col): (usize, usize)) -> String {
    let l = text.lines().nth(line).unwrap_or("");
    let before: String = l.chars().take(col).collect();
    let after: String = l.chars().skip(col).collect();
    format!("{before}‸{after}")
}

/// Pretty JSON with machine-specific paths replaced.
fn stable(v: &Value) -> String {
    let dir = fixtures_dir().display().to_string();
    let root = repo().canonicalize().unwrap().display().to_string();
    serde_json::to_string_pretty(v)
        .unwrap()
        .replace(&dir, "<dir>")
        .replace(&root, "<repo>")
}

/// Sends the requests of one fixture and renders the snapshot text.
fn run_fixture(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (asks, needs_assets) = parse(&text);
    assert!(!asks.is_empty(), "{}: no requests", path.display());
    if needs_assets {
        require_assets();
    }
    let uri = uri_of(path);
    let mut c = Client::start();
    let before = path
        .parent()
        .unwrap()
        .join("before")
        .join(path.file_name().unwrap());
    let (published, mut out) = match std::fs::read_to_string(&before) {
        // Mid-edit: the earlier text is analysed first, then replaced.
        Ok(earlier) => {
            c.open(&uri, &earlier);
            let good = c.diagnostics(&uri, Some(1));
            let v = c.change(&uri, &text);
            let d = c.diagnostics(&uri, Some(v));
            let head = format!(
                "diagnostics of before/\n{}\n\ndiagnostics after editing it into this text\n",
                stable(&serde_json::to_value(&good).unwrap())
            );
            (d, head)
        }
        Err(_) => {
            c.open(&uri, &text);
            (c.diagnostics(&uri, Some(1)), "diagnostics\n".to_string())
        }
    };
    out.push_str(&stable(&serde_json::to_value(&published).unwrap()));
    out.push('\n');
    let doc = lsp::TextDocumentIdentifier { uri: uri.clone() };
    for ask in &asks {
        let pos = ask.at.map(|at| position(&text, at));
        let response: Value = match (ask.kind.as_str(), pos) {
            ("hover", Some(p)) => json(c.request::<req::HoverRequest>(lsp::HoverParams {
                text_document_position_params: tdp(&uri, p),
                work_done_progress_params: Default::default(),
            })),
            ("complete", Some(p)) => json(c.request::<req::Completion>(lsp::CompletionParams {
                text_document_position: tdp(&uri, p),
                work_done_progress_params: Default::default(),
                partial_result_params: Default::default(),
                context: None,
            })),
            ("definition", Some(p)) => {
                json(c.request::<req::GotoDefinition>(lsp::GotoDefinitionParams {
                    text_document_position_params: tdp(&uri, p),
                    work_done_progress_params: Default::default(),
                    partial_result_params: Default::default(),
                }))
            }
            ("references", Some(p)) => json(c.request::<req::References>(lsp::ReferenceParams {
                text_document_position: tdp(&uri, p),
                work_done_progress_params: Default::default(),
                partial_result_params: Default::default(),
                context: lsp::ReferenceContext {
                    include_declaration: true,
                },
            })),
            ("actions", Some(p)) => {
                // As a client does: the diagnostics under the cursor.
                let under: Vec<_> = published
                    .iter()
                    .filter(|d| d.range.start <= p && p <= d.range.end)
                    .cloned()
                    .collect();
                json(c.request::<req::CodeActionRequest>(lsp::CodeActionParams {
                    text_document: doc.clone(),
                    range: Range::new(p, p),
                    context: lsp::CodeActionContext {
                        diagnostics: under,
                        only: None,
                        trigger_kind: None,
                    },
                    work_done_progress_params: Default::default(),
                    partial_result_params: Default::default(),
                }))
            }
            ("symbols", None) => json(c.request::<req::DocumentSymbolRequest>(
                lsp::DocumentSymbolParams {
                    text_document: doc.clone(),
                    work_done_progress_params: Default::default(),
                    partial_result_params: Default::default(),
                },
            )),
            ("format", None) => json(c.request::<req::Formatting>(lsp::DocumentFormattingParams {
                text_document: doc.clone(),
                options: lsp::FormattingOptions {
                    tab_size: 2,
                    insert_spaces: true,
                    ..Default::default()
                },
                work_done_progress_params: Default::default(),
            })),
            ("inlay", None) => json(c.request::<req::InlayHintRequest>(lsp::InlayHintParams {
                text_document: doc.clone(),
                range: Range::new(Position::new(0, 0), Position::new(u32::MAX, 0)),
                work_done_progress_params: Default::default(),
            })),
            (k, _) => panic!("{}: malformed request `{k}`", path.display()),
        };
        let head = match (ask.at, pos) {
            (Some(at), Some(p)) => format!(
                "{} {}:{}  {}",
                ask.kind,
                p.line,
                p.character,
                cursor_line(&text, at).trim()
            ),
            _ => ask.kind.clone(),
        };
        out.push_str(&format!("\n{head}\n{}\n", stable(&response)));
    }
    assert!(c.shutdown(), "clean shutdown");
    out
}

fn json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn fixture() {
    insta::glob!("lsp_fixtures/*.ft", |path| {
        insta::assert_snapshot!(run_fixture(path));
    });
}

#[test]
fn markers_name_columns_of_the_line_above() {
    let text = "train {\n  epochs = 3\n#   ^hover ^complete\n#\n  # ^definition\n}\n#! symbols needs-assets\n";
    let (asks, assets) = parse(text);
    assert!(assets);
    let got: Vec<_> = asks.iter().map(|a| (a.kind.as_str(), a.at)).collect();
    assert_eq!(
        got,
        [
            ("hover", Some((1, 4))),
            ("complete", Some((1, 11))),
            // `#` alone is a comment line, and the target of what follows.
            ("definition", Some((3, 4))),
            ("symbols", None),
        ]
    );
    assert_eq!(position("é😀x\n", (0, 2)), Position::new(0, 3));
}
