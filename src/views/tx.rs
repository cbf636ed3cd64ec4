//! [`StateTx`]: a view's pending writes (read-your-writes) and its access
//! to the log, committed with the view's cursor in one atomic batch (key by
//! key into a tree nobody reads before the run ends: [`crate::store::kv::Loose`]).

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, EventId, IdMap, LogEntry, Seq};
use crate::store::envelope;
use crate::store::{Archive, KvTree};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// Keys whose values are held unsealed (hashed as ids are: SipHash was
/// a percent of replay).
type KeySet = HashSet<Vec<u8>, foldhash::fast::RandomState>;

use super::generations::{Cursor, CURSOR_KEY};
use super::thread_state::Folds;

/// Pending writes to a view's tree, read-your-writes, plus access to the log
/// for looking events up.
pub struct StateTx<'a> {
    tree: &'a dyn KvTree,
    archive: &'a Archive,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys whose pending value came from [`StateTx::put_value`] or
    /// [`StateTx::put_packed`]: held as
    /// a bare bincode body, sealed (checked, compressed) once, at commit
    /// ([`envelope::seal_body`]).
    unfinished: KeySet,
    /// Bytes of keys and values written since the last commit (an upper
    /// bound on what `writes` holds).
    pub(super) pending_bytes: usize,
    /// The tree was empty when this transaction began (a fresh replay):
    /// a key not written since is absent, without asking the tree.
    fresh: bool,
    /// Key prefixes found to have no key in the tree, and no write since.
    empty_prefixes: std::cell::RefCell<Vec<Vec<u8>>>,
    pub(super) recent: IdMap<Arc<LogEntry>>,
    /// Where commits go when another thread writes them ([`Writer`]).
    writer: Option<Writer<'a>>,
    /// Values are sealed uncompressed ([`KvTree::raw_values`]).
    raw: bool,
    /// The last commit, while the writer writes it: read before the tree.
    in_flight: Option<(Arc<Committed>, Receiver<Result<()>>)>,
    /// The first seq of the document being applied.
    pub(super) document_from: Seq,
    /// This run leaves some captures out (`replay --until TIME`).
    pub(super) leaves_out: bool,
    /// Records appended to lists ([`StateTx::append`]) since the last
    /// commit, per list key: written into the lists' chunks at commit.
    appends: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Work the view put off ([`StateTx::defer`]), by key.
    deferred: std::collections::BTreeSet<Vec<u8>>,
    /// Comment merges the view files once their run ends
    /// ([`StateTx::defer_merge`]), and the comments they name.
    deferred_merges: Vec<(EventId, Vec<EventId>)>,
    deferred_comments: Vec<EventId>,
    /// Comment maps decoded since the last commit, by key
    /// ([`StateTx::comment_map`]), each dropped when its key is written.
    comment_maps: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Arc<Folds>>>,
}

