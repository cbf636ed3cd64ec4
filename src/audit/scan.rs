//! The pass over the log that `verify` makes: each segment and entry is
//! checked as it is read, by one function per check (segment, seq,
//! event-id, chain, checkpoint, duplicate, reference, merge, document),
//! and what the later checks need is gathered into [`LogFacts`]. A log of
//! more ids than one pass keeps is read again for each further
//! [`Partition`] of its ids, making only the checks that look ids up
//! (duplicate, reference, merge kinds) for the ids of that partition.

use super::seen::{Known, Partition, SeenIds};
use super::verify::{Finding, VerifyOptions};
use crate::error::Result;
use crate::model::{chain_step, BlobId, ChainHash, Event, EventId, EventKind, LogEntry, Seq};
use crate::store::buckets::Fingerprints;
use crate::store::{Archive, KindCounts, ParseKey};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What verify keeps of each id: its seq, its kind and its bucket's
/// [`Fingerprints`] value.
pub(super) type Seen = (Seq, EventKind, u64);

/// What the pass over the log found, for the checks that follow it.
pub(super) struct LogFacts {
    /// Every id of this pass's partition, with its (earliest) seq, kind
    /// and bucket (the largest structure verify holds).
    pub seen: SeenIds,
    /// The seqs of this partition's ids that repeat an id read before (the
    /// index rightly leaves them out).
    pub repeats: HashSet<Seq>,
    /// How buckets are fingerprinted in `seen`.
    pub fingerprints: Option<Fingerprints>,
    /// Events per kind.
    pub counts: KindCounts,
    /// Every capture's blob, with the capture's seq.
    pub blobs: Vec<(BlobId, Seq)>,
    /// Capture id -> (its parse key, its item counts, its seq) (the first
    /// pass only).
    pub captures: HashMap<EventId, (ParseKey, KindCounts, Seq)>,
    /// The last seq read.
    pub last: Seq,
    /// The chain head recomputed from the entries.
    pub chain: ChainHash,
    /// The checkpoint's seq was read.
    pub checkpoint_seen: bool,
    /// Segments and entries read.
    pub segments: u64,
    pub entries: u64,
    /// The Merkle tree recomputed from the entries.
    pub tree: TreeFacts,
}

/// The Merkle tree as the pass over the log recomputes it.
#[derive(Default)]
pub(super) struct TreeFacts {
    /// The right edge, over every leaf so far.
    pub frontier: crate::transparency::merkle::Frontier,
    /// Every hash the archive should store, in order.
    pub stored: Vec<crate::transparency::merkle::Hash>,
    /// The tree hash at the signed checkpoint's size, once reached.
    pub root_at_checkpoint: Option<crate::transparency::merkle::Hash>,
    /// An entry was out of order: the recomputed tree stops there.
    pub broken: bool,
}

fn finding(check: &'static str, seq: Option<Seq>, id: Option<EventId>, message: String) -> Finding {
    Finding { check, seq, id, message }
}

/// Where the pass over the log hands on the entries it decoded (the fresh
/// replay of the views: [`crate::views::LogFeed`]), in batches of about
/// [`TEE_BATCH`], `None` at the end.
pub(super) type Tee = std::sync::mpsc::SyncSender<Option<Vec<Result<Arc<LogEntry>>>>>;

/// Entries handed on at a time through a [`Tee`].
const TEE_BATCH: usize = 1024;

/// Segments [`segments_ahead`]'s reading thread may be ahead of the pass
/// (a segment is one document: memory stays within a few documents).
const READ_DEPTH: usize = 2;

/// Entries of the segments handed on that the reading thread keeps at
/// most, to free them itself (past it, the oldest go, freed by whoever
/// holds them last).
const KEPT_ENTRIES: usize = 8 * TEE_BATCH;

/// A segment as [`segments_ahead`] hands it over: its key, and its entries
/// or why they cannot be decoded.
type SharedSegment = (Seq, std::result::Result<Vec<Arc<LogEntry>>, String>);

