//! The `cairn` binary: parse arguments, set up logging, run, and map the
//! result to an exit code (0 ok, 1 problems found or inputs rejected, 2 usage
//! or operational error). A closed stdout pipe ends quietly.

use cairn::cli::{self, Cli, Status};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(cli.verbose, cli.quiet);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli::run(&cli, &mut out) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Problems) => ExitCode::from(1),
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: error: {e}");
            ExitCode::from(2)
        }
    }
}
