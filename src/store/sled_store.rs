//! The on-disk [`Store`](super::Store): one archive directory holding a sled database
//! (`db/`), the log's segment files (`log/`), the raw captures' pack files
//! (`captures/`), a lock file and a marker file.
//!
//! Segments (the enveloped `Vec<LogEntry>` of each document) and blobs are
//! appended to record files ([`records`]); everything else
//! lives in one sled tree, `log`, under the key prefixes below, so that a
//! commit (one or several whole documents) is the record files' fsync (the
//! segments closed by a [`CommitRecord`]) followed by a single atomic
//! `apply_batch`. sled is derived: every open catches it up from the closed
//! commits past its end ([`SledStore::catch_up_from_files`]), and
//! [`SledStore::open_rebuilt`] rebuilds it (`cairn repair`).
//!
//! | key | value |
//! |---|---|
//! | `s` + first seq (u64 BE) | the [`Locator`]s of the segments of one commit, from the one at that seq: each the segment's first seq (u64 BE) and its locator, 24 bytes (an older cairn wrote a key per segment, its 16-byte locator) |
//! | `d` + bucket (32 bytes) | every (id, seq) of the bucket's events ([`buckets`]: one value per article) |
//! | `p` + parse key (32 bytes) | the enveloped [`ParsedDoc`] of a document ingested whose blob's record has no room for it (it holds 4), or of a format 5 archive (which kept every parse record so) |
//! | `m` + `head` | the enveloped [`HeadState`] |
//! | `m` + `end` | the committed end of the segment files ([`RecordsEnd`], 12 bytes) |
//! | `b` + page key (32 bytes) | the enveloped [`BlobId`] of the page's latest capture (a delta base) |
//! | `c` + blob id (32 bytes) | the blob's [`Locator`] in the pack files (16 bytes), then the parse records of the documents made from it, if any |
//! | `m` + `pack` | the committed end of the pack files ([`RecordsEnd`], 12 bytes) |
//! | `m` + `index` | the index layout (`2`: buckets and id runs; absent in an index an older cairn made, which kept `i` + id per event and is converted on open) |
//!
//! The global id index (id to seq, for `show PREFIX` and lookups) is not
//! in sled: it is the sorted runs of `index/` ([`IdRuns`]), written with
//! each commit, and rebuilt from the log files on open when they are
//! missing or behind. sled holds O(documents) keys, never one per event.
//!
//! The archive is locked with an OS file lock on `ARCHIVE/lock` before sled
//! opens, so a second cairn process gets a clear "in use" error instead of
//! sled's lock message.

use crate::error::{Error, Result};
use crate::model::{chain_step, BlobId, EventId, HexPrefix, LogEntry, Seq};
use crate::store::blobs;
use crate::store::blobs::BlobDir;
use crate::store::buckets;
use crate::store::envelope;
use crate::store::idruns::{self, IdRuns, IdSeq};
use crate::store::kv::Write;
use crate::store::records::{self, Locator, ReadFailure, RecordDir, RecordReader, RecordsEnd};
use crate::store::sets::{
    bucket_items, read_bucket, read_bucket_all, read_bucket_for, BucketWrites, BUCKET, PART, SETS_TREE,
    SET_FILES,
};
use crate::store::vlog::{SeparatedTree, ValueFiles};
use crate::store::BlobStore;
use crate::store::IndexStore;
use crate::store::LogStore;
use crate::store::ViewStore;
use crate::store::{
    BucketRead, HeadState, IndexRead, KvTree, OpenMode, ParseKey, ParseRecord, ParsedDoc, ParsedRead,
    SegmentRead,
};
use crate::transparency::file::TreeFile;
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The marker file's name and contents.
/// The file that marks a directory as an archive.
pub const MARKER: &str = "cairn-archive";
/// Format 6: one sled key per commit for its segments' locators, parse
/// records in their blob's record.
const MARKER_TEXT: &str = "cairn archive\nformat 6\n";
/// Format 6 whose log files may still end in segments no commit record
/// closes (an archive of format 2 or 3 not appended to since): rewritten
/// to plain format 6 before the first commit record is written.
const MARKER_TEXT_LEGACY: &str = "cairn archive\nformat 6\nlog not closed by commit records\n";
/// Format 7: format 6 whose log holds captures with the gap
/// `stray-line` (tribune parser 5), which a cairn of format 6
/// cannot decode (it would read their segments as damage). A format 6
/// archive is rewritten to format 7 before the first commit holding such
/// a capture ([`Formats::mark`]); the others stay format 6.
const MARKER_TEXT_V7: &str = "cairn archive\nformat 7\n";
/// Format 7 not closed by commit records (see [`MARKER_TEXT_LEGACY`]).
const MARKER_TEXT_V7_LEGACY: &str = "cairn archive\nformat 7\nlog not closed by commit records\n";
/// Format 5: a sled key per segment and per parse record. Read as it is;
/// rewritten to format 6 before the first key of format 6 is written (a
/// cairn of format 5 reads a commit's locators, or a blob's record with
/// its parse records, as damage: it must refuse the archive from then on).
const MARKER_TEXT_V5: &str = "cairn archive\nformat 5\n";
/// Format 5 not closed by commit records (see [`MARKER_TEXT_LEGACY`]).
const MARKER_TEXT_V5_LEGACY: &str = "cairn archive\nformat 5\nlog not closed by commit records\n";
/// Format 4: the index kept one sled key per event (converted on open).
const MARKER_TEXT_V4: &str = "cairn archive\nformat 4\n";
/// Format 3: v2 captures, commits not closed by commit records.
const MARKER_TEXT_V3: &str = "cairn archive\nformat 3\n";
/// Format 2: captures without completeness.
const MARKER_TEXT_V2: &str = "cairn archive\nformat 2\n";
// An archive of format 2 to 4 gets its marker rewritten to format 6 when
// this cairn opens it, before its index is converted: a cairn that kept one
// key per event would not see the duplicates of an index it did not write,
// so it must refuse the archive from then on.
/// sled's page cache bound. sled's memory use is several times this (it
/// keeps a record per page of the database besides), and 16 MiB was as
/// fast as 64 MiB on the bench corpus with 20-70 MB less peak RSS.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// sled tree names of view trees start with this, keeping them apart from
/// the `log` tree.
const VIEW_TREE_PREFIX: &str = "view:";

fn view_tree_name(name: &str) -> String {
    format!("{VIEW_TREE_PREFIX}{name}")
}

const SEGMENT: u8 = b's';
/// The per-event index key of an older cairn's index (converted on open).
const OLD_INDEX: u8 = b'i';
const INDEX_LAYOUT_KEY: &[u8] = b"mindex";
/// How view values are stored (`2`: large ones in `views/` value files,
/// behind a tag byte); views stored otherwise are dropped on open and
/// rebuilt by the next catch-up.
const VIEW_LAYOUT_KEY: &[u8] = b"mviews";
const VIEW_LAYOUT: &[u8] = b"2";
/// `4`: the articles' id sets in the `sets` tree, their values in
/// `sets/ids.{a,b}.vlog`, merges and captures of no article in 256 buckets
/// each; `3` had 65,536 of each (nearly a key per merge: rebuilt from the
/// log on open); `2` kept the sets in the `log` tree (moved out, then
/// rebuilt).
const INDEX_LAYOUT: &[u8] = b"4";
const WIDE_BUCKETS_LAYOUT: &[u8] = b"3";
const SETS_IN_LOG_LAYOUT: &[u8] = b"2";
const PARSED: u8 = b'p';
const PAGE_BASE: u8 = b'b';
const BLOB: u8 = b'c';
const PACK_END_KEY: &[u8] = b"mpack";
const HEAD_KEY: &[u8] = b"mhead";
/// The Merkle tree's stored hashes as of the last commit (`u64` BE): hashes
/// past it in `tree/hashes` may not have reached the disk.
const TREE_KEY: &[u8] = b"mtree";
const END_KEY: &[u8] = b"mend";

fn segment_key(seq: Seq) -> [u8; 9] {
    let mut k = [SEGMENT; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Bytes of one segment's entry in a [`segment_group`] value.
const GROUP_ENTRY: usize = 24;

/// Appends segment `first`'s entry (its first seq and its locator) to the
/// value of a commit's segment locators.
fn push_segment_entry(value: &mut Vec<u8>, first: u64, loc: Locator) {
    value.extend_from_slice(&first.to_be_bytes());
    value.extend_from_slice(&loc.to_bytes());
}

/// The segments whose locators are stored under `key` (`s` + first seq):
/// the segments of one commit, each with its first seq, in seq order (one
/// key per commit, not per document: in a first ingest of small pages each
/// sled key written per document was a few percent of the time). A 16-byte
/// value is the one segment's locator, as an older cairn stored it. An
/// error names the key's seq and why.
fn segment_group(key: &[u8], value: &[u8]) -> std::result::Result<Vec<(Seq, Locator)>, (Seq, String)> {
    let first =
        decode_seq(key.get(1..).unwrap_or_default(), "segment key").map_err(|e| (Seq(0), e.to_string()))?;
    if value.len() == 16 {
        return Locator::from_bytes(value).map(|loc| vec![(first, loc)]).map_err(|e| (first, e));
    }
    let bad = |why: String| (first, format!("the segment locators stored under seq {first}: {why}"));
    if value.is_empty() || !value.len().is_multiple_of(GROUP_ENTRY) {
        return Err(bad(format!("{} bytes, not a multiple of {GROUP_ENTRY}", value.len())));
    }
    let mut out: Vec<(Seq, Locator)> = Vec::with_capacity(value.len() / GROUP_ENTRY);
    for entry in value.chunks_exact(GROUP_ENTRY) {
        let (seq, loc) = entry.split_at(8);
        let seq = decode_seq(seq, "segment seq").map_err(|e| bad(e.to_string()))?;
        let loc = Locator::from_bytes(loc).map_err(bad)?;
        let expected = match out.last() {
            None => seq == first,
            Some((before, _)) => seq > *before,
        };
        if !expected {
            return Err(bad(format!("seq {seq} out of order")));
        }
        out.push((seq, loc));
    }
    Ok(out)
}

/// The parse record of capture `c` (event `id`): its parse key, and the
/// counts of its items (the capture itself included).
fn parse_record_of(id: EventId, c: &crate::model::Capture) -> (ParseKey, ParsedDoc) {
    (crate::store::parse_key_of(c), ParsedDoc { capture: id, counts: crate::store::capture_counts(c) })
}

/// The key of a page's latest-capture record (its delta base).
fn page_base_key(page: &[u8; 32]) -> [u8; 33] {
    let mut k = [PAGE_BASE; 33];
    k[1..].copy_from_slice(page);
    k
}

fn decode_seq(bytes: &[u8], what: &str) -> Result<Seq> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("{what}: expected 8 bytes, found {}", bytes.len())))?;
    Ok(Seq(u64::from_be_bytes(arr)))
}

/// An archive directory on disk.
pub struct SledStore {
    root: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    blobs: BlobDir,
    segments: RecordDir,
    /// The read half, which [`SledStore::reader`] hands out; it holds the
    /// id index's sorted runs (`index/`), shared with every reader.
    reader: SledReader,
    /// The index layout marker is not one this cairn knows: appends are
    /// refused until `cairn repair`.
    layout_problem: Option<String>,
    /// Page base records (page key, latest blob) staged since the last
    /// commit, in order.
    pending_bases: Vec<([u8; 32], BlobId)>,
    /// Blobs synced to the packs, and the packs' end, for the next commit.
    pending_blobs: Vec<(BlobId, Locator)>,
    pending_pack_end: Option<RecordsEnd>,
    /// The blob record this thread read last ([`blob_record_via`]).
    last_blob: LastBlob,
    /// The marker says format 2 or 3 (rewritten before the first commit):
    /// the log files may hold segments no commit record closes.
    legacy: bool,
    /// The marker's format, rewritten before what a newer one reads is
    /// written ([`Formats::mark`]).
    formats: Formats,
    /// Entries caught up from the log files when this store was opened.
    caught_up: u64,
    /// Whether the id sets were rebuilt from the log when it was opened.
    sets_rebuilt: bool,
    /// Why sled could not open `db/` when this store was opened (it was
    /// moved to `db.unreadable` and rebuilt from the log files).
    index_unreadable: Option<String>,
    /// The Merkle tree's stored hashes (`tree/`), derived from the log.
    merkle: TreeFile,
    /// The view layout record is not one this cairn knows.
    view_layout_problem: Option<String>,
    /// How the log and pack files disagree with the index, found when it
    /// was opened ([`SledStore::files_problem_of_index`]): writers refuse.
    files_problem: Option<String>,
    /// What `repair --accept-loss` moved aside, past the rebuilt ends.
    given_up: Vec<String>,
    /// The first error met bringing the derived files (the id runs, the
    /// Merkle tree's hashes and their record) up to the head when the
    /// store was opened: a warning then, rebuilt by the next open; `repair`
    /// fails on it.
    derived_failure: Option<Error>,
    _lock: File,
}

/// A progress callback: (done, in all).
pub type Progress<'a> = Option<&'a dyn Fn(u64, u64)>;

/// An index `cairn repair` moved aside: where it went, and the head it
/// recorded when it could still be read.
pub type ReplacedIndex = (PathBuf, Option<HeadState>);

/// The tag of a commit record in the segment files (seqs never reach it).
pub const COMMIT_TAG: u64 = u64::MAX;

/// The record that closes each commit in the segment files, written in the
/// same append and fsync as the commit's segments, before sled is told:
/// the seqs the commit holds, the chain head after it, the end of the pack
/// files it relies on (its captures' blobs lie before it), and the BLAKE3
/// of the commit's segment records as written (headers and payloads).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitRecord {
    /// The first seq of the commit.
    pub first: Seq,
    /// The last seq of the commit.
    pub last: Seq,
    /// The chain head after `last`.
    pub head: crate::model::ChainHash,
    /// The end of the pack files (file, length) the commit relies on.
    pub pack_end: (u32, u64),
    /// BLAKE3 of the commit's segment records, headers included.
    pub digest: [u8; 32],
}

/// BLAKE3 over records as they are written: tag (u64 BE), length (u32 BE),
/// payload, in order.
fn group_digest<'a>(records: impl Iterator<Item = (u64, &'a [u8])>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for (tag, payload) in records {
        h.update(&tag.to_be_bytes());
        h.update(&(payload.len() as u32).to_be_bytes());
        h.update(payload);
    }
    *h.finalize().as_bytes()
}

