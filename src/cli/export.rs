//! `cairn export`: the whole archive as one portable, self-verifying file.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::{Error, Result};
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

/// Refuses a destination inside the archive directory: it could replace one
/// of the archive's own files (`export ARCHIVE/log/00000000.seg`).
fn check_destination(archive: &std::path::Path, file: &std::path::Path) -> Result<()> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let (Ok(archive), Ok(parent)) = (archive.canonicalize(), parent.canonicalize()) else {
        return Ok(()); // a missing directory fails when the file is written
    };
    if parent.starts_with(&archive) {
        return Err(Error::Usage(format!(
            "{} is inside the archive {}; write the export elsewhere",
            file.display(),
            archive.display()
        )));
    }
    Ok(())
}

/// Runs `cairn export`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    if args.file.as_os_str() == "-" {
        let (_, w) = portable::export_to(&archive, &mut *out, &args.file)?;
        w.flush().map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    check_destination(&cli.archive, &args.file)?;
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
