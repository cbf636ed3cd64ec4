//! The checks `verify` makes after its pass over the log, one function
//! per check, each returning its findings as data: the store's layout, the
//! head record, the checkpoint, the id index, the parse records, the blobs
//! and the delta bases. (The views are compared with a fresh replay by
//! [`crate::views::audit`].)

use super::scan::LogFacts;
use super::seen::Known;
use super::verify::Finding;
use crate::error::{Error, Result};
use crate::model::{BlobId, ChainHash, EventId, Seq};
use crate::store::{Archive, HeadState, LogStore};
use std::collections::{HashMap, HashSet};

/// Findings gathered by one check, and a count it reports.
#[derive(Default)]
struct Found {
    findings: Vec<Finding>,
    count: u64,
}

impl Found {
    fn find(&mut self, check: &'static str, seq: Option<Seq>, id: Option<EventId>, message: String) {
        self.findings.push(Finding { check, seq, id, message });
    }
}

/// `segment`: how the store lays the log and the packs out (end records,
/// locators, commit records).
pub(super) fn layout(store: &dyn LogStore) -> Result<Vec<Finding>> {
    Ok(store
        .layout_problems()?
        .into_iter()
        .map(|(seq, message)| Finding { check: "segment", seq, id: None, message })
        .collect())
}

/// `head`: the head record says the log's last seq, chain head and counts.
pub(super) fn head(stored: &HeadState, facts: &LogFacts) -> Vec<Finding> {
    let mut r = Found::default();
    if stored.seq != facts.last || stored.hash != facts.chain {
        r.find(
            "head",
            Some(stored.seq),
            None,
            format!(
                "head record says {} {}, the log gives {} {}",
                stored.seq, stored.hash, facts.last, facts.chain
            ),
        );
    }
    if stored.counts != facts.counts {
        r.find(
            "head",
            Some(stored.seq),
            None,
            format!("head record counts {}; the log has {}", stored.counts, facts.counts),
        );
    }
    r.findings
}

/// `checkpoint`: the log still reaches the checkpoint's seq (the chain there
/// is checked during the pass).
pub(super) fn checkpoint((cp_seq, cp_hash): (Seq, ChainHash), facts: &LogFacts) -> Vec<Finding> {
    let mut r = Found::default();
    // Seq 0 is the empty log, whose head is 32 zero bytes: every log
    // extends it.
    if cp_seq == Seq(0) && cp_hash != ChainHash::GENESIS {
        r.find(
            "checkpoint",
            Some(cp_seq),
            None,
            format!("the checkpoint at seq 0 says {cp_hash}; the empty log's head is 64 zeros"),
        );
    } else if !facts.checkpoint_seen && cp_seq != Seq(0) {
        r.find(
            "checkpoint",
            Some(cp_seq),
            None,
            format!(
                "the log ends at seq {}, before the checkpoint's seq {cp_seq}: entries were removed",
                facts.last
            ),
        );
    }
    r.findings
}

/// `checkpoint` (signed): the Merkle tree of the log's first `size`
/// entries has the checkpoint's root.
pub(super) fn tree_checkpoint(cp: &crate::transparency::note::Checkpoint, facts: &LogFacts) -> Vec<Finding> {
    let mut r = Found::default();
    let root = if cp.size == 0 {
        Some(crate::transparency::merkle::empty_root())
    } else {
        facts.tree.root_at_checkpoint
    };
    match root {
        Some(root) if root == cp.root => {}
        Some(_) => r.find(
            "checkpoint",
            Some(Seq(cp.size)),
            None,
            format!(
                "the Merkle tree of the first {} entries does not have the signed checkpoint's root: the log was changed",
                cp.size
            ),
        ),
        None if facts.tree.broken => r.find(
            "checkpoint",
            Some(Seq(cp.size)),
            None,
            "the log's entries are out of order before the signed checkpoint's size: its tree cannot be recomputed".into(),
        ),
        None => r.find(
            "checkpoint",
            Some(Seq(cp.size)),
            None,
            format!("the log ends at seq {}, before the signed checkpoint's size {}: entries were removed", facts.last, cp.size),
        ),
    }
    r.findings
}

