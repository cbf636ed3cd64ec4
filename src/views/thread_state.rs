//! [`ThreadState`]: what the log says about one article's comment section,
//! maintained capture by capture. The threads view keeps it, and the
//! change records it yields.
//!
//! A *slot* is one comment as readers see it: its versions share the
//! article, the author and the posted time (an edited comment is a new event
//! in the same slot). A comment without a posted time has a slot of its own.
//! Slots are kept in page order: the order of the first capture, with
//! comments that appear later placed where the page shows them.
//!
//! Captures are taken in *observation order*: by when the page was fetched
//! (`fetched_at`, else the time the capture was recorded), ties by seq. A
//! capture that arrives out of that order (a backfilled older scrape)
//! rebuilds the article's state from its captures in order, so the state
//! never depends on the order the scrapes were ingested in. A *partial*
//! capture (one with gaps: cut off, paginated) adds comments, versions and
//! sightings but never makes a comment removed; only a complete capture
//! that does not show a comment does.

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Capture, CapturedArticle, EventId, IdMap, IdSet, LogEntry, Seq, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One capture of the article.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct CaptureRef {
    /// The capture event's seq.
    pub seq: Seq,
    /// The capture event's id.
    pub id: EventId,
    /// When the capture was recorded.
    pub recorded_at: Timestamp,
    /// When the page was fetched, when known.
    pub fetched_at: Option<Timestamp>,
    /// Whether the capture shows the whole comment section.
    pub complete: bool,
    /// The article version the capture showed, if any.
    pub article: Option<EventId>,
}

impl CaptureRef {
    /// The reference to capture `c` at `entry`, showing article version
    /// `article`.
    pub fn new(entry: &LogEntry, c: &Capture, article: Option<EventId>) -> CaptureRef {
        CaptureRef {
            seq: entry.seq,
            id: entry.id,
            recorded_at: entry.recorded_at,
            fetched_at: c.fetched_at,
            complete: c.is_complete(),
            article,
        }
    }

    /// When the page was observed: fetched, else recorded.
    pub fn observed_at(&self) -> Timestamp {
        self.fetched_at.unwrap_or(self.recorded_at)
    }

    /// The order of captures in every view: observation instant, then seq.
    pub fn order(&self) -> (i64, u32, Seq) {
        let (secs, nanos) = self.observed_at().instant();
        (secs, nanos, self.seq)
    }
}

/// One version of a comment and where it was seen (capture indices).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct Version {
    /// The comment event.
    pub id: EventId,
    /// Ids merged into this one by `dedupe --apply` that captures showed.
    pub aliases: Vec<EventId>,
    /// Index (into `captures`) of the first capture that showed it.
    pub first_seen: u32,
    /// Index of the last capture that showed it.
    pub last_seen: u32,
    /// Only ever seen as the possibly cut-off last item of a partial
    /// capture: never the current version while one seen whole exists, and
    /// not an edit of a version whose text it begins.
    pub truncated: bool,
}

/// One comment as readers see it, with all its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
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
    /// A version's status: `truncated` (only seen cut off, beside the
    /// current version), `superseded`, or for the current one `present` or
    /// `removed` as the slot is.
    pub fn version_status(&self, v: &Version, present: bool) -> &'static str {
        let current = v.id == self.latest();
        match (current, v.truncated, present) {
            (false, true, _) => "truncated",
            (false, false, _) => "superseded",
            (true, _, true) => "present",
            (true, _, false) => "removed",
        }
    }

    /// Whether a capture that shows versions `a` and `b` of this slot side
    /// by side (indices into `versions`) shows `a` rather than `b`: one
    /// seen whole over one only seen cut off, else the one the thread met
    /// later (as [`Slot::latest`] breaks a tie), for `diff` and `history`.
    pub fn shown_over(&self, a: usize, b: usize) -> bool {
        let whole = |i: usize| self.versions.get(i).is_some_and(|v| !v.truncated);
        (whole(a), a) > (whole(b), b)
    }

    /// [`Slot::shown_over`] of two of the slot's versions by id.
    fn shows_over(&self, a: EventId, b: EventId) -> bool {
        let at = |id: EventId| self.versions.iter().position(|v| v.id == id);
        at(a).zip(at(b)).is_some_and(|(a, b)| self.shown_over(a, b))
    }

    /// The current version's id: the one the latest capture showing the
    /// comment showed (a reverted edit makes an older version current
    /// again).
    pub fn latest(&self) -> EventId {
        self.versions
            .iter()
            .max_by_key(|v| (!v.truncated, v.last_seen))
            .map(|v| v.id)
            .unwrap_or(EventId([0; 32]))
    }
}

/// What changed between the previous capture of an article and this one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct CaptureDiff {
    /// Comments (their version ids) present now, not in the previous capture.
    pub added: Vec<EventId>,
    /// Comments present before, absent now (a complete capture only).
    pub removed: Vec<EventId>,
    /// Comments present before that this partial capture does not show
    /// (not removed: the capture does not show the whole section).
    pub unseen: u64,
    /// Comments shown in both, in a different version: (before, now).
    pub edited: Vec<(EventId, EventId)>,
    /// The article version changed: (before, now).
    pub article_revision: Option<(Option<EventId>, EventId)>,
}

