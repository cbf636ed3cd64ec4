//! The events cairn records ([`Event`]), how each one's id is computed, and
//! the log entry ([`LogEntry`]) with its entry hash and the chain step.
//!
//! Constructors normalize text ([`crate::model::normalize`]), so a stored
//! event always holds exactly the field values its id was computed from.

use crate::model::canonical::Encoder;
use crate::model::ids::{ArticleKey, BlobId, ChainHash, EventId, Seq};
use crate::model::normalize::{normalize_opt_line, normalize_text};
use crate::model::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Domain tags: the first field of each canonical encoding.
pub mod tags {
    /// Article versions.
    pub const ARTICLE: &str = "cairn/v1/article";
    /// Comment versions.
    pub const COMMENT: &str = "cairn/v1/comment";
    /// Captures recorded before cairn recorded completeness (format v1).
    pub const CAPTURE_V1: &str = "cairn/v1/capture";
    /// Captures with their completeness (format v2).
    pub const CAPTURE: &str = "cairn/v2/capture";
    /// Merges (dedupe).
    pub const MERGE: &str = "cairn/v1/merge";
    /// Log entries.
    pub const ENTRY: &str = "cairn/v1/entry";
}

/// A version of an article. Every field is part of its identity.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct Article {
    /// The article key (canonical URL, or title + date).
    pub key: ArticleKey,
    /// The canonical URL, when known.
    pub url: Option<String>,
    /// The headline.
    pub title: Option<String>,
    /// The published date or date-time.
    pub published: Option<Timestamp>,
    /// The byline.
    pub byline: Option<String>,
    /// Body paragraphs, in page order, as captured.
    pub body: Vec<String>,
}

impl Article {
    /// Builds an article version, normalizing every text field.
    pub fn new(
        key: ArticleKey,
        url: Option<String>,
        title: Option<&str>,
        published: Option<Timestamp>,
        byline: Option<&str>,
        body: &[String],
    ) -> Article {
        Article {
            key,
            url,
            title: normalize_opt_line(title),
            published,
            byline: normalize_opt_line(byline),
            body: body.iter().map(|p| normalize_text(p)).filter(|p| !p.is_empty()).collect(),
        }
    }
}

/// A version of a comment. Identity: article key, author, posted_at, body;
/// nothing else (not its position, parent or capture).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Encode)]
pub struct Comment {
    /// The article the comment belongs to.
    pub article: ArticleKey,
    /// The author's name as shown, or `None` when the page shows none.
    pub author: Option<String>,
    /// When the page says it was posted.
    pub posted_at: Option<Timestamp>,
    /// The body; paragraphs separated by a blank line.
    pub body: String,
}

/// The fields in order, as the derived `Encode` writes them; the texts
/// through `decode_text` (model::ids) (the log reader decodes a
/// million of these in a replay at 1M).
impl<C> bincode::Decode<C> for Comment {
    fn decode<D: bincode::de::Decoder<Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
        Ok(Comment {
            article: bincode::Decode::decode(d)?,
            author: crate::model::ids::decode_opt_text(d)?,
            posted_at: bincode::Decode::decode(d)?,
            body: crate::model::ids::decode_text(d)?,
        })
    }
}
bincode::impl_borrow_decode!(Comment);

impl Comment {
    /// Builds a comment version, normalizing author and body.
    pub fn new(
        article: ArticleKey,
        author: Option<&str>,
        posted_at: Option<Timestamp>,
        body: &str,
    ) -> Comment {
        Comment::from_owned(article, author.map(str::to_string), posted_at, body.to_string())
    }

    /// [`Comment::new`] from an owned author and body, each kept without a
    /// copy when it is normal already (a parser's output usually is).
    pub fn from_owned(
        article: ArticleKey,
        author: Option<String>,
        posted_at: Option<Timestamp>,
        body: String,
    ) -> Comment {
        Comment {
            article,
            author: crate::model::normalize::normalize_opt_line_owned(author),
            posted_at,
            body: crate::model::normalize::normalize_text_owned(body),
        }
    }
}

