//! Running projections over the log: catch-up, the ingest's in-memory
//! application of committed segments, replay into fresh generations, and
//! the audit that compares stored views with a fresh replay.

use crate::error::{Error, Result};
use crate::model::{Event, LogEntry, Seq, Timestamp};
use crate::store::kv::Loose;
use crate::store::{Archive, KvTree, ViewsAt};
use std::sync::Arc;

use super::generations::*;
use super::{Projection, StateTx};

/// During catch-up and replay, view state is committed (with its cursor, in
/// one atomic batch into a live tree, key by key into a new one) at the
/// first document boundary after this many entries, or this many bytes of
/// pending writes.
const COMMIT_EVERY: usize = 4096;
/// The same for trees written key by key ([`KvTree::is_loose`]: replay's
/// new generation, verify's and `--at`'s scratch trees), which pay no
/// batch or sync per commit: smaller commits hold fewer values in memory
/// (verify at 1M: 134-154 MB peak RSS at 4,096, 111-115 MB at 1,024, the
/// same time).
#[cfg(not(test))]
const COMMIT_EVERY_LOOSE: usize = 1024;
/// Small under test, so that the tests' small logs commit loose trees many
/// times (each commit written on the writer's thread while the next is
/// applied, its values read from memory meanwhile).
#[cfg(test)]
const COMMIT_EVERY_LOOSE: usize = 8;
const COMMIT_BYTES: usize = 32 * 1024 * 1024;

/// Entries handed to the second view thread of a run at a time, and
/// batches in flight at most.
const TEE_BATCH: usize = 256;
const TEE_DEPTH: usize = 8;

/// Called now and then during a long run with the last seq applied and the
/// seq the run goes to (a progress bar).
pub type Progress<'a> = Option<&'a (dyn Fn(Seq, Seq) + Sync)>;

/// [`Progress`] inside a run, which knows where it ends.
type Tick<'a> = Option<&'a (dyn Fn(Seq) + Sync)>;

/// Where `replay --until` stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// The log as it was at this seq.
    Seq(Seq),
    /// What was observed up to this time: every capture fetched (else
    /// recorded) at or before it, every merge recorded at or before it.
    Observed(Timestamp),
}

impl Until {
    /// Parses a seq, or an RFC 3339 time with offset (`--until`, `--at`).
    pub fn parse(s: &str) -> Option<Until> {
        if let Ok(n) = s.trim().parse::<u64>() {
            return Some(Until::Seq(Seq(n)));
        }
        match Timestamp::parse_lenient(s, None) {
            Some(t @ Timestamp::Zoned(..)) => Some(Until::Observed(t)),
            _ => None,
        }
    }

    /// Where a run to this point stops in a log ending at `head`: the last
    /// seq it reads and, for a time, what it leaves out. A seq past the
    /// head is refused (`flag` names the option for the message).
    pub fn target(self, head: Seq, flag: &str) -> Result<(Seq, Option<Timestamp>)> {
        match self {
            Until::Seq(s) if s > head => {
                Err(Error::Usage(format!("{flag} seq {s} is past the head of the log (seq {head})")))
            }
            Until::Seq(s) => Ok((s, None)),
            Until::Observed(t) => Ok((head, Some(t))),
        }
    }
}

/// Whether a run that stops at observation time `until` leaves `entry`
/// out: a capture observed after it, or a merge recorded after it. (Article
/// and comment events are applied: views take them in through the captures
/// that show them, so those of a capture left out are taken in by the
/// next capture that shows them, if any.)
pub(crate) fn observed_after(entry: &LogEntry, until: Option<&Timestamp>) -> bool {
    let Some(until) = until else { return false };
    let at = match &entry.event {
        Event::Capture(c) => c.observed_at(entry.recorded_at),
        Event::Merge(_) => entry.recorded_at,
        Event::Article(_) | Event::Comment(_) => return false,
    };
    at.instant() > until.instant()
}

/// Applies entries `from..=until` to a view's tree, committing state and
/// cursor together every few thousand entries. Returns the last seq applied.
pub(super) fn run(
    view: &dyn Projection,
    tree: &dyn KvTree,
    archive: &Archive,
    from: Seq,
    until: Seq,
) -> Result<Seq> {
    run_all(&[(view, tree)], archive, from, until, None, None, true)
}

/// Applies entries `from..=until` to several views in one pass over the log
/// (each entry decoded once), leaving out what was observed after
/// `observed_until`. Returns the last seq passed.
fn run_all(
    jobs: &[(&dyn Projection, &dyn KvTree)],
    archive: &Archive,
    from: Seq,
    until: Seq,
    observed_until: Option<&Timestamp>,
    progress: Progress<'_>,
    read_ahead: bool,
) -> Result<Seq> {
    if from > until || jobs.is_empty() {
        return Ok(Seq(from.0.saturating_sub(1)));
    }
    let tick = |seq: Seq| {
        if let Some(p) = progress {
            p(seq, until);
        }
    };
    let tick = progress.map(|_| &tick as _);
    if !read_ahead || until.0 - from.0 + 1 < READ_AHEAD_FROM {
        let entries = upto(archive.entries_from(from)?, until).map(|e| e.map(Arc::new));
        return run_entries(jobs, archive, from, entries, true, observed_until, tick);
    }
    // A long run reads and decodes the log on a thread of its own, a few
    // batches ahead of the view threads (at 1M, replay 4.6 -> 4.3 s, the
    // median of 8 interleaved runs each; the threads view's thread, which
    // also read the log, was the busiest), and frees the entries once the
    // views are done with them (3.39 -> 3.11 s).
    // `None` marks the end of the log: a reader that stops without it (a
    // panic) is an error, never a shorter log.
    std::thread::scope(|scope| {
        type Batch = Vec<Result<Arc<LogEntry>>>;
        let (batches, received) = std::sync::mpsc::sync_channel::<Option<Batch>>(READ_DEPTH);
        let reader = scope.spawn(move || {
            let log = match archive.entries_from(from) {
                Ok(log) => log,
                Err(e) => {
                    let _ = batches.send(Some(vec![Err(e)]));
                    return;
                }
            };
            let mut handover = Handover::new(batches, TEE_BATCH, KEPT_BATCHES);
            for e in upto(log, until) {
                if !handover.push(e.map(Arc::new)) {
                    return; // the run stopped
                }
            }
            handover.finish();
        });
        // The receiver goes with the run: a run that stops early stops the
        // reader at its next batch.
        let entries = until_end_marker(received, |e| e, "the log reader thread stopped");
        let ran = run_entries(jobs, archive, from, entries, true, observed_until, tick);
        // The receiver is gone with the run: the reader cannot be blocked.
        match reader.join() {
            Ok(()) => ran,
            Err(_) => Err(Error::Internal("the log reader thread panicked".into())),
        }
    })
}