/// Writes and removes a small file in the archive: an error when the disk
/// is full.
fn probe_space(root: &Path) -> Result<()> {
    let probe = root.join(".space-probe");
    // (Made anew: never written through a link of that name.)
    let written = crate::store::create_fresh(&probe).and_then(|mut f| {
        std::io::Write::write_all(&mut f, &[0u8; 64 * 1024])?;
        f.sync_all()
    });
    let _ = fs::remove_file(&probe);
    match written {
        Err(e) if crate::error::disk_full(&e) => Err(Error::io(root, e)),
        _ => Ok(()),
    }
}

/// Encodes and compresses `segments` for the log files, in order, keyed by
/// their first seq. A commit of many segments is encoded on two threads
/// (half each): compressing them was a fifth of the appending thread's
/// work in an ingest.
fn encode_segments(segments: &[Vec<LogEntry>]) -> Result<Vec<(u64, Vec<u8>)>> {
    let encode = |part: &[Vec<LogEntry>]| -> Result<Vec<(u64, Vec<u8>)>> {
        part.iter()
            .filter_map(|entries| entries.first().map(|first| (first.seq.0, entries)))
            .map(|(seq, entries)| Ok((seq, envelope::encode_segment(entries)?)))
            .collect()
    };
    let entries: usize = segments.iter().map(Vec::len).sum();
    if segments.len() < 2 || entries < 512 {
        return encode(segments);
    }
    let (a, b) = super::on_two_halves(segments, encode, "a segment encoder panicked");
    let mut a = a?;
    a.extend(b?);
    Ok(a)
}

/// Entries a catch-up takes in per sled batch (each leaves a consistent
/// head); small under test, so that tests cross batches.
#[cfg(not(test))]
const CATCH_UP_BATCH: usize = 65_536;
#[cfg(test)]
const CATCH_UP_BATCH: usize = 64;

/// Where an index sled cannot open is moved (replacing an earlier one).
pub const UNREADABLE_INDEX: &str = "db.unreadable";

thread_local! {
    /// Set while this thread runs [`quietly`].
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, catching a panic inside it without the panic hook's report on
/// stderr (sled panics on some damaged files: that is damage cairn
/// reports, not a crash of its own). The process's hook is wrapped once,
/// to stay silent only for a thread inside `quietly`: other threads'
/// panics are reported as before, and the hook is never swapped back and
/// forth.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static WRAPPED: std::sync::Once = std::sync::Once::new();
    WRAPPED.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                hook(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result
}

/// Moves `root`'s `db/`, which sled cannot open or read (`why`), to
/// `db.unreadable`, replacing an earlier one (a file or a link there is
/// removed, never followed), with a warning: the next open rebuilds the
/// index from the log files, as it does a lost one.
fn move_unreadable(root: &Path, why: &str) -> Result<()> {
    // sled reports a write that failed on a full disk later as corrupt
    // data: say that the disk is full when it is, and move nothing.
    probe_space(root)?;
    let aside = root.join(UNREADABLE_INDEX);
    match fs::symlink_metadata(&aside) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(&aside),
        Ok(_) => fs::remove_file(&aside),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
    .map_err(|e| Error::io(&aside, e))?;
    fs::rename(root.join("db"), &aside).map_err(|e| Error::io(root.join("db"), e))?;
    tracing::warn!(
        "{}: the index (db/) could not be opened ({why}); it was moved to {} and is rebuilt from the log files \
         (it can be deleted)",
        root.display(),
        aside.display()
    );
    Ok(())
}

/// Opens sled's `db/` under `root` and its log tree. The outer error is
/// one to report (the archive in use, permissions, a full disk); the inner
/// one says why sled could not read what is there (its error, or a panic
/// inside sled), for [`move_unreadable`].
fn open_sled(root: &Path) -> Result<std::result::Result<(sled::Db, sled::Tree), String>> {
    let config = sled::Config::new().path(root.join("db")).cache_capacity(CACHE_BYTES);
    let opened = quietly(|| {
        let db = config.open()?;
        let tree = db.open_tree("log")?;
        Ok::<_, sled::Error>((db, tree))
    });
    match opened {
        Ok(Ok(pair)) => Ok(Ok(pair)),
        Ok(Err(sled::Error::Io(ref io))) if io.to_string().contains("could not acquire lock") => {
            // Our own record is in the lock file by now: name no one.
            Err(Error::ArchiveInUse(root.to_path_buf(), None))
        }
        // sled reads a page past the end of a cut file as an I/O error.
        Ok(Err(sled::Error::Io(io)))
            if matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData) =>
        {
            Ok(Err(io.to_string()))
        }
        Ok(Err(sled::Error::Io(io))) => {
            // Permissions, a file where a directory belongs: the index is
            // not damaged, and nothing is moved; the error says where.
            if !crate::error::disk_full(&io) {
                probe_space(root)?;
            }
            Err(Error::io(root.join("db"), io))
        }
        Ok(Err(e)) => Ok(Err(crate::error::sled_text(&e))),
        Err(_) => Ok(Err("sled panicked opening it".to_string())),
    }
}

/// Whether `entry` is a capture only a cairn of format 7 decodes (one
/// with the gap `stray-line`).
fn needs_format_7(entry: &LogEntry) -> bool {
    matches!(&entry.event, crate::model::Event::Capture(c)
        if c.gaps.as_ref().is_some_and(|g| g.contains(&crate::model::Gap::StrayLine)))
}

/// What the marker says of the archive's format, where a newer cairn
/// rewrites it before it writes what the older one would read as damage.
#[derive(Clone, Copy, Debug, Default)]
struct Formats {
    /// The marker says format 5: rewritten to format 6 before a key of
    /// format 6 is written (a commit's segment locators, a blob's record
    /// with its parse records).
    format_5: bool,
    /// The marker says format 7 ([`MARKER_TEXT_V7`]).
    format_7: bool,
}

impl Formats {
    /// Rewrites the marker of archive `root` before anything of format 6
    /// (or, when what is about to be written `needs_7`, a capture with the
    /// gap `stray-line`) is written: a format 5 marker to format 6, then
    /// to format 7 when needed, keeping the note that the log is not closed
    /// by commit records (`legacy`). An older cairn then refuses the
    /// archive, naming its format, instead of reading what it cannot
    /// decode as damage (and its `repair --accept-loss` cutting it off).
    fn mark(&mut self, root: &Path, legacy: bool, needs_7: bool) -> Result<()> {
        let rewrite = |text: &str, format: u8| {
            tracing::info!("{}: archive marker upgraded to format {format}", root.display());
            write_marker(&root.join(MARKER), text)
        };
        // (A format 7 marker is never format 5.)
        if self.format_5 {
            rewrite(if legacy { MARKER_TEXT_LEGACY } else { MARKER_TEXT }, 6)?;
            self.format_5 = false;
        }
        if needs_7 && !self.format_7 {
            rewrite(if legacy { MARKER_TEXT_V7_LEGACY } else { MARKER_TEXT_V7 }, 7)?;
            self.format_7 = true;
        }
        Ok(())
    }
}

/// Writes marker `text` durably (a temporary file renamed over it, and the
/// directory synced: a commit written after it, which an older cairn must
/// not read, never reaches the disk with the old marker).
fn write_marker(marker: &Path, text: &str) -> Result<()> {
    let tmp = marker.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = crate::store::create_fresh(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, marker)
    };
    write().map_err(|e| Error::io(marker, e))?;
    match marker.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => crate::store::records::sync_dir(dir),
        _ => crate::store::records::sync_dir(Path::new(".")),
    }
}

impl SledStore {
    /// Opens the archive at `root`, creating it when `mode` allows.
    pub fn open(root: &Path, mode: OpenMode) -> Result<SledStore> {
        SledStore::open_with(root, mode, false, false, None, None).map(|(s, _)| s)
    }

    /// Opens an existing archive with a new index: its `db/` (if any) is
    /// moved aside to `db.replaced-SECONDS` (returned), and sled is rebuilt
    /// from the log and pack files.
    /// `progress` is told (records done, records in all) as the log
    /// files are read.
    pub fn open_rebuilt(
        root: &Path,
        accept_loss: bool,
        progress: Progress<'_>,
    ) -> Result<(SledStore, Option<ReplacedIndex>)> {
        SledStore::open_with(root, OpenMode::MustExist, true, accept_loss, progress, None)
    }

    /// [`SledStore::open`] of an archive whose index an earlier attempt
    /// opened and then found damaged (`why`): the index is moved to
    /// `db.unreadable` and rebuilt from the log files, as one sled cannot
    /// open is.
    pub fn open_after_damage(root: &Path, mode: OpenMode, why: String) -> Result<SledStore> {
        SledStore::open_with(root, mode, false, false, None, Some(why)).map(|(s, _)| s)
    }