/// What a capture saw of one article: the article version (when the
/// document shows the article itself) and its comments in page order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct CapturedArticle {
    /// The article's key.
    pub key: ArticleKey,
    /// The article version shown, when the document shows one.
    pub article: Option<CaptureItem>,
    /// The comments shown, in page order, with reply structure.
    pub comments: Vec<CaptureItem>,
}

/// One item a capture saw, in page order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct CaptureItem {
    /// The article or comment event.
    pub id: EventId,
    /// The comment it replies to, as the page structure shows.
    pub parent: Option<EventId>,
    /// The item's text may be cut off (it ends a truncated capture).
    pub possibly_truncated: bool,
}

/// One scraped document was observed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct Capture {
    /// BLAKE3 of the raw bytes, kept in the archive's blob store.
    pub blob: BlobId,
    /// Where the bytes came from: the path as given on the command line,
    /// `-` for stdin. Stored and covered by the entry hash, but not part of
    /// the id: the same bytes read through another path are the same capture.
    pub source: String,
    /// The page's canonical URL, when given.
    pub source_url: Option<String>,
    /// The UTC offset (`+HH:MM`) given to times the page shows without one,
    /// when the parse used one: with the blob, format and URL, everything a
    /// re-parse needs.
    pub tz: Option<String>,
    /// When the page was fetched, when given.
    pub fetched_at: Option<Timestamp>,
    /// The input format (`jsonl`, `tribune`).
    pub format: String,
    /// The version of the parser that read the bytes.
    pub parser_version: u64,
    /// The number of comments the page declares, when it declares one.
    pub declared_comments: Option<u64>,
    /// Every article and comment seen, grouped by article (in order of first
    /// appearance), in page order, with reply structure.
    pub articles: Vec<CapturedArticle>,
    /// Why the capture does not show the whole comment section (empty: it
    /// does). `None` for captures recorded before cairn recorded this
    /// (format v1); [`Capture::gaps`] infers theirs.
    #[serde(default)]
    pub gaps: Option<Vec<Gap>>,
}

/// A reason a capture does not show a whole comment section. A capture with
/// any gap is *partial*: it adds comments, versions and sightings, but never
/// says a comment was removed.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Debug,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    bincode::Decode,
    bincode::Encode,
)]
pub enum Gap {
    /// The page ends without its end marker (a cut-off download).
    NoEndMarker,
    /// The page ends inside a comment (its header or body).
    CutInsideComment,
    /// The page declares no comment count to check the comments against.
    NoDeclaredCount,
    /// The number of comments found differs from the declared count
    /// (cut off, paginated, or a count that lags).
    CountMismatch,
    /// The document says it is incomplete (JSON Lines `"complete": false`).
    MarkedIncomplete,
    /// A line that is not the layout's end marker ended the comments, and
    /// indented lines follow it: a stray line among them (`Advertisement`),
    /// with comments after it that were not read. (Last, whatever its
    /// place in words: the stored log encodes a gap by its place in this
    /// list; a cairn of archive format 6 cannot read it.)
    StrayLine,
}

impl Gap {
    /// Every gap, in the order a capture lists them (and the stored log
    /// numbers them).
    pub const ALL: [Gap; 6] = [
        Gap::NoEndMarker,
        Gap::CutInsideComment,
        Gap::NoDeclaredCount,
        Gap::CountMismatch,
        Gap::MarkedIncomplete,
        Gap::StrayLine,
    ];

    /// The code hashed into v2 capture ids and printed in JSON.
    pub fn code(self) -> &'static str {
        match self {
            Gap::NoEndMarker => "no-end-marker",
            Gap::CutInsideComment => "cut-inside-comment",
            Gap::NoDeclaredCount => "no-declared-count",
            Gap::CountMismatch => "count-mismatch",
            Gap::MarkedIncomplete => "marked-incomplete",
            Gap::StrayLine => "stray-line",
        }
    }
}

impl Capture {
    /// Every item, article versions and comments, in page order per article.
    pub fn items(&self) -> impl Iterator<Item = &CaptureItem> {
        self.articles.iter().flat_map(|a| a.article.iter().chain(a.comments.iter()))
    }

    /// The number of comments the capture shows.
    pub fn found_comments(&self) -> u64 {
        self.articles.iter().map(|a| a.comments.len() as u64).sum()
    }

