//! Every diagnostic code of the compiler, gathered from the modules that
//! declare them. `ft explain` looks codes up here.

use super::Code;

/// All codes, in id order.
pub fn all() -> Vec<&'static Code> {
    let mut v: Vec<&'static Code> = Vec::new();
    for group in [
        crate::syntax::CODES,
        crate::check::blocks::CODES,
        crate::check::types::CODES,
        crate::check::special::CODES,
        crate::check::names::CODES,
        crate::check::rules::CODES,
        crate::check::pending::CODES,
        crate::check::output::CODES,
        crate::check::unused::CODES,
        crate::driver::CODES,
        crate::world::CODES,
        crate::sweep::CODES,
        crate::plan::memory::CODES,
        crate::leakage::CODES,
    ] {
        v.extend_from_slice(group);
    }
    v.sort_by_key(|c| c.id);
    v
}

pub fn find(id: &str) -> Option<&'static Code> {
    let id = id.trim().to_ascii_uppercase();
    all().into_iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_well_formed_and_explained() {
        let all = all();
        for w in all.windows(2) {
            assert_ne!(w[0].id, w[1].id, "duplicate code {}", w[0].id);
        }
        for c in &all {
            assert!(c.id.len() == 6 && c.id.starts_with("FT"), "{}", c.id);
            assert!(
                c.explanation.trim().len() > 40,
                "{} needs a long explanation",
                c.id
            );
        }
    }
}
