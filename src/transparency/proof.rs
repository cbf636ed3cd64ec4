//! Proofs as JSON (`cairn prove`) and their offline checks (`cairn
//! verify-proof`): nothing here reads an archive.
//!
//! An inclusion proof carries the leaf's data (the log entry's canonical
//! bytes), the RFC 9162 inclusion path, the event as `show --json` prints
//! it and the event's canonical identity bytes; the check ties them
//! together: the path leads from the leaf to the root, the leaf data names
//! the seq `leaf_index + 1` and the id `BLAKE3(event_bytes)`, and the event
//! is exactly what cairn prints for the entry those bytes decode to.

use super::merkle::{self, Hash};
use super::note::Checkpoint;
use crate::model::event::tags;
use crate::model::ids::to_hex;
use crate::model::{
    Article, ArticleKey, BlobId, Capture, CaptureItem, CapturedArticle, ChainHash, Comment, Event, EventId,
    Gap, LogEntry, Merge, MergeKind, Seq, Timestamp,
};
use serde_json::{json, Map, Value};

/// An inclusion proof of one log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct InclusionProof {
    /// The leaf's index (the entry's seq - 1).
    pub leaf_index: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The entry's canonical bytes.
    pub leaf_data: Vec<u8>,
    /// The RFC 9162 inclusion path.
    pub inclusion_path: Vec<Hash>,
    /// The tree hash at `tree_size`.
    pub root: Hash,
    /// The entry as `show --json` prints it, without `head`.
    pub event: Value,
    /// The event's canonical identity bytes.
    pub event_bytes: Vec<u8>,
}

/// A consistency proof between two tree sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// The newer tree's size.
    pub new_size: u64,
    /// The older tree's hash.
    pub old_root: Hash,
    /// The newer tree's hash.
    pub new_root: Hash,
    /// The RFC 9162 consistency path.
    pub consistency_path: Vec<Hash>,
}

/// Either proof, as read from a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Proof {
    /// `cairn prove ID|SEQ`.
    Inclusion(InclusionProof),
    /// `cairn prove --consistency OLD`.
    Consistency(ConsistencyProof),
}

fn hex_list(v: &[Hash]) -> Value {
    Value::Array(v.iter().map(|h| Value::String(to_hex(h))).collect())
}

impl InclusionProof {
    /// The JSON object (`cairn prove`).
    pub fn to_json(&self) -> Value {
        json!({
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_data": to_hex(&self.leaf_data),
            "inclusion_path": hex_list(&self.inclusion_path),
            "root": to_hex(&self.root),
            "event": self.event,
            "event_bytes": to_hex(&self.event_bytes),
        })
    }
}

impl ConsistencyProof {
    /// The JSON object (`cairn prove --consistency`).
    pub fn to_json(&self) -> Value {
        json!({
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": to_hex(&self.old_root),
            "new_root": to_hex(&self.new_root),
            "consistency_path": hex_list(&self.consistency_path),
        })
    }
}

fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    m.get(name).ok_or_else(|| format!("the proof has no {name:?}"))
}

fn uint(m: &Map<String, Value>, name: &str) -> Result<u64, String> {
    field(m, name)?.as_u64().ok_or_else(|| format!("{name:?} is not a non-negative integer"))
}

/// Lowercase hex only: a proof is compared byte for byte.
fn bytes(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or_else(|| format!("{name:?} is not a string of hex"))?;
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("{name:?} is not lowercase hex"));
    }
    Ok((0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect())
}

fn hash(v: &Value, name: &str) -> Result<Hash, String> {
    bytes(v, name)?.try_into().map_err(|_| format!("{name:?} is not a 32-byte hash"))
}

fn hashes(m: &Map<String, Value>, name: &str) -> Result<Vec<Hash>, String> {
    let list = field(m, name)?.as_array().ok_or_else(|| format!("{name:?} is not a list"))?;
    if list.len() > 64 {
        return Err(format!("{name:?} has {} hashes: no tree has paths longer than 64", list.len()));
    }
    list.iter().enumerate().map(|(i, v)| hash(v, &format!("{name}[{i}]"))).collect()
}

