//! Robustness: whatever the bytes, checking and formatting a recipe never
//! panic (nor overflow the stack, nor take unbounded time). Property tests
//! feed random bytes and random mutations of the fixture and example recipes;
//! explicit cases cover the classic hostile inputs.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use ft_compiler::driver::{self, Analysis, Options};
use ft_compiler::fmt;
use ft_compiler::plan::memory::MemoryProbe;

/// Checks bytes (no world checks: nothing on disk is read) and, when they are
/// text, formats them; if formatting succeeds, its output must parse and
/// format to itself.
fn exercise(bytes: &[u8]) -> Analysis {
    let a = driver::analyze_bytes(
        Path::new("fuzz.ft"),
        bytes,
        Options {
            world: false,
            ..Options::default()
        },
    );
    for d in &a.diagnostics {
        let text = &a.sources.get(d.primary.file).text;
        assert!(
            d.primary.span.end <= text.len() && d.primary.span.start <= d.primary.span.end,
            "{} span {:?} outside a {}-byte file",
            d.code.id,
            d.primary.span,
            text.len()
        );
    }
    // Rendering must not panic either (miette slices the source by span).
    let _ = ft_compiler::diagnostics::render::terminal(
        &a.diagnostics,
        &a.sources,
        ft_compiler::diagnostics::render::Style::Plain,
    );
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(once) = fmt::format(text) {
            let twice = fmt::format(&once).expect("formatted output parses");
            assert_eq!(once, twice, "formatting is not idempotent");
        }
    }
    a
}

/// The recipes the mutations start from: fixtures and examples.
fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let dirs = [
        common::fixtures().join("bad"),
        common::fixtures().join("good"),
        common::fixtures().join("imports"),
        common::repo_root().join("recipes"),
    ];
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "ft"))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).expect("read");
            out.push((f, bytes));
        }
    }
    assert!(out.len() > 50, "corpus of {} files", out.len());
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    DuplicateLine(usize),
    Truncate(usize),
}

