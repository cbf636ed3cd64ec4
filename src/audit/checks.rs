//! The checks `verify` makes after its pass over the log, one function
//! per check, each returning its findings as data: the store's layout, the
//! head record, the checkpoint, the id index, the parse records, the blobs
//! and the delta bases. (The views are compared with a fresh replay by
//! [`crate::views::audit`].)

use super::scan::LogFacts;
use super::verify::Finding;
use crate::error::Result;
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
            format!("head record counts {:?}, the log has {:?}", stored.counts, facts.counts),
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

/// The id index against the log: the index files are whole; every run
/// entry names the id at its seq; every article's id set holds exactly its
/// events; and every entry of the log (seqs 1..=`last`) is in both, once.
pub(super) fn index(archive: &Archive, facts: &LogFacts) -> Result<(Vec<Finding>, u64)> {
    let (seen, last) = (&facts.seen, facts.last);
    let mut r = Found::default();
    let store = archive.store();
    for p in store.index_problems()? {
        r.find("index", None, None, p);
    }
    let n = usize::try_from(last.0).unwrap_or(usize::MAX).min(seen.len().max(1) * 2);
    let slot = |seq: Seq| -> Option<usize> { (seq.0 >= 1 && seq.0 <= n as u64).then(|| seq.0 as usize - 1) };
    // Runs: id -> seq.
    let mut indexed = vec![false; n];
    for item in store.scan_index() {
        let (id, seq) = item?;
        r.count += 1;
        match (id, seq) {
            (Err(why), _) => r.find("index-stale", None, None, why),
            (Ok(id), Err(why)) => r.find("index-stale", None, Some(id), why),
            (Ok(id), Ok(seq)) => match seen.get(&id).map(|(s, _, _)| s) {
                Some(s) if s == seq => match slot(seq) {
                    Some(i) if indexed[i] => {
                        r.find("index-stale", Some(seq), Some(id), "the id index holds this id twice".into())
                    }
                    Some(i) => indexed[i] = true,
                    None => {}
                },
                Some(s) => r.find(
                    "index-stale",
                    Some(seq),
                    Some(id),
                    format!("index says seq {seq}, the log has it at seq {s}"),
                ),
                None => r.find(
                    "index-stale",
                    Some(seq),
                    Some(id),
                    format!("index maps {id} to seq {seq}, but no entry has that id"),
                ),
            },
        }
    }
    // Buckets: each article's id set.
    let mut bucketed = vec![false; n];
    for item in store.scan_buckets() {
        let (key, entries) = item?;
        let at = crate::model::ids::to_hex(&key[..8]);
        let entries = match entries {
            Ok(e) => e,
            Err(why) => {
                r.find(
                    "index-stale",
                    None,
                    None,
                    format!("the id set of bucket {at}… does not decode: {why}"),
                );
                continue;
            }
        };
        for (id, seq) in entries {
            match seen.get(&id) {
                Some((s, _, b))
                    if s == seq && facts.fingerprints.as_ref().is_some_and(|f| b == f.of(&key)) =>
                {
                    if let Some(i) = slot(seq) {
                        bucketed[i] = true;
                    }
                }
                Some((s, _, _)) if s == seq => r.find(
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
    let missing: Vec<(usize, bool)> =
        (0..n).filter(|i| !indexed[*i] || !bucketed[*i]).map(|i| (i, indexed[i])).take(10_000).collect();
    if !missing.is_empty() {
        // The ids of the missing seqs, read back from the log (`seen` keeps
        // hashes of ids, not ids): one more pass over it, only when the
        // index misses entries. A seq no segment holds (a gap, a segment
        // that does not decode: the log's own checks name those) is left out.
        let wanted: HashSet<Seq> = missing.iter().map(|(i, _)| Seq(*i as u64 + 1)).collect();
        let mut by_seq: HashMap<Seq, EventId> = HashMap::new();
        // A repeated id's later copies are not indexed, rightly (the
        // duplicate check names them): only an id's earliest seq counts.
        let earliest = |e: &&crate::model::LogEntry| seen.get(&e.id).is_some_and(|(s, _, _)| s == e.seq);
        for segment in store.scan_segments() {
            let (_, decoded) = segment?;
            let Ok(entries) = decoded else { continue };
            by_seq.extend(
                entries.iter().filter(|e| wanted.contains(&e.seq)).filter(earliest).map(|e| (e.seq, e.id)),
            );
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
    Ok((r.findings, r.count))
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
                Some((k, counts)) if *k != key || *counts != p.counts => r.find(
                    "parsed",
                    facts.seen.get(&p.capture).map(|(s, _, _)| s),
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
    let mut r = Found::default();
    let mut referenced: HashSet<BlobId> = HashSet::new();
    for (blob, seq) in &facts.blobs {
        if !referenced.insert(*blob) {
            continue;
        }
        r.count += 1;
        match store.get_blob(blob) {
            Ok(raw) => {
                let actual = BlobId(*blake3::hash(&raw).as_bytes());
                if actual != *blob {
                    r.find("blob", Some(*seq), None, format!("blob {blob} re-hashes to {actual}"));
                }
            }
            Err(e) => r.find("blob", Some(*seq), None, format!("blob {blob} cannot be read: {e}")),
        }
    }
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
