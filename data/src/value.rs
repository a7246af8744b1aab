//! Helpers over row values: value kinds, dotted field paths, typed cells.
//!
//! Every source produces rows as `serde_json::Value` objects so that the
//! compiler and the runtime see one shape whatever the file format was.
//! Nested objects are addressed with dotted paths (`meta.title`), the same
//! spelling the recipe language uses for field references.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The kind of a field's value, as seen while probing.
///
/// `Mixed` means two rows disagreed (other than one of them being `null`;
/// see [`ValueKind::merge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    String,
    Number,
    Bool,
    List,
    Object,
    Null,
    Mixed,
}

impl ValueKind {
    /// The kind of one JSON value.
    pub fn of(v: &Value) -> ValueKind {
        match v {
            Value::Null => ValueKind::Null,
            Value::Bool(_) => ValueKind::Bool,
            Value::Number(_) => ValueKind::Number,
            Value::String(_) => ValueKind::String,
            Value::Array(_) => ValueKind::List,
            Value::Object(_) => ValueKind::Object,
        }
    }

    /// Combine the kinds seen for one field in two rows.
    ///
    /// `null` does not make a field `Mixed`: a field that is sometimes null
    /// keeps its other kind (and the prober records it as nullable), because
    /// "optional string" is a far more useful answer to the compiler than
    /// "mixed".
    pub fn merge(self, other: ValueKind) -> ValueKind {
        match (self, other) {
            (a, b) if a == b => a,
            (ValueKind::Null, b) => b,
            (a, ValueKind::Null) => a,
            _ => ValueKind::Mixed,
        }
    }

    /// Lower-case name used in messages ("string", "number", ...).
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Bool => "bool",
            ValueKind::List => "list",
            ValueKind::Object => "object",
            ValueKind::Null => "null",
            ValueKind::Mixed => "mixed",
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Look up a dotted field path in a row value.
///
/// `get_path(row, "meta.title")` is `row["meta"]["title"]`. A segment that
/// is a decimal number indexes into a list (`messages.0.content`). A key
/// that itself contains dots is still reachable: at each level the whole
/// remaining path is tried as a literal key before splitting it, so
/// `{"a.b": 1}` answers `get_path(_, "a.b")`.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    match v {
        Value::Object(map) => {
            if let Some(x) = map.get(path) {
                return Some(x);
            }
            // Try ever longer prefixes ending at a dot, shortest first.
            let mut start = 0;
            while let Some(i) = path[start..].find('.') {
                let cut = start + i;
                if let Some(found) = map
                    .get(&path[..cut])
                    .and_then(|x| get_path(x, &path[cut + 1..]))
                {
                    return Some(found);
                }
                start = cut + 1;
            }
            None
        }
        Value::Array(items) => {
            let (head, tail) = match path.find('.') {
                Some(i) => (&path[..i], Some(&path[i + 1..])),
                None => (path, None),
            };
            let idx: usize = head.parse().ok()?;
            let item = items.get(idx)?;
            match tail {
                Some(t) => get_path(item, t),
                None => Some(item),
            }
        }
        _ => None,
    }
}

/// Visit every field path of an object row, depth first, in the row's key
/// order: an object-valued field is reported itself (kind `Object`) and then
/// each of its own fields as `parent.child`. Lists are leaves: their
/// elements are not fields.
pub fn visit_paths(v: &Value, f: &mut impl FnMut(&str, &Value)) {
    fn go(prefix: &mut String, v: &Value, f: &mut impl FnMut(&str, &Value)) {
        if let Value::Object(map) = v {
            for (k, child) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                f(prefix, child);
                go(prefix, child, f);
                prefix.truncate(len);
            }
        }
    }
    let mut prefix = String::new();
    go(&mut prefix, v, f);
}

/// Type one CSV/TSV cell: a cell that is exactly a JSON number literal
/// (`-3`, `2.5`, `1e-3`; not `007`, `+1`, `.5`, `NaN`) becomes a number, so
/// that `score > 0` works on it later; every other cell stays a string.
///
/// The JSON grammar is the rule because it round-trips: a cell that became
/// a number prints back as the same number, and identifiers with leading
/// zeros (`007`) are not silently changed.
pub fn typed_cell(s: &str) -> Value {
    if is_json_number(s.as_bytes()) {
        if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(s) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_owned())
}

fn is_json_number(b: &[u8]) -> bool {
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// Whether a value counts as empty for an `EmptyField` check: `null`, a
/// string of only whitespace, an empty list or an empty object.
pub fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_path_nested_lists_and_dotted_keys() {
        let v = json!({"meta": {"title": "T", "tags": ["a", "b"]}, "a.b": 1,
                       "msgs": [{"content": "hi"}]});
        assert_eq!(get_path(&v, "meta.title"), Some(&json!("T")));
        assert_eq!(get_path(&v, "meta.tags.1"), Some(&json!("b")));
        assert_eq!(get_path(&v, "msgs.0.content"), Some(&json!("hi")));
        assert_eq!(get_path(&v, "a.b"), Some(&json!(1)));
        assert_eq!(get_path(&v, "meta.nope"), None);
        assert_eq!(get_path(&v, "meta.tags.9"), None);
        assert_eq!(get_path(&v, "meta.title.x"), None);
    }

    #[test]
    fn cells_become_numbers_only_when_json_numbers() {
        assert_eq!(typed_cell("2.26666666667"), json!(2.26666666667));
        assert_eq!(typed_cell("-3"), json!(-3));
        assert_eq!(typed_cell("1e-3"), json!(0.001));
        for s in [
            "007", "+1", ".5", "5.", "NaN", "1e", "", "12a", "--1", "inf",
        ] {
            assert_eq!(typed_cell(s), json!(s), "{s}");
        }
    }

    #[test]
    fn kinds_merge_with_null_as_optional() {
        use ValueKind::*;
        assert_eq!(Null.merge(String), String);
        assert_eq!(String.merge(Null), String);
        assert_eq!(String.merge(Number), Mixed);
        assert_eq!(List.merge(List), List);
    }

    #[test]
    fn visit_paths_flattens_objects() {
        let v = json!({"a": 1, "m": {"t": "x", "n": {"d": true}}, "l": [{"z": 1}]});
        let mut seen = vec![];
        visit_paths(&v, &mut |p, v| seen.push((p.to_owned(), ValueKind::of(v))));
        let names: Vec<_> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["a", "l", "m", "m.n", "m.n.d", "m.t"]);
    }
}
