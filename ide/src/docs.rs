//! Open documents: their current text, and what the last analyses learnt.
//!
//! Each document keeps two analyses. `last` is the newest, of whatever
//! text was current then; navigation and quick fixes use it once it is
//! brought up to date. `good` is the newest whose recipe file parsed
//! without syntax errors: while the user is mid-edit the newest analysis
//! may have lost a block, so completion and hover draw world knowledge
//! (the model's modules, the data's fields) from whichever of the two
//! has it.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ft_compiler::driver::{self, Analysis, Options};
use ft_compiler::world::{DataInfo, ModelInfo};
use ft_formats::ModelInventory;
use lsp_types::Uri;

use crate::position::{Encoding, Index};

pub struct Document {
    pub uri: Uri,
    pub path: PathBuf,
    pub version: i32,
    pub index: Index,
    /// The newest analysis, and the version it analysed.
    pub last: Option<(i32, Arc<Analysis>)>,
    pub good: Option<Arc<Analysis>>,
    /// When the text changed after the last analysis (the debounce clock):
    /// the first change of a burst, and the latest.
    pub dirty: Option<(Instant, Instant)>,
}

impl Document {
    pub fn new(uri: Uri, version: i32, text: String, enc: Encoding) -> Self {
        Document {
            path: crate::uri::to_path(&uri),
            uri,
            version,
            index: Index::new(text, enc),
            last: None,
            good: None,
            dirty: Some((Instant::now(), Instant::now())),
        }
    }

    pub fn text(&self) -> &str {
        self.index.text()
    }

    /// Replaces the text and starts (or extends) the debounce window.
    pub fn set_text(&mut self, version: i32, text: String) {
        let now = Instant::now();
        self.version = version;
        self.index = Index::new(text, self.index.encoding);
        self.dirty = Some((self.dirty.map_or(now, |(first, _)| first), now));
    }

    /// Analyses the current text (with the world checks, as `ft check`;
    /// a sweep's trials are left to `ft check` and `ft sweep`), reading
    /// imported recipes from `open` (other documents' unsaved texts, by
    /// canonical path) before the disk. A panic in the compiler is caught
    /// and leaves the old analysis.
    pub fn analyze(&mut self, open: &HashMap<PathBuf, String>) -> Option<Arc<Analysis>> {
        self.dirty = None;
        let path = self.path.clone();
        let text = self.text().to_string();
        let result = std::panic::catch_unwind(AssertUnwindSafe(move || {
            driver::analyze_text_with(&path, &text, Options::default(), &|p| open.get(p).cloned())
        }));
        let analysis = Arc::new(result.ok()?);
        if !has_syntax_errors(&analysis) {
            self.good = Some(analysis.clone());
        }
        self.last = Some((self.version, analysis.clone()));
        Some(analysis)
    }

    /// The analysis of the current text, analysing now if it is stale.
    pub fn fresh(&mut self, open: &HashMap<PathBuf, String>) -> Option<Arc<Analysis>> {
        match &self.last {
            Some((v, a)) if *v == self.version && self.dirty.is_none() => Some(a.clone()),
            _ => self.analyze(open),
        }
    }

    /// Whether the last analysis read the file at `path` (an import).
    pub fn reads(&self, path: &Path) -> bool {
        self.latest()
            .is_some_and(|a| a.sources.files.iter().skip(1).any(|f| f.path == path))
    }

    /// The newest analysis, current or not.
    pub fn latest(&self) -> Option<&Analysis> {
        self.last.as_ref().map(|(_, a)| a.as_ref())
    }

    /// Analyses to consult for world knowledge, newest first.
    pub fn analyses(&self) -> impl Iterator<Item = &Analysis> {
        self.latest().into_iter().chain(self.good.as_deref())
    }

    /// The inventory of the model being trained (or of the one named).
    pub fn model(&self, name: Option<&str>) -> Option<(&Analysis, &ModelInventory)> {
        self.analyses()
            .find_map(|a| model_of(a, name).map(|m| (a, m)))
    }

    /// The data fields of a dataset.
    pub fn fields(&self, dataset: &str) -> Vec<String> {
        self.analyses()
            .find_map(|a| data_of(a, dataset).map(|d| d.field_names()))
            .map(|v| v.into_iter().map(String::from).collect())
            .unwrap_or_default()
    }
}

/// Whether the recipe file itself (not an import) has syntax errors.
fn has_syntax_errors(a: &Analysis) -> bool {
    a.files.first().is_none_or(|f| {
        f.items
            .iter()
            .any(|i| matches!(i, ft_compiler::syntax::ast::Item::Broken(_)))
    })
}

/// The model named, else the one trained, else the first one read.
pub fn model_of<'a>(a: &'a Analysis, name: Option<&str>) -> Option<&'a ModelInventory> {
    let world = a.world.as_ref()?;
    let wanted = name.map(String::from).or_else(|| {
        a.recipe
            .model()
            .map(|m| m.name_str().unwrap_or_default().to_string())
    });
    let by_name = |m: &&ModelInfo| {
        wanted
            .as_deref()
            .is_some_and(|w| m.name.as_deref().unwrap_or_default() == w)
    };
    let found = world.models.iter().find(by_name);
    if name.is_some() && found.is_none() {
        return None;
    }
    found
        .or_else(|| world.models.iter().find(|m| m.inventory.is_some()))?
        .inventory
        .as_ref()
}

pub fn data_of<'a>(a: &'a Analysis, dataset: &str) -> Option<&'a DataInfo> {
    a.world
        .as_ref()?
        .data
        .iter()
        .find(|d| d.dataset == dataset && !d.probes.is_empty())
}
