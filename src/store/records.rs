//! Append-only record files: the log segments (`log/00000000.seg`, …) and
//! the raw captures (`captures/00000000.pack`, …) are appended to plain
//! files instead of sled, so that the bulk of the archive is written once,
//! sequentially, read back without passing through sled's page cache, and
//! never rewritten.
//!
//! A file is a sequence of records, each
//!
//! | bytes | field |
//! |---|---|
//! | 8 | the record's tag, u64 big-endian: a segment's first seq, a blob id's first 8 bytes |
//! | 4 | the payload length N, u32 big-endian |
//! | N | the payload: an enveloped `Vec<LogEntry>`, or a stored blob |
//!
//! The sled tree holds a 16-byte [`Locator`] per record (file number,
//! offset, length) and the committed end of the files ([`RecordsEnd`]),
//! written in the same atomic batch as the index and the head. A commit
//! appends its records and fsyncs the file *before* that batch, so a crash
//! leaves at most bytes past the committed end; a record is never
//! referenced before it is durable. When sled is behind the files (a crash
//! between the fsync and the batch, or a lost or stale `db/`), the store
//! catches sled up from the whole records past its end ([`RecordScan`]);
//! only what is left after the last whole record (a torn tail) is cut, and
//! it is moved aside to `NNNNNNNN.EXT.torn-SECONDS`, not deleted.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file is closed for appends once it reaches this size.
const ROLL_BYTES: u64 = 512 * 1024 * 1024;
/// Bytes of a record's header.
pub const HEADER: u64 = 12;

/// Where a segment's record lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locator {
    /// The file number.
    pub file: u32,
    /// The record's offset in the file (at its header).
    pub offset: u64,
    /// The payload length (without the header).
    pub len: u32,
}

impl Locator {
    /// The 16 stored bytes: file u32, offset u64, length u32, big-endian.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.file.to_be_bytes());
        b[4..12].copy_from_slice(&self.offset.to_be_bytes());
        b[12..].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Reads the 16 stored bytes.
    pub fn from_bytes(b: &[u8]) -> std::result::Result<Locator, String> {
        if b.len() != 16 {
            return Err(format!("segment locator of {} bytes, expected 16", b.len()));
        }
        let mut file = [0u8; 4];
        let mut offset = [0u8; 8];
        let mut len = [0u8; 4];
        file.copy_from_slice(&b[..4]);
        offset.copy_from_slice(&b[4..12]);
        len.copy_from_slice(&b[12..]);
        Ok(Locator {
            file: u32::from_be_bytes(file),
            offset: u64::from_be_bytes(offset),
            len: u32::from_be_bytes(len),
        })
    }
}

/// The end of the committed records: the file appended to last and its
/// committed length (ordered by file, then length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordsEnd {
    /// The file number.
    pub file: u32,
    /// Its committed length in bytes.
    pub len: u64,
}

impl RecordsEnd {
    /// The 12 stored bytes: file u32, length u64, big-endian.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.file.to_be_bytes());
        b[4..].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Reads the 12 stored bytes.
    pub fn from_bytes(b: &[u8]) -> std::result::Result<RecordsEnd, String> {
        if b.len() != 12 {
            return Err(format!("log end record of {} bytes, expected 12", b.len()));
        }
        let mut file = [0u8; 4];
        let mut len = [0u8; 8];
        file.copy_from_slice(&b[..4]);
        len.copy_from_slice(&b[4..]);
        Ok(RecordsEnd { file: u32::from_be_bytes(file), len: u64::from_be_bytes(len) })
    }
}

/// A directory of record files.
#[derive(Debug)]
pub struct RecordDir {
    root: PathBuf,
    /// File name extension (`seg`, `pack`).
    ext: &'static str,
    /// A file is closed for appends once it reaches this size.
    roll_bytes: u64,
    /// The open file being appended to, once the first commit of this
    /// process has cut off any uncommitted tail.
    writer: Option<(u32, File, u64)>,
    /// The tag of the records that close commits (segment files): a tail
    /// holding one is never cut.
    closing_tag: Option<u64>,
}

