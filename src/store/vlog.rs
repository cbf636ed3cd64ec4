//! Values out of sled: [`SeparatedTree`], a [`KvTree`] whose large values
//! live in append-only value files of the tree's own (a view's in
//! `views/NAME.a.vlog` and `views/NAME.b.vlog`; the articles' id sets in
//! `sets/ids.a.vlog` and `sets/ids.b.vlog`), sled keeping only their
//! locators, so that sled's pages stay small and its cache holds the keys
//! (issue 13: sled holds small values, O(documents) keys).
//!
//! A value under [`INLINE_MAX`] bytes is kept in sled behind the byte `0`;
//! a larger one is appended to the current value file and sled keeps the
//! byte `1` (file `a`) or `2` (file `b`), its offset (`u64` BE), length
//! (`u32` BE) and the first 4 bytes of its BLAKE3 (a check that the bytes
//! read are the bytes written), or, for a value its writer sealed (an
//! envelope: [`KvTree::apply_sealed`]), the first 4 of the envelope's own
//! check bytes, which a read verifies (the writer's hash stands for both).
//! The value file is synced before sled hears
//! of the locators, so no locator sled persists points past what the file
//! holds (a compaction's moves aside: the tree records no epochs while
//! they are under way, below); a tree written key by key ([`KvTree::apply_loose`]: one nobody
//! reads until the run building it ends) is synced once, by
//! [`KvTree::sync`], before anything names it, and one made by
//! [`SeparatedTree::held`] keeps its keys and locators in memory until
//! it is settled or synced, or outgrows the memory it may take
//! (`store/held.rs`). Each file starts with `cairnval` and a random epoch, new whenever
//! the file is emptied; the tree records the epochs it matches (and the
//! files' lengths when it wrote the record: files restored from before
//! later writes are shorter), so a tree
//! that points into files it no longer matches is known ([`stale`]).
//!
//! Rewritten values leave garbage behind: when the files hold more than
//! twice the bytes the tree still points at (and over 8 MiB; looked at
//! after as many bytes of writes as could make it due since the last look,
//! in this process or one before: `next_look`), the live values are
//! copied into the
//! other file as they are, keeping their checks, and the locators
//! rewritten a chunk at a time ([`SeparatedTree::compact`]). A tree just
//! built (a replay's new generation) is compacted once more when over an
//! eighth of its files is garbage ([`KvTree::settle`]).
//! While a compaction moves values the tree records no epochs, so a crash
//! leaves it stale (rebuilt from the log at the next open); one that
//! fails (a full disk) leaves it readable for the rest of the process and
//! stale after (`SeparatedTree::move_values`).
//! Both trees are derived from the log: a damaged value file is a damaged
//! view (`verify` reports it; `replay` rebuilds it) or damaged id sets
//! (`verify` reports them; `repair` rebuilds them).

use super::held::Keys;
use super::kv::{KvIter, KvTree, Write};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Values shorter than this stay in sled.
pub const INLINE_MAX: usize = 64;
const INLINE: u8 = 0;
/// Locator tags: the value is in file `a` (1) or `b` (2).
const IN_A: u8 = 1;
const IN_B: u8 = 2;
const LOCATOR: usize = 1 + 8 + 4 + 4;
/// A tree whose value files are smaller than this is never compacted
/// (64 KiB under the library's unit tests, so that the views' proptests,
/// on small logs, meet compactions).
const COMPACT_MIN: u64 = if cfg!(test) { 64 << 10 } else { 8 << 20 };
/// A tree just built ([`KvTree::settle`]) is compacted when garbage is more
/// than this share of its value files (an eighth).
pub const SETTLE_SLACK: (u64, u64) = (1, 8);
/// A tree is compacted as it is written when garbage is more than this
/// share of its value files (half: the files at most twice what the tree
/// points at, give or take the writes between two looks).
const COMPACT_SLACK: (u64, u64) = (1, 2);

fn check_of(value: &[u8]) -> [u8; 4] {
    let h = blake3::hash(value);
    [h.as_bytes()[0], h.as_bytes()[1], h.as_bytes()[2], h.as_bytes()[3]]
}

/// The first 4 of a sealed envelope's own check bytes
/// ([`crate::store::envelope::check_bytes`]), which stand for the check of
/// a value its writer sealed ([`KvTree::apply_sealed`]).
fn sealed_check(value: &[u8]) -> Option<[u8; 4]> {
    match crate::store::envelope::check_bytes(value)? {
        [a, b, c, d, ..] => Some([*a, *b, *c, *d]),
        _ => None,
    }
}

/// Whether `value` is the value a locator with `check` was written for:
/// an envelope its writer sealed, by its own check bytes and their
/// verification (the one BLAKE3 its writer made stands for the value's
/// check too), else by the first 4 bytes of its BLAKE3.
fn holds(value: &[u8], check: [u8; 4]) -> bool {
    if sealed_check(value) == Some(check) && crate::store::envelope::intact(value) {
        return true;
    }
    check_of(value) == check
}

/// One append-only file of values: a header (`cairnval`, then a random
/// `u64` epoch, new whenever the file is emptied), then values.
struct Slot {
    path: PathBuf,
    file: File,
    len: u64,
    epoch: u64,
    /// Appends are synced (false for scratch trees, thrown away after use).
    durable: bool,
}

const MAGIC: &[u8; 8] = b"cairnval";
const HEADER: u64 = 16;

fn new_epoch() -> Result<u64> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(u64::from_be_bytes(b).max(1))
}

impl Slot {
    fn open(path: PathBuf, durable: bool) -> Result<Slot> {
        let file = crate::store::open_derived_file(&path)?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let mut header = [0u8; HEADER as usize];
        // (A header the system fails to read is an error, not a file of
        // another epoch: that would drop what the file holds as stale.)
        if len >= HEADER {
            file.read_exact_at(&mut header, 0).map_err(|e| Error::io(&path, e))?;
        }
        let epoch = match len >= HEADER && header[..8] == *MAGIC {
            true => u64::from_be_bytes(header[8..].try_into().unwrap_or([0; 8])),
            false => 0,
        };
        // New, or not a value file (epoch 0): emptied under a new epoch at
        // its first append, never at open (an audit must not change it); a
        // tree that pointed into it does not match it.
        Ok(Slot { path, file, len, epoch, durable })
    }

    /// Appends `values`; syncs them unless `defer_sync` (then
    /// [`Slot::sync`] must run before anything durable names them).
    fn append(&mut self, values: &[&[u8]], defer_sync: bool) -> Result<Vec<u64>> {
        if self.epoch == 0 {
            self.truncate()?;
        }
        let mut buf = Vec::with_capacity(values.iter().map(|v| v.len()).sum());
        let mut offsets = Vec::with_capacity(values.len());
        for v in values {
            offsets.push(self.len + buf.len() as u64);
            buf.extend_from_slice(v);
        }
        let io = |e| Error::io(&self.path, e);
        self.file.write_all_at(&buf, self.len).map_err(io)?;
        if self.durable && !defer_sync {
            self.file.sync_data().map_err(io)?;
        }
        self.len += buf.len() as u64;
        Ok(offsets)
    }

