//! Where a [`super::vlog::SeparatedTree`] keeps its keys, its inline
//! values and the locators of the rest ([`Keys`]): in a sled tree, or held
//! in memory by a tree that one run builds from nothing and nobody reads
//! before that run ends (a replay's new generation; an audit's and
//! `--at`'s scratch trees), written into its sled tree once, in key order,
//! when the run settles the tree or makes it durable.
//!
//! A replay writes each view state again wherever a later capture touches
//! its article, and each such write was a sled insert (about 100,000 at 1M
//! comments, 11% of replay's CPU in a profile), which the settle then
//! rewrote once more for every value it moved. Held, the run's writes cost
//! a map insert each, and sled takes each key once. The map is bounded:
//! past [`HELD_MAX`] bytes (keys, inline values, locators and a fixed cost
//! per key), everything held goes into the sled tree and the tree goes on
//! there, as one that was never held.

use super::kv::Write;
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a tree holds in memory at most before it goes on in sled. Small
/// under the library's unit tests, so that the tests' small logs meet it.
#[cfg(not(test))]
pub(super) const HELD_MAX: usize = 32 << 20;
#[cfg(test)]
pub(super) const HELD_MAX: usize = 16 << 10;

/// What a key costs in memory beyond its key and value bytes (the map's
/// node share and the two vectors' headers), as [`HELD_MAX`] counts it.
const PER_KEY: usize = 80;

/// A key and what the tree stores under it, as a scan yields them.
pub(super) type Item = Result<(sled::IVec, sled::IVec)>;

/// Where a tree's keys are.
#[derive(Clone)]
pub(super) enum Keys {
    /// In sled.
    Sled(sled::Tree),
    /// In memory until written out into the sled tree it names.
    Held(Arc<Held>),
}

/// Keys held in memory, and the sled tree they go into.
pub(super) struct Held {
    state: Mutex<HeldState>,
    into: sled::Tree,
}

struct HeldState {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What the map holds, as [`HELD_MAX`] counts it.
    bytes: usize,
    /// The keys are in the sled tree from here on (the map is empty).
    out: bool,
}

impl HeldState {
    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let (k, v) = (key.len(), value.len());
        match self.map.insert(key, value) {
            Some(old) => self.bytes = self.bytes - old.len() + v,
            None => self.bytes += k + v + PER_KEY,
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= key.len() + old.len() + PER_KEY;
        }
    }

    /// Writes every held key into `into`, in key order, and keeps the keys
    /// there from now on.
    fn write_out(&mut self, into: &sled::Tree) -> Result<()> {
        if self.out {
            return Ok(());
        }
        for (k, v) in std::mem::take(&mut self.map) {
            into.insert(k, v)?;
        }
        self.bytes = 0;
        self.out = true;
        Ok(())
    }
}

impl Held {
    fn lock(&self) -> MutexGuard<'_, HeldState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Keys {
    /// Keys held in memory, to be written into `into` (empty) later.
    pub(super) fn held(into: sled::Tree) -> Keys {
        let state = HeldState { map: BTreeMap::new(), bytes: 0, out: false };
        Keys::Held(Arc::new(Held { state: Mutex::new(state), into }))
    }

    /// What is stored under `key`.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        match self {
            Keys::Sled(t) => Ok(t.get(key)?),
            Keys::Held(h) => {
                let s = h.lock();
                if s.out {
                    return Ok(h.into.get(key)?);
                }
                Ok(s.map.get(key).map(|v| sled::IVec::from(v.as_slice())))
            }
        }
    }

    /// Stores `value` under `key`.
    pub(super) fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<()> {
        self.apply(vec![(key.to_vec(), Some(value))], false)
    }

    /// Removes `key`.
    pub(super) fn remove(&self, key: &[u8]) -> Result<()> {
        self.apply(vec![(key.to_vec(), None)], false)
    }

    /// Applies `writes` in order: in sled, in one atomic batch when
    /// `atomic`, else key by key; held, under one lock, then written out
    /// if the map grew past [`HELD_MAX`].
    pub(super) fn apply(&self, writes: Vec<Write>, atomic: bool) -> Result<()> {
        let tree = match self {
            Keys::Sled(t) => t,
            Keys::Held(h) => {
                let mut s = h.lock();
                if !s.out {
                    for (k, v) in writes {
                        match v {
                            Some(v) => s.insert(k, v),
                            None => s.remove(&k),
                        }
                    }
                    if s.bytes > HELD_MAX {
                        s.write_out(&h.into)?;
                    }
                    return Ok(());
                }
                // (Still locked: a write out and writes after it do not
                // interleave.)
                return apply_to(&h.into, writes, atomic);
            }
        };
        apply_to(tree, writes, atomic)
    }

    /// Makes what the sled tree holds durable. Keys still held stay held
    /// (nothing durable names such a tree: a compaction's flushes, which
    /// order its locators against its record, have nothing to order);
    /// [`Keys::write_out`] first to make them durable.
    pub(super) fn flush(&self) -> Result<()> {
        let tree = match self {
            Keys::Sled(t) => t,
            Keys::Held(h) if !h.lock().out => return Ok(()),
            Keys::Held(h) => &h.into,
        };
        tree.flush()?;
        Ok(())
    }

    /// Writes held keys into the sled tree (nothing for a sled tree).
    pub(super) fn write_out(&self) -> Result<()> {
        match self {
            Keys::Sled(_) => Ok(()),
            Keys::Held(h) => h.lock().write_out(&h.into),
        }
    }

    /// Every key starting with `prefix` and what is stored under it, in
    /// key order. Held keys are copied out first, so that the tree may be
    /// written while the scan goes on (a compaction rewrites the locators
    /// it scans).
    pub(super) fn scan_prefix(&self, prefix: &[u8]) -> Box<dyn Iterator<Item = Item> + '_> {
        let tree = match self {
            Keys::Sled(t) => t,
            Keys::Held(h) => {
                let s = h.lock();
                if s.out {
                    &h.into
                } else {
                    let items: Vec<Item> = s
                        .map
                        .range(prefix.to_vec()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .map(|(k, v)| Ok((sled::IVec::from(k.as_slice()), sled::IVec::from(v.as_slice()))))
                        .collect();
                    return Box::new(items.into_iter());
                }
            }
        };
        Box::new(tree.scan_prefix(prefix).map(|kv| kv.map_err(Into::into)))
    }

    /// Removes every key.
    pub(super) fn clear(&self) -> Result<()> {
        match self {
            Keys::Sled(t) => t.clear()?,
            Keys::Held(h) => {
                let mut s = h.lock();
                s.map.clear();
                s.bytes = 0;
                s.out = false;
                h.into.clear()?;
            }
        }
        Ok(())
    }
}

/// Applies `writes` to sled tree `tree`, atomically or key by key.
fn apply_to(tree: &sled::Tree, writes: Vec<Write>, atomic: bool) -> Result<()> {
    if atomic {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        tree.apply_batch(batch)?;
    } else {
        for (k, v) in writes {
            match v {
                Some(v) => tree.insert(k, v)?,
                None => tree.remove(k)?,
            };
        }
    }
    Ok(())
}
