//! `ft plan RECIPE`: what a run would do, before it starts: trainable and
//! total parameters (PEFT's counts), memory, batch; `--format json` prints
//! the Plan itself, the one interface the runtime consumes.

use std::path::PathBuf;
use std::process::ExitCode;

use ft_compiler::plan::summary;

use super::OutputFormat;

#[derive(clap::Args)]
pub struct Args {
    /// The recipe
    recipe: PathBuf,
    /// `human` prints a summary; `json` prints the Plan
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
}

pub fn run(args: Args) -> ExitCode {
    let (plan, analysis) = match super::recipe::load(&args.recipe) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match args.format {
        OutputFormat::Json => println!("{}", plan.to_json()),
        OutputFormat::Human => {
            println!("plan for {}", args.recipe.display());
            // The memory line at the batch and length that need the most
            // (a curriculum stage's own, when larger).
            let lines = match ft_compiler::plan::memory::worst(&plan, &analysis) {
                Some((s, at, stage)) => summary::lines(
                    &plan,
                    &s,
                    stage.map(|n| (n, at.train.batch, at.train.max_len)),
                ),
                None => summary::describe(&plan),
            };
            for line in lines {
                println!("  {line}");
            }
            // A recipe with a sweep is a family of runs; say so, since
            // `ft run` trains the recipe's own values and ignores the sweep.
            if let Some(sweep) = ft_compiler::sweep::expand(&analysis) {
                println!(
                    "  sweep: {} trials ({}) over {}, picked by {}{}",
                    sweep.trials.len(),
                    sweep.strategy,
                    sweep.axes.join(" × "),
                    sweep.pick.describe(),
                    sweep
                        .budget
                        .as_deref()
                        .map(|b| format!(", budget {b} each"))
                        .unwrap_or_default(),
                );
                println!(
                    "  the figures above are for the recipe's own values; `ft sweep {}` runs the trials",
                    args.recipe.display()
                );
            }
        }
    }
    ExitCode::SUCCESS
}
