//! `cairn head`: the checkpoint line.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use std::io::Write;

/// Print `SEQ HEX`: the last seq and the chain head after it. Save it; `verify
/// --checkpoint` later proves the archive still extends it. An empty archive
/// prints seq 0 and 64 zeros.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print `{"seq":N,"hash":"HEX"}` instead.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cairn head`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    let head = archive.head();
    if args.json {
        writeln!(out, "{}", crate::cli::output::head_json(head.seq, &head.hash)).map_err(stdout_error)?;
    } else {
        writeln!(out, "{}", head.checkpoint()).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
