//! Key-value trees for views: [`KvTree`], with a sled implementation and an
//! in-memory one. Each view keeps its state in a tree of its own; a write
//! batch to one tree is atomic ([`KvTree::apply`]), except through
//! [`Loose`], for trees nobody reads until the run building them ends.
//! [`Scratch`] hands out throwaway trees (an audit's fresh views), in
//! memory or in a temporary directory (written key by key, their keys
//! held in memory up to a bound: [`super::vlog::SeparatedTree::held`]).

use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A key and an optional value: `None` removes the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// Items of a scan.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// A named, ordered key-value tree.
pub trait KvTree: Send + Sync {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies all writes atomically (a [`Loose`] tree: key by key).
    fn apply(&self, writes: Vec<Write>) -> Result<()>;
    /// Applies the writes one key at a time, in order: not atomic, so
    /// only for a tree nobody reads before the run writing it ends (a
    /// replay's new generation, a scratch tree), where a crash leaves a
    /// tree that is thrown away anyway. sled's atomic batch takes a
    /// process-wide write lock that stops every read of every tree until
    /// the batch is in (the other view thread's reads, the log reader's);
    /// single writes take its shared side only.
    fn apply_loose(&self, writes: Vec<Write>) -> Result<()> {
        self.write_loose(writes)?;
        self.upkeep()
    }
    /// [`KvTree::apply_loose`] without the upkeep that may move stored
    /// values (a value file's compaction), so that another thread may read
    /// the tree meanwhile: the view runner writes a loose tree's commits on
    /// a thread of its own and keeps the upkeep ([`KvTree::upkeep`]) for
    /// moments when no write is in flight.
    fn write_loose(&self, writes: Vec<Write>) -> Result<()> {
        self.apply(writes)
    }
    /// [`KvTree::apply`], where `sealed[i]` says that the `i`th write's
    /// value is an envelope its caller sealed (its last 8 bytes a BLAKE3
    /// check of the rest, which whoever reads it verifies as it decodes
    /// it: [`crate::store::envelope`]): a tree that keeps a check of each
    /// value it stores ([`crate::store::vlog`]) takes such a value's own
    /// check bytes instead of hashing it again. The default forgets the
    /// flags.
    fn apply_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        let _ = sealed;
        self.apply(writes)
    }
    /// [`KvTree::write_loose`], with [`KvTree::apply_sealed`]'s flags.
    fn write_loose_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        let _ = sealed;
        self.write_loose(writes)
    }
    /// What [`KvTree::write_loose`] leaves out: compacting value files
    /// whose garbage is due.
    fn upkeep(&self) -> Result<()> {
        Ok(())
    }
    /// Compacts away the garbage of a tree just built from scratch (a
    /// replay's new generation, before anything names it), when it is more
    /// than [`crate::store::vlog::SETTLE_SLACK`] of its value files (of
    /// 8 MiB or more, as any compaction):
    /// [`KvTree::upkeep`] lets the files grow to twice what the tree points
    /// at, which a tree still being written wants, but a finished one only
    /// wastes. An error when a compaction of the tree failed part way
    /// earlier (the tree is stale: it must not be named).
    fn settle(&self) -> Result<()> {
        Ok(())
    }
    /// Makes what [`KvTree::apply_loose`] wrote as durable as what
    /// [`KvTree::apply`] writes, before anything durable names the tree.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Whether [`KvTree::apply`] writes key by key ([`Loose`]): nobody
    /// reads the tree before the run building it ends, so its commits need
    /// not be large to be cheap.
    fn is_loose(&self) -> bool {
        false
    }
    /// Whether values are stored as they are, uncompressed ([`Scratched`]):
    /// a tree that is compared and thrown away, never kept, spends no time
    /// compressing values only to decompress each again.
    fn raw_values(&self) -> bool {
        false
    }
    /// Every key starting with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_>;
    /// Removes every key.
    fn clear(&self) -> Result<()>;
}

impl KvTree for sled::Tree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(sled::Tree::get(self, key)?.map(|v| v.to_vec()))
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.apply_batch(batch)?;
        Ok(())
    }

    fn write_loose(&self, writes: Vec<Write>) -> Result<()> {
        for (k, v) in writes {
            match v {
                Some(v) => self.insert(k, v)?,
                None => self.remove(k)?,
            };
        }
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_> {
        Box::new(
            sled::Tree::scan_prefix(self, prefix)
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into)),
        )
    }

    fn clear(&self) -> Result<()> {
        sled::Tree::clear(self)?;
        Ok(())
    }
}

