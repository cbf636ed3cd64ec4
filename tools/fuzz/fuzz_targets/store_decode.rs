//! Any bytes given to the store's value decoder: an error or a value, never
//! a panic.
#![no_main]

use cairn::model::LogEntry;
use cairn::store::{envelope, HeadState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = envelope::decode::<Vec<LogEntry>>(data, "fuzz");
    let _ = envelope::decode::<HeadState>(data, "fuzz");
});
