//! The key reference of `docs/language.md`, generated from the schema so the
//! documentation cannot drift from what the checker accepts. A test compares
//! the file with this output (`UPDATE_DOCS=1` rewrites it).

use std::fmt::Write;

use super::*;

/// Markdown for every block, method, key and call.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    for b in BLOCKS {
        let _ = writeln!(out, "### `{}`\n\n{}\n", b.keyword, b.doc);
        let form = match (b.name, b.source.is_some(), b.name_is_method) {
            (_, _, true) => format!("`{} METHOD {{ … }}`", b.keyword),
            (Presence::Required, true, _) => format!("`{} NAME = SOURCE {{ … }}`", b.keyword),
            (Presence::Optional, true, _) => format!("`{} [NAME] = SOURCE {{ … }}`", b.keyword),
            (Presence::Required, false, _) => format!("`{} NAME {{ … }}`", b.keyword),
            (Presence::Optional, false, _) => format!("`{} [NAME] {{ … }}`", b.keyword),
            (Presence::Forbidden, _, _) => format!("`{} {{ … }}`", b.keyword),
        };
        let _ = writeln!(
            out,
            "Form: {form}{}\n",
            if b.singleton {
                " — at most one per recipe."
            } else {
                ""
            }
        );
        if let Some(sources) = b.source {
            let _ = writeln!(out, "Sources:\n");
            calls(&mut out, sources);
        }
        if !b.keys.is_empty() {
            keys(&mut out, b.keys);
        }
        if b.dataset_keys {
            let _ = writeln!(
                out,
                "Every other entry `name = weight` names a dataset and its weight (> 0).\n"
            );
        }
        if b.axes {
            let _ = writeln!(out, "Axes: `path in [v1, v2, …]` or `path in loguniform(low, high)` / `uniform(low, high)`; paths are `train.KEY`, `train.KEY.ARG` (e.g. `train.optimizer.lr`), `peft.KEY`, `evaluate.KEY`, or `peft` with a list of methods such as `[lora(rank = 8), ia3()]`.\n");
        }
        for s in b.sub_blocks {
            let _ = writeln!(
                out,
                "#### `{}` (inside `{}`)\n\n{}\n\nForm: `{} NAME {{ … }}`\n",
                s.keyword, b.keyword, s.doc, s.keyword
            );
            keys(&mut out, s.keys);
            let _ = writeln!(out, "```ft\n{}\n```\n", s.example);
        }
        if b.name_is_method {
            for m in PEFT_METHODS {
                let _ = writeln!(out, "#### `peft {}`\n\n{}\n", m.name, m.doc);
                keys(&mut out, m.keys);
            }
        }
        let _ = writeln!(out, "Example:\n\n```ft\n{}\n```\n", b.example);
    }
    let _ = writeln!(out, "### Calls used as values\n");
    for (title, list) in [
        ("Heads (`model.head`)", HEADS),
        ("Optimizers (`train.optimizer`)", OPTIMIZERS),
        ("Schedules (`train.schedule`)", SCHEDULES),
        ("Objectives (`train.objective`)", OBJECTIVES),
        ("Pacing (`curriculum.pacing`)", PACINGS),
        ("Strategies (`sweep.strategy`)", STRATEGIES),
        ("Picks (`sweep.pick`)", PICKS),
        (
            "Prompt-tuning initialisation (`peft prompt { init }`)",
            PROMPT_INITS,
        ),
    ] {
        let _ = writeln!(out, "#### {title}\n");
        calls(&mut out, list);
    }
    let _ = writeln!(out, "### Metrics\n\n| metric | meaning |\n|---|---|");
    for (m, d) in METRICS {
        let _ = writeln!(out, "| `{m}` | {d} |");
    }
    let _ = writeln!(
        out,
        "\n### Row functions\n\n| function | meaning |\n|---|---|"
    );
    for (f, d) in ROW_FUNCTIONS {
        let _ = writeln!(out, "| `{f}(…)` | {d} |");
    }
    conformance(&mut out);
    out
}

/// Every setting with the test that shows it honoured, or its refusal.
fn conformance(out: &mut String) {
    use super::conformance::{shown, Shown};
    let _ = writeln!(
        out,
        "\n### Conformance\n\nEvery setting, with the test that shows its effect on a run or the code `ft check` refuses it with (`compiler/tests/conformance.rs` keeps this table complete).\n\n| setting | shown by |\n|---|---|"
    );
    for s in settings() {
        let cell = match shown(&s) {
            Some(Shown::Test(t)) => format!("`{t}`"),
            Some(Shown::Refused(code, fixture)) => {
                format!("refused: {code} (`compiler/tests/fixtures/bad/{fixture}`)")
            }
            Some(Shown::Untested(what)) => format!("no test yet; one must show {what}"),
            None => "—".to_string(),
        };
        let _ = writeln!(out, "| `{s}` | {} |", cell.replace('|', "\\|"));
    }
}

fn keys(out: &mut String, keys: &[Key]) {
    let _ = writeln!(out, "| key | type | default | meaning |\n|---|---|---|---|");
    for k in keys {
        let default = match (k.required, k.default) {
            (true, _) => "required".to_string(),
            (false, Some(d)) => format!("`{}`", d.replace('|', "\\|")),
            (false, None) => "—".to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            k.name,
            cell(&describe(&k.ty)),
            default,
            cell(k.doc)
        );
    }
    out.push('\n');
}

fn calls(out: &mut String, calls: &[CallDef]) {
    for c in calls {
        let params: Vec<String> = c
            .params
            .iter()
            .map(|p| {
                if p.required {
                    p.name.to_string()
                } else {
                    format!("{}?", p.name)
                }
            })
            .collect();
        let _ = writeln!(out, "- `{}({})` — {}", c.name, params.join(", "), c.doc);
        for p in c.params {
            let default = p
                .default
                .map(|d| format!(" (default `{d}`)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  - `{}`: {}{} — {}",
                p.name,
                describe(&p.ty),
                default,
                p.doc
            );
        }
    }
    out.push('\n');
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
