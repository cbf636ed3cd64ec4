//! The append-only log and everything that writes to it.
//!
//! [`Store`] is the small storage trait (commit a segment of entries, look up
//! an id, read entries in order, keep blobs) with two implementations:
//! [`sled_store::SledStore`] for archives on disk and [`memory::MemoryStore`]
//! for tests and dry runs. [`Archive`] (in `archive.rs`) sits on top and
//! owns the rules: dedupe by id, dense seqs, the hash chain, one atomic
//! commit per document or per [`CommitGroup`]. The id index lives in
//! [`idruns`] (sorted runs of every id) and [`buckets`] (each article's ids,
//! for the duplicate check).

mod archive;
pub mod blobs;
pub mod buckets;
pub mod close;
pub mod envelope;
mod held;
pub mod idruns;
pub mod kv;
pub mod memory;
pub mod portable;
pub mod records;
mod sets;
pub mod sled_store;
pub mod trim;
pub mod vlog;

use crate::error::Result;
use crate::model::{BlobId, ChainHash, EventId, EventKind, HexPrefix, LogEntry, Seq, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use archive::{AppendOutcome, Archive, Clock, CommitGroup, NewDocument, OpenMode, ViewsAt};
pub use kv::KvTree;

/// Counts per event kind.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    /// Articles.
    pub articles: u64,
    /// Comments.
    pub comments: u64,
    /// Captures.
    pub captures: u64,
    /// Merges.
    pub merges: u64,
}

impl std::fmt::Display for KindCounts {
    /// `1000 articles, 101187 comments, 1487 captures, 0 merges`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} articles, {} comments, {} captures, {} merges",
            self.articles, self.comments, self.captures, self.merges
        )
    }
}

impl KindCounts {
    /// Adds one of `kind`.
    pub fn add(&mut self, kind: EventKind) {
        *self.get_mut(kind) += 1;
    }

    /// The count for `kind`.
    pub fn get(&self, kind: EventKind) -> u64 {
        match kind {
            EventKind::Article => self.articles,
            EventKind::Comment => self.comments,
            EventKind::Capture => self.captures,
            EventKind::Merge => self.merges,
        }
    }

    fn get_mut(&mut self, kind: EventKind) -> &mut u64 {
        match kind {
            EventKind::Article => &mut self.articles,
            EventKind::Comment => &mut self.comments,
            EventKind::Capture => &mut self.captures,
            EventKind::Merge => &mut self.merges,
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &KindCounts) {
        for k in EventKind::ALL {
            *self.get_mut(k) += other.get(k);
        }
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.articles + self.comments + self.captures + self.merges
    }
}

/// The state written with every commit: the last seq, the chain head after
/// it, and the number of events of each kind.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadState {
    /// The last seq (0 for an empty archive).
    pub seq: Seq,
    /// The chain head after `seq`.
    pub hash: ChainHash,
    /// Events per kind.
    pub counts: KindCounts,
}

impl HeadState {
    /// The checkpoint line `SEQ HEX` printed by `cairn head`.
    pub fn checkpoint(&self) -> String {
        format!("{} {}", self.seq, self.hash)
    }
}

impl Default for ChainHash {
    fn default() -> Self {
        ChainHash::GENESIS
    }
}

/// The log: appending whole commits and reading entries back.
///
/// Implementations must make [`LogStore::commit`] atomic (all entries, their
/// index entries and the head, or nothing). Unsupported operations return
/// an error; none panics.
pub trait LogStore {
    /// The head state as of the last commit.
    fn head(&self) -> Result<HeadState>;
    /// Entries in log order, starting at seq `from`.
    fn entries_from(&self, from: Seq) -> Result<Box<dyn Iterator<Item = Result<LogEntry>> + '_>>;
    /// Atomically appends `segments` (one per document, consecutive seqs
    /// following the head) with their index entries and the documents'
    /// parse records, and sets the head to `head`.
    fn commit(&mut self, segments: &[Vec<LogEntry>], head: &HeadState, parsed: &[ParseRecord]) -> Result<()>;
    /// Problems in how the store lays the log out (beyond what scanning
    /// the segments shows), each with the seq it concerns if any; for
    /// audits.
    fn layout_problems(&self) -> Result<Vec<(Option<Seq>, String)>> {
        Ok(Vec::new())
    }
    /// Entries the index was behind the log files by when this store was
    /// opened (caught up from them then), for audits.
    fn caught_up(&self) -> u64 {
        0
    }
    /// Whether the articles' id sets were rebuilt from the log when this
    /// store was opened (their value files lost, emptied or replaced, or a
    /// rebuild interrupted), for audits.
    fn sets_rebuilt(&self) -> bool {
        false
    }
    /// Why the index could not be opened when this store was opened, if
    /// it could not (it was then moved aside and rebuilt from the log
    /// files), for audits.
    fn index_unreadable(&self) -> Option<&str> {
        None
    }