    fn open_with(
        root: &Path,
        mode: OpenMode,
        rebuild: bool,
        accept_loss: bool,
        progress: Progress<'_>,
        damaged: Option<String>,
    ) -> Result<(SledStore, Option<ReplacedIndex>)> {
        let marker = root.join(MARKER);
        if !root.exists() {
            if mode == OpenMode::MustExist {
                return Err(Error::NoArchive(root.to_path_buf()));
            }
            fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        }
        if !root.is_dir() {
            return Err(Error::NotAnArchive { path: root.to_path_buf(), reason: "not a directory".into() });
        }
        if !marker.exists() {
            // Empty, or holding only the lock of another process creating
            // the archive right now (it then holds the lock, below).
            let empty = fs::read_dir(root).map_err(|e| Error::io(root, e))?.flatten().all(|e| {
                ["lock", "cairn-archive", "cairn-archive.tmp"].iter().any(|n| e.file_name() == *n)
                        // (The empty `log/` a process creating the archive
                        // makes before its marker.)
                        || (e.file_name() == "log"
                            && fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none()))
            });
            // Another process may have made it an archive since the
            // marker was looked for.
            if !empty && !marker.exists() {
                return Err(Error::NotAnArchive {
                    path: root.to_path_buf(),
                    reason: format!("the directory is not empty and has no {MARKER} file"),
                });
            }
            if mode == OpenMode::MustExist && !marker.exists() {
                return Err(Error::NoArchive(root.to_path_buf()));
            }
        }
        let lock = crate::store::lock_archive(root)?;
        refuse_lost_log(root, rebuild && accept_loss)?;
        let mut legacy = false;
        let mut format_5 = false;
        let mut format_7 = false;
        if marker.exists() {
            let text = fs::read_to_string(&marker).map_err(|e| Error::io(&marker, e))?;
            if text == MARKER_TEXT_V2 || text == MARKER_TEXT_V3 {
                tracing::info!("{}: archive marker upgraded to format 6", root.display());
                write_marker(&marker, MARKER_TEXT_LEGACY)?;
                legacy = true;
            } else if text == MARKER_TEXT_LEGACY {
                legacy = true;
            } else if text == MARKER_TEXT_V5_LEGACY {
                (legacy, format_5) = (true, true);
            } else if text == MARKER_TEXT_V4 {
                tracing::info!("{}: archive marker upgraded to format 6", root.display());
                write_marker(&marker, MARKER_TEXT)?;
            } else if text == MARKER_TEXT_V5 {
                format_5 = true;
            } else if text == MARKER_TEXT_V7 {
                format_7 = true;
            } else if text == MARKER_TEXT_V7_LEGACY {
                (legacy, format_7) = (true, true);
            } else if text != MARKER_TEXT {
                return Err(Error::NotAnArchive {
                    path: root.to_path_buf(),
                    reason: format!(
                        "{MARKER} says {text:?}; this cairn reads formats 2 to 7 ({MARKER_TEXT_V7:?} and earlier)"
                    ),
                });
            }
        } else {
            // `log/` is there from the start: later, its absence beside
            // captures is a lost log ([`refuse_lost_log`]), never a first
            // commit cut before it made the directory.
            let log = root.join("log");
            fs::create_dir_all(&log).map_err(|e| Error::io(&log, e))?;
            write_marker(&marker, MARKER_TEXT)?;
        }
        let mut moved = None;
        if rebuild && root.join("db").exists() {
            // What the old index knew, when it can still be read: a rebuild
            // that reaches less reports the difference.
            let old_head = quietly(|| {
                let db = sled::Config::new().path(root.join("db")).open().ok()?;
                let v = db.open_tree("log").ok()?.get(HEAD_KEY).ok()??;
                envelope::decode::<HeadState>(&v, "head record").ok()
            })
            .ok()
            .flatten();
            // The log files must still close what the old index recorded:
            // a rebuild that reached less would put an index that has lost
            // acknowledged entries in place of one that still names them
            // (and the next writer would cut them off as a torn commit).
            // Nothing is changed unless the loss is accepted.
            if let (Some(old), false) = (&old_head, accept_loss) {
                let segments = RecordDir::new(root.join("log"), "seg").with_closing_tag(COMMIT_TAG);
                let packs = BlobDir::new(root.join("captures"));
                let closed = SledStore::closed_by_files(&segments, packs.packs(), legacy)?;
                let reaches = closed.iter().any(|&(seq, head)| seq == old.seq && head == old.hash);
                if old.seq.0 > 0 && !reaches {
                    let closes = closed.last().map_or(Seq(0), |(seq, _)| *seq);
                    return Err(Error::RepairWouldLose { recorded: old.seq, head: old.hash, closes });
                }
            }
            let aside = records::aside_name(&root.join("db"), "replaced");
            fs::rename(root.join("db"), &aside).map_err(|e| Error::io(root.join("db"), e))?;
            moved = Some((aside, old_head));
        }
        // An index sled cannot open (its error, or a panic inside sled on a
        // damaged file: sled's snapshot after a kill -9 is one known case),
        // or one an earlier attempt found damaged once open (sled reads a
        // damaged page only when asked for it), is derived data: it is moved
        // aside to `db.unreadable` and rebuilt from the log files, as a lost
        // `db/` is, with a warning. A full disk, a lock or another I/O error
        // is reported instead.
        if let Some(why) = &damaged {
            move_unreadable(root, why)?;
        }
        let mut index_unreadable = damaged;
        let (db, tree) = match open_sled(root)? {
            Ok(pair) => pair,
            Err(why) => {
                move_unreadable(root, &why)?;
                let pair = open_sled(root)?
                    .map_err(|why| Error::IndexUnreadable { path: root.to_path_buf(), why })?;
                index_unreadable = Some(why);
                pair
            }
        };
        let runs = Arc::new(RwLock::new(IdRuns::open(&root.join("index"), true)?));
        let sets =
            SeparatedTree::new(db.open_tree(SETS_TREE)?, ValueFiles::new(root.join("sets")).get(SET_FILES)?);
        // (Parse records under keys of their own: an older cairn's, or
        // past a blob record's room.)
        let legacy_parses = tree.scan_prefix([PARSED]).next().is_some();
        let mut store = SledStore {
            root: root.to_path_buf(),
            db: db.clone(),
            tree: tree.clone(),
            blobs: BlobDir::new(root.join("captures")),
            segments: RecordDir::new(root.join("log"), "seg").with_closing_tag(COMMIT_TAG),
            reader: SledReader {
                db,
                tree,
                segments: RecordDir::new(root.join("log"), "seg").with_closing_tag(COMMIT_TAG),
                runs,
                values: crate::store::vlog::ValueFiles::new(root.join("views")),
                sets,
                legacy_parses,
            },
            layout_problem: None,
            pending_bases: Vec::new(),
            pending_blobs: Vec::new(),
            pending_pack_end: None,
            last_blob: LastBlob::default(),
            legacy,
            formats: Formats { format_5, format_7 },
            caught_up: 0,
            sets_rebuilt: false,
            index_unreadable,
            merkle: TreeFile::memory(),
            view_layout_problem: None,
            files_problem: None,
            given_up: Vec::new(),
            derived_failure: None,
            _lock: lock,
        };
        // The id sets, before anything reads or adds to them. Only layouts
        // this cairn knows are touched (another is reported, and appends
        // refused, by `convert_old_index`).
        let mut layout = store.tree.get(INDEX_LAYOUT_KEY)?.map(|v| v.to_vec());
        if !rebuild && layout.as_deref() == Some(SETS_IN_LOG_LAYOUT) {
            store.move_sets_out_of_the_log_tree()?;
            layout = Some(WIDE_BUCKETS_LAYOUT.to_vec());
        }
        // The id sets are derived, so they are rebuilt from the log. The
        // layout record goes first (flushed): a crash while the sets are
        // emptied leaves an index marked for the rebuild.
        let empty_sets = |store: &mut SledStore| -> Result<()> {
            store.tree.remove(INDEX_LAYOUT_KEY)?;
            store.db.flush()?;
            store.reader.sets.clear()
        };
        if rebuild {
            store.runs_mut().clear()?;
            store.reader.sets.clear()?;
        } else if layout.as_deref() == Some(WIDE_BUCKETS_LAYOUT) {
            // Merges and captures of no article were filed in 65,536
            // buckets each, now 256.
            tracing::info!(
                "{}: re-filing the articles' id sets (index layout 3 -> 4); rebuilding them from the log",
                root.display()
            );
            empty_sets(&mut store)?;
        } else if layout.as_deref() == Some(INDEX_LAYOUT) && store.reader.sets.is_stale()? {
            // The id sets point into value files they no longer match (a
            // `db/` restored from a backup, value files lost, emptied or
            // replaced).
            tracing::warn!(
                "{}: the articles' id sets no longer match their value files (sets/ids.*.vlog); rebuilding them from the log",
                root.display()
            );
            empty_sets(&mut store)?;
            store.sets_rebuilt = true;
        } else if layout.is_none() && store.reader.sets.holds_keys()? {
            // An index marked for the rebuild (above) that did not finish:
            // whatever the sets hold is thrown away and rebuilt.
            store.reader.sets.clear()?;
            store.sets_rebuilt = true;
        }
        let caught = store.catch_up_from_files(progress)?;
        store.caught_up = caught;
        if rebuild && accept_loss {
            // What the rebuild could not take in was given up: moved aside
            // (never deleted), so that writers can append again.
            let log_end = store.log_end()?;
            let pack_end = read_end(&store.tree, PACK_END_KEY)?;
            for (dir, end) in [(&store.segments, log_end), (store.blobs.packs(), pack_end)] {
                if dir.has_bytes_past(end)? {
                    store.given_up.push(format!("{} past byte {}", dir.path_of(end.file).display(), end.len));
                    dir.set_aside_past(end)?;
                }
            }
        }
        if caught > 0 && !rebuild {
            tracing::warn!(
                "{}: the index (db/) was behind the log files; caught up {caught} entries from them",
                root.display()
            );
        }
        store.convert_old_index(caught)?;
        let rebuilt = store.reconcile_runs();
        if rebuilt > 0 && !rebuild {
            tracing::info!("{}: id index rebuilt from the log files for {rebuilt} entries", root.display());
        }
        // Hashes past what the index recorded are hashed again (an index
        // rebuilt, lost or older trusts none of them).
        store.convert_view_layout()?;
        let trusted = match rebuild {
            true => 0,
            false => store
                .tree
                .get(TREE_KEY)
                .ok()
                .flatten()
                .and_then(|v| decode_seq(&v, "tree record").ok())
                .map_or(0, |s| s.0),
        };
        store.merkle = TreeFile::open(&root.join("tree"), trusted)?;
        store.reconcile_tree();
        store.files_problem = store.files_problem_of_index()?;
        Ok((store, moved))
    }

    /// The archive directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What of the log and pack files disagrees with the index: a file
    /// shorter than the index says was committed to it, or missing; whole
    /// commits past the committed end that the catch-up on open could not
    /// take in (a record before them damaged, or an index of another
    /// history). `None` when they agree.
    fn files_problem_of_index(&self) -> Result<Option<String>> {
        if let Some(why) = self.files_short_of_index()? {
            return Ok(Some(why));
        }
        let end = read_end(&self.tree, END_KEY).unwrap_or_default();
        if let Some(why) = self.head_not_in_files(end)? {
            return Ok(Some(why));
        }
        // (An older cairn's segments, before commit records, are whole
        // when they hold an intact envelope: segments past the catch-up's
        // end, tagged with seqs past the head, that it could not take in.)
        let head = self.head().map_or(0, |h| h.seq.0);
        let older_segment_past = self.legacy
            && self
                .segments
                .whole_record_past(end, |t| t != COMMIT_TAG && t > head && t - head <= 1 << 24)?;
        if older_segment_past || self.segments.tail_holds(end, COMMIT_TAG)? {
            return Ok(Some(format!(
                "{} holds whole commits past the end the index records (byte {}) that could not be taken in: a \
                 record before them is damaged, or the index is of another history of the archive",
                self.segments.path_of(end.file).display(),
                end.len
            )));
        }
        Ok(None)
    }

    /// A log or pack file shorter than the index says was committed to it,
    /// or missing.
    fn files_short_of_index(&self) -> Result<Option<String>> {
        for (dir, key, what) in [(&self.segments, END_KEY, "log"), (self.blobs.packs(), PACK_END_KEY, "pack")]
        {
            let Ok(end) = read_end(&self.tree, key) else { continue }; // (verify names it)
            if end == RecordsEnd::default() {
                continue;
            }
            for n in 0..=end.file {
                let path = dir.path_of(n);
                let size = match fs::metadata(&path) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(Some(format!(
                            "{} is missing, but the index says {what} records were committed to it: the index names \
                             entries the files do not hold",
                            path.display()
                        )))
                    }
                    Err(e) => return Err(Error::io(&path, e)),
                };
                if n == end.file && size < end.len {
                    return Ok(Some(format!(
                        "{} is {size} bytes, but the index says {} bytes were committed to it: the index names \
                         entries the files do not hold (cut, or older files restored)",
                        path.display(),
                        end.len
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Whether the log files end, where the index says they do, with the
    /// index's head: the record there is the commit record of its last
    /// seq and chain head (or, written before commit records, the segment
    /// holding it ends there with that head). An index of another archive,
    /// or of another history of this one, names bytes the files hold
    /// otherwise; its writers would cut what the files hold past its end.
    /// What cannot be read here (a head or locator that does not decode, a
    /// file that is short) is left to the other checks and to `verify`.
    fn head_not_in_files(&self, end: RecordsEnd) -> Result<Option<String>> {
        let Ok(head) = self.head() else { return Ok(None) };
        if head.seq.0 == 0 {
            return Ok(None);
        }
        let Some(Ok(Ok((_, loc)))) = segments_from(&self.tree, head.seq)?.next() else { return Ok(None) };
        let other = |what: &str| {
            Some(format!(
                "the index's head (seq {} {}) is not what the log files hold where it says they end ({} byte {}: \
                 {what}): the index (db/) is of another archive or another history of this one, or the log files \
                 were replaced",
                head.seq,
                head.hash,
                self.segments.path_of(end.file).display(),
                end.len
            ))
        };
        let segment_end =
            RecordsEnd { file: loc.file, len: loc.offset + records::HEADER + u64::from(loc.len) };
        let mut scan = self.segments.scan_from(segment_end);
        let after = match scan.next_header(envelope::MAX_VALUE as u64, |t| t == COMMIT_TAG) {
            Ok(next) => next,
            Err(_) => return Ok(None), // an I/O error: the reads that need it say so
        };
        if let Some((_, COMMIT_TAG, Some(payload))) = after {
            if scan.position() != end {
                return Ok(other("its last commit record ends elsewhere"));
            }
            return Ok(match envelope::decode::<CommitRecord>(&payload, "commit record") {
                Ok(c) if c.last == head.seq && c.head == head.hash => None,
                Ok(c) => other(&format!("the commit record there closes seq {} {}", c.last, c.head)),
                // Appends after it would lie past damage that a rebuild from
                // the log files cannot read past: their entries would be
                // in the index alone.
                Err(e) => Some(format!(
                    "the commit record of the index's head (seq {}) at the end of the log files is damaged ({e}): \
                     what is appended after it could not be rebuilt from the log files",
                    head.seq
                )),
            });
        }
        if segment_end != end {
            return Ok(other("no commit record ends there"));
        }
        // An older cairn's segment, closed by no commit record.
        Ok(match self.reader.segment_of(head.seq) {
            Ok(entries) => match entries.last() {
                Some(e) if e.seq == head.seq && e.head == head.hash => None,
                _ => other("the segment there ends with another entry"),
            },
            Err(_) => None, // unreadable: verify names it
        })
    }

    /// What the log files close whole, read from the files alone, as a
    /// catch-up from an empty index would take it in: the seq and chain
    /// head at the end of each commit (and of each segment an older cairn
    /// wrote before commit records existed). A commit counts when its
    /// record decodes, starts right after what came before, names the
    /// BLAKE3 of the segment records before it as they lie in the files,
    /// and the pack files reach the end it relies on; an older segment when
    /// it decodes and its entries continue the chain. Stops at the first
    /// that does not. What a rebuilt index could reach at most (the rebuild
    /// also checks every entry's id and every blob).
    fn closed_by_files(
        segments: &RecordDir,
        packs: &RecordDir,
        legacy: bool,
    ) -> Result<Vec<(Seq, crate::model::ChainHash)>> {
        // Where the commit records are (as the catch-up's first pass).
        let (commits, _) = commit_records_from(segments, RecordsEnd::default())?;
        let legacy_tail = commits.is_empty() && legacy;
        let mut next_commit = commits.iter();
        let mut expected = next_commit.next();
        let mut head = (Seq(0), crate::model::ChainHash::GENESIS);
        let mut digest = blake3::Hasher::new();
        let mut closed = Vec::new();
        let mut scan = segments.scan_from(RecordsEnd::default());
        while let Some((_, tag, payload)) = scan.next_record(envelope::MAX_VALUE as u64)? {
            if tag == COMMIT_TAG {
                let Some(c) = expected else { break };
                let whole = c.first == head.0.next()
                    && c.last >= c.first
                    && *digest.finalize().as_bytes() == c.digest
                    && packs_reach(packs, c.pack_end);
                if !whole {
                    break;
                }
                head = (c.last, c.head);
                closed.push(head);
                digest = blake3::Hasher::new();
                expected = next_commit.next();
                continue;
            }
            if expected.is_some_and(|c| tag >= c.first.0) {
                digest.update(&tag.to_be_bytes());
                digest.update(&(payload.len() as u32).to_be_bytes());
                digest.update(&payload);
                continue;
            }
            if expected.is_none() && !legacy_tail {
                break; // after the last commit record: an unclosed commit
            }
            // An older cairn's segment: taken in when it continues the chain.
            let Ok(entries) = envelope::decode_segment(&payload, "segment") else { break };
            let mut at = head;
            for e in &entries {
                if e.seq != at.0.next() || crate::model::chain_step(&at.1, &e.entry_hash()) != e.head {
                    break;
                }
                at = (e.seq, e.head);
            }
            if entries.is_empty() || at.0 != entries[entries.len() - 1].seq {
                break;
            }
            head = at;
            closed.push(head);
        }
        Ok(closed)
    }

    /// Brings sled up to the log files. The segment records past sled's
    /// committed end are indexed when a commit record closes them (their
    /// seqs, head and digest match it) or, for segments an older cairn
    /// wrote before commit records existed, when they continue the log; in
    /// every case their entries must continue sled's head (dense seqs, ids
    /// that hash from their events, an unbroken chain) and their captures'
    /// blobs lie in the pack files. A crash between a commit's fsync and
    /// its sled batch, or a lost or stale `db/`, leaves exactly that. Stops
    /// before the first record that does not fit (a torn tail, which the
    /// next writer moves aside), and never takes in segments after the last
    /// commit record of an archive that writes them (an unclosed, torn
    /// commit). Batches each leave a consistent head. Returns the number of
    /// entries caught up. Parse records are rebuilt from the captures (each
    /// records its parse inputs and item counts), so a byte-identical
    /// re-ingest still skips parsing.
    pub fn catch_up_from_files(&mut self, progress: Progress<'_>) -> Result<u64> {
        let start = self.log_end()?;
        if !self.segments.has_bytes_past(start)? {
            return Ok(0);
        }
        let initial = match self.head() {
            Ok(h) => h.seq,
            Err(e) => {
                // Nothing can be taken in on top of a head that does not
                // decode; reads go on, `verify` names it.
                self.layout_problem = Some(format!("the index was not caught up with the log files: {e}"));
                return Ok(0);
            }
        };
        // Pass 1: where the commit records are.
        let (commits, total) = commit_records_from(&self.segments, start)?;
        let legacy_tail = commits.is_empty() && self.legacy;
        let mut head = self.head()?;
        let pack_start = read_end(&self.tree, PACK_END_KEY)?;
        let mut packs: Option<HashMap<u64, Vec<Locator>>> = None;
        let mut pack_end = pack_start;
        let mut end = start;
        let mut in_batch = 0usize;
        let mut batch = sled::Batch::default();
        // The records of the blobs this catch-up touched: locator and parse
        // records (each write of one holds all of them, the last written
        // wins).
        let mut blob_records: HashMap<BlobId, (Locator, BlobParses)> = HashMap::new();
        // The commit being read: its writes, its segments' locators (first
        // seq, value), head, pack end and digest.
        let mut group: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut group_segments: Option<(Seq, Vec<u8>)> = None;
        let mut group_items: Vec<([u8; 32], EventId, Seq)> = Vec::new();
        let mut bucket_writes = BucketWrites::default();
        let mut group_head = head;
        let mut group_pack_end = pack_end;
        let mut digest = blake3::Hasher::new();
        // Whether the commit being read, and the batch to apply, hold a
        // capture only a cairn of format 7 reads: written after the marker
        // went to format 7, unless by a cairn that did not sync the
        // directory; then it goes before the batch is applied.
        let (mut group_needs_7, mut batch_needs_7) = (false, false);
        let mut next_commit = commits.iter();
        let mut expected = next_commit.next();
        let mut scan = self.segments.scan_from(start);
        let mut done = 0u64;
        while let Some((loc, tag, payload)) = scan.next_record(envelope::MAX_VALUE as u64)? {
            done += 1;
            if let Some(p) = progress {
                p(done, total);
            }
            if tag == COMMIT_TAG {
                let Some(c) = expected else { break };
                // The pack files reach the end the commit relies on (as
                // `closed_by_files` asks), and the index's pack end is at
                // least that: bytes before it a capture of no commit points
                // to (a document rejected after its blob was staged) are
                // kept, never cut by the next writer.
                let closes = group_segments.is_some()
                    && group_head.seq == c.last
                    && group_head.hash == c.head
                    && *digest.finalize().as_bytes() == c.digest
                    && packs_reach(self.blobs.packs(), c.pack_end);
                if !closes {
                    break;
                }
                group_pack_end = group_pack_end.max(RecordsEnd { file: c.pack_end.0, len: c.pack_end.1 });
                for (k, v) in group.drain(..) {
                    batch.insert(k, v);
                }
                batch_needs_7 |= std::mem::take(&mut group_needs_7);
                if let Some((first, locators)) = group_segments.take() {
                    batch.insert(&segment_key(first)[..], locators);
                }
                bucket_writes.add(group_items.drain(..));
                head = group_head;
                pack_end = group_pack_end;
                end = scan.position();
                digest = blake3::Hasher::new();
                expected = next_commit.next();
                if in_batch >= CATCH_UP_BATCH {
                    let batch = std::mem::take(&mut batch);
                    self.formats.mark(&self.root, self.legacy, std::mem::take(&mut batch_needs_7))?;
                    if let Some(e) = self.apply_catch_up(batch, &mut bucket_writes, end, pack_end, &head)? {
                        return self.stop_catch_up(e, initial);
                    }
                    in_batch = 0;
                }
                continue;
            }
            // A segment: closed by the expected commit record if its seqs are
            // the commit's, else one an older cairn wrote (taken in as it is).
            let closed = expected.is_some_and(|c| tag >= c.first.0);
            if !closed && expected.is_none() && !legacy_tail {
                break; // after the last commit record: an unclosed commit
            }
            let Ok(entries) = envelope::decode_segment(&payload, "segment") else { break };
            if entries.is_empty() || entries[0].seq.0 != tag {
                break;
            }
            let mut next = group_head;
            let mut writes: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            // The segment's captures: blob, parse record, and where the blob
            // is (in the packs, new to sled: with its page; else its stored
            // record, unless this catch-up has it).
            type Captured = (BlobId, (ParseKey, ParsedDoc), Option<(Locator, [u8; 32])>, Option<sled::IVec>);
            let mut captured: Vec<Captured> = Vec::new();
            // A capture whose blob the packs do not hold stops the catch-up
            // before its segment (it advanced `next` first, and so was
            // taken in without its blob: a rebuild then said all was well).
            let mut blob_missing = false;
            for e in &entries {
                if e.seq != next.seq.next()
                    || e.event.id() != e.id
                    || chain_step(&next.hash, &e.entry_hash()) != e.head
                {
                    break;
                }
                next.seq = e.seq;
                next.hash = e.head;
                next.counts.add(e.event.kind());
                if let crate::model::Event::Capture(c) = &e.event {
                    // Its parse record: what its document parsed into is
                    // what it records (a byte-identical re-ingest then
                    // skips parsing again).
                    let record = parse_record_of(e.id, c);
                    if blob_records.contains_key(&c.blob) {
                        captured.push((c.blob, record, None, None));
                        continue;
                    }
                    if let Some(stored) = blob_record(&self.tree, &c.blob)? {
                        captured.push((c.blob, record, None, Some(stored)));
                        continue;
                    }
                    if packs.is_none() {
                        packs = Some(self.pack_records_from(pack_start)?);
                    }
                    let at = packs.as_ref().and_then(|p| p.get(&blobs::tag(&c.blob))).and_then(|l| l.first());
                    match at {
                        Some(at) => {
                            captured.push((c.blob, record, Some((*at, crate::store::page_key(c))), None))
                        }
                        None => {
                            blob_missing = true;
                            break;
                        }
                    }
                }
            }
            if blob_missing || next.seq != entries[entries.len() - 1].seq {
                break; // an entry did not continue the log, or a blob is missing
            }
            let mut seg_pack_end = group_pack_end;
            for (blob, (key, parsed), new, stored) in captured {
                let record = match blob_records.entry(blob) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let record = match (new, stored) {
                            (Some((at, page)), _) => {
                                writes.push((page_base_key(&page).to_vec(), envelope::encode(&blob)?));
                                let blob_end = RecordsEnd {
                                    file: at.file,
                                    len: at.offset + records::HEADER + u64::from(at.len),
                                };
                                seg_pack_end = seg_pack_end.max(blob_end);
                                (at, Vec::new())
                            }
                            // A damaged record is left as it is (verify names
                            // it); the parse is not recorded.
                            (None, Some(stored)) => match blob_record_parts(&blob, &stored) {
                                Ok(parts) => parts,
                                Err(_) => continue,
                            },
                            (None, None) => continue,
                        };
                        v.insert(record)
                    }
                };
                match add_parse(&mut record.1, key, parsed) {
                    Some((key, parsed)) => writes.push((parse_key_key(&key), envelope::encode(&parsed)?)),
                    None => writes.push((blob_key(&blob).to_vec(), encode_blob_record(record.0, &record.1)?)),
                }
            }
            in_batch += entries.len();
            group_head = next;
            group_pack_end = seg_pack_end;
            let needs_7 = entries.iter().any(needs_format_7);
            if closed {
                group_needs_7 |= needs_7;
                digest.update(&tag.to_be_bytes());
                digest.update(&(payload.len() as u32).to_be_bytes());
                digest.update(&payload);
                group.extend(writes);
                let (_, locators) = group_segments.get_or_insert_with(|| (entries[0].seq, Vec::new()));
                push_segment_entry(locators, tag, loc);
                group_items.extend(bucket_items(&entries));
            } else {
                // An older cairn's segment: taken in as it is, under a key
                // of its own.
                batch_needs_7 |= needs_7;
                for (k, v) in writes {
                    batch.insert(k, v);
                }
                let mut locator = Vec::with_capacity(GROUP_ENTRY);
                push_segment_entry(&mut locator, tag, loc);
                batch.insert(&segment_key(entries[0].seq)[..], locator);
                bucket_writes.add(bucket_items(&entries));
                head = group_head;
                pack_end = group_pack_end;
                end = scan.position();
                if in_batch >= CATCH_UP_BATCH {
                    let batch = std::mem::take(&mut batch);
                    self.formats.mark(&self.root, self.legacy, std::mem::take(&mut batch_needs_7))?;
                    if let Some(e) = self.apply_catch_up(batch, &mut bucket_writes, end, pack_end, &head)? {
                        return self.stop_catch_up(e, initial);
                    }
                    in_batch = 0;
                }
            }
        }
        // Counted from the head before the catch-up: the batches above
        // moved the stored head already.
        let taken = head.seq.0 - initial.0;
        if end != start {
            self.formats.mark(&self.root, self.legacy, batch_needs_7)?;
            if let Some(e) = self.apply_catch_up(batch, &mut bucket_writes, end, pack_end, &head)? {
                return self.stop_catch_up(e, initial);
            }
            self.db.flush()?;
        }
        Ok(taken)
    }

    /// Ends a catch-up that met an id set it cannot read (damaged: what was
    /// taken in stays, appends are refused, `verify` names it and reads go
    /// on). Any other error, a full disk or an I/O error writing or reading
    /// the sets, is returned: it says nothing of where the log files end,
    /// and taken for their end it had `repair --accept-loss` move every
    /// entry past it aside.
    fn stop_catch_up(&mut self, e: Error, initial: Seq) -> Result<u64> {
        if !matches!(e, Error::Corrupt(_)) {
            return Err(e);
        }
        self.layout_problem = Some(format!(
            "the index could not take in the log files past its end ({e}); `cairn repair` rebuilds it"
        ));
        Ok(self.head()?.seq.0.saturating_sub(initial.0))
    }

    /// Converts an index an older cairn made (one `i` + id key per event)
    /// to buckets, once: every entry of the log is added to its bucket and
    /// the old keys are removed. An index whose every entry was caught up
    /// just now (a new or rebuilt one) is marked without a scan.
    fn convert_old_index(&mut self, caught: u64) -> Result<()> {
        // Per-event keys next to a layout-2 index: an older cairn appended
        // to it (before the marker fenced it off); converted again.
        let old_keys = self.tree.scan_prefix([OLD_INDEX]).next().is_some();
        match self.tree.get(INDEX_LAYOUT_KEY)? {
            Some(v) if v == INDEX_LAYOUT && !old_keys => return Ok(()),
            Some(v) if v == INDEX_LAYOUT => {}
            Some(v) => {
                // Reads go on (an audit reports it); appends are refused.
                self.layout_problem = Some(format!(
                    "the index says layout {:?}; this cairn writes {:?}",
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(INDEX_LAYOUT)
                ));
                return Ok(());
            }
            None => {}
        }
        let head = match self.head() {
            Ok(h) => h,
            Err(e) => {
                self.layout_problem = Some(format!("the index cannot be converted: {e}"));
                return Ok(());
            }
        };
        if caught < head.seq.0 || old_keys {
            tracing::info!("{}: converting the index to per-article id sets", self.root.display());
            let converted = (|| -> Result<()> {
                let mut writes = BucketWrites::default();
                let mut sets = Vec::new();
                let mut memo = buckets::BucketMemo::default();
                for e in self.entries_from(Seq(1))? {
                    let e = e?;
                    writes.add([(memo.of(&e.event), e.id, e.seq)]);
                    if writes.added >= 262_144 {
                        writes.drain_into(&self.reader.sets, &mut sets)?;
                        self.reader.sets.apply(std::mem::take(&mut sets))?;
                    }
                }
                writes.drain_into(&self.reader.sets, &mut sets)?;
                self.reader.sets.apply(sets)?;
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for kv in self.tree.scan_prefix([OLD_INDEX]) {
                    let (k, _) = kv?;
                    batch.remove(k);
                    n += 1;
                    if n % 262_144 == 0 {
                        self.tree.apply_batch(std::mem::take(&mut batch))?;
                    }
                }
                self.tree.apply_batch(batch)?;
                Ok(())
            })();
            match converted {
                Ok(()) => {}
                Err(e) if e.is_disk_full() => return Err(e),
                Err(e) => {
                    // A log that cannot be read whole (verify names where):
                    // reads go on, appends are refused.
                    self.layout_problem = Some(format!(
                        "the index could not be converted to this cairn's layout ({e}); `cairn repair` rebuilds it"
                    ));
                    return Ok(());
                }
            }
        }
        self.tree.insert(INDEX_LAYOUT_KEY, INDEX_LAYOUT)?;
        self.db.flush()?;
        Ok(())
    }

    /// Moves the articles' id sets of an index of layout 2 (in the `log`
    /// tree) to the `sets` tree and its value files, then marks the layout
    /// (3: they are then rebuilt, with layout 4's buckets).
    /// Interrupted, it starts again at the next open (a set copied twice is
    /// the same set).
    fn move_sets_out_of_the_log_tree(&mut self) -> Result<()> {
        tracing::info!("{}: moving the articles' id sets out of sled's log tree", self.root.display());
        let mut writes: Vec<Write> = Vec::new();
        let mut removals = sled::Batch::default();
        for kv in self.tree.scan_prefix([BUCKET]).chain(self.tree.scan_prefix([PART])) {
            let (k, v) = kv?;
            writes.push((k.to_vec(), Some(v.to_vec())));
            removals.remove(k);
            if writes.len() >= 4096 {
                self.reader.sets.apply(std::mem::take(&mut writes))?;
            }
        }
        // Applied (its values synced) before the batch below: sled keeps a
        // prefix of its log across a crash.
        self.reader.sets.apply(writes)?;
        removals.insert(INDEX_LAYOUT_KEY, WIDE_BUCKETS_LAYOUT);
        self.tree.apply_batch(removals)?;
        self.db.flush()?;
        Ok(())
    }

    /// Drops views stored in another layout than this cairn's (every value
    /// in sled, or no tag byte): views are derived, and the next catch-up
    /// rebuilds them from the log.
    fn convert_view_layout(&mut self) -> Result<()> {
        match self.tree.get(VIEW_LAYOUT_KEY)? {
            Some(v) if v.as_ref() == VIEW_LAYOUT => return Ok(()),
            Some(v) => {
                // Damaged, or a layout of another cairn: not dropped here
                // (an audit reports it); `Archive::open` rebuilds the views.
                self.view_layout_problem = Some(format!(
                    "the index's view layout record says {:?}, not {:?}; any view command rebuilds the views",
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(VIEW_LAYOUT)
                ));
                return Ok(());
            }
            None => {}
        }
        if self.reader.tree_names()?.is_empty() {
            // A new or rebuilt index: value files left beside it are
            // nobody's.
            return self.drop_all_views();
        }
        // Views of an older cairn (every value in sled): not dropped here
        // (an audit reports them); `Archive::open` rebuilds them.
        self.view_layout_problem = Some(
            "the views were stored by an older cairn (every value in sled); any view command rebuilds them"
                .into(),
        );
        Ok(())
    }

    fn drop_all_views(&mut self) -> Result<()> {
        let names = self.reader.tree_names()?;
        if !names.is_empty() {
            tracing::info!(
                "{}: views stored in an older layout; they are rebuilt from the log",
                self.root.display()
            );
        }
        for name in names {
            self.reader.drop_tree(&name)?;
        }
        // Value files no tree of this index points into (an index rebuilt
        // or lost): views start afresh.
        let dir = self.root.join("views");
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        self.tree.insert(VIEW_LAYOUT_KEY, VIEW_LAYOUT)?;
        self.db.flush()?;
        Ok(())
    }

    /// Drops the views whose trees no longer match their value files (the
    /// files lost or emptied since, an older `db/` restored over newer
    /// files, or a replay's new tree when the replay was killed while it
    /// wrote it): derived, a view's current tree is rebuilt by the next
    /// catch-up, with a warning (an unfinished replay's tree is not
    /// needed). ([`crate::store::Archive::open`] does; an audit reports
    /// them instead.)
    pub fn drop_stale_views(&mut self) -> Result<()> {
        if let Some(why) = self.view_layout_problem.take() {
            tracing::warn!("{}: {why}", self.root.display());
            self.drop_all_views()?;
        }
        for name in self.reader.tree_names()? {
            let tree = self.db.open_tree(view_tree_name(&name))?;
            if !crate::store::vlog::stale(&tree, self.reader.values.get(&name)?.as_ref())? {
                continue;
            }
            tracing::warn!(
                "{}: view tree {name} does not match its value files (views/ lost, emptied or newer than db/, or a \
                 replay killed while it wrote its new tree); it is dropped, and rebuilt from the log if it is the \
                 view's current tree (an unfinished replay's is not needed)",
                self.root.display()
            );
            self.reader.drop_tree(&name)?;
        }
        Ok(())
    }

    /// Brings the Merkle tree's stored hashes up to the head (their tail
    /// past what the last commit recorded is hashed again from the log).
    /// A log that cannot be read leaves the tree short: a warning here,
    /// proofs past it fail, `verify` names it.
    fn reconcile_tree(&mut self) {
        let head = match self.head() {
            Ok(h) => h.seq.0,
            Err(_) => return,
        };
        let before = self.merkle.count();
        let reader = &self.reader;
        match self.merkle.append(head, |first, count| super::read_leaves(reader, first, count), []) {
            Err(e) => {
                tracing::warn!(
                    "{}: the Merkle tree could not be brought up to the head: {e}",
                    self.root.display()
                );
                self.derived_failure.get_or_insert(e);
            }
            Ok(()) if self.merkle.count() != before => {
                tracing::info!(
                    "{}: Merkle tree hashed from the log up to {} stored hashes",
                    self.root.display(),
                    self.merkle.count()
                );
                // Recorded at once (the hashes are synced), so that the
                // next open does not hash them again.
                let recorded = self.tree.insert(TREE_KEY, &self.merkle.count().to_be_bytes()[..]);
                if let Err(e) = recorded
                    .map_err(Error::from)
                    .and_then(|_| self.db.flush().map(|_| ()).map_err(Error::from))
                {
                    tracing::warn!(
                        "{}: the Merkle tree's record could not be written: {e}",
                        self.root.display()
                    );
                    self.derived_failure.get_or_insert(e);
                }
            }
            Ok(()) => {}
        }
    }

    /// Brings the id runs up to the head: runs past it are dropped, and the
    /// entries after the last run are read from the log into new runs.
    /// Returns the number of entries indexed. A log that cannot be read
    /// whole leaves the runs short (a warning here; `verify` names it).
    fn reconcile_runs(&mut self) -> u64 {
        let head = match self.head() {
            Ok(h) => h.seq,
            Err(_) => return 0,
        };
        self.runs_mut().cut_to(head);
        let start = self.reader.runs().end();
        let mut result: Result<()> = Ok(());
        while self.reader.runs().end() < head {
            let from = self.reader.runs().end().next();
            let chunk: Result<Vec<IdSeq>> = self
                .entries_from(from)
                .and_then(|it| it.take(idruns::BUILD_CHUNK).map(|e| e.map(|e| (e.id, e.seq))).collect());
            result = chunk.and_then(|c| {
                if c.is_empty() {
                    return Err(Error::MissingEntry(from));
                }
                self.runs_mut().add(c)
            });
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            tracing::warn!(
                "{}: the id index could not be rebuilt past seq {} ({e}); `cairn verify` shows why",
                self.root.display(),
                self.reader.runs().end()
            );
            self.derived_failure.get_or_insert(e);
        }
        self.reader.runs().end().0.saturating_sub(start.0)
    }

    /// Every commit record up to the committed end decodes, and the chain
    /// head it names is the log's at its last seq.
    fn commit_record_problems(&self) -> Result<Vec<(Option<Seq>, String)>> {
        let mut problems = Vec::new();
        let end = self.log_end()?;
        // Every record up to the end is a segment the index points at, or a
        // commit record: a record that is neither (a changed tag) is named.
        let mut segments: std::collections::HashSet<(u32, u64)> = std::collections::HashSet::new();
        for segment in segments_from(&self.tree, Seq(0))? {
            if let Ok((_, loc)) = segment? {
                segments.insert((loc.file, loc.offset));
            }
        }
        let mut scan = self.segments.scan_from(RecordsEnd::default());
        while let Some((loc, tag, payload)) =
            scan.next_header(envelope::MAX_VALUE as u64, |t| t == COMMIT_TAG)?
        {
            if scan.position() > end {
                break;
            }
            let Some(payload) = payload else {
                if !segments.contains(&(loc.file, loc.offset)) {
                    problems.push((
                        None,
                        format!(
                            "the record at file {} byte {} (tag {tag:#x}) is neither a segment the index points at \
                             nor a commit record",
                            loc.file, loc.offset
                        ),
                    ));
                }
                continue;
            };
            let at = format!("the commit record at file {} byte {}", loc.file, loc.offset);
            match envelope::decode::<CommitRecord>(&payload, &at) {
                Err(e) => problems.push((None, e.to_string())),
                Ok(c) => {
                    let head =
                        self.segment_of(c.last).ok().and_then(|s| s.into_iter().find(|e| e.seq == c.last));
                    match head {
                        Some(e) if e.head == c.head => {}
                        _ => problems.push((
                            Some(c.last),
                            format!(
                                "{at} says the chain head at seq {} is {}; the log disagrees",
                                c.last, c.head
                            ),
                        )),
                    }
                }
            }
        }
        // Whole commits past the end the index could not take in: a record
        // before them does not fit (damage, not a torn tail).
        if self.segments.tail_holds(end, COMMIT_TAG)? {
            problems.push((
                None,
                format!(
                    "the log files hold whole commits past the committed end (file {} byte {}) that could not be \
                     taken in: a record before them is damaged; appends are refused until it is dealt with",
                    end.file, end.len
                ),
            ));
        }
        Ok(problems)
    }

    /// Applies a catch-up batch, with its articles' id sets merged in and
    /// the ends and head it reaches. `Ok(Some(e))`: an id set could not be
    /// read, and nothing was applied.
    fn apply_catch_up(
        &self,
        mut batch: sled::Batch,
        buckets: &mut BucketWrites,
        end: RecordsEnd,
        pack_end: RecordsEnd,
        head: &HeadState,
    ) -> Result<Option<Error>> {
        let mut sets = Vec::new();
        if let Err(e) = buckets.drain_into(&self.reader.sets, &mut sets) {
            return Ok(Some(e));
        }
        // The id sets before the log's own records (taking in the same
        // entries again, after a crash between the two, changes nothing).
        if let Err(e) = self.reader.sets.apply(sets) {
            return Ok(Some(e));
        }
        batch.insert(END_KEY, &end.to_bytes()[..]);
        batch.insert(PACK_END_KEY, &pack_end.to_bytes()[..]);
        batch.insert(HEAD_KEY, envelope::encode(head)?);
        self.tree.apply_batch(batch)?;
        Ok(None)
    }

    /// The whole pack records after `start`, by tag (a blob id's first 8
    /// bytes): their headers only, no blob is read.
    fn pack_records_from(&self, start: RecordsEnd) -> Result<HashMap<u64, Vec<Locator>>> {
        let mut scan = self.blobs.packs().scan_from(start);
        let mut by_tag: HashMap<u64, Vec<Locator>> = HashMap::new();
        while let Some((loc, tag, _)) = scan.next_header(u64::from(u32::MAX), |_| false)? {
            by_tag.entry(tag).or_default().push(loc);
        }
        Ok(by_tag)
    }

    /// The sled database (for audits and tamper tests).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn log_end(&self) -> Result<RecordsEnd> {
        read_end(&self.tree, END_KEY)
    }
}

/// Refuses an archive whose `log/` directory is gone while `captures/`
/// holds captures: the log files are the archive, and taken for an archive
/// with no entries (a disk not mounted under `log/`, say) the next writer
/// moved the pack files aside as an interrupted commit's.
///
/// Likewise, except for `repair --accept-loss` (`giving_up`: what the log
/// held is given up on purpose, and an interrupted one must be able to
/// finish), a `log/` that holds no record while the id runs (`index/`) or
/// the Merkle tree (`tree/hashes`), written only after a commit's records,
/// say entries were committed: an empty mount point where the log's
/// volume is not mounted. (A first commit cut short leaves neither.)
fn refuse_lost_log(root: &Path, giving_up: bool) -> Result<()> {
    let log = root.join("log");
    // Whether `dir` has a file named so and longer than `over` bytes.
    let holds_data = |dir: &Path, name: &dyn Fn(&str) -> bool, over: u64| {
        fs::read_dir(dir)
            .map(|d| {
                d.flatten().any(|e| {
                    name(&e.file_name().to_string_lossy())
                        && e.metadata().is_ok_and(|m| m.is_file() && m.len() > over)
                })
            })
            .unwrap_or(false)
    };
    // (Followed: a link to a volume not mounted is no log either.)
    if fs::metadata(&log).is_ok() {
        if giving_up {
            return Ok(());
        }
        // (A log file that cannot be read, a link to nothing, is not an
        // empty log: opening it says what is wrong with it.)
        let records = fs::read_dir(&log)
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().ends_with(".seg")
                        && !fs::metadata(e.path()).is_ok_and(|m| m.is_file() && m.len() == 0)
                })
            })
            .unwrap_or(true);
        if records {
            return Ok(());
        }
        let runs = holds_data(&root.join("index"), &|n| n.ends_with(".idx"), 0);
        // (At least one hash past the file's header.)
        let hashes = holds_data(&root.join("tree"), &|n| n == "hashes", crate::transparency::file::HEADER);
        if runs || hashes {
            return Err(Error::Corrupt(format!(
                "{} holds no log records while {} says entries were committed: the log files are the archive; \
                 restore them (a volume not mounted there?); if they are lost, `cairn repair --accept-loss` \
                 gives up what they held (nothing was changed)",
                log.display(),
                if runs { root.join("index") } else { root.join("tree").join("hashes") }.display()
            )));
        }
        return Ok(());
    }
    let captures = root.join("captures");
    if holds_data(&captures, &|_| true, 0) {
        return Err(Error::Corrupt(format!(
            "{} is missing while {} holds captures: the log files are the archive; restore log/ \
             (nothing was changed)",
            log.display(),
            captures.display()
        )));
    }
    Ok(())
}

