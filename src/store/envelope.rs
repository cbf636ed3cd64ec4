//! The storage envelope: one format-version byte, one codec byte (`0`:
//! bincode 2 in the standard configuration; `1`: the same, zstd-compressed,
//! used when it is smaller for values of 512 bytes or more), the payload,
//! then an 8-byte check (the first 8 bytes of BLAKE3 over everything
//! before it). Decoding checks the version,
//! the check and that every byte was consumed, so a changed byte anywhere in
//! a stored value is reported as corruption rather than read as a different
//! value. These bytes are for storage only: no id or chain hash covers them.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The current envelope version.
pub const ENVELOPE_VERSION: u8 = 1;
const CHECK_LEN: usize = 8;
const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// Values at least this long are offered to zstd.
const COMPRESS_FROM: usize = 512;
/// The largest value stored and read back (decoded size). Writing refuses
/// anything larger ([`encode_segment`], and ingest checks each document's
/// events against [`segment_size_bound`] before appending them), so every
/// record written can be read.
pub const MAX_VALUE: usize = 256 << 20;

/// An upper bound on the encoded size of a segment holding `events` (each
/// field's bytes plus a generous fixed cost per event and per capture
/// item), for refusing a document before anything of it is written.
pub fn segment_size_bound(events: &[crate::model::Event]) -> u64 {
    use crate::model::Event;
    const PER_EVENT: u64 = 256;
    const PER_ITEM: u64 = 96;
    let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() as u64);
    events
        .iter()
        .map(|e| {
            PER_EVENT
                + match e {
                    Event::Article(a) => {
                        (a.key.as_str().len() + a.body.iter().map(|p| p.len() + 8).sum::<usize>()) as u64
                            + opt(&a.url)
                            + opt(&a.title)
                            + opt(&a.byline)
                    }
                    Event::Comment(c) => (c.article.as_str().len() + c.body.len()) as u64 + opt(&c.author),
                    Event::Capture(c) => {
                        (c.source.len() + c.format.len()) as u64
                            + opt(&c.source_url)
                            + c.articles.iter().map(|a| a.key.as_str().len() as u64 + PER_ITEM).sum::<u64>()
                            + c.items().count() as u64 * PER_ITEM
                    }
                    Event::Merge(m) => (m.fold.len() * 40 + m.reason.len()) as u64,
                }
        })
        .sum()
}

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// A zstd context kept per thread (creating one per value or page showed in
/// profiles: it allocates and clears its tables): `slot`'s, made by `make`
/// on first use. zstd's output depends on the parameters and the input,
/// not on the context's history.
pub(crate) type ContextSlot<C> = std::thread::LocalKey<std::cell::RefCell<Option<C>>>;

/// Runs `f` with this thread's context from `slot` ([`ContextSlot`]).
pub(crate) fn with_context<C: 'static, T>(
    slot: &'static ContextSlot<C>,
    make: impl FnOnce() -> std::io::Result<C>,
    f: impl FnOnce(&mut C) -> std::io::Result<T>,
) -> std::io::Result<T> {
    slot.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some(c) => f(c),
            None => f(c.insert(make()?)),
        }
    })
}

/// zstd's fast mode, level -1 (on the 100k bench: replay 0.92x the time of
/// level 1, the log 0.5% larger), with a context reused per thread. The
/// level only decides how small the stored bytes are: no id, chain or
/// digest covers them (a view's digest covers the bodies: [`content`]);
/// only the storage checks do, made over what is written.
const LEVEL: i32 = -1;

fn compress(body: &[u8]) -> Option<Vec<u8>> {
    with_context(&COMPRESSOR, || zstd::bulk::Compressor::new(LEVEL), |c| c.compress(body)).ok()
}

fn decompress(payload: &[u8]) -> std::io::Result<Vec<u8>> {
    decompress_bounded(payload, MAX_VALUE as u64)
}

/// Refuses bytes after `payload`'s first zstd frame: zstd would read on
/// into a second frame, or skip a skippable one, so that bytes appended to
/// a stored value or blob (its check made again) would go unseen. (A
/// payload that is not a whole frame is left to the decompressor to name.)
pub(crate) fn one_frame(payload: &[u8]) -> std::io::Result<()> {
    match zstd::zstd_safe::find_frame_compressed_size(payload) {
        Ok(len) if len != payload.len() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes follow its frame", payload.len() - len),
        )),
        _ => Ok(()),
    }
}

