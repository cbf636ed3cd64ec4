//! `cairn replay`: rebuild views from the log, travel back in time, or
//! stream the log for views built elsewhere.

use crate::cli::output::entry_json;
use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::ids::to_hex;
use crate::model::{Seq, Timestamp};
use crate::store::Archive;
use crate::views::{self, Projection, Until};
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
    /// Only this view (threads, authors); repeatable.
    #[arg(long = "view", value_name = "NAME")]
    pub views: Vec<String>,

    /// Stop at this seq (the log as it was then), or at this RFC 3339 time:
    /// the views as observed up to it (captures fetched, else recorded, at
    /// or before it; merges recorded at or before it). With --emit, a time
    /// keeps the entries recorded at or before it.
    #[arg(long, value_name = "SEQ|RFC3339")]
    pub until: Option<String>,

    /// Stream the events instead of rebuilding views.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub emit: Option<EmitFormat>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Resolves `--until`: a seq or an RFC 3339 time with offset.
fn parse_until(until: &str) -> Result<Until> {
    Until::parse(until).ok_or_else(|| {
        Error::Usage(format!("--until {until:?} is neither a seq nor an RFC 3339 time with offset"))
    })
}

/// The last seq recorded at or before `t` (for `--emit`, which streams the
/// log in its own order).
fn last_recorded_by(archive: &Archive, t: &Timestamp) -> Result<Seq> {
    let limit = t.instant();
    let mut last = Seq(0);
    for entry in archive.entries_from(Seq(1))? {
        let entry = entry?;
        if entry.recorded_at.instant() <= limit {
            last = entry.seq;
        }
    }
    Ok(last)
}

/// Runs `cairn replay`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let mut archive = open_existing(cli)?;
    let until = match &args.until {
        Some(u) => Some(parse_until(u)?),
        None => None,
    };
    if args.emit.is_some() {
        let last = match until.map(|u| u.target(archive.head().seq, "--until")).transpose()? {
            None => archive.head().seq,
            Some((s, None)) => s,
            Some((_, Some(t))) => last_recorded_by(&archive, &t)?,
        };
        let bar = crate::cli::EntriesBar::new(cli, "streaming the log");
        for entry in archive.entries_from(Seq(1))? {
            let entry = entry?;
            if entry.seq > last {
                break;
            }
            if entry.seq.0 % 4096 == 0 {
                bar.report(entry.seq, last);
            }
            writeln!(out, "{}", entry_json(&entry)).map_err(stdout_error)?;
        }
        bar.finish();
        return Ok(Status::Ok);
    }
    let all = views::builtin();
    let selected: Vec<Box<dyn Projection>> = if args.views.is_empty() {
        all
    } else {
        for name in &args.views {
            if name == views::changes::RETIRED_VIEW {
                return Err(Error::Usage(
                    "the change records are kept by the threads view (since its version 5): --view threads"
                        .into(),
                ));
            }
            if !all.iter().any(|v| v.name() == name) {
                let names: Vec<&str> = all.iter().map(|v| v.name()).collect();
                return Err(Error::Usage(format!("no view named {name:?}; views: {}", names.join(", "))));
            }
        }
        all.into_iter().filter(|v| args.views.iter().any(|n| n == v.name())).collect()
    };
    let report = crate::cli::EntriesBar::run(cli, "replaying the views", |progress| {
        views::replay_reporting(&archive, &selected, until, progress)
    })?;
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
                    "observed_until": s.observed_until.map(|t| t.canonical()),
                    "digest": to_hex(&s.digest),
                })
            })
            .collect();
        writeln!(out, "{}", json!({"views": list})).map_err(stdout_error)?;
    } else {
        for s in &report {
            let pin = match (&s.pinned_until, &s.observed_until) {
                (_, Some(t)) => format!(
                    " (as observed up to {}; pinned; `cairn replay` returns to the present)",
                    t.canonical()
                ),
                (Some(_), None) => " (pinned; `cairn replay` returns to the present)".to_string(),
                (None, None) => String::new(),
            };
            writeln!(out, "{}: rebuilt to seq {}{pin}, digest {}", s.name, s.seq, to_hex(&s.digest))
                .map_err(stdout_error)?;
        }
    }
    Ok(Status::Ok)
}