    /// How the record files disagree with the index, found when the store
    /// was opened: a file shorter than the index says was committed to it
    /// (cut, or restored from an older copy than the index), or whole
    /// commits past its end that could not be taken in. Writers refuse.
    fn files_problem(&self) -> Option<&str> {
        None
    }

    /// What `repair --accept-loss` moved aside when this store was opened
    /// (the record files past the rebuilt index's ends).
    fn given_up(&self) -> &[String] {
        &[]
    }

    /// The first error met bringing the files derived from the log (the id
    /// runs, the Merkle tree's hashes) up to the head when this store was
    /// opened, taken: a warning for most commands (the next open rebuilds
    /// them), a failure for `repair`.
    fn take_derived_failure(&mut self) -> Option<crate::error::Error> {
        None
    }

    /// The first seq of every commit that starts after `after`, in order
    /// (an older cairn's segments, written with no commit record, each as
    /// a commit of its own): where the log's commits begin, as the record
    /// files' commit records mark them. A run of comment merges ends where
    /// its commit does ([`crate::views::Projection::settle`]).
    fn commit_starts(&self, after: Seq) -> Result<Vec<Seq>>;
    /// Every entry of the stored segment that holds `seq`.
    fn segment_of(&self, seq: Seq) -> Result<Vec<LogEntry>>;
    /// The entries of the log segment holding `seq`, decoded as they are
    /// read (a reader after one entry stops decoding there).
    fn segment_entries_of(&self, seq: Seq) -> Result<envelope::SegmentEntries> {
        Ok(envelope::SegmentEntries::from_entries(self.segment_of(seq)?))
    }
    /// A read-only store over the same archive for another thread (the
    /// ingest applies views on one while it appends), when the store can
    /// give one.
    fn reader(&self) -> Option<Box<dyn Store>> {
        None
    }
    /// Makes every commit so far durable.
    fn flush(&mut self) -> Result<()>;
    /// The stored hashes of the archive's Merkle tree, as far as the head
    /// (`None`: this handle keeps none, as a reader's).
    fn merkle(&self) -> Option<&crate::transparency::file::TreeFile> {
        None
    }
    /// How many stored hashes of the Merkle tree the index recorded at the
    /// last commit (`None`: this store records none; `Some(Err)`: the
    /// record does not decode).
    fn merkle_recorded(&self) -> Option<Result<u64>> {
        None
    }
    /// Bytes the archive occupies on disk, where that means something (not
    /// counting the lock file, which names the process holding it).
    fn disk_usage(&self) -> Result<Option<u64>>;
    /// Every log segment in key order, each as its key's seq and its
    /// decoded entries or the reason it does not decode (for audits: one bad
    /// segment does not stop the scan).
    fn scan_segments(&self) -> Box<dyn Iterator<Item = Result<SegmentRead>> + '_>;
}