/// Decompresses a zstd frame into a buffer of exactly its declared size
/// (every frame cairn writes declares it; one that does not is read as a
/// stream, still bounded), at most `limit` bytes: damaged bytes cannot make
/// the reader allocate without bound, and bytes after the frame are
/// refused. Asking zstd for `MAX_VALUE` of
/// capacity instead made every value a fresh 256 MiB mapping whose pages
/// were faulted in and unmapped again: a quarter of verify's time at 1M. A
/// declared size above `limit`, or a frame whose content is not its
/// declared size, is refused.
pub(crate) fn decompress_bounded(payload: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    one_frame(payload)?;
    match zstd::zstd_safe::get_frame_content_size(payload) {
        Ok(Some(n)) if n > limit => {
            Err(invalid(format!("it declares {n} bytes, over the ceiling of {limit}")))
        }
        Ok(Some(n)) => {
            let mut out = Vec::with_capacity(n as usize);
            with_context(&DECOMPRESSOR, zstd::bulk::Decompressor::new, |d| {
                d.decompress_to_buffer(payload, &mut out)
            })?;
            if out.len() as u64 != n {
                return Err(invalid(format!("it holds {} bytes, its frame declares {n}", out.len())));
            }
            Ok(out)
        }
        Ok(None) => {
            // Not written by cairn, but a valid frame: read it as a stream,
            // still bounded.
            let mut out = Vec::new();
            let decoder = zstd::stream::read::Decoder::new(payload)?;
            std::io::Read::read_to_end(&mut std::io::Read::take(decoder, limit + 1), &mut out)?;
            if out.len() as u64 > limit {
                return Err(invalid(format!("it holds more than the ceiling of {limit} bytes")));
            }
            Ok(out)
        }
        Err(_) => Err(invalid("not a zstd frame".into())),
    }
}

/// What an enveloped value holds, whatever codec stored it: its envelope
/// version and its uncompressed body; `None` when `bytes` is not an intact
/// envelope (too short, its check fails, an unknown codec, a frame that
/// does not decompress within [`MAX_VALUE`]). A view's digest and the
/// audit's comparison of views cover this, not the stored bytes: zstd may
/// compress the same body to other bytes in another version or at another
/// level, and a value written raw and one compressed hold the same.
pub(crate) fn content(bytes: &[u8]) -> Option<(u8, std::borrow::Cow<'_, [u8]>)> {
    let (version, codec, payload) = unwrap_checked(bytes).ok()?;
    Some((version, body_of(codec, payload).ok()?))
}

/// Whether `bytes` is an intact envelope: long enough, and its check
/// bytes those of what they follow.
pub(crate) fn intact(bytes: &[u8]) -> bool {
    unwrap_checked(bytes).is_ok()
}

/// Whether `start`, the first bytes of something, could begin an envelope
/// (a version cairn writes, a codec it knows): a cheap test before bytes
/// found by a search are read and checked whole.
pub(crate) fn could_start(start: [u8; 2]) -> bool {
    (1..=SEGMENT_VERSION.max(ENVELOPE_VERSION)).contains(&start[0]) && (start[1] == RAW || start[1] == ZSTD)
}

/// Whether `bytes` end where an envelope's check bytes would be with
/// zeros only: a write that stopped before its last bytes reached the disk
/// (a power loss leaves them zeros). Check bytes that are all zeros by
/// chance come once in 2^64 envelopes.
pub(crate) fn check_unwritten(bytes: &[u8]) -> bool {
    bytes.len() >= CHECK_LEN && bytes[bytes.len() - CHECK_LEN..].iter().all(|b| *b == 0)
}

/// The check bytes an envelope ends with (BLAKE3 of what they follow, cut
/// to [`CHECK_LEN`]), as they stand: [`intact`] verifies them.
pub(crate) fn check_bytes(bytes: &[u8]) -> Option<&[u8]> {
    bytes.len().checked_sub(CHECK_LEN).map(|at| &bytes[at..])
}

fn check(bytes: &[u8]) -> [u8; CHECK_LEN] {
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&blake3::hash(bytes).as_bytes()[..CHECK_LEN]);
    out
}

/// Wraps raw bincode bytes in an envelope with a valid check, so tests can
/// reach the decoder with arbitrary contents.
#[cfg(test)]
pub(crate) fn seal_raw(body: &[u8]) -> Vec<u8> {
    sealed(ENVELOPE_VERSION, RAW, body)
}

/// `bytes` (an envelope) sealed again around the same body: raw with
/// `None`, else zstd at `level`, as a cairn built with another compressor
/// could have stored it.
#[cfg(test)]
pub(crate) fn reseal(bytes: &[u8], level: Option<i32>) -> Vec<u8> {
    let (version, body) = content(bytes).expect("an intact envelope");
    match level {
        None => sealed(version, RAW, &body),
        Some(level) => sealed(version, ZSTD, &zstd::bulk::compress(&body, level).unwrap()),
    }
}

/// Encodes `value` inside the envelope.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Internal(format!("cannot encode value: {e}")))?;
    Ok(seal(&body))
}

/// The bincode body of `value`, not yet in an envelope: for values that
/// may be replaced or read again before they are stored (a view's pending
/// writes). [`seal_body`] makes the bytes [`encode`] gives, once, at the
/// end; [`decode_unsealed`] reads it back meanwhile. Neither the check nor
/// the compression is computed for a value that never reaches the store.
pub fn encode_body<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Internal(format!("cannot encode value: {e}")))
}

/// [`encode_body`] through bincode's own `Encode`: the same bytes for a
/// type that derives it alongside `Serialize`.
pub fn encode_native_body<T: bincode::Encode>(value: &T) -> Result<Vec<u8>> {
    bincode::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Internal(format!("cannot encode value: {e}")))
}