/// The state of one article's thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct ThreadState {
    /// The article key.
    pub key: ArticleKey,
    /// Article versions, in the order captures first showed them (the
    /// current one is [`ThreadState::current_article`]).
    pub article_versions: Vec<EventId>,
    /// Captures that showed the article, in observation order: every one
    /// in a state read whole ([`crate::views::threads::load_thread`]), the
    /// ones after the first [`ThreadState::captures_before`] in the threads
    /// view's own reads (the earlier ones sealed in chunks).
    pub captures: Vec<CaptureRef>,
    /// Comment slots.
    pub slots: Vec<Slot>,
    /// Slot indices in page order.
    pub order: Vec<u32>,
    /// How many of the earliest captures `captures` leaves out (0 when the
    /// state is whole). Capture indices (`first_seen`, `last_seen`) count
    /// them.
    pub captures_before: u32,
    /// The index of the last complete capture among those left out.
    pub complete_before: Option<u32>,
    /// The article version the latest capture that showed one showed: the
    /// current one, as a comment's current version is the one the latest
    /// capture showing it showed (a title changed and changed back is
    /// back). `None` before threads view 11, and while no capture showed a
    /// version.
    pub article_shown: Option<EventId>,
    /// The author and posted time of comments merged into a slot's
    /// comment (`dedupe --apply`) where they differ from the slot's own,
    /// with the slot: a comment new in a capture goes to that slot by
    /// these too (an edit of the re-rendered comment is an edit of the kept
    /// one). Empty in a thread no merge touched (one byte per state, not
    /// one per slot).
    pub merged_renderings: Vec<(u32, Option<String>, Option<Timestamp>)>,
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

    /// The current article version: the one the latest capture that showed
    /// one showed ([`ThreadState::article_shown`]).
    pub fn current_article(&self) -> Option<EventId> {
        self.article_shown.or_else(|| self.article_versions.last().copied())
    }

    /// Every version id, and every id merged into a version, to (slot,
    /// version) indices: a version's own id wins over an alias.
    pub fn version_index(&self) -> IdMap<(usize, usize)> {
        let mut index = IdMap::default();
        for (si, slot) in self.slots.iter().enumerate() {
            for (vi, v) in slot.versions.iter().enumerate() {
                index.insert(v.id, (si, vi));
                for a in &v.aliases {
                    index.entry(*a).or_insert((si, vi));
                }
            }
        }
        index
    }

    /// Whether `capture` comes after every capture applied so far in
    /// observation order (so [`ThreadState::apply_capture`] may append it).
    /// (A state that leaves captures out holds at least the last one.)
    pub fn sorts_last(&self, capture: &CaptureRef) -> bool {
        self.captures.last().is_none_or(|last| last.order() < capture.order())
    }

    /// How many captures showed the article, those left out included.
    pub fn capture_count(&self) -> usize {
        self.captures_before as usize + self.captures.len()
    }

    /// The index of the last complete capture.
    fn last_complete(&self) -> Option<usize> {
        match self.captures.iter().rposition(|c| c.complete) {
            Some(i) => Some(self.captures_before as usize + i),
            None => self.complete_before.map(|i| i as usize),
        }
    }

    /// Applies one capture's view of this article, which must sort last
    /// ([`ThreadState::sorts_last`]; [`MergeMaps::apply`] rebuilds
    /// otherwise). `lookup` returns the comment event for an id. Returns
    /// `None` when the capture was already applied (apply is idempotent).
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
        if !self.sorts_last(&capture) {
            return Err(Error::Corrupt(format!(
                "capture {} applied out of observation order (a view bug)",
                capture.id
            )));
        }
        let ci = self.capture_count() as u32;
        let prev = ci.checked_sub(1);
        let complete = capture.complete;
        let mut diff = CaptureDiff::default();
        if let Some(a) = &seen.article {
            self.add_article_version(a.id);
            // The version current before: the one the latest capture that
            // showed one showed (a capture between that showed none
            // revised nothing).
            let before = prev.and(self.article_shown);
            self.article_shown = Some(a.id);
            if before != Some(a.id) && prev.is_some() {
                diff.article_revision = Some((before, a.id));
            }
        }
        // What readers saw before this capture: every comment not removed,
        // in the version last shown, by slot (as `now` is, below; the slots
        // this capture adds have no entry here).
        let last_complete = self.last_complete();
        let previously: Vec<Option<EventId>> =
            self.slots.iter().map(|s| present_after(last_complete, s).then(|| s.latest())).collect();
        self.captures.push(capture);

        let mut by_version: IdMap<usize> =
            IdMap::with_capacity_and_hasher(self.slots.len() + seen.comments.len(), Default::default());
        for (i, s) in self.slots.iter().enumerate() {
            for v in &s.versions {
                by_version.insert(v.id, i);
            }
        }
        // Slots by (posted time, author): the first one of each, as a scan
        // would find it (one lookup per new comment, not a scan: a page of
        // a million comments stays linear). Built at the first comment not
        // seen before: a re-scrape showing nothing new never needs it. Keyed
        // by a hash of the author (no name copied per slot), so a hit is
        // checked, and a collision falls back to a scan.
        // Each key's first and last slot, and per slot the next of its key
        // (`NONE` after the last): every slot of a key is found without a
        // scan, also when one capture shows several.
        // (Slots by time, each slot's next of its key, the slots this
        // capture shows, the slots with merged renderings: `ThreadState::merged_renderings`.)
        type Found = (
            SlotsByTime,
            Vec<u32>,
            Vec<bool>,
            HashMap<(Timestamp, u64), Vec<u32>, foldhash::fast::RandomState>,
        );
        let mut by_time: Option<Found> = None;
        let names = foldhash::fast::RandomState::default();
        let name_hash = |author: &Option<String>| std::hash::BuildHasher::hash_one(&names, author.as_deref());
        let mut now: Vec<Option<EventId>> = vec![None; self.slots.len()];
        let mut done = IdSet::with_capacity_and_hasher(seen.comments.len(), Default::default());
        let mut last_pos: Option<usize> = None;
        // Each comment's id as the log has it now (merges followed), and the
        // slots this capture shows by a version they already have: a slot
        // is shown once by one capture, so a comment new here (an edit, or
        // another comment) goes to a slot of its author and posted time
        // that the capture does not show otherwise, else to a new slot (two
        // comments by one author in one minute, shown side by side, are
        // two comments, not one edited).
        let ids: Vec<EventId> = seen.comments.iter().map(|i| canon(&i.id)).collect::<Result<_>>()?;
        for (raw_item, &id) in seen.comments.iter().zip(&ids) {
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
                    let slots = &self.slots;
                    let renderings = &self.merged_renderings;
                    let (by_time, next, shown_here, merged) = by_time.get_or_insert_with(|| {
                        let mut m = HashMap::with_capacity_and_hasher(
                            slots.len() + seen.comments.len(),
                            Default::default(),
                        );
                        let mut next = vec![NONE; slots.len()];
                        for (i, s) in slots.iter().enumerate() {
                            if let Some(t) = s.posted_at {
                                chain(&mut m, &mut next, (t, name_hash(&s.author)), i as u32);
                            }
                        }
                        let mut shown_here = vec![false; slots.len()];
                        for id in &ids {
                            if let Some(&s) = by_version.get(id) {
                                shown_here[s] = true;
                            }
                        }
                        let mut merged: HashMap<(Timestamp, u64), Vec<u32>, foldhash::fast::RandomState> =
                            Default::default();
                        for (i, author, t) in renderings.iter() {
                            if let Some(t) = t {
                                merged.entry((*t, name_hash(author))).or_default().push(*i);
                            }
                        }
                        (m, next, shown_here, merged)
                    });
                    let free = |i: usize| {
                        !shown_here.get(i).copied().unwrap_or(false) && now.get(i).is_none_or(Option::is_none)
                    };
                    let existing = c.posted_at.and_then(|t| {
                        let (first, _) = by_time.get_mut(&(t, name_hash(&c.author)))?;
                        // Slots a capture shows stay shown: the key's first
                        // moves past them for good (a capture of many
                        // comments of one minute stays linear).
                        while *first != NONE && !free(*first as usize) {
                            *first = next.get(*first as usize).copied().unwrap_or(NONE);
                        }
                        let mut at = *first;
                        while at != NONE {
                            let i = at as usize;
                            if slots[i].author == c.author && free(i) {
                                return Some(i);
                            }
                            at = next.get(i).copied().unwrap_or(NONE);
                        }
                        None
                    });
                    // Else a slot a comment of this author and time was
                    // merged into.
                    let existing = existing.or_else(|| {
                        let candidates = merged.get(&(c.posted_at?, name_hash(&c.author)))?;
                        // (The first such slot, whatever order they were
                        // merged in.)
                        candidates
                            .iter()
                            .map(|&i| i as usize)
                            .filter(|&i| {
                                free(i)
                                    && renderings.iter().any(|(s, a, p)| {
                                        *s as usize == i && *p == c.posted_at && *a == c.author
                                    })
                            })
                            .min()
                    });
                    let version = Version {
                        id: item.id,
                        aliases: Vec::new(),
                        first_seen: ci,
                        last_seen: ci,
                        truncated: raw_item.possibly_truncated && !complete,
                    };
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
                            if let Some(t) = c.posted_at {
                                next.resize(self.slots.len(), NONE);
                                chain(by_time, next, (t, name_hash(&c.author)), s as u32);
                            }
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
            let mut new_alias = false;
            if let Some(v) = s.versions.iter_mut().find(|v| v.id == item.id) {
                v.last_seen = ci;
                if !raw_item.possibly_truncated || complete {
                    v.truncated = false;
                }
                if raw_item.id != item.id && !v.aliases.contains(&raw_item.id) {
                    v.aliases.push(raw_item.id);
                    new_alias = true;
                }
            }
            if new_alias {
                // How the comment merged into this one was rendered.
                if let Some(crate::model::Event::Comment(c)) =
                    lookup(&raw_item.id)?.as_deref().map(|e| &e.event)
                {
                    let r = (c.author.clone(), c.posted_at);
                    let r = (slot as u32, r.0, r.1);
                    let renderings = &mut self.merged_renderings;
                    if (s.author.as_ref(), s.posted_at) != (r.1.as_ref(), r.2) && !renderings.contains(&r) {
                        // (Read by this capture's later lookups too.)
                        if let (Some((.., merged)), Some(t)) = (by_time.as_mut(), r.2) {
                            merged.entry((t, name_hash(&r.1))).or_default().push(slot as u32);
                        }
                        renderings.push(r);
                    }
                }
            }
            if now.len() <= slot {
                now.resize(slot + 1, None);
            }
            let shown = match s.versions.iter().find(|v| v.id == item.id) {
                // Seen only cut off: a sighting of the version seen whole
                // whose text it begins, the latest seen of those (a page
                // gone back to an earlier text shows that one again); else
                // the current version stays current.
                Some(v) if v.truncated => {
                    let mut whole: Vec<(u32, usize)> = (s.versions.iter().enumerate())
                        .filter(|(_, w)| !w.truncated)
                        .map(|(i, w)| (w.last_seen, i))
                        .collect();
                    whole.sort_unstable_by(|a, b| b.cmp(a));
                    // (Its whole text, not only the lines before the cut
                    // one as [`begins`] allows for deciding it is no edit.)
                    let cut = comment_body(&mut lookup, &item.id)?;
                    let mut sighted = None;
                    for (_, i) in whole {
                        if text_begins(&comment_body(&mut lookup, &s.versions[i].id)?, &cut) {
                            sighted = Some(i);
                            break;
                        }
                    }
                    match sighted {
                        Some(i) => {
                            s.versions[i].last_seen = ci;
                            s.versions[i].id
                        }
                        None => s.latest(),
                    }
                }
                _ => item.id,
            };
            // Two versions of one comment side by side (they were seen
            // apart before): the capture shows the one `Slot::shown_over`
            // picks (`Slot::latest` among those it showed), wherever each
            // is on the page, as `diff` and `history` have it.
            now[slot] = Some(match now[slot] {
                Some(before) if s.shows_over(before, shown) => before,
                _ => shown,
            });
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
        let mut now_sorted: Vec<(usize, EventId)> =
            now.iter().enumerate().filter_map(|(s, id)| id.map(|id| (s, id))).collect();
        now_sorted.sort_by_key(|(s, _)| place[*s]);
        for (slot, id) in &now_sorted {
            match previously.get(*slot).copied().flatten().as_ref() {
                None => diff.added.push(*id),
                Some(before) if before != id => {
                    let cut =
                        |v: &EventId| self.slots[*slot].versions.iter().any(|x| x.id == *v && x.truncated);
                    let completed = match (cut(before), cut(id)) {
                        (false, false) => false,
                        (true, false) => begins(&mut lookup, before, id)?,
                        (false, true) => begins(&mut lookup, id, before)?,
                        // Both cut: one begins the other, either way.
                        (true, true) => begins(&mut lookup, before, id)? || begins(&mut lookup, id, before)?,
                    };
                    if !completed {
                        diff.edited.push((*before, *id));
                    }
                }
                Some(_) => {}
            }
        }
        let mut gone: Vec<(usize, EventId)> = previously
            .iter()
            .enumerate()
            .filter_map(|(s, id)| id.filter(|_| now[s].is_none()).map(|id| (s, id)))
            .collect();
        if complete {
            gone.sort_by_key(|(s, _)| place[*s]);
            diff.removed = gone.into_iter().map(|(_, id)| id).collect();
        } else {
            diff.unseen = gone.len() as u64;
        }
        Ok(Some(diff))
    }

    /// Whether the slot is present: no complete capture after the last one
    /// that showed it left it out.
    pub fn is_present(&self, slot: &Slot) -> bool {
        present_after(self.last_complete(), slot)
    }

    /// For a removed slot, the first complete capture it was missing from
    /// (of a state read whole).
    pub fn removed_since(&self, slot: &Slot) -> Option<&CaptureRef> {
        self.captures.iter().skip(slot.last_seen as usize + 1).find(|c| c.complete)
    }

    /// Applies `captures` (each with its view of this article) in
    /// observation order to a fresh state, returning it and each capture's
    /// diff.
    pub fn from_captures(
        key: ArticleKey,
        mut captures: Vec<(CaptureRef, CapturedArticle)>,
        mut lookup: impl FnMut(&EventId) -> Result<Option<std::sync::Arc<LogEntry>>>,
        mut canon: impl FnMut(&EventId) -> Result<EventId>,
    ) -> Result<(ThreadState, Vec<(CaptureRef, CaptureDiff)>)> {
        captures.sort_by_key(|(c, _)| c.order());
        let mut state = ThreadState::new(key);
        let mut diffs = Vec::with_capacity(captures.len());
        for (capture, seen) in captures {
            if let Some(diff) = state.apply_capture(capture.clone(), &seen, &mut lookup, &mut canon)? {
                diffs.push((capture, diff));
            }
        }
        Ok((state, diffs))
    }
}

