//! What the cursor is in, read from the current text alone.
//!
//! Completion and hover must work while the user types, when the file does
//! not parse and the last analysis is stale. So instead of the AST they use
//! a forgiving scan of the text before the cursor: it tracks brackets and
//! what opened them (a block, a `key = {` record, a `key = [` list, a call),
//! the `key =` of the current entry, the keys already written in each body,
//! and whether the cursor sits in a comment, a string or a `{placeholder}`.
//! Like the compiler's scanner, a line that starts with an item keyword in
//! column 0 always starts a new item, so an unclosed `{` above does not
//! confuse what follows. `slot::resolve` then maps that onto the schema.

use ft_compiler::syntax::scan::ITEM_KEYWORDS;

/// A token of the current entry (what was written since the last separator).
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Punct(char),
    Str,
    Num,
}

/// What opened a bracket.
#[derive(Debug, Clone, PartialEq)]
pub enum Owner {
    Root,
    /// A block body; `sub` for `stage x { … }` inside a block.
    Block {
        keyword: String,
        name: Option<String>,
        sub: bool,
    },
    Record {
        key: Option<String>,
    },
    List {
        key: Option<String>,
    },
    Call {
        name: String,
        key: Option<String>,
    },
    Paren,
}

#[derive(Debug, Clone)]
pub struct Frame {
    pub owner: Owner,
    /// The key of the entry being written (`key =` seen).
    pub key: Option<String>,
    /// Tokens of the entry being written.
    pub seg: Vec<Tok>,
    /// Keys already written in this body, record or call.
    pub seen: Vec<String>,
}

impl Frame {
    fn new(owner: Owner) -> Self {
        Frame {
            owner,
            key: None,
            seg: Vec::new(),
            seen: Vec::new(),
        }
    }
}

/// Where the cursor is, lexically.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Code,
    Comment,
    /// In a string; `Some(partial)` inside a `{placeholder`.
    Str {
        placeholder: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Context {
    /// Innermost last; `frames[0]` is the root.
    pub frames: Vec<Frame>,
    pub place: Place,
    /// The identifier being typed, up to the cursor.
    pub word: String,
    pub word_start: usize,
}

impl Context {
    pub fn frame(&self) -> &Frame {
        self.frames.last().expect("root frame")
    }
    /// The top-level block the cursor is in: keyword and name.
    pub fn block(&self) -> Option<(&str, Option<&str>)> {
        self.frames.iter().find_map(|f| match &f.owner {
            Owner::Block {
                keyword,
                name,
                sub: false,
            } => Some((keyword.as_str(), name.as_deref())),
            _ => None,
        })
    }
    /// `val.` before the word: the dotted path typed so far.
    pub fn dotted(&self) -> Vec<&str> {
        let seg = &self.frame().seg;
        let mut out = Vec::new();
        let mut i = seg.len();
        while i >= 2 && seg[i - 1] == Tok::Punct('.') {
            match &seg[i - 2] {
                Tok::Ident(s) => out.push(s.as_str()),
                _ => break,
            }
            i -= 2;
        }
        out.reverse();
        out
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier around `offset`: its span in `text`.
pub fn word_at(text: &str, offset: usize) -> (usize, usize) {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    let start = text[..o]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c))
        .last()
        .map_or(o, |(i, _)| i);
    let end = o + text[o..]
        .char_indices()
        .find(|(_, c)| !is_ident(*c))
        .map_or(text.len() - o, |(i, _)| i);
    (start, end)
}

/// Scans `text` up to `offset` (a byte offset, clamped to a boundary).
pub fn at(text: &str, offset: usize) -> Context {
    let (word_start, _) = word_at(text, offset);
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let word = text[word_start..end].to_string();
    let (frames, place) = scan(&text[..word_start]);
    // A placeholder or comment includes the word itself.
    let place = match place {
        Place::Str {
            placeholder: Some(p),
        } => Place::Str {
            placeholder: Some(p + &word),
        },
        p => p,
    };
    Context {
        frames,
        place,
        word,
        word_start,
    }
}

fn starts_item(line: &str) -> bool {
    ITEM_KEYWORDS.iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| !rest.starts_with(is_ident))
    })
}

