//! Projections: views rebuilt from the log.
//!
//! A [`Projection`] has a name, a version and an idempotent `apply`. Each
//! keeps its state in a key-value tree of its own, together with a cursor
//! (the last seq applied and the view version) written in the same atomic
//! batch as the state. [`catch_up`] brings every view up to the head of the
//! log (commands that write call it before they report success; commands
//! that read call it before they read); a view with no state to resume
//! from (its version changed, its tree lost) is rebuilt from the start as
//! [`replay`] rebuilds it. [`replay`] rebuilds views into fresh trees and
//! swaps them in with one atomic write, so a crash mid-replay leaves the old
//! views readable; with `until` it rebuilds them as of an earlier point and
//! pins them there (time travel) until a plain replay.
//!
//! The machinery is in three files: `tx.rs` ([`StateTx`], a view's pending
//! writes and its access to the log), `generations.rs` (which tree holds
//! each view, pointers and cursors) and `runner.rs` (catch-up, replay, the
//! ingest's in-memory application, audits). docs/views.md shows how a
//! library user writes a projection.

pub mod authors;
pub mod changes;
mod chunks;
mod generations;
mod runner;
pub mod thread_state;
pub mod threads;
mod tx;

pub use generations::{as_of, read_cursor, view_tree, AsOf, Cursor, CURSOR_KEY};
pub use runner::*;
pub use tx::StateTx;

use crate::error::Result;
use crate::model::LogEntry;

/// A view of the log, rebuilt by applying entries in order.
pub trait Projection: Send + Sync {
    /// A short, stable name (`threads`); names its tree.
    fn name(&self) -> &'static str;
    /// Bump when the state layout or meaning changes: the view is rebuilt.
    fn version(&self) -> u32;
    /// Applies one entry. Must be idempotent: applying an entry twice leaves
    /// the state as applying it once.
    fn apply(&self, entry: &LogEntry, state: &mut StateTx<'_>) -> Result<()>;

    /// Does the work `apply` put off ([`StateTx::defer`]): called before
    /// each commit of the state, and where a commit of the log ends when
    /// something was put off (so what is put off never spans two of the
    /// log's commits, however the views were caught up). The default has
    /// none.
    fn settle(&self, _state: &mut StateTx<'_>) -> Result<()> {
        Ok(())
    }
}

/// The built-in views: threads (which also keeps the change records) and
/// authors.
pub fn builtin() -> Vec<Box<dyn Projection>> {
    vec![Box::new(threads::ThreadsView), Box::new(authors::AuthorsView)]
}

#[cfg(test)]
pub(crate) mod tests;