/// The raw captures (blobs): staged blobs are durable at
/// [`BlobStore::sync_blobs`], before the commit that names them.
pub trait BlobStore {
    /// Writes a blob that becomes durable at the next [`BlobStore::sync_blobs`].
    /// `page` names the page the bytes are a capture of (see
    /// [`page_key`]): a store may keep the blob as a delta against the
    /// previous capture of the same page, and records this blob as that
    /// page's latest with the next commit. `ahead` is what another thread
    /// made of `raw` already ([`Ahead`]); it is used when it is what this
    /// store would make.
    fn stage_blob(
        &mut self,
        id: &BlobId,
        raw: &[u8],
        page: Option<&[u8; 32]>,
        ahead: Option<Ahead>,
    ) -> Result<()>;
    /// What page `page` ([`page_key`]) has recorded as its latest capture
    /// (a later one is kept as a delta against it), as a lookup other
    /// threads can call; `None` when the store keeps no such record.
    fn page_lookup(&self) -> Option<PageLookup> {
        None
    }
    /// The delta [`BlobStore::stage_blob`] would make of some bytes against
    /// a committed blob, as a function other threads can call (the ingest's
    /// readers); `None` when the store makes no deltas.
    fn delta_maker(&self) -> Option<DeltaMaker> {
        None
    }
    /// Every page's latest-capture record (key, blob id or why it does not
    /// decode), for audits.
    fn scan_page_bases(&self) -> Box<dyn Iterator<Item = Result<PageBaseRead>> + '_> {
        Box::new(std::iter::empty())
    }
    /// Makes every staged blob durable.
    fn sync_blobs(&mut self) -> Result<()>;
    /// The raw bytes of blob `id`.
    fn get_blob(&self, id: &BlobId) -> Result<Vec<u8>>;
    /// Every stored blob id, sorted.
    fn blob_ids(&self) -> Result<Vec<BlobId>>;
    /// Bytes the stored blobs occupy (compressed).
    fn blob_bytes(&self) -> Result<u64>;
}

