//! [`StateTx`]: a view's pending writes (read-your-writes) and its access
//! to the log, committed with the view's cursor in one atomic batch (key by
//! key into a tree nobody reads before the run ends: [`crate::store::kv::Loose`]).

use crate::error::Result;
use crate::model::{Comment, Event, EventId, IdMap, LogEntry, Seq};
use crate::store::envelope;
use crate::store::{Archive, KvTree};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::generations::{Cursor, CURSOR_KEY};

/// Pending writes to a view's tree, read-your-writes, plus access to the log
/// for looking events up.
pub struct StateTx<'a> {
    tree: &'a dyn KvTree,
    archive: &'a Archive,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys whose pending value came from [`StateTx::put_value`] or
    /// [`StateTx::put_packed`]: held as
    /// a bare bincode body, sealed (checked, compressed) once, at commit
    /// ([`envelope::seal_body`]).
    unfinished: std::collections::HashSet<Vec<u8>>,
    /// Bytes of keys and values written since the last commit (an upper
    /// bound on what `writes` holds).
    pub(super) pending_bytes: usize,
    /// The tree was empty when this transaction began (a fresh replay):
    /// a key not written since is absent, without asking the tree.
    fresh: bool,
    /// Key prefixes found to have no key in the tree, and no write since.
    empty_prefixes: std::cell::RefCell<Vec<Vec<u8>>>,
    pub(super) recent: IdMap<Arc<LogEntry>>,
    /// The first seq of the document being applied.
    pub(super) document_from: Seq,
    /// This run leaves some captures out (`replay --until TIME`).
    pub(super) leaves_out: bool,
}