/// Hands shared entries to another thread in batches of `size` over a
/// channel (a [`LogFeed`]'s sending end), `None` at the end, and
/// keeps each batch until no other thread holds its entries, so that they
/// are freed on this thread, which made them (freed elsewhere, glibc took
/// this thread's arena lock for each, against its allocations). Past
/// `kept` batches the oldest go anyway: whoever holds them last frees
/// them, and memory stays bounded.
pub(crate) struct Handover {
    to: std::sync::mpsc::SyncSender<Option<Vec<Result<Arc<LogEntry>>>>>,
    batch: Vec<Result<Arc<LogEntry>>>,
    size: usize,
    sent: std::collections::VecDeque<Vec<Arc<LogEntry>>>,
    kept: usize,
}

impl Handover {
    pub(crate) fn new(
        to: std::sync::mpsc::SyncSender<Option<Vec<Result<Arc<LogEntry>>>>>,
        size: usize,
        kept: usize,
    ) -> Handover {
        Handover { to, batch: Vec::with_capacity(size), size, sent: Default::default(), kept }
    }

    /// Adds `entry`, handing the batch over once full; false once the
    /// receiving end has gone.
    pub(crate) fn push(&mut self, entry: Result<Arc<LogEntry>>) -> bool {
        self.batch.push(entry);
        self.batch.len() < self.size || self.flush()
    }

    /// Hands over what the batch holds; false once the receiving end has
    /// gone.
    pub(crate) fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        if self.kept > 0 {
            // (None kept: another thread frees them, as verify's reader does.)
            self.sent.push_back(full.iter().filter_map(|e| e.as_ref().ok().cloned()).collect());
        }
        if self.to.send(Some(full)).is_err() {
            return false;
        }
        // Only this thread holds them: nobody can take another.
        while self
            .sent
            .front()
            .is_some_and(|b| self.sent.len() > self.kept || b.iter().all(|e| Arc::strong_count(e) == 1))
        {
            self.sent.pop_front();
        }
        true
    }

    /// Hands over the rest, then the end marker.
    pub(crate) fn finish(mut self) {
        if self.flush() {
            let _ = self.to.send(None);
        }
    }
}

/// The items of the batches `batches` receives, each made an entry by
/// `entry`, until the end marker (`None`); a channel that closes without it
/// (its sender stopped) gives the error `stopped`.
fn until_end_marker<B, T>(
    batches: std::sync::mpsc::Receiver<Option<Vec<B>>>,
    entry: impl Fn(B) -> Result<T>,
    stopped: &'static str,
) -> impl Iterator<Item = Result<T>> {
    let mut batches = batches.into_iter();
    let mut batch = Vec::new().into_iter();
    std::iter::from_fn(move || loop {
        if let Some(b) = batch.next() {
            return Some(entry(b));
        }
        match batches.next() {
            Some(Some(next)) => batch = next.into_iter(),
            Some(None) => return None,
            None => return Some(Err(Error::Internal(stopped.into()))),
        }
    })
}

/// The entries of `log` up to `until` and no further: nothing past it is
/// read (while an ingest catches its views up, its appending thread commits
/// more). An error ends them.
fn upto<'a, E: std::borrow::Borrow<LogEntry> + 'a>(
    mut log: impl Iterator<Item = Result<E>> + 'a,
    until: Seq,
) -> impl Iterator<Item = Result<E>> + 'a {
    let mut reached = false;
    std::iter::from_fn(move || {
        if reached {
            return None;
        }
        match log.next()? {
            Ok(e) if e.borrow().seq > until => None,
            Ok(e) => {
                reached = e.borrow().seq >= until;
                Some(Ok(e))
            }
            Err(e) => {
                reached = true;
                Some(Err(e))
            }
        }
    })
}

/// Batches of sent entries the reading thread keeps at most, waiting for
/// the view threads to let go of them (they do at each commit, every
/// 1,024 or 4,096 entries).
const KEPT_BATCHES: usize = 64;

/// Runs of at least this many entries read the log on a thread of their
/// own ([`run_all`] with `read_ahead`), at most this many batches ahead.
/// (Under test, runs of a few entries do: the views' tests and proptests
/// replay through the reading thread.)
pub(super) const READ_AHEAD_FROM: u64 = if cfg!(test) { 16 } else { 16_384 };
const READ_DEPTH: usize = 4;

