//! `dedupe`: finds the near-duplicates that exact content addressing keeps
//! apart, and folds them with [`Merge`] events (docs/dedupe.md).
//!
//! Candidates are grouped by normalized keys, never by comparing all pairs:
//! articles by folded URL and by folded title plus date (union-find), then
//! comments by (article group, folded author, folded body). Within a group,
//! comments join a cluster when their posted times are equal or differ by a
//! whole number of hours (a time-zone rendering) and when no capture shows
//! both of them (two comments one page shows side by side are two comments).

pub mod entities;
pub mod normalize;

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Comment, Event, EventId, Merge, MergeKind, Seq, Timestamp};
use crate::store::{Archive, NewDocument};
use crate::views::thread_state::CaptureRef;
use normalize::{fold_name, fold_text, fold_url};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A set of ids that are one thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Comments or articles.
    pub kind: MergeKind,
    /// The id kept (the earliest in the log).
    pub keep: EventId,
    /// The ids folded into it.
    pub fold: Vec<EventId>,
    /// Why they are one thing.
    pub reason: String,
}

/// What a dedupe scan found.
#[derive(Clone, Debug, Default)]
pub struct DedupeReport {
    /// Articles (keys) seen.
    pub articles: u64,
    /// Comments seen (not already folded).
    pub comments: u64,
    /// Clusters, articles first, each group in log order.
    pub clusters: Vec<Cluster>,
}

type Hash16 = [u8; 16];

fn h16(parts: &[&[u8]]) -> Hash16 {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

struct ArticleInfo {
    key: ArticleKey,
    first_seq: Seq,
    /// The observation order of the first capture that showed it, and the
    /// place of its section there.
    first_observed: Option<Shown>,
    versions: Vec<EventId>,
    /// Each version's title, publication date and URL, in log order.
    shown: Vec<VersionMeta>,
    title: Option<String>,
    published: Option<Timestamp>,
    url: Option<String>,
}

/// An article version's title, publication date and URL.
type VersionMeta = (Option<String>, Option<Timestamp>, Option<String>);

/// Where a capture showed an item: the capture's observation order, and
/// the item's place in it.
type Shown = ((i64, u32, Seq), u32);

/// What the pass keeps of each comment: 64 bytes, where the first cut
/// kept 136 (a million comments at 1M). The text is kept only as hashes,
/// and the id not at all: the few comments found alike have theirs read
/// back by seq.
struct CommentInfo {
    seq: Seq,
    /// Index into the articles.
    article: u32,
    /// The folded author (or none) and folded body together: with the
    /// article group, the bucket key.
    fuzzy: Hash16,
    /// The exact body, to say when a kept pair differs in rendering only.
    body_exact: Hash8,
    /// The exact author (or none), likewise.
    author_exact: Hash8,
    posted_at: Option<Timestamp>,
}

type Hash8 = [u8; 8];

/// The first 8 bytes of [`h16`]: for telling apart texts already found
/// alike, where a collision (one in 2^64) would only drop a phrase from
/// the reason.
fn h8(parts: &[&[u8]]) -> Hash8 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&h16(parts)[..8]);
    out
}

/// Seconds since the epoch of a timestamp (offset applied when known).
pub fn instant(t: &Timestamp) -> i64 {
    t.instant().0
}

/// The largest time-zone gap two renderings of one time can have.
const MAX_SHIFT_HOURS: i64 = 14;

fn time_compatible(a: Option<&Timestamp>, b: Option<&Timestamp>) -> bool {
    match (a, b) {
        (None, None) => true,
        // A day alone (one page shows no time of day): the other's own day.
        (Some(Timestamp::Date(d)), Some(t)) | (Some(t), Some(Timestamp::Date(d))) => day_of(t) == *d,
        (Some(a), Some(b)) => {
            let d = (instant(a) - instant(b)).abs();
            d % 3600 == 0 && d <= MAX_SHIFT_HOURS * 3600
        }
        _ => false,
    }
}

