//! The headline case: a LoRA target written with Llama's name (`q_proj`)
//! against MiniLM (a BERT model, whose module is `query`) fails with a
//! did-you-mean, found from the model's header before any training data is
//! processed. Uses the real MiniLM and movie-review data fetched by
//! `scripts/fetch-assets.sh`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ft_compiler::diagnostics::Diagnostic;
use ft_compiler::driver::{self, Analysis, Options};
use ft_compiler::plan::memory::MemoryProbe;

fn asset(rel: &str) -> PathBuf {
    let p = common::repo_root().join(".cache").join(rel);
    assert!(
        p.exists(),
        "missing test asset {}: run `scripts/fetch-assets.sh` first",
        p.display()
    );
    p
}

fn recipe(model: &Path, data: &str, targets: &str) -> String {
    format!(
        r#"model encoder = hf("{}") {{
  head = classify(labels = ["negative", "positive"])
}}

dataset reviews = tsv("{data}", columns = ["id", "score", "text"]) {{
  input = "{{text}}"
  label = if score > 0 then "positive" else "negative"
  split = {{ train = 80%, val = 10%, test = 10%, seed = 42, stratify = label }}
}}

peft lora {{
  rank    = 8
  targets = [{targets}]
}}

train {{ epochs = 1, batch = 16, max_len = 128 }}
"#,
        model.display()
    )
}

/// The only diagnostic must be FT0607 on `q_proj`, suggesting `query`.
fn assert_q_proj_suggests_query(text: &str, a: &Analysis) {
    let ids: Vec<&str> = a.diagnostics.iter().map(|d| d.code.id).collect();
    assert_eq!(ids, ["FT0607"], "{:#?}", a.diagnostics);
    let d: &Diagnostic = &a.diagnostics[0];
    assert!(d.is_error());
    assert_eq!(&text[d.primary.span.start..d.primary.span.end], "q_proj");
    let help = d.help.as_deref().unwrap_or_default();
    assert!(
        help.starts_with("did you mean `query`?"),
        "help should suggest `query`: {help}"
    );
    assert_eq!(d.fixes.len(), 1);
    assert_eq!(d.fixes[0].replacement, "query");
    assert_eq!(d.fixes[0].span, d.primary.span);
    assert!(d.message.contains("`q_proj` matches no module of `bert`"));
}

#[test]
fn q_proj_on_minilm_suggests_query_on_the_real_data_in_well_under_a_second() {
    let model = asset("models/all-MiniLM-L6-v2");
    let data = asset("data/movie_snippets.tsv");
    let rows = std::fs::read_to_string(&data).expect("tsv").lines().count();
    assert!(rows > 10_000, "the real data has {rows} rows");
    let text = recipe(&model, &data.display().to_string(), "q_proj, value");
    let start = Instant::now();
    let a = driver::analyze_text(
        &common::repo_root().join("recipes/headline.ft"),
        &text,
        Options {
            memory: MemoryProbe::Off,
            ..Options::default()
        },
    );
    let took = start.elapsed();
    assert_q_proj_suggests_query(&text, &a);
    assert!(
        took < Duration::from_millis(500),
        "the check took {took:?} on a {rows}-row file"
    );
    // The same recipe with `query` is clean.
    let fixed = text.replace("q_proj", "query");
    let a = driver::analyze_text(
        &common::repo_root().join("recipes/headline.ft"),
        &fixed,
        Options {
            memory: MemoryProbe::Off,
            ..Options::default()
        },
    );
    assert!(a.diagnostics.is_empty(), "{:#?}", a.diagnostics);
}

/// The data file is 8 GiB (sparse: a few real rows, then holes). Reading it
/// to the end would take minutes; the check must read only its first rows.
#[test]
fn q_proj_on_minilm_reads_only_the_first_rows_of_the_data() {
    let model = asset("models/all-MiniLM-L6-v2");
    let dir = std::env::temp_dir().join(format!("ft-headline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data = dir.join("huge.tsv");
    {
        let mut f = std::fs::File::create(&data).expect("create");
        for i in 0..100 {
            writeln!(f, "{i}\t{}.5\tA review line number {i}.", i % 5).expect("write");
        }
        f.set_len(8 << 30).expect("sparse 8 GiB file");
    }
    let text = recipe(&model, "huge.tsv", "q_proj, value");
    let start = Instant::now();
    let a = driver::analyze_text(
        &dir.join("headline.ft"),
        &text,
        Options {
            memory: MemoryProbe::Off,
            ..Options::default()
        },
    );
    let took = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    assert_q_proj_suggests_query(&text, &a);
    assert!(took < Duration::from_millis(500), "took {took:?}");
}
