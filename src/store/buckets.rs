//! Per-article id sets, for the duplicate check: an event's id hashes its
//! content, and the content names the article it belongs to, so a
//! duplicate of an event can only be in the same *bucket*, the article's.
//! The index keeps one value per bucket (every (id, seq) of its events,
//! sorted by id): a document's duplicate check is one read per article it
//! touches, and a commit writes one value per article instead of one key
//! per event.
//!
//! The bucket of an event ([`bucket_of`]) is BLAKE3 over a domain and the
//! article key: an article, its comments and a capture whose first article
//! it is share the article's bucket; a capture of no article takes one of
//! 256 capture buckets by the first byte of its id, and a merge one of 256
//! merge buckets by the first byte of the id it keeps. Only what an
//! event's id covers decides its bucket, so two copies of an event always
//! meet in one bucket. (Until index layout 4 these were 65,536 buckets
//! each, by two bytes: nearly a sled key per merge, where the index keeps
//! one per article.)
//!
//! A bucket value is a version byte (1) followed by its entries, 40 bytes
//! each (the id, the seq as u64 BE), sorted by id, without repeats. A
//! bucket that grows past [`SPLIT_AT`] entries (an article with thousands
//! of comments) is split by the first byte of its ids: its value becomes
//! the single byte 2, and its entries move to up to 256 *parts* (the same
//! layout, each holding only ids that start with its byte), so that a
//! document adding a few comments to a huge article rewrites a part, not
//! the whole set, and a duplicate check reads only the parts its ids name.

use crate::model::{Event, EventId, Seq};
use crate::store::idruns::{IdSeq, ENTRY};

/// The version byte of a bucket value.
const VERSION: u8 = 1;
/// The value of a split bucket.
const SPLIT: u8 = 2;
/// A bucket is split once it holds more than this many entries.
pub const SPLIT_AT: usize = 8192;

/// A bucket's stored value.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// Every entry.
    Whole(Vec<IdSeq>),
    /// Split into parts by the first byte of the ids.
    Split,
}

/// The stored value of a split bucket.
pub fn split_marker() -> Vec<u8> {
    vec![SPLIT]
}

/// Reads a bucket's value.
pub fn decode_value(bytes: &[u8]) -> std::result::Result<Stored, String> {
    match bytes {
        [SPLIT] => Ok(Stored::Split),
        _ => decode(bytes).map(Stored::Whole),
    }
}

/// Reads one part of a split bucket: entries whose ids start with `first`.
pub fn decode_part(bytes: &[u8], first: u8) -> std::result::Result<Vec<IdSeq>, String> {
    let entries = decode(bytes)?;
    if let Some((id, _)) = entries.iter().find(|(id, _)| id.as_bytes()[0] != first) {
        return Err(format!("part {first:02x} holds {id}, which starts otherwise"));
    }
    Ok(entries)
}

/// The article whose bucket an event belongs to, if an article's: an
/// article's or a comment's own, a capture's first.
pub fn bucket_article(event: &Event) -> Option<&str> {
    match event {
        Event::Article(a) => Some(a.key.as_str()),
        Event::Comment(c) => Some(c.article.as_str()),
        Event::Capture(c) => c.articles.first().map(|a| a.key.as_str()),
        Event::Merge(_) => None,
    }
}

/// The bucket an event belongs to.
pub fn bucket_of(event: &Event) -> [u8; 32] {
    match (bucket_article(event), event) {
        (Some(key), _) => article_bucket(key),
        (None, Event::Merge(m)) => spread(b"merge\0", &m.keep),
        // A capture of no article: by bytes its id covers (its source name
        // is not one of them).
        (None, _) => spread(b"capture\0", &event.id()),
    }
}

/// [`bucket_of`] for a run of events, hashing each article's key once
/// while consecutive events name the same article (a document's comments,
/// a segment's entries): one BLAKE3 per article instead of one per event.
#[derive(Default)]
pub struct BucketMemo {
    last: Option<(String, [u8; 32])>,
}

impl BucketMemo {
    /// The bucket `event` belongs to, as [`bucket_of`] gives it.
    pub fn of(&mut self, event: &Event) -> [u8; 32] {
        let Some(key) = bucket_article(event) else { return bucket_of(event) };
        match &self.last {
            Some((last, bucket)) if last == key => *bucket,
            _ => {
                let bucket = article_bucket(key);
                self.last = Some((key.to_string(), bucket));
                bucket
            }
        }
    }
}

/// Bucket keys hashed to 32 bits with a key drawn at random for each use
/// (an audit, an import): an event filed under a bucket that is not its own
/// cannot be made to pass by choosing a key that shares a prefix with the
/// right one.
pub struct Fingerprints(std::collections::hash_map::RandomState);