/// The day a timestamp falls on, as its page wrote it (its own offset).
fn day_of(t: &Timestamp) -> chrono::NaiveDate {
    match t {
        Timestamp::Date(d) => *d,
        Timestamp::Local(dt) | Timestamp::Zoned(dt, _) => dt.date(),
    }
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}

fn follow<K: Clone + Eq + std::hash::Hash>(map: &HashMap<K, K>, k: &K) -> K {
    let mut current = k.clone();
    for _ in 0..64 {
        match map.get(&current) {
            Some(next) if next != &current => current = next.clone(),
            _ => break,
        }
    }
    current
}

/// Scans the archive and returns the clusters `--apply` would merge.
pub fn find_clusters(archive: &Archive) -> Result<DedupeReport> {
    find_clusters_reporting(archive, None)
}

/// Comments one pass keeps at most ([`find_clusters_in_passes`]): 64
/// bytes each, 96 MB.
pub const COMMENTS_PER_PASS: u64 = 1_500_000;

/// [`find_clusters`], reporting the seq its pass over the log has reached.
pub fn find_clusters_reporting(
    archive: &Archive,
    progress: crate::views::Progress<'_>,
) -> Result<DedupeReport> {
    find_clusters_in_passes(archive, progress, COMMENTS_PER_PASS)
}

