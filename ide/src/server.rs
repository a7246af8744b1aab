//! The server loop: one thread, synchronous, like gleam's and ruff's.
//!
//! Analysis is debounced: a `didChange` only marks its document dirty, and
//! the loop waits on the channel with a timeout until the document has been
//! quiet for [`DEBOUNCE`] (or dirty for [`MAX_DELAY`], so continuous typing
//! still gets diagnostics). A burst of keystrokes thus costs one analysis.
//! Requests that need spans of the current text (definition, references,
//! symbols, code actions, inlay hints) analyse a dirty document first;
//! completion and hover never wait, as they read the text itself.
//!
//! Every request gets an answer: handlers run under `catch_unwind`, an
//! unknown method is `MethodNotFound`, bad parameters `InvalidParams`, a
//! document that is not open gives an empty result.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types as lsp;
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::docs::Document;
use crate::position::{apply_change, Encoding};

/// Quiet time after the last change before re-analysing.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// The longest a document stays unanalysed while changes keep coming.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// Runs the server on a connection until `exit` or until the client hangs
/// up. Returns whether the client shut down properly (`shutdown`, then
/// `exit`), which decides the process's exit code.
pub fn run(conn: Connection) -> Result<bool, String> {
    let (id, params) = conn.initialize_start().map_err(|e| e.to_string())?;
    let params: lsp::InitializeParams = serde_json::from_value(params).unwrap_or_default();
    let enc = Encoding::negotiate(
        params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_deref()),
    );
    let result = lsp::InitializeResult {
        capabilities: capabilities(enc),
        server_info: Some(lsp::ServerInfo {
            name: "ft".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
    };
    let value = serde_json::to_value(result).map_err(|e| e.to_string())?;
    conn.sender
        .send(Response::new_ok(id, value).into())
        .map_err(|e| e.to_string())?;
    let mut server = Server {
        conn,
        enc,
        docs: HashMap::new(),
        shut_down: false,
    };
    server.main_loop()
}

pub fn capabilities(enc: Encoding) -> lsp::ServerCapabilities {
    use lsp::OneOf::Left;
    lsp::ServerCapabilities {
        position_encoding: Some(enc.kind()),
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(
            lsp::TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(lsp::TextDocumentSyncKind::INCREMENTAL),
                save: Some(lsp::TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        completion_provider: Some(lsp::CompletionOptions {
            trigger_characters: Some(
                [".", "{", "[", "(", "="]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            ..Default::default()
        }),
        definition_provider: Some(Left(true)),
        references_provider: Some(Left(true)),
        document_symbol_provider: Some(Left(true)),
        document_formatting_provider: Some(Left(true)),
        code_action_provider: Some(lsp::CodeActionProviderCapability::Options(
            lsp::CodeActionOptions {
                code_action_kinds: Some(vec![lsp::CodeActionKind::QUICKFIX]),
                ..Default::default()
            },
        )),
        inlay_hint_provider: Some(Left(true)),
        ..Default::default()
    }
}

struct Server {
    conn: Connection,
    enc: Encoding,
    docs: HashMap<lsp::Uri, Document>,
    shut_down: bool,
}

type Answer = Result<Value, (ErrorCode, String)>;

fn params<P: DeserializeOwned>(v: &Value) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(v.clone()).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))
}

fn json(v: impl serde::Serialize) -> Answer {
    serde_json::to_value(v).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

impl Server {
    fn main_loop(&mut self) -> Result<bool, String> {
        loop {
            let msg = match self.next_due() {
                None => match self.conn.receiver.recv() {
                    Ok(m) => m,
                    Err(_) => return Ok(false),
                },
                Some(due) => {
                    let now = Instant::now();
                    if due <= now {
                        self.flush_due();
                        continue;
                    }
                    match self.conn.receiver.recv_timeout(due - now) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => {
                            self.flush_due();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return Ok(false),
                    }
                }
            };
            match msg {
                Message::Request(req) => self.request(req),
                Message::Notification(n) if n.method == "exit" => return Ok(self.shut_down),
                Message::Notification(n) => {
                    let _ = catch_unwind(AssertUnwindSafe(|| self.notification(n)));
                }
                Message::Response(_) => {}
            }
        }
    }

    /// When the next dirty document is due for analysis.
    fn next_due(&self) -> Option<Instant> {
        self.docs
            .values()
            .filter_map(|d| d.dirty)
            .map(|(first, last)| (last + DEBOUNCE).min(first + MAX_DELAY))
            .min()
    }

    fn flush_due(&mut self) {
        let now = Instant::now();
        let due: Vec<lsp::Uri> = self
            .docs
            .values()
            .filter(|d| {
                d.dirty
                    .is_some_and(|(first, last)| (last + DEBOUNCE).min(first + MAX_DELAY) <= now)
            })
            .map(|d| d.uri.clone())
            .collect();
        for uri in due {
            self.analyze(&uri);
        }
    }

    /// The unsaved texts of the open documents other than `uri`, by
    /// canonical path: what an analysis of `uri` reads for its imports.
    fn open_texts(&self, uri: &lsp::Uri) -> HashMap<PathBuf, String> {
        self.docs
            .values()
            .filter(|d| d.uri != *uri)
            .map(|d| {
                let path = d.path.canonicalize().unwrap_or_else(|_| d.path.clone());
                (path, d.text().to_string())
            })
            .collect()
    }

    /// Analyses a document now and publishes its diagnostics.
    fn analyze(&mut self, uri: &lsp::Uri) {
        let open = self.open_texts(uri);
        let Some(doc) = self.docs.get_mut(uri) else {
            return;
        };
        if let Some(a) = doc.analyze(&open) {
            let diagnostics = crate::diagnostics::to_lsp(&a, self.enc);
            let version = doc.version;
            self.publish(uri.clone(), diagnostics, Some(version));
        }
    }

    fn publish(&self, uri: lsp::Uri, diagnostics: Vec<lsp::Diagnostic>, version: Option<i32>) {
        let p = lsp::PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        };
        let n = Notification::new(lsp::notification::PublishDiagnostics::METHOD.to_string(), p);
        let _ = self.conn.sender.send(n.into());
    }

    fn notification(&mut self, n: Notification) {
        use lsp::notification::*;
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) = params::<lsp::DidOpenTextDocumentParams>(&n.params) else {
                    return;
                };
                let d = p.text_document;
                let doc = Document::new(d.uri.clone(), d.version, d.text, self.enc);
                self.docs.insert(d.uri.clone(), doc);
                self.analyze(&d.uri);
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) = params::<lsp::DidChangeTextDocumentParams>(&n.params) else {
                    return;
                };
                let Some(doc) = self.docs.get_mut(&p.text_document.uri) else {
                    return;
                };
                let mut text = doc.text().to_string();
                for c in &p.content_changes {
                    text = apply_change(&text, c, self.enc);
                }
                doc.set_text(p.text_document.version, text);
                // Recipes that import this one see its unsaved text: check
                // them again (after the same debounce).
                let changed = doc.path.canonicalize().unwrap_or_else(|_| doc.path.clone());
                let first = doc.dirty.map(|(first, _)| first);
                for other in self.docs.values_mut() {
                    if other.uri != p.text_document.uri && other.reads(&changed) {
                        let now = Instant::now();
                        other.dirty = Some((first.unwrap_or(now), now));
                    }
                }
            }
            DidCloseTextDocument::METHOD => {
                let Ok(p) = params::<lsp::DidCloseTextDocumentParams>(&n.params) else {
                    return;
                };
                if self.docs.remove(&p.text_document.uri).is_some() {
                    self.publish(p.text_document.uri, Vec::new(), None);
                }
            }
            DidSaveTextDocument::METHOD => {
                // Other open recipes may import the saved file, which the
                // compiler reads from disk: check them again.
                let saved = params::<lsp::DidSaveTextDocumentParams>(&n.params)
                    .ok()
                    .map(|p| p.text_document.uri);
                for doc in self.docs.values_mut() {
                    if Some(&doc.uri) != saved.as_ref() && doc.dirty.is_none() {
                        let now = Instant::now();
                        doc.dirty = Some((now, now));
                    }
                }
            }
            // `$/cancelRequest`: every request is answered at once anyway.
            _ => {}
        }
    }

    fn request(&mut self, req: Request) {
        let answer = if self.shut_down {
            Err((ErrorCode::InvalidRequest, "the server is shut down".into()))
        } else if req.method == lsp::request::Shutdown::METHOD {
            self.shut_down = true;
            Ok(Value::Null)
        } else {
            catch_unwind(AssertUnwindSafe(|| self.dispatch(&req))).unwrap_or_else(|_| {
                Err((
                    ErrorCode::InternalError,
                    format!("internal error while answering {}", req.method),
                ))
            })
        };
        let resp = match answer {
            Ok(v) => Response::new_ok(req.id, v),
            Err((code, msg)) => Response::new_err(req.id, code as i32, msg),
        };
        let _ = self.conn.sender.send(resp.into());
    }

    /// The document of a request and the byte offset of its position.
    fn at(&mut self, tdp: &lsp::TextDocumentPositionParams) -> Option<(&mut Document, usize)> {
        let doc = self.docs.get_mut(&tdp.text_document.uri)?;
        let offset = doc.index.offset(tdp.position);
        Some((doc, offset))
    }

    /// Brings a document's analysis up to date (publishing if it changed).
    fn fresh(&mut self, uri: &lsp::Uri) -> Option<std::sync::Arc<ft_compiler::driver::Analysis>> {
        let doc = self.docs.get_mut(uri)?;
        if doc.dirty.is_some() || doc.last.is_none() {
            self.analyze(uri);
        }
        let open = self.open_texts(uri);
        self.docs.get_mut(uri)?.fresh(&open)
    }

    fn dispatch(&mut self, req: &Request) -> Answer {
        use lsp::request::*;
        let enc = self.enc;
        match req.method.as_str() {
            HoverRequest::METHOD => {
                let p: lsp::HoverParams = params(&req.params)?;
                let Some((doc, off)) = self.at(&p.text_document_position_params) else {
                    return Ok(Value::Null);
                };
                json(crate::hover::hover(doc, off))
            }
            Completion::METHOD => {
                let p: lsp::CompletionParams = params(&req.params)?;
                let Some((doc, off)) = self.at(&p.text_document_position) else {
                    return Ok(Value::Null);
                };
                json(lsp::CompletionResponse::Array(crate::complete::complete(
                    doc, off,
                )))
            }
            GotoDefinition::METHOD => {
                let p: lsp::GotoDefinitionParams = params(&req.params)?;
                let uri = p.text_document_position_params.text_document.uri.clone();
                let Some(a) = self.fresh(&uri) else {
                    return Ok(Value::Null);
                };
                let files = crate::navigate::Files::new(&a, &uri, enc);
                let off = files.indexes[0].offset(p.text_document_position_params.position);
                json(
                    crate::navigate::definition(&files, off)
                        .map(lsp::GotoDefinitionResponse::Scalar),
                )
            }
            References::METHOD => {
                let p: lsp::ReferenceParams = params(&req.params)?;
                let uri = p.text_document_position.text_document.uri.clone();
                let Some(a) = self.fresh(&uri) else {
                    return Ok(Value::Null);
                };
                let files = crate::navigate::Files::new(&a, &uri, enc);
                let off = files.indexes[0].offset(p.text_document_position.position);
                json(crate::navigate::references(
                    &files,
                    off,
                    p.context.include_declaration,
                ))
            }
            DocumentSymbolRequest::METHOD => {
                let p: lsp::DocumentSymbolParams = params(&req.params)?;
                let Some(a) = self.fresh(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                json(lsp::DocumentSymbolResponse::Nested(
                    crate::navigate::symbols(&a, enc),
                ))
            }
            Formatting::METHOD => {
                let p: lsp::DocumentFormattingParams = params(&req.params)?;
                let Some(doc) = self.docs.get(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                json(crate::actions::format(doc))
            }
            CodeActionRequest::METHOD => {
                let p: lsp::CodeActionParams = params(&req.params)?;
                let uri = p.text_document.uri.clone();
                let Some(a) = self.fresh(&uri) else {
                    return Ok(Value::Null);
                };
                let files = crate::navigate::Files::new(&a, &uri, enc);
                let span = files.indexes[0].span(p.range);
                json(crate::actions::code_actions(&files, span, enc))
            }
            InlayHintRequest::METHOD => {
                let p: lsp::InlayHintParams = params(&req.params)?;
                let uri = p.text_document.uri.clone();
                let Some(a) = self.fresh(&uri) else {
                    return Ok(Value::Null);
                };
                let Some(doc) = self.docs.get(&uri) else {
                    return Ok(Value::Null);
                };
                json(crate::actions::inlay_hints(doc, &a, enc))
            }
            m => Err((
                ErrorCode::MethodNotFound,
                format!("unsupported request {m}"),
            )),
        }
    }
}
