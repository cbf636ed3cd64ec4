//! `cairn author`: one author's comments across all articles.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time, one_line};
use crate::cli::{open_views, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, EventId};
use crate::views::{as_of, authors};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;

/// Show one author's timeline across all articles, sorted by posted time.
/// NAME matches case-insensitively after whitespace folding; an edited
/// comment counts once (its latest version is shown).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The author's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Print `{"author":..,"comments":[...],"as_of":{...}}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cairn author`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_views(cli)?;
    let (info, entries) = authors::timeline(&archive, &args.name)?
        .ok_or_else(|| Error::NotFound(format!("no author named {:?}", args.name)))?;
    let at = as_of(&archive, authors::NAME)?;
    let latest: Vec<EventId> = entries.iter().filter_map(|e| e.versions.last().copied()).collect();
    let events = archive.events_by_id(&latest)?;
    let mut titles: HashMap<ArticleKey, Option<String>> = HashMap::new();
    let mut rows = Vec::new();
    for e in &entries {
        let latest =
            *e.versions.last().ok_or_else(|| Error::Corrupt("timeline entry without versions".into()))?;
        let body = match events.get(&latest) {
            Some(Event::Comment(c)) => c.body.clone(),
            _ => return Err(Error::Corrupt(format!("{latest} in a timeline is not a comment"))),
        };
        let title = match titles.get(&e.article) {
            Some(t) => t.clone(),
            None => {
                let t = authors::title_of(&archive, &e.article)?;
                titles.insert(e.article.clone(), t.clone());
                t
            }
        };
        rows.push((e, latest, body, title));
    }
    if args.json {
        let comments: Vec<_> = rows
            .iter()
            .map(|(e, latest, body, title)| {
                json!({
                    "id": latest.to_hex(),
                    "article": e.article.as_str(),
                    "title": title,
                    "posted_at": e.posted_at.map(|t| t.canonical()),
                    "body": body,
                    "versions": e.versions.iter().map(|v| v.to_hex()).collect::<Vec<_>>(),
                })
            })
            .collect();
        writeln!(out, "{}", json!({"author": info.display, "comments": comments, "as_of": as_of_json(&at)}))
            .map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    let mut text = String::new();
    if let Some(note) = as_of_note(&at) {
        text.push_str(&note);
        text.push('\n');
    }
    text.push_str(&format!("{} · {} comments\n", info.display, info.comments));
    for (e, latest, body, title) in &rows {
        let edited = if e.versions.len() > 1 {
            format!(" · [edited, {} versions]", e.versions.len())
        } else {
            String::new()
        };
        text.push_str(&format!(
            "\n{} · {} · {}{edited}\n  {}\n",
            human_opt_time(e.posted_at.as_ref()),
            latest.short(),
            title.as_deref().unwrap_or(e.article.as_str()),
            one_line(body, 100)
        ));
    }
    out.write_all(text.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