/// [`find_clusters_reporting`], keeping at most `per_pass` comments in
/// memory: a log with more is read again for each further share of its
/// article groups (a keyed hash of the group picks the pass; a cluster
/// never spans groups), each pass clustering the comments of its share.
/// The report is the same whatever `per_pass` is.
pub fn find_clusters_in_passes(
    archive: &Archive,
    progress: crate::views::Progress<'_>,
    per_pass: u64,
) -> Result<DedupeReport> {
    let per_pass = per_pass.max(1);
    let head = archive.head().seq;
    let mut articles: Vec<ArticleInfo> = Vec::new();
    let mut by_key: HashMap<ArticleKey, usize> = HashMap::new();
    let mut version_key: HashMap<EventId, ArticleKey> = HashMap::new();
    // At most one comment per entry: sized once, so that growing it never
    // holds two copies (untouched capacity costs no memory), at most a
    // pass's worth. (Reserved when the system grants it: a damaged head
    // naming a huge seq only leaves the vector to grow as it goes.)
    // Comments are kept while they fit in one pass; past that they are
    // only counted, and read again in passes after the article groups.
    let mut comments: Vec<CommentInfo> = Vec::new();
    let _ = comments.try_reserve_exact(usize::try_from(head.0.min(per_pass)).unwrap_or(0));
    let (mut counted, mut collecting) = (0u64, true);
    let mut comment_fold: HashMap<EventId, EventId> = HashMap::new();
    let mut key_fold: HashMap<ArticleKey, ArticleKey> = HashMap::new();
    // When each article version was first shown: an article merge names
    // each article by the version observed first (the latest in the log,
    // before, depended on the ingest order).
    let mut version_first: HashMap<EventId, Shown> = HashMap::new();
    // And last: an article's title, date and URL are those of its version
    // observed last (each the latest that has one), as the views show it;
    // the version last in the log, before, made the title key, and so the
    // clusters, depend on the ingest order.
    let mut version_last: HashMap<EventId, Shown> = HashMap::new();
    let mut article_of = |key: &ArticleKey, seq: Seq, articles: &mut Vec<ArticleInfo>| -> usize {
        *by_key.entry(key.clone()).or_insert_with(|| {
            articles.push(ArticleInfo {
                key: key.clone(),
                first_seq: seq,
                first_observed: None,
                versions: Vec::new(),
                shown: Vec::new(),
                title: None,
                published: None,
                url: None,
            });
            articles.len() - 1
        })
    };
    for entry in archive.entries_from(Seq(1))? {
        let entry = entry?;
        if let Some(p) = progress.filter(|_| entry.seq.0 % 4096 == 0) {
            p(entry.seq, head);
        }
        match &entry.event {
            Event::Article(a) => {
                let i = article_of(&a.key, entry.seq, &mut articles);
                let info = &mut articles[i];
                info.versions.push(entry.id);
                info.shown.push((a.title.clone(), a.published, a.url.clone()));
                version_key.insert(entry.id, a.key.clone());
            }
            Event::Comment(c) => {
                let article = article_of(&c.article, entry.seq, &mut articles);
                counted += 1;
                if collecting && counted > per_pass {
                    collecting = false;
                    comments = Vec::new();
                }
                if collecting {
                    comments.push(comment_info(entry.seq, article, c)?);
                }
            }
            Event::Capture(c) => {
                let order = CaptureRef::new(&entry, c, None).order();
                for (place, a) in c.articles.iter().enumerate() {
                    let at = (order, place as u32);
                    let i = article_of(&a.key, entry.seq, &mut articles);
                    let first = &mut articles[i].first_observed;
                    *first = Some(first.map_or(at, |f| f.min(at)));
                    if let Some(v) = &a.article {
                        let first = version_first.entry(v.id).or_insert(at);
                        *first = (*first).min(at);
                        let last = version_last.entry(v.id).or_insert(at);
                        *last = (*last).max(at);
                    }
                }
            }
            Event::Merge(m) => match m.kind {
                MergeKind::Comment => {
                    for f in &m.fold {
                        comment_fold.insert(*f, m.keep);
                    }
                }
                MergeKind::Article => {
                    if let Some(keep) = version_key.get(&m.keep).cloned() {
                        for f in &m.fold {
                            if let Some(fk) = version_key.get(f) {
                                if *fk != keep {
                                    key_fold.insert(fk.clone(), keep.clone());
                                }
                            }
                        }
                    }
                }
            },
        }
    }

    for a in &mut articles {
        let mut by_observation: Vec<(Option<Shown>, usize)> =
            a.versions.iter().enumerate().map(|(i, v)| (version_last.get(v).copied(), i)).collect();
        by_observation.sort_unstable();
        for (_, i) in by_observation {
            let Some((title, published, url)) = a.shown.get(i) else { continue };
            a.title = title.clone().or(a.title.take());
            a.published = published.or(a.published);
            a.url = url.clone().or(a.url.take());
        }
    }

    // Article groups: union by folded URL and by folded title + date, over
    // the keys not already merged away.
    let canon_article = |i: usize| -> usize {
        let k = follow(&key_fold, &articles[i].key);
        by_key.get(&k).copied().unwrap_or(i)
    };
    let mut uf = UnionFind((0..articles.len()).collect());
    let mut by_url: HashMap<String, usize> = HashMap::new();
    let mut by_title: HashMap<(String, String), usize> = HashMap::new();
    let mut url_fold: Vec<Option<String>> = Vec::with_capacity(articles.len());
    let mut title_fold: Vec<Option<(String, String)>> = Vec::with_capacity(articles.len());
    for a in &articles {
        let url = a.url.clone().or_else(|| a.key.as_str().contains("://").then(|| a.key.0.clone()));
        let u = url.as_deref().and_then(fold_url);
        // (An article without a publication date has no title key: two
        // undated articles of one title, a recurring column, are not taken
        // for one.)
        let t = a.title.as_deref().map(fold_text).filter(|t| !t.is_empty()).and_then(|t| {
            let date = a.published.map(|p| p.canonical()[..10].to_string())?;
            Some((t, date))
        });
        url_fold.push(u);
        title_fold.push(t);
    }
    // A title and date that articles on two sites share names no one
    // article: it joins only articles of one site (or without a URL).
    let host = |u: &Option<String>| u.as_deref().map(|u| u.split('/').next().unwrap_or(u).to_string());
    let mut title_hosts: HashMap<&(String, String), HashSet<String>> = HashMap::new();
    for (t, u) in title_fold.iter().zip(&url_fold) {
        if let (Some(t), Some(h)) = (t, host(u)) {
            title_hosts.entry(t).or_default().insert(h);
        }
    }
    let ambiguous: HashSet<(String, String)> =
        title_hosts.into_iter().filter(|(_, hosts)| hosts.len() > 1).map(|(t, _)| t.clone()).collect();
    for i in 0..articles.len() {
        let c = canon_article(i);
        if c != i {
            uf.union(c, i);
            continue;
        }
        if let Some(u) = &url_fold[i] {
            match by_url.get(u) {
                Some(&j) => uf.union(i, j),
                None => {
                    by_url.insert(u.clone(), i);
                }
            }
        }
        if let Some(t) = title_fold[i].as_ref().filter(|t| !ambiguous.contains(*t)) {
            match by_title.get(t) {
                Some(&j) => uf.union(i, j),
                None => {
                    by_title.insert(t.clone(), i);
                }
            }
        }
    }

    let mut report = DedupeReport { articles: articles.len() as u64, ..DedupeReport::default() };

    // Article clusters: canonical keys with versions, per group.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, article) in articles.iter().enumerate() {
        if canon_article(i) == i && !article.versions.is_empty() {
            let root = uf.find(i);
            groups.entry(root).or_default().push(i);
        }
    }
    for members in groups.values() {
        if members.len() < 2 {
            continue;
        }
        let mut members = members.clone();
        // The article observed first is kept, whatever order the captures
        // were ingested in (as for comments below).
        members.sort_by_key(|&i| {
            let a = &articles[i];
            (a.first_observed.is_none(), a.first_observed, a.first_seq)
        });
        let keep = members[0];
        let mut phrases: Vec<&str> = Vec::new();
        for &m in &members[1..] {
            if url_fold[m].is_some() && url_fold[m] == url_fold[keep] {
                phrases.push("the same article under URL variants");
            } else if title_fold[m].is_some() && title_fold[m] == title_fold[keep] {
                phrases.push("the same title and publication date");
            } else {
                phrases.push("linked through another variant of the article");
            }
        }
        phrases.sort_unstable();
        phrases.dedup();
        let named = |a: &ArticleInfo| {
            a.versions.iter().copied().min_by_key(|v| {
                let first = version_first.get(v);
                (first.is_none(), first.copied(), *v)
            })
        };
        report.clusters.push(Cluster {
            kind: MergeKind::Article,
            keep: named(&articles[keep]).unwrap_or(EventId([0; 32])),
            fold: members[1..].iter().filter_map(|&m| named(&articles[m])).collect(),
            reason: phrases.join("; "),
        });
    }

    // The comments merges folded away, by seq (the index finds each
    // folded id's seq; a comment's seq is its one entry).
    let mut folded: HashSet<Seq> = HashSet::with_capacity(comment_fold.len());
    for id in comment_fold.keys() {
        if let Some(seq) = archive.store().seq_of(id)? {
            folded.insert(seq);
        }
    }
    let mut comment_clusters: Vec<(Seq, Cluster)> = Vec::new();
    if collecting {
        comment_clusters =
            cluster_comments(archive, &comments, &mut uf, &comment_fold, &folded, &mut report)?;
    } else {
        drop(comments);
        // One more read of the log per share of the article groups (never
        // more shares than groups: a share without one reads for nothing),
        // each article's share picked once by a keyed hash of its group.
        let roots: Vec<usize> = (0..articles.len()).map(|i| uf.find(i)).collect();
        let parts = counted.div_ceil(per_pass).min(roots.iter().collect::<HashSet<_>>().len().max(1) as u64);
        let key = std::collections::hash_map::RandomState::new();
        let share: Vec<u64> =
            roots.iter().map(|&r| std::hash::BuildHasher::hash_one(&key, r as u64) % parts).collect();
        for part in 0..parts {
            let mut mine: Vec<CommentInfo> = Vec::new();
            for entry in archive.entries_from(Seq(1))? {
                let entry = entry?;
                // The bar runs again for each share.
                if let Some(p) = progress.filter(|_| entry.seq.0 % 4096 == 0) {
                    p(entry.seq, head);
                }
                if let Event::Comment(c) = &entry.event {
                    // Every comment's article was listed by the first read.
                    let Some(&article) = by_key.get(&c.article) else { continue };
                    if share[article] == part {
                        mine.push(comment_info(entry.seq, article, c)?);
                    }
                }
            }
            comment_clusters.extend(cluster_comments(
                archive,
                &mine,
                &mut uf,
                &comment_fold,
                &folded,
                &mut report,
            )?);
        }
    }
    comment_clusters.sort_by_key(|(seq, _)| *seq);
    report.clusters.extend(comment_clusters.into_iter().map(|(_, c)| c));
    Ok(report)
}

