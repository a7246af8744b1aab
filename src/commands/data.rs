//! `ft data RECIPE`: what the training data is, before anything trains —
//! per source, dataset, split and stage: rows, tokens, truncations, rows
//! skipped per reason, filtered rows, leakage; then the first examples with
//! the trained tokens highlighted, so the loss mask can be seen.
//!
//! Register in `commands/mod.rs` (`pub mod data;`, `Data(data::Args)` →
//! `data::run(args)`) and add `ft-pipeline.workspace = true` to the root
//! package's dependencies.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use ft_pipeline::{render_example, BuildOptions, DataPipeline, TextTokenizer};

use super::OutputFormat;

#[derive(clap::Args)]
pub struct Args {
    /// The recipe
    recipe: PathBuf,
    /// How many training examples to show per dataset
    #[arg(long, default_value_t = 3)]
    examples: usize,
    /// `human` prints the report and examples; `json` prints them as JSON
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// Where tokenized data is cached (default: $FT_CACHE_DIR, else
    /// $XDG_CACHE_HOME/ft/data or ~/.cache/ft/data)
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Instead of the report, print every example of this split (of every
    /// dataset in use) as JSON lines: source file and line, the exact token
    /// ids the model sees, the trained-token mask and the class label. For
    /// auditing a split, or feeding the same rows to another tool.
    #[arg(long, value_name = "SPLIT")]
    rows: Option<String>,
}

/// The default cache folder of tokenized data.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("FT_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ft").join("data"))
}

pub fn run(args: Args) -> ExitCode {
    let (plan, _analysis) = match super::recipe::load(&args.recipe) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let tok = match TextTokenizer::load(&plan.model) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = BuildOptions {
        cache_dir: args.cache_dir.or_else(default_cache_dir),
    };
    let data = match DataPipeline::build(&plan, tok, &opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(split) = &args.rows {
        return print_rows(&plan, &data, split);
    }
    // The first K training examples of every dataset in use, in file order.
    let mut shown = Vec::new();
    for d in &data.report().datasets {
        let Some(b) = data.dataset(&d.name) else {
            continue;
        };
        let Some(train) = b.split("train") else {
            continue;
        };
        for ex in train.examples.iter().take(args.examples) {
            shown.push((d.name.clone(), ex));
        }
    }
    match args.format {
        OutputFormat::Json => {
            let examples: Vec<serde_json::Value> = shown
                .iter()
                .map(|(name, ex)| {
                    serde_json::json!({
                        "dataset": name,
                        "file": ex.file,
                        "line": ex.line,
                        "text": render_example(data.tokenizer(), &ex.tokens.seq, false),
                        "input_ids": ex.tokens.seq.ids,
                        "trained": ex.tokens.seq.trained,
                        "class_label": ex.tokens.class_label,
                    })
                })
                .collect();
            let out = serde_json::json!({ "report": data.report(), "examples": examples });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("reports serialize")
            );
        }
        OutputFormat::Human => {
            print!("{}", data.report().to_text());
            let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            if !shown.is_empty() {
                println!();
                println!(
                    "first examples ({}):",
                    if ansi {
                        "trained tokens in green"
                    } else {
                        "trained tokens in [[…]]"
                    }
                );
            }
            for (name, ex) in &shown {
                println!("── {name} {}:{}", ex.file.display(), ex.line);
                let mut text = render_example(data.tokenizer(), &ex.tokens.seq, ansi);
                if let Some(l) = ex.tokens.class_label {
                    let label = match &plan.model.head {
                        ft_plan::Head::Classify { labels } => {
                            labels.get(l).cloned().unwrap_or_default()
                        }
                        ft_plan::Head::CausalLm => l.to_string(),
                    };
                    text.push_str(&format!("  → label {label}"));
                }
                println!("{text}");
            }
        }
    }
    ExitCode::SUCCESS
}

/// `--rows SPLIT`: one JSON object per example, in file order per dataset.
fn print_rows(plan: &ft_plan::Plan, data: &DataPipeline, split: &str) -> ExitCode {
    use std::io::Write;
    let labels: &[String] = match &plan.model.head {
        ft_plan::Head::Classify { labels } => labels,
        ft_plan::Head::CausalLm => &[],
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut found = false;
    for d in &data.report().datasets {
        let Some(examples) = data.dataset(&d.name).and_then(|b| b.split(split)) else {
            continue;
        };
        found = true;
        for ex in examples.examples.iter() {
            let seq = &ex.tokens.seq;
            let mut row = serde_json::json!({
                "dataset": d.name,
                "file": ex.file,
                "line": ex.line,
                "input_ids": seq.ids,
            });
            match ex.tokens.class_label {
                Some(l) => {
                    row["class_label"] = l.into();
                    row["label"] = labels.get(l).cloned().unwrap_or_default().into();
                }
                None => row["trained"] = seq.trained.clone().into(),
            }
            // A closed pipe (`| head`) ends the listing, not in a panic.
            if writeln!(out, "{row}").is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    if !found {
        eprintln!("error: no dataset in use has a split named `{split}`");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