/// Runs `pass` over the log's segments, read and decoded on a thread of
/// its own a few segments ahead (the pass over the log is verify's
/// longest thread; reading and decoding were a third of it). The reading
/// thread keeps each segment it handed over until nobody else holds its
/// entries (up to [`KEPT_ENTRIES`]), so that they are freed on the thread
/// that allocated them (glibc's arena lock, as [`crate::views::Handover`]).
/// A reading thread that stops without its end marker (a panic) is an
/// error, never a shorter log.
fn segments_ahead<R>(
    archive: &Archive,
    pass: impl FnOnce(&mut dyn Iterator<Item = Result<SharedSegment>>) -> Result<R>,
) -> Result<R> {
    std::thread::scope(|scope| {
        let (send, received) = std::sync::mpsc::sync_channel::<Option<Result<SharedSegment>>>(READ_DEPTH);
        let reader = scope.spawn(move || {
            let mut kept: std::collections::VecDeque<Vec<Arc<LogEntry>>> = Default::default();
            let mut kept_entries = 0;
            for segment in archive.store().scan_segments() {
                let shared = segment.map(|(key, decoded)| {
                    let decoded =
                        decoded.map(|entries| entries.into_iter().map(Arc::new).collect::<Vec<_>>());
                    if let Ok(entries) = &decoded {
                        kept_entries += entries.len();
                        kept.push_back(entries.clone());
                    }
                    (key, decoded)
                });
                if send.send(Some(shared)).is_err() {
                    return; // the pass stopped
                }
                while let Some(oldest) = kept
                    .front()
                    .filter(|s| kept_entries > KEPT_ENTRIES || s.iter().all(|e| Arc::strong_count(e) == 1))
                {
                    kept_entries -= oldest.len();
                    kept.pop_front();
                }
            }
            let _ = send.send(None);
        });
        let mut ended = false;
        let mut segments = received.iter().map_while(|s| {
            ended |= s.is_none();
            s
        });
        let out = pass(&mut segments);
        // The receiver goes first: a reader blocked on a full channel
        // then stops.
        drop(received);
        let stopped = || crate::error::Error::Internal("the log reader thread stopped".into());
        match (reader.join(), out) {
            (Err(_), _) => Err(stopped()),
            (Ok(()), Ok(_)) if !ended => Err(stopped()),
            (Ok(()), out) => out,
        }
    })
}

