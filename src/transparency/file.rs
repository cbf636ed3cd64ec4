//! The stored hashes of an archive's Merkle tree: `tree/hashes`, an
//! append-only record file derived from the log (rebuilt by `repair`,
//! checked by `verify`).
//!
//! Layout (docs/format.md, "The Merkle tree"): a 16-byte header (`cairntre`,
//! version `u32` = 1, tile level `u32` = 6, big-endian), then 32-byte
//! SHA-256 hashes: the hash of every complete subtree of 64 leaves and
//! above, in Go tlog's stored order over tiles ([`super::merkle::stored_index`]).
//! Subtrees below a tile are hashed again from the log's entries when a
//! proof needs them ([`StoredTree`]).

use super::merkle::{self, Frontier, Hash, Subtrees, TILE, TILE_LEVEL};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"cairntre";
const VERSION: u32 = 1;
pub(crate) const HEADER: u64 = 16;

fn header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..].copy_from_slice(&TILE_LEVEL.to_be_bytes());
    h
}

/// The stored hashes, in a file or in memory.
#[derive(Default, Clone, Debug)]
pub struct TreeFile {
    /// The file and its path; `None` in memory.
    file: Option<(std::sync::Arc<File>, PathBuf)>,
    /// In memory: every stored hash.
    mem: Vec<Hash>,
    /// Stored hashes written (and synced, for a file).
    count: u64,
    /// Stored hashes computed since the last [`TreeFile::sync`].
    pending: Vec<Hash>,
    /// The right edge, once loaded (it needs the leaves of the incomplete
    /// tile, from the log).
    frontier: Option<Frontier>,
}

impl TreeFile {
    /// Stored hashes in memory.
    pub fn memory() -> TreeFile {
        TreeFile { file: None, mem: Vec::new(), count: 0, pending: Vec::new(), frontier: None }
    }

