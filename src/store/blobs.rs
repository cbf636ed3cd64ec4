//! The blob directory: raw capture bytes kept as write-once,
//! content-addressed, zstd-compressed files, `captures/ab/cdef….zst`, named
//! by the BLAKE3 of the raw (uncompressed) bytes, as git keeps its objects.
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

/// A directory of content-addressed blobs.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
    /// Blobs written to temporary files, waiting for [`BlobDir::sync_staged`].
    staged: Vec<(BlobId, PathBuf)>,
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
    pub fn stage(&mut self, id: &BlobId, raw: &[u8]) -> Result<()> {
        if self.path_of(id).is_file() || self.staged.iter().any(|(s, _)| s == id) {
            return Ok(());
        }
        let path = self.path_of(id);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let compressed = zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(|e| Error::io(&path, e))?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), &id.to_hex()[..16]));
        fs::write(&tmp, &compressed).map_err(|e| Error::io(&tmp, e))?;
        self.staged.push((*id, tmp));
        Ok(())
    }

    /// Makes every staged blob durable: fsync each file, rename it into
    /// place, fsync the directories.
    pub fn sync_staged(&mut self) -> Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (id, tmp) in std::mem::take(&mut self.staged) {
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
            let path = self.path_of(&id);
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

    /// The file that holds blob `id`.
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(format!("{}.zst", &hex[2..]))
    }

    /// Stores `raw` under `id` durably; a blob already present is left as is.
    pub fn put(&self, id: &BlobId, raw: &[u8]) -> Result<()> {
        let path = self.path_of(id);
        if path.is_file() {
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

    /// Reads and decompresses blob `id`. The caller re-hashes if it needs to.
    pub fn get(&self, id: &BlobId) -> Result<Vec<u8>> {
        let path = self.path_of(id);
        let compressed = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        zstd::stream::decode_all(&compressed[..])
            .map_err(|e| Error::Corrupt(format!("blob {}: cannot decompress: {e}", path.display())))
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
                if let Some(rest) = name.strip_suffix(".zst") {
                    if let Some(id) = BlobId::from_hex(&format!("{prefix}{rest}")) {
                        out.push(id);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Total size of the blob files on disk.
    pub fn stored_bytes(&self) -> Result<u64> {
        self.ids()?
            .iter()
            .map(|id| {
                let p = self.path_of(id);
                fs::metadata(&p).map(|m| m.len()).map_err(|e| Error::io(&p, e))
            })
            .sum()
    }
}

/// fsyncs a directory so that a rename into it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}