impl RecordDir {
    /// The record directory at `root`, files named `NNNNNNNN.EXT` (created
    /// on first append).
    pub fn new(root: PathBuf, ext: &'static str) -> RecordDir {
        RecordDir { root, ext, roll_bytes: ROLL_BYTES, writer: None, closing_tag: None }
    }

    /// Another handle on the same files, for reading only.
    pub fn read_only(&self) -> RecordDir {
        RecordDir {
            root: self.root.clone(),
            ext: self.ext,
            roll_bytes: self.roll_bytes,
            writer: None,
            closing_tag: self.closing_tag,
        }
    }

    /// Marks the records tagged `tag` as closing commits: a tail past the
    /// committed end that holds one is damage, never cut.
    pub fn with_closing_tag(mut self, tag: u64) -> RecordDir {
        self.closing_tag = Some(tag);
        self
    }

    /// Whether the bytes past `end` (in its file and the ones after) hold a
    /// whole record tagged `tag`. See [`RecordDir::whole_record_past`].
    pub fn tail_holds(&self, end: RecordsEnd, tag: u64) -> Result<bool> {
        self.whole_record_past(end, |t| t == tag)
    }

    /// Whether the bytes past `end` (in its file and the ones after) hold a
    /// whole record whose tag `is_tag` accepts: what was written there and
    /// cannot be a torn write. Looked for two ways:
    /// - walking the headers from `end` (record boundaries): a record whose
    ///   length fits, its payload an intact envelope, or one that fails its
    ///   check with check bytes not all zeros (a flipped bit in what was
    ///   written; all zeros are a write that stopped before its last bytes
    ///   reached the disk, a torn tail like a cut one);
    /// - searching the bytes for such a tag wherever it lies (a damaged
    ///   length throws the walk off its records, and hid every record
    ///   after it): a record whose payload is an intact envelope, or, when
    ///   its length runs past the file's end (a damaged length on the
    ///   file's last record), whose bytes to the end are one. Only intact
    ///   envelopes count here: a tag's bytes can lie inside a payload
    ///   (eight 0xFF bytes in a page stored raw), never an intact envelope
    ///   after them by chance.
    ///
    /// Reads a chunk at a time. A read the system fails (an I/O error) is
    /// an error, never an answer: "no whole record" would let a writer cut
    /// whole commits as a torn tail.
    pub fn whole_record_past(&self, end: RecordsEnd, is_tag: impl Fn(u64) -> bool) -> Result<bool> {
        use crate::store::envelope::{check_unwritten, could_start, intact, MAX_VALUE};
        let mut walk = self.scan_from(end);
        while let Some((_, t, payload)) = walk.next_header(MAX_VALUE as u64, &is_tag)? {
            if is_tag(t) && payload.is_some_and(|p| intact(&p) || !check_unwritten(&p)) {
                return Ok(true);
            }
        }
        const CHUNK: usize = 1 << 20;
        let mut n = end.file;
        loop {
            let path = self.path_of(n);
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if absent(&path, &e) => break,
                Err(e) => return Err(Error::io(&path, e)),
            };
            let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
            let mut at = if n == end.file { end.len } else { 0 };
            let mut buf = vec![0u8; CHUNK + HEADER as usize];
            while at < size {
                let want = (size - at).min(buf.len() as u64) as usize;
                file.seek(SeekFrom::Start(at))
                    .and_then(|_| file.read_exact(&mut buf[..want]))
                    .map_err(|e| Error::io(&path, e))?;
                let chunk = &buf[..want];
                for k in 0..want.saturating_sub(HEADER as usize + 1) {
                    let tag = u64::from_be_bytes(chunk[k..k + 8].try_into().unwrap_or_default());
                    // (A tag, then a payload that could begin an envelope:
                    // anything else is not read.)
                    if !is_tag(tag) || !could_start([chunk[k + 12], chunk[k + 13]]) {
                        continue;
                    }
                    let len =
                        u64::from(u32::from_be_bytes(chunk[k + 8..k + 12].try_into().unwrap_or_default()));
                    let start = at + k as u64 + HEADER;
                    let fits = start + len <= size;
                    let len = if fits { len } else { size - start };
                    if len > MAX_VALUE as u64 {
                        continue;
                    }
                    let mut payload = vec![0u8; len as usize];
                    file.seek(SeekFrom::Start(start))
                        .and_then(|_| file.read_exact(&mut payload))
                        .map_err(|e| Error::io(&path, e))?;
                    if intact(&payload) {
                        return Ok(true);
                    }
                }
                // The next chunk overlaps this one by a header's bytes and
                // two, so that a tag cut at the boundary is seen whole.
                at +=
                    if want as u64 >= size - at { want as u64 } else { (want - HEADER as usize - 1) as u64 };
            }
            n += 1;
        }
        Ok(false)
    }

    /// An error when whole commits lie past `end` (in its file or a later
    /// one): damage before them, never a tail to cut.
    pub fn refuse_damage_past(&self, end: RecordsEnd) -> Result<()> {
        let whole_past = match self.closing_tag {
            Some(tag) => self.tail_holds(end, tag)?,
            None => false,
        };
        if whole_past {
            return Err(Error::Corrupt(format!(
                "{} holds whole commits past the index's committed end (byte {}), after a record that does \
                 not fit: damage, not a torn tail; nothing was cut (`cairn verify` shows where)",
                self.path_of(end.file).display(),
                end.len
            )));
        }
        Ok(())
    }

    /// The path of file number `n`.
    pub fn path_of(&self, n: u32) -> PathBuf {
        self.root.join(format!("{n:08}.{}", self.ext))
    }

    /// Appends one record per `(tag, payload)` and fsyncs, returning
    /// each record's locator and the new end. `end` is the committed end
    /// (from the store): on the first append of a process, anything past it
    /// (an interrupted commit's bytes, or files after it) is removed first.
    pub fn append(
        &mut self,
        end: RecordsEnd,
        records: &[(u64, Vec<u8>)],
    ) -> Result<(Vec<Locator>, RecordsEnd)> {
        if self.writer.is_none() {
            self.refuse_damage_past(end)?;
            self.writer = Some(self.open_at(end)?);
        }
        let Some((mut file_no, mut file, mut len)) = self.writer.take() else {
            return Err(Error::Corrupt("record writer missing".into()));
        };
        if len >= self.roll_bytes {
            file.sync_all().map_err(|e| Error::io(self.path_of(file_no), e))?;
            file_no += 1;
            (file, len) = (self.create(file_no)?, 0);
        }
        let mut buf = Vec::with_capacity(records.iter().map(|(_, p)| p.len() + HEADER as usize).sum());
        let mut locators = Vec::with_capacity(records.len());
        for (first, payload) in records {
            let plen = u32::try_from(payload.len())
                .map_err(|_| Error::Corrupt(format!("record {first} is over 4 GiB")))?;
            locators.push(Locator { file: file_no, offset: len + buf.len() as u64, len: plen });
            buf.extend_from_slice(&first.to_be_bytes());
            buf.extend_from_slice(&plen.to_be_bytes());
            buf.extend_from_slice(payload);
        }
        let path = self.path_of(file_no);
        file.write_all(&buf).map_err(|e| Error::io(&path, e))?;
        file.sync_data().map_err(|e| Error::io(&path, e))?;
        len += buf.len() as u64;
        self.writer = Some((file_no, file, len));
        Ok((locators, RecordsEnd { file: file_no, len }))
    }

    /// Moves whatever lies past `end` aside (`NAME.torn-SECONDS`, files
    /// numbered past it too), whole commits included: what `repair
    /// --accept-loss` gave up, which the writers would otherwise refuse to
    /// cut. Returns whether anything was moved.
    pub fn set_aside_past(&self, end: RecordsEnd) -> Result<bool> {
        if !self.has_bytes_past(end)? {
            return Ok(false);
        }
        self.open_at(end)?;
        Ok(true)
    }

    /// Opens the file at the committed end for appending, moving what lies
    /// past it aside (the caller has refused damage first).
    fn open_at(&self, end: RecordsEnd) -> Result<(u32, File, u64)> {
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_suffix(self.ext))
                .and_then(|n| n.strip_suffix('.'))
                .and_then(|n| n.parse::<u32>().ok());
            if number.is_some_and(|n| n > end.file) {
                let aside = aside_name(&entry.path(), "torn");
                tracing::warn!(
                    "moving {} aside to {} (bytes of an interrupted commit)",
                    entry.path().display(),
                    aside.display()
                );
                fs::rename(entry.path(), &aside).map_err(|e| Error::io(entry.path(), e))?;
            }
        }
        let path = self.path_of(end.file);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let actual = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if actual < end.len {
            return Err(Error::Corrupt(format!(
                "{} is {actual} bytes, but the archive says {} bytes were committed",
                path.display(),
                end.len
            )));
        }
        if actual > end.len {
            let aside = aside_name(&path, "torn");
            tracing::warn!(
                "moving {} bytes past the committed end of {} aside to {} (an interrupted commit)",
                actual - end.len,
                path.display(),
                aside.display()
            );
            let mut tail = Vec::new();
            file.seek(SeekFrom::Start(end.len))
                .and_then(|_| (&mut file).take(actual - end.len).read_to_end(&mut tail))
                .map_err(|e| Error::io(&path, e))?;
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&aside)
                .map_err(|e| Error::io(&aside, e))?;
            out.write_all(&tail).and_then(|_| out.sync_all()).map_err(|e| Error::io(&aside, e))?;
            file.set_len(end.len).map_err(|e| Error::io(&path, e))?;
            file.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        file.seek(SeekFrom::Start(end.len)).map_err(|e| Error::io(&path, e))?;
        if actual == 0 {
            sync_dir(&self.root)?;
        }
        Ok((end.file, file, end.len))
    }

    fn create(&self, n: u32) -> Result<File> {
        let path = self.path_of(n);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.root)?;
        Ok(file)
    }

    /// A reader for records (keeps one open file).
    pub fn reader(&self) -> RecordReader<'_> {
        RecordReader { dir: self, open: None }
    }
}

