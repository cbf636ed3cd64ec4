//! `cairn articles`: every article in the archive.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time};
use crate::cli::thread::capture_json;
use crate::cli::{stdout_error, Cli, Status};
use crate::error::Result;
use crate::views::{as_of, threads};
use serde_json::json;
use std::io::Write;

/// List every article: short id of its latest version, comments, captures,
/// title and key.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print `{"articles":[...],"as_of":{...}}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// Runs `cairn articles`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::threads::NAME])?;
    let articles = threads::list_articles(&archive)?;
    let at = as_of(&archive, threads::NAME)?;
    if args.json {
        let list: Vec<_> = articles
            .iter()
            .map(|a| {
                json!({
                    "id": a.latest.map(|i| i.to_hex()),
                    "key": a.key.as_str(),
                    "title": a.title,
                    "url": a.url,
                    "published": a.published.map(|t| t.canonical()),
                    "comments": a.comments,
                    "captures": a.captures,
                    "last_capture": a.last_capture.as_ref().map(capture_json),
                    "aliases": a.aliases.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        writeln!(out, "{}", json!({"articles": list, "as_of": as_of_json(&at)})).map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    let mut text = String::new();
    if let Some(note) = as_of_note(&at) {
        text.push_str(&note);
        text.push('\n');
    }
    for a in &articles {
        text.push_str(&format!(
            "{}  {:>14}  {:>12}  {}  {}  ({})\n",
            a.latest.map(|i| i.short()).unwrap_or_else(|| "-".repeat(12)),
            crate::cli::output::plural(a.comments, "comment"),
            crate::cli::output::plural(a.captures, "capture"),
            human_opt_time(a.published.as_ref()),
            a.title.as_deref().unwrap_or("(untitled)"),
            a.key
        ));
    }
    out.write_all(text.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
