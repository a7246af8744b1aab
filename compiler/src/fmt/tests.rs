//! Unit tests.
#[test]
fn smoke() {
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../recipes")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ft") {
            let t = std::fs::read_to_string(&p).unwrap();
            let out = super::format(&t).unwrap();
            println!("=== {}\n{out}", p.display());
            let again = super::format(&out).unwrap();
            assert_eq!(again, out);
        }
    }
}