/// No slot, in [`SlotsByTime`]'s chains.
const NONE: u32 = u32::MAX;

/// Slots by (posted time, hash of the author): each key's first and last.
type SlotsByTime = HashMap<(Timestamp, u64), (u32, u32), foldhash::fast::RandomState>;

/// Adds slot `slot` last to the slots of `key` ([`ThreadState::apply_capture`]'s
/// index of slots by posted time and author).
fn chain(map: &mut SlotsByTime, next: &mut [u32], key: (Timestamp, u64), slot: u32) {
    match map.get_mut(&key) {
        Some((first, last)) => {
            next[*last as usize] = slot;
            *last = slot;
            if *first == NONE {
                // (Every slot before it taken by this capture.)
                *first = slot;
            }
        }
        None => {
            map.insert(key, (slot, slot));
        }
    }
}

/// Whether comment `cut` (a version seen cut off) is the start of comment
/// `whole`: its text, or its text without its last (possibly cut) line, begins
/// `whole`'s. Then the two are one comment seen cut off and whole, not an edit.
pub(crate) fn begins(
    lookup: &mut impl FnMut(&EventId) -> Result<Option<std::sync::Arc<LogEntry>>>,
    cut: &EventId,
    whole: &EventId,
) -> Result<bool> {
    let (cut, whole) = (comment_body(lookup, cut)?, comment_body(lookup, whole)?);
    let without_last = cut.rsplit_once('\n').map(|(head, _)| head.trim_end());
    Ok(text_begins(&whole, &cut) || without_last.is_some_and(|h| !h.is_empty() && text_begins(&whole, h)))
}

