//! Unit tests of the archive rules over the in-memory store.