impl<'a> StateTx<'a> {
    pub(super) fn new(tree: &'a dyn KvTree, archive: &'a Archive) -> StateTx<'a> {
        // A tree that cannot even be scanned is not taken as empty.
        let fresh = tree.scan_prefix(b"").next().is_none();
        StateTx {
            tree,
            archive,
            writes: BTreeMap::new(),
            unfinished: Default::default(),
            pending_bytes: 0,
            fresh,
            empty_prefixes: Default::default(),
            recent: IdMap::default(),
            document_from: Seq(0),
            leaves_out: false,
        }
    }

    /// The raw value under `key`, pending writes included.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(key) {
            Some(Some(body)) if self.unfinished.contains(key) => Ok(Some(envelope::seal_body(body))),
            Some(v) => Ok(v.clone()),
            None if self.fresh => Ok(None),
            None => self.tree.get(key),
        }
    }

    /// Whether some key starting with `prefix` may exist (false only when
    /// none does). Cheap after the first call for a prefix: views use it to
    /// skip lookups in maps that are usually empty (merges).
    pub fn may_have_prefix(&self, prefix: &[u8]) -> Result<bool> {
        if self.empty_prefixes.borrow().iter().any(|p| p == prefix) {
            return Ok(false);
        }
        let pending = self.writes.range(prefix.to_vec()..).next().is_some_and(|(k, _)| k.starts_with(prefix));
        if pending || (!self.fresh && self.tree.scan_prefix(prefix).next().is_some()) {
            return Ok(true);
        }
        self.empty_prefixes.borrow_mut().push(prefix.to_vec());
        Ok(false)
    }

    /// Sets `key`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending_bytes += key.len() + value.len();
        self.forget_empty(&key);
        self.unfinished.remove(&key);
        self.writes.insert(key, Some(value));
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.pending_bytes += key.len();
        self.unfinished.remove(&key);
        self.writes.insert(key, None);
    }

    fn forget_empty(&mut self, key: &[u8]) {
        let prefixes = self.empty_prefixes.get_mut();
        if !prefixes.is_empty() {
            prefixes.retain(|p| !key.starts_with(p));
        }
    }

    /// The value under `key` for a typed read: a pending value's bare body
    /// (from `put_value` or `put_packed`), or enveloped bytes.
    fn value_bytes(&self, key: &[u8]) -> Result<Option<ValueBytes<'_>>> {
        Ok(match self.writes.get(key) {
            Some(Some(body)) if self.unfinished.contains(key) => Some(ValueBytes::Body(body)),
            Some(Some(bytes)) => Some(ValueBytes::Sealed(std::borrow::Cow::Borrowed(bytes))),
            Some(None) => None,
            None if self.fresh => None,
            None => self.tree.get(key)?.map(|v| ValueBytes::Sealed(std::borrow::Cow::Owned(v))),
        })
    }

    /// A decoded (enveloped bincode) value.
    pub fn get_value<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        let decoded = match self.value_bytes(key)? {
            None => return Ok(None),
            Some(ValueBytes::Body(body)) => envelope::decode_unsealed(body, ""),
            Some(ValueBytes::Sealed(bytes)) => envelope::decode(&bytes, ""),
        };
        decoded.map(Some).map_err(|e| name_value(e, key))
    }

    /// Sets `key` to an enveloped value (sealed when committed: a value
    /// replaced before then is never checked or compressed, and one read
    /// back meanwhile is decoded from its body).
    pub fn put_value<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        self.put_body(key, envelope::encode_body(value)?);
        Ok(())
    }

    /// Holds `body` (a bare bincode body) as `key`'s pending value, sealed
    /// at commit.
    fn put_body(&mut self, key: Vec<u8>, body: Vec<u8>) {
        // Counted as the envelope it becomes (version, codec, check).
        self.pending_bytes += 10;
        self.put(key.clone(), body);
        self.unfinished.insert(key);
    }

    /// [`StateTx::get_value`] for a type that also derives bincode's own
    /// `Decode`: the same bytes, read without serde's byte-at-a-time path
    /// for ids (the threads view's state, read and rewritten at every
    /// capture). Whatever the native reader refuses is read through serde.
    pub fn get_packed<T: DeserializeOwned + bincode::Decode<()>>(&self, key: &[u8]) -> Result<Option<T>> {
        let decoded = match self.value_bytes(key)? {
            None => return Ok(None),
            Some(ValueBytes::Body(body)) => envelope::decode_native_unsealed(body, ""),
            Some(ValueBytes::Sealed(bytes)) => envelope::decode_native(&bytes, ""),
        };
        decoded.map(Some).map_err(|e| name_value(e, key))
    }

    /// [`StateTx::put_value`] for a type that also derives bincode's own
    /// `Encode`: the same bytes, written without serde, as long as the two
    /// derives agree (no `#[serde(skip, with, rename...)]` that changes
    /// what serde writes, no hand-written `Serialize`).
    pub fn put_packed<T: bincode::Encode>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        self.put_body(key, envelope::encode_native_body(value)?);
        Ok(())
    }

    /// The entry of event `id`: from the entries applied since the last
    /// commit (shared, not copied), else from the log.
    pub fn entry_ref(&self, id: &EventId) -> Result<Option<Arc<LogEntry>>> {
        if let Some(e) = self.recent.get(id) {
            return Ok(Some(Arc::clone(e)));
        }
        Ok(self.archive.entry_by_id(id)?.map(Arc::new))
    }

    /// The entry at `seq`, from the log.
    pub fn entry_at(&self, seq: Seq) -> Result<LogEntry> {
        self.archive.entry(seq)
    }

    /// The entry of event `id` if it belongs to the document being applied
    /// (appended after the previous capture): a capture finds its own
    /// document's new events here, and only those.
    pub fn document_entry(&self, id: &EventId) -> Option<&LogEntry> {
        self.recent.get(id).map(|e| e.as_ref()).filter(|e| e.seq >= self.document_from)
    }

    /// Whether this run leaves some captures out (a replay to an
    /// observation time): a view that takes events in through
    /// [`StateTx::document_entry`] must then also consider the other items
    /// of the captures it applies (a left-out capture's new events are not
    /// another capture's document).
    pub fn leaves_captures_out(&self) -> bool {
        self.leaves_out
    }

    /// The event with id `id` (a copy; see [`StateTx::entry_ref`]).
    pub fn event(&self, id: &EventId) -> Result<Option<Event>> {
        Ok(self.entry_ref(id)?.map(|e| e.event.clone()))
    }

    /// The comment with id `id`.
    pub fn comment(&self, id: &EventId) -> Result<Option<Comment>> {
        Ok(match self.entry_ref(id)?.as_deref() {
            Some(LogEntry { event: Event::Comment(c), .. }) => Some(c.clone()),
            _ => None,
        })
    }

    pub(super) fn commit(&mut self, cursor: &Cursor) -> Result<()> {
        let unfinished = std::mem::take(&mut self.unfinished);
        let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = std::mem::take(&mut self.writes)
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Some(v) if unfinished.contains(&k) => Some(envelope::seal_body(&v)),
                    other => other,
                };
                (k, v)
            })
            .collect();
        writes.push((CURSOR_KEY.to_vec(), Some(envelope::encode(cursor)?)));
        self.tree.apply(writes)?;
        self.recent.clear();
        self.pending_bytes = 0;
        self.fresh = false;
        Ok(())
    }
}

/// A value's bytes as [`StateTx::value_bytes`] finds them.
enum ValueBytes<'a> {
    /// A pending value, not yet sealed.
    Body(&'a [u8]),
    /// An envelope, pending or stored.
    Sealed(std::borrow::Cow<'a, [u8]>),
}

/// Names the view value `key` in a decoding error (the label is made only
/// when a value fails to decode).
fn name_value(e: crate::error::Error, key: &[u8]) -> crate::error::Error {
    match e {
        crate::error::Error::Corrupt(m) => {
            crate::error::Error::Corrupt(format!("view value {}{m}", String::from_utf8_lossy(key)))
        }
        other => other,
    }
}
