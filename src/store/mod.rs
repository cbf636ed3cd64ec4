//! The append-only log and everything that writes to it.
//!
//! [`Store`] is the small storage trait (commit a segment of entries, look up
//! an id, read entries in order, keep blobs) with two implementations:
//! [`sled_store::SledStore`] for archives on disk and [`memory::MemoryStore`]
//! for tests and dry runs. [`Archive`] sits on top and owns the rules: dedupe
//! by id, dense seqs, the hash chain, one atomic commit per document.

pub mod blobs;
pub mod buckets;
pub mod envelope;
pub mod idruns;
pub mod kv;
pub mod memory;
pub mod portable;
pub mod records;
pub mod sled_store;

use crate::error::{Error, Result};
use crate::model::{
    chain_step, BlobId, ChainHash, Event, EventId, EventKind, HexPrefix, LogEntry, Seq, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

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

/// Storage for the log, the id index, the head and the blobs.
///
/// Implementations must make [`Store::commit`] atomic (all entries and the
/// head, or nothing) and staged blobs durable at [`Store::sync_blobs`],
/// before the commit that names them.
/// Unsupported operations return an error; none panics.
pub trait Store: Send + Sync {
    /// The head state as of the last commit.
    fn head(&self) -> Result<HeadState>;
    /// The seq of event `id`, if it is in the log.
    fn seq_of(&self, id: &EventId) -> Result<Option<Seq>>;
    /// Every event id starting with `prefix`, sorted.
    fn ids_with_prefix(&self, prefix: &HexPrefix) -> Result<Vec<EventId>>;
    /// Entries in log order, starting at seq `from`.
    fn entries_from(&self, from: Seq) -> Result<Box<dyn Iterator<Item = Result<LogEntry>> + '_>>;
    /// Atomically appends `segments` (one per document, consecutive seqs
    /// following the head) with their index entries and the documents'
    /// parse records, and sets the head to `head`.
    fn commit(
        &mut self,
        segments: &[Vec<LogEntry>],
        head: &HeadState,
        parsed: &[(ParseKey, ParsedDoc)],
    ) -> Result<()>;
    /// The parse record of a document already ingested.
    fn parsed(&self, key: &ParseKey) -> Result<Option<ParsedDoc>>;
    /// A lookup of recorded parse keys that another thread can use while
    /// this store is appended to (the ingest's reader thread: it skips
    /// parsing documents already archived). `None` when the store has none.
    fn parse_lookup(&self) -> Option<crate::ingest::ParseLookup> {
        None
    }
    /// Every parse record, for audits.
    fn scan_parsed(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_>;
    /// Writes a blob that becomes durable at the next [`Store::sync_blobs`].
    /// `page` names the page the bytes are a capture of (see
    /// [`page_key`]): a store may keep the blob as a delta against the
    /// previous capture of the same page, and records this blob as that
    /// page's latest with the next commit.
    fn stage_blob(&mut self, id: &BlobId, raw: &[u8], page: Option<&[u8; 32]>) -> Result<()>;
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
    /// Every entry of the stored segment that holds `seq`.
    fn segment_of(&self, seq: Seq) -> Result<Vec<LogEntry>>;
    /// Makes every commit so far durable.
    fn flush(&mut self) -> Result<()>;
    /// Bytes the archive occupies on disk, where that means something.
    fn disk_usage(&self) -> Result<Option<u64>>;
    /// Bytes the stored blobs occupy (compressed).
    fn blob_bytes(&self) -> Result<u64>;
    /// Every log segment in key order, each as its key's seq and its
    /// decoded entries or the reason it does not decode (for audits: one bad
    /// segment does not stop the scan).
    fn scan_segments(&self) -> Box<dyn Iterator<Item = Result<SegmentRead>> + '_>;
    /// Every id index entry (run by run, each in id order), each as the id
    /// and its seq or the reason it does not decode.
    fn scan_index(&self) -> Box<dyn Iterator<Item = Result<IndexRead>> + '_>;
    /// What is wrong with the id index's files (unusable runs, checksums
    /// that do not match), for audits.
    fn index_problems(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The (id, seq) of every event of bucket `key` ([`buckets`]), sorted
    /// by id: the duplicate check's one read per article.
    fn bucket(&self, key: &[u8; 32]) -> Result<Vec<idruns::IdSeq>>;
    /// Every bucket in key order, each as its key and its entries or why
    /// they do not decode, for audits.
    fn scan_buckets(&self) -> Box<dyn Iterator<Item = Result<BucketRead>> + '_>;
    /// The key-value tree `name` (created empty when missing), for views.
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>>;
    /// Removes tree `name` and its contents.
    fn drop_tree(&self, name: &str) -> Result<()>;
    /// The names of every view tree.
    fn tree_names(&self) -> Result<Vec<String>>;
}

/// One segment as an audit reads it: its key's seq, and its entries or why
/// they cannot be decoded.
pub type SegmentRead = (Seq, std::result::Result<Vec<LogEntry>, String>);

/// One bucket as an audit reads it: its key, and its entries or why they
/// cannot be decoded.
pub type BucketRead = ([u8; 32], std::result::Result<Vec<idruns::IdSeq>, String>);

/// One page's latest-capture record as an audit reads it: the page key,
/// and the blob id or why the value does not decode.
pub type PageBaseRead = ([u8; 32], std::result::Result<BlobId, String>);

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

/// Where `recorded_at` comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The wall clock, in UTC, to whole seconds.
    Wall,
    /// A fixed instant (from `SOURCE_DATE_EPOCH`), for reproducible archives.
    Fixed(Timestamp),
}

impl Clock {
    /// `Fixed` when `SOURCE_DATE_EPOCH` is set, else `Wall`.
    pub fn from_env() -> Result<Clock> {
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => {
                v.trim().parse::<i64>().ok().and_then(Timestamp::from_unix).map(Clock::Fixed).ok_or_else(
                    || Error::Usage(format!("SOURCE_DATE_EPOCH={v:?} is not a Unix time in seconds")),
                )
            }
            Err(_) => Ok(Clock::Wall),
        }
    }

    /// The time to record now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall => Timestamp::now_utc(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// What appending one document did (or, in a dry run, would do).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Events that were not in the archive.
    pub new: KindCounts,
    /// Events already in the archive (or earlier in the same document).
    pub duplicate: KindCounts,
    /// The seqs appended, first and last, when anything was.
    pub appended: Option<(Seq, Seq)>,
}

/// One input document ready to append: its raw bytes and its events, in the
/// order they are to be logged (articles and comments, then the capture).
#[derive(Clone, Debug)]
pub struct NewDocument<'a> {
    /// The raw bytes, stored as a blob when the document holds a capture.
    pub raw: &'a [u8],
    /// The events.
    pub events: Vec<Event>,
    /// The ids of `events` when already computed (else empty).
    pub ids: Vec<EventId>,
    /// The document's parse key, recorded with it.
    pub parse_key: Option<ParseKey>,
}

