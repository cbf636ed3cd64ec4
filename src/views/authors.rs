//! The authors view: per author, a timeline of their comments across all
//! articles, sorted by posted time.
//!
//! Names match case-insensitively after whitespace folding and display as
//! first seen. A comment's versions (same article, author exactly as
//! shown, and posted time, as in the threads view) count once. Comments without an author are listed under no one.
//!
//! State (version 13): `g/REF` holds an [`ArticleGroups`] (REF:
//! [`article_ref`], 16 bytes of BLAKE3 of the article's key): the
//! article's latest observation, its titles, and every author's comments
//! under it, each author's encoded on its own so that a reader decodes
//! only the author it wants; `p/B` is one of [`BUCKETS`] append-only
//! lists of [`Posting`]s (a capture's comments added under an article by
//! an author, a merge's taken off, the names shown), each author's in the
//! bucket their folded name hashes to; `Mm/KEY` the folds of the comments
//! filed under article KEY (the id each comment merge folded each into,
//! one value per article: [`crate::views::thread_state::MergeMaps`]), so
//! that a capture applied later (a backfill) that shows one again does not
//! take it in; `Mk/KEY` the article an
//! article merge folded article KEY into: its comments moved there with
//! the merge, and every capture or comment of KEY applied after it counts
//! under the kept article, as in the threads view. So the view keeps one key per
//! article and one per 128 postings, and a capture writes its articles'
//! keys and appends its postings, never a key per author: in real comment
//! sections most commenters post once or twice, so a key per author was
//! nearly a key written per comment. An author's
//! count, display name and articles are summed from their bucket's
//! postings when read ([`timeline`], [`list_authors`]); [`timeline`] then
//! reads the author's groups and sorts by time.
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

/// An article's titled versions, each stamped with its latest sighting
/// (and the place of the capture's section that showed it, among the
/// capture's sections). The title shown is that of the version seen last,
/// as the threads view's current version is (so a title changed and
/// changed back shows the first one again in both views, whatever the
/// ingest order); of two versions one capture showed (two sections an
/// article merge folded together), the one of the earlier section, as the
/// threads view takes a capture's first version of an article.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Titles {
    versions: Vec<(EventId, Order, String, u32)>,
}

impl Titles {
    /// Records a sighting of version `id` at `order` in section `section`
    /// of the capture; whether it changed.
    fn sighting(&mut self, id: EventId, order: Order, section: u32, title: &str) -> bool {
        if self.versions.iter().any(|(v, _, _, _)| *v == id) {
            return self.sighting_again(&id, order, section);
        }
        self.versions.push((id, order, title.to_string(), section));
        true
    }

    /// Moves the stamp of version `id`, if it is one of these, up to a
    /// sighting at `order` in section `section` when that is later;
    /// whether it moved.
    fn sighting_again(&mut self, id: &EventId, order: Order, section: u32) -> bool {
        let later =
            |at: &Order, place: &u32| (order, std::cmp::Reverse(section)) > (*at, std::cmp::Reverse(*place));
        match self.versions.iter_mut().find(|(v, _, _, _)| v == id) {
            Some((_, at, _, place)) if later(at, place) => {
                (*at, *place) = (order, section);
                true
            }
            _ => false,
        }
    }

    fn current(&self) -> Option<&str> {
        self.versions
            .iter()
            .max_by_key(|(_, at, _, section)| (*at, std::cmp::Reverse(*section)))
            .map(|(_, _, t, _)| t.as_str())
    }
}

/// The first fields of an [`ArticleGroups`], decoded without the groups
/// ([`title_of`]).
#[derive(Decode)]
struct ArticleSeen {
    article: ArticleKey,
    _latest: Order,
    titles: Titles,
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
    /// How many of the versions a capture showed whole: the others were
    /// only ever seen cut off at the end of a partial capture (the thread
    /// marks them `truncated`), and are no edit.
    pub whole: usize,
    /// Ids merged into this comment by `dedupe --apply`.
    pub aliases: Vec<EventId>,
}

impl TimelineEntry {
    /// Whether the comment was edited: two or more versions seen whole.
    pub fn edited(&self) -> bool {
        self.whole > 1
    }
}

/// What the view keeps of one article, as stored under `g/REF`: the
/// observation order of its latest capture taken in (a capture observed
/// before it is a backfill), its titled versions, and every author's
/// comments under it (written and read through bincode's own
/// `Encode`/`Decode`: the bytes serde writes, ids in one piece). One key
/// per article, where version 11 kept the first two under `o/KEY` and
/// version 10 under `o/KEY` and `k/KEY`: a capture of a new article wrote
/// each, and in a first ingest of small pages each sled key written is a
/// noticeable part of a document's cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct ArticleGroups {
    /// The article.
    pub article: ArticleKey,
    /// The observation order of the latest capture that showed the article.
    pub latest: Order,
    /// The article's titled versions.
    pub titles: Titles,
    /// Per author, sorted by folded name ([`fold`]): their comments under
    /// the article, in the order first seen, a `Vec<StoredEntry>` encoded
    /// on its own ([`decode_group`]).
    pub groups: Vec<(String, Vec<u8>)>,
    /// The seqs of the captures taken in under the article, ascending,
    /// after the [`CAPTURE_CHUNK`]-long chunks `sealed` under `c/REF\0N`
    /// (1 to [`CAPTURE_CHUNK`] of them): a backfill or a merge rebuilds the
    /// value from them ([`rebuild_article`]). In chunks, so that a page
    /// captured again and again costs each capture the same.
    pub captures: Vec<Seq>,
    /// How many full chunks of captures come before `captures`.
    pub sealed: u32,
    /// Names (folded) of comments merged into an entry of another name's
    /// group (names `dedupe` folds alike and this view does not, as `bob`
    /// and a fullwidth `ｂｏｂ`), with that group's name, sorted: a comment
    /// of such a name, new in a capture, is looked for in that group too
    /// ([`Intake::sighting`]).
    pub renamed: Vec<(String, String)>,
}

impl ArticleGroups {
    /// Where author `folded`'s group is, or would go.
    fn find(&self, folded: &str) -> std::result::Result<usize, usize> {
        self.groups.binary_search_by(|(name, _)| name.as_str().cmp(folded))
    }

