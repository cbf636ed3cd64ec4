//! Proofs as JSON (`cairn prove`) and their offline checks (`cairn
//! verify-proof`): nothing here reads an archive.
//!
//! An inclusion proof carries the leaf's data (the log entry's canonical
//! bytes), the RFC 9162 inclusion path, the event as `show --json` prints
//! it and the event's canonical identity bytes; the check ties them
//! together: the path leads from the leaf to the root, the leaf data names
//! the seq `leaf_index + 1` and the id `BLAKE3(event_bytes)`, and the event's
//! fields encode to exactly `event_bytes`.

use super::merkle::{self, Hash};
use super::note::Checkpoint;
use crate::model::event::tags;
use crate::model::ids::{parse_hex32, to_hex};
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
    /// The entry as `show --json` prints it.
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
    pub fn parse(text: &[u8]) -> Result<Proof, String> {
        let v: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        let m = v.as_object().ok_or("a proof is a JSON object")?;
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

/// The canonical identity bytes of an event given as `show --json` prints
/// it (docs/format.md, "Event ids"; tools/recompute.py does the same).
pub fn identity_of_json(e: &Value) -> Result<Vec<u8>, String> {
    use crate::model::canonical::Encoder;
    let m = e.as_object().ok_or("the event is not a JSON object")?;
    let s = |name: &str| -> Result<&str, String> {
        field(m, name)?.as_str().ok_or_else(|| format!("the event's {name:?} is not a string"))
    };
    let opt_s = |name: &str| -> Result<Option<&str>, String> {
        match field(m, name)? {
            Value::Null => Ok(None),
            v => v.as_str().map(Some).ok_or_else(|| format!("the event's {name:?} is not a string or null")),
        }
    };
    let list = |name: &str| -> Result<&Vec<Value>, String> {
        field(m, name)?.as_array().ok_or_else(|| format!("the event's {name:?} is not a list"))
    };
    let id = |v: &Value, name: &str| -> Result<[u8; 32], String> {
        v.as_str()
            .and_then(parse_hex32)
            .ok_or_else(|| format!("the event's {name:?} is not a 32-byte hex id"))
    };
    let kind = s("kind")?;
    let enc = match kind {
        "comment" => {
            let mut enc = Encoder::with_tag(tags::COMMENT);
            enc.str(s("article")?).opt_str(opt_s("author")?).opt_str(opt_s("posted_at")?).str(s("body")?);
            enc
        }
        "article" => {
            let mut enc = Encoder::with_tag(tags::ARTICLE);
            enc.str(s("key")?)
                .opt_str(opt_s("url")?)
                .opt_str(opt_s("title")?)
                .opt_str(opt_s("published")?)
                .opt_str(opt_s("byline")?);
            let body = list("body")?;
            enc.u64(body.len() as u64);
            for p in body {
                enc.str(p.as_str().ok_or("the article's body is not a list of strings")?);
            }
            enc
        }
        "capture" => {
            let gaps = match field(m, "gaps")? {
                Value::Null => None,
                v => Some(v.as_array().ok_or("the capture's \"gaps\" is not a list")?),
            };
            let mut enc = Encoder::with_tag(if gaps.is_some() { tags::CAPTURE } else { tags::CAPTURE_V1 });
            enc.id(&id(field(m, "blob")?, "blob")?)
                .opt_str(opt_s("fetched_at")?)
                .opt_str(opt_s("source_url")?)
                .opt_str(opt_s("tz")?)
                .str(s("format")?)
                .u64(uint(m, "parser_version")?);
            match field(m, "declared_comments")? {
                Value::Null => enc.bool(false),
                v => enc.bool(true).u64(v.as_u64().ok_or("\"declared_comments\" is not an integer")?),
            };
            let item = |enc: &mut Encoder, v: &Value| -> Result<(), String> {
                let o = v.as_object().ok_or("a capture item is not an object")?;
                enc.id(&id(field(o, "id")?, "id")?);
                match field(o, "parent")? {
                    Value::Null => enc.bool(false),
                    p => enc.bool(true).id(&id(p, "parent")?),
                };
                enc.bool(
                    field(o, "possibly_truncated")?
                        .as_bool()
                        .ok_or("\"possibly_truncated\" is not a boolean")?,
                );
                Ok(())
            };
            let articles = list("articles")?;
            enc.u64(articles.len() as u64);
            for a in articles {
                let o = a.as_object().ok_or("a capture's article is not an object")?;
                enc.str(field(o, "key")?.as_str().ok_or("an article key is not a string")?);
                match field(o, "article")? {
                    Value::Null => {
                        enc.bool(false);
                    }
                    v => {
                        enc.bool(true);
                        item(&mut enc, v)?;
                    }
                }
                let comments = field(o, "comments")?.as_array().ok_or("\"comments\" is not a list")?;
                enc.u64(comments.len() as u64);
                for c in comments {
                    item(&mut enc, c)?;
                }
            }
            if let Some(gaps) = gaps {
                enc.u64(gaps.len() as u64);
                for g in gaps {
                    enc.str(g.as_str().ok_or("a gap is not a string")?);
                }
            }
            enc
        }
        "merge" => {
            let mut enc = Encoder::with_tag(tags::MERGE);
            enc.str(s("merge_kind")?).id(&id(field(m, "keep")?, "keep")?);
            let fold = list("fold")?;
            enc.u64(fold.len() as u64);
            for f in fold {
                enc.id(&id(f, "fold")?);
            }
            enc.str(s("reason")?);
            enc
        }
        other => return Err(format!("unknown event kind {other:?}")),
    };
    Ok(enc.into_bytes())
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
    let e = p.event.as_object().ok_or("the event is not a JSON object")?;
    let same = |name: &str, want: &str| e.get(name).and_then(Value::as_str) == Some(want);
    if !same("id", &to_hex(&leaf.id)) || e.get("seq").and_then(Value::as_u64) != Some(leaf.seq) {
        return Err("the event's id or seq is not the leaf data's".into());
    }
    if !same("recorded_at", &leaf.recorded_at) {
        return Err("the event's recorded_at is not the leaf data's".into());
    }
    let source = e.get("source").and_then(Value::as_str);
    if leaf.annotation.as_deref() != source {
        return Err("the event's source is not the leaf data's annotation".into());
    }
    if identity_of_json(&p.event)? != p.event_bytes {
        return Err("the event's fields do not encode to event_bytes".into());
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
