//! The server end to end through an in-memory connection: diagnostics,
//! hover, completion (from the schema and from the real model and data),
//! navigation, formatting, quick fixes, position encodings, debouncing.

mod common;

use common::{labels, pos, recipe_uri, tdp, Client};
use lsp_types::{self as lsp, request as req, Position, Range};

const RECIPE: &str = include_str!("../../recipes/sentiment-minilm.ft");

#[test]
fn diagnostics_on_open_change_and_close() {
    common::require_assets();
    let mut c = Client::start();
    let uri = recipe_uri("diag-test.ft");
    let text = RECIPE.replace(
        "  batch      = 16\n",
        "  batch      = 16\n  epocs = 2\n  batch = 8\n",
    );
    c.open(&uri, &text);
    let d = c.diagnostics(&uri, Some(1));
    let unknown = d
        .iter()
        .find(|d| d.code == Some(lsp::NumberOrString::String("FT0102".into())))
        .expect("unknown key reported");
    assert_eq!(unknown.severity, Some(lsp::DiagnosticSeverity::ERROR));
    assert_eq!(unknown.source.as_deref(), Some("ft"));
    assert!(
        unknown.message.contains("help: did you mean `epochs`?"),
        "{}",
        unknown.message
    );
    assert_eq!(unknown.range.start, pos(&text, "epocs", 0));
    assert_eq!(unknown.range.end, pos(&text, "epocs", 5));
    // The duplicate key points back at the first one.
    let dup = d
        .iter()
        .find(|d| d.code == Some(lsp::NumberOrString::String("FT0103".into())))
        .expect("duplicate key reported");
    let rel = dup
        .related_information
        .as_ref()
        .expect("related information");
    assert_eq!(rel[0].location.uri, uri);
    assert_eq!(
        rel[0].location.range.start,
        pos(&text, "batch      = 16", 0)
    );

    // Fixed: no diagnostics for the new version.
    let v = c.change(&uri, RECIPE);
    let left = c.diagnostics(&uri, Some(v));
    assert_eq!(left, vec![]);

    // Closing clears them.
    c.notify(
        "textDocument/didClose",
        serde_json::json!({ "textDocument": { "uri": uri } }),
    );
    let before = c.published.len();
    // Any request flushes the queue up to here.
    let _ = c.hover(&uri, Position::new(0, 0));
    let cleared = &c.published[before..];
    assert!(cleared
        .iter()
        .any(|p| p.uri == uri && p.diagnostics.is_empty() && p.version.is_none()));
    assert!(c.shutdown());
}