/// Whether text `whole` begins with `cut`, a text cut off: also when the
/// cut fell between a letter and a combining mark the page wrote after it
/// (`cafe` + U+0301, stored composed as `café`, cut to `cafe`), so its
/// canonical decomposition (NFD) begins with the cut's.
pub(crate) fn text_begins(whole: &str, cut: &str) -> bool {
    use unicode_normalization::char::canonical_combining_class;
    use unicode_normalization::UnicodeNormalization;
    if whole.starts_with(cut) {
        return true;
    }
    // Decomposed, combining marks are in canonical order, not the page's:
    // the marks the cut ends with need only be among those of the whole
    // text at that place (a cut between two marks).
    let (cut, whole): (Vec<char>, Vec<char>) = (cut.nfd().collect(), whole.nfd().collect());
    let mark = |c: &char| canonical_combining_class(*c) != 0;
    let base = cut.len() - cut.iter().rev().take_while(|c| mark(c)).count();
    if whole.get(..base) != Some(&cut[..base]) {
        return false;
    }
    let marks: Vec<char> = whole[base..].iter().copied().take_while(mark).collect();
    cut[base..].iter().all(|c| marks.contains(c))
}

/// The body of comment `id`, looked up.
fn comment_body(
    lookup: &mut impl FnMut(&EventId) -> Result<Option<std::sync::Arc<LogEntry>>>,
    id: &EventId,
) -> Result<String> {
    match lookup(id)?.as_deref().map(|e| &e.event) {
        Some(crate::model::Event::Comment(c)) => Ok(c.body.clone()),
        _ => Err(Error::Corrupt(format!("capture names comment {id} that is not in the log"))),
    }
}