impl Fingerprints {
    /// A fresh random key.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Fingerprints {
        Fingerprints(std::collections::hash_map::RandomState::new())
    }

    /// The fingerprint of `bucket` (32 bits: verify keeps one per id).
    pub fn of(&self, bucket: &[u8; 32]) -> u64 {
        std::hash::BuildHasher::hash_one(&self.0, bucket) & 0xffff_ffff
    }
}

/// One of 256 buckets of a domain, by the first byte of an id.
fn spread(domain: &[u8], id: &EventId) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(domain).update(&id.as_bytes()[..1]);
    *h.finalize().as_bytes()
}

/// The bucket of an article key (the same bytes as a page key of a
/// capture whose first article it is).
pub fn article_bucket(key: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"article\0").update(key.as_bytes());
    *h.finalize().as_bytes()
}

/// The stored bytes of a bucket's entries (sorted by id).
pub fn encode(entries: &[IdSeq]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * ENTRY as usize);
    out.push(VERSION);
    for (id, seq) in entries {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&seq.0.to_be_bytes());
    }
    out
}

/// Reads a bucket value: its entries, or why they are not a bucket's.
pub fn decode(bytes: &[u8]) -> std::result::Result<Vec<IdSeq>, String> {
    let Some((&version, rest)) = bytes.split_first() else {
        return Err("an empty bucket value".into());
    };
    if version != VERSION {
        return Err(format!("bucket value version {version}, this cairn reads {VERSION}"));
    }
    if rest.len() % ENTRY as usize != 0 {
        return Err(format!("a bucket value of {} bytes is not whole entries", bytes.len()));
    }
    let mut out: Vec<IdSeq> = Vec::with_capacity(rest.len() / ENTRY as usize);
    for chunk in rest.chunks_exact(ENTRY as usize) {
        let mut id = [0u8; 32];
        id.copy_from_slice(&chunk[..32]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&chunk[32..]);
        let entry = (EventId(id), Seq(u64::from_be_bytes(seq)));
        if out.last().is_some_and(|(p, _)| *p >= entry.0) {
            return Err("bucket entries are not sorted by id".into());
        }
        out.push(entry);
    }
    Ok(out)
}

/// Whether sorted `entries` hold `id`.
pub fn holds(entries: &[IdSeq], id: &EventId) -> bool {
    entries.binary_search_by(|(x, _)| x.cmp(id)).is_ok()
}

/// Adds `new` (any order) to sorted `entries`; an id already there, or
/// repeated, keeps its earliest seq.
pub fn insert(entries: &mut Vec<IdSeq>, mut new: Vec<IdSeq>) {
    new.sort_unstable();
    let old = std::mem::take(entries);
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => x <= y,
        };
        let next = if take_a { a.next() } else { b.next() };
        if let Some(e) = next {
            if out.last().is_none_or(|l: &IdSeq| l.0 != e.0) {
                out.push(e);
            }
        }
    }
    *entries = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EventId {
        EventId([n; 32])
    }

    #[test]
    fn buckets_round_trip_and_insert_in_order() {
        let mut b = vec![(id(2), Seq(5)), (id(9), Seq(1))];
        insert(&mut b, vec![(id(7), Seq(8)), (id(1), Seq(9)), (id(2), Seq(5))]);
        assert_eq!(b, vec![(id(1), Seq(9)), (id(2), Seq(5)), (id(7), Seq(8)), (id(9), Seq(1))]);
        assert_eq!(decode(&encode(&b)).unwrap(), b);
        assert!(holds(&b, &id(7)) && !holds(&b, &id(3)));
        let mut unsorted = encode(&b);
        unsorted[1] = 200;
        assert!(decode(&unsorted).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[2]).is_err());
        assert!(decode(&[1, 0]).is_err());
    }

    #[test]
    fn the_memo_gives_every_event_the_bucket_bucket_of_gives() {
        use crate::model::{ArticleKey, Comment, Merge, MergeKind};
        let comment = |article: &str, body: &str| {
            Event::Comment(Comment::new(ArticleKey(article.into()), Some("x"), None, body))
        };
        let a = comment("https://example.com/a", "one");
        let events = vec![
            a.clone(),
            comment("https://example.com/a", "two"),
            comment("https://example.com/b", "three"),
            Event::Merge(Merge::new(
                MergeKind::Comment,
                a.id(),
                vec![comment("https://example.com/b", "x").id()],
                "r",
            )),
            comment("https://example.com/b", "four"),
            comment("https://example.com/a", "five"),
            comment("https://example.com/ab", "six"),
        ];
        let mut memo = BucketMemo::default();
        for e in &events {
            assert_eq!(memo.of(e), bucket_of(e), "{e:?}");
        }
    }
}
