//! `cairn replay`: rebuild views from the log, travel back in time, or
//! stream the log for views built elsewhere.

use crate::cli::output::entry_json;
use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::ids::to_hex;
use crate::model::{Seq, Timestamp};
use crate::store::Archive;
use crate::views::{self, Projection};
use serde_json::json;
use std::io::Write;

/// `--emit` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EmitFormat {
    /// One JSON object per event and line.
    Jsonl,
}

/// Rebuild views from seq 1 into fresh trees and swap them in (a crash
/// mid-replay leaves the old views readable). With --until, rebuild them as
/// they were at that point and keep them there (time travel) until a replay
/// without --until. With --emit jsonl, stream every event to stdout instead
/// (docs/views.md).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this view (threads, authors, changes); repeatable.
    #[arg(long = "view", value_name = "NAME")]
    pub views: Vec<String>,

    /// Stop at this seq, or at the last entry recorded at or before this
    /// RFC 3339 time.
    #[arg(long, value_name = "SEQ|RFC3339")]
    pub until: Option<String>,

    /// Stream the events instead of rebuilding views.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub emit: Option<EmitFormat>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Resolves `--until`: a seq, or the last seq recorded at or before a time.
fn until_seq(archive: &Archive, until: &str) -> Result<Seq> {
    if let Ok(n) = until.parse::<u64>() {
        return Ok(Seq(n));
    }
    let t = match Timestamp::parse_lenient(until, None) {
        Some(t @ Timestamp::Zoned(..)) => t,
        _ => {
            return Err(Error::Usage(format!(
                "--until {until:?} is neither a seq nor an RFC 3339 time with offset"
            )))
        }
    };
    let instant = |t: &Timestamp| t.instant().0;
    let limit = instant(&t);
    let mut last = Seq(0);
    for entry in archive.entries_from(Seq(1))? {
        let entry = entry?;
        if instant(&entry.recorded_at) <= limit {
            last = entry.seq;
        }
    }
    Ok(last)
}

/// Runs `cairn replay`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let mut archive = open_existing(cli)?;
    let until = match &args.until {
        Some(u) => Some(until_seq(&archive, u)?),
        None => None,
    };
    if args.emit.is_some() {
        let last = until.unwrap_or(archive.head().seq);
        for entry in archive.entries_from(Seq(1))? {
            let entry = entry?;
            if entry.seq > last {
                break;
            }
            writeln!(out, "{}", entry_json(&entry)).map_err(stdout_error)?;
        }
        return Ok(Status::Ok);
    }
    let all = views::builtin();
    let selected: Vec<Box<dyn Projection>> = if args.views.is_empty() {
        all
    } else {
        for name in &args.views {
            if !all.iter().any(|v| v.name() == name) {
                let names: Vec<&str> = all.iter().map(|v| v.name()).collect();
                return Err(Error::Usage(format!("no view named {name:?}; views: {}", names.join(", "))));
            }
        }
        all.into_iter().filter(|v| args.views.iter().any(|n| n == v.name())).collect()
    };
    let report = views::replay(&archive, &selected, until)?;
    archive.flush()?;
    if args.json {
        let list: Vec<_> = report
            .iter()
            .map(|s| {
                json!({
                    "view": s.name,
                    "version": s.version,
                    "seq": s.seq.0,
                    "pinned": s.pinned_until.is_some(),
                    "digest": to_hex(&s.digest),
                })
            })
            .collect();
        writeln!(out, "{}", json!({"views": list})).map_err(stdout_error)?;
    } else {
        for s in &report {
            let pin = if s.pinned_until.is_some() {
                " (pinned; `cairn replay` returns to the present)"
            } else {
                ""
            };
            writeln!(out, "{}: rebuilt to seq {}{pin}, digest {}", s.name, s.seq, to_hex(&s.digest))
                .map_err(stdout_error)?;
        }
    }
    Ok(Status::Ok)
}