/// A tree whose writes go in through [`KvTree::apply_loose`]: for trees
/// nobody reads before the run that builds them ends (a replay's new
/// generation; every tree a disk [`Scratch`] hands out; an in-memory one
/// writes as fast either way).
pub struct Loose<T>(pub T);

impl<T: KvTree + ?Sized> KvTree for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        (**self).apply(writes)
    }

    fn write_loose(&self, writes: Vec<Write>) -> Result<()> {
        (**self).write_loose(writes)
    }

    fn apply_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        (**self).apply_sealed(writes, sealed)
    }

    fn write_loose_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        (**self).write_loose_sealed(writes, sealed)
    }

    fn upkeep(&self) -> Result<()> {
        (**self).upkeep()
    }

    fn settle(&self) -> Result<()> {
        (**self).settle()
    }

    fn sync(&self) -> Result<()> {
        (**self).sync()
    }

    fn is_loose(&self) -> bool {
        (**self).is_loose()
    }

    fn raw_values(&self) -> bool {
        (**self).raw_values()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_> {
        (**self).scan_prefix(prefix)
    }

    fn clear(&self) -> Result<()> {
        (**self).clear()
    }
}

impl<T: KvTree> KvTree for Loose<T> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(key)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        self.0.apply_loose(writes)
    }

    fn write_loose(&self, writes: Vec<Write>) -> Result<()> {
        self.0.write_loose(writes)
    }

    fn apply_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        self.0.write_loose_sealed(writes, sealed)?;
        self.0.upkeep()
    }

    fn write_loose_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        self.0.write_loose_sealed(writes, sealed)
    }

    fn upkeep(&self) -> Result<()> {
        self.0.upkeep()
    }

    fn settle(&self) -> Result<()> {
        self.0.settle()
    }

    fn sync(&self) -> Result<()> {
        self.0.sync()
    }

    fn is_loose(&self) -> bool {
        true
    }

    fn raw_values(&self) -> bool {
        self.0.raw_values()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_> {
        self.0.scan_prefix(prefix)
    }

    fn clear(&self) -> Result<()> {
        self.0.clear()
    }
}

/// A tree [`Scratch`] hands out: its values are stored uncompressed
/// ([`KvTree::raw_values`]), as nothing keeps them past the comparison or
/// the command that reads them.
pub struct Scratched<T>(pub T);

impl<T: KvTree> KvTree for Scratched<T> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(key)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        self.0.apply(writes)
    }

    fn apply_loose(&self, writes: Vec<Write>) -> Result<()> {
        self.0.apply_loose(writes)
    }

    fn write_loose(&self, writes: Vec<Write>) -> Result<()> {
        self.0.write_loose(writes)
    }

    fn apply_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        self.0.apply_sealed(writes, sealed)
    }

    fn write_loose_sealed(&self, writes: Vec<Write>, sealed: &[bool]) -> Result<()> {
        self.0.write_loose_sealed(writes, sealed)
    }

    fn upkeep(&self) -> Result<()> {
        self.0.upkeep()
    }

    fn settle(&self) -> Result<()> {
        self.0.settle()
    }

    fn sync(&self) -> Result<()> {
        self.0.sync()
    }

    fn is_loose(&self) -> bool {
        self.0.is_loose()
    }

    fn raw_values(&self) -> bool {
        true
    }

    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_> {
        self.0.scan_prefix(prefix)
    }

    fn clear(&self) -> Result<()> {
        self.0.clear()
    }
}

/// A tree in memory.
#[derive(Default, Debug, Clone)]
pub struct MemoryTree {
    map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryTree {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<Vec<u8>, Vec<u8>>) -> T) -> T {
        let mut guard = match self.map.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

impl KvTree for MemoryTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.with(|m| m.get(key).cloned()))
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        self.with(|m| {
            for (k, v) in writes {
                match v {
                    Some(v) => m.insert(k, v),
                    None => m.remove(&k),
                };
            }
        });
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> KvIter<'_> {
        let items: Vec<(Vec<u8>, Vec<u8>)> = self.with(|m| {
            m.range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        Box::new(items.into_iter().map(Ok))
    }

    fn clear(&self) -> Result<()> {
        self.with(BTreeMap::clear);
        Ok(())
    }
}

