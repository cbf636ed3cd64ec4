//! The changes view: for each article, what changed between consecutive
//! captures: comments added, removed and edited, and article revisions.
//!
//! State: `s/KEY` holds the article's [`ThreadState`] (to compare each
//! capture with the one before); `d/KEY\0SEQ` the [`ChangeRecord`] of the
//! capture at SEQ. An article's first capture is recorded too, with no
//! `from` capture and every comment added.

use crate::error::Result;
use crate::model::{ArticleKey, Event, EventId, LogEntry, Seq, Timestamp};
use crate::store::{envelope, Archive};
use crate::views::thread_state::{CaptureRef, ThreadState};
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
    pub from_capture: Option<(Seq, EventId)>,
    /// This capture.
    pub to_capture: (Seq, EventId),
    /// When this capture was recorded.
    pub recorded_at: Timestamp,
    /// Comments present now and not before.
    pub added: Vec<EventId>,
    /// Comments present before and not now.
    pub removed: Vec<EventId>,
    /// Comments shown in another version: (before, now).
    pub edited: Vec<(EventId, EventId)>,
    /// The article version changed: (before, now).
    pub article_revision: Option<(Option<EventId>, EventId)>,
}

fn state_key(key: &ArticleKey) -> Vec<u8> {
    [b"s/".as_slice(), key.as_str().as_bytes()].concat()
}

fn record_prefix(key: &ArticleKey) -> Vec<u8> {
    [b"d/".as_slice(), key.as_str().as_bytes(), b"\0"].concat()
}

/// The changes projection.
pub struct ChangesView;

impl Projection for ChangesView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&self, entry: &LogEntry, tx: &mut StateTx<'_>) -> Result<()> {
        let Event::Capture(c) = &entry.event else { return Ok(()) };
        for seen in &c.articles {
            let mut state: ThreadState =
                tx.get_value(&state_key(&seen.key))?.unwrap_or_else(|| ThreadState::new(seen.key.clone()));
            let from = state.captures.last().map(|p| (p.seq, p.id));
            let capture = CaptureRef {
                seq: entry.seq,
                id: entry.id,
                recorded_at: entry.recorded_at,
                article: seen.article.as_ref().map(|a| a.id),
            };
            let Some(diff) = state.apply_capture(capture, seen, |id| tx.comment(id))? else { continue };
            let record = ChangeRecord {
                article: seen.key.clone(),
                from_capture: from,
                to_capture: (entry.seq, entry.id),
                recorded_at: entry.recorded_at,
                added: diff.added,
                removed: diff.removed,
                edited: diff.edited,
                article_revision: diff.article_revision,
            };
            tx.put_value([record_prefix(&seen.key), entry.seq.to_be_bytes().to_vec()].concat(), &record)?;
            tx.put_value(state_key(&seen.key), &state)?;
        }
        Ok(())
    }
}

/// The change records of one article (or of all), in capture order per
/// article, articles sorted by key.
pub fn changes(archive: &Archive, article: Option<&ArticleKey>) -> Result<Vec<ChangeRecord>> {
    let tree = view_tree(archive, NAME)?;
    let prefix = match article {
        Some(k) => record_prefix(k),
        None => b"d/".to_vec(),
    };
    tree.scan_prefix(&prefix).map(|kv| kv.and_then(|(_, v)| envelope::decode(&v, "change record"))).collect()
}
