//! The dedupe normalization level: stronger than identity normalization
//! (docs/format.md), used only to find candidates for merging.
//!
//! Two texts are *the same text rendered differently* when they are equal
//! after [`fold_text`]: HTML entities decoded, Unicode NFKC, lower case,
//! every character that is not a letter or digit treated as a space (so
//! quotes, ellipses, dashes and all punctuation fall away), whitespace
//! folded (a minus sign before a number kept with it: `-5` is not `5`),
//! and a trailing UI label dropped: `Recommend`, `Reply` or `Report abuse`
//! written as a button is (a capital first letter), at the very end, after
//! a line break or punctuation (`wrong? Recommend`), never after a word (`I
//! would not recommend` keeps its last word) and never when it is all the
//! text (a reply that says `Reply` is not emptied). HTML 4's named
//! entities ([`super::entities`]) and numeric ones are decoded.
//! Anything that changes the sequence of words or numbers is an *edit*,
//! never a duplicate.

use unicode_normalization::UnicodeNormalization;

const UI_LABELS: &[&str] = &["recommend", "reply", "report abuse"];

/// Whether `c` is a minus sign: ASCII's, U+2212, or the en dash news
/// text sets for one (`–5 degrees`).
fn is_minus(c: char) -> bool {
    c == '-' || c == '\u{2212}' || c == '\u{2013}'
}