/// Reads every segment once, checking as it goes; findings are appended to
/// `findings`. `progress` receives the entries read so far. The first
/// partition's pass makes every check; a later one only those that look
/// ids of its partition up. With `tee`, the entries are handed on after
/// their checks, exactly as a read of the log from seq 1 gives them: a
/// segment that does not decode is an error there, and the last item.
pub(super) fn scan_log(
    archive: &Archive,
    opts: &VerifyOptions,
    findings: &mut Vec<Finding>,
    mut progress: impl FnMut(u64),
    part: Partition,
    per_pass: u64,
    tee: Option<Tee>,
) -> Result<LogFacts> {
    // Entries handed on are freed by the thread that decoded them
    // ([`segments_ahead`]), once this pass and the replay let go of them.
    let mut tee = tee.map(|to| crate::views::Handover::new(to, TEE_BATCH, 0));
    // Sized for the head (at most a pass's share) up front when that is
    // plausible (growing the table would hold two of it at once); a head
    // record that says more is a finding, and costs at most a zeroed table
    // for 4M ids whose pages are only touched as ids arrive (larger logs
    // grow the table).
    let capacity = usize::try_from(archive.head().seq.0.min(per_pass)).unwrap_or(0).min(1 << 22);
    let full = part.is_first();
    let mut f = LogFacts {
        seen: SeenIds::with_capacity(capacity, part),
        repeats: HashSet::new(),
        fingerprints: None,
        counts: KindCounts::default(),
        blobs: Vec::new(),
        captures: HashMap::new(),
        last: Seq(0),
        chain: ChainHash::GENESIS,
        checkpoint_seen: false,
        segments: 0,
        entries: 0,
        tree: TreeFacts::default(),
    };
    let fingerprints = Fingerprints::new();
    let mut memo = crate::store::buckets::BucketMemo::default();
    let mut expected = Seq(1);
    // `chain` is resynced to the stored head after a mismatch (so every
    // altered entry is named, not only the first); `f.chain` never is.
    let mut chain = ChainHash::GENESIS;
    let mut folded: HashMap<EventId, EventId> = HashMap::new();
    segments_ahead(archive, |segments| {
        for segment in segments {
            let (key, decoded) = segment?;
            f.segments += 1;
            let entries = match decoded {
                Ok(e) => e,
                Err(_) if !full => continue,
                Err(why) => {
                    if let Some(mut t) = tee.take() {
                        // A read of the log ends with this error.
                        t.push(Err(crate::store::sled_store::segment_error(key, why.clone())));
                        t.flush();
                    }
                    findings.push(finding(
                        "segment",
                        Some(key),
                        None,
                        format!("segment at seq {key} does not decode: {why}"),
                    ));
                    continue;
                }
            };
            if !full {
                // A later pass: the checks that look ids of its partition up.
                for e in &entries {
                    f.entries += 1;
                    id_checks(e, &mut f, opts.quick, &fingerprints, &mut memo, findings);
                    f.last = e.seq;
                }
                progress(f.entries);
                continue;
            }
            findings.extend(segment_key(key, &entries));
            for e in &entries {
                f.entries += 1;
                findings.extend(seq_order(e, expected, f.last));
                if !opts.quick {
                    findings.extend(event_id(e));
                }
                let leaf_data = e.leaf_data();
                let entry_hash = *blake3::hash(&leaf_data).as_bytes();
                tree_leaf(&mut f.tree, e.seq == expected, &leaf_data, opts);
                findings.extend(chain_link(e, &chain, &entry_hash));
                chain = e.head;
                f.chain = chain_step(&f.chain, &entry_hash);
                if let Some(cp) = opts.checkpoint.filter(|(s, _)| *s == e.seq) {
                    f.checkpoint_seen = true;
                    findings.extend(checkpoint_at(cp, &f.chain));
                }
                id_checks(e, &mut f, opts.quick, &fingerprints, &mut memo, findings);
                f.counts.add(e.event.kind());
                if !opts.quick {
                    match &e.event {
                        Event::Merge(m) => findings.extend(merge_folds(e.seq, e.id, m, &mut folded)),
                        Event::Capture(c) => {
                            f.blobs.push((c.blob, e.seq));
                            let items = crate::store::capture_counts(c);
                            f.captures.insert(e.id, (crate::store::parse_key_of(c), items, e.seq));
                        }
                        Event::Article(_) | Event::Comment(_) => {}
                    }
                }
                f.last = e.seq;
                expected = e.seq.next();
            }
            if !opts.quick {
                findings.extend(document(key, &entries));
            }
            progress(f.entries);
            // A receiver that has gone (its replay is done, or stopped) is
            // not fed any more.
            if let Some(t) = &mut tee {
                if !entries.into_iter().all(|e| t.push(Ok(e))) {
                    tee = None;
                }
            }
        }
        Ok(())
    })?;
    if let Some(t) = tee {
        t.finish();
    }
    f.fingerprints = Some(fingerprints);
    Ok(f)
}

/// Adds an entry's leaf to the recomputed tree (`in_order`: its seq is the
/// next one; after a gap the recomputed tree stops, the seq check names it).
fn tree_leaf(t: &mut TreeFacts, in_order: bool, leaf_data: &[u8], opts: &VerifyOptions) {
    if t.broken || !in_order {
        t.broken = true;
        return;
    }
    t.frontier.push(crate::transparency::merkle::leaf_hash(leaf_data), &mut t.stored);
    if opts.tree_checkpoint.as_ref().is_some_and(|c| c.size == t.frontier.leaves()) {
        t.root_at_checkpoint = Some(t.frontier.root());
    }
}

/// `segment`: a segment's key is its first entry's seq.
fn segment_key(key: Seq, entries: &[Arc<LogEntry>]) -> Option<Finding> {
    let first = entries.first().map(|e| e.seq);
    (first != Some(key)).then(|| {
        finding(
            "segment",
            Some(key),
            None,
            match first {
                Some(seq) => format!("segment key says seq {key}, its first entry is seq {seq}"),
                None => format!("segment key says seq {key}, but the segment holds no entry"),
            },
        )
    })
}

/// `seq`: seqs are dense and in order.
fn seq_order(e: &LogEntry, expected: Seq, last: Seq) -> Option<Finding> {
    if e.seq == expected {
        return None;
    }
    let (named, what) = if e.seq > expected {
        (
            expected,
            format!("seq {} follows seq {last}: entries {expected}..{} are missing", e.seq, e.seq.0 - 1),
        )
    } else {
        (e.seq, format!("seq {} appears after seq {last}: out of order", e.seq))
    };
    Some(finding("seq", Some(named), Some(e.id), what))
}

