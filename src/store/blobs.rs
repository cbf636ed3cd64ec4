//! The raw captures: content-addressed blobs, named by the BLAKE3 of their
//! raw bytes (as git names its objects), zstd-compressed and appended to
//! pack files, `captures/00000000.pack`, … ([`records`](super::records)
//! format: one record per blob, tagged with the id's first 8 bytes). The
//! store keeps each blob's locator in sled, committed in the same batch as
//! the events that name it, after the pack is fsynced: a blob is never
//! named before it is durable, and a crash leaves no orphan (its bytes lie
//! past the committed end and are cut off by the next writer).
//!
//! A stored blob is either a whole zstd frame, or, for a re-scrape of a page
//! (which differs from the previous capture of that page by a few
//! comments), a *delta* when that is smaller: [`DELTA_MAGIC`], the base
//! blob's id (32 bytes), the chain depth (u8), the raw length (u64 BE), then
//! a zstd frame compressed with the base's raw bytes as its dictionary.
//! Chains are at most [`MAX_DEPTH`] deltas deep; the next capture after
//! that is stored whole again. Bases are blobs too, write-once, so a delta
//! never loses its base.

use crate::error::{Error, Result};
use crate::model::BlobId;
use crate::store::envelope;
use crate::store::records::{Locator, RecordDir, RecordsEnd};
use crate::store::Ahead;
use std::path::PathBuf;

/// zstd level for raw captures (whole and delta).
const ZSTD_LEVEL: i32 = 3;
/// The first bytes of a delta.
pub const DELTA_MAGIC: &[u8; 8] = b"cairn\xd1\x00\x01";
/// Bytes of a delta's header: magic, base id, depth (u8), raw length
/// (u64 BE).
const DELTA_HEADER: usize = 8 + 32 + 1 + 8;
/// Captures larger than this are always stored whole (and a delta header
/// claiming more is damage).
pub(crate) const MAX_DELTA_RAW: u64 = 256 << 20;
/// The longest chain of deltas before a blob is stored whole.
pub const MAX_DEPTH: u8 = 16;

/// Blobs just appended to a pack, with their locators, and the packs' new
/// end.
pub type Synced = (Vec<(BlobId, Locator)>, RecordsEnd);

/// Where a stored blob lies: the store's locator lookup.
pub type Lookup<'a> = &'a dyn Fn(&BlobId) -> Result<Option<Locator>>;

/// The record tag of blob `id`: its first 8 bytes, big-endian.
pub fn tag(id: &BlobId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.as_bytes()[..8]);
    u64::from_be_bytes(b)
}

/// The pack files, and the blobs staged for the next sync.
#[derive(Debug)]
pub struct BlobDir {
    packs: RecordDir,
    /// Blobs staged for [`BlobDir::sync_staged`], as stored (whole or
    /// delta), in staging order.
    staged: Vec<(BlobId, Vec<u8>)>,
}

/// Why [`BlobDir::delta_quietly`] made no delta.
#[derive(Debug)]
pub enum DeltaError {
    /// The base is not stored (where this handle looks: an ingest reader
    /// sees committed blobs only; the appending thread then decides).
    Missing,
    /// The base cannot be read, or does not re-hash to its id (the capture
    /// is then stored whole).
    Base(Error),
    /// zstd failed.
    Compress(Error),
}

