//! `cairn repair`: rebuild the index (`db/`) from the log and pack files.

use crate::cli::{retry_while_in_use, stdout_error, Cli, Status};
use crate::error::Result;
use crate::store::Archive;
use serde_json::json;
use std::io::{IsTerminal, Write};

/// Rebuild the archive's index (db/) from its log and pack files, which are
/// the archive: the old db/ is moved aside (db.replaced-SECONDS), every whole
/// commit in the log files is indexed again, and the views are rebuilt. Use
/// it when db/ is lost, stale or damaged; `verify` afterwards (with the
/// `--checkpoint` saved before) shows that nothing acknowledged was lost.
/// When the log files no longer close every entry the old index recorded
/// (cut, damaged, or older files restored), nothing is changed and the exit
/// status is 1, unless --accept-loss.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Rebuild even when the log files close fewer entries than the old
    /// index recorded: those entries are given up (the old index is moved
    /// aside, not deleted).
    #[arg(long)]
    pub accept_loss: bool,
}

/// Runs `cairn repair`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    // A progress bar on a terminal, over the log files' records.
    let bar = (std::io::stderr().is_terminal() && cli.quiet == 0 && !args.json).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "rebuilding the index {wide_bar} {pos}/{len} records, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let tick = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let progress: &dyn Fn(u64, u64) = &tick;
    let opened =
        retry_while_in_use(cli, || Archive::open_rebuilt(&cli.archive, args.accept_loss, Some(progress)));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (mut archive, moved) = match opened {
        Err(e @ crate::error::Error::RepairWouldLose { recorded, head, closes }) => {
            if args.json {
                let v = json!({
                    "changed": false,
                    "closes": closes.0,
                    "old_head": crate::cli::output::head_json(recorded, &head),
                    "problem": e.to_string(),
                });
                writeln!(out, "{v}").map_err(stdout_error)?;
            }
            crate::cli::output::to_stderr(format_args!("cairn: {e}"));
            return Ok(Status::Problems);
        }
        opened => opened?,
    };
    crate::cli::catch_up(cli, &archive, "rebuilding the views")?;
    archive.flush()?;
    let head = *archive.head();
    let moved_to = moved.as_ref().map(|(p, _)| p.display().to_string());
    // The old index knew more than the log files close, or another
    // history at its head: say so, exit 1.
    let lost = match &moved {
        Some((_, Some(old))) if old.seq > head.seq => Some(*old),
        Some((_, Some(old)))
            if old.seq.0 > 0 && archive.entry(old.seq).ok().map(|e| e.head) != Some(old.hash) =>
        {
            Some(*old)
        }
        _ => None,
    };
    let given_up = archive.store().given_up().to_vec();
    let still = archive.store().files_problem().map(str::to_string);
    // The index is rebuilt, but not all that is derived from the log with
    // it (the id runs, the Merkle tree's hashes): the next open rebuilds
    // them; this repair did not finish its work (exit 2, below).
    let derived = archive.take_derived_failure().map(|e| {
        let done = format!(
            "the index of {} entries was rebuilt, but not all the files derived from the log with it (the id \
             runs in index/, the Merkle tree's hashes in tree/); the next command that opens the archive \
             rebuilds them, or run `cairn repair` again",
            head.seq
        );
        crate::error::Error::stopped(done, e)
    });
    if args.json {
        let v = json!({
            "entries": head.seq.0,
            "head": crate::cli::output::head_json(head.seq, &head.hash),
            "old_index": moved_to,
            "old_head": moved.as_ref().and_then(|(_, h)| h.map(|h| crate::cli::output::head_json(h.seq, &h.hash))),
            "given_up": given_up,
            "problem": still.clone().or_else(|| derived.as_ref().map(|e| e.to_string())),
        });
        writeln!(out, "{v}").map_err(stdout_error)?;
    } else {
        let old = match &moved_to {
            Some(p) => format!("; the old index was moved to {p}"),
            None => "; there was no index".to_string(),
        };
        writeln!(
            out,
            "rebuilt the index of {} entries from the log files, head {}{old}",
            head.seq,
            head.checkpoint()
        )
        .map_err(stdout_error)?;
    }
    let mut problems = false;
    if let Some(old) = lost.filter(|old| old.seq <= head.seq) {
        crate::cli::output::to_stderr(format_args!(
            "cairn: the old index recorded {} entries (head {}); the log files' chain at entry {} is another: the \
             old index was of another archive or another history of this one. The old index is at {}.",
            old.seq,
            old.checkpoint(),
            old.seq,
            moved_to.as_deref().unwrap_or("(none)")
        ));
        problems = true;
    } else if let Some(old) = lost {
        crate::cli::output::to_stderr(format_args!(
            "cairn: the old index recorded {} entries (head {}); the rebuilt one holds {}: entries {} to {} are \
             not in the log and pack files whole (cut or damaged: `cairn verify` shows where). The old index is \
             at {}.",
            old.seq,
            old.checkpoint(),
            head.seq,
            head.seq.next(),
            old.seq,
            moved_to.as_deref().unwrap_or("(none)")
        ));
        problems = true;
    }
    if !given_up.is_empty() {
        crate::cli::output::to_stderr(format_args!(
            "cairn: given up (--accept-loss) and moved aside to NAME.torn-SECONDS, not deleted: {}",
            given_up.join(", ")
        ));
        problems = true;
    }
    if let Some(why) = still {
        crate::cli::output::to_stderr(format_args!(
            "cairn: {why}: commands that write refuse until it is dealt with. Restore the files from a backup, or \
             run `cairn repair --accept-loss` to give up what lies past the rebuilt index's end"
        ));
        problems = true;
    }
    if let Some(e) = derived {
        return Err(e);
    }
    Ok(if problems { Status::Problems } else { Status::Ok })
}
