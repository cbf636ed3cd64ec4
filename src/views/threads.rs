//! The threads view: per article, the latest article version and its
//! comments in page order, each once (as its latest version, with all its
//! versions), nested by reply structure, with sightings and status.
//!
//! State: `a/KEY` holds, one after the other, a small [`ArticleSummary`]
//! for listings and lookups, what each capture changed
//! ([`super::changes`]: the latest records, from the differences that
//! applying the capture to the state yields), and the article's
//! [`ThreadState`]. A listing decodes the summary alone, `cairn changes`
//! the records after it. Bodies are not copied into the view: rendering
//! reads them from the log by id. (Up to version 8 the summary had a key
//! of its own, `i/KEY`, and up to version 7 the records, `r/KEY`: each a
//! sled key written at every capture beside the state, which a first
//! ingest of small pages paid for; docs/performance.md, "Session 21".)
//!
//! The state's list of captures is kept in chunks (since view version 7),
//! as the change records are: `a/KEY` holds the latest captures (1 to
//! 256) and the state's other fields, and each full chunk of
//! older captures is sealed under `C/KEY\0N` (N from 0, big-endian
//! u32). A capture that comes last in observation order (the usual case)
//! reads and writes only the latest; a backfill or a merge reads the state
//! whole, rebuilds it, and writes every chunk again. The stored form is a
//! function of the captures alone, so incremental maintenance and a replay
//! store the same values.

use crate::error::{Error, Result};
use crate::model::normalize::{canonical_url, normalize_line};
use crate::model::{Article, ArticleKey, Event, EventId, LogEntry, Merge, MergeKind, Seq, Timestamp};
use crate::store::{envelope, Archive};
use crate::views::changes::StoredRecords;
use crate::views::thread_state::{Applied, CaptureRef, MergeMaps, Slot, ThreadState};
use crate::views::{changes, chunks, view_tree, Projection, StateTx};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The view's name.
pub const NAME: &str = "threads";

/// One article in listings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct ArticleSummary {
    /// The article key.
    pub key: ArticleKey,
    /// The latest article version, when any was captured.
    pub latest: Option<EventId>,
    /// All article version ids, oldest first.
    pub versions: Vec<EventId>,
    /// Its title.
    pub title: Option<String>,
    /// Its URL.
    pub url: Option<String>,
    /// Its published date.
    pub published: Option<Timestamp>,
    /// Comments (slots) known.
    pub comments: u64,
    /// Captures that showed it.
    pub captures: u64,
    /// Its latest capture.
    pub last_capture: Option<CaptureRef>,
    /// Article keys merged into this one by `dedupe --apply`.
    pub aliases: Vec<ArticleKey>,
}

impl ArticleSummary {
    /// Whether `key` is this article's key or one merged into it.
    pub fn covers(&self, key: &ArticleKey) -> bool {
        self.key == *key || self.aliases.contains(key)
    }
}

/// Every article key, merged ones too, to its article's summary.
pub fn by_key(all: &[ArticleSummary]) -> std::collections::HashMap<&ArticleKey, &ArticleSummary> {
    all.iter().flat_map(|a| std::iter::once(&a.key).chain(&a.aliases).map(move |k| (k, a))).collect()
}

pub(super) fn state_key(key: &ArticleKey) -> Vec<u8> {
    [b"a/".as_slice(), key.as_str().as_bytes()].concat()
}

/// The threads projection.
pub struct ThreadsView;

/// Merge maps of the threads view (`m/…`, `k/…`).
const MAPS: MergeMaps = MergeMaps { prefix: "" };

/// Captures per sealed chunk of a thread state's list.
#[cfg(not(test))]
pub(crate) const CAPTURE_CHUNK: usize = 256;
/// Small under test, so that the tests' few captures fill chunks.
#[cfg(test)]
pub(crate) const CAPTURE_CHUNK: usize = 3;

/// The prefix of the sealed chunks' keys ([`chunks`]).
const CHUNKS: &[u8] = b"C/";

fn capture_chunk_key(key: &ArticleKey, n: u32) -> Vec<u8> {
    chunks::key(CHUNKS, key.as_str().as_bytes(), n)
}

/// Chunks sealed in the stored form of a state of `count` captures: all
/// full ones but the last, so that `a/KEY` keeps at least one.
fn sealed_chunks(count: usize) -> usize {
    count.saturating_sub(1) / CAPTURE_CHUNK
}

/// What `a/KEY` holds: the summary, the latest change records and the
/// state (its latest captures), encoded one after the other, so that a
/// reader can stop after the part it wants ([`envelope::decode_native_prefix`]).
type Stored = (ArticleSummary, StoredRecords, ThreadState);

/// The same, borrowed: encoded alike.
type StoredRef<'a> = (&'a ArticleSummary, &'a StoredRecords, &'a ThreadState);