/// Applies `entries` (starting at seq `from`) to several views, committing
/// each view's state with its cursor every few thousand entries (at a
/// capture, so at a document boundary) and at the end.
///
/// With `parallel` and two views or more, the first is applied on this
/// thread (which also reads and decodes the log) and the others on a second
/// thread, fed the same decoded entries. (Ingest applies committed batches
/// with [`apply_shared`], a group of views per thread.)
pub(super) fn run_entries(
    jobs: &[(&dyn Projection, &dyn KvTree)],
    archive: &Archive,
    from: Seq,
    entries: impl Iterator<Item = Result<Arc<LogEntry>>>,
    parallel: bool,
    observed_until: Option<&Timestamp>,
    progress: Tick<'_>,
) -> Result<Seq> {
    if jobs.len() < 2 || !parallel {
        return apply_entries(jobs, archive, from, entries, observed_until, progress);
    }
    let (mine, theirs) = jobs.split_at(1);
    std::thread::scope(|scope| {
        // Entries go over in batches (one wake-up of the worker per batch
        // rather than per entry). `None` marks the end of the stream: a
        // worker whose channel closes without it stops without committing
        // past its last document boundary, as this thread does on an error.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Option<Vec<Arc<LogEntry>>>>(TEE_DEPTH);
        let worker = scope.spawn(move || {
            let received = until_end_marker(rx, Ok, "the first view's thread stopped feeding this one");
            apply_entries(theirs, archive, from, received, observed_until, None)
        });
        let sender = tx.clone();
        let worker_gone = std::cell::Cell::new(false);
        let pending = std::cell::RefCell::new(Vec::with_capacity(TEE_BATCH));
        let tee = entries.map(|e| -> Result<Arc<LogEntry>> {
            let e = e?;
            let mut batch = pending.borrow_mut();
            batch.push(Arc::clone(&e));
            if batch.len() >= TEE_BATCH {
                let full = std::mem::replace(&mut *batch, Vec::with_capacity(TEE_BATCH));
                if sender.send(Some(full)).is_err() {
                    worker_gone.set(true);
                    return Err(Error::Internal("a view worker stopped".into()));
                }
            }
            Ok(e)
        });
        let mine = apply_entries(mine, archive, from, tee, observed_until, progress);
        if mine.is_ok() {
            // The worker may have stopped already; its own error says why.
            let rest = pending.take();
            if !rest.is_empty() {
                let _ = tx.send(Some(rest));
            }
            let _ = tx.send(None);
        }
        drop(tx);
        drop(sender);
        let theirs = worker.join().map_err(|_| Error::Internal("a view worker panicked".into()))?;
        match (mine, theirs) {
            (Ok(a), Ok(_)) => Ok(a),
            // The worker's error, unless this thread failed first (the
            // worker then only saw its input end).
            (Err(_), Err(e)) if worker_gone.get() => Err(e),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// [`run_entries`] on this thread; the commits of loose trees (a replay's
/// new generation, verify's scratch trees) are written on another
/// ([`super::tx::Writer`]).
fn apply_entries(
    jobs: &[(&dyn Projection, &dyn KvTree)],
    archive: &Archive,
    from: Seq,
    entries: impl Iterator<Item = Result<Arc<LogEntry>>>,
    observed_until: Option<&Timestamp>,
    progress: Tick<'_>,
) -> Result<Seq> {
    if !jobs.iter().all(|(_, tree)| tree.is_loose()) {
        return apply_entries_with(jobs, archive, from, entries, observed_until, progress, None);
    }
    std::thread::scope(|scope| {
        let (writer, queue) = super::tx::Writer::new();
        scope.spawn(move || super::tx::Writer::run(queue));
        // The writer's thread ends once the writers given out are dropped,
        // with the transactions holding them (before the scope waits).
        apply_entries_with(jobs, archive, from, entries, observed_until, progress, Some(writer))
    })
}

fn apply_entries_with<'a>(
    jobs: &[(&'a dyn Projection, &'a dyn KvTree)],
    archive: &'a Archive,
    from: Seq,
    entries: impl Iterator<Item = Result<Arc<LogEntry>>>,
    observed_until: Option<&Timestamp>,
    progress: Tick<'_>,
    writer: Option<super::tx::Writer<'a>>,
) -> Result<Seq> {
    let mut last = Seq(from.0.saturating_sub(1));
    let mut txs: Vec<StateTx<'a>> = jobs.iter().map(|(_, tree)| StateTx::new(*tree, archive)).collect();
    for tx in txs.iter_mut() {
        tx.leaves_out = observed_until.is_some();
        if let Some(writer) = &writer {
            tx.write_on(writer.clone());
        }
    }
    drop(writer);
    let mut pending_entries = 0usize;
    let commit_every =
        if jobs.iter().all(|(_, tree)| tree.is_loose()) { COMMIT_EVERY_LOOSE } else { COMMIT_EVERY };
    // Where the log's commits begin: what a view put off (a run of comment
    // merges) is settled where its commit ends, as it is when the views
    // are brought up to date after each command, so that a replay takes
    // the same runs whatever the views were caught up between.
    let mut commit_starts = archive.commit_starts(from)?.into_iter().peekable();
    for entry in entries {
        let entry = entry?;
        if entry.seq != last.next() {
            return Err(Error::Corrupt(format!("log seq {} follows {}", entry.seq, last)));
        }
        // (Entries come one seq after another: a start is met exactly.)
        if commit_starts.next_if_eq(&entry.seq).is_some() {
            for ((view, _), tx) in jobs.iter().zip(txs.iter_mut()) {
                if tx.has_deferred() {
                    view.settle(tx)?;
                }
            }
        }
        if observed_after(&entry, observed_until) {
            // Left out; a capture's document stays open for the next one.
            last = entry.seq;
            continue;
        }
        let is_capture = matches!(entry.event, Event::Capture(_));
        if !is_capture {
            for tx in txs.iter_mut() {
                tx.recent.insert(entry.id, Arc::clone(&entry));
            }
        }
        for ((view, _), tx) in jobs.iter().zip(txs.iter_mut()) {
            view.apply(&entry, tx)?;
            if is_capture {
                tx.document_from = entry.seq.next();
            }
        }
        last = entry.seq;
        pending_entries += 1;
        let pending_bytes: usize = txs.iter().map(|tx| tx.pending_bytes).sum();
        if is_capture && (pending_entries >= commit_every || pending_bytes >= COMMIT_BYTES) {
            for ((view, _), tx) in jobs.iter().zip(txs.iter_mut()) {
                view.settle(tx)?;
                tx.commit(&Cursor { version: view.version(), seq: last })?;
            }
            pending_entries = 0;
            if let Some(p) = progress {
                p(last);
            }
        }
    }
    for ((view, _), tx) in jobs.iter().zip(txs.iter_mut()) {
        view.settle(tx)?;
        tx.commit(&Cursor { version: view.version(), seq: last })?;
    }
    for tx in txs.iter_mut() {
        tx.finish()?;
    }
    Ok(last)
}

/// One view's state, as [`status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewStatus {
    /// The view's name.
    pub name: &'static str,
    /// Its version.
    pub version: u32,
    /// The last seq it reflects.
    pub seq: Seq,
    /// Set when `replay --until` pinned it to a past point.
    pub pinned_until: Option<Seq>,
    /// Set when `replay --until TIME` pinned it to what was observed then.
    pub observed_until: Option<Timestamp>,
    /// BLAKE3 of its state ([`digest`]).
    pub digest: [u8; 32],
}

/// BLAKE3 over every key and value of a view's tree except its cursor, in
/// key order: for each, the key's length (u64 big-endian) and the key,
/// then a two-byte tag, the content's length and the content. An intact
/// envelope is taken by what it holds, the tag `[1, version]` and its
/// uncompressed body; any other bytes as the tag `[0, 0]` and themselves.
/// So the digest does not depend on how the values were compressed
/// (another zstd, or another level, writes other bytes for the same
/// state). Two trees with the same state have the same digest.
pub fn digest(tree: &dyn KvTree) -> Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    for kv in tree.scan_prefix(b"") {
        let (k, v) = kv?;
        if k == CURSOR_KEY {
            continue;
        }
        h.update(&(k.len() as u64).to_be_bytes());
        h.update(&k);
        let (tag, bytes) = value_content(&v);
        h.update(&tag);
        h.update(&(bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    Ok(*h.finalize().as_bytes())
}

/// What a view value holds, as [`digest`] and [`audit`] compare it: an
/// intact envelope as `[1, version]` and its uncompressed body, any other
/// bytes (a bare value, or a damaged envelope) as `[0, 0]` and themselves.
fn value_content(v: &[u8]) -> ([u8; 2], std::borrow::Cow<'_, [u8]>) {
    match crate::store::envelope::content(v) {
        Some((version, body)) => ([1, version], body),
        None => (BARE, std::borrow::Cow::Borrowed(v)),
    }
}

/// [`value_content`]'s tag for bytes that are no intact envelope.
const BARE: [u8; 2] = [0, 0];

/// How a view's stored state compares with a fresh replay's ([`compare`]).
enum Comparison {
    Same,
    /// The first key (in key order) whose value differs, or that only one
    /// of the two has.
    DiffersAt(Vec<u8>),
    /// The stored value at this key is not an intact envelope where the
    /// fresh one is (its check fails, or its payload does not decompress).
    DoesNotOpen(Vec<u8>),
    /// A stored value cannot be read (damaged in sled or in the view's
    /// value file).
    Unreadable(Error),
}

/// Compares a view's stored tree with a fresh one key by key, cursors left
/// out, values by what they hold ([`value_content`]: bytes that are equal
/// need no decompressing). An error reading the fresh tree is returned.
fn compare(stored: &dyn KvTree, fresh: &dyn KvTree) -> Result<Comparison> {
    let not_cursor = |kv: &Result<(Vec<u8>, Vec<u8>)>| !matches!(kv, Ok((k, _)) if k == CURSOR_KEY);
    let mut stored = stored.scan_prefix(b"").filter(not_cursor);
    let mut fresh = fresh.scan_prefix(b"").filter(not_cursor);
    loop {
        let a = match stored.next() {
            Some(Err(e)) => return Ok(Comparison::Unreadable(e)),
            Some(Ok(kv)) => Some(kv),
            None => None,
        };
        match (a, fresh.next().transpose()?) {
            (None, None) => return Ok(Comparison::Same),
            (Some((k, _)), None) | (None, Some((k, _))) => return Ok(Comparison::DiffersAt(k)),
            (Some((ka, va)), Some((kb, vb))) => {
                if ka != kb {
                    return Ok(Comparison::DiffersAt(ka.min(kb)));
                }
                if va != vb {
                    let (a, b) = (value_content(&va), value_content(&vb));
                    if a.0 == BARE && b.0 != BARE {
                        return Ok(Comparison::DoesNotOpen(ka));
                    }
                    if a != b {
                        return Ok(Comparison::DiffersAt(ka));
                    }
                }
            }
        }
    }
}

/// Whether error `e`, met by a fresh replay of the log, says the archive is
/// damaged (the log, or the index it reads the log through), rather than
/// that the replay could not run (an I/O error, a full disk, a bug).
fn says_damage(e: &Error) -> bool {
    match e {
        Error::Io { .. } | Error::Internal(_) => false,
        Error::Sled(_) => e.index_damage().is_some(),
        _ => true,
    }
}

/// Brings every view up to the head of the log (pinned views stay where
/// they are), rebuilding views with no state to resume from (a new
/// version, a lost tree) as [`replay`] does, and removes trees
/// left behind by an interrupted replay.
pub fn catch_up(archive: &Archive, views: &[Box<dyn Projection>]) -> Result<()> {
    catch_up_with(archive, views, None)
}

/// [`catch_up`], reporting the seq each pass has reached.
pub fn catch_up_with(archive: &Archive, views: &[Box<dyn Projection>], progress: Progress<'_>) -> Result<()> {
    let views: Vec<&dyn Projection> = views.iter().map(|v| v.as_ref()).collect();
    drop_retired(archive, &views)?;
    catch_up_reporting(archive, &views, progress)
}

/// The last version of the retired `changes` view.
const RETIRED_LAST_VERSION: u32 = 4;

/// Removes the trees and pointer of a view this cairn no longer has (the
/// `changes` view, whose records the threads view keeps since its version
/// 5), unless `views` has one by that name.
fn drop_retired(archive: &Archive, views: &[&dyn Projection]) -> Result<()> {
    let retired = super::changes::RETIRED_VIEW;
    if views.iter().any(|v| v.name() == retired) {
        return Ok(());
    }
    // Only trees the retired view built (its last version was 4): a
    // library user's own view of that name, built elsewhere, stays.
    let mut kept = false;
    for name in archive.store().tree_names()? {
        if name.starts_with(&format!("{retired}.")) {
            let tree = archive.store().tree(&name)?;
            if read_cursor(tree.as_ref()).is_ok_and(|c| c.version <= RETIRED_LAST_VERSION) {
                tracing::debug!("removing the tree {name} of a retired view");
                archive.store().drop_tree(&name)?;
            } else {
                kept = true;
            }
        }
    }
    if kept {
        return Ok(());
    }
    remove_pointer(archive, retired)
}

/// [`catch_up`] of some views (the others' trees are left alone).
pub fn catch_up_views(archive: &Archive, views: &[&dyn Projection]) -> Result<()> {
    catch_up_reporting(archive, views, None)
}

/// [`catch_up_views`], reporting the seq each view has reached.
pub fn catch_up_reporting(
    archive: &Archive,
    views: &[&dyn Projection],
    progress: Progress<'_>,
) -> Result<()> {
    let head = archive.head().seq;
    let mut live: Vec<String> = vec![POINTERS.to_string()];
    let mut lagging: Vec<(&dyn Projection, Arc<dyn KvTree>, Seq)> = Vec::new();
    // Views with no state to start from (a new version, a tree lost or
    // dropped as stale) are built as `replay` builds them: into a new
    // generation whose keys stay in memory until it is settled (at 1M,
    // 4.5 s and 135 MB into the live tree in atomic batches, 3.3 s and
    // 99 MB this way), then swapped in.
    let mut afresh: Vec<&dyn Projection> = Vec::new();
    // Pinned views to build again up to their pins, the same way.
    let mut to_pin: Vec<(&dyn Projection, Seq, Option<Timestamp>)> = Vec::new();
    for view in views {
        let pointer = load_pointer(archive, view.name())?;
        let name = tree_name(view.name(), pointer.generation);
        live.push(name.clone());
        let tree = archive.store().tree(&name)?;
        if let Some(pin) = pointer.pinned_until {
            // A pinned view stays where it is, unless its tree was lost
            // (dropped as stale), built by another version of the view, or
            // left short of its pin (an older cairn rebuilt it in place
            // and was stopped): then it is built again up to its pin, into
            // a new generation named once it is whole.
            let cursor = read_cursor(tree.as_ref())?;
            let lost = pin > Seq(0) && cursor == Cursor::default();
            let other_version = cursor != Cursor::default() && cursor.version != view.version();
            // (A pin past the head, which no command makes, would leave
            // the cursor short at every rebuild: not taken for short.)
            let short = cursor != Cursor::default() && !other_version && cursor.seq != pin && pin <= head;
            if other_version {
                tracing::info!(
                    "view {} version {} -> {}, pinned at seq {pin}: rebuilding it to its pin",
                    view.name(),
                    cursor.version,
                    view.version()
                );
            } else if lost || short {
                tracing::warn!(
                    "view {} pinned at seq {pin} has {}; rebuilding it to its pin",
                    view.name(),
                    if lost { "no state".to_string() } else { format!("its state at seq {}", cursor.seq) }
                );
            }
            if lost || other_version || short {
                to_pin.push((*view, pin, pointer.observed_until));
            }
            continue;
        }
        let cursor = read_cursor(tree.as_ref())?;
        if cursor.version != view.version() || cursor.seq == Seq(0) {
            let other_version = cursor.version != view.version() && cursor != Cursor::default();
            if head == Seq(0) {
                // Nothing to build from: another version's state goes.
                if other_version {
                    tree.clear()?;
                }
                continue;
            }
            if other_version {
                tracing::info!(
                    "view {} version {} -> {}: rebuilding",
                    view.name(),
                    cursor.version,
                    view.version()
                );
            }
            afresh.push(*view);
            continue;
        }
        if cursor.seq < head {
            tracing::debug!("view {}: applying seqs {}..={}", view.name(), cursor.seq.next(), head);
            lagging.push((*view, tree, cursor.seq.next()));
        }
    }
    // One pass over the log for the views that start at the same seq (all
    // of them, after an upgrade or a repair), on two threads.
    let mut starts: Vec<Seq> = lagging.iter().map(|(_, _, from)| *from).collect();
    starts.sort();
    starts.dedup();
    for from in starts {
        let jobs: Vec<(&dyn Projection, &dyn KvTree)> =
            lagging.iter().filter(|(_, _, f)| *f == from).map(|(v, t, _)| (*v, t.as_ref())).collect();
        run_all(&jobs, archive, from, head, None, progress, true)?;
    }
    for name in archive.store().tree_names()? {
        let ours = views.iter().any(|v| name.starts_with(&format!("{}.", v.name())));
        if ours && !live.contains(&name) {
            tracing::debug!("removing stale view tree {name}");
            archive.store().drop_tree(&name)?;
        }
    }
    archive.store().remove_unowned_values()?;
    if !afresh.is_empty() {
        replay_views(archive, &afresh, None, progress)?;
    }
    // One pass over the log for the views pinned at the same point.
    let mut points: Vec<(Seq, Option<Timestamp>)> = Vec::new();
    for (_, pin, observed_until) in &to_pin {
        if !points.contains(&(*pin, *observed_until)) {
            points.push((*pin, *observed_until));
        }
    }
    for (pin, observed_until) in points {
        let group: Vec<&dyn Projection> =
            to_pin.iter().filter(|(_, s, t)| (*s, *t) == (pin, observed_until)).map(|(v, _, _)| *v).collect();
        build_generations(archive, &group, pin, observed_until, true, progress)?;
    }
    Ok(())
}

/// Applies just-committed segments (handed over by the ingest, in memory)
/// to every view whose cursor is right before them, in one pass; any other
/// view is brought up to date from the store with [`catch_up`].
pub fn apply_segments(
    archive: &Archive,
    views: &[Box<dyn Projection>],
    segments: Vec<Vec<LogEntry>>,
) -> Result<()> {
    let views: Vec<&dyn Projection> = views.iter().map(|v| v.as_ref()).collect();
    let entries: Vec<Arc<LogEntry>> = segments.into_iter().flatten().map(Arc::new).collect();
    apply_shared(archive, &views, &entries)
}

/// [`apply_segments`] of some views, from entries shared with other
/// threads (the ingest applies two groups of views on two threads).
pub fn apply_shared(archive: &Archive, views: &[&dyn Projection], entries: &[Arc<LogEntry>]) -> Result<()> {
    let Some(first) = entries.first().map(|e| e.seq) else { return Ok(()) };
    let mut lagging = false;
    let mut ready: Vec<(&dyn Projection, Arc<dyn KvTree>)> = Vec::new();
    for view in views.iter().copied() {
        let pointer = load_pointer(archive, view.name())?;
        if pointer.pinned_until.is_some() {
            continue;
        }
        let tree = archive.store().tree(&tree_name(view.name(), pointer.generation))?;
        let cursor = read_cursor(tree.as_ref())?;
        let never_built = cursor == Cursor::default();
        if (cursor.version != view.version() && !never_built) || cursor.seq.next() != first {
            lagging = true;
            continue;
        }
        ready.push((view, tree));
    }
    let jobs: Vec<(&dyn Projection, &dyn KvTree)> = ready.iter().map(|(v, t)| (*v, t.as_ref())).collect();
    if !jobs.is_empty() {
        apply_entries(&jobs, archive, first, entries.iter().map(|e| Ok(Arc::clone(e))), None, None)?;
    }
    if lagging {
        catch_up_views(archive, views)?;
    }
    Ok(())
}

/// Rebuilds `views` from seq 1 into fresh trees, up to `until` (or the
/// head), then swaps each in. With `until` the views stay pinned there
/// until a replay without it.
pub fn replay(
    archive: &Archive,
    views: &[Box<dyn Projection>],
    until: Option<Until>,
) -> Result<Vec<ViewStatus>> {
    replay_reporting(archive, views, until, None)
}

/// [`replay`], reporting the seq reached.
pub fn replay_reporting(
    archive: &Archive,
    views: &[Box<dyn Projection>],
    until: Option<Until>,
    progress: Progress<'_>,
) -> Result<Vec<ViewStatus>> {
    let views: Vec<&dyn Projection> = views.iter().map(|v| v.as_ref()).collect();
    replay_views(archive, &views, until, progress)
}

/// [`replay_reporting`] of views given by reference (catch-up rebuilds
/// the views it finds empty this way).
fn replay_views(
    archive: &Archive,
    views: &[&dyn Projection],
    until: Option<Until>,
    progress: Progress<'_>,
) -> Result<Vec<ViewStatus>> {
    let head = archive.head().seq;
    let (target, observed_until) = match until {
        None => (head, None),
        Some(u) => u.target(head, "--until")?,
    };
    build_generations(archive, views, target, observed_until, until.is_some(), progress)
}

/// Builds `views` from seq 1 to `target` (leaving out what was observed
/// after `observed_until`) into new generations, then names each with its
/// pointer, pinned at `target` when `pinned`.
fn build_generations(
    archive: &Archive,
    views: &[&dyn Projection],
    target: Seq,
    observed_until: Option<Timestamp>,
    pinned: bool,
    progress: Progress<'_>,
) -> Result<Vec<ViewStatus>> {
    // Build every new tree in one pass over the log, then swap them in.
    let mut fresh = Vec::new();
    for view in views {
        let old = load_pointer(archive, view.name())?;
        let generation = old.generation + 1;
        let name = tree_name(view.name(), generation);
        archive.store().drop_tree(&name)?;
        fresh.push((old, generation, archive.store().new_tree(&name)?));
    }
    // The new trees are read by no one until the pointers name them: their
    // writes need not be atomic (a crash leaves trees the next catch-up
    // removes), so they skip sled's process-wide batch lock.
    let loose: Vec<Loose<&dyn KvTree>> = fresh.iter().map(|(_, _, tree)| Loose(tree.as_ref())).collect();
    let jobs: Vec<(&dyn Projection, &dyn KvTree)> =
        views.iter().zip(&loose).map(|(v, tree)| (*v, tree as &dyn KvTree)).collect();
    let seq = run_all(&jobs, archive, Seq(1), target, observed_until.as_ref(), progress, true)?;
    // Each article's state was written again wherever a later part of the
    // log (a re-scrape) touched it: the garbage goes before the generation
    // is named, half of the trees on a thread of their own, which then
    // digest them (decompressing every value: [`digest`]).
    let (first, second) = crate::store::on_two_halves(
        &loose,
        |trees| {
            trees
                .iter()
                .map(|tree| {
                    tree.settle()?;
                    digest(tree)
                })
                .collect::<Result<Vec<_>>>()
        },
        "a thread settling and digesting a replay's views panicked",
    );
    let digests = [first?, second?].concat();
    for tree in &loose {
        tree.sync()?;
    }
    let pinned_until = pinned.then_some(target);
    // The threads that built the views are done: what they freed goes back
    // before sled reads the old generation to drop it.
    crate::store::trim::release_free_memory();
    let mut out = Vec::new();
    for ((view, (old, generation, _)), digest) in views.iter().zip(&fresh).zip(digests) {
        save_pointer(
            archive,
            view.name(),
            &Pointer { generation: *generation, pinned_until, observed_until },
        )?;
        archive.store().drop_tree(&tree_name(view.name(), old.generation))?;
        out.push(ViewStatus {
            name: view.name(),
            version: view.version(),
            seq,
            pinned_until,
            observed_until,
            digest,
        });
    }
    Ok(out)
}

/// The state of every view: version, seq reflected, pin and digest.
pub fn status(archive: &Archive, views: &[Box<dyn Projection>]) -> Result<Vec<ViewStatus>> {
    views
        .iter()
        .map(|view| {
            let pointer = load_pointer(archive, view.name())?;
            let tree = archive.store().tree(&tree_name(view.name(), pointer.generation))?;
            let cursor = read_cursor(tree.as_ref())?;
            Ok(ViewStatus {
                name: view.name(),
                version: cursor.version,
                seq: cursor.seq,
                pinned_until: pointer.pinned_until,
                observed_until: pointer.observed_until,
                digest: digest(tree.as_ref())?,
            })
        })
        .collect()
}

/// The digest a view would have after a fresh replay of the log up to
/// `until`, computed in memory without touching the archive's trees.
pub fn fresh_digest(archive: &Archive, view: &dyn Projection, until: Seq) -> Result<[u8; 32]> {
    let tree = crate::store::kv::MemoryTree::default();
    run(view, &tree, archive, Seq(1), until)?;
    digest(&tree)
}

/// Views computed for one query (`--at`) are kept in memory up to this
/// many entries, and in a temporary directory beyond (bounded memory).
pub const AT_IN_MEMORY_MAX: u64 = 50_000;

/// Computes `views` as of a past point for one query (`--at`): a fresh run
/// over the log up to seq `at` (or, for a time, what was observed up to
/// it, as `replay --until` does), into scratch trees; the stored views are
/// not touched. [`Archive::set_views_at`] makes view commands read them.
pub fn compute_at(
    archive: &Archive,
    views: &[&dyn Projection],
    at: Until,
    progress: Progress<'_>,
) -> Result<ViewsAt> {
    compute_at_with(archive, views, at, progress, AT_IN_MEMORY_MAX)
}

/// [`compute_at`], in memory up to `in_memory_max` entries.
pub fn compute_at_with(
    archive: &Archive,
    views: &[&dyn Projection],
    at: Until,
    progress: Progress<'_>,
    in_memory_max: u64,
) -> Result<ViewsAt> {
    let head = archive.head().seq;
    let (target, observed_until) = at.target(head, "--at")?;
    let scratch = crate::store::kv::Scratch::for_entries(target.0, in_memory_max)?;
    let trees: Vec<(String, Arc<dyn KvTree>)> = views
        .iter()
        .map(|v| Ok((v.name().to_string(), Arc::from(scratch.tree(v.name())?))))
        .collect::<Result<_>>()?;
    let jobs: Vec<(&dyn Projection, &dyn KvTree)> =
        views.iter().zip(&trees).map(|(v, (_, t))| (*v, t.as_ref())).collect();
    let seq = run_all(&jobs, archive, Seq(1), target, observed_until.as_ref(), progress, true)?;
    Ok(ViewsAt { trees, seq, observed_until, scratch })
}

/// Archives with more entries than this have their views audited through a
/// temporary directory instead of in memory, so that verify's memory
/// stays bounded (a 1M-comment archive's views take about 1 GB as
/// in-memory maps).
pub const AUDIT_IN_MEMORY_MAX: u64 = 250_000;

/// A problem an audit found in a view: the view, the seq its state claims
/// to reflect, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewProblem {
    /// The view's name.
    pub view: &'static str,
    /// The seq its cursor names.
    pub seq: Seq,
    /// What is wrong.
    pub message: String,
}

/// Checks every view without changing anything: its pointer decodes and
/// names an existing tree, its cursor decodes, carries this view's version
/// and does not pass the head (or equals its pin), and its state equals a
/// fresh replay of the log up to its cursor (in memory, or in a temporary
/// sled database for a large archive), compared key by key by what each
/// value holds. Each view's problems come together, in the order of
/// `views`.
pub fn audit(archive: &Archive, views: &[Box<dyn Projection>]) -> Result<Vec<ViewProblem>> {
    audit_with(archive, views, AUDIT_IN_MEMORY_MAX, None)
}

/// Entries of the log from seq 1 in order, in batches, handed over by a
/// pass that reads the log anyway (`verify`'s), `None` at the end; an
/// entry that could not be read ends them, as it ends a read of the log.
pub type LogFeed = std::sync::mpsc::Receiver<Option<Vec<Result<Arc<LogEntry>>>>>;

/// [`audit`], building the fresh views in memory when the archive has at
/// most `in_memory_max` entries and in a temporary directory otherwise.
/// With `feed`, the first fresh replay takes its entries from it instead of
/// reading the log again (the feed is dropped unread when there is none).
pub fn audit_with(
    archive: &Archive,
    views: &[Box<dyn Projection>],
    in_memory_max: u64,
    feed: Option<LogFeed>,
) -> Result<Vec<ViewProblem>> {
    let mut feed = feed;
    let mut problems = Vec::new();
    let names = archive.store().tree_names()?;
    let head = archive.head().seq;
    type Pending<'v> = (&'v dyn Projection, (Seq, Option<Timestamp>), Arc<dyn KvTree>);
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for view in views {
        let mut problem =
            |seq: Seq, message: String| problems.push(ViewProblem { view: view.name(), seq, message });
        let pointer = match load_pointer(archive, view.name()) {
            Ok(p) => p,
            Err(e) => {
                problem(Seq(0), format!("pointer does not decode: {e}"));
                continue;
            }
        };
        let name = tree_name(view.name(), pointer.generation);
        let others = names.iter().any(|n| n.starts_with(&format!("{}.", view.name())) && *n != name);
        if !names.contains(&name) {
            if others {
                problem(Seq(0), format!("pointer names tree {name}, which does not exist"));
            }
            continue;
        }
        if let Some(why) = archive.store().tree_problem(&name)? {
            problem(Seq(0), why);
            continue;
        }
        let tree = archive.store().tree(&name)?;
        let cursor = match read_cursor(tree.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                problem(Seq(0), format!("cursor does not decode: {e}"));
                continue;
            }
        };
        let empty = tree.scan_prefix(b"").next().is_none();
        if empty {
            if let Some(pin) = pointer.pinned_until.filter(|p| *p > Seq(0)) {
                problem(
                    pin,
                    format!("pinned at seq {pin} but its tree is empty (any view command rebuilds it)"),
                );
            }
            continue; // never built: nothing to check
        }
        if cursor.version != view.version() {
            problem(
                cursor.seq,
                format!(
                    "built by view version {}, this cairn has version {} (any view command or `cairn replay` \
                     rebuilds it)",
                    cursor.version,
                    view.version()
                ),
            );
            continue;
        }
        if cursor.seq > head {
            problem(cursor.seq, format!("cursor at seq {} is past the head (seq {head})", cursor.seq));
            continue;
        }
        if let Some(pin) = pointer.pinned_until {
            if pin != cursor.seq {
                problem(cursor.seq, format!("pinned at seq {pin} but its cursor is at seq {}", cursor.seq));
                continue;
            }
        }
        pending.push((view.as_ref(), (cursor.seq, pointer.observed_until), tree));
    }
    // Fresh replays, one pass over the log per distinct cursor: in memory
    // for a small archive, in a temporary directory (bounded memory)
    // for a large one.
    let mut seqs: Vec<(Seq, Option<Timestamp>)> = Vec::new();
    for (_, point, _) in &pending {
        if !seqs.contains(point) {
            seqs.push(*point);
        }
    }
    let scratch = crate::store::kv::Scratch::for_entries(head.0, in_memory_max)?;
    for point in seqs {
        let (seq, observed_until) = point;
        let group: Vec<&Pending<'_>> = pending.iter().filter(|(_, p, _)| *p == point).collect();
        let trees: Vec<Box<dyn KvTree>> = group
            .iter()
            .map(|(v, _, _)| scratch.tree(&format!("{}.{seq}", v.name())))
            .collect::<Result<_>>()?;
        let jobs: Vec<(&dyn Projection, &dyn KvTree)> =
            group.iter().zip(&trees).map(|((v, _, _), t)| (*v, t.as_ref())).collect();
        // No reading ahead here: verify's own pass over the log keeps the
        // other core busy (with it, verify at 1M took 6.9 -> 7.7 s). Fed
        // by that pass, the log is read and decoded once for both.
        let ran = match feed.take() {
            Some(fed) => {
                let entries = upto(until_end_marker(fed, |e| e, "verify's pass over the log stopped"), seq);
                run_entries(&jobs, archive, Seq(1), entries, true, observed_until.as_ref(), None)
            }
            None => run_all(&jobs, archive, Seq(1), seq, observed_until.as_ref(), None, false),
        };
        match ran {
            Ok(_) => {
                for ((view, _, stored), tree) in group.iter().zip(&trees) {
                    let message = match compare(stored.as_ref(), tree.as_ref())? {
                        Comparison::Same => continue,
                        Comparison::DiffersAt(key) => format!(
                            "state differs from a fresh replay of the log to seq {seq} (first at key \"{}\")",
                            key.escape_ascii()
                        ),
                        Comparison::DoesNotOpen(key) => format!(
                            "the stored value at key \"{}\" does not open (its envelope is damaged or altered)",
                            key.escape_ascii()
                        ),
                        // The disk failed to read it: an error, not damage.
                        Comparison::Unreadable(e) if e.is_io_fault() => return Err(e),
                        // A damaged value (in sled or in the view's value file).
                        Comparison::Unreadable(e) => format!("stored state cannot be read: {e}"),
                    };
                    problems.push(ViewProblem { view: view.name(), seq, message });
                }
            }
            // What stops the run without saying anything of the archive
            // (a full or failing $TMPDIR under the scratch trees, an I/O
            // error, a bug) is an error of this audit (exit 2), never a
            // finding that the archive is damaged.
            Err(e) if !says_damage(&e) => return Err(e),
            Err(e) => {
                for (view, _, stored) in &group {
                    problems.push(ViewProblem {
                        view: view.name(),
                        seq,
                        message: format!("a fresh replay fails: {e}"),
                    });
                    // Its own damage is still named, though there is
                    // nothing to compare it with.
                    if let Some(Err(e)) = stored.scan_prefix(b"").find(|kv| kv.is_err()) {
                        problems.push(ViewProblem {
                            view: view.name(),
                            seq,
                            message: format!("stored state cannot be read: {e}"),
                        });
                    }
                }
            }
        }
    }
    // Each view's problems together, in the order of `views`.
    problems.sort_by_key(|p| views.iter().position(|v| v.name() == p.view));
    Ok(problems)
}
