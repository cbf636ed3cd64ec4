//! Checks every input must pass before any parser sees it (not empty, not
//! binary, valid UTF-8), and format detection for `--format auto`.

use crate::error::InputError;
use std::fmt;

/// Input formats cairn reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON Lines interchange records (docs/jsonl.md).
    Jsonl,
    /// The Express Tribune page text layout (docs/tribune.md).
    Tribune,
}

impl Format {
    /// The name stored in captures.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Tribune => "tribune",
        }
    }

    /// The format stored in a capture under `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        [Format::Jsonl, Format::Tribune].into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many leading bytes are searched for a NUL when deciding "binary".
const BINARY_SNIFF: usize = 8192;

/// Returns the input as text, or a clear error: empty, binary (a NUL byte),
/// or invalid UTF-8 (with the byte offset of the first bad byte). A UTF-8
/// byte order mark is skipped.
pub fn as_text<'a>(path: &str, raw: &'a [u8]) -> Result<&'a str, InputError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::whole(path, "empty input: nothing to ingest"));
    }
    let sniff = &raw[..raw.len().min(BINARY_SNIFF)];
    // `contains` is vectorized; the position is only looked for when found.
    if sniff.contains(&0) {
        let at = sniff.iter().position(|&b| b == 0).unwrap_or(0);
        return Err(InputError::at_byte(path, at, "binary input (NUL byte); expected a text scrape"));
    }
    let (bom, body) = match raw.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (3, rest),
        None => (0, raw),
    };
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text),
        // A download cut inside a character: the text up to the cut (the
        // parser then finds the page cut off). The raw bytes are kept whole.
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
            Ok(std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default())
        }
        Err(e) => Err(InputError::at_byte(path, bom + e.valid_up_to(), "invalid UTF-8")),
    }
}

/// Guesses the format of a text: JSON Lines when the first non-blank
/// character opens a JSON object; the tribune layout when it shows that
/// layout's own markers ([`crate::ingest::tribune::looks_like`]); else none.
pub fn detect(text: &str) -> Option<Format> {
    if text.trim_start().starts_with('{') {
        Some(Format::Jsonl)
    } else if crate::ingest::tribune::looks_like(text) {
        Some(Format::Tribune)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_bytes() {
        assert!(as_text("f", b"").unwrap_err().message.contains("empty"));
        assert!(as_text("f", b" \n").unwrap_err().message.contains("empty"));
        let e = as_text("f", b"ab\0cd").unwrap_err();
        assert_eq!(e.to_string(), "f: byte 2: binary input (NUL byte); expected a text scrape");
        let e = as_text("f", b"abc\xff").unwrap_err();
        assert_eq!(e.to_string(), "f: byte 3: invalid UTF-8");
        assert_eq!(as_text("f", b"\xef\xbb\xbf{}").unwrap(), "{}");
        // Cut inside a character at the very end: the text before it.
        assert_eq!(as_text("f", "ab…".as_bytes()[..4].as_ref()).unwrap(), "ab");
    }

    #[test]
    fn detects_jsonl() {
        assert_eq!(detect("  {\"type\":\"article\"}"), Some(Format::Jsonl));
        assert_eq!(detect("  • ahmad\n    Mar 28, 2012 - 1:02PM"), Some(Format::Tribune));
        assert_eq!(detect("  • Mar 28, 2012 - 1:08PM\n\n    no author"), Some(Format::Tribune));
        assert_eq!(detect("Title\n\nReader Comments (0)\n"), Some(Format::Tribune));
        assert_eq!(detect("just some notes\nnothing else"), None);
        // Markers of other layouts, or none at all, are not the tribune's.
        assert_eq!(detect("Title\n\nPublished: March 28, 2012"), None);
        assert_eq!(detect("  • a list item\n  • another\n"), None);
        assert_eq!(detect("  • Bob says:\n    March 29, 2012 at 1:05 pm\n"), None);
    }
}