/// Reads records by locator, keeping the last file open.
pub struct RecordReader<'a> {
    dir: &'a RecordDir,
    open: Option<(u32, File, u64)>,
}

/// Why a record could not be read ([`RecordReader::read`]): the system
/// failed to read the file (an I/O error: a fault of the disk or the
/// system, not of what the archive holds, which a retry may read), or
/// what is there is not the record (damage: a file cut, lost, or other
/// bytes). Shown as the reason alone, for audits.
#[derive(Debug)]
pub enum ReadFailure {
    /// Reading `path` failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The reason, as shown.
        why: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// What the file holds there is not the record.
    Damaged(String),
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Io { why, .. } | ReadFailure::Damaged(why) => f.write_str(why),
        }
    }
}

impl From<String> for ReadFailure {
    fn from(why: String) -> ReadFailure {
        ReadFailure::Damaged(why)
    }
}

impl ReadFailure {
    /// The error to return: an I/O error as [`Error::Io`] on its file
    /// (exit 2, never a finding that the archive is damaged), damage as
    /// `damaged` makes it of the reason.
    pub fn into_error(self, damaged: impl FnOnce(String) -> Error) -> Error {
        match self {
            ReadFailure::Io { path, source, .. } => Error::io(path, source),
            ReadFailure::Damaged(why) => damaged(why),
        }
    }