impl Proof {
    /// Reads a proof from its JSON. The error says what is wrong.
    /// The JSON is strict: a key twice in one object (anywhere: a reader
    /// that keeps the first would see another proof than the one checked)
    /// or a field beyond the proof's own is refused.
    pub fn parse(text: &[u8]) -> Result<Proof, String> {
        let v: Value = strict_json(text).map_err(|e| format!("not JSON: {e}"))?;
        let m = v.as_object().ok_or("a proof is a JSON object")?;
        let fields: &[&str] = if m.contains_key("leaf_index") {
            &["leaf_index", "tree_size", "leaf_data", "inclusion_path", "root", "event", "event_bytes"]
        } else {
            &["old_size", "new_size", "old_root", "new_root", "consistency_path"]
        };
        if let Some(extra) = m.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(format!("{extra:?} is no field of a proof from `cairn prove`"));
        }
        if m.contains_key("leaf_index") {
            Ok(Proof::Inclusion(InclusionProof {
                leaf_index: uint(m, "leaf_index")?,
                tree_size: uint(m, "tree_size")?,
                leaf_data: bytes(field(m, "leaf_data")?, "leaf_data")?,
                inclusion_path: hashes(m, "inclusion_path")?,
                root: hash(field(m, "root")?, "root")?,
                event: field(m, "event")?.clone(),
                event_bytes: bytes(field(m, "event_bytes")?, "event_bytes")?,
            }))
        } else if m.contains_key("old_size") {
            Ok(Proof::Consistency(ConsistencyProof {
                old_size: uint(m, "old_size")?,
                new_size: uint(m, "new_size")?,
                old_root: hash(field(m, "old_root")?, "old_root")?,
                new_root: hash(field(m, "new_root")?, "new_root")?,
                consistency_path: hashes(m, "consistency_path")?,
            }))
        } else {
            Err("neither an inclusion proof (leaf_index) nor a consistency proof (old_size)".into())
        }
    }
}

/// `text` as a JSON value, refusing an object that holds a key twice
/// (serde_json keeps the last).
fn strict_json(text: &[u8]) -> serde_json::Result<Value> {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    struct Strict;
    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Strict {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| E::custom("a number out of range"))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E: Error>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E: Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element_seed(Strict)? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(k) = map.next_key::<String>()? {
                if out.contains_key(&k) {
                    return Err(A::Error::custom(format!("the key {k:?} twice in one object")));
                }
                let v = map.next_value_seed(Strict)?;
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
    }
    let mut d = serde_json::Deserializer::from_slice(text);
    let v = Strict.deserialize(&mut d)?;
    d.end()?;
    Ok(v)
}

/// What a leaf's data says: a log entry's canonical bytes, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafData {
    /// The entry's seq.
    pub seq: u64,
    /// The event id.
    pub id: [u8; 32],
    /// `recorded_at`, as its canonical text.
    pub recorded_at: String,
    /// The capture's source, if any.
    pub annotation: Option<String>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end =
            end.ok_or_else(|| format!("the leaf data ends at byte {} inside a field", self.bytes.len()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn str(&mut self) -> Result<String, String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "a string length is too large".to_string())?;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("a string before byte {} is not UTF-8", self.at))
    }
}

/// Decodes a leaf's data (docs/format.md, "Log entries and the chain").
pub fn parse_leaf_data(bytes: &[u8]) -> Result<LeafData, String> {
    let mut r = Reader { bytes, at: 0 };
    let tag = r.str()?;
    if tag != tags::ENTRY {
        return Err(format!("the leaf data's tag is {tag:?}, not {:?}", tags::ENTRY));
    }
    let seq = r.u64()?;
    let id: [u8; 32] = r.take(32)?.try_into().unwrap_or([0; 32]);
    let recorded_at = r.str()?;
    let annotation = match r.take(1)? {
        [0] => None,
        [1] => Some(r.str()?),
        _ => return Err("the leaf data's annotation flag is neither 0 nor 1".into()),
    };
    if r.at != bytes.len() {
        return Err(format!("the leaf data has {} bytes after the entry", bytes.len() - r.at));
    }
    Ok(LeafData { seq, id, recorded_at, annotation })
}