/// Trees for state that is built, compared and thrown away (an audit's
/// fresh views, views computed for `--at`): in memory, or in a temporary
/// directory.
pub enum Scratch {
    /// [`MemoryTree`]s.
    Memory,
    /// Value files in a private directory of the OS temp directory
    /// (`$TMPDIR`), as an archive's views keep them ([`super::vlog`]), the
    /// keys held in memory and, for a tree whose keys outgrow that, in a
    /// sled database beside them; all deleted on drop.
    Disk(DiskScratch),
}

/// The directory `cairn-scratch-PID-NANOS` (mode 0700) in the OS temp
/// directory, holding a sled database (`db/`) and value files (`views/`).
pub struct DiskScratch {
    db: Option<sled::Db>,
    values: super::vlog::ValueFiles,
    dir: std::path::PathBuf,
    /// `dir/lock`, locked while this lives: a sweep takes only
    /// directories whose lock it can take (their process is gone).
    _lock: Option<std::fs::File>,
}

const SCRATCH_PREFIX: &str = "cairn-scratch-";

impl Scratch {
    /// In memory for a run over at most `in_memory_max` entries, else
    /// [`Scratch::temporary`] (bounded memory).
    pub fn for_entries(entries: u64, in_memory_max: u64) -> Result<Scratch> {
        if entries > in_memory_max {
            Scratch::temporary()
        } else {
            Ok(Scratch::Memory)
        }
    }

    /// Value files (and a sled database for trees whose keys outgrow
    /// memory) in a new private directory of the OS temp directory,
    /// deleted on drop. Scratch directories of cairn processes that are no
    /// longer running (killed before they could clean up) are removed first.
    pub fn temporary() -> Result<Scratch> {
        Scratch::temporary_in(&std::env::temp_dir())
    }

    /// [`Scratch::temporary`] in directory `tmp`.
    pub fn temporary_in(tmp: &std::path::Path) -> Result<Scratch> {
        sweep_dead(tmp);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = tmp.join(format!("{SCRATCH_PREFIX}{}-{nanos}", std::process::id()));
        let tmp = tmp.to_path_buf();
        // Not recursive: a missing $TMPDIR is an error, not created. Private:
        // the views hold comment bodies.
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| {
            crate::error::Error::Usage(format!(
                "cannot make a scratch directory in the temp directory {} ($TMPDIR): {e}",
                tmp.display()
            ))
        })?;
        // Made first, so that the directory goes (on drop) if what follows
        // fails.
        let mut scratch = DiskScratch {
            db: None,
            values: super::vlog::ValueFiles::scratch(dir.join("views")),
            dir,
            _lock: None,
        };
        let lock_path = scratch.dir.join("lock");
        let lock = std::fs::File::create(&lock_path).map_err(|e| crate::error::Error::io(&lock_path, e))?;
        lock.try_lock()
            .map_err(|e| crate::error::Error::io(&lock_path, std::io::Error::other(e.to_string())))?;
        scratch._lock = Some(lock);
        // Temporary: sled neither syncs it as it closes (sled 0.34.7
        // panics when that sync fails) nor keeps it after.
        scratch.db = Some(
            sled::Config::new()
                .path(scratch.dir.join("db"))
                .temporary(true)
                .cache_capacity(16 << 20)
                .open()?,
        );
        Ok(Scratch::Disk(scratch))
    }

    /// A new empty tree named `name`.
    pub fn tree(&self, name: &str) -> Result<Box<dyn KvTree>> {
        Ok(match self {
            Scratch::Memory => Box::new(Scratched(MemoryTree::default())),
            Scratch::Disk(d) => {
                let db =
                    d.db.as_ref().ok_or_else(|| crate::error::Error::Internal("scratch closed".into()))?;
                Box::new(Scratched(Loose(super::vlog::SeparatedTree::held(
                    db.open_tree(name)?,
                    d.values.get(name)?,
                ))))
            }
        })
    }
}