/// [`decode_native`] without serde's reader as a fallback, for tests that
/// check the native reader itself.
#[cfg(test)]
pub(crate) fn decode_native_strict<T: bincode::Decode<()>>(bytes: &[u8], what: &str) -> Result<T> {
    let (_, body) = open(bytes, what, &[ENVELOPE_VERSION])?;
    decode_native_body(&body, what)
}

/// [`decode_unsealed`] through bincode's own `Decode`, serde's reader for
/// whatever it refuses.
pub fn decode_native_unsealed<T: bincode::Decode<()> + DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T> {
    decode_native_body(body, what).or_else(|_| decode_body(body, what))
}

/// The envelope [`encode`] gives for a body from [`encode_body`].
pub fn seal_body(body: &[u8]) -> Vec<u8> {
    seal(body)
}

/// [`seal_body`] without compression: the envelope of a value that is
/// read back and thrown away, never kept (a scratch tree's,
/// [`crate::store::kv::KvTree::raw_values`]). It holds what
/// [`seal_body`]'s does (both open to the same body).
pub fn seal_body_raw(body: &[u8]) -> Vec<u8> {
    sealed(ENVELOPE_VERSION, RAW, body)
}

/// Decodes a body from [`encode_body`] (no envelope, no check: it never
/// left memory), every byte of it.
pub fn decode_unsealed<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    decode_body(body, what)
}

/// Wraps a bincode body: zstd-compressed when that is smaller for bodies
/// of [`COMPRESS_FROM`] bytes or more.
fn seal(body: &[u8]) -> Vec<u8> {
    seal_as(ENVELOPE_VERSION, body)
}

/// [`seal`] under envelope version `version`.
fn seal_as(version: u8, body: &[u8]) -> Vec<u8> {
    let compressed =
        if body.len() >= COMPRESS_FROM { compress(body).filter(|z| z.len() < body.len()) } else { None };
    match compressed {
        Some(z) => sealed(version, ZSTD, &z),
        None => sealed(version, RAW, body),
    }
}

/// `payload` in an envelope: version, codec, the payload, its check bytes.
fn sealed(version: u8, codec: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 2 + CHECK_LEN);
    out.extend_from_slice(&[version, codec]);
    out.extend_from_slice(payload);
    let c = check(&out);
    out.extend_from_slice(&c);
    out
}

/// The envelope version of log segments: 2 since captures record their
/// completeness (format v2 captures). Segments written under version 1
/// hold the v1 layout and are still read ([`decode_segment`]).
pub const SEGMENT_VERSION: u8 = 2;

/// Encodes a log segment (envelope version [`SEGMENT_VERSION`]).
/// Written through bincode's own `Encode` (derived on the model types),
/// which writes the bytes serde's path writes (`native_encode_writes_what_
/// serde_writes` checks it), ids in one piece instead of one byte at a time.
pub fn encode_segment(entries: &[crate::model::LogEntry]) -> Result<Vec<u8>> {
    let body = bincode::encode_to_vec(entries, bincode::config::standard())
        .map_err(|e| Error::Internal(format!("cannot encode value: {e}")))?;
    if body.len() > MAX_VALUE {
        return Err(Error::Usage(format!(
            "a log segment of {} bytes is larger than cairn reads back ({MAX_VALUE}); nothing was written",
            body.len()
        )));
    }
    Ok(seal_as(SEGMENT_VERSION, &body))
}

/// Decodes a log segment written by this cairn (version 2) or by one
/// before captures recorded completeness (version 1, the v1 layout).
pub fn decode_segment(bytes: &[u8], what: &str) -> Result<Vec<crate::model::LogEntry>> {
    let (version, body) = open(bytes, what, &[SEGMENT_VERSION, 1])?;
    decode_segment_body(version, &body, what)
}

/// A segment's body decoded whole, by its envelope version.
fn decode_segment_body(version: u8, body: &[u8], what: &str) -> Result<Vec<crate::model::LogEntry>> {
    if version == SEGMENT_VERSION {
        decode_segment_entries(body, what)
    } else {
        let old: Vec<legacy::LogEntryV1> = decode_body(body, what)?;
        Ok(old.into_iter().map(Into::into).collect())
    }
}

/// Opens a log segment (its check bytes verified, its body decompressed)
/// for reading its entries one at a time, in order: a reader that needs one
/// entry stops decoding there (a document's capture, with its id lists,
/// comes last). A segment of the v1 layout is decoded whole. Passes over
/// the whole log use [`decode_segment`].
pub fn open_segment(bytes: &[u8], what: &str) -> Result<SegmentEntries> {
    let (version, body) = open(bytes, what, &[SEGMENT_VERSION, 1])?;
    if version != SEGMENT_VERSION {
        return Ok(SegmentEntries::from_entries(decode_segment_body(version, &body, what)?));
    }
    let config = bincode::config::standard().with_limit::<MAX_VALUE>();
    // The entry count, as serde writes a sequence's length.
    let (count, used): (u64, usize) = bincode::serde::decode_from_slice(&body, config)
        .map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    Ok(SegmentEntries {
        source: Source::Body { body: body.into_owned(), at: used, left: count, what: what.to_string() },
        count,
        end: None,
    })
}