impl<'a> StateTx<'a> {
    pub(super) fn new(tree: &'a dyn KvTree, archive: &'a Archive) -> StateTx<'a> {
        // A tree that cannot even be scanned is not taken as empty.
        let fresh = tree.scan_prefix(b"").next().is_none();
        StateTx {
            tree,
            archive,
            writes: BTreeMap::new(),
            unfinished: Default::default(),
            pending_bytes: 0,
            fresh,
            empty_prefixes: Default::default(),
            recent: IdMap::default(),
            writer: None,
            raw: tree.raw_values(),
            in_flight: None,
            document_from: Seq(0),
            leaves_out: false,
            appends: BTreeMap::new(),
            deferred: Default::default(),
            deferred_merges: Vec::new(),
            deferred_comments: Vec::new(),
            comment_maps: Default::default(),
        }
    }

    /// Notes work on `key` the view puts off until the next entry it does
    /// not put off, or [`crate::views::Projection::settle`] (a run of
    /// merges into one thread rebuilds it once, not once per merge).
    pub fn defer(&mut self, key: Vec<u8>) {
        self.deferred.insert(key);
    }

    /// Notes a comment merge (`keep` and the ids it folds) the view files
    /// once the run of merges naming it ends, with the articles of its
    /// comments: [`StateTx::take_deferred_articles`] reads the run's
    /// comments together, each log segment once. (Read one at a time, a
    /// thread's merges alternated between the segments of its two
    /// captures, and each read decoded a whole segment: 20,000 merges into
    /// one thread took minutes.)
    pub fn defer_merge(&mut self, keep: EventId, fold: Vec<EventId>) {
        self.deferred_comments.push(keep);
        self.deferred_comments.extend(fold.iter().copied());
        self.deferred_merges.push((keep, fold));
    }

    /// How many comments are put off ([`StateTx::defer_merge`]).
    pub fn deferred_comments(&self) -> usize {
        self.deferred_comments.len()
    }

    /// The merges put off ([`StateTx::defer_merge`]), in log order,
    /// forgotten here.
    pub fn take_deferred_merges(&mut self) -> Vec<(EventId, Vec<EventId>)> {
        std::mem::take(&mut self.deferred_merges)
    }

    /// The article of each comment put off ([`StateTx::defer_merge`])
    /// that the log holds as a comment, forgotten here: from the entries
    /// applied since the last commit, else from the log.
    pub fn take_deferred_articles(&mut self) -> Result<Vec<(EventId, ArticleKey)>> {
        let ids = std::mem::take(&mut self.deferred_comments);
        let article = |e: &LogEntry| match &e.event {
            Event::Comment(c) => Some(c.article.clone()),
            _ => None,
        };
        let mut out = Vec::with_capacity(ids.len());
        let mut rest = Vec::new();
        for id in ids {
            match self.recent.get(&id) {
                Some(e) => out.extend(article(e).map(|a| (id, a))),
                None => rest.push(id),
            }
        }
        let found = self.archive.articles_of_comments(&rest)?;
        out.extend(rest.into_iter().zip(found).filter_map(|(id, a)| a.map(|a| (id, a))));
        Ok(out)
    }

    /// Whether any work is put off ([`StateTx::defer`],
    /// [`StateTx::defer_merge`]).
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty() || !self.deferred_merges.is_empty()
    }

    /// The keys put off ([`StateTx::defer`]), in key order, forgotten here.
    pub fn take_deferred(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.deferred).into_iter().collect()
    }

    /// The raw value under `key`, pending writes included.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self.value_bytes(key)? {
            None => None,
            Some(ValueBytes::Body(body)) => Some(seal(body, self.raw)),
            Some(ValueBytes::Sealed(bytes)) => Some(bytes.into_owned()),
        })
    }

    /// Whether some key starting with `prefix` may exist (false only when
    /// none does). Cheap after the first call for a prefix: views use it to
    /// skip lookups in maps that are usually empty (merges).
    pub fn may_have_prefix(&self, prefix: &[u8]) -> Result<bool> {
        if self.empty_prefixes.borrow().iter().any(|p| p == prefix) {
            return Ok(false);
        }
        let starts = |w: &BTreeMap<Vec<u8>, Option<Vec<u8>>>| {
            w.range(prefix.to_vec()..).next().is_some_and(|(k, _)| k.starts_with(prefix))
        };
        let pending = starts(&self.writes) || self.in_flight.as_ref().is_some_and(|(c, _)| starts(&c.writes));
        if pending || (!self.fresh && self.tree.scan_prefix(prefix).next().is_some()) {
            return Ok(true);
        }
        self.empty_prefixes.borrow_mut().push(prefix.to_vec());
        Ok(false)
    }

    /// The folds of the comment map under `key`
    /// ([`crate::views::thread_state::CommentMap`]; none when it has
    /// none), decoded once until the key is written or the transaction
    /// commits: a thread with thousands of folds, captured again and
    /// again, decoded its map at every capture.
    pub fn comment_map(&self, key: &[u8]) -> Result<Arc<Folds>> {
        if let Some(m) = self.comment_maps.borrow().get(key) {
            return Ok(Arc::clone(m));
        }
        let map: Option<super::thread_state::CommentMap> = self.get_packed(key)?;
        let folds = Arc::new(map.map(|m| m.folds).unwrap_or_default());
        self.comment_maps.borrow_mut().insert(key.to_vec(), Arc::clone(&folds));
        Ok(folds)
    }

    fn forget_comment_map(&mut self, key: &[u8]) {
        let maps = self.comment_maps.get_mut();
        if !maps.is_empty() {
            maps.remove(key);
        }
    }

    /// Sets `key`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending_bytes += key.len() + value.len();
        self.forget_comment_map(&key);
        self.forget_empty(&key);
        self.unfinished.remove(&key);
        self.writes.insert(key, Some(value));
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.pending_bytes += key.len();
        self.forget_comment_map(&key);
        self.unfinished.remove(&key);
        self.writes.insert(key, None);
    }

    fn forget_empty(&mut self, key: &[u8]) {
        let prefixes = self.empty_prefixes.get_mut();
        if !prefixes.is_empty() {
            prefixes.retain(|p| !key.starts_with(p));
        }
    }

    /// The value under `key` for a typed read: a pending value's bare body
    /// (from `put_value` or `put_packed`), or enveloped bytes.
    fn value_bytes(&self, key: &[u8]) -> Result<Option<ValueBytes<'_>>> {
        if let Some(v) = written(&self.writes, &self.unfinished, key) {
            return Ok(v);
        }
        // The commit being written, newer than the tree.
        if let Some(v) = self.in_flight.as_ref().and_then(|(c, _)| written(&c.writes, &c.unfinished, key)) {
            return Ok(v);
        }
        if self.fresh {
            return Ok(None);
        }
        Ok(self.tree.get(key)?.map(|v| ValueBytes::Sealed(std::borrow::Cow::Owned(v))))
    }

    /// A decoded (enveloped bincode) value.
    pub fn get_value<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        let decoded = match self.value_bytes(key)? {
            None => return Ok(None),
            Some(ValueBytes::Body(body)) => envelope::decode_unsealed(body, ""),
            Some(ValueBytes::Sealed(bytes)) => envelope::decode(&bytes, ""),
        };
        decoded.map(Some).map_err(|e| name_value(e, key))
    }

    /// Sets `key` to an enveloped value (sealed when committed: a value
    /// replaced before then is never checked or compressed, and one read
    /// back meanwhile is decoded from its body).
    pub fn put_value<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        self.put_body(key, envelope::encode_body(value)?);
        Ok(())
    }

    /// Holds `body` (a bare bincode body) as `key`'s pending value, sealed
    /// at commit.
    fn put_body(&mut self, key: Vec<u8>, body: Vec<u8>) {
        // Counted as the envelope it becomes (version, codec, check).
        self.pending_bytes += 10;
        self.put(key.clone(), body);
        self.unfinished.insert(key);
    }

    /// [`StateTx::get_value`] for a type that also derives bincode's own
    /// `Decode`: the same bytes, read without serde's byte-at-a-time path
    /// for ids (the threads view's state, read and rewritten at every
    /// capture). Whatever the native reader refuses is read through serde.
    pub fn get_packed<T: DeserializeOwned + bincode::Decode<()>>(&self, key: &[u8]) -> Result<Option<T>> {
        let decoded = match self.value_bytes(key)? {
            None => return Ok(None),
            Some(ValueBytes::Body(body)) => envelope::decode_native_unsealed(body, ""),
            Some(ValueBytes::Sealed(bytes)) => envelope::decode_native(&bytes, ""),
        };
        decoded.map(Some).map_err(|e| name_value(e, key))
    }

    /// [`StateTx::put_value`] for a type that also derives bincode's own
    /// `Encode`: the same bytes, written without serde, as long as the two
    /// derives agree (no `#[serde(skip, with, rename...)]` that changes
    /// what serde writes, no hand-written `Serialize`).
    pub fn put_packed<T: bincode::Encode>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        self.put_body(key, envelope::encode_native_body(value)?);
        Ok(())
    }

    /// Appends `record` (bytes of the view's own encoding) to the
    /// append-only list under `key`: a list that grows with the log but is
    /// only read after the run, such as the authors view's postings.
    /// Nothing is read or written until commit, which adds each list's
    /// records after those it holds, in the order appended: full chunks of
    /// 128 records sealed under `KEY \0 N` (N from 0, big-endian u32), the
    /// rest under `KEY`. Where the chunks fall depends only on the records'
    /// order, never on when commits happened, so an ingest and a replay
    /// store the same chunks. Reads see the records only after the commit.
    pub fn append(&mut self, key: &[u8], record: Vec<u8>) {
        self.pending_bytes += record.len() + 8;
        match self.appends.get_mut(key) {
            Some(list) => list.push(record),
            None => {
                self.appends.insert(key.to_vec(), vec![record]);
            }
        }
    }

    /// Writes the records appended since the last commit into their lists.
    fn write_appends(&mut self) -> Result<()> {
        for (key, records) in std::mem::take(&mut self.appends) {
            let mut tail: super::chunks::ListTail = self.get_packed(&key)?.unwrap_or_default();
            tail.records.extend(records);
            let size = super::chunks::LIST_CHUNK;
            let full = tail.records.len() / size;
            let rest = tail.records.split_off(full * size);
            super::chunks::write_under(self, &key, b"", tail.sealed, &tail.records, size)?;
            tail.sealed += full as u32;
            tail.records = rest;
            self.put_packed(key, &tail)?;
        }
        Ok(())
    }

    /// The entry of event `id`: from the entries applied since the last
    /// commit (shared, not copied), else from the log.
    pub fn entry_ref(&self, id: &EventId) -> Result<Option<Arc<LogEntry>>> {
        if let Some(e) = self.recent.get(id) {
            return Ok(Some(Arc::clone(e)));
        }
        Ok(self.archive.entry_by_id(id)?.map(Arc::new))
    }

    /// The entry of event `id` as [`StateTx::entry_ref`] finds it, and the
    /// other entries of its segment when it came from the log (one decode
    /// for a reader that will ask for them too: a thread rebuilt after a
    /// merge asks for every comment of each capture).
    pub fn entry_with_segment(&self, id: &EventId) -> Result<Vec<Arc<LogEntry>>> {
        if let Some(e) = self.recent.get(id) {
            return Ok(vec![Arc::clone(e)]);
        }
        let Some(seq) = self.archive.store().seq_of(id)? else { return Ok(Vec::new()) };
        let segment: Vec<Arc<LogEntry>> =
            self.archive.store().segment_of(seq)?.into_iter().map(Arc::new).collect();
        match segment.iter().find(|e| e.seq == seq) {
            Some(e) if e.id == *id => Ok(segment),
            // (What `entry_ref` says of a stale index.)
            _ => Ok(self.entry_ref(id)?.into_iter().collect()),
        }
    }

    /// The entry of event `id` from `read`, else as
    /// [`StateTx::entry_with_segment`] finds it, the rest of its segment
    /// kept in `read` for the lookups after it.
    pub fn entry_via(&self, read: &mut IdMap<Arc<LogEntry>>, id: &EventId) -> Result<Option<Arc<LogEntry>>> {
        if let Some(e) = read.get(id) {
            return Ok(Some(Arc::clone(e)));
        }
        let found = self.entry_with_segment(id)?;
        let entry = found.iter().find(|e| e.id == *id).cloned();
        read.extend(found.into_iter().map(|e| (e.id, e)));
        Ok(entry)
    }

    /// The entry at `seq`, from the log.
    pub fn entry_at(&self, seq: Seq) -> Result<LogEntry> {
        self.archive.entry(seq)
    }

    /// The entry of event `id` if it belongs to the document being applied
    /// (appended after the previous capture): a capture finds its own
    /// document's new events here, and only those.
    pub fn document_entry(&self, id: &EventId) -> Option<&LogEntry> {
        self.recent.get(id).map(|e| e.as_ref()).filter(|e| e.seq >= self.document_from)
    }

    /// Whether this run leaves some captures out (a replay to an
    /// observation time): a view that takes events in through
    /// [`StateTx::document_entry`] must then also consider the other items
    /// of the captures it applies (a left-out capture's new events are not
    /// another capture's document).
    pub fn leaves_captures_out(&self) -> bool {
        self.leaves_out
    }

    /// The event with id `id` (a copy; see [`StateTx::entry_ref`]).
    pub fn event(&self, id: &EventId) -> Result<Option<Event>> {
        Ok(self.entry_ref(id)?.map(|e| e.event.clone()))
    }

    /// Has `writer` write this transaction's commits (a loose tree's: see
    /// [`Writer`]).
    pub(super) fn write_on(&mut self, writer: Writer<'a>) {
        self.writer = Some(writer);
    }

    pub(super) fn commit(&mut self, cursor: &Cursor) -> Result<()> {
        self.comment_maps.get_mut().clear();
        self.write_appends()?;
        let committed = Committed {
            writes: std::mem::take(&mut self.writes),
            unfinished: std::mem::take(&mut self.unfinished),
            raw: self.raw,
            cursor: envelope::encode(cursor)?,
        };
        match self.writer.clone() {
            None => {
                let (writes, sealed) = committed.writes();
                self.tree.apply_sealed(writes, &sealed)?
            }
            Some(writer) => {
                // One commit in flight at a time: the one before is written
                // (reads no longer need it), and nothing is being written
                // while the tree's upkeep may move values.
                self.finish()?;
                let committed = Arc::new(committed);
                let (done, written) = std::sync::mpsc::sync_channel(1);
                let job = Job { tree: self.tree, committed: Arc::clone(&committed), done };
                writer.jobs.send(job).map_err(|_| Error::Internal("the view writer stopped".into()))?;
                self.in_flight = Some((committed, written));
            }
        }
        self.recent.clear();
        self.pending_bytes = 0;
        self.fresh = false;
        Ok(())
    }

    /// Waits until the commit in flight, if any, is written, and does the
    /// tree's upkeep; its error, if it failed.
    pub(super) fn finish(&mut self) -> Result<()> {
        if let Some((_, written)) = self.in_flight.take() {
            written.recv().map_err(|_| Error::Internal("the view writer stopped".into()))??;
            self.tree.upkeep()?;
        }
        Ok(())
    }
}

