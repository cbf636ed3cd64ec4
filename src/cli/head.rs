//! `cairn head`: the checkpoint line.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use serde_json::json;
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
        writeln!(out, "{}", json!({"seq": head.seq.0, "hash": head.hash.to_hex()})).map_err(stdout_error)?;
    } else {
        writeln!(out, "{}", head.checkpoint()).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