/// What one comment is kept as in a pass.
fn comment_info(seq: Seq, article: usize, c: &crate::model::Comment) -> Result<CommentInfo> {
    let folded_author = c.author.as_deref().map(|a| h16(&[fold_name(a).as_bytes()]));
    let author: &[u8] = folded_author.as_ref().map_or(b"\x00none", |h| h);
    Ok(CommentInfo {
        seq,
        article: u32::try_from(article).map_err(|_| Error::Internal("more than 2^32 articles".into()))?,
        fuzzy: h16(&[author, &h16(&[fold_text(&c.body).as_bytes()])]),
        body_exact: h8(&[c.body.as_bytes()]),
        author_exact: match c.author.as_deref() {
            Some(a) => h8(&[b"some", a.as_bytes()]),
            None => h8(&[b"none"]),
        },
        posted_at: c.posted_at,
    })
}

/// The comment clusters among `comments` (all of one share of the article
/// groups `uf`, or all), each with the seq of the comment it keeps;
/// `comment_fold` and `folded` are the merges already made (folded
/// comments by seq). Counts the comments in `report`.
fn cluster_comments(
    archive: &Archive,
    comments: &[CommentInfo],
    uf: &mut UnionFind,
    comment_fold: &HashMap<EventId, EventId>,
    folded: &HashSet<Seq>,
    report: &mut DedupeReport,
) -> Result<Vec<(Seq, Cluster)>> {
    // Comment buckets: sort (bucket key, index) pairs so equal keys are
    // adjacent; only buckets of two or more are kept.
    let mut keyed: Vec<(Hash16, u32)> = Vec::with_capacity(comments.len());
    for (i, c) in comments.iter().enumerate() {
        if folded.contains(&c.seq) {
            continue;
        }
        report.comments += 1;
        let group = uf.find(c.article as usize) as u64;
        keyed.push((h16(&[&group.to_be_bytes(), &c.fuzzy]), i as u32));
    }
    keyed.sort_unstable();
    let mut buckets: Vec<Vec<usize>> = Vec::new();
    for run in keyed.chunk_by(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            buckets.push(run.iter().map(|&(_, i)| i as usize).collect());
        }
    }
    drop(keyed);
    // The ids of the comments in buckets, read back by seq.
    let candidate_seqs: Vec<Seq> = buckets.iter().flat_map(|v| v.iter().map(|&i| comments[i].seq)).collect();
    let id_at = archive.entries_at_with(&candidate_seqs, |e| match e.event {
        Event::Comment(_) => Ok(e.id),
        _ => Err(Error::Corrupt(format!("seq {} was read as a comment and is not one", e.seq))),
    })?;
    drop(candidate_seqs);
    let buckets: Vec<Vec<(usize, EventId)>> = buckets
        .into_iter()
        .map(|members| {
            members
                .into_iter()
                .map(|i| match id_at.get(&comments[i].seq) {
                    Some(id) => Ok((i, *id)),
                    None => Err(Error::Internal(format!(
                        "the comment at seq {} was not read back",
                        comments[i].seq
                    ))),
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    drop(id_at);
    let candidates: HashSet<EventId> = buckets.iter().flatten().map(|(_, id)| *id).collect();

    // Where candidates appear, to keep comments a page shows together apart.
    let mut seen_in: HashMap<EventId, Vec<u32>> = HashMap::new();
    // And when each was first observed (the capture's observation order,
    // then its place on that page), so that a cluster keeps the comment
    // observed first whatever order the captures were ingested in: the
    // threads view, rebuilt with the fold, groups the versions by the kept
    // comment, and keeping the first in the log split one comment's
    // versions when a later scrape was ingested first. (Two comments a
    // page first showed side by side went by log order, which a shuffled
    // ingest changes: the merges depended on the ingest order.)
    let mut first_seen: HashMap<EventId, Shown> = HashMap::new();
    if !candidates.is_empty() {
        let mut capture_index = 0u32;
        for entry in archive.entries_from(Seq(1))? {
            let entry = entry?;
            if let Event::Capture(c) = &entry.event {
                let order = CaptureRef::new(&entry, c, None).order();
                for (place, item) in c.items().enumerate() {
                    let id = follow(comment_fold, &item.id);
                    if candidates.contains(&id) {
                        seen_in.entry(id).or_default().push(capture_index);
                        let at = (order, place as u32);
                        let first = first_seen.entry(id).or_insert(at);
                        *first = (*first).min(at);
                    }
                }
                capture_index += 1;
            }
        }
    }
    let together = |a: &EventId, b: &EventId| -> bool {
        match (seen_in.get(a), seen_in.get(b)) {
            (Some(x), Some(y)) => x.iter().any(|c| y.contains(c)),
            _ => false,
        }
    };

    // Each with the seq of the comment it keeps, to order them.
    let mut comment_clusters: Vec<(Seq, Cluster)> = Vec::new();
    for members in &buckets {
        let mut members = members.clone();
        members.sort_by_key(|&(i, id)| {
            let first = first_seen.get(&id).copied();
            (first.is_none(), first, comments[i].seq)
        });
        let mut clusters: Vec<Vec<(usize, EventId)>> = Vec::new();
        for &(m, id) in &members {
            let cm = &comments[m];
            let home = clusters.iter_mut().find(|cl| {
                let k = &comments[cl[0].0];
                time_compatible(k.posted_at.as_ref(), cm.posted_at.as_ref())
                    && cl.iter().all(|(_, o)| !together(o, &id))
            });
            match home {
                Some(cl) => cl.push((m, id)),
                None => clusters.push(vec![(m, id)]),
            }
        }
        for cl in clusters.into_iter().filter(|c| c.len() > 1) {
            let keep = &comments[cl[0].0];
            let mut phrases: Vec<String> = Vec::new();
            for &(o, _) in &cl[1..] {
                let c = &comments[o];
                if c.body_exact != keep.body_exact {
                    phrases
                        .push("text differs only in rendering (punctuation, quotes, case, spacing)".into());
                }
                if c.author_exact != keep.author_exact {
                    phrases.push("author name differs only in case or spacing".into());
                }
                if c.posted_at != keep.posted_at {
                    let hours = match (c.posted_at, keep.posted_at) {
                        (Some(a), Some(b)) => (instant(&a) - instant(&b)) / 3600,
                        _ => 0,
                    };
                    let day_alone =
                        [c.posted_at, keep.posted_at].iter().any(|t| matches!(t, Some(Timestamp::Date(_))));
                    phrases.push(if day_alone {
                        "posted time given only as its day on one page".to_string()
                    } else if hours == 0 {
                        "same instant written with another UTC offset".to_string()
                    } else {
                        format!("posted time shifted by {hours:+} h (a time-zone offset)")
                    });
                }
                if uf.find(c.article as usize) == uf.find(keep.article as usize) && c.article != keep.article
                {
                    phrases.push("under another URL or key of the same article".into());
                }
            }
            phrases.sort();
            phrases.dedup();
            comment_clusters.push((
                keep.seq,
                Cluster {
                    kind: MergeKind::Comment,
                    keep: cl[0].1,
                    fold: cl[1..].iter().map(|(_, id)| *id).collect(),
                    reason: phrases.join("; "),
                },
            ));
        }
    }
    Ok(comment_clusters)
}

/// Appends one Merge event per cluster, atomically (one document). Returns
/// how many were new (a merge already in the log is not appended again).
pub fn apply(archive: &mut Archive, clusters: &[Cluster]) -> Result<u64> {
    let events: Vec<Event> = clusters
        .iter()
        .map(|c| Event::Merge(Merge::new(c.kind, c.keep, c.fold.clone(), &c.reason)))
        .collect();
    if events.is_empty() {
        return Ok(0);
    }
    let outcome = archive.append_document(NewDocument::new(b"", events), false).map_err(|e| {
        Error::stopped(
            "this dedupe did not commit its merges; if their records reached the log files before the \
             error, the next command finds them, and running it again appends only what is missing",
            e,
        )
    })?;
    let n = outcome.new.merges;
    archive.flush().map_err(|e| stopped(e, n))?;
    Ok(n)
}

/// `e`, met after `merges` merges were committed, saying that they were
/// (they stay in the archive: the views take them in at the next command).
pub fn stopped(e: Error, merges: u64) -> Error {
    let merges = crate::cli::output::plural(merges, "merge");
    Error::stopped(
        format!("this dedupe appended its {merges} before it stopped; they stay in the archive"),
        e,
    )
}

/// What an ingest dry run reports per file: comments already archived, and
/// comments that are near-duplicates of archived ones.
#[derive(Clone, Debug, Default)]
pub struct NearDuplicates {
    keys: HashSet<Hash16>,
}

impl NearDuplicates {
    /// Indexes every archived comment by folded author and folded body.
    pub fn build(archive: &Archive) -> Result<NearDuplicates> {
        let mut keys = HashSet::new();
        for entry in archive.entries_from(Seq(1))? {
            if let Event::Comment(c) = entry?.event {
                keys.insert(near_key(&c));
            }
        }
        Ok(NearDuplicates { keys })
    }

    /// Counts `(archived, near_duplicates)` among a document's comments.
    /// Whether a comment is archived is read from its article's id set
    /// (one read per article, as the ingest's own duplicate check does),
    /// not looked up id by id.
    pub fn classify(&self, archive: &Archive, events: &[Event]) -> Result<(u64, u64)> {
        let mut memo = crate::store::buckets::BucketMemo::default();
        let comments: Vec<(&Comment, EventId, [u8; 32])> = events
            .iter()
            .filter_map(|e| match e {
                Event::Comment(c) => Some((c, e.id(), memo.of(e))),
                _ => None,
            })
            .collect();
        let held = archive.stored_ids(comments.iter().map(|(_, id, key)| (*key, *id)))?;
        let (mut archived, mut near) = (0, 0);
        for (c, id, key) in &comments {
            if held.get(key).is_some_and(|stored| crate::store::buckets::holds(stored, id)) {
                archived += 1;
            } else if self.keys.contains(&near_key(c)) {
                near += 1;
            }
        }
        Ok((archived, near))
    }
}

fn near_key(c: &crate::model::Comment) -> Hash16 {
    let author = c.author.as_deref().map(fold_name).unwrap_or_default();
    h16(&[author.as_bytes(), fold_text(&c.body).as_bytes()])
}