impl<'a> Reader<'a> {
    fn id(&mut self) -> Result<[u8; 32], String> {
        Ok(self.take(32)?.try_into().unwrap_or([0; 32]))
    }
    fn flag(&mut self) -> Result<bool, String> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(format!("a flag before byte {} is neither 0 nor 1", self.at)),
        }
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<Option<T>, String> {
        if self.flag()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }
    fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        let n = self.u64()?;
        // Every element takes at least one byte: a count past what is
        // left is refused before anything is allocated for it.
        if n > (self.bytes.len() - self.at) as u64 {
            return Err(format!("a list of {n} elements is longer than the bytes left"));
        }
        (0..n).map(|_| f(self)).collect()
    }
    fn time(&mut self) -> Result<Timestamp, String> {
        let text = self.str()?;
        Timestamp::parse_canonical(&text).ok_or_else(|| format!("{text:?} is not a canonical time"))
    }
    fn item(&mut self) -> Result<CaptureItem, String> {
        Ok(CaptureItem {
            id: EventId(self.id()?),
            parent: self.opt(|r| r.id().map(EventId))?,
            possibly_truncated: self.flag()?,
        })
    }
}

fn gap_of(code: &str) -> Result<Gap, String> {
    Gap::ALL.into_iter().find(|g| g.code() == code).ok_or_else(|| format!("unknown capture gap {code:?}"))
}

/// Decodes an event's canonical identity bytes (docs/format.md, "Event
/// ids"): the inverse of [`Event::identity_bytes`], which must give the
/// same bytes back. A capture's `source` is not in them; it is `source`.
pub fn event_of_bytes(bytes: &[u8], source: Option<&str>) -> Result<Event, String> {
    let mut r = Reader { bytes, at: 0 };
    let tag = r.str()?;
    let event = match tag.as_str() {
        tags::COMMENT => Event::Comment(Comment {
            article: ArticleKey(r.str()?),
            author: r.opt(Reader::str)?,
            posted_at: r.opt(Reader::time)?,
            body: r.str()?,
        }),
        tags::ARTICLE => Event::Article(Box::new(Article {
            key: ArticleKey(r.str()?),
            url: r.opt(Reader::str)?,
            title: r.opt(Reader::str)?,
            published: r.opt(Reader::time)?,
            byline: r.opt(Reader::str)?,
            body: r.list(Reader::str)?,
        })),
        tags::CAPTURE | tags::CAPTURE_V1 => {
            let blob = BlobId(r.id()?);
            let fetched_at = r.opt(Reader::time)?;
            let source_url = r.opt(Reader::str)?;
            let tz = r.opt(Reader::str)?;
            let format = r.str()?;
            let parser_version = r.u64()?;
            let declared_comments = r.opt(Reader::u64)?;
            let articles = r.list(|r| {
                Ok(CapturedArticle {
                    key: ArticleKey(r.str()?),
                    article: r.opt(Reader::item)?,
                    comments: r.list(Reader::item)?,
                })
            })?;
            let gaps = match tag.as_str() {
                tags::CAPTURE => Some(r.list(|r| gap_of(&r.str()?))?),
                _ => None,
            };
            let source = source.ok_or("a capture's entry has no source")?.to_string();
            Event::Capture(Box::new(Capture {
                blob,
                source,
                source_url,
                tz,
                fetched_at,
                format,
                parser_version,
                declared_comments,
                articles,
                gaps,
            }))
        }
        tags::MERGE => {
            let kind = match r.str()?.as_str() {
                "comment" => MergeKind::Comment,
                "article" => MergeKind::Article,
                other => return Err(format!("unknown merge kind {other:?}")),
            };
            let keep = EventId(r.id()?);
            let fold = r.list(|r| r.id().map(EventId))?;
            Event::Merge(Merge { kind, keep, fold, reason: r.str()? })
        }
        other => return Err(format!("unknown event tag {other:?}")),
    };
    if r.at != bytes.len() {
        return Err(format!("the event bytes have {} bytes after the event", bytes.len() - r.at));
    }
    if event.identity_bytes() != bytes {
        return Err("the event bytes are not in canonical form".into());
    }
    if !matches!(event, Event::Capture(_)) && source.is_some() {
        return Err("the leaf data has an annotation, which only a capture's entry has".into());
    }
    Ok(event)
}

/// The `event` a proof carries for an entry: the entry as `show --json`
/// prints it, without `head` (the chain head after the entry, which the
/// proof does not cover).
pub fn proof_event_json(entry: &LogEntry) -> Value {
    let mut v = crate::cli::output::entry_json(entry);
    if let Value::Object(m) = &mut v {
        m.remove("head");
    }
    v
}