/// `event-id`: the stored id is the hash of the stored fields.
fn event_id(e: &LogEntry) -> Option<Finding> {
    let actual = e.event.id();
    (actual != e.id).then(|| {
        finding(
            "event-id",
            Some(e.seq),
            Some(e.id),
            format!("stored id {} but the stored fields hash to {actual}", e.id),
        )
    })
}

/// `chain`: the entry's stored head follows the one before it.
fn chain_link(e: &LogEntry, before: &ChainHash, entry_hash: &[u8; 32]) -> Option<Finding> {
    let computed = chain_step(before, entry_hash);
    (computed != e.head).then(|| {
        finding(
            "chain",
            Some(e.seq),
            Some(e.id),
            format!("entry does not chain: stored head {}, recomputed {computed}", e.head),
        )
    })
}

/// `checkpoint`: the chain at the checkpoint's seq is the checkpoint's.
fn checkpoint_at((seq, hash): (Seq, ChainHash), chain: &ChainHash) -> Option<Finding> {
    (*chain != hash).then(|| {
        finding(
            "checkpoint",
            Some(seq),
            None,
            format!("the chain at seq {seq} is {chain}, the checkpoint says {hash}: the first {seq} entries changed"),
        )
    })
}

/// The checks that look ids up, for the ids of this pass's partition (every
/// pass makes them): records `e`'s id (a repeated id keeps its earliest
/// seq, as the index does; the repeat's seq is kept, for the index check
/// leaves repeats out), then, unless `quick`, duplicate, merge kinds,
/// references and sections.
fn id_checks(
    e: &LogEntry,
    f: &mut LogFacts,
    quick: bool,
    fingerprints: &Fingerprints,
    memo: &mut crate::store::buckets::BucketMemo,
    findings: &mut Vec<Finding>,
) {
    let bucket = fingerprints.of(&memo.of(&e.event));
    let previous = f.seen.record(e.id, (e.seq, e.event.kind(), bucket));
    if let Known::Seen(_) = previous {
        f.repeats.insert(e.seq);
    }
    if quick {
        return;
    }
    findings.extend(duplicate(e, previous));
    match &e.event {
        Event::Merge(m) => findings.extend(merge_kinds(e.seq, e.id, m, &f.seen)),
        Event::Capture(c) => {
            // Each item looked up once, for both checks; the items, then
            // their parents, each as one batch.
            let known = f.seen.known_all(c.items().map(|i| i.id));
            let parents = f.seen.known_all(c.items().filter_map(|i| i.parent));
            findings.extend(references(e, c, &known, &parents));
            findings.extend(sections(e, c, &known, fingerprints));
        }
        Event::Article(_) | Event::Comment(_) => {}
    }
}

/// `duplicate`: no event is in the log twice.
fn duplicate(e: &LogEntry, previous: Known) -> Option<Finding> {
    let Known::Seen((prev, _, _)) = previous else { return None };
    Some(finding("duplicate", Some(e.seq), Some(e.id), format!("the same event is also at seq {prev}")))
}

/// `reference`: a capture names only events earlier in the log (`known`:
/// what is known of each of its items, in [`crate::model::Capture::items`]
/// order; `parents`: of each item's parent, for the items that have one,
/// in the same order).
fn references(e: &LogEntry, c: &crate::model::Capture, known: &[Known], parents: &[Known]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut parents = parents.iter();
    let looked_up = c.items().zip(known).flat_map(|(item, k)| {
        std::iter::once((item.id, *k)).chain(item.parent.and_then(|p| parents.next().map(|k| (p, *k))))
    });
    for (referenced, known) in looked_up {
        match known {
            Known::Elsewhere => {}
            Known::Seen((s, _, _)) if s < e.seq => {}
            Known::Seen((s, _, _)) => out.push(finding(
                "reference",
                Some(e.seq),
                Some(e.id),
                format!("refers to {referenced}, at seq {s}, not earlier"),
            )),
            Known::Unseen => out.push(finding(
                "reference",
                Some(e.seq),
                Some(e.id),
                format!("refers to {referenced}, which is not earlier in the log"),
            )),
        }
    }
    out
}

