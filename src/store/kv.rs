//! Key-value trees for views: [`KvTree`], with a sled implementation and an
//! in-memory one. Each view keeps its state in a tree of its own; a write
//! batch to one tree is atomic. [`Scratch`] hands out throwaway trees (an
//! audit's fresh views), in memory or in a temporary sled database.

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
    /// Applies all writes atomically.
    fn apply(&self, writes: Vec<Write>) -> Result<()>;
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
/// fresh views): in memory, or in a temporary sled database.
pub enum Scratch {
    /// [`MemoryTree`]s.
    Memory,
    /// A sled database in the OS temp directory (`$TMPDIR`), its large
    /// values in value files in a directory beside it, as an archive's
    /// views keep them ([`super::vlog`]); both deleted on drop.
    Disk(sled::Db, super::vlog::ValueFiles, std::path::PathBuf),
}

impl Scratch {
    /// A sled database in the OS temp directory, deleted on drop.
    pub fn temporary() -> Result<Scratch> {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("cairn-scratch-{}-{nanos}", std::process::id()));
        let db = sled::Config::new().path(&dir).temporary(true).cache_capacity(16 << 20).open()?;
        let views = dir.with_extension("views");
        let values = super::vlog::ValueFiles::scratch(views.clone());
        Ok(Scratch::Disk(db, values, views))
    }

    /// A new empty tree named `name`.
    pub fn tree(&self, name: &str) -> Result<Box<dyn KvTree>> {
        Ok(match self {
            Scratch::Memory => Box::new(MemoryTree::default()),
            Scratch::Disk(db, values, _) => {
                Box::new(super::vlog::SeparatedTree::new(db.open_tree(name)?, values.get(name)?))
            }
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Disk(_, _, dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