/// The entries of one log segment, decoded as they are read
/// ([`open_segment`]).
pub struct SegmentEntries {
    source: Source,
    /// How many entries the segment holds.
    count: u64,
    /// Its last seq, known once its first entry was read (seqs are dense).
    end: Option<crate::model::Seq>,
}

enum Source {
    Body { body: Vec<u8>, at: usize, left: u64, what: String },
    Decoded(std::vec::IntoIter<crate::model::LogEntry>),
}

impl SegmentEntries {
    /// Entries already decoded (a store that keeps them so).
    pub fn from_entries(entries: Vec<crate::model::LogEntry>) -> SegmentEntries {
        let end = entries.last().map(|e| e.seq);
        SegmentEntries { count: entries.len() as u64, source: Source::Decoded(entries.into_iter()), end }
    }

    /// The segment's last seq, once an entry of it was read: a reader can
    /// tell whether a seq is in it without decoding further.
    pub fn end(&self) -> Option<crate::model::Seq> {
        self.end
    }
}

impl SegmentEntries {
    /// Moves past the entries before `seq`: the next one read is the first
    /// at or past it. A comment's entry (most of a segment) is measured
    /// and checked without being decoded into owned values
    /// (`skim_comment_entry`: no allocation); any other entry, or one that
    /// does not measure, is decoded and dropped, so an entry that does not
    /// decode stops the read as before. (A reader taking a few comments from each segment, as
    /// `cairn author` does, decoded every comment before each: a fifth of
    /// its time.) The entry at `seq` is then decoded whole, so a
    /// measurement gone wrong surfaces as an error there, never as another
    /// entry.
    pub fn skip_before(&mut self, seq: crate::model::Seq) -> Result<()> {
        loop {
            match &mut self.source {
                Source::Decoded(it) => {
                    while it.as_slice().first().is_some_and(|e| e.seq < seq) {
                        it.next();
                    }
                    return Ok(());
                }
                Source::Body { body, at, left, .. } => {
                    if *left == 0 {
                        return Ok(());
                    }
                    // Its seq (the entry's first field) says whether to stop,
                    // before anything else of it is read.
                    let config = bincode::config::standard().with_limit::<MAX_VALUE>();
                    if bincode::decode_from_slice::<u64, _>(&body[*at..], config)
                        .is_ok_and(|(s, _)| s >= seq.0)
                    {
                        return Ok(());
                    }
                    if let Some((s, used)) = skim_comment_entry(&body[*at..]) {
                        if self.end.is_none() {
                            self.end = Some(crate::model::Seq(s.saturating_add(self.count - 1)));
                        }
                        *at += used;
                        *left -= 1;
                        continue;
                    }
                }
            }
            match self.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    }
}

/// The seq and encoded length of the log entry at the start of `bytes`
/// when it holds a comment, measured without decoding it into owned
/// values: the fields of [`crate::model::LogEntry`] (seq, id, recorded
/// time, the event, the chain head) and of [`crate::model::Comment`]
/// (article key, author, posted time, body) in their bincode layout,
/// strings borrowed. `None` for any other event, or bytes that do not
/// decode as a comment's entry (which the full decode then names). (A
/// unit test holds it to the full decode's length.)
fn skim_comment_entry(bytes: &[u8]) -> Option<(u64, usize)> {
    use crate::model::Timestamp;
    /// The variant index of [`crate::model::Event::Comment`].
    const COMMENT: u32 = 1;
    let config = bincode::config::standard().with_limit::<MAX_VALUE>();
    let ((seq, _id, _recorded, variant), head): ((u64, [u8; 32], Timestamp, u32), usize) =
        bincode::decode_from_slice(bytes, config).ok()?;
    if variant != COMMENT {
        return None;
    }
    // Text and times are checked as decoding checks them (UTF-8, a valid
    // time), so that an entry decoding refuses is refused here too.
    type CommentAndHead<'a> = (&'a str, Option<&'a str>, Option<Timestamp>, &'a str, [u8; 32]);
    let (_, rest): (CommentAndHead<'_>, usize) =
        bincode::borrow_decode_from_slice(bytes.get(head..)?, config).ok()?;
    Some((seq, head + rest))
}

impl Iterator for SegmentEntries {
    type Item = Result<crate::model::LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Decoded(it) => it.next().map(Ok),
            Source::Body { body, at, left, what } => {
                if *left == 0 {
                    if *at != body.len() {
                        let trailing = body.len() - *at;
                        *at = body.len();
                        return Some(Err(Error::Corrupt(format!(
                            "{what}: {trailing} trailing bytes after the value"
                        ))));
                    }
                    return None;
                }
                let config = bincode::config::standard().with_limit::<MAX_VALUE>();
                match decode_entry(&body[*at..], config) {
                    Ok((entry, used)) => {
                        if self.end.is_none() {
                            self.end = Some(crate::model::Seq(entry.seq.0.saturating_add(self.count - 1)));
                        }
                        *at += used;
                        *left -= 1;
                        Some(Ok(entry))
                    }
                    Err(e) => {
                        // Nothing more is read from a damaged body.
                        *left = 0;
                        *at = body.len();
                        Some(Err(Error::Corrupt(format!("{what}: {e}"))))
                    }
                }
            }
        }
    }
}