/// The article's state (its latest captures), latest change records and
/// summary; no summary when the article is new (no capture was applied to
/// it yet, so the view holds nothing of it).
fn load(tx: &StateTx<'_>, key: &ArticleKey) -> Result<(ThreadState, StoredRecords, Option<ArticleSummary>)> {
    Ok(match tx.get_packed::<Stored>(&state_key(key))? {
        Some((summary, records, state)) => (state, records, Some(summary)),
        None => (ThreadState::new(key.clone()), StoredRecords::default(), None),
    })
}

/// The article's summary, latest change records, and state with every
/// capture (its sealed chunks read back).
fn load_whole(tx: &StateTx<'_>, key: &ArticleKey) -> Result<Option<Stored>> {
    let Some((summary, records, mut state)) = tx.get_packed::<Stored>(&state_key(key))? else {
        return Ok(None);
    };
    whole(&mut state, |n| tx.get_packed(&capture_chunk_key(key, n)))?;
    Ok(Some((summary, records, state)))
}

/// Puts the sealed captures `chunk(N)` gives back in front of `state`'s.
fn whole(state: &mut ThreadState, chunk: impl FnMut(u32) -> Result<Option<Vec<CaptureRef>>>) -> Result<()> {
    if state.captures_before == 0 {
        return Ok(());
    }
    let n = (state.captures_before as usize / CAPTURE_CHUNK) as u32;
    let key = &state.key;
    let missing = |i| format!("the threads view's state of {key}: capture chunk {i} is missing");
    let mut captures = chunks::read(n, missing, chunk)?;
    if captures.len() != state.captures_before as usize {
        return Err(Error::Corrupt(format!(
            "the threads view's state of {}: its capture chunks hold {} captures, not {}",
            state.key,
            captures.len(),
            state.captures_before
        )));
    }
    captures.append(&mut state.captures);
    state.captures = captures;
    state.captures_before = 0;
    state.complete_before = None;
    Ok(())
}

/// Writes `state` in its stored form: the chunks it fills that are not
/// sealed yet (all of them when it is whole), then `a/KEY` with its
/// summary, the latest change records and the rest. Leaves `state` in that
/// form (its latest captures only).
fn store(
    tx: &mut StateTx<'_>,
    state: &mut ThreadState,
    records: &StoredRecords,
    summary: &ArticleSummary,
) -> Result<()> {
    let count = state.capture_count();
    let sealed = sealed_chunks(count);
    let before = state.captures_before as usize;
    if before == 0 && count > CAPTURE_CHUNK {
        // Written whole (rebuilt): chunks the stored form had past these
        // go. A rebuild never drops a capture, so a state of one chunk or
        // less replaces one that had none.
        if let Some((_, _, old)) = tx.get_packed::<Stored>(&state_key(&state.key))? {
            let old_sealed = old.captures_before as usize / CAPTURE_CHUNK;
            chunks::delete(tx, CHUNKS, &state.key, sealed as u32..old_sealed as u32);
        }
    }
    let first_new = before / CAPTURE_CHUNK;
    if sealed > first_new {
        let rest = state.captures.split_off(sealed * CAPTURE_CHUNK - before);
        let sealing = std::mem::replace(&mut state.captures, rest);
        if let Some(i) = sealing.iter().rposition(|c| c.complete) {
            state.complete_before = Some((before + i) as u32);
        }
        chunks::write(tx, CHUNKS, &state.key, first_new as u32, &sealing, CAPTURE_CHUNK)?;
        state.captures_before = (sealed * CAPTURE_CHUNK) as u32;
    }
    let stored: StoredRef<'_> = (summary, records, state);
    tx.put_packed(state_key(&state.key), &stored)
}

/// Removes the article's state, its sealed captures, its change records
/// and its summary.
fn remove_state(tx: &mut StateTx<'_>, state: &ThreadState, records: &StoredRecords) {
    chunks::delete(tx, CHUNKS, &state.key, 0..sealed_chunks(state.capture_count()) as u32);
    changes::remove_sealed(tx, &state.key, records);
    tx.delete(state_key(&state.key));
}

/// The article's summary `stored` (`None`: a new one) brought up to date
/// with its state; the title, URL and published date come from the latest
/// article version (read from the log when it changed), also when it is
/// the version of an article merged into this one, as `thread` and the
/// tables show it.
fn summarize(
    tx: &StateTx<'_>,
    stored: Option<ArticleSummary>,
    state: &ThreadState,
) -> Result<ArticleSummary> {
    let mut summary: ArticleSummary =
        stored.unwrap_or_else(|| ArticleSummary { key: state.key.clone(), ..Default::default() });
    let latest = state.current_article();
    if summary.latest != latest {
        if let Some(id) = &latest {
            if let Some(Event::Article(a)) = tx.entry_ref(id)?.as_deref().map(|e| &e.event) {
                summary.title = a.title.clone();
                summary.url = a.url.clone();
                summary.published = a.published;
            }
        }
    }
    summary.latest = latest;
    summary.versions = state.article_versions.clone();
    summary.comments = state.slots.len() as u64;
    summary.captures = state.capture_count() as u64;
    summary.last_capture = state.captures.last().cloned();
    Ok(summary)
}

