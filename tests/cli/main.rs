//! Integration tests: each runs the real `cairn` binary in a fresh temporary
//! directory. One test binary with a module per area keeps link time down.

mod support;

mod at;
mod compat;
mod concurrency;
mod conventions;
mod crash;
mod dedupe;
mod diff;
mod format_doc;
mod full_disk;
mod generated;
mod ingest;
mod limits;
mod log_show;
mod portable;
mod progress;
mod recovery;
mod reparse;
mod schemas;
mod search;
mod site;
mod tables;
mod tamper;
mod transparency;
mod tribune;
mod truth;
mod views;
