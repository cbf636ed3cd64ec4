//! The command line: global options, one module per subcommand (an args
//! struct whose doc comments are the help, and a `run` function), and the
//! flat dispatch below. Commands only wire options to library calls.

pub mod articles;
pub mod author;
pub mod authors;
pub mod cat;
pub mod changes;
pub mod checkpoint;
pub mod completions;
pub mod dedupe;
pub mod diff;
pub mod export;
pub mod filters;
pub mod head;
pub mod history;
pub mod import;
pub mod ingest;
pub mod key;
pub mod log;
pub mod outfile;
pub mod output;
pub mod prove;
pub mod repair;
pub mod reparse;
pub mod replay;
pub mod search;
pub mod show;
pub mod site;
pub mod stats;
pub mod table;
pub mod thread;
pub mod verify;
pub mod verify_proof;

use crate::error::{Error, Result};
use crate::store::{Archive, OpenMode};
use clap::{ArgAction, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// An event-sourced archive of scraped news comment sections.
///
/// Every article, comment and capture becomes a content-addressed event in
/// an append-only, hash-chained log. Re-scrapes add only what changed.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, propagate_version = true)]
pub struct Cli {
    /// The archive directory.
    #[arg(long, global = true, env = "CAIRN_ARCHIVE", default_value = "cairn-archive", value_name = "PATH")]
    pub archive: PathBuf,

    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// When the archive is in use by another cairn process, wait up to this
    /// many seconds for it (default: 30 for commands that only read, 0 for
    /// commands that write; 0 fails at once).
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_wait)]
    pub wait: Option<f64>,

    /// Less log output: errors only.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest scraped documents (files, directories, `-` for stdin).
    Ingest(ingest::Args),
    /// List log entries in order.
    Log(log::Args),
    /// Show one event by id prefix.
    Show(show::Args),
    /// Print the checkpoint line `SEQ HEX`: the last seq and the chain head.
    Head(head::Args),
    /// Counts by kind, blobs and bytes on disk.
    Stats(stats::Args),
    /// Re-derive events from every stored raw capture with the current parsers.
    Reparse(reparse::Args),
    /// List every article.
    Articles(articles::Args),
    /// Show one article's comment thread.
    Thread(thread::Args),
    /// Show one author's comments across all articles.
    Author(author::Args),
    /// List authors by number of comments.
    Authors(authors::Args),
    /// Show what each capture changed: comments added, removed, edited.
    Changes(changes::Args),
    /// Show every version and sighting of one comment.
    History(history::Args),
    /// Write a capture's raw bytes exactly as ingested.
    Cat(cat::Args),
    /// Compare two captures of one page: comments added, removed, edited, moved.
    Diff(diff::Args),
    /// Write a static HTML site of the archive (threads, authors, captures).
    Site(site::Args),
    /// Find comments whose text or author matches a pattern.
    Search(search::Args),
    /// Write a table (comments, versions, articles, captures, sightings) as CSV, JSON Lines or Parquet.
    Table(table::Args),
    /// Rebuild views from the log (or as of a past point), or stream the log.
    Replay(replay::Args),
    /// Audit the archive: ids, chain, index, references, blobs, views.
    Verify(verify::Args),
    /// Find near-duplicate comments and articles; --apply folds them.
    Dedupe(dedupe::Args),
    /// Write the whole archive to one portable, self-verifying file.
    Export(export::Args),
    /// Rebuild an empty archive from an export file.
    Import(import::Args),
    /// Rebuild the index (db/) from the log and pack files.
    Repair(repair::Args),
    /// Print the Merkle tree's checkpoint, signed with --key.
    Checkpoint(checkpoint::Args),
    /// Print an inclusion or consistency proof as JSON.
    Prove(prove::Args),
    /// Check a proof against a signed checkpoint, without the archive.
    VerifyProof(verify_proof::Args),
    /// Make the keys that sign checkpoints.
    Key(key::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Write the manual pages (roff).
    Man(completions::ManArgs),
}

/// How a command ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 1: problems found, or some inputs rejected.
    Problems,
}

impl Command {
    /// Whether the command writes files of its own outside the archive
    /// (`table -o`, `cat -o`, `export FILE`, `site DIR`): an I/O error
    /// there is about that file, not the archive.
    pub fn writes_output_file(&self) -> bool {
        matches!(self, Command::Table(_) | Command::Cat(_) | Command::Export(_) | Command::Site(_))
    }