/// Whether `slot` is present when the last complete capture is the one at
/// index `last_complete`: it showed the slot, or a later capture did.
fn present_after(last_complete: Option<usize>, slot: &Slot) -> bool {
    last_complete.is_none_or(|lc| slot.last_seen as usize >= lc)
}

/// What applying a capture did to a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The capture was applied before: nothing changed.
    Duplicate,
    /// The capture came last in observation order: its diff.
    Appended(CaptureDiff),
    /// The capture came before others (a backfill): the thread was rebuilt,
    /// and these are every capture's diffs, in observation order.
    Rebuilt(Vec<(CaptureRef, CaptureDiff)>),
}

/// Comments of a run of merges whose articles are put off at most
/// ([`MergeMaps::fold_comments`]): then read, their articles kept instead.
#[cfg(not(test))]
const COMMENTS_PUT_OFF: usize = 16_384;
/// (A few in tests, so that the views' proptests read runs in parts.)
#[cfg(test)]
const COMMENTS_PUT_OFF: usize = 3;

/// Where a view keeps its merge maps: `PREFIX` + `k/` + article key -> kept
/// key, and `PREFIX` + `m/` + article key -> the folds of the comments
/// filed under that article ([`Folds`]): one value per article whose
/// comments a merge folded, never a key per comment (20,000 merges into
/// one thread were 40,000 sled keys, and sled's node buffers for them were
/// the largest part of `dedupe --apply`'s memory).
///
/// A comment's folds are filed under the key its own article is filed
/// under now: an article merge moves the folded article's folds into the
/// kept article's map ([`MergeMaps::fold_articles`]), so a thread's
/// comments are all in its own map.
pub struct MergeMaps {
    /// The view's own key prefix for the maps.
    pub prefix: &'static str,
}

/// One fold of a comment map: comment `fold` was merged into `keep`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct Fold {
    /// The comment folded.
    pub fold: EventId,
    /// The comment it was folded into (when folded; a later merge may have
    /// folded that one too).
    pub keep: EventId,
    /// The article whose map `keep` is filed under, when not this map's
    /// (a merge of comments of two articles no article merge joined):
    /// read under the key it is filed under now.
    pub elsewhere: Option<ArticleKey>,
}

/// One article's folds, sorted by folded id, each once.
pub type Folds = Vec<Fold>;

/// One article's comment map as stored (`PREFIX` `m/` KEY).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct CommentMap {
    /// The folds of the comments filed under the article.
    pub folds: Folds,
    /// The articles whose maps hold a fold into one of this article's
    /// comments (under the keys they had then), sorted, each once: when a
    /// merge folds one of this article's comments, their threads show a
    /// comment folded into it, and are rebuilt too.
    pub inbound: Vec<ArticleKey>,
}

/// A [`CommentMap`] as a run of merges changes it.
#[derive(Default)]
struct WorkMap {
    folds: std::collections::BTreeMap<EventId, Fold>,
    inbound: std::collections::BTreeSet<ArticleKey>,
}

impl WorkMap {
    fn read(stored: Option<CommentMap>) -> WorkMap {
        let stored = stored.unwrap_or_default();
        WorkMap {
            folds: stored.folds.into_iter().map(|f| (f.fold, f)).collect(),
            inbound: stored.inbound.into_iter().collect(),
        }
    }

    /// Takes in `other`'s folds and articles (an article merge); this
    /// map's own folds win (none is in two maps).
    fn absorb(&mut self, other: WorkMap) {
        for (id, f) in other.folds {
            self.folds.entry(id).or_insert(f);
        }
        self.inbound.extend(other.inbound);
    }

    fn stored(self) -> CommentMap {
        CommentMap { folds: self.folds.into_values().collect(), inbound: self.inbound.into_iter().collect() }
    }
}

/// The fold of `id` in `folds`.
fn find_fold<'f>(folds: &'f [Fold], id: &EventId) -> Option<&'f Fold> {
    folds.binary_search_by(|f| f.fold.cmp(id)).ok().map(|i| &folds[i])
}

/// Merge chains longer than this are cut. The maps hold no cycle (a fold
/// is filed only into an id not folded itself), so this bounds only what
/// a damaged map could make; a chain grows by one each time the comment
/// kept is folded in turn (at 64, a chain of 71 merges imported showed
/// folded comments).
const MAX_CHAIN: usize = 1 << 16;

/// Follows a merge map's chain from `current` (`key_of` its key in the
/// map, `get` its value), cut at [`MAX_CHAIN`].
fn follow<T: PartialEq>(
    mut current: T,
    key_of: impl Fn(&T) -> Vec<u8>,
    get: impl Fn(&[u8]) -> Result<Option<T>>,
) -> Result<T> {
    for _ in 0..MAX_CHAIN {
        match get(&key_of(&current))? {
            Some(next) if next != current => current = next,
            _ => return Ok(current),
        }
    }
    Ok(current)
}

/// Follows comment `id`'s folds from the map of `key` (`find` the fold of
/// an id in an article's map, `canon_key` an article key's kept key), cut
/// at [`MAX_CHAIN`]: the id it is now and the key of the map that holds
/// it.
fn follow_folds(
    id: &EventId,
    key: &ArticleKey,
    mut find: impl FnMut(&ArticleKey, &EventId) -> Result<Option<Fold>>,
    mut canon_key: impl FnMut(&ArticleKey) -> Result<ArticleKey>,
) -> Result<(EventId, ArticleKey)> {
    let (mut id, mut key) = (*id, key.clone());
    for _ in 0..MAX_CHAIN {
        match find(&key, &id)? {
            Some(f) if f.keep != id => {
                id = f.keep;
                if let Some(e) = &f.elsewhere {
                    key = canon_key(e)?;
                }
            }
            _ => break,
        }
    }
    Ok((id, key))
}

/// Reads an article's comment map as stored.
type ReadFolds<'s> = Box<dyn Fn(&ArticleKey) -> Result<std::sync::Arc<Folds>> + 's>;
/// Gives the key an article key is filed under now.
type KeptKey<'s> = Box<dyn Fn(&ArticleKey) -> Result<ArticleKey> + 's>;