thread_local! {
    /// Each thread's zstd contexts for captures ([`envelope::with_context`]):
    /// compressing whole, and reading deltas back. A fresh context per
    /// page was about a third of compressing a 24 KB page at this level.
    /// (A delta gets a fresh context of its own: [`delta_frame`].)
    static WHOLE: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DELTA_READ: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's compressor from `slot`, at the blobs' level.
fn with_compressor<T>(
    slot: &'static envelope::ContextSlot<zstd::bulk::Compressor<'static>>,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    envelope::with_context(slot, || zstd::bulk::Compressor::new(ZSTD_LEVEL), f)
}

/// The first bytes of a structured zstd dictionary: a delta's base that
/// begins with them would be read as one when the delta is read back.
const ZSTD_DICT_MAGIC: [u8; 4] = 0xEC30_A437u32.to_le_bytes();

/// `raw` compressed as one zstd frame at the blobs' level with `base`
/// referenced as its prefix: a raw-content dictionary, as reading the
/// delta back loads it ([`BlobDir::get`]). Referenced rather than loaded
/// as a dictionary, the base's match tables are built for this one frame
/// instead of a dictionary's (built in full, then copied into the
/// context): half the time per delta for a 32 KB page, the frame about a
/// sixth larger (session 35, docs/performance.md). The context is fresh,
/// since one kept by the thread cannot reference a base that does not
/// outlive it.
fn delta_frame(base: &[u8], raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let failed = |code: usize| std::io::Error::other(zstd::zstd_safe::get_error_name(code));
    let mut cx = CCtx::try_create().ok_or_else(|| std::io::Error::other("cannot make a zstd context"))?;
    cx.set_parameter(CParameter::CompressionLevel(ZSTD_LEVEL)).map_err(failed)?;
    cx.ref_prefix(base).map_err(failed)?;
    let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
    cx.compress2(&mut frame, raw).map_err(failed)?;
    Ok(frame)
}

/// A delta blob's stored bytes: the header ([`parse_delta_header`] reads
/// it back: magic, base id, chain depth, raw length) and `frame`.
fn delta_blob(base: &BlobId, depth: u8, raw_len: usize, frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DELTA_HEADER + frame.len());
    out.extend_from_slice(DELTA_MAGIC);
    out.extend_from_slice(base.as_bytes());
    out.push(depth);
    out.extend_from_slice(&(raw_len as u64).to_be_bytes());
    out.extend_from_slice(frame);
    out
}

/// A blob stored whole, decompressed ([`envelope::decompress_bounded`]):
/// no more than a document's ceiling ([`crate::ingest::MAX_DOCUMENT_CEILING`]).
fn decompress_whole(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    envelope::decompress_bounded(bytes, crate::ingest::MAX_DOCUMENT_CEILING)
}

/// `raw` compressed whole as a blob is stored when no delta is smaller
/// (zstd at the blobs' level). Any thread may make it ahead and hand it to
/// [`BlobDir::stage`].
pub fn compress_whole(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = with_compressor(&WHOLE, |c| c.compress(raw))?;
    // zstd's output has room for the worst case (more than the page):
    // a group of staged pages would hold several times their size.
    out.shrink_to_fit();
    Ok(out)
}

impl BlobDir {
    /// The blob directory at `root` (created on first write).
    pub fn new(root: PathBuf) -> BlobDir {
        BlobDir { packs: RecordDir::new(root, "pack"), staged: Vec::new() }
    }

    /// The path of pack file number `n`.
    pub fn pack_path(&self, n: u32) -> PathBuf {
        self.packs.path_of(n)
    }

    /// The pack files.
    pub fn packs(&self) -> &RecordDir {
        &self.packs
    }

