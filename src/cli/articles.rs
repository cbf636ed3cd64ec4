//! `cairn articles`: every article in the archive.

use crate::cli::output::{as_of_note, human_opt_time, JsonList};
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
    let at = as_of(&archive, threads::NAME)?;
    // One article at a time, written as it comes (an archive's every
    // summary as JSON values took 81 MB at 10,000 articles).
    if args.json {
        let mut list = JsonList::start(out, "articles")?;
        threads::each_article(&archive, |a| {
            list.push(&json!({
                "id": a.latest.map(|i| i.to_hex()),
                "key": a.key.as_str(),
                "title": a.title,
                "url": a.url,
                "published": a.published.map(|t| t.canonical()),
                "comments": a.comments,
                "captures": a.captures,
                "last_capture": a.last_capture.as_ref().map(capture_json),
                "aliases": a.aliases.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            }))
        })?;
        list.finish(&at)?;
        return Ok(Status::Ok);
    }
    if let Some(note) = as_of_note(&at) {
        writeln!(out, "{note}").map_err(stdout_error)?;
    }
    threads::each_article(&archive, |a| {
        writeln!(
            out,
            "{}  {:>14}  {:>12}  {}  {}  ({})",
            a.latest.map(|i| i.short()).unwrap_or_else(|| "-".repeat(12)),
            crate::cli::output::plural(a.comments, "comment"),
            crate::cli::output::plural(a.captures, "capture"),
            human_opt_time(a.published.as_ref()),
            a.title.as_deref().unwrap_or("(untitled)"),
            a.key
        )
        .map_err(stdout_error)
    })?;
    Ok(Status::Ok)
}