    /// Syncs what was appended.
    fn sync(&self) -> Result<()> {
        if self.durable {
            self.file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>> {
        if offset.checked_add(u64::from(len)).is_none_or(|end| end > self.len) {
            return Err(Error::Corrupt(format!(
                "{}: a value at byte {offset} ({len} bytes) lies past the file's end ({} bytes)",
                self.path.display(),
                self.len
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| Error::io(&self.path, e))?;
        Ok(buf)
    }

    /// Empties the file under a new epoch.
    fn truncate(&mut self) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        let epoch = new_epoch()?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&epoch.to_be_bytes());
        self.file.set_len(0).map_err(io)?;
        self.file.write_all_at(&header, 0).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.len = HEADER;
        self.epoch = epoch;
        Ok(())
    }

    /// Whether the file holds values (past its header).
    fn holds_values(&self) -> bool {
        self.epoch != 0 && self.len > HEADER
    }

    /// Bytes of values it holds.
    fn value_bytes(&self) -> u64 {
        if self.epoch == 0 {
            0
        } else {
            self.len.saturating_sub(HEADER)
        }
    }
}

/// The two value files of one view tree (`NAME.a.vlog`, `NAME.b.vlog`):
/// values are appended to the current one; compaction copies the live
/// values into the other and moves the locators there
/// (`SeparatedTree::move_values`), and only then empties the first.
pub struct ValueFile {
    inner: Mutex<Pair>,
}

struct Pair {
    a: Slot,
    b: Slot,
    /// The file appends go to (`IN_A` or `IN_B`); `None` until the first
    /// append of this process decides it.
    current: Option<u8>,
    /// The files' size (in value bytes) at which to look at the garbage
    /// next: after the last look, the fewest bytes of writes that could
    /// make it due ([`next_look`]). Kept in the tree's record with the
    /// epochs, so that a process does not scan the tree at its first write
    /// (at 1M, 100 ms for each view's 30,000 keys) unless the garbage may
    /// be due; `None` until read from the record (0, a look at the first
    /// write, when the record has none or does not match the files).
    look_at: Option<u64>,
    /// Looks at the garbage in this process (each a scan of the tree).
    looks: u64,
    /// A move of values failed part way in this process: the tree records
    /// no epochs from then on (stale at the next open, and rebuilt), and
    /// no compaction is tried again.
    unsettled: bool,
    /// The error of that move, when a compaction as the tree was written
    /// (only logged there) met it: [`KvTree::settle`] returns it, so that
    /// a replay does not name a tree that is stale.
    failed: Option<Error>,
}

/// The files' size at which to look at the garbage again, after a look
/// found `live` of `total` bytes live: the garbage is due once it is more
/// than [`COMPACT_SLACK`] of the files, which takes at least
/// `live / (1 - slack) - total` bytes of rewrites; and at least an eighth
/// of the files more, so that looks (a scan of the tree's keys) stay few.
fn next_look(live: u64, total: u64) -> u64 {
    let (num, den) = COMPACT_SLACK;
    let rewrites = (live.saturating_mul(den) / (den - num)).saturating_sub(total).max(total / 8);
    total.saturating_add(rewrites)
}

impl Pair {
    fn slot(&self, tag: u8) -> &Slot {
        if tag == IN_A {
            &self.a
        } else {
            &self.b
        }
    }
    fn slot_mut(&mut self, tag: u8) -> &mut Slot {
        if tag == IN_A {
            &mut self.a
        } else {
            &mut self.b
        }
    }
    fn total(&self) -> u64 {
        self.a.value_bytes() + self.b.value_bytes()
    }

    /// Both files' epochs, as the tree's record starts.
    fn epochs(&self) -> Vec<u8> {
        let mut v = self.a.epoch.to_be_bytes().to_vec();
        v.extend_from_slice(&self.b.epoch.to_be_bytes());
        v
    }

    /// The record a tree keeps of its files: both epochs, then (when
    /// known) where to look at the garbage next ([`Pair::look_at`], `u64`
    /// BE), both files' lengths in bytes (`u64` BE each: what the tree may
    /// point into), and the first 4 bytes of BLAKE3 of the 40 bytes before.
    fn record(&self) -> Vec<u8> {
        let mut v = self.epochs();
        if let Some(at) = self.look_at {
            v.extend_from_slice(&at.to_be_bytes());
            v.extend_from_slice(&self.a.len.to_be_bytes());
            v.extend_from_slice(&self.b.len.to_be_bytes());
            let check = check_of(&v);
            v.extend_from_slice(&check);
        }
        v
    }
}

/// Whether `recorded` (a tree's record, [`Pair::record`]) names the files
/// of `pair` and is whole: their epochs, and files no shorter than when it
/// was written (files restored from before later writes, which the tree
/// may point past, do not match it). A changed byte anywhere in it makes
/// the tree stale, as any damage to what it holds is found. (Records of
/// 16 and 28 bytes, written before the lengths were kept, name the epochs
/// alone.)
fn record_matches(recorded: &[u8], pair: &Pair) -> bool {
    let epochs = pair.epochs();
    let at = |i: usize| recorded.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    match recorded.len() {
        16 => recorded == epochs,
        28 => recorded[..16] == *epochs && recorded[24..] == check_of(&recorded[..24]),
        44 => {
            recorded[..16] == *epochs
                && recorded[40..] == check_of(&recorded[..40])
                && at(24).is_some_and(|a| pair.a.len >= a)
                && at(32).is_some_and(|b| pair.b.len >= b)
        }
        _ => false,
    }
}

/// The key under which a tree records its value files' epochs (and where
/// to look at the garbage next: [`Pair::record`]), hidden from reads and
/// scans.
const EPOCH_KEY: &[u8] = b"\xff\xffvalue-files";

/// Whether `tree` no longer matches its value files `files`: it points into
/// them and records other epochs than theirs, or none (a file lost, emptied
/// or replaced since: an index older than the files, or files older than
/// the index). Such a view is dropped and rebuilt.
pub fn stale(tree: &sled::Tree, files: &ValueFile) -> Result<bool> {
    stale_keys(&Keys::Sled(tree.clone()), files)
}

fn stale_keys(tree: &Keys, files: &ValueFile) -> Result<bool> {
    let differs = {
        let pair = files.lock();
        match tree.get(EPOCH_KEY)? {
            Some(recorded) => !record_matches(&recorded, &pair),
            None => true,
        }
    };
    // A tree with no locator (the pointers tree) reads nothing from the
    // files: it always matches them.
    Ok(differs && points_out(tree)?)
}

/// Where a value out of sled is, as sled keeps it ([`LOCATOR`] bytes):
/// the file (`IN_A` or `IN_B`), the value's offset and length, and its
/// check ([`holds`]).
#[derive(Clone, Copy)]
struct Locator {
    tag: u8,
    offset: u64,
    len: u32,
    check: [u8; 4],
}

impl Locator {
    /// The locator `stored` is, when it is one (not an inline value).
    fn parse(stored: &[u8]) -> Option<Locator> {
        if stored.len() != LOCATOR || !(stored[0] == IN_A || stored[0] == IN_B) {
            return None;
        }
        Some(Locator {
            tag: stored[0],
            offset: u64::from_be_bytes(stored[1..9].try_into().ok()?),
            len: u32::from_be_bytes(stored[9..13].try_into().ok()?),
            check: stored[13..17].try_into().ok()?,
        })
    }

    /// The locator of `value`, written at `offset` of file `tag`
    /// (`sealed`: an envelope its writer sealed, [`sealed_check`]).
    fn of(tag: u8, offset: u64, value: &[u8], sealed: bool) -> Locator {
        let check = match sealed.then(|| sealed_check(value)).flatten() {
            Some(check) => check,
            None => check_of(value),
        };
        Locator { tag, offset, len: value.len() as u32, check }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut loc = Vec::with_capacity(LOCATOR);
        loc.push(self.tag);
        loc.extend_from_slice(&self.offset.to_be_bytes());
        loc.extend_from_slice(&self.len.to_be_bytes());
        loc.extend_from_slice(&self.check);
        loc
    }
}

/// The file a stored value points into (`IN_A` or `IN_B`), when it is a
/// locator.
fn locator_tag(stored: &[u8]) -> Option<u8> {
    Locator::parse(stored).map(|l| l.tag)
}

/// Whether `tree` holds a locator into a value file.
fn points_out(tree: &Keys) -> Result<bool> {
    for kv in tree.scan_prefix(b"") {
        if locator_tag(&kv?.1).is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Live bytes per file of a tree: (in `a`, in `b`).
fn live_bytes(tree: &Keys) -> Result<(u64, u64)> {
    let (mut a, mut b) = (0u64, 0u64);
    for kv in tree.scan_prefix(b"") {
        match Locator::parse(&kv?.1) {
            Some(l) if l.tag == IN_A => a += u64::from(l.len),
            Some(l) => b += u64::from(l.len),
            None => {}
        }
    }
    Ok((a, b))
}

impl ValueFile {
    fn open(dir: &Path, name: &str, durable: bool) -> Result<ValueFile> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let a = Slot::open(dir.join(format!("{name}.a.vlog")), durable)?;
        let b = Slot::open(dir.join(format!("{name}.b.vlog")), durable)?;
        // The first write of a process looks at the garbage (the count of
        // bytes written since the last look is not kept across processes).
        let pair = Pair { a, b, current: None, look_at: None, looks: 0, unsettled: false, failed: None };
        Ok(ValueFile { inner: Mutex::new(pair) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pair> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The value files of one archive, one pair per view tree, shared by every
/// handle on the tree in this process (appends must not interleave).
#[derive(Clone, Default)]
pub struct ValueFiles {
    dir: PathBuf,
    open: Arc<Mutex<HashMap<String, Arc<ValueFile>>>>,
    durable: bool,
}

impl ValueFiles {
    /// The value files under `dir` (`ARCHIVE/views`).
    pub fn new(dir: PathBuf) -> ValueFiles {
        ValueFiles { dir, open: Arc::default(), durable: true }
    }

    /// Value files that are thrown away after use (an audit's scratch
    /// trees): appends are not synced.
    pub fn scratch(dir: PathBuf) -> ValueFiles {
        ValueFiles { dir, open: Arc::default(), durable: false }
    }

    /// The value files of tree `name`.
    pub fn get(&self, name: &str) -> Result<Arc<ValueFile>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = open.get(name) {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(ValueFile::open(&self.dir, name, self.durable)?);
        open.insert(name.to_string(), Arc::clone(&f));
        Ok(f)
    }

    /// Deletes the value files of every name in the directory that
    /// `trees()` (the trees there are) does not name and that no handle of
    /// this process has open; returns those names. The files are listed
    /// before the trees, and the trees listed and the files deleted under
    /// the lock [`ValueFiles::get`] takes: a tree is made before its files
    /// are opened, so the files of a tree another thread is making are
    /// either seen with their tree or opened after the deletion.
    pub fn remove_unowned(&self, trees: impl FnOnce() -> Result<Vec<String>>) -> Result<Vec<String>> {
        let on_disk = self.names_on_disk()?;
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let trees = trees()?;
        let mut removed = Vec::new();
        for name in on_disk.into_iter().filter(|n| !trees.contains(n) && !open.contains_key(n)) {
            match self.remove_files(&name) {
                Ok(()) => removed.push(name),
                // Housekeeping: a file that cannot go is left, said once.
                Err(e) => tracing::warn!("value files no tree owns could not be deleted: {e}"),
            }
        }
        Ok(removed)
    }

    /// The names whose value files (`NAME.a.vlog`, `NAME.b.vlog`) are in
    /// the directory.
    fn names_on_disk(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            let name = file.strip_suffix(".a.vlog").or_else(|| file.strip_suffix(".b.vlog"));
            if let Some(name) = name.filter(|n| !names.iter().any(|m: &String| m == n)) {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Deletes the value files of tree `name` (the tree was dropped).
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(name);
        self.remove_files(name)
    }

    /// Deletes the files of `name` (missing ones are no error).
    fn remove_files(&self, name: &str) -> Result<()> {
        for side in ["a", "b"] {
            let path = self.dir.join(format!("{name}.{side}.vlog"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(())
    }
}

/// A sled tree whose large values live in a [`ValueFile`].
#[derive(Clone)]
pub struct SeparatedTree {
    tree: Keys,
    values: Arc<ValueFile>,
}

impl SeparatedTree {
    /// Appends `writes`' large values to the current value file (synced
    /// before sled hears of them, unless `defer_sync`: then [`KvTree::sync`]
    /// must run before anything names the tree) and returns what sled is to
    /// hold: the epochs first, then each key's locator, inline value or
    /// removal.
    fn stage(&self, writes: Vec<Write>, sealed: &[bool], defer_sync: bool) -> Result<Vec<Write>> {
        if writes.iter().any(|(k, _)| k == EPOCH_KEY) {
            return Err(Error::Internal("a view wrote the value files' reserved key".into()));
        }
        let big: Vec<&[u8]> = writes
            .iter()
            .filter_map(|(_, v)| v.as_deref())
            .filter(|v| v.len() >= INLINE_MAX && u32::try_from(v.len()).is_ok())
            .collect();
        let (tag, offsets, epochs) = {
            let mut pair = self.values.lock();
            let tag = self.current(&mut pair)?;
            // (Read before the record is written again with these writes,
            // so that the record keeps it.)
            self.look_at(&mut pair);
            let offsets =
                if big.is_empty() { Vec::new() } else { pair.slot_mut(tag).append(&big, defer_sync)? };
            (tag, offsets, (!pair.unsettled).then(|| pair.record()))
        };
        let mut offsets = offsets.into_iter();
        let mut out = Vec::with_capacity(writes.len() + 1);
        out.push((EPOCH_KEY.to_vec(), epochs));
        for (i, (k, v)) in writes.into_iter().enumerate() {
            let stored = match v {
                None => None,
                Some(v) if v.len() >= INLINE_MAX && u32::try_from(v.len()).is_ok() => {
                    let off =
                        offsets.next().ok_or_else(|| Error::Internal("value offsets ran out".into()))?;
                    Some(Locator::of(tag, off, &v, sealed.get(i).copied().unwrap_or(false)).bytes())
                }
                Some(v) => {
                    let mut inline = Vec::with_capacity(v.len() + 1);
                    inline.push(INLINE);
                    inline.extend_from_slice(&v);
                    Some(inline)
                }
            };
            out.push((k, stored));
        }
        Ok(out)
    }

    /// Compacts the value files when their garbage is due (after writes).
    fn compact_if_due(&self) -> Result<()> {
        if self.due_for_compaction() {
            // The writes are in; a compaction that cannot run (a full disk:
            // it needs room for the live values; a damaged value, which
            // reads of it and `verify` name) leaves the garbage, and the
            // writes stand.
            if let Err(e) = self.compact() {
                tracing::warn!("values not compacted: {e}");
                let mut pair = self.values.lock();
                if pair.unsettled {
                    pair.failed = Some(e);
                }
            }
        }
        Ok(())
    }

    /// Whether the tree holds any key (its epochs record aside).
    pub fn holds_keys(&self) -> Result<bool> {
        for kv in self.tree.scan_prefix(b"") {
            if kv?.0 != EPOCH_KEY {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `tree`, with its large values in `values`.
    pub fn new(tree: sled::Tree, values: Arc<ValueFile>) -> SeparatedTree {
        SeparatedTree { tree: Keys::Sled(tree), values }
    }

    /// A new tree (`tree` empty, as are its `values`) that one run builds
    /// and nobody reads before that run ends (a replay's new generation, a
    /// scratch tree): its keys are held in memory (`store/held.rs`) and
    /// go into `tree` once, in key order, when it is settled or synced
    /// (or when they outgrow the memory they may take).
    pub fn held(tree: sled::Tree, values: Arc<ValueFile>) -> SeparatedTree {
        SeparatedTree { tree: Keys::held(tree), values }
    }

    /// The keys under `prefix`, each with its value or why it cannot be
    /// read (a damaged or missing value file): an audit names each such
    /// key and goes on.
    pub fn scan_each(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, Result<Vec<u8>>)>> + '_ {
        self.tree.scan_prefix(prefix).filter(|kv| kv.as_ref().map_or(true, |(k, _)| k != EPOCH_KEY)).map(
            move |kv| {
                let (k, v) = kv?;
                let value = self.resolve(&k, &v);
                Ok((k, value))
            },
        )
    }

    /// The keys under `prefix` (no value is read).
    pub fn keys(&self, prefix: &[u8]) -> impl Iterator<Item = Result<sled::IVec>> + '_ {
        self.tree
            .scan_prefix(prefix)
            .map(|kv| kv.map(|(k, _)| k))
            .filter(|k| k.as_ref().map_or(true, |k| k != EPOCH_KEY))
    }

    /// Whether the tree no longer matches its value files ([`stale`]).
    pub fn is_stale(&self) -> Result<bool> {
        stale_keys(&self.tree, &self.values)
    }

    fn resolve(&self, key: &[u8], stored: &[u8]) -> Result<Vec<u8>> {
        match stored.first() {
            Some(&INLINE) => Ok(stored[1..].to_vec()),
            _ => resolve_in(&self.values.lock(), key, stored),
        }
    }
}

/// The value `stored` (a tree's value for `key`) stands for, reading the
/// files of `pair` (locked by the caller).
fn resolve_in(pair: &Pair, key: &[u8], stored: &[u8]) -> Result<Vec<u8>> {
    if let Some((&INLINE, v)) = stored.split_first() {
        return Ok(v.to_vec());
    }
    match Locator::parse(stored) {
        Some(Locator { tag, offset, len, check }) => {
            let slot = pair.slot(tag);
            if slot.epoch == 0 {
                return Err(Error::Corrupt(format!(
                    "{}: not a value file (its header), but values point into it",
                    slot.path.display()
                )));
            }
            let v = slot.read(offset, len)?;
            if !holds(&v, check) {
                return Err(Error::Corrupt(format!(
                    "{}: the value of key {} at byte {offset} does not match its check",
                    slot.path.display(),
                    key_text(key)
                )));
            }
            Ok(v)
        }
        None => Err(Error::Corrupt(format!(
            "value of key {}: neither inline nor a value-file locator",
            key_text(key)
        ))),
    }
}

impl SeparatedTree {
    /// The file appends go to, decided at the first append of a process:
    /// the one non-empty file, else `a`; when both hold bytes (a crash
    /// during a compaction), the one the tree points into, the other then
    /// emptied; when the tree points into both (a compaction that failed
    /// part way, its error logged, and writes after it), the one it points
    /// at more, the values in the other moved there first.
    fn current(&self, pair: &mut Pair) -> Result<u8> {
        if let Some(c) = pair.current {
            return Ok(c);
        }
        let c = match (pair.a.holds_values(), pair.b.holds_values()) {
            (_, false) => IN_A,
            (false, _) => IN_B,
            _ => {
                let (a, b) = live_bytes(&self.tree)?;
                let keep = if a >= b { IN_A } else { IN_B };
                let other = if keep == IN_A { IN_B } else { IN_A };
                if a > 0 && b > 0 {
                    tracing::warn!(
                        "{}: values point into both value files (a compaction that did not finish); moving them into one",
                        pair.slot(keep).path.display()
                    );
                    self.move_values(pair, other, keep, false)?;
                } else {
                    pair.slot_mut(other).truncate()?;
                }
                keep
            }
        };
        pair.current = Some(c);
        Ok(c)
    }

    /// Copies the live values into the other value file when the files hold
    /// more than twice what the tree points at; returns whether it did.
    pub fn compact(&self) -> Result<bool> {
        self.compact_over(COMPACT_SLACK)
    }

    /// Copies the live values into the other value file when garbage is
    /// more than `share` (a fraction: numerator, denominator) of the files
    /// and they hold at least [`COMPACT_MIN`]; returns whether it did.
    fn compact_over(&self, share: (u64, u64)) -> Result<bool> {
        let mut pair = self.values.lock();
        if pair.unsettled {
            pair.look_at = Some(u64::MAX);
            return Ok(false);
        }
        let from = self.current(&mut pair)?;
        if pair.slot(if from == IN_A { IN_B } else { IN_A }).holds_values() {
            return Ok(false); // settled by `current` first
        }
        let to = if from == IN_A { IN_B } else { IN_A };
        let total = pair.total();
        let (a, b) = live_bytes(&self.tree)?;
        pair.looks += 1;
        let garbage = total.saturating_sub(a + b);
        if total < COMPACT_MIN || garbage * share.1 <= total * share.0 {
            pair.look_at = Some(next_look(a + b, total));
            // Where to look next, for the next process (not flushed: a
            // record lost makes it look at its first write).
            self.tree.insert(EPOCH_KEY, pair.record())?;
            return Ok(false);
        }
        pair.look_at = Some(next_look(a + b, a + b));
        self.move_values(&mut pair, from, to, true)?;
        tracing::debug!("{}: values compacted from {total} to {} bytes", pair.slot(to).path.display(), a + b);
        Ok(true)
    }

    /// Moves every value the tree points at in file `from` to the end of
    /// file `to` (emptied first when `empty_to`), then empties `from`;
    /// appends go to `to` after.
    ///
    /// The tree's record of the files' epochs is removed (and sled
    /// flushed) first, and written again only once every locator has moved
    /// and `to` is synced: a crash in between leaves a tree that matches
    /// no files, stale at the next open and rebuilt from the log, never
    /// read wrong, though sled may have persisted locators into `to` ahead
    /// of `to`'s bytes. An error in between leaves the tree unsettled for
    /// the rest of the process ([`Pair::unsettled`]): readable (each
    /// locator names a file that holds its value), recording no epochs,
    /// rebuilt at the next open.
    ///
    /// Values move as they are, unchecked: each keeps its locator's length
    /// and check, so a value damaged in `from` is still named when it is
    /// read from `to`. The locators move a chunk at a time (one sled batch
    /// of them all holds a copy of every node it touches until it is in: a
    /// compaction at 1M peaked at 235 MB).
    fn move_values(&self, pair: &mut Pair, from: u8, to: u8, empty_to: bool) -> Result<()> {
        let moved = self.try_move_values(pair, from, to, empty_to);
        if moved.is_err() {
            pair.unsettled = true;
        }
        moved
    }

    fn try_move_values(&self, pair: &mut Pair, from: u8, to: u8, empty_to: bool) -> Result<()> {
        self.tree.remove(EPOCH_KEY)?;
        self.tree.flush()?;
        if empty_to {
            pair.slot_mut(to).truncate()?;
        }
        // (key, old locator, value: `None` when it cannot be had: past the
        // end of `from` (a cut file), or a locator into `to` that emptying
        // it left dangling (a file cut to its header); its new locator
        // points past the end of `to`, so that reading it is still an
        // error, never another value)
        type Moving = (sled::IVec, Locator, Option<Vec<u8>>);
        let mut chunk: Vec<Moving> = Vec::new();
        let mut chunk_bytes = 0usize;
        let tree = &self.tree;
        let flush = |pair: &mut Pair, chunk: &mut Vec<Moving>| -> Result<()> {
            let refs: Vec<&[u8]> = chunk.iter().filter_map(|(_, _, v)| v.as_deref()).collect();
            let mut offsets = pair.slot_mut(to).append(&refs, true)?.into_iter();
            let mut batch = Vec::with_capacity(chunk.len());
            for (k, old, value) in chunk.drain(..) {
                let off = match value {
                    Some(_) => {
                        offsets.next().ok_or_else(|| Error::Internal("value offsets ran out".into()))?
                    }
                    None => u64::MAX - u64::from(u32::MAX),
                };
                batch.push((k.to_vec(), Some(Locator { tag: to, offset: off, ..old }.bytes())));
            }
            tree.apply(batch, true)
        };
        for kv in self.tree.scan_prefix(b"") {
            let (k, v) = kv?;
            let Some(old) = Locator::parse(&v) else { continue };
            let value = if old.tag == from {
                match pair.slot(from).read(old.offset, old.len) {
                    Ok(value) => Some(value),
                    Err(Error::Corrupt(why)) => {
                        tracing::warn!("{why}; it stays unreadable");
                        None
                    }
                    Err(e) => return Err(e),
                }
            } else if empty_to {
                tracing::warn!(
                    "{}: the value of key {} lay past the file's end; it stays unreadable",
                    pair.slot(to).path.display(),
                    key_text(&k)
                );
                None
            } else {
                continue;
            };
            chunk_bytes += value.as_ref().map_or(0, Vec::len);
            chunk.push((k, old, value));
            if chunk.len() >= 4096 || chunk_bytes >= 4 << 20 {
                flush(pair, &mut chunk)?;
                chunk_bytes = 0;
            }
        }
        flush(pair, &mut chunk)?;
        pair.slot(to).sync()?;
        // From here every locator points into `to`, and the tree matches
        // both files.
        self.tree.insert(EPOCH_KEY, pair.record())?;
        pair.current = Some(to);
        self.tree.flush()?;
        pair.slot_mut(from).truncate()?;
        // (A crash before this record lands makes the tree look stale at
        // the next open: the view is rebuilt, never read wrong.)
        self.tree.insert(EPOCH_KEY, pair.record())?;
        self.tree.flush()?;
        Ok(())
    }

    /// Whether enough was appended since the last look (in this process
    /// or, as the tree's record says, an earlier one) to look at the
    /// garbage again.
    fn due_for_compaction(&self) -> bool {
        let mut pair = self.values.lock();
        let look_at = self.look_at(&mut pair);
        pair.total() >= COMPACT_MIN && pair.total() >= look_at
    }

    /// [`Pair::look_at`], read from the tree's record the first time.
    fn look_at(&self, pair: &mut Pair) -> u64 {
        if let Some(at) = pair.look_at {
            return at;
        }
        let recorded = self.tree.get(EPOCH_KEY).ok().flatten().and_then(|r| {
            let at = r.get(16..24)?.try_into().ok().map(u64::from_be_bytes)?;
            record_matches(&r, pair).then_some(at)
        });
        *pair.look_at.insert(recorded.unwrap_or(0))
    }
}

/// A key as an error names it: its text when it is printable text (a
/// view's keys), else its bytes in hex (an id set's bucket).
fn key_text(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => crate::model::ids::to_hex(key),
    }
}

impl KvTree for SeparatedTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key == EPOCH_KEY {
            return Ok(None);
        }
        match self.tree.get(key)? {
            None => Ok(None),
            Some(v) => self.resolve(key, &v).map(Some),
        }
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        self.apply_sealed(writes, &[])
    }

    fn apply_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        self.tree.apply(self.stage(writes, sealed, false)?, true)?;
        self.compact_if_due()
    }

    fn sync(&self) -> Result<()> {
        {
            let pair = self.values.lock();
            pair.a.sync()?;
            pair.b.sync()?;
        }
        // The tree before whatever names it (sled recovers a prefix of
        // its log, so this only makes that order explicit); held keys go
        // into it first.
        self.tree.write_out()?;
        self.tree.flush()?;
        Ok(())
    }

    fn write_loose(&self, writes: Vec<Write>) -> Result<()> {
        self.write_loose_sealed(writes, &[])
    }

    fn write_loose_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        // Not synced here: nothing reads the tree before `sync`. Appends
        // leave every stored locator valid (only a compaction moves
        // values).
        self.tree.apply(self.stage(writes, sealed, true)?, false)
    }

    fn upkeep(&self) -> Result<()> {
        self.compact_if_due()
    }

    fn settle(&self) -> Result<()> {
        {
            let mut pair = self.values.lock();
            if pair.unsettled {
                return Err(pair.failed.take().unwrap_or_else(|| {
                    Error::Internal("a compaction of this tree failed part way earlier in this run".into())
                }));
            }
        }
        self.compact_over(SETTLE_SLACK)?;
        // Held keys go into sled once, after the values have moved.
        self.tree.write_out()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_> {
        Box::new(
            self.tree.scan_prefix(prefix).filter(|kv| kv.as_ref().map_or(true, |(k, _)| k != EPOCH_KEY)).map(
                move |kv| {
                    let (k, v) = kv?;
                    let value = self.resolve(&k, &v)?;
                    Ok((k.to_vec(), value))
                },
            ),
        )
    }

    fn clear(&self) -> Result<()> {
        self.tree.clear()?;
        let mut pair = self.values.lock();
        pair.a.truncate()?;
        pair.b.truncate()?;
        pair.current = Some(IN_A);
        pair.look_at = Some(0);
        self.tree.insert(EPOCH_KEY, pair.record())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::Loose;
    use std::fs::OpenOptions;

    /// Tree `name` of `db` with its value files in `files`.
    fn open(db: &sled::Db, files: &ValueFiles, name: &str) -> SeparatedTree {
        SeparatedTree::new(db.open_tree(name).unwrap(), files.get(name).unwrap())
    }

    /// A temporary directory and database for trees.
    fn fixture() -> (tempfile::TempDir, sled::Db) {
        (tempfile::tempdir().unwrap(), sled::Config::new().temporary(true).open().unwrap())
    }

    /// Value `i` as written in round `round`: 400 to 700 bytes (for `i`
    /// under 10,000), out of sled.
    fn value(i: u32, round: u32) -> Vec<u8> {
        format!("{i}/{round}/").repeat(100).into_bytes()
    }

    /// Bytes of tree `t`'s two value files under `dir`.
    fn files_size(dir: &tempfile::TempDir) -> u64 {
        ["a", "b"]
            .iter()
            .map(|side| std::fs::metadata(dir.path().join(format!("views/t.{side}.vlog"))).unwrap().len())
            .sum()
    }

    /// Every key and value of `t`, in order.
    fn contents(t: &dyn KvTree) -> Vec<(Vec<u8>, Vec<u8>)> {
        t.scan_prefix(b"").map(Result::unwrap).collect()
    }

    /// Writes the same rounds of rewrites, removals and small values to a
    /// held tree and to one in sled, loose (as a replay writes its new
    /// generation); `keys` set how much the held tree holds. Returns the
    /// database, the files' directory and whether the held keys were
    /// still out of sled before the settle.
    fn held_against_sled(keys: u32) -> (tempfile::TempDir, sled::Db, bool) {
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        let held = SeparatedTree::held(db.open_tree("h").unwrap(), files.get("h").unwrap());
        let sled = open(&db, &files, "s");
        let mut compactions = 0;
        for round in 0..40u32 {
            let before = std::fs::metadata(dir.path().join("views/h.a.vlog")).map_or(0, |m| m.len());
            let mut writes: Vec<Write> = (0..keys)
                .filter(|i| (i + round) % 3 != 0)
                .map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round))))
                .collect();
            writes.push((format!("small/{round}").into_bytes(), Some(b"x".to_vec())));
            writes.push(((round % keys).to_be_bytes().to_vec(), None));
            writes.push((format!("small/{}", round / 2).into_bytes(), None));
            for t in [&held, &sled] {
                Loose(t).apply(writes.clone()).unwrap();
            }
            let after = std::fs::metadata(dir.path().join("views/h.a.vlog")).map_or(0, |m| m.len());
            compactions += usize::from(after < before);
            assert_eq!(contents(&held), contents(&sled), "round {round}");
            assert_eq!(held.get(&1u32.to_be_bytes()).unwrap(), sled.get(&1u32.to_be_bytes()).unwrap());
        }
        assert!(compactions >= 2, "{compactions} compactions while the tree was written");
        let unwritten = db.open_tree("h").unwrap().is_empty();
        held.settle().unwrap();
        held.sync().unwrap();
        assert!(!db.open_tree("h").unwrap().is_empty());
        assert_eq!(contents(&held), contents(&sled));
        // Read again as another process reads it: from sled and the files.
        let files = ValueFiles::new(dir.path().join("views"));
        assert!(!stale(&db.open_tree("h").unwrap(), &files.get("h").unwrap()).unwrap());
        assert_eq!(contents(&open(&db, &files, "h")), contents(&sled));
        (dir, db, unwritten)
    }

    #[test]
    fn a_held_tree_reads_as_sled_would_and_goes_into_sled_when_settled() {
        let (_dir, _db, unwritten) = held_against_sled(100);
        assert!(unwritten, "a hundred keys stay in memory until the settle");
    }

    #[test]
    fn a_held_tree_past_its_memory_goes_on_in_sled() {
        let (_dir, db, unwritten) = held_against_sled(2000);
        assert!(!unwritten, "2,000 keys are past what a tree may hold under test");
        assert_eq!(db.open_tree("h").unwrap().len(), db.open_tree("s").unwrap().len());
    }

    #[test]
    fn files_no_tree_owns_go_unless_a_handle_has_them_open() {
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        for name in ["owned", "open", "unowned"] {
            open(&db, &files, name).apply(vec![(b"k".to_vec(), Some(value(1, 0)))]).unwrap();
        }
        // Another process: only what it opens is open in it.
        let files = ValueFiles::new(dir.path().join("views"));
        let _open = files.get("open").unwrap();
        let removed = files.remove_unowned(|| Ok(vec!["owned".to_string()])).unwrap();
        assert_eq!(removed, vec!["unowned".to_string()]);
        let mut left = files.names_on_disk().unwrap();
        left.sort();
        assert_eq!(left, vec!["open".to_string(), "owned".to_string()]);
    }

    #[test]
    fn files_restored_from_before_later_writes_make_the_tree_stale() {
        let (dir, db) = fixture();
        let path = |side: &str| dir.path().join(format!("views/t.{side}.vlog"));
        let write = |range: std::ops::Range<u32>| {
            let files = ValueFiles::new(dir.path().join("views"));
            let t = open(&db, &files, "t");
            t.apply(range.map(|i| (i.to_be_bytes().to_vec(), Some(value(i, 0)))).collect()).unwrap();
        };
        let is_stale = || {
            let files = ValueFiles::new(dir.path().join("views"));
            stale(&db.open_tree("t").unwrap(), &files.get("t").unwrap()).unwrap()
        };
        write(0..100);
        let saved: Vec<Vec<u8>> = ["a", "b"].iter().map(|s| std::fs::read(path(s)).unwrap()).collect();
        write(100..200);
        assert!(!is_stale());
        // Bytes appended past what the tree records (values written, then
        // a crash before sled heard of them): the tree still matches.
        let mut longer = std::fs::read(path("a")).unwrap();
        longer.extend_from_slice(&value(7, 9));
        std::fs::write(path("a"), &longer).unwrap();
        assert!(!is_stale());
        // The files as they were before the second write (a backup of
        // views/ put back): the same epochs, but the tree points past them.
        for (side, bytes) in ["a", "b"].iter().zip(&saved) {
            std::fs::write(path(side), bytes).unwrap();
        }
        assert!(is_stale());
        // A record written before the lengths were kept names the epochs
        // alone, as it did.
        let tree = db.open_tree("t").unwrap();
        let record = tree.get(EPOCH_KEY).unwrap().unwrap();
        assert_eq!(record.len(), 44);
        let mut legacy = record[..24].to_vec();
        let check = check_of(&legacy);
        legacy.extend_from_slice(&check);
        tree.insert(EPOCH_KEY, legacy).unwrap();
        assert!(!is_stale());
    }

    #[test]
    fn garbage_is_compacted_across_processes() {
        // Each round a new handle on the files, as each cairn command opens
        // them: the first write of each looks at the garbage.
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let value = |i: u32, round: u32| -> Vec<u8> { format!("{i}/{round}/").repeat(300).into_bytes() };
        for round in 0..10u32 {
            let files = ValueFiles::new(dir.path().join("views"));
            let t = open(&db, &files, "t");
            for chunk in 0..4u32 {
                let writes: Vec<Write> = (chunk * 500..(chunk + 1) * 500)
                    .map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round))))
                    .collect();
                t.apply(writes).unwrap();
            }
        }
        let size =
            |side: &str| std::fs::metadata(dir.path().join(format!("views/t.{side}.vlog"))).unwrap().len();
        let live: u64 = (0..2000u32).map(|i| value(i, 9).len() as u64).sum();
        assert!(
            size("a") + size("b") <= 3 * live + 64,
            "{} + {} bytes for {live} live",
            size("a"),
            size("b")
        );
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        assert_eq!(t.get(&7u32.to_be_bytes()).unwrap(), Some(value(7, 9)));
        assert!(!stale(&db.open_tree("t").unwrap(), &files.get("t").unwrap()).unwrap());
    }

    #[test]
    fn values_round_trip_and_garbage_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        let big = |i: u32, round: u32| -> Vec<u8> { format!("{i}/{round}/").repeat(200).into_bytes() };
        for round in 0..12u32 {
            let writes: Vec<Write> =
                (0..3000u32).map(|i| (i.to_be_bytes().to_vec(), Some(big(i, round)))).collect();
            t.apply(writes).unwrap();
        }
        t.apply(vec![(b"small".to_vec(), Some(b"x".to_vec())), (0u32.to_be_bytes().to_vec(), None)]).unwrap();
        assert_eq!(t.get(b"small").unwrap(), Some(b"x".to_vec()));
        assert_eq!(t.get(&0u32.to_be_bytes()).unwrap(), None);
        for i in 1..3000u32 {
            assert_eq!(t.get(&i.to_be_bytes()).unwrap(), Some(big(i, 11)));
        }
        let size =
            |side: &str| std::fs::metadata(dir.path().join(format!("views/t.{side}.vlog"))).unwrap().len();
        let len = size("a") + size("b");
        let live: u64 = (1..3000u32).map(|i| big(i, 11).len() as u64).sum();
        assert!(len <= 3 * live, "garbage compacted: {len} bytes for {live} live");
        assert_eq!(t.scan_prefix(b"").count(), 3000);
        // A damaged value is an error, never another value.
        let side = if size("a") > 16 { "a" } else { "b" };
        let f = OpenOptions::new().write(true).open(dir.path().join(format!("views/t.{side}.vlog"))).unwrap();
        f.write_all_at(&vec![b'z'; size(side) as usize - 16], 16).unwrap();
        let errors = (1..3000u32).filter(|i| t.get(&i.to_be_bytes()).is_err()).count();
        assert_eq!(errors, 2999);
        assert_eq!(t.get(b"small").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn garbage_is_compacted_once_due_within_a_process() {
        // Rewrites a few values at a time through one handle: the files
        // never hold much more than twice what the tree points at (the
        // writes between two looks aside), not three times.
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        let size = || files_size(&dir);
        let mut rounds = vec![0u32; 2000];
        t.apply((0..2000u32).map(|i| (i.to_be_bytes().to_vec(), Some(value(i, 0)))).collect()).unwrap();
        let mut compactions = 0;
        for step in 0..200u32 {
            let keys: Vec<u32> = (0..50u32).map(|j| (step * 50 + j) % 2000).collect();
            for &i in &keys {
                rounds[i as usize] += 1;
            }
            let before = size();
            t.apply(
                keys.iter()
                    .map(|&i| (i.to_be_bytes().to_vec(), Some(value(i, rounds[i as usize]))))
                    .collect(),
            )
            .unwrap();
            compactions += usize::from(size() < before);
            let live: u64 = (0..2000u32).map(|i| value(i, rounds[i as usize]).len() as u64).sum();
            assert!(size() <= 2 * live + live / 4, "step {step}: {} bytes for {live} live", size());
        }
        assert!(compactions >= 3, "{compactions} compactions");
        for i in 0..2000u32 {
            assert_eq!(t.get(&i.to_be_bytes()).unwrap(), Some(value(i, rounds[i as usize])));
        }
    }

    #[test]
    fn a_tree_pointing_into_both_files_is_settled_by_its_next_write() {
        // A tree that points into both files and records both epochs. No
        // path of this cairn leaves one (a move that fails leaves the tree
        // recording no epochs: stale, next test); should one appear, its
        // next write moves the fewer values to the other file rather than
        // refusing, and every value reads as written.
        let (dir, db) = fixture();
        {
            let files = ValueFiles::new(dir.path().join("views"));
            let t = open(&db, &files, "t");
            t.apply((0..1000u32).map(|i| (i.to_be_bytes().to_vec(), Some(value(i, 0)))).collect()).unwrap();
            let mut pair = t.values.lock();
            let from = t.current(&mut pair).unwrap();
            let to = if from == IN_A { IN_B } else { IN_A };
            pair.slot_mut(to).truncate().unwrap();
            // The first 300 keys' values moved, then the failure.
            for kv in t.tree.scan_prefix(b"").take(300) {
                let (k, v) = kv.unwrap();
                let Some(tag) = locator_tag(&v) else { continue };
                let value = resolve_in(&pair, &k, &v).unwrap();
                let off = pair.slot_mut(to).append(&[&value], false).unwrap()[0];
                assert_eq!(tag, from);
                t.tree.insert(&k, Locator::of(to, off, &value, false).bytes()).unwrap();
            }
            drop(pair);
            t.apply((900..1000u32).map(|i| (i.to_be_bytes().to_vec(), Some(value(i, 1)))).collect()).unwrap();
        }
        let size =
            |side: &str| std::fs::metadata(dir.path().join(format!("views/t.{side}.vlog"))).unwrap().len();
        assert!(size("a") > HEADER && size("b") > HEADER);
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        assert!(!t.is_stale().unwrap(), "the writes recorded both files' epochs");
        t.apply(vec![(5u32.to_be_bytes().to_vec(), Some(value(5, 2)))]).unwrap();
        assert!(size("a") == HEADER || size("b") == HEADER, "{} and {} bytes", size("a"), size("b"));
        let round = |i: u32| match i {
            5 => 2,
            900.. => 1,
            _ => 0,
        };
        for i in 0..1000u32 {
            assert_eq!(t.get(&i.to_be_bytes()).unwrap(), Some(value(i, round(i))), "key {i}");
        }
        assert!(!t.is_stale().unwrap());
    }

    #[test]
    fn a_compaction_that_fails_part_way_leaves_a_stale_tree() {
        // The old file shrinks under the compaction (its reads fail after
        // the first chunk of 4,096 locators moved): the error is the
        // compaction's; in this process every value moved or not reads as
        // written, writes go on, and no compaction is tried again; the next
        // process finds the tree stale (rebuilt from the log).
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        for round in 0..2u32 {
            t.apply((0..5000u32).map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round)))).collect())
                .unwrap();
        }
        // The file this handle has open, cut behind its back: the reads of
        // the last 10 values fail (an I/O error, not a value found past the
        // end of the file as opened).
        let path = dir.path().join("views/t.a.vlog");
        let cut: u64 = (4990..5000u32).map(|i| value(i, 1).len() as u64).sum();
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - cut).unwrap();
        assert!(t.compact_over((1, 4)).is_err());
        assert!(files_size(&dir) > len - cut + HEADER, "the first chunk moved into file b");
        for i in 0..4990u32 {
            assert_eq!(t.get(&i.to_be_bytes()).unwrap(), Some(value(i, 1)), "key {i}");
        }
        t.apply(vec![(7u32.to_be_bytes().to_vec(), Some(value(7, 2)))]).unwrap();
        assert_eq!(t.get(&7u32.to_be_bytes()).unwrap(), Some(value(7, 2)));
        let before = files_size(&dir);
        assert!(!t.compact_over((1, 100)).unwrap(), "no compaction after a failed one");
        assert_eq!(files_size(&dir), before);
        assert!(t.is_stale().unwrap(), "the tree records no epochs");
        assert!(t.settle().is_err(), "a finished tree that is stale is not settled");
        drop(t);
        let files = ValueFiles::new(dir.path().join("views"));
        assert!(stale(&db.open_tree("t").unwrap(), &files.get("t").unwrap()).unwrap());
    }

    #[test]
    fn a_compaction_moves_what_it_can_of_a_cut_file() {
        // A value file cut short: the compaction moves every value it
        // holds; the values past its end stay errors.
        let (dir, db) = fixture();
        {
            let files = ValueFiles::new(dir.path().join("views"));
            let t = open(&db, &files, "t");
            for round in 0..2u32 {
                t.apply((0..1000u32).map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round)))).collect())
                    .unwrap();
            }
        }
        let path = dir.path().join("views/t.a.vlog");
        let len = std::fs::metadata(&path).unwrap().len();
        // The last 10 values of round 1 cut off.
        let cut: u64 = (990..1000u32).map(|i| value(i, 1).len() as u64).sum();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - cut).unwrap();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        assert!(t.compact_over((1, 4)).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER);
        for i in 0..1000u32 {
            match i {
                990.. => {
                    let err = t.get(&i.to_be_bytes()).unwrap_err().to_string();
                    assert!(err.contains("t.b.vlog") && err.contains("past the file's end"), "{err}");
                }
                _ => assert_eq!(t.get(&i.to_be_bytes()).unwrap(), Some(value(i, 1))),
            }
        }
    }

    #[test]
    fn a_process_looks_at_the_garbage_only_when_it_may_be_due() {
        // The tree's record says where the last look left off: a process
        // that writes a little does not scan the tree; one whose writes
        // could have made the garbage due does, and compacts it.
        let (dir, db) = fixture();
        let handle = || {
            let files = ValueFiles::new(dir.path().join("views"));
            open(&db, &files, "t")
        };
        let write = |t: &SeparatedTree, keys: std::ops::Range<u32>, round: u32| {
            t.apply(keys.map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round)))).collect()).unwrap();
        };
        let looks = |t: &SeparatedTree| t.values.lock().looks;
        let t = handle();
        write(&t, 0..2000, 0);
        assert_eq!(looks(&t), 1, "the first write of a new tree looks");
        drop(t);
        for round in 1..4u32 {
            let t = handle();
            write(&t, (round * 100)..(round * 100 + 100), round);
            assert_eq!(looks(&t), 0, "round {round}: a twentieth rewritten, no scan");
        }
        // A changed byte anywhere in the record: a stale tree.
        let t = handle();
        let record = t.tree.get(EPOCH_KEY).unwrap().unwrap().to_vec();
        assert_eq!(record.len(), 44);
        for at in [3, 16, 21, 26, 33, 39, 42] {
            let mut bad = record.clone();
            bad[at] ^= 0x40;
            t.tree.insert(EPOCH_KEY, bad).unwrap();
            assert!(t.is_stale().unwrap(), "byte {at} changed");
        }
        t.tree.insert(EPOCH_KEY, record).unwrap();
        assert!(!t.is_stale().unwrap());
        drop(t);
        // (A record as an older cairn wrote it, epochs only: a look.)
        let t = handle();
        let epochs = t.values.lock().epochs();
        t.tree.insert(EPOCH_KEY, epochs).unwrap();
        drop(t);
        let t = handle();
        write(&t, 0..1, 4);
        assert_eq!(looks(&t), 1);
        drop(t);
        let t = handle();
        let grown = files_size(&dir) + (0..2000u32).map(|i| value(i, 5).len() as u64).sum::<u64>();
        write(&t, 0..2000, 5);
        assert!(looks(&t) >= 1 && files_size(&dir) < grown, "every value rewritten: looked and compacted");
        assert_eq!(t.get(&9u32.to_be_bytes()).unwrap(), Some(value(9, 5)));
    }

    #[test]
    fn settle_leaves_a_finished_tree_without_its_garbage() {
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        let size = || files_size(&dir);
        let write = |range: std::ops::Range<u32>, round: u32| {
            let writes: Vec<Write> =
                range.map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round)))).collect();
            crate::store::kv::Loose(&t).apply(writes).unwrap();
        };
        write(0..2000, 0);
        let live = |round_of: &dyn Fn(u32) -> u32| -> u64 {
            (0..2000u32).map(|i| value(i, round_of(i)).len() as u64).sum()
        };
        // A tenth of the values written again: less garbage than settle
        // takes away (an eighth), and the files are left as they are.
        write(0..200, 1);
        let before = size();
        t.settle().unwrap();
        assert_eq!(size(), before);
        // 700 of 2,000 written again (about a quarter of the files
        // garbage): less than a compaction as the tree is written takes
        // away (half the files), more than settle leaves.
        write(200..700, 1);
        let before = size();
        assert!(!t.compact().unwrap(), "compact leaves a quarter of garbage");
        assert_eq!(size(), before);
        t.settle().unwrap();
        let round_of = |i: u32| u32::from(i < 700);
        assert_eq!(size(), live(&round_of) + 2 * HEADER);
        for i in 0..2000u32 {
            assert_eq!(t.get(&i.to_be_bytes()).unwrap(), Some(value(i, round_of(i))));
        }
        assert!(!t.is_stale().unwrap());
    }

    /// A value its writer sealed (an envelope) keeps the envelope's own
    /// check bytes as its locator's check, so it is not hashed again when
    /// written, and is still verified when read: a changed byte of it is
    /// an error naming its file, as for any other value; a bare value
    /// written beside it is checked by its BLAKE3 as before.
    #[test]
    fn a_sealed_value_is_checked_by_its_own_check_bytes() {
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        let body = value(7, 0);
        let sealed = crate::store::envelope::seal_body_raw(&body);
        let bare = value(8, 0);
        let writes: Vec<Write> =
            vec![(b"sealed".to_vec(), Some(sealed.clone())), (b"bare".to_vec(), Some(bare.clone()))];
        t.apply_sealed(writes, &[true, false]).unwrap();
        let check = |key: &[u8]| Locator::parse(&t.tree.get(key).unwrap().unwrap()).unwrap().check;
        assert_eq!(Some(check(b"sealed")), sealed_check(&sealed));
        assert_ne!(check(b"sealed"), check_of(&sealed), "not hashed again");
        assert_eq!(check(b"bare"), check_of(&bare));
        assert_eq!(t.get(b"sealed").unwrap(), Some(sealed.clone()));
        assert_eq!(t.get(b"bare").unwrap(), Some(bare.clone()));
        // A changed byte in the sealed value's body: its check bytes still
        // match the locator, but not what they follow.
        let path = dir.path().join("views/t.a.vlog");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(sealed.len()).position(|w| w == sealed.as_slice()).unwrap();
        bytes[at + sealed.len() / 2] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let err = t.get(b"sealed").unwrap_err().to_string();
        assert!(err.contains("t.a.vlog") && err.contains("does not match its check"), "{err}");
        assert_eq!(t.get(b"bare").unwrap(), Some(bare));
    }

    #[test]
    fn a_damaged_value_is_still_named_after_it_is_moved() {
        // Compaction moves values unchecked, keeping each one's check: a
        // value damaged before the move is an error after it.
        let (dir, db) = fixture();
        let files = ValueFiles::new(dir.path().join("views"));
        let t = open(&db, &files, "t");
        for round in 0..2u32 {
            let writes: Vec<Write> =
                (0..1000u32).map(|i| (i.to_be_bytes().to_vec(), Some(value(i, round)))).collect();
            t.apply(writes).unwrap();
        }
        // Value 5 of round 1 is the 1006th in file a: damage one byte of it.
        let offset = HEADER
            + (0..1000u32).map(|i| value(i, 0).len() as u64).sum::<u64>()
            + (0..5u32).map(|i| value(i, 1).len() as u64).sum::<u64>();
        let f = OpenOptions::new().write(true).open(dir.path().join("views/t.a.vlog")).unwrap();
        f.write_all_at(b"#", offset + 3).unwrap();
        assert!(t.get(&5u32.to_be_bytes()).is_err());
        assert!(t.compact_over((1, 4)).unwrap(), "a third of garbage goes");
        assert_eq!(std::fs::metadata(dir.path().join("views/t.a.vlog")).unwrap().len(), HEADER);
        let err = t.get(&5u32.to_be_bytes()).unwrap_err().to_string();
        assert!(err.contains("t.b.vlog") && err.contains("does not match its check"), "{err}");
        assert_eq!(t.get(&4u32.to_be_bytes()).unwrap(), Some(value(4, 1)));
        assert_eq!(t.get(&6u32.to_be_bytes()).unwrap(), Some(value(6, 1)));
    }

    #[test]
    fn loose_writes_leave_what_atomic_ones_leave() {
        // The same rounds of writes (large values, small ones, removals,
        // enough to compact) through `apply` and through `apply_loose`:
        // the same keys and values, and the same digest-relevant scan.
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let files = ValueFiles::new(dir.path().join("views"));
        let atomic = open(&db, &files, "atomic");
        let loose = open(&db, &files, "loose");
        // Only the wrapper says its writes are key by key (the views commit
        // such trees more often).
        assert!(!atomic.is_loose() && !KvTree::is_loose(&&atomic));
        assert!(crate::store::kv::Loose(&loose).is_loose());
        let value = |i: u32, round: u32| -> Vec<u8> {
            let v = format!("{i}/{round}/");
            if i.is_multiple_of(3) {
                v.into_bytes()
            } else {
                v.repeat(100).into_bytes()
            }
        };
        for round in 0..8u32 {
            let writes: Vec<Write> = (0..1500u32)
                .map(|i| {
                    let gone = (i + round) % 7 == 0;
                    (i.to_be_bytes().to_vec(), (!gone).then(|| value(i, round)))
                })
                .collect();
            atomic.apply(writes.clone()).unwrap();
            loose.apply_loose(writes).unwrap();
        }
        loose.sync().unwrap();
        let all = |t: &SeparatedTree| t.scan_prefix(b"").collect::<Result<Vec<_>>>().unwrap();
        let (a, l) = (all(&atomic), all(&loose));
        assert!(a.len() > 1000, "{} keys", a.len());
        assert_eq!(a, l);
        assert_eq!(loose.get(&1u32.to_be_bytes()).unwrap(), atomic.get(&1u32.to_be_bytes()).unwrap());
        assert!(!stale(&db.open_tree("loose").unwrap(), &files.get("loose").unwrap()).unwrap());
        // Reopened, as the next command would: the same values.
        drop((atomic, loose));
        let files = ValueFiles::new(dir.path().join("views"));
        let loose = open(&db, &files, "loose");
        assert_eq!(all(&loose), a);
    }
}