#[test]
fn world_checks_are_reported() {
    common::require_assets();
    let mut c = Client::start();
    let uri = recipe_uri("world-test.ft");
    let text = RECIPE
        .replace("[query, value]", "[query, q_proj]")
        .replace("{text}", "{txt}");
    c.open(&uri, &text);
    let d = c.diagnostics(&uri, Some(1));
    let codes: Vec<_> = d
        .iter()
        .filter_map(|d| match &d.code {
            Some(lsp::NumberOrString::String(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert!(codes.contains(&"FT0607"), "unknown target: {codes:?}");
    assert!(codes.contains(&"FT0602"), "unknown field: {codes:?}");
    c.shutdown();
}

#[test]
fn debounced_burst_is_analysed_once() {
    let mut c = Client::start();
    let uri = recipe_uri("burst-test.ft");
    c.open(&uri, "");
    c.diagnostics(&uri, Some(1));
    let before = c.published.len();
    let mut last = 0;
    for i in 1..=30 {
        last = c.change(&uri, &RECIPE[..RECIPE.len() * i / 30]);
    }
    c.diagnostics(&uri, Some(last));
    let after: Vec<_> = c.published[before..]
        .iter()
        .filter(|p| p.uri == uri)
        .collect();
    assert_eq!(after.len(), 1, "one analysis for the burst");
    assert_eq!(after[0].version, Some(last));
    c.shutdown();
}

#[test]
fn hover_on_keys_calls_values_and_names() {
    let mut c = Client::start();
    let uri = recipe_uri("hover-test.ft");
    let text = format!("{RECIPE}\noutput {{ export = merged }}\n");
    c.open(&uri, &text);
    c.diagnostics(&uri, Some(1));
    let h = c
        .hover(&uri, pos(&text, "rank    = 8", 1))
        .expect("hover on rank");
    assert!(h.contains("**rank**") && h.contains("The rank r"), "{h}");
    assert!(h.contains("Default: `8`"), "{h}");
    let h = c
        .hover(&uri, pos(&text, "adamw", 2))
        .expect("hover on a call");
    assert!(h.contains("adamw(") && h.contains("lr"), "{h}");
    let h = c
        .hover(&uri, pos(&text, "merged", 1))
        .expect("hover on an enum value");
    assert!(h.contains("A value of **export**"), "{h}");
    let h = c
        .hover(&uri, pos(&text, "accuracy,", 1))
        .expect("hover on a metric");
    assert!(h.contains("share of correct labels"), "{h}");
    let h = c
        .hover(&uri, pos(&text, "val.accuracy", 5))
        .expect("hover on val.accuracy");
    assert!(h.contains("share of correct labels"), "{h}");
    let h = c
        .hover(&uri, pos(&text, "dataset", 2))
        .expect("hover on a block keyword");
    assert!(h.contains("A named source of examples"), "{h}");
    let h = c
        .hover(&uri, pos(&text, "reviews", 2))
        .expect("hover on a name");
    assert!(h.contains("dataset reviews = tsv("), "{h}");
    // Comments and strings have no hover.
    assert_eq!(c.hover(&uri, pos(&text, "Sentiment", 2)), None);
    c.shutdown();
}

#[test]
fn hover_on_peft_shows_plan_figures() {
    common::require_assets();
    let mut c = Client::start();
    let uri = recipe_uri("plan-test.ft");
    c.open(&uri, RECIPE);
    c.diagnostics(&uri, Some(1));
    let h = c
        .hover(&uri, pos(RECIPE, "peft lora", 1))
        .expect("hover on peft");
    assert!(h.contains("| trainable parameters | 74,498"), "{h}");
    assert!(h.contains("| classification head | 770"), "{h}");
    assert!(h.contains("memory"), "{h}");
    let h = c
        .hover(&uri, pos(RECIPE, "train {", 1))
        .expect("hover on train");
    assert!(h.contains("74,498"), "{h}");
    let hints = c
        .request::<req::InlayHintRequest>(lsp::InlayHintParams {
            text_document: lsp::TextDocumentIdentifier { uri: uri.clone() },
            range: Range::new(Position::new(0, 0), Position::new(99, 0)),
            work_done_progress_params: Default::default(),
        })
        .expect("hints");
    assert_eq!(hints.len(), 1);
    assert_eq!(hints[0].position, pos(RECIPE, "peft lora", 9));
    match &hints[0].label {
        lsp::InlayHintLabel::String(s) => assert!(s.starts_with("74,498 trainable"), "{s}"),
        l => panic!("{l:?}"),
    }
    c.shutdown();
}

#[test]
fn completion_of_keys_blocks_enums_and_names() {
    let mut c = Client::start();
    let uri = recipe_uri("complete-test.ft");
    let text = RECIPE.replace(
        "  batch      = 16\n",
        "  batch      = 16\n  \n  backend = \n",
    );
    c.open(&uri, &text);
    // Keys of `train` not yet written.
    let items = c.complete(&uri, pos(&text, "  \n  backend", 2));
    let l = labels(&items);
    assert!(
        l.contains(&"steps") && l.contains(&"clip") && l.contains(&"data"),
        "{l:?}"
    );
    assert!(
        !l.contains(&"batch") && !l.contains(&"epochs"),
        "already set: {l:?}"
    );
    let steps = items.iter().find(|i| i.label == "steps").unwrap();
    assert_eq!(steps.insert_text.as_deref(), Some("steps = "));
    // Enum values after `key = `.
    let l = c.complete(&uri, pos(&text, "backend = ", 10));
    assert_eq!(labels(&l), ["cpu", "cuda"]);
    // Block keywords at the top level.
    let end = pos(&text, "evaluate {", 0);
    let l = c.complete(&uri, end);
    assert!(labels(&l).contains(&"dataset") && labels(&l).contains(&"sweep"));
    c.shutdown();

    let mut c = Client::start();
    let text = format!(
        "{RECIPE}\nmixture both {{ reviews = 1 }}\ncurriculum {{\n  order = tokens(input) ascending\n  stage a {{ data =  }}\n}}\n"
    );
    c.open(&uri, &text);
    // Dataset and mixture names where data is expected.
    let l = c.complete(&uri, pos(&text, "data =  }", 7));
    assert_eq!(labels(&l), ["reviews", "both"]);
    // Call names for a call-typed key, metrics after `val.`.
    let text2 = text
        .replace("schedule   = cosine(warmup = 10%)", "schedule   = ")
        .replace("metric = val.accuracy", "metric = val.");
    let v = c.change(&uri, &text2);
    let l = c.complete(&uri, pos(&text2, "schedule   = ", 13));
    assert_eq!(labels(&l), ["constant", "linear", "cosine"]);
    let l = c.complete(&uri, pos(&text2, "val.,", 4));
    assert!(labels(&l).contains(&"accuracy") && labels(&l).contains(&"f1"));
    // Parameters inside a call.
    let text3 = text2.replace(
        "adamw(lr = 2e-4, weight_decay = 0.01)",
        "adamw(lr = 2e-4, )",
    );
    c.change(&uri, &text3);
    let l = c.complete(&uri, pos(&text3, "2e-4, )", 6));
    assert!(labels(&l).contains(&"weight_decay") && !labels(&l).contains(&"lr"));
    // PEFT methods after `peft`.
    let l = c.complete(&uri, pos(&text3, "lora {", 0));
    assert!(labels(&l).contains(&"prefix"));
    let _ = v;
    c.shutdown();
}

#[test]
fn completion_of_targets_and_fields_from_real_files() {
    common::require_assets();
    let mut c = Client::start();
    let uri = recipe_uri("world-complete-test.ft");
    c.open(&uri, RECIPE);
    c.diagnostics(&uri, Some(1));
    // Mid-edit: the list is open and the file no longer parses.
    let text = RECIPE.replace("targets = [query, value]", "targets = [qu");
    c.change(&uri, &text);
    let items = c.complete(&uri, pos(&text, "[qu", 3));
    let l = labels(&items);
    for t in ["query", "value", "key", "dense", "all_linear"] {
        assert!(l.contains(&t), "{t} in {l:?}");
    }
    let full = items
        .iter()
        .find(|i| i.label == "encoder.layer.0.attention.self.query")
        .expect("full module paths");
    assert_eq!(
        full.insert_text.as_deref(),
        Some("\"encoder.layer.0.attention.self.query\"")
    );
    // Fields inside `{` of a template, mid-edit.
    let text = RECIPE.replace("input = \"{text}\"", "input = \"{te");
    c.change(&uri, &text);
    let l = c.complete(&uri, pos(&text, "{te", 3));
    let l = labels(&l);
    assert!(
        l.contains(&"text") && l.contains(&"score") && l.contains(&"id"),
        "{l:?}"
    );
    // And in a row expression.
    let text = RECIPE.replace("if score > 0", "if  > 0");
    c.change(&uri, &text);
    let l = c.complete(&uri, pos(&text, "if  > 0", 3));
    assert!(labels(&l).contains(&"score"));
    c.shutdown();
}

#[test]
fn definition_references_and_symbols() {
    let mut c = Client::start();
    let uri = recipe_uri("nav-test.ft");
    let text = RECIPE.replace(
        "  epochs     = 3\n",
        "  epochs     = 3\n  data       = reviews\n",
    );
    c.open(&uri, &text);
    let def = c
        .request::<req::GotoDefinition>(lsp::GotoDefinitionParams {
            text_document_position_params: tdp(&uri, pos(&text, "= reviews", 4)),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .expect("a definition");
    let lsp::GotoDefinitionResponse::Scalar(loc) = def else {
        panic!("{def:?}")
    };
    assert_eq!(loc.uri, uri);
    assert_eq!(loc.range.start, pos(&text, "reviews = tsv", 0));
    let refs = c
        .request::<req::References>(lsp::ReferenceParams {
            text_document_position: tdp(&uri, pos(&text, "reviews = tsv", 1)),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context: lsp::ReferenceContext {
                include_declaration: true,
            },
        })
        .expect("references");
    assert_eq!(refs.len(), 2);
    let syms = c
        .request::<req::DocumentSymbolRequest>(lsp::DocumentSymbolParams {
            text_document: lsp::TextDocumentIdentifier { uri: uri.clone() },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .expect("symbols");
    let lsp::DocumentSymbolResponse::Nested(syms) = syms else {
        panic!()
    };
    let names: Vec<_> = syms.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "model encoder",
            "dataset reviews",
            "peft lora",
            "train",
            "evaluate"
        ]
    );
    c.shutdown();
}

#[test]
fn formatting_whole_document_and_not_on_syntax_errors() {
    let mut c = Client::start();
    let uri = recipe_uri("fmt-test.ft");
    let ugly = "train{epochs=3\n batch =   16}\n";
    c.open(&uri, ugly);
    let fmt = |c: &mut Client| {
        c.request::<req::Formatting>(lsp::DocumentFormattingParams {
            text_document: lsp::TextDocumentIdentifier { uri: uri.clone() },
            options: Default::default(),
            work_done_progress_params: Default::default(),
        })
    };
    let edits = fmt(&mut c).expect("edits");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].new_text, ft_compiler::fmt::format(ugly).unwrap());
    assert_eq!(
        edits[0].range,
        Range::new(Position::new(0, 0), Position::new(2, 0))
    );
    c.change(&uri, "train { epochs = = 3 }\n");
    assert_eq!(fmt(&mut c), None);
    c.shutdown();
}

#[test]
fn code_action_applies_did_you_mean() {
    let mut c = Client::start();
    let uri = recipe_uri("action-test.ft");
    let text = RECIPE.replace("epochs     = 3", "epocs      = 3");
    c.open(&uri, &text);
    let at = pos(&text, "epocs", 2);
    let actions = c
        .request::<req::CodeActionRequest>(lsp::CodeActionParams {
            text_document: lsp::TextDocumentIdentifier { uri: uri.clone() },
            range: Range::new(at, at),
            context: Default::default(),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .expect("actions");
    assert_eq!(actions.len(), 1);
    let lsp::CodeActionOrCommand::CodeAction(a) = &actions[0] else {
        panic!()
    };
    assert_eq!(a.title, "Replace with `epochs`");
    assert_eq!(a.kind, Some(lsp::CodeActionKind::QUICKFIX));
    let edits = &a.edit.as_ref().unwrap().changes.as_ref().unwrap()[&uri];
    let fixed = apply(&text, edits);
    assert_eq!(fixed, RECIPE.replace("epochs     = 3", "epochs      = 3"));
    let v = c.change(&uri, &fixed);
    assert!(c
        .diagnostics(&uri, Some(v))
        .iter()
        .all(|d| d.code != Some(lsp::NumberOrString::String("FT0102".into()))));
    c.shutdown();
}

/// Applies UTF-16 edits (back to front).
fn apply(text: &str, edits: &[lsp::TextEdit]) -> String {
    let idx = ft_ide::position::Index::new(text, ft_ide::position::Encoding::Utf16);
    let mut spans: Vec<_> = edits
        .iter()
        .map(|e| (idx.span(e.range), &e.new_text))
        .collect();
    spans.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for (s, t) in spans {
        out.replace_range(s.start..s.end, t);
    }
    out
}

const EMOJI: &str =
    "# é😀 émoji\ntrain { batch = 16 } # 😀\nevaluate { on = test, metrics = [\"é😀\", f1] }\n";

#[test]
fn utf16_positions_with_emoji() {
    let mut c = Client::start();
    assert_eq!(
        c.init.capabilities.position_encoding,
        Some(lsp::PositionEncodingKind::UTF16)
    );
    let uri = recipe_uri("emoji-test.ft");
    let text = EMOJI.replace("batch = 16 }", "batch = 16, epocs = 1 }");
    c.open(&uri, &text);
    let d = c.diagnostics(&uri, Some(1));
    let bad_metric = d
        .iter()
        .find(|d| d.range.start.line == 2 && d.range.start.character > 20)
        .unwrap_or_else(|| panic!("a diagnostic on the metrics string: {d:#?}"));
    // `evaluate { on = test, metrics = ["é😀"`: the string starts at UTF-16 column 33.
    assert_eq!(bad_metric.range.start, Position::new(2, 33));
    assert_eq!(bad_metric.range.end, Position::new(2, 33 + 5));
    // Ranged edit after the emoji: replace `f1` (column 40..42) by `accuracy`.
    c.change_ranged(
        &uri,
        Some(Range::new(Position::new(2, 40), Position::new(2, 42))),
        "accuracy",
    );
    let h = c
        .hover(&uri, Position::new(2, 41))
        .expect("hover after the emoji");
    assert!(h.contains("accuracy"), "{h}");
    c.shutdown();
}

#[test]
fn utf8_positions_when_offered() {
    let mut c = Client::start_with(Some(vec![
        lsp::PositionEncodingKind::UTF8,
        lsp::PositionEncodingKind::UTF16,
    ]));
    assert_eq!(
        c.init.capabilities.position_encoding,
        Some(lsp::PositionEncodingKind::UTF8)
    );
    let uri = recipe_uri("emoji8-test.ft");
    c.open(&uri, EMOJI);
    let d = c.diagnostics(&uri, Some(1));
    let bad = d
        .iter()
        .find(|d| d.range.start.line == 2 && d.range.start.character > 20)
        .unwrap_or_else(|| panic!("a diagnostic on the metrics string: {d:#?}"));
    // In bytes: é is 2, 😀 is 4.
    assert_eq!(bad.range.start, Position::new(2, 33));
    assert_eq!(bad.range.end, Position::new(2, 33 + 8));
    let h = c
        .hover(&uri, Position::new(2, 45))
        .expect("hover on f1 in bytes");
    assert!(h.contains("f1"), "{h}");
    c.shutdown();
}

#[test]
fn protocol_edges() {
    let mut c = Client::start();
    // Unknown request, bad params, unknown document, cancellation.
    let r = c.request_raw("textDocument/semanticTokens/full", serde_json::json!({}));
    assert_eq!(
        r.error.unwrap().code,
        lsp_server::ErrorCode::MethodNotFound as i32
    );
    let r = c.request_raw("textDocument/hover", serde_json::json!({"nonsense": 1}));
    assert_eq!(
        r.error.unwrap().code,
        lsp_server::ErrorCode::InvalidParams as i32
    );
    let nobody = recipe_uri("never-opened.ft");
    assert_eq!(c.hover(&nobody, Position::new(0, 0)), None);
    c.notify("$/cancelRequest", serde_json::json!({ "id": 99 }));
    c.notify("textDocument/didChange", serde_json::json!({ "bad": true }));
    // Positions past the end.
    let uri = recipe_uri("edge-test.ft");
    c.open(&uri, "train {");
    let _ = c.complete(&uri, Position::new(40, 99));
    let _ = c.hover(&uri, Position::new(0, 999));
    // After shutdown, requests are refused; exit ends the server cleanly.
    let r = c.request_raw("shutdown", serde_json::Value::Null);
    assert!(r.error.is_none());
    let r = c.request_raw("textDocument/hover", serde_json::json!({}));
    assert_eq!(
        r.error.unwrap().code,
        lsp_server::ErrorCode::InvalidRequest as i32
    );
    c.notify("exit", serde_json::Value::Null);
}
