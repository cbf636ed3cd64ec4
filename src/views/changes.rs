//! What changed between consecutive captures of each article: comments
//! added, removed and edited, and article revisions, one [`ChangeRecord`]
//! per capture. An article's first capture is recorded too, with no `from`
//! capture and every comment added.
//!
//! The threads view keeps the records (in `a/KEY`, between the article's
//! summary and its thread state, since threads view 9; after the state
//! in view 8; under `r/KEY` of their own before): applying a capture to
//! the thread state yields its differences, so the records come with no
//! second copy of the state and no second pass. Merges (dedupe) and
//! backfilled captures rebuild the
//! affected articles' records with the state. (Before view version 5 of
//! threads a separate `changes` view kept its own copy of every thread
//! state; its trees are removed when found.)
//!
//! An article's records are kept in chunks (since threads view 6): `a/KEY`
//! holds the latest ones ([`StoredRecords`]), fewer than 256, and
//! each full chunk of older ones is sealed under `R/KEY\0N` (N from 0,
//! big-endian u32), not read or written again by a capture that comes
//! last (a backfill or a merge rebuilds the records and writes every
//! chunk again). A page scraped thousands of times thus costs each new
//! capture a read and a write of a few records, not of its whole history
//! (one value of every record made each capture's cost grow with the
//! captures before it: 4,000 captures of one page took 7.8x the time of
//! 1,000).

use crate::error::Result;
use crate::model::{ArticleKey, EventId};
use crate::store::{envelope, Archive};
use crate::views::thread_state::{CaptureDiff, CaptureRef};
use crate::views::{chunks, threads, view_tree, StateTx};
use serde::{Deserialize, Serialize};

/// The name the records go by in `as_of` (they are the threads view's).
pub const NAME: &str = threads::NAME;

/// The name of the view that kept the records before threads view 5: its
/// trees are dropped when found.
pub const RETIRED_VIEW: &str = "changes";

/// What one capture changed in one article.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct ChangeRecord {
    /// The article.
    pub article: ArticleKey,
    /// The previous capture of the article (`None` for its first).
    pub from: Option<CaptureRef>,
    /// This capture: when it was recorded and fetched, and whether it shows
    /// the whole comment section (a partial one removes nothing).
    pub to: CaptureRef,
    /// Comments present now and not before.
    pub added: Vec<EventId>,
    /// Comments present before and not now (a complete capture only).
    pub removed: Vec<EventId>,
    /// Comments present before that this partial capture does not show.
    pub unseen: u64,
    /// Comments shown in another version: (before, now).
    pub edited: Vec<(EventId, EventId)>,
    /// The article version changed: (before, now).
    pub article_revision: Option<(Option<EventId>, EventId)>,
}

/// Records per sealed chunk.
#[cfg(not(test))]
pub(crate) const CHUNK: usize = 256;
/// Small under test, so that the tests' few captures fill chunks.
#[cfg(test)]
pub(crate) const CHUNK: usize = 3;

/// What `a/KEY` holds between the summary and the thread state: how many
/// chunks of 256 older records are
/// sealed under `R/KEY\0N`, and the records after them (fewer than
/// 256). The form is a function of the records alone (full chunks,
/// then the rest), however they were appended or rebuilt, so incremental
/// maintenance and a replay store the same values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct StoredRecords {
    /// Full chunks sealed.
    pub sealed: u32,
    /// The latest records.
    pub records: Vec<ChangeRecord>,
}

/// The prefix of the sealed chunks' keys ([`chunks`]).
const CHUNKS: &[u8] = b"R/";

fn record(key: &ArticleKey, from: Option<&CaptureRef>, to: &CaptureRef, diff: CaptureDiff) -> ChangeRecord {
    ChangeRecord {
        article: key.clone(),
        from: from.cloned(),
        to: to.clone(),
        added: diff.added,
        removed: diff.removed,
        unseen: diff.unseen,
        edited: diff.edited,
        article_revision: diff.article_revision,
    }
}

