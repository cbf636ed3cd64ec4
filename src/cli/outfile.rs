//! Where a command's output goes: standard output, or a file given with
//! `-o FILE`, written whole or not at all (a temporary file beside it,
//! synced and renamed into place, as `export` does), never inside the
//! archive. A symbolic link is written through (the file it leads to is
//! replaced, the link kept); a device, a FIFO or a socket (`/dev/null`,
//! `/dev/stdout`, a named pipe) is written to as it stands, never replaced.

use crate::cli::stdout_error;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Refuses a destination inside the archive directory: it could replace one
/// of the archive's own files (`export ARCHIVE/log/00000000.seg`).
pub fn check_destination(archive: &Path, file: &Path) -> Result<()> {
    // The nearest directory above `file` that exists (a site's directory
    // may not exist yet).
    let mut parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    while !parent.exists() && parent != Path::new(".") {
        parent = match parent.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    let (Ok(archive), Ok(parent)) = (archive.canonicalize(), parent.canonicalize()) else {
        return Ok(()); // no archive yet: nothing to overwrite
    };
    if parent.starts_with(&archive) {
        return Err(Error::Usage(format!(
            "{} is inside the archive {}; write it elsewhere",
            file.display(),
            archive.display()
        )));
    }
    Ok(())
}

/// A new temporary file beside `file` (`.NAME.cairn-tmp-RANDOM`), created
/// exclusively: never an existing file, never through a link someone left
/// under that name.
pub fn create_temporary(file: &Path) -> Result<(std::path::PathBuf, std::fs::File)> {
    let name =
        file.file_name().ok_or_else(|| Error::Usage(format!("{} is not a file name", file.display())))?;
    for _ in 0..16 {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        let tmp = file.with_file_name(format!(
            ".{}.cairn-tmp-{}",
            name.to_string_lossy(),
            crate::model::ids::to_hex(&random)
        ));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // (Named by the file asked for: the temporary name is cairn's.)
            Err(e) => return Err(Error::io(file, e)),
        }
    }
    Err(Error::Internal(format!("no temporary file could be made beside {}", file.display())))
}

/// Where writing to `file` lands: `file` itself, or the path its symbolic
/// links lead to (each read in turn, relative to the link's directory);
/// `None` when that is no regular file or directory to be (a device, a
/// FIFO, a socket, or a descriptor's link under `/proc` or `/dev/fd`,
/// which only the kernel can follow): such a file is written to as it
/// stands.
fn landing(file: &Path) -> Result<Option<PathBuf>> {
    let special = |p: &Path| p.starts_with("/proc") || p.starts_with("/dev/fd");
    let mut p = file.to_path_buf();
    for _ in 0..40 {
        if special(&p) {
            return Ok(None);
        }
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| Error::io(file, e))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(m) if !m.is_file() && !m.is_dir() => return Ok(None),
            _ => return Ok(Some(p)),
        }
    }
    Err(Error::Usage(format!("{}: too many levels of symbolic links", file.display())))
}

/// Runs `write` on standard output (`file` absent or `-`), or on a
/// temporary file that replaces `file` (through its symbolic links: the
/// file they lead to) only once everything was written and synced; on an
/// error the temporary file is removed and `file` is left as it was. A
/// device, FIFO or socket is written to directly ([`landing`]).
pub fn write_to(
    archive: &Path,
    file: Option<&Path>,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(asked) = file.filter(|f| f.as_os_str() != "-") else {
        write(out)?;
        return out.flush().map_err(stdout_error);
    };
    let Some(file) = landing(asked)? else {
        return write_in_place(asked, write);
    };
    check_destination(archive, &file)?;
    let (tmp, f) = create_temporary(&file).map_err(|e| named(e, &file, asked))?;
    let result = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &file).map_err(|e| Error::io(&file, e))
    })();
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // Writers name standard output in their errors, and writes to
            // the temporary file name it; either way it was the file asked for.
            Err(named(e, &tmp, asked))
        }
    }
}

/// `e` naming `asked` where it names standard output, `cairn`'s own path
/// `own` for it (a temporary file, or where links led), or `asked` itself.
fn named(e: Error, own: &Path, asked: &Path) -> Error {
    match e {
        Error::Io { path, source }
            if path.as_os_str() == "standard output" || path == own || path == asked =>
        {
            Error::io(asked, source)
        }
        e => e,
    }
}

/// Runs `write` on `file` opened for writing as it stands (a device, a
/// FIFO: nothing to replace, and nothing to sync).
fn write_in_place(file: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(file).map_err(|e| Error::io(file, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    write(&mut w).map_err(|e| named(e, file, file))?;
    w.flush().map_err(|e| Error::io(file, e))
}