/// The index derived from the log: ids to seqs, each article's ids, parse records.
pub trait IndexStore {
    /// The seq of event `id`, if it is in the log.
    fn seq_of(&self, id: &EventId) -> Result<Option<Seq>>;
    /// The seqs of events `ids`, in order, each `None` when not in the
    /// log. For ids read together (a thread's comments, mostly committed
    /// together); a log that repeats an id (which `verify` reports) may
    /// answer with either of its seqs, which hold the same event.
    fn seqs_of(&self, ids: &[EventId]) -> Result<Vec<Option<Seq>>> {
        ids.iter().map(|id| self.seq_of(id)).collect()
    }
    /// Every event id starting with `prefix`, sorted.
    fn ids_with_prefix(&self, prefix: &HexPrefix) -> Result<Vec<EventId>>;
    /// The parse record of a document already ingested: parse `key` of
    /// blob `blob` (the raw document).
    fn parsed(&self, blob: &BlobId, key: &ParseKey) -> Result<Option<ParsedDoc>>;
    /// The parse records blob `blob`'s own record holds, whatever their
    /// keys (every way the same bytes were read, for telling a re-read of
    /// them from a new observation), and whether that is all of them: a
    /// full record (four) keeps the rest apart, as an archive begun before
    /// format 6 keeps every one, and [`IndexStore::scan_parsed_apart`] finds
    /// those.
    fn parses_of(&self, blob: &BlobId) -> Result<(Vec<ParsedDoc>, bool)>;
    /// A lookup of recorded parse keys that another thread can use while
    /// this store is appended to (the ingest's reader thread: it skips
    /// parsing documents already archived). `None` when the store has none.
    fn parse_lookup(&self) -> Option<crate::ingest::ParseLookup> {
        None
    }
    /// Every parse record, for audits.
    fn scan_parsed(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_>;
    /// The parse records kept apart from their blobs' records (see
    /// [`IndexStore::parses_of`]); a store without any gives them all.
    fn scan_parsed_apart(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_> {
        self.scan_parsed()
    }
    /// Every id index entry (run by run, each in id order), each as the id
    /// and its seq or the reason it does not decode.
    fn scan_index(&self) -> Box<dyn Iterator<Item = Result<IndexRead>> + '_>;
    /// What is wrong with the id index's files (unusable runs, checksums
    /// that do not match), for audits.
    fn index_problems(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The stored (id, seq) of bucket `key` ([`buckets`]) that could be
    /// `ids` (every entry, or only the parts of a split bucket that `ids`
    /// start with), sorted by id: the duplicate check's read per article.
    fn bucket(&self, key: &[u8; 32], ids: &[EventId]) -> Result<Vec<idruns::IdSeq>>;
    /// Every bucket in key order, each as its key and its entries or why
    /// they do not decode, for audits.
    fn scan_buckets(&self) -> Box<dyn Iterator<Item = Result<BucketRead>> + '_>;
}

/// The views' key-value trees.
pub trait ViewStore {
    /// The key-value tree `name` (created empty when missing), for views.
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>>;
    /// Tree `name`, empty, for a run that builds it and that nobody reads
    /// before the run ends and syncs it (a replay's new generation): it may
    /// hold its keys in memory until then ([`vlog::SeparatedTree::held`]).
    fn new_tree(&self, name: &str) -> Result<Arc<dyn KvTree>> {
        self.tree(name)
    }
    /// Removes tree `name` and its contents.
    fn drop_tree(&self, name: &str) -> Result<()>;
    /// The names of every view tree.
    fn tree_names(&self) -> Result<Vec<String>>;
    /// Deletes value files that no view tree owns (left by a process
    /// stopped between dropping a tree and deleting its files, or before
    /// a new tree it made was recorded); returns the names whose files
    /// went.
    fn remove_unowned_values(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Why tree `name` cannot be read as stored (its value files do not
    /// match it), if so.
    fn tree_problem(&self, _name: &str) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Everything an archive needs of its storage: the log, the blobs, the
/// index and the views' trees ([`LogStore`], [`BlobStore`], [`IndexStore`],
/// [`ViewStore`]), implemented together by [`sled_store::SledStore`] and
/// [`memory::MemoryStore`].
pub trait Store: LogStore + BlobStore + IndexStore + ViewStore + Send + Sync {}

impl<T: LogStore + BlobStore + IndexStore + ViewStore + Send + Sync> Store for T {}

/// One segment as an audit reads it: its key's seq, and its entries or why
/// they cannot be decoded.
pub type SegmentRead = (Seq, std::result::Result<Vec<LogEntry>, String>);

/// One bucket as an audit reads it: its key, and its entries or why they
/// cannot be decoded.
pub type BucketRead = ([u8; 32], std::result::Result<Vec<idruns::IdSeq>, String>);

/// One page's latest-capture record as an audit reads it: the page key,
/// and the blob id or why the value does not decode.
pub type PageBaseRead = ([u8; 32], std::result::Result<BlobId, String>);

/// What a page ([`page_key`]) has recorded as its latest capture, looked up
/// from any thread.
pub type PageLookup = std::sync::Arc<dyn Fn(&[u8; 32]) -> PageBase + Send + Sync>;

/// A page's latest-capture record, as [`PageLookup`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageBase {
    /// No capture of the page is recorded: the next is stored whole.
    New,
    /// The page's latest recorded capture.
    Latest(BlobId),
    /// Not known (the record does not decode, or the lookup failed): the
    /// appending thread decides.
    Unknown,
}

/// The delta of some bytes (a capture) against a committed blob (the
/// base), exactly as [`BlobStore::stage_blob`] makes it: `Some(None)` when
/// no delta can be made against that base (its chain is at the maximum
/// depth), `None` when the base cannot be read here (the appending thread
/// then decides).
pub type DeltaMaker = std::sync::Arc<dyn Fn(&[u8], &BlobId) -> Option<Option<Vec<u8>>> + Send + Sync>;

/// A capture's stored bytes, made on another thread than the appending one
/// (an ingest reader), handed to [`BlobStore::stage_blob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ahead {
    /// The bytes compressed whole ([`blobs::compress_whole`]): used when
    /// they state the raw bytes' length.
    Whole(Vec<u8>),
    /// The delta against `base` ([`DeltaMaker`]): used when the store's own
    /// base for the page, when it stages the blob, is `base`.
    Delta {
        /// The blob the delta is against.
        base: BlobId,
        /// The delta, or `None` when none can be made against `base`.
        delta: Option<Vec<u8>>,
    },
}

/// The page a capture is of, for delta-compressing its blob against the
/// previous capture of that page: BLAKE3 over its first article's key
/// (stable across re-scrapes, whatever the file is called), else its source
/// URL, else its source path.
pub fn page_key(capture: &crate::model::Capture) -> [u8; 32] {
    if let Some(a) = capture.articles.first() {
        return buckets::article_bucket(a.key.as_str());
    }
    let mut h = blake3::Hasher::new();
    match &capture.source_url {
        Some(url) => h.update(b"url\0").update(url.as_bytes()),
        None => h.update(b"source\0").update(capture.source.as_bytes()),
    };
    *h.finalize().as_bytes()
}

/// One parse record as an audit reads it: its key, and the record or why
/// it does not decode.
pub type ParsedRead = (ParseKey, std::result::Result<ParsedDoc, String>);

/// One index entry as an audit reads it: the id (or why the key is not one),
/// and the seq it maps to (or why the value is not one).
pub type IndexRead = (std::result::Result<EventId, String>, std::result::Result<Seq, String>);

/// Names one parse of one raw document: BLAKE3 over the blob id and every
/// input of the parse (format, parser version, tz, source URL, fetched_at).
/// See [`parse_key`].
pub type ParseKey = [u8; 32];

/// A parse record as a commit takes it: the raw document's blob, the parse
/// key, and what the document parsed into.
pub type ParseRecord = (BlobId, ParseKey, ParsedDoc);

/// What a document parsed into, recorded with it so that the same bytes
/// with the same parse inputs are recognized without parsing them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedDoc {
    /// Its capture event.
    pub capture: EventId,
    /// Its events by kind (capture included), duplicates within it included.
    pub counts: KindCounts,
}

/// The parse key of a document (docs/architecture.md, "Re-ingest").
pub fn parse_key(
    blob: &BlobId,
    format: &str,
    parser_version: u64,
    tz: Option<&str>,
    source_url: Option<&str>,
    fetched_at: Option<&Timestamp>,
) -> ParseKey {
    let mut e = crate::model::canonical::Encoder::with_tag("cairn/v1/parse");
    e.id(blob.as_bytes())
        .str(format)
        .u64(parser_version)
        .opt_str(tz)
        .opt_str(source_url)
        .opt_time(fetched_at);
    e.hash()
}

/// What a capture's document parsed into, by kind: its articles and
/// comments as it lists them, and itself (the counts of its parse record).
pub fn capture_counts(c: &crate::model::Capture) -> KindCounts {
    let mut counts = KindCounts { captures: 1, ..KindCounts::default() };
    for a in &c.articles {
        counts.articles += u64::from(a.article.is_some());
        counts.comments += a.comments.len() as u64;
    }
    counts
}

/// The parse key a capture was made under.
pub fn parse_key_of(c: &crate::model::Capture) -> ParseKey {
    parse_key(
        &c.blob,
        &c.format,
        c.parser_version,
        c.tz.as_deref(),
        c.source_url.as_deref(),
        c.fetched_at.as_ref(),
    )
}

#[cfg(test)]
pub(crate) mod tests;

/// `f` over the two halves of `items`, the second half on a thread of its
/// own: both results, in order (a panic on that thread is the error
/// `panicked`). Callers combine them as one thread's pass would.
pub(crate) fn on_two_halves<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&[I]) -> Result<T> + Sync,
    panicked: &str,
) -> (Result<T>, Result<T>) {
    let (first, second) = items.split_at(items.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| f(second));
        let mine = f(first);
        (mine, other.join().unwrap_or_else(|_| Err(crate::error::Error::Internal(panicked.into()))))
    })
}