/// The storage layout of log entries before format v2 (captures without
/// `gaps`), for reading segments written then.
mod legacy {
    use crate::model::{
        Article, BlobId, Capture, CapturedArticle, ChainHash, Comment, Event, EventId, LogEntry, Merge, Seq,
        Timestamp,
    };
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct LogEntryV1 {
        seq: Seq,
        id: EventId,
        recorded_at: Timestamp,
        event: EventV1,
        head: ChainHash,
    }

    #[derive(Deserialize)]
    enum EventV1 {
        Article(Article),
        Comment(Comment),
        Capture(CaptureV1),
        Merge(Merge),
    }

    #[derive(Deserialize)]
    struct CaptureV1 {
        blob: BlobId,
        source: String,
        source_url: Option<String>,
        tz: Option<String>,
        fetched_at: Option<Timestamp>,
        format: String,
        parser_version: u64,
        declared_comments: Option<u64>,
        articles: Vec<CapturedArticle>,
    }

    impl From<LogEntryV1> for LogEntry {
        fn from(e: LogEntryV1) -> LogEntry {
            let event = match e.event {
                EventV1::Article(a) => Event::Article(Box::new(a)),
                EventV1::Comment(c) => Event::Comment(c),
                EventV1::Merge(m) => Event::Merge(m),
                EventV1::Capture(c) => Event::Capture(Box::new(Capture {
                    blob: c.blob,
                    source: c.source,
                    source_url: c.source_url,
                    tz: c.tz,
                    fetched_at: c.fetched_at,
                    format: c.format,
                    parser_version: c.parser_version,
                    declared_comments: c.declared_comments,
                    articles: c.articles,
                    gaps: None,
                })),
            };
            LogEntry { seq: e.seq, id: e.id, recorded_at: e.recorded_at, event, head: e.head }
        }
    }
}

/// Decodes an enveloped value; `what` names it in errors (`segment at seq 12`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let (_, body) = open(bytes, what, &[ENVELOPE_VERSION])?;
    decode_body(&body, what)
}

/// [`decode`] through bincode's own `Decode` instead of serde: the same
/// bytes, read faster where a value holds many ids (serde's path reads an
/// id one byte at a time). For values written by [`encode`] whose type
/// derives both.
pub fn decode_native<T: bincode::Decode<()> + DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let (_, body) = open(bytes, what, &[ENVELOPE_VERSION])?;
    decode_native_unsealed(&body, what)
}

/// [`decode_native`] of the value's first part: a `T` its body begins
/// with, the rest of the body not read (the value's check bytes were
/// found right, so the rest is as it was written). For values that hold
/// several parts one after the other, of which a reader wants the first.
pub fn decode_native_prefix<T: bincode::Decode<()>>(bytes: &[u8], what: &str) -> Result<T> {
    let (_, body) = open(bytes, what, &[ENVELOPE_VERSION])?;
    let config = bincode::config::standard().with_limit::<MAX_VALUE>();
    let (value, _): (T, usize) =
        bincode::decode_from_slice(&body, config).map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    Ok(value)
}

/// Checks an envelope (length, check bytes, a version among `versions`,
/// codec) and returns its version and bincode body, inflated.
fn open<'a>(bytes: &'a [u8], what: &str, versions: &[u8]) -> Result<(u8, std::borrow::Cow<'a, [u8]>)> {
    let corrupt = |m: String| Error::Corrupt(format!("{what}: {m}"));
    let (version, codec, payload) = unwrap_checked(bytes).map_err(corrupt)?;
    if !versions.contains(&version) {
        return Err(corrupt(format!("envelope version {version}, expected {}", versions[0])));
    }
    Ok((version, body_of(codec, payload).map_err(corrupt)?))
}

/// An envelope's version, codec and payload, once its length and check
/// bytes are found right; else why not.
fn unwrap_checked(bytes: &[u8]) -> std::result::Result<(u8, u8, &[u8]), String> {
    if bytes.len() < 2 + CHECK_LEN {
        return Err(format!("{} bytes, too short for a value", bytes.len()));
    }
    let (content, stored) = bytes.split_at(bytes.len() - CHECK_LEN);
    if check(content) != stored {
        return Err("check bytes do not match the value (it was altered or damaged)".into());
    }
    Ok((content[0], content[1], &content[2..]))
}

/// The body a payload stored under `codec` holds; else why not.
fn body_of(codec: u8, payload: &[u8]) -> std::result::Result<std::borrow::Cow<'_, [u8]>, String> {
    match codec {
        RAW => Ok(std::borrow::Cow::Borrowed(payload)),
        ZSTD => {
            decompress(payload).map(std::borrow::Cow::Owned).map_err(|e| format!("cannot decompress: {e}"))
        }
        c => Err(format!("unknown codec {c}")),
    }
}

