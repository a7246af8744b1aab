//! An in-process LSP client: drives `ft_ide::run` over
//! `lsp_server::Connection::memory()`, sending requests and notifications
//! and collecting `publishDiagnostics` while it waits for responses.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::Notification as _;
use lsp_types::{self as lsp, Position, Uri};

/// Long enough for a debug-build analysis reading real model headers.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    pub conn: Connection,
    server: Option<JoinHandle<Result<bool, String>>>,
    next_id: i32,
    versions: HashMap<String, i32>,
    /// Every publishDiagnostics received, in order.
    pub published: Vec<lsp::PublishDiagnosticsParams>,
    pub init: lsp::InitializeResult,
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails the test, naming the command that fetches them, when the real
/// model and data (scripts/fetch-assets.sh) are missing: a test on real
/// files never passes without them.
pub fn require_assets() {
    let r = repo();
    for rel in [
        ".cache/models/all-MiniLM-L6-v2/config.json",
        ".cache/data/movie_snippets.tsv",
    ] {
        assert!(
            r.join(rel).exists(),
            "missing {rel}: run `scripts/fetch-assets.sh` first"
        );
    }
}

/// A URI for a (possibly unsaved) file in `recipes/`, so that the paths of
/// the example recipes (`../.cache/…`) resolve.
pub fn recipe_uri(name: &str) -> Uri {
    let p = repo().join("recipes").join(name);
    let p = p
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
        .join(p.file_name().unwrap());
    Uri::from_str(&format!("file://{}", p.display())).unwrap()
}

/// The UTF-16 position of the `nth` occurrence of `needle` in `text`, plus
/// `delta` bytes.
pub fn pos(text: &str, needle: &str, delta: usize) -> Position {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"))
        + delta;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..at].matches('\n').count() as u32;
    let character = text[line_start..at]
        .chars()
        .map(char::len_utf16)
        .sum::<usize>() as u32;
    Position { line, character }
}

impl Client {
    pub fn start() -> Client {
        Self::start_with(None)
    }

