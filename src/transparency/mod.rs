//! Transparency: the archive's log as an RFC 9162 Merkle tree (SHA-256
//! over each log entry's canonical bytes), C2SP checkpoints and signed
//! notes (Ed25519), and inclusion and consistency proofs that anyone can
//! check without the archive (docs/transparency.md).
//!
//! - [`merkle`]: the tree's hashes, proofs and their checks;
//! - [`file`](mod@file): the stored hashes (`tree/hashes`), derived from the log;
//! - [`note`]: keys, signed notes and checkpoints;
//! - [`proof`]: proofs as JSON and their offline checks.

pub mod file;
pub mod merkle;
pub mod note;
pub mod proof;