    /// The command's name, and whether it only reads the archive (it may
    /// still bring the views up to date, as every reading command does).
    pub fn describe(&self) -> (&'static str, bool) {
        match self {
            Command::Ingest(a) => ("ingest", a.dry_run),
            Command::Log(_) => ("log", true),
            Command::Show(_) => ("show", true),
            Command::Head(_) => ("head", true),
            Command::Stats(_) => ("stats", true),
            Command::Reparse(_) => ("reparse", false),
            Command::Articles(_) => ("articles", true),
            Command::Thread(_) => ("thread", true),
            Command::Author(_) => ("author", true),
            Command::Authors(_) => ("authors", true),
            Command::Changes(_) => ("changes", true),
            Command::History(_) => ("history", true),
            Command::Cat(_) => ("cat", true),
            Command::Table(_) => ("table", true),
            Command::Search(_) => ("search", true),
            Command::Diff(_) => ("diff", true),
            Command::Site(_) => ("site", true),
            Command::Replay(a) => ("replay", a.emit.is_some()),
            Command::Verify(_) => ("verify", true),
            Command::Dedupe(a) => ("dedupe", !a.apply),
            Command::Export(_) => ("export", true),
            Command::Import(_) => ("import", false),
            Command::Repair(_) => ("repair", false),
            Command::Checkpoint(_) => ("checkpoint", true),
            Command::Prove(_) => ("prove", true),
            Command::VerifyProof(_) => ("verify-proof", true),
            Command::Key(_) => ("key", true),
            Command::Completions(_) => ("completions", true),
            Command::Man(_) => ("man", true),
        }
    }
}

/// Runs the parsed command line, writing results to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<Status> {
    crate::store::set_process_label(cli.command.describe().0);
    // Text from scraped pages reaches the terminal with its control
    // characters shown, not obeyed; data (bytes, tables, exports, scripts)
    // goes out as it is.
    let data = matches!(
        &cli.command,
        Command::Cat(_) | Command::Table(_) | Command::Export(_) | Command::Completions(_) | Command::Man(_)
    );
    if data {
        return run_command(cli, out);
    }
    let mut shown = output::ShowControls::new(out);
    let status = run_command(cli, &mut shown);
    // (A byte of a character cut at the end of the last write.)
    match (status, shown.finish().map_err(stdout_error)) {
        (Ok(_), Err(e)) if !is_broken_pipe(&e) => Err(e),
        (status, _) => status,
    }
}

fn run_command(cli: &Cli, out: &mut dyn Write) -> Result<Status> {
    match &cli.command {
        Command::Ingest(args) => ingest::run(cli, args, out),
        Command::Log(args) => log::run(cli, args, out),
        Command::Show(args) => show::run(cli, args, out),
        Command::Head(args) => head::run(cli, args, out),
        Command::Stats(args) => stats::run(cli, args, out),
        Command::Reparse(args) => reparse::run(cli, args, out),
        Command::Articles(args) => articles::run(cli, args, out),
        Command::Thread(args) => thread::run(cli, args, out),
        Command::Author(args) => author::run(cli, args, out),
        Command::Authors(args) => authors::run(cli, args, out),
        Command::Changes(args) => changes::run(cli, args, out),
        Command::History(args) => history::run(cli, args, out),
        Command::Cat(args) => cat::run(cli, args, out),
        Command::Table(args) => table::run(cli, args, out),
        Command::Search(args) => search::run(cli, args, out),
        Command::Diff(args) => diff::run(cli, args, out),
        Command::Site(args) => site::run(cli, args, out),
        Command::Replay(args) => replay::run(cli, args, out),
        Command::Verify(args) => verify::run(cli, args, out),
        Command::Dedupe(args) => dedupe::run(cli, args, out),
        Command::Export(args) => export::run(cli, args, out),
        Command::Import(args) => import::run(cli, args, out),
        Command::Repair(args) => repair::run(cli, args, out),
        Command::Checkpoint(args) => checkpoint::run(cli, args, out),
        Command::Prove(args) => prove::run(cli, args, out),
        Command::VerifyProof(args) => verify_proof::run(cli, args, out),
        Command::Key(args) => key::run(cli, args, out),
        Command::Completions(args) => completions::completions(args, out),
        Command::Man(args) => completions::man(args, out),
    }
}

/// Parses `--wait`: seconds from 0 to a week.
fn parse_wait(s: &str) -> std::result::Result<f64, String> {
    const WEEK: f64 = 7.0 * 24.0 * 3600.0;
    match s.parse::<f64>() {
        Ok(w) if (0.0..=WEEK).contains(&w) => Ok(w),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to {WEEK} (a week)")),
    }
}

/// How long to wait for an archive another process holds: `--wait`, else
/// 30 s for a command that only reads, none for one that writes.
pub fn wait_seconds(cli: &Cli) -> f64 {
    cli.wait.unwrap_or(if cli.command.describe().1 { 30.0 } else { 0.0 })
}

