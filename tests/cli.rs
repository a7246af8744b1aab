//! End-to-end tests of the `ft` binary: exit codes, output formats, colour,
//! explanations, formatting — what a user or a script sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ft"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .expect("run ft")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assets() {
    assert!(
        root()
            .join(".cache/models/all-MiniLM-L6-v2/model.safetensors")
            .exists(),
        "real assets missing: run scripts/fetch-assets.sh"
    );
}

fn temp_recipe(name: &str, text: &str) -> PathBuf {
    let dir = root().join("target/cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn every_example_recipe_checks_clean() {
    assets();
    let mut recipes: Vec<String> = std::fs::read_dir(root().join("recipes"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ft"))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    recipes.sort();
    assert!(recipes.len() >= 5, "{recipes:?}");
    let mut args = vec!["check"];
    args.extend(recipes.iter().map(String::as_str));
    let o = ft(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for r in &recipes {
        assert!(
            stderr(&o).contains(&format!("✓ {r}: no problems")),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn errors_exit_1_and_are_all_reported() {
    assets();
    let text = std::fs::read_to_string(root().join("recipes/sentiment-minilm.ft"))
        .unwrap()
        .replace("[query, value]", "[q_proj, value]")
        .replace("epochs     = 3", "epocs = 3")
        .replace("../.cache", "../../.cache");
    let p = temp_recipe("two-errors.ft", &text);
    let o = ft(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("FT0607") && err.contains("did you mean `query`?"),
        "{err}"
    );
    assert!(
        err.contains("FT0102") && err.contains("did you mean `epochs`?"),
        "{err}"
    );
    assert!(err.contains("2 errors"), "{err}");
    // Not a terminal, so no colour escapes.
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[test]
fn json_output_has_codes_and_positions() {
    let p = temp_recipe("json.ft", "train { epocs = 3 }\n");
    let o = ft(&[
        "check",
        "--format",
        "json",
        "--no-world",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let diags = v[0]["diagnostics"].as_array().unwrap();
    let typo = diags
        .iter()
        .find(|d| d["code"] == "FT0102")
        .expect("FT0102");
    assert_eq!(typo["primary"]["start"]["line"], 1);
    assert_eq!(typo["primary"]["start"]["column"], 9);
    assert_eq!(typo["fixes"][0]["replacement"], "epochs");
    assert_eq!(v[0]["ok"], false);
}

#[test]
fn missing_file_is_exit_2() {
    let o = ft(&["check", "no/such/recipe.ft"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such/recipe.ft"));
}

#[test]
fn bad_usage_is_exit_2() {
    let o = ft(&["check"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn invalid_utf8_is_a_diagnostic_not_a_panic() {
    let dir = root().join("target/cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("latin1.ft");
    std::fs::write(&p, b"train { epochs = 3 } # caf\xe9\n").unwrap();
    let o = ft(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("FT0002"), "{}", stderr(&o));
}

#[test]
fn explain_prints_every_code() {
    let list = ft(&["explain", "--list"]);
    assert!(list.status.success());
    let codes: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(codes.len() >= 40, "only {} codes", codes.len());
    for c in &codes {
        let o = ft(&["explain", c]);
        assert!(o.status.success(), "{c}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.starts_with(&format!("{c}: ")) && text.len() > 80,
            "{c}: {text}"
        );
    }
    assert_eq!(ft(&["explain", "FT9999"]).status.code(), Some(2));
    // Case-insensitive.
    assert!(ft(&["explain", "ft0102"]).status.success());
}

#[test]
fn fmt_check_and_rewrite() {
    let messy = "# keep me\ntrain {epochs=3   # and me\nbatch=16}\n";
    let p = temp_recipe("messy.ft", messy);
    let path = p.to_str().unwrap();
    assert_eq!(ft(&["fmt", "--check", path]).status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        messy,
        "--check must not write"
    );
    assert!(ft(&["fmt", path]).status.success());
    let once = std::fs::read_to_string(&p).unwrap();
    assert!(
        once.contains("# keep me") && once.contains("# and me"),
        "{once}"
    );
    assert!(
        ft(&["fmt", "--check", path]).status.success(),
        "formatting is idempotent"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), once);
}

#[test]
fn fmt_refuses_broken_recipes_and_keeps_them() {
    let broken = "train { epochs = = 3 }\n";
    let p = temp_recipe("broken.ft", broken);
    let o = ft(&["fmt", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("FT0001"));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), broken);
}

#[test]
fn example_recipes_are_formatted() {
    let dir = root().join("recipes");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ft") {
            let o = ft(&["fmt", "--check", p.to_str().unwrap()]);
            assert!(
                o.status.success(),
                "{} is not formatted: run `ft fmt {}`",
                p.display(),
                rel(&p)
            );
        }
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn plan_of_a_sweep_recipe_says_it_is_a_sweep() {
    assets();
    let o = ft(&["plan", "recipes/sweep-minilm.ft"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("sweep: 6 trials (grid) over train.optimizer.lr × peft.rank, picked by max(val.accuracy), budget steps = 60 each"),
        "{out}"
    );
    assert!(
        out.contains("`ft sweep recipes/sweep-minilm.ft` runs the trials"),
        "{out}"
    );
    let plain = ft(&["plan", "recipes/sentiment-minilm.ft"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("sweep"));
}

#[test]
fn data_rows_lists_every_example_of_a_split() {
    assets();
    let rows = |split: &str| {
        let o = ft(&["data", "recipes/sentiment-minilm.ft", "--rows", split]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (train, test) = (rows("train"), rows("test"));
    // 80/10/10 of the 10 604 snippets (one header-less file, no bad rows).
    assert!((8400..8600).contains(&train.len()), "{}", train.len());
    assert!((1000..1120).contains(&test.len()), "{}", test.len());
    let lines = |rs: &[serde_json::Value]| -> std::collections::HashSet<u64> {
        rs.iter().map(|r| r["line"].as_u64().unwrap()).collect()
    };
    assert!(
        lines(&train).is_disjoint(&lines(&test)),
        "a row in two splits"
    );
    let r = &test[0];
    assert_eq!(r["input_ids"][0], 101, "{r}"); // [CLS]
    assert!(["negative", "positive"].contains(&r["label"].as_str().unwrap()));
    let bad = ft(&["data", "recipes/sentiment-minilm.ft", "--rows", "holdout"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("no dataset in use has a split named `holdout`"));
}
