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

use super::kv::{KvTree, Write};
use crate::error::Result;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a tree holds in memory at most before it goes on in sled (at 1M
/// comments a view's 30,000 keys take about 5 MiB; a replay or an audit
/// builds two trees at once). Small under the library's unit tests, so
/// that the tests' small logs meet it.
#[cfg(not(test))]
pub(super) const HELD_MAX: usize = 16 << 20;
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
    /// there from now on. (One insert at a time: batches of 4,096 peaked
    /// at 234 MB in a replay at 1M, sled copying the nodes a batch
    /// touches.) A write that fails leaves every key held.
    fn write_out(&mut self, into: &sled::Tree) -> Result<()> {
        if self.out {
            return Ok(());
        }
        for (k, v) in &self.map {
            into.insert(k.as_slice(), v.as_slice())?;
        }
        tracing::debug!("{} held keys ({} bytes as counted) written into sled", self.map.len(), self.bytes);
        self.map.clear();
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
                {
                    let s = h.lock();
                    if !s.out {
                        return Ok(s.map.get(key).map(|v| sled::IVec::from(v.as_slice())));
                    }
                }
                // Written out: sled from here on (never held again), read
                // without the lock.
                Ok(h.into.get(key)?)
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
                // Written out: in sled from here on, without the lock.
                &h.into
            }
        };
        if atomic {
            KvTree::apply(tree, writes)
        } else {
            KvTree::write_loose(tree, writes)
        }
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
    /// key order. Held keys are copied out a few at a time ([`HeldScan`]),
    /// so that the tree may be written while the scan goes on (a
    /// compaction rewrites the locators it scans) and a scan that stops at
    /// its first item costs one step.
    pub(super) fn scan_prefix(&self, prefix: &[u8]) -> Box<dyn Iterator<Item = Item> + '_> {
        match self {
            Keys::Sled(t) => Box::new(t.scan_prefix(prefix).map(|kv| kv.map_err(Into::into))),
            Keys::Held(h) => Box::new(HeldScan {
                held: h,
                prefix: prefix.to_vec(),
                from: Bound::Included(prefix.to_vec()),
                ready: VecDeque::new(),
                step: 8,
                sled: None,
            }),
        }
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

/// A scan of held keys: copies of the next few items under the lock
/// (`step` of them, doubling up to 1,024), then the rest of the scan in
/// sled once the keys were written out.
struct HeldScan<'a> {
    held: &'a Held,
    prefix: Vec<u8>,
    /// Where the next copies start (the last key copied, excluded).
    from: Bound<Vec<u8>>,
    ready: VecDeque<(sled::IVec, sled::IVec)>,
    step: usize,
    sled: Option<Box<dyn Iterator<Item = Item> + 'a>>,
}

impl Iterator for HeldScan<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(kv) = self.ready.pop_front() {
            return Some(Ok(kv));
        }
        if let Some(rest) = &mut self.sled {
            return rest.next();
        }
        let s = self.held.lock();
        if s.out {
            drop(s);
            let prefix = self.prefix.clone();
            let rest = self
                .held
                .into
                .range((self.from.clone(), Bound::Unbounded))
                .take_while(move |kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
                .map(|kv| kv.map_err(Into::into));
            return self.sled.insert(Box::new(rest)).next();
        }
        for (k, v) in s
            .map
            .range::<Vec<u8>, _>((self.from.as_ref(), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&self.prefix))
            .take(self.step)
        {
            self.ready.push_back((sled::IVec::from(k.as_slice()), sled::IVec::from(v.as_slice())));
        }
        drop(s);
        self.step = (self.step * 2).min(1024);
        let (last, _) = self.ready.back()?;
        self.from = Bound::Excluded(last.to_vec());
        self.ready.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held tree over an empty sled tree (the database kept alive).
    fn held() -> (sled::Db, Keys) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        (db, Keys::held(tree))
    }

    fn key(i: u32) -> Vec<u8> {
        format!("a/{i:05}").into_bytes()
    }

    fn bytes(k: &Keys) -> (usize, bool) {
        let Keys::Held(h) = k else { panic!("a held tree") };
        let s = h.lock();
        (s.bytes, s.out)
    }

    #[test]
    fn a_scan_goes_on_in_sled_when_the_keys_are_written_out_under_it() {
        let (_db, k) = held();
        let mut writes: Vec<Write> = (0..500).map(|i| (key(i), Some(vec![1; 10]))).collect();
        writes.push((b"b/other".to_vec(), Some(vec![2])));
        k.apply(writes, false).unwrap();
        let mut scan = k.scan_prefix(b"a/");
        let mut seen: Vec<Vec<u8>> = scan.by_ref().take(100).map(|kv| kv.unwrap().0.to_vec()).collect();
        // Written into sled under the scan, then one key more there.
        k.write_out().unwrap();
        k.insert(&key(900), vec![3]).unwrap();
        seen.extend(scan.map(|kv| kv.unwrap().0.to_vec()));
        let want: Vec<Vec<u8>> = (0..500).chain([900]).map(key).collect();
        assert_eq!(seen, want);
        assert_eq!(k.scan_prefix(b"b/").count(), 1);
        assert_eq!(k.get(&key(7)).unwrap().as_deref(), Some(&[1u8; 10][..]));
    }

    #[test]
    fn what_the_map_holds_is_counted_and_it_goes_into_sled_past_its_bound() {
        let (_db, k) = held();
        k.insert(b"k", vec![0; 10]).unwrap();
        assert_eq!(bytes(&k), (1 + 10 + PER_KEY, false));
        k.insert(b"k", vec![0; 30]).unwrap();
        assert_eq!(bytes(&k), (1 + 30 + PER_KEY, false));
        k.remove(b"k").unwrap();
        k.remove(b"absent").unwrap();
        assert_eq!(bytes(&k), (0, false));
        let per_key = key(0).len() + 40 + PER_KEY;
        let fit = HELD_MAX / per_key;
        k.apply((0..fit as u32).map(|i| (key(i), Some(vec![4; 40]))).collect(), false).unwrap();
        assert_eq!(bytes(&k), (fit * per_key, false), "{fit} keys fit");
        k.insert(&key(fit as u32), vec![4; 40]).unwrap();
        assert_eq!(bytes(&k), (0, true), "one more does not");
        let Keys::Held(h) = &k else { unreachable!() };
        assert_eq!(h.into.len(), fit + 1);
        assert_eq!(k.scan_prefix(b"a/").count(), fit + 1);
        assert_eq!(k.get(&key(3)).unwrap().as_deref(), Some(&[4u8; 40][..]));
    }
}