    /// Opens (or creates) `dir/hashes`, keeping at most `trusted` stored
    /// hashes (what the index recorded at its last commit: hashes past it
    /// may not have reached the disk) and whole tiles only. A file whose
    /// header is not cairn's is moved aside (`hashes.damaged-SECONDS`) and a
    /// new one started: the tree is derived from the log.
    pub fn open(dir: &Path, trusted: u64) -> Result<TreeFile> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("hashes");
        let io = |e| Error::io(&path, e);
        let file = crate::store::open_derived_file(&path)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = [0u8; 16];
        // (A header the system fails to read is an error, not a file of
        // another kind to move aside.)
        if len >= HEADER {
            file.read_exact_at(&mut head, 0).map_err(io)?;
        }
        let good = len >= HEADER && head == header();
        let file = if good || len == 0 {
            file
        } else {
            drop(file);
            let aside = crate::store::records::aside_name(&path, "damaged");
            tracing::warn!(
                "{}: not a cairn tree file; moved to {} and rebuilt from the log",
                path.display(),
                aside.display()
            );
            std::fs::rename(&path, &aside).map_err(io)?;
            crate::store::open_derived_file(&path)?
        };
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER {
            file.write_all_at(&header(), 0).map_err(io)?;
        }
        let on_disk = len.saturating_sub(HEADER) / 32;
        let count = merkle::stored_count(merkle::tiles_within(on_disk.min(trusted)));
        file.set_len(HEADER + count * 32).map_err(io)?;
        Ok(TreeFile {
            file: Some((std::sync::Arc::new(file), path)),
            mem: Vec::new(),
            count,
            pending: Vec::new(),
            frontier: None,
        })
    }

    /// Stored hashes, pending ones included.
    pub fn count(&self) -> u64 {
        self.count + self.pending.len() as u64
    }

    /// Complete tiles covered, pending ones included.
    pub fn tiles(&self) -> u64 {
        merkle::tiles_within(self.count())
    }

    /// The stored hash at position `i`.
    pub fn get(&self, i: u64) -> Result<Hash> {
        if i >= self.count {
            return self
                .pending
                .get((i - self.count) as usize)
                .copied()
                .ok_or_else(|| Error::Corrupt(format!("the Merkle tree has no stored hash {i}")));
        }
        match &self.file {
            None => Ok(self.mem[i as usize]),
            Some((f, path)) => {
                let mut h = [0u8; 32];
                f.read_exact_at(&mut h, HEADER + i * 32).map_err(|e| Error::io(path, e))?;
                Ok(h)
            }
        }
    }

    /// Keeps the first `tiles` tiles only (the log is shorter).
    pub fn cut_to_tiles(&mut self, tiles: u64) -> Result<()> {
        if tiles >= self.tiles() {
            return Ok(());
        }
        self.sync()?;
        self.count = merkle::stored_count(tiles);
        match &self.file {
            None => self.mem.truncate(self.count as usize),
            Some((f, path)) => f.set_len(HEADER + self.count * 32).map_err(|e| Error::io(path, e))?,
        }
        self.frontier = None;
        Ok(())
    }

    /// Loads the right edge: the stored subtrees, and `tile` (the leaf
    /// hashes after the last complete tile).
    pub fn load_frontier(&mut self, tile: Vec<Hash>) -> Result<()> {
        let mut f = Frontier::resume(self.tiles(), |i| self.get(i))?;
        f.set_tile(tile);
        self.frontier = Some(f);
        Ok(())
    }

    /// Leaves covered by the loaded right edge.
    pub fn leaves(&self) -> Option<u64> {
        self.frontier.as_ref().map(Frontier::leaves)
    }

    /// Adds leaf hashes (the right edge must be loaded); the stored hashes
    /// they complete are pending until [`TreeFile::sync`].
    pub fn push(&mut self, leaves: impl IntoIterator<Item = Hash>) -> Result<()> {
        let Some(f) = self.frontier.as_mut() else {
            return Err(Error::Internal("Merkle tree appended to before its right edge was loaded".into()));
        };
        for l in leaves {
            f.push(l, &mut self.pending);
        }
        Ok(())
    }

    /// The tree hash of every leaf pushed (the right edge must be loaded).
    pub fn root(&self) -> Option<Hash> {
        self.frontier.as_ref().map(Frontier::root)
    }

    /// Writes the pending hashes and makes them durable.
    pub fn sync(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let added = self.pending.len() as u64;
        match &self.file {
            None => self.mem.append(&mut self.pending),
            Some((f, path)) => {
                let bytes: Vec<u8> = self.pending.iter().flatten().copied().collect();
                let io = |e| Error::io(path, e);
                f.write_all_at(&bytes, HEADER + self.count * 32).map_err(io)?;
                f.sync_data().map_err(io)?;
            }
        }
        self.count += added;
        self.pending.clear();
        Ok(())
    }

    /// Brings the tree to `size` leaves: cut back to whole tiles when it
    /// holds more, then the leaves it lacks read with `read(first, count)`
    /// (leaf hashes, from the log) and pushed. Nothing is synced.
    pub fn extend_to(
        &mut self,
        size: u64,
        mut read: impl FnMut(u64, u64) -> Result<Vec<Hash>>,
    ) -> Result<()> {
        if self.leaves() == Some(size) {
            return Ok(());
        }
        if self.tiles() * TILE > size {
            self.cut_to_tiles(size / TILE)?;
        }
        if self.leaves().is_none_or(|l| l > size) {
            self.sync()?;
            self.load_frontier(Vec::new())?;
        }
        while let Some(done) = self.leaves().filter(|&l| l < size) {
            let count = (size - done).min(1 << 16);
            let leaves = read(done, count)?;
            if leaves.len() as u64 != count {
                return Err(Error::Internal(format!(
                    "read {} leaves from {done}, not {count}",
                    leaves.len()
                )));
            }
            self.push(leaves)?;
        }
        Ok(())
    }

    /// Brings the tree to `before` leaves ([`TreeFile::extend_to`]), adds
    /// `leaves` after them and syncs: what a commit (or an open that finds
    /// the tree behind the log) does. On an error the pending hashes and
    /// the right edge are forgotten, the file keeping what was synced.
    pub fn append(
        &mut self,
        before: u64,
        read: impl FnMut(u64, u64) -> Result<Vec<Hash>>,
        leaves: impl IntoIterator<Item = Hash>,
    ) -> Result<()> {
        let done = self.extend_to(before, read).and_then(|()| self.push(leaves)).and_then(|()| self.sync());
        if done.is_err() {
            self.discard_pending();
        }
        done
    }

    /// Forgets the pending hashes and the right edge (a commit failed).
    pub fn discard_pending(&mut self) {
        self.pending.clear();
        self.frontier = None;
    }
}

/// The complete subtrees of an archive's tree: stored ones from the
/// [`TreeFile`], smaller ones hashed from the leaves of their tile, which
/// `leaves(first, count)` reads from the log.
pub struct StoredTree<'a, F> {
    file: &'a TreeFile,
    leaves: F,
    /// Leaves in the archive.
    size: u64,
    tiles: HashMap<u64, Vec<Hash>>,
}

