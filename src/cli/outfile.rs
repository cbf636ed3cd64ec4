//! Where a command's output goes: standard output, or a file given with
//! `-o FILE`, written whole or not at all (a temporary file beside it,
//! synced and renamed into place, as `export` does), never inside the
//! archive. A symbolic link is written through (the file it leads to is
//! replaced, its mode kept, the link kept); a device or a FIFO (`/dev/null`,
//! a named pipe) is written to as it stands, never replaced; a path to the
//! file standard output writes (`/dev/stdout`) is standard output.

use crate::cli::stdout_error;
use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
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
    // By path, and by the directories themselves (the archive reached
    // through a bind mount has another path, the same directory).
    let same_dir = |a: &Path| {
        use std::os::unix::fs::MetadataExt;
        let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(&archive)) else { return false };
        (x.dev(), x.ino()) == (y.dev(), y.ino())
    };
    if parent.starts_with(&archive) || parent.ancestors().any(same_dir) {
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

/// Where output to a file goes ([`destination`]).
enum Destination {
    /// This process's standard output (`/dev/stdout`, `/dev/fd/1`, or any
    /// path to the file it writes): written as `-` is.
    Stdout,
    /// A device or FIFO: written to as it stands (nothing to replace).
    InPlace,
    /// A regular file, or a new one, at this path with no symbolic link
    /// left in it: replaced whole through a temporary file beside it, its
    /// mode kept when it exists.
    Replace(PathBuf, Option<std::fs::Permissions>),
}

/// Whether `meta` is the file this process's standard output writes to.
fn is_our_stdout(meta: &std::fs::Metadata) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let ours = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok());
    ours.is_some_and(|o| (o.dev(), o.ino()) == (meta.dev(), meta.ino()))
}

/// Whether `file`, or a symbolic link on the way from it, names one of
/// this process's descriptors (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`): opening it again would not write where the
/// descriptor writes (its offset, its append mode).
fn through_descriptor(file: &Path) -> bool {
    let named = |p: &Path| {
        ["/dev/fd", "/proc/self/fd", "/proc/thread-self/fd"].iter().any(|d| p.starts_with(d))
            || ["/dev/stdout", "/dev/stderr", "/dev/stdin"].iter().any(|d| p == Path::new(d))
    };
    let mut p = file.to_path_buf();
    for _ in 0..40 {
        if named(&p) {
            return true;
        }
        match std::fs::read_link(&p) {
            Ok(to) => {
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// Whether `path` can only name a directory (`new/`, `new/.`, `..`).
fn names_a_directory(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    [&b"/"[..], b"/.", b"/.."].iter().any(|end| bytes.ends_with(end)) || bytes == b"." || bytes == b".."
}

/// Where writing to `file` goes, as the kernel resolves it (its symbolic
/// links, and those under `/proc` only the kernel can follow).
fn destination(file: &Path) -> Result<Destination> {
    // A name that is no file's (`new/`, `new/.`): the kernel would refuse it.
    if names_a_directory(file) {
        return Err(Error::Usage(format!("{} names a directory, not a file to write", file.display())));
    }
    match std::fs::metadata(file) {
        Ok(m) if is_our_stdout(&m) => Ok(Destination::Stdout),
        Ok(m) if m.is_file() && through_descriptor(file) => Err(Error::Usage(format!(
            "{} is a descriptor of this process open on a file; give the file's own path (or `-` for standard output)",
            file.display()
        ))),
        Ok(m) if m.is_file() => {
            let path = std::fs::canonicalize(file).map_err(|e| Error::io(file, e))?;
            // Its read and write bits, never set-user-id, set-group-id or
            // sticky: the new file is this process's, not its old owner's.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(m.permissions().mode() & 0o777);
            Ok(Destination::Replace(path, Some(mode)))
        }
        Ok(m) if m.is_dir() => {
            Err(Error::Usage(format!("{} is a directory, not a file to write", file.display())))
        }
        Ok(m) if m.file_type().is_socket() => Err(Error::Usage(format!(
            "{} is a socket, which cannot be opened as a file to write",
            file.display()
        ))),
        Ok(_) => Ok(Destination::InPlace),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new file: where the links that exist lead (a dangling one
            // names the file to make), in its directory made canonical.
            let p = dangling_end(file)?;
            let name = p
                .file_name()
                .ok_or_else(|| Error::Usage(format!("{} is not a file name", file.display())))?;
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(file, e))?;
            Ok(Destination::Replace(dir.join(name), None))
        }
        Err(e) => Err(Error::io(file, e)),
    }
}

/// The path the symbolic links of a `file` that does not resolve lead to
/// (each read in turn, relative to its directory): `file` itself when it
/// is no link.
fn dangling_end(file: &Path) -> Result<PathBuf> {
    let mut p = file.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| Error::io(file, e))?;
                if names_a_directory(&to) {
                    return Err(Error::Usage(format!(
                        "{} leads to {}, a directory's name",
                        file.display(),
                        to.display()
                    )));
                }
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::Usage(format!("{}: too many levels of symbolic links", file.display())))
}

/// Whether output to `file` goes to this process's standard output (a
/// command that also prints a report writes it as for `-`).
pub fn is_stdout(file: &Path) -> bool {
    file.as_os_str() == "-" || matches!(destination(file), Ok(Destination::Stdout))
}

/// Runs `write` on standard output (`file` absent or `-`, or a path to the
/// file standard output writes), or on a temporary file that replaces
/// `file` (through its symbolic links: the file they lead to, its mode
/// kept) only once everything was written and synced; on an error the
/// temporary file is removed and `file` is left as it was. A device or
/// FIFO is written to as it stands ([`destination`]).
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
    let (file, mode) = match destination(asked)? {
        Destination::Stdout => {
            write(out)?;
            return out.flush().map_err(stdout_error);
        }
        Destination::InPlace => return write_in_place(asked, write),
        Destination::Replace(file, mode) => (file, mode),
    };
    check_destination(archive, &file)?;
    let (tmp, f) = create_temporary(&file).map_err(|e| named(e, &file, asked))?;
    let result = (|| {
        if let Some(mode) = mode {
            f.set_permissions(mode).map_err(|e| Error::io(&tmp, e))?;
        }
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
/// FIFO: nothing to replace, and nothing to sync). A FIFO whose reader
/// goes away before the end is an error ([`crate::cli::cut_off`]): the
/// file asked for was not written whole.
fn write_in_place(file: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(file).map_err(|e| Error::io(file, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    let cut = |e| crate::cli::cut_off(e, "the output");
    write(&mut w).map_err(|e| cut(named(e, file, file)))?;
    w.flush().map_err(|e| cut(Error::io(file, e)))
}
