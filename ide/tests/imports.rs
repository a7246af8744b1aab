//! Recipes that import others: navigation into the imported file, problems
//! in it shown on the `import`, and re-checking when it is saved.

mod common;

use common::{pos, tdp, Client};
use lsp_types::{self as lsp, request as req, Position};

fn uri_of(path: &std::path::Path) -> lsp::Uri {
    format!("file://{}", path.display()).parse().unwrap()
}

#[test]
fn definition_of_an_import_opens_the_file() {
    let dir = tempdir("definition");
    std::fs::write(
        dir.join("common.ft"),
        "dataset shared = jsonl(\"x.jsonl\")\n",
    )
    .unwrap();
    let path = dir.join("main.ft");
    let uri = uri_of(&path);
    let text = "import \"common.ft\"\n\ntrain { data = shared }\n";
    let mut c = Client::start();
    c.open(&uri, text);
    let def = |c: &mut Client, p| match c
        .request::<req::GotoDefinition>(lsp::GotoDefinitionParams {
            text_document_position_params: tdp(&uri, p),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .expect("a definition")
    {
        lsp::GotoDefinitionResponse::Scalar(l) => l,
        d => panic!("{d:?}"),
    };
    let loc = def(&mut c, pos(text, "common", 2));
    assert!(
        loc.uri.as_str().ends_with("/common.ft"),
        "{}",
        loc.uri.as_str()
    );
    let loc = def(&mut c, pos(text, "shared", 2));
    assert!(loc.uri.as_str().ends_with("/common.ft"));
    assert_eq!(loc.range.start, Position::new(0, 8));
    c.shutdown();
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ft-ide-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

#[test]
fn problems_in_imports_and_saving_them() {
    let dir = tempdir("save");
    let common = dir.join("common.ft");
    std::fs::write(
        &common,
        "dataset shared = jsonl(\"x.jsonl\") { prompt = \"{q}\" }\n",
    )
    .unwrap();
    let main = dir.join("main.ft");
    let text = "import \"common.ft\"\n\ntrain { data = shared }\n";
    let (main_uri, common_uri) = (uri_of(&main), uri_of(&common));
    let mut c = Client::start();
    c.open(&main_uri, text);
    let d = c.diagnostics(&main_uri, Some(1));
    assert!(
        !d.iter()
            .any(|d| !d.message.starts_with("in `") && d.message.contains("shared")),
        "the name resolves: {d:#?}"
    );
    // The data file is missing: reported on the import line, pointing into
    // common.ft.
    let in_import = d
        .iter()
        .find(|d| d.message.starts_with("in `"))
        .unwrap_or_else(|| panic!("a problem of common.ft: {d:#?}"));
    assert_eq!(in_import.range.start, Position::new(0, 0));
    let rel = &in_import.related_information.as_ref().unwrap()[0];
    assert_eq!(rel.location.uri, common_uri);

    // common.ft renames the dataset and is saved: main.ft is checked again.
    let renamed = "dataset other = jsonl(\"x.jsonl\") { prompt = \"{q}\" }\n";
    std::fs::write(&common, renamed).unwrap();
    c.open(&common_uri, renamed);
    let before = c.published.len();
    c.notify(
        "textDocument/didSave",
        serde_json::json!({ "textDocument": { "uri": common_uri } }),
    );
    let mut undefined = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let _ = c.hover(&main_uri, Position::new(0, 0));
        undefined = c.published[before..].iter().any(|p| {
            p.uri == main_uri
                && p.diagnostics
                    .iter()
                    .any(|d| !d.message.starts_with("in `") && d.message.contains("shared"))
        });
        if undefined {
            break;
        }
    }
    assert!(undefined, "main.ft re-checked after the save");
    c.shutdown();
}

/// An imported recipe open in the editor is read as it stands, unsaved:
/// renaming its dataset (without saving) makes the importing recipe's
/// reference undefined, and renaming it back resolves it again.
#[test]
fn unsaved_edits_of_an_import_are_seen() {
    let dir = tempdir("unsaved");
    let common = dir.join("common.ft");
    let original = "dataset shared = jsonl(\"x.jsonl\") { prompt = \"{q}\" }\n";
    std::fs::write(&common, original).unwrap();
    let main = dir.join("main.ft");
    let text = "import \"common.ft\"\n\ntrain { data = shared }\n";
    let (main_uri, common_uri) = (uri_of(&main), uri_of(&common));
    let mut c = Client::start();
    c.open(&common_uri, original);
    c.open(&main_uri, text);
    let undefined = |d: &[lsp::Diagnostic]| {
        d.iter()
            .any(|d| !d.message.starts_with("in `") && d.message.contains("shared"))
    };
    assert!(!undefined(&c.diagnostics(&main_uri, Some(1))));

    // Edited, not saved: the file on disk still declares `shared`.
    c.change(
        &common_uri,
        "dataset other = jsonl(\"x.jsonl\") { prompt = \"{q}\" }\n",
    );
    let mut seen = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let _ = c.hover(&main_uri, lsp::Position::new(0, 0));
        if c.published
            .iter()
            .rev()
            .find(|p| p.uri == main_uri)
            .is_some_and(|p| undefined(&p.diagnostics))
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "main.ft re-checked against the unsaved import");
    c.shutdown();
}