/// Rebuilds the threads comment merges put off ([`apply_merge`]) from
/// their captures, with the merge maps as they are now: the same state as
/// a rebuild after each merge (each rebuild starts from the captures), once.
fn rebuild_merged(tx: &mut StateTx<'_>) -> Result<()> {
    MAPS.defer_touched(tx)?;
    for key in tx.take_deferred() {
        let key = ArticleKey(
            String::from_utf8(key)
                .map_err(|_| Error::Internal("a deferred thread key is not text".into()))?,
        );
        if let Some((summary, old, prior)) = load_whole(tx, &key)? {
            let (mut state, diffs) = MAPS.rebuild(tx, &key, vec![prior], None)?;
            let records = changes::replace(tx, &key, &old, diffs)?;
            let summary = summarize(tx, Some(summary), &state)?;
            store(tx, &mut state, &records, &summary)?;
        }
    }
    Ok(())
}

fn apply_merge(tx: &mut StateTx<'_>, m: &Merge) -> Result<()> {
    match m.kind {
        MergeKind::Comment => {
            // The maps now; each thread rebuilt once the run of merges
            // ends (600 merges into one thread of 600 comments rebuilt it
            // 600 times: 1.3 s, 15 s for 2,000).
            MAPS.fold_comments(tx, m)
        }
        MergeKind::Article => {
            let (key, folded) = MAPS.fold_articles(tx, m)?;
            let (own_summary, old, own) = match load_whole(tx, &key)? {
                Some((summary, records, state)) => (Some(summary), records, state),
                None => (None, StoredRecords::default(), ThreadState::new(key.clone())),
            };
            let mut prior = vec![own];
            let mut aliases = Vec::new();
            for fkey in folded {
                if let Some((summary, records, s)) = load_whole(tx, &fkey)? {
                    remove_state(tx, &s, &records);
                    aliases.extend(summary.aliases);
                    prior.push(s);
                }
                aliases.push(fkey);
            }
            // The current version is the one the latest capture showed,
            // whichever article's key it was under: what any later rebuild
            // of the thread (a comment merge, a backfill) makes it too.
            let (mut state, diffs) = MAPS.rebuild(tx, &key, prior, None)?;
            let records = changes::replace(tx, &key, &old, diffs)?;
            let mut summary = summarize(tx, own_summary, &state)?;
            for a in aliases {
                if !summary.aliases.contains(&a) {
                    summary.aliases.push(a);
                }
            }
            store(tx, &mut state, &records, &summary)
        }
    }
}

impl Projection for ThreadsView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 4: an article's summary carries its latest capture whole.
        // 5: the change records (`r/KEY`) are kept here.
        // 6: ... in chunks (`R/KEY\0N`) behind the latest (`r/KEY`).
        // 7: the state's captures likewise (`C/KEY\0N`).
        // 8: the latest records in `a/KEY` after the state (no `r/KEY`).
        // 9: the summary in `a/KEY` too, first (no `i/KEY`).
        // 10: after an article merge the latest version is the last one
        // the captures showed first, as any rebuild makes it, and the
        // summary's title, URL and date are that version's.
        // 11: the current version is the one the latest capture that
        // showed one showed (`ThreadState::article_shown`), not the one
        // first shown last: a title changed and changed back is back.
        // 12: a capture shows a slot once: a comment new in it goes to a
        // slot of its author and time it does not show otherwise.
        // 13: a thread keeps the author and time of comments merged into
        // its slots (`ThreadState::merged_renderings`), and a new comment
        // goes to a slot by those too; of two versions seen cut off, one
        // that begins the other, either way, is no edit.
        // 14: a comment seen cut off is a sighting of the latest-seen
        // version whose text it begins (so an earlier text seen again cut
        // off is current again, and the change records say so); of two
        // versions of one comment side by side, the capture shows the
        // current one in its change record.
        // 15: a comment cut off between a letter and the combining mark
        // after it begins the whole text (`thread_state::text_begins`):
        // a sighting of it, not another text.
        // 16: also one cut between two combining marks (decomposition
        // puts marks in canonical order, not the page's).
        // 17: comment folds in one value per article (`m/KEY`), not one
        // key per folded comment (`m/ID`).
        17
    }

    fn apply(&self, entry: &LogEntry, tx: &mut StateTx<'_>) -> Result<()> {
        // Threads a run of comment merges touched are rebuilt once, before
        // anything else reads them.
        if tx.has_deferred() && !matches!(&entry.event, Event::Merge(m) if m.kind == MergeKind::Comment) {
            rebuild_merged(tx)?;
        }
        match &entry.event {
            // Article versions are taken in through the captures that show
            // them, in observation order.
            Event::Article(_) | Event::Comment(_) => Ok(()),
            Event::Capture(c) => {
                for seen in MAPS.group(tx, c)? {
                    let (mut state, mut records, summary) = load(tx, &seen.key)?;
                    let from = state.captures.last().cloned();
                    let capture = CaptureRef::new(entry, c, seen.article.as_ref().map(|a| a.id));
                    if !state.sorts_last(&capture) {
                        // Applied before, or a backfill: either is told,
                        // and rebuilt, from every capture.
                        whole(&mut state, |n| tx.get_packed(&capture_chunk_key(&seen.key, n)))?;
                    }
                    match MAPS.apply(tx, &mut state, capture.clone(), &seen)? {
                        Applied::Duplicate => continue,
                        Applied::Appended(diff) => {
                            changes::append(tx, &seen.key, &mut records, from.as_ref(), &capture, diff)?
                        }
                        Applied::Rebuilt(diffs) => {
                            records = changes::replace(tx, &seen.key, &records, diffs)?
                        }
                    }
                    let summary = summarize(tx, summary, &state)?;
                    store(tx, &mut state, &records, &summary)?;
                }
                Ok(())
            }
            Event::Merge(m) => apply_merge(tx, m),
        }
    }

    fn settle(&self, tx: &mut StateTx<'_>) -> Result<()> {
        rebuild_merged(tx)
    }
}

