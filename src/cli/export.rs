//! `cairn export`: the whole archive as one portable, self-verifying file.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use crate::store::portable;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

/// Write the whole log with its raw captures to FILE: one zstd-compressed,
/// self-verifying file that does not depend on sled (docs/export.md). The
/// backup and migration path; `cairn import` reads it back.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to write (replaced atomically), or `-` for stdout.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print `{"file","entries","blobs","head":{"seq","hash"}}` (not with `-`:
    /// stdout is the export).
    #[arg(long)]
    pub json: bool,
}

/// Runs `cairn export`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    // (`/dev/stdout` and any path to the file standard output writes are
    // `-`: the report would land in the export.)
    if crate::cli::outfile::is_stdout(&args.file) {
        if args.json {
            return Err(crate::error::Error::Usage(
                "--json with `export -`: standard output is the export; give a FILE".into(),
            ));
        }
        let written = crate::cli::EntriesBar::run(cli, "exporting", |progress| {
            portable::export_to(&archive, &mut *out, &args.file, progress)
        });
        let cut = |e| crate::cli::cut_off(e, "the export");
        let (_, w) = written.map_err(cut)?;
        w.flush().map_err(stdout_error).map_err(cut)?;
        return Ok(Status::Ok);
    }
    // Written whole or not at all: a temporary file beside FILE, synced and
    // renamed into place, removed on an error.
    let mut summary = None;
    crate::cli::outfile::write_to(&cli.archive, Some(&args.file), out, |w| {
        let written = crate::cli::EntriesBar::run(cli, "exporting", |progress| {
            portable::export_to(&archive, &mut *w, &args.file, progress)
        });
        summary = Some(written?.0);
        Ok(())
    })?;
    let s = summary.ok_or_else(|| crate::error::Error::Internal("the export wrote no summary".into()))?;
    if args.json {
        let v = json!({
            "file": args.file.display().to_string(),
            "entries": s.entries,
            "blobs": s.blobs,
            "articles": s.counts.articles,
            "comments": s.counts.comments,
            "captures": s.counts.captures,
            "merges": s.counts.merges,
            "head": crate::cli::output::head_json(s.head.0, &s.head.1),
        });
        writeln!(out, "{v}").map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    writeln!(
        out,
        "exported {} entries and {} blobs to {}; head {} {}",
        s.entries,
        s.blobs,
        args.file.display(),
        s.head.0,
        s.head.1
    )
    .map_err(stdout_error)?;
    Ok(Status::Ok)
}
