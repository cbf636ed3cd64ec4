//! `cairn diff`: what changed between two captures of one page.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time};
use crate::cli::thread::{capture_json, capture_text};
use crate::cli::{stdout_error, Cli, Status};
use crate::diff::{self, Change, WordOp};
use crate::error::{Error, Result};
use crate::model::{ArticleKey, CapturedArticle, Comment, Event, EventId};
use crate::store::Archive;
use crate::views::thread_state::{CaptureRef, ThreadState};
use crate::views::threads::{self, ArticleSummary};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

/// Compare two captures of one page: the comments the second adds, removes
/// (a complete capture only; a partial one leaves them unseen), shows in
/// another version (with a word diff: `[-old-]{+new+}`) or shows elsewhere
/// on the page (out of the order both share, or under another parent).
/// Either two capture id prefixes (`log --kind capture` lists them), or an
/// article with `--from TIME` (and `--to TIME`, else its latest capture):
/// the last capture observed at or before each time.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Two capture id prefixes, or one article (with --from).
    #[arg(value_name = "CAPTURE-A CAPTURE-B | ARTICLE", num_args = 1..=2, required = true)]
    pub targets: Vec<String>,

    /// With an article: the capture observed last at or before TIME (RFC
    /// 3339 with offset, or a date: its end).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// With an article: the capture observed last at or before TIME (default: the latest).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// Print `{"diffs":[{"article","from","to","added","removed","unseen","edited","moved"}],"as_of"}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// One comparison to make: the article (its summary and thread state),
/// and the two captures.
struct Pair {
    summary: ArticleSummary,
    state: ThreadState,
    from: CaptureRef,
    to: CaptureRef,
}

/// The thread state of `summary`'s article.
fn thread_of(archive: &Archive, summary: &ArticleSummary) -> Result<ThreadState> {
    threads::load_thread(archive, &summary.key)?
        .ok_or_else(|| Error::NotFound(format!("no thread for article {}", summary.key)))
}

/// The capture event `prefix` names.
fn capture_by_prefix(archive: &Archive, prefix: &str) -> Result<(EventId, Vec<CapturedArticle>)> {
    let (id, seq) = archive.resolve_prefix(prefix)?;
    match archive.entry(seq)?.event {
        Event::Capture(c) => Ok((id, c.articles)),
        other => Err(Error::Usage(format!("{prefix} names a {}, not a capture", other.kind()))),
    }
}

fn pairs(archive: &Archive, args: &Args) -> Result<Vec<Pair>> {
    let summaries = threads::list_articles(archive)?;
    let by_key = threads::by_key(&summaries);
    let hint = crate::cli::output::point_hint(&crate::views::as_of(archive, threads::NAME)?);
    let find = |state: &ThreadState, id: &EventId| -> Result<CaptureRef> {
        state.captures.iter().find(|c| &c.id == id).cloned().ok_or_else(|| {
            Error::NotFound(format!("capture {} is not in the thread of {}{hint}", id.short(), state.key))
        })
    };
    match (args.targets.as_slice(), &args.from) {
        ([a, b], None) => {
            if args.to.is_some() {
                return Err(Error::Usage("--to goes with an article and --from, not two captures".into()));
            }
            let (ida, arts_a) = capture_by_prefix(archive, a)?;
            let (idb, arts_b) = capture_by_prefix(archive, b)?;
            let keys_b: Vec<&ArticleKey> =
                arts_b.iter().filter_map(|s| by_key.get(&s.key).map(|a| &a.key)).collect();
            let mut out: Vec<Pair> = Vec::new();
            for s in &arts_a {
                let Some(summary) = by_key.get(&s.key) else { continue };
                if keys_b.contains(&&summary.key) && !out.iter().any(|p| p.summary.key == summary.key) {
                    let state = thread_of(archive, summary)?;
                    let (from, to) = (find(&state, &ida)?, find(&state, &idb)?);
                    out.push(Pair { summary: (*summary).clone(), state, from, to });
                }
            }
            if out.is_empty() {
                return Err(Error::Usage(format!("captures {a} and {b} show no article in common{hint}")));
            }
            Ok(out)
        }
        ([article], Some(from)) => {
            let summary = threads::resolve_article(archive, article)?;
            let state = thread_of(archive, &summary)?;
            let when = |flag: &str, t: &str| -> Result<CaptureRef> {
                let at = crate::tables::parse_time("--until", t).map_err(|_| {
                    Error::Usage(format!("{flag} {t:?} is not an RFC 3339 time with offset or a date"))
                })?;
                diff::capture_at(&state, at).cloned().ok_or_else(|| {
                    Error::NotFound(format!("no capture of {} was observed at or before {t}", summary.key))
                })
            };
            let from = when("--from", from)?;
            let to = match &args.to {
                Some(t) => when("--to", t)?,
                None => {
                    state.captures.last().cloned().ok_or_else(|| Error::NotFound("no captures".into()))?
                }
            };
            Ok(vec![Pair { summary, state, from, to }])
        }
        ([_], None) => Err(Error::Usage(
            "one target: give two captures, or an article with --from TIME (and --to TIME)".into(),
        )),
        (_, Some(_)) => Err(Error::Usage("--from goes with one article, not two captures".into())),
        _ => Err(Error::Usage("give two captures, or an article with --from".into())),
    }
}