/// Removes the scratch directories in `tmp` that no running cairn holds:
/// their `lock` can be taken (the lock goes with the process that held
/// it, whatever PID namespace or host it ran in). A directory without a
/// lock file (made by an older cairn, or caught between its creation and
/// its lock) is left alone unless its process, named in it, is gone from
/// this machine's `/proc` and it is over an hour old; one with a lock, until
/// it is a minute old.
fn sweep_dead(tmp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(SCRATCH_PREFIX) else { continue };
        let path = e.path();
        // Never follow a link planted in a shared temp directory.
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let older_than = |secs: u64| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > secs))
        };
        let unheld = match std::fs::File::open(path.join("lock")) {
            // A minute old at least: not one whose maker is about to lock it.
            Ok(f) => f.try_lock().is_ok() && older_than(60),
            Err(_) => {
                let pid = rest.split(['-', '.']).next().filter(|p| p.parse::<u32>().is_ok());
                let gone = pid.is_some_and(|p| !std::path::Path::new("/proc").join(p).exists());
                gone && older_than(3600)
            }
        };
        if unheld {
            tracing::debug!("removing {}, left by a cairn process that is gone", path.display());
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for DiskScratch {
    fn drop(&mut self) {
        // The database closed before its files go.
        drop(self.db.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scratch_is_private_removed_on_drop_and_sweeps_what_dead_processes_left() {
        let tmp = tempfile::TempDir::new().unwrap();
        let aged = |dir: &std::path::Path| {
            let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
            std::fs::File::open(dir).unwrap().set_modified(hours_ago).unwrap();
        };
        // Left by a process that is gone: its lock is free.
        let dead = tmp.path().join(format!("{SCRATCH_PREFIX}1-1"));
        std::fs::create_dir_all(dead.join("db")).unwrap();
        std::fs::write(dead.join("lock"), "").unwrap();
        aged(&dead);
        // Held by a running one (its lock taken; here by this test), however
        // old, and even under a PID this machine does not run.
        let held = tmp.path().join(format!("{SCRATCH_PREFIX}999999999-1"));
        std::fs::create_dir(&held).unwrap();
        let lock = std::fs::File::create(held.join("lock")).unwrap();
        lock.try_lock().unwrap();
        aged(&held);
        // An older cairn's, without a lock: its PID gone, and old.
        let legacy = tmp.path().join(format!("{SCRATCH_PREFIX}999999999-2.views"));
        std::fs::create_dir(&legacy).unwrap();
        aged(&legacy);
        // A fresh one without a lock yet: left alone.
        let fresh = tmp.path().join(format!("{SCRATCH_PREFIX}999999999-3"));
        std::fs::create_dir(&fresh).unwrap();
        // A link planted in the temp directory is not followed.
        let target = tmp.path().join("precious");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join(format!("{SCRATCH_PREFIX}1-2"))).unwrap();
        let scratch = Scratch::temporary_in(tmp.path()).unwrap();
        assert!(!dead.exists(), "a dead process's scratch is swept");
        assert!(held.exists(), "a held scratch is kept");
        assert!(!legacy.exists(), "an old unlocked one of a gone PID is swept");
        assert!(fresh.exists(), "a fresh unlocked one is kept");
        assert!(target.exists(), "a link's target is untouched");
        drop(lock);
        let Scratch::Disk(d) = &scratch else { panic!("not on disk") };
        let mode = std::fs::metadata(&d.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let tree = scratch.tree("t").unwrap();
        tree.apply(vec![(b"k".to_vec(), Some(vec![7; 100_000]))]).unwrap();
        assert_eq!(tree.get(b"k").unwrap(), Some(vec![7; 100_000]));
        let dir = d.dir.clone();
        drop(tree);
        drop(scratch);
        assert!(!dir.exists(), "removed on drop");
    }

    #[test]
    fn a_missing_temp_directory_is_an_error_not_created() {
        let tmp = tempfile::TempDir::new().unwrap();
        let missing = tmp.path().join("no/such/dir");
        let err = match Scratch::temporary_in(&missing) {
            Ok(_) => panic!("made a scratch in a missing directory"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("$TMPDIR") && err.contains("no/such/dir"), "{err}");
        assert!(!missing.exists());
    }
}
