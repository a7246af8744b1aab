//! The ft language server (`ft lsp`), over stdio or any
//! [`lsp_server::Connection`] (the tests use an in-memory one).
//!
//! Everything it reports comes from the compiler: diagnostics are exactly
//! `ft check`'s (through `driver::analyze_text`, world checks included),
//! hover and completion read the language schema, and target and field
//! names come from the real model and data files via the world checks.
//! Modules: `server` (the loop, debouncing), `docs` (open documents and
//! their analyses), `position` (UTF-8/UTF-16 columns), `context` (what the
//! cursor is in, from the text alone) and `slot` (what the schema expects
//! there), `complete`, `hover`, `navigate`, `actions`, `diagnostics`,
//! `figures` (trainable parameters and memory of a plan, pure) and `plan`
//! (those figures for a recipe).

pub mod actions;
pub mod complete;
pub mod context;
pub mod diagnostics;
pub mod docs;
pub use ft_compiler::plan::figures;
pub mod hover;
pub mod navigate;
pub mod plan;
pub mod position;
pub mod server;
pub mod slot;
pub mod uri;

pub use server::run;

/// Serves on stdin/stdout until the client exits. `Ok(true)` when the
/// client shut down properly.
pub fn run_stdio() -> Result<bool, String> {
    let (conn, io) = lsp_server::Connection::stdio();
    let clean = run(conn)?;
    io.join().map_err(|e| e.to_string())?;
    Ok(clean)
}
