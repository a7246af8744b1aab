//! `ft explain FT0102`: the long explanation kept beside the check.

use std::process::ExitCode;

use ft_compiler::diagnostics::registry;

#[derive(clap::Args)]
pub struct Args {
    /// A diagnostic code such as FT0102; `--list` shows all
    code: Option<String>,
    /// List every code with its title
    #[arg(long)]
    list: bool,
}

pub fn run(args: Args) -> ExitCode {
    if args.list || args.code.is_none() {
        for c in registry::all() {
            println!("{}  {}", c.id, c.title);
        }
        return ExitCode::SUCCESS;
    }
    let code = args.code.unwrap_or_default();
    match registry::find(&code) {
        Some(c) => {
            println!("{}: {}\n", c.id, c.title);
            for line in c.explanation.lines() {
                println!("{}", line.strip_prefix(' ').unwrap_or(line));
            }
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "error: `{code}` is not a diagnostic code; `ft explain --list` shows them all"
            );
            ExitCode::from(2)
        }
    }
}
