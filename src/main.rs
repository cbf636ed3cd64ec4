//! The `cairn` binary: parse arguments, set up logging, run, and map the
//! result to an exit code (0 ok, 1 problems found or inputs rejected, 2 usage
//! or operational error). A closed stdout pipe ends quietly.

use cairn::cli::{self, Cli, Status};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // A usage error echoes the arguments: shown, never obeyed, as
            // every message on stderr is.
            let text = e.render().to_string();
            cairn::cli::output::to_stderr(format_args!("{}", text.trim_end()));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(), // --help, --version: stdout, exit 0
    };
    cli::init_tracing(cli.verbose, cli.quiet);
    cairn::store::close::guard_close();
    let stdout = std::io::stdout();
    // A terminal sees each line as it is written; a pipe or a file gets
    // large writes (line buffering cost a write(2) per line: a quarter of
    // `search` printing 700k matches).
    let result = if std::io::IsTerminal::is_terminal(&stdout) {
        cli::run(&cli, &mut stdout.lock())
    } else {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let result = cli::run(&cli, &mut out);
        let flushed = std::io::Write::flush(&mut out).map_err(cli::stdout_error);
        match (result, flushed) {
            // A reader that went away (`| head`) does not change the status.
            (Ok(status), Err(e)) if cli::is_broken_pipe(&e) => Ok(status),
            (Ok(_), Err(e)) => Err(e),
            (result, _) => result,
        }
    };
    let code = exit_code(&cli, result);
    if let Some(why) = cairn::store::close::close_failure() {
        cairn::cli::output::to_stderr(format_args!(
            "cairn: error: the index (db/) could not be synced to disk as the archive closed ({why}). What this \
             command reported as committed was synced to the log files when it was committed; the index, \
             derived from them, is checked against them when the archive is next opened (`cairn verify` \
             reports it, `cairn repair` rebuilds it)."
        ));
        return ExitCode::from(2);
    }
    code
}

/// The exit code of `result`, its error (if any) reported on stderr.
fn exit_code(cli: &Cli, result: cairn::Result<Status>) -> ExitCode {
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Problems) => ExitCode::from(1),
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        // A file written outside the archive (`table -o`, `cat -o`, `site`,
        // `export`): the archive was only read.
        Err(cairn::Error::Io { path, source })
            if cairn::error::disk_full(&source)
                && cli.command.writes_output_file()
                && !path.starts_with(&cli.archive) =>
        {
            cairn::cli::output::to_stderr(format_args!(
                "cairn: error: the disk is full writing {} ({source}); that file was not written (what was \
                 there before is kept), and the archive was not changed. Free space and run the command again.",
                path.display()
            ));
            ExitCode::from(2)
        }
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

/// Says, on lines of their own, what a run that stopped had committed and
/// the inputs it had rejected.
fn done(e: &cairn::Error) {
    if let Some((done, rejected_as, rejected)) = e.done() {
        for r in rejected {
            cairn::cli::output::to_stderr(format_args!(
                "cairn: {rejected_as} {}",
                cairn::cli::output::printable(&r.to_string())
            ));
        }
        cairn::cli::output::to_stderr(format_args!("cairn: {}", cairn::cli::output::printable(done)));
    }
}
