//! [`Archive`]: a store plus the rules of the log (dedupe by id, dense
//! seqs, the hash chain, one atomic commit per document or per
//! [`CommitGroup`] of documents), and the lookups built on them.

use crate::error::{Error, Result};
use crate::model::{
    chain_step, ArticleKey, BlobId, ChainHash, Event, EventId, HexPrefix, IdMap, LogEntry, Seq, Timestamp,
};
use crate::store::LogStore;
use crate::store::{
    buckets, idruns, kv, memory, page_key, sled_store, HeadState, KindCounts, KvTree, ParseKey, ParsedDoc,
    Store,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
/// Appending takes it by value: its events move into the log entries.
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
    /// BLAKE3 of `raw` when the caller hashed it already (the reader
    /// threads of an ingest, from the very bytes `raw` borrows): the blob
    /// is not hashed again. Crate-only: nothing outside can make the
    /// archive trust a hash it did not compute.
    pub(crate) hashed: Option<BlobId>,
    /// What the reader threads of an ingest made of `raw` ahead: compressed
    /// whole (a page with no earlier capture) or a delta against the page's
    /// latest committed capture ([`super::Ahead`]); used when it is what
    /// the store would make. Crate-only, as `hashed`.
    pub(crate) ahead: Option<super::Ahead>,
}

impl<'a> NewDocument<'a> {
    /// A document without precomputed ids or parse key.
    pub fn new(raw: &'a [u8], events: Vec<Event>) -> NewDocument<'a> {
        NewDocument { raw, events, ids: Vec::new(), parse_key: None, hashed: None, ahead: None }
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
    /// Documents appended through a [`CommitGroup`] and not committed yet.
    pending: Vec<Vec<LogEntry>>,
    pending_ids: IdMap<Seq>,
    pending_parsed: Vec<super::ParseRecord>,
    pending_events: usize,
    /// A commit failed: the store may hold more than this archive's head
    /// says, so it appends nothing more (the next open catches up).
    failed: bool,
    /// Views computed for one query (`--at`), read instead of the stored
    /// ones.
    views_at: Option<Arc<ViewsAt>>,
    /// The parse records of each blob, read once when a blob's own record
    /// does not hold them all ([`Archive::parses_of`]).
    kept_apart: std::sync::Mutex<Option<std::collections::HashMap<BlobId, Vec<ParsedDoc>>>>,
}

impl Drop for Archive {
    fn drop(&mut self) {
        // sled's last handle may panic as it closes: caught there.
        let store = std::mem::replace(&mut self.store, Box::new(memory::MemoryStore::default()));
        super::close::close(store);
    }
}

/// Views computed for one query as of a past point (`--at`), standing in
/// for the stored views while this [`Archive`] handle lives; the stored
/// views are not touched. Built by `views::compute_at`.
pub struct ViewsAt {
    /// Each view's tree, by view name (state and cursor).
    pub trees: Vec<(String, Arc<dyn KvTree>)>,
    /// The last seq the views reflect.
    pub seq: Seq,
    /// Set when they hold what was observed up to this time.
    pub observed_until: Option<Timestamp>,
    /// Where the trees keep their state (in memory, or a temporary
    /// directory removed when this is dropped, after the trees).
    pub scratch: kv::Scratch,
}

impl ViewsAt {
    /// The tree of view `name`, if it was computed.
    pub fn tree(&self, name: &str) -> Option<Arc<dyn KvTree>> {
        self.trees.iter().find(|(n, _)| n == name).map(|(_, t)| Arc::clone(t))
    }
}

/// A scoped commit group: documents appended through it are committed to
/// the store several at a time (each store batch atomic, so whole
/// documents only; their blobs synced once per batch), and
/// [`CommitGroup::commit`] commits the rest. Dropped without `commit` (an
/// error on the way), the documents not committed yet are discarded:
/// nothing was acknowledged for them.
///
/// ```
/// # use cairn::store::{Archive, NewDocument};
/// let mut archive = Archive::in_memory();
/// let mut g = archive.group();
/// // g.append(doc, false)?; … as many as there are
/// let committed = g.commit().unwrap(); // the segments committed, for views
/// assert!(committed.is_empty());
/// ```
pub struct CommitGroup<'a> {
    archive: &'a mut Archive,
    /// Segments committed by this group since the last
    /// [`CommitGroup::take_committed`].
    committed: Vec<Vec<LogEntry>>,
    done: bool,
}

impl CommitGroup<'_> {
    /// Appends one document ([`Archive::append_document`], without its
    /// own commit): committed with others once enough are pending.
    pub fn append(&mut self, doc: NewDocument<'_>, dry_run: bool) -> Result<AppendOutcome> {
        let outcome = self.archive.stage_document(doc, dry_run)?;
        if self.archive.pending_events >= GROUP_EVENTS || self.archive.pending.len() >= GROUP_DOCUMENTS {
            self.commit_batch()?;
        }
        Ok(outcome)
    }

