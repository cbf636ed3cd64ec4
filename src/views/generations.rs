//! Where each view's state lives: a tree per view and generation
//! (`threads.N`), the `pointers` tree naming each view's current generation
//! and whether `replay --until` pinned it, and the cursor each tree keeps.

use crate::error::{Error, Result};
use crate::model::{Seq, Timestamp};
use crate::store::envelope;
use crate::store::{Archive, KvTree};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The key of a view's cursor in its own tree (sorts before every state key).
pub const CURSOR_KEY: &[u8] = b"\0cursor";
/// The tree that says which tree holds each view.
pub(super) const POINTERS: &str = "pointers";
/// A view's cursor: the last seq applied, under which version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The view version the state was built with.
    pub version: u32,
    /// The last seq applied (0: none).
    pub seq: Seq,
}

/// Which tree holds a view, and whether it is pinned to a past point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pointer {
    pub(super) generation: u64,
    pub(super) pinned_until: Option<Seq>,
    /// Pinned to what was observed up to this time (`replay --until TIME`).
    pub(super) observed_until: Option<Timestamp>,
}

/// The pointer layout before `observed_until`.
#[derive(Deserialize)]
struct PointerV1 {
    generation: u64,
    pinned_until: Option<Seq>,
}

pub(super) fn tree_name(view: &str, generation: u64) -> String {
    format!("{view}.{generation}")
}

pub(super) fn load_pointer(archive: &Archive, view: &str) -> Result<Pointer> {
    let pointers = archive.store().tree(POINTERS)?;
    match pointers.get(view.as_bytes())? {
        None => Ok(Pointer::default()),
        Some(v) => envelope::decode(&v, &format!("view pointer {view}")).or_else(|e| {
            envelope::decode::<PointerV1>(&v, "")
                .map(|p| Pointer {
                    generation: p.generation,
                    pinned_until: p.pinned_until,
                    observed_until: None,
                })
                .map_err(|_| e)
        }),
    }
}

pub(super) fn save_pointer(archive: &Archive, view: &str, pointer: &Pointer) -> Result<()> {
    let pointers = archive.store().tree(POINTERS)?;
    pointers.apply(vec![(view.as_bytes().to_vec(), Some(envelope::encode(pointer)?))])
}

/// Removes view `view`'s pointer, if it has one (a retired view).
pub(super) fn remove_pointer(archive: &Archive, view: &str) -> Result<()> {
    let pointers = archive.store().tree(POINTERS)?;
    if pointers.get(view.as_bytes())?.is_some() {
        pointers.apply(vec![(view.as_bytes().to_vec(), None)])?;
    }
    Ok(())
}

/// Reads a view's cursor from its tree.
pub fn read_cursor(tree: &dyn KvTree) -> Result<Cursor> {
    match tree.get(CURSOR_KEY)? {
        None => Ok(Cursor::default()),
        Some(v) => envelope::decode(&v, "view cursor"),
    }
}

/// The current tree of view `name`: the stored one, or the one computed
/// for this query when the archive handle has views `--at` a past point.
pub fn view_tree(archive: &Archive, name: &str) -> Result<Arc<dyn KvTree>> {
    if let Some(at) = archive.views_at() {
        // A view the query did not compute is never read from the present.
        return at
            .tree(name)
            .ok_or_else(|| Error::Internal(format!("view {name} was not computed for --at")));
    }
    let pointer = load_pointer(archive, name)?;
    archive.store().tree(&tree_name(name, pointer.generation))
}

/// Where the views stand, for the `as_of` field of view commands: the seq
/// they reflect and whether they are pinned in the past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsOf {
    /// The last seq the view reflects.
    pub seq: Seq,
    /// Pinned by `replay --until`.
    pub pinned: bool,
    /// Pinned by `replay --until TIME` to what was observed up to then
    /// (or, with `computed`, `--at TIME`).
    pub observed_until: Option<Timestamp>,
    /// Computed for this query (`--at`) instead of read from the stored
    /// views.
    pub computed: bool,
}

/// The [`AsOf`] of view `name`.
pub fn as_of(archive: &Archive, name: &str) -> Result<AsOf> {
    if let Some(at) = archive.views_at() {
        return Ok(AsOf { seq: at.seq, pinned: false, observed_until: at.observed_until, computed: true });
    }
    let pointer = load_pointer(archive, name)?;
    let tree = archive.store().tree(&tree_name(name, pointer.generation))?;
    Ok(AsOf {
        seq: read_cursor(tree.as_ref())?.seq,
        pinned: pointer.pinned_until.is_some(),
        observed_until: pointer.observed_until,
        computed: false,
    })
}
