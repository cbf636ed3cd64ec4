//! The authors view: per author, a timeline of their comments across all
//! articles, sorted by posted time.
//!
//! Names match case-insensitively after whitespace folding and display as
//! first seen. A comment's versions (same article, author and posted time)
//! count once. Comments without an author are listed under no one.
//!
//! State: `n/FOLDED` holds an [`AuthorInfo`]; `t/FOLDED\0ARTICLE` an
//! [`AuthorArticle`], the author's comments under that article (one key
//! per author and article rather than per comment: sled's cost is per key
//! written, and commenters often post several times under one article);
//! `k/KEY` the latest title of each article. [`timeline`] sorts by time.
//!
//! Versions, display names and titles follow observation order (when the
//! page showing them was fetched, else recorded; ties by seq), not the
//! order the scrapes were ingested in: each is stamped with the order key
//! of the capture that brought it in.

use crate::error::Result;
use crate::model::normalize::normalize_line;
use crate::model::{ArticleKey, Event, EventId, LogEntry, MergeKind, Seq, Timestamp};
use crate::store::{envelope, Archive};
use crate::views::{view_tree, Projection, StateTx};
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// The view's name.
pub const NAME: &str = "authors";

/// An author, as listed by `cairn authors`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct AuthorInfo {
    /// The name as first seen (in observation order).
    pub display: String,
    /// Comments (not versions) by them.
    pub comments: u64,
    /// The observation order of the comment `display` comes from.
    pub display_order: Order,
}

/// Observation order: the capture's observation instant (seconds,
/// nanoseconds) and seq.
pub type Order = (i64, u32, u64);

fn order_of(entry: &LogEntry, capture: &crate::model::Capture) -> Order {
    let (secs, nanos) = capture.observed_at(entry.recorded_at).instant();
    (secs, nanos, entry.seq.0)
}

/// An article's titled versions, each stamped with its earliest sighting.
/// The title shown is that of the version first seen last, as the threads
/// view's latest version is (so a title changed and changed back shows the
/// middle one in both views, whatever the ingest order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub(super) struct Titles {
    versions: Vec<(EventId, Order, String)>,
}

impl Titles {
    /// Records a sighting of version `id` at `order`; whether it changed.
    fn sighting(&mut self, id: EventId, order: Order, title: &str) -> bool {
        match self.versions.iter_mut().find(|(v, _, _)| *v == id) {
            Some((_, at, _)) if order < *at => {
                *at = order;
                true
            }
            Some(_) => false,
            None => {
                self.versions.push((id, order, title.to_string()));
                true
            }
        }
    }

    fn current(&self) -> Option<&str> {
        self.versions.iter().max_by_key(|(_, at, _)| *at).map(|(_, _, t)| t.as_str())
    }
}

/// One comment in an author's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The article.
    pub article: ArticleKey,
    /// When it was posted.
    pub posted_at: Option<Timestamp>,
    /// Every version's id, oldest first; the last is the latest.
    pub versions: Vec<EventId>,
    /// The seq of each version, in the same order.
    pub seqs: Vec<Seq>,
    /// Ids merged into this comment by `dedupe --apply`.
    pub aliases: Vec<EventId>,
}

/// One author's comments under one article, as stored (written and read
/// through bincode's own `Encode`/`Decode`: the bytes serde writes, ids in
/// one piece).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct AuthorArticle {
    /// The article.
    pub article: ArticleKey,
    /// The comments, in the order first seen.
    pub comments: Vec<StoredEntry>,
}

/// One comment in an [`AuthorArticle`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct StoredEntry {
    /// When it was posted.
    pub posted_at: Option<Timestamp>,
    /// Every version's id, oldest first; the last is the latest.
    pub versions: Vec<EventId>,
    /// The seq of each version, in the same order (bodies are read by seq,
    /// without the id index).
    pub seqs: Vec<Seq>,
    /// The observation order of the capture that brought each version in,
    /// in the same order (versions are kept sorted by it).
    pub orders: Vec<Order>,
    /// Ids merged into this comment by `dedupe --apply`.
    pub aliases: Vec<EventId>,
}

impl StoredEntry {
    /// Adds version `id` (at `seq`, stamped `order`) in its place.
    fn insert_version(&mut self, id: EventId, seq: Seq, order: Order) {
        let at = self.orders.partition_point(|o| *o <= order);
        self.versions.insert(at, id);
        self.seqs.insert(at, seq);
        self.orders.insert(at, order);
    }

