//! A static HTML site of the archive (`cairn site OUT-DIR`): plain files,
//! no server, no script, no network, readable in any browser.
//!
//! - `index.html`: every article (title, published, comments, removed,
//!   captures, the last capture);
//! - `a/SLUG.html`: one thread in page order, replies nested under their
//!   parents, removed comments marked and kept, edited comments with every
//!   version, partial captures labelled, and two small SVG charts
//!   (comments per hour, captures over time);
//! - `u/SLUG.html`: one author's timeline;
//! - `c/ID.html`: one capture, linking `c/ID.raw.txt`, its bytes exactly
//!   as ingested (named `.txt` so that browsers and common servers show it
//!   as plain text instead of rendering a captured page).
//!
//! Incremental: `.cairn-site` in OUT-DIR records a digest of what each
//! page was made from (the thread state, the author's timeline, the site
//! format's version); a page whose digest is unchanged and whose file is
//! there is not written again. Every file is written to a temporary name
//! and renamed into place, so a reader never sees half a page.

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, Seq, Timestamp};
use crate::store::Archive;
use crate::views::authors;
use crate::views::thread_state::CaptureRef;
use crate::views::threads::{self, CommentView, ParentKind, ThreadView};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// Bump when pages change shape: every page is written again (2: an
/// author page counts only versions seen whole as edits; 3: a reply is
/// nested under a parent that comes later in page order).
/// 4: replies past the indentation depth follow what they reply to;
/// scraped text in links and spans isolated from bidirectional controls.
const SITE_VERSION: u32 = 4;

/// Comments per batch of author pages: their timelines are held together.
const AUTHOR_BATCH: u64 = 200_000;
const MANIFEST: &str = ".cairn-site";

/// What a run wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SiteSummary {
    /// Pages written (new or changed).
    pub written: u64,
    /// Pages left as they were.
    pub unchanged: u64,
    /// Raw capture files written (each once: a capture never changes).
    pub raw: u64,
    /// Pages of an earlier run removed (articles merged away).
    pub removed: u64,
}

/// The file name of an article or author page: 16 hex digits of BLAKE3
/// over a domain and the name (stable across runs and machines).
pub fn slug(domain: &str, name: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes()).update(&[0]).update(name.as_bytes());
    h.finalize().to_hex()[..16].to_string()
}

