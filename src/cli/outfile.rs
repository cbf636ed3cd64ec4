//! Where a command's output goes: standard output, or a file given with
//! `-o FILE`, written whole or not at all (a temporary file beside it,
//! synced and renamed into place, as `export` does), never inside the
//! archive.

use crate::cli::stdout_error;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

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

/// Runs `write` on standard output (`file` absent or `-`), or on a
/// temporary file that replaces `file` only once everything was written
/// and synced; on an error the temporary file is removed and `file` is
/// left as it was.
pub fn write_to(
    archive: &Path,
    file: Option<&Path>,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(file) = file.filter(|f| f.as_os_str() != "-") else {
        write(out)?;
        return out.flush().map_err(stdout_error);
    };
    check_destination(archive, file)?;
    let (tmp, f) = create_temporary(file)?;
    let result = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, file).map_err(|e| Error::io(file, e))
    })();
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // Writers name standard output in their errors, and writes to
            // the temporary file name it; either way it was the file asked for.
            Err(match e {
                Error::Io { path, source } if path.as_os_str() == "standard output" || path == tmp => {
                    Error::io(file, source)
                }
                e => e,
            })
        }
    }
}
