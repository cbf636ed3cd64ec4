//! The blob directory: raw capture bytes kept as write-once,
//! content-addressed, zstd-compressed files, `captures/ab/cdef….zst`, named
//! by the BLAKE3 of the raw (uncompressed) bytes, as git keeps its objects.
//!
//! A re-scrape of a page differs from the previous capture of the same page
//! by a few comments, so a blob given a *base* (that earlier capture) is
//! stored as a delta when that is smaller: `captures/ab/cdef….zd`, a zstd
//! frame compressed with the base's raw bytes as its dictionary, after a
//! header naming the base ([`DELTA_MAGIC`], base id, chain depth, raw
//! length). Chains are at most [`MAX_DEPTH`] deltas deep; the next capture
//! after that is stored whole again. Bases are blobs too, write-once, so a
//! delta never loses its base.
//!
//! A blob is written to a temporary file, fsynced, renamed into place and its
//! directory fsynced before any event that references it is committed, so a
//! crash can leave an orphan blob but never a dangling reference.

use crate::error::{Error, Result};
use crate::model::BlobId;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// zstd level for raw captures.
const ZSTD_LEVEL: i32 = 3;
/// The first bytes of a delta file.
pub const DELTA_MAGIC: &[u8; 8] = b"cairn\xd1\x00\x01";
/// Bytes of a delta file's header: magic, base id, depth (u8), raw length
/// (u64 BE).
const DELTA_HEADER: usize = 8 + 32 + 1 + 8;
/// Captures larger than this are always stored whole (and a delta header
/// claiming more is damage).
const MAX_DELTA_RAW: u64 = 256 << 20;
/// The longest chain of deltas before a blob is stored whole.
pub const MAX_DEPTH: u8 = 16;

/// A directory of content-addressed blobs.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
    /// Blobs written to temporary files, waiting for [`BlobDir::sync_staged`]:
    /// id, temporary file, final name.
    staged: Vec<(BlobId, PathBuf, PathBuf)>,
}

impl BlobDir {
    /// The blob directory at `root` (created on first write).
    pub fn new(root: PathBuf) -> BlobDir {
        BlobDir { root, staged: Vec::new() }
    }

