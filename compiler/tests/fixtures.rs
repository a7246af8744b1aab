//! Fixture tests: every bad recipe under `tests/fixtures/bad/` is checked
//! (with the world checks, against the small models and data files under
//! `tests/fixtures/world/`) and its rendered diagnostics are compared with an
//! insta snapshot; together the bad fixtures raise every diagnostic code the
//! compiler declares. Good fixtures and the repository's example recipes
//! check without errors.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ft_compiler::diagnostics::{registry, Severity};
use ft_compiler::syntax::ast::Item;

use common::{analyze, codes, render};

fn bad_fixtures() -> Vec<PathBuf> {
    common::ensure_world_fixtures();
    let mut v: Vec<PathBuf> = std::fs::read_dir(common::fixtures().join("bad"))
        .expect("fixtures/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ft"))
        .collect();
    v.sort();
    v
}

fn ft_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "ft"))
        .collect();
    v.sort();
    v
}

#[test]
fn bad_fixture_snapshots() {
    common::ensure_world_fixtures();
    insta::glob!("fixtures/bad/*.ft", |path| {
        let a = analyze(path);
        insta::assert_snapshot!(render(path, &a));
    });
}

#[test]
fn every_bad_fixture_fails_and_says_what_it_tests() {
    let all = bad_fixtures();
    assert!(all.len() >= 70, "only {} bad fixtures", all.len());
    for path in &all {
        if path.is_file() {
            let bytes = std::fs::read(path).expect("read");
            assert!(
                bytes.starts_with(b"# "),
                "{} must start with a `# ` comment saying what it tests",
                path.display()
            );
        }
        let a = analyze(path);
        assert!(
            !a.diagnostics.is_empty(),
            "{} reports nothing",
            path.display()
        );
        // Every diagnostic is reported once: no two share code, place and
        // message.
        let mut seen = BTreeSet::new();
        for d in &a.diagnostics {
            let key = (
                d.code.id,
                d.primary.file,
                d.primary.span.start,
                d.primary.span.end,
                d.message.clone(),
            );
            assert!(
                seen.insert(key),
                "{}: duplicated diagnostic {} {}",
                path.display(),
                d.code.id,
                d.message
            );
        }
        // Spans lie inside their file, on character boundaries.
        for d in &a.diagnostics {
            for l in std::iter::once(&d.primary).chain(&d.secondary) {
                let text = &a.sources.get(l.file).text;
                assert!(
                    l.span.start <= l.span.end
                        && l.span.end <= text.len()
                        && text.is_char_boundary(l.span.start)
                        && text.is_char_boundary(l.span.end),
                    "{}: {} has span {:?} outside its file ({} bytes)",
                    path.display(),
                    d.code.id,
                    l.span,
                    text.len()
                );
            }
        }
    }
}

#[test]
fn bad_fixtures_cover_every_code() {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for path in bad_fixtures() {
        seen.extend(codes(&analyze(&path)));
    }
    // Raised once the data is built (the pipeline finds the texts), so no
    // recipe alone raises it: `leakage_is_placed_at_the_split` below and
    // `tests/train_cli.rs` (`ft check` and `ft run`) cover it.
    seen.insert(ft_compiler::leakage::LEAKAGE.id);
    let missing: Vec<String> = registry::all()
        .into_iter()
        .filter(|c| !seen.contains(c.id))
        .map(|c| format!("{} ({})", c.id, c.title))
        .collect();
    assert!(
        missing.is_empty(),
        "codes no fixture under tests/fixtures/bad raises:\n  {}",
        missing.join("\n  ")
    );
}

/// Asserts a recipe checks without errors and with exactly the listed
/// warnings (codes).
fn assert_clean(path: &Path, allowed_warnings: &[&str]) {
    let a = analyze(path);
    let errors: Vec<&str> = a
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.code.id)
        .collect();
    let warnings: Vec<&str> = a
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.code.id)
        .collect();
    assert!(
        errors.is_empty() && warnings == allowed_warnings,
        "{} should check clean (warnings {allowed_warnings:?}), got:\n{}",
        path.display(),
        render(path, &a)
    );
}

#[test]
fn good_fixtures_check_clean() {
    let good = ft_files(&common::fixtures().join("good"));
    assert!(good.len() >= 5);
    for path in good {
        assert_clean(&path, &[]);
    }
}

#[test]
fn example_recipes_check_clean() {
    let root = common::repo_root();
    assert!(
        root.join(".cache/models/all-MiniLM-L6-v2").is_dir(),
        "missing test assets: run `scripts/fetch-assets.sh` first"
    );
    let recipes = ft_files(&root.join("recipes"));
    assert!(!recipes.is_empty());
    for path in recipes {
        assert_clean(&path, &[]);
    }
}

#[test]
fn five_errors_in_five_blocks_in_one_run() {
    let path = common::fixtures().join("bad/five-errors-five-blocks.ft");
    let a = analyze(&path);
    let errors: Vec<_> = a.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 5, "{}", render(&path, &a));
    // Each error lies in a different top-level block.
    let items = &a.files[0].items;
    let mut blocks = BTreeSet::new();
    for d in &errors {
        assert_eq!(d.primary.file, 0);
        let i = items
            .iter()
            .position(|it| it.span().contains(d.primary.span.start))
            .unwrap_or_else(|| panic!("{} is in no item", d.code.id));
        blocks.insert(i);
    }
    assert_eq!(blocks.len(), 5, "errors share a block: {blocks:?}");
    // Syntax errors (the broken blocks) and check errors (the others).
    let syntax = errors.iter().filter(|d| d.code.id == "FT0001").count();
    assert_eq!(syntax, 2, "two blocks have syntax errors");
    let broken = items
        .iter()
        .filter(|i| matches!(i, Item::Broken(_)))
        .count();
    assert_eq!(broken, 2);
    let mut check_codes: Vec<&str> = errors
        .iter()
        .map(|d| d.code.id)
        .filter(|c| *c != "FT0001")
        .collect();
    check_codes.sort();
    assert_eq!(check_codes, ["FT0202", "FT0202", "FT0205"]);
}

#[test]
fn generated_binary_fixtures_are_committed_as_generated() {
    common::ensure_world_fixtures();
    for (rel, bytes) in common::generated_files() {
        let on_disk = std::fs::read(common::fixtures().join(rel)).expect("fixture written");
        assert_eq!(on_disk, bytes, "{rel}");
    }
}

/// FT0619 points at the dataset's `split`, names each shared text with its
/// place in every split, and sends the rest to `ft data`.
#[test]
fn leakage_is_placed_at_the_split() {
    use ft_data::split::{Leak, Location};
    common::ensure_world_fixtures();
    let path = common::fixtures().join("good/classify-tiny-bert.ft");
    let mut a = analyze(&path);
    let leak = |i: usize| Leak {
        text: format!("shared   text {i}"),
        locations: vec![
            Location {
                split: "train".into(),
                file: "reviews.csv".into(),
                line: 2 + i,
            },
            Location {
                split: "test".into(),
                file: "reviews.csv".into(),
                line: 40 + i,
            },
        ],
    };
    let leaks: Vec<Leak> = (0..7).map(leak).collect();
    assert!(ft_compiler::leakage::leakage(&a, "reviews", &[]).is_none());
    assert!(ft_compiler::leakage::leakage(&a, "nothing", &leaks).is_none());
    let d = ft_compiler::leakage::leakage(&a, "reviews", &leaks).expect("a warning");
    assert_eq!(d.severity, Severity::Warning);
    a.diagnostics.push(d);
    insta::assert_snapshot!(render(&path, &a));
}