    /// An error reading `path`: a file that is not there, that ends before
    /// the record, or that is a directory, is damage; any other, an I/O
    /// error ([`Error::is_io_fault`]).
    pub(crate) fn of(path: &Path, why: String, source: std::io::Error) -> ReadFailure {
        match crate::error::io_fault(&source) {
            true => ReadFailure::Io { path: path.to_path_buf(), why, source },
            false => ReadFailure::Damaged(why),
        }
    }
}

impl RecordReader<'_> {
    /// The payload of the record at `loc`, checking that its header names
    /// `first` (its tag) and the locator's length. Errors are reasons (for
    /// audits), told apart as I/O errors or damage.
    pub fn read(&mut self, first: u64, loc: Locator) -> std::result::Result<Vec<u8>, ReadFailure> {
        let path = self.dir.path_of(loc.file);
        let on_file = |e: std::io::Error| ReadFailure::of(&path, format!("{}: {e}", path.display()), e);
        if self.open.as_ref().is_none_or(|(n, _, _)| *n != loc.file) {
            let file = File::open(&path).map_err(on_file)?;
            let size = file.metadata().map_err(on_file)?.len();
            self.open = Some((loc.file, file, size));
        }
        let Some((_, file, size)) = self.open.as_mut() else {
            return Err(ReadFailure::Damaged("no segment file".into()));
        };
        let end = loc.offset.checked_add(HEADER + u64::from(loc.len));
        if end.is_some_and(|end| end > *size) {
            // The file may have grown since this reader opened it: a
            // reader that outlives a commit (an ingest's view thread
            // catching up while the appending thread commits) is given
            // locators of records appended after. They were synced before
            // sled named them, so the file's size now is what counts.
            *size = file.metadata().map_err(on_file)?.len();
        }
        if end.is_none_or(|end| end > *size) {
            return Err(ReadFailure::Damaged(format!(
                "{} is {size} bytes; the locator of record {first} points past its end (byte {} + {})",
                path.display(),
                loc.offset,
                HEADER + u64::from(loc.len)
            )));
        }
        let failed = |e: std::io::Error| {
            ReadFailure::of(&path, format!("{} at byte {}: {e}", path.display(), loc.offset), e)
        };
        let mut header = [0u8; HEADER as usize];
        file.seek(SeekFrom::Start(loc.offset)).and_then(|_| file.read_exact(&mut header)).map_err(failed)?;
        let mut seq = [0u8; 8];
        let mut len = [0u8; 4];
        seq.copy_from_slice(&header[..8]);
        len.copy_from_slice(&header[8..12]);
        let (seq, len) = (u64::from_be_bytes(seq), u32::from_be_bytes(len));
        if seq != first || len != loc.len {
            return Err(ReadFailure::Damaged(format!(
                "{} at byte {}: the record header says {seq}, {len} bytes; the locator says {first}, {} bytes",
                path.display(),
                loc.offset,
                loc.len
            )));
        }
        // Read into capacity that is never zeroed first (a zeroed buffer
        // per record, then the header cut from its front, was a tenth of
        // a replay's log reading).
        let mut buf = Vec::with_capacity(len as usize);
        Read::take(&mut *file, u64::from(len)).read_to_end(&mut buf).map_err(failed)?;
        if buf.len() != len as usize {
            return Err(failed(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(buf)
    }
}

/// Where `path` is moved aside as `what` (`torn`, `damaged`, `replaced`):
/// `PATH.WHAT-SECONDS`, with `-N` when that exists (nothing moved aside
/// is ever overwritten).
pub(crate) fn aside_name(path: &Path, what: &str) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut n = 1;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(if n == 1 { format!(".{what}-{secs}") } else { format!(".{what}-{secs}-{n}") });
        let candidate = PathBuf::from(name);
        // (Nothing there, not even a link to nothing.)
        if fs::symlink_metadata(&candidate).is_err() {
            return candidate;
        }
        n += 1;
    }
}

