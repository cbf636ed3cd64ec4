//! Integrity audits: [`verify`](fn@verify) re-derives everything that can be
//! re-derived (ids, entry hashes, the chain, the index, references, blobs,
//! views) and reports every finding instead of stopping at the first.
//! `verify.rs` holds the report and runs the checks: `scan.rs` is the one
//! pass over the log with its per-entry checks, `checks.rs` the checks that
//! follow it; each check is a function returning its findings as data.

mod checks;
mod scan;
mod seen;
pub mod verify;

pub(crate) use scan::{a_kind, merge_folds};
pub use verify::{verify, Finding, VerifyOptions, VerifyReport};
