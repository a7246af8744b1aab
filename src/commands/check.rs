//! `ft check FILE…`: every diagnostic of every file, at once.

use std::path::PathBuf;
use std::process::ExitCode;

use ft_compiler::diagnostics::render;
use ft_compiler::driver::{self, Options};

use super::OutputFormat;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe files to check
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// Skip the checks that read model and data files
    #[arg(long)]
    no_world: bool,
    /// Treat warnings as errors
    #[arg(long)]
    deny_warnings: bool,
}

pub fn run(args: Args) -> ExitCode {
    let opts = Options {
        world: !args.no_world,
        trials: true,
        ..Options::default()
    };
    let mut failed = false;
    let mut unreadable = false;
    let mut json = Vec::new();
    for path in &args.files {
        if !path.is_file() {
            eprintln!("error: cannot read `{}`: no such file", path.display());
            unreadable = true;
            continue;
        }
        let mut analysis = driver::analyze_path(path, opts);
        if opts.world && !analysis.has_errors() {
            let found = super::recipe::data_diagnostics(&analysis);
            analysis.diagnostics.extend(found);
        }
        let bad = analysis.has_errors() || (args.deny_warnings && !analysis.diagnostics.is_empty());
        failed |= bad;
        match args.format {
            OutputFormat::Json => json.push(serde_json::json!({
                "file": path.display().to_string(),
                "ok": !bad,
                "diagnostics": render::json(&analysis.diagnostics, &analysis.sources),
            })),
            OutputFormat::Human => {
                let style = super::stderr_style();
                eprint!(
                    "{}",
                    render::terminal(&analysis.diagnostics, &analysis.sources, style)
                );
                let status = if bad { "✗" } else { "✓" };
                eprintln!(
                    "{status} {}: {}",
                    path.display(),
                    render::summary(&analysis.diagnostics)
                );
            }
        }
    }
    if args.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
    }
    if unreadable {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
