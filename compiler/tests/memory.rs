//! The memory check (FT0801): the Plan's estimate against the memory a
//! probe reports. The probe is fixed here, so the results do not depend on
//! the machine; the rendered warning itself is a fixture snapshot
//! (`fixtures/bad/memory-exceeded.ft`).

mod common;

use std::path::{Path, PathBuf};

use ft_compiler::diagnostics::{Diagnostic, Severity};
use ft_compiler::driver::{self, Analysis, Options};
use ft_compiler::plan::memory::MemoryProbe;

const GIB: u64 = 1 << 30;

fn fixture() -> PathBuf {
    common::relative(&common::fixtures().join("bad/memory-exceeded.ft"))
}

fn analyze_with(path: &Path, text: &str, available: u64) -> Analysis {
    common::ensure_world_fixtures();
    driver::analyze_text(
        path,
        text,
        Options {
            world: true,
            memory: MemoryProbe::Fixed(available),
            trials: false,
        },
    )
}

fn memory_warnings(a: &Analysis) -> Vec<&Diagnostic> {
    assert!(!a.has_errors(), "{:#?}", a.diagnostics);
    a.diagnostics
        .iter()
        .filter(|d| d.code.id == "FT0801")
        .collect()
}

fn fixture_text() -> String {
    std::fs::read_to_string(fixture()).expect("fixture")
}

/// The batch the help suggests (`` `batch = N` with … ``).
fn suggested_batch(d: &Diagnostic) -> u64 {
    let help = d.help.as_deref().expect("a help line");
    let rest = help.split("`batch = ").nth(1).expect("a batch suggestion");
    rest[..rest.find('`').expect("closing quote")]
        .parse()
        .expect("a number")
}

#[test]
fn warns_when_the_estimate_exceeds_the_memory_and_not_otherwise() {
    let text = fixture_text();
    let a = analyze_with(&fixture(), &text, 16 * GIB);
    let w = memory_warnings(&a);
    assert_eq!(w.len(), 1, "{:#?}", a.diagnostics);
    assert_eq!(w[0].severity, Severity::Warning);
    // It points at `batch = 1000000`.
    let span = w[0].primary.span;
    assert_eq!(&text[span.start..span.end], "batch   = 1000000");
    // A machine with a terabyte: the same recipe fits.
    let a = analyze_with(&fixture(), &text, 1 << 40);
    assert!(memory_warnings(&a).is_empty());
    // No probe, no check.
    let a = driver::analyze_text(
        &fixture(),
        &text,
        Options {
            world: true,
            memory: MemoryProbe::Off,
            trials: false,
        },
    );
    assert!(memory_warnings(&a).is_empty());
}

#[test]
fn the_suggested_batch_is_the_largest_that_fits() {
    let text = fixture_text();
    let a = analyze_with(&fixture(), &text, 16 * GIB);
    let n = suggested_batch(memory_warnings(&a)[0]);
    assert!(n > 1 && n < 1_000_000, "{n}");
    let with = |b: u64| text.replace("batch   = 1000000", &format!("batch   = {b}"));
    assert!(memory_warnings(&analyze_with(&fixture(), &with(n), 16 * GIB)).is_empty());
    assert_eq!(
        memory_warnings(&analyze_with(&fixture(), &with(n + 1), 16 * GIB)).len(),
        1
    );
}

#[test]
fn cuda_recipes_are_not_checked_against_host_memory() {
    let text = fixture_text().replace("max_len = 32", "max_len = 32\n  backend = cuda");
    assert!(text.contains("backend = cuda"));
    assert!(memory_warnings(&analyze_with(&fixture(), &text, 16 * GIB)).is_empty());
}

#[test]
fn the_default_batch_and_length_are_checked_too() {
    // No `batch` or `max_len` written: 8 × 512 by default, which does not
    // fit in a few kilobytes; the warning points at the train block.
    let text = fixture_text().replace("  batch   = 1000000\n  max_len = 32\n", "  epochs = 1\n");
    let a = analyze_with(&fixture(), &text, 4096);
    let w = memory_warnings(&a);
    assert_eq!(w.len(), 1);
    let span = w[0].primary.span;
    assert_eq!(&text[span.start..span.end], "train");
    assert!(
        w[0].primary.message.contains("8 × max_len 512"),
        "{}",
        w[0].primary.message
    );
}

#[test]
fn a_curriculum_stage_at_its_own_batch_is_checked() {
    let dir = common::fixtures().join("bad");
    let path = common::relative(&dir.join("stage-memory.ft"));
    let text = r#"model lm = hf("../world/models/tiny-llama")

dataset qa = jsonl("../world/data/qa.jsonl") {
  prompt     = "Q: {question} A:"
  completion = " {answer}"
  split      = { train = 80%, val = 20% }
}

curriculum {
  stage short { data = qa, epochs = 1 }
  stage big   { data = qa, epochs = 1, batch = 1000000 }
}

peft lora { rank = 4 }

train { batch = 4, max_len = 64 }
"#;
    let a = analyze_with(&path, text, 16 * GIB);
    let w = memory_warnings(&a);
    assert_eq!(w.len(), 1, "{:#?}", a.diagnostics);
    let span = w[0].primary.span;
    assert_eq!(&text[span.start..span.end], "batch = 1000000");
    assert!(
        w[0].primary.message.contains("in stage `big`"),
        "{}",
        w[0].primary.message
    );
    // Without the big stage the recipe fits.
    let small = text.replace(", batch = 1000000", "");
    assert!(memory_warnings(&analyze_with(&path, &small, 16 * GIB)).is_empty());
}

/// The least memory (to 1 MiB) at which `text` gets no FT0801.
fn least_memory(text: &str) -> u64 {
    let (mut lo, mut hi) = (0u64, 1u64 << 44);
    while hi - lo > 1 << 20 {
        let mid = lo + (hi - lo) / 2;
        if memory_warnings(&analyze_with(&fixture(), text, mid)).is_empty() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[test]
fn gradient_checkpointing_lowers_the_estimate_and_is_suggested_when_it_fits() {
    let plain = fixture_text();
    let recomputed = plain.replace(
        "max_len = 32",
        "max_len = 32\n  gradient_checkpointing = true",
    );
    assert!(recomputed.contains("gradient_checkpointing = true"));
    let (need_plain, need_recomputed) = (least_memory(&plain), least_memory(&recomputed));
    // Two layers kept at 68 bytes per hidden unit and token each, against
    // one layer's plus two 4-byte inputs: about 40 % less.
    assert!(
        need_recomputed < need_plain * 7 / 10,
        "{need_recomputed} vs {need_plain}"
    );
    // Between the two: the plain recipe is told that recomputing fits…
    let between = (need_plain + need_recomputed) / 2;
    let a = analyze_with(&fixture(), &plain, between);
    let help = memory_warnings(&a)[0].help.clone().expect("a help line");
    assert!(
        help.starts_with("set `gradient_checkpointing = true`") && help.contains("`batch = "),
        "{help}"
    );
    // …and with it on, there is nothing to say.
    assert!(memory_warnings(&analyze_with(&fixture(), &recomputed, between)).is_empty());
    // Where not even that fits, it is not suggested.
    let a = analyze_with(&fixture(), &plain, need_recomputed / 2);
    let help = memory_warnings(&a)[0].help.clone().expect("a help line");
    assert!(!help.contains("gradient_checkpointing"), "{help}");
}
