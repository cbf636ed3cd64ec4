//! The library's error type. Each variant names what it is about (a path, a
//! seq, an id, an input line) so that the final message needs no extra
//! context.

use crate::model::{EventId, Seq};
use std::fmt;
use std::path::PathBuf;

/// Where in an input a problem is: a line (text formats) or a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line number.
    Line(usize),
    /// 0-based byte offset.
    Byte(usize),
}

/// An input document that cannot be ingested. Nothing of it is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input as named on the command line (`-` for stdin).
    pub path: String,
    /// Where in it, when the problem has a place.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// A problem with the document as a whole.
    pub fn whole(path: &str, message: impl Into<String>) -> InputError {
        InputError { path: path.to_string(), location: None, message: message.into() }
    }

    /// A problem at a 1-based line.
    pub fn at_line(path: &str, line: usize, message: impl Into<String>) -> InputError {
        InputError { path: path.to_string(), location: Some(Location::Line(line)), message: message.into() }
    }

    /// A problem at a byte offset.
    pub fn at_byte(path: &str, byte: usize, message: impl Into<String>) -> InputError {
        InputError { path: path.to_string(), location: Some(Location::Byte(byte)), message: message.into() }
    }

    /// The message without the path (for JSON reports that carry the path
    /// separately).
    pub fn detail(&self) -> String {
        match self.location {
            None => self.message.clone(),
            Some(Location::Line(l)) => format!("line {l}: {}", self.message),
            Some(Location::Byte(b)) => format!("byte {b}: {}", self.message),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            None => write!(f, "{}: {}", self.path, self.message),
            Some(Location::Line(l)) => write!(f, "{}:{}: {}", self.path, l, self.message),
            Some(Location::Byte(b)) => write!(f, "{}: byte {}: {}", self.path, b, self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the archive's lock (and, when it recorded
    /// itself, which: `PID COMMAND`).
    #[error("archive {} is in use by another cairn process{}; `--wait SECONDS` waits for it to finish (reading commands wait 30 s by default)",
            .0.display(), .1.as_ref().map(|h| format!(": cairn {h}")).unwrap_or_default())]
    ArchiveInUse(PathBuf, Option<String>),
    /// The archive directory does not exist.
    #[error("no archive at {} (`cairn ingest` creates one; another archive is chosen with --archive PATH or the CAIRN_ARCHIVE environment variable)", .0.display())]
    NoArchive(PathBuf),
    /// `repair` found that the log files no longer close every entry the
    /// index recorded, or hold another history at its head: a rebuild would
    /// lose them, and nothing was changed.
    #[error("{}", repair_would_lose(*.recorded, .head, *.closes))]
    RepairWouldLose {
        /// The entries the index recorded.
        recorded: Seq,
        /// Its head there.
        head: crate::model::ChainHash,
        /// The last entry the log files close whole (past `recorded` when
        /// their chain is another at it).
        closes: Seq,
    },
    /// The directory exists but is not a cairn archive.
    #[error("{} is not a cairn archive: {reason}", .path.display())]
    NotAnArchive {
        /// The directory.
        path: PathBuf,
        /// Why it is not one.
        reason: String,
    },
    /// Stored data does not decode or contradicts itself.
    #[error("archive is corrupt: {0}")]
    Corrupt(String),
    /// sled itself failed (its files damaged: named with `cairn repair`).
    #[error("{}", sled_message(.0))]
    Sled(#[from] sled::Error),
    /// The archive's index (`db/`, derived from the log files) cannot be
    /// opened.
    #[error("the index of archive {} (db/) cannot be opened ({why}); `cairn repair` rebuilds it from the log files", .path.display())]
    IndexUnreadable {
        /// The archive.
        path: PathBuf,
        /// sled's message.
        why: String,
    },
    /// A filesystem operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An input document was rejected.
    #[error("{0}")]
    Input(#[from] InputError),
    /// Nothing matches what was asked for (an id prefix, an article, an
    /// author); the message says what.
    #[error("{0}")]
    NotFound(String),
    /// An id prefix matches several events.
    #[error("{prefix} is ambiguous; it matches:\n{}", .candidates.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    Ambiguous {
        /// The prefix as typed.
        prefix: String,
        /// Every matching id.
        candidates: Vec<EventId>,
    },
    /// A query matches several articles.
    #[error("{query:?} matches several articles:\n{}", .candidates.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    AmbiguousArticle {
        /// The query as typed.
        query: String,
        /// One line per matching article.
        candidates: Vec<String>,
    },
    /// A user-supplied value is malformed (`--tz`, an id prefix, ...).
    #[error("{0}")]
    Usage(String),
    /// An entry that should exist is missing.
    #[error("log entry {0} is missing")]
    MissingEntry(Seq),
    /// cairn itself failed (a worker thread panicked or stopped, a value
    /// could not be encoded or compressed): a bug to report, not damage to
    /// the archive, which is never called corrupt for it.
    #[error("cairn failed (a bug, not damage to the archive; please report it): {0}")]
    Internal(String),
    /// A run that commits as it goes (an ingest, a reparse) stopped on
    /// `source` after committing part of its work; `done` says which part,
    /// which stays in the archive, and `rejected` the inputs it had rejected
    /// by then (nothing of them appended), each said after `rejected_as`.
    #[error("{source} ({done})")]
    Stopped {
        /// What was committed before the error, as a sentence.
        done: String,
        /// Inputs rejected before the error.
        rejected: Vec<InputError>,
        /// What a rejected input's line starts with: `rejected`, `cannot
        /// re-parse`.
        rejected_as: &'static str,
        /// The error that stopped the run.
        source: Box<Error>,
    },
}

