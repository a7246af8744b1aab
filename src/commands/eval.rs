//! `ft eval RECIPE [--adapter DIR]`: evaluate the recipe's model — with a
//! trained adapter (ft's or one written by Hugging Face PEFT) or as it is —
//! on the recipe's splits and metrics, or the ones given.

use std::path::PathBuf;
use std::process::ExitCode;

use ft_plan::Metric;
use ft_runtime::train::offline::evaluate_plan;

use super::{BackendArg, OutputFormat};

#[derive(clap::Args)]
pub struct Args {
    /// The recipe (its model, data and splits)
    recipe: PathBuf,
    /// An adapter folder (adapter_config.json + adapter_model.safetensors)
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Splits to evaluate (default: the recipe's `evaluate.on`)
    #[arg(long = "split")]
    splits: Vec<String>,
    /// Metrics (default: the recipe's `evaluate.metrics`)
    #[arg(long = "metric")]
    metrics: Vec<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// Run on this device instead of the recipe's `backend`
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

pub fn run(args: Args) -> ExitCode {
    let (mut plan, _) = match super::recipe::load(&args.recipe) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(b) = args.backend {
        plan.train.device = b.into();
    }
    let mut metrics = Vec::new();
    for m in &args.metrics {
        match Metric::from_name(m) {
            Some(m) => metrics.push(m),
            None => {
                eprintln!(
                    "error: unknown metric `{m}` (loss, perplexity, accuracy, f1, exact_match, rouge_l, margin)"
                );
                return ExitCode::from(2);
            }
        }
    }
    match evaluate_plan(&plan, args.adapter.as_deref(), &args.splits, &metrics, None) {
        Ok(results) => {
            match args.format {
                OutputFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&results).expect("json"))
                }
                OutputFormat::Human => {
                    for r in &results {
                        let ms: Vec<String> = r
                            .metrics
                            .iter()
                            .map(|(k, v)| format!("{k} {v:.4}"))
                            .collect();
                        println!("{} ({} examples): {}", r.split, r.examples, ms.join(", "));
                        for (task, m) in &r.per_task {
                            let ms: Vec<String> =
                                m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                            println!("  {task}: {}", ms.join(", "));
                        }
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
