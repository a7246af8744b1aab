//! Stage 2, check: names, types, values and the rules between blocks.

pub mod schema;
