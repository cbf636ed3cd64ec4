//! Lists that grow with the log, kept as full chunks sealed under
//! `PREFIX KEY \0 N` (N from 0, big-endian u32) behind a value holding the
//! latest items: a write reads and writes only those. The threads view's
//! lists grow with every capture of a page (an article's change records,
//! its thread state's captures: [`super::changes`], [`super::threads`]);
//! the append-only lists of [`StateTx::append`] (the authors view's
//! postings) are records of bytes, in chunks of [`LIST_CHUNK`].

use crate::error::{Error, Result};
use crate::model::ArticleKey;
use crate::store::{envelope, KvTree};
use crate::views::StateTx;
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// Records per sealed chunk of an append-only list ([`StateTx::append`]).
pub const LIST_CHUNK: usize = if cfg!(test) { 4 } else { 128 };

/// The value under an append-only list's key: how many full chunks are
/// sealed under `KEY \0 N`, and the records after them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Decode, Encode)]
pub struct ListTail {
    /// Full chunks sealed, each a `Vec<Vec<u8>>` of [`LIST_CHUNK`] records.
    pub sealed: u32,
    /// The records after them, fewer than [`LIST_CHUNK`].
    pub records: Vec<Vec<u8>>,
}

/// Calls `f` with every record of the append-only list under `key` in
/// `tree`, oldest first (none when there is no list), a chunk at a time.
/// `what` names the list in errors.
pub fn each_record(
    tree: &dyn KvTree,
    key: &[u8],
    what: &str,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let Some(tail) = tree.get(key)? else { return Ok(()) };
    let tail: ListTail = envelope::decode_native(&tail, what)?;
    for n in 0..tail.sealed {
        let chunk = tree
            .get(&self::key(key, b"", n))?
            .ok_or_else(|| Error::Corrupt(format!("{what}: chunk {n} is missing")))?;
        let records: Vec<Vec<u8>> = envelope::decode_native(&chunk, what)?;
        records.iter().try_for_each(|r| f(r))?;
    }
    tail.records.iter().try_for_each(|r| f(r))
}

/// The key of chunk `n` of the list under `prefix` of the article whose
/// key is `article`.
pub(super) fn key(prefix: &[u8], article: &[u8], n: u32) -> Vec<u8> {
    [prefix, article, b"\0", &n.to_be_bytes()].concat()
}

/// Chunks `0..count`, concatenated, each from `chunk`; one that is not
/// there is named by `missing(N)`.
pub(super) fn read<T>(
    count: u32,
    missing: impl Fn(u32) -> String,
    mut chunk: impl FnMut(u32) -> Result<Option<Vec<T>>>,
) -> Result<Vec<T>> {
    let mut all = Vec::new();
    for n in 0..count {
        all.extend(chunk(n)?.ok_or_else(|| Error::Corrupt(missing(n)))?);
    }
    Ok(all)
}

/// Seals `items`, whose length is a multiple of `size`, as chunks `first`
/// on of the article's list under `prefix`.
pub(super) fn write<T: bincode::Encode>(
    tx: &mut StateTx<'_>,
    prefix: &[u8],
    article: &ArticleKey,
    first: u32,
    items: &[T],
    size: usize,
) -> Result<()> {
    write_under(tx, prefix, article.as_str().as_bytes(), first, items, size)
}

/// [`write`] of the list whose chunks are under `prefix` `name`.
pub(super) fn write_under<T: bincode::Encode>(
    tx: &mut StateTx<'_>,
    prefix: &[u8],
    name: &[u8],
    first: u32,
    items: &[T],
    size: usize,
) -> Result<()> {
    for (i, chunk) in items.chunks(size).enumerate() {
        tx.put_packed(key(prefix, name, first + i as u32), &chunk)?;
    }
    Ok(())
}

/// Removes chunks `range` of the article's list under `prefix`.
pub(super) fn delete(tx: &mut StateTx<'_>, prefix: &[u8], article: &ArticleKey, range: std::ops::Range<u32>) {
    for n in range {
        tx.delete(key(prefix, article.as_str().as_bytes(), n));
    }
}