impl<'a, F: FnMut(u64, u64) -> Result<Vec<Hash>>> StoredTree<'a, F> {
    /// The tree of `size` leaves over `file`.
    pub fn new(file: &'a TreeFile, size: u64, leaves: F) -> StoredTree<'a, F> {
        StoredTree { file, leaves, size, tiles: HashMap::new() }
    }
}

impl<F: FnMut(u64, u64) -> Result<Vec<Hash>>> Subtrees for StoredTree<'_, F> {
    fn complete(&mut self, level: u32, index: u64) -> Result<Hash> {
        if level >= TILE_LEVEL {
            let rel = level - TILE_LEVEL;
            if (index + 1) << rel > self.file.tiles() {
                return Err(Error::Corrupt(format!(
                    "the Merkle tree's stored hashes cover {} leaves, fewer than the log's {} (`cairn repair` rebuilds them)",
                    self.file.tiles() * TILE,
                    self.size
                )));
            }
            return self.file.get(merkle::stored_index(rel, index));
        }
        let first = index << level;
        let tile = first / TILE;
        if !self.tiles.contains_key(&tile) {
            let count = TILE.min(self.size.saturating_sub(tile * TILE));
            let got = (self.leaves)(tile * TILE, count)?;
            if got.len() as u64 != count {
                return Err(Error::Internal(format!(
                    "read {} leaves of tile {tile}, not {count}",
                    got.len()
                )));
            }
            self.tiles.insert(tile, got);
        }
        let off = (first - tile * TILE) as usize;
        let leaves = &self.tiles[&tile];
        match leaves.get(off..off + (1usize << level)) {
            Some(slice) => Ok(merkle::subtree_of(slice)),
            None => Err(Error::Internal(format!(
                "subtree {level}/{index} is past the log's {} leaves",
                self.size
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::merkle::{consistency_proof, inclusion_proof, leaf_hash, root, Leaves};

    #[test]
    fn a_memory_tree_keeps_its_stored_hashes() {
        let leaves: Vec<Hash> = (0..300u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut t = TreeFile::memory();
        t.load_frontier(Vec::new()).unwrap();
        for chunk in leaves.chunks(50) {
            t.push(chunk.iter().copied()).unwrap();
            t.sync().unwrap();
        }
        assert_eq!(t.count(), merkle::stored_count(4));
        let read = |first: u64, count: u64| Ok(leaves[first as usize..(first + count) as usize].to_vec());
        let mut s = StoredTree::new(&t, 300, read);
        assert_eq!(
            inclusion_proof(&mut s, 7, 300).unwrap(),
            inclusion_proof(&mut Leaves(&leaves), 7, 300).unwrap()
        );
        assert_eq!(root(&mut s, 300).unwrap(), root(&mut Leaves(&leaves), 300).unwrap());
    }

    #[test]
    fn a_file_tree_gives_the_proofs_of_the_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let leaves: Vec<Hash> = (0..1000u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut t = TreeFile::open(dir.path(), 0).unwrap();
        t.load_frontier(Vec::new()).unwrap();
        for chunk in leaves.chunks(77) {
            t.push(chunk.iter().copied()).unwrap();
            t.sync().unwrap();
        }
        let n = leaves.len() as u64;
        assert_eq!(t.root(), Some(root(&mut Leaves(&leaves), n).unwrap()));
        let count = t.count();
        drop(t);
        // Reopened trusting all of it, or less: whole tiles only.
        let t = TreeFile::open(dir.path(), count).unwrap();
        assert_eq!(t.tiles(), n / TILE);
        let read = |first: u64, count: u64| Ok(leaves[first as usize..(first + count) as usize].to_vec());
        let mut s = StoredTree::new(&t, n, read);
        for (i, m) in [(0u64, 1u64), (63, 64), (64, 65), (500, 999), (999, 1000)] {
            assert_eq!(
                inclusion_proof(&mut s, i, n).unwrap(),
                inclusion_proof(&mut Leaves(&leaves), i, n).unwrap()
            );
            assert_eq!(
                consistency_proof(&mut s, m, n).unwrap(),
                consistency_proof(&mut Leaves(&leaves), m, n).unwrap()
            );
            assert_eq!(root(&mut s, m).unwrap(), root(&mut Leaves(&leaves), m).unwrap());
        }
        drop(t);
        let t = TreeFile::open(dir.path(), 5).unwrap();
        assert_eq!(t.count(), merkle::stored_count(merkle::tiles_within(5)));
        drop(t);
        std::fs::write(dir.path().join("hashes"), b"not a tree file at all").unwrap();
        let t = TreeFile::open(dir.path(), count).unwrap();
        assert_eq!(t.count(), 0);
        assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("hashes.damaged-")));
    }
}