/// Checks an inclusion proof against a checkpoint (already opened with its
/// key). The error says the first thing that fails.
pub fn check_inclusion(p: &InclusionProof, checkpoint: &Checkpoint) -> Result<LeafData, String> {
    if p.tree_size != checkpoint.size {
        return Err(format!(
            "the proof is for a tree of {} entries, the checkpoint for {}",
            p.tree_size, checkpoint.size
        ));
    }
    if p.root != checkpoint.root {
        return Err("the proof's root is not the checkpoint's root".into());
    }
    merkle::check_inclusion(
        &merkle::leaf_hash(&p.leaf_data),
        p.leaf_index,
        p.tree_size,
        &p.inclusion_path,
        &p.root,
    )?;
    let leaf = parse_leaf_data(&p.leaf_data)?;
    if leaf.seq != p.leaf_index + 1 {
        return Err(format!(
            "the leaf data is the entry at seq {}, but leaf {} holds seq {}",
            leaf.seq,
            p.leaf_index,
            p.leaf_index + 1
        ));
    }
    if *blake3::hash(&p.event_bytes).as_bytes() != leaf.id {
        return Err(format!("BLAKE3(event_bytes) is not the id {} in the leaf data", to_hex(&leaf.id)));
    }
    // The event as cairn prints it, rebuilt from the proven bytes alone:
    // the proof's `event` must be exactly that, field for field (no field
    // added, none changed, derived ones such as `complete` included).
    let event = event_of_bytes(&p.event_bytes, leaf.annotation.as_deref())?;
    let recorded_at = Timestamp::parse_canonical(&leaf.recorded_at)
        .ok_or_else(|| format!("the leaf data's time {:?} is not canonical", leaf.recorded_at))?;
    let entry =
        LogEntry { seq: Seq(leaf.seq), id: EventId(leaf.id), recorded_at, event, head: ChainHash::GENESIS };
    if entry.leaf_data() != p.leaf_data {
        return Err("the leaf data is not in canonical form".into());
    }
    if proof_event_json(&entry) != p.event {
        return Err("the event's fields are not the ones event_bytes and the leaf data encode".into());
    }
    Ok(leaf)
}

