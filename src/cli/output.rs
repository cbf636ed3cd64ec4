//! Shared output helpers: the JSON form of log entries and events, one-line
//! summaries for listings, and human-readable byte counts.

use crate::model::time::format_offset;
use crate::model::{CaptureItem, ChainHash, Event, LogEntry, Seq, Timestamp};
use crate::store::KindCounts;
use crate::views::AsOf;
use serde_json::{json, Value};

/// Writes one line to stderr, as `eprintln!` does, but a stderr that
/// cannot be written (closed, a full disk, `/dev/full`) is no panic: the
/// exit status still says how the command ended.
///
/// Control characters in it (but newline and tab) are shown as `\u00XX`,
/// as stdout's text is ([`ShowControls`]): a message that echoes an input,
/// a path or an argument never drives the terminal.
pub fn to_stderr(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let mut shown = ShowControls::new(&mut err);
    let _ = writeln!(shown, "{line}").and_then(|()| shown.finish());
}

/// The JSON object for one log entry: `seq`, `id`, `kind`, `recorded_at`,
/// then the event's fields (docs/cli.md lists them).
pub fn entry_json(entry: &LogEntry) -> Value {
    let mut v = event_json(&entry.event);
    if let Value::Object(map) = &mut v {
        map.insert("seq".into(), json!(entry.seq.0));
        map.insert("id".into(), json!(entry.id.to_hex()));
        map.insert("recorded_at".into(), json!(entry.recorded_at.canonical()));
        map.insert("head".into(), json!(entry.head.to_hex()));
    }
    v
}