fn scan(text: &str) -> (Vec<Frame>, Place) {
    let mut frames = vec![Frame::new(Owner::Root)];
    let b = text.as_bytes();
    let mut i = 0;
    let mut line_start = true;
    while i < b.len() {
        if line_start && starts_item(&text[i..]) {
            frames.truncate(1);
            frames[0].seg.clear();
            frames[0].key = None;
        }
        line_start = false;
        let c = b[i];
        match c {
            b'\n' => {
                line_start = true;
                newline(&mut frames);
                i += 1;
            }
            b'#' => match text[i..].find('\n') {
                Some(n) => i += n,
                None => return (frames, Place::Comment),
            },
            b'"' => {
                let long = text[i..].starts_with("\"\"\"");
                let (open, close) = if long { (3, "\"\"\"") } else { (1, "\"") };
                let body = i + open;
                let found = if long {
                    text[body..].find(close)
                } else {
                    short_end(&text[body..])
                };
                match found {
                    Some(n) => {
                        push(&mut frames, Tok::Str);
                        i = body + n + close.len();
                    }
                    None if !long && text[body..].contains('\n') => {
                        // An unterminated short string ends at its line.
                        push(&mut frames, Tok::Str);
                        i = body + text[body..].find('\n').unwrap_or(0);
                    }
                    None => {
                        let content = &text[body..];
                        return (
                            frames,
                            Place::Str {
                                placeholder: placeholder(content),
                            },
                        );
                    }
                }
            }
            b'{' | b'[' | b'(' => {
                open(&mut frames, c);
                i += 1;
            }
            b'}' | b']' | b')' => {
                close(&mut frames, c);
                i += 1;
            }
            b'=' if b.get(i + 1) != Some(&b'=') => {
                let f = frames.last_mut().expect("root");
                // `key =` left without a value, then `other =` on a later
                // line: a value is never `name =`, so a new entry starts.
                if let [.., Tok::Punct('='), Tok::Ident(k)] = &f.seg[..] {
                    if f.key.is_some() {
                        f.seg = vec![Tok::Ident(k.clone())];
                        f.key = None;
                    }
                }
                if let ([Tok::Ident(k)], false) = (&f.seg[..], matches!(f.owner, Owner::Root)) {
                    f.key = Some(k.clone());
                    f.seen.push(k.clone());
                }
                f.seg.push(Tok::Punct('='));
                i += 1;
            }
            b',' => {
                let f = frames.last_mut().expect("root");
                f.seg.clear();
                f.key = None;
                i += 1;
            }
            _ if c.is_ascii_digit() => {
                let mut j = i;
                while j < b.len() {
                    let d = b[j];
                    let exp_sign = (d == b'+' || d == b'-') && matches!(b[j - 1], b'e' | b'E');
                    if d.is_ascii_alphanumeric() || matches!(d, b'_' | b'.' | b'%') || exp_sign {
                        j += 1;
                    } else {
                        break;
                    }
                }
                push(&mut frames, Tok::Num);
                i = j;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                push(&mut frames, Tok::Ident(text[i..j].to_string()));
                i = j;
            }
            _ if c.is_ascii_whitespace() => i += 1,
            _ if c.is_ascii() => {
                push(&mut frames, Tok::Punct(c as char));
                i += 1;
            }
            _ => {
                // Skip a whole non-ASCII character.
                i += text[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    (frames, Place::Code)
}

/// Where a short string's closing quote is, skipping escapes; `None` when
/// the line ends first.
fn short_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\n' => return None,
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// Inside `{…` of a template: the partial field name.
fn placeholder(content: &str) -> Option<String> {
    let open = content.rfind('{')?;
    let after = &content[open + 1..];
    if after.contains('}') || content[..open].ends_with('{') {
        return None;
    }
    after
        .chars()
        .all(|c| is_ident(c) || c == '.')
        .then(|| after.to_string())
}

fn push(frames: &mut [Frame], t: Tok) {
    frames.last_mut().expect("root").seg.push(t);
}

/// In block bodies and records a newline ends an entry, unless the entry is
/// waiting for its value (`key =` at the line's end).
fn newline(frames: &mut [Frame]) {
    let f = frames.last_mut().expect("root");
    let ends = matches!(f.owner, Owner::Block { .. } | Owner::Record { .. });
    if ends && f.seg.last() != Some(&Tok::Punct('=')) {
        f.seg.clear();
        f.key = None;
    }
}

pub(crate) fn ident(t: Option<&Tok>) -> Option<String> {
    match t {
        Some(Tok::Ident(s)) => Some(s.clone()),
        _ => None,
    }
}

fn open(frames: &mut Vec<Frame>, c: u8) {
    let f = frames.last().expect("root");
    let owner = match c {
        b'{' => match &f.owner {
            Owner::Root => Owner::Block {
                keyword: ident(f.seg.first()).unwrap_or_default(),
                name: ident(f.seg.get(1)),
                sub: false,
            },
            Owner::Block { .. } if f.key.is_none() => Owner::Block {
                keyword: ident(f.seg.first()).unwrap_or_default(),
                name: ident(f.seg.get(1)),
                sub: true,
            },
            _ => Owner::Record { key: f.key.clone() },
        },
        b'[' => Owner::List { key: f.key.clone() },
        _ => match ident(f.seg.last()) {
            Some(name) => Owner::Call {
                name,
                key: f.key.clone(),
            },
            None => Owner::Paren,
        },
    };
    frames
        .last_mut()
        .expect("root")
        .seg
        .push(Tok::Punct(c as char));
    frames.push(Frame::new(owner));
}

fn close(frames: &mut Vec<Frame>, c: u8) {
    let want = |o: &Owner| match c {
        b'}' => matches!(o, Owner::Block { .. } | Owner::Record { .. }),
        b']' => matches!(o, Owner::List { .. }),
        _ => matches!(o, Owner::Call { .. } | Owner::Paren),
    };
    if let Some(pos) = frames.iter().rposition(|f| want(&f.owner)) {
        if pos > 0 {
            let was_block = matches!(frames[pos].owner, Owner::Block { .. });
            frames.truncate(pos);
            let parent = frames.last_mut().expect("root");
            parent.seg.push(Tok::Punct(c as char));
            if was_block {
                // A block's body ends its entry (or its item).
                parent.seg.clear();
                parent.key = None;
            }
        }
    }
}