    /// Compresses blob `id` and keeps it in memory until the next
    /// [`BlobDir::sync_staged`]. A blob already stored (per `lookup`) or
    /// staged is skipped.
    ///
    /// With `base` (an earlier blob of the same page, stored or staged), the
    /// blob is kept as a delta against it when that is smaller. Returns
    /// whether it was. `ahead` is what another thread made of `raw`: bytes
    /// compressed by [`compress_whole`] (not used unless their frame states
    /// `raw`'s length), or a delta made against a base (not used unless
    /// that base is `base`).
    pub fn stage(
        &mut self,
        id: &BlobId,
        raw: &[u8],
        base: Option<&BlobId>,
        ahead: Option<Ahead>,
        lookup: Lookup<'_>,
    ) -> Result<bool> {
        if self.staged.iter().any(|(s, _)| s == id) || lookup(id)?.is_some() {
            return Ok(false);
        }
        let (whole, made) = match ahead {
            Some(Ahead::Whole(w)) => (Some(w), None),
            Some(Ahead::Delta { base, delta }) => (None, Some((base, delta))),
            None => (None, None),
        };
        let delta = match base.filter(|b| *b != id && raw.len() as u64 <= MAX_DELTA_RAW) {
            Some(b) => match made {
                Some((against, delta)) if against == *b => delta,
                _ => self.delta(raw, b, lookup)?,
            },
            None => None,
        };
        // A delta under an eighth of the page beats any whole compression
        // of a web page (3-5x); only a larger one is compared with it.
        let (mut bytes, is_delta) = match delta {
            Some(d) if d.len() <= raw.len() / 8 => (d, true),
            d => {
                let stated = |w: &[u8]| zstd::zstd_safe::get_frame_content_size(w).ok().flatten();
                let full = match whole.filter(|w| stated(w) == Some(raw.len() as u64)) {
                    Some(w) => w,
                    None => compress_whole(raw)
                        .map_err(|e| Error::Internal(format!("blob {id}: cannot compress: {e}")))?,
                };
                match d {
                    Some(d) if d.len() < full.len() => (d, true),
                    _ => (full, false),
                }
            }
        };
        // zstd's output has room for the worst case (more than the page):
        // a group of staged pages would hold several times their size.
        bytes.shrink_to_fit();
        self.staged.push((*id, bytes));
        Ok(is_delta)
    }

    /// Another handle on the same pack files, for reading committed blobs
    /// (and making deltas against them) from another thread.
    pub fn read_only(&self) -> BlobDir {
        BlobDir { packs: self.packs.read_only(), staged: Vec::new() }
    }

    /// The delta of `raw` against `base`, unless the base is missing or its
    /// chain is already [`MAX_DEPTH`] long. A base that cannot be read
    /// (damaged: verify reports it) is no reason to refuse a new capture:
    /// it is stored whole instead, with a warning.
    fn delta(&self, raw: &[u8], base: &BlobId, lookup: Lookup<'_>) -> Result<Option<Vec<u8>>> {
        match self.delta_quietly(raw, base, lookup) {
            Ok(delta) => Ok(delta),
            Err(DeltaError::Missing) => Ok(None),
            Err(DeltaError::Base(e)) => {
                tracing::warn!("storing a capture whole: its delta base cannot be read: {e}");
                Ok(None)
            }
            Err(DeltaError::Compress(e)) => Err(e),
        }
    }