/// `tree`: the Merkle tree's stored hashes (`tree/hashes`) are exactly the
/// ones recomputed from the log.
pub(super) fn tree(archive: &Archive, facts: &LogFacts) -> Result<Vec<Finding>> {
    let mut r = Found::default();
    let Some(file) = archive.store().merkle() else { return Ok(r.findings) };
    if facts.tree.broken {
        return Ok(r.findings);
    }
    let want = &facts.tree.stored;
    let have = file.count();
    match archive.store().merkle_recorded() {
        Some(Ok(n)) if n == have => {}
        Some(Ok(n)) => r.find(
            "tree",
            None,
            None,
            format!("the index records {n} stored hashes of the Merkle tree; tree/hashes holds {have}"),
        ),
        Some(Err(e)) => r.find("tree", None, None, format!("the index's Merkle tree record: {e}")),
        None if have > 0 => r.find(
            "tree",
            None,
            None,
            format!("the index records no Merkle tree; tree/hashes holds {have} hashes"),
        ),
        None => {}
    }
    if have != want.len() as u64 {
        r.find(
            "tree",
            None,
            None,
            format!(
                "the Merkle tree stores {have} hashes; the log's {} entries make {} (`cairn repair` rebuilds them)",
                facts.last,
                want.len()
            ),
        );
    }
    let mut wrong = 0u64;
    let mut first = None;
    for (i, w) in want.iter().enumerate().take(have as usize) {
        let ok = match file.get(i as u64) {
            Ok(h) => h == *w,
            // (The disk failed to read it: an error, not a changed hash.)
            Err(e) if e.is_io_fault() => return Err(e),
            Err(_) => false,
        };
        if !ok {
            wrong += 1;
            first.get_or_insert(i);
        }
    }
    if let Some(i) = first {
        r.find(
            "tree",
            None,
            None,
            format!(
                "{wrong} of the Merkle tree's stored hashes differ from the log's, the first at position {i} \
                 (tree/hashes was changed or damaged; `cairn repair` rebuilds it)"
            ),
        );
    }
    Ok(r.findings)
}

/// Seqs the index check found in the id runs and in the id sets, kept
/// across the passes of a partitioned verify (two bits per seq), with the
/// seqs that repeat an id (rightly in neither).
pub(super) struct IndexMarks {
    n: usize,
    indexed: Vec<u64>,
    bucketed: Vec<u64>,
    repeats: HashSet<Seq>,
    count: u64,
}

impl IndexMarks {
    /// Marks for the seqs 1..=`last` of a log whose first pass read
    /// `entries` entries (a `last` far past them is the seq check's
    /// finding, and is not given a mark).
    pub fn new(last: Seq, entries: u64) -> IndexMarks {
        let n = usize::try_from(last.0.min(entries.max(1).saturating_mul(2))).unwrap_or(usize::MAX);
        let words = n.div_ceil(64);
        IndexMarks { n, indexed: vec![0; words], bucketed: vec![0; words], repeats: HashSet::new(), count: 0 }
    }

    /// The mark of `seq` among marks for `n` seqs.
    fn slot(n: usize, seq: Seq) -> Option<usize> {
        (seq.0 >= 1 && seq.0 <= n as u64).then(|| seq.0 as usize - 1)
    }

    /// Sets the mark of `seq` in `bits`; false when it was set already.
    fn mark(bits: &mut [u64], i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let fresh = bits[w] & b == 0;
        bits[w] |= b;
        fresh
    }

    fn has(bits: &[u64], i: usize) -> bool {
        bits[i / 64] & (1u64 << (i % 64)) != 0
    }
}

