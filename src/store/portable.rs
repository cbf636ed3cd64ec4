//! The portable export format: the whole log with its blobs in one
//! self-verifying file, independent of sled (docs/export.md). It is the
//! backup and migration path: an archive rebuilt from it by
//! [`import`] has the same head.
//!
//! The file is a zstd-compressed stream of:
//!
//! ```text
//! magic    "cairn-export\n" then u32 BE version (1)
//! records  tag byte, u64 BE length, payload:
//!          'B' raw capture bytes (written before the first entry naming them)
//!          'E' one log entry as JSON (ids in hex, times canonical)
//!          'H' the head as JSON {"seq","hash","entries","blobs"}
//!          'Z' 32 bytes: BLAKE3 of every stream byte before this record
//! ```

use crate::error::{Error, Result};
use crate::model::{chain_step, BlobId, ChainHash, Event, LogEntry, Seq};
use crate::store::{Archive, HeadState, KindCounts};
use std::collections::HashSet;
use std::io::{BufReader, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"cairn-export\n";
/// An import commits its documents in groups of about this many entries,
/// or of blobs of about this many bytes (staged blobs are held in memory
/// until their group commits).
const IMPORT_GROUP: usize = 4096;
const IMPORT_GROUP_BYTES: usize = 64 << 20;
const VERSION: u32 = 1;

/// What an export or import moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortableSummary {
    /// Log entries.
    pub entries: u64,
    /// Blobs.
    pub blobs: u64,
    /// The head.
    pub head: (Seq, ChainHash),
    /// Events per kind.
    pub counts: KindCounts,
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> HashingWriter<W> {
    fn record(&mut self, tag: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut header = [0u8; 9];
        header[0] = tag;
        header[1..].copy_from_slice(&(payload.len() as u64).to_be_bytes());
        self.put(&header)?;
        self.put(payload)
    }
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// Writes the whole archive as an export stream to `out` (`name` for
/// errors), returning the summary and the writer; `progress` hears the seq
/// reached now and then.
pub fn export_to<W: Write>(
    archive: &Archive,
    out: W,
    name: &Path,
    progress: crate::views::Progress<'_>,
) -> Result<(PortableSummary, W)> {
    let end = archive.head().seq;
    let path = name;
    let io = |e: std::io::Error| Error::io(path, e);
    let encoder = zstd::stream::write::Encoder::new(out, 9).map_err(io)?;
    let mut w = HashingWriter { inner: encoder, hasher: blake3::Hasher::new() };
    w.put(MAGIC).map_err(io)?;
    w.put(&VERSION.to_be_bytes()).map_err(io)?;
    let mut summary = PortableSummary::default();
    let mut written: HashSet<BlobId> = HashSet::new();
    for entry in archive.entries_from(Seq(1))? {
        let entry = entry?;
        if let Event::Capture(c) = &entry.event {
            if written.insert(c.blob) {
                let raw = archive.store().get_blob(&c.blob)?;
                // A blob damaged in the pack files (its bytes no longer its
                // id) would make an export that no import takes: refused
                // here, where it can be named, not found by the import.
                if *blake3::hash(&raw).as_bytes() != *c.blob.as_bytes() {
                    return Err(Error::Corrupt(format!(
                        "seq {}: the stored bytes of capture blob {} do not hash to its id (damaged in the pack \
                         files; `cairn verify` names it): an export holding them would not import",
                        entry.seq, c.blob
                    )));
                }
                w.record(b'B', &raw).map_err(io)?;
                summary.blobs += 1;
            }
        }
        let json =
            serde_json::to_vec(&entry).map_err(|e| Error::Corrupt(format!("seq {}: {e}", entry.seq)))?;
        w.record(b'E', &json).map_err(io)?;
        summary.entries += 1;
        if let Some(p) = progress.filter(|_| entry.seq.0 % 1024 == 0) {
            p(entry.seq, end);
        }
    }
    let head = archive.head();
    summary.head = (head.seq, head.hash);
    summary.counts = head.counts;
    let trailer = serde_json::json!({
        "seq": head.seq.0, "hash": head.hash.to_hex(), "entries": summary.entries, "blobs": summary.blobs,
    });
    w.record(b'H', trailer.to_string().as_bytes()).map_err(io)?;
    let digest = *w.hasher.finalize().as_bytes();
    w.record(b'Z', &digest).map_err(io)?;
    let out = w.inner.finish().map_err(io)?;
    Ok((summary, out))
}

/// A record read back.
enum Record {
    Blob(Vec<u8>),
    Entry(Vec<u8>),
    Head(Vec<u8>),
    Digest([u8; 32], [u8; 32]),
}

struct RecordReader<R: Read> {
    inner: R,
    hasher: blake3::Hasher,
    offset: u64,
    path: String,
}

impl<R: Read> RecordReader<R> {
    fn bad(&self, what: impl std::fmt::Display) -> Error {
        Error::Usage(format!(
            "{}: not a valid cairn export at byte {} of the stream: {what}",
            self.path, self.offset
        ))
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<bool> {
        let mut read = 0;
        while read < buf.len() {
            match self.inner.read(&mut buf[read..]) {
                Ok(0) if read == 0 => return Ok(false),
                Ok(0) => return Err(self.bad("the file ends in the middle of a record (truncated)")),
                Ok(n) => read += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.bad(e)),
            }
        }
        Ok(true)
    }

    fn header(&mut self) -> Result<()> {
        let mut magic = [0u8; 17];
        if !self.fill(&mut magic)? || &magic[..13] != MAGIC {
            return Err(self.bad("missing the cairn-export header"));
        }
        let version = u32::from_be_bytes([magic[13], magic[14], magic[15], magic[16]]);
        if version != VERSION {
            return Err(self.bad(format!("export format version {version}; this cairn reads {VERSION}")));
        }
        self.hasher.update(&magic);
        self.offset += 17;
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Record>> {
        let mut header = [0u8; 9];
        if !self.fill(&mut header)? {
            return Ok(None);
        }
        let before = *self.hasher.finalize().as_bytes();
        let len = u64::from_be_bytes(header[1..].try_into().map_err(|_| self.bad("bad record header"))?);
        // Limits checked before allocating: a blob is at most the largest
        // document cairn reads, an entry at most the largest stored value.
        let limit = match header[0] {
            b'B' => crate::ingest::MAX_DOCUMENT_CEILING,
            b'E' => crate::store::envelope::MAX_VALUE as u64,
            b'H' => 1 << 20,
            b'Z' => 32,
            t => return Err(self.bad(format!("unknown record tag {t:#04x}"))),
        };
        if len > limit {
            return Err(self.bad(format!("a record of {len} bytes, over the limit of {limit} for its kind")));
        }
        let mut payload = vec![0u8; len as usize];
        if !self.fill(&mut payload)? && len > 0 {
            return Err(self.bad("the file ends in the middle of a record (truncated)"));
        }
        self.hasher.update(&header);
        self.hasher.update(&payload);
        self.offset += 9 + len;
        Ok(Some(match header[0] {
            b'B' => Record::Blob(payload),
            b'E' => Record::Entry(payload),
            b'H' => Record::Head(payload),
            b'Z' => {
                let stored: [u8; 32] =
                    payload.try_into().map_err(|_| self.bad("digest record is not 32 bytes"))?;
                Record::Digest(stored, before)
            }
            t => return Err(self.bad(format!("unknown record tag {t:#04x}"))),
        }))
    }
}

fn reader(path: &Path) -> Result<RecordReader<impl Read>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    reader_of(BufReader::new(file), &path.display().to_string())
}

/// A record reader over a compressed export stream. zstd's window is
/// bounded (128 MiB), so a stream asking for more is refused rather than
/// allocated.
fn reader_of<R: std::io::BufRead>(input: R, name: &str) -> Result<RecordReader<impl Read>> {
    let bad = |e: std::io::Error| Error::Usage(format!("{name}: not a valid cairn export: {e}"));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(bad)?;
    decoder.window_log_max(27).map_err(bad)?;
    let mut r =
        RecordReader { inner: decoder, hasher: blake3::Hasher::new(), offset: 0, path: name.to_string() };
    r.header()?;
    Ok(r)
}

/// Checks an export file's digest without importing anything.
pub fn check(path: &Path) -> Result<()> {
    let mut r = reader(path)?;
    let mut digest_ok = false;
    while let Some(record) = r.next()? {
        if digest_ok {
            return Err(r.bad("records after the digest"));
        }
        if let Record::Digest(stored, computed) = record {
            if stored != computed {
                return Err(r.bad("the digest does not match the contents (the file was altered or damaged)"));
            }
            digest_ok = true;
        }
    }
    if digest_ok {
        Ok(())
    } else {
        Err(r.bad("no digest record at the end (truncated)"))
    }
}

/// Imports an export stream into an empty archive in one pass, checking
/// everything `verify` checks of the log as it goes: dense seqs, ids that
/// hash from their events, the chain, no id twice, every id a capture or
/// merge names earlier in the file, every capture's blob in the file before
/// it, no entries left without their capture, and the head, counts and
/// digest at the end. The caller makes it all-or-nothing (an import into a
/// temporary directory renamed into place: [`import_into`]).
pub fn import(archive: &mut Archive, input: impl std::io::BufRead, name: &str) -> Result<PortableSummary> {
    if archive.head().seq != Seq(0) {
        return Err(Error::Usage(format!(
            "import needs an empty archive; this one has {} entries",
            archive.head().seq
        )));
    }
    let mut r = reader_of(input, name)?;
    let mut summary = PortableSummary::default();
    let mut segment: Vec<LogEntry> = Vec::new();
    let mut head = HeadState::default();
    let mut blobs: HashSet<BlobId> = HashSet::new();
    // Every id so far, with a fingerprint of its bucket (salted per import)
    // to check that a capture lists each event under its own article.
    let fingerprints = crate::store::buckets::Fingerprints::new();
    // (And its kind, for the merges' checks.)
    let mut ids: std::collections::HashMap<crate::model::EventId, (u64, crate::model::EventKind)> =
        std::collections::HashMap::new();
    let mut folded = std::collections::HashMap::new();
    // Blobs the captures name.
    let mut named: HashSet<BlobId> = HashSet::new();
    // Whole documents not yet committed, and their entries.
    let mut group: Vec<Vec<LogEntry>> = Vec::new();
    let mut group_entries = 0usize;
    // Bytes of blobs staged (held in memory until their group commits).
    let mut group_bytes = 0usize;
    let mut trailer: Option<serde_json::Value> = None;
    let mut digest_ok = false;
    while let Some(record) = r.next()? {
        if digest_ok {
            return Err(r.bad("records after the digest"));
        }
        match record {
            Record::Blob(raw) => {
                if trailer.is_some() {
                    return Err(r.bad("a blob after the head record"));
                }
                let id = BlobId(*blake3::hash(&raw).as_bytes());
                // Each blob once, and only blobs a capture names (below):
                // bytes the log does not hold would travel under its head.
                if !blobs.insert(id) {
                    return Err(r.bad(format!("blob {id} is in the file twice")));
                }
                archive.import_blob(&id, &raw)?;
                group_bytes += raw.len();
                summary.blobs += 1;
            }
            Record::Entry(json) => {
                if trailer.is_some() {
                    return Err(r.bad("an entry after the head record"));
                }
                let entry: LogEntry =
                    serde_json::from_slice(&json).map_err(|e| r.bad(format!("entry: {e}")))?;
                if entry.seq != head.seq.next() {
                    return Err(r.bad(format!("entry seq {} where {} was due", entry.seq, head.seq.next())));
                }
                if entry.event.id() != entry.id {
                    return Err(r.bad(format!("seq {}: the fields do not hash to the id", entry.seq)));
                }
                head.hash = chain_step(&head.hash, &entry.entry_hash());
                if head.hash != entry.head {
                    return Err(r.bad(format!("seq {}: the chain does not match", entry.seq)));
                }
                if let Some(missing) = entry.event.references().into_iter().find(|id| !ids.contains_key(id)) {
                    return Err(
                        r.bad(format!("seq {}: it names {missing}, which no earlier entry is", entry.seq))
                    );
                }
                let bucket = fingerprints.of(&crate::store::buckets::bucket_of(&entry.event));
                if let Event::Merge(m) = &entry.event {
                    // What `verify` checks of a merge.
                    if let Some(f) = crate::audit::merge_folds(entry.seq, entry.id, m, &mut folded).first() {
                        return Err(r.bad(format!("seq {}: merge: {}", entry.seq, f.message)));
                    }
                    let want = match m.kind {
                        crate::model::MergeKind::Comment => crate::model::EventKind::Comment,
                        crate::model::MergeKind::Article => crate::model::EventKind::Article,
                    };
                    if let Some((x, (_, k))) = std::iter::once(&m.keep)
                        .chain(&m.fold)
                        .filter_map(|x| ids.get(x).map(|v| (x, v)))
                        .find(|(_, (_, k))| *k != want)
                    {
                        return Err(r.bad(format!(
                            "seq {}: the {} merge names {x}, {}",
                            entry.seq,
                            m.kind.name(),
                            crate::audit::a_kind(*k)
                        )));
                    }
                }
                if ids.insert(entry.id, (bucket, entry.event.kind())).is_some() {
                    return Err(r.bad(format!("seq {}: id {} is in the file twice", entry.seq, entry.id)));
                }
                if let Event::Capture(c) = &entry.event {
                    if !blobs.contains(&c.blob) {
                        return Err(r.bad(format!("seq {}: blob {} is not in the file", entry.seq, c.blob)));
                    }
                    named.insert(c.blob);
                    for section in &c.articles {
                        let own =
                            fingerprints.of(&crate::store::buckets::article_bucket(section.key.as_str()));
                        let stray = section
                            .article
                            .iter()
                            .chain(&section.comments)
                            .find(|item| ids.get(&item.id).is_some_and(|(b, _)| *b != own));
                        if let Some(item) = stray {
                            return Err(r.bad(format!(
                                "seq {}: the capture lists {} under article {}, which it does not belong to",
                                entry.seq, item.id, section.key
                            )));
                        }
                    }
                }
                head.seq = entry.seq;
                head.counts.add(entry.event.kind());
                let ends_document = matches!(entry.event, Event::Capture(_) | Event::Merge(_));
                segment.push(entry);
                summary.entries += 1;
                if ends_document {
                    // Documents are committed a group at a time (the
                    // archive is a temporary one until every check passed:
                    // one commit, with its syncs, per document made 2,000
                    // merges 14 s of waiting on the disk).
                    group_entries += segment.len();
                    group.push(std::mem::take(&mut segment));
                    if group_entries >= IMPORT_GROUP || group_bytes >= IMPORT_GROUP_BYTES {
                        archive.import_segments(std::mem::take(&mut group), &head)?;
                        (group_entries, group_bytes) = (0, 0);
                    }
                }
            }
            Record::Head(json) => {
                if !segment.is_empty() {
                    return Err(r.bad(format!(
                        "{} entries after the last capture belong to no document",
                        segment.len()
                    )));
                }
                if let Some(stray) = blobs.iter().find(|b| !named.contains(*b)) {
                    return Err(r.bad(format!("blob {stray} is named by no capture in the file")));
                }
                if !group.is_empty() {
                    archive.import_segments(std::mem::take(&mut group), &head)?;
                }
                let v: serde_json::Value =
                    serde_json::from_slice(&json).map_err(|e| r.bad(format!("head: {e}")))?;
                let ok = v["seq"].as_u64() == Some(head.seq.0)
                    && v["hash"].as_str() == Some(head.hash.to_hex().as_str())
                    && v["entries"].as_u64() == Some(summary.entries)
                    && v["blobs"].as_u64() == Some(summary.blobs);
                if !ok {
                    return Err(r.bad(format!(
                        "the file's head {v} differs from its {} entries and {} blobs, head {}",
                        summary.entries,
                        summary.blobs,
                        head.checkpoint()
                    )));
                }
                trailer = Some(v);
            }
            Record::Digest(stored, computed) => {
                if stored != computed {
                    return Err(
                        r.bad("the digest does not match the contents (the file was altered or damaged)")
                    );
                }
                if trailer.is_none() {
                    return Err(r.bad("the digest comes before the head record"));
                }
                digest_ok = true;
            }
        }
    }
    if !digest_ok {
        return Err(r.bad("no digest record at the end (truncated)"));
    }
    summary.head = (head.seq, head.hash);
    summary.counts = archive.head().counts;
    archive.flush()?;
    Ok(summary)
}

/// Imports an export stream into a new archive at `target`, all or
/// nothing: into a temporary directory beside it, renamed into place only
/// when every check passed (an error, or a kill, leaves no archive at
/// `target`, and a retry works). `target` may not exist, or be an empty
/// directory, or an archive without entries. `views_progress` hears how
/// far building the views has come.
pub fn import_into(
    target: &Path,
    input: impl std::io::BufRead,
    name: &str,
    views_progress: crate::views::Progress<'_>,
) -> Result<PortableSummary> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // The import is renamed into the target's place at the end: a target
    // that is (or holds) the directory this runs in cannot be, and would
    // fail only after everything was read.
    if let (Ok(t), Ok(cwd)) = (std::fs::canonicalize(target), std::env::current_dir()) {
        if cwd.starts_with(&t) || t.parent().is_none() {
            return Err(Error::Usage(format!(
                "{} is the directory this runs in (or holds it): the import takes its place at the end; \
                 give the archive's path from outside it",
                target.display()
            )));
        }
    }
    // The import takes the target's name at the end: through a link it
    // would replace the link, not what it leads to.
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::Usage(format!(
            "{} is a symbolic link; give the directory it leads to",
            target.display()
        )));
    }
    let base = target.file_name().map_or_else(|| "archive".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{base}.importing-");
    remove_leftovers(&parent, &base);
    // The target is held for the whole import (by its archive's lock, or
    // the lock file an archive made there would use): nothing can be
    // written into it meanwhile, and be removed with it at the end.
    let held = if target.exists() {
        let entries: Vec<std::ffi::OsString> = std::fs::read_dir(target)
            .map_err(|e| Error::io(target, e))?
            .map(|e| e.map(|e| e.file_name()).map_err(|e| Error::io(target, e)))
            .collect::<Result<_>>()?;
        // (Empty, or holding only a lock file cairn wrote: a regular file
        // of `PID COMMAND`, or empty, not a link, not a user's file of that
        // name.)
        let only_lock = !entries.is_empty() && entries.iter().all(|n| n == "lock");
        if entries.is_empty() || (only_lock && cairns_lock_file(&target.join("lock"))) {
            Some(Held::Lock(crate::store::lock_archive(target)?, target.join("lock")))
        } else if only_lock {
            return Err(Error::Usage(format!(
                "{} holds only a file named lock that cairn did not write (a link, or text that is not \
                 a lock's); import needs an empty archive or directory",
                target.display()
            )));
        } else {
            let existing = Archive::open(target, crate::store::OpenMode::MustExist)?;
            if existing.head().seq != Seq(0) {
                return Err(Error::Usage(format!(
                    "import needs an empty archive; {} has {} entries",
                    target.display(),
                    existing.head().seq
                )));
            }
            // The empty archive is removed at the end: anything else in it
            // would go with it.
            if let Some(other) = entries.iter().find(|n| !ARCHIVE_OWN.iter().any(|own| *n == *own)) {
                return Err(Error::Usage(format!(
                    "{} holds {}, which is not the archive's; import needs an empty archive",
                    target.display(),
                    other.to_string_lossy()
                )));
            }
            Some(Held::Archive(Box::new(existing)))
        }
    } else {
        None
    };
    let listed = |dir: &Path| -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        names.sort();
        names
    };
    let before = held.as_ref().map(|_| listed(target));
    let tmp = parent.join(format!("{prefix}{}", std::process::id()));
    // Held from before the temporary archive exists until it has taken
    // the target's place: another import's `remove_leftovers` leaves it
    // alone even while no archive lock is held in it (being made, or
    // between its handle's drop and its rename).
    let _guard = Guard::take(parent.join(format!("{prefix}{}.lock", std::process::id())))?;
    let result = (|| {
        let mut archive = Archive::open(&tmp, crate::store::OpenMode::CreateIfMissing)?;
        let summary = import(&mut archive, input, name)?;
        crate::views::catch_up_with(&archive, &crate::views::builtin(), views_progress)?;
        archive.flush()?;
        Ok::<_, Error>(summary)
    })();
    // The finished archive's lock, taken again once its handle is gone,
    // keeps another import from taking it for a killed one's leftovers.
    let finished = result.and_then(|s| crate::store::lock_archive(&tmp).map(|lock| (s, lock)));
    let (summary, _tmp_lock) = match finished {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            // An empty directory is left empty (the lock file made in it
            // would make the retry take it for an archive).
            if let Some(Held::Lock(_, lock)) = &held {
                let _ = std::fs::remove_file(lock);
            }
            return Err(e);
        }
    };
    // The empty target moves aside (its lock still held: a process
    // waiting for it opens the imported archive when it tries again), the
    // import takes its name, and only then is the old one removed.
    let aside = parent.join(format!(".{base}.replaced-by-import-{}", std::process::id()));
    // Files that appeared in the empty target meanwhile would go with it.
    if let Some(before) = &before {
        if listed(target) != *before {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::Usage(format!(
                "files appeared in {} while this import ran; nothing of this import was kept, and they are as they were",
                target.display()
            )));
        }
    }
    if held.is_some() {
        // The imported archive keeps the target's permissions: a directory
        // made private stays so (it became 0755, the umask's).
        let kept = std::fs::metadata(target).and_then(|m| std::fs::set_permissions(&tmp, m.permissions()));
        if let Err(e) = kept {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::io(target, e));
        }
        if let Err(e) = std::fs::rename(target, &aside) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::io(target, e));
        }
    }
    if let Err(e) = std::fs::rename(&tmp, target) {
        let _ = std::fs::remove_dir_all(&tmp);
        // The empty target back in its place, unless another process made
        // one there meanwhile (then it stays aside, and goes with the next
        // import's leftovers: it held nothing).
        if held.is_some() {
            let _ = std::fs::rename(&aside, target);
        }
        return Err(Error::Usage(format!(
            "{} was created by another process while this import ran ({e}); nothing of this import was kept",
            target.display()
        )));
    }
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    drop(held);
    let _ = std::fs::remove_dir_all(&aside);
    // (Again: one killed just before this import began may not have been
    // gone yet then.)
    remove_leftovers(&parent, &base);
    Ok(summary)
}