/// [`Error::is_io_fault`] of an I/O error as the system returned it.
pub fn io_fault(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{IsADirectory, NotADirectory, NotFound, UnexpectedEof};
    !matches!(e.kind(), NotFound | UnexpectedEof | IsADirectory | NotADirectory)
}

impl Error {
    /// Whether this is a read or write the system failed (an I/O error
    /// other than a file that is not there, ends early, or is a directory
    /// where a file should be, or the reverse, which say what the archive
    /// holds): the disk's fault, for the command to stop on (exit 2), never
    /// a finding that the archive is damaged.
    pub fn is_io_fault(&self) -> bool {
        matches!(self, Error::Io { source, .. } if io_fault(source))
    }

    /// Whether the error is a full disk (ENOSPC), from sled or a file.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Sled(sled::Error::Io(io)) | Error::Io { source: io, .. } => disk_full(io),
            Error::Stopped { source, .. } => source.is_disk_full(),
            _ => false,
        }
    }

    /// `source`, met by a run that says what it had committed before it
    /// (`done`) and rejected nothing.
    pub fn stopped(done: impl Into<String>, source: Error) -> Error {
        Error::Stopped {
            done: done.into(),
            rejected: Vec::new(),
            rejected_as: "rejected",
            source: Box::new(source),
        }
    }

    /// The error itself, without what a run had done before it
    /// ([`Error::Stopped`]).
    pub fn cause(&self) -> &Error {
        match self {
            Error::Stopped { source, .. } => source.cause(),
            e => e,
        }
    }

    /// What a run had committed before the error, if it says, and the
    /// inputs it had rejected (with the words their lines start with).
    pub fn done(&self) -> Option<(&str, &'static str, &[InputError])> {
        match self {
            Error::Stopped { done, rejected, rejected_as, .. } => Some((done, rejected_as, rejected)),
            _ => None,
        }
    }

    /// What sled said when it found its files damaged (the index, derived
    /// from the log files, can be rebuilt); `None` for any other error.
    pub fn index_damage(&self) -> Option<String> {
        match self {
            Error::Sled(e) if is_damage(e) => Some(sled_text(e)),
            Error::Stopped { source, .. } => source.index_damage(),
            _ => None,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

/// What a sled error says: damage to sled's files (which sled can find
/// only when it reads a page, long after the index was opened) names
/// `cairn repair`, which rebuilds the index from the log files.
fn sled_message(e: &sled::Error) -> String {
    let text = sled_text(e);
    if is_damage(e) {
        format!(
            "the index (db/) is damaged ({text}); `cairn repair` rebuilds it from the log files, \
             which hold the archive"
        )
    } else if let sled::Error::Io(io) = e {
        format!("the index (db/) could not be read or written: {}", os_words(io))
    } else {
        format!("storage error: {text}")
    }
}

/// An I/O error in the OS's words (`File too large (os error 27)`): sled
/// hands over a copy of the OS's error whose text is the original's debug
/// form (`Os { code: 27, kind: FileTooLarge, ... }`, sled's `Clone` for
/// its errors), or wraps it in another.
fn os_words(io: &std::io::Error) -> String {
    let inner = io.get_ref().and_then(|e| e.downcast_ref::<std::io::Error>());
    let text = io.to_string();
    let copied = text.strip_prefix("Os { code: ").and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<i32>().ok()
    });
    match io.raw_os_error().or_else(|| inner.and_then(std::io::Error::raw_os_error)).or(copied) {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => text,
    }
}