/// Whether the characters after a minus sign start a number: a digit, or
/// a decimal point and a digit (`-.5`).
fn starts_number(next: Option<char>, after: Option<char>) -> bool {
    match next {
        Some(n) if n.is_numeric() => true,
        Some('.' | ',') => after.is_some_and(char::is_numeric),
        _ => false,
    }
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &tail[1..e];
            let c = match name.strip_prefix('#') {
                None => super::entities::named(name),
                Some(num) => {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Folds a text for duplicate detection (module docs).
pub fn fold_text(s: &str) -> String {
    let decoded = decode_entities(s);
    let text = without_ui_labels(&decoded);
    // ASCII text (most comments) the short way: NFKC leaves it as it is,
    // and its letters lower-case to one ASCII letter each (`dedupe` at 1M
    // spent 70% of its time in the general way).
    if text.is_ascii() {
        ascii_words(text)
    } else {
        words(text)
    }
}

/// The words of `s` (NFKC, lower case, anything but letters and digits a
/// space, but a minus sign that starts a number), one space between each.
fn words(s: &str) -> String {
    let nfkc: Vec<char> = s.nfkc().collect();
    let mut words = String::with_capacity(nfkc.len());
    for (i, &c) in nfkc.iter().enumerate() {
        if is_minus(c)
            && starts_number(nfkc.get(i + 1).copied(), nfkc.get(i + 2).copied())
            && !i.checked_sub(1).is_some_and(|p| nfkc[p].is_alphanumeric())
        {
            words.push_str(" -");
            continue;
        }
        // (Each character lower-cased, then classed: `İ` is `i` and a
        // combining dot, which is no letter.)
        for l in c.to_lowercase() {
            words.push(if l.is_alphanumeric() { l } else { ' ' });
        }
    }
    words.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`words`] of ASCII text, in one pass.
fn ascii_words(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for (i, &b) in bytes.iter().enumerate() {
        let minus = b == b'-'
            && starts_number(
                bytes.get(i + 1).map(|&b| char::from(b)),
                bytes.get(i + 2).map(|&b| char::from(b)),
            )
            && !i.checked_sub(1).is_some_and(|p| bytes[p].is_ascii_alphanumeric());
        if b.is_ascii_alphanumeric() || minus {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            gap = true;
        }
    }
    out
}

/// `text` without its trailing UI labels (module docs): each a button's
/// word with a capital first letter, after a line break or punctuation,
/// never after a letter or digit, and never the whole text.
fn without_ui_labels(text: &str) -> &str {
    let mut text = text.trim_end();
    'labels: loop {
        for label in UI_LABELS {
            let Some(at) = text.len().checked_sub(label.len()) else { continue };
            let Some(tail) = text.get(at..) else { continue };
            if !tail.eq_ignore_ascii_case(label) || !tail.starts_with(|c: char| c.is_ascii_uppercase()) {
                continue;
            }
            let head = text[..at].trim_end();
            // A text that is nothing but a label is the comment's own
            // words (a reply that says `Reply`): never folded to nothing,
            // where every such comment would be alike.
            if head.is_empty() {
                return text;
            }
            let own_line = text[head.len()..at].contains('\n');
            // After a letter or digit it is the comment's own last word
            // (or the end of a longer one), unless on a line of its own or
            // after another label (`Reply Report abuse`).
            if !own_line
                && head.chars().next_back().is_some_and(char::is_alphanumeric)
                && !ends_with_label(head)
            {
                continue;
            }
            text = head;
            continue 'labels;
        }
        return text;
    }
}

/// Whether `text` ends with a label as a button writes it, after a space.
fn ends_with_label(text: &str) -> bool {
    UI_LABELS.iter().any(|label| {
        text.len().checked_sub(label.len()).and_then(|at| Some((at, text.get(at..)?))).is_some_and(
            |(at, tail)| {
                tail.eq_ignore_ascii_case(label)
                    && tail.starts_with(|c: char| c.is_ascii_uppercase())
                    && (at == 0 || text[..at].ends_with(char::is_whitespace))
            },
        )
    })
}

/// Folds an author name: NFKC, whitespace folded, lower case.
pub fn fold_name(s: &str) -> String {
    if s.is_ascii() {
        // NFKC leaves ASCII as it is.
        return s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    }
    let nfkc: String = s.nfkc().collect();
    nfkc.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

const TRACKING: &[&str] = &[
    "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ref", "ref_src", "ocid", "cmpid", "igshid",
    "page", "amp", "output", "_ga", "share", "s",
];

/// Folds an article URL so that variants of one article compare equal:
/// scheme dropped, host lower-cased without `www.`, `m.` or `amp.`, a
/// trailing `/amp` and trailing slashes dropped, tracking and paging query
/// parameters (`utm_*`, `fbclid`, `gclid`, `ref`, `page`, `amp`, …)
/// dropped and the rest sorted, the fragment dropped.
pub fn fold_url(url: &str) -> Option<String> {
    let canonical = crate::model::normalize::canonical_url(url)?;
    let (_, rest) = canonical.split_once("://")?;
    let (host_path, query) = match rest.split_once('?') {
        Some((hp, q)) => (hp, Some(q)),
        None => (rest, None),
    };
    let (host, path) = match host_path.find('/') {
        Some(i) => (&host_path[..i], &host_path[i..]),
        None => (host_path, "/"),
    };
    let mut host = host.to_string();
    for prefix in ["www.", "m.", "amp."] {
        if let Some(h) = host.strip_prefix(prefix) {
            host = h.to_string();
        }
    }
    let mut path = path.trim_end_matches('/').to_string();
    for suffix in ["/amp", ".amp"] {
        if let Some(p) = path.strip_suffix(suffix) {
            path = p.trim_end_matches('/').to_string();
        }
    }
    let mut params: Vec<&str> = query
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let key = p.split('=').next().unwrap_or("").to_ascii_lowercase();
                    !key.starts_with("utm_") && !TRACKING.contains(&key.as_str())
                })
                .collect()
        })
        .unwrap_or_default();
    params.sort_unstable();
    let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
    Some(format!("{host}{path}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_differences_fold_away() {
        let a = "I thought he said “I wont meet any US official”… M i wrong?";
        let b = "I thought he said \"I wont meet any US official\"... M i wrong? Recommend";
        assert_eq!(fold_text(a), fold_text(b));
        assert_eq!(fold_text("it’s &amp; that&#39;s"), fold_text("It's & that's"));
        assert_eq!(fold_text("ﬁne   text – here"), "fine text here");
        assert_eq!(fold_text("Recommend"), "recommend");
    }

    #[test]
    fn edits_do_not_fold_away() {
        assert_ne!(fold_text("Do You?"), fold_text("Do You? Really."));
        assert_ne!(fold_text("24 soldiers"), fold_text("25 soldiers"));
        assert_ne!(fold_text("not good"), fold_text("good"));
        assert_eq!(fold_text("I Recommend this"), "i recommend this");
        // A sign is part of its number; a hyphen between numbers is not.
        assert_ne!(fold_text("It is -5 degrees"), fold_text("It is 5 degrees"));
        assert_eq!(fold_text("It is -5 degrees"), fold_text("it is −5 degrees!"));
        assert_eq!(fold_text("pages 5-6"), "pages 5 6");
        // A label's word at the end of the comment's own sentence is kept.
        assert_ne!(fold_text("I would not recommend"), fold_text("I would not"));
        assert_ne!(fold_text("I would not Recommend"), fold_text("I would not"));
        assert_ne!(fold_text("Please reply"), fold_text("Please"));
        assert_eq!(fold_text("Fine.\nReply\nReport abuse"), "fine");
        assert_eq!(fold_text("Fine\nReply"), "fine");
        // As the tribune pages ran them together, and buttons on one line.
        assert_eq!(fold_text("Good pictures.Recommend"), fold_text("Good pictures."));
        assert_eq!(fold_text("Fine.\nReply Report abuse"), "fine");
        // A text that is only labels keeps the last one left: two such
        // comments are not alike by being emptied.
        assert_eq!(fold_text("Reply"), "reply");
        assert_eq!(fold_text("Reply Report abuse"), "reply");
        assert_ne!(fold_text("Recommend"), fold_text("Reply"));
        // Named entities of HTML 4, as their characters.
        assert_eq!(fold_text("caf&eacute; at &euro;5"), fold_text("café at €5"));
        assert_eq!(fold_text("&minus;5 degrees"), fold_text("\u{2212}5 degrees"));
        assert_ne!(fold_text("&minus;5 degrees"), fold_text("5 degrees"));
        assert_eq!(fold_text("a &mdash;5"), fold_text("a \u{2014}5"));
        assert_ne!(fold_text("longerRecommend"), fold_text("longer"));
        // An en dash before a number is its sign; a sign before a decimal
        // point too.
        assert_ne!(fold_text("It is \u{2013}5 degrees"), fold_text("It is 5 degrees"));
        assert_ne!(fold_text("a change of -.5 percent"), fold_text("a change of .5 percent"));
        assert_eq!(fold_text("pages 5\u{2013}6"), "pages 5 6");
        // Lower-cased, then classed, as before the signs were kept.
        assert_eq!(fold_text("\u{130}stanbul"), "i stanbul");
    }

    /// The folding the general way (no ASCII way), for the proptest.
    fn fold_text_reference(s: &str) -> String {
        words(without_ui_labels(&decode_entities(s)))
    }

    fn fold_name_reference(s: &str) -> String {
        let nfkc: String = s.nfkc().collect();
        nfkc.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
    }

    use proptest::prelude::prop_oneof;

    proptest::proptest! {
        /// The ASCII way (`ascii_words`) gives what the general way
        /// (`words`) gives: on ASCII text they are the two ways compared
        /// (other text takes the general way in both).
        #[test]
        fn fold_text_agrees_with_the_general_folding(s in prop_oneof![
            "[ aZ9.,!?'\\t\\n\\x0b\\x0c&;#-]{0,24}",
            "(Recommend|reply|report abuse|Reply|x|&amp;| |\\.|REPORT ABUSE|reply reply){0,6}",
            "[ aZ9.,\u{a0}\u{e9}\u{130}\u{fb01}\u{2019}\u{2026}\u{3000}]{0,16}",
        ]) {
            proptest::prop_assert_eq!(fold_text(&s), fold_text_reference(&s));
            proptest::prop_assert_eq!(fold_name(&s), fold_name_reference(&s));
        }
    }

    #[test]
    fn url_variants() {
        let base = fold_url("https://tribune.com.pk/story/356789/x/").unwrap();
        for v in [
            "http://www.tribune.com.pk/story/356789/x",
            "https://tribune.com.pk/story/356789/x/?utm_source=twitter&utm_medium=social",
            "https://tribune.com.pk/story/356789/x/?page=2",
            "https://tribune.com.pk/story/356789/x/amp/",
            "https://amp.tribune.com.pk/story/356789/x#comments",
        ] {
            assert_eq!(fold_url(v).unwrap(), base, "{v}");
        }
        assert_ne!(fold_url("https://tribune.com.pk/story/356790/x/").unwrap(), base);
        assert_eq!(fold_url("https://e.com/a?id=3&utm_x=1&b=2").unwrap(), "e.com/a?b=2&id=3");
    }
}
