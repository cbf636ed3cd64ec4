//! [`ThreadState`]: what the log says about one article's comment section,
//! maintained capture by capture. The threads and changes views both keep it.
//!
//! A *slot* is one comment as readers see it: its versions share the
//! article, the author and the posted time (an edited comment is a new event
//! in the same slot). A comment without a posted time has a slot of its own.
//! Slots are kept in page order: the order of the first capture, with
//! comments that appear later placed where the page shows them.

use crate::error::{Error, Result};
use crate::model::{ArticleKey, CapturedArticle, EventId, Seq, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// One capture of the article.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRef {
    /// The capture event's seq.
    pub seq: Seq,
    /// The capture event's id.
    pub id: EventId,
    /// When the capture was recorded.
    pub recorded_at: Timestamp,
    /// The article version the capture showed, if any.
    pub article: Option<EventId>,
}

/// One version of a comment and where it was seen (capture indices).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The comment event.
    pub id: EventId,
    /// Ids merged into this one by `dedupe --apply` that captures showed.
    pub aliases: Vec<EventId>,
    /// Index (into `captures`) of the first capture that showed it.
    pub first_seen: u32,
    /// Index of the last capture that showed it.
    pub last_seen: u32,
}

/// One comment as readers see it, with all its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The author, as shown.
    pub author: Option<String>,
    /// The posted time.
    pub posted_at: Option<Timestamp>,
    /// Versions, oldest first.
    pub versions: Vec<Version>,
    /// The comment it replies to (an id of one of that comment's versions),
    /// as the latest capture showing this comment structured the page.
    pub parent: Option<EventId>,
    /// First capture index that showed any version.
    pub first_seen: u32,
    /// Last capture index that showed any version.
    pub last_seen: u32,
}

impl Slot {
    /// The latest version's id.
    pub fn latest(&self) -> EventId {
        self.versions.last().map(|v| v.id).unwrap_or(EventId([0; 32]))
    }
}

/// What changed between the previous capture of an article and this one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureDiff {
    /// Comments (their version ids) present now, not in the previous capture.
    pub added: Vec<EventId>,
    /// Comments in the previous capture, absent now.
    pub removed: Vec<EventId>,
    /// Comments shown in both, in a different version: (before, now).
    pub edited: Vec<(EventId, EventId)>,
    /// The article version changed: (before, now).
    pub article_revision: Option<(Option<EventId>, EventId)>,
}

/// The state of one article's thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadState {
    /// The article key.
    pub key: ArticleKey,
    /// Article versions, in log order (the last is the latest).
    pub article_versions: Vec<EventId>,
    /// Captures that showed the article, in log order.
    pub captures: Vec<CaptureRef>,
    /// Comment slots.
    pub slots: Vec<Slot>,
    /// Slot indices in page order.
    pub order: Vec<u32>,
}

impl ThreadState {
    /// An empty thread for `key`.
    pub fn new(key: ArticleKey) -> ThreadState {
        ThreadState { key, ..ThreadState::default() }
    }

    /// Records an article version (idempotent).
    pub fn add_article_version(&mut self, id: EventId) {
        if !self.article_versions.contains(&id) {
            self.article_versions.push(id);
        }
    }

    /// The index of the slot holding version `id`.
    pub fn slot_of(&self, id: &EventId) -> Option<usize> {
        self.slots.iter().position(|s| s.versions.iter().any(|v| &v.id == id))
    }

    /// Applies one capture's view of this article. `lookup` returns the
    /// comment event for an id. Returns `None` when the capture was already
    /// applied (apply is idempotent).
    ///
    /// `canon` maps a comment id to the id it was merged into (itself when
    /// not merged).
    pub fn apply_capture(
        &mut self,
        capture: CaptureRef,
        seen: &CapturedArticle,
        mut lookup: impl FnMut(&EventId) -> Result<Option<std::sync::Arc<crate::model::LogEntry>>>,
        mut canon: impl FnMut(&EventId) -> Result<EventId>,
    ) -> Result<Option<CaptureDiff>> {
        if self.captures.iter().any(|c| c.id == capture.id) {
            return Ok(None);
        }
        let ci = self.captures.len() as u32;
        let prev = ci.checked_sub(1);
        let mut diff = CaptureDiff::default();
        if let Some(a) = &seen.article {
            self.add_article_version(a.id);
            let before = prev.and_then(|p| self.captures[p as usize].article);
            if before != Some(a.id) && prev.is_some() {
                diff.article_revision = Some((before, a.id));
            }
        }
        let previously: HashMap<usize, EventId> = match prev {
            None => HashMap::new(),
            Some(p) => self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.versions.iter().find(|v| v.last_seen == p).map(|v| (i, v.id)))
                .collect(),
        };
        self.captures.push(capture);

