//! `cairn import`: rebuild an archive from an export file.

use crate::cli::{open_archive, stdout_error, Cli, Status};
use crate::error::Result;
use crate::store::{portable, OpenMode};
use std::io::Write;
use std::path::PathBuf;

/// Rebuild an empty archive from a file written by `cairn export`. The
/// file's digest is checked first; then every blob, id and chain head as it
/// is imported; the result has the export's head. Views are rebuilt.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The export file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `cairn import`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    if !args.file.is_file() {
        return Err(crate::error::Error::Usage(format!("{}: no such file", args.file.display())));
    }
    portable::check(&args.file)?;
    let mut archive = open_archive(cli, OpenMode::CreateIfMissing)?;
    let s = portable::import(&mut archive, &args.file)?;
    crate::views::catch_up(&archive, &crate::views::builtin())?;
    archive.flush()?;
    writeln!(out, "imported {} entries and {} blobs; head {} {}", s.entries, s.blobs, s.head.0, s.head.1)
        .map_err(stdout_error)?;
    Ok(Status::Ok)
}