    /// Author `folded`'s group, decoded, if they have one here.
    fn group(&self, folded: &str) -> Result<Option<Vec<StoredEntry>>> {
        match self.find(folded) {
            Ok(i) => decode_group(&self.groups[i].1).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sets author `folded`'s group (an empty one removes it).
    fn set(&mut self, folded: &str, group: &[StoredEntry]) -> Result<()> {
        match (self.find(folded), group.is_empty()) {
            (Ok(i), true) => {
                self.groups.remove(i);
            }
            (Err(_), true) => {}
            (Ok(i), false) => self.groups[i].1 = envelope::encode_native_body(&group)?,
            (Err(i), false) => {
                self.groups.insert(i, (folded.to_string(), envelope::encode_native_body(&group)?))
            }
        }
        Ok(())
    }
}

/// Decodes an [`ArticleGroups`] as stored.
fn decode_groups(bytes: &[u8]) -> Result<ArticleGroups> {
    envelope::decode_native(bytes, "authors' comments under an article")
}

/// Decodes one author's group of an [`ArticleGroups`].
pub fn decode_group(bytes: &[u8]) -> Result<Vec<StoredEntry>> {
    envelope::decode_native_unsealed(bytes, "author's comments under an article")
}

/// One change to an author's standing under one article, as their
/// bucket's postings list holds it (`p/B`): comments added under it (a
/// capture) or taken off (a merge), and with the first posting of a
/// capture that sighted the author, the name as shown there and the
/// capture's observation order. An author's count is the sum of their
/// deltas, their articles those whose sum is positive, their display name
/// the one of the least order: nothing of an author is read or rewritten
/// when a capture sights them, so a capture costs the same however many
/// commenters it shows (with one key per author, each capture read and
/// rewrote every commenter's key, and in a real comment section most
/// commenters post once or twice: nearly a key written per comment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct Posting {
    /// The author's name, folded ([`fold`]).
    pub folded: String,
    /// The article.
    pub article: ArticleRef,
    /// Comments (not versions) added under the article, or taken off.
    pub delta: i64,
    /// A name as shown, and the observation order of the capture that
    /// showed it.
    pub display: Option<(String, Order)>,
}

/// An article as an author's postings name it: [`article_ref`].
pub type ArticleRef = [u8; 16];

/// Buckets of postings: an author's are all in the one their folded
/// name's hash picks, so [`timeline`] reads a sixteenth of them.
pub const BUCKETS: u8 = 16;

/// The first 16 bytes of BLAKE3 of an article's key.
pub fn article_ref(key: &ArticleKey) -> ArticleRef {
    let mut r = [0u8; 16];
    r.copy_from_slice(&blake3::hash(key.as_str().as_bytes()).as_bytes()[..16]);
    r
}

fn groups_key(r: &ArticleRef) -> Vec<u8> {
    [b"g/".as_slice(), r].concat()
}

/// Captures' seqs per sealed chunk of an article's list
/// ([`ArticleGroups::captures`]).
const CAPTURE_CHUNK: usize = if cfg!(test) { 3 } else { 256 };

/// The key of sealed chunk `n` of article `r`'s captures.
fn capture_chunk_key(r: &ArticleRef, n: u32) -> Vec<u8> {
    crate::views::chunks::key(b"c/", r, n)
}

/// Every capture's seq of the article `stored` is the value of, its sealed
/// chunks read back.
fn all_captures(tx: &StateTx<'_>, stored: &ArticleGroups) -> Result<Vec<Seq>> {
    let r = article_ref(&stored.article);
    let missing =
        |n| format!("the authors view of {}: capture chunk {n} is missing", stored.article.as_str());
    let mut all =
        crate::views::chunks::read(stored.sealed, missing, |n| tx.get_packed(&capture_chunk_key(&r, n)))?;
    all.extend_from_slice(&stored.captures);
    Ok(all)
}

/// Seals the full chunks of `value`'s captures past the last sealed one,
/// leaving 1 to [`CAPTURE_CHUNK`] in the value (where the chunks fall
/// depends only on the captures, so an ingest and a replay store the
/// same values).
fn seal_captures(tx: &mut StateTx<'_>, value: &mut ArticleGroups) -> Result<()> {
    let full = value.captures.len().saturating_sub(1) / CAPTURE_CHUNK;
    if full == 0 {
        return Ok(());
    }
    let rest = value.captures.split_off(full * CAPTURE_CHUNK);
    let sealing = std::mem::replace(&mut value.captures, rest);
    let r = article_ref(&value.article);
    crate::views::chunks::write_under(tx, b"c/", &r, value.sealed, &sealing, CAPTURE_CHUNK)?;
    value.sealed += full as u32;
    Ok(())
}

/// Where merges' folds are recorded (`Mm/KEY` -> the folds of the
/// comments filed under article KEY, `Mk/KEY` -> the key kept).
const MAPS: crate::views::thread_state::MergeMaps = crate::views::thread_state::MergeMaps { prefix: "M" };

/// The prefix of [`MAPS`]' comment folds.
const FOLDED: &[u8] = b"Mm/";

/// The key of the postings list of bucket `b`.
fn bucket_key(b: u8) -> Vec<u8> {
    vec![b'p', b'/', b]
}

/// The bucket of author `folded`'s postings.
fn bucket_of(folded: &str) -> u8 {
    blake3::hash(folded.as_bytes()).as_bytes()[0] % BUCKETS
}

/// Appends `posting` to its author's bucket.
fn post(tx: &mut StateTx<'_>, posting: &Posting) -> Result<()> {
    tx.append(&bucket_key(bucket_of(&posting.folded)), envelope::encode_native_body(posting)?);
    Ok(())
}

/// One comment in an author's group of an [`ArticleGroups`].
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
    /// The author and posted time of comments merged into this one, where
    /// they differ from its own, each with the observation order of the
    /// capture that first showed it: a comment of that rendering shown
    /// from then on is a version of this one (as the threads view keeps
    /// `ThreadState::merged_renderings`).
    pub renderings: Vec<(String, Timestamp, Order)>,
    /// The author's name exactly as the comment gives it: the group is by
    /// folded name, but a comment is one author's, as in the threads view
    /// (`SHAH` and `Shah` at the same minute are two comments there and
    /// here, until `dedupe --apply` folds one into the other).
    pub author: String,
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

    /// Whether comment `id` by `author`, posted at `posted_at`, is (a
    /// version of) this one: the same author and posted time, or the same
    /// id when it has no time.
    fn holds(&self, id: &EventId, author: &str, posted_at: Option<&Timestamp>) -> bool {
        self.author == author
            && match posted_at {
                Some(t) => self.posted_at.as_ref() == Some(t),
                None => self.posted_at.is_none() && self.versions.contains(id),
            }
    }

    /// Records that a comment by `author` posted at `at`, first shown at
    /// `order`, was merged into this one (nothing when that is its own
    /// rendering; the earlier order when it is known already).
    fn rendering(&mut self, author: String, at: Timestamp, order: Order) {
        if self.author == author && self.posted_at.as_ref() == Some(&at) {
            return;
        }
        match self.renderings.iter_mut().find(|(a, t, _)| *a == author && *t == at) {
            Some(r) => r.2 = r.2.min(order),
            None => self.renderings.push((author, at, order)),
        }
    }