/// The commit records in the log files from `start`, in order, up to the
/// first that does not decode, and how many records (of any kind) a walk
/// of the headers passed: the first pass of the catch-up, and of
/// [`SledStore::closed_by_files`].
fn commit_records_from(segments: &RecordDir, start: RecordsEnd) -> Result<(Vec<CommitRecord>, u64)> {
    let mut commits = Vec::new();
    let mut scan = segments.scan_from(start);
    let mut total = 0u64;
    while let Some((_, _, payload)) = scan.next_header(envelope::MAX_VALUE as u64, |t| t == COMMIT_TAG)? {
        total += 1;
        if let Some(p) = payload {
            match envelope::decode::<CommitRecord>(&p, "commit record") {
                Ok(c) => commits.push(c),
                Err(_) => break,
            }
        }
    }
    Ok((commits, total))
}

/// Whether the pack files reach `pack_end` (file, length), the end a commit
/// record says its captures' blobs lie before.
fn packs_reach(packs: &RecordDir, pack_end: (u32, u64)) -> bool {
    fs::metadata(packs.path_of(pack_end.0)).is_ok_and(|m| m.len() >= pack_end.1)
}

fn read_end(tree: &sled::Tree, key: &[u8]) -> Result<RecordsEnd> {
    match tree.get(key)? {
        None => Ok(RecordsEnd::default()),
        Some(v) => RecordsEnd::from_bytes(&v).map_err(Error::Corrupt),
    }
}

