//! `cairn import`: rebuild an archive from an export file.

use crate::cli::output::{counts_json, with_fields};
use crate::cli::{retry_while_in_use, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::store::portable;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

/// Rebuild an archive from a file written by `cairn export` (`-` reads
/// stdin). All or nothing: the file is imported into a temporary directory
/// beside the archive, checked entry by entry as `verify` would (ids, chain,
/// references, duplicates, blobs, counts, the digest at the end), and renamed
/// into place only when all of it passed; an error or a kill leaves no
/// archive, and a retry works. The archive may not exist yet, or be empty.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The export file, or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print `{"file","entries","blobs","head":{"seq","hash"}}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cairn import`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let stdin = args.file.as_os_str() == "-";
    let name = args.file.display().to_string();
    let meta = match stdin {
        true => None,
        false => Some(std::fs::metadata(&args.file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Usage(format!("{name}: no such file")),
            _ => Error::io(&args.file, e),
        })?),
    };
    if meta.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(Error::Usage(format!("{name}: a directory, not an export file")));
    }
    // Standard input, a FIFO or a device: read once, with no length to show.
    let streamed = !meta.as_ref().is_some_and(|m| m.is_file());
    // A bar over the bytes read, then one over building the views.
    let bytes = match streamed {
        true => crate::cli::progress_bar(cli, 0, "reading {binary_bytes} of the export, {elapsed}"),
        false => crate::cli::progress_bar(
            cli,
            meta.as_ref().map_or(0, |m| m.len()),
            "reading the export {wide_bar} {binary_bytes}/{binary_total_bytes}, {eta} left",
        ),
    };
    let views_bar = crate::cli::EntriesBar::new(cli, "building the views");
    let tick = |done, end| {
        if let Some(b) = bytes.as_ref().filter(|b| !b.is_finished()) {
            b.finish_and_clear();
        }
        views_bar.report(done, end)
    };
    let read = |r: Box<dyn std::io::Read>| -> Box<dyn std::io::Read> {
        match &bytes {
            Some(b) => Box::new(b.wrap_read(r)),
            None => r,
        }
    };
    let s = if streamed {
        let source: Box<dyn std::io::Read> = match stdin {
            true => Box::new(std::io::stdin().lock()),
            false => Box::new(std::fs::File::open(&args.file).map_err(|e| Error::io(&args.file, e))?),
        };
        let mut input = std::io::BufReader::new(read(source));
        // An archive in use is found before anything is read: each retry
        // starts from the same untouched input.
        retry_while_in_use(cli, || portable::import_into(&cli.archive, &mut input, &name, Some(&tick)))
    } else {
        retry_while_in_use(cli, || {
            let file = std::fs::File::open(&args.file).map_err(|e| Error::io(&args.file, e))?;
            portable::import_into(
                &cli.archive,
                std::io::BufReader::new(read(Box::new(file))),
                &name,
                Some(&tick),
            )
        })
    };
    if let Some(b) = &bytes {
        b.finish_and_clear();
    }
    views_bar.finish();
    let s = s?;
    if args.json {
        // Everything is new: import fills an empty archive.
        let v = with_fields(
            counts_json(&s.counts, &Default::default(), s.head),
            json!({"file": args.file.display().to_string(), "entries": s.entries, "blobs": s.blobs}),
        );
        writeln!(out, "{v}").map_err(stdout_error)?;
    } else {
        writeln!(out, "imported {} entries and {} blobs; head {} {}", s.entries, s.blobs, s.head.0, s.head.1)
            .map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
