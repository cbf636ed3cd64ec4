//! [`ThreadState`]: what the log says about one article's comment section,
//! maintained capture by capture. The threads and changes views both keep it.
//!
//! A *slot* is one comment as readers see it: its versions share the
//! article, the author and the posted time (an edited comment is a new event
//! in the same slot). A comment without a posted time has a slot of its own.
//! Slots are kept in page order: the order of the first capture, with
//! comments that appear later placed where the page shows them.

use crate::error::{Error, Result};
use crate::model::{ArticleKey, CapturedArticle, Comment, EventId, Seq, Timestamp};
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
    pub fn apply_capture(
        &mut self,
        capture: CaptureRef,
        seen: &CapturedArticle,
        mut lookup: impl FnMut(&EventId) -> Result<Option<Comment>>,
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
        for item in &seen.comments {
            if !done.insert(item.id) {
                continue;
            }
            let slot = match by_version.get(&item.id) {
                Some(&s) => s,
                None => {
                    let c = lookup(&item.id)?.ok_or_else(|| {
                        Error::Corrupt(format!("capture names comment {} that is not in the log", item.id))
                    })?;
                    let existing = c.posted_at.and_then(|t| {
                        self.slots.iter().position(|s| s.posted_at == Some(t) && s.author == c.author)
                    });
                    let version = Version { id: item.id, first_seen: ci, last_seen: ci };
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
            }
            now.insert(slot, item.id);
            last_pos = self.order.iter().position(|&o| o as usize == slot);
        }

        let mut now_sorted: Vec<(usize, EventId)> = now.iter().map(|(s, id)| (*s, *id)).collect();
        now_sorted.sort_by_key(|(s, _)| self.order.iter().position(|&o| o as usize == *s));
        for (slot, id) in &now_sorted {
            match previously.get(slot) {
                None => diff.added.push(*id),
                Some(before) if before != id => diff.edited.push((*before, *id)),
                Some(_) => {}
            }
        }
        let mut gone: Vec<(usize, EventId)> =
            previously.iter().filter(|(s, _)| !now.contains_key(s)).map(|(s, id)| (*s, *id)).collect();
        gone.sort_by_key(|(s, _)| self.order.iter().position(|&o| o as usize == *s));
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