/// A view's comment maps as one read needs them (a capture applied, a
/// thread rebuilt, a preview): each article's map read once.
pub struct CommentMaps<'s> {
    /// The article's map as stored (`None`: the view has no comment map).
    folds: Option<ReadFolds<'s>>,
    canon_key: KeptKey<'s>,
    read: std::cell::RefCell<HashMap<ArticleKey, std::sync::Arc<Folds>>>,
    /// Folded ids resolved so far, each to the id it is now: a chain is
    /// walked once, not once per comment that enters it (a chain of 8,000
    /// imported merges took 15 s to apply).
    resolved: std::cell::RefCell<IdMap<EventId>>,
}

impl CommentMaps<'_> {
    /// The id comment `id`, filed under the article whose key is `key`
    /// now, was merged into, following chains (itself when not merged).
    pub fn canon_id(&self, key: &ArticleKey, id: &EventId) -> Result<EventId> {
        let Some(folds) = &self.folds else { return Ok(*id) };
        if let Some(now) = self.resolved.borrow().get(id) {
            return Ok(*now);
        }
        // The ids the walk passes, each then resolved to where it ends.
        let mut passed: Vec<EventId> = Vec::new();
        let find = |key: &ArticleKey, id: &EventId| -> Result<Option<Fold>> {
            let known = self.read.borrow().get(key).map(std::sync::Arc::clone);
            let map = match known {
                Some(m) => m,
                None => {
                    let m = folds(key)?;
                    self.read.borrow_mut().insert(key.clone(), std::sync::Arc::clone(&m));
                    m
                }
            };
            // (An id resolved before ends the walk where it ended.)
            if let Some(now) = self.resolved.borrow().get(id) {
                return Ok(Some(Fold { fold: *id, keep: *now, elsewhere: None }).filter(|_| now != id));
            }
            let fold = find_fold(&map, id).cloned();
            if fold.is_some() {
                passed.push(*id);
            }
            Ok(fold)
        };
        let now = follow_folds(id, key, find, &self.canon_key)?.0;
        let mut resolved = self.resolved.borrow_mut();
        for p in passed {
            resolved.insert(p, now);
        }
        Ok(now)
    }
}

/// A view's [`MergeMaps`] read from its stored tree (outside a
/// transaction: `history`, `ingest --dry-run`'s preview, lookups of an
/// article by id), whether each map holds any key asked once, so that
/// an archive without merges is not asked per comment.
pub struct StoredMaps<'t> {
    maps: MergeMaps,
    tree: &'t dyn crate::store::KvTree,
    /// The article map holds some key.
    keys: bool,
    /// The comment maps hold some key.
    ids: bool,
}

impl<'t> StoredMaps<'t> {
    /// [`MergeMaps::canon_key`]: the article key `key` was merged into.
    pub fn canon_key(&self, key: &ArticleKey) -> Result<ArticleKey> {
        if !self.keys {
            return Ok(key.clone());
        }
        follow(key.clone(), |k| self.maps.article_key(k), |k| self.get(k, "merged article key"))
    }

    /// [`MergeMaps::comments`]: the comment maps as stored.
    pub fn comments(&self) -> CommentMaps<'_> {
        CommentMaps {
            folds: self.ids.then(|| {
                Box::new(move |key: &ArticleKey| {
                    let map: Option<CommentMap> = self.get(&self.maps.comment_map_key(key), "comment map")?;
                    Ok(std::sync::Arc::new(map.map(|m| m.folds).unwrap_or_default()))
                }) as ReadFolds<'_>
            }),
            canon_key: Box::new(move |key| self.canon_key(key)),
            read: Default::default(),
            resolved: Default::default(),
        }
    }

    /// [`MergeMaps::group`]: a capture's articles under their kept keys.
    pub fn group(&self, capture: &crate::model::Capture) -> Result<Vec<CapturedArticle>> {
        grouped(capture, |key| self.canon_key(key))
    }

    fn get<T: bincode::Decode<()> + serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>> {
        self.tree.get(key)?.map(|v| crate::store::envelope::decode_native(&v, what)).transpose()
    }
}