    fn commit_batch(&mut self) -> Result<()> {
        let segments = self.archive.commit_pending()?;
        self.committed.extend(segments);
        Ok(())
    }

    /// The archive, for reads (pending documents' parse records and head
    /// included; the log holds only what was committed).
    pub fn archive(&self) -> &Archive {
        self.archive
    }

    /// The segments this group committed since the last call (views are
    /// updated from them in memory).
    pub fn take_committed(&mut self) -> Vec<Vec<LogEntry>> {
        std::mem::take(&mut self.committed)
    }

    /// Commits every pending document; returns the segments committed
    /// since the last [`CommitGroup::take_committed`].
    pub fn commit(mut self) -> Result<Vec<Vec<LogEntry>>> {
        self.commit_batch()?;
        self.done = true;
        Ok(std::mem::take(&mut self.committed))
    }
}

impl Drop for CommitGroup<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.archive.discard_pending();
        }
    }
}

/// [`Archive::tree_root_from_log`] hashes on two threads from this many
/// entries.
const ROOT_ON_TWO_THREADS_FROM: u64 = 65_536;

/// [`Archive::entries_at_with`] reads on two threads from this many seqs.
const PARALLEL_READS: usize = 4096;
/// Documents are committed together once this many events are pending.
const GROUP_EVENTS: usize = 16_384;
/// … or this many documents.
const GROUP_DOCUMENTS: usize = 512;

/// Opens the sled store at `path` and makes `then` of it. sled finds some
/// damage to its files only when it reads a page: found while opening
/// (here, or in `then`'s first reads), the index is moved to
/// `db.unreadable` and rebuilt from the log files, as one sled cannot open
/// at all is ([`sled_store::SledStore::open_after_damage`]), and `then` is
/// made again.
fn open_store<T>(
    path: &Path,
    mode: OpenMode,
    then: impl Fn(sled_store::SledStore) -> Result<T>,
) -> Result<T> {
    let first = sled_store::SledStore::open(path, mode).and_then(&then);
    match first.as_ref().err().and_then(Error::index_damage) {
        Some(why) => then(sled_store::SledStore::open_after_damage(path, mode, why)?),
        None => first,
    }
}