    pub fn start_with(encodings: Option<Vec<lsp::PositionEncodingKind>>) -> Client {
        // The memory check (FT0801) compares with this machine's memory;
        // fixed here so that what the server publishes does not depend on
        // the machine the tests run on (the check has its own tests).
        std::env::set_var("FT_AVAILABLE_MEMORY", "1024GiB");
        let (server, client) = Connection::memory();
        let handle = std::thread::spawn(move || ft_ide::run(server));
        let mut c = Client {
            conn: client,
            server: Some(handle),
            next_id: 0,
            versions: HashMap::new(),
            published: Vec::new(),
            init: lsp::InitializeResult::default(),
        };
        let params = lsp::InitializeParams {
            capabilities: lsp::ClientCapabilities {
                general: Some(lsp::GeneralClientCapabilities {
                    position_encodings: encodings,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let v = c.request_raw("initialize", serde_json::to_value(params).unwrap());
        c.init = serde_json::from_value(v.result.expect("initialize result")).unwrap();
        c.notify("initialized", serde_json::json!({}));
        c
    }

    pub fn notify(&self, method: &str, params: serde_json::Value) {
        self.conn
            .sender
            .send(Notification::new(method.into(), params).into())
            .unwrap();
    }

    fn recv(&mut self) -> Message {
        let msg = self
            .conn
            .receiver
            .recv_timeout(TIMEOUT)
            .expect("the server answers in time");
        if let Message::Notification(n) = &msg {
            if n.method == lsp::notification::PublishDiagnostics::METHOD {
                self.published
                    .push(serde_json::from_value(n.params.clone()).unwrap());
            }
        }
        msg
    }

    /// Sends a request and waits for its response (collecting diagnostics
    /// meanwhile).
    pub fn request_raw(&mut self, method: &str, params: serde_json::Value) -> Response {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.conn
            .sender
            .send(Request::new(id.clone(), method.into(), params).into())
            .unwrap();
        loop {
            if let Message::Response(r) = self.recv() {
                assert_eq!(r.id, id, "responses come in order");
                return r;
            }
        }
    }

    /// A typed request; panics on an error response.
    pub fn request<R: lsp::request::Request>(&mut self, params: R::Params) -> R::Result {
        let r = self.request_raw(R::METHOD, serde_json::to_value(params).unwrap());
        if let Some(e) = r.error {
            panic!("{} failed: {e:?}", R::METHOD);
        }
        serde_json::from_value(r.result.unwrap_or(serde_json::Value::Null)).unwrap()
    }

    pub fn open(&mut self, uri: &Uri, text: &str) {
        self.versions.insert(uri.as_str().into(), 1);
        self.notify(
            "textDocument/didOpen",
            serde_json::to_value(lsp::DidOpenTextDocumentParams {
                text_document: lsp::TextDocumentItem {
                    uri: uri.clone(),
                    language_id: "ft".into(),
                    version: 1,
                    text: text.into(),
                },
            })
            .unwrap(),
        );
    }

    /// Replaces the whole text; returns the new version.
    pub fn change(&mut self, uri: &Uri, text: &str) -> i32 {
        self.change_ranged(uri, None, text)
    }

    pub fn change_ranged(&mut self, uri: &Uri, range: Option<lsp::Range>, text: &str) -> i32 {
        let v = self.versions.entry(uri.as_str().into()).or_insert(0);
        *v += 1;
        let version = *v;
        self.notify(
            "textDocument/didChange",
            serde_json::to_value(lsp::DidChangeTextDocumentParams {
                text_document: lsp::VersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version,
                },
                content_changes: vec![lsp::TextDocumentContentChangeEvent {
                    range,
                    range_length: None,
                    text: text.into(),
                }],
            })
            .unwrap(),
        );
        version
    }

    /// Waits for diagnostics of `uri` (of at least `version`, if given).
    pub fn diagnostics(&mut self, uri: &Uri, version: Option<i32>) -> Vec<lsp::Diagnostic> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let found = self.published.iter().rev().find(|p| {
                p.uri == *uri && version.is_none_or(|v| p.version.is_some_and(|pv| pv >= v))
            });
            if let Some(p) = found {
                return p.diagnostics.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no diagnostics for {}",
                uri.as_str()
            );
            let _ = self.recv();
        }
    }

    pub fn hover(&mut self, uri: &Uri, position: Position) -> Option<String> {
        let h = self.request::<lsp::request::HoverRequest>(lsp::HoverParams {
            text_document_position_params: tdp(uri, position),
            work_done_progress_params: Default::default(),
        })?;
        match h.contents {
            lsp::HoverContents::Markup(m) => Some(m.value),
            other => Some(format!("{other:?}")),
        }
    }

    pub fn complete(&mut self, uri: &Uri, position: Position) -> Vec<lsp::CompletionItem> {
        let r = self.request::<lsp::request::Completion>(lsp::CompletionParams {
            text_document_position: tdp(uri, position),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context: None,
        });
        match r {
            Some(lsp::CompletionResponse::Array(v)) => v,
            Some(lsp::CompletionResponse::List(l)) => l.items,
            None => Vec::new(),
        }
    }

    /// `shutdown`, `exit`, and the server's verdict (clean exit).
    pub fn shutdown(mut self) -> bool {
        let r = self.request_raw("shutdown", serde_json::Value::Null);
        assert!(r.error.is_none());
        self.notify("exit", serde_json::Value::Null);
        self.server.take().unwrap().join().unwrap().unwrap()
    }
}

pub fn tdp(uri: &Uri, position: Position) -> lsp::TextDocumentPositionParams {
    lsp::TextDocumentPositionParams {
        text_document: lsp::TextDocumentIdentifier { uri: uri.clone() },
        position,
    }
}

pub fn labels(items: &[lsp::CompletionItem]) -> Vec<&str> {
    items.iter().map(|i| i.label.as_str()).collect()
}
