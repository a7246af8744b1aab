//! Go-to-definition, references and the document outline, from the AST of
//! an analysis of the current text (the recipe and its imports).

use ft_compiler::driver::Analysis;
use ft_compiler::syntax::ast::{Block, Entry, Expr, ExprKind, Item, Span};
use lsp_types::{DocumentSymbol, Location, Range, SymbolKind, Uri};

use crate::context;
use crate::position::{Encoding, Index};

/// Locations in an analysis's files, with the client's URI for file 0.
pub struct Files<'a> {
    pub analysis: &'a Analysis,
    pub root: &'a Uri,
    pub indexes: Vec<Index>,
}

impl<'a> Files<'a> {
    pub fn new(analysis: &'a Analysis, root: &'a Uri, enc: Encoding) -> Self {
        let indexes = analysis
            .sources
            .files
            .iter()
            .map(|f| Index::of(f, enc))
            .collect();
        Files {
            analysis,
            root,
            indexes,
        }
    }

    pub fn location(&self, file: usize, span: Span) -> Option<Location> {
        let uri = if file == 0 {
            self.root.clone()
        } else {
            crate::uri::from_path(&self.analysis.sources.get(file).path)?
        };
        Some(Location {
            uri,
            range: self.indexes.get(file)?.range(span),
        })
    }
}

/// Calls `f` on an expression and every expression inside it.
pub fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::List(items) => items.iter().for_each(|i| walk(i, f)),
        ExprKind::Pair { value, .. } => walk(value, f),
        ExprKind::Record(fields) => fields.iter().for_each(|x| walk(&x.value, f)),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(&a.value, f)),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            walk(cond, f);
            walk(then, f);
            walk(otherwise, f);
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            walk(lhs, f);
            walk(rhs, f);
        }
        ExprKind::Unary { expr, .. } | ExprKind::Paren(expr) => walk(expr, f),
        ExprKind::Where { data, cond } => {
            walk(data, f);
            walk(cond, f);
        }
        ExprKind::From { count, source } => {
            walk(count, f);
            walk(source, f);
        }
        ExprKind::Ordered { key, .. } => walk(key, f),
        ExprKind::Number { .. } | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Path(_) => {}
    }
}

fn walk_block(
    b: &Block,
    f: &mut dyn FnMut(&Expr),
    keys: &mut dyn FnMut(&Block, &ft_compiler::syntax::ast::Ident),
) {
    if let Some(s) = &b.source {
        walk(s, f);
    }
    for e in b.body.iter().flat_map(|b| &b.entries) {
        match e {
            Entry::Assign(a) => {
                keys(b, &a.key);
                walk(&a.value, f);
            }
            Entry::Axis(a) => walk(&a.values, f),
            Entry::Block(sub) => walk_block(sub, f, keys),
        }
    }
}

/// The declaration of a name: a named block or a `let`, in any file.
pub fn declaration(a: &Analysis, name: &str) -> Option<(usize, Span)> {
    for (fid, file) in a.files.iter().enumerate() {
        for item in &file.items {
            match item {
                Item::Block(b) if b.name.as_ref().is_some_and(|n| n.name == name) => {
                    if matches!(b.keyword.name.as_str(), "dataset" | "mixture" | "model") {
                        return b.name.as_ref().map(|n| (fid, n.span));
                    }
                }
                Item::Let(l) if l.name.name == name => return Some((fid, l.name.span)),
                _ => {}
            }
        }
    }
    None
}

