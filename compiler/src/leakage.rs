//! After the data is built: texts that the split assignment put in more
//! than one split. The data pipeline finds them (it reads every row); this
//! stage turns what it found into a diagnostic at the dataset's `split`, so
//! `ft check`, `ft run` and `ft data` say it the same way.

use ft_data::split::Leak;

use crate::diagnostics::Diagnostic;
use crate::driver::Analysis;

crate::declare_codes! {
    /// The same text is in two splits: an example the model trains on is
    /// also one it is evaluated on, so validation and test scores overstate
    /// what it learned.
    ///
    /// Texts are compared after normalisation (case, whitespace and
    /// punctuation folded), which is how duplicated rows usually differ.
    /// The warning names up to five of them, each with its first file and
    /// line in every split. To keep a text in one split, remove the
    /// duplicates from the data, or assign splits by a field that equal
    /// texts share: `split = { …, key = id }` hashes that field instead of
    /// the row's content, so rows with the same key land together.
    LEAKAGE = "FT0619", "text in more than one split";
}

/// How many shared texts a diagnostic lists.
const SHOWN: usize = 5;

/// The warning for `dataset`'s shared texts, placed at its `split` (or its
/// name); `None` when it has none, or the recipe has no such dataset.
pub fn leakage(analysis: &Analysis, dataset: &str, leaks: &[Leak]) -> Option<Diagnostic> {
    if leaks.is_empty() {
        return None;
    }
    let block = analysis.recipe.named("dataset", dataset)?;
    let span = block
        .keys
        .get("split")
        .map(|e| e.key_span)
        .or(block.name.as_ref().map(|n| n.span))
        .unwrap_or(block.keyword.span);
    let mut d = Diagnostic::warning(
        &LEAKAGE,
        span,
        format!(
            "{} text(s) of dataset `{dataset}` are in more than one split",
            leaks.len()
        ),
    )
    .in_file(block.file)
    .label("these splits share texts");
    for leak in leaks.iter().take(SHOWN) {
        let places: Vec<String> = leak
            .locations
            .iter()
            .map(|l| format!("{} {}:{}", l.split, l.file.display(), l.line))
            .collect();
        d = d.note(format!("\"{}\": {}", clip(&leak.text), places.join(", ")));
    }
    if leaks.len() > SHOWN {
        d = d.note(format!(
            "and {} more (`ft data` lists them all)",
            leaks.len() - SHOWN
        ));
    }
    Some(
        d.help(
            "remove the duplicates, or split by a field equal texts share: `key = …` in `split`",
        ),
    )
}

/// A text shortened for one line.
fn clip(text: &str) -> String {
    const MAX: usize = 60;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}