/// The id index against the log, for the ids of one pass's partition: the
/// index files are whole (the first pass); every run entry names the id at
/// its seq; every article's id set holds exactly its events. What is in
/// neither is named by [`index_finish`] after the last pass.
pub(super) fn index_pass(
    archive: &Archive,
    facts: &LogFacts,
    marks: &mut IndexMarks,
) -> Result<Vec<Finding>> {
    let seen = &facts.seen;
    let first = seen.part().is_first();
    let mut r = Found::default();
    let store = archive.store();
    if first {
        for p in store.index_problems()? {
            r.find("index", None, None, p);
        }
    }
    marks.repeats.extend(&facts.repeats);
    // The runs and the id sets on two threads (this check runs after the
    // pass over the log, when the views' replay beside it is usually done).
    let n = marks.n;
    let (indexed, bucketed) = (&mut marks.indexed, &mut marks.bucketed);
    let (runs, sets) = std::thread::scope(|scope| {
        let sets = scope.spawn(|| id_sets_against_log(archive, facts, n, bucketed));
        let runs = id_runs_against_log(archive, facts, n, indexed);
        let sets =
            sets.join().unwrap_or_else(|_| Err(Error::Internal("a thread checking id sets panicked".into())));
        (runs, sets)
    });
    let (runs, sets) = (runs?, sets?);
    if first {
        marks.count += runs.count;
    }
    r.findings.extend(runs.findings);
    r.findings.extend(sets.findings);
    Ok(r.findings)
}

/// [`index_pass`]'s half for the id runs: each entry names the id at its
/// seq (marked in `indexed`); `count` is how many entries they hold.
fn id_runs_against_log(archive: &Archive, facts: &LogFacts, n: usize, indexed: &mut [u64]) -> Result<Found> {
    let (seen, first) = (&facts.seen, facts.seen.part().is_first());
    let mut r = Found::default();
    // Runs: id -> seq, a chunk at a time, its ids looked up as one batch.
    let mut items = archive.store().scan_index();
    let mut chunk: Vec<crate::store::IndexRead> = Vec::with_capacity(LOOKUP_CHUNK);
    loop {
        chunk.clear();
        for item in items.by_ref().take(LOOKUP_CHUNK) {
            chunk.push(item?);
        }
        if chunk.is_empty() {
            break;
        }
        let looked_up = chunk.iter().filter_map(|(id, seq)| match (id, seq) {
            (Ok(id), Ok(_)) => Some(*id),
            _ => None,
        });
        let mut known = seen.known_all(looked_up).into_iter();
        for (id, seq) in chunk.drain(..) {
            r.count += 1;
            run_entry_against_log(&mut r, (id, seq), &mut known, first, n, indexed);
        }
    }
    Ok(r)
}

/// Index entries looked up in one batch ([`crate::audit::seen::SeenIds::known_all`]).
const LOOKUP_CHUNK: usize = 4096;

/// One entry of the id runs against the log: `known` yields what is known
/// of its id when it decoded whole.
fn run_entry_against_log(
    r: &mut Found,
    (id, seq): crate::store::IndexRead,
    known: &mut impl Iterator<Item = Known>,
    first: bool,
    n: usize,
    indexed: &mut [u64],
) {
    match (id, seq) {
        (Err(why), _) if first => r.find("index-stale", None, None, why),
        (Ok(id), Err(why)) if first => r.find("index-stale", None, Some(id), why),
        (Ok(id), Ok(seq)) => match known.next().unwrap_or(Known::Unseen) {
            Known::Elsewhere => {}
            Known::Seen((s, _, _)) if s == seq => match IndexMarks::slot(n, seq) {
                Some(i) if !IndexMarks::mark(indexed, i) => {
                    r.find("index-stale", Some(seq), Some(id), "the id index holds this id twice".into())
                }
                _ => {}
            },
            Known::Seen((s, _, _)) => r.find(
                "index-stale",
                Some(seq),
                Some(id),
                format!("index says seq {seq}, the log has it at seq {s}"),
            ),
            Known::Unseen => r.find(
                "index-stale",
                Some(seq),
                Some(id),
                format!("index maps {id} to seq {seq}, but no entry has that id"),
            ),
        },
        _ => {}
    }
}