/// A commit: the pending writes (values from `put_value` and `put_packed`
/// still bare bodies, sealed when written) and the cursor, enveloped.
pub(super) struct Committed {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    unfinished: KeySet,
    /// Sealed uncompressed ([`StateTx::raw`]).
    raw: bool,
    cursor: Vec<u8>,
}

impl Committed {
    /// The writes as the tree takes them: values sealed, the cursor last;
    /// and which values this sealed ([`KvTree::apply_sealed`]).
    fn writes(&self) -> (Vec<crate::store::kv::Write>, Vec<bool>) {
        let mut sealed = Vec::with_capacity(self.writes.len() + 1);
        let mut writes: Vec<crate::store::kv::Write> = self
            .writes
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Some(v) if self.unfinished.contains(k) => {
                        sealed.push(true);
                        Some(seal(v, self.raw))
                    }
                    other => {
                        sealed.push(false);
                        other.clone()
                    }
                };
                (k.clone(), v)
            })
            .collect();
        writes.push((CURSOR_KEY.to_vec(), Some(self.cursor.clone())));
        sealed.push(false);
        (writes, sealed)
    }
}

/// `body` in an envelope: uncompressed for a tree that keeps values raw.
fn seal(body: &[u8], raw: bool) -> Vec<u8> {
    if raw {
        envelope::seal_body_raw(body)
    } else {
        envelope::seal_body(body)
    }
}

