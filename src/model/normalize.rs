//! Text normalization for identity, and the canonical forms of URLs and
//! article keys.
//!
//! Identity normalization is deliberately light: it removes what differs
//! between two renderings of the same bytes (line endings, trailing spaces,
//! Unicode composition) and nothing a reader would call a different text.
//! Stronger folding (case, punctuation, quote styles) belongs to `dedupe`.

use crate::model::ids::ArticleKey;
use crate::model::time::Timestamp;
use unicode_normalization::UnicodeNormalization;

/// Normalizes a multi-line text (a comment body, a paragraph):
/// 1. CRLF and lone CR become LF;
/// 2. Unicode NFC;
/// 3. trailing whitespace is removed from every line;
/// 4. blank lines at the start and end are removed.
///
/// Leading indentation inside the text and blank lines between paragraphs are
/// kept as they are.
pub fn normalize_text(s: &str) -> String {
    if is_normal_text(s) {
        return s.to_string();
    }
    normalize_text_fully(s)
}

/// [`normalize_text`] of an owned text: returned as it is (no copy) when
/// it is normal already.
pub fn normalize_text_owned(s: String) -> String {
    if is_normal_text(&s) {
        s
    } else {
        normalize_text_fully(&s)
    }
}

/// [`normalize_text`] without its fast path.
fn normalize_text_fully(s: &str) -> String {
    let unified = if s.contains('\r') { s.replace("\r\n", "\n").replace('\r', "\n") } else { s.to_string() };
    let nfc = to_nfc(unified);
    let lines: Vec<&str> = nfc.split('\n').map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(a), Some(b)) => lines[a..=b].join("\n"),
        _ => String::new(),
    }
}

/// Normalizes a one-line field (author, title, byline, URL): NFC, every run
/// of whitespace (newlines included) folded to one space, trimmed at both
/// ends.
pub fn normalize_line(s: &str) -> String {
    if is_normal_line(s) {
        return s.to_string();
    }
    normalize_line_fully(s)
}

/// [`normalize_opt_line`] of an owned field: no copy when it is normal
/// already.
pub fn normalize_opt_line_owned(s: Option<String>) -> Option<String> {
    s.map(|s| if is_normal_line(&s) { s } else { normalize_line_fully(&s) }).filter(|v| !v.is_empty())
}