    /// Why the capture is partial: as recorded (v2), or inferred for a v1
    /// capture from what it recorded: a tribune page is partial when its
    /// last item is marked possibly truncated (no end marker) or its
    /// declared count is missing or differs from the comments found; a v1
    /// JSON Lines document is taken as complete (the format had no way to
    /// say otherwise).
    pub fn gaps(&self) -> Vec<Gap> {
        if let Some(g) = &self.gaps {
            return g.clone();
        }
        let mut gaps = Vec::new();
        if self.format != "tribune" {
            return gaps;
        }
        if self.items().last().is_some_and(|i| i.possibly_truncated) {
            gaps.push(Gap::NoEndMarker);
        }
        match self.declared_comments {
            None => gaps.push(Gap::NoDeclaredCount),
            Some(n) if n != self.found_comments() => gaps.push(Gap::CountMismatch),
            Some(_) => {}
        }
        gaps
    }

    /// The gaps in words, `; `-separated (empty when complete).
    pub fn describe_gaps(&self) -> String {
        let found = self.found_comments();
        self.gaps()
            .iter()
            .map(|g| match g {
                Gap::NoEndMarker => "no end marker (the download may have been cut off)".to_string(),
                Gap::CutInsideComment => {
                    "it ends inside a comment (the last one is marked possibly truncated)".to_string()
                }
                Gap::NoDeclaredCount => "the page declares no comment count".to_string(),
                Gap::CountMismatch => match self.declared_comments {
                    Some(n) => format!("declared {n} comments, found {found}"),
                    None => format!("found {found} comments, not the declared count"),
                },
                Gap::MarkedIncomplete => "the document says it is incomplete".to_string(),
                Gap::StrayLine => {
                    "a line that is not the end marker ended the comments, and indented lines follow it \
                     (a stray line among them)"
                        .to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether the capture shows the whole comment section, so that a
    /// comment it does not show was removed.
    pub fn is_complete(&self) -> bool {
        self.gaps().is_empty()
    }

    /// When the page was observed: `fetched_at` when known, else `recorded_at`
    /// (the time its entry was appended).
    pub fn observed_at(&self, recorded_at: Timestamp) -> Timestamp {
        self.fetched_at.unwrap_or(recorded_at)
    }
}

/// What a merge folds: comments or articles.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode,
)]
pub enum MergeKind {
    /// Comment events: the folded comments are the kept one.
    Comment,
    /// Article versions: the folded versions' articles are the kept one's.
    Article,
}

impl MergeKind {
    /// `comment` or `article`.
    pub fn name(self) -> &'static str {
        match self {
            MergeKind::Comment => "comment",
            MergeKind::Article => "article",
        }
    }
}

/// `dedupe --apply`: these ids are the same thing as that id, and why.
/// Nothing is deleted; views fold the ids into the kept one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct Merge {
    /// What is merged.
    pub kind: MergeKind,
    /// The id kept.
    pub keep: EventId,
    /// The ids folded into it, sorted.
    pub fold: Vec<EventId>,
    /// Why (the dedupe rule that matched).
    pub reason: String,
}

impl Merge {
    /// Builds a merge; `fold` is sorted and deduplicated, `keep` removed
    /// from it.
    pub fn new(kind: MergeKind, keep: EventId, mut fold: Vec<EventId>, reason: &str) -> Merge {
        fold.sort();
        fold.dedup();
        fold.retain(|f| *f != keep);
        Merge { kind, keep, fold, reason: reason.to_string() }
    }
}

/// The kinds of event, in their canonical order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum EventKind {
    /// [`Article`]
    Article,
    /// [`Comment`]
    Comment,
    /// [`Capture`]
    Capture,
    /// [`Merge`]
    Merge,
}

impl EventKind {
    /// All kinds.
    pub const ALL: [EventKind; 4] =
        [EventKind::Article, EventKind::Comment, EventKind::Capture, EventKind::Merge];

