//! docs/language.md's reference section is generated from the schema.

use std::path::Path;

#[test]
fn docs_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md");
    let text = std::fs::read_to_string(&path).expect("docs/language.md");
    let (start, end) = ("<!-- reference:start -->\n", "<!-- reference:end -->");
    let a = text.find(start).expect("start marker") + start.len();
    let b = text.find(end).expect("end marker");
    let generated = ft_compiler::check::schema::docs::reference_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let new = format!("{}{}{}", &text[..a], generated, &text[b..]);
        std::fs::write(&path, new).expect("write docs");
        return;
    }
    assert!(
        text[a..b] == generated,
        "docs/language.md's reference is stale: run UPDATE_DOCS=1 cargo test -p ft-compiler --test docs"
    );
}

/// Every key of every block is documented in the generated reference.
#[test]
fn every_key_is_documented() {
    let md = ft_compiler::check::schema::docs::reference_markdown();
    for b in ft_compiler::check::schema::BLOCKS {
        for k in b.keys {
            assert!(
                md.contains(&format!("| `{}` |", k.name)),
                "{}.{} undocumented",
                b.keyword,
                k.name
            );
            assert!(!k.doc.is_empty());
        }
    }
    for m in ft_compiler::check::schema::PEFT_METHODS {
        assert!(md.contains(&format!("#### `peft {}`", m.name)));
    }
}