/// [`index_pass`]'s half for the articles' id sets: each holds exactly its
/// article's events (marked in `bucketed`).
fn id_sets_against_log(archive: &Archive, facts: &LogFacts, n: usize, bucketed: &mut [u64]) -> Result<Found> {
    let (seen, first) = (&facts.seen, facts.seen.part().is_first());
    let mut r = Found::default();
    // Buckets: each article's id set.
    for item in archive.store().scan_buckets() {
        let (key, entries) = item?;
        let at = crate::model::ids::to_hex(&key[..8]);
        let entries = match entries {
            Ok(e) => e,
            Err(why) => {
                if first {
                    r.find(
                        "index-stale",
                        None,
                        None,
                        format!("the id set of bucket {at}… does not decode: {why}"),
                    );
                }
                continue;
            }
        };
        let known = seen.known_all(entries.iter().map(|(id, _)| *id));
        for ((id, seq), known) in entries.into_iter().zip(known) {
            match known {
                Known::Elsewhere => {}
                Known::Seen((s, _, b))
                    if s == seq && facts.fingerprints.as_ref().is_some_and(|f| b == f.of(&key)) =>
                {
                    if let Some(i) = IndexMarks::slot(n, seq) {
                        IndexMarks::mark(bucketed, i);
                    }
                }
                Known::Seen((s, _, _)) if s == seq => r.find(
                    "index-stale",
                    Some(seq),
                    Some(id),
                    format!("the id set of bucket {at}… holds this id, which belongs to another article's"),
                ),
                _ => r.find(
                    "index-stale",
                    Some(seq),
                    Some(id),
                    format!("the id set of bucket {at}… maps {id} to seq {seq}; the log disagrees"),
                ),
            }
        }
    }
    Ok(r)
}

/// After the last pass of [`index_pass`]: every entry of the log (seqs
/// 1..=last, but for repeats of an id) is in both the runs and the id
/// sets. Returns the findings and the number of index entries.
pub(super) fn index_finish(archive: &Archive, marks: &IndexMarks) -> Result<(Vec<Finding>, u64)> {
    let mut r = Found::default();
    let missing: Vec<(usize, bool)> = (0..marks.n)
        .filter(|i| !IndexMarks::has(&marks.indexed, *i) || !IndexMarks::has(&marks.bucketed, *i))
        .filter(|i| !marks.repeats.contains(&Seq(*i as u64 + 1)))
        .map(|i| (i, IndexMarks::has(&marks.indexed, i)))
        .take(10_000)
        .collect();
    if !missing.is_empty() {
        // The ids of the missing seqs, read back from the log (verify keeps
        // hashes of ids, not ids): one more pass over it, only when the
        // index misses entries. A seq no segment holds (a gap, a segment
        // that does not decode: the log's own checks name those) is left out.
        let wanted: HashSet<Seq> = missing.iter().map(|(i, _)| Seq(*i as u64 + 1)).collect();
        let mut by_seq: HashMap<Seq, EventId> = HashMap::new();
        for segment in archive.store().scan_segments() {
            let (_, decoded) = segment?;
            let Ok(entries) = decoded else { continue };
            by_seq.extend(entries.iter().filter(|e| wanted.contains(&e.seq)).map(|e| (e.seq, e.id)));
        }
        for (i, in_runs) in missing {
            let seq = Seq(i as u64 + 1);
            let Some(id) = by_seq.get(&seq) else { continue };
            let message = if in_runs {
                "id missing from its article's id set: the duplicate check would not see it".to_string()
            } else {
                "id missing from the index".to_string()
            };
            r.find("index", Some(seq), Some(*id), message);
        }
    }
    Ok((r.findings, marks.count))
}