    /// The lower-case name used in output and `--kind`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Article => "article",
            EventKind::Comment => "comment",
            EventKind::Capture => "capture",
            EventKind::Merge => "merge",
        }
    }

    /// Parses a name as printed by [`EventKind::name`].
    pub fn from_name(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Anything recorded in the log. The two large kinds are boxed, so that an
/// event takes the size of a comment (96 bytes; a `LogEntry` 192, where it
/// was 320): the log's readers and the views' rebuilds hold entries by the
/// ten thousand, nearly all of them comments. Boxing changes no stored or
/// hashed byte.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub enum Event {
    /// An article version.
    Article(Box<Article>),
    /// A comment version.
    Comment(Comment),
    /// A capture.
    Capture(Box<Capture>),
    /// A merge.
    Merge(Merge),
}

fn encode_item(e: &mut Encoder, item: &CaptureItem) {
    e.id(item.id.as_bytes())
        .opt(item.parent.as_ref(), |e, p| {
            e.id(p.as_bytes());
        })
        .bool(item.possibly_truncated);
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Article(_) => EventKind::Article,
            Event::Comment(_) => EventKind::Comment,
            Event::Capture(_) => EventKind::Capture,
            Event::Merge(_) => EventKind::Merge,
        }
    }

    /// The canonical identity bytes (docs/format.md, "Event ids").
    pub fn identity_bytes(&self) -> Vec<u8> {
        match self {
            Event::Article(a) => {
                let mut e = Encoder::with_tag(tags::ARTICLE);
                e.str(a.key.as_str())
                    .opt_str(a.url.as_deref())
                    .opt_str(a.title.as_deref())
                    .opt_time(a.published.as_ref())
                    .opt_str(a.byline.as_deref())
                    .list(&a.body, |e, p| {
                        e.str(p);
                    });
                e.into_bytes()
            }
            Event::Comment(c) => {
                let mut e = Encoder::with_tag(tags::COMMENT);
                e.str(c.article.as_str())
                    .opt_str(c.author.as_deref())
                    .opt_time(c.posted_at.as_ref())
                    .str(&c.body);
                e.into_bytes()
            }
            Event::Capture(c) => {
                let tag = if c.gaps.is_some() { tags::CAPTURE } else { tags::CAPTURE_V1 };
                let mut e = Encoder::with_tag(tag);
                e.id(c.blob.as_bytes())
                    .opt_time(c.fetched_at.as_ref())
                    .opt_str(c.source_url.as_deref())
                    .opt_str(c.tz.as_deref())
                    .str(&c.format)
                    .u64(c.parser_version)
                    .opt(c.declared_comments, |e, n| {
                        e.u64(n);
                    })
                    .list(&c.articles, |e, a| {
                        e.str(a.key.as_str())
                            .opt(a.article.as_ref(), encode_item)
                            .list(&a.comments, encode_item);
                    });
                if let Some(gaps) = &c.gaps {
                    e.list(gaps, |e, g| {
                        e.str(g.code());
                    });
                }
                e.into_bytes()
            }
            Event::Merge(m) => {
                let mut e = Encoder::with_tag(tags::MERGE);
                e.str(m.kind.name())
                    .id(m.keep.as_bytes())
                    .list(&m.fold, |e, f| {
                        e.id(f.as_bytes());
                    })
                    .str(&m.reason);
                e.into_bytes()
            }
        }
    }

    /// The event id: BLAKE3 of [`Event::identity_bytes`].
    pub fn id(&self) -> EventId {
        EventId(*blake3::hash(&self.identity_bytes()).as_bytes())
    }

    /// The stored field that is not part of the id (a capture's `source`).
    pub fn annotation(&self) -> Option<&str> {
        match self {
            Event::Capture(c) => Some(&c.source),
            _ => None,
        }
    }

    /// The ids this event refers to (capture items and parents).
    pub fn references(&self) -> Vec<EventId> {
        match self {
            Event::Capture(c) => c.items().flat_map(|i| std::iter::once(i.id).chain(i.parent)).collect(),
            Event::Merge(m) => std::iter::once(m.keep).chain(m.fold.iter().copied()).collect(),
            _ => Vec::new(),
        }
    }
}