/// A commit for [`Writer`]'s thread, and where it says it is written.
pub(super) struct Job<'a> {
    tree: &'a dyn KvTree,
    committed: Arc<Committed>,
    done: SyncSender<Result<()>>,
}

/// Writes the commits of loose trees ([`KvTree::write_loose`]: key by key,
/// nobody reads them before the run ends) on a thread of its own while the
/// thread applying the view goes on, one commit per transaction in flight
/// at a time; the transaction reads that commit's values from memory until
/// it is written. (The sealing of values and the tree's inserts were a
/// fifth of replay's busier thread.)
#[derive(Clone)]
pub(super) struct Writer<'a> {
    jobs: SyncSender<Job<'a>>,
}

impl<'a> Writer<'a> {
    /// A writer, and what its thread runs ([`Writer::run`]).
    pub(super) fn new() -> (Writer<'a>, Receiver<Job<'a>>) {
        let (jobs, queue) = std::sync::mpsc::sync_channel(2);
        (Writer { jobs }, queue)
    }

    /// Writes each job's commit until every [`Writer`] is dropped.
    pub(super) fn run(queue: Receiver<Job<'a>>) {
        for job in queue {
            let (writes, sealed) = job.committed.writes();
            let _ = job.done.send(job.tree.write_loose_sealed(writes, &sealed));
        }
    }
}

/// `key`'s value among `writes` (`Some(None)`: deleted there), a bare
/// body when `unfinished` names it.
fn written<'w>(
    writes: &'w BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    unfinished: &KeySet,
    key: &[u8],
) -> Option<Option<ValueBytes<'w>>> {
    writes.get(key).map(|v| match v {
        Some(body) if unfinished.contains(key) => Some(ValueBytes::Body(body)),
        Some(bytes) => Some(ValueBytes::Sealed(std::borrow::Cow::Borrowed(bytes))),
        None => None,
    })
}

/// A value's bytes as [`StateTx::value_bytes`] finds them.
enum ValueBytes<'a> {
    /// A pending value, not yet sealed.
    Body(&'a [u8]),
    /// An envelope, pending or stored.
    Sealed(std::borrow::Cow<'a, [u8]>),
}

/// Names the view value `key` in a decoding error (the label is made only
/// when a value fails to decode).
fn name_value(e: crate::error::Error, key: &[u8]) -> crate::error::Error {
    match e {
        crate::error::Error::Corrupt(m) => {
            crate::error::Error::Corrupt(format!("view value {}{m}", String::from_utf8_lossy(key)))
        }
        other => other,
    }
}