impl Archive {
    /// Opens (or creates) the archive at `path`, taking its lock.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Archive> {
        open_store(path, mode, |mut store| {
            store.drop_stale_views()?;
            Archive::with_store(Box::new(store))
        })
    }

    /// Opens the archive at `path` with its index rebuilt from the log and
    /// pack files (`cairn repair`): the old `db/` is moved aside (its new
    /// name is returned). Views are rebuilt by the next catch-up. When the
    /// log files no longer close every entry the old index recorded,
    /// nothing is changed ([`Error::RepairWouldLose`]) unless `accept_loss`.
    pub fn open_rebuilt(
        path: &Path,
        accept_loss: bool,
        progress: sled_store::Progress<'_>,
    ) -> Result<(Archive, Option<sled_store::ReplacedIndex>)> {
        let (mut store, moved) = sled_store::SledStore::open_rebuilt(path, accept_loss, progress)?;
        store.drop_stale_views()?;
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
            pending: Vec::new(),
            pending_ids: IdMap::default(),
            pending_parsed: Vec::new(),
            pending_events: 0,
            failed: false,
            views_at: None,
            kept_apart: Default::default(),
        }
    }

    /// A read-only handle on this archive for another thread, seeing every
    /// commit as it lands ([`Archive::reload_head`] brings its head up);
    /// `None` when the store cannot give one (in memory).
    pub fn reader(&self) -> Option<Archive> {
        let store = self.store.reader()?;
        let mut reader = Archive::from_parts(store, self.head, self.clock);
        reader.views_at = self.views_at.clone();
        Some(reader)
    }

    /// Reads the head again from the store (a reader, after the writer
    /// committed).
    pub fn reload_head(&mut self) -> Result<()> {
        self.head = self.store.head()?;
        Ok(())
    }

    /// Reads views from `views` instead of the stored ones, from now on
    /// (`--at`: views computed for one query).
    pub fn set_views_at(&mut self, views: ViewsAt) {
        self.views_at = Some(Arc::new(views));
    }

    /// The views computed for this query, if any ([`Archive::set_views_at`]).
    pub fn views_at(&self) -> Option<&ViewsAt> {
        self.views_at.as_deref()
    }

    /// Starts a [`CommitGroup`].
    pub fn group(&mut self) -> CommitGroup<'_> {
        CommitGroup { archive: self, committed: Vec::new(), done: false }
    }

    /// Forgets the documents appended and not committed (their blobs were
    /// staged, never referenced by a commit).
    fn discard_pending(&mut self) {
        if self.pending.is_empty() && self.pending_parsed.is_empty() {
            return;
        }
        self.pending.clear();
        self.pending_ids.clear();
        self.pending_parsed.clear();
        self.pending_events = 0;
        if let Ok(head) = self.store.head() {
            self.head = head;
        }
    }

    /// Every parse record of blob `blob`, those not yet committed first
    /// ([`super::IndexStore::parses_of`]). Where some may be kept apart
    /// from its record (a blob already stored, in an archive begun before
    /// format 6 or with a blob parsed more than four ways), those are found
    /// by reading every parse record kept apart and its capture, once per
    /// handle ([`Archive::kept_apart`]).
    pub fn parses_of(&self, blob: &BlobId) -> Result<Vec<ParsedDoc>> {
        let mut out: Vec<ParsedDoc> =
            self.pending_parsed.iter().filter(|(b, _, _)| b == blob).map(|(_, _, p)| *p).collect();
        let (held, all) = self.store.parses_of(blob)?;
        out.extend(held);
        if !all {
            let mut apart = self.kept_apart.lock().unwrap_or_else(|p| p.into_inner());
            if apart.is_none() {
                *apart = Some(self.parses_by_blob()?);
            }
            let found = apart.as_ref().and_then(|m| m.get(blob)).into_iter().flatten();
            for p in found {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
        Ok(out)
    }

    /// The committed parse records kept apart from their blobs' records,
    /// by the blob their capture read. One that does not decode, or whose
    /// capture cannot be read, is an error: left out, a page re-read would
    /// be dated now, for good (`verify` names the damage, `repair` mends
    /// the index).
    fn parses_by_blob(&self) -> Result<std::collections::HashMap<BlobId, Vec<ParsedDoc>>> {
        let mut by_blob: std::collections::HashMap<BlobId, Vec<ParsedDoc>> = Default::default();
        for read in self.store.scan_parsed_apart() {
            let (key, doc) = read?;
            let doc = doc.map_err(|why| {
                Error::Corrupt(format!("the parse record {}: {why}", crate::model::ids::to_hex(&key[..8])))
            })?;
            if let Some(LogEntry { event: Event::Capture(c), .. }) = self.entry_by_id(&doc.capture)? {
                by_blob.entry(c.blob).or_default().push(doc);
            }
        }
        Ok(by_blob)
    }

    /// The parse record of parse `key` of blob `blob`, pending documents
    /// included.
    pub fn parsed(&self, blob: &BlobId, key: &ParseKey) -> Result<Option<ParsedDoc>> {
        match self.pending_parsed.iter().find(|(_, k, _)| k == key) {
            Some((_, _, p)) => Ok(Some(*p)),
            None => self.store.parsed(blob, key),
        }
    }

    /// Commits the pending documents in one atomic store batch, after
    /// making their blobs durable; returns their segments.
    fn commit_pending(&mut self) -> Result<Vec<Vec<LogEntry>>> {
        if self.pending.is_empty() && self.pending_parsed.is_empty() {
            return Ok(Vec::new());
        }
        let committed = self
            .store
            .sync_blobs()
            .and_then(|()| self.store.commit(&self.pending, &self.head, &self.pending_parsed));
        if let Err(e) = committed {
            self.failed = true;
            return Err(e);
        }
        self.pending_ids.clear();
        self.pending_parsed.clear();
        self.pending_events = 0;
        Ok(std::mem::take(&mut self.pending))
    }

    /// Opens an existing archive for an audit: a head record that does not
    /// decode is returned as a message instead of failing the open (the
    /// archive then reports an empty head and must not be appended to).
    pub fn open_for_audit(path: &Path) -> Result<(Archive, Option<String>)> {
        open_store(path, OpenMode::MustExist, |store| {
            let (head, problem) = match store.head() {
                Ok(h) => (h, None),
                // Damage to sled's files, not a head record that does not
                // decode: `open_store` rebuilds the index.
                Err(e) if e.index_damage().is_some() => return Err(e),
                Err(e) => (HeadState::default(), Some(e.to_string())),
            };
            Ok((Archive::from_parts(Box::new(store), head, Clock::Wall), problem))
        })
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

    /// Appends the new events of one document and commits it atomically,
    /// after storing its raw bytes as a blob. Events already in the
    /// archive, or repeated within the document, are counted as duplicates
    /// and not appended. With `dry_run` nothing is written. (Many documents
    /// are appended faster through a [`CommitGroup`].)
    pub fn append_document(&mut self, doc: NewDocument<'_>, dry_run: bool) -> Result<AppendOutcome> {
        let mut g = self.group();
        let outcome = g.append(doc, dry_run)?;
        g.commit()?;
        Ok(outcome)
    }

    /// Checks one document for duplicates and, unless `dry_run`, appends
    /// its new events to the pending documents.
    fn stage_document(&mut self, doc: NewDocument<'_>, dry_run: bool) -> Result<AppendOutcome> {
        if self.failed && !dry_run {
            return Err(Error::Internal(
                "an earlier commit of this archive failed; open it again to append (it catches up from its log files)"
                    .into(),
            ));
        }
        let mut outcome = AppendOutcome::default();
        let ids: Vec<EventId> = doc
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| doc.ids.get(i).copied().unwrap_or_else(|| e.id()))
            .collect();
        // The stored ids of each bucket (article) the document touches: one
        // read per article (of the parts its ids name, when the article's
        // set is split), not one lookup per event.
        let mut memo = buckets::BucketMemo::default();
        let keys: Vec<[u8; 32]> = doc.events.iter().map(|e| memo.of(e)).collect();
        let held = self.stored_ids(
            keys.iter()
                .zip(&ids)
                .filter(|(_, id)| !self.pending_ids.contains_key(*id))
                .map(|(k, id)| (*k, *id)),
        )?;
        let mut seen = crate::model::IdSet::default();
        // Per event: its id when it is new.
        let mut fresh: Vec<Option<EventId>> = Vec::with_capacity(doc.events.len());
        for ((event, id), key) in doc.events.iter().zip(ids).zip(&keys) {
            let duplicate = !seen.insert(id)
                || self.pending_ids.contains_key(&id)
                || held.get(key).is_some_and(|stored| buckets::holds(stored, &id));
            if duplicate {
                outcome.duplicate.add(event.kind());
                fresh.push(None);
            } else {
                outcome.new.add(event.kind());
                fresh.push(Some(id));
            }
        }
        if dry_run {
            return Ok(outcome);
        }
        if let Some(key) = doc.parse_key {
            // Recorded only under the key the capture itself implies (a
            // document that states its own fetch time makes a capture whose
            // key differs from the one it was looked up under: it is parsed
            // again next time, and `verify` and `repair` agree with what is
            // recorded).
            let capture = doc.events.iter().enumerate().rev().find_map(|(i, e)| match e {
                Event::Capture(c) if super::parse_key_of(c) == key => {
                    Some((doc.ids.get(i).copied().unwrap_or_else(|| e.id()), c.blob))
                }
                _ => None,
            });
            if let Some((capture, blob)) = capture {
                if self.parsed(&blob, &key)?.is_none() {
                    let mut counts = outcome.new;
                    counts.merge(&outcome.duplicate);
                    self.pending_parsed.push((blob, key, ParsedDoc { capture, counts }));
                }
            }
        }
        if outcome.new.total() == 0 {
            return Ok(outcome);
        }
        let mut ahead = doc.ahead;
        for (event, _) in doc.events.iter().zip(&fresh).filter(|(_, id)| id.is_some()) {
            if let Event::Capture(c) = event {
                let actual = doc.hashed.unwrap_or_else(|| BlobId(*blake3::hash(doc.raw).as_bytes()));
                if actual != c.blob {
                    return Err(Error::Usage(format!(
                        "capture names blob {} but the document's bytes hash to {}",
                        c.blob, actual
                    )));
                }
                self.store.stage_blob(&c.blob, doc.raw, Some(&page_key(c)), ahead.take())?;
            }
        }
        let recorded_at = self.clock.now();
        let mut head = self.head;
        let mut entries = Vec::with_capacity(outcome.new.total() as usize);
        for (event, id) in doc.events.into_iter().zip(fresh) {
            let Some(id) = id else { continue };
            head.seq = head.seq.next();
            head.counts.add(event.kind());
            let mut entry = LogEntry { seq: head.seq, id, recorded_at, event, head: ChainHash::GENESIS };
            head.hash = chain_step(&head.hash, &entry.entry_hash());
            entry.head = head.hash;
            entries.push(entry);
        }
        outcome.appended = Some((entries[0].seq, head.seq));
        self.head = head;
        for e in &entries {
            self.pending_ids.insert(e.id, e.seq);
        }
        self.pending_events += entries.len();
        self.pending.push(entries);
        Ok(outcome)
    }

    /// Stages a blob for [`super::portable::import`]; it is synced before the
    /// next imported segment is committed.
    pub fn import_blob(&mut self, id: &BlobId, raw: &[u8]) -> Result<()> {
        self.store.stage_blob(id, raw, None, None)
    }

    /// Appends documents checked by [`super::portable::import`] (each a
    /// segment; consecutive seqs after the head, chain and ids already
    /// verified) in one commit, with the head after them.
    pub fn import_segments(&mut self, segments: Vec<Vec<LogEntry>>, head: &HeadState) -> Result<()> {
        if segments.first().and_then(|s| s.first()).map(|e| e.seq) != Some(self.head.seq.next()) {
            return Err(Error::Corrupt("import segment does not follow the head".into()));
        }
        self.store.sync_blobs()?;
        self.store.commit(&segments, head, &[])?;
        self.head = *head;
        Ok(())
    }

    /// Makes everything appended so far durable. Commands call this before
    /// they report success.
    pub fn flush(&mut self) -> Result<()> {
        self.store.flush()
    }

    /// Runs `f` over the archive's Merkle tree of `size` entries (at most
    /// the head): stored subtrees from `tree/`, smaller ones hashed from
    /// the log.
    fn with_tree<T>(
        &self,
        size: u64,
        f: impl FnOnce(&mut dyn crate::transparency::merkle::Subtrees) -> Result<T>,
    ) -> Result<T> {
        let head = self.head.seq.0;
        if size > head {
            return Err(Error::Usage(format!("the archive has {head} entries, not {size}")));
        }
        let Some(file) = self.store.merkle() else {
            return Err(Error::Usage("this handle on the archive keeps no Merkle tree".into()));
        };
        let store = self.store.as_ref();
        let mut tree = crate::transparency::file::StoredTree::new(file, head, |first, count| {
            super::read_leaves(store, first, count)
        });
        f(&mut tree)
    }

    /// The Merkle tree hash of the first `size` entries, hashed from the
    /// log's entries alone (every leaf; no stored hash is used).
    pub fn tree_root_from_log(&self, size: u64) -> Result<crate::transparency::merkle::Hash> {
        self.tree_root_from_log_with(size, ROOT_ON_TWO_THREADS_FROM)
    }

    /// [`Archive::tree_root_from_log`], on two threads from `parallel_from`
    /// entries: RFC 9162 splits a tree of n leaves at k, the largest power
    /// of two below n, into `MTH(D[0:k])` and `MTH(D[k:n])` (and, when the
    /// right part is under half the left, the left again at k/2), so each
    /// thread reads, decodes and hashes its own part of the log.
    pub fn tree_root_from_log_with(
        &self,
        size: u64,
        parallel_from: u64,
    ) -> Result<crate::transparency::merkle::Hash> {
        use crate::transparency::merkle::{node_hash, split_point};
        if size > self.head.seq.0 {
            return Err(Error::Usage(format!("the archive has {} entries, not {size}", self.head.seq.0)));
        }
        if size < parallel_from.max(4) {
            return Ok(self.subtree_roots_from_log(0, &[size])?[0]);
        }
        let k = split_point(size);
        // D[0:k] here and D[k:n] beside it; or, when D[k:n] is under half
        // of D[0:k], D[0:k/2] here and D[k/2:k], D[k:n] beside it.
        let here = if size - k >= k / 2 { k } else { k / 2 };
        let beside: Vec<u64> = if here == k { vec![size - k] } else { vec![k / 2, size - k] };
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| self.subtree_roots_from_log(here, &beside));
            let first = self.subtree_roots_from_log(0, &[here]);
            let second = second.join().map_err(|_| Error::Internal("a tree-hashing thread panicked".into()));
            (first, second.and_then(|r| r))
        });
        let (first, second) = (first?, second?);
        Ok(match second.as_slice() {
            [right] => node_hash(&first[0], right),
            [middle, right] => node_hash(&node_hash(&first[0], middle), right),
            _ => return Err(Error::Internal("tree parts miscounted".into())),
        })
    }

    /// The Merkle tree hashes of consecutive runs of leaves from the log,
    /// starting after `skip` entries: `lens[0]` leaves, then `lens[1]`, ….
    fn subtree_roots_from_log(
        &self,
        skip: u64,
        lens: &[u64],
    ) -> Result<Vec<crate::transparency::merkle::Hash>> {
        let mut entries = self.store.entries_from(Seq(skip + 1))?;
        let mut roots = Vec::with_capacity(lens.len());
        let mut stored = Vec::new();
        let mut at = skip;
        for &len in lens {
            let mut frontier = crate::transparency::merkle::Frontier::default();
            while frontier.leaves() < len {
                let Some(e) = entries.next() else {
                    return Err(Error::MissingEntry(Seq(at + 1)));
                };
                let e = e?;
                at += 1;
                if e.seq != Seq(at) {
                    return Err(Error::MissingEntry(Seq(at)));
                }
                frontier.push(e.leaf_hash(), &mut stored);
                stored.clear();
            }
            roots.push(frontier.root());
        }
        Ok(roots)
    }

    /// The Merkle tree hash of the first `size` entries (RFC 9162 `MTH`).
    pub fn tree_root(&self, size: u64) -> Result<crate::transparency::merkle::Hash> {
        self.with_tree(size, |t| crate::transparency::merkle::root(t, size))
    }

    /// The inclusion path of the entry at `seq` in the tree of `size`
    /// entries.
    pub fn inclusion_proof(&self, seq: Seq, size: u64) -> Result<Vec<crate::transparency::merkle::Hash>> {
        if seq.0 == 0 || seq.0 > size {
            return Err(Error::Usage(format!("seq {seq} is not in a tree of {size} entries")));
        }
        self.with_tree(size, |t| crate::transparency::merkle::inclusion_proof(t, seq.0 - 1, size))
    }

    /// The consistency path from the tree of `old` entries to the tree of
    /// `size`.
    pub fn consistency_proof(&self, old: u64, size: u64) -> Result<Vec<crate::transparency::merkle::Hash>> {
        self.with_tree(size, |t| crate::transparency::merkle::consistency_proof(t, old, size))
    }

    /// The raw bytes of blob `id`, checked to hash to it: damaged bytes are
    /// an error, never returned (`cat` and `site` hand them out).
    pub fn verified_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let raw = self.store.get_blob(id)?;
        if BlobId(*blake3::hash(&raw).as_bytes()) != *id {
            return Err(Error::Corrupt(format!(
                "the stored bytes of blob {id} do not hash to its id; nothing written (`cairn verify` reports the damage)"
            )));
        }
        Ok(raw)
    }

    /// The entry at `seq`.
    pub fn entry(&self, seq: Seq) -> Result<LogEntry> {
        // Its segment decoded up to the entry, not past it.
        advance_to(&mut self.store.segment_entries_of(seq)?, seq)
    }

    /// The event with id `id`.
    pub fn event(&self, id: &EventId) -> Result<Event> {
        match self.entry_by_id(id)? {
            Some(e) => Ok(e.event),
            None => Err(Error::NotFound(format!("no event {id}"))),
        }
    }

    /// The stored ids of each bucket (article) named in `wanted` (bucket,
    /// id): one read per bucket, of the parts its ids name when the
    /// article's set is split; [`buckets::holds`] answers from them.
    pub(crate) fn stored_ids(
        &self,
        wanted: impl IntoIterator<Item = ([u8; 32], EventId)>,
    ) -> Result<HashMap<[u8; 32], Vec<idruns::IdSeq>, foldhash::fast::RandomState>> {
        let mut by_bucket: HashMap<[u8; 32], Vec<EventId>, foldhash::fast::RandomState> = HashMap::default();
        for (key, id) in wanted {
            by_bucket.entry(key).or_default().push(id);
        }
        let mut held = HashMap::with_capacity_and_hasher(by_bucket.len(), Default::default());
        for (key, ids) in by_bucket {
            held.insert(key, self.store.bucket(&key, &ids)?);
        }
        Ok(held)
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
        for (id, seq) in ids.iter().zip(self.store.seqs_of(ids)?) {
            let seq = seq.ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
            seqs.push((*id, seq));
        }
        self.events_at(seqs)
    }

    /// [`Archive::events_by_id`] for ids that are mostly of one article
    /// (`article`, its key: a thread's comments): their seqs come from the
    /// article's id set, one read, and only the rest are looked up in the
    /// id index (one read of a run each). `table comments` at 1M spent a
    /// third of its time in those reads.
    pub fn events_by_id_in(
        &self,
        article: &crate::model::ArticleKey,
        ids: &[EventId],
    ) -> Result<HashMap<EventId, Event>> {
        let held = match self.store.bucket(&buckets::article_bucket(article.as_str()), ids) {
            Ok(held) => held,
            // A damaged id set (derived, as the runs are): the runs alone.
            Err(e @ Error::Corrupt(_)) => {
                tracing::warn!("{e}; reading through the id index's runs instead");
                return self.events_by_id(ids);
            }
            Err(e) => return Err(e),
        };
        let held: HashMap<EventId, Seq> = held.into_iter().collect();
        let rest: Vec<EventId> = ids.iter().filter(|id| !held.contains_key(*id)).copied().collect();
        let mut found = rest.iter().zip(self.store.seqs_of(&rest)?);
        let mut seqs: Vec<(EventId, Seq)> = Vec::with_capacity(ids.len());
        for id in ids {
            let seq = match held.get(id) {
                Some(seq) => Some(*seq),
                None => found.next().and_then(|(_, s)| s),
            };
            let seq = seq.ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
            seqs.push((*id, seq));
        }
        // A stale id set (it names a seq that holds another event): the
        // runs alone, which say so themselves when they are stale too.
        self.events_at(seqs).or_else(|e| match e {
            Error::Corrupt(why) => {
                tracing::warn!("{why}; reading through the id index's runs instead");
                self.events_by_id(ids)
            }
            e => Err(e),
        })
    }

    /// The article of each comment of `ids`, in their order (`None` for an
    /// id the log does not hold, or holds as no comment), read with one
    /// decode per log segment: comment merges into one thread name its
    /// comments one after another, from segments as large as its pages.
    /// An index that names another event is stale, an error.
    pub fn articles_of_comments(&self, ids: &[EventId]) -> Result<Vec<Option<ArticleKey>>> {
        let seqs = self.store.seqs_of(ids)?;
        let wanted: Vec<Seq> = seqs.iter().flatten().copied().collect();
        let found = self.entries_at_with(&wanted, |e| {
            Ok((
                e.id,
                match &e.event {
                    Event::Comment(c) => Some(c.article.clone()),
                    _ => None,
                },
            ))
        })?;
        ids.iter()
            .zip(seqs)
            .map(|(id, seq)| {
                let Some(seq) = seq else { return Ok(None) };
                let (at, article) = found.get(&seq).ok_or(Error::MissingEntry(seq))?;
                if at != id {
                    return Err(stale_index(id, seq, at));
                }
                Ok(article.clone())
            })
            .collect()
    }

    /// The events at `seqs`, each checked to be the id given with it (an
    /// index that says otherwise is stale).
    fn events_at(&self, seqs: Vec<(EventId, Seq)>) -> Result<HashMap<EventId, Event>> {
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
    /// error. Many seqs (an author's timeline) are read on two threads, each
    /// taking half of them in seq order.
    pub fn entries_at_with<T: Send>(
        &self,
        seqs: &[Seq],
        f: impl Fn(&LogEntry) -> Result<T> + Sync,
    ) -> Result<HashMap<Seq, T>> {
        let mut sorted = seqs.to_vec();
        sorted.sort();
        sorted.dedup();
        if sorted.len() < PARALLEL_READS {
            return self.read_entries_at(&sorted, &f);
        }
        let (first, second) = super::on_two_halves(
            &sorted,
            |part| self.read_entries_at(part, &f),
            "a log reader thread panicked",
        );
        // The first half's error first, as one thread would meet it.
        let first = first?;
        Ok(first.into_iter().chain(second?).collect())
    }

    /// [`Archive::entries_at_with`] on this thread, for sorted seqs.
    fn read_entries_at<T>(
        &self,
        sorted: &[Seq],
        f: &impl Fn(&LogEntry) -> Result<T>,
    ) -> Result<HashMap<Seq, T>> {
        let mut out = HashMap::with_capacity(sorted.len());
        // The segment being read: its entries are decoded only as far as a
        // wanted seq (a document's capture, last, is often never decoded).
        let mut segment: Option<crate::store::envelope::SegmentEntries> = None;
        for &seq in sorted {
            // Another segment when this one ends before `seq`.
            if segment.as_ref().is_some_and(|s| s.end().is_some_and(|end| end < seq)) {
                segment = None;
            }
            let reader = match segment.as_mut() {
                Some(r) => r,
                None => segment.insert(self.store.segment_entries_of(seq)?),
            };
            out.insert(seq, f(&advance_to(reader, seq)?)?);
        }
        Ok(out)
    }

    /// The first error met bringing what is derived from the log (the id
    /// runs, the Merkle tree's hashes) up to the head when the archive was
    /// opened, taken ([`crate::store::LogStore::take_derived_failure`]).
    pub fn take_derived_failure(&mut self) -> Option<Error> {
        self.store.take_derived_failure()
    }

    /// The first seq of every commit that starts after `after`, in order
    /// ([`crate::store::LogStore::commit_starts`]).
    pub fn commit_starts(&self, after: Seq) -> Result<Vec<Seq>> {
        self.store.commit_starts(after)
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

/// Reads `reader` on to the entry at `seq` (the entries before it are
/// skipped: [`crate::store::envelope::SegmentEntries::skip_before`]).
fn advance_to(reader: &mut crate::store::envelope::SegmentEntries, seq: Seq) -> Result<LogEntry> {
    reader.skip_before(seq)?;
    for entry in reader {
        let entry = entry?;
        if entry.seq >= seq {
            return if entry.seq == seq { Ok(entry) } else { Err(Error::MissingEntry(seq)) };
        }
    }
    Err(Error::MissingEntry(seq))
}

/// The error for an index entry that points at another event.
fn stale_index(id: &EventId, seq: Seq, holds: &EventId) -> Error {
    Error::Corrupt(format!(
        "the id index maps {id} to seq {seq}, which holds {holds}; `cairn repair` rebuilds the index"
    ))
}