impl<'a> NewDocument<'a> {
    /// A document without precomputed ids or parse key.
    pub fn new(raw: &'a [u8], events: Vec<Event>) -> NewDocument<'a> {
        NewDocument { raw, events, ids: Vec::new(), parse_key: None }
    }
}

/// How to open an archive directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create it when missing (commands that write).
    CreateIfMissing,
    /// It must exist (commands that read).
    MustExist,
}

/// An open archive: a store plus the rules of the log.
pub struct Archive {
    store: Box<dyn Store>,
    /// The head including appended documents not committed yet.
    head: HeadState,
    clock: Clock,
    /// Commit several documents per store batch (see [`Archive::set_group_commit`]).
    group: bool,
    pending: Vec<Vec<LogEntry>>,
    pending_ids: HashMap<EventId, Seq>,
    pending_parsed: Vec<(ParseKey, ParsedDoc)>,
    pending_events: usize,
    /// Segments committed since the last [`Archive::take_committed`], kept
    /// only while [`Archive::set_keep_committed`] is on.
    committed: Vec<Vec<LogEntry>>,
    keep_committed: bool,
}

/// Documents are committed together once this many events are pending.
const GROUP_EVENTS: usize = 16_384;
/// … or this many documents.
const GROUP_DOCUMENTS: usize = 512;

