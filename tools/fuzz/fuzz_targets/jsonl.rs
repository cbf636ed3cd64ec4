//! Any bytes given to the JSON Lines parser (and to format detection): an
//! error or a document, never a panic.
#![no_main]

use cairn::ingest::{parse_document, Format, IngestOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_document("fuzz", data, &IngestOptions { format: Some(Format::Jsonl), ..IngestOptions::default() });
    let _ = parse_document("fuzz", data, &IngestOptions::default());
});
