//! The `cairn` binary: parse arguments, set up logging, run, and map the
//! result to an exit code (0 ok, 1 problems found or inputs rejected, 2 usage
//! or operational error). A closed stdout pipe ends quietly.

use cairn::cli::{self, Cli, Status};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(cli.verbose, cli.quiet);
    guard_index_close();
    let stdout = std::io::stdout();
    // A terminal sees each line as it is written; a pipe or a file gets
    // large writes (line buffering cost a write(2) per line: a quarter of
    // `search` printing 700k matches).
    let result = if std::io::IsTerminal::is_terminal(&stdout) {
        run(&cli, &mut stdout.lock())
    } else {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let result = run(&cli, &mut out);
        let flushed = std::io::Write::flush(&mut out).map_err(cli::stdout_error);
        match (result, flushed) {
            // A reader that went away (`| head`) does not change the status.
            (Ok(status), Err(e)) if cli::is_broken_pipe(&e) => Ok(status),
            (Ok(_), Err(e)) => Err(e),
            (result, _) => result,
        }
    };
    if let Some(why) = index_close_failure() {
        if let Err(e) = &result {
            if !cli::is_broken_pipe(e) {
                cairn::cli::output::to_stderr(format_args!("cairn: error: {}", e.cause()));
                done(e);
            }
        }
        cairn::cli::output::to_stderr(format_args!(
            "cairn: error: the index (db/) could not be synced to disk as the archive closed ({why}). The log \
             files, which hold the archive, were synced as each commit was made; the index and views are derived \
             from them and are checked against them when the archive is next opened (`cairn verify` reports \
             them, `cairn repair` rebuilds the index)."
        ));
        return ExitCode::from(2);
    }
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Problems) => ExitCode::from(1),
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is_disk_full() => {
            cairn::cli::output::to_stderr(format_args!(
                "cairn: error: the disk is full ({}). Free space and run the command again: every document \
                 acknowledged before is kept (`cairn verify --checkpoint SEQ:HEX` with a head saved before shows it); \
                 if the archive then does not open, `cairn repair` rebuilds its index from the log files.",
                e.cause()
            ));
            done(&e);
            ExitCode::from(2)
        }
        Err(e) => {
            cairn::cli::output::to_stderr(format_args!("cairn: error: {}", e.cause()));
            done(&e);
            ExitCode::from(2)
        }
    }
}

/// Says, on a line of its own, what a run that stopped had committed.
fn done(e: &cairn::Error) {
    if let Some(done) = e.done() {
        cairn::cli::output::to_stderr(format_args!("cairn: {done}"));
    }
}

/// Runs the command; a panic is passed on, after
/// [`guard_index_close`]'s case has been noted.
fn run(cli: &Cli, out: &mut dyn std::io::Write) -> cairn::Result<Status> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::run(cli, out))) {
        Ok(result) => result,
        // The index failed to sync as it closed: reported by `main`.
        Err(_) if index_close_failure().is_some() => Ok(Status::Ok),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// What sled said when its log could not be synced as the archive closed.
static INDEX_CLOSE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// sled 0.34.7 syncs its log file as its last handle is dropped and
/// unwraps the result (`pagecache/logger.rs`, `impl Drop for Log`): an
/// fsync that fails there (EIO) would end cairn with a panic (exit 101).
/// This notes it instead, for `main` to report as an error (exit 2); any
/// other panic is reported as Rust does.
fn guard_index_close() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_sled_log =
            info.location().is_some_and(|l| l.file().contains("sled-") && l.file().ends_with("logger.rs"));
        if !in_sled_log {
            return default(info);
        }
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "sled's log failed".into());
        // `Os { code: 5, kind: …, message: "Input/output error" }`: the message.
        let why =
            text.split("message: \"").nth(1).and_then(|m| m.split('"').next()).unwrap_or(&text).to_string();
        if let Ok(mut slot) = INDEX_CLOSE.lock() {
            slot.get_or_insert(why);
        }
    }));
}

fn index_close_failure() -> Option<String> {
    INDEX_CLOSE.lock().ok().and_then(|s| s.clone())
}