fn blob_key(id: &BlobId) -> [u8; 33] {
    let mut k = [BLOB; 33];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

/// The parse records of the documents made from one blob.
type BlobParses = Vec<(ParseKey, ParsedDoc)>;

/// A blob's record as stored under `c` + blob id: its 16-byte
/// [`Locator`] in the pack files, then, when documents made from it were
/// recorded, their parse records (an enveloped [`BlobParses`]). One key
/// per blob holds both, where cairn kept each parse record under a key of
/// its own (`p` + parse key, still read): a new document wrote two keys.
fn encode_blob_record(loc: Locator, parses: &[(ParseKey, ParsedDoc)]) -> Result<Vec<u8>> {
    let mut v = loc.to_bytes().to_vec();
    if !parses.is_empty() {
        v.extend_from_slice(&envelope::encode(&parses)?);
    }
    Ok(v)
}

/// A blob's locator from its stored record ([`encode_blob_record`]).
fn blob_record_locator(v: &[u8]) -> std::result::Result<Locator, String> {
    match v.get(..16) {
        Some(loc) => Locator::from_bytes(loc),
        None => Err(format!("blob record of {} bytes", v.len())),
    }
}

/// The parse records in a blob's stored record.
fn blob_record_parses(v: &[u8]) -> Result<BlobParses> {
    match v.get(16..) {
        None | Some([]) => Ok(Vec::new()),
        Some(parses) => envelope::decode(parses, "parse records"),
    }
}

/// The parse records a blob's stored record holds, and whether they are
/// all there are: not when the record is full, nor where some parse
/// records are kept apart (`apart`: an archive begun before format 6, or
/// a blob parsed more than four ways). A blob without a record was never
/// stored, so never parsed.
fn parses_in(record: Option<&[u8]>, apart: bool) -> Result<(Vec<ParsedDoc>, bool)> {
    let Some(record) = record else { return Ok((Vec::new(), true)) };
    let parses = blob_record_parses(record)?;
    let all = !apart && parses.len() < BLOB_PARSES;
    Ok((parses.into_iter().map(|(_, p)| p).collect(), all))
}

/// A blob's locator and parse records from its stored record; an error
/// names the blob.
fn blob_record_parts(blob: &BlobId, v: &[u8]) -> Result<(Locator, BlobParses)> {
    let loc = blob_record_locator(v).map_err(|why| Error::Corrupt(format!("blob {blob}: {why}")))?;
    Ok((loc, blob_record_parses(v)?))
}

/// What sled holds of a blob: its stored record, or `None`.
type BlobRecordRead = Result<Option<sled::IVec>>;

/// Blob `id`'s stored record.
fn blob_record(tree: &sled::Tree, id: &BlobId) -> BlobRecordRead {
    Ok(tree.get(blob_key(id))?)
}

/// Where blob `id` lies: synced but not yet committed, else committed
/// (its record read through `record`).
fn blob_locator(
    record: &dyn Fn(&BlobId) -> BlobRecordRead,
    pending: &[(BlobId, Locator)],
    id: &BlobId,
) -> Result<Option<Locator>> {
    if let Some((_, loc)) = pending.iter().find(|(b, _)| b == id) {
        return Ok(Some(*loc));
    }
    match record(id)? {
        None => Ok(None),
        Some(v) => {
            blob_record_locator(&v).map(Some).map_err(|why| Error::Corrupt(format!("blob {id}: {why}")))
        }
    }
}

/// Blob `id`'s stored record, through `last`: the record of the blob the
/// appending thread read last. A new document's blob is read three times
/// in a row (its parse record before it is parsed, again as it is staged,
/// then whether it is stored), and in sled a miss costs about as much as a
/// hit. A commit empties `last`.
fn blob_record_via(tree: &sled::Tree, last: &LastBlob, id: &BlobId) -> BlobRecordRead {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((b, v)) = last.as_ref() {
        if b == id {
            return Ok(v.clone());
        }
    }
    let v = blob_record(tree, id)?;
    *last = Some((*id, v.clone()));
    Ok(v)
}

/// The blob record the appending thread read last ([`blob_record_via`]).
type LastBlob = std::sync::Mutex<Option<(BlobId, Option<sled::IVec>)>>;

/// Parse records a blob's record holds at most: the parses of one blob
/// past them (the same bytes fetched again and again, each fetch with its
/// own `--fetched-at`) have keys of their own (`p` + parse key), so that
/// reading or adding one costs the same however many there are.
pub(crate) const BLOB_PARSES: usize = 4;

/// Adds parse record (`key`, `p`) to a blob's `parses` unless they hold it;
/// when they are full ([`BLOB_PARSES`]), the record is returned, to be kept
/// under a key of its own.
fn add_parse(parses: &mut BlobParses, key: ParseKey, p: ParsedDoc) -> Option<(ParseKey, ParsedDoc)> {
    if parses.iter().any(|(k, _)| *k == key) {
        None
    } else if parses.len() >= BLOB_PARSES {
        Some((key, p))
    } else {
        parses.push((key, p));
        None
    }
}

/// The key of a parse record kept apart from its blob's record.
fn parse_key_key(key: &ParseKey) -> Vec<u8> {
    [&[PARSED][..], &key[..]].concat()
}

/// The parse record of `key` (a parse of a blob whose stored record is
/// `record`): in the blob's record, else under a key of its own, where the
/// blob's record is full or (`legacy`) an older cairn kept every one.
fn parse_record(
    tree: &sled::Tree,
    legacy: bool,
    record: Option<&[u8]>,
    key: &ParseKey,
) -> Result<Option<ParsedDoc>> {
    let mut full = false;
    if let Some(v) = record {
        let parses = blob_record_parses(v)?;
        if let Some((_, p)) = parses.iter().find(|(k, _)| k == key) {
            return Ok(Some(*p));
        }
        full = parses.len() >= BLOB_PARSES;
    }
    if !legacy && !full {
        return Ok(None);
    }
    match tree.get(parse_key_key(key))? {
        None => Ok(None),
        Some(v) => envelope::decode(&v, "parse record").map(Some),
    }
}

/// A record named for a finding: the seq it concerns, if any, and a name.
type Named = (Option<Seq>, String);

/// A record as the index locates it: its name, and its locator or (it does
/// not decode) the problem, said in full.
type Located = (Named, std::result::Result<Locator, String>);

/// Layout problems of one kind of record file, whose records the index
/// locates (`records`): the end record decodes and equals the end of the
/// last record (or of the commit record after it, `closed_by_commits`), no
/// record lies past it, and the file holds the committed bytes.
fn record_layout_problems(
    tree: &sled::Tree,
    records: impl Iterator<Item = Result<Located>>,
    end_key: &[u8],
    dir: &RecordDir,
    what: &str,
    closed_by_commits: bool,
) -> Result<Vec<(Option<Seq>, String)>> {
    let mut problems = Vec::new();
    let end = match tree.get(end_key)? {
        None => None,
        Some(v) => match RecordsEnd::from_bytes(&v) {
            Ok(e) => Some(e),
            Err(why) => {
                problems.push((None, format!("the {what} end record does not decode: {why}")));
                return Ok(problems);
            }
        },
    };
    // The record that ends last: its name and end.
    let mut last: Option<(Named, RecordsEnd)> = None;
    for record in records {
        let ((seq, name), loc) = record?;
        let loc = match loc {
            Ok(loc) => loc,
            Err(problem) => {
                problems.push((seq, problem));
                continue;
            }
        };
        let record_end =
            RecordsEnd { file: loc.file, len: loc.offset + records::HEADER + u64::from(loc.len) };
        if end.is_none_or(|e| record_end > e) {
            problems.push((seq, format!("{name} lies past the committed end of the {what} files")));
        }
        if last.as_ref().is_none_or(|(_, l)| record_end > *l) {
            last = Some(((seq, name), record_end));
        }
    }
    // In the log files, a commit record closes the last commit: the end
    // lies right after it.
    let closed_at = |from: RecordsEnd| -> Result<Option<RecordsEnd>> {
        if !closed_by_commits {
            return Ok(None);
        }
        let mut scan = dir.scan_from(from);
        Ok(match scan.next_header(u64::from(u32::MAX), |_| false)? {
            Some((_, COMMIT_TAG, _)) => Some(scan.position()),
            _ => None,
        })
    };
    match (last, end) {
        (None, Some(e)) if e != RecordsEnd::default() && closed_at(RecordsEnd::default())? != Some(e) => {
            problems
                .push((None, format!("the {what} end record says {} bytes but there are no records", e.len)))
        }
        (Some((_, at)), Some(e)) if at != e && closed_at(at)? == Some(e) => {}
        (Some(((seq, name), at)), Some(e)) if at != e => {
            problems.push((
                seq,
                format!(
                    "the {what} end record says file {} byte {}, but the last record ({name}) ends at file {} byte {}",
                    e.file, e.len, at.file, at.len
                ),
            ))
        }
        _ => {}
    }
    if let Some(e) = end {
        let path = dir.path_of(e.file);
        let actual = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if actual < e.len {
            problems.push((None, format!("{} is {actual} bytes, {} were committed", path.display(), e.len)));
        }
    }
    Ok(problems)
}

pub(crate) fn segment_error(first: Seq, why: impl Into<ReadFailure>) -> Error {
    why.into().into_error(|why| Error::Corrupt(format!("segment at seq {first}: {why}")))
}

fn dir_size(path: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        let meta = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// Reads and decodes segment `first`, at `loc`.
fn read_segment(
    reader: &mut RecordReader<'_>,
    first: Seq,
    loc: Locator,
) -> std::result::Result<(Seq, Vec<LogEntry>), (Seq, ReadFailure)> {
    let payload = reader.read(first.0, loc).map_err(|e| (first, e))?;
    let what = format!("segment at seq {first}");
    envelope::decode_segment(&payload, &what).map(|entries| (first, entries)).map_err(|e| {
        // The reason alone: callers name the segment (it was named twice,
        // "segment at seq N: archive is corrupt: segment at seq N: ...").
        let why = match e {
            Error::Corrupt(m) => match m.strip_prefix(&what).and_then(|r| r.strip_prefix(": ")) {
                Some(reason) => reason.to_string(),
                None => m,
            },
            other => other.to_string(),
        };
        (first, ReadFailure::Damaged(why))
    })
}

/// [`read_segment`] of a segment's locator as [`segments_from`] gives it
/// (one that does not decode is damage).
fn read_segment_at(
    reader: &mut RecordReader<'_>,
    at: SegmentAt,
) -> std::result::Result<(Seq, Vec<LogEntry>), (Seq, ReadFailure)> {
    let (first, loc) = at.map_err(|(seq, why)| (seq, ReadFailure::Damaged(why)))?;
    read_segment(reader, first, loc)
}

/// A segment's first seq and locator, or (the locators stored under a key
/// do not decode) that key's seq and why.
type SegmentAt = std::result::Result<(Seq, Locator), (Seq, String)>;

/// Every segment from the one holding `from` on, in seq order.
fn segments_from(tree: &sled::Tree, from: Seq) -> Result<impl Iterator<Item = Result<SegmentAt>>> {
    // The commit holding `from` starts at or before it.
    let start = match tree.range(segment_key(Seq(0))..=segment_key(from)).next_back() {
        Some(kv) => {
            let (k, _) = kv?;
            decode_seq(&k[1..], "segment key")?
        }
        None => Seq(0),
    };
    let end: &[u8] = &[SEGMENT + 1];
    let groups = tree.range(&segment_key(start)[..]..end);
    Ok(groups.flat_map(move |kv| -> Vec<Result<SegmentAt>> {
        let (k, v) = match kv {
            Ok(kv) => kv,
            Err(e) => return vec![Err(e.into())],
        };
        match segment_group(&k, &v) {
            Ok(mut segments) => {
                // The segments of the first commit before the one holding
                // `from` are skipped.
                let holding = segments.partition_point(|(first, _)| *first <= from);
                segments.drain(..holding.saturating_sub(1));
                segments.into_iter().map(|s| Ok(Ok(s))).collect()
            }
            Err(e) => vec![Ok(Err(e))],
        }
    }))
}

/// The read half of an archive's store: the log, the index and the views'
/// trees, read from another thread while the [`SledStore`] it came from
/// appends (the ingest applies views on a second thread). Writes are
/// refused; blobs are not read.
pub struct SledReader {
    db: sled::Db,
    tree: sled::Tree,
    segments: RecordDir,
    runs: Arc<RwLock<IdRuns>>,
    /// The views' value files (`views/`), shared by every handle.
    values: crate::store::vlog::ValueFiles,
    /// The articles' id sets (`d` and `e` keys), their values in
    /// `sets/ids.{a,b}.vlog`.
    sets: SeparatedTree,
    /// The log tree held parse records under keys of their own (`p`) when
    /// the archive was opened (an older cairn kept every one so; today only
    /// those past a blob record's room): a lookup its blob's record does
    /// not answer looks there too.
    legacy_parses: bool,
}

impl SledReader {
    /// The first seq and locator of the segment holding `seq`.
    fn segment_locator_of(&self, seq: Seq) -> Result<(Seq, Locator)> {
        let (k, v) = match self.tree.range(segment_key(Seq(0))..=segment_key(seq)).next_back() {
            Some(kv) => kv?,
            None => return Err(Error::MissingEntry(seq)),
        };
        let segments = segment_group(&k, &v).map_err(|(s, why)| segment_error(s, why))?;
        let holding = segments.partition_point(|(first, _)| *first <= seq);
        // (The key's seq is the first segment's, at or before `seq`.)
        segments.get(holding.wrapping_sub(1)).copied().ok_or(Error::MissingEntry(seq))
    }
}

impl Clone for SledReader {
    fn clone(&self) -> SledReader {
        SledReader {
            db: self.db.clone(),
            tree: self.tree.clone(),
            segments: self.segments.read_only(),
            runs: Arc::clone(&self.runs),
            values: self.values.clone(),
            sets: self.sets.clone(),
            legacy_parses: self.legacy_parses,
        }
    }
}

impl SledReader {
    fn runs(&self) -> std::sync::RwLockReadGuard<'_, IdRuns> {
        self.runs.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn runs_mut(&self) -> std::sync::RwLockWriteGuard<'_, IdRuns> {
        self.runs.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SledStore {
    fn runs_mut(&self) -> std::sync::RwLockWriteGuard<'_, IdRuns> {
        self.reader.runs_mut()
    }

    /// A reader of this store for another thread ([`SledReader`]).
    pub fn reader(&self) -> SledReader {
        self.reader.clone()
    }
}

fn read_only() -> Error {
    Error::Internal("a reader of the archive cannot write to it".into())
}

impl LogStore for SledStore {
    fn reader(&self) -> Option<Box<dyn crate::store::Store>> {
        Some(Box::new(self.reader.clone()))
    }

    fn head(&self) -> Result<HeadState> {
        self.reader.head()
    }

    fn entries_from(&self, from: Seq) -> Result<Box<dyn Iterator<Item = Result<LogEntry>> + '_>> {
        self.reader.entries_from(from)
    }

    fn commit_starts(&self, after: Seq) -> Result<Vec<Seq>> {
        self.reader.commit_starts(after)
    }

    fn take_derived_failure(&mut self) -> Option<Error> {
        self.derived_failure.take()
    }

    fn commit(&mut self, segments: &[Vec<LogEntry>], head: &HeadState, parsed: &[ParseRecord]) -> Result<()> {
        if let Some(why) = &self.layout_problem {
            return Err(Error::IndexUnreadable { path: self.root.clone(), why: why.clone() });
        }
        // (The command line refuses before reading inputs; any other caller
        // of the library here, before anything past the end is cut.)
        if let Some(why) = &self.files_problem {
            return Err(Error::Corrupt(format!("{why}; nothing was written")));
        }
        // The blob records read before are about to change.
        *self.last_blob.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        let needed = segments.iter().flatten().any(needs_format_7);
        self.formats.mark(&self.root, self.legacy, needed)?;
        let mut records = encode_segments(segments)?;
        let mut batch = sled::Batch::default();
        // The articles' id sets first: one that does not decode fails the
        // commit before anything of it is written.
        let mut bucket_writes = BucketWrites::default();
        for entries in segments {
            bucket_writes.add(bucket_items(entries));
        }
        let mut sets = Vec::new();
        bucket_writes.drain_into(&self.reader.sets, &mut sets)?;
        if !records.is_empty() {
            // The commit record closes the group, in the same append and
            // fsync, before sled hears of it.
            let pack_end = match self.pending_pack_end {
                Some(e) => e,
                None => read_end(&self.tree, PACK_END_KEY)?,
            };
            let commit = CommitRecord {
                first: Seq(records[0].0),
                last: segments.iter().flatten().last().map_or(Seq(0), |e| e.seq),
                head: head.hash,
                pack_end: (pack_end.file, pack_end.len),
                digest: group_digest(records.iter().map(|(t, p)| (*t, p.as_slice()))),
            };
            records.push((COMMIT_TAG, envelope::encode(&commit)?));
            let (locators, end) = self.segments.append(self.log_end()?, &records)?;
            if self.legacy {
                // Only now that a commit record closes the log files: until
                // then the marker says their segments need none.
                write_marker(
                    &self.root.join(MARKER),
                    if self.formats.format_7 { MARKER_TEXT_V7 } else { MARKER_TEXT },
                )?;
                self.legacy = false;
            }
            // One key for the commit's segments (`records` holds at least
            // one, before its commit record).
            let mut group = Vec::with_capacity(records.len() * GROUP_ENTRY);
            for ((first, _), loc) in records.iter().zip(locators).filter(|((t, _), _)| *t != COMMIT_TAG) {
                push_segment_entry(&mut group, *first, loc);
            }
            batch.insert(&segment_key(Seq(records[0].0))[..], group);
            batch.insert(END_KEY, &end.to_bytes()[..]);
        }
        // The id index: one run of this commit's ids, written (and merged)
        // on a thread of its own while this one appends the Merkle tree's
        // leaves and writes the id sets: the appending thread's commit is
        // the ingest's pause, when the readers' lookahead is full.
        let ids = || -> Vec<IdSeq> { segments.iter().flatten().map(|e| (e.id, e.seq)).collect() };
        let first = segments.iter().flatten().next().map(|e| e.seq);
        let reader = &self.reader;
        let merkle = &mut self.merkle;
        let (added, merkled, sets_applied) = std::thread::scope(|scope| {
            let runs_job = first.map(|first| {
                let job = move || {
                    let mut runs = reader.runs_mut();
                    runs.cut_to(Seq(first.0 - 1));
                    if runs.end().next() == first {
                        runs.add(ids())
                    } else {
                        Ok(()) // the runs were short already (a log that could not be read whole)
                    }
                };
                // No thread to be had: the run is written here, first.
                std::thread::Builder::new().name("id runs".into()).spawn_scoped(scope, job).map_err(|_| job())
            });
            // The Merkle tree: the commit's leaves, synced before sled
            // records how many stored hashes there are.
            let merkled = match first {
                Some(first) => {
                    let leaves = segments.iter().flatten().map(LogEntry::leaf_hash);
                    merkle
                        .append(first.0 - 1, |f, c| super::read_leaves(reader, f, c), leaves)
                        .map(|()| Some(merkle.count()))
                }
                None => Ok(None),
            };
            // The id sets (their values synced first) before the log's own
            // records: after a crash between the two, the next open takes
            // the commit in from the log files, adding the same ids again.
            let sets_applied = match &merkled {
                Ok(_) => reader.sets.apply(std::mem::take(&mut sets)),
                Err(_) => Ok(()),
            };
            let added = runs_job.map(|job| match job {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| Err(Error::Internal("the id index's thread panicked".into()))),
                Err(done_here) => done_here,
            });
            (added, merkled, sets_applied)
        });
        if merkled.is_err() || sets_applied.is_err() {
            // The commit fails on the Merkle tree's or the id sets' error;
            // the runs are rebuilt from the log on the next open if need be.
            if let Some(Err(e)) = &added {
                tracing::warn!(
                    "{}: the id index could not take this commit either: {e}",
                    self.root.display()
                );
            }
        }
        if let Some(count) = merkled? {
            batch.insert(TREE_KEY, &count.to_be_bytes()[..]);
        }
        sets_applied?;
        if let (Some(first), Some(added)) = (first, added) {
            match added {
                Ok(()) => {}
                Err(e) if !matches!(e, Error::Corrupt(_)) => return Err(e),
                Err(e) => {
                    // A damaged run (a merge reads its inputs checked): the
                    // runs are derived, so they are rebuilt from the log.
                    tracing::warn!(
                        "{}: the id index could not take this commit ({e}); rebuilding it from the log",
                        self.root.display()
                    );
                    self.runs_mut().clear()?;
                    self.reconcile_runs();
                    let mut runs = self.runs_mut();
                    if runs.end().next() == first {
                        runs.add(ids())?;
                    }
                }
            }
        }
        for (page, blob) in std::mem::take(&mut self.pending_bases) {
            batch.insert(&page_base_key(&page)[..], envelope::encode(&blob)?);
        }
        // The blobs' records: each new blob's locator with the parse records
        // of the documents made from it; a parse of a blob committed before
        // is added to that blob's record.
        let mut blob_records: Vec<(BlobId, Locator, BlobParses)> = std::mem::take(&mut self.pending_blobs)
            .into_iter()
            .map(|(b, loc)| (b, loc, Vec::new()))
            .collect();
        for (blob, key, p) in parsed {
            let own = match blob_records.iter_mut().find(|(b, _, _)| b == blob) {
                Some((_, _, parses)) => add_parse(parses, *key, *p),
                None => match blob_record(&self.tree, blob)? {
                    Some(v) => {
                        let (loc, mut parses) = blob_record_parts(blob, &v)?;
                        let own = add_parse(&mut parses, *key, *p);
                        if own.is_none() {
                            blob_records.push((*blob, loc, parses));
                        }
                        own
                    }
                    // (A document's blob is staged with it: not recorded,
                    // it is parsed again next time.)
                    None => {
                        tracing::warn!("{}: no blob {blob} to record a parse of", self.root.display());
                        None
                    }
                },
            };
            if let Some((key, p)) = own {
                batch.insert(parse_key_key(&key), envelope::encode(&p)?);
            }
        }
        for (blob, loc, parses) in &blob_records {
            batch.insert(&blob_key(blob)[..], encode_blob_record(*loc, parses)?);
        }
        if let Some(end) = self.pending_pack_end.take() {
            batch.insert(PACK_END_KEY, &end.to_bytes()[..]);
        }
        batch.insert(HEAD_KEY, envelope::encode(head)?);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    fn caught_up(&self) -> u64 {
        self.caught_up
    }

    fn sets_rebuilt(&self) -> bool {
        self.sets_rebuilt
    }

    fn index_unreadable(&self) -> Option<&str> {
        self.index_unreadable.as_deref()
    }

    fn files_problem(&self) -> Option<&str> {
        self.files_problem.as_deref()
    }

    fn given_up(&self) -> &[String] {
        &self.given_up
    }

    fn layout_problems(&self) -> Result<Vec<(Option<Seq>, String)>> {
        let segments = segments_from(&self.tree, Seq(0))?.map(|s| {
            Ok(match s? {
                Ok((seq, loc)) => ((Some(seq), format!("segment at seq {seq}")), Ok(loc)),
                Err((seq, why)) => ((Some(seq), format!("the segments from seq {seq}")), Err(why)),
            })
        });
        let blobs = self.tree.scan_prefix([BLOB]).map(|kv| {
            let (k, v) = kv?;
            let name = match <[u8; 32]>::try_from(&k[1..]) {
                Ok(id) => (None, format!("blob {}", BlobId(id))),
                Err(_) => (None, format!("blob key of {} bytes", k.len())),
            };
            let loc = blob_record_locator(&v)
                .map_err(|_| format!("{}: locator of {} bytes does not decode", name.1, v.len()));
            Ok((name, loc))
        });
        let mut problems =
            record_layout_problems(&self.tree, segments, END_KEY, &self.segments, "log", true)?;
        problems.extend(record_layout_problems(
            &self.tree,
            blobs,
            PACK_END_KEY,
            self.blobs.packs(),
            "pack",
            false,
        )?);
        problems.extend(self.commit_record_problems()?);
        Ok(problems)
    }

    fn segment_of(&self, seq: Seq) -> Result<Vec<LogEntry>> {
        self.reader.segment_of(seq)
    }

    fn segment_entries_of(&self, seq: Seq) -> Result<envelope::SegmentEntries> {
        self.reader.segment_entries_of(seq)
    }

    fn flush(&mut self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn merkle(&self) -> Option<&TreeFile> {
        Some(&self.merkle)
    }

    fn merkle_recorded(&self) -> Option<Result<u64>> {
        match self.tree.get(TREE_KEY) {
            Ok(Some(v)) => Some(decode_seq(&v, "Merkle tree record").map(|s| s.0)),
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }

    fn disk_usage(&self) -> Result<Option<u64>> {
        // Not the lock file: it names the process holding the archive (its
        // PID), so its size changed with the command asking.
        let lock = fs::metadata(self.root.join("lock")).map_or(0, |m| m.len());
        dir_size(&self.root).map(|all| Some(all.saturating_sub(lock)))
    }

    fn scan_segments(&self) -> Box<dyn Iterator<Item = Result<SegmentRead>> + '_> {
        self.reader.scan_segments()
    }
}

impl BlobStore for SledStore {
    fn page_lookup(&self) -> Option<crate::store::PageLookup> {
        use crate::store::PageBase;
        let tree = self.tree.clone();
        // A lookup that fails, or a record that does not decode, says
        // "unknown": the appending thread decides.
        Some(std::sync::Arc::new(move |page: &[u8; 32]| match tree.get(page_base_key(page)) {
            Ok(None) => PageBase::New,
            Ok(Some(v)) => {
                envelope::decode::<BlobId>(&v, "page base record").map_or(PageBase::Unknown, PageBase::Latest)
            }
            Err(_) => PageBase::Unknown,
        }))
    }

    fn delta_maker(&self) -> Option<crate::store::DeltaMaker> {
        // Committed blobs only: what is staged lives on the appending
        // thread, whose base for a page is then another blob than the one
        // this finds (and it makes the delta itself).
        let tree = self.tree.clone();
        let blobs = self.blobs.read_only();
        Some(std::sync::Arc::new(move |raw: &[u8], base: &BlobId| {
            // A page too large for a delta is stored whole.
            if raw.len() as u64 > crate::store::blobs::MAX_DELTA_RAW {
                return None;
            }
            blobs
                .delta_quietly(raw, base, &|b: &BlobId| blob_locator(&|b| blob_record(&tree, b), &[], b))
                .ok()
        }))
    }

    fn stage_blob(
        &mut self,
        id: &BlobId,
        raw: &[u8],
        page: Option<&[u8; 32]>,
        ahead: Option<crate::store::Ahead>,
    ) -> Result<()> {
        let (tree, pending, last) = (&self.tree, &self.pending_blobs, &self.last_blob);
        let lookup = |b: &BlobId| blob_locator(&|b| blob_record_via(tree, last, b), pending, b);
        let Some(page) = page else {
            return self.blobs.stage(id, raw, None, ahead, &lookup).map(|_| ());
        };
        // The page's latest capture: staged since the last commit, else
        // recorded in sled.
        let base = match self.pending_bases.iter().rev().find(|(p, _)| p == page) {
            Some((_, b)) => Some(*b),
            None => match self.tree.get(page_base_key(page))? {
                None => None,
                // A damaged record (verify reports it) only costs the delta.
                Some(v) => envelope::decode::<BlobId>(&v, "page base record")
                    .inspect_err(|e| tracing::warn!("storing a capture whole: {e}"))
                    .ok(),
            },
        };
        self.blobs.stage(id, raw, base.as_ref(), ahead, &lookup)?;
        self.pending_bases.push((*page, *id));
        Ok(())
    }

    fn scan_page_bases(&self) -> Box<dyn Iterator<Item = Result<crate::store::PageBaseRead>> + '_> {
        Box::new(self.tree.scan_prefix([PAGE_BASE]).map(|kv| {
            let (k, v) = kv?;
            let key: [u8; 32] = k[1..]
                .try_into()
                .map_err(|_| Error::Corrupt(format!("page base key of {} bytes", k.len())))?;
            Ok((key, envelope::decode(&v, "page base record").map_err(|e| e.to_string())))
        }))
    }

    fn sync_blobs(&mut self) -> Result<()> {
        let end = match self.pending_pack_end {
            Some(e) => e,
            None => {
                // Before the first append of this process cuts anything off
                // the pack files: whole commits past the log's end that the
                // index could not take in rely on those blobs.
                self.segments.refuse_damage_past(self.log_end()?)?;
                read_end(&self.tree, PACK_END_KEY)?
            }
        };
        if let Some((locators, end)) = self.blobs.sync_staged(end)? {
            self.pending_blobs.extend(locators);
            self.pending_pack_end = Some(end);
        }
        Ok(())
    }

    fn get_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let lookup = |b: &BlobId| blob_locator(&|b| blob_record(&self.tree, b), &self.pending_blobs, b);
        self.blobs.get(id, &lookup)
    }

    fn blob_ids(&self) -> Result<Vec<BlobId>> {
        self.tree
            .scan_prefix([BLOB])
            .map(|kv| {
                let (k, _) = kv?;
                <[u8; 32]>::try_from(&k[1..])
                    .map(BlobId)
                    .map_err(|_| Error::Corrupt(format!("blob key of {} bytes", k.len())))
            })
            .collect()
    }

    fn blob_bytes(&self) -> Result<u64> {
        let mut total = 0u64;
        for kv in self.tree.scan_prefix([BLOB]) {
            let (_, v) = kv?;
            total += blob_record_locator(&v).map_or(0, |l| u64::from(l.len));
        }
        Ok(total)
    }
}