/// One entry of the log: an event at a seq, recorded at a time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, bincode::Decode, bincode::Encode)]
pub struct LogEntry {
    /// Its position, dense from 1.
    pub seq: Seq,
    /// The event's id, as computed at append time.
    pub id: EventId,
    /// Wall-clock time of the append (UTC), or `SOURCE_DATE_EPOCH`.
    pub recorded_at: Timestamp,
    /// The event.
    pub event: Event,
    /// The chain head after this entry: `BLAKE3(previous head || entry
    /// hash)`. Derived, stored so that a check can name the first entry
    /// where the recomputed chain departs from the stored one.
    pub head: ChainHash,
}

impl LogEntry {
    /// The entry hash (docs/format.md, "Log entries"): BLAKE3 over the entry
    /// tag, seq, event id, recorded_at and the event's annotation.
    pub fn entry_hash(&self) -> [u8; 32] {
        *blake3::hash(&self.leaf_data()).as_bytes()
    }

    /// The entry's canonical bytes, whose BLAKE3 is the entry hash: also
    /// the leaf data of the archive's Merkle tree (docs/transparency.md).
    pub fn leaf_data(&self) -> Vec<u8> {
        let mut e = Encoder::with_tag(tags::ENTRY);
        e.u64(self.seq.0).id(self.id.as_bytes()).time(&self.recorded_at).opt_str(self.event.annotation());
        e.into_bytes()
    }

    /// The entry's leaf hash in the archive's Merkle tree:
    /// `SHA-256(0x00 || leaf data)`.
    pub fn leaf_hash(&self) -> [u8; 32] {
        crate::transparency::merkle::leaf_hash(&self.leaf_data())
    }
}

/// One chain step: `head_n = BLAKE3(head_(n-1) || entry_hash_n)`.
pub fn chain_step(prev: &ChainHash, entry_hash: &[u8; 32]) -> ChainHash {
    let mut h = blake3::Hasher::new();
    h.update(prev.as_bytes());
    h.update(entry_hash);
    ChainHash(*h.finalize().as_bytes())
}