/// The Merkle tree's leaf hashes of `count` entries from leaf `first` (the
/// entry at seq `first + 1`), read from `store`'s log.
pub fn read_leaves<S: LogStore + ?Sized>(store: &S, first: u64, count: u64) -> Result<Vec<[u8; 32]>> {
    let mut out = Vec::with_capacity(count as usize);
    for e in store.entries_from(Seq(first + 1))?.take(count as usize) {
        out.push(e?.leaf_hash());
    }
    if (out.len() as u64) < count {
        return Err(crate::error::Error::MissingEntry(Seq(first + 1 + out.len() as u64)));
    }
    Ok(out)
}

/// What this process says it is in an archive's lock file (`PID COMMAND`),
/// so another cairn waiting for the archive can name it.
static PROCESS_LABEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the command this process runs, for [`record_holder`].
pub fn set_process_label(command: &str) {
    let _ = PROCESS_LABEL.set(command.to_string());
}

/// Writes `PID COMMAND` into the lock file this process now holds (best
/// effort: the lock itself is what excludes others).
pub fn record_holder(lock: &std::fs::File) {
    use std::os::unix::fs::FileExt;
    let label = PROCESS_LABEL.get().map_or("library", String::as_str);
    let text = format!("{} {label}\n", std::process::id());
    // Written, then cut to its length: a reader never sees an empty file.
    let _ = lock.write_all_at(text.as_bytes(), 0).and_then(|()| lock.set_len(text.len() as u64));
}

