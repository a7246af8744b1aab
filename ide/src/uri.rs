//! `file:` URIs ↔ paths. lsp-types 0.97 carries URIs as plain parsed
//! strings with no path conversion, so the little that is needed lives
//! here: percent-decoding, percent-encoding, and a Windows drive letter.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types::Uri;

/// The file path of a URI. Non-`file` URIs (`untitled:`) become a relative
/// path of their own text, so relative imports and data paths of an unsaved
/// buffer resolve from the server's working directory.
pub fn to_path(uri: &Uri) -> PathBuf {
    let s = uri.as_str();
    let Some(rest) = s.strip_prefix("file://") else {
        let name = s.rsplit([':', '/']).next().unwrap_or("untitled.ft");
        return PathBuf::from(decode(name));
    };
    // Skip an authority (`file://host/path`); `localhost` or empty is local.
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let decoded = decode(path);
    // `/C:/x` on Windows.
    let bytes = decoded.as_bytes();
    if cfg!(windows) && bytes.len() >= 3 && bytes[0] == b'/' && bytes[2] == b':' {
        return PathBuf::from(&decoded[1..]);
    }
    PathBuf::from(decoded)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `file:` URI of a path (made absolute against the working directory).
pub fn from_path(path: &Path) -> Option<Uri> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let s = abs.to_string_lossy().replace('\\', "/");
    let mut out = String::from("file://");
    if !s.starts_with('/') {
        out.push('/');
    }
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"/-._~:".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    Uri::from_str(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = Path::new("/tmp/a dir/é.ft");
        let u = from_path(p).unwrap();
        assert_eq!(u.as_str(), "file:///tmp/a%20dir/%C3%A9.ft");
        assert_eq!(to_path(&u), p);
        let plain = Uri::from_str("file:///work/x.ft").unwrap();
        assert_eq!(to_path(&plain), Path::new("/work/x.ft"));
        let untitled = Uri::from_str("untitled:Untitled-1").unwrap();
        assert_eq!(to_path(&untitled), Path::new("Untitled-1"));
    }
}
