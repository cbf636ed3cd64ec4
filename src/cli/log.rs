//! `cairn log`: entries in log order.

use crate::cli::output::{entry_json, summary};
use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use crate::model::{EventKind, LogEntry, Seq};
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

    /// Newest first (from the head down to --from).
    #[arg(long)]
    pub reverse: bool,

    /// Only entries recorded at or after TIME (RFC 3339 with offset, or a
    /// date).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only entries recorded at or before TIME (a date includes that day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// One JSON object per entry and line.
    #[arg(long)]
    pub json: bool,
}

/// Entries read at once going backwards (one decode per log segment).
const BACKWARDS_BATCH: u64 = 4096;

/// Runs `cairn log`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let window = crate::tables::Window::parse(args.since.as_deref(), args.until.as_deref())?;
    let archive = open_existing(cli)?;
    let kind = args.kind.map(EventKind::from);
    let wanted =
        |e: &LogEntry| kind.is_none_or(|k| e.event.kind() == k) && window.contains(e.recorded_at.instant());
    let from = args.from.max(1);
    let mut left = args.limit.unwrap_or(usize::MAX);
    if args.reverse {
        // Backwards in batches: each batch's segments decoded once.
        let mut hi = archive.head().seq.0;
        while hi >= from && left > 0 {
            let lo = hi.saturating_sub(BACKWARDS_BATCH - 1).max(from);
            let seqs: Vec<Seq> = (lo..=hi).map(Seq).collect();
            let mut batch = archive.entries_at_with(&seqs, |e| Ok(e.clone()))?;
            for seq in (lo..=hi).rev() {
                let entry = batch.remove(&Seq(seq)).ok_or(crate::error::Error::MissingEntry(Seq(seq)))?;
                if left > 0 && wanted(&entry) {
                    write_entry(out, &entry, args.json)?;
                    left -= 1;
                }
            }
            hi = lo - 1;
        }
        return Ok(Status::Ok);
    }
    let mut entries = archive.entries_from(Seq(from))?;
    // The limit is checked before an entry is read: nothing past it is
    // decoded.
    while left > 0 {
        let Some(entry) = entries.next() else { break };
        let entry = entry?;
        if wanted(&entry) {
            write_entry(out, &entry, args.json)?;
            left -= 1;
        }
    }
    Ok(Status::Ok)
}

fn write_entry(out: &mut dyn Write, entry: &LogEntry, json: bool) -> Result<()> {
    {
        if json {
            writeln!(out, "{}", entry_json(entry))
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
    Ok(())
}