/// The JSON object for an event's fields, with its `kind`. An article's
/// `body` is a string like a comment's (paragraphs separated by a blank
/// line), so one JSON Lines stream has one type per field; its paragraphs
/// as stored (what its id hashes) are in `paragraphs`.
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::Article(a) => json!({
            "kind": "article",
            "key": a.key.as_str(),
            "url": a.url,
            "title": a.title,
            "published": a.published.map(|t| t.canonical()),
            "byline": a.byline,
            "body": a.body.join("\n\n"),
            "paragraphs": a.body,
        }),
        Event::Comment(c) => json!({
            "kind": "comment",
            "article": c.article.as_str(),
            "author": c.author,
            "posted_at": c.posted_at.map(|t| t.canonical()),
            "body": c.body,
        }),
        Event::Capture(c) => json!({
            "kind": "capture",
            "blob": c.blob.to_hex(),
            "source": c.source,
            "source_url": c.source_url,
            "tz": c.tz,
            "fetched_at": c.fetched_at.map(|t| t.canonical()),
            "format": c.format,
            "parser_version": c.parser_version,
            "declared_comments": c.declared_comments,
            "found_comments": c.found_comments(),
            "complete": c.is_complete(),
            "gaps": c.gaps.as_ref().map(|g| g.iter().map(|g| g.code()).collect::<Vec<_>>()),
            "articles": c.articles.iter().map(|a| json!({
                "key": a.key.as_str(),
                "article": a.article.as_ref().map(item_json),
                "comments": a.comments.iter().map(item_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
        Event::Merge(m) => json!({
            "kind": "merge",
            "merge_kind": m.kind.name(),
            "keep": m.keep.to_hex(),
            "fold": m.fold.iter().map(|f| f.to_hex()).collect::<Vec<_>>(),
            "reason": m.reason,
        }),
    }
}

fn item_json(i: &CaptureItem) -> Value {
    json!({
        "id": i.id.to_hex(),
        "parent": i.parent.map(|p| p.to_hex()),
        "possibly_truncated": i.possibly_truncated,
    })
}

/// Cuts `s` to at most `max` characters on one line, with `…` when cut.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A one-line description of an event for `cairn log`.
pub fn summary(event: &Event) -> String {
    match event {
        Event::Article(a) => one_line(a.title.as_deref().unwrap_or(a.key.as_str()), 70),
        Event::Comment(c) => format!(
            "{} {}: {}",
            c.author.as_deref().unwrap_or("(no author)"),
            c.posted_at.map(|t| t.canonical()).unwrap_or_else(|| "(undated)".into()),
            one_line(&c.body, 50)
        ),
        Event::Capture(c) => format!("{} ({}, {} items)", c.source, c.format, c.items().count()),
        Event::Merge(m) => format!("{} {} <- {} ({})", m.kind.name(), m.keep.short(), m.fold.len(), m.reason),
    }
}

/// A timestamp for reading: `2012-03-28 13:02 +05:00`.
pub fn human_time(t: &Timestamp) -> String {
    match t {
        Timestamp::Date(d) => d.format("%Y-%m-%d").to_string(),
        Timestamp::Local(dt) => dt.format("%Y-%m-%d %H:%M").to_string(),
        Timestamp::Zoned(dt, off) => format!("{} {}", dt.format("%Y-%m-%d %H:%M"), format_offset(*off)),
    }
}

/// An optional timestamp for reading, `undated` when absent.
pub fn human_opt_time(t: Option<&Timestamp>) -> String {
    t.map_or_else(|| "undated".to_string(), human_time)
}

/// The counts every command that appends reports, in one shape (`ingest`,
/// `reparse`, `import`, `dedupe --apply`): per kind, the events appended
/// (`new`) and those found already archived (`duplicate`), then the head
/// after, `{"seq","hash"}`. A command adds its own fields to the object.
pub fn counts_json(new: &KindCounts, duplicate: &KindCounts, head: (Seq, ChainHash)) -> Value {
    let kind = |n: u64, d: u64| json!({"new": n, "duplicate": d});
    json!({
        "articles": kind(new.articles, duplicate.articles),
        "comments": kind(new.comments, duplicate.comments),
        "captures": kind(new.captures, duplicate.captures),
        "merges": kind(new.merges, duplicate.merges),
        "head": head_json(head.0, &head.1),
    })
}

/// Adds `fields` to the JSON object `v` (the command's own fields after the
/// shared ones).
pub fn with_fields(mut v: Value, fields: Value) -> Value {
    if let (Some(o), Value::Object(f)) = (v.as_object_mut(), fields) {
        o.extend(f);
    }
    v
}

/// `{"seq":N,"pinned":bool,"observed_until":TIME|null,"computed":bool}`:
/// which point of the log a view reflects, whether `replay --until` pinned
/// the stored views there, and whether they were computed for this query
/// (`--at`).
pub fn as_of_json(a: &AsOf) -> Value {
    json!({
        "seq": a.seq.0,
        "pinned": a.pinned,
        "observed_until": a.observed_until.map(|t| t.canonical()),
        "computed": a.computed,
    })
}

/// A note for text output when the views are not the present: pinned in
/// the past by `replay --until`, or computed for this query by `--at`.
pub fn as_of_note(a: &AsOf) -> Option<String> {
    let point = view_point(a, "as of");
    if a.computed {
        Some(format!("(views {point}, computed for this query by --at)"))
    } else if a.pinned {
        Some(format!(
            "(views {point}, pinned by `cairn replay --until`; `cairn replay` returns to the present)"
        ))
    } else {
        None
    }
}

/// Why an event the log holds is not in the views, when they are not at
/// the head: `" (the views are computed at seq N by --at)"` or pinned by
/// `replay --until`; empty when they are at the head.
pub fn point_hint(a: &AsOf) -> String {
    let point = view_point(a, "at");
    if a.computed {
        format!(" (the views are computed {point} by --at)")
    } else if a.pinned {
        format!(" (the views are pinned {point} by `cairn replay --until`; `cairn replay` returns to the present)")
    } else {
        String::new()
    }
}

/// `as observed up to T`, or `AT seq N` (`at`: "as of" or "at").
fn view_point(a: &AsOf, at: &str) -> String {
    match &a.observed_until {
        // Pinned, they hold what the log held when pinned: a capture
        // observed before the time and ingested since is not in them.
        Some(t) if a.pinned => format!("as observed up to {} in the log to seq {}", human_time(t), a.seq),
        Some(t) => format!("as observed up to {}", human_time(t)),
        None => format!("{at} seq {}", a.seq),
    }
}

/// `{"seq","hash"}`: a head, as every JSON output gives one.
pub fn head_json(seq: Seq, hash: &ChainHash) -> Value {
    json!({"seq": seq.0, "hash": hash.to_hex()})
}

/// Bytes as `1.2 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// "1 comment" / "2 comments".
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(one_line("a\n\n b", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(plural(1, "input"), "1 input");
        assert_eq!(plural(2, "input"), "2 inputs");
    }
}

/// `s` with control characters escaped (`\n`, `\t`, `\u{1b}`...), for
/// text that names files or echoes input on a terminal: a file name with a
/// newline or an escape sequence is shown, never obeyed.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(super::printable("plain name.txt"), "plain name.txt");
        assert_eq!(super::printable("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u{1b}[31m");
        assert_eq!(super::printable("caf\u{e9} \u{85}"), "caf\u{e9} \\u{85}");
    }
}

/// `{"NAME":[...],"as_of":...}` written one element at a time, so that a
/// listing of the whole archive is never one JSON value in memory.
pub struct JsonList<'a> {
    out: &'a mut dyn std::io::Write,
    first: bool,
}

impl<'a> JsonList<'a> {
    /// Opens the object and its list `name`.
    pub fn start(out: &'a mut dyn std::io::Write, name: &str) -> crate::error::Result<JsonList<'a>> {
        write!(out, "{{{}:[", Value::from(name)).map_err(crate::cli::stdout_error)?;
        Ok(JsonList { out, first: true })
    }

    /// Writes one element.
    pub fn push(&mut self, v: &Value) -> crate::error::Result<()> {
        if !self.first {
            self.out.write_all(b",").map_err(crate::cli::stdout_error)?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.out, v).map_err(|e| crate::cli::stdout_error(e.into()))
    }

    /// Closes the list, then the object with `as_of`, and the line.
    pub fn finish(self, at: &AsOf) -> crate::error::Result<()> {
        writeln!(self.out, "],\"as_of\":{}}}", as_of_json(at)).map_err(crate::cli::stdout_error)
    }
}

/// A writer that shows control characters instead of sending them: every
/// C0 control but newline and tab, DEL and the C1 controls (U+0080 to
/// U+009F) become `\u00XX`. Text from scraped pages (a comment's body, an
/// author's name, a title) reaches a terminal through it, so an escape
/// sequence in a comment is printed, never obeyed by the reader's
/// terminal. `\u00XX` is also how JSON writes the character, so JSON
/// output (where serde_json leaves DEL and C1 as they are, inside strings)
/// stays valid and holds the same strings. Commands whose output is data
/// (`cat`'s bytes, tables, exports) do not go through it.
pub struct ShowControls<'a> {
    inner: &'a mut dyn std::io::Write,
    /// A 0xC2 byte that ended the last write: whether a C1 control follows
    /// is known with the next byte.
    pending: bool,
}

impl<'a> ShowControls<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut dyn std::io::Write) -> ShowControls<'a> {
        ShowControls { inner, pending: false }
    }
}

/// Whether byte `b` is a control [`ShowControls`] shows (C0 but newline and
/// tab, and DEL).
fn shown_control(b: u8) -> bool {
    (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f
}

impl std::io::Write for ShowControls<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut start = 0;
        let mut i = 0;
        if std::mem::take(&mut self.pending) {
            match buf.first() {
                Some(&b @ 0x80..=0x9f) => {
                    write!(self.inner, "\\u{:04x}", b)?;
                    (start, i) = (1, 1);
                }
                Some(_) => self.inner.write_all(&[0xc2])?,
                None => {
                    self.pending = true;
                    return Ok(());
                }
            }
        }
        while i < buf.len() {
            // Sixteen bytes at a time past those that cannot start a
            // control (a test the compiler vectorizes; `search` prints
            // hundreds of MB).
            if let Some(chunk) = buf.get(i..i + 16) {
                if !chunk.iter().fold(false, |any, &b| any | (b < 0x20) | (b == 0x7f) | (b == 0xc2)) {
                    i += 16;
                    continue;
                }
            }
            let b = buf[i];
            let escape = if shown_control(b) {
                Some((b, 1))
            } else if b == 0xc2 {
                match buf.get(i + 1) {
                    Some(&c @ 0x80..=0x9f) => Some((c, 2)),
                    Some(_) => None,
                    None => {
                        self.inner.write_all(&buf[start..i])?;
                        self.pending = true;
                        return Ok(());
                    }
                }
            } else {
                None
            };
            match escape {
                Some((c, len)) => {
                    self.inner.write_all(&buf[start..i])?;
                    write!(self.inner, "\\u{:04x}", c)?;
                    i += len;
                    start = i;
                }
                None => i += 1,
            }
        }
        self.inner.write_all(&buf[start..])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ShowControls<'_> {
    /// Writes what is held back (a last byte 0xC2, which no C1 control
    /// followed), without flushing.
    pub fn finish(mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.pending) {
            self.inner.write_all(&[0xc2])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod show_controls_tests {
    use std::io::Write;

    fn shown(pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        let mut w = super::ShowControls::new(&mut out);
        for p in pieces {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn controls_are_shown_as_json_escapes_and_the_rest_passes() {
        let text = "Esc \u{1b}[31mRED\u{1b}]0;pwned\u{7}\nbody\twith tab \u{0} nul \r cr \u{7f} del \u{9b} csi \u{85} nel caf\u{e9} \u{a0}";
        let want = "Esc \\u001b[31mRED\\u001b]0;pwned\\u0007\nbody\twith tab \\u0000 nul \\u000d cr \\u007f del \\u009b csi \\u0085 nel caf\u{e9} \u{a0}";
        assert_eq!(shown(&[text.as_bytes()]), want);
        // Split anywhere, even inside a C1 control's two bytes.
        for at in 0..text.len() {
            assert_eq!(shown(&[&text.as_bytes()[..at], &text.as_bytes()[at..]]), want, "split at {at}");
        }
        // JSON stays JSON, with the same strings.
        let v = serde_json::json!({ "body": text });
        let line = shown(&[v.to_string().as_bytes()]);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    }
}