/// Every article, sorted by key.
pub fn list_articles(archive: &Archive) -> Result<Vec<ArticleSummary>> {
    let mut all = Vec::new();
    each_article(archive, |a| {
        all.push(a);
        Ok(())
    })?;
    Ok(all)
}

/// Calls `f` with every article's summary, sorted by key, one at a time.
pub fn each_article(archive: &Archive, mut f: impl FnMut(ArticleSummary) -> Result<()>) -> Result<()> {
    let tree = view_tree(archive, NAME)?;
    for kv in tree.scan_prefix(b"a/") {
        let (_, v) = kv?;
        f(envelope::decode_native_prefix(&v, "article summary")?)?;
    }
    Ok(())
}

/// The latest change records in the value of `a/KEY` (the state after
/// them is not decoded).
pub(super) fn stored_records(value: &[u8]) -> Result<StoredRecords> {
    let (_, records): (ArticleSummary, StoredRecords) =
        envelope::decode_native_prefix(value, "change records")?;
    Ok(records)
}

/// The threads view's merge maps as its stored `tree` holds them: the key
/// an article's thread is filed under now (`dedupe --apply` folds an
/// article's keys into the kept one's), the id a comment was folded into,
/// a capture's sections as the view groups them.
pub fn merges(tree: &dyn crate::store::KvTree) -> crate::views::thread_state::StoredMaps<'_> {
    MAPS.stored(tree)
}

/// The thread state of `key`.
pub fn load_thread(archive: &Archive, key: &ArticleKey) -> Result<Option<ThreadState>> {
    load_thread_in(view_tree(archive, NAME)?.as_ref(), key)
}

/// The thread state of `key` in the threads view's `tree`.
pub fn load_thread_in(tree: &dyn crate::store::KvTree, key: &ArticleKey) -> Result<Option<ThreadState>> {
    let what = format!("thread {key}");
    let Some(v) = tree.get(&state_key(key))? else { return Ok(None) };
    let (_, _, mut state): Stored = envelope::decode_native(&v, &what)?;
    whole(&mut state, |n| {
        tree.get(&capture_chunk_key(key, n))?.map(|c| envelope::decode_native(&c, &what)).transpose()
    })?;
    Ok(Some(state))
}

