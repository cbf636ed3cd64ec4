//! The changes view: for each article, what changed between consecutive
//! captures: comments added, removed and edited, and article revisions.
//!
//! State: `s/KEY` holds the article's [`ChangesState`]: its
//! [`ThreadState`] (to compare each capture with the one before) and one
//! [`ChangeRecord`] per capture. An article's first capture is recorded too,
//! with no `from` capture and every comment added. Merges (dedupe) rebuild
//! the affected articles' records with the merged ids.

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, EventId, LogEntry, MergeKind};
use crate::store::{envelope, Archive};
use crate::views::thread_state::{Applied, CaptureDiff, CaptureRef, MergeMaps, ThreadState};
use crate::views::{view_tree, Projection, StateTx};
use serde::{Deserialize, Serialize};

/// The view's name.
pub const NAME: &str = "changes";

/// What one capture changed in one article.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Per article: the thread state (to compare each capture with the one
/// before) and the change records so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesState {
    /// The article's thread, as this view maintains it.
    pub thread: ThreadState,
    /// One record per capture, in observation order.
    pub records: Vec<ChangeRecord>,
}

fn state_key(key: &ArticleKey) -> Vec<u8> {
    [b"s/".as_slice(), key.as_str().as_bytes()].concat()
}

/// Merge maps of the changes view.
const MAPS: MergeMaps = MergeMaps { prefix: "" };

fn load(tx: &StateTx<'_>, key: &ArticleKey) -> Result<ChangesState> {
    Ok(tx
        .get_value(&state_key(key))?
        .unwrap_or_else(|| ChangesState { thread: ThreadState::new(key.clone()), records: Vec::new() }))
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

/// The records of an article's captures from their diffs, in observation
/// order (each compared with the one before).
fn records_of(key: &ArticleKey, diffs: Vec<(CaptureRef, CaptureDiff)>) -> Vec<ChangeRecord> {
    let mut records = Vec::with_capacity(diffs.len());
    let mut previous: Option<CaptureRef> = None;
    for (capture, diff) in diffs {
        records.push(record(key, previous.as_ref(), &capture, diff));
        previous = Some(capture);
    }
    records
}

/// Rebuilds an article's state and records from `prior` states.
fn rebuild(tx: &mut StateTx<'_>, key: &ArticleKey, prior: &[ThreadState]) -> Result<()> {
    let (thread, diffs) = MAPS.rebuild(tx, key, prior, None)?;
    let records = records_of(key, diffs);
    tx.put_value(state_key(key), &ChangesState { thread, records })
}

/// The changes projection.
pub struct ChangesView;

impl Projection for ChangesView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 4: records carry both captures whole (`from`, `to`).
        4
    }

    fn apply(&self, entry: &LogEntry, tx: &mut StateTx<'_>) -> Result<()> {
        match &entry.event {
            Event::Capture(c) => {
                for seen in MAPS.group(tx, c)? {
                    let mut state = load(tx, &seen.key)?;
                    let from = state.thread.captures.last().cloned();
                    let capture = CaptureRef::new(entry, c, seen.article.as_ref().map(|a| a.id));
                    match MAPS.apply(tx, &mut state.thread, capture.clone(), &seen)? {
                        Applied::Duplicate => continue,
                        Applied::Appended(diff) => {
                            state.records.push(record(&seen.key, from.as_ref(), &capture, diff));
                        }
                        Applied::Rebuilt(diffs) => state.records = records_of(&seen.key, diffs),
                    }
                    tx.put_value(state_key(&seen.key), &state)?;
                }
                Ok(())
            }
            Event::Merge(m) => match m.kind {
                MergeKind::Comment => {
                    for key in MAPS.fold_comments(tx, m)? {
                        if let Some(prior) = tx.get_value::<ChangesState>(&state_key(&key))? {
                            rebuild(tx, &key, &[prior.thread])?;
                        }
                    }
                    Ok(())
                }
                MergeKind::Article => {
                    let Some(Event::Article(kept)) = tx.event(&m.keep)? else {
                        return Err(Error::Corrupt(format!(
                            "merge keeps {}, which is not an article",
                            m.keep
                        )));
                    };
                    let key = MAPS.canon_key(tx, &kept.key)?;
                    let mut prior = vec![load(tx, &key)?.thread];
                    for f in &m.fold {
                        let Some(Event::Article(folded)) = tx.event(f)? else {
                            return Err(Error::Corrupt(format!("merge folds {f}, which is not an article")));
                        };
                        let fkey = MAPS.canon_key(tx, &folded.key)?;
                        if fkey == key {
                            continue;
                        }
                        MAPS.fold_key(tx, &fkey, &key)?;
                        if let Some(s) = tx.get_value::<ChangesState>(&state_key(&fkey))? {
                            prior.push(s.thread);
                        }
                        tx.delete(state_key(&fkey));
                    }
                    rebuild(tx, &key, &prior)
                }
            },
            Event::Article(_) | Event::Comment(_) => Ok(()),
        }
    }
}

/// The change records of one article (or of all), in observation order per
/// article, articles sorted by key.
pub fn changes(archive: &Archive, article: Option<&ArticleKey>) -> Result<Vec<ChangeRecord>> {
    let tree = view_tree(archive, NAME)?;
    let states: Vec<ChangesState> = match article {
        Some(k) => match tree.get(&state_key(k))? {
            Some(v) => vec![envelope::decode(&v, "changes state")?],
            None => Vec::new(),
        },
        None => tree
            .scan_prefix(b"s/")
            .map(|kv| kv.and_then(|(_, v)| envelope::decode(&v, "changes state")))
            .collect::<Result<_>>()?,
    };
    Ok(states.into_iter().flat_map(|s| s.records).collect())
}