        let mut by_version: HashMap<EventId, usize> = HashMap::new();
        for (i, s) in self.slots.iter().enumerate() {
            for v in &s.versions {
                by_version.insert(v.id, i);
            }
        }
        let mut now: HashMap<usize, EventId> = HashMap::new();
        let mut done: HashSet<EventId> = HashSet::new();
        let mut last_pos: Option<usize> = None;
        for raw_item in &seen.comments {
            let id = canon(&raw_item.id)?;
            let parent = match raw_item.parent {
                Some(p) => Some(canon(&p)?),
                None => None,
            };
            let item =
                crate::model::CaptureItem { id, parent, possibly_truncated: raw_item.possibly_truncated };
            if !done.insert(item.id) {
                continue;
            }
            let slot = match by_version.get(&item.id) {
                Some(&s) => s,
                None => {
                    let entry = lookup(&item.id)?;
                    let Some(crate::model::Event::Comment(c)) = entry.as_deref().map(|e| &e.event) else {
                        return Err(Error::Corrupt(format!(
                            "capture names comment {} that is not in the log",
                            item.id
                        )));
                    };
                    let existing = c.posted_at.and_then(|t| {
                        self.slots.iter().position(|s| s.posted_at == Some(t) && s.author == c.author)
                    });
                    let version = Version { id: item.id, aliases: Vec::new(), first_seen: ci, last_seen: ci };
                    match existing {
                        Some(s) => {
                            self.slots[s].versions.push(version);
                            s
                        }
                        None => {
                            self.slots.push(Slot {
                                author: c.author.clone(),
                                posted_at: c.posted_at,
                                versions: vec![version],
                                parent: None,
                                first_seen: ci,
                                last_seen: ci,
                            });
                            let s = self.slots.len() - 1;
                            let at = last_pos.map_or(0, |p| p + 1);
                            self.order.insert(at, s as u32);
                            s
                        }
                    }
                }
            };
            by_version.insert(item.id, slot);
            let s = &mut self.slots[slot];
            s.last_seen = ci;
            s.parent = item.parent;
            if let Some(v) = s.versions.iter_mut().find(|v| v.id == item.id) {
                v.last_seen = ci;
                if raw_item.id != item.id && !v.aliases.contains(&raw_item.id) {
                    v.aliases.push(raw_item.id);
                }
            }
            now.insert(slot, item.id);
            // The slot's place in page order: right after the previous item
            // for a new slot, else found by a scan from the previous place
            // (items usually come in page order, so it is near).
            last_pos = match last_pos {
                Some(p) if self.order.get(p + 1).is_some_and(|&o| o as usize == slot) => Some(p + 1),
                _ => self.order.iter().position(|&o| o as usize == slot),
            };
        }

        let mut place = vec![0usize; self.slots.len()];
        for (i, &o) in self.order.iter().enumerate() {
            place[o as usize] = i;
        }
        let mut now_sorted: Vec<(usize, EventId)> = now.iter().map(|(s, id)| (*s, *id)).collect();
        now_sorted.sort_by_key(|(s, _)| place[*s]);
        for (slot, id) in &now_sorted {
            match previously.get(slot) {
                None => diff.added.push(*id),
                Some(before) if before != id => diff.edited.push((*before, *id)),
                Some(_) => {}
            }
        }
        let mut gone: Vec<(usize, EventId)> =
            previously.iter().filter(|(s, _)| !now.contains_key(s)).map(|(s, id)| (*s, *id)).collect();
        gone.sort_by_key(|(s, _)| place[*s]);
        diff.removed = gone.into_iter().map(|(_, id)| id).collect();
        Ok(Some(diff))
    }

    /// Whether the slot is in the article's latest capture.
    pub fn is_present(&self, slot: &Slot) -> bool {
        self.captures.len().checked_sub(1) == Some(slot.last_seen as usize)
    }

    /// For a removed slot, the first capture it was missing from.
    pub fn removed_since(&self, slot: &Slot) -> Option<&CaptureRef> {
        if self.is_present(slot) {
            None
        } else {
            self.captures.get(slot.last_seen as usize + 1)
        }
    }
}

/// Where a view keeps its merge maps: `PREFIX` + `m/` + comment id -> kept
/// id; `PREFIX` + `k/` + article key -> kept key.
pub struct MergeMaps {
    /// The view's own key prefix for the maps.
    pub prefix: &'static str,
}

/// Merge chains longer than this are cut (they would be a cycle).
const MAX_CHAIN: usize = 64;

impl MergeMaps {
    fn comment_key(&self, id: &EventId) -> Vec<u8> {
        [self.prefix.as_bytes(), b"m/", id.as_bytes()].concat()
    }

    fn comment_key_prefix(&self) -> Vec<u8> {
        [self.prefix.as_bytes(), b"m/"].concat()
    }

    fn article_key(&self, key: &ArticleKey) -> Vec<u8> {
        [self.prefix.as_bytes(), b"k/", key.as_str().as_bytes()].concat()
    }

    /// The id `id` was merged into, following chains.
    pub fn canon_id(&self, tx: &crate::views::StateTx<'_>, id: &EventId) -> Result<EventId> {
        let mut current = *id;
        for _ in 0..MAX_CHAIN {
            match tx.get_value::<EventId>(&self.comment_key(&current))? {
                Some(next) if next != current => current = next,
                _ => return Ok(current),
            }
        }
        Ok(current)
    }

