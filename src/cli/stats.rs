//! `cairn stats`: what the archive holds.

use crate::cli::output::human_bytes;
use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use serde_json::json;
use std::io::Write;

/// Counts by kind, blobs, and bytes on disk.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cairn stats`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    let head = *archive.head();
    let store = archive.store();
    let blobs = store.blob_ids()?.len() as u64;
    let blob_bytes = store.blob_bytes()?;
    let disk = store.disk_usage()?.unwrap_or(0);
    // Where the stored views stand (pinned by `replay --until`, or not).
    // (Only when views exist: asking would create an empty tree.)
    let views = match store.tree_names()?.is_empty() {
        true => None,
        false => crate::views::as_of(&archive, crate::views::threads::NAME).ok(),
    };
    if args.json {
        let v = json!({
            "entries": head.seq.0,
            "articles": head.counts.articles,
            "comments": head.counts.comments,
            "captures": head.counts.captures,
            "merges": head.counts.merges,
            "blobs": blobs,
            "blob_bytes": blob_bytes,
            "disk_bytes": disk,
            "head": crate::cli::output::head_json(head.seq, &head.hash),
            "views": views.as_ref().map(crate::cli::output::as_of_json),
        });
        writeln!(out, "{v}").map_err(stdout_error)?;
    } else {
        let text = format!(
            "entries:   {}\narticles:  {}\ncomments:  {}\ncaptures:  {}\nmerges:    {}\nblobs:     {} ({} compressed)\ndisk:      {}\nhead:      {}\n",
            head.seq,
            head.counts.articles,
            head.counts.comments,
            head.counts.captures,
            head.counts.merges,
            blobs,
            human_bytes(blob_bytes),
            human_bytes(disk),
            head.checkpoint()
        );
        let views = match &views {
            Some(v) if v.pinned => format!(
                "views:     pinned at seq {}{} by `cairn replay --until` (`cairn replay` returns to the present)\n",
                v.seq,
                v.observed_until.map(|t| format!(", as observed up to {}", t.canonical())).unwrap_or_default()
            ),
            Some(v) => format!("views:     at seq {}\n", v.seq),
            None => String::new(),
        };
        out.write_all(format!("{text}{views}").as_bytes()).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