/// `parsed`: each parse record names a capture made under that very key,
/// with that capture's item counts.
pub(super) fn parsed(archive: &Archive, facts: &LogFacts) -> Result<Vec<Finding>> {
    let mut r = Found::default();
    for item in archive.store().scan_parsed() {
        let (key, parsed) = item?;
        match parsed {
            Err(why) => r.find(
                "parsed",
                None,
                None,
                format!("parse record {} does not decode: {why}", crate::model::ids::to_hex(&key)),
            ),
            Ok(p) => match facts.captures.get(&p.capture) {
                None => r.find(
                    "parsed",
                    None,
                    Some(p.capture),
                    "parse record names a capture that is not in the log".into(),
                ),
                Some((k, counts, seq)) if *k != key || *counts != p.counts => r.find(
                    "parsed",
                    Some(*seq),
                    Some(p.capture),
                    "parse record does not match its capture (key or counts differ)".into(),
                ),
                Some(_) => {}
            },
        }
    }
    Ok(r.findings)
}

/// What [`blobs`] found: its findings, the blobs re-hashed, and the stored
/// blobs no capture names (left by an interrupted ingest; not a finding).
pub(super) struct BlobCheck {
    pub findings: Vec<Finding>,
    pub hashed: u64,
    pub orphans: Vec<BlobId>,
    pub stored: HashSet<BlobId>,
}

/// `blob`: every capture's blob is stored and re-hashes to its id.
pub(super) fn blobs(archive: &Archive, facts: &LogFacts) -> Result<BlobCheck> {
    let store = archive.store();
    let mut referenced: HashSet<BlobId> = HashSet::new();
    let unique: Vec<(BlobId, Seq)> =
        facts.blobs.iter().filter(|(b, _)| referenced.insert(*b)).copied().collect();
    // Half of them on a thread of their own: this check runs after the
    // pass over the log, when the views' replay beside it is usually done
    // or nearly (at 1M it was half a second of one core alone).
    let check = |part: &[(BlobId, Seq)]| -> Result<Found> {
        let mut r = Found::default();
        for (blob, seq) in part {
            r.count += 1;
            match store.get_blob(blob) {
                Ok(raw) => {
                    let actual = BlobId(*blake3::hash(&raw).as_bytes());
                    if actual != *blob {
                        r.find("blob", Some(*seq), None, format!("blob {blob} re-hashes to {actual}"));
                    }
                }
                // An I/O error is the disk's, not the archive's: it ends
                // the audit (exit 2), never a finding of damage.
                Err(e) if e.is_io_fault() => return Err(e),
                Err(e) => r.find("blob", Some(*seq), None, format!("blob {blob} cannot be read: {e}")),
            }
        }
        Ok(r)
    };
    let (first, second) = crate::store::on_two_halves(&unique, check, "a thread checking blobs panicked");
    let (mut r, second) = (first?, second?);
    r.count += second.count;
    r.findings.extend(second.findings);
    let stored: HashSet<BlobId> = store.blob_ids()?.into_iter().collect();
    let mut orphans: Vec<BlobId> = stored.iter().filter(|b| !referenced.contains(b)).copied().collect();
    orphans.sort();
    Ok(BlobCheck { findings: r.findings, hashed: r.count, orphans, stored })
}

/// `blob`: each page's latest-capture record (a delta base) names a stored
/// blob.
pub(super) fn page_bases(archive: &Archive, stored: &HashSet<BlobId>) -> Result<Vec<Finding>> {
    let mut r = Found::default();
    for item in archive.store().scan_page_bases() {
        let (page, base) = item?;
        let page = crate::model::ids::to_hex(&page);
        match base {
            Err(why) => r.find("blob", None, None, format!("page base record {page} does not decode: {why}")),
            Ok(b) if !stored.contains(&b) => r.find(
                "blob",
                None,
                None,
                format!("page base record {page} names blob {b}, which is not stored"),
            ),
            Ok(_) => {}
        }
    }
    Ok(r.findings)
}
