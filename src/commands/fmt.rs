//! `ft fmt [--check] FILE…`: canonical layout, comments kept. Files are
//! rewritten atomically (temporary file, then rename) and only when changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ft_compiler::diagnostics::render;
use ft_compiler::source::{SourceFile, SourceMap};

#[derive(clap::Args)]
pub struct Args {
    /// Recipe files to format
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Only report files that are not formatted (exit 1 if any)
    #[arg(long)]
    check: bool,
    /// Print the formatted text instead of writing the file
    #[arg(long, conflicts_with = "check")]
    stdout: bool,
}

pub fn run(args: Args) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for path in &args.files {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", path.display());
                code = ExitCode::from(2);
                continue;
            }
        };
        let text = match ft_compiler::syntax::decode(&bytes) {
            Ok(t) => t,
            Err(d) => {
                report(path, "", &[d]);
                code = ExitCode::from(1);
                continue;
            }
        };
        match ft_compiler::fmt::format(text) {
            Err(e) => {
                report(path, text, &e.diagnostics);
                code = ExitCode::from(1);
            }
            Ok(formatted) if args.stdout => print!("{formatted}"),
            Ok(formatted) if formatted == text => {}
            Ok(_) if args.check => {
                eprintln!("{} is not formatted", path.display());
                code = ExitCode::from(1);
            }
            Ok(formatted) => {
                if let Err(e) = write_atomically(path, formatted.as_bytes()) {
                    eprintln!("error: cannot write `{}`: {e}", path.display());
                    code = ExitCode::from(2);
                } else {
                    eprintln!("formatted {}", path.display());
                }
            }
        }
    }
    code
}

fn report(path: &Path, text: &str, diags: &[ft_compiler::diagnostics::Diagnostic]) {
    let mut sources = SourceMap::default();
    sources.add(SourceFile::new(path, path.display().to_string(), text));
    eprint!(
        "{}",
        render::terminal(diags, &sources, super::stderr_style())
    );
    eprintln!(
        "✗ {}: not formatted ({})",
        path.display(),
        render::summary(diags)
    );
}

/// Writes next to the target and renames over it, so a crash never leaves a
/// half-written recipe.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.ft-tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
