//! What changed between consecutive captures of each article: comments
//! added, removed and edited, and article revisions, one [`ChangeRecord`]
//! per capture. An article's first capture is recorded too, with no `from`
//! capture and every comment added.
//!
//! The threads view keeps the records (`r/KEY`, beside the article's
//! thread state `a/KEY`): applying a capture to the thread state yields its
//! differences, so the records come with no second copy of the state and
//! no second pass. Merges (dedupe) and backfilled captures rebuild the
//! affected articles' records with the state. (Before view version 5 of
//! threads a separate `changes` view kept its own copy of every thread
//! state; its trees are removed when found.)

use crate::error::Result;
use crate::model::{ArticleKey, EventId};
use crate::store::{envelope, Archive};
use crate::views::thread_state::{CaptureDiff, CaptureRef};
use crate::views::{threads, view_tree, StateTx};
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

fn records_key(key: &ArticleKey) -> Vec<u8> {
    [b"r/".as_slice(), key.as_str().as_bytes()].concat()
}

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
/// records (in the threads view's transaction).
pub(super) fn append(
    tx: &mut StateTx<'_>,
    key: &ArticleKey,
    from: Option<&CaptureRef>,
    to: &CaptureRef,
    diff: CaptureDiff,
) -> Result<()> {
    let mut records: Vec<ChangeRecord> = tx.get_packed(&records_key(key))?.unwrap_or_default();
    records.push(record(key, from, to, diff));
    tx.put_packed(records_key(key), &records)
}

/// Replaces the article's records with those of its captures' diffs, in
/// observation order (each compared with the one before): after a
/// backfilled capture or a merge rebuilt its state.
pub(super) fn replace(
    tx: &mut StateTx<'_>,
    key: &ArticleKey,
    diffs: Vec<(CaptureRef, CaptureDiff)>,
) -> Result<()> {
    let mut records = Vec::with_capacity(diffs.len());
    let mut previous: Option<CaptureRef> = None;
    for (capture, diff) in diffs {
        records.push(record(key, previous.as_ref(), &capture, diff));
        previous = Some(capture);
    }
    tx.put_packed(records_key(key), &records)
}

/// Removes the article's records (its key was merged into another).
pub(super) fn remove(tx: &mut StateTx<'_>, key: &ArticleKey) {
    tx.delete(records_key(key));
}

/// The change records of one article (or of all), in observation order per
/// article, articles sorted by key.
pub fn changes(archive: &Archive, article: Option<&ArticleKey>) -> Result<Vec<ChangeRecord>> {
    let tree = view_tree(archive, NAME)?;
    let lists: Vec<Vec<ChangeRecord>> = match article {
        Some(k) => match tree.get(&records_key(k))? {
            Some(v) => vec![envelope::decode_native(&v, "change records")?],
            None => Vec::new(),
        },
        None => tree
            .scan_prefix(b"r/")
            .map(|kv| kv.and_then(|(_, v)| envelope::decode_native(&v, "change records")))
            .collect::<Result<_>>()?,
    };
    Ok(lists.into_iter().flatten().collect())
}