/// [`normalize_line`] without its fast path.
fn normalize_line_fully(s: &str) -> String {
    let nfc = to_nfc(s.to_string());
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether [`normalize_text`] leaves `s` as it is (checked in one pass
/// instead of splitting and joining: most bodies already are): no CR, NFC,
/// no line ending in whitespace, no blank first or last line.
fn is_normal_text(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return true;
    };
    if s.is_ascii() {
        // Byte by byte: ASCII's whitespace is `char::is_whitespace`'s.
        let space = |c: u8| matches!(c, b' ' | b'\t' | b'\x0b' | b'\x0c');
        return first != b'\n'
            && !space(last)
            && last != b'\n'
            && !b.contains(&b'\r')
            && s.split('\n').all(|l| !l.as_bytes().last().is_some_and(|&c| space(c)));
    }
    if b.contains(&b'\r') || !is_nfc(s) {
        return false;
    }
    let mut lines = s.split('\n').peekable();
    let mut first = true;
    while let Some(l) = lines.next() {
        let last = lines.peek().is_none();
        if l.trim_end().len() != l.len() || ((first || last) && l.is_empty()) {
            return false;
        }
        first = false;
    }
    true
}

/// Whether [`normalize_line`] leaves `s` as it is: NFC, and its only
/// whitespace single spaces between words.
fn is_normal_line(s: &str) -> bool {
    let mut previous_space = true; // no space first
    for c in s.chars() {
        if c.is_whitespace() {
            if c != ' ' || previous_space {
                return false;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
    }
    (s.is_empty() || !previous_space) && is_nfc(s)
}

/// Whether `s` is in NFC by the quick check (always so for ASCII); a
/// "maybe" counts as no.
fn is_nfc(s: &str) -> bool {
    s.is_ascii() || unicode_normalization::is_nfc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes
}

/// NFC, skipping the work when a quick check says the text already is
/// (always so for ASCII).
fn to_nfc(s: String) -> String {
    if is_nfc(&s) {
        s
    } else {
        s.nfc().collect()
    }
}

/// A one-line field that may be absent: empty after normalization is absent.
pub fn normalize_opt_line(s: Option<&str>) -> Option<String> {
    s.map(normalize_line).filter(|v| !v.is_empty())
}

/// Canonicalizes an absolute URL: surrounding whitespace removed, scheme and
/// host lower-cased, default ports (`:80` for http, `:443` for https) and the
/// `#fragment` dropped, an empty path written as `/`. Path and query are kept
/// byte for byte. Returns `None` for text that is not `scheme://host...`.
pub fn canonical_url(raw: &str) -> Option<String> {
    let s = raw.trim();
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split('#').next().unwrap_or("");
    let split_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split_at);
    if authority.is_empty() || authority.chars().any(char::is_whitespace) {
        return None;
    }
    let mut host = authority.to_lowercase();
    for (sch, port) in [("http", ":80"), ("https", ":443")] {
        if scheme == sch {
            if let Some(h) = host.strip_suffix(port) {
                host = h.to_string();
            }
        }
    }
    let tail = if tail.is_empty() || tail.starts_with('?') { format!("/{tail}") } else { tail.to_string() };
    if tail.chars().any(char::is_whitespace) {
        return None;
    }
    Some(format!("{scheme}://{host}{tail}"))
}

/// The article key of a page with a known URL: the canonical URL.
pub fn article_key_for_url(url: &str) -> Option<ArticleKey> {
    canonical_url(url).map(ArticleKey)
}

/// The article key of a page without URL: `title:` + the published date
/// (`YYYY-MM-DD`, or `undated`) + `:` + the title, normalized as a line and
/// lower-cased.
pub fn article_key_for_title(title: &str, published: Option<&Timestamp>) -> ArticleKey {
    let date = match published {
        Some(Timestamp::Date(d)) => d.format("%Y-%m-%d").to_string(),
        Some(Timestamp::Local(dt)) | Some(Timestamp::Zoned(dt, _)) => {
            dt.date().format("%Y-%m-%d").to_string()
        }
        None => "undated".to_string(),
    };
    ArticleKey(format!("title:{date}:{}", normalize_line(title).to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_normalization() {
        assert_eq!(normalize_text("a  \r\nb\t\r\n\r\n"), "a\nb");
        assert_eq!(normalize_text("\n\n  x\n\n\ny  \n"), "  x\n\n\ny");
        // "e" + combining acute becomes the composed "é".
        assert_eq!(normalize_text("e\u{301}"), "\u{e9}");
        assert_eq!(normalize_text(" \n \n"), "");
        assert_eq!(normalize_text("old\rmac"), "old\nmac");
    }

    use proptest::prelude::prop_oneof;

    proptest::proptest! {
        /// The fast paths (text left as it is when it already is normal)
        /// give what the full normalizations give.
        #[test]
        fn fast_paths_agree(s in prop_oneof![
            "[ a\\t\\r\\n\\x0b\\x0c]{0,12}",
            "[ a\\t\\r\\n\\x0b\\x0c\u{85}\u{a0}\u{301}e\u{e9}\u{3000}]{0,10}",
        ]) {
            proptest::prop_assert_eq!(normalize_text(&s), normalize_text_fully(&s));
            proptest::prop_assert_eq!(normalize_line(&s), normalize_line_fully(&s));
            let text = normalize_text(&s);
            proptest::prop_assert_eq!(normalize_text(&text), text.clone());
            let line = normalize_line(&s);
            proptest::prop_assert_eq!(normalize_line(&line), line.clone());
            proptest::prop_assert_eq!(normalize_text_owned(s.clone()), text);
            proptest::prop_assert_eq!(normalize_opt_line_owned(Some(s.clone())), normalize_opt_line(Some(&s)));
        }
    }

    #[test]
    fn fast_paths_take_normal_text() {
        assert!(is_normal_text("First line.\n\n  Indented, caf\u{e9}."));
        assert!(is_normal_text("x") && is_normal_text(""));
        assert!(!is_normal_text("x \ny") && !is_normal_text("\nx") && !is_normal_text("x\n"));
        assert!(!is_normal_text("x\r\ny") && !is_normal_text("e\u{301}"));
        assert!(is_normal_line("Tony C.") && is_normal_line(""));
        assert!(!is_normal_line(" Tony") && !is_normal_line("Tony  C.") && !is_normal_line("Tony\tC."));
    }

    #[test]
    fn line_normalization() {
        assert_eq!(normalize_line("  Tony   C. \n"), "Tony C.");
        assert_eq!(normalize_opt_line(Some("   ")), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            canonical_url(" HTTPS://Tribune.com.PK:443/story/1/x?a=1#c ").as_deref(),
            Some("https://tribune.com.pk/story/1/x?a=1")
        );
        assert_eq!(canonical_url("http://example.com").as_deref(), Some("http://example.com/"));
        assert_eq!(canonical_url("http://example.com?q").as_deref(), Some("http://example.com/?q"));
        assert_eq!(canonical_url("example.com/x"), None);
        assert_eq!(canonical_url("http:///x"), None);
        assert_eq!(canonical_url("1http://x"), None);
    }

    #[test]
    fn title_keys() {
        let d = Timestamp::parse_lenient("2012-03-28", None);
        assert_eq!(
            article_key_for_title("  Senior US  commanders ", d.as_ref()).0,
            "title:2012-03-28:senior us commanders"
        );
        assert_eq!(article_key_for_title("X", None).0, "title:undated:x");
    }
}