/// Runs `open` until it does not fail with "archive in use", for up to
/// [`wait_seconds`], saying once on stderr whom it waits for.
pub fn retry_while_in_use<T>(cli: &Cli, mut open: impl FnMut() -> Result<T>) -> Result<T> {
    let wait = wait_seconds(cli);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(wait.max(0.0));
    let mut said = false;
    loop {
        match open() {
            Err(Error::ArchiveInUse(p, holder)) if std::time::Instant::now() < deadline => {
                if !said && cli.quiet == 0 {
                    let who = holder.map_or("another cairn process".to_string(), |h| format!("cairn {h}"));
                    crate::cli::output::to_stderr(format_args!(
                        "cairn: waiting for {who} to finish with {} (up to {wait} s; --wait 0 fails at once)…",
                        p.display()
                    ));
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Opens the archive named by `--archive` (honouring `--wait`).
pub fn open_archive(cli: &Cli, mode: OpenMode) -> Result<Archive> {
    let archive = retry_while_in_use(cli, || Archive::open(&cli.archive, mode))?;
    // The index disagrees with the record files (a file short of its
    // committed end, a log that does not end with the index's head, whole
    // commits past it): a command that writes would cut what lies past the
    // index's end, or take a document the index names and the log lacks
    // for a duplicate, so it refuses; one that reads warns, and answers
    // from the index.
    if let Some(why) = archive.store().files_problem() {
        if !cli.command.describe().1 {
            return Err(Error::Corrupt(format!(
                "{why}; nothing was written (nothing past the index's end is cut while it disagrees with the \
                 log and pack files). `cairn verify` shows where; restore the files from a backup, or run \
                 `cairn repair`, which says what it would give up (`--accept-loss` to do so)"
            )));
        }
        crate::cli::output::to_stderr(format_args!(
            "cairn: warning: {why}; answers come from the index, which disagrees with the log and pack files \
             (`cairn verify` shows where)"
        ));
    }
    Ok(archive)
}

/// Opens the archive named by `--archive` for a command that only reads.
pub fn open_existing(cli: &Cli) -> Result<Archive> {
    open_archive(cli, OpenMode::MustExist)
}

/// Opens the archive for a command that reads views, bringing the views up
/// to the head of the log first.
pub fn open_views(cli: &Cli) -> Result<Archive> {
    let mut archive = open_existing(cli)?;
    catch_up(cli, &archive, "bringing the views up to date")?;
    archive.flush()?;
    Ok(archive)
}

/// [`crate::views::catch_up`] of the built-in views, with a progress bar
/// saying `what` on a terminal (a view rebuilt after an upgrade or a
/// repair takes as long as a replay).
pub fn catch_up(cli: &Cli, archive: &Archive, what: &str) -> Result<()> {
    EntriesBar::run(cli, what, |progress| {
        crate::views::catch_up_with(archive, &crate::views::builtin(), progress)
    })
}

/// `--at` on the commands that read views.
#[derive(clap::Args, Debug, Default)]
pub struct AtArg {
    /// Show the views as they were at a past point, computed for this query
    /// from the log (the stored views are not changed): a seq, a checkpoint
    /// `SEQ:HEX` as `cairn head` prints it (checked against this archive's
    /// chain), or an RFC 3339 time (what was observed up to then).
    #[arg(long, value_name = "SEQ|CHECKPOINT|TIME")]
    pub at: Option<String>,
}

/// Resolves `--at`: a seq, a checkpoint `SEQ:HEX` (or `SEQ HEX`) whose
/// chain head this archive has at that seq, or an RFC 3339 time.
pub fn resolve_at(archive: &Archive, at: &str) -> Result<crate::views::Until> {
    use crate::views::Until;
    if let Some(until) = Until::parse(at) {
        return Ok(until);
    }
    if !at.trim().is_empty() && at.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Usage(format!("--at {at}: no log reaches that seq (it does not fit in 64 bits)")));
    }
    if let Some((crate::model::Seq(n), hash)) = verify::checkpoint_of(at) {
        let head = archive.head();
        if n > head.seq.0 {
            return Err(Error::NotFound(format!(
                "checkpoint {n}:{hash} is not in this archive: its log ends at seq {}",
                head.seq
            )));
        }
        let ours = match n {
            0 => crate::model::ChainHash::GENESIS,
            n => archive.entry(crate::model::Seq(n))?.head,
        };
        if ours != hash {
            return Err(Error::NotFound(format!(
                "checkpoint {n}:{hash} is not in this archive: its chain head at seq {n} is {ours}"
            )));
        }
        return Ok(Until::Seq(crate::model::Seq(n)));
    }
    Err(Error::Usage(format!(
        "--at {at:?} is not a seq, a checkpoint SEQ:HEX (as `cairn head` prints it) or an RFC 3339 time with offset"
    )))
}

/// Opens the archive for a command that reads views: with `--at`, the
/// views named in `views` computed for this query as of that point (the
/// stored views are not touched); without, [`open_views`].
pub fn open_views_at(cli: &Cli, at: &AtArg, views: &[&str]) -> Result<Archive> {
    let Some(point) = &at.at else { return open_views(cli) };
    let mut archive = open_existing(cli)?;
    let until = resolve_at(&archive, point)?;
    let all = crate::views::builtin();
    let chosen: Vec<&dyn crate::views::Projection> =
        all.iter().map(|v| v.as_ref()).filter(|v| views.contains(&v.name())).collect();
    let computed = EntriesBar::run(cli, "computing the views for --at", |progress| {
        crate::views::compute_at(&archive, &chosen, until, progress)
    })?;
    archive.set_views_at(computed);
    Ok(archive)
}

/// A progress bar on stderr when it is a terminal and `-q` was not given
/// (`len` 0: a counter without a known end). Never on a pipe or a file.
pub fn progress_bar(cli: &Cli, len: u64, template: &str) -> Option<indicatif::ProgressBar> {
    if !shows_progress(cli) {
        return None;
    }
    let bar = if len == 0 { indicatif::ProgressBar::new_spinner() } else { indicatif::ProgressBar::new(len) };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Whether progress is shown: stderr is a terminal and `-q` was not given.
pub fn shows_progress(cli: &Cli) -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && cli.quiet == 0
}

/// A progress bar over log entries, for a pass the library reports as (seq
/// reached, seq it goes to): made at the first report, so its length is
/// known, and only on a terminal ([`progress_bar`]).
pub struct EntriesBar {
    shown: bool,
    what: String,
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
}

impl EntriesBar {
    /// A bar that will say `what` it is doing.
    pub fn new(cli: &Cli, what: &str) -> EntriesBar {
        EntriesBar { shown: shows_progress(cli), what: what.to_string(), bar: std::sync::OnceLock::new() }
    }

    /// Seq `done` of `end` reached.
    pub fn report(&self, done: crate::model::Seq, end: crate::model::Seq) {
        if !self.shown {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let b = indicatif::ProgressBar::new(end.0);
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} entries, {eta} left")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(self.what.clone());
            b
        });
        bar.set_length(end.0);
        bar.set_position(done.0);
    }

    /// Runs `f` with a progress callback for a pass over log entries: a bar
    /// saying `what` on a terminal, cleared when `f` returns.
    pub fn run<T>(cli: &Cli, what: &str, f: impl FnOnce(crate::views::Progress<'_>) -> T) -> T {
        let bar = EntriesBar::new(cli, what);
        let report = |done, end| bar.report(done, end);
        let out = f(Some(&report));
        bar.finish();
        out
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

/// Wraps a write error on standard output.
pub fn stdout_error(e: std::io::Error) -> Error {
    Error::io("standard output", e)
}

/// Whether `e` is a write to a closed pipe (`cairn log | head`).
pub fn is_broken_pipe(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `e`, when it is a write to a closed pipe, as an error of its own (exit
/// 2): for output that is only worth having whole (an export, a file
/// asked for with `-o`), a reader that went away leaves it cut off, and
/// that is not a success as `cairn log | head` is. `what` names the output.
pub fn cut_off(e: Error, what: &str) -> Error {
    match e {
        Error::Io { path, source } if source.kind() == std::io::ErrorKind::BrokenPipe => Error::Io {
            path,
            source: std::io::Error::other(format!(
                "its reader closed it before {what} was written whole (broken pipe): what it read is cut off"
            )),
        },
        e => e,
    }
}

/// Sets up tracing on stderr: warnings by default, `-v` for more, `-q` for
/// errors only; `RUST_LOG` overrides both.
pub fn init_tracing(verbose: u8, quiet: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (q, _) if q > 0 => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("cairn={level}")));
    // Warnings name paths and echo inputs: written through the filter that
    // shows control characters (so without colour codes of their own).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ShownStderr)
        .without_time()
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// Standard error through [`output::ShowControls`], for log lines (each
/// written whole).
struct ShownStderr;

impl Write for ShownStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut shown = Vec::with_capacity(buf.len());
        let mut w = output::ShowControls::new(&mut shown);
        w.write_all(buf)?;
        w.finish()?;
        std::io::stderr().lock().write_all(&shown)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
