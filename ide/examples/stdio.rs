//! The server on stdin/stdout, exactly as `ft lsp` runs it, without
//! building the whole CLI: for smoke tests of the stdio transport.
//!
//! `cargo run -p ft-ide --example stdio`

fn main() -> std::process::ExitCode {
    match ft_ide::run_stdio() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
