//! `FT_AVAILABLE_MEMORY` replaces the system's memory in the memory check
//! (FT0801). A test binary of its own: it sets the variable, and no other
//! test may read the environment meanwhile.

mod common;

use ft_compiler::driver::{self, Options};

#[test]
fn the_environment_variable_sets_the_available_memory() {
    common::ensure_world_fixtures();
    let path = common::relative(&common::fixtures().join("bad/memory-exceeded.ft"));
    let check = |value: &str| {
        std::env::set_var("FT_AVAILABLE_MEMORY", value);
        let a = driver::analyze_path(&path, Options::default());
        std::env::remove_var("FT_AVAILABLE_MEMORY");
        a.diagnostics
            .into_iter()
            .filter(|d| d.code.id == "FT0801")
            .collect::<Vec<_>>()
    };
    let w = check("16GiB");
    assert_eq!(w.len(), 1);
    assert!(
        w[0].notes
            .iter()
            .any(|n| n == "available: 16.00 GiB (from FT_AVAILABLE_MEMORY)"),
        "{:?}",
        w[0].notes
    );
    assert!(check("1TiB").is_empty());
}