/// Checks a consistency proof against the newer checkpoint and, when
/// given, the older one.
pub fn check_consistency(
    p: &ConsistencyProof,
    new: &Checkpoint,
    old: Option<&Checkpoint>,
) -> Result<(), String> {
    if p.new_size != new.size || p.new_root != new.root {
        return Err(format!(
            "the proof's new tree ({} entries) is not the checkpoint's ({} entries{})",
            p.new_size,
            new.size,
            if p.new_size == new.size { ", another root" } else { "" }
        ));
    }
    if let Some(old) = old {
        if p.old_size != old.size || p.old_root != old.root {
            return Err(format!(
                "the proof's old tree ({} entries) is not the old checkpoint's ({} entries{})",
                p.old_size,
                old.size,
                if p.old_size == old.size { ", another root" } else { "" }
            ));
        }
        if old.origin != new.origin {
            return Err(format!("the checkpoints are of two logs: {:?} and {:?}", old.origin, new.origin));
        }
    }
    merkle::check_consistency(p.old_size, p.new_size, &p.old_root, &p.new_root, &p.consistency_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{ingest_bytes, IngestOptions, IngestReport};
    use crate::store::Archive;

    fn sample() -> Archive {
        let mut archive = Archive::in_memory();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        for f in ["tribune-2012-03-28-us-generals-kayani.txt", "kayani-2012-03-28.jsonl"] {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            ingest_bytes(&mut archive, f, &bytes, &IngestOptions::default(), &mut IngestReport::default())
                .unwrap();
        }
        let found = crate::dedupe::find_clusters(&archive).unwrap();
        crate::dedupe::apply(&mut archive, &found.clusters).unwrap();
        archive
    }

    /// The root made on two threads (the tree split at RFC 9162's points)
    /// is the root made on one, and the stored tree's, at every size.
    #[test]
    fn the_root_from_the_log_on_two_threads_is_the_same_root() {
        let archive = sample();
        let n = archive.head().seq.0;
        assert!(n >= 16, "{n}");
        for size in 0..=n {
            let one = archive.tree_root_from_log_with(size, u64::MAX).unwrap();
            assert_eq!(archive.tree_root_from_log_with(size, 1).unwrap(), one, "size {size}");
            assert_eq!(archive.tree_root(size).unwrap(), one, "size {size}");
        }
        assert!(archive.tree_root_from_log_with(n + 1, 1).is_err());
    }

    #[test]
    fn every_event_decodes_from_its_bytes_and_every_proof_checks() {
        let archive = sample();
        let n = archive.head().seq.0;
        let root = archive.tree_root(n).unwrap();
        assert_eq!(root, archive.tree_root_from_log(n).unwrap());
        let cp = Checkpoint { origin: "test".into(), size: n, root };
        let mut kinds = std::collections::BTreeSet::new();
        for e in archive.entries_from(Seq(1)).unwrap() {
            let e = e.unwrap();
            kinds.insert(e.event.kind());
            let bytes = e.event.identity_bytes();
            assert_eq!(event_of_bytes(&bytes, e.event.annotation()).unwrap(), e.event);
            let p = InclusionProof {
                leaf_index: e.seq.0 - 1,
                tree_size: n,
                leaf_data: e.leaf_data(),
                inclusion_path: archive.inclusion_proof(e.seq, n).unwrap(),
                root,
                event: proof_event_json(&e),
                event_bytes: bytes,
            };
            let parsed = Proof::parse(p.to_json().to_string().as_bytes()).unwrap();
            assert_eq!(parsed, Proof::Inclusion(p.clone()));
            check_inclusion(&p, &cp).unwrap();
            // Cut or extended bytes never decode.
            assert!(event_of_bytes(&p.event_bytes[..p.event_bytes.len() - 1], e.event.annotation()).is_err());
            let mut longer = p.event_bytes.clone();
            longer.push(0);
            assert!(event_of_bytes(&longer, e.event.annotation()).is_err());
        }
        assert_eq!(kinds.len(), 4, "articles, comments, captures and a merge: {kinds:?}");
    }

    /// A proof whose JSON holds a key twice (at the top, or in its event:
    /// a reader keeping the first sees other values than the ones
    /// checked) or a field of its own is refused; the same proof written
    /// plainly is read.
    #[test]
    fn proofs_with_a_key_twice_or_a_field_added_are_refused() {
        let archive = sample();
        let n = archive.head().seq.0;
        let e = archive.entries_from(Seq(2)).unwrap().next().unwrap().unwrap();
        let p = InclusionProof {
            leaf_index: e.seq.0 - 1,
            tree_size: n,
            leaf_data: e.leaf_data(),
            inclusion_path: archive.inclusion_proof(e.seq, n).unwrap(),
            root: archive.tree_root(n).unwrap(),
            event: proof_event_json(&e),
            event_bytes: e.event.identity_bytes(),
        };
        let text = p.to_json().to_string();
        assert_eq!(Proof::parse(text.as_bytes()).unwrap(), Proof::Inclusion(p.clone()));
        let body = format!("\"body\":{}", serde_json::to_string(&p.event["body"]).unwrap());
        assert!(text.contains(&body), "{text}");
        let cases = [
            text.replacen(&body, &format!("\"body\":\"I love the army\",{body}"), 1),
            text.replacen("\"tree_size\"", &format!("\"tree_size\":{},\"tree_size\"", n + 1), 1),
            text.replacen("{", "{\"note\":\"trust me\",", 1),
        ];
        for (case, want) in cases.iter().zip(["twice", "twice", "no field"]) {
            let err = Proof::parse(case.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{case}: {err}");
        }
        let consistency = ConsistencyProof {
            old_size: 1,
            new_size: n,
            old_root: archive.tree_root(1).unwrap(),
            new_root: archive.tree_root(n).unwrap(),
            consistency_path: archive.consistency_proof(1, n).unwrap(),
        };
        let text = consistency.to_json().to_string();
        assert_eq!(Proof::parse(text.as_bytes()).unwrap(), Proof::Consistency(consistency));
        let err = Proof::parse(text.replacen("{", "{\"leaf_data\":\"00\",", 1).as_bytes()).unwrap_err();
        assert!(err.contains("no field"), "{err}");
    }
}
