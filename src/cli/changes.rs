//! `cairn changes`: what each capture changed.

use crate::cli::output::{human_opt_time, human_time, one_line};
use crate::cli::thread::capture_json;
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::{Event, EventId};
use crate::views::changes::{self, ChangeRecord};
use crate::views::threads;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;

/// For each article, between consecutive captures: comments added, removed
/// and edited, and article revisions. An article's first capture lists
/// every comment as added.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this article (id prefix, URL or title substring).
    #[arg(value_name = "ARTICLE")]
    pub article: Option<String>,

    /// Print `{"changes":[...],"as_of":{...}}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

fn record_json(r: &ChangeRecord) -> serde_json::Value {
    json!({
        "article": r.article.as_str(),
        "from": r.from.as_ref().map(capture_json),
        "to": capture_json(&r.to),
        "added": r.added.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
        "removed": r.removed.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
        "unseen": r.unseen,
        "edited": r.edited.iter().map(|(f, t)| json!({"from": f.to_hex(), "to": t.to_hex()})).collect::<Vec<_>>(),
        "article_revision": r.article_revision.map(|(f, t)| json!({"from": f.map(|x| x.to_hex()), "to": t.to_hex()})),
    })
}

fn describe(events: &HashMap<EventId, Event>, id: &EventId) -> Result<String> {
    Ok(match events.get(id).ok_or_else(|| Error::NotFound(format!("no event {id}")))? {
        Event::Comment(c) => format!(
            "{} {} · {}: {}",
            id.short(),
            c.author.as_deref().unwrap_or("(no author)"),
            human_opt_time(c.posted_at.as_ref()),
            one_line(&c.body, 60)
        ),
        other => format!("{} {}", id.short(), other.kind()),
    })
}

/// Runs `cairn changes`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = crate::cli::open_views_at(
        cli,
        &args.at,
        &[crate::views::changes::NAME, crate::views::threads::NAME],
    )?;
    let key = match &args.article {
        Some(q) => Some(threads::resolve_article(&archive, q)?.key),
        None => None,
    };
    let at = crate::views::as_of(&archive, changes::NAME)?;
    // One article's records at a time, written as they come: the whole
    // archive's would not fit in memory (at 1M comments, 450 MB as JSON
    // values).
    if args.json {
        let mut list = crate::cli::output::JsonList::start(out, "changes")?;
        changes::for_each_article(&archive, key.as_ref(), |records| {
            records.iter().try_for_each(|r| list.push(&record_json(r)))
        })?;
        list.finish(&at)?;
        return Ok(Status::Ok);
    }
    let mut started = false;
    if let Some(note) = crate::cli::output::as_of_note(&at) {
        writeln!(out, "{note}").map_err(stdout_error)?;
        started = true;
    }
    // Articles' records in batches: the comments a batch names are read
    // with one decode per segment, and a batch is written before the next
    // is read.
    let mut batch: Vec<ChangeRecord> = Vec::new();
    changes::for_each_article(&archive, key.as_ref(), |records| {
        batch.extend(records);
        if batch.len() >= BATCH_RECORDS {
            let text = describe_records(&archive, &batch, &mut started)?;
            batch.clear();
            out.write_all(text.as_bytes()).map_err(stdout_error)?;
        }
        Ok(())
    })?;
    let text = describe_records(&archive, &batch, &mut started)?;
    out.write_all(text.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}

/// Change records written to text at a time ([`describe_records`]): at
/// most about this many, unless one article has more.
const BATCH_RECORDS: usize = 4096;

/// The text listing of `records` (whole articles'), each article after a
/// blank line once `started`.
fn describe_records(
    archive: &crate::store::Archive,
    records: &[ChangeRecord],
    started: &mut bool,
) -> Result<String> {
    // Every comment the listing names, read with one decode per segment.
    let named: Vec<EventId> = records
        .iter()
        .filter(|r| r.from.is_some())
        .flat_map(|r| {
            r.added.iter().chain(&r.removed).copied().chain(r.edited.iter().flat_map(|(f, t)| [*f, *t]))
        })
        .collect();
    let events = archive.events_by_id(&named)?;
    let mut text = String::new();
    let mut current = None;
    for r in records {
        if current.as_ref() != Some(&r.article) {
            if *started {
                text.push('\n');
            }
            *started = true;
            text.push_str(&format!("{}\n", r.article));
            current = Some(r.article.clone());
        }
        let since = match &r.from {
            None => "first capture".to_string(),
            Some(c) => format!("since seq {}", c.seq),
        };
        let fetched = match &r.to.fetched_at {
            Some(t) => format!("fetched {}, ", human_time(t)),
            None => String::new(),
        };
        let partial = if r.to.complete {
            String::new()
        } else {
            format!("; partial capture, removes nothing ({} not shown)", r.unseen)
        };
        text.push_str(&format!(
            "  seq {} ({since}, {fetched}recorded {}): {} added, {} removed, {} edited{}{partial}\n",
            r.to.seq,
            human_time(&r.to.recorded_at),
            r.added.len(),
            r.removed.len(),
            r.edited.len(),
            if r.article_revision.is_some() { ", article revised" } else { "" }
        ));
        if r.from.is_some() {
            for id in &r.added {
                text.push_str(&format!("    + {}\n", describe(&events, id)?));
            }
            for id in &r.removed {
                text.push_str(&format!("    - {}\n", describe(&events, id)?));
            }
            for (from, to) in &r.edited {
                text.push_str(&format!(
                    "    ~ {}\n      -> {}\n",
                    describe(&events, from)?,
                    describe(&events, to)?
                ));
            }
        }
    }
    Ok(text)
}