#[cfg(test)]
mod golden {
    //! Golden vectors: these digests pin the canonical encoding. If one of
    //! these tests fails, ids changed: that is a format break, not a fix.
    use super::*;
    use crate::model::ids::to_hex;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_canonical(s).expect("valid canonical time")
    }

    fn comment() -> Event {
        Event::Comment(Comment::new(
            ArticleKey("https://example.com/a".into()),
            Some("ahmad"),
            Some(ts("2012-03-28T13:02:00+05:00")),
            "first",
        ))
    }

    #[test]
    fn comment_bytes_and_id() {
        let bytes = comment().identity_bytes();
        let expected = [
            "0000000000000010",
            "636169726e2f76312f636f6d6d656e74", // "cairn/v1/comment"
            "0000000000000015",
            "68747470733a2f2f6578616d706c652e636f6d2f61", // key
            "01",
            "0000000000000005",
            "61686d6164", // Some("ahmad")
            "01",
            "0000000000000019",
            "323031322d30332d32385431333a30323a30302b30353a3030", // time
            "0000000000000005",
            "6669727374", // body
        ]
        .concat();
        assert_eq!(to_hex(&bytes), expected);
        assert_eq!(
            comment().id().to_hex(),
            "129694b2b053bbebd72e938e79c1f0336ae00f9e82b04a9d9907d83149938496"
        );
    }

    #[test]
    fn comment_without_author_or_time() {
        let e = Event::Comment(Comment::new(ArticleKey("title:undated:x".into()), None, None, "b"));
        assert_eq!(e.id().to_hex(), "146da961e25243bdb72256c26434003ca5e745610b4c3e133f5b2f2f5b025481");
    }

    #[test]
    fn article_id() {
        let e = Event::Article(Box::new(Article::new(
            ArticleKey("https://example.com/a".into()),
            Some("https://example.com/a".into()),
            Some("A title"),
            Some(ts("2012-03-28")),
            None,
            &["One.".to_string(), "Two.".to_string()],
        )));
        assert_eq!(e.id().to_hex(), "f7f482c6c0d8d9a1d93cc8655d414d55c78880f4642e1cde96b96d2549e0bb4b");
    }

    fn capture() -> Event {
        let c = comment().id();
        Event::Capture(Box::new(Capture {
            blob: BlobId([7; 32]),
            source: "page.txt".into(),
            source_url: Some("https://example.com/a".into()),
            tz: Some("+05:00".into()),
            fetched_at: Some(ts("2012-03-30T08:00:00+00:00")),
            format: "tribune".into(),
            parser_version: 1,
            declared_comments: Some(44),
            articles: vec![CapturedArticle {
                key: ArticleKey("https://example.com/a".into()),
                article: None,
                comments: vec![
                    CaptureItem { id: c, parent: None, possibly_truncated: false },
                    CaptureItem { id: EventId([9; 32]), parent: Some(c), possibly_truncated: true },
                ],
            }],
            gaps: None,
        }))
    }

    #[test]
    fn gaps_keep_their_stored_numbers_and_codes() {
        // The log stores a gap by its place in the enum (bincode): a new gap
        // goes last, so every stored capture reads as it was written.
        let stored: Vec<Vec<u8>> = Gap::ALL
            .iter()
            .map(|g| bincode::encode_to_vec(g, bincode::config::standard()).unwrap())
            .collect();
        assert_eq!(stored, (0u8..6).map(|n| vec![n]).collect::<Vec<_>>());
        let codes: Vec<&str> = Gap::ALL.iter().map(|g| g.code()).collect();
        assert_eq!(
            codes,
            [
                "no-end-marker",
                "cut-inside-comment",
                "no-declared-count",
                "count-mismatch",
                "marked-incomplete",
                "stray-line"
            ]
        );
        let mut sorted = Gap::ALL;
        sorted.sort();
        assert_eq!(sorted, Gap::ALL, "a capture lists its gaps in this order");
        // Every gap is in `ALL` (a new one fails to compile here until it
        // is given its place).
        let place = |g: Gap| match g {
            Gap::NoEndMarker => 0,
            Gap::CutInsideComment => 1,
            Gap::NoDeclaredCount => 2,
            Gap::CountMismatch => 3,
            Gap::MarkedIncomplete => 4,
            Gap::StrayLine => 5,
        };
        assert!(Gap::ALL.iter().enumerate().all(|(i, g)| place(*g) == i));
    }

    #[test]
    fn v1_captures_infer_their_gaps() {
        let Event::Capture(mut c) = capture() else { unreachable!() };
        assert_eq!(c.gaps(), vec![Gap::NoEndMarker, Gap::CountMismatch]);
        c.declared_comments = None;
        c.articles[0].comments[1].possibly_truncated = false;
        assert_eq!(c.gaps(), vec![Gap::NoDeclaredCount]);
        c.declared_comments = Some(2);
        assert!(c.is_complete());
        c.format = "jsonl".into();
        c.declared_comments = Some(9);
        assert!(c.is_complete(), "v1 JSON Lines captures had no way to say they were partial");
    }

    #[test]
    fn v2_capture_bytes_and_id() {
        let Event::Capture(mut c) = capture() else { unreachable!() };
        c.gaps = Some(vec![Gap::NoEndMarker, Gap::CountMismatch]);
        let v2 = Event::Capture(c.clone());
        let bytes = v2.identity_bytes();
        let v1 = capture().identity_bytes();
        // The v2 tag in place of the v1 tag, the v1 fields, then the gaps.
        assert_eq!(&bytes[..24], &Encoder::with_tag(tags::CAPTURE).into_bytes()[..]);
        assert_eq!(&bytes[24..24 + v1.len() - 24], &v1[24..]);
        let tail = [
            "0000000000000002",
            "000000000000000d",
            "6e6f2d656e642d6d61726b6572", // "no-end-marker"
            "000000000000000e",
            "636f756e742d6d69736d61746368", // "count-mismatch"
        ]
        .concat();
        assert_eq!(to_hex(&bytes[v1.len()..]), tail);
        assert_eq!(v2.id().to_hex(), "bc57c49c76a7d0eb2d32691ced12857dd187e30da9243699c7916c9a4d03ad67");
        c.gaps = Some(Vec::new());
        assert_ne!(Event::Capture(c).id(), v2.id(), "complete and partial captures differ");
    }

    #[test]
    fn capture_id_ignores_source_path() {
        let a = capture();
        let mut b = capture();
        if let Event::Capture(c) = &mut b {
            c.source = "elsewhere/page.txt".into();
        }
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().to_hex(), "cf4717c01f369d07f5646330840243545016add890a6ffecac66e88c154edbb3");
    }

    #[test]
    fn entry_hash_and_chain() {
        let entry = LogEntry {
            seq: Seq(1),
            id: comment().id(),
            recorded_at: ts("2026-01-01T00:00:00+00:00"),
            event: comment(),
            head: ChainHash::GENESIS,
        };
        assert_eq!(
            to_hex(&entry.entry_hash()),
            "092e18aa7114c7d78e153cbf78508d7a1e27e79c92dcf40b72cc4983c1959c15"
        );
        let head1 = chain_step(&ChainHash::GENESIS, &entry.entry_hash());
        assert_eq!(head1.to_hex(), "98e4b9907d2986849bd7c17551c83e4787669d66ccf5f550aea3802c08d2bc19");
        let cap = LogEntry {
            seq: Seq(2),
            id: capture().id(),
            recorded_at: entry.recorded_at,
            event: capture(),
            head: head1,
        };
        let mut moved = cap.clone();
        if let Event::Capture(c) = &mut moved.event {
            c.source = "elsewhere".into();
        }
        assert_ne!(cap.entry_hash(), moved.entry_hash(), "the source path is covered by the entry hash");
    }
}

