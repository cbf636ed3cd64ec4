//! Any bytes given to the tribune page parser: an error or a document,
//! never a panic.
#![no_main]

use cairn::ingest::{parse_document, Format, IngestOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = IngestOptions { format: Some(Format::Tribune), ..IngestOptions::default() };
    let _ = parse_document("fuzz", data, &opts);
});