impl Archive {
    /// Opens (or creates) the archive at `path`, taking its lock.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Archive> {
        let store = sled_store::SledStore::open(path, mode)?;
        Archive::with_store(Box::new(store))
    }

    /// Opens the archive at `path` with its index rebuilt from the log and
    /// pack files (`cairn repair`): the old `db/` is moved aside (its new
    /// name is returned). Views are rebuilt by the next catch-up.
    pub fn open_rebuilt(
        path: &Path,
        progress: sled_store::Progress<'_>,
    ) -> Result<(Archive, Option<sled_store::ReplacedIndex>)> {
        let (store, moved) = sled_store::SledStore::open_rebuilt(path, progress)?;
        Ok((Archive::with_store(Box::new(store))?, moved))
    }

    /// An empty archive in memory (tests, dry runs without an archive).
    pub fn in_memory() -> Archive {
        Archive::from_parts(Box::new(memory::MemoryStore::default()), HeadState::default(), Clock::Wall)
    }

    /// Wraps any store.
    pub fn with_store(store: Box<dyn Store>) -> Result<Archive> {
        let head = store.head()?;
        Ok(Archive::from_parts(store, head, Clock::from_env()?))
    }

    fn from_parts(store: Box<dyn Store>, head: HeadState, clock: Clock) -> Archive {
        Archive {
            store,
            head,
            clock,
            group: false,
            pending: Vec::new(),
            pending_ids: HashMap::new(),
            pending_parsed: Vec::new(),
            pending_events: 0,
            committed: Vec::new(),
            keep_committed: false,
        }
    }

    /// While on, committed segments are kept for [`Archive::take_committed`]
    /// (so that views can be updated from memory).
    pub fn set_keep_committed(&mut self, on: bool) {
        self.keep_committed = on;
        if !on {
            self.committed.clear();
        }
    }

    /// The segments committed since the last call.
    pub fn take_committed(&mut self) -> Vec<Vec<LogEntry>> {
        std::mem::take(&mut self.committed)
    }

    /// With `true`, appended documents are committed to the store several
    /// at a time (each batch atomic, so whole documents only) and their
    /// blobs synced once per batch; [`Archive::flush`] commits the rest.
    /// Reads of the log see only committed documents, so a caller that
    /// enables this flushes before reading.
    pub fn set_group_commit(&mut self, on: bool) {
        self.group = on;
    }

    /// The parse record of `key`, pending documents included.
    pub fn parsed(&self, key: &ParseKey) -> Result<Option<ParsedDoc>> {
        match self.pending_parsed.iter().find(|(k, _)| k == key) {
            Some((_, p)) => Ok(Some(*p)),
            None => self.store.parsed(key),
        }
    }

    /// Commits the pending documents in one atomic store batch, after
    /// making their blobs durable.
    pub fn commit_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.pending_parsed.is_empty() {
            return Ok(());
        }
        self.store.sync_blobs()?;
        self.store.commit(&self.pending, &self.head, &self.pending_parsed)?;
        if self.keep_committed {
            self.committed.append(&mut self.pending);
        }
        self.pending.clear();
        self.pending_ids.clear();
        self.pending_parsed.clear();
        self.pending_events = 0;
        Ok(())
    }

    /// Opens an existing archive for an audit: a head record that does not
    /// decode is returned as a message instead of failing the open (the
    /// archive then reports an empty head and must not be appended to).
    pub fn open_for_audit(path: &Path) -> Result<(Archive, Option<String>)> {
        let store = sled_store::SledStore::open(path, OpenMode::MustExist)?;
        let (head, problem) = match store.head() {
            Ok(h) => (h, None),
            Err(e) => (HeadState::default(), Some(e.to_string())),
        };
        Ok((Archive::from_parts(Box::new(store), head, Clock::Wall), problem))
    }

    /// Sets where `recorded_at` comes from.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The head as of the last append.
    pub fn head(&self) -> &HeadState {
        &self.head
    }

    /// The underlying store (read access for reports and audits).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Appends the new events of one document atomically, after storing its
    /// raw bytes as a blob. Events already in the archive, or repeated within
    /// the document, are counted as duplicates and not appended. With
    /// `dry_run` nothing is written.
    pub fn append_document(&mut self, doc: &NewDocument<'_>, dry_run: bool) -> Result<AppendOutcome> {
        let mut outcome = AppendOutcome::default();
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut fresh: Vec<(EventId, &Event)> = Vec::new();
        // The stored ids of each bucket (article) the document touches: one
        // read per article, not one lookup per event.
        let mut held: HashMap<[u8; 32], Vec<idruns::IdSeq>> = HashMap::new();
        for (i, event) in doc.events.iter().enumerate() {
            let id = doc.ids.get(i).copied().unwrap_or_else(|| event.id());
            let duplicate = !seen.insert(id) || self.pending_ids.contains_key(&id) || {
                let key = buckets::bucket_of(event);
                let stored = match held.entry(key) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(self.store.bucket(&key)?),
                };
                buckets::holds(stored, &id)
            };
            if duplicate {
                outcome.duplicate.add(event.kind());
            } else {
                outcome.new.add(event.kind());
                fresh.push((id, event));
            }
        }
        if dry_run {
            return Ok(outcome);
        }
        if let Some(key) = doc.parse_key {
            if self.parsed(&key)?.is_none() {
                let capture = doc.events.iter().enumerate().rev().find_map(|(i, e)| match e {
                    Event::Capture(_) => Some(doc.ids.get(i).copied().unwrap_or_else(|| e.id())),
                    _ => None,
                });
                if let Some(capture) = capture {
                    let mut counts = outcome.new;
                    counts.merge(&outcome.duplicate);
                    self.pending_parsed.push((key, ParsedDoc { capture, counts }));
                }
            }
        }
        if fresh.is_empty() {
            if !self.group {
                self.commit_pending()?;
            }
            return Ok(outcome);
        }
        for (_, event) in &fresh {
            if let Event::Capture(c) = event {
                let actual = BlobId(*blake3::hash(doc.raw).as_bytes());
                if actual != c.blob {
                    return Err(Error::Usage(format!(
                        "capture names blob {} but the document's bytes hash to {}",
                        c.blob, actual
                    )));
                }
                self.store.stage_blob(&c.blob, doc.raw, Some(&page_key(c)))?;
            }
        }
        let recorded_at = self.clock.now();
        let mut head = self.head;
        let mut entries = Vec::with_capacity(fresh.len());
        for (id, event) in fresh {
            head.seq = head.seq.next();
            let mut entry =
                LogEntry { seq: head.seq, id, recorded_at, event: event.clone(), head: ChainHash::GENESIS };
            head.hash = chain_step(&head.hash, &entry.entry_hash());
            entry.head = head.hash;
            head.counts.add(event.kind());
            entries.push(entry);
        }
        outcome.appended = Some((entries[0].seq, head.seq));
        self.head = head;
        for e in &entries {
            self.pending_ids.insert(e.id, e.seq);
        }
        self.pending_events += entries.len();
        self.pending.push(entries);
        if !self.group || self.pending_events >= GROUP_EVENTS || self.pending.len() >= GROUP_DOCUMENTS {
            self.commit_pending()?;
        }
        Ok(outcome)
    }

    /// Stages a blob for [`portable::import`]; it is synced before the
    /// next imported segment is committed.
    pub fn import_blob(&mut self, id: &BlobId, raw: &[u8]) -> Result<()> {
        self.store.stage_blob(id, raw, None)
    }

    /// Appends entries checked by [`portable::import`] (consecutive seqs
    /// after the head, chain and ids already verified) with the head after
    /// them.
    pub fn import_segment(&mut self, entries: Vec<LogEntry>, head: &HeadState) -> Result<()> {
        if entries.first().map(|e| e.seq) != Some(self.head.seq.next()) {
            return Err(Error::Corrupt("import segment does not follow the head".into()));
        }
        self.store.sync_blobs()?;
        self.store.commit(&[entries], head, &[])?;
        self.head = *head;
        Ok(())
    }

    /// Makes everything appended so far durable. Commands call this before
    /// they report success.
    pub fn flush(&mut self) -> Result<()> {
        self.commit_pending()?;
        self.store.flush()
    }

    /// The entry at `seq`.
    pub fn entry(&self, seq: Seq) -> Result<LogEntry> {
        self.store.segment_of(seq)?.into_iter().find(|e| e.seq == seq).ok_or(Error::MissingEntry(seq))
    }

    /// The event with id `id`.
    pub fn event(&self, id: &EventId) -> Result<Event> {
        match self.entry_by_id(id)? {
            Some(e) => Ok(e.event),
            None => Err(Error::NotFound(format!("no event {id}"))),
        }
    }

    /// The entry of event `id`, if the log holds it. The index's answer is
    /// checked against the entry it points at: a damaged index is an
    /// error, never another event.
    pub fn entry_by_id(&self, id: &EventId) -> Result<Option<LogEntry>> {
        match self.store.seq_of(id)? {
            None => Ok(None),
            Some(seq) => {
                let entry = self.entry(seq)?;
                if entry.id != *id {
                    return Err(stale_index(id, seq, &entry.id));
                }
                Ok(Some(entry))
            }
        }
    }

    /// The events with these ids, read with one decode per log segment
    /// (ids are looked up, sorted by seq, and each segment is read once).
    /// An id not in the log is an error.
    pub fn events_by_id(&self, ids: &[EventId]) -> Result<HashMap<EventId, Event>> {
        let mut seqs: Vec<(EventId, Seq)> = Vec::with_capacity(ids.len());
        for id in ids {
            let seq = self.store.seq_of(id)?.ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
            seqs.push((*id, seq));
        }
        let all: Vec<Seq> = seqs.iter().map(|(_, s)| *s).collect();
        let found = self.entries_at_with(&all, |e| Ok((e.id, e.event.clone())))?;
        let mut out = HashMap::with_capacity(seqs.len());
        for (id, seq) in seqs {
            let (at, event) = found.get(&seq).ok_or(Error::MissingEntry(seq))?;
            if *at != id {
                return Err(stale_index(&id, seq, at));
            }
            out.insert(id, event.clone());
        }
        Ok(out)
    }

    /// What `f` takes from each entry at these seqs, read with one decode
    /// per log segment, without the id index. A seq past the log is an
    /// error.
    pub fn entries_at_with<T>(
        &self,
        seqs: &[Seq],
        mut f: impl FnMut(&LogEntry) -> Result<T>,
    ) -> Result<HashMap<Seq, T>> {
        let mut sorted = seqs.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut out = HashMap::with_capacity(sorted.len());
        let mut segment: Vec<LogEntry> = Vec::new();
        for seq in sorted {
            let held =
                segment.first().is_some_and(|f| f.seq <= seq) && segment.last().is_some_and(|l| l.seq >= seq);
            if !held {
                segment = self.store.segment_of(seq)?;
            }
            let entry = segment.iter().find(|e| e.seq == seq).ok_or(Error::MissingEntry(seq))?;
            out.insert(seq, f(entry)?);
        }
        Ok(out)
    }

    /// Entries in log order from `from`.
    pub fn entries_from(&self, from: Seq) -> Result<Box<dyn Iterator<Item = Result<LogEntry>> + '_>> {
        self.store.entries_from(from)
    }

    /// Finds the one event whose id starts with `prefix` (hex), as git does.
    pub fn resolve_prefix(&self, prefix: &str) -> Result<(EventId, Seq)> {
        let p = HexPrefix::parse(prefix)
            .ok_or_else(|| Error::Usage(format!("{prefix:?} is not a hex id prefix")))?;
        let ids = self.store.ids_with_prefix(&p)?;
        match ids.as_slice() {
            [] => Err(Error::NotFound(format!("no event matches {prefix}"))),
            [id] => match self.entry_by_id(id)? {
                Some(e) => Ok((*id, e.seq)),
                None => Err(Error::Corrupt(format!("index lost {id} during lookup"))),
            },
            _ => Err(Error::Ambiguous { prefix: prefix.to_string(), candidates: ids }),
        }
    }
}

/// The error for an index entry that points at another event.
fn stale_index(id: &EventId, seq: Seq, holds: &EventId) -> Error {
    Error::Corrupt(format!(
        "the id index maps {id} to seq {seq}, which holds {holds}; `cairn repair` rebuilds the index"
    ))
}

#[cfg(test)]
mod tests;
