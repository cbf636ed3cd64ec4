//! `verify`: the archive audit. docs/verify.md states exactly what each
//! check covers; the check names below are the ones reports use.
//!
//! The scan never stops at the first problem: each finding names the check,
//! the seq (and id) involved and what was expected, and the scan resumes
//! (after a chain mismatch it continues from the stored head, so that every
//! altered entry is named, not only the first).

use crate::error::{Error, Result};
use crate::model::{chain_step, BlobId, ChainHash, Event, EventId, EventKind, Seq};
use crate::store::{Archive, HeadState, KindCounts};
use std::collections::{HashMap, HashSet};

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Only the chain, seqs, head and index.
    pub quick: bool,
    /// A saved `SEQ HEX` the archive must still extend.
    pub checkpoint: Option<(Seq, ChainHash)>,
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check that failed (docs/verify.md).
    pub check: &'static str,
    /// The seq involved, when there is one.
    pub seq: Option<Seq>,
    /// The event id involved, when there is one.
    pub id: Option<EventId>,
    /// What was found and what was expected.
    pub message: String,
}

/// Everything verify found and covered.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Log entries read.
    pub entries: u64,
    /// Segments read.
    pub segments: u64,
    /// Index entries read.
    pub index_entries: u64,
    /// Blobs re-hashed.
    pub blobs: u64,
    /// Views compared with a fresh replay.
    pub views: u64,
    /// The head record as stored.
    pub stored_head: HeadState,
    /// The chain head recomputed from the entries.
    pub computed_head: (Seq, ChainHash),
    /// Blob files no capture refers to (left by an interrupted ingest; not a
    /// finding).
    pub orphan_blobs: Vec<BlobId>,
    /// Entries the index was behind the log files by, caught up from them
    /// when the archive was opened for this audit.
    pub caught_up: u64,
    /// The checks that ran.
    pub checks: Vec<&'static str>,
    /// Every problem.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    fn find(&mut self, check: &'static str, seq: Option<Seq>, id: Option<EventId>, message: String) {
        self.findings.push(Finding { check, seq, id, message });
    }
}

/// Audits `archive`. `head_problem` is a head record that failed to decode
/// on open ([`Archive::open_for_audit`]). `progress` receives the number of
/// entries read so far.
///
/// The views are checked (a fresh replay compared with the stored state)
/// on a second thread while this one checks the log, the index and the
/// blobs: on two cores verify takes about as long as the longer of the two.
pub fn verify(
    archive: &Archive,
    head_problem: Option<String>,
    opts: &VerifyOptions,
    progress: impl FnMut(u64),
) -> Result<VerifyReport> {
    if opts.quick {
        return verify_log(archive, head_problem, opts, progress);
    }
    std::thread::scope(|scope| {
        let views = scope.spawn(|| {
            let views = crate::views::builtin();
            crate::views::audit(archive, &views).map(|problems| (views.len() as u64, problems))
        });
        let mut r = verify_log(archive, head_problem, opts, progress)?;
        let (count, problems) =
            views.join().map_err(|_| Error::Corrupt("the view check stopped unexpectedly".into()))??;
        r.views = count;
        for p in problems {
            r.find("view", Some(p.seq), None, format!("view {}: {}", p.view, p.message));
        }
        Ok(r)
    })
}

