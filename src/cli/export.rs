//! `cairn export`: the whole archive as one portable, self-verifying file.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use crate::store::portable;
use std::io::Write;
use std::path::PathBuf;

/// Write the whole log with its raw captures to FILE: one zstd-compressed,
/// self-verifying file that does not depend on sled (docs/export.md). The
/// backup and migration path; `cairn import` reads it back.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to write (replaced atomically), or `-` for stdout.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `cairn export`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    if args.file.as_os_str() == "-" {
        let (_, w) = portable::export_to(&archive, &mut *out, &args.file)?;
        w.flush().map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    crate::cli::outfile::check_destination(&cli.archive, &args.file)?;
    let s = portable::export(&archive, &args.file)?;
    writeln!(
        out,
        "exported {} entries and {} blobs to {}; head {} {}",
        s.entries,
        s.blobs,
        args.file.display(),
        s.head.0,
        s.head.1
    )
    .map_err(stdout_error)?;
    Ok(Status::Ok)
}