    /// Whether a comment by `author` posted at `at`, shown at `order`, has
    /// the rendering of a comment merged into this one, shown by then.
    fn has_rendering(&self, author: &str, at: &Timestamp, order: Order) -> bool {
        self.renderings.iter().any(|(a, t, o)| a == author && t == at && *o <= order)
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

/// The authors projection.
pub struct AuthorsView;

impl Projection for AuthorsView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 10: postings; 11: `k/` folded into `o/`; 12: `o/` folded into
        // `g/` ([`ArticleGroups`]); 13: article merges followed (`Mk/`),
        // each comment's exact author kept ([`StoredEntry::author`]), cut
        // stamps told from whole ones ([`is_cut`]); 14: an article's title
        // is that of the version seen last ([`Titles`]), where it was that
        // of the version first seen last; 15: a comment new in a capture
        // goes to an entry of its author and time the capture does not show
        // otherwise ([`Intake::sighting`]), and an article merge joins each
        // kept entry with at most one moved one.
        // 16: after a comment merge, the folded comment's later versions
        // join the kept one's entry when it began its own, and each entry
        // keeps the renderings merged into it with when each was first
        // shown (`StoredEntry::renderings`): a comment of such a rendering
        // shown from then on goes to that entry (as in the threads view).
        // 17: the same, stored (16's values of an earlier build of it
        // had no renderings), and an entry a merge empties hands its
        // aliases and renderings to the kept one's.
        // 18: each article keeps its captures (`ArticleGroups::captures`),
        // and a backfill or a merge rebuilds its comments from them as
        // the thread's ([`rebuild_article`]), where they were taken into
        // the entries as they stood.
        // 19: the same, with the value's captures in chunks
        // (`ArticleGroups::sealed`) and the names merges joined to another
        // name's group (`ArticleGroups::renamed`): values an earlier build
        // of 18 wrote do not decode as these.
        // 20: comment folds in one value per article (`Mm/KEY`), not one
        // key per folded comment (`Mm/ID`).
        // 21: a run of comment merges ends where its commit of the log
        // ends, in a replay as after each command (the postings a run
        // appends depend on where it ends).
        21
    }

    fn apply(&self, entry: &LogEntry, tx: &mut StateTx<'_>) -> Result<()> {
        // Articles a run of comment merges touched are rebuilt once, before
        // anything else reads them.
        if tx.has_deferred() && !matches!(&entry.event, Event::Merge(m) if m.kind == MergeKind::Comment) {
            rebuild_merged(tx)?;
        }
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
                // The fold is recorded now (a capture applied later that
                // shows the folded comment again, a backfill, takes it as
                // the kept one, as the thread does); each article it
                // touches is rebuilt from its captures once the run of
                // merges ends ([`rebuild_article`]).
                MAPS.fold_comments(tx, m)
            }
            Event::Merge(m) => fold_articles(tx, m),
        }
    }

    fn settle(&self, tx: &mut StateTx<'_>) -> Result<()> {
        rebuild_merged(tx)
    }
}

/// Rebuilds the articles comment merges put off ([`AuthorsView::apply`])
/// from their captures, with the merge maps as they are now: the same
/// values as a rebuild after each merge, once.
fn rebuild_merged(tx: &mut StateTx<'_>) -> Result<()> {
    MAPS.defer_touched(tx)?;
    for key in tx.take_deferred() {
        let key = ArticleKey(
            String::from_utf8(key)
                .map_err(|_| crate::error::Error::Internal("a deferred article key is not text".into()))?,
        );
        if let Some(stored) = tx.get_packed::<ArticleGroups>(&groups_key(&article_ref(&key)))? {
            same_article(&stored.article, &key, "groups")?;
            rebuild_article(tx, &key, vec![stored], None, &mut Default::default())?;
        }
    }
    Ok(())
}

/// An article merge: each folded article's key is recorded as the kept
/// one's (`Mk/KEY`: every capture and comment applied after it, and every
/// comment merge, finds the kept article under it, as the threads view
/// does), and the kept article's value is rebuilt from its captures and
/// those of the folded articles ([`rebuild_article`]), whose values go.
fn fold_articles(tx: &mut StateTx<'_>, m: &crate::model::Merge) -> Result<()> {
    let (key, folded) = MAPS.fold_articles(tx, m)?;
    let mut prior = Vec::with_capacity(folded.len() + 1);
    for k in std::iter::once(&key).chain(&folded) {
        if let Some(stored) = tx.get_packed::<ArticleGroups>(&groups_key(&article_ref(k)))? {
            same_article(&stored.article, k, "groups")?;
            prior.push(stored);
        }
    }
    if prior.is_empty() {
        return Ok(());
    }
    rebuild_article(tx, &key, prior, None, &mut Default::default())
}

