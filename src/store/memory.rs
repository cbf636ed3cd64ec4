//! An in-memory [`Store`](super::Store) for unit tests and for dry runs against an archive
//! that does not exist yet. Same contract as the sled store, nothing on disk.

use crate::error::{Error, Result};
use crate::model::{BlobId, EventId, HexPrefix, LogEntry, Seq};
use crate::store::buckets;
use crate::store::idruns::IdSeq;
use crate::store::kv::MemoryTree;
use crate::store::BlobStore;
use crate::store::IndexStore;
use crate::store::LogStore;
use crate::store::ViewStore;
use crate::store::{BucketRead, HeadState, IndexRead, KvTree, ParseKey, ParsedDoc, ParsedRead, SegmentRead};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A store held entirely in memory.
#[derive(Default, Debug, Clone)]
pub struct MemoryStore {
    log: BTreeMap<Seq, LogEntry>,
    /// The first seq of each commit.
    commits: std::collections::BTreeSet<Seq>,
    index: BTreeMap<EventId, Seq>,
    buckets: BTreeMap<[u8; 32], Vec<IdSeq>>,
    blobs: HashMap<BlobId, Vec<u8>>,
    head: HeadState,
    parsed: BTreeMap<ParseKey, ParsedDoc>,
    /// The parse records of each blob, as a blob's record holds them.
    parses_of: BTreeMap<BlobId, Vec<ParsedDoc>>,
    trees: Arc<Mutex<BTreeMap<String, MemoryTree>>>,
    merkle: crate::transparency::file::TreeFile,
}

impl MemoryStore {
    fn trees(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MemoryTree>> {
        match self.trees.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl LogStore for MemoryStore {
    fn head(&self) -> Result<HeadState> {
        Ok(self.head)
    }

    fn entries_from(&self, from: Seq) -> Result<Box<dyn Iterator<Item = Result<LogEntry>> + '_>> {
        Ok(Box::new(self.log.range(from..).map(|(_, e)| Ok(e.clone()))))
    }

    fn commit(
        &mut self,
        segments: &[Vec<LogEntry>],
        head: &HeadState,
        parsed: &[super::ParseRecord],
    ) -> Result<()> {
        let mut expected = self.head.seq.next();
        for e in segments.iter().flatten() {
            if e.seq != expected {
                return Err(Error::Corrupt(format!(
                    "commit out of order: seq {} where {} was due",
                    e.seq, expected
                )));
            }
            expected = expected.next();
        }
        if let Some(first) = segments.iter().flatten().next() {
            self.commits.insert(first.seq);
        }
        let mut new: HashMap<[u8; 32], Vec<IdSeq>> = HashMap::new();
        for e in segments.iter().flatten() {
            self.index.insert(e.id, e.seq);
            self.log.insert(e.seq, e.clone());
            new.entry(buckets::bucket_of(&e.event)).or_default().push((e.id, e.seq));
        }
        for (key, entries) in new {
            buckets::insert(self.buckets.entry(key).or_default(), entries);
        }
        for (blob, k, p) in parsed {
            self.parsed.insert(*k, *p);
            self.parses_of.entry(*blob).or_default().push(*p);
        }
        let before = self.head.seq.0;
        self.head = *head;
        // Taken out for the call: the leaves before it are read from `self`.
        let mut tree = std::mem::take(&mut self.merkle);
        let appended = tree.append(
            before,
            |first, count| super::read_leaves(self, first, count),
            segments.iter().flatten().map(LogEntry::leaf_hash),
        );
        self.merkle = tree;
        appended
    }

    fn commit_starts(&self, after: Seq) -> Result<Vec<Seq>> {
        Ok(self.commits.range(after.next()..).copied().collect())
    }

    fn segment_of(&self, seq: Seq) -> Result<Vec<LogEntry>> {
        self.log.get(&seq).map(|e| vec![e.clone()]).ok_or(Error::MissingEntry(seq))
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn merkle(&self) -> Option<&crate::transparency::file::TreeFile> {
        Some(&self.merkle)
    }

    fn disk_usage(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    fn scan_segments(&self) -> Box<dyn Iterator<Item = Result<SegmentRead>> + '_> {
        Box::new(self.log.iter().map(|(seq, e)| Ok((*seq, Ok(vec![e.clone()])))))
    }
}

impl BlobStore for MemoryStore {
    fn stage_blob(
        &mut self,
        id: &BlobId,
        raw: &[u8],
        _: Option<&[u8; 32]>,
        _: Option<crate::store::Ahead>,
    ) -> Result<()> {
        self.blobs.entry(*id).or_insert_with(|| raw.to_vec());
        Ok(())
    }

    fn sync_blobs(&mut self) -> Result<()> {
        Ok(())
    }

    fn get_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        self.blobs.get(id).cloned().ok_or_else(|| Error::Corrupt(format!("blob {id} is missing")))
    }

    fn blob_ids(&self) -> Result<Vec<BlobId>> {
        let mut ids: Vec<BlobId> = self.blobs.keys().copied().collect();
        ids.sort();
        Ok(ids)
    }

    fn blob_bytes(&self) -> Result<u64> {
        Ok(self.blobs.values().map(|b| b.len() as u64).sum())
    }
}

impl IndexStore for MemoryStore {
    fn seq_of(&self, id: &EventId) -> Result<Option<Seq>> {
        Ok(self.index.get(id).copied())
    }

    fn ids_with_prefix(&self, prefix: &HexPrefix) -> Result<Vec<EventId>> {
        Ok(self.index.keys().filter(|id| prefix.matches(id.as_bytes())).copied().collect())
    }

    fn parsed(&self, _: &BlobId, key: &ParseKey) -> Result<Option<ParsedDoc>> {
        Ok(self.parsed.get(key).copied())
    }

    fn parses_of(&self, blob: &BlobId) -> Result<(Vec<ParsedDoc>, bool)> {
        Ok((self.parses_of.get(blob).cloned().unwrap_or_default(), true))
    }

    fn scan_parsed(&self) -> Box<dyn Iterator<Item = Result<ParsedRead>> + '_> {
        Box::new(self.parsed.iter().map(|(k, p)| Ok((*k, Ok(*p)))))
    }

    fn scan_index(&self) -> Box<dyn Iterator<Item = Result<IndexRead>> + '_> {
        Box::new(self.index.iter().map(|(id, seq)| Ok((Ok(*id), Ok(*seq)))))
    }

    fn bucket(&self, key: &[u8; 32], _ids: &[EventId]) -> Result<Vec<IdSeq>> {
        Ok(self.buckets.get(key).cloned().unwrap_or_default())
    }

    fn scan_buckets(&self) -> Box<dyn Iterator<Item = Result<BucketRead>> + '_> {
        Box::new(self.buckets.iter().map(|(k, v)| Ok((*k, Ok(v.clone())))))
    }
}

impl ViewStore for MemoryStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>> {
        Ok(Arc::new(self.trees().entry(name.to_string()).or_default().clone()))
    }

    fn drop_tree(&self, name: &str) -> Result<()> {
        self.trees().remove(name);
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        Ok(self.trees().keys().cloned().collect())
    }
}