impl IndexStore for SledStore {
    fn seq_of(&self, id: &EventId) -> Result<Option<Seq>> {
        self.reader.seq_of(id)
    }

    fn seqs_of(&self, ids: &[EventId]) -> Result<Vec<Option<Seq>>> {
        self.reader.seqs_of(ids)
    }

    fn ids_with_prefix(&self, prefix: &HexPrefix) -> Result<Vec<EventId>> {
        self.reader.ids_with_prefix(prefix)
    }

    fn parsed(&self, blob: &BlobId, key: &ParseKey) -> Result<Option<ParsedDoc>> {
        let record = blob_record_via(&self.tree, &self.last_blob, blob)?;
        parse_record(&self.tree, self.reader.legacy_parses, record.as_deref(), key)
    }

    fn parses_of(&self, blob: &BlobId) -> Result<(Vec<ParsedDoc>, bool)> {
        parses_in(blob_record_via(&self.tree, &self.last_blob, blob)?.as_deref(), self.reader.legacy_parses)
    }

    fn parse_lookup(&self) -> Option<crate::ingest::ParseLookup> {
        self.reader.parse_lookup()
    }

    fn scan_parsed(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_> {
        self.reader.scan_parsed()
    }

    fn scan_parsed_apart(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_> {
        self.reader.scan_parsed_apart()
    }

    fn scan_index(&self) -> Box<dyn Iterator<Item = Result<IndexRead>> + '_> {
        self.reader.scan_index()
    }

    fn index_problems(&self) -> Result<Vec<String>> {
        let runs = self.reader.runs();
        let mut out = runs.problems()?;
        out.extend(self.layout_problem.clone());
        // A head record that does not decode is the head check's finding.
        let head = self.head().map(|h| h.seq).unwrap_or(runs.end());
        if runs.end() != head {
            out.push(format!(
                "the id index (index/) covers seqs 1..={}, the log 1..={head}; `cairn repair` rebuilds it",
                runs.end()
            ));
        }
        if self.tree.scan_prefix([OLD_INDEX]).next().is_some() {
            out.push("the index still holds per-event keys of an older layout".into());
        }
        // Parts belong to split buckets.
        let mut last: Option<[u8; 32]> = None;
        for k in self.reader.sets.keys(&[PART]) {
            let k = k?;
            let Some(bucket) = k.get(1..33).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
                out.push(format!("an id set part key of {} bytes", k.len()));
                continue;
            };
            if last == Some(bucket) {
                continue;
            }
            last = Some(bucket);
            // (A set that cannot be read is named by the index check.)
            if matches!(read_bucket(&self.reader.sets, &bucket), Ok(buckets::Stored::Whole(_))) {
                out.push(format!(
                    "the id set of bucket {}… has parts but is not split",
                    crate::model::ids::to_hex(&bucket[..8])
                ));
            }
        }
        Ok(out)
    }