/// A record a scan found: its locator, its tag, and its payload when asked
/// for.
pub type ScannedRecord = (Locator, u64, Option<Vec<u8>>);

/// Reads the whole records that follow a position in a record directory, in
/// order, across files, stopping before the first record that is not whole
/// (a torn tail) or at the end.
pub struct RecordScan<'a> {
    dir: &'a RecordDir,
    file: u32,
    offset: u64,
    open: Option<(File, u64)>,
    last_end: RecordsEnd,
}

impl RecordDir {
    /// A scan of the records after `end`.
    pub fn scan_from(&self, end: RecordsEnd) -> RecordScan<'_> {
        RecordScan { dir: self, file: end.file, offset: end.len, open: None, last_end: end }
    }

    /// Whether any byte lies past `end` (in its file or in a later one).
    pub fn has_bytes_past(&self, end: RecordsEnd) -> Result<bool> {
        // A file that is not there holds nothing; one whose size cannot be
        // read is an error, never taken for an empty file.
        let len = |n: u32| {
            let path = self.path_of(n);
            match fs::metadata(&path) {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if absent(&path, &e) => Ok(None),
                Err(e) => Err(Error::io(&path, e)),
            }
        };
        Ok(len(end.file)?.is_some_and(|l| l > end.len) || len(end.file + 1)?.is_some())
    }
}

