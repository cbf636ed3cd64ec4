//! Lists of the threads view that grow with every capture of a page (an
//! article's change records, its thread state's captures), kept as full
//! chunks sealed under `PREFIX KEY \0 N` (N from 0, big-endian u32) behind
//! a value holding the latest items: a capture that comes last reads and
//! writes only those ([`super::changes`], [`super::threads`]).

use crate::error::{Error, Result};
use crate::model::ArticleKey;
use crate::views::StateTx;

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
    for (i, chunk) in items.chunks(size).enumerate() {
        tx.put_packed(key(prefix, article.as_str().as_bytes(), first + i as u32), &chunk)?;
    }
    Ok(())
}

/// Removes chunks `range` of the article's list under `prefix`.
pub(super) fn delete(tx: &mut StateTx<'_>, prefix: &[u8], article: &ArticleKey, range: std::ops::Range<u32>) {
    for n in range {
        tx.delete(key(prefix, article.as_str().as_bytes(), n));
    }
}
