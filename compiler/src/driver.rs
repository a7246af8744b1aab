//! Runs the stages on a recipe: read and parse it and its imports, check,
//! then the world checks. The CLI, the language server and watch mode all
//! come through here, so they report exactly the same diagnostics.

use std::path::{Path, PathBuf};

use crate::check::{self, Recipe};
use crate::diagnostics::{Diagnostic, FileId};
use crate::plan::memory::MemoryProbe;
use crate::plan::LowerError;
use crate::source::{SourceFile, SourceMap};
use crate::syntax::{self, ast};
use crate::world;
use ft_plan::Plan;

crate::declare_codes! {
    /// An imported recipe file cannot be read.
    ///
    /// `import "common.ft"` is resolved relative to the importing file.
    /// Check the path and that the file exists.
    IMPORT_NOT_FOUND = "FT0116", "import not found";

    /// Recipes import each other in a cycle.
    ///
    /// `a.ft` imports `b.ft`, which imports `a.ft`: neither can be read
    /// first. The chain of imports is shown; move what both need into a
    /// third file that imports neither.
    IMPORT_CYCLE = "FT0117", "import cycle";

    /// The recipe file itself cannot be read.
    ///
    /// The path does not exist, is a directory, or is not readable.
    UNREADABLE = "FT0007", "cannot read the recipe";
}

/// Everything known about one recipe after checking.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub sources: SourceMap,
    /// Parsed files, indexed like `sources`.
    pub files: Vec<ast::File>,
    pub recipe: Recipe,
    pub diagnostics: Vec<Diagnostic>,
    pub world: Option<world::World>,
    /// The Plan, lowered once when the recipe checked without errors
    /// against its world; `None` when it was not lowered.
    pub plan: Option<Result<Plan, LowerError>>,
}

