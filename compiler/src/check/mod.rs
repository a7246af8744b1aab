//! Stage 2, check: every block against the schema (`blocks`, `types`,
//! `special`), names and references (`names`), and the rules that relate
//! blocks to one another (`rules`). All problems are reported at once.

pub mod blocks;
pub mod names;
pub mod objectives;
pub mod output;
pub mod pending;
pub mod rules;
pub mod schema;
pub mod special;
pub mod sweep;
pub mod template;
pub mod types;
pub mod unused;
pub mod value;

use std::collections::HashMap;

use blocks::{CBlock, DUPLICATE_BLOCK};
use types::Types;

use crate::diagnostics::{Diagnostic, FileId};
use crate::syntax::ast::{self, Broken, Expr, Ident, Item};

/// A recipe after checking: its blocks (from the recipe and its imports) with
/// typed values. Blocks that did not check are absent; broken items are
/// listed so that nothing is reported twice.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    pub blocks: Vec<CBlock>,
    pub broken: Vec<(FileId, Broken)>,
    pub lets: HashMap<String, (FileId, Ident, Expr)>,
}

impl Recipe {
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a CBlock> + 'a {
        self.blocks
            .iter()
            .filter(move |b| b.keyword.name == keyword)
    }
    /// The one block of a singleton kind (the recipe's own wins over an
    /// imported one).
    pub fn one(&self, keyword: &str) -> Option<&CBlock> {
        self.blocks
            .iter()
            .filter(|b| b.keyword.name == keyword)
            .min_by_key(|b| b.file)
    }
    pub fn named(&self, keyword: &str, name: &str) -> Option<&CBlock> {
        self.blocks
            .iter()
            .find(|b| b.keyword.name == keyword && b.name_str() == Some(name))
    }
    /// Whether a broken (unparsed) item may be the block in question, in
    /// which case rules about it stay silent.
    pub fn maybe_broken(&self, keyword: &str) -> bool {
        self.broken
            .iter()
            .any(|(_, b)| b.keyword.as_ref().is_none_or(|k| k.name == keyword))
    }
    pub fn broken_name(&self, name: &str) -> bool {
        self.broken
            .iter()
            .any(|(_, b)| b.name.as_ref().is_some_and(|n| n.name == name))
    }
    /// The model being trained: `train.model`, else the only model.
    pub fn model(&self) -> Option<&CBlock> {
        if let Some(value::Val::ModelRef(id)) = self
            .one("train")
            .and_then(|t| t.get("model"))
            .map(|v| &v.val)
        {
            return self.named("model", &id.name);
        }
        let mut models = self.all("model");
        let first = models.next();
        if models.next().is_some() {
            None
        } else {
            first
        }
    }
}

/// Checks parsed files: `files[0]` is the recipe, the rest its imports (in
/// the order they were loaded). Singleton blocks of the recipe override
/// those of imports.
pub fn check(files: &[(FileId, &ast::File)], diags: &mut Vec<Diagnostic>) -> Recipe {
    let mut recipe = Recipe::default();
    // Lets first: values anywhere may use them.
    for (fid, f) in files {
        for item in &f.items {
            if let Item::Let(l) = item {
                if let Some((pf, prev, _)) = recipe.lets.get(&l.name.name) {
                    diags.push(
                        Diagnostic::error(
                            &names::DUPLICATE_NAME,
                            l.name.span,
                            format!("`{}` is defined twice", l.name.name),
                        )
                        .in_file(*fid)
                        .label("defined again here")
                        .secondary_in(*pf, prev.span, "first defined here"),
                    );
                    continue;
                }
                recipe
                    .lets
                    .insert(l.name.name.clone(), (*fid, l.name.clone(), l.value.clone()));
            }
        }
    }
    let let_exprs: HashMap<String, Expr> = recipe
        .lets
        .iter()
        .map(|(k, (_, _, e))| (k.clone(), e.clone()))
        .collect();

    for (fid, f) in files {
        let mut local = Vec::new();
        let mut t = Types {
            diags: &mut local,
            lets: &let_exprs,
            expanding: Vec::new(),
        };
        for item in &f.items {
            match item {
                Item::Block(b) => {
                    if let Some(cb) = blocks::check_block(&mut t, b, *fid, schema::BLOCKS) {
                        recipe.blocks.push(cb);
                    }
                }
                Item::Let(l) => {
                    // A numeric constant's errors are reported where it is
                    // defined; other constants are checked where used.
                    t.expanding.push(l.name.name.clone());
                    let _ = t.const_num(&l.value);
                    t.expanding.pop();
                }
                Item::Broken(b) => recipe.broken.push((*fid, b.clone())),
                Item::Import(_) => {}
            }
        }
        diags.extend(local.into_iter().map(|d| d.in_file(*fid)));
    }
    singletons(&mut recipe, diags);
    names::check_names(&recipe, diags);
    rules::check_rules(&recipe, diags);
    pending::check_pending(&recipe, diags);
    unused::check_unused(&recipe, diags);
    output::check_output(&recipe, diags);
    recipe
}

/// Two singleton blocks in one file are an error; a recipe's own singleton
/// silently overrides an imported one (that is what imports are for).
fn singletons(recipe: &mut Recipe, diags: &mut Vec<Diagnostic>) {
    let mut keep = vec![true; recipe.blocks.len()];
    for (i, b) in recipe.blocks.iter().enumerate() {
        if !b.def.singleton {
            continue;
        }
        if let Some((j, first)) = recipe.blocks[..i]
            .iter()
            .enumerate()
            .find(|(_, o)| o.keyword.name == b.keyword.name)
        {
            if first.file == b.file {
                diags.push(
                    Diagnostic::error(
                        &DUPLICATE_BLOCK,
                        b.keyword.span,
                        format!("a second `{}` block", b.keyword.name),
                    )
                    .in_file(b.file)
                    .label("second one here")
                    .secondary(first.keyword.span, "first one here")
                    .help("a recipe has one of these; merge them"),
                );
                keep[i] = false;
            } else if b.file < first.file {
                keep[j] = false;
            } else {
                keep[i] = false;
            }
        }
    }
    let mut it = keep.into_iter();
    recipe.blocks.retain(|_| it.next().unwrap_or(true));
}