    /// The article key `key` was merged into, following chains.
    pub fn canon_key(&self, tx: &crate::views::StateTx<'_>, key: &ArticleKey) -> Result<ArticleKey> {
        let mut current = key.clone();
        if !tx.may_have_prefix(&[self.prefix.as_bytes(), b"k/"].concat())? {
            return Ok(current);
        }
        for _ in 0..MAX_CHAIN {
            match tx.get_value::<ArticleKey>(&self.article_key(&current))? {
                Some(next) if next != current => current = next,
                _ => return Ok(current),
            }
        }
        Ok(current)
    }

    /// Records that `fold` is `keep`.
    pub fn fold_id(&self, tx: &mut crate::views::StateTx<'_>, fold: &EventId, keep: &EventId) -> Result<()> {
        tx.put_value(self.comment_key(fold), keep)
    }

    /// Records that article `fold` is article `keep`.
    pub fn fold_key(
        &self,
        tx: &mut crate::views::StateTx<'_>,
        fold: &ArticleKey,
        keep: &ArticleKey,
    ) -> Result<()> {
        tx.put_value(self.article_key(fold), keep)
    }

    /// Records a comment merge's folds (skipping any that would loop back
    /// to the kept id) and returns the articles whose threads it touches.
    pub fn fold_comments(
        &self,
        tx: &mut crate::views::StateTx<'_>,
        m: &crate::model::Merge,
    ) -> Result<std::collections::BTreeSet<ArticleKey>> {
        let keep = self.canon_id(tx, &m.keep)?;
        let mut keys = std::collections::BTreeSet::new();
        for id in std::iter::once(&m.keep).chain(&m.fold) {
            if let Some(c) = tx.comment(id)? {
                keys.insert(self.canon_key(tx, &c.article)?);
            }
        }
        for f in &m.fold {
            if self.canon_id(tx, f)? != keep && *f != keep {
                self.fold_id(tx, f, &keep)?;
            }
        }
        Ok(keys)
    }

    /// A capture's articles under their kept keys; articles merged into the
    /// same key are combined (page order kept).
    pub fn group(
        &self,
        tx: &crate::views::StateTx<'_>,
        capture: &crate::model::Capture,
    ) -> Result<Vec<CapturedArticle>> {
        let mut out: Vec<CapturedArticle> = Vec::new();
        for seen in &capture.articles {
            let key = self.canon_key(tx, &seen.key)?;
            match out.iter_mut().find(|g| g.key == key) {
                Some(g) => {
                    if g.article.is_none() {
                        g.article = seen.article.clone();
                    }
                    g.comments.extend(seen.comments.iter().cloned());
                }
                None => out.push(CapturedArticle {
                    key,
                    article: seen.article.clone(),
                    comments: seen.comments.clone(),
                }),
            }
        }
        Ok(out)
    }

    /// Applies one capture's view of `key` to `state` with merges honoured.
    pub fn apply(
        &self,
        tx: &crate::views::StateTx<'_>,
        state: &mut ThreadState,
        capture: CaptureRef,
        seen: &CapturedArticle,
    ) -> Result<Option<CaptureDiff>> {
        let merged = tx.may_have_prefix(&self.comment_key_prefix())?;
        state.apply_capture(
            capture,
            seen,
            |id| tx.entry_ref(id),
            |id| if merged { self.canon_id(tx, id) } else { Ok(*id) },
        )
    }

    /// Rebuilds the thread of `key` from scratch out of `prior` states (the
    /// kept article's and those merged into it), re-reading their captures
    /// from the log with the current merges. Returns the new state and the
    /// diff of each capture, in capture order.
    pub fn rebuild(
        &self,
        tx: &crate::views::StateTx<'_>,
        key: &ArticleKey,
        prior: &[ThreadState],
    ) -> Result<(ThreadState, Vec<(CaptureRef, CaptureDiff)>)> {
        let mut state = ThreadState::new(key.clone());
        for p in prior {
            for v in &p.article_versions {
                state.add_article_version(*v);
            }
        }
        let mut captures: Vec<CaptureRef> = prior.iter().flat_map(|p| p.captures.iter().cloned()).collect();
        captures.sort_by_key(|c| c.seq);
        captures.dedup_by_key(|c| c.seq);
        let mut diffs = Vec::new();
        for cref in captures {
            let Some(crate::model::Event::Capture(c)) = tx.event(&cref.id)? else {
                return Err(Error::Corrupt(format!(
                    "thread names capture {} that is not in the log",
                    cref.id
                )));
            };
            for seen in self.group(tx, &c)? {
                if &seen.key == key {
                    let capture = CaptureRef { article: seen.article.as_ref().map(|a| a.id), ..cref.clone() };
                    if let Some(diff) = self.apply(tx, &mut state, capture.clone(), &seen)? {
                        diffs.push((capture, diff));
                    }
                }
            }
        }
        Ok((state, diffs))
    }
}
