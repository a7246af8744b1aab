//! The server never crashes and answers every request in time, whatever
//! the text: every prefix of every example recipe is sent as a `didChange`
//! (the file being typed from the top, character by character), with
//! completion and hover at the cursor, and at a few other places, after
//! each.

mod common;

use common::{recipe_uri, Client};
use std::time::{Duration, Instant};

use lsp_types::Position;

/// Every k-th prefix: every one for the example recipes (under 1,500
/// bytes), about 1,500 for a longer one, to keep a debug build quick.
fn step(len: usize) -> usize {
    (len / 1500).max(1)
}

/// Deadlines of a debug build on a loaded machine: completion and hover
/// read the text and never wait for an analysis; the others may analyse
/// the prefix first (world checks included).
const TYPING_DEADLINE: Duration = Duration::from_secs(2);
const ANALYSIS_DEADLINE: Duration = Duration::from_secs(10);

/// Runs a request and checks it was answered within `deadline`.
fn timed<T>(what: &str, deadline: Duration, slowest: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    let took = t.elapsed();
    assert!(
        took < deadline,
        "{what} took {took:?} (deadline {deadline:?})"
    );
    *slowest = (*slowest).max(took);
    r
}

fn end_position(text: &str) -> Position {
    let line = text.matches('\n').count() as u32;
    let last = text.rsplit('\n').next().unwrap_or("");
    Position::new(
        line,
        last.chars().map(char::len_utf16).sum::<usize>() as u32,
    )
}

#[test]
fn every_prefix_of_every_recipe() {
    let dir = common::repo().join("recipes");
    let mut recipes: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ft"))
        .collect();
    recipes.sort();
    assert!(!recipes.is_empty());
    let mut c = Client::start();
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    for path in &recipes {
        let text = std::fs::read_to_string(path).unwrap();
        let uri = recipe_uri(&format!(
            "prefix-{}",
            path.file_name().unwrap().to_string_lossy()
        ));
        c.open(&uri, "");
        let mut cut = 0;
        while cut <= text.len() {
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            let prefix = &text[..cut];
            c.change(&uri, prefix);
            let end = end_position(prefix);
            timed(
                "completion at the end",
                TYPING_DEADLINE,
                &mut slowest,
                || c.complete(&uri, end),
            );
            timed("hover at the end", TYPING_DEADLINE, &mut slowest, || {
                c.hover(&uri, end)
            });
            // Somewhere in the middle, and past the end.
            let mid = Position::new(end.line / 2, 3);
            timed(
                "completion in the middle",
                TYPING_DEADLINE,
                &mut slowest,
                || c.complete(&uri, mid),
            );
            timed("hover past the end", TYPING_DEADLINE, &mut slowest, || {
                c.hover(&uri, Position::new(end.line + 3, 0))
            });
            answered += 4;
            // Every so often, requests that analyse the broken prefix first.
            if (cut / step(text.len())) % 20 == 0 {
                let id = serde_json::json!({ "uri": uri });
                let whole =
                    serde_json::json!({ "start": { "line": 0, "character": 0 }, "end": end });
                for (method, params) in [
                    (
                        "textDocument/documentSymbol",
                        serde_json::json!({ "textDocument": id }),
                    ),
                    (
                        "textDocument/inlayHint",
                        serde_json::json!({ "textDocument": id, "range": whole }),
                    ),
                    (
                        "textDocument/codeAction",
                        serde_json::json!({ "textDocument": id, "range": whole, "context": { "diagnostics": [] } }),
                    ),
                    (
                        "textDocument/definition",
                        serde_json::json!({ "textDocument": id, "position": mid }),
                    ),
                ] {
                    let r = timed(method, ANALYSIS_DEADLINE, &mut slowest, || {
                        c.request_raw(method, params)
                    });
                    assert!(r.error.is_none(), "{method}: {r:?}");
                    answered += 1;
                }
            }
            if cut == text.len() {
                break;
            }
            cut = (cut + step(text.len())).min(text.len());
        }
        // The whole recipe again, then analysed: its diagnostics arrive.
        let v = c.change(&uri, &text);
        let _ = c.diagnostics(&uri, Some(v));
    }
    eprintln!(
        "{answered} requests answered over {} recipes, the slowest in {slowest:?}",
        recipes.len()
    );
    assert!(c.shutdown());
}

#[test]
fn garbage_and_odd_text() {
    let mut c = Client::start();
    let uri = recipe_uri("garbage.ft");
    c.open(&uri, "");
    let samples = [
        "\u{feff}model",
        "model m = hf(\"",
        "\"\"\"\n{",
        "train { epochs = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1",
        "}}}}]]]))) { [ (",
        "dataset d = jsonl(\"x\") { prompt = \"{a.b.\" }",
        "peft lora { targets = [\"",
        "é😀\u{0}\t\r\n# \"",
        "sweep { train.optimizer.lr in [1e-4, , ] pick = max(val.",
        "let x = -\nlet x = 2\nimport \"nope.ft\"\nimport \"garbage.ft\"",
    ];
    for s in samples {
        c.change(&uri, s);
        for (i, _) in s.char_indices().chain([(s.len(), ' ')]) {
            let p = {
                let before = &s[..i];
                let line = before.matches('\n').count() as u32;
                let col = before
                    .rsplit('\n')
                    .next()
                    .unwrap()
                    .chars()
                    .map(char::len_utf16)
                    .sum::<usize>();
                Position::new(line, col as u32)
            };
            let _ = c.complete(&uri, p);
            let _ = c.hover(&uri, p);
        }
        let r = c.request_raw(
            "textDocument/documentSymbol",
            serde_json::json!({ "textDocument": { "uri": uri } }),
        );
        assert!(r.error.is_none(), "{r:?}");
        let r = c.request_raw(
            "textDocument/formatting",
            serde_json::json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }),
        );
        assert!(r.error.is_none(), "{r:?}");
    }
    assert!(c.shutdown());
}