/// `reference`: a capture lists each article and comment under the section
/// of the article it belongs to (views take comments in by section).
fn sections(
    e: &LogEntry,
    c: &crate::model::Capture,
    known: &[Known],
    fingerprints: &Fingerprints,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut known = known.iter();
    for section in &c.articles {
        let own = fingerprints.of(&crate::store::buckets::article_bucket(section.key.as_str()));
        for (item, k) in section.article.iter().chain(&section.comments).zip(known.by_ref()) {
            match *k {
                Known::Seen((_, EventKind::Article | EventKind::Comment, b)) if b != own => {
                    out.push(finding(
                        "reference",
                        Some(e.seq),
                        Some(e.id),
                        format!(
                            "lists {} under article {}, which it does not belong to",
                            item.id, section.key
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    out
}

/// A kind with its article (`a comment`, `an article`).
pub(crate) fn a_kind(k: EventKind) -> String {
    let name = k.to_string();
    let a = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{a} {name}")
}

/// `merge`: a merge folds ids of its kind into an id of its kind (of the
/// ids this pass keeps).
fn merge_kinds(seq: Seq, id: EventId, m: &crate::model::Merge, seen: &SeenIds) -> Vec<Finding> {
    let want = match m.kind {
        crate::model::MergeKind::Comment => EventKind::Comment,
        crate::model::MergeKind::Article => EventKind::Article,
    };
    std::iter::once(&m.keep)
        .chain(&m.fold)
        .filter_map(|x| match seen.known(x) {
            Known::Seen((_, k, _)) if k != want => Some(finding(
                "merge",
                Some(seq),
                Some(id),
                format!("{} merge names {x}, {}", m.kind.name(), a_kind(k)),
            )),
            _ => None,
        })
        .collect()
}

/// `merge`: a merge folds at least one id, listed as the format lists them
/// (sorted by byte value, no duplicates), never an id into itself, never
/// one id into two different ones, and never into a cycle. (`import`
/// refuses a file with any of these.)
pub(crate) fn merge_folds(
    seq: Seq,
    id: EventId,
    m: &crate::model::Merge,
    folded: &mut HashMap<EventId, EventId>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut find = |message: String| out.push(finding("merge", Some(seq), Some(id), message));
    if m.fold.is_empty() {
        find("folds no id".to_string());
    }
    if m.fold.windows(2).any(|w| w[0] >= w[1]) {
        find("its fold list is not sorted by byte value without duplicates (docs/format.md)".to_string());
    }
    for f in &m.fold {
        if *f == m.keep {
            find(format!("folds {f} into itself"));
            continue;
        }
        if let Some(prev) = folded.get(f) {
            if prev != &m.keep {
                find(format!("folds {f} into {}, but an earlier merge folded it into {prev}", m.keep));
                continue;
            }
        }
        // Following the kept id's own merges must not lead back to `f`.
        let mut current = m.keep;
        let mut cycle = false;
        for _ in 0..=folded.len() {
            if current == *f {
                cycle = true;
                break;
            }
            match folded.get(&current) {
                Some(next) => current = *next,
                None => break,
            }
        }
        if cycle {
            find(format!("folding {f} into {} makes a cycle", m.keep));
            continue;
        }
        folded.insert(*f, m.keep);
    }
    out
}

/// `document`: a segment is one document: it ends with its capture, and
/// the capture names every article and comment appended with it. A segment
/// of merges only (`dedupe --apply`) is a document too.
fn document(key: Seq, entries: &[Arc<LogEntry>]) -> Vec<Finding> {
    let Some(last) = entries.last() else {
        return vec![finding("document", Some(key), None, "empty segment".into())];
    };
    if entries.iter().all(|e| matches!(e.event, Event::Merge(_))) {
        return Vec::new();
    }
    let Event::Capture(capture) = &last.event else {
        return vec![finding(
            "document",
            Some(last.seq),
            Some(last.id),
            format!("the segment at seq {key} does not end with a capture: an incomplete document"),
        )];
    };
    let named: HashSet<EventId> = capture.items().map(|i| i.id).collect();
    entries[..entries.len() - 1]
        .iter()
        .filter(|e| !named.contains(&e.id) || matches!(e.event, Event::Capture(_)))
        .map(|e| {
            finding(
                "document",
                Some(e.seq),
                Some(e.id),
                format!("appended with the capture at seq {}, which does not name it", last.seq),
            )
        })
        .collect()
}