    /// The delta [`BlobDir::stage`] makes of `raw` against `base`, with a
    /// base that is missing or cannot be read an error rather than a
    /// warning: what [`crate::store::DeltaMaker`] makes on an ingest's
    /// reader threads, byte for byte.
    pub fn delta_quietly(
        &self,
        raw: &[u8],
        base: &BlobId,
        lookup: Lookup<'_>,
    ) -> std::result::Result<Option<Vec<u8>>, DeltaError> {
        // The base's stored bytes are read once, for its depth and its raw
        // bytes, which must be the base (zstd frames carry no checksum: a
        // damaged base can decompress; a delta against it would be a delta
        // against wrong bytes).
        let stored = match self.stored(base, lookup) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(DeltaError::Missing),
            Err(e) => return Err(DeltaError::Base(e)),
        };
        let base_depth = parse_delta_header(&stored).map_or(0, |(_, depth, _)| depth);
        if base_depth >= MAX_DEPTH {
            return Ok(None);
        }
        let base_raw = self.decode(base, &stored, 0, lookup).map_err(DeltaError::Base)?;
        let actual = BlobId(*blake3::hash(&base_raw).as_bytes());
        if actual != *base {
            return Err(DeltaError::Base(Error::Corrupt(format!("blob {base} re-hashes to {actual}"))));
        }
        let compress = |e: std::io::Error| {
            DeltaError::Compress(Error::Internal(format!("blob delta against {base}: {e}")))
        };
        if base_raw.starts_with(&ZSTD_DICT_MAGIC) {
            // Read back, the base would be taken for a zstd dictionary of
            // its own. (`ingest` takes in no page that begins so, as it is
            // not UTF-8; `import` stores blobs as the export gives them.)
            return Ok(None);
        }
        let frame = delta_frame(&base_raw, raw).map_err(compress)?;
        Ok(Some(delta_blob(base, base_depth + 1, raw.len(), &frame)))
    }

    /// The stored bytes (whole or delta) of blob `id`, staged or in a pack.
    fn stored(&self, id: &BlobId, lookup: Lookup<'_>) -> Result<Option<Vec<u8>>> {
        if let Some((_, bytes)) = self.staged.iter().find(|(s, _)| s == id) {
            return Ok(Some(bytes.clone()));
        }
        match lookup(id)? {
            None => Ok(None),
            Some(loc) => self.read(id, loc).map(Some),
        }
    }

    /// The stored bytes of blob `id` at `loc`.
    pub fn read(&self, id: &BlobId, loc: Locator) -> Result<Vec<u8>> {
        self.packs
            .reader()
            .read(tag(id), loc)
            .map_err(|why| why.into_error(|why| Error::Corrupt(format!("blob {id}: {why}"))))
    }

    /// Appends every staged blob to the pack file and fsyncs it. `end` is
    /// the committed end of the packs. Returns each blob's locator and the
    /// new end, for the store's next commit (`None` when nothing was staged).
    pub fn sync_staged(&mut self, end: RecordsEnd) -> Result<Option<Synced>> {
        if self.staged.is_empty() {
            return Ok(None);
        }
        let staged = std::mem::take(&mut self.staged);
        let records: Vec<(u64, Vec<u8>)> = staged.iter().map(|(id, b)| (tag(id), b.clone())).collect();
        let (locators, end) = self.packs.append(end, &records)?;
        Ok(Some((staged.into_iter().map(|(id, _)| id).zip(locators).collect(), end)))
    }

    /// Reads and decompresses blob `id` (following a delta's bases). The
    /// caller re-hashes if it needs to.
    pub fn get(&self, id: &BlobId, lookup: Lookup<'_>) -> Result<Vec<u8>> {
        self.get_at_depth(id, 0, lookup)
    }

    fn get_at_depth(&self, id: &BlobId, hops: u8, lookup: Lookup<'_>) -> Result<Vec<u8>> {
        let Some(bytes) = self.stored(id, lookup)? else {
            return Err(Error::Corrupt(format!("blob {id} is not stored")));
        };
        self.decode(id, &bytes, hops, lookup)
    }

    /// The raw bytes of blob `id` from its stored `bytes` (whole, or a delta
    /// rebuilt through its bases), `hops` deltas down a chain.
    fn decode(&self, id: &BlobId, bytes: &[u8], hops: u8, lookup: Lookup<'_>) -> Result<Vec<u8>> {
        let corrupt = |why: String| Error::Corrupt(format!("blob {id}: {why}"));
        let Some((base, depth, len)) = parse_delta_header(bytes) else {
            return decompress_whole(bytes).map_err(|e| corrupt(format!("cannot decompress: {e}")));
        };
        if depth == 0 || depth > MAX_DEPTH || hops >= MAX_DEPTH {
            return Err(corrupt(format!("delta chain depth {depth} is out of range")));
        }
        // A capture is a page of tens of KB; a length past this is damage
        // (and would be a huge allocation).
        if len > MAX_DELTA_RAW {
            return Err(corrupt(format!("delta says {len} raw bytes")));
        }
        let base_raw = self.get_at_depth(&base, hops + 1, lookup).map_err(|e| match e {
            // (The disk failed to read it: not damage.)
            e if e.is_io_fault() => e,
            e => corrupt(format!("its delta base {base} cannot be read: {e}")),
        })?;
        let raw = envelope::with_context(&DELTA_READ, zstd::bulk::Decompressor::new, |d| {
            envelope::one_frame(&bytes[DELTA_HEADER..])?;
            d.set_dictionary(&base_raw)?;
            d.decompress(&bytes[DELTA_HEADER..], len as usize)
        })
        .map_err(|e| corrupt(format!("cannot decompress against base {base}: {e}")))?;
        if raw.len() as u64 != len {
            return Err(corrupt(format!("delta gave {} bytes, its header says {len}", raw.len())));
        }
        Ok(raw)
    }
}

