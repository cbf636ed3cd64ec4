//! `cairn authors`: every author with their comment count.

use crate::cli::output::{as_of_json, as_of_note};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::Result;
use crate::views::{as_of, authors};
use serde_json::json;
use std::io::Write;

/// List authors by number of comments, most first (ties by name). Comments
/// without an author are counted under no one.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only the N most active authors.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    /// Print `{"authors":[{"author","comments"}],"as_of":{...}}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// Runs `cairn authors`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::authors::NAME])?;
    let mut all = authors::list_authors(&archive)?;
    all.truncate(args.top.unwrap_or(usize::MAX));
    let at = as_of(&archive, authors::NAME)?;
    if args.json {
        let list: Vec<_> = all.iter().map(|a| json!({"author": a.display, "comments": a.comments})).collect();
        writeln!(out, "{}", json!({"authors": list, "as_of": as_of_json(&at)})).map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    let mut text = as_of_note(&at).map(|n| format!("{n}\n")).unwrap_or_default();
    for a in &all {
        text.push_str(&format!("{:>6}  {}\n", a.comments, a.display));
    }
    out.write_all(text.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