/// An author page's slug: by the folded name, as the authors view groups
/// names (`Tony C.` and `tony c.` are one author).
pub fn author_slug(name: &str) -> String {
    slug("author", &authors::fold(name))
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Paragraphs of a body as HTML.
fn paragraphs(body: &str) -> String {
    body.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", esc(p).replace('\n', "<br>")))
        .collect()
}

fn when(t: Option<&Timestamp>) -> String {
    match t {
        Some(t) => format!(
            "<time datetime=\"{}\">{}</time>",
            esc(&t.canonical()),
            esc(&crate::cli::output::human_time(t))
        ),
        None => "<span class=\"unknown\">no time</span>".to_string(),
    }
}

fn capture_label(c: &CaptureRef) -> String {
    let partial = if c.complete { "" } else { " <span class=\"partial\">partial</span>" };
    format!(
        "<a href=\"../c/{}.html\">seq {}</a> ({}){partial}",
        c.id.to_hex(),
        c.seq,
        esc(&crate::cli::thread::capture_when(c))
    )
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
a{color:#0645ad}a,span,code,bdi{unicode-bidi:isolate}nav{margin-bottom:1rem}.meta,.head{color:#555;font-size:.9rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}
ol.thread,ol.replies{list-style:none;padding-left:0}ol.replies{margin-left:1.5rem;border-left:2px solid #ddd;padding-left:.75rem}
li.comment{margin:.75rem 0}li.comment>.body{margin:.25rem 0}
li.removed>.body{background:#fff0f0;border-left:3px solid #c33;padding-left:.5rem}
.status{font-weight:600}.removed>.head .status{color:#c33}.edited>.head .status{color:#a60}
.past{background:#ffe9a8;padding:.5rem;font-weight:600}.partial{background:#ffe9a8;padding:0 .3rem;border-radius:3px;font-size:.85rem}
details.versions{font-size:.9rem;color:#444}details.versions li{margin:.3rem 0}
figure{display:inline-block;margin:0 1.5rem 1rem 0}figcaption{font-size:.85rem;color:#555}
svg rect{fill:#4a78c2}svg circle{fill:#4a78c2}svg circle.partial{fill:#e0a800}svg line{stroke:#999}
";

/// Writes the site into `out`; `progress` is told each page, written or
/// left as it was.
pub fn write_site(archive: &Archive, out: &Path, mut progress: impl FnMut(&str)) -> Result<SiteSummary> {
    for dir in ["a", "u", "c"] {
        let dir = out.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // A link there would have pages written, and old ones removed,
        // wherever it leads (into the archive, say).
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| Error::io(&dir, e))?;
        if !meta.is_dir() {
            return Err(Error::Usage(format!(
                "{} is a symbolic link, not a directory of the site's own; remove it, or write the site elsewhere",
                dir.display()
            )));
        }
    }
    let manifest_path = out.join(MANIFEST);
    let old: BTreeMap<String, String> = match std::fs::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    let mut manifest: BTreeMap<String, String> = BTreeMap::new();
    let mut summary = SiteSummary::default();
    // Views of a past point (`--at`, or pinned by `replay --until`): every
    // page says so, and is written again when the point changes.
    let past = crate::cli::output::as_of_note(&crate::views::as_of(archive, threads::NAME)?);
    let mut page = |path: String, digest: String, make: &mut dyn FnMut() -> Result<String>| -> Result<()> {
        let file = out.join(&path);
        let digest = match &past {
            Some(note) => digest_of(&(digest, note))?,
            None => digest,
        };
        if old.get(&path) == Some(&digest) && file.exists() {
            summary.unchanged += 1;
        } else {
            write_file(&file, mark_past(make()?, past.as_deref()).as_bytes())?;
            summary.written += 1;
        }
        progress(&path);
        manifest.insert(path, digest);
        Ok(())
    };
    page("style.css".into(), digest_of(&(SITE_VERSION, STYLE))?, &mut || Ok(STYLE.to_string()))?;

    let articles = threads::list_articles(archive)?;
    // Every article key (merged ones too) -> the key its page is under,
    // and its title.
    let canon: Canon =
        threads::by_key(&articles).into_iter().map(|(k, a)| (k, (&a.key, a.title.as_deref()))).collect();
    let mut index_rows = Vec::new();
    let mut raws: Vec<CaptureRef> = Vec::new();
    let mut raw_written = 0u64;
    let mut raw_entries: Vec<(String, String)> = Vec::new();
    for art in &articles {
        let Some(state) = threads::load_thread(archive, &art.key)? else { continue };
        let digest = digest_of(&(SITE_VERSION, art, &state))?;
        let path = format!("a/{}.html", slug("article", art.key.as_str()));
        let removed = state.slots.iter().filter(|s| !state.is_present(s)).count();
        index_rows.push((art.clone(), removed, path.clone()));
        raws.extend(state.captures.iter().cloned());
        page(path, digest, &mut || {
            let view = threads::render(archive, art.clone(), &state)?;
            Ok(thread_page(&view))
        })?;
    }

    // Captures: a page each, and the raw bytes (a capture never changes).
    raws.sort_by_key(|c| c.seq);
    raws.dedup_by_key(|c| c.seq);
    for c in &raws {
        let raw_path = format!("c/{}.raw.txt", c.id.to_hex());
        let entry = archive.entry(c.seq)?;
        let Event::Capture(cap) = &entry.event else {
            return Err(Error::Corrupt(format!("seq {} is not a capture", c.seq)));
        };
        // A raw file is kept only while it still hashes to the blob id (a
        // crash or an edit may have left it short or changed).
        let kept = std::fs::read(out.join(&raw_path))
            .is_ok_and(|bytes| crate::model::BlobId(*blake3::hash(&bytes).as_bytes()) == cap.blob);
        raw_entries.push((raw_path.clone(), cap.blob.to_hex()));
        if !kept {
            let raw = archive.verified_blob(&cap.blob)?;
            write_file(&out.join(&raw_path), &raw)?;
            raw_written += 1;
        }
        let shown: Vec<(&str, Option<&str>)> = cap
            .articles
            .iter()
            .map(|a| canon.get(&a.key).map_or((a.key.as_str(), None), |(k, t)| (k.as_str(), *t)))
            .collect();
        let digest = digest_of(&(SITE_VERSION, c.seq.0, c.id.to_hex(), &shown))?;
        page(format!("c/{}.html", c.id.to_hex()), digest, &mut || Ok(capture_page(c, cap, &canon)))?;
    }

    // Authors: one page each, their timelines read in batches of at most
    // AUTHOR_BATCH comments (one pass over the authors view's articles per
    // batch, rather than one read of an article per author under it).
    let all = authors::list_authors(archive)?;
    let mut batches: Vec<&[authors::AuthorInfo]> = Vec::new();
    let (mut start, mut comments) = (0, 0u64);
    for (i, a) in all.iter().enumerate() {
        if i > start && comments + a.comments > AUTHOR_BATCH {
            batches.push(&all[start..i]);
            (start, comments) = (i, 0);
        }
        comments += a.comments;
    }
    batches.push(&all[start..]);
    for batch in batches {
        for (info, entries) in authors::timelines(archive, batch)? {
            let digest = digest_of(&(
                SITE_VERSION,
                &info.display,
                entries
                    .iter()
                    .map(|e| (canon.get(&e.article).copied(), e.article.as_str(), &e.versions, e.whole))
                    .collect::<Vec<_>>(),
            ))?;
            let path = format!("u/{}.html", author_slug(&info.display));
            page(path, digest, &mut || author_page(archive, &info.display, &entries, &canon))?;
        }
    }

    // The index is small and names every article: always written.
    write_file(&out.join("index.html"), mark_past(index_page(&index_rows), past.as_deref()).as_bytes())?;
    summary.written += 1;
    manifest.extend(raw_entries);
    let bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(format!("site manifest: {e}")))?;
    write_file(&manifest_path, &bytes)?;
    // Pages of articles merged away, authors and captures no longer shown:
    // removed (only names this module writes: `a/`, `u/` or `c/` and a
    // plain file name, whatever the old manifest says).
    for path in old.keys().filter(|p| !manifest.contains_key(*p)) {
        let mut parts = path.split('/');
        let ok = matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some("a" | "u" | "c"), Some(name), None)
                if !name.is_empty() && !name.starts_with('.') && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        );
        if ok {
            let _ = std::fs::remove_file(out.join(path));
            summary.removed += 1;
        }
    }
    summary.raw = raw_written;
    Ok(summary)
}

/// Article keys (merged ones too) to the key their page is under and its
/// title.
type Canon<'a> = HashMap<&'a ArticleKey, (&'a ArticleKey, Option<&'a str>)>;

/// A digest of what a page is made from (a cache key, not an id).
fn digest_of(value: &impl serde::Serialize) -> Result<String> {
    let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Internal(format!("site digest: {e}")))?;
    Ok(blake3::hash(&bytes).to_hex()[..32].to_string())
}

/// Writes `bytes` to `path` through a new temporary file (never one that
/// exists, nor a link), synced and renamed into place; on an error the
/// temporary file is removed.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let (tmp, mut file) = crate::cli::outfile::create_temporary(path)?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `html` with, when the views are of a past point, a line saying which
/// right after `<body>` (a page carries no sign of it otherwise).
fn mark_past(html: String, past: Option<&str>) -> String {
    let Some(note) = past else { return html };
    match html.find("<body>\n") {
        Some(at) => {
            let end = at + "<body>\n".len();
            let note = note.trim_start_matches('(').trim_end_matches(')');
            format!(
                "{}<p class=\"past\">Not the archive's present: {}</p>\n{}",
                &html[..end],
                esc(note),
                &html[end..]
            )
        }
        None => html,
    }
}

fn head(title: &str, up: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>\u{2068}{}\u{2069} · cairn</title><link rel=\"stylesheet\" href=\"{up}style.css\"></head><body>\n",
        esc(title)
    )
}

fn index_page(rows: &[(threads::ArticleSummary, usize, String)]) -> String {
    let mut s = head("Articles", "");
    let _ = write!(s, "<h1>Articles</h1>\n<p class=\"meta\">{} articles</p>\n", rows.len());
    s.push_str("<table><thead><tr><th>title</th><th>published</th><th>comments</th><th>removed</th><th>captures</th><th>last capture</th></tr></thead><tbody>\n");
    for (a, removed, path) in rows {
        let _ = writeln!(
            s,
            "<tr><td><a href=\"{path}\">{}</a></td><td>{}</td><td>{}</td><td>{removed}</td><td>{}</td><td>{}</td></tr>",
            esc(a.title.as_deref().unwrap_or(a.key.as_str())),
            when(a.published.as_ref()),
            a.comments,
            a.captures,
            a.last_capture.as_ref().map(|c| format!("seq {}", c.seq)).unwrap_or_default()
        );
    }
    s.push_str("</tbody></table>\n</body></html>\n");
    s
}

/// Bars a chart has at most.
const MAX_BARS: i64 = 240;

/// A bar chart of comments per hour (per day when the thread spans more
/// than ten days, wider still past 240 bars), as inline SVG.
fn comments_chart(comments: &[CommentView]) -> String {
    let times: Vec<i64> = comments.iter().filter_map(|c| c.posted_at.map(|t| t.instant().0)).collect();
    let (Some(&lo), Some(&hi)) = (times.iter().min(), times.iter().max()) else {
        return "<p class=\"meta\">no posted times</p>".into();
    };
    // An hour a bar, a day past ten days, and never more than 240 bars (a
    // thread with a misdated comment spans centuries).
    let span = hi.saturating_sub(lo);
    let unit = if span > 10 * 86_400 { 86_400 } else { 3_600 };
    let bucket = unit.max(span / (MAX_BARS - 1) + 1);
    let n = (span / bucket + 1) as usize;
    let mut counts = vec![0u32; n];
    for t in &times {
        counts[((t - lo) / bucket) as usize] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (w, h) = (360.0, 80.0);
    let bw = w / n as f64;
    let label = match bucket {
        3_600 => "hour".to_string(),
        86_400 => "day".to_string(),
        b => format!("{} hours", b / 3_600),
    };
    let mut s = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"comments per {label}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = h * f64::from(*c) / f64::from(max);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{c}</title></rect>",
            i as f64 * bw,
            h - bh,
            (bw - 1.0).max(0.5)
        );
    }
    s.push_str("</svg>");
    s
}

/// Captures over time: a dot per capture on a line (partial ones marked).
fn captures_chart(captures: &[CaptureRef]) -> String {
    let times: Vec<i64> = captures.iter().map(|c| c.observed_at().instant().0).collect();
    let (lo, hi) = (times.iter().copied().min().unwrap_or(0), times.iter().copied().max().unwrap_or(0));
    let (w, h) = (360.0, 30.0);
    let span = (hi - lo).max(1) as f64;
    let mut s = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"captures over time\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><line x1=\"5\" y1=\"15\" x2=\"{}\" y2=\"15\"/>",
        w - 5.0
    );
    for (c, t) in captures.iter().zip(&times) {
        let x = 5.0 + (w - 10.0) * (t - lo) as f64 / span;
        let class = if c.complete { "" } else { " class=\"partial\"" };
        let _ =
            write!(s, "<circle cx=\"{x:.1}\" cy=\"15\" r=\"4\"{class}><title>seq {}</title></circle>", c.seq);
    }
    s.push_str("</svg>");
    s
}

fn thread_page(t: &ThreadView) -> String {
    let title = t
        .article
        .as_ref()
        .and_then(|a| a.title.clone())
        .unwrap_or_else(|| t.summary.key.as_str().to_string());
    let mut s = head(&title, "../");
    s.push_str("<nav><a href=\"../index.html\">All articles</a></nav>\n");
    let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
    let partial = t.captures.iter().filter(|c| !c.complete).count();
    let removed = t.comments.iter().filter(|c| c.status == "removed").count();
    let _ = writeln!(
        s,
        "<p class=\"meta\">published {} · <code>{}</code> · {} · {} removed · {}{}</p>",
        when(t.article.as_ref().and_then(|a| a.published.as_ref())),
        esc(t.summary.key.as_str()),
        crate::cli::output::plural(t.comments.len() as u64, "comment"),
        removed,
        crate::cli::output::plural(t.captures.len() as u64, "capture"),
        if partial > 0 {
            format!(" ({partial} <span class=\"partial\">partial</span>)")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "<section class=\"charts\"><figure>{}<figcaption>comments per hour (posted)</figcaption></figure><figure>{}<figcaption>captures over time</figcaption></figure></section>",
        comments_chart(&t.comments),
        captures_chart(&t.captures)
    );
    s.push_str("<h2>Captures</h2>\n<ol class=\"captures\">\n");
    for c in &t.captures {
        let _ = writeln!(s, "<li>{}</li>", capture_label(c));
    }
    s.push_str("</ol>\n<h2>Comments</h2>\n");
    let (roots, children) = t.replies();
    s.push_str("<ol class=\"thread\">\n");
    // Iterative depth-first walk (a thread can nest deeply). Lists nest
    // down to the text's indentation depth; replies deeper than that
    // follow what they reply to in its list, naming it (browsers stop
    // nesting elements a few hundred deep, and put deeper ones elsewhere).
    enum Step {
        Open(usize, usize),
        Close { nested: bool },
    }
    let mut stack: Vec<Step> = roots.iter().rev().map(|&r| Step::Open(r, 0)).collect();
    while let Some(step) = stack.pop() {
        let (i, depth) = match step {
            Step::Close { nested } => {
                if nested {
                    s.push_str("</ol>");
                }
                s.push_str("</li>\n");
                continue;
            }
            Step::Open(i, depth) => (i, depth),
        };
        let c = &t.comments[i];
        let reply_to = match c.parent {
            Some((parent, _)) if depth > crate::cli::thread::MAX_INDENT_DEPTH => Some((parent, c.depth)),
            _ => None,
        };
        comment_item(&mut s, c, reply_to);
        if children[i].is_empty() {
            stack.push(Step::Close { nested: false });
        } else if depth < crate::cli::thread::MAX_INDENT_DEPTH {
            s.push_str("<ol class=\"replies\">\n");
            stack.push(Step::Close { nested: true });
            stack.extend(children[i].iter().rev().map(|&c| Step::Open(c, depth + 1)));
        } else {
            stack.extend(children[i].iter().rev().map(|&c| Step::Open(c, depth + 1)));
            stack.push(Step::Close { nested: false });
        }
    }
    s.push_str("</ol>\n</body></html>\n");
    s
}

/// One comment's list item, left open for its replies; `reply_to` (the
/// comment it replies to, and its own depth) for a reply shown past the
/// nesting depth, beside what it replies to.
fn comment_item(s: &mut String, c: &CommentView, reply_to: Option<(crate::model::EventId, usize)>) {
    let whole = c.versions.iter().filter(|v| v.status != "truncated").count();
    let mut classes = vec!["comment", c.status];
    if whole > 1 {
        classes.push("edited");
    }
    let status = match (&c.removed_since, c.status) {
        (Some(r), "removed") => format!("removed since seq {}", r.seq),
        (None, "removed") => "removed".to_string(),
        _ if whole > 1 => format!("edited, {whole} versions"),
        _ => String::new(),
    };
    let author = match &c.author {
        Some(a) => format!("<a class=\"author\" href=\"../u/{}.html\">{}</a>", author_slug(a), esc(a)),
        None => "<span class=\"author\">(no author)</span>".to_string(),
    };
    let mut mention = match c.parent {
        Some((_, ParentKind::Mention)) => " · reply by @mention".to_string(),
        _ => String::new(),
    };
    if let Some((parent, depth)) = reply_to {
        let _ = write!(
            mention,
            " · <span class=\"deep\">depth {depth}, reply to <a href=\"#c-{}\">{}</a></span>",
            parent.short(),
            parent.short()
        );
    }
    let _ = write!(
        s,
        "<li class=\"{}\" id=\"c-{}\" data-id=\"{}\" data-status=\"{}\"><div class=\"head\">{author} · {} · <a href=\"#c-{}\">{}</a>{mention}{}</div><div class=\"body\">{}</div>",
        classes.join(" "),
        c.id.short(),
        c.id.to_hex(),
        c.status,
        when(c.posted_at.as_ref()),
        c.id.short(),
        c.id.short(),
        if status.is_empty() { String::new() } else { format!(" · <span class=\"status\">{}</span>", esc(&status)) },
        paragraphs(&c.body)
    );
    // Every other version's id is an anchor too (an author's timeline
    // links the version it knows as latest).
    for v in c.versions.iter().filter(|v| v.id != c.id) {
        let _ = write!(s, "<span id=\"c-{}\"></span>", v.id.short());
    }
    if c.versions.len() > 1 {
        let cut = c.versions.len() - whole;
        let cut = if cut == 0 { String::new() } else { format!(" ({cut} seen only cut off)") };
        let _ = write!(
            s,
            "<details class=\"versions\"><summary>{} versions{cut}</summary><ol>",
            c.versions.len()
        );
        for v in &c.versions {
            let _ = write!(
                s,
                "<li data-status=\"{}\"><span class=\"head\">{} · seen {} to {}</span>{}</li>",
                v.status,
                v.status,
                capture_label(&v.first_seen),
                capture_label(&v.last_seen),
                paragraphs(&v.body)
            );
        }
        s.push_str("</ol></details>");
    }
}

fn capture_page(c: &CaptureRef, cap: &crate::model::Capture, canon: &Canon<'_>) -> String {
    let mut s = head(&format!("Capture seq {}", c.seq), "../");
    s.push_str("<nav><a href=\"../index.html\">All articles</a></nav>\n");
    let _ = writeln!(s, "<h1>Capture seq {}</h1>", c.seq);
    let gaps: Vec<&str> = cap.gaps().iter().map(|g| g.code()).collect();
    let _ = writeln!(
        s,
        "<table><tbody><tr><th>id</th><td><code>{}</code></td></tr><tr><th>observed</th><td>{}</td></tr>\
         <tr><th>source</th><td>{}</td></tr><tr><th>format</th><td>{} (parser v{})</td></tr>\
         <tr><th>complete</th><td>{}</td></tr><tr><th>comments</th><td>{} found{}</td></tr>\
         <tr><th>raw bytes</th><td><a href=\"{}.raw.txt\">blob {}</a> (exactly as ingested)</td></tr></tbody></table>",
        c.id.to_hex(),
        esc(&crate::cli::thread::capture_when(c)),
        esc(&cap.source),
        esc(&cap.format),
        cap.parser_version,
        if gaps.is_empty() { "yes".to_string() } else { format!("<span class=\"partial\">partial</span>: {}", gaps.join(", ")) },
        cap.found_comments(),
        cap.declared_comments.map(|d| format!(", {d} declared")).unwrap_or_default(),
        c.id.to_hex(),
        cap.blob.short(),
    );
    s.push_str("<h2>Articles</h2><ul>");
    for a in &cap.articles {
        match canon.get(&a.key) {
            Some((key, t)) => {
                let _ = write!(
                    s,
                    "<li><a href=\"../a/{}.html\">{}</a> ({} comments)</li>",
                    slug("article", key.as_str()),
                    esc(t.unwrap_or(key.as_str())),
                    a.comments.len()
                );
            }
            None => {
                let _ = write!(s, "<li>{}</li>", esc(a.key.as_str()));
            }
        }
    }
    s.push_str("</ul>\n</body></html>\n");
    s
}

fn author_page(
    archive: &Archive,
    name: &str,
    entries: &[authors::TimelineEntry],
    canon: &Canon<'_>,
) -> Result<String> {
    let latest: Vec<Seq> = entries.iter().filter_map(|e| e.seqs.last().copied()).collect();
    let bodies = archive.entries_at_with(&latest, |e| match &e.event {
        Event::Comment(c) => Ok(c.body.clone()),
        _ => Err(Error::Corrupt(format!("seq {} in a timeline is not a comment", e.seq))),
    })?;
    let mut s = head(name, "../");
    s.push_str("<nav><a href=\"../index.html\">All articles</a></nav>\n");
    let _ = writeln!(
        s,
        "<h1>{}</h1>\n<p class=\"meta\">{}</p>\n<ol class=\"timeline\">",
        esc(name),
        crate::cli::output::plural(entries.len() as u64, "comment")
    );
    for e in entries {
        let Some(id) = e.versions.last() else { continue };
        let body = e.seqs.last().and_then(|s| bodies.get(s)).map(String::as_str).unwrap_or("");
        // The page the comment is on now (its article may have been merged).
        let (key, title) = canon.get(&e.article).copied().unwrap_or((&e.article, None));
        let title = title.unwrap_or(key.as_str());
        let edited = if e.edited() { format!(" · edited, {} versions", e.whole) } else { String::new() };
        let _ = writeln!(
            s,
            "<li><div class=\"head\">{} · <a href=\"../a/{}.html#c-{}\">{}</a>{edited}</div><div class=\"body\">{}</div></li>",
            when(e.posted_at.as_ref()),
            slug("article", key.as_str()),
            id.short(),
            esc(title),
            paragraphs(body)
        );
    }
    s.push_str("</ol>\n</body></html>\n");
    Ok(s)
}