/// A delta's header: base id, depth, raw length; `None` for a whole blob (a
/// zstd frame, which starts with zstd's own magic number).
fn parse_delta_header(bytes: &[u8]) -> Option<(BlobId, u8, u64)> {
    if bytes.len() < DELTA_HEADER || &bytes[..8] != DELTA_MAGIC {
        return None;
    }
    let mut base = [0u8; 32];
    base.copy_from_slice(&bytes[8..40]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[41..49]);
    Some((BlobId(base), bytes[40], u64::from_be_bytes(len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn id(raw: &[u8]) -> BlobId {
        BlobId(*blake3::hash(raw).as_bytes())
    }

    fn page(round: usize) -> Vec<u8> {
        let mut text = String::new();
        for i in 0..200 + round {
            text.push_str(&format!(
                "comment {i}: some words about the article, number {}\n",
                i * 7919 % 1000
            ));
        }
        text.into_bytes()
    }

    /// A blob directory with an in-memory locator table (sled's role).
    struct Packs {
        dir: BlobDir,
        locs: RefCell<HashMap<BlobId, Locator>>,
        end: RecordsEnd,
        /// Blobs staged: every other one is handed over compressed whole.
        n: usize,
    }

    impl Packs {
        fn new(root: &std::path::Path) -> Packs {
            Packs {
                dir: BlobDir::new(root.join("captures")),
                locs: Default::default(),
                end: RecordsEnd::default(),
                n: 0,
            }
        }
        fn stage(&mut self, raw: &[u8], base: Option<&BlobId>) -> bool {
            let locs = &self.locs;
            let lookup = |b: &BlobId| Ok(locs.borrow().get(b).copied());
            let whole = (self.n % 2 == 1).then(|| Ahead::Whole(compress_whole(raw).unwrap()));
            self.n += 1;
            self.dir.stage(&id(raw), raw, base, whole, &lookup).unwrap()
        }
        fn sync(&mut self) {
            if let Some((new, end)) = self.dir.sync_staged(self.end).unwrap() {
                self.locs.borrow_mut().extend(new);
                self.end = end;
            }
        }
        /// Page 0 stored whole and page 1 as a delta against it.
        fn with_a_delta(root: &std::path::Path) -> (Packs, Vec<u8>, Vec<u8>) {
            let mut packs = Packs::new(root);
            let (a, b) = (page(0), page(1));
            packs.stage(&a, None);
            packs.stage(&b, Some(&id(&a)));
            packs.sync();
            (packs, a, b)
        }
        fn get(&self, blob: &BlobId) -> Result<Vec<u8>> {
            let lookup = |b: &BlobId| Ok(self.locs.borrow().get(b).copied());
            self.dir.get(blob, &lookup)
        }
        fn stored_len(&self, blob: &BlobId) -> u32 {
            self.locs.borrow()[blob].len
        }
    }

    #[test]
    fn a_re_scrape_is_stored_as_a_small_delta_and_reads_back_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let mut packs = Packs::new(tmp.path());
        let (a, b) = (page(0), page(1));
        assert!(!packs.stage(&a, None));
        // Staged but not yet synced: still usable as a base.
        assert!(packs.stage(&b, Some(&id(&a))));
        // Staging the same blob again does nothing.
        assert!(!packs.stage(&b, Some(&id(&a))));
        packs.sync();
        assert!(packs.stored_len(&id(&b)) < packs.stored_len(&id(&a)) / 4);
        assert_eq!(packs.get(&id(&a)).unwrap(), a);
        assert_eq!(packs.get(&id(&b)).unwrap(), b);
        // Once stored, it is not staged again.
        assert!(!packs.stage(&b, None));
        assert!(packs.dir.sync_staged(packs.end).unwrap().is_none());
        // A damaged base is reported when the delta is read.
        let loc = packs.locs.borrow()[&id(&a)];
        let path = packs.dir.pack_path(loc.file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(loc.offset + crate::store::records::HEADER + 4) as usize] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = packs.get(&id(&b)).unwrap_err().to_string();
        assert!(err.contains("delta base"), "{err}");
        // A new capture of the page is then stored whole, not refused.
        let c = page(2);
        assert!(!packs.stage(&c, Some(&id(&b))));
        packs.sync();
        assert_eq!(packs.get(&id(&c)).unwrap(), c);
    }

    #[test]
    fn a_page_compressed_ahead_is_stored_as_made_and_a_wrong_one_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = BlobDir::new(tmp.path().join("captures"));
        let locs: RefCell<HashMap<BlobId, Locator>> = Default::default();
        let lookup = |b: &BlobId| Ok(locs.borrow().get(b).copied());
        let (a, b, c) = (page(0), page(1), page(2));
        // Made ahead at another level, so that what is stored tells.
        let made = zstd::bulk::compress(&a, 19).unwrap();
        assert_ne!(made.len(), compress_whole(&a).unwrap().len());
        assert!(!dir.stage(&id(&a), &a, None, Some(Ahead::Whole(made.clone())), &lookup).unwrap());
        // A compression of other bytes (b is longer than a) is not stored
        // for b.
        assert_ne!(a.len(), b.len());
        assert!(!dir.stage(&id(&b), &b, None, Some(Ahead::Whole(made.clone())), &lookup).unwrap());
        assert!(!dir.stage(&id(&c), &c, None, None, &lookup).unwrap());
        let (new, _) = dir.sync_staged(RecordsEnd::default()).unwrap().unwrap();
        locs.borrow_mut().extend(new);
        for raw in [&a, &b, &c] {
            assert_eq!(&dir.get(&id(raw), &lookup).unwrap(), raw);
        }
        let stored = |raw: &[u8]| locs.borrow()[&id(raw)].len as usize;
        let framing = stored(&c) - compress_whole(&c).unwrap().len();
        assert_eq!(stored(&a), made.len() + framing, "stored as made");
        assert_eq!(stored(&b), compress_whole(&b).unwrap().len() + framing);
    }

    #[test]
    fn a_delta_made_ahead_is_the_one_stage_makes_and_is_used_only_for_its_base() {
        let tmp = tempfile::tempdir().unwrap();
        let mut packs = Packs::new(tmp.path());
        let (a, b, c) = (page(0), page(1), page(2));
        packs.stage(&a, None);
        packs.stage(&c, None);
        packs.sync();
        let locs = &packs.locs;
        let lookup = |x: &BlobId| Ok(locs.borrow().get(x).copied());
        // Made on another handle, as an ingest reader makes it.
        let reader = packs.dir.read_only();
        let made = reader.delta_quietly(&b, &id(&a), &lookup).unwrap().expect("a delta");
        // What staging makes by itself, byte for byte.
        assert!(packs.dir.stage(&id(&b), &b, Some(&id(&a)), None, &lookup).unwrap());
        assert_eq!(packs.dir.staged.pop().unwrap().1, made);
        // Handed over for the base it was made against, it is stored as made
        // (other bytes, to tell).
        let mut marked = made.clone();
        marked.push(0);
        let ahead = Ahead::Delta { base: id(&a), delta: Some(marked.clone()) };
        assert!(packs.dir.stage(&id(&b), &b, Some(&id(&a)), Some(ahead), &lookup).unwrap());
        assert_eq!(packs.dir.staged.pop().unwrap().1, marked);
        // Made against another base than the page's latest: not used.
        let ahead = Ahead::Delta { base: id(&c), delta: Some(marked.clone()) };
        assert!(packs.dir.stage(&id(&b), &b, Some(&id(&a)), Some(ahead), &lookup).unwrap());
        assert_eq!(packs.dir.staged.pop().unwrap().1, made);
        // A base that cannot be read is an error here (the reader hands
        // nothing over), and a warning with the page stored whole there.
        let missing = id(b"never stored");
        assert!(matches!(reader.delta_quietly(&b, &missing, &lookup), Err(DeltaError::Missing)));
        let mut bad = packs.locs.borrow()[&id(&a)];
        bad.len += 1;
        let damaged = |x: &BlobId| Ok(if *x == id(&a) { Some(bad) } else { locs.borrow().get(x).copied() });
        assert!(matches!(reader.delta_quietly(&b, &id(&a), &damaged), Err(DeltaError::Base(_))));
        assert!(!packs.dir.stage(&id(&b), &b, Some(&id(&a)), None, &damaged).unwrap());
    }

    #[test]
    fn a_base_that_decompresses_to_other_bytes_gets_no_delta() {
        let tmp = tempfile::tempdir().unwrap();
        let mut packs = Packs::new(tmp.path());
        let (a, b, c) = (page(0), page(1), page(2));
        // Stored under a's id, c's bytes: a damaged base that still
        // decompresses (zstd frames carry no checksum).
        packs.dir.staged.push((id(&a), compress_whole(&c).unwrap()));
        let locs = &packs.locs;
        let lookup = |x: &BlobId| Ok(locs.borrow().get(x).copied());
        let err = packs.dir.delta_quietly(&b, &id(&a), &lookup).unwrap_err();
        assert!(matches!(&err, DeltaError::Base(e) if e.to_string().contains("re-hashes")), "{err:?}");
        assert!(!packs.dir.stage(&id(&b), &b, Some(&id(&a)), None, &lookup).unwrap(), "stored whole");
        assert_eq!(packs.dir.staged.last().map(|(x, _)| *x), Some(id(&b)));
    }

    #[test]
    fn a_delta_made_against_a_dictionary_reads_back_as_one_made_against_a_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let mut packs = Packs::new(tmp.path());
        let (a, b, c) = (page(0), page(1), page(2));
        packs.stage(&a, None);
        // b as cairn made deltas before session 35: the base loaded as a
        // dictionary, not referenced as a prefix.
        let frame = zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, &a).unwrap().compress(&b).unwrap();
        packs.dir.staged.push((id(&b), delta_blob(&id(&a), 1, b.len(), &frame)));
        // c as cairn makes them now, against that delta.
        assert!(packs.stage(&c, Some(&id(&b))));
        let made = packs.dir.staged.last().unwrap().1.clone();
        assert_ne!(
            made[DELTA_HEADER..],
            zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, &b).unwrap().compress(&c).unwrap()[..]
        );
        packs.sync();
        for raw in [&a, &b, &c] {
            assert_eq!(&packs.get(&id(raw)).unwrap(), raw);
        }
        // A base that begins as a zstd dictionary does would be read back
        // as one: the page after it is stored whole, and both read back.
        let mut d = ZSTD_DICT_MAGIC.to_vec();
        d.extend_from_slice(&page(3));
        let e = page(4);
        assert!(!packs.stage(&d, None));
        assert!(!packs.stage(&e, Some(&id(&d))), "no delta against it");
        packs.sync();
        assert_eq!(packs.get(&id(&d)).unwrap(), d);
        assert_eq!(packs.get(&id(&e)).unwrap(), e);
    }

    #[test]
    fn reused_contexts_give_the_bytes_fresh_ones_give() {
        let pages: Vec<Vec<u8>> = (0..4).map(page).collect();
        for raw in &pages {
            // The thread's context, used again for each page.
            let fresh = zstd::bulk::compress(raw, ZSTD_LEVEL).unwrap();
            assert_eq!(compress_whole(raw).unwrap(), fresh);
            assert_eq!(decompress_whole(&fresh).unwrap(), *raw);
        }
        // Deltas against different bases in turn (each made with a fresh
        // context, read back through the thread's one).
        let tmp = tempfile::tempdir().unwrap();
        let mut packs = Packs::new(tmp.path());
        packs.stage(&pages[0], None);
        for pair in pages.windows(2) {
            assert!(packs.stage(&pair[1], Some(&id(&pair[0]))));
        }
        packs.sync();
        for raw in &pages {
            assert_eq!(&packs.get(&id(raw)).unwrap(), raw);
        }
    }

    #[test]
    fn a_whole_blob_is_read_within_its_declared_size_and_the_ceiling() {
        let raw = page(0);
        let frame = compress_whole(&raw).unwrap();
        // The frame content size field (after the magic, the header
        // descriptor, the window descriptor unless single-segment, and the
        // dictionary id); its length is in the descriptor's top two bits.
        let fhd = frame[4];
        let at = 5 + usize::from((fhd >> 5) & 1 == 0) + [0, 1, 2, 4][usize::from(fhd & 3)];
        let field = [usize::from((fhd >> 5) & 1), 2, 4, 8][usize::from(fhd >> 6)];
        assert!(field > 0, "cairn's frames declare their size");
        for delta in [1u8, 255] {
            // The field is little-endian: its first byte, one up or down.
            let mut lying = frame.clone();
            lying[at] = lying[at].wrapping_add(delta);
            assert!(decompress_whole(&lying).is_err(), "a size off by one is refused");
        }
        // A frame declaring more than a document's ceiling (in an 8-byte
        // size field) is refused before anything is allocated.
        let mut header = frame[..at].to_vec();
        header[4] = (fhd & 0x3f) | (3 << 6);
        header.extend_from_slice(&(crate::ingest::MAX_DOCUMENT_CEILING + 1).to_le_bytes());
        header.extend_from_slice(&frame[at + field..]);
        let err = decompress_whole(&header).unwrap_err().to_string();
        assert!(err.contains("over the ceiling"), "{err}");
        assert!(decompress_whole(b"not a frame at all").is_err());
        // A frame without a declared size (streamed) is still read.
        let mut streamed = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut streamed, &raw).unwrap();
        let streamed = streamed.finish().unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(), None);
        assert_eq!(decompress_whole(&streamed).unwrap(), raw);
    }

    #[test]
    fn chains_stop_at_the_maximum_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let mut packs = Packs::new(tmp.path());
        let mut prev: Option<BlobId> = None;
        let mut whole = Vec::new();
        for round in 0..(MAX_DEPTH as usize + 3) {
            let raw = page(round);
            if !packs.stage(&raw, prev.as_ref()) {
                whole.push(round);
            }
            prev = Some(id(&raw));
            if round % 5 == 0 {
                packs.sync();
            }
        }
        packs.sync();
        assert_eq!(whole, vec![0, MAX_DEPTH as usize + 1]);
        for round in 0..(MAX_DEPTH as usize + 3) {
            assert_eq!(packs.get(&id(&page(round))).unwrap(), page(round));
        }
    }

    #[test]
    fn bytes_after_a_blobs_frame_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (packs, a, b) = Packs::with_a_delta(tmp.path());
        let lookup = |x: &BlobId| Ok(packs.locs.borrow().get(x).copied());
        for raw in [&a, &b] {
            let stored = packs.dir.stored(&id(raw), &lookup).unwrap().unwrap();
            assert_eq!(&packs.dir.decode(&id(raw), &stored, 0, &lookup).unwrap(), raw);
            // A skippable frame appended: zstd alone would pass over it.
            let mut longer = stored.clone();
            longer.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 0]);
            let err = packs.dir.decode(&id(raw), &longer, 0, &lookup).unwrap_err().to_string();
            assert!(err.contains("follow its frame"), "{err}");
        }
    }

    #[test]
    fn a_delta_whose_header_lies_is_corrupt_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let (packs, _, b) = Packs::with_a_delta(tmp.path());
        let loc = packs.locs.borrow()[&id(&b)];
        let path = packs.dir.pack_path(loc.file);
        let good = std::fs::read(&path).unwrap();
        let at = (loc.offset + crate::store::records::HEADER) as usize;
        for (i, value) in [(40usize, 0u8), (40, 200), (48, 0xff), (41, 0xff)] {
            let mut bad = good.clone();
            bad[at + i] = value;
            std::fs::write(&path, &bad).unwrap();
            assert!(packs.get(&id(&b)).is_err(), "byte {i} = {value}");
        }
        // A delta naming itself as its base.
        let mut bad = good.clone();
        bad[at + 8..at + 40].copy_from_slice(id(&b).as_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(packs.get(&id(&b)).is_err());
    }
}
