//! The conformance table (`ft_compiler::check::schema::conformance`): every
//! setting the schema accepts has exactly one row, and every row points at
//! something real — a test function that exists, or a diagnostic code with
//! a bad fixture that raises it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ft_compiler::check::schema::conformance::{Shown, CONFORMANCE};
use ft_compiler::check::schema::settings;
use ft_compiler::diagnostics::registry;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_setting_has_exactly_one_row() {
    let all = settings();
    let rows: Vec<&str> = CONFORMANCE.iter().map(|(s, _)| *s).collect();
    let missing: Vec<&String> = all.iter().filter(|s| !rows.contains(&s.as_str())).collect();
    assert!(
        missing.is_empty(),
        "settings without a row in the conformance table: {missing:?}"
    );
    let stale: Vec<&&str> = rows
        .iter()
        .filter(|r| !all.iter().any(|s| s == *r))
        .collect();
    assert!(stale.is_empty(), "rows naming no setting: {stale:?}");
    let unique: BTreeSet<&&str> = rows.iter().collect();
    assert_eq!(unique.len(), rows.len(), "a setting has two rows");
}

/// `path::function` names a `#[test]` function in that file.
#[test]
fn every_named_test_exists() {
    let mut bad = Vec::new();
    for (setting, shown) in CONFORMANCE {
        let Shown::Test(reference) = shown else {
            continue;
        };
        let Some((file, function)) = reference.split_once("::") else {
            bad.push(format!("{setting}: `{reference}` is not path::function"));
            continue;
        };
        let Ok(text) = std::fs::read_to_string(root().join(file)) else {
            bad.push(format!("{setting}: no file {file}"));
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| {
            l.trim_start()
                .strip_prefix("fn ")
                .is_some_and(|rest| rest.starts_with(&format!("{function}(")))
        });
        // The attributes above it include `#[test]`.
        let is_test = at.is_some_and(|i| {
            lines[..i]
                .iter()
                .rev()
                .take_while(|l| {
                    l.trim_start().starts_with("#[") || l.trim_start().starts_with("///")
                })
                .any(|l| l.trim() == "#[test]")
        });
        if !is_test {
            bad.push(format!("{setting}: no #[test] fn {function} in {file}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A refusal names a registered code and a bad fixture whose snapshot
/// shows that code.
#[test]
fn every_refusal_is_raised_by_its_fixture() {
    let fixtures = root().join("compiler/tests");
    for (setting, shown) in CONFORMANCE {
        let Shown::Refused(code, fixture) = shown else {
            continue;
        };
        assert!(registry::find(code).is_some(), "{setting}: no code {code}");
        let snapshot = fixtures.join(format!(
            "snapshots/fixtures__bad_fixture_snapshots@{fixture}.snap"
        ));
        let text = std::fs::read_to_string(&snapshot)
            .unwrap_or_else(|_| panic!("{setting}: no snapshot of bad/{fixture}"));
        assert!(
            text.contains(code),
            "{setting}: bad/{fixture} does not raise {code}"
        );
    }
}
