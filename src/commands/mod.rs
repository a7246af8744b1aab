//! One module per subcommand; each has clap `Args` and a `run`.

pub mod check;
pub mod classify;
pub mod data;
pub mod embed;
pub mod eval;
pub mod explain;
pub mod export;
pub mod fmt;
pub mod generate;
pub mod lsp;
pub mod plan;
pub mod recipe;
pub mod run;
pub mod sweep;
pub mod watch;

use std::io::IsTerminal;

use ft_compiler::diagnostics::render::Style;

/// `--format` for commands that print diagnostics or results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Text for people (colour on a terminal unless NO_COLOR is set)
    Human,
    /// JSON for programs
    Json,
}

pub fn stderr_style() -> Style {
    Style::detect(std::io::stderr().is_terminal())
}

/// `--backend`: the device a command runs its model on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The CPU (burn-ndarray with ft's kernels)
    Cpu,
    /// An NVIDIA GPU (burn-cuda; ft built with `--features cuda`)
    Cuda,
}

impl From<BackendArg> for ft_runtime::backend::Device {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Cpu => ft_runtime::backend::Device::Cpu,
            BackendArg::Cuda => ft_runtime::backend::Device::Cuda,
        }
    }
}