/// Whether sled says its files are damaged.
fn is_damage(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Corruption { .. } | sled::Error::ReportableBug(_))
}

/// sled's message, without the empty backtrace its corruption message
/// ends in.
pub(crate) fn sled_text(e: &sled::Error) -> String {
    let text = e.to_string();
    text.split(" backtrace").next().unwrap_or(&text).to_string()
}

/// Whether an I/O error is a full disk (ENOSPC).
pub fn disk_full(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28)
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// [`Error::RepairWouldLose`]'s message.
fn repair_would_lose(recorded: Seq, head: &crate::model::ChainHash, closes: Seq) -> String {
    let what = if closes >= recorded {
        format!(
            "the log files close {closes} entries, but their chain at entry {recorded} is not the index's head: the \
             index is of another archive, or of another history of this one (the log files replaced or \
             rewritten: `cairn verify --checkpoint {recorded}:{head}` checks them against it)"
        )
    } else {
        format!(
            "the log files close only {closes}: entries {} to {recorded} are not in them whole (cut, damaged, or \
             older files restored: `cairn verify` shows where)",
            closes.next()
        )
    };
    let instead = if closes >= recorded {
        "to index what the log files hold instead"
    } else {
        "to give those entries up and index what the log files hold"
    };
    format!(
        "the index (db/) records {recorded} entries (head {recorded} {head}); {what}. Nothing was changed: the \
         index still names them. Restore the log files from a backup; or, {instead}, run `cairn repair \
         --accept-loss` (the old index is then moved aside, not deleted)"
    )
}

#[cfg(test)]
mod sled_tests {
    use super::*;

    #[test]
    fn damage_sled_finds_on_a_read_names_repair() {
        let e = Error::Sled(sled::Error::Corruption { at: None, bt: () });
        let text = e.to_string();
        assert!(text.contains("`cairn repair` rebuilds it"), "{text}");
        assert!(!text.contains("backtrace"), "{text}");
        let other = Error::Sled(sled::Error::Unsupported("x".into()));
        assert!(other.to_string().starts_with("storage error: "), "{other}");
        // sled's I/O errors name its directory, in the OS's words (not
        // Rust's debug form of the error).
        let io = Error::Sled(sled::Error::Io(std::io::Error::from_raw_os_error(27)));
        assert_eq!(
            io.to_string(),
            "the index (db/) could not be read or written: File too large (os error 27)"
        );
        let wrapped = std::io::Error::other(std::io::Error::from_raw_os_error(27));
        let copied = sled::Error::Io(std::io::Error::from_raw_os_error(27)).clone();
        for e in [sled::Error::Io(wrapped), copied] {
            assert_eq!(
                Error::Sled(e).to_string(),
                "the index (db/) could not be read or written: File too large (os error 27)"
            );
        }
        // Only damage is rebuilt on open: sled's own words, without the
        // backtrace.
        assert_eq!(e.index_damage().as_deref(), Some("Read corrupted data at file offset None"));
        assert_eq!(other.index_damage(), None);
        assert_eq!(Error::Corrupt("x".into()).index_damage(), None);
    }
}