/// Options to open a file of the archive's own for reading and writing,
/// making it when missing, never cutting it, and never following a link
/// of its name (whose target, a file outside the archive, would be
/// written over): the lock file, the value files, the Merkle tree's
/// hashes.
pub(crate) fn own_file_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false).custom_flags(libc::O_NOFOLLOW);
    options
}

/// The error for opening file `path` of the archive's own that failed
/// (the lock, a value file, the Merkle tree's hashes): a link there
/// ([`own_file_options`] never follows one) says what to do.
pub(crate) fn own_file_error(path: &std::path::Path, e: std::io::Error) -> crate::error::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) => crate::error::Error::Usage(format!(
            "{} is a symbolic link: cairn writes this file of the archive itself and never through a link; \
             remove the link (cairn makes the file again)",
            path.display()
        )),
        _ => crate::error::Error::io(path, e),
    }
}

/// Opens file `path` of the archive's own, derived from the log
/// ([`own_file_options`]): a directory in its place is damage, moved aside
/// (`NAME.damaged-SECONDS`, with a warning) and the file made anew, for
/// the caller to rebuild, as it does an empty one; a link there is
/// refused ([`own_file_error`]).
pub(crate) fn open_derived_file(path: &std::path::Path) -> crate::error::Result<std::fs::File> {
    match own_file_options().open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
            directory_aside(path).map_err(|e| crate::error::Error::io(path, e))?;
            own_file_options().open(path).map_err(|e| own_file_error(path, e))
        }
        opened => opened.map_err(|e| own_file_error(path, e)),
    }
}

/// Moves the directory at `path`, where cairn keeps a file, aside
/// (`NAME.damaged-SECONDS`), with a warning.
fn directory_aside(path: &std::path::Path) -> std::io::Result<()> {
    let aside = records::aside_name(path, "damaged");
    tracing::warn!(
        "{} is a directory, not the file cairn keeps there; moved to {} and made again",
        path.display(),
        aside.display()
    );
    std::fs::rename(path, &aside)
}

/// Makes the file at `path` anew for writing: whatever has that name is
/// removed first (a link itself, never its target; a directory is moved
/// aside), and the file is created exclusively, so that nothing is
/// written through a link of that name (temporary files, the space
/// probe).
pub(crate) fn create_fresh(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        // (A directory there is moved aside, never removed.)
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => directory_aside(path)?,
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(path)
}

/// Opens (making it when missing, never cutting it, never following a
/// link) the lock file at `path`, for writing; not yet locked.
pub(crate) fn open_lock_file(path: &std::path::Path) -> crate::error::Result<std::fs::File> {
    // (A link named `lock` is never followed: its target, any file the
    // user can write, would get the holder's line written over it.)
    own_file_options().open(path).map_err(|e| own_file_error(path, e))
}

/// Takes the lock of the archive at `root` (its `lock` file, made when
/// missing), recording this process in it; [`crate::error::Error::ArchiveInUse`]
/// naming its holder when another process has it.
pub fn lock_archive(root: &std::path::Path) -> crate::error::Result<std::fs::File> {
    use crate::error::Error;
    let path = root.join("lock");
    let lock = open_lock_file(&path)?;
    match lock.try_lock() {
        Ok(()) => record_holder(&lock),
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::ArchiveInUse(root.to_path_buf(), lock_holder(&path)))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    Ok(lock)
}

/// Who holds the lock file at `path`, as it recorded itself (`PID COMMAND`).
/// A record of a process that is gone (a holder that did not record itself
/// leaves the last one) names no one.
pub fn lock_holder(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(128).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    let (pid, command) = line.split_once(' ')?;
    let ok = (1..=10).contains(&pid.len())
        && pid.bytes().all(|b| b.is_ascii_digit())
        && command.len() <= 40
        && command.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && std::path::Path::new("/proc").join(pid).exists();
    ok.then(|| format!("{pid} ({command})"))
}

/// Whether `path` holds an archive (its marker file).
pub fn is_archive(path: &std::path::Path) -> bool {
    path.join(sled_store::MARKER).exists()
}