/// Adds the record of capture `to`, appended after `from`, to the article's
/// latest records `stored`, sealing a chunk (in the threads view's
/// transaction) when they fill one. The caller stores `stored` with the
/// state.
pub(super) fn append(
    tx: &mut StateTx<'_>,
    key: &ArticleKey,
    stored: &mut StoredRecords,
    from: Option<&CaptureRef>,
    to: &CaptureRef,
    diff: CaptureDiff,
) -> Result<()> {
    stored.records.push(record(key, from, to, diff));
    if stored.records.len() >= CHUNK {
        chunks::write(tx, CHUNKS, key, stored.sealed, &stored.records, CHUNK)?;
        stored.sealed += 1;
        stored.records.clear();
    }
    Ok(())
}

/// The article's records made again from its captures' diffs, in
/// observation order (each compared with the one before): after a
/// backfilled capture or a merge rebuilt its state. Full chunks are
/// sealed (and those of `old`, the records before, past them removed);
/// the latest records are returned, for the caller to store with the
/// state.
pub(super) fn replace(
    tx: &mut StateTx<'_>,
    key: &ArticleKey,
    old: &StoredRecords,
    diffs: Vec<(CaptureRef, CaptureDiff)>,
) -> Result<StoredRecords> {
    let mut records = Vec::with_capacity(diffs.len());
    let mut previous: Option<CaptureRef> = None;
    for (capture, diff) in diffs {
        records.push(record(key, previous.as_ref(), &capture, diff));
        previous = Some(capture);
    }
    let full = records.len() / CHUNK;
    let rest = records.split_off(full * CHUNK);
    chunks::write(tx, CHUNKS, key, 0, &records, CHUNK)?;
    chunks::delete(tx, CHUNKS, key, full as u32..old.sealed);
    Ok(StoredRecords { sealed: full as u32, records: rest })
}

/// Removes the sealed chunks of the article's records `stored` (its key
/// was merged into another; the caller removes `a/KEY`).
pub(super) fn remove_sealed(tx: &mut StateTx<'_>, key: &ArticleKey, stored: &StoredRecords) {
    chunks::delete(tx, CHUNKS, key, 0..stored.sealed);
}

/// The change records of one article (or of all), in observation order per
/// article, articles sorted by key.
pub fn changes(archive: &Archive, article: Option<&ArticleKey>) -> Result<Vec<ChangeRecord>> {
    let mut out = Vec::new();
    for_each_article(archive, article, |records| {
        out.extend(records);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `each` with the change records of one article (or of each, sorted
/// by key), in observation order: one article's records in memory at a
/// time, however many the archive holds.
pub fn for_each_article(
    archive: &Archive,
    article: Option<&ArticleKey>,
    mut each: impl FnMut(Vec<ChangeRecord>) -> Result<()>,
) -> Result<()> {
    let tree = view_tree(archive, NAME)?;
    let mut take = |k: &[u8], v: &[u8]| -> Result<()> {
        let stored = threads::stored_records(v)?;
        let article = &k[2..];
        let missing = |n| {
            format!(
                "the threads view's change records of {}: chunk {n} is missing",
                String::from_utf8_lossy(article)
            )
        };
        let mut records = chunks::read(stored.sealed, missing, |n| {
            tree.get(&chunks::key(CHUNKS, article, n))?
                .map(|c| envelope::decode_native(&c, "change records"))
                .transpose()
        })?;
        records.extend(stored.records);
        each(records)
    };
    match article {
        Some(k) => {
            let key = threads::state_key(k);
            if let Some(v) = tree.get(&key)? {
                take(&key, &v)?;
            }
        }
        None => {
            for kv in tree.scan_prefix(b"a/") {
                let (k, v) = kv?;
                take(&k, &v)?;
            }
        }
    }
    Ok(())
}