/// A capture's sections under their kept keys (`canon`): articles merged
/// into the same key are combined (page order kept).
fn grouped(
    capture: &crate::model::Capture,
    mut canon: impl FnMut(&ArticleKey) -> Result<ArticleKey>,
) -> Result<Vec<CapturedArticle>> {
    let mut out: Vec<CapturedArticle> = Vec::new();
    for seen in &capture.articles {
        let key = canon(&seen.key)?;
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

impl MergeMaps {
    /// Where the folds of the comments filed under `key` are recorded
    /// (`PREFIX` `m/` KEY).
    fn comment_map_key(&self, key: &ArticleKey) -> Vec<u8> {
        [self.prefix.as_bytes(), b"m/", key.as_str().as_bytes()].concat()
    }

    fn comment_key_prefix(&self) -> Vec<u8> {
        [self.prefix.as_bytes(), b"m/"].concat()
    }

    /// Where the key `key` was folded into is recorded (`PREFIX` `k/` KEY).
    pub(crate) fn article_key(&self, key: &ArticleKey) -> Vec<u8> {
        [self.prefix.as_bytes(), b"k/", key.as_str().as_bytes()].concat()
    }

    /// The comment maps as `tx` holds them, for one read (a capture
    /// applied, a thread rebuilt): each article's map is read once.
    pub fn comments<'s>(&self, tx: &'s crate::views::StateTx<'_>) -> Result<CommentMaps<'s>> {
        let prefix = self.prefix;
        let any = tx.may_have_prefix(&self.comment_key_prefix())?;
        Ok(CommentMaps {
            folds: any.then(|| {
                Box::new(move |key: &ArticleKey| tx.comment_map(&MergeMaps { prefix }.comment_map_key(key)))
                    as ReadFolds<'s>
            }),
            canon_key: Box::new(move |key| MergeMaps { prefix }.canon_key(tx, key)),
            read: Default::default(),
            resolved: Default::default(),
        })
    }

    /// The article key `key` was merged into, following chains.
    pub fn canon_key(&self, tx: &crate::views::StateTx<'_>, key: &ArticleKey) -> Result<ArticleKey> {
        let current = key.clone();
        if !tx.may_have_prefix(&[self.prefix.as_bytes(), b"k/"].concat())? {
            return Ok(current);
        }
        follow(current, |k| self.article_key(k), |k| tx.get_packed::<ArticleKey>(k))
    }

    /// The maps as a view's stored `tree` holds them, for reads outside a
    /// transaction.
    pub fn stored<'t>(&self, tree: &'t dyn crate::store::KvTree) -> StoredMaps<'t> {
        // A tree that cannot even be scanned is not taken to hold none.
        let holds = |map: &[u8]| tree.scan_prefix(&[self.prefix.as_bytes(), map].concat()).next().is_some();
        StoredMaps { maps: MergeMaps { prefix: self.prefix }, tree, keys: holds(b"k/"), ids: holds(b"m/") }
    }

    /// Records an article merge's folds (both views take merges so): the
    /// key each folded article is filed under now, folded into the kept
    /// article's, and the folds of its comments moved into the kept
    /// article's map; returns the kept article's key and the keys folded
    /// by this merge, in its order (none twice, never the kept one).
    pub fn fold_articles(
        &self,
        tx: &mut crate::views::StateTx<'_>,
        m: &crate::model::Merge,
    ) -> Result<(ArticleKey, Vec<ArticleKey>)> {
        // (Comment folds a run of merges put off are filed first, under
        // the keys their articles have before this merge.)
        self.defer_touched(tx)?;
        let Some(crate::model::Event::Article(kept)) = tx.event(&m.keep)? else {
            return Err(Error::Corrupt(format!("merge keeps {}, which is not an article", m.keep)));
        };
        let key = self.canon_key(tx, &kept.key)?;
        let mut folded = Vec::new();
        for f in &m.fold {
            let Some(crate::model::Event::Article(a)) = tx.event(f)? else {
                return Err(Error::Corrupt(format!("merge folds {f}, which is not an article")));
            };
            // (Folded once, a key is then filed under the kept one.)
            let from = self.canon_key(tx, &a.key)?;
            if from != key {
                self.fold_key(tx, &from, &key)?;
                folded.push(from);
            }
        }
        if !folded.is_empty() && tx.may_have_prefix(&self.comment_key_prefix())? {
            let at = self.comment_map_key(&key);
            let mut into = WorkMap::read(tx.get_packed::<CommentMap>(&at)?);
            let mut moved = false;
            for from in &folded {
                let from_at = self.comment_map_key(from);
                if let Some(map) = tx.get_packed::<CommentMap>(&from_at)? {
                    into.absorb(WorkMap::read(Some(map)));
                    tx.delete(from_at);
                    moved = true;
                }
            }
            if moved {
                tx.put_packed(at, &into.stored())?;
            }
        }
        Ok((key, folded))
    }

    /// Records that article `fold` is article `keep`.
    pub fn fold_key(
        &self,
        tx: &mut crate::views::StateTx<'_>,
        fold: &ArticleKey,
        keep: &ArticleKey,
    ) -> Result<()> {
        tx.put_packed(self.article_key(fold), keep)
    }

    /// Takes a comment merge in: its folds are filed, and the threads it
    /// touches found, once the run of merges ends
    /// ([`MergeMaps::defer_touched`]), so that a run of merges reads its
    /// comments together and writes each article's map once.
    pub fn fold_comments(&self, tx: &mut crate::views::StateTx<'_>, m: &crate::model::Merge) -> Result<()> {
        tx.defer_merge(m.keep, m.fold.clone());
        if tx.deferred_comments() >= COMMENTS_PUT_OFF {
            self.defer_touched(tx)?;
        }
        Ok(())
    }

    /// Files the folds of the comment merges put off
    /// ([`MergeMaps::fold_comments`]) in order, each under the key its
    /// comment's article is filed under (skipping any that would loop back
    /// to the kept id), and defers ([`crate::views::StateTx::defer`]) the
    /// threads of their comments, under their kept keys, to be rebuilt once
    /// the run of merges ends. A run holds only comment merges, so the
    /// article maps are those each merge met.
    pub fn defer_touched(&self, tx: &mut crate::views::StateTx<'_>) -> Result<()> {
        let merges = tx.take_deferred_merges();
        if merges.is_empty() {
            return Ok(());
        }
        let mut article_of: IdMap<ArticleKey> = Default::default();
        let mut kept_key: HashMap<ArticleKey, ArticleKey> = HashMap::new();
        for (id, article) in tx.take_deferred_articles()? {
            let key = match kept_key.get(&article) {
                Some(k) => k.clone(),
                None => {
                    let k = self.canon_key(tx, &article)?;
                    kept_key.insert(article, k.clone());
                    k
                }
            };
            article_of.insert(id, key);
        }
        // Each map the run meets, read once; each it changes, written once.
        type Work = HashMap<ArticleKey, WorkMap>;
        let mut maps: Work = HashMap::new();
        let mut changed = std::collections::BTreeSet::new();
        let any = tx.may_have_prefix(&self.comment_key_prefix())?;
        let read = |maps: &mut Work, key: &ArticleKey| -> Result<()> {
            if !maps.contains_key(key) {
                let stored =
                    if any { tx.get_packed::<CommentMap>(&self.comment_map_key(key))? } else { None };
                maps.insert(key.clone(), WorkMap::read(stored));
            }
            Ok(())
        };
        let find = |maps: &mut Work, key: &ArticleKey, id: &EventId| -> Result<Option<Fold>> {
            read(maps, key)?;
            Ok(maps.get(key).and_then(|m| m.folds.get(id)).cloned())
        };
        // The threads to rebuild: those of the run's comments, and those
        // that show a comment folded into one the run folds (below).
        let mut threads: std::collections::BTreeSet<ArticleKey> = article_of.values().cloned().collect();
        let mut folded_in = std::collections::BTreeSet::new();
        for (keep, folds) in merges {
            // (A merge naming an id the log holds as no comment folds
            // nothing of a thread: the log's checks report it.)
            let Some(keep_key) = article_of.get(&keep) else { continue };
            let (keep, keep_key) =
                follow_folds(&keep, keep_key, |k, i| find(&mut maps, k, i), |k| self.canon_key(tx, k))?;
            for f in folds {
                let Some(key) = article_of.get(&f) else { continue };
                let (now, _) =
                    follow_folds(&f, key, |k, i| find(&mut maps, k, i), |k| self.canon_key(tx, k))?;
                if now != keep && f != keep {
                    let elsewhere = (keep_key != *key).then(|| keep_key.clone());
                    let map =
                        maps.get_mut(key).ok_or_else(|| Error::Internal("a comment map not read".into()))?;
                    map.folds.insert(f, Fold { fold: f, keep, elsewhere: elsewhere.clone() });
                    folded_in.insert(key.clone());
                    changed.insert(key.clone());
                    if elsewhere.is_some() {
                        read(&mut maps, &keep_key)?;
                        if let Some(target) = maps.get_mut(&keep_key) {
                            if target.inbound.insert(key.clone()) {
                                changed.insert(keep_key.clone());
                            }
                        }
                    }
                }
            }
        }
        // A thread whose folds lead, map by map, into a comment this run
        // folded shows it through them: every map whose folds point into an
        // article the run folded a comment of, and every map pointing into
        // those, in turn (a chain of folds across three articles left the
        // first thread showing the middle comment).
        let mut walk: Vec<ArticleKey> = folded_in.into_iter().collect();
        let mut seen: std::collections::BTreeSet<ArticleKey> = walk.iter().cloned().collect();
        while let Some(key) = walk.pop() {
            read(&mut maps, &key)?;
            let inbound: Vec<ArticleKey> =
                maps.get(&key).map(|m| m.inbound.iter().cloned().collect()).unwrap_or_default();
            for from in inbound {
                let from = self.canon_key(tx, &from)?;
                if seen.insert(from.clone()) {
                    threads.insert(from.clone());
                    walk.push(from);
                }
            }
        }
        for key in changed {
            let map = maps.remove(&key).unwrap_or_default();
            tx.put_packed(self.comment_map_key(&key), &map.stored())?;
        }
        for key in threads {
            tx.defer(key.as_str().as_bytes().to_vec());
        }
        Ok(())
    }

    /// A capture's articles under their kept keys; articles merged into the
    /// same key are combined (page order kept).
    pub fn group(
        &self,
        tx: &crate::views::StateTx<'_>,
        capture: &crate::model::Capture,
    ) -> Result<Vec<CapturedArticle>> {
        grouped(capture, |key| self.canon_key(tx, key))
    }

    /// Applies one capture's view of `key` to `state` with merges honoured:
    /// appended when it comes last in observation order, else the state is
    /// rebuilt from all its captures in order.
    pub fn apply(
        &self,
        tx: &crate::views::StateTx<'_>,
        state: &mut ThreadState,
        capture: CaptureRef,
        seen: &CapturedArticle,
    ) -> Result<Applied> {
        if state.captures.iter().any(|c| c.id == capture.id) {
            return Ok(Applied::Duplicate);
        }
        if !state.sorts_last(&capture) {
            let key = state.key.clone();
            let prior = std::mem::take(state);
            let (rebuilt, diffs) = self.rebuild(tx, &key, vec![prior], Some(capture))?;
            *state = rebuilt;
            return Ok(Applied::Rebuilt(diffs));
        }
        let comments = self.comments(tx)?;
        let key = state.key.clone();
        let diff =
            state.apply_capture(capture, seen, |id| tx.entry_ref(id), |id| comments.canon_id(&key, id))?;
        Ok(diff.map_or(Applied::Duplicate, Applied::Appended))
    }

    /// Rebuilds the thread of `key` from scratch out of `prior` states (the
    /// kept article's and those merged into it) and `extra`, re-reading
    /// their captures from the log with the current merges, in observation
    /// order. Returns the new state and the diff of each capture, in that
    /// order.
    pub fn rebuild(
        &self,
        tx: &crate::views::StateTx<'_>,
        key: &ArticleKey,
        prior: Vec<ThreadState>,
        extra: Option<CaptureRef>,
    ) -> Result<(ThreadState, Vec<(CaptureRef, CaptureDiff)>)> {
        // (Only their captures are read: the states go before the new one
        // is built, so a large thread is not held twice.)
        let mut refs: Vec<CaptureRef> = prior.into_iter().flat_map(|p| p.captures).chain(extra).collect();
        refs.sort_by_key(|c| c.seq);
        refs.dedup_by_key(|c| c.seq);
        let mut captures = Vec::with_capacity(refs.len());
        for cref in refs {
            let entry = tx.entry_at(cref.seq)?;
            let crate::model::Event::Capture(c) = &entry.event else {
                return Err(Error::Corrupt(format!(
                    "thread names capture {} at seq {}, not a capture",
                    cref.id, cref.seq
                )));
            };
            for seen in self.group(tx, c)? {
                if &seen.key == key {
                    let capture = CaptureRef { article: seen.article.as_ref().map(|a| a.id), ..cref.clone() };
                    captures.push((capture, seen));
                }
            }
        }
        let comments = self.comments(tx)?;
        // Each comment's segment decoded once, not once per comment (600
        // merges in one thread of 600 comments took a minute).
        let mut read: crate::model::IdMap<std::sync::Arc<crate::model::LogEntry>> = Default::default();
        ThreadState::from_captures(
            key.clone(),
            captures,
            |id| tx.entry_via(&mut read, id),
            |id| comments.canon_id(key, id),
        )
    }
}