/// Runs `cairn diff`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::threads::NAME])?;
    let at = crate::views::as_of(&archive, threads::NAME)?;
    let mut diffs_json = Vec::new();
    if !args.json {
        if let Some(note) = as_of_note(&at) {
            writeln!(out, "{note}").map_err(stdout_error)?;
        }
    }
    for pair in pairs(&archive, args)? {
        let section = |c: &CaptureRef| -> Result<CapturedArticle> {
            match archive.entry(c.seq)?.event {
                Event::Capture(cap) => {
                    cap.articles.into_iter().find(|s| pair.summary.covers(&s.key)).ok_or_else(|| {
                        Error::Corrupt(format!("capture {} does not show {}", c.id, pair.summary.key))
                    })
                }
                _ => Err(Error::Corrupt(format!("seq {} is not a capture", c.seq))),
            }
        };
        let (a, b) = (section(&pair.from)?, section(&pair.to)?);
        let d = diff::compare(&pair.state, &a, &b, pair.to.complete, |id| {
            Ok(archive.entry_by_id(id)?.map(std::sync::Arc::new))
        })?;
        let bodies = diff::bodies(&archive, &d)?;
        let title = pair.summary.title.clone();
        if args.json {
            let changes = |list: &[Change], words: bool| -> Vec<Value> {
                list.iter().map(|c| change_json(c, &bodies, words)).collect()
            };
            diffs_json.push(json!({
                "article": {"key": pair.summary.key.as_str(), "title": title},
                "from": capture_json(&pair.from),
                "to": capture_json(&pair.to),
                "added": changes(&d.added, false),
                "removed": changes(&d.removed, false),
                "unseen": changes(&d.unseen, false),
                "edited": changes(&d.edited, true),
                "moved": changes(&d.moved, false),
            }));
            continue;
        }
        write_text(out, &pair, title.as_deref(), &d, &bodies).map_err(stdout_error)?;
    }
    if args.json {
        writeln!(out, "{}", json!({"diffs": diffs_json, "as_of": as_of_json(&at)})).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}

