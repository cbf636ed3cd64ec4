//! `cairn author`: one author's comments across all articles.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time, one_line};
use crate::cli::{open_views, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, Seq};
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
    let latest: Vec<Seq> = entries.iter().filter_map(|e| e.seqs.last().copied()).collect();
    // Only the bodies are kept, and rows are written as they are made: an
    // author of 100k comments is not held twice in memory.
    let mut bodies = archive.entries_at_with(&latest, |entry| match &entry.event {
        Event::Comment(c) => Ok((entry.id, c.body.clone())),
        _ => Err(Error::Corrupt(format!("seq {} in a timeline is not a comment", entry.seq))),
    })?;
    let mut titles: HashMap<ArticleKey, Option<String>> = HashMap::new();
    if args.json {
        let head = json!({"author": info.display}).to_string();
        write!(out, "{},\"comments\":[", &head[..head.len() - 1]).map_err(stdout_error)?;
    } else {
        if let Some(note) = as_of_note(&at) {
            writeln!(out, "{note}").map_err(stdout_error)?;
        }
        writeln!(out, "{} · {} comments", info.display, info.comments).map_err(stdout_error)?;
    }
    for (n, e) in entries.iter().enumerate() {
        let latest =
            *e.versions.last().ok_or_else(|| Error::Corrupt("timeline entry without versions".into()))?;
        let seq = e.seqs.last().ok_or_else(|| Error::Corrupt("timeline entry without seqs".into()))?;
        let body = match bodies.remove(seq) {
            Some((id, body)) if id == latest => body,
            _ => {
                return Err(Error::Corrupt(format!("{latest} in a timeline is not the comment at seq {seq}")))
            }
        };
        let title = match titles.get(&e.article) {
            Some(t) => t.clone(),
            None => {
                let t = authors::title_of(&archive, &e.article)?;
                titles.insert(e.article.clone(), t.clone());
                t
            }
        };
        if args.json {
            let row = json!({
                "id": latest.to_hex(),
                "article": e.article.as_str(),
                "title": title,
                "posted_at": e.posted_at.map(|t| t.canonical()),
                "body": body,
                "versions": e.versions.iter().map(|v| v.to_hex()).collect::<Vec<_>>(),
            });
            write!(out, "{}{row}", if n == 0 { "" } else { "," }).map_err(stdout_error)?;
        } else {
            let edited = if e.versions.len() > 1 {
                format!(" · [edited, {} versions]", e.versions.len())
            } else {
                String::new()
            };
            write!(
                out,
                "\n{} · {} · {}{edited}\n  {}\n",
                human_opt_time(e.posted_at.as_ref()),
                latest.short(),
                title.as_deref().unwrap_or(e.article.as_str()),
                one_line(&body, 100)
            )
            .map_err(stdout_error)?;
        }
    }
    if args.json {
        writeln!(out, "],\"as_of\":{}}}", as_of_json(&at)).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