/// Every use of a name: references in values, and mixture weights.
pub fn uses(a: &Analysis, name: &str) -> Vec<(usize, Span)> {
    let mut out = Vec::new();
    for (fid, file) in a.files.iter().enumerate() {
        for item in &file.items {
            let mut on_expr = |e: &Expr| {
                if let ExprKind::Path(p) = &e.kind {
                    if p.len() == 1 && p[0].name == name {
                        out.push((fid, p[0].span));
                    }
                }
            };
            let mut weights = Vec::new();
            match item {
                Item::Block(b) => walk_block(b, &mut on_expr, &mut |blk, key| {
                    if blk.keyword.name == "mixture" && key.name == name {
                        weights.push((fid, key.span));
                    }
                }),
                Item::Let(l) => walk(&l.value, &mut on_expr),
                _ => {}
            }
            out.extend(weights);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The name under the cursor in the recipe file, if it is declared.
fn name_at(a: &Analysis, offset: usize) -> Option<String> {
    let text = &a.sources.get(0).text;
    let (s, e) = context::word_at(text, offset);
    let word = &text[s..e];
    (!word.is_empty() && declaration(a, word).is_some()).then(|| word.to_string())
}

pub fn definition(files: &Files, offset: usize) -> Option<Location> {
    let a = files.analysis;
    // `import "x.ft"` goes to that file.
    for item in &a.files.first()?.items {
        if let Item::Import(im) = item {
            if im.span.contains(offset) {
                let dir = a.sources.get(0).dir();
                let uri = crate::uri::from_path(&dir.join(&im.path.value))?;
                return Some(Location {
                    uri,
                    range: Range::default(),
                });
            }
        }
    }
    let name = name_at(a, offset)?;
    let (file, span) = declaration(a, &name)?;
    files.location(file, span)
}

pub fn references(files: &Files, offset: usize, include_declaration: bool) -> Vec<Location> {
    let a = files.analysis;
    let Some(name) = name_at(a, offset) else {
        return Vec::new();
    };
    let mut spans = uses(a, &name);
    if include_declaration {
        if let Some(d) = declaration(a, &name) {
            spans.insert(0, d);
        }
    }
    spans
        .into_iter()
        .filter_map(|(f, s)| files.location(f, s))
        .collect()
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must still be written.
fn symbol(
    idx: &Index,
    name: String,
    kind: SymbolKind,
    span: Span,
    sel: Span,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    DocumentSymbol {
        name,
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range: idx.range(span),
        selection_range: idx.range(sel),
        children: (!children.is_empty()).then_some(children),
    }
}

/// An entry from its start to the end of its value: the parser's spans
/// also cover the separator, comments and blank lines up to the next
/// entry (a value's span may end after a newline too).
fn entry_span(text: &str, entry: Span, value: Span) -> Span {
    let end = if value.end > entry.start && value.end <= entry.end {
        value.end
    } else {
        entry.end
    };
    let end = text
        .get(entry.start..end)
        .map_or(end, |s| entry.start + s.trim_end().len());
    Span::new(entry.start, end)
}

fn block_symbol(idx: &Index, b: &Block) -> DocumentSymbol {
    let name = match &b.name {
        Some(n) => format!("{} {}", b.keyword.name, n.name),
        None => b.keyword.name.clone(),
    };
    let kind = match b.keyword.name.as_str() {
        "model" => SymbolKind::CLASS,
        "dataset" | "mixture" => SymbolKind::STRUCT,
        "curriculum" | "stage" => SymbolKind::NAMESPACE,
        _ => SymbolKind::MODULE,
    };
    let children = b
        .body
        .iter()
        .flat_map(|body| &body.entries)
        .map(|e| match e {
            Entry::Assign(a) => symbol(
                idx,
                a.key.name.clone(),
                SymbolKind::PROPERTY,
                entry_span(idx.text(), a.span, a.value.span),
                a.key.span,
                Vec::new(),
            ),
            Entry::Axis(x) => {
                let path: Vec<&str> = x.path.iter().map(|p| p.name.as_str()).collect();
                let sel = x.path.first().map_or(x.span, |p| p.span);
                symbol(
                    idx,
                    path.join("."),
                    SymbolKind::PROPERTY,
                    entry_span(idx.text(), x.span, x.values.span),
                    sel,
                    Vec::new(),
                )
            }
            Entry::Block(sub) => block_symbol(idx, sub),
        })
        .collect();
    let sel = b.name.as_ref().map_or(b.keyword.span, |n| n.span);
    symbol(idx, name, kind, b.span, sel, children)
}

/// The outline of the recipe file: its items, block bodies' keys and
/// stages nested.
pub fn symbols(a: &Analysis, enc: Encoding) -> Vec<DocumentSymbol> {
    let idx = Index::of(a.sources.get(0), enc);
    let Some(file) = a.files.first() else {
        return Vec::new();
    };
    file.items
        .iter()
        .filter_map(|item| match item {
            Item::Block(b) => Some(block_symbol(&idx, b)),
            Item::Let(l) => Some(symbol(
                &idx,
                format!("let {}", l.name.name),
                SymbolKind::CONSTANT,
                l.span,
                l.name.span,
                Vec::new(),
            )),
            Item::Import(im) => Some(symbol(
                &idx,
                format!("import \"{}\"", im.path.value),
                SymbolKind::FILE,
                im.span,
                im.path.span,
                Vec::new(),
            )),
            Item::Broken(b) => {
                let kw = b.keyword.as_ref()?;
                let name = match &b.name {
                    Some(n) => format!("{} {} (does not parse)", kw.name, n.name),
                    None => format!("{} (does not parse)", kw.name),
                };
                Some(symbol(
                    &idx,
                    name,
                    SymbolKind::MODULE,
                    b.span,
                    kw.span,
                    Vec::new(),
                ))
            }
        })
        .collect()
}