fn change_json(c: &Change, bodies: &HashMap<EventId, Comment>, words: bool) -> Value {
    let shown = c.to.or(c.from).and_then(|id| bodies.get(&id));
    let mut v = json!({
        "from": c.from.map(|i| i.to_hex()),
        "to": c.to.map(|i| i.to_hex()),
        "author": shown.and_then(|s| s.author.clone()),
        "posted_at": shown.and_then(|s| s.posted_at.map(|t| t.canonical())),
        "from_position": c.from_position,
        "to_position": c.to_position,
        "from_parent": c.from_parent.map(|i| i.to_hex()),
        "to_parent": c.to_parent.map(|i| i.to_hex()),
        "body": shown.map(|s| s.body.clone()),
    });
    if words {
        let (old, new) = (c.from.and_then(|i| bodies.get(&i)), c.to.and_then(|i| bodies.get(&i)));
        if let (Some(old), Some(new)) = (old, new) {
            v["words"] = diff::word_diff(&old.body, &new.body)
                .into_iter()
                .map(|op| match op {
                    WordOp::Same(t) => json!({"op": "same", "text": t}),
                    WordOp::Deleted(t) => json!({"op": "deleted", "text": t}),
                    WordOp::Inserted(t) => json!({"op": "inserted", "text": t}),
                })
                .collect();
        }
    }
    v
}

fn write_text(
    out: &mut dyn Write,
    pair: &Pair,
    title: Option<&str>,
    d: &diff::CaptureDiff,
    bodies: &HashMap<EventId, Comment>,
) -> std::io::Result<()> {
    writeln!(out, "{} ({})", title.unwrap_or("(untitled)"), pair.summary.key)?;
    writeln!(out, "from {}", capture_text(&pair.from))?;
    writeln!(out, "to   {}", capture_text(&pair.to))?;
    let unseen = if d.unseen.is_empty() {
        String::new()
    } else {
        format!(", {} not shown (partial capture)", d.unseen.len())
    };
    writeln!(
        out,
        "{} added, {} removed, {} edited, {} moved{unseen}",
        d.added.len(),
        d.removed.len(),
        d.edited.len(),
        d.moved.len()
    )?;
    let head = |out: &mut dyn Write, mark: &str, c: &Change, extra: String| -> std::io::Result<()> {
        let id = c.to.or(c.from);
        let s = id.and_then(|i| bodies.get(&i));
        writeln!(
            out,
            "\n{mark} · {} · {} · {}{extra}",
            s.and_then(|s| s.author.as_deref()).unwrap_or("(no author)"),
            human_opt_time(s.and_then(|s| s.posted_at.as_ref())),
            id.map(|i| i.short()).unwrap_or_default()
        )
    };
    let body = |out: &mut dyn Write, text: &str| -> std::io::Result<()> {
        for line in text.lines() {
            if line.is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, "    {line}")?;
            }
        }
        Ok(())
    };
    let text_of =
        |id: Option<EventId>| id.and_then(|i| bodies.get(&i)).map(|c| c.body.clone()).unwrap_or_default();
    for c in &d.added {
        head(out, "+ added", c, String::new())?;
        body(out, &text_of(c.to))?;
    }
    for c in &d.removed {
        head(out, "- removed", c, String::new())?;
        body(out, &text_of(c.from))?;
    }
    for c in &d.unseen {
        head(out, "? not shown", c, String::new())?;
    }
    for c in &d.edited {
        let extra = format!(" (was {})", c.from.map(|i| i.short()).unwrap_or_default());
        head(out, "~ edited", c, extra)?;
        let words: String = diff::word_diff(&text_of(c.from), &text_of(c.to))
            .into_iter()
            .map(|op| match op {
                WordOp::Same(t) => t,
                WordOp::Deleted(t) => format!("[-{t}-]"),
                WordOp::Inserted(t) => format!("{{+{t}+}}"),
            })
            .collect();
        body(out, &words)?;
    }
    for c in &d.moved {
        let place = |p: Option<usize>| p.map_or("-".to_string(), |p| (p + 1).to_string());
        let parent =
            |p: Option<EventId>| p.map_or("top level".to_string(), |p| format!("reply to {}", p.short()));
        let mut extra = format!(" (position {} -> {}", place(c.from_position), place(c.to_position));
        if c.from_parent != c.to_parent {
            extra.push_str(&format!("; {} -> {}", parent(c.from_parent), parent(c.to_parent)));
        }
        extra.push(')');
        head(out, "> moved", c, extra)?;
    }
    Ok(())
}