    /// Writes blob `id` to a temporary file without syncing it; it becomes
    /// a blob (fsynced, renamed into place, directory fsynced) at the next
    /// [`BlobDir::sync_staged`]. A crash before then leaves only a
    /// temporary file, never a named blob with missing bytes.
    ///
    /// With `base` (an earlier blob of the same page, stored or staged), the
    /// blob is stored as a delta against it when that is smaller. Returns
    /// whether it was stored as a delta.
    pub fn stage(&mut self, id: &BlobId, raw: &[u8], base: Option<&BlobId>) -> Result<bool> {
        if self.exists(id) || self.staged.iter().any(|(s, _, _)| s == id) {
            return Ok(false);
        }
        let full_path = self.path_of(id);
        let full = zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(|e| Error::io(&full_path, e))?;
        let delta = match base.filter(|b| *b != id && raw.len() as u64 <= MAX_DELTA_RAW) {
            Some(b) => self.delta(raw, b)?.filter(|d| d.len() < full.len()),
            None => None,
        };
        let (path, bytes) = match &delta {
            Some(d) => (self.delta_path_of(id), d),
            None => (full_path, &full),
        };
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), &id.to_hex()[..16]));
        fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        self.staged.push((*id, tmp, path));
        Ok(delta.is_some())
    }

    /// The delta file of `raw` against `base`, unless the base is missing
    /// or its chain is already [`MAX_DEPTH`] long.
    fn delta(&self, raw: &[u8], base: &BlobId) -> Result<Option<Vec<u8>>> {
        let base_depth = match self.staged_or_stored(base)? {
            None => return Ok(None),
            Some(bytes) => match parse_delta_header(&bytes) {
                Some((_, depth, _)) => depth,
                None => 0,
            },
        };
        if base_depth >= MAX_DEPTH {
            return Ok(None);
        }
        let base_raw = self.get(base)?;
        let path = self.delta_path_of(base);
        let mut compressor = zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, &base_raw)
            .map_err(|e| Error::io(&path, e))?;
        let frame = compressor.compress(raw).map_err(|e| Error::io(&path, e))?;
        let mut out = Vec::with_capacity(DELTA_HEADER + frame.len());
        out.extend_from_slice(DELTA_MAGIC);
        out.extend_from_slice(base.as_bytes());
        out.push(base_depth + 1);
        out.extend_from_slice(&(raw.len() as u64).to_be_bytes());
        out.extend_from_slice(&frame);
        Ok(Some(out))
    }

    /// The stored (or staged) file bytes of blob `id`, if any.
    fn staged_or_stored(&self, id: &BlobId) -> Result<Option<Vec<u8>>> {
        let path = match self.staged.iter().find(|(s, _, _)| s == id) {
            Some((_, tmp, _)) => tmp.clone(),
            None => match self.existing_path(id) {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        fs::read(&path).map(Some).map_err(|e| Error::io(&path, e))
    }

    /// Makes every staged blob durable: fsync each file, rename it into
    /// place, fsync the directories.
    pub fn sync_staged(&mut self) -> Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (_, tmp, path) in std::mem::take(&mut self.staged) {
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
            fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
            if let Some(d) = path.parent() {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        if !dirs.is_empty() {
            for d in &dirs {
                sync_dir(d)?;
            }
            sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// The file that holds blob `id` when stored whole.
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(format!("{}.zst", &hex[2..]))
    }

    /// The file that holds blob `id` when stored as a delta.
    pub fn delta_path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(format!("{}.zd", &hex[2..]))
    }

    /// The file that holds blob `id`, whole or delta, if stored.
    pub fn existing_path(&self, id: &BlobId) -> Option<PathBuf> {
        [self.path_of(id), self.delta_path_of(id)].into_iter().find(|p| p.is_file())
    }

    fn exists(&self, id: &BlobId) -> bool {
        self.existing_path(id).is_some()
    }

    /// Stores `raw` under `id` durably, whole; a blob already present is
    /// left as is.
    pub fn put(&self, id: &BlobId, raw: &[u8]) -> Result<()> {
        let path = self.path_of(id);
        if self.exists(id) {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let compressed = zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(|e| Error::io(&path, e))?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), &id.to_hex()[..16]));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&compressed)?;
            f.sync_all()?;
            Ok(())
        };
        write().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&dir)?;
        sync_dir(&self.root)?;
        Ok(())
    }

    /// Reads and decompresses blob `id` (following a delta's bases). The
    /// caller re-hashes if it needs to.
    pub fn get(&self, id: &BlobId) -> Result<Vec<u8>> {
        self.get_at_depth(id, 0)
    }

    fn get_at_depth(&self, id: &BlobId, hops: u8) -> Result<Vec<u8>> {
        let Some(bytes) = self.staged_or_stored(id)? else {
            let path = self.path_of(id);
            return Err(Error::io(&path, std::io::Error::from(std::io::ErrorKind::NotFound)));
        };
        let path = self.existing_path(id).unwrap_or_else(|| self.path_of(id));
        let corrupt = |why: String| Error::Corrupt(format!("blob {}: {why}", path.display()));
        let Some((base, depth, len)) = parse_delta_header(&bytes) else {
            return zstd::stream::decode_all(&bytes[..])
                .map_err(|e| corrupt(format!("cannot decompress: {e}")));
        };
        if depth == 0 || depth > MAX_DEPTH || hops >= MAX_DEPTH {
            return Err(corrupt(format!("delta chain depth {depth} is out of range")));
        }
        // A capture is a page of tens of KB; a length past this is damage
        // (and would be a huge allocation).
        if len > MAX_DELTA_RAW {
            return Err(corrupt(format!("delta says {len} raw bytes")));
        }
        let base_raw = self
            .get_at_depth(&base, hops + 1)
            .map_err(|e| corrupt(format!("its delta base {base} cannot be read: {e}")))?;
        let mut d = zstd::bulk::Decompressor::with_dictionary(&base_raw)
            .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        let raw = d
            .decompress(&bytes[DELTA_HEADER..], len as usize)
            .map_err(|e| corrupt(format!("cannot decompress against base {base}: {e}")))?;
        if raw.len() as u64 != len {
            return Err(corrupt(format!("delta gave {} bytes, its header says {len}", raw.len())));
        }
        Ok(raw)
    }

    /// Every blob id present, sorted. Files that are not blobs are skipped.
    pub fn ids(&self) -> Result<Vec<BlobId>> {
        let mut out = Vec::new();
        let top = match fs::read_dir(&self.root) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        for sub in top {
            let sub = sub.map_err(|e| Error::io(&self.root, e))?;
            let prefix = sub.file_name().to_string_lossy().to_string();
            if prefix.len() != 2 || !sub.path().is_dir() {
                continue;
            }
            for f in fs::read_dir(sub.path()).map_err(|e| Error::io(sub.path(), e))? {
                let f = f.map_err(|e| Error::io(sub.path(), e))?;
                let name = f.file_name().to_string_lossy().to_string();
                if let Some(rest) = name.strip_suffix(".zst").or_else(|| name.strip_suffix(".zd")) {
                    if let Some(id) = BlobId::from_hex(&format!("{prefix}{rest}")) {
                        out.push(id);
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Total size of the blob files on disk.
    pub fn stored_bytes(&self) -> Result<u64> {
        self.ids()?
            .iter()
            .map(|id| {
                let p = self.existing_path(id).unwrap_or_else(|| self.path_of(id));
                fs::metadata(&p).map(|m| m.len()).map_err(|e| Error::io(&p, e))
            })
            .sum()
    }
}

/// A delta file's header: base id, depth, raw length; `None` for a whole
/// blob (a zstd frame, which starts with zstd's own magic number).
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

/// fsyncs a directory so that a rename into it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_re_scrape_is_stored_as_a_small_delta_and_reads_back_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = BlobDir::new(tmp.path().join("captures"));
        let (a, b) = (page(0), page(1));
        assert!(!dir.stage(&id(&a), &a, None).unwrap());
        // Staged but not yet synced: still usable as a base.
        assert!(dir.stage(&id(&b), &b, Some(&id(&a))).unwrap());
        dir.sync_staged().unwrap();
        assert!(dir.path_of(&id(&a)).is_file());
        let delta = dir.delta_path_of(&id(&b));
        assert!(fs::metadata(&delta).unwrap().len() < fs::metadata(dir.path_of(&id(&a))).unwrap().len() / 4);
        assert_eq!(dir.get(&id(&b)).unwrap(), b);
        assert_eq!(dir.ids().unwrap().len(), 2);
        // A damaged base is reported when the delta is read.
        fs::write(dir.path_of(&id(&a)), b"junk").unwrap();
        let err = dir.get(&id(&b)).unwrap_err().to_string();
        assert!(err.contains("delta base"), "{err}");
    }

    #[test]
    fn chains_stop_at_the_maximum_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = BlobDir::new(tmp.path().join("captures"));
        let mut prev: Option<BlobId> = None;
        let mut whole = Vec::new();
        for round in 0..(MAX_DEPTH as usize + 3) {
            let raw = page(round);
            let delta = dir.stage(&id(&raw), &raw, prev.as_ref()).unwrap();
            if !delta {
                whole.push(round);
            }
            prev = Some(id(&raw));
        }
        dir.sync_staged().unwrap();
        assert_eq!(whole, vec![0, MAX_DEPTH as usize + 1]);
        for round in 0..(MAX_DEPTH as usize + 3) {
            assert_eq!(dir.get(&id(&page(round))).unwrap(), page(round));
        }
    }

    #[test]
    fn a_delta_whose_header_lies_is_corrupt_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = BlobDir::new(tmp.path().join("captures"));
        let (a, b) = (page(0), page(1));
        dir.stage(&id(&a), &a, None).unwrap();
        dir.stage(&id(&b), &b, Some(&id(&a))).unwrap();
        dir.sync_staged().unwrap();
        let path = dir.delta_path_of(&id(&b));
        let good = fs::read(&path).unwrap();
        for (at, value) in [(40usize, 0u8), (40, 200), (48, 0xff), (41, 0xff)] {
            let mut bad = good.clone();
            bad[at] = value;
            fs::write(&path, &bad).unwrap();
            assert!(dir.get(&id(&b)).is_err(), "byte {at} = {value}");
        }
        // A delta naming itself as its base.
        let mut bad = good.clone();
        bad[8..40].copy_from_slice(id(&b).as_bytes());
        fs::write(&path, &bad).unwrap();
        assert!(dir.get(&id(&b)).is_err());
    }
}
