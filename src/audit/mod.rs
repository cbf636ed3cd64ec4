//! Integrity audits: [`verify`](fn@verify) re-derives everything that can be
//! re-derived (ids, entry hashes, the chain, the index, references, blobs,
//! views) and reports every finding instead of stopping at the first.

pub mod verify;

pub use verify::{verify, Finding, VerifyOptions, VerifyReport};