/// Removes what imports into `parent/base` killed before left behind: their
/// temporary archives (not a running one's: its lock is held; a killed
/// one's is released with its process, even before that process is
/// reaped), and empty targets moved aside (their lock, too, held until
/// their import removes them).
fn remove_leftovers(parent: &Path, base: &str) {
    let prefix = format!(".{base}.importing-");
    let replaced = format!(".{base}.replaced-by-import-");
    let Ok(siblings) = std::fs::read_dir(parent) else { return };
    for s in siblings.flatten() {
        let name = s.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) && !name.starts_with(&replaced) {
            continue;
        }
        // Decided by locks alone (a process id says nothing of another
        // namespace's or host's process): a running import holds its guard
        // (`NAME.lock` beside its directory) and, once made, its archive's
        // lock; a directory without a lock file is no import's.
        let free = |lock: &Path| {
            std::fs::OpenOptions::new().write(true).open(lock).is_ok_and(|lock| lock.try_lock().is_ok())
        };
        if name.ends_with(".lock") {
            if free(&s.path()) && !parent.join(&name[..name.len() - ".lock".len()]).exists() {
                let _ = std::fs::remove_file(s.path());
            }
            continue;
        }
        let guard = parent.join(format!("{name}.lock"));
        if guard.exists() && !free(&guard) {
            continue;
        }
        if free(&s.path().join("lock")) {
            let _ = std::fs::remove_dir_all(s.path());
            let _ = std::fs::remove_file(&guard);
        }
    }
}