/// Rebuilds article `key`'s value from the captures of `prior` (its own
/// value and those of articles an article merge folded into it) and
/// `extra` (a backfilled capture), with the merges as they are now, the
/// way the threads view rebuilds a thread: the comments are the thread's
/// own ([`ThreadState::from_captures`], the same code on the same
/// captures), so that this view groups an article's comments as the
/// thread does whatever the order the captures were ingested in and
/// whatever merges came between. Each version is stamped by its earliest
/// whole sighting (else its earliest cut one), each entry lists the
/// comments merged into it that the captures showed, with the renderings
/// of those and when each was first shown; what each author's count
/// gained or lost under each article is posted, and the folded articles'
/// values go.
///
/// [`ThreadState::from_captures`]: crate::views::thread_state::ThreadState::from_captures
fn rebuild_article(
    tx: &mut StateTx<'_>,
    key: &ArticleKey,
    prior: Vec<ArticleGroups>,
    extra: Option<Seq>,
    read: &mut crate::model::IdMap<std::sync::Arc<LogEntry>>,
) -> Result<()> {
    use crate::views::thread_state::{CaptureRef, ThreadState};
    let corrupt =
        |what: String| crate::error::Error::Corrupt(format!("the authors view of {}: {what}", key.as_str()));
    let reference = article_ref(key);
    let mut seqs: Vec<Seq> = extra.into_iter().collect();
    for p in &prior {
        seqs.extend(all_captures(tx, p)?);
    }
    seqs.sort_unstable();
    seqs.dedup();
    // (The thread's comment map read once, for the stamps and the thread.)
    let comments = MAPS.comments(tx)?;
    let mut canon = |id: &EventId| comments.canon_id(key, id);
    let mut titles = Titles::default();
    let mut captures = Vec::with_capacity(seqs.len());
    for &seq in &seqs {
        let entry = tx.entry_at(seq)?;
        let Event::Capture(c) = &entry.event else {
            return Err(corrupt(format!("it names the entry at seq {seq} as a capture, which it is not")));
        };
        let order = order_of(&entry, c);
        for (section, a) in c.articles.iter().enumerate() {
            let Some(item) = &a.article else { continue };
            if MAPS.canon_key(tx, &a.key)? != *key {
                continue;
            }
            if let Some(Event::Article(v)) = tx.entry_via(read, &item.id)?.as_deref().map(|e| &e.event) {
                if let Some(title) = &v.title {
                    titles.sighting(item.id, order, section as u32, title);
                }
            }
        }
        for seen in MAPS.group(tx, c)? {
            if seen.key == *key {
                let capture = CaptureRef::new(&entry, c, seen.article.as_ref().map(|a| a.id));
                captures.push((order, capture, seen));
            }
        }
    }
    captures.sort_by_key(|(order, _, _)| *order);
    let latest = match captures.last() {
        Some((order, _, _)) => *order,
        None => prior.iter().map(|p| p.latest).max().unwrap_or_default(),
    };
    // Each version's stamp, and when each comment merged into another was
    // first shown.
    let mut stamps: crate::model::IdMap<Order> = Default::default();
    let mut first_shown: crate::model::IdMap<Order> = Default::default();
    for (order, capture, seen) in &captures {
        for item in &seen.comments {
            let id = canon(&item.id)?;
            let stamp = if item.possibly_truncated && !capture.complete { cut_stamp(*order) } else { *order };
            match stamps.get_mut(&id) {
                Some(old) if earlier_stamp(&stamp, old) => *old = stamp,
                Some(_) => {}
                None => {
                    stamps.insert(id, stamp);
                }
            }
            if id != item.id {
                first_shown.entry(item.id).or_insert(*order);
            }
        }
    }
    let (state, _) = ThreadState::from_captures(
        key.clone(),
        captures.into_iter().map(|(_, capture, seen)| (capture, seen)).collect(),
        |id| tx.entry_via(read, id),
        &mut canon,
    )?;
    drop(comments);
    // The thread's comments, by author, in the order the thread met them.
    let mut groups: Vec<(String, Vec<StoredEntry>)> = Vec::new();
    let mut group_at: NameMap<usize> = Default::default();
    let mut renamed: Vec<(String, String)> = Vec::new();
    for slot in &state.slots {
        let Some(author) = &slot.author else { continue };
        let mut versions = Vec::with_capacity(slot.versions.len());
        for (i, v) in slot.versions.iter().enumerate() {
            let stamp =
                *stamps.get(&v.id).ok_or_else(|| corrupt(format!("comment {} is in no capture", v.id)))?;
            let Some(e) = tx.entry_via(read, &v.id)? else {
                return Err(corrupt(format!("comment {} is not in the log", v.id)));
            };
            // A comment of another article (a comment merge across two
            // articles no article merge joined: the thread shows the kept
            // comment in both) is listed under its own article only.
            if let Event::Comment(c) = &e.event {
                if c.article != *key && MAPS.canon_key(tx, &c.article)? != *key {
                    continue;
                }
            }
            versions.push((stamp, i, v.id, e.seq));
        }
        if versions.is_empty() {
            continue;
        }
        versions.sort_unstable();
        let mut entry = StoredEntry {
            posted_at: slot.posted_at,
            versions: versions.iter().map(|v| v.2).collect(),
            seqs: versions.iter().map(|v| v.3).collect(),
            orders: versions.iter().map(|v| v.0).collect(),
            aliases: Vec::new(),
            renderings: Vec::new(),
            author: author.clone(),
        };
        for alias in slot.versions.iter().flat_map(|v| &v.aliases) {
            if entry.aliases.contains(alias) {
                continue;
            }
            entry.aliases.push(*alias);
            let Some(&shown) = first_shown.get(alias) else { continue };
            if let Some(Event::Comment(c)) = tx.entry_via(read, alias)?.as_deref().map(|e| &e.event) {
                if let (Some(name), Some(at)) = (&c.author, c.posted_at) {
                    entry.rendering(name.clone(), at, shown);
                }
            }
        }
        let folded = fold(author);
        for (name, _, _) in &entry.renderings {
            let other = (fold(name), folded.clone());
            if other.0 != other.1 && !renamed.contains(&other) {
                renamed.push(other);
            }
        }
        match group_at.get(&folded) {
            Some(&g) => groups[g].1.push(entry),
            None => {
                group_at.insert(folded.clone(), groups.len());
                groups.push((folded, vec![entry]));
            }
        }
    }
    // What each author's count gains or loses under each article, and
    // the cut markers: the old values' go, the new one's are set.
    let mut deltas: Vec<(String, ArticleRef, i64)> = Vec::new();
    let mut cut_now = Vec::new();
    for p in &prior {
        let r = article_ref(&p.article);
        for (folded, bytes) in &p.groups {
            let group = decode_group(bytes)?;
            deltas.push((folded.clone(), r, -(group.len() as i64)));
            for e in &group {
                for (v, o) in e.versions.iter().zip(&e.orders) {
                    if is_cut(o) {
                        tx.delete(cut_key(v));
                    }
                }
            }
        }
        if p.article != *key {
            tx.delete(groups_key(&r));
            for n in 0..p.sealed {
                tx.delete(capture_chunk_key(&r, n));
            }
        }
    }
    renamed.sort_unstable();
    let mut value = ArticleGroups {
        article: key.clone(),
        latest,
        titles,
        groups: Vec::new(),
        captures: seqs,
        sealed: 0,
        renamed,
    };
    for (folded, group) in &groups {
        deltas.push((folded.clone(), reference, group.len() as i64));
        for e in group {
            cut_now.extend(e.versions.iter().zip(&e.orders).filter(|(_, o)| is_cut(o)).map(|(v, _)| *v));
        }
        value.set(folded, group)?;
    }
    for v in cut_now {
        tx.put(cut_key(&v), Vec::new());
    }
    seal_captures(tx, &mut value)?;
    tx.put_packed(groups_key(&reference), &value)?;
    deltas.sort();
    for run in deltas.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        let delta: i64 = run.iter().map(|d| d.2).sum();
        if delta != 0 {
            post(tx, &Posting { folded: run[0].0.clone(), article: run[0].1, delta, display: None })?;
        }
    }
    Ok(())
}

/// How far a cut stamp is moved below the observation order it comes
/// from: observation instants are within a few hundred thousand years of
/// 1970 (chrono's range), a few times 10^12 seconds, far less than 2^62.
const CUT: i64 = 1 << 62;

/// The stamp of a version seen only cut off (the last item of a partial
/// capture) by a capture observed at `order`: it sorts before every
/// observation, so it is never the latest while a version seen whole
/// exists, until a whole sighting stamps it with that sighting's order;
/// versions seen only cut off sort among themselves by the order they were
/// observed in (before authors view 10, by their seq: by ingest order).
fn cut_stamp(order: Order) -> Order {
    (order.0.saturating_sub(CUT), order.1, order.2)
}

/// Whether `o` is a [`cut_stamp`]: half way between the two ranges (a cut
/// stamp is an observation's seconds less [`CUT`]; `i64::MIN / 2`, the
/// threshold before, is `-CUT` itself, so no cut stamp of a capture
/// observed after 1970 was below it).
fn is_cut(o: &Order) -> bool {
    o.0 < -(CUT / 2)
}

/// Whether `stamp` is to replace `old` as a version's stamp: a whole
/// sighting replaces a cut one or a later whole one, a cut one only a
/// later cut one.
fn earlier_stamp(stamp: &Order, old: &Order) -> bool {
    if is_cut(stamp) {
        is_cut(old) && stamp < old
    } else {
        is_cut(old) || stamp < old
    }
}

/// The marker of a version stamped [`cut_stamp`], so that an ordinary
/// capture can tell a whole sighting of it without looking every comment up.
fn cut_key(id: &EventId) -> Vec<u8> {
    [b"x/".as_slice(), id.as_bytes()].concat()
}

/// A map by author name (folded), hashed with foldhash (SipHash of each
/// name was a few percent of an ingest's CPU; the seed is random per
/// process, as SipHash's is).
type NameMap<V> = std::collections::HashMap<String, V, foldhash::fast::RandomState>;

