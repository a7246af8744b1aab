//! Shared by the commands that act on a recipe (`plan`, `run`, `eval`,
//! `data`): check it, print its diagnostics, and lower it to a Plan.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ft_compiler::diagnostics::render;
use ft_compiler::driver::{self, Analysis, Options};
use ft_plan::Plan;

/// Checks and lowers a recipe. On errors the diagnostics (or the lowering
/// problem) are printed to stderr and the exit code to return is given.
pub fn load(path: &Path) -> Result<(Plan, Analysis), ExitCode> {
    if !path.is_file() {
        eprintln!("error: cannot read `{}`: no such file", path.display());
        return Err(ExitCode::from(2));
    }
    let analysis = driver::analyze_path(path, Options::default());
    if !analysis.diagnostics.is_empty() {
        eprint!(
            "{}",
            render::terminal(
                &analysis.diagnostics,
                &analysis.sources,
                super::stderr_style()
            )
        );
    }
    if analysis.has_errors() {
        eprintln!(
            "✗ {}: {}",
            path.display(),
            render::summary(&analysis.diagnostics)
        );
        return Err(ExitCode::from(1));
    }
    match analysis.plan() {
        Ok(p) => Ok((p, analysis)),
        Err(e) => {
            let at = e
                .span
                .map(|s| {
                    let f = analysis.sources.get(e.file);
                    let (line, col) = f.line_col(s.start);
                    format!("{}:{}:{}: ", f.path.display(), line, col)
                })
                .unwrap_or_default();
            eprintln!("error: {at}{}", e.message);
            Err(ExitCode::from(1))
        }
    }
}

/// MODEL of `ft generate` and `ft classify`: a model folder or `.gguf`
/// as it is, or a recipe (`.ft`) whose trained model is taken with its
/// `adapter`, `tokenizer` and `chat_template`.
pub struct ModelArg {
    pub path: PathBuf,
    pub adapter: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    pub chat_template: Option<String>,
    /// The recipe's `classify` labels, in label-id order.
    pub labels: Option<Vec<String>>,
    /// The recipe's `backend`.
    pub device: Option<ft_runtime::backend::Device>,
}

impl ModelArg {
    /// `--adapter` (when given) replaces the recipe's `adapter`.
    pub fn resolve(arg: &Path, adapter: Option<PathBuf>) -> Result<ModelArg, ExitCode> {
        if arg.extension().is_none_or(|e| e != "ft") {
            return Ok(ModelArg {
                path: arg.to_path_buf(),
                adapter,
                tokenizer: None,
                chat_template: None,
                labels: None,
                device: None,
            });
        }
        let (plan, _) = load(arg)?;
        let device = Some(plan.train.device);
        let m = plan.model;
        Ok(ModelArg {
            path: m.path,
            adapter: adapter.or(m.adapter),
            tokenizer: m.tokenizer,
            chat_template: m.chat_template,
            labels: match m.head {
                ft_plan::Head::Classify { labels } => Some(labels),
                ft_plan::Head::CausalLm => None,
            },
            device,
        })
    }

    /// `--backend` if given, else the recipe's, else the CPU.
    pub fn device(&self, cli: Option<super::BackendArg>) -> ft_runtime::backend::Device {
        cli.map(Into::into)
            .or(self.device)
            .unwrap_or(ft_runtime::backend::Device::Cpu)
    }

    pub fn tokenizer(&self) -> Result<ft_formats::ModelTokenizer, ft_pipeline::PipelineError> {
        ft_pipeline::TextTokenizer::model_tokenizer(
            &self.path,
            self.tokenizer.as_deref(),
            self.chat_template.as_deref(),
        )
    }
}

/// Where run folders go: the command line's `--runs`, else the recipe's
/// `output.dir`, else `runs/` beside the recipe.
pub fn runs_dir(cli: Option<PathBuf>, plan: &Plan) -> PathBuf {
    cli.or_else(|| plan.output.dir.clone()).unwrap_or_else(|| {
        plan.recipe
            .parent()
            .map(|d| d.join("runs"))
            .unwrap_or_else(|| PathBuf::from("runs"))
    })
}

/// What only the built data shows (texts in more than one split, FT0619),
/// for `ft check`. The data is built as `ft data` builds it, from the cache
/// when nothing changed. Nothing is said when the tokenizer or the data
/// cannot be read: `ft data` and `ft run` report those.
pub fn data_diagnostics(analysis: &Analysis) -> Vec<ft_compiler::diagnostics::Diagnostic> {
    let Ok(plan) = analysis.plan() else {
        return Vec::new();
    };
    let Ok(tok) = ft_pipeline::TextTokenizer::load(&plan.model) else {
        return Vec::new();
    };
    let opts = ft_pipeline::BuildOptions {
        cache_dir: super::data::default_cache_dir(),
    };
    let Ok(data) = ft_pipeline::DataPipeline::build(&plan, tok, &opts) else {
        return Vec::new();
    };
    data.report()
        .datasets
        .iter()
        .filter_map(|d| ft_compiler::leakage::leakage(analysis, &d.name, &d.leaks))
        .collect()
}