/// Bytes that matter to the grammar, so mutations hit interesting paths more
/// often than uniformly random bytes would.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(
            b"{}[]()\"=,.:#%+-*/<>!\n \t_e0123456789abcdefxyz\\".to_vec()
        ),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match *m {
        Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
        Mutation::Delete(i) if n > 0 => {
            bytes.remove(i % n);
        }
        Mutation::Replace(i, b) if n > 0 => bytes[i % n] = b,
        Mutation::DuplicateLine(i) if n > 0 => {
            let at = i % n;
            let start = bytes[..at]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |p| p + 1);
            let end = bytes[at..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(n, |p| at + p + 1);
            let line = bytes[start..end].to_vec();
            bytes.splice(end..end, line);
        }
        Mutation::Truncate(i) => bytes.truncate(i % (n + 1)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 250, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn random_grammar_bytes_never_panic(
        bytes in prop::collection::vec(interesting_byte(), 0..512)
    ) {
        exercise(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_recipes_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let (_, original) = &corpus[pick.index(corpus.len())];
        let mut bytes = original.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(&bytes);
    }
}

/// Every prefix of the example recipes and good fixtures (and of the bad
/// fixtures, at a stride): a file cut anywhere.
#[test]
fn every_truncation_never_panics() {
    for (path, bytes) in corpus() {
        let is_bad = path.components().any(|c| c.as_os_str() == "bad");
        let stride = if is_bad { 13 } else { 1 };
        for end in (0..=bytes.len()).step_by(stride) {
            exercise(&bytes[..end]);
        }
    }
}

fn run(bytes: &[u8]) -> Analysis {
    let start = Instant::now();
    let a = exercise(bytes);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    a
}

fn has(a: &Analysis, code: &str) -> bool {
    a.diagnostics.iter().any(|d| d.code.id == code)
}

#[test]
fn empty_file() {
    let a = run(b"");
    assert!(has(&a, "FT0006"));
    assert_eq!(fmt::format("").expect("formats"), "");
}

#[test]
fn only_comments_and_blank_lines() {
    let a = run(b"# one\n\n   # two\r\n#\n\n");
    assert!(has(&a, "FT0006"));
}

#[test]
fn binary_garbage() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let a = run(&bytes);
    assert!(has(&a, "FT0002"), "random bytes are not UTF-8");
    // The same noise restricted to ASCII is text, and full of syntax errors.
    let ascii: Vec<u8> = bytes.iter().map(|b| b & 0x7F).collect();
    let a = run(&ascii);
    assert!(a.has_errors());
}

#[test]
fn ten_megabyte_lines() {
    let big = 10 * 1024 * 1024;
    // A string.
    let mut s = b"let x = \"".to_vec();
    s.resize(s.len() + big, b'a');
    s.extend_from_slice(b"\"\n");
    run(&s);
    // A comment.
    let mut s = b"# ".to_vec();
    s.resize(s.len() + big, b'c');
    assert!(has(&run(&s), "FT0006"));
    // A name and a number (1 MB: the same paths, faster in debug builds).
    let big = 1024 * 1024;
    let mut s = b"train { ".to_vec();
    s.resize(s.len() + big, b'k');
    s.extend_from_slice(b" = 1 }\n");
    run(&s);
    // A number.
    let mut s = b"let n = ".to_vec();
    s.resize(s.len() + big, b'9');
    s.push(b'\n');
    run(&s);
    // A list of 100 000 elements.
    let mut s = b"let l = [".to_vec();
    for _ in 0..100_000 {
        s.extend_from_slice(b"1,");
    }
    s.extend_from_slice(b"]\n");
    run(&s);
}

#[test]
fn deeply_nested_brackets() {
    for open in ["[", "{", "(", "f("] {
        let mut s = b"let x = ".to_vec();
        s.extend(std::iter::repeat_n(open.as_bytes(), 100_000).flatten());
        let a = run(&s);
        assert!(has(&a, "FT0004"), "100 000 × `{open}`");
        // Closed, too.
        let close = match open {
            "[" => "]",
            "{" => "}",
            _ => ")",
        };
        s.extend(std::iter::repeat_n(close.as_bytes(), 100_000).flatten());
        let a = run(&s);
        assert!(has(&a, "FT0004"), "100 000 × `{open}…{close}`");
    }
    // Just under the limit parses.
    let s = format!("let x = {}1{}\n", "[".repeat(60), "]".repeat(60));
    let a = run(s.as_bytes());
    assert!(!has(&a, "FT0004"));
}

/// Deep expressions without brackets: long operator chains and nested `if`s
/// build deep trees, which must not overflow the stack anywhere (parsing,
/// checking, formatting, dropping).
#[test]
fn deep_expressions_without_brackets() {
    let n = 100_000;
    let cases = [
        format!("let x = {}1\n", "-".repeat(n)),
        format!("let x = {}true\n", "not ".repeat(n)),
        format!("let x = 1{}\n", " + 1".repeat(n)),
        format!(
            "let x = {}1{}\n",
            "if a then ".repeat(n),
            " else 2".repeat(n)
        ),
        format!("let x = a{}\n", " ascending".repeat(n)),
        format!(
            "dataset d = jsonl(\"x\") {{ label = {}1 }}\n",
            "if a then 1 else ".repeat(n)
        ),
        format!("train {{ epochs = 1{} }}\n", " * 1".repeat(n)),
    ];
    for (i, text) in cases.iter().enumerate() {
        assert!(has(&run(text.as_bytes()), "FT0004"), "case {i}");
    }
    // The deepest tree the limits allow: 63 levels of parentheses, each
    // holding a chain of 30 operators; it checks and formats.
    let chain = "1 + ".repeat(15) + &"- ".repeat(15);
    let mut deep = String::from("train { epochs = ");
    for _ in 0..63 {
        deep.push_str(&chain);
        deep.push('(');
    }
    deep.push('1');
    deep.push_str(&")".repeat(63));
    deep.push_str(" }\n");
    let a = run(deep.as_bytes());
    assert!(
        !has(&a, "FT0004") && !has(&a, "FT0001"),
        "{:?}",
        a.diagnostics
    );
    let formatted = fmt::format(&deep).expect("formats");
    assert!(formatted.contains("train"));
}

#[test]
fn unterminated_strings() {
    let cases: &[&[u8]] = &[
        b"\"",
        b"\"\"\"",
        b"let x = \"abc",
        b"let x = \"abc\\",
        b"let x = \"\"\"abc\n\ntrain { epochs = 1 }\n",
        b"let x = \"\"\"\"\n",
        b"dataset d = jsonl(\"a.jsonl) {\n prompt = \"{q}\"\n}\n",
        b"let x = \"a\\\"\n",
    ];
    for c in cases {
        let a = run(c);
        assert!(a.has_errors(), "{:?}", String::from_utf8_lossy(c));
    }
    let mut long = b"let x = \"\"\"".to_vec();
    long.resize(long.len() + 2 * 1024 * 1024, b'x');
    assert!(has(&run(&long), "FT0003"));
}

#[test]
fn invalid_utf8() {
    for bytes in [
        &b"\xff"[..],
        b"train { epochs = 1 }\n\xc3",
        b"let x = \"\xe2\x82\"\n",
        b"\xed\xa0\x80",
        b"# ok\n\xf8\x88\x80\x80\x80\n",
    ] {
        let a = run(bytes);
        assert!(has(&a, "FT0002"));
    }
}

#[test]
fn nul_bytes() {
    for bytes in [
        &b"\0"[..],
        b"train {\0 epochs = 1 }\n",
        b"let x = \"a\0b\"\n",
        b"# \0\n",
        b"model m = hf(\"\0\")\n",
    ] {
        run(bytes);
    }
}

#[test]
fn multibyte_text_everywhere() {
    for text in [
        "é",
        "train { épochs = 1 }",
        "let ü = 1",
        "model m = hf(\"ü\") { head = classify(labels = [\"😀\", \"😀\"]) }",
        "dataset d = jsonl(\"x\") { prompt = \"{é\" }",
        "trainé {}",
        "train { epochs = 1 } 😀",
        "\u{FEFF}train { epochs = 1 }",
        "train { epochs = 1 }\r\n\r\nevaluate { on = test }\r\n",
    ] {
        run(text.as_bytes());
    }
}

/// Checking a recipe whose world paths are hostile (a directory as data, a
/// device, the recipe itself as model) reports errors without panicking.
#[test]
fn hostile_world_paths() {
    let text = r#"model m = hf("/dev/null")

dataset d = jsonl("/") {
  prompt     = "{q}"
  completion = "{a}"
}

dataset e = csv("/dev/null") {
  prompt     = "{q}"
  completion = "{a}"
}

train { data = d }
"#;
    let a = driver::analyze_text(
        Path::new("hostile.ft"),
        text,
        Options {
            memory: MemoryProbe::Fixed(16 << 30),
            ..Options::default()
        },
    );
    assert!(a.has_errors());
}