/// A capture's effect on groups and authors, gathered before writing.
#[derive(Default)]
struct Intake {
    /// The articles whose groups the capture touches.
    articles: Vec<ArticleIntake>,
    /// Per author (folded): the name as first shown in the capture, and
    /// the capture's order.
    displays: NameMap<(String, Order)>,
    /// Cut markers to set (true) or clear (false).
    cut_markers: Vec<(EventId, bool)>,
    /// Each author name met in this capture, folded once ([`fold`]).
    folded: NameMap<String>,
    /// Every comment id the capture shows, gathered the first time a
    /// comment new here has an author and posted time an entry holds
    /// ([`Intake::sighting`]).
    shown: Option<crate::model::IdSet>,
    /// Per author (folded) shown under an article that is rebuilt, that
    /// article: their name as shown is posted there.
    shown_under: NameMap<ArticleRef>,
}

/// One article's value as a capture changes it.
struct ArticleIntake {
    /// The keys found to stand for this article (its own, and those an
    /// article merge folded into it).
    keys: Vec<ArticleKey>,
    reference: ArticleRef,
    stored: ArticleGroups,
    /// Whether the view held the article before this capture.
    existed: bool,
    /// The value is to be written whether or not a group changed: the
    /// article is new, or its latest observation, titles or captures
    /// changed.
    seen_changed: bool,
    /// The capture is not taken in here: it was before, or it is to be
    /// rebuilt (`rebuild`).
    aside: bool,
    /// The capture was observed before the article's latest one taken in
    /// (a backfill): the value is rebuilt from every capture
    /// ([`rebuild_article`]).
    rebuild: bool,
    /// The authors the capture touches: their groups, decoded.
    touched: Vec<Touched>,
    /// Where each touched author is in `touched`.
    touched_at: NameMap<usize>,
}

/// An author's group under one article, decoded.
struct Touched {
    folded: String,
    comments: Vec<StoredEntry>,
    /// Comments of theirs the capture adds under the article.
    added: i64,
    dirty: bool,
}

impl ArticleIntake {
    /// Where author `folded`'s group is in `touched`, decoded the first
    /// time.
    fn touched(&mut self, folded: &str) -> Result<usize> {
        if let Some(t) = self.touched_at.get(folded) {
            return Ok(*t);
        }
        let comments = self.stored.group(folded)?.unwrap_or_default();
        self.touched.push(Touched { folded: folded.to_string(), comments, added: 0, dirty: false });
        self.touched_at.insert(folded.to_string(), self.touched.len() - 1);
        Ok(self.touched.len() - 1)
    }
}

impl Intake {
    /// Where article `key`'s value is in `articles` (the value of the
    /// article it was folded into, if an article merge folded it), read
    /// once per capture; an article new to the view starts with its latest
    /// observation at `order`, the capture's.
    fn article(
        articles: &mut Vec<ArticleIntake>,
        tx: &StateTx<'_>,
        key: &ArticleKey,
        order: Order,
    ) -> Result<usize> {
        if let Some(at) = articles.iter().position(|a| a.keys.contains(key)) {
            return Ok(at);
        }
        let canon = MAPS.canon_key(tx, key)?;
        if let Some(at) = articles.iter().position(|a| a.stored.article == canon) {
            articles[at].keys.push(key.clone());
            return Ok(at);
        }
        let mut keys = vec![canon];
        if *key != keys[0] {
            keys.push(key.clone());
        }
        let key = &keys[0];
        let reference = article_ref(key);
        let stored: Option<ArticleGroups> = tx.get_packed(&groups_key(&reference))?;
        let existed = stored.is_some();
        let stored = stored.unwrap_or_else(|| ArticleGroups {
            article: key.clone(),
            latest: order,
            titles: Titles::default(),
            groups: Vec::new(),
            captures: Vec::new(),
            sealed: 0,
            renamed: Vec::new(),
        });
        same_article(&stored.article, key, "groups")?;
        articles.push(ArticleIntake {
            keys,
            reference,
            stored,
            existed,
            seen_changed: !existed,
            aside: false,
            rebuild: false,
            touched: Vec::new(),
            touched_at: Default::default(),
        });
        Ok(articles.len() - 1)
    }