/// Finds one article by an id prefix (of any of its versions), a URL, an
/// exact key, or a title substring (case-insensitive).
pub fn resolve_article(archive: &Archive, query: &str) -> Result<ArticleSummary> {
    if let Some(found) = by_version_id(archive, query)? {
        return Ok(found);
    }
    let all = list_articles(archive)?;
    let is = |a: &ArticleSummary, k: &str| a.key.as_str() == k || a.aliases.iter().any(|x| x.as_str() == k);
    let exact: Vec<&ArticleSummary> = match canonical_url(query) {
        Some(url) => all.iter().filter(|a| is(a, &url) || a.url.as_deref() == Some(url.as_str())).collect(),
        None => all.iter().filter(|a| is(a, query)).collect(),
    };
    // Any variant of the article's URL (scheme, `www.`, trailing slash,
    // tracking parameters: the folding `dedupe` uses).
    let exact = match crate::dedupe::normalize::fold_url(query) {
        Some(folded) if exact.is_empty() => {
            let same = |u: &str| crate::dedupe::normalize::fold_url(u).as_deref() == Some(folded.as_str());
            all.iter()
                .filter(|a| {
                    a.url.as_deref().is_some_and(same)
                        || same(a.key.as_str())
                        || a.aliases.iter().any(|k| same(k.as_str()))
                })
                .collect()
        }
        _ => exact,
    };
    let matches: Vec<&ArticleSummary> = if !exact.is_empty() {
        exact
    } else {
        let hex = query.len() >= 4 && query.bytes().all(|b| b.is_ascii_hexdigit());
        let by_id: Vec<&ArticleSummary> = if hex {
            let q = query.to_ascii_lowercase();
            all.iter().filter(|a| a.versions.iter().any(|v| v.to_hex().starts_with(&q))).collect()
        } else {
            Vec::new()
        };
        if !by_id.is_empty() {
            by_id
        } else {
            let needle = normalize_line(query).to_lowercase();
            all.iter()
                .filter(|a| {
                    a.title.as_deref().is_some_and(|t| t.to_lowercase().contains(&needle))
                        || a.key.as_str().to_lowercase().contains(&needle)
                })
                .collect()
        }
    };
    match matches.as_slice() {
        [] => Err(Error::NotFound(format!("no article matches {query:?}{}", suggest_articles(&all, query)))),
        [one] => Ok((*one).clone()),
        many => {
            let mut candidates: Vec<String> = many.iter().take(MAX_CANDIDATES).map(|a| describe(a)).collect();
            if many.len() > MAX_CANDIDATES {
                candidates.push(format!(
                    "… and {} more ({} in all; a longer query, a URL or an id prefix narrows it)",
                    many.len() - MAX_CANDIDATES,
                    many.len()
                ));
            }
            Err(Error::AmbiguousArticle { query: query.to_string(), candidates })
        }
    }
}

/// The article one of whose versions has an id starting with `query`,
/// found through the id index instead of by listing every article, when
/// that gives the same answer as [`resolve_article`]'s listing: `query` is
/// 4 or more hex digits, no URL, no article's key nor a key merged into
/// one, and its ids name versions of exactly one article that the view
/// holds. `None`: the listing decides.
fn by_version_id(archive: &Archive, query: &str) -> Result<Option<ArticleSummary>> {
    /// More candidate ids than this: let the listing decide.
    const MAX_IDS: usize = 64;
    if query.len() < 4 || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let tree = view_tree(archive, NAME)?;
    let literal = ArticleKey(query.to_string());
    if canonical_url(query).is_some()
        || crate::dedupe::normalize::fold_url(query).is_some()
        || tree.get(&state_key(&literal))?.is_some()
        || tree.get(&MAPS.article_key(&literal))?.is_some()
    {
        return Ok(None);
    }
    let Some(prefix) = crate::model::HexPrefix::parse(query) else { return Ok(None) };
    let ids = archive.store().ids_with_prefix(&prefix)?;
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Ok(None);
    }
    let maps = MAPS.stored(tree.as_ref());
    let mut found: Option<ArticleSummary> = None;
    for id in &ids {
        let Some(entry) = archive.entry_by_id(id)? else { continue };
        let Event::Article(a) = &entry.event else { continue };
        // The key it is filed under now (merges fold keys into others).
        let key = maps.canon_key(&a.key)?;
        let Some(v) = tree.get(&state_key(&key))? else { return Ok(None) };
        let summary: ArticleSummary = envelope::decode_native_prefix(&v, "article summary")?;
        // A version the views do not hold yet (`--at`, a pin) is not a match.
        if !summary.versions.contains(id) {
            continue;
        }
        match &found {
            Some(f) if f.key != summary.key => return Ok(None),
            _ => found = Some(summary),
        }
    }
    Ok(found)
}

/// Candidates an ambiguous article query lists at most.
const MAX_CANDIDATES: usize = 20;

/// `; did you mean: …` with up to three titles sharing the most words (of
/// three letters or more) with `query`, or nothing.
fn suggest_articles(all: &[ArticleSummary], query: &str) -> String {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(String::from)
            .collect()
    };
    let wanted = words(query);
    if wanted.is_empty() {
        return String::new();
    }
    let mut scored: Vec<(usize, &ArticleSummary)> = all
        .iter()
        .map(|a| {
            let have = words(a.title.as_deref().unwrap_or(a.key.as_str()));
            (wanted.iter().filter(|w| have.iter().any(|h| h.starts_with(w.as_str()))).count(), a)
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, a)| format!("{:?}", a.title.as_deref().unwrap_or(a.key.as_str())))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}

