//! The articles' id sets as the sled store keeps them (their encoding,
//! and which bucket an event belongs to, are in `buckets.rs`): a sled tree
//! `sets` of `d` + bucket and `e` + bucket + byte keys, whose values live
//! in value files (`sets/ids.a.vlog`, `sets/ids.b.vlog`, through
//! [`SeparatedTree`]), read for a document's duplicate check and written
//! once per article a commit touches (docs/architecture.md, "Store
//! layout").

use crate::error::{Error, Result};
use crate::model::{EventId, LogEntry, Seq};
use crate::store::buckets;
use crate::store::idruns::IdSeq;
use crate::store::kv::{KvTree, Write};
use crate::store::vlog::SeparatedTree;
use std::collections::HashMap;

/// The sled tree of the articles' id sets (`d` and `e` keys), whose values
/// live in value files (`sets/ids.a.vlog`, `sets/ids.b.vlog`).
pub(super) const SETS_TREE: &str = "sets";
/// The name of the id sets' value files in `sets/`.
pub(super) const SET_FILES: &str = "ids";
/// A whole bucket: `d` + bucket.
pub(super) const BUCKET: u8 = b'd';
/// A part of a split bucket: `e` + bucket + the first byte of its ids.
pub(super) const PART: u8 = b'e';

fn bucket_key(bucket: &[u8; 32]) -> [u8; 33] {
    let mut k = [BUCKET; 33];
    k[1..].copy_from_slice(bucket);
    k
}

fn part_key(bucket: &[u8; 32], first: u8) -> [u8; 34] {
    let mut k = [PART; 34];
    k[1..33].copy_from_slice(bucket);
    k[33] = first;
    k
}

fn damaged_bucket(why: String) -> Error {
    Error::Corrupt(format!(
        "an article's id set in the index does not decode ({why}); `cairn repair` rebuilds it"
    ))
}

/// A value file that does not give a set back is a damaged index.
fn set_value(sets: &SeparatedTree, key: &[u8]) -> Result<Option<Vec<u8>>> {
    sets.get(key).map_err(|e| match e {
        Error::Corrupt(why) => damaged_bucket(why),
        e => e,
    })
}

/// How `bucket` is stored: whole (none when it has no value yet) or split.
pub(super) fn read_bucket(sets: &SeparatedTree, bucket: &[u8; 32]) -> Result<buckets::Stored> {
    match set_value(sets, &bucket_key(bucket))? {
        None => Ok(buckets::Stored::Whole(Vec::new())),
        Some(v) => buckets::decode_value(&v).map_err(damaged_bucket),
    }
}

/// The part of split `bucket` for ids starting with `first`.
fn read_part(sets: &SeparatedTree, bucket: &[u8; 32], first: u8) -> Result<Vec<IdSeq>> {
    match set_value(sets, &part_key(bucket, first))? {
        None => Ok(Vec::new()),
        Some(v) => buckets::decode_part(&v, first).map_err(damaged_bucket),
    }
}

/// The stored entries of `bucket` that could be `ids` (all of a whole
/// bucket; the parts of a split one that `ids` start with), sorted by id.
pub(super) fn read_bucket_for(
    sets: &SeparatedTree,
    bucket: &[u8; 32],
    ids: &[EventId],
) -> Result<Vec<IdSeq>> {
    match read_bucket(sets, bucket)? {
        buckets::Stored::Whole(entries) => Ok(entries),
        buckets::Stored::Split => {
            let mut firsts: Vec<u8> = ids.iter().map(|id| id.as_bytes()[0]).collect();
            firsts.sort_unstable();
            firsts.dedup();
            let mut out = Vec::new();
            for first in firsts {
                out.extend(read_part(sets, bucket, first)?);
            }
            Ok(out)
        }
    }
}

/// Every entry of `bucket`, whole or from its parts, or why not.
pub(super) fn read_bucket_all(
    sets: &SeparatedTree,
    bucket: &[u8; 32],
    value: &[u8],
) -> std::result::Result<Vec<IdSeq>, String> {
    match buckets::decode_value(value)? {
        buckets::Stored::Whole(entries) => Ok(entries),
        buckets::Stored::Split => {
            let mut out = Vec::new();
            let prefix = [&[PART][..], &bucket[..]].concat();
            for kv in sets.scan_each(&prefix) {
                let (k, v) = kv.map_err(|e| e.to_string())?;
                let v = v.map_err(|e| e.to_string())?;
                let first = *k.get(33).ok_or_else(|| format!("a part key of {} bytes", k.len()))?;
                if k.len() != 34 {
                    return Err(format!("a part key of {} bytes", k.len()));
                }
                out.extend(
                    buckets::decode_part(&v, first).map_err(|why| format!("part {first:02x}: {why}"))?,
                );
            }
            Ok(out)
        }
    }
}

/// Entries to add to buckets, gathered until [`BucketWrites::drain_into`]
/// merges each bucket's once with what the tree holds (a bucket that grows
/// past [`buckets::SPLIT_AT`] is split there). Every drain's batch must be
/// applied before the next drain.
#[derive(Default)]
pub(super) struct BucketWrites {
    pending: HashMap<[u8; 32], Vec<IdSeq>>,
    /// Entries added since the last drain.
    pub(super) added: usize,
}

impl BucketWrites {
    /// Adds (bucket, id, seq) triples.
    pub(super) fn add(&mut self, items: impl IntoIterator<Item = ([u8; 32], EventId, Seq)>) {
        for (b, id, seq) in items {
            self.pending.entry(b).or_default().push((id, seq));
            self.added += 1;
        }
    }

    /// Merges every bucket's new entries with the stored ones into `writes`
    /// (for the `sets` tree).
    pub(super) fn drain_into(&mut self, sets: &SeparatedTree, writes: &mut Vec<Write>) -> Result<()> {
        self.added = 0;
        for (b, new) in self.pending.drain() {
            match read_bucket(sets, &b)? {
                buckets::Stored::Whole(mut cur) => {
                    buckets::insert(&mut cur, new);
                    if cur.len() <= buckets::SPLIT_AT {
                        writes.push((bucket_key(&b).to_vec(), Some(buckets::encode(&cur))));
                        continue;
                    }
                    // Split: the parts are new (a whole bucket has none).
                    writes.push((bucket_key(&b).to_vec(), Some(buckets::split_marker())));
                    for part in cur.chunk_by(|x, y| x.0.as_bytes()[0] == y.0.as_bytes()[0]) {
                        writes.push((
                            part_key(&b, part[0].0.as_bytes()[0]).to_vec(),
                            Some(buckets::encode(part)),
                        ));
                    }
                }
                buckets::Stored::Split => {
                    let mut by_first: HashMap<u8, Vec<IdSeq>> = HashMap::new();
                    for e in new {
                        by_first.entry(e.0.as_bytes()[0]).or_default().push(e);
                    }
                    for (first, entries) in by_first {
                        let mut cur = read_part(sets, &b, first)?;
                        buckets::insert(&mut cur, entries);
                        writes.push((part_key(&b, first).to_vec(), Some(buckets::encode(&cur))));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every entry of `entries` with its bucket.
pub(super) fn bucket_items(entries: &[LogEntry]) -> impl Iterator<Item = ([u8; 32], EventId, Seq)> + '_ {
    let mut memo = buckets::BucketMemo::default();
    entries.iter().map(move |e| (memo.of(&e.event), e.id, e.seq))
}