    /// Takes in one sighting of comment `e`, shown by capture `cap` at
    /// `order` (`cut`: as the possibly cut-off last item of a partial
    /// capture). A comment is a version of the entry that has it, else of
    /// an entry of its author and posted time that the capture does not
    /// show otherwise, else an entry of its own: two comments by one author
    /// in one minute, shown side by side, are two comments (as the threads
    /// view's slots are).
    fn sighting(
        &mut self,
        tx: &StateTx<'_>,
        e: &LogEntry,
        cap: &crate::model::Capture,
        order: Order,
        cut: bool,
    ) -> Result<()> {
        let Event::Comment(c) = &e.event else { return Ok(()) };
        let Some(author) = &c.author else { return Ok(()) };
        if !self.folded.contains_key(author) {
            self.folded.insert(author.clone(), fold(author));
        }
        let folded = &self.folded[author];
        let a = Intake::article(&mut self.articles, tx, &c.article, order)?;
        let article = &mut self.articles[a];
        if article.aside {
            return Ok(());
        }
        let mut t = article.touched(folded)?;
        let comments = &article.touched[t].comments;
        let holds = |s: &StoredEntry| s.holds(&e.id, author, c.posted_at.as_ref());
        // (An entry a comment merge joined holds versions of the folded
        // comment's author and time too.)
        let merged = c.posted_at.is_some() && comments.iter().any(|s| !s.renderings.is_empty());
        let renamed = c.posted_at.is_some() && article.stored.renamed.iter().any(|(n, _)| n == folded);
        let mut at = comments.iter().position(|s| s.versions.contains(&e.id));
        if at.is_none() && (merged || renamed || comments.iter().any(holds)) {
            let shown = self
                .shown
                .get_or_insert_with(|| cap.articles.iter().flat_map(|a| &a.comments).map(|i| i.id).collect());
            let elsewhere = |s: &StoredEntry| s.versions.iter().chain(&s.aliases).any(|v| shown.contains(v));
            // Else an entry a comment of this author and time was merged
            // into (`dedupe --apply`): an edit of the comment as it was
            // rendered then, as the threads view finds it by the merged
            // renderings it keeps.
            let rendered = |s: &StoredEntry| {
                c.posted_at.as_ref().is_some_and(|t| s.has_rendering(author, t, order)) && !elsewhere(s)
            };
            at = comments.iter().position(|s| holds(s) && !elsewhere(s));
            if at.is_none() && merged {
                at = comments.iter().position(rendered);
            }
            // (Or in another name's group, a name `dedupe` folds as this
            // one and this view does not.)
            if at.is_none() && renamed {
                let groups: Vec<String> = (article.stored.renamed.iter())
                    .filter(|(n, _)| n == folded)
                    .map(|(_, group)| group.clone())
                    .collect();
                for group in groups {
                    let other = article.touched(&group)?;
                    if let Some(found) = article.touched[other].comments.iter().position(rendered) {
                        (t, at) = (other, Some(found));
                        break;
                    }
                }
            }
        }
        let Touched { comments, dirty, added, .. } = &mut article.touched[t];
        let stamp = if cut { cut_stamp(order) } else { order };
        match at.map(|at| &mut comments[at]) {
            Some(s) => match s.versions.iter().position(|v| *v == e.id) {
                Some(v) => {
                    // Seen again: stamped by its earliest whole sighting
                    // (while it has none, by its earliest cut one).
                    let old = s.orders[v];
                    if earlier_stamp(&stamp, &old) {
                        s.orders[v] = stamp;
                        s.sort_versions();
                        *dirty = true;
                        if is_cut(&old) && !cut {
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
                comments.push(StoredEntry {
                    posted_at: c.posted_at,
                    versions: vec![e.id],
                    seqs: vec![e.seq],
                    orders: vec![stamp],
                    aliases: Vec::new(),
                    renderings: Vec::new(),
                    author: author.clone(),
                });
                *dirty = true;
                *added += 1;
                if cut {
                    self.cut_markers.push((e.id, true));
                }
            }
        }
        // The display name is the form of the earliest sighting (ties: the
        // first in page order): every sighting in a capture has its order.
        if !self.displays.contains_key(folded) {
            self.displays.insert(folded.clone(), (author.clone(), order));
        }
        Ok(())
    }

    /// Writes the groups the capture changed and posts what it changed of
    /// each author: the comments it adds under each article, and with the
    /// author's first posting the name as the capture shows it. A capture
    /// that adds nothing of an author posts nothing unless it was applied
    /// `thorough`ly (out of observation order): otherwise an earlier-observed
    /// capture of the same article, posted before, sighted the author at an
    /// order no greater, so the name could not be the earliest.
    fn write(mut self, tx: &mut StateTx<'_>, thorough: bool) -> Result<()> {
        let mut postings = Vec::new();
        for mut article in self.articles {
            if article.aside {
                continue;
            }
            let mut changed = false;
            for t in article.touched {
                if t.added > 0 || (thorough && self.displays.contains_key(&t.folded)) {
                    let display = self.displays.remove(&t.folded);
                    postings.push(Posting {
                        folded: t.folded.clone(),
                        article: article.reference,
                        delta: t.added,
                        display,
                    });
                }
                if t.dirty {
                    article.stored.set(&t.folded, &t.comments)?;
                    changed = true;
                }
            }
            if changed || article.seen_changed {
                seal_captures(tx, &mut article.stored)?;
                tx.put_packed(groups_key(&article.reference), &article.stored)?;
            }
        }
        // Names shown only under articles that are rebuilt (a backfill
        // can show one earlier than any posted).
        // (In name order: a map's order is not the same in every process.)
        let mut shown: Vec<_> = (self.displays.into_iter())
            .filter_map(|(folded, display)| Some((*self.shown_under.get(&folded)?, folded, display)))
            .collect();
        shown.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        for (article, folded, display) in shown {
            postings.push(Posting { folded, article, delta: 0, display: Some(display) });
        }
        for (id, set) in self.cut_markers {
            if set {
                tx.put(cut_key(&id), Vec::new());
            } else {
                tx.delete(cut_key(&id));
            }
        }
        for posting in &postings {
            post(tx, posting)?;
        }
        Ok(())
    }
}

/// Applies a capture. Ordinarily only its document's new comments are taken
/// in (each author and article group read and written once per capture):
/// every comment it shows again was taken in by an earlier-observed capture.
/// An article the capture was observed before another capture of (a
/// backfill) is rebuilt from all its captures ([`rebuild_article`]), and
/// every capture of a replay that leaves some out (`replay --until TIME`)
/// takes in every comment it shows (a comment `dedupe --apply` folded as
/// the one it was folded into, as the thread has it), so that stamps and
/// display names follow observation order whatever the ingest order.
fn take_in_capture(entry: &LogEntry, cap: &crate::model::Capture, tx: &mut StateTx<'_>) -> Result<()> {
    let order = order_of(entry, cap);
    let complete = cap.is_complete();
    let thorough = tx.leaves_captures_out();
    let mut intake = Intake::default();
    // Each article of the capture: its value, read once, its latest
    // observation moved up to this capture's, the capture added to its
    // list; or set aside, to be rebuilt.
    let mut sections = Vec::with_capacity(cap.articles.len());
    for a in &cap.articles {
        sections.push(Intake::article(&mut intake.articles, tx, &a.key, order)?);
    }
    for article in &mut intake.articles {
        if article.stored.captures.last().is_some_and(|last| *last >= entry.seq) {
            // Taken in before (the view takes captures in in log order):
            // nothing to take in again.
            article.aside = true;
        } else if article.existed && article.stored.latest > order {
            article.aside = true;
            article.rebuild = true;
        } else {
            article.stored.latest = article.stored.latest.max(order);
            let at = article.stored.captures.partition_point(|s| *s < entry.seq);
            article.stored.captures.insert(at, entry.seq);
            article.seen_changed = true;
        }
    }
    let shown =
        cap.articles.iter().enumerate().filter_map(|(i, a)| a.article.as_ref().map(|v| (i as u32, v)));
    for (section, item) in shown {
        if intake.articles[sections[section as usize]].aside {
            continue;
        }
        let found = match tx.document_entry(&item.id) {
            Some(e) => Some(std::sync::Arc::new(e.clone())),
            None if thorough => tx.entry_ref(&item.id)?,
            None => {
                // A version shown again: its title is known, its stamp
                // moves up to this sighting (the title shown is the one
                // seen last).
                let article = &mut intake.articles[sections[section as usize]];
                if article.stored.titles.sighting_again(&item.id, order, section) {
                    article.seen_changed = true;
                }
                continue;
            }
        };
        let Some(e) = found else { continue };
        let Event::Article(a) = &e.event else { continue };
        let Some(title) = &a.title else { continue };
        // (A version of an article the capture has no section for, which
        // cairn's parsers do not make, has its titles taken in alike.)
        let at = Intake::article(&mut intake.articles, tx, &a.key, order)?;
        let article = &mut intake.articles[at];
        if !article.aside && article.stored.titles.sighting(e.id, order, section, title) {
            article.seen_changed = true;
        }
    }
    let may_be_cut = tx.may_have_prefix(b"x/")?;
    let may_be_folded = tx.may_have_prefix(FOLDED)?;
    let comments = MAPS.comments(tx)?;
    let mut read: crate::model::IdMap<std::sync::Arc<LogEntry>> = Default::default();
    for (a, &at) in cap.articles.iter().zip(&sections) {
        // (Each comment's folds are filed under its article's kept key.)
        let kept = intake.articles[at].stored.article.clone();
        if intake.articles[at].aside {
            if intake.articles[at].rebuild {
                // The names the backfill shows, for the authors' display
                // names (the comments are the rebuild's).
                // (Each segment decoded once, not once per comment.)
                let reference = intake.articles[at].reference;
                for item in &a.comments {
                    if may_be_folded && comments.canon_id(&kept, &item.id)? != item.id {
                        continue;
                    }
                    let e = match tx.document_entry(&item.id) {
                        Some(e) => std::sync::Arc::new(e.clone()),
                        None => match tx.entry_via(&mut read, &item.id)? {
                            Some(e) => e,
                            None => continue,
                        },
                    };
                    if let Event::Comment(crate::model::Comment { author: Some(author), .. }) = &e.event {
                        let folded = fold(author);
                        if !intake.displays.contains_key(&folded) {
                            intake.shown_under.insert(folded.clone(), reference);
                            intake.displays.insert(folded, (author.clone(), order));
                        }
                    }
                }
            }
            continue;
        }
        for item in &a.comments {
            let cut = item.possibly_truncated && !complete;
            if thorough {
                // A comment `dedupe --apply` folded into another is a
                // sighting of the one kept, as the thread has it (a
                // document stays open across the captures a replay leaves
                // out, so a folded one can be new in its document).
                let id = if may_be_folded { comments.canon_id(&kept, &item.id)? } else { item.id };
                if let Some(e) = tx.document_entry(&id) {
                    intake.sighting(tx, e, cap, order, cut)?;
                } else if let Some(e) = tx.entry_via(&mut read, &id)? {
                    intake.sighting(tx, &e, cap, order, cut)?;
                }
            } else if let Some(e) = tx.document_entry(&item.id) {
                // New in its document: no merge has folded it.
                intake.sighting(tx, e, cap, order, cut)?;
            } else if may_be_cut && !cut && tx.get(&cut_key(&item.id))?.is_some() {
                // A comment `dedupe --apply` folded into another is not taken
                // in again: it left the timelines with the merge.
                if may_be_folded && comments.canon_id(&kept, &item.id)? != item.id {
                    continue;
                }
                if let Some(e) = tx.entry_via(&mut read, &item.id)? {
                    intake.sighting(tx, &e, cap, order, cut)?;
                }
            }
        }
    }
    drop(comments);
    let rebuilt: Vec<ArticleGroups> =
        intake.articles.iter_mut().filter(|a| a.rebuild).map(|a| std::mem::take(&mut a.stored)).collect();
    intake.write(tx, thorough)?;
    for stored in rebuilt {
        let key = stored.article.clone();
        rebuild_article(tx, &key, vec![stored], Some(entry.seq), &mut read)?;
    }
    Ok(())
}

/// A [`Posting`] read in place (the same bytes: a `String` and a `&str`
/// are encoded alike), so that summing a list allocates per author, not
/// per posting.
#[derive(bincode::BorrowDecode)]
struct PostingRef<'a> {
    folded: &'a str,
    article: ArticleRef,
    delta: i64,
    display: Option<(&'a str, Order)>,
}

/// An author as the postings of their bucket sum them up.
struct Standing {
    display: Option<(String, Order)>,
    comments: i64,
    /// Their articles with the sum of their postings there, in the order
    /// first posted (kept only when asked for).
    articles: Vec<(ArticleRef, i64)>,
    article_at: std::collections::HashMap<ArticleRef, usize, foldhash::fast::RandomState>,
}

/// What the postings of bucket `b` say of each author in it (or of
/// `only`, folded, alone): their info and, `with_articles`, their articles
/// with a positive count, in the order first posted.
fn standings(
    tree: &dyn crate::store::KvTree,
    b: u8,
    only: Option<&str>,
    with_articles: bool,
) -> Result<Vec<(AuthorInfo, Vec<ArticleRef>)>> {
    const WHAT: &str = "the authors view's postings";
    let mut all: NameMap<Standing> = Default::default();
    crate::views::chunks::each_record(tree, &bucket_key(b), WHAT, |record| {
        let p: PostingRef<'_> = match bincode::borrow_decode_from_slice(record, bincode::config::standard()) {
            Ok((p, read)) if read == record.len() => p,
            _ => return Err(crate::error::Error::Corrupt(format!("{WHAT}: a posting does not decode"))),
        };
        if only.is_some_and(|o| o != p.folded) {
            return Ok(());
        }
        let s = match all.get_mut(p.folded) {
            Some(s) => s,
            None => {
                if bucket_of(p.folded) != b {
                    return Err(crate::error::Error::Corrupt(format!(
                        "{WHAT}: {:?} is in bucket {b}, not its own",
                        p.folded
                    )));
                }
                all.entry(p.folded.to_string()).or_insert_with(|| Standing {
                    display: None,
                    comments: 0,
                    articles: Vec::new(),
                    article_at: Default::default(),
                })
            }
        };
        s.comments += p.delta;
        if let Some((name, order)) = p.display {
            if s.display.as_ref().is_none_or(|(_, at)| order < *at) {
                s.display = Some((name.to_string(), order));
            }
        }
        if with_articles {
            match s.article_at.get(&p.article) {
                Some(i) => s.articles[*i].1 += p.delta,
                None => {
                    s.article_at.insert(p.article, s.articles.len());
                    s.articles.push((p.article, p.delta));
                }
            }
        }
        Ok(())
    })?;
    all.into_iter()
        .map(|(folded, s)| {
            let Some((display, display_order)) = s.display else {
                return Err(crate::error::Error::Corrupt(format!("{WHAT} of {folded:?} give no name")));
            };
            let info = AuthorInfo { display, comments: s.comments.max(0) as u64, display_order };
            Ok((info, s.articles.into_iter().filter(|(_, n)| *n > 0).map(|(r, _)| r).collect()))
        })
        // An author none of whose comments is left (`dedupe --apply` folded
        // each into a comment under another name: one it folds alike and
        // this view does not) is no author: no thread shows their name.
        .filter(|standing| !matches!(standing, Ok((info, _)) if info.comments == 0))
        .collect()
}

/// Every author with their comment count, most comments first (ties by
/// name).
pub fn list_authors(archive: &Archive) -> Result<Vec<AuthorInfo>> {
    let tree = view_tree(archive, NAME)?;
    let mut all: Vec<AuthorInfo> = Vec::new();
    for b in 0..BUCKETS {
        all.extend(standings(tree.as_ref(), b, None, false)?.into_iter().map(|(info, _)| info));
    }
    all.sort_by(|a, b| b.comments.cmp(&a.comments).then_with(|| a.display.cmp(&b.display)));
    Ok(all)
}

/// One author's info and timeline (sorted by posted time), if known.
pub fn timeline(archive: &Archive, name: &str) -> Result<Option<(AuthorInfo, Vec<TimelineEntry>)>> {
    Ok(timeline_titled(archive, name)?.map(|(info, entries, _)| (info, entries)))
}

/// The latest title of each article of a timeline, as [`title_of`] gives it.
pub type Titled = std::collections::HashMap<ArticleKey, Option<String>>;

/// [`timeline`], with the latest title of each of the author's articles,
/// read from the values the timeline is read from.
pub fn timeline_titled(
    archive: &Archive,
    name: &str,
) -> Result<Option<(AuthorInfo, Vec<TimelineEntry>, Titled)>> {
    let tree = view_tree(archive, NAME)?;
    let folded = fold(name);
    let Some((info, articles)) = standings(tree.as_ref(), bucket_of(&folded), Some(&folded), true)?.pop()
    else {
        return Ok(None);
    };
    let missing = |what: String| {
        crate::error::Error::Corrupt(format!("the authors view of {name:?}: {what} is missing"))
    };
    type Read = (Vec<([u8; 12], TimelineEntry)>, Vec<(ArticleKey, Option<String>)>);
    let read = |refs: &[ArticleRef]| -> Result<Read> {
        let mut entries = Vec::new();
        let mut titles = Vec::with_capacity(refs.len());
        for r in refs {
            let bytes = tree
                .get(&groups_key(r))?
                .ok_or_else(|| missing(format!("article {}", crate::model::ids::to_hex(r))))?;
            let stored = decode_groups(&bytes)?;
            let Some(group) = stored.group(&folded)? else {
                return Err(missing(format!("their group under {}", stored.article.as_str())));
            };
            titles.push((stored.article.clone(), stored.titles.current().map(str::to_string)));
            entries.extend(timeline_entries(&stored.article, group));
        }
        Ok((entries, titles))
    };
    // An author of many articles has their groups read on two threads,
    // half of the articles each (the entries in the same order as on one).
    let (entries, titles) = if articles.len() < PARALLEL_ARTICLES {
        read(&articles)?
    } else {
        let (first, second) =
            crate::store::on_two_halves(&articles, read, "an authors view reader thread panicked");
        // The first half's error first, as one thread would meet it.
        let (mut entries, mut titles) = first?;
        let (more, more_titles) = second?;
        entries.extend(more);
        titles.extend(more_titles);
        (entries, titles)
    };
    Ok(Some((info, sorted(entries), titles.into_iter().collect())))
}

/// Authors of at least this many articles have their groups read on two
/// threads ([`timeline`]).
pub(crate) const PARALLEL_ARTICLES: usize = 256;

/// A group's comments as timeline entries, each with its sort key.
fn timeline_entries(
    article: &ArticleKey,
    group: Vec<StoredEntry>,
) -> impl Iterator<Item = ([u8; 12], TimelineEntry)> + '_ {
    group.into_iter().map(move |e| {
        (
            sort_key(e.posted_at.as_ref()),
            TimelineEntry {
                article: article.clone(),
                posted_at: e.posted_at,
                whole: e.orders.iter().filter(|o| !is_cut(o)).count(),
                versions: e.versions,
                seqs: e.seqs,
                aliases: e.aliases,
            },
        )
    })
}

/// Sorted by instant, then article, then posted time as written (or the id
/// when there is none): the last only within a run of equal instant and
/// article (undated comments under one article), computed once per comment
/// there.
fn sorted(mut entries: Vec<([u8; 12], TimelineEntry)>) -> Vec<TimelineEntry> {
    entries.sort_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| a.article.cmp(&b.article)));
    for run in entries.chunk_by_mut(|(ka, a), (kb, b)| ka == kb && a.article == b.article) {
        if run.len() > 1 {
            run.sort_by_cached_key(|(_, e)| match &e.posted_at {
                Some(t) => t.canonical(),
                None => e.versions.first().map_or_else(String::new, |id| format!("#{id}")),
            });
        }
    }
    entries.into_iter().map(|(_, e)| e).collect()
}