/// Whether error `e` opening `path` says there is no such file: not found,
/// and no link there either (a link to a file that is gone, a disk not
/// mounted say, is an error, never the end of the records).
fn absent(path: &Path, e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound && fs::symlink_metadata(path).is_err()
}

impl RecordScan<'_> {
    /// The next whole record: its locator, tag and payload; `None` at the
    /// end or before a record that is not whole (`max_len` bounds a
    /// payload: a header claiming more is taken as a torn tail).
    pub fn next_record(&mut self, max_len: u64) -> Result<Option<(Locator, u64, Vec<u8>)>> {
        Ok(self
            .next_header(max_len, |_| true)?
            .map(|(loc, tag, payload)| (loc, tag, payload.unwrap_or_default())))
    }

    /// The end of the last record returned (the start, before any).
    pub fn position(&self) -> RecordsEnd {
        self.last_end
    }

    /// The next whole record's locator and tag, its payload read only when
    /// `want(tag)`; otherwise like [`RecordScan::next_record`].
    pub fn next_header(&mut self, max_len: u64, want: impl Fn(u64) -> bool) -> Result<Option<ScannedRecord>> {
        loop {
            if self.open.is_none() {
                let path = self.dir.path_of(self.file);
                // No such file is the end of the records; a file that
                // cannot be opened is an error, never taken for their end.
                let file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) if absent(&path, &e) => return Ok(None),
                    Err(e) => return Err(Error::io(&path, e)),
                };
                let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
                self.open = Some((file, size));
            }
            let Some((file, size)) = self.open.as_mut() else { return Ok(None) };
            if self.offset == *size {
                // (A link there, even to nothing, is a next file: its
                // open says what is wrong with it.)
                if fs::symlink_metadata(self.dir.path_of(self.file + 1)).is_err() {
                    return Ok(None);
                }
                self.file += 1;
                self.offset = 0;
                self.open = None;
                continue;
            }
            if self.offset + HEADER > *size {
                return Ok(None);
            }
            let path = self.dir.path_of(self.file);
            let mut header = [0u8; HEADER as usize];
            file.seek(SeekFrom::Start(self.offset))
                .and_then(|_| file.read_exact(&mut header))
                .map_err(|e| Error::io(&path, e))?;
            let mut tag = [0u8; 8];
            let mut len = [0u8; 4];
            tag.copy_from_slice(&header[..8]);
            len.copy_from_slice(&header[8..]);
            let (tag, len) = (u64::from_be_bytes(tag), u32::from_be_bytes(len));
            if u64::from(len) > max_len || self.offset + HEADER + u64::from(len) > *size {
                return Ok(None);
            }
            let payload = if want(tag) {
                let mut payload = vec![0u8; len as usize];
                file.read_exact(&mut payload).map_err(|e| Error::io(&path, e))?;
                Some(payload)
            } else {
                None
            };
            let loc = Locator { file: self.file, offset: self.offset, len };
            self.offset += HEADER + u64::from(len);
            self.last_end = RecordsEnd { file: self.file, len: self.offset };
            return Ok(Some((loc, tag, payload)));
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_an_uncommitted_tail_is_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = RecordDir::new(tmp.path().join("log"), "seg");
        let (locs, end) =
            dir.append(RecordsEnd::default(), &[(1, b"one".to_vec()), (2, b"second".to_vec())]).unwrap();
        assert_eq!(end, RecordsEnd { file: 0, len: 2 * HEADER + 9 });
        assert_eq!(dir.reader().read(2, locs[1]).unwrap(), b"second");
        assert!(dir.reader().read(3, locs[1]).unwrap_err().to_string().contains("says 2,"));
        // A crashed commit appended bytes the store never recorded.
        let (_, crashed) = dir.append(end, &[(3, b"lost".to_vec())]).unwrap();
        assert!(crashed.len > end.len);
        let mut again = RecordDir::new(tmp.path().join("log"), "seg");
        let (locs3, end3) = again.append(end, &[(3, b"three".to_vec())]).unwrap();
        assert_eq!(locs3[0].offset, end.len);
        assert_eq!(end3.len, end.len + HEADER + 5);
        assert_eq!(again.reader().read(1, locs[0]).unwrap(), b"one");
        assert_eq!(again.reader().read(3, locs3[0]).unwrap(), b"three");
        assert_eq!(fs::metadata(again.path_of(0)).unwrap().len(), end3.len);
    }

    /// A reader that outlives an append (an ingest's view thread catching
    /// up while the appending thread commits) reads the records appended
    /// after it opened the file; a locator past the file's real end is
    /// still refused.
    #[test]
    fn a_reader_reads_records_appended_after_it_opened_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = RecordDir::new(tmp.path().join("log"), "seg");
        let (first, end) = dir.append(RecordsEnd::default(), &[(1, b"one".to_vec())]).unwrap();
        let reading = dir.read_only();
        let mut reader = reading.reader();
        assert_eq!(reader.read(1, first[0]).unwrap(), b"one");
        let (later, _) = dir.append(end, &[(2, b"appended later".to_vec())]).unwrap();
        assert_eq!(reader.read(2, later[0]).unwrap(), b"appended later");
        let past = Locator { offset: later[0].offset + 100, ..later[0] };
        assert!(reader.read(2, past).unwrap_err().to_string().contains("points past its end"));
    }

    #[test]
    fn a_file_shorter_than_the_committed_end_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = RecordDir::new(tmp.path().join("log"), "seg");
        let (_, end) = dir.append(RecordsEnd::default(), &[(1, b"one".to_vec())]).unwrap();
        let mut again = RecordDir::new(tmp.path().join("log"), "seg");
        let err = again.append(RecordsEnd { file: 0, len: end.len + 1 }, &[]).unwrap_err();
        assert!(err.to_string().contains("committed"), "{err}");
    }

    #[test]
    fn files_past_the_committed_end_are_removed_whatever_the_extension() {
        let tmp = tempfile::tempdir().unwrap();
        for ext in ["seg", "pack"] {
            let root = tmp.path().join(ext);
            let mut dir = RecordDir::new(root.clone(), ext);
            let (_, end) = dir.append(RecordsEnd::default(), &[(1, b"one".to_vec())]).unwrap();
            // A crashed commit had rolled over to a new file.
            fs::write(dir.path_of(1), b"lost").unwrap();
            fs::write(root.join("notes.txt"), b"not ours").unwrap();
            let mut again = RecordDir::new(root.clone(), ext);
            again.append(end, &[(2, b"two".to_vec())]).unwrap();
            assert!(!again.path_of(1).exists(), "{ext}");
            assert!(root.join("notes.txt").exists(), "{ext}");
        }
    }

    #[test]
    fn a_full_file_rolls_over_and_reads_stay_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = RecordDir::new(tmp.path().join("log"), "seg");
        dir.roll_bytes = 16;
        let (first, end1) = dir.append(RecordsEnd::default(), &[(1, b"first record".to_vec())]).unwrap();
        let (second, end2) = dir.append(end1, &[(2, b"second".to_vec())]).unwrap();
        assert_eq!((first[0].file, second[0].file, second[0].offset), (0, 1, 0));
        assert_eq!(end2, RecordsEnd { file: 1, len: HEADER + 6 });
        let mut reader = dir.reader();
        assert_eq!(reader.read(1, first[0]).unwrap(), b"first record");
        assert_eq!(reader.read(2, second[0]).unwrap(), b"second");
        // Had the second commit not been recorded, the next writer drops its file.
        let mut again = RecordDir::new(tmp.path().join("log"), "seg");
        again.roll_bytes = 1 << 20;
        let (third, _) = again.append(end1, &[(2, b"again".to_vec())]).unwrap();
        assert_eq!((third[0].file, third[0].offset), (0, end1.len));
        assert!(!again.path_of(1).exists());
    }

    #[test]
    fn locators_round_trip() {
        let l = Locator { file: 3, offset: 1 << 40, len: 77 };
        assert_eq!(Locator::from_bytes(&l.to_bytes()).unwrap(), l);
        assert!(Locator::from_bytes(&[0; 15]).is_err());
        let e = RecordsEnd { file: 2, len: 99 };
        assert_eq!(RecordsEnd::from_bytes(&e.to_bytes()).unwrap(), e);
    }

    /// A whole record past the end is found wherever it lies: at a record
    /// boundary, behind a header whose length was damaged, across the
    /// search's chunk boundary; a tag's bytes inside other bytes, or a
    /// record whose check bytes were never written, are no record.
    #[test]
    fn whole_records_past_the_end_are_found_by_their_bytes() {
        const TAG: u64 = u64::MAX;
        let envelope = crate::store::envelope::seal_body_raw(b"a commit record's body");
        let record = |payload: &[u8]| -> Vec<u8> {
            let mut r = TAG.to_be_bytes().to_vec();
            r.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            r.extend_from_slice(payload);
            r
        };
        let holds = |tail: &[u8]| {
            let tmp = tempfile::tempdir().unwrap();
            let dir = RecordDir::new(tmp.path().to_path_buf(), "seg");
            std::fs::write(dir.path_of(0), [b"committed".as_slice(), tail].concat()).unwrap();
            dir.tail_holds(RecordsEnd { file: 0, len: 9 }, TAG).unwrap()
        };
        // Whole, at the boundary; its check bytes zeros: a torn write.
        assert!(holds(&record(&envelope)));
        let mut unwritten = envelope.clone();
        let n = unwritten.len();
        unwritten[n - 8..].fill(0);
        assert!(!holds(&record(&unwritten)));
        // At the boundary, a flipped bit: written, damaged, whole.
        let mut flipped = envelope.clone();
        flipped[3] ^= 1;
        assert!(holds(&record(&flipped)));
        // Behind a segment header whose length runs past the end, at every
        // offset around the search's 1 MiB chunks.
        for pad in
            [0usize, 1, 11, 12, 13, (1 << 20) - 30, (1 << 20) - 20, (1 << 20) - 14, (1 << 20) - 13, (1 << 20)]
        {
            let mut tail = 7u64.to_be_bytes().to_vec();
            tail.extend_from_slice(&u32::MAX.to_be_bytes());
            tail.extend(std::iter::repeat_n(0x5a, pad));
            tail.extend(record(&envelope));
            assert!(holds(&tail), "pad {pad}");
            // The tag's bytes and a length that fits, before bytes that
            // are no envelope: no record (and a flipped bit there, found
            // by the search, counts for nothing either).
            let mut tail = 7u64.to_be_bytes().to_vec();
            tail.extend_from_slice(&u32::MAX.to_be_bytes());
            tail.extend(std::iter::repeat_n(0x5a, pad));
            tail.extend(record(&flipped));
            assert!(!holds(&tail), "pad {pad}");
        }
        // The file's last record with its length damaged: read to the end.
        let mut last = record(&envelope);
        last[11] ^= 1;
        assert!(holds(&[b"xx".as_slice(), &last].concat()));
    }
}
