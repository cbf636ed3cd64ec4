//! `verify`: the archive audit. docs/verify.md states exactly what each
//! check covers; the check names below are the ones reports use.
//!
//! The scan never stops at the first problem: each finding names the check,
//! the seq (and id) involved and what was expected, and the scan resumes
//! (after a chain mismatch it continues from the stored head, so that every
//! altered entry is named, not only the first).

use super::{checks, scan};
use crate::error::{Error, Result};
use crate::model::{BlobId, ChainHash, EventId, Seq};
use crate::store::{Archive, HeadState};

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Only the chain, seqs, head and index.
    pub quick: bool,
    /// A saved `SEQ HEX` the archive must still extend.
    pub checkpoint: Option<(Seq, ChainHash)>,
    /// A signed checkpoint of the Merkle tree (its signature already
    /// checked) the archive must still extend.
    pub tree_checkpoint: Option<crate::transparency::note::Checkpoint>,
    /// Ids kept in memory at most (1,500,000 when `None`, `seen.rs`'s
    /// `IDS_PER_PASS`): a log with more is read in several passes.
    pub ids_per_pass: Option<u64>,
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
    /// Whether the articles' id sets were rebuilt from the log when the
    /// archive was opened for this audit.
    pub sets_rebuilt: bool,
    /// Why sled could not open the index when the archive was opened, if
    /// it could not (it was moved to `db.unreadable` and rebuilt from the
    /// log files).
    pub index_unreadable: Option<String>,
    /// The Merkle tree hash of every entry, recomputed (`None` when an
    /// entry was out of order).
    pub tree_root: Option<crate::transparency::merkle::Hash>,
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
        return verify_log(archive, head_problem, opts, progress, None);
    }
    std::thread::scope(|scope| {
        // The pass over the log hands what it decoded to the fresh replay
        // of the views, a few batches ahead at most: the log is read and
        // decoded once for both.
        let (tee, feed) = std::sync::mpsc::sync_channel(TEE_DEPTH);
        let views = scope.spawn(move || {
            let views = crate::views::builtin();
            crate::views::audit_with(archive, &views, crate::views::AUDIT_IN_MEMORY_MAX, Some(feed))
                .map(|problems| (views.len() as u64, problems))
        });
        let mut r = verify_log(archive, head_problem, opts, progress, Some(tee))?;
        let (count, problems) =
            views.join().map_err(|_| Error::Internal("the view check stopped unexpectedly".into()))??;
        r.views = count;
        for p in problems {
            r.find("view", Some(p.seq), None, format!("view {}: {}", p.view, p.message));
        }
        Ok(r)
    })
}

/// Batches of entries the pass over the log may be ahead of the fresh
/// replay of the views.
const TEE_DEPTH: usize = 2;

/// Everything [`verify`] checks except the views: the pass over the log
/// ([`super::scan`]), then each of [`super::checks`].
fn verify_log(
    archive: &Archive,
    head_problem: Option<String>,
    opts: &VerifyOptions,
    progress: impl FnMut(u64),
    tee: Option<scan::Tee>,
) -> Result<VerifyReport> {
    let store = archive.store();
    let mut r = VerifyReport { stored_head: *archive.head(), ..VerifyReport::default() };
    r.checks = if opts.quick {
        vec!["segment", "seq", "chain", "head", "index", "index-stale", "tree"]
    } else {
        vec![
            "segment",
            "seq",
            "event-id",
            "chain",
            "head",
            "index",
            "index-stale",
            "tree",
            "duplicate",
            "reference",
            "merge",
            "document",
            "parsed",
            "blob",
            "view",
        ]
    };
    if opts.checkpoint.is_some() || opts.tree_checkpoint.is_some() {
        r.checks.push("checkpoint");
    }
    if let Some(p) = head_problem {
        r.find("head", None, None, format!("head record does not decode: {p}"));
    }
    r.findings.extend(checks::layout(store)?);
    // Ids are checked in passes of a bounded number each (one pass for
    // most archives), so that memory does not grow with the archive.
    let per_pass = opts.ids_per_pass.unwrap_or(super::seen::IDS_PER_PASS);
    // The first pass is sized from the head record, or from the Merkle
    // tree's recorded size when that says more (a head that does not
    // decode reads as seq 0); the passes after it from what it read.
    let recorded = store.merkle_recorded().and_then(|r| r.ok()).unwrap_or(0);
    let first = super::seen::Partition::first(archive.head().seq.0.max(recorded), per_pass);
    // (The progress callback runs again from 0 for each later pass.)
    let mut progress = progress;
    let mut facts = scan::scan_log(archive, opts, &mut r.findings, &mut progress, first, per_pass, tee)?;
    r.segments = facts.segments;
    r.entries = facts.entries;
    r.computed_head = (facts.last, facts.chain);
    r.findings.extend(checks::head(&r.stored_head, &facts));
    if let Some(cp) = opts.checkpoint {
        r.findings.extend(checks::checkpoint(cp, &facts));
    }
    if let Some(cp) = &opts.tree_checkpoint {
        r.findings.extend(checks::tree_checkpoint(cp, &facts));
    }
    r.findings.extend(checks::tree(archive, &facts)?);
    r.tree_root = (!facts.tree.broken).then(|| facts.tree.frontier.root());
    let mut marks = checks::IndexMarks::new(facts.last, facts.entries);
    r.findings.extend(checks::index_pass(archive, &facts, &mut marks)?);
    // The checks that follow look no id up: the first pass's id table (the
    // largest thing verify holds) goes now, not after them, while the
    // views' replay beside them may still hold its own state.
    let rest = facts.seen.part().rest(facts.entries.saturating_sub(facts.seen.len() as u64), per_pass);
    facts.seen.release();
    r.caught_up = store.caught_up();
    r.sets_rebuilt = store.sets_rebuilt();
    r.index_unreadable = store.index_unreadable().map(str::to_string);
    if !opts.quick {
        r.findings.extend(checks::parsed(archive, &facts)?);
        let blobs = checks::blobs(archive, &facts)?;
        r.findings.extend(blobs.findings);
        r.blobs = blobs.hashed;
        r.orphan_blobs = blobs.orphans;
        r.findings.extend(checks::page_bases(archive, &blobs.stored)?);
    }
    drop(facts);
    for part in rest {
        let facts = scan::scan_log(archive, opts, &mut r.findings, &mut progress, part, per_pass, None)?;
        r.findings.extend(checks::index_pass(archive, &facts, &mut marks)?);
    }
    let (index_findings, index_entries) = checks::index_finish(archive, &marks)?;
    r.findings.extend(index_findings);
    r.index_entries = index_entries;
    Ok(r)
}