/// The timelines of several authors (as [`list_authors`] gives them), from
/// one pass over every article's groups: where [`timeline`] for each would
/// read an article once per author under it, so that an article of many
/// commenters would be read as many times. `cairn site` takes its authors
/// in batches of a bounded number of comments.
pub fn timelines(archive: &Archive, authors: &[AuthorInfo]) -> Result<Vec<(AuthorInfo, Vec<TimelineEntry>)>> {
    let tree = view_tree(archive, NAME)?;
    let at: NameMap<usize> = authors.iter().enumerate().map(|(i, a)| (fold(&a.display), i)).collect();
    let mut entries: Vec<Vec<([u8; 12], TimelineEntry)>> = authors.iter().map(|_| Vec::new()).collect();
    for kv in tree.scan_prefix(b"g/") {
        let (_, bytes) = kv?;
        let stored = decode_groups(&bytes)?;
        for (name, group) in &stored.groups {
            if let Some(i) = at.get(name) {
                entries[*i].extend(timeline_entries(&stored.article, decode_group(group)?));
            }
        }
    }
    Ok(authors.iter().cloned().zip(entries.into_iter().map(sorted)).collect())
}

/// The latest title of an article, as this view knows it.
pub fn title_of(archive: &Archive, key: &ArticleKey) -> Result<Option<String>> {
    let tree = view_tree(archive, NAME)?;
    let Some(v) = tree.get(&groups_key(&article_ref(key)))? else { return Ok(None) };
    let seen: ArticleSeen = envelope::decode_native_prefix(&v, "the authors view's titles")?;
    same_article(&seen.article, key, "titles")?;
    Ok(seen.titles.current().map(str::to_string))
}

