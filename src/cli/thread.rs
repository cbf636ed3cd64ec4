//! `cairn thread`: one article's comment section, as the page shows it.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time, human_time, plural};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::views::thread_state::CaptureRef;
use crate::views::threads::{self, ParentKind, ThreadView};
use crate::views::{as_of, AsOf};
use serde_json::{json, Value};
use std::io::Write;

/// Show one article's thread: the latest article version and every comment
/// once, as its latest version, in page order, replies indented under what
/// they reply to, removed and edited comments marked.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// An article id prefix, a URL, or a title substring.
    #[arg(value_name = "ARTICLE")]
    pub article: String,

    /// Print the thread as JSON.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// `{"seq","id","recorded_at","fetched_at","complete"}` of a capture.
pub fn capture_json(c: &CaptureRef) -> Value {
    json!({
        "seq": c.seq.0,
        "id": c.id.to_hex(),
        "recorded_at": c.recorded_at.canonical(),
        "fetched_at": c.fetched_at.map(|t| t.canonical()),
        "complete": c.complete,
    })
}

/// How a capture reads in text: `seq N (fetched T)` or `seq N (recorded
/// T)`, with `, partial` when it is.
pub fn capture_text(c: &CaptureRef) -> String {
    format!("seq {} ({}{})", c.seq, capture_when(c), if c.complete { "" } else { ", partial" })
}

/// `fetched T`, or `recorded T` when the fetch time is unknown.
pub fn capture_when(c: &CaptureRef) -> String {
    match &c.fetched_at {
        Some(t) => format!("fetched {}", human_time(t)),
        None => format!("recorded {}", human_time(&c.recorded_at)),
    }
}

