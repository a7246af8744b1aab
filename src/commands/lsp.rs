//! `ft lsp`: the language server over stdio, for editors (VS Code, Neovim,
//! Helix, Emacs: see `editors/`). Diagnostics, hover, completion,
//! navigation, formatting and quick fixes; see the `ft-ide` crate.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Accepted for clients that pass it; stdio is the only transport
    #[arg(long)]
    stdio: bool,
}

pub fn run(_args: Args) -> ExitCode {
    match ft_ide::run_stdio() {
        Ok(true) => ExitCode::SUCCESS,
        // `exit` without `shutdown`, or the client hung up: the protocol
        // asks for exit code 1.
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: ft lsp: {e}");
            ExitCode::from(2)
        }
    }
}