/// One line naming an article: short id, title, key.
pub fn describe(a: &ArticleSummary) -> String {
    format!(
        "{}  {}  ({})",
        a.latest.map(|i| i.short()).unwrap_or_else(|| "-".repeat(12)),
        crate::cli::output::printable(a.title.as_deref().unwrap_or("(untitled)")),
        crate::cli::output::printable(a.key.as_str())
    )
}

/// A comment version as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionView {
    /// The comment event.
    pub id: EventId,
    /// Its body.
    pub body: String,
    /// `present`, `removed` (the current version), `superseded`, or
    /// `truncated` (only ever seen cut off, beside the current version).
    pub status: &'static str,
    /// First and last capture that showed it.
    pub first_seen: CaptureRef,
    /// Last capture that showed it.
    pub last_seen: CaptureRef,
    /// Ids merged into this version (dedupe) that captures showed.
    pub aliases: Vec<EventId>,
}

/// Why a comment is nested where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentKind {
    /// The page's structure.
    Structural,
    /// An `@Name` at the start of the body.
    Mention,
}

/// A comment in a thread: its latest version and its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentView {
    /// The latest version's id.
    pub id: EventId,
    /// Author as shown.
    pub author: Option<String>,
    /// Posted time.
    pub posted_at: Option<Timestamp>,
    /// The latest version's body.
    pub body: String,
    /// The comment replied to (its latest version's id).
    pub parent: Option<(EventId, ParentKind)>,
    /// Nesting depth (0 for top level).
    pub depth: usize,
    /// `present` or `removed`.
    pub status: &'static str,
    /// For removed comments: the first capture that no longer showed it.
    pub removed_since: Option<CaptureRef>,
    /// First capture that showed any version.
    pub first_seen: CaptureRef,
    /// Last capture that showed any version.
    pub last_seen: CaptureRef,
    /// All versions, oldest first.
    pub versions: Vec<VersionView>,
}

/// A thread ready to print.
#[derive(Clone, Debug)]
pub struct ThreadView {
    /// The summary.
    pub summary: ArticleSummary,
    /// The latest article version.
    pub article: Option<Article>,
    /// The article's captures.
    pub captures: Vec<CaptureRef>,
    /// Comments in page order.
    pub comments: Vec<CommentView>,
}

impl ThreadView {
    /// The comments' indices as a thread is read: each reply right after
    /// what it replies to (and that comment's earlier replies), replies to
    /// one comment in page order, the rest in page order. The page puts a
    /// reply by `@mention` where its time falls, not under the comment it
    /// names (and a JSON Lines file may list a reply before its parent);
    /// wherever the page nests its replies itself, this is page order.
    pub fn tree_order(&self) -> Vec<usize> {
        let (roots, replies) = self.replies();
        // Depth first without recursion (a thread can nest deeply).
        let mut order = Vec::with_capacity(self.comments.len());
        let mut stack: Vec<usize> = roots.into_iter().rev().collect();
        while let Some(i) = stack.pop() {
            order.push(i);
            stack.extend(replies[i].iter().rev());
        }
        order
    }

    /// The comments that reply to none shown here (indices, in page
    /// order), and for each comment the replies to it (likewise). A reply
    /// may come before its parent in page order (a JSON Lines file lists
    /// them so); replies that go round in a loop (which no input makes
    /// now) reach no top-level comment, and the first of each loop in page
    /// order is taken as one.
    pub fn replies(&self) -> (Vec<usize>, Vec<Vec<usize>>) {
        let n = self.comments.len();
        let pos: HashMap<EventId, usize> = self.comments.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let parents: Vec<Option<usize>> = (0..n)
            .map(|i| self.comments[i].parent.and_then(|(p, _)| pos.get(&p).copied()).filter(|&p| p != i))
            .collect();
        let mut replies: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, parent) in parents.iter().enumerate() {
            match parent {
                Some(p) => replies[*p].push(i),
                None => roots.push(i),
            }
        }
        fn reach(from: usize, reached: &mut [bool], replies: &[Vec<usize>]) {
            let mut stack = vec![from];
            while let Some(i) = stack.pop() {
                if !std::mem::replace(&mut reached[i], true) {
                    stack.extend(&replies[i]);
                }
            }
        }
        let mut reached = vec![false; n];
        for &r in &roots {
            reach(r, &mut reached, &replies);
        }
        for i in 0..n {
            if !reached[i] {
                if let Some(p) = parents[i] {
                    replies[p].retain(|&c| c != i);
                }
                roots.push(i);
                reach(i, &mut reached, &replies);
            }
        }
        roots.sort_unstable();
        (roots, replies)
    }
}

