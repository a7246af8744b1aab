//! A run's errors carry their typed cause: a data row the pipeline refuses
//! during a run is a `TrainError::Data`, whose message names the file and
//! line, as the checker's diagnostics do.

mod common;

use common::{quickstart_into, root};
use ft_compiler::driver::{self, Options};
use ft_runtime::train::{self, ErrorKind, RunOptions, TrainError};

#[test]
fn a_bad_row_found_during_a_run_is_typed_with_its_file_and_line() {
    let dir = root().join("target/train-tests/bad-row-typed");
    let _ = std::fs::remove_dir_all(&dir);
    let quick = quickstart_into(&dir);
    let data = dir.join("data/quickstart-snippets.tsv");
    let text = std::fs::read_to_string(&data).unwrap();
    let lines = text.lines().count();
    std::fs::write(&data, format!("{text}x1\tnot-a-number\tsome text\n")).unwrap();
    let recipe = dir.join("recipe.ft");
    std::fs::write(&recipe, &quick).unwrap();
    let a = driver::analyze_path(&recipe, Options::default());
    assert!(!a.has_errors(), "{:#?}", a.diagnostics);
    let plan = ft_compiler::plan::lower(&a).unwrap();
    let err = train::run(&plan, &RunOptions::new(dir.join("runs")), &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(matches!(err, TrainError::Data(_)), "{err:?}");
    let at = format!("quickstart-snippets.tsv:{}", lines + 1);
    assert!(err.to_string().contains(&at), "{err}");
    assert!(err.to_string().contains("score"), "{err}");
}