#[cfg(test)]
mod stored {
    use super::*;
    use proptest::prelude::*;

    fn strict<T: bincode::Decode<()>>(bytes: &[u8]) -> std::result::Result<T, bincode::error::DecodeError> {
        let (value, used) = bincode::decode_from_slice(bytes, bincode::config::standard())?;
        assert_eq!(used, bytes.len(), "every byte read");
        Ok(value)
    }

    proptest! {
        /// A comment as serde writes it (the stored form) reads back through
        /// the hand-written `Decode`, from a slice and from a reader that
        /// is none (the other path of `decode_text`).
        #[test]
        fn comments_read_back_as_written(
            key in "\\PC{0,20}",
            author in proptest::option::of("\\PC{0,12}"),
            posted in proptest::option::of(0i64..2_000_000_000),
            body in "\\PC{0,40}",
        ) {
            let c = Comment {
                article: ArticleKey(key),
                author,
                posted_at: posted.and_then(Timestamp::from_unix),
                body,
            };
            let bytes = bincode::serde::encode_to_vec(&c, bincode::config::standard()).unwrap();
            prop_assert_eq!(&bincode::encode_to_vec(&c, bincode::config::standard()).unwrap(), &bytes);
            prop_assert_eq!(&strict::<Comment>(&bytes).unwrap(), &c);
            let (read, _): (Comment, usize) =
                bincode::decode_from_std_read(&mut &bytes[..], bincode::config::standard())
                    .map(|c| (c, 0))
                    .unwrap();
            prop_assert_eq!(&read, &c);
        }
    }

    #[test]
    fn texts_that_are_not_utf8_or_options_out_of_range_are_refused() {
        let c = Comment::new(ArticleKey("k".into()), Some("ab"), None, "body");
        let bytes = bincode::serde::encode_to_vec(&c, bincode::config::standard()).unwrap();
        // key: len 1, "k"; author: 1, len 2, "ab"; posted_at: 0; body.
        assert_eq!(&bytes[..7], &[1, b'k', 1, 2, b'a', b'b', 0]);
        let mut bad = bytes.clone();
        bad[4] = 0xff;
        assert!(matches!(strict::<Comment>(&bad), Err(bincode::error::DecodeError::Utf8 { .. })));
        assert!(bincode::decode_from_std_read::<Comment, _, _>(&mut &bad[..], bincode::config::standard())
            .is_err());
        let mut bad = bytes.clone();
        bad[2] = 2;
        assert!(matches!(
            strict::<Comment>(&bad),
            Err(bincode::error::DecodeError::UnexpectedVariant { .. })
        ));
        // A length past the end is refused, not read past.
        let mut bad = bytes.clone();
        bad[3] = 60;
        assert!(strict::<Comment>(&bad).is_err());
        assert!(strict::<Comment>(&bytes[..bytes.len() - 1]).is_err());
    }
}