impl Analysis {
    /// The recipe's Plan: the one lowered while checking, else lowered now
    /// (an analysis without the world checks).
    pub fn plan(&self) -> Result<Plan, LowerError> {
        match &self.plan {
            Some(p) => p.clone(),
            None => crate::plan::lower(self),
        }
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// A hash of what the recipe *means*: its syntax trees without spans and
    /// comments, plus the size and modification time of every model and
    /// data file it reads. A comment or layout edit leaves it unchanged, so
    /// watch mode does not restart a run for it; a changed value or data
    /// file changes it.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in &self.files {
            let items = serde_json::to_value(&f.items).unwrap_or_default();
            strip_positions(&items).to_string().hash(&mut h);
        }
        // Recipe files count by their trees (above); model and data files by
        // size and modification time.
        let recipes: Vec<&PathBuf> = self.sources.files.iter().map(|f| &f.path).collect();
        for p in self.input_files().iter().filter(|p| !recipes.contains(p)) {
            p.hash(&mut h);
            if let Ok(m) = std::fs::metadata(p) {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
        h.finish()
    }

    /// Every file the recipe depends on: the recipe, its imports, and the
    /// model and data files the world checks found.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.sources.files.iter().map(|f| f.path.clone()).collect();
        if let Some(w) = &self.world {
            for m in &w.models {
                out.push(m.path.clone());
                if m.path.is_dir() {
                    if let Ok(rd) = std::fs::read_dir(&m.path) {
                        out.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
                    }
                }
            }
            for d in &w.data {
                for (_, p) in &d.probes {
                    out.extend(p.files.iter().cloned());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// A JSON tree without byte positions, so that moving text around does not
/// change it.
fn strip_positions(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "span" | "content_start" | "bad_escapes"))
                .map(|(k, v)| (k.clone(), strip_positions(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_positions).collect()),
        other => other.clone(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Read model and data headers (the world checks).
    pub world: bool,
    /// Where the memory check (with the world checks) reads the memory
    /// available; tests fix it so their output does not depend on the
    /// machine.
    pub memory: MemoryProbe,
    /// Check every trial of a sweep too (`ft check`, `ft sweep`): each is a
    /// whole recipe to check and lower, too slow for every keystroke.
    pub trials: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            world: true,
            memory: MemoryProbe::System,
            trials: false,
        }
    }
}

/// Checks the recipe at `path`, reading it from disk.
pub fn analyze_path(path: &Path, opts: Options) -> Analysis {
    match std::fs::read(path) {
        Ok(bytes) => analyze_bytes(path, &bytes, opts),
        Err(e) => unreadable(
            path,
            Diagnostic::error(
                &UNREADABLE,
                Default::default(),
                format!("cannot read `{}`: {e}", path.display()),
            )
            .help("check the path"),
        ),
    }
}

/// Checks a recipe whose bytes are given (the editor's unsaved buffer).
pub fn analyze_bytes(path: &Path, bytes: &[u8], opts: Options) -> Analysis {
    match syntax::decode(bytes) {
        Ok(text) => analyze_text(path, text, opts),
        Err(d) => unreadable(path, d),
    }
}

/// The analysis of a file that could not be read as text: one diagnostic.
fn unreadable(path: &Path, d: Diagnostic) -> Analysis {
    let mut sources = SourceMap::default();
    sources.add(SourceFile::new(path, path.display().to_string(), ""));
    Analysis {
        sources,
        files: vec![ast::File::default()],
        recipe: Recipe::default(),
        diagnostics: vec![d],
        world: None,
        plan: None,
    }
}

/// Checks a recipe given as text. With [`Options::trials`], a recipe with a
/// sweep also has every trial checked (see [`crate::sweep`]): an invalid
/// combination is an error of the recipe, in `ft check` as in `ft sweep`.
pub fn analyze_text(path: &Path, text: &str, opts: Options) -> Analysis {
    analyze_text_with(path, text, opts, &|_| None)
}

/// What an analysis reads for a file instead of the disk: an editor's
/// unsaved buffer of an imported recipe (by canonical path), or `None`.
pub type Unsaved<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// [`analyze_text`], with imported recipes read from `unsaved` where it
/// has them (the editor's open buffers).
pub fn analyze_text_with(path: &Path, text: &str, opts: Options, unsaved: Unsaved) -> Analysis {
    let mut analysis = analyze_one_with(path, text, opts, unsaved);
    if opts.world && opts.trials && !analysis.has_errors() {
        if let Some(sweep) = crate::sweep::expand(&analysis) {
            if let Err(d) = crate::sweep::check_trials(&analysis, &sweep, opts) {
                analysis.diagnostics.extend(d);
                sort(&mut analysis.diagnostics);
            }
        }
    }
    analysis
}

/// Checks one recipe text, a sweep's trials not included (a trial is
/// checked with this).
pub(crate) fn analyze_one(path: &Path, text: &str, opts: Options) -> Analysis {
    analyze_one_with(path, text, opts, &|_| None)
}

fn analyze_one_with(path: &Path, text: &str, opts: Options, unsaved: Unsaved) -> Analysis {
    let mut sources = SourceMap::default();
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    let root = sources.add(SourceFile::new(path, path.display().to_string(), text));
    let (file, diags) = syntax::parse(text);
    diagnostics.extend(diags);
    files.push(file);
    load_imports(
        root,
        &mut vec![canonical(path)],
        &mut Loaded {
            sources: &mut sources,
            files: &mut files,
            unsaved,
        },
        &mut diagnostics,
    );

    let refs: Vec<(FileId, &ast::File)> = files.iter().enumerate().collect();
    let recipe = check::check(&refs, &mut diagnostics);
    let world = opts
        .world
        .then(|| world::check(&recipe, &sources, &mut diagnostics));
    sort(&mut diagnostics);
    let mut analysis = Analysis {
        sources,
        files,
        recipe,
        diagnostics,
        world,
        plan: None,
    };
    // Last, because they need the whole checked recipe and the model's
    // inventory: the Plan, and its memory estimate against this machine's
    // memory.
    if opts.world && !analysis.has_errors() {
        analysis.plan = Some(crate::plan::lower(&analysis));
    }
    if opts.world {
        if let Some(d) = crate::plan::memory::check(&analysis, opts.memory) {
            analysis.diagnostics.push(d);
            sort(&mut analysis.diagnostics);
        }
    }
    analysis
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// The files read so far, and where unsaved texts come from.
struct Loaded<'a> {
    sources: &'a mut SourceMap,
    files: &'a mut Vec<ast::File>,
    unsaved: Unsaved<'a>,
}

/// Loads the imports of file `id` depth-first, detecting cycles along the
/// current chain; a file imported twice (a diamond) is loaded once.
fn load_imports(
    id: FileId,
    chain: &mut Vec<PathBuf>,
    loaded: &mut Loaded,
    diags: &mut Vec<Diagnostic>,
) {
    let imports: Vec<ast::Import> = loaded.files[id]
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Import(im) => Some(im.clone()),
            _ => None,
        })
        .collect();
    for im in imports {
        let target = loaded.sources.get(id).dir().join(&im.path.value);
        let canon = canonical(&target);
        if let Some(pos) = chain.iter().position(|p| *p == canon) {
            let cycle: Vec<String> = chain[pos..]
                .iter()
                .chain(std::iter::once(&canon))
                .map(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect();
            diags.push(
                Diagnostic::error(&IMPORT_CYCLE, im.path.span, "this import closes a cycle")
                    .in_file(id)
                    .label("imports a file that imports this one")
                    .note(format!("cycle: {}", cycle.join(" → ")))
                    .help("move what both files need into a third file that imports neither"),
            );
            continue;
        }
        if loaded.sources.find(&canon).is_some() {
            continue;
        }
        let read = match (loaded.unsaved)(&canon) {
            Some(text) => Ok(text.into_bytes()),
            None => std::fs::read(&target),
        };
        let text = match read {
            Ok(b) => b,
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        &IMPORT_NOT_FOUND,
                        im.path.span,
                        format!("cannot read `{}`: {e}", target.display()),
                    )
                    .in_file(id)
                    .label("imported here")
                    .help("paths are relative to the importing recipe"),
                );
                continue;
            }
        };
        let text = match syntax::decode(&text) {
            Ok(t) => t.to_string(),
            Err(d) => {
                diags.push(d.in_file(id));
                continue;
            }
        };
        let new_id = loaded.sources.add(SourceFile::new(
            canon.clone(),
            target.display().to_string(),
            text.as_str(),
        ));
        let (file, pd) = syntax::parse(&text);
        diags.extend(pd.into_iter().map(|d| d.in_file(new_id)));
        loaded.files.push(file);
        chain.push(canon);
        load_imports(new_id, chain, loaded, diags);
        chain.pop();
    }
}

/// Diagnostics in file order, then position, errors before warnings at the
/// same place, so output is stable.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.primary.file, a.primary.span.start, a.severity, a.code.id).cmp(&(
            b.primary.file,
            b.primary.span.start,
            b.severity,
            b.code.id,
        ))
    });
}