/// The `thread --json` document, written to `out` a comment at a time
/// (the same bytes as one JSON value of it, keys in the same order).
pub fn write_thread_json(t: &ThreadView, at: &AsOf, out: &mut dyn Write) -> std::io::Result<()> {
    let article = json!({
        "id": t.summary.latest.map(|i| i.to_hex()),
        "key": t.summary.key.as_str(),
        "url": t.article.as_ref().and_then(|a| a.url.clone()),
        "title": t.article.as_ref().and_then(|a| a.title.clone()),
        "published": t.article.as_ref().and_then(|a| a.published.map(|p| p.canonical())),
        "byline": t.article.as_ref().and_then(|a| a.byline.clone()),
        "body": t.article.as_ref().map(|a| a.body.join("\n\n")),
        "paragraphs": t.article.as_ref().map(|a| a.body.clone()).unwrap_or_default(),
        "versions": t.summary.versions.iter().map(|v| v.to_hex()).collect::<Vec<_>>(),
    });
    let captures: Vec<Value> = t.captures.iter().map(capture_json).collect();
    write!(out, "{{\"article\":{article},\"captures\":{},\"comments\":[", Value::Array(captures))?;
    for (i, c) in t.comments.iter().enumerate() {
        let comment = json!({
            "id": c.id.to_hex(),
            "author": c.author,
            "posted_at": c.posted_at.map(|p| p.canonical()),
            "body": c.body,
            "parent": c.parent.map(|(p, _)| p.to_hex()),
            "parent_kind": c.parent.map(|(_, k)| match k { ParentKind::Structural => "page", ParentKind::Mention => "mention" }),
            "depth": c.depth,
            "status": c.status,
            "removed_since": c.removed_since.as_ref().map(capture_json),
            "first_seen": capture_json(&c.first_seen),
            "last_seen": capture_json(&c.last_seen),
            "aliases": c.versions.iter().flat_map(|v| v.aliases.iter().map(|a| a.to_hex())).collect::<Vec<_>>(),
            "versions": c.versions.iter().map(|v| json!({
                "id": v.id.to_hex(),
                "body": v.body,
                "status": v.status,
                "first_seen": capture_json(&v.first_seen),
                "last_seen": capture_json(&v.last_seen),
                "aliases": v.aliases.iter().map(|a| a.to_hex()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        write!(out, "{}{comment}", if i == 0 { "" } else { "," })?;
    }
    writeln!(out, "],\"as_of\":{}}}", as_of_json(at))
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replies are indented four columns per level down to this depth; deeper
/// ones stay at its indentation and name what they reply to, so a chain of
/// replies thousands long prints in space that grows with its length, not
/// with its square.
pub const MAX_INDENT_DEPTH: usize = 16;

/// The thread as text that reads like the page, written to `out` a comment
/// at a time.
pub fn write_thread_text(t: &ThreadView, at: &AsOf, out: &mut dyn Write) -> std::io::Result<()> {
    if let Some(note) = as_of_note(at) {
        writeln!(out, "{note}")?;
    }
    let title = t.article.as_ref().and_then(|a| a.title.clone()).unwrap_or_else(|| "(untitled)".into());
    writeln!(out, "{title}")?;
    let published = human_opt_time(t.article.as_ref().and_then(|a| a.published.as_ref()));
    let latest = t.captures.last().map(|c| format!(", latest {}", capture_text(c)));
    let partial: Vec<String> = t.captures.iter().filter(|c| !c.complete).map(|c| c.seq.to_string()).collect();
    let partial = if partial.is_empty() {
        String::new()
    } else {
        format!(" ({} partial, removing nothing: seq {})", partial.len(), partial.join(", "))
    };
    writeln!(
        out,
        "published {published} · {} · {} · {}{partial}{}",
        t.summary.key,
        plural(t.comments.len() as u64, "comment"),
        plural(t.captures.len() as u64, "capture"),
        latest.unwrap_or_default()
    )?;
    for c in t.tree_order().into_iter().map(|i| &t.comments[i]) {
        let pad = c.depth.min(MAX_INDENT_DEPTH) * 4;
        let marker = match (c.depth, &c.parent) {
            (0, _) => "•".to_string(),
            (d, Some((parent, _))) if d > MAX_INDENT_DEPTH => {
                format!("↳ (depth {d}, reply to {})", parent.short())
            }
            _ => "↳".to_string(),
        };
        let mut notes = Vec::new();
        if c.status == "removed" {
            notes.push(match &c.removed_since {
                Some(r) => format!("removed since {}", capture_text(r)),
                None => "removed".to_string(),
            });
        }
        let whole = c.versions.iter().filter(|v| v.status != "truncated").count();
        if whole > 1 {
            notes.push(format!("edited, {whole} versions"));
        }
        let aliases: Vec<String> =
            c.versions.iter().flat_map(|v| v.aliases.iter().map(|a| a.short())).collect();
        if !aliases.is_empty() {
            notes.push(format!("aliases {}", aliases.join(", ")));
        }
        if let Some((_, ParentKind::Mention)) = c.parent {
            notes.push("reply by @mention".to_string());
        }
        let notes = if notes.is_empty() { String::new() } else { format!(" · [{}]", notes.join("; ")) };
        writeln!(
            out,
            "\n{}{marker} {} · {} · {}{notes}",
            " ".repeat(pad),
            c.author.as_deref().unwrap_or("(no author)"),
            human_opt_time(c.posted_at.as_ref()),
            c.id.short()
        )?;
        writeln!(out, "{}", indent(&c.body, pad + 2))?;
    }
    Ok(())
}

/// Runs `cairn thread`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::threads::NAME])?;
    let summary = threads::resolve_article(&archive, &args.article)?;
    let state = threads::load_thread(&archive, &summary.key)?
        .ok_or_else(|| Error::Corrupt(format!("article {} is listed but has no thread", summary.key)))?;
    let view = threads::render(&archive, summary, &state)?;
    let at = as_of(&archive, threads::NAME)?;
    if args.json { write_thread_json(&view, &at, out) } else { write_thread_text(&view, &at, out) }
        .map_err(stdout_error)?;
    Ok(Status::Ok)
}