    fn bucket(&self, key: &[u8; 32], ids: &[EventId]) -> Result<Vec<IdSeq>> {
        self.reader.bucket(key, ids)
    }

    fn scan_buckets(&self) -> Box<dyn Iterator<Item = Result<BucketRead>> + '_> {
        self.reader.scan_buckets()
    }
}

impl ViewStore for SledStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>> {
        self.reader.tree(name)
    }

    fn new_tree(&self, name: &str) -> Result<Arc<dyn KvTree>> {
        self.reader.new_tree(name)
    }

    fn remove_unowned_values(&self) -> Result<Vec<String>> {
        self.reader.remove_unowned_values()
    }

    fn drop_tree(&self, name: &str) -> Result<()> {
        self.reader.drop_tree(name)
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        self.reader.tree_names()
    }

    fn tree_problem(&self, name: &str) -> Result<Option<String>> {
        match &self.view_layout_problem {
            Some(why) => Ok(Some(why.clone())),
            None => self.reader.tree_problem(name),
        }
    }
}

impl LogStore for SledReader {
    fn head(&self) -> Result<HeadState> {
        match self.tree.get(HEAD_KEY)? {
            None => Ok(HeadState::default()),
            Some(v) => envelope::decode(&v, "head record"),
        }
    }

    fn commit_starts(&self, after: Seq) -> Result<Vec<Seq>> {
        // One key per commit, under its first seq (an older cairn's
        // segments one key each).
        let end: &[u8] = &[SEGMENT + 1];
        let mut starts = Vec::new();
        for kv in self.tree.range(&segment_key(after.next())[..]..end) {
            let (k, _) = kv?;
            starts.push(decode_seq(&k[1..], "segment key")?);
        }
        Ok(starts)
    }