/// Decodes a bincode body, every byte of it.
fn decode_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    // The limit bounds what a damaged length prefix can make the decoder claim.
    let config = bincode::config::standard().with_limit::<MAX_VALUE>();
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(body, config)
        .map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    whole(value, used, body, what)
}

/// `value`, decoded from the first `used` bytes of `body`, if that was all
/// of it.
fn whole<T>(value: T, used: usize, body: &[u8], what: &str) -> Result<T> {
    if used != body.len() {
        return Err(Error::Corrupt(format!("{what}: {} trailing bytes after the value", body.len() - used)));
    }
    Ok(value)
}

/// Decodes a segment body (version [`SEGMENT_VERSION`]) whole, every byte
/// of it. The entries are written and read through bincode's own
/// `Encode`/`Decode` (derived on the model types), which write and read the
/// bytes serde's path does: serde's path reads each 32-byte id one byte at
/// a time, and that was a quarter of a log reader's time.
/// `native_decode_reads_what_serde_wrote` and
/// `native_encode_writes_what_serde_writes` check the two agree.
///
/// The entries are decoded one at a time, each under the value limit
/// ([`decode_entry`]): bincode's own `Vec` decoding counts
/// `len x size_of::<T>()` in memory against the limit before reading
/// anything, where serde's counts the bytes it reads, so a whole
/// `Vec<LogEntry>` of 1.5M merges (about 150 bytes each stored, 192 in
/// memory) would be refused though serde reads it.
pub(crate) fn decode_segment_entries(body: &[u8], what: &str) -> Result<Vec<crate::model::LogEntry>> {
    segment_entries_in(body, what, bincode::config::standard().with_limit::<MAX_VALUE>())
}

/// The smallest stored log entry: a seq, an id, a time, an event tag and
/// its fields, and a head (over 64 bytes); so a count the body cannot
/// hold reserves no more than the body could.
const MIN_ENTRY_BYTES: usize = 64;

/// [`decode_segment_entries`] under `config`'s limit (for each entry).
fn segment_entries_in(
    body: &[u8],
    what: &str,
    config: impl bincode::config::Config,
) -> Result<Vec<crate::model::LogEntry>> {
    let corrupt = |e: bincode::error::DecodeError| Error::Corrupt(format!("{what}: {e}"));
    let (count, mut at): (u64, usize) = bincode::decode_from_slice(body, config).map_err(corrupt)?;
    let mut entries =
        Vec::with_capacity(usize::try_from(count).unwrap_or(usize::MAX).min(body.len() / MIN_ENTRY_BYTES));
    for _ in 0..count {
        let (entry, used) = decode_entry(&body[at..], config).map_err(corrupt)?;
        at += used;
        entries.push(entry);
    }
    whole(entries, at, body, what)
}

/// One log entry from the front of `rest` and the bytes it took: bincode's
/// own reader, and serde's for whatever it refuses (a faster path, never a
/// stricter one).
fn decode_entry(
    rest: &[u8],
    config: impl bincode::config::Config,
) -> std::result::Result<(crate::model::LogEntry, usize), bincode::error::DecodeError> {
    bincode::decode_from_slice(rest, config).or_else(|_| bincode::serde::decode_from_slice(rest, config))
}

