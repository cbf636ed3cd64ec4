//! `cairn log`: entries in log order.

use crate::cli::output::{entry_json, summary};
use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use crate::model::{EventKind, Seq};
use std::io::Write;

/// `--kind` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Article versions.
    Article,
    /// Comment versions.
    Comment,
    /// Captures.
    Capture,
    /// Merges (dedupe --apply).
    Merge,
}

impl From<KindArg> for EventKind {
    fn from(k: KindArg) -> EventKind {
        match k {
            KindArg::Article => EventKind::Article,
            KindArg::Comment => EventKind::Comment,
            KindArg::Capture => EventKind::Capture,
            KindArg::Merge => EventKind::Merge,
        }
    }
}

/// List log entries in order: seq, kind, short id, recorded_at and a
/// summary. With --json, one JSON object per line (JSON Lines).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Start at this seq (the first entry is seq 1).
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub from: u64,

    /// Print at most N entries.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Only entries of this kind.
    #[arg(long, value_enum, value_name = "K")]
    pub kind: Option<KindArg>,

    /// One JSON object per entry and line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cairn log`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    let kind = args.kind.map(EventKind::from);
    let entries = archive
        .entries_from(Seq(args.from.max(1)))?
        .filter(|e| match (e, kind) {
            (Ok(e), Some(k)) => e.event.kind() == k,
            _ => true,
        })
        .take(args.limit.unwrap_or(usize::MAX));
    for entry in entries {
        let entry = entry?;
        if args.json {
            writeln!(out, "{}", entry_json(&entry))
        } else {
            writeln!(
                out,
                "{:>6}  {:<7}  {}  {}  {}",
                entry.seq,
                entry.event.kind(),
                entry.id.short(),
                entry.recorded_at,
                summary(&entry.event)
            )
        }
        .map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