/// The article a value read under `key`'s reference names (its `what`) is
/// that article.
fn same_article(stored: &ArticleKey, key: &ArticleKey, what: &str) -> Result<()> {
    if stored == key {
        return Ok(());
    }
    Err(crate::error::Error::Corrupt(format!(
        "the authors view's {what} for {} name another article, {}",
        key.as_str(),
        stored.as_str()
    )))
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
                renderings: vec![],
                author: "Ä".into(),
            })
            .collect();
        comments.push(StoredEntry {
            posted_at: None,
            versions: vec![],
            seqs: vec![],
            orders: vec![],
            aliases: vec![],
            renderings: vec![],
            author: String::new(),
        });
        assert!(comments[..3].iter().all(|c| c.posted_at.is_some()));
        let article = ArticleKey("https://example.com/a".into());
        let native = |c: &Vec<StoredEntry>| envelope::encode_native_body(c).unwrap();
        let serde =
            |c: &Vec<StoredEntry>| bincode::serde::encode_to_vec(c, bincode::config::standard()).unwrap();
        // One stored as is, one large enough to be compressed.
        let many: Vec<StoredEntry> = (0..20).flat_map(|_| comments.clone()).collect();
        let mut titles = Titles::default();
        titles.sighting(id(7), (1_333_000_000, 5, 9), 0, "A title");
        let group = ArticleGroups {
            article: article.clone(),
            groups: vec![("a".into(), native(&comments))],
            ..Default::default()
        };
        let big = ArticleGroups {
            article,
            latest: (1_333_000_000, 5, 9),
            titles,
            groups: vec![("a".into(), native(&comments)), ("b c".into(), native(&many))],
            captures: vec![Seq(3), Seq(1 << 40)],
            sealed: 2,
            renamed: vec![("ｂｏｂ".into(), "bob".into())],
        };
        assert!(envelope::encode_body(&group).unwrap().len() < 512);
        assert!(envelope::encode(&big).unwrap().len() < envelope::encode_body(&big).unwrap().len());
        for value in [&group, &big] {
            let bytes = envelope::encode(value).unwrap();
            assert_eq!(&envelope::decode_native::<ArticleGroups>(&bytes, "g").unwrap(), value);
            assert_eq!(&envelope::decode::<ArticleGroups>(&bytes, "g").unwrap(), value);
        }
        // Each author's group: the bytes serde writes, read back by both.
        for c in [&comments, &many] {
            assert_eq!(native(c), serde(c));
            assert_eq!(&decode_group(&serde(c)).unwrap(), c);
        }
        let mut cut = native(&comments);
        cut.truncate(cut.len() - 1);
        assert!(decode_group(&cut).is_err());
        // A damaged body is an error from both readers.
        let mut raw = bincode::serde::encode_to_vec(&group, bincode::config::standard()).unwrap();
        raw.truncate(raw.len() - 1);
        let sealed = envelope::seal_raw(&raw);
        assert!(envelope::decode_native::<ArticleGroups>(&sealed, "g").is_err());
        assert!(envelope::decode::<ArticleGroups>(&sealed, "g").is_err());
    }
}