    /// Puts the versions back in stamp order after a stamp changed.
    fn sort_versions(&mut self) {
        let mut all: Vec<(Order, EventId, Seq)> =
            self.orders.iter().zip(&self.versions).zip(&self.seqs).map(|((o, v), s)| (*o, *v, *s)).collect();
        all.sort_by_key(|(o, _, _)| *o);
        self.orders = all.iter().map(|(o, _, _)| *o).collect();
        self.versions = all.iter().map(|(_, v, _)| *v).collect();
        self.seqs = all.iter().map(|(_, _, s)| *s).collect();
    }

    /// Whether comment `id`, posted at `posted_at`, is (a version of) this
    /// one: same posted time, or the same id when it has no time.
    fn holds(&self, id: &EventId, posted_at: Option<&Timestamp>) -> bool {
        match posted_at {
            Some(t) => self.posted_at.as_ref() == Some(t),
            None => self.posted_at.is_none() && self.versions.contains(id),
        }
    }
}

/// Folds a name for matching: one-line normalization, lower case.
pub fn fold(name: &str) -> String {
    normalize_line(name).to_lowercase()
}

/// A key that sorts by instant: UTC seconds (offset applied when known) and
/// nanoseconds; comments without a time sort last.
fn sort_key(t: Option<&Timestamp>) -> [u8; 12] {
    let Some((secs, nanos)) = t.map(Timestamp::instant) else { return [0xff; 12] };
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&((secs as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&nanos.to_be_bytes());
    k
}

/// The key of an author's comments under an article, and the author's
/// info key.
fn group_keys(article: &ArticleKey, author: &str) -> (Vec<u8>, Vec<u8>) {
    folded_group_keys(article, &fold(author))
}

/// [`group_keys`] of an author's folded name.
fn folded_group_keys(article: &ArticleKey, folded: &str) -> (Vec<u8>, Vec<u8>) {
    let key = [timeline_prefix(folded), article.as_str().as_bytes().to_vec()].concat();
    (key, [b"n/".as_slice(), folded.as_bytes()].concat())
}

fn timeline_prefix(folded: &str) -> Vec<u8> {
    [b"t/".as_slice(), folded.as_bytes(), b"\0"].concat()
}

/// The authors projection.
pub struct AuthorsView;

impl Projection for AuthorsView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        7
    }

    fn apply(&self, entry: &LogEntry, tx: &mut StateTx<'_>) -> Result<()> {
        match &entry.event {
            // Titles are taken in at the capture that shows the version.
            Event::Article(_) => Ok(()),
            // Comments are taken in at their document's capture, grouped by
            // author and article, so each group is read and written once per
            // capture rather than once per comment. A capture's new comments
            // are the entries of its own document (applied just before it);
            // the comments it shows again were taken in with their own
            // documents.
            Event::Comment(_) => Ok(()),
            Event::Capture(cap) => take_in_capture(entry, cap, tx),
            Event::Merge(m) if m.kind == MergeKind::Comment => {
                // A folded comment leaves its timeline entry (dropping the
                // entry, and the author's count, when no version is left);
                // the kept comment's entry lists it as an alias.
                for f in &m.fold {
                    let Some(c) = tx.comment(f)? else { continue };
                    let Some(author) = &c.author else { continue };
                    let (key, info_key) = group_keys(&c.article, author);
                    let Some(mut group) = tx.get_packed::<AuthorArticle>(&key)? else { continue };
                    let Some(at) = group.comments.iter().position(|e| e.versions.contains(f)) else {
                        continue;
                    };
                    let slot = &mut group.comments[at];
                    if let Some(v) = slot.versions.iter().position(|v| v == f) {
                        slot.versions.remove(v);
                        if v < slot.seqs.len() {
                            slot.seqs.remove(v);
                        }
                        if v < slot.orders.len() {
                            slot.orders.remove(v);
                        }
                    }
                    if group.comments[at].versions.is_empty() {
                        group.comments.remove(at);
                        if let Some(mut info) = tx.get_packed::<AuthorInfo>(&info_key)? {
                            info.comments = info.comments.saturating_sub(1);
                            tx.put_packed(info_key, &info)?;
                        }
                    } else {
                        group.comments[at].aliases.push(*f);
                    }
                    if group.comments.is_empty() {
                        tx.delete(key);
                    } else {
                        tx.put_packed(key, &group)?;
                    }
                    if let Some(kept) = tx.comment(&m.keep)? {
                        if let Some(kept_author) = &kept.author {
                            let (kkey, _) = group_keys(&kept.article, kept_author);
                            if let Some(mut k) = tx.get_packed::<AuthorArticle>(&kkey)? {
                                let found =
                                    k.comments.iter_mut().find(|e| e.holds(&m.keep, kept.posted_at.as_ref()));
                                if let Some(e) = found {
                                    if !e.aliases.contains(f) && !e.versions.contains(f) {
                                        e.aliases.push(*f);
                                        tx.put_packed(kkey, &k)?;
                                    }
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
            Event::Merge(_) => Ok(()),
        }
    }
}

/// The stamp of a version seen only cut off (the last item of a partial
/// capture): it sorts before every observation, so it is never the latest,
/// until a whole sighting stamps it with that sighting's order.
fn cut_stamp(seq: Seq) -> Order {
    (i64::MIN, 0, seq.0)
}

fn is_cut(o: &Order) -> bool {
    o.0 == i64::MIN
}

/// The marker of a version stamped [`cut_stamp`], so that an ordinary
/// capture can tell a whole sighting of it without looking every comment up.
fn cut_key(id: &EventId) -> Vec<u8> {
    [b"x/".as_slice(), id.as_bytes()].concat()
}

/// A capture's effect on groups and authors, gathered before writing.
#[derive(Default)]
struct Intake {
    /// Group key, group, changed.
    groups: Vec<(Vec<u8>, AuthorArticle, bool)>,
    /// Author key, display candidate, its order, comments added.
    authors: Vec<(Vec<u8>, String, Order, u64)>,
    /// Cut markers to set (true) or clear (false).
    cut_markers: Vec<(EventId, bool)>,
    /// Articles no capture showed before this one: they have no groups
    /// yet, so none is looked up (a first ingest's every lookup would miss).
    new_articles: Vec<crate::model::ArticleKey>,
    /// Each author name met in this capture, folded once ([`fold`]).
    folded: std::collections::HashMap<String, String>,
}

impl Intake {
    /// Takes in one sighting of comment `e`, shown by a capture at `order`
    /// (`cut`: as the possibly cut-off last item of a partial capture).
    fn sighting(&mut self, tx: &StateTx<'_>, e: &LogEntry, order: Order, cut: bool) -> Result<()> {
        let Event::Comment(c) = &e.event else { return Ok(()) };
        let Some(author) = &c.author else { return Ok(()) };
        let folded = match self.folded.get(author) {
            Some(f) => f,
            None => self.folded.entry(author.clone()).or_insert_with(|| fold(author)),
        };
        let (key, info_key) = folded_group_keys(&c.article, folded);
        let at = match self.groups.iter().position(|(k, _, _)| *k == key) {
            Some(at) => at,
            None => {
                let stored = if self.new_articles.contains(&c.article) { None } else { tx.get_packed(&key)? };
                let group = stored
                    .unwrap_or_else(|| AuthorArticle { article: c.article.clone(), comments: Vec::new() });
                self.groups.push((key, group, false));
                self.groups.len() - 1
            }
        };
        let (_, group, dirty) = &mut self.groups[at];
        let stamp = if cut { cut_stamp(e.seq) } else { order };
        let mut added = 0;
        match group.comments.iter_mut().find(|s| s.holds(&e.id, c.posted_at.as_ref())) {
            Some(s) => match s.versions.iter().position(|v| *v == e.id) {
                Some(v) => {
                    // Seen again: stamped by its earliest whole sighting.
                    let old = s.orders[v];
                    if !cut && (is_cut(&old) || order < old) {
                        s.orders[v] = order;
                        s.sort_versions();
                        *dirty = true;
                        if is_cut(&old) {
                            self.cut_markers.push((e.id, false));
                        }
                    }
                }
                None => {
                    s.insert_version(e.id, e.seq, stamp);
                    *dirty = true;
                    if cut {
                        self.cut_markers.push((e.id, true));
                    }
                }
            },
            None => {
                group.comments.push(StoredEntry {
                    posted_at: c.posted_at,
                    versions: vec![e.id],
                    seqs: vec![e.seq],
                    orders: vec![stamp],
                    aliases: Vec::new(),
                });
                *dirty = true;
                added = 1;
                if cut {
                    self.cut_markers.push((e.id, true));
                }
            }
        }
        // The display name is the form of the earliest sighting (ties: the
        // first in page order).
        match self.authors.iter_mut().find(|(k, _, _, _)| *k == info_key) {
            Some((_, display, at, n)) => {
                *n += added;
                if order < *at {
                    *display = author.clone();
                    *at = order;
                }
            }
            None => self.authors.push((info_key, author.clone(), order, added)),
        }
        Ok(())
    }

    fn write(self, tx: &mut StateTx<'_>) -> Result<()> {
        for (key, group, dirty) in self.groups {
            if dirty {
                tx.put_packed(key, &group)?;
            }
        }
        for (id, set) in self.cut_markers {
            if set {
                tx.put(cut_key(&id), Vec::new());
            } else {
                tx.delete(cut_key(&id));
            }
        }
        for (info_key, display, at, n) in self.authors {
            let old = tx.get_packed::<AuthorInfo>(&info_key)?;
            if n == 0 && old.as_ref().is_none_or(|i| i.display_order <= at) {
                continue;
            }
            let mut info =
                old.unwrap_or(AuthorInfo { display: display.clone(), comments: 0, display_order: at });
            info.comments += n;
            if at < info.display_order {
                info.display = display;
                info.display_order = at;
            }
            tx.put_packed(info_key, &info)?;
        }
        Ok(())
    }
}

/// Applies a capture. Ordinarily only its document's new comments are taken
/// in (each author and article group read and written once per capture):
/// every comment it shows again was taken in by an earlier-observed capture.
/// A capture observed before another capture of one of its articles (a
/// backfill), or any capture of a replay that leaves some out (`replay
/// --until TIME`), takes in every comment it shows, so that stamps and
/// display names follow observation order whatever the ingest order.
fn take_in_capture(entry: &LogEntry, cap: &crate::model::Capture, tx: &mut StateTx<'_>) -> Result<()> {
    let order = order_of(entry, cap);
    let complete = cap.is_complete();
    let mut thorough = tx.leaves_captures_out();
    let mut intake = Intake::default();
    for a in &cap.articles {
        let key = [b"o/".as_slice(), a.key.as_str().as_bytes()].concat();
        let latest: Option<Order> = tx.get_packed(&key)?;
        // Every capture taken in sets `o/`: without it, the article has no
        // author groups (`t/`) yet.
        if latest.is_none() {
            intake.new_articles.push(a.key.clone());
        }
        if latest.is_some_and(|l| l > order) {
            thorough = true;
        }
        if latest.is_none_or(|l| l < order) {
            tx.put_packed(key, &order)?;
        }
    }
    for item in cap.articles.iter().filter_map(|a| a.article.as_ref()) {
        let found = match tx.document_entry(&item.id) {
            Some(e) => Some(std::sync::Arc::new(e.clone())),
            None if thorough => tx.entry_ref(&item.id)?,
            None => None,
        };
        let Some(e) = found else { continue };
        let Event::Article(a) = &e.event else { continue };
        let Some(title) = &a.title else { continue };
        let key = [b"k/".as_slice(), a.key.as_str().as_bytes()].concat();
        let mut titles = tx.get_packed::<Titles>(&key)?.unwrap_or_default();
        if titles.sighting(e.id, order, title) {
            tx.put_packed(key, &titles)?;
        }
    }
    let may_be_cut = tx.may_have_prefix(b"x/")?;
    for item in cap.articles.iter().flat_map(|a| &a.comments) {
        let cut = item.possibly_truncated && !complete;
        if let Some(e) = tx.document_entry(&item.id) {
            intake.sighting(tx, e, order, cut)?;
        } else if thorough || (may_be_cut && !cut && tx.get(&cut_key(&item.id))?.is_some()) {
            if let Some(e) = tx.entry_ref(&item.id)? {
                intake.sighting(tx, &e, order, cut)?;
            }
        }
    }
    intake.write(tx)
}

/// Every author with their comment count, most comments first (ties by
/// name).
pub fn list_authors(archive: &Archive) -> Result<Vec<AuthorInfo>> {
    let tree = view_tree(archive, NAME)?;
    let mut all: Vec<AuthorInfo> = tree
        .scan_prefix(b"n/")
        .map(|kv| kv.and_then(|(_, v)| envelope::decode(&v, "author")))
        .collect::<Result<_>>()?;
    all.sort_by(|a, b| b.comments.cmp(&a.comments).then_with(|| a.display.cmp(&b.display)));
    Ok(all)
}

/// One author's info and timeline (sorted by posted time), if known.
pub fn timeline(archive: &Archive, name: &str) -> Result<Option<(AuthorInfo, Vec<TimelineEntry>)>> {
    let tree = view_tree(archive, NAME)?;
    let folded = fold(name);
    let Some(info) = tree.get(&[b"n/".as_slice(), folded.as_bytes()].concat())? else { return Ok(None) };
    let info: AuthorInfo = envelope::decode(&info, "author")?;
    let mut entries: Vec<([u8; 12], TimelineEntry)> = Vec::new();
    for kv in tree.scan_prefix(&timeline_prefix(&folded)) {
        let (_, v) = kv?;
        let group: AuthorArticle = envelope::decode_native(&v, "author's comments under an article")?;
        for e in group.comments {
            entries.push((
                sort_key(e.posted_at.as_ref()),
                TimelineEntry {
                    article: group.article.clone(),
                    posted_at: e.posted_at,
                    versions: e.versions,
                    seqs: e.seqs,
                    aliases: e.aliases,
                },
            ));
        }
    }
    // Sorted by instant, then article, then posted time as written (or the
    // id when there is none): the last only within a run of equal instant
    // and article (undated comments under one article), computed once per
    // comment there.
    entries.sort_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| a.article.cmp(&b.article)));
    for run in entries.chunk_by_mut(|(ka, a), (kb, b)| ka == kb && a.article == b.article) {
        if run.len() > 1 {
            run.sort_by_cached_key(|(_, e)| match &e.posted_at {
                Some(t) => t.canonical(),
                None => e.versions.first().map_or_else(String::new, |id| format!("#{id}")),
            });
        }
    }
    Ok(Some((info, entries.into_iter().map(|(_, e)| e).collect())))
}

/// The latest title of an article, as this view knows it.
pub fn title_of(archive: &Archive, key: &ArticleKey) -> Result<Option<String>> {
    let tree = view_tree(archive, NAME)?;
    match tree.get(&[b"k/".as_slice(), key.as_str().as_bytes()].concat())? {
        None => Ok(None),
        Some(v) => envelope::decode::<Titles>(&v, "title").map(|t| t.current().map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups are written through bincode's own `Encode` and read through
    /// its `Decode` ([`timeline`]), older ones were written through serde:
    /// the native reader must read serde's bytes.
    #[test]
    fn a_group_reads_back_through_native_decode() {
        let id = |b: u8| EventId([b; 32]);
        let times = ["2012-03-28", "2012-03-28T13:02:00", "2012-03-28T13:02:00.25+05:00"];
        let mut comments: Vec<StoredEntry> = times
            .iter()
            .enumerate()
            .map(|(i, t)| StoredEntry {
                posted_at: Timestamp::parse_canonical(t),
                versions: vec![id(i as u8), id(200 + i as u8)],
                seqs: vec![Seq(i as u64 + 1), Seq(1 << 40)],
                orders: vec![(-5, 7, 1), (1_333_000_000, 999_999_999, u64::MAX)],
                aliases: vec![id(99)],
            })
            .collect();
        comments.push(StoredEntry {
            posted_at: None,
            versions: vec![],
            seqs: vec![],
            orders: vec![],
            aliases: vec![],
        });
        let group = AuthorArticle { article: ArticleKey("https://example.com/a".into()), comments };
        assert!(group.comments[..3].iter().all(|c| c.posted_at.is_some()));
        // One stored as is, one large enough to be compressed.
        let big = AuthorArticle {
            article: group.article.clone(),
            comments: (0..20).flat_map(|_| group.comments.clone()).collect(),
        };
        assert!(envelope::encode_body(&group).unwrap().len() < 512);
        assert!(envelope::encode(&big).unwrap().len() < envelope::encode_body(&big).unwrap().len());
        for value in [&group, &big] {
            let bytes = envelope::encode(value).unwrap();
            assert_eq!(&envelope::decode_native::<AuthorArticle>(&bytes, "g").unwrap(), value);
            assert_eq!(&envelope::decode::<AuthorArticle>(&bytes, "g").unwrap(), value);
        }
        // A damaged body is an error from both readers.
        let mut raw = bincode::serde::encode_to_vec(&group, bincode::config::standard()).unwrap();
        raw.truncate(raw.len() - 1);
        let sealed = envelope::seal_raw(&raw);
        assert!(envelope::decode_native::<AuthorArticle>(&sealed, "g").is_err());
        assert!(envelope::decode::<AuthorArticle>(&sealed, "g").is_err());
    }
}
