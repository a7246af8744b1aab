//! The ft compiler: recipe text → checked recipe → Plan.
//!
//! Stages, each a module: `syntax` (pest grammar, AST with spans, error
//! recovery), `check` (names, types, values, rules), `world` (reads model and
//! data headers), `plan` (the serde Plan the runtime consumes), and `leakage`, which
//! reports what the data pipeline found once the data is built. Diagnostics
//! are data (`diagnostics`), rendered in one place. This crate knows nothing
//! of Burn.

pub mod check;
pub mod diagnostics;
pub mod driver;
pub mod fmt;
pub mod leakage;
pub mod plan;
pub mod source;
pub mod sweep;
pub mod syntax;
pub mod world;