fn body_of(events: &HashMap<EventId, Event>, id: &EventId) -> Result<String> {
    match events.get(id) {
        Some(Event::Comment(c)) => Ok(c.body.clone()),
        Some(_) => Err(Error::Corrupt(format!("view names {id} as a comment"))),
        None => Err(Error::Corrupt(format!("view names {id}, not in the log"))),
    }
}

fn fold(name: &str) -> String {
    normalize_line(name).to_lowercase()
}

/// The author an `@Name` at the start of `body` names, among `authors`
/// (folded): the longest that matches followed by a non-alphanumeric
/// character or the end.
fn mentioned<'a>(body: &str, authors: impl Iterator<Item = &'a String>) -> Option<String> {
    let rest = body.strip_prefix('@')?;
    let folded = fold(rest);
    authors
        .filter(|a| {
            folded.starts_with(a.as_str())
                && folded[a.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric())
        })
        .max_by_key(|a| a.len())
        .cloned()
}

/// Builds the printable thread from its state, reading bodies from the log.
pub fn render(archive: &Archive, summary: ArticleSummary, state: &ThreadState) -> Result<ThreadView> {
    let ids: Vec<EventId> = state.slots.iter().flat_map(|s| s.versions.iter().map(|v| v.id)).collect();
    let events = archive.events_by_id_in(&summary.key, &ids)?;
    let article = match state.current_article() {
        None => None,
        Some(id) => match archive.entry_by_id(&id)?.map(|e| e.event) {
            Some(Event::Article(a)) => Some(*a),
            Some(_) => None,
            None => return Err(Error::Corrupt(format!("article {id} not in the log"))),
        },
    };
    let cap = |i: u32| state.captures[i as usize].clone();
    let mut comments: Vec<CommentView> = Vec::new();
    // Every slot's place in page order, so that a reply the page (a JSON
    // Lines file) lists before the comment it replies to still names it.
    let slot_pos: HashMap<usize, usize> =
        state.order.iter().enumerate().map(|(pos, &s)| (s as usize, pos)).collect();
    // Each comment's parent by place in page order: first the page's own
    // (structural) ones, then a mention's where the page gives none.
    let versions = state.version_index();
    let mut parents: Vec<Option<usize>> = state
        .order
        .iter()
        .enumerate()
        .map(|(position, &s)| {
            state.slots[s as usize]
                .parent
                .and_then(|p| versions.get(&p))
                .and_then(|&(s, _)| slot_pos.get(&s).copied())
                .filter(|&pos| pos != position)
        })
        .collect();
    // author (folded) -> positions in `comments` of their comments so far
    let mut by_author: HashMap<String, Vec<usize>> = HashMap::new();
    for &slot_index in &state.order {
        let slot: &Slot = &state.slots[slot_index as usize];
        let present = state.is_present(slot);
        let current = slot.latest();
        let mut versions = Vec::new();
        for v in &slot.versions {
            versions.push(VersionView {
                id: v.id,
                body: body_of(&events, &v.id)?,
                status: slot.version_status(v, present),
                first_seen: cap(v.first_seen),
                last_seen: cap(v.last_seen),
                aliases: v.aliases.clone(),
            });
        }
        let body = versions.iter().find(|v| v.id == current).map(|v| v.body.clone()).unwrap_or_default();
        let position = comments.len();
        let structural = parents[position]
            .map(|pos| (state.slots[state.order[pos] as usize].latest(), ParentKind::Structural));
        let parent = structural.or_else(|| {
            let name = mentioned(&body, by_author.keys())?;
            let only = match by_author.get(&name).map(Vec::as_slice) {
                Some([only]) => *only,
                _ => return None,
            };
            // Not when the named comment replies, through the page, to this
            // one (or to a reply of it): the two would go round in a loop.
            let mut at = Some(only);
            for _ in 0..=parents.len() {
                match at {
                    Some(a) if a == position => return None,
                    Some(a) => at = parents[a],
                    None => break,
                }
            }
            parents[position] = Some(only);
            Some((comments[only].id, ParentKind::Mention))
        });
        if let Some(a) = &slot.author {
            by_author.entry(fold(a)).or_default().push(position);
        }
        comments.push(CommentView {
            id: slot.latest(),
            author: slot.author.clone(),
            posted_at: slot.posted_at,
            body,
            parent,
            depth: 0,
            status: if present { "present" } else { "removed" },
            removed_since: state.removed_since(slot).cloned(),
            first_seen: cap(slot.first_seen),
            last_seen: cap(slot.last_seen),
            versions,
        });
    }
    let mut view = ThreadView { summary, article, captures: state.captures.clone(), comments };
    let (roots, replies) = view.replies();
    for &r in &roots {
        // (A comment shown top-level replies to nothing shown here.)
        view.comments[r].parent = None;
    }
    let mut stack: Vec<(usize, usize)> = roots.iter().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        view.comments[i].depth = depth;
        stack.extend(replies[i].iter().map(|&c| (c, depth + 1)));
    }
    Ok(view)
}

