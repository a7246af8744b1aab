//! `ft`: check, plan and run fine-tuning recipes.
//!
//! Exit codes: 0 success, 1 the recipe has errors (diagnostics printed),
//! 2 usage or I/O problems.

mod commands;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ft",
    version,
    about = "Fine-tune language models from declarative recipes",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check recipes against the language and the real model and data files
    Check(commands::check::Args),
    /// Print the long explanation of a diagnostic code (e.g. FT0102)
    Explain(commands::explain::Args),
    /// Format recipes in the canonical layout (comments kept)
    Fmt(commands::fmt::Args),
    /// Show what a run would do: trainable parameters, memory, data, schedule (or the Plan as JSON)
    Plan(commands::plan::Args),
    /// Train: check, plan and run a recipe (metrics, checkpoints, adapter and report in runs/)
    Run(commands::run::Args),
    /// Search hyperparameters: run a recipe's `sweep` trials, pick on validation, test the winner
    Sweep(commands::sweep::Args),
    /// Evaluate the recipe's model, with or without an adapter, on its splits
    Eval(commands::eval::Args),
    /// Inspect a recipe's data: rows, tokens, truncations, skipped rows; examples with the trained tokens marked
    Data(commands::data::Args),
    /// Check an adapter against its model, or write merged full weights (HF layout)
    Export(commands::export::Args),
    /// Run the language server (LSP over stdio) for editors
    Lsp(commands::lsp::Args),
    /// Re-check a recipe on every save; with --run, retrain when its meaning changes
    Watch(commands::watch::Args),
    /// Generate text with a Llama-family model (HF folder or .gguf)
    Generate(commands::generate::Args),
    /// Sentence embeddings from a BERT-family encoder
    Embed(commands::embed::Args),
    /// Label probabilities from a BERT-family sequence classifier
    Classify(commands::classify::Args),
}

fn main() -> ExitCode {
    ft_runtime::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => commands::check::run(a),
        Command::Explain(a) => commands::explain::run(a),
        Command::Fmt(a) => commands::fmt::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Sweep(a) => commands::sweep::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Data(a) => commands::data::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Lsp(a) => commands::lsp::run(a),
        Command::Watch(a) => commands::watch::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::Classify(a) => commands::classify::run(a),
    }
}