    fn entries_from(&self, from: Seq) -> Result<Box<dyn Iterator<Item = Result<LogEntry>> + '_>> {
        let mut reader = self.segments.reader();
        let iter = segments_from(&self.tree, from)?.flat_map(move |segment| -> Vec<Result<LogEntry>> {
            let decoded = segment
                .and_then(|s| read_segment_at(&mut reader, s).map_err(|(s, why)| segment_error(s, why)));
            match decoded {
                Ok((_, entries)) => entries.into_iter().filter(|e| e.seq >= from).map(Ok).collect(),
                Err(e) => vec![Err(e)],
            }
        });
        Ok(Box::new(iter))
    }

    fn segment_entries_of(&self, seq: Seq) -> Result<envelope::SegmentEntries> {
        let (first, loc) = self.segment_locator_of(seq)?;
        let payload = self.segments.reader().read(first.0, loc).map_err(|why| segment_error(first, why))?;
        envelope::open_segment(&payload, &format!("segment at seq {first}"))
    }

    fn segment_of(&self, seq: Seq) -> Result<Vec<LogEntry>> {
        let (first, loc) = self.segment_locator_of(seq)?;
        read_segment(&mut self.segments.reader(), first, loc)
            .map(|(_, entries)| entries)
            .map_err(|(s, why)| segment_error(s, why))
    }

    fn scan_segments(&self) -> Box<dyn Iterator<Item = Result<SegmentRead>> + '_> {
        let mut reader = self.segments.reader();
        let segments = match segments_from(&self.tree, Seq(0)) {
            Ok(segments) => segments,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        Box::new(segments.map(move |segment| {
            Ok(match read_segment_at(&mut reader, segment?) {
                Ok((seq, entries)) => (seq, Ok(entries)),
                // An I/O error ends the scan: no finding that the segment
                // is damaged when the disk failed to read it.
                Err((seq, why @ ReadFailure::Io { .. })) => return Err(segment_error(seq, why)),
                Err((seq, ReadFailure::Damaged(why))) => (seq, Err(why)),
            })
        }))
    }
    fn commit(&mut self, _: &[Vec<LogEntry>], _: &HeadState, _: &[ParseRecord]) -> Result<()> {
        Err(read_only())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn disk_usage(&self) -> Result<Option<u64>> {
        Ok(None)
    }
}

impl IndexStore for SledReader {
    fn seq_of(&self, id: &EventId) -> Result<Option<Seq>> {
        self.runs().seq_of(id)
    }

    fn seqs_of(&self, ids: &[EventId]) -> Result<Vec<Option<Seq>>> {
        self.runs().seqs_of(ids)
    }

    fn ids_with_prefix(&self, prefix: &HexPrefix) -> Result<Vec<EventId>> {
        Ok(self.runs().with_prefix(prefix)?.into_iter().map(|(id, _)| id).collect())
    }

    fn parsed(&self, blob: &BlobId, key: &ParseKey) -> Result<Option<ParsedDoc>> {
        parse_record(&self.tree, self.legacy_parses, blob_record(&self.tree, blob)?.as_deref(), key)
    }

    fn parses_of(&self, blob: &BlobId) -> Result<(Vec<ParsedDoc>, bool)> {
        parses_in(blob_record(&self.tree, blob)?.as_deref(), self.legacy_parses)
    }

    fn parse_lookup(&self) -> Option<crate::ingest::ParseLookup> {
        let (tree, legacy) = (self.tree.clone(), self.legacy_parses);
        // A lookup that fails says "not recorded": the document is parsed
        // ahead, and the main thread's own check decides.
        Some(std::sync::Arc::new(move |blob: &BlobId, key: &ParseKey| {
            let found = blob_record(&tree, blob).and_then(|r| parse_record(&tree, legacy, r.as_deref(), key));
            found.ok().flatten().is_some()
        }))
    }

    fn scan_parsed(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_> {
        // Those in the blobs' records, then those of an older cairn under
        // keys of their own.
        let in_blobs = self.tree.scan_prefix([BLOB]).flat_map(|kv| -> Vec<Result<ParsedRead>> {
            let (k, v) = match kv {
                Ok(kv) => kv,
                Err(e) => return vec![Err(e.into())],
            };
            match blob_record_parses(&v) {
                Ok(parses) => parses.into_iter().map(|(key, p)| Ok((key, Ok(p)))).collect(),
                // Named by the blob's id where a record's key would be.
                Err(e) => {
                    let id = k.get(1..).and_then(|id| <[u8; 32]>::try_from(id).ok()).unwrap_or_default();
                    vec![Ok((id, Err(format!("the parse records of blob {}: {e}", BlobId(id)))))]
                }
            }
        });
        Box::new(in_blobs.chain(self.scan_parsed_apart()))
    }

    fn scan_parsed_apart(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_> {
        Box::new(self.tree.scan_prefix([PARSED]).map(|kv| {
            let (k, v) = kv?;
            let key: ParseKey =
                k[1..].try_into().map_err(|_| Error::Corrupt(format!("parse key of {} bytes", k.len())))?;
            Ok((key, envelope::decode(&v, "parse record").map_err(|e| e.to_string())))
        }))
    }

    fn scan_index(&self) -> Box<dyn Iterator<Item = Result<IndexRead>> + '_> {
        match self.runs().scan() {
            Ok(it) => Box::new(it.map(|r| r.map(|(id, seq)| (Ok(id), Ok(seq))))),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn bucket(&self, key: &[u8; 32], ids: &[EventId]) -> Result<Vec<IdSeq>> {
        read_bucket_for(&self.sets, key, ids)
    }

    fn scan_buckets(&self) -> Box<dyn Iterator<Item = Result<BucketRead>> + '_> {
        Box::new(self.sets.scan_each(&[BUCKET]).map(|kv| {
            let (k, v) = kv?;
            // A key of another length, or a value the value files cannot
            // give back, is reported with its bucket read as undecodable
            // (an audit names it; it does not stop). A read the system
            // failed stops it: the disk's fault, not damage.
            let v = match v {
                Err(e) if e.is_io_fault() => return Err(e),
                v => v,
            };
            Ok(match <[u8; 32]>::try_from(&k[1..]) {
                Ok(key) => {
                    (key, v.map_err(|e| e.to_string()).and_then(|v| read_bucket_all(&self.sets, &key, &v)))
                }
                Err(_) => ([0u8; 32], Err(format!("a bucket key of {} bytes", k.len()))),
            })
        }))
    }
}

impl ViewStore for SledReader {
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>> {
        let tree = self.db.open_tree(view_tree_name(name))?;
        Ok(Arc::new(crate::store::vlog::SeparatedTree::new(tree, self.values.get(name)?)))
    }

    fn new_tree(&self, name: &str) -> Result<Arc<dyn KvTree>> {
        let tree = self.db.open_tree(view_tree_name(name))?;
        Ok(Arc::new(crate::store::vlog::SeparatedTree::held(tree, self.values.get(name)?)))
    }

    fn remove_unowned_values(&self) -> Result<Vec<String>> {
        // (`tree` and `new_tree` make the tree before they open its files.)
        let removed = self.values.remove_unowned(|| self.tree_names())?;
        for name in &removed {
            tracing::debug!("removed value files views/{name}.{{a,b}}.vlog, which no tree owns");
        }
        Ok(removed)
    }

    fn drop_tree(&self, name: &str) -> Result<()> {
        self.db.drop_tree(view_tree_name(name))?;
        // The tree's removal durable before its files go: a crash between
        // must not leave the tree pointing at missing files.
        self.db.flush()?;
        self.values.remove(name)
    }

    fn tree_problem(&self, name: &str) -> Result<Option<String>> {
        let tree = self.db.open_tree(view_tree_name(name))?;
        Ok(crate::store::vlog::stale(&tree, self.values.get(name)?.as_ref())?.then(|| {
            format!(
                "its tree does not match its value files views/{name}.{{a,b}}.vlog (lost, emptied or replaced, \
                 or the tree's record of them changed); any view command rebuilds it"
            )
        }))
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        Ok(self
            .db
            .tree_names()
            .iter()
            .filter_map(|n| {
                n.strip_prefix(VIEW_TREE_PREFIX.as_bytes()).map(|s| String::from_utf8_lossy(s).into_owned())
            })
            .collect())
    }
}

impl BlobStore for SledReader {
    fn stage_blob(
        &mut self,
        _: &BlobId,
        _: &[u8],
        _: Option<&[u8; 32]>,
        _: Option<crate::store::Ahead>,
    ) -> Result<()> {
        Err(read_only())
    }

    fn sync_blobs(&mut self) -> Result<()> {
        Err(read_only())
    }

    fn get_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        Err(Error::Internal(format!("blob {id}: a reader of the log does not read blobs")))
    }

    fn blob_ids(&self) -> Result<Vec<BlobId>> {
        Err(read_only())
    }

    fn blob_bytes(&self) -> Result<u64> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArticleKey, Comment, Event, Timestamp};

    #[test]
    fn a_panic_inside_quietly_is_caught_and_the_thread_is_loud_again() {
        assert!(quietly(|| 1).is_ok_and(|v| v == 1));
        assert!(quietly(|| -> u8 { panic!("sled would panic here") }).is_err());
        assert!(!QUIET.with(std::cell::Cell::get));
        // Nested: the inner call leaves the outer one quiet.
        let outer = quietly(|| {
            let inner = quietly(|| -> u8 { panic!("inner") });
            (inner.is_err(), QUIET.with(std::cell::Cell::get))
        });
        assert_eq!(outer.unwrap(), (true, true));
        assert!(!QUIET.with(std::cell::Cell::get));
    }

    #[test]
    fn segments_encoded_on_two_threads_keep_their_order_and_bytes() {
        let mut seq = 0u64;
        let segments: Vec<Vec<LogEntry>> = (0..9)
            .map(|s| {
                (0..(s * 37 + 1))
                    .map(|i| {
                        seq += 1;
                        let event = Event::Comment(Comment::new(
                            ArticleKey(format!("https://example.com/{s}")),
                            Some("x"),
                            None,
                            &format!("comment {i} of {s}"),
                        ));
                        LogEntry {
                            seq: Seq(seq),
                            id: event.id(),
                            recorded_at: Timestamp::parse_canonical("2012-03-28T13:02:00+05:00").unwrap(),
                            event,
                            head: crate::model::ChainHash::GENESIS,
                        }
                    })
                    .collect()
            })
            .collect();
        assert!(segments.iter().map(Vec::len).sum::<usize>() >= 512, "large enough for two threads");
        let records = encode_segments(&segments).unwrap();
        assert_eq!(records.len(), segments.len());
        for ((key, bytes), entries) in records.iter().zip(&segments) {
            assert_eq!(*key, entries[0].seq.0);
            assert_eq!(bytes, &envelope::encode_segment(entries).unwrap());
            assert_eq!(&envelope::decode_segment(bytes, "segment").unwrap(), entries);
        }
    }

    /// A commit's segment locators under one key: read back in order; an
    /// older cairn's 16-byte value is one segment's; a value that is cut,
    /// out of order or under the wrong key is an error naming the key's seq.
    #[test]
    fn segment_locators_are_read_from_one_key_per_commit() {
        let loc = |n: u64| Locator { file: n as u32, offset: n * 100, len: n as u32 + 7 };
        let key = |seq: u64| segment_key(Seq(seq));
        let mut value = Vec::new();
        for first in [5u64, 9, 30] {
            push_segment_entry(&mut value, first, loc(first));
        }
        assert_eq!(value.len(), 3 * GROUP_ENTRY);
        let read = segment_group(&key(5), &value).unwrap();
        assert_eq!(read, vec![(Seq(5), loc(5)), (Seq(9), loc(9)), (Seq(30), loc(30))]);
        assert_eq!(segment_group(&key(7), &loc(7).to_bytes()).unwrap(), vec![(Seq(7), loc(7))]);
        let error = |k: u64, v: &[u8]| segment_group(&key(k), v).unwrap_err();
        assert_eq!(error(6, &value).0, Seq(6), "the key's seq is not the first segment's");
        assert!(error(5, &value[..value.len() - 1]).1.contains("not a multiple of 24"));
        assert!(error(5, &[]).1.contains("0 bytes"));
        let mut swapped = value.clone();
        swapped[GROUP_ENTRY..2 * GROUP_ENTRY].copy_from_slice(&value[2 * GROUP_ENTRY..]);
        swapped[2 * GROUP_ENTRY..].copy_from_slice(&value[GROUP_ENTRY..2 * GROUP_ENTRY]);
        assert!(error(5, &swapped).1.contains("seq 9 out of order"));
    }
}