/// Decodes a bincode body through bincode's own `Decode`, every byte of it.
fn decode_native_body<T: bincode::Decode<()>>(body: &[u8], what: &str) -> Result<T> {
    let config = bincode::config::standard().with_limit::<MAX_VALUE>();
    let (value, used): (T, usize) =
        bincode::decode_from_slice(body, config).map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    whole(value, used, body, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventId, LogEntry};

    #[test]
    fn a_sealed_body_gives_the_encoded_bytes() {
        let small = "short".to_string();
        let large: Vec<String> = (0..200).map(|i| format!("value {}", i % 7)).collect();
        assert_eq!(seal_body(&encode_body(&small).unwrap()), encode(&small).unwrap());
        assert_eq!(seal_body(&encode_body(&large).unwrap()), encode(&large).unwrap());
        assert!(encode(&large).unwrap().len() < encode_body(&large).unwrap().len());
        assert_eq!(decode_unsealed::<Vec<String>>(&encode_body(&large).unwrap(), "v").unwrap(), large);
        assert_eq!(decode::<Vec<String>>(&seal_body(&encode_body(&large).unwrap()), "v").unwrap(), large);
        let mut longer = encode_body(&small).unwrap();
        longer.push(0);
        assert!(decode_unsealed::<String>(&longer, "v").unwrap_err().to_string().contains("trailing"));
    }

    #[test]
    fn decompression_trusts_no_declared_size() {
        let raw: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let frame = compress(&raw).unwrap();
        assert_eq!(decompress(&frame).unwrap(), raw);
        assert_eq!(decompress(&frame).unwrap().capacity(), raw.len(), "sized exactly");
        // The frame content size field (after the magic and the header
        // descriptor, and the window descriptor unless single-segment).
        let fhd = frame[4];
        assert!(fhd >> 6 > 0, "cairn's frames declare their size");
        let at = 5 + usize::from((fhd >> 5) & 1 == 0) + [0, 1, 2, 4][usize::from(fhd & 3)];
        for delta in [1i16, -1] {
            let mut lying = frame.clone();
            lying[at] = (i16::from(lying[at]) + delta) as u8;
            assert!(decompress(&lying).is_err(), "a size off by {delta} is refused");
        }
        assert!(decompress(b"not a frame at all").is_err());
        // Bytes after the frame: a skippable frame (which zstd would pass
        // over) or a second frame (which it would read on into).
        let mut skippable = frame.clone();
        skippable.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, b'x', b'y', b'z']);
        let mut second = frame.clone();
        second.extend_from_slice(&compress(&raw).unwrap());
        for (what, bytes) in [("skippable", skippable), ("second", second)] {
            let err = decompress(&bytes).unwrap_err().to_string();
            assert!(err.contains("follow its frame"), "{what}: {err}");
        }
        // A frame without a declared size (streamed) is still read.
        let mut streamed = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut streamed, &raw).unwrap();
        let streamed = streamed.finish().unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(), None);
        assert_eq!(decompress(&streamed).unwrap(), raw);
    }

    /// bincode's own `Vec` decoding counts every element's in-memory size
    /// against the limit up front (a `LogEntry` is 192 bytes in memory, a
    /// merge of nothing about 113 stored): a whole segment decoded so would
    /// be refused under a limit its bytes fit. Entry by entry, it is not.
    #[test]
    fn segments_are_not_refused_for_their_size_in_memory() {
        use crate::model::{ChainHash, Event, EventId, LogEntry, Merge, MergeKind, Seq, Timestamp};
        let entries: Vec<LogEntry> = (0..400u64)
            .map(|i| {
                // (Nothing folded and no reason: small stored, as large in
                // memory as any entry.)
                let event =
                    Event::Merge(Merge::new(MergeKind::Comment, EventId([(i % 251) as u8; 32]), vec![], ""));
                LogEntry {
                    seq: Seq(i + 1),
                    id: event.id(),
                    recorded_at: Timestamp::from_unix(1_333_000_000).unwrap(),
                    event,
                    head: ChainHash([3; 32]),
                }
            })
            .collect();
        let raw = bincode::serde::encode_to_vec(&entries, bincode::config::standard()).unwrap();
        // (Between the bytes stored, about 113 per entry, and the 192 a
        // `LogEntry` takes in memory.)
        const LIMIT: usize = 64 << 10;
        assert!(raw.len() < LIMIT && std::mem::size_of::<LogEntry>() * entries.len() > LIMIT);
        let config = bincode::config::standard().with_limit::<LIMIT>();
        assert!(
            bincode::decode_from_slice::<Vec<LogEntry>, _>(&raw, config).is_err(),
            "the whole vector is refused for its size in memory"
        );
        assert!(bincode::serde::decode_from_slice::<Vec<LogEntry>, _>(&raw, config).is_ok());
        assert_eq!(segment_entries_in(&raw, "t", config).unwrap(), entries);
        assert_eq!(decode_segment_entries(&raw, "t").unwrap(), entries);
        // A count the body cannot hold reserves nothing beyond the body.
        let mut lying = raw.clone();
        lying[0] = 253; // a u64 count follows: more entries than bytes
        lying.splice(1..3, u64::MAX.to_le_bytes());
        assert!(decode_segment_entries(&lying, "t").is_err());
    }

    /// A segment of every kind of entry, comments of every shape among
    /// them, from seq `first`.
    fn mixed_entries(first: u64, comments: &[(Option<String>, Option<&str>, String)]) -> Vec<LogEntry> {
        use crate::model::{
            Article, ArticleKey, BlobId, Capture, CaptureItem, CapturedArticle, ChainHash, Comment, Event,
            Merge, MergeKind, Seq, Timestamp,
        };
        let key = ArticleKey("https://example.com/ä".into());
        let mut events = vec![Event::Article(Box::new(Article::new(
            key.clone(),
            Some("https://example.com/ä".into()),
            Some("T"),
            Timestamp::parse_canonical("2012-03-28"),
            None,
            &["p".to_string()],
        )))];
        for (author, posted, body) in comments {
            let posted = posted.and_then(Timestamp::parse_canonical);
            events.push(Event::Comment(Comment::new(key.clone(), author.as_deref(), posted, body)));
        }
        let items = events[1..]
            .iter()
            .map(|e| CaptureItem { id: e.id(), parent: None, possibly_truncated: false })
            .collect();
        events.push(Event::Merge(Merge::new(
            MergeKind::Comment,
            EventId([1; 32]),
            vec![EventId([2; 32])],
            "r",
        )));
        events.push(Event::Capture(Box::new(Capture {
            blob: BlobId([9; 32]),
            source: "s".into(),
            source_url: None,
            tz: None,
            fetched_at: Timestamp::from_unix(1_333_000_000),
            format: "jsonl".into(),
            parser_version: 1,
            declared_comments: Some(3),
            articles: vec![CapturedArticle { key, article: None, comments: items }],
            gaps: Some(Vec::new()),
        })));
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| LogEntry {
                seq: Seq(first + i as u64),
                id: event.id(),
                recorded_at: Timestamp::from_unix(1_333_000_000 + i as i64).unwrap(),
                event,
                head: ChainHash([i as u8; 32]),
            })
            .collect()
    }

    /// [`skim_comment_entry`] measures each comment's entry as decoding it
    /// does, and says nothing of any other; skipping through a segment
    /// reaches each entry as reading every one does.
    fn skims_as_decoded(entries: &[LogEntry]) {
        let config = bincode::config::standard().with_limit::<MAX_VALUE>();
        for e in entries {
            let bytes = bincode::encode_to_vec(e, bincode::config::standard()).unwrap();
            let (decoded, used): (LogEntry, usize) = bincode::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(&decoded, e);
            let want = matches!(e.event, crate::model::Event::Comment(_)).then_some((e.seq.0, used));
            assert_eq!(skim_comment_entry(&bytes), want, "{e:?}");
            // A cut entry never measures as whole.
            assert_eq!(skim_comment_entry(&bytes[..bytes.len() - 1]), None);
        }
        let segment = encode_segment(entries).unwrap();
        for target in entries {
            let mut reader = open_segment(&segment, "t").unwrap();
            reader.skip_before(target.seq).unwrap();
            let rest: Vec<LogEntry> = reader.map(|e| e.unwrap()).collect();
            let want: Vec<LogEntry> = entries.iter().filter(|e| e.seq >= target.seq).cloned().collect();
            assert_eq!(rest, want, "skipped to seq {}", target.seq);
        }
        // Past the last entry: nothing left, and no error.
        let mut reader = open_segment(&segment, "t").unwrap();
        reader.skip_before(crate::model::Seq(u64::MAX)).unwrap();
        assert!(reader.next().is_none());
    }

    /// A comment entry that does not decode (its body not UTF-8, under an
    /// intact envelope) stops a read that skips past it, as reading every
    /// entry does.
    #[test]
    fn a_comment_that_does_not_decode_is_not_skipped() {
        let shapes = vec![(None, None, "MARKERxx".to_string()), (None, None, "after".to_string())];
        let entries = mixed_entries(1, &shapes);
        let mut body = bincode::encode_to_vec(&entries, bincode::config::standard()).unwrap();
        let at = body.windows(8).position(|w| w == b"MARKERxx").unwrap();
        body[at + 6..at + 8].copy_from_slice(&[0xff, 0xfe]);
        let segment = seal_as(SEGMENT_VERSION, &body);
        let mut reader = open_segment(&segment, "t").unwrap();
        assert!(reader.skip_before(crate::model::Seq(3)).is_err(), "the damaged comment at seq 2 is named");
        let mut reader = open_segment(&segment, "t").unwrap();
        reader.skip_before(crate::model::Seq(2)).unwrap();
        assert!(reader.next().unwrap().is_err());
    }

    #[test]
    fn comments_are_skimmed_as_decoded() {
        let shapes = vec![
            (Some("Ann".to_string()), Some("2012-03-28T13:02:00+05:00"), "body".to_string()),
            (None, None, String::new()),
            (Some(String::new()), Some("2012-03-28T13:02:00"), "ü\n\nzwei".to_string()),
            (Some("x".repeat(300)), Some("2012-03-28"), "y".repeat(70_000)),
        ];
        // Seqs whose varints take 1, 3, 5 and 9 bytes.
        for first in [1, 300, 70_000, 1 << 40] {
            skims_as_decoded(&mixed_entries(first, &shapes));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        #[test]
        fn any_comment_is_skimmed_as_decoded(
            first in 1u64..u64::MAX / 2,
            comments in proptest::collection::vec(
                (
                    proptest::option::of(".{0,40}"),
                    proptest::option::of(proptest::sample::select(vec![
                        "2012-03-28", "2012-03-28T13:02:00", "2012-03-28T13:02:00+05:00", "1969-12-31T23:59:59.5-09:30",
                    ])),
                    ".{0,300}",
                ),
                0..6,
            ),
        ) {
            skims_as_decoded(&mixed_entries(first, &comments));
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        let v = (7u64, "x".to_string());
        let bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String)>(&bytes, "t").unwrap(), v);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                assert!(decode::<(u64, String)>(&flipped, "t").is_err(), "flip at {i}:{bit} undetected");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<(u64, String)>(&longer, "t").is_err());
        assert!(decode::<(u64, String)>(&[], "t").is_err());
        // Valid check bytes over trailing garbage are still rejected.
        let big: Vec<String> = (0..200).map(|i| format!("value {i}")).collect();
        let packed = encode(&big).unwrap();
        assert_eq!(packed[1], ZSTD, "large repetitive values are compressed");
        assert!(
            packed.len() < bincode::serde::encode_to_vec(&big, bincode::config::standard()).unwrap().len()
        );
        assert_eq!(decode::<Vec<String>>(&packed, "t").unwrap(), big);
        let mut content = bytes[..bytes.len() - CHECK_LEN].to_vec();
        content.push(0);
        let c = check(&content);
        content.extend_from_slice(&c);
        assert!(decode::<(u64, String)>(&content, "t").unwrap_err().to_string().contains("trailing"));
    }
}