/// An import's guard file, locked while it runs, removed when it ends.
struct Guard(std::path::PathBuf, #[allow(dead_code)] std::fs::File);

impl Guard {
    fn take(path: std::path::PathBuf) -> Result<Guard> {
        let file = crate::store::open_lock_file(&path)?;
        file.try_lock()
            .map_err(|_| Error::Internal(format!("{} is held by another process", path.display())))?;
        Ok(Guard(path, file))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The top-level names of an archive's own files.
const ARCHIVE_OWN: &[&str] =
    &["cairn-archive", "lock", "db", "log", "captures", "index", "sets", "tree", "views"];

/// Whether `path` is a lock file as cairn writes them: a regular file (no
/// link) holding the one line `PID COMMAND\n`, COMMAND one of cairn's, or
/// empty (a cairn killed between making the file and writing that line
/// left it so).
fn cairns_lock_file(path: &Path) -> bool {
    const COMMANDS: &[&str] = &[
        "ingest",
        "log",
        "show",
        "head",
        "stats",
        "reparse",
        "articles",
        "thread",
        "author",
        "authors",
        "changes",
        "history",
        "cat",
        "diff",
        "site",
        "search",
        "table",
        "replay",
        "verify",
        "dedupe",
        "export",
        "import",
        "repair",
        "checkpoint",
        "prove",
        "verify-proof",
        "key",
        "completions",
        "man",
        "library",
    ];
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    if !meta.file_type().is_file() || meta.len() > 64 {
        return false;
    }
    if meta.len() == 0 {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let Some(line) = text.strip_suffix('\n') else { return false };
    line.split_once(' ').is_some_and(|(pid, command)| {
        (1..=10).contains(&pid.len())
            && pid.bytes().all(|b| b.is_ascii_digit())
            && COMMANDS.contains(&command)
    })
}

/// What holds an import's existing target ([`import_into`]).
enum Held {
    /// An empty archive, open.
    Archive(#[allow(dead_code)] Box<Archive>),
    /// An empty directory's lock file, locked, and its path.
    Lock(#[allow(dead_code)] std::fs::File, std::path::PathBuf),
}