/// What a capture would change in the threads it shows (`ingest
/// --dry-run`), summed over its articles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviewCounts {
    /// Comments it would add (new, or back after a removal).
    pub added: u64,
    /// Comments it would mark removed (a complete capture only).
    pub removed: u64,
    /// Comments it would show in another version.
    pub edited: u64,
    /// Comments a partial capture does not show, which stay present.
    pub unseen: u64,
    /// Articles where the capture is older than one already archived (it
    /// would be placed in history by its fetch time).
    pub backfilled: u64,
    /// The capture is archived already.
    pub archived: bool,
}

/// What capture `capture` (with its document's `events`) would change in
/// the threads view, compared with the threads as they stand (the caller
/// brings the views up to date first). `None` when the threads view does
/// not reflect the head of the log (pinned by `replay --until`). Merges
/// are applied as the view applies them (a page of an article folded into
/// another is compared with the kept article's thread).
pub fn preview_capture(
    archive: &Archive,
    capture: &crate::model::Capture,
    events: &[Event],
) -> Result<Option<PreviewCounts>> {
    let at = crate::views::as_of(archive, NAME)?;
    if at.pinned || at.seq != archive.head().seq {
        return Ok(None);
    }
    let id = Event::Capture(Box::new(capture.clone())).id();
    let mut counts = PreviewCounts::default();
    if archive.store().seq_of(&id)?.is_some() {
        counts.archived = true;
        return Ok(Some(counts));
    }
    let now = Timestamp::now_utc();
    let mine: HashMap<EventId, std::sync::Arc<LogEntry>> = events
        .iter()
        .map(|e| {
            let entry = LogEntry {
                seq: Seq(u64::MAX),
                id: e.id(),
                recorded_at: now,
                event: e.clone(),
                head: crate::model::ChainHash::GENESIS,
            };
            (entry.id, std::sync::Arc::new(entry))
        })
        .collect();
    let lookup = |id: &EventId| -> Result<Option<std::sync::Arc<LogEntry>>> {
        if let Some(e) = mine.get(id) {
            return Ok(Some(std::sync::Arc::clone(e)));
        }
        Ok(archive.entry_by_id(id)?.map(std::sync::Arc::new))
    };
    // Merges applied as the view applies them: each article under the key
    // it was folded into, each comment under the id it was folded into.
    let tree = view_tree(archive, NAME)?;
    let maps = MAPS.stored(tree.as_ref());
    let comments = maps.comments();
    for seen in &maps.group(capture)? {
        let canon = |i: &EventId| comments.canon_id(&seen.key, i);
        let state =
            load_thread_in(tree.as_ref(), &seen.key)?.unwrap_or_else(|| ThreadState::new(seen.key.clone()));
        let entry = LogEntry {
            seq: Seq(u64::MAX),
            id,
            recorded_at: now,
            event: Event::Capture(Box::new(capture.clone())),
            head: crate::model::ChainHash::GENESIS,
        };
        let cref = CaptureRef::new(&entry, capture, seen.article.as_ref().map(|a| a.id));
        let diff = if state.sorts_last(&cref) {
            let mut state = state;
            state.apply_capture(cref, seen, lookup, canon)?.unwrap_or_default()
        } else {
            counts.backfilled += 1;
            let mut captures = Vec::new();
            for c in &state.captures {
                let Event::Capture(old) = archive.entry(c.seq)?.event else {
                    return Err(Error::Corrupt(format!(
                        "thread names capture {} at seq {}, not a capture",
                        c.id, c.seq
                    )));
                };
                for s in maps.group(&old)?.into_iter().filter(|a| a.key == seen.key) {
                    captures.push((c.clone(), s));
                }
            }
            captures.push((cref, seen.clone()));
            let (_, diffs) = ThreadState::from_captures(seen.key.clone(), captures, lookup, canon)?;
            diffs.into_iter().find(|(c, _)| c.id == id).map(|(_, d)| d).unwrap_or_default()
        };
        counts.added += diff.added.len() as u64;
        counts.removed += diff.removed.len() as u64;
        counts.edited += diff.edited.len() as u64;
        counts.unseen += diff.unseen;
    }
    Ok(Some(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_match_the_longest_author_name() {
        let authors = ["logic europe".to_string(), "logic".to_string(), "parvez".to_string()];
        assert_eq!(mentioned("@Logic Europe – your point", authors.iter()).as_deref(), Some("logic europe"));
        assert_eq!(mentioned("@Parvez: yes", authors.iter()).as_deref(), Some("parvez"));
        assert_eq!(mentioned("@Parvezz no", authors.iter()), None);
        assert_eq!(mentioned("no mention @Parvez", authors.iter()), None);
    }
}