/// Everything [`verify`] checks except the views.
fn verify_log(
    archive: &Archive,
    head_problem: Option<String>,
    opts: &VerifyOptions,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport> {
    let store = archive.store();
    let mut r = VerifyReport { stored_head: *archive.head(), ..VerifyReport::default() };
    r.checks = if opts.quick {
        vec!["segment", "seq", "chain", "head", "index", "index-stale"]
    } else {
        vec![
            "segment",
            "seq",
            "event-id",
            "chain",
            "head",
            "index",
            "index-stale",
            "duplicate",
            "reference",
            "merge",
            "document",
            "parsed",
            "blob",
            "view",
        ]
    };
    if opts.checkpoint.is_some() {
        r.checks.push("checkpoint");
    }
    if let Some(p) = head_problem {
        r.find("head", None, None, format!("head record does not decode: {p}"));
    }

    let mut expected = Seq(1);
    // `chain` is resynced to the stored head after a mismatch; `true_chain`
    // never is.
    let mut chain = ChainHash::GENESIS;
    let mut true_chain = ChainHash::GENESIS;

    // Every id seen, with its seq, kind and bucket (the first 8 bytes of
    // its key; one map: it is the largest structure verify holds).
    let mut seen: HashMap<EventId, Seen> = HashMap::new();
    let mut folded: HashMap<EventId, EventId> = HashMap::new();
    let mut counts = KindCounts::default();
    let mut blobs: Vec<(BlobId, Seq)> = Vec::new();
    // capture id -> (its parse key, its item counts)
    let mut captures: HashMap<EventId, (crate::store::ParseKey, KindCounts)> = HashMap::new();
    let mut last = Seq(0);
    let mut checkpoint_seen = false;
    for (seq, message) in store.layout_problems()? {
        r.find("segment", seq, None, message);
    }
    for segment in store.scan_segments() {
        let (key, decoded) = segment?;
        r.segments += 1;
        let entries = match decoded {
            Ok(e) => e,
            Err(why) => {
                r.find("segment", Some(key), None, format!("segment at seq {key} does not decode: {why}"));
                continue;
            }
        };
        if entries.first().map(|e| e.seq) != Some(key) {
            r.find(
                "segment",
                Some(key),
                None,
                format!(
                    "segment key says seq {key}, its first entry is {:?}",
                    entries.first().map(|e| e.seq.0)
                ),
            );
        }
        for e in &entries {
            r.entries += 1;
            if e.seq != expected {
                let what = if e.seq > expected {
                    format!(
                        "seq {} follows seq {}: entries {}..{} are missing",
                        e.seq,
                        last,
                        expected,
                        e.seq.0 - 1
                    )
                } else {
                    format!("seq {} appears after seq {}: out of order", e.seq, last)
                };
                let named = if e.seq > expected { expected } else { e.seq };
                r.find("seq", Some(named), Some(e.id), what);
            }
            if !opts.quick {
                let actual = e.event.id();
                if actual != e.id {
                    r.find(
                        "event-id",
                        Some(e.seq),
                        Some(e.id),
                        format!("stored id {} but the stored fields hash to {actual}", e.id),
                    );
                }
            }
            let entry_hash = e.entry_hash();
            let computed = chain_step(&chain, &entry_hash);
            if computed != e.head {
                r.find(
                    "chain",
                    Some(e.seq),
                    Some(e.id),
                    format!("entry does not chain: stored head {}, recomputed {computed}", e.head),
                );
            }
            chain = e.head;
            true_chain = chain_step(&true_chain, &entry_hash);
            if let Some((cp_seq, cp_hash)) = opts.checkpoint {
                if e.seq == cp_seq {
                    checkpoint_seen = true;
                    if true_chain != cp_hash {
                        r.find(
                            "checkpoint",
                            Some(cp_seq),
                            None,
                            format!("the chain at seq {cp_seq} is {true_chain}, the checkpoint says {cp_hash}: the first {cp_seq} entries changed"),
                        );
                    }
                }
            }
            let bucket = fingerprint(&crate::store::buckets::bucket_of(&e.event));
            if let Some((prev, _, _)) = seen.insert(e.id, (e.seq, e.event.kind(), bucket)) {
                if !opts.quick {
                    r.find(
                        "duplicate",
                        Some(e.seq),
                        Some(e.id),
                        format!("the same event is also at seq {prev}"),
                    );
                }
            }
            counts.add(e.event.kind());
            if !opts.quick {
                if let Event::Merge(m) = &e.event {
                    check_merge(&mut r, e.seq, e.id, m, &seen, &mut folded);
                }
            }
            if !opts.quick {
                if let Event::Capture(c) = &e.event {
                    blobs.push((c.blob, e.seq));
                    let mut items = KindCounts { captures: 1, ..KindCounts::default() };
                    for a in &c.articles {
                        items.articles += u64::from(a.article.is_some());
                        items.comments += a.comments.len() as u64;
                    }
                    captures.insert(e.id, (crate::store::parse_key_of(c), items));
                    for referenced in e.event.references() {
                        match seen.get(&referenced).map(|(s, _, _)| s) {
                            Some(s) if *s < e.seq => {}
                            Some(s) => r.find(
                                "reference",
                                Some(e.seq),
                                Some(e.id),
                                format!("refers to {referenced}, at seq {s}, not earlier"),
                            ),
                            None => r.find(
                                "reference",
                                Some(e.seq),
                                Some(e.id),
                                format!("refers to {referenced}, which is not earlier in the log"),
                            ),
                        }
                    }
                }
            }
            last = e.seq;
            expected = e.seq.next();
        }
        if !opts.quick {
            check_document(&mut r, key, &entries);
        }
        progress(r.entries);
    }
    r.computed_head = (last, true_chain);

    // The head record.
    let stored = r.stored_head;
    if stored.seq != last || stored.hash != true_chain {
        r.find(
            "head",
            Some(stored.seq),
            None,
            format!("head record says {} {}, the log gives {} {}", stored.seq, stored.hash, last, true_chain),
        );
    }
    if stored.counts != counts {
        r.find(
            "head",
            Some(stored.seq),
            None,
            format!("head record counts {:?}, the log has {:?}", stored.counts, counts),
        );
    }
    if let Some((cp_seq, cp_hash)) = opts.checkpoint {
        // Seq 0 is the empty log, whose head is 32 zero bytes: every log
        // extends it.
        if cp_seq == Seq(0) && cp_hash != ChainHash::GENESIS {
            r.find(
                "checkpoint",
                Some(cp_seq),
                None,
                format!("the checkpoint at seq 0 says {cp_hash}; the empty log's head is 64 zeros"),
            );
        } else if !checkpoint_seen && cp_seq != Seq(0) {
            r.find(
                "checkpoint",
                Some(cp_seq),
                None,
                format!(
                    "the log ends at seq {last}, before the checkpoint's seq {cp_seq}: entries were removed"
                ),
            );
        }
    }

    check_index(&mut r, archive, &seen, last)?;

    if opts.quick {
        return Ok(r);
    }

    // Parse records: each names a capture made under that very key, with
    // that capture's item counts.
    for item in store.scan_parsed() {
        let (key, parsed) = item?;
        match parsed {
            Err(why) => r.find(
                "parsed",
                None,
                None,
                format!("parse record {} does not decode: {why}", crate::model::ids::to_hex(&key)),
            ),
            Ok(p) => match captures.get(&p.capture) {
                None => r.find(
                    "parsed",
                    None,
                    Some(p.capture),
                    "parse record names a capture that is not in the log".into(),
                ),
                Some((k, counts)) if *k != key || *counts != p.counts => r.find(
                    "parsed",
                    seen.get(&p.capture).map(|(s, _, _)| *s),
                    Some(p.capture),
                    "parse record does not match its capture (key or counts differ)".into(),
                ),
                Some(_) => {}
            },
        }
    }

    // Blobs.
    let mut referenced: HashSet<BlobId> = HashSet::new();
    for (blob, seq) in blobs {
        if !referenced.insert(blob) {
            continue;
        }
        r.blobs += 1;
        match store.get_blob(&blob) {
            Ok(raw) => {
                let actual = BlobId(*blake3::hash(&raw).as_bytes());
                if actual != blob {
                    r.find("blob", Some(seq), None, format!("blob {blob} re-hashes to {actual}"));
                }
            }
            Err(e) => r.find("blob", Some(seq), None, format!("blob {blob} cannot be read: {e}")),
        }
    }
    let stored: HashSet<BlobId> = store.blob_ids()?.into_iter().collect();
    let mut orphans: Vec<BlobId> = stored.iter().filter(|b| !referenced.contains(b)).copied().collect();
    orphans.sort();
    r.orphan_blobs = orphans;
    r.caught_up = store.caught_up();
    // Delta bases: each page's latest-capture record names a stored blob.
    for item in store.scan_page_bases() {
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

    Ok(r)
}

/// What verify keeps of each id: its seq, its kind and its bucket's
/// [`fingerprint`].
type Seen = (Seq, EventKind, u64);

/// The first 8 bytes of a bucket key.
fn fingerprint(bucket: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bucket[..8]);
    u64::from_le_bytes(b)
}

/// The id index against the log: the index files are whole; every run
/// entry names the id at its seq; every article's id set holds exactly its
/// events; and every entry of the log (seqs 1..=`last`) is in both, once.
fn check_index(
    r: &mut VerifyReport,
    archive: &Archive,
    seen: &HashMap<EventId, Seen>,
    last: Seq,
) -> Result<()> {
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
        r.index_entries += 1;
        match (id, seq) {
            (Err(why), _) => r.find("index-stale", None, None, why),
            (Ok(id), Err(why)) => r.find("index-stale", None, Some(id), why),
            (Ok(id), Ok(seq)) => match seen.get(&id).map(|(s, _, _)| *s) {
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
                Some((s, _, b)) if *s == seq && *b == fingerprint(&key) => {
                    if let Some(i) = slot(seq) {
                        bucketed[i] = true;
                    }
                }
                Some((s, _, _)) if *s == seq => r.find(
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
        // The ids of the missing seqs only (one pass over `seen`).
        let wanted: HashSet<Seq> = missing.iter().map(|(i, _)| Seq(*i as u64 + 1)).collect();
        let by_seq: HashMap<Seq, EventId> = seen
            .iter()
            .filter(|(_, (s, _, _))| wanted.contains(s))
            .map(|(id, (s, _, _))| (*s, *id))
            .collect();
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
    Ok(())
}

/// A merge folds ids of its kind into an id of its kind, never an id into
/// itself, never one id into two different ones, and never into a cycle.
fn check_merge(
    r: &mut VerifyReport,
    seq: Seq,
    id: EventId,
    m: &crate::model::Merge,
    seen: &HashMap<EventId, Seen>,
    folded: &mut HashMap<EventId, EventId>,
) {
    let want = match m.kind {
        crate::model::MergeKind::Comment => EventKind::Comment,
        crate::model::MergeKind::Article => EventKind::Article,
    };
    for x in std::iter::once(&m.keep).chain(&m.fold) {
        if let Some((_, k, _)) = seen.get(x) {
            if *k != want {
                r.find("merge", Some(seq), Some(id), format!("{} merge names {x}, a {k}", m.kind.name()));
            }
        }
    }
    for f in &m.fold {
        if *f == m.keep {
            r.find("merge", Some(seq), Some(id), format!("folds {f} into itself"));
            continue;
        }
        if let Some(prev) = folded.get(f) {
            if prev != &m.keep {
                r.find(
                    "merge",
                    Some(seq),
                    Some(id),
                    format!("folds {f} into {}, but an earlier merge folded it into {prev}", m.keep),
                );
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
            r.find("merge", Some(seq), Some(id), format!("folding {f} into {} makes a cycle", m.keep));
            continue;
        }
        folded.insert(*f, m.keep);
    }
}

/// A segment is one document: it ends with its capture, and the capture
/// names every article and comment appended with it. A segment of merges
/// only (`dedupe --apply`) is a document too.
fn check_document(r: &mut VerifyReport, key: Seq, entries: &[crate::model::LogEntry]) {
    let Some(last) = entries.last() else {
        r.find("document", Some(key), None, "empty segment".into());
        return;
    };
    if entries.iter().all(|e| matches!(e.event, Event::Merge(_))) {
        return;
    }
    let Event::Capture(capture) = &last.event else {
        r.find(
            "document",
            Some(last.seq),
            Some(last.id),
            format!("the segment at seq {key} does not end with a capture: an incomplete document"),
        );
        return;
    };
    let named: HashSet<EventId> = capture.items().map(|i| i.id).collect();
    for e in &entries[..entries.len() - 1] {
        if !named.contains(&e.id) || matches!(e.event, Event::Capture(_)) {
            r.find(
                "document",
                Some(e.seq),
                Some(e.id),
                format!("appended with the capture at seq {}, which does not name it", last.seq),
            );
        }
    }
}
