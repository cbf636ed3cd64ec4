//! cairn: an event-sourced, content-addressed archive of scraped news
//! comment sections.
//!
//! Every article version, comment version and capture becomes an [`Event`]
//! whose id is the BLAKE3 hash of a documented canonical encoding
//! (docs/format.md). Events are appended to a hash-chained, append-only log
//! kept in sled; the raw bytes of every capture are kept as
//! content-addressed blobs so that events can be re-derived later.
//!
//! ```
//! use cairn::ingest::{ingest_bytes, IngestOptions, IngestReport};
//! use cairn::store::Archive;
//!
//! let page = br#"{"type":"article","url":"https://example.com/a","title":"A"}
//! {"type":"comment","author":"ahmad","posted_at":"2012-03-28T13:02:00+05:00","body":"first"}
//! "#;
//! let mut archive = Archive::in_memory();
//! let opts = IngestOptions::default();
//! let mut report = IngestReport::default();
//! ingest_bytes(&mut archive, "page.jsonl", page, &opts, &mut report).unwrap();
//! assert_eq!(report.new.comments, 1);
//!
//! // The same page again appends nothing: ids are content addresses.
//! let head = *archive.head();
//! let mut again = IngestReport::default();
//! ingest_bytes(&mut archive, "page.jsonl", page, &opts, &mut again).unwrap();
//! assert_eq!(again.new.total(), 0);
//! assert_eq!(*archive.head(), head);
//! ```
//!
//! [`Event`]: model::Event

#![warn(missing_docs)]

pub mod audit;
pub mod cli;
pub mod dedupe;
pub mod diff;
pub mod error;
pub mod ingest;
pub mod model;
pub mod search;
pub mod site;
pub mod store;
pub mod tables;
pub mod transparency;
pub mod views;

pub use error::{Error, InputError, Result};
