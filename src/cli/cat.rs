//! `cairn cat`: the raw bytes of a capture, exactly as ingested (like
//! `git cat-file blob` or `restic dump`).

use crate::cli::{open_existing, Cli, Status};
use crate::error::{Error, Result};
use crate::model::{BlobId, Event, HexPrefix};
use std::io::Write;
use std::path::PathBuf;

/// Write the stored bytes of one capture exactly as they were ingested
/// (re-scrapes stored as deltas are resolved). TARGET is a hex prefix of
/// the capture's event id (as `log` and `changes` print it) or of its blob
/// id (`show` prints it); the bytes are checked against the blob id
/// before anything is written.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A hex prefix of a capture id or a blob id.
    #[arg(value_name = "CAPTURE-OR-BLOB")]
    pub target: String,

    /// Write to FILE (replaced whole, or left as it was on an error)
    /// instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// What a prefix named.
enum Match {
    Capture { id: crate::model::EventId, blob: BlobId },
    Blob(BlobId),
}

/// The one blob `target` names, or why not.
pub fn resolve(archive: &crate::store::Archive, target: &str) -> Result<BlobId> {
    if target.len() < 4 {
        return Err(Error::Usage(format!("{target:?}: give at least 4 hex digits of a capture or blob id")));
    }
    let prefix = HexPrefix::parse(target)
        .ok_or_else(|| Error::Usage(format!("{target:?} is not a hex prefix of a capture or blob id")))?;
    let mut matches = Vec::new();
    let mut others = Vec::new();
    for id in archive.store().ids_with_prefix(&prefix)? {
        match archive.entry_by_id(&id)? {
            Some(e) => match e.event {
                Event::Capture(c) => matches.push(Match::Capture { id, blob: c.blob }),
                other => others.push(format!("{} {id}", other.kind())),
            },
            None => return Err(Error::Corrupt(format!("index lost {id} during lookup"))),
        }
    }
    for blob in archive.store().blob_ids()? {
        if prefix.matches(&blob.0) {
            matches.push(Match::Blob(blob));
        }
    }
    let mut blobs: Vec<BlobId> = matches
        .iter()
        .map(|m| match m {
            Match::Capture { blob, .. } | Match::Blob(blob) => *blob,
        })
        .collect();
    blobs.sort();
    blobs.dedup();
    match blobs.as_slice() {
        [one] => Ok(*one),
        [] if !others.is_empty() => Err(Error::Usage(format!(
            "{target} names {}, not a capture; `cairn show {target}` prints it",
            others.join(", ")
        ))),
        [] => Err(Error::NotFound(format!("no capture or blob id starts with {target}"))),
        _ => Err(Error::Usage(format!(
            "{target} is ambiguous; it matches:\n{}",
            matches
                .iter()
                .map(|m| match m {
                    Match::Capture { id, blob } => format!("  capture {id} (blob {blob})"),
                    Match::Blob(b) => format!("  blob {b}"),
                })
                .collect::<Vec<_>>()
                .join("\n")
        ))),
    }
}

/// Runs `cairn cat`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    let blob = resolve(&archive, &args.target)?;
    let raw = archive.verified_blob(&blob)?;
    crate::cli::outfile::write_to(&cli.archive, args.output.as_deref(), out, |w| {
        w.write_all(&raw).map_err(crate::cli::stdout_error)
    })?;
    Ok(Status::Ok)
}
