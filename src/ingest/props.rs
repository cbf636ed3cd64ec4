//! Bad input everywhere: arbitrary bytes and near-valid pages fed to every
//! parser, and arbitrary bytes to the store decoder, give errors, never a
//! panic.

use crate::ingest::{parse_document, Format, IngestOptions};
use crate::model::LogEntry;
use crate::store::envelope;
use crate::store::HeadState;
use proptest::prelude::*;

const PAGE: &str = include_str!("../../fixtures/tribune-2012-03-28-us-generals-kayani.txt");
const JSONL: &str = include_str!("../../fixtures/kayani-2012-03-28.jsonl");

const TOKENS: &[&str] = &[
    "  • ",
    "    Mar 28, 2012 - 1:02PM",
    "  • Mar 28, 2012 - 1:08PM",
    "\n",
    "\n\n\n",
    "\r\n",
    "Reader Comments (",
    "Reader Comments (99)",
    "Published: ",
    "Published: March 28, 2012",
    "Recommend",
    "More in Pakistan",
    "@",
    "•",
    "    ",
    "{\"type\":\"comment\"",
    "\"parent\":\"c1\"",
    "\u{301}",
    "\u{0}",
    "\"",
    "}",
];

fn all_formats(bytes: &[u8]) {
    for format in [None, Some(Format::Jsonl), Some(Format::Tribune)] {
        let opts = IngestOptions { format, ..IngestOptions::default() };
        let _ = parse_document("prop", bytes, &opts);
    }
}

/// An edit to a valid page: cut a range, insert a token, or repeat a range.
fn edits() -> impl Strategy<Value = Vec<(u8, usize, usize, usize)>> {
    proptest::collection::vec((0u8..3, any::<usize>(), 0usize..200, 0usize..TOKENS.len()), 0..12)
}

fn apply(base: &str, edits: &[(u8, usize, usize, usize)]) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for &(kind, at, len, token) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        let end = (at + len).min(bytes.len());
        match kind {
            0 => {
                bytes.drain(at..end);
            }
            1 => {
                let t = TOKENS[token].as_bytes();
                bytes.splice(at..at, t.iter().copied());
            }
            _ => {
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    bytes
}

/// The events of a fixture document as log entries, with a merge and
/// comments carrying each timestamp form (a day, a local time, a zoned
/// time) and none.
fn sample_entries(bytes: &[u8]) -> Result<Vec<LogEntry>, TestCaseError> {
    use crate::model::{ArticleKey, Comment, Event, Merge, MergeKind, Timestamp};
    let opts = IngestOptions::default();
    let doc = parse_document("p", bytes, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut events = doc.events;
    let key = ArticleKey("https://example.com/a".into());
    for t in ["2012-03-28", "2012-03-28T13:02:00", "2012-03-28T13:02:00.5-05:30"] {
        let posted = Timestamp::parse_canonical(t);
        prop_assert!(posted.is_some(), "{}", t);
        events.push(Event::Comment(Comment::new(key.clone(), Some("A"), posted, "b")));
    }
    events.push(Event::Comment(Comment::new(key, None, None, "")));
    let (a, b) = (events[0].id(), events[1].id());
    events.push(Event::Merge(Merge::new(MergeKind::Comment, a, vec![b, a], "same text")));
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(i, event)| LogEntry {
            seq: crate::model::Seq(i as u64 + 1),
            id: event.id(),
            recorded_at: Timestamp::from_unix(1_333_000_000 + i as i64).unwrap_or(Timestamp::now_utc()),
            event,
            head: crate::model::ChainHash([i as u8; 32]),
        })
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        all_formats(&bytes);
    }

    #[test]
    fn near_valid_pages_never_panic(edits in edits()) {
        all_formats(&apply(PAGE, &edits));
    }

    #[test]
    fn near_valid_jsonl_never_panics(edits in edits()) {
        all_formats(&apply(JSONL, &edits));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_store_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = envelope::decode::<Vec<LogEntry>>(&bytes, "prop");
        let _ = envelope::decode::<HeadState>(&bytes, "prop");
        // Past the check bytes: arbitrary contents reach bincode itself.
        let sealed = envelope::seal_raw(&bytes);
        let _ = envelope::decode::<Vec<LogEntry>>(&sealed, "prop");
        let _ = envelope::decode::<HeadState>(&sealed, "prop");
    }

    /// Segments are read through bincode's own `Decode`
    /// (`envelope::decode_segment_entries`): on what serde's path writes, for entries of every
    /// kind and timestamp form, and on damaged bytes, the native reader gives
    /// exactly what serde's gives (the same entries, or an error from both).
    #[test]
    fn native_decode_reads_what_serde_wrote(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4), which in 0usize..2) {
        let entries = sample_entries(if which == 0 { JSONL.as_bytes() } else { PAGE.as_bytes() })?;
        let mut raw = bincode::serde::encode_to_vec(&entries, bincode::config::standard()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let flipped = !flips.is_empty();
        for (at, mask) in flips {
            let i = at % raw.len();
            raw[i] ^= mask;
        }
        let native = envelope::decode_segment_entries(&raw, "prop");
        let serde = envelope::decode::<Vec<LogEntry>>(&envelope::seal_raw(&raw), "prop");
        match (native, serde) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a, &b);
                if !flipped {
                    prop_assert_eq!(&a, &entries);
                }
            }
            (Err(_), Err(_)) => prop_assert!(flipped),
            (a, b) => prop_assert!(false, "native {:?} against serde {:?}", a.map(|v| v.len()), b.map(|v| v.len())),
        }
    }

    /// Segments are written through bincode's own `Encode`
    /// (`envelope::encode_segment`): byte for byte what serde's path
    /// writes, so the stored format did not change.
    #[test]
    fn native_encode_writes_what_serde_writes(which in 0usize..2, cut in 0usize..64) {
        let mut entries = sample_entries(if which == 0 { JSONL.as_bytes() } else { PAGE.as_bytes() })?;
        entries.truncate(entries.len().saturating_sub(cut % entries.len().max(1)));
        let serde = bincode::serde::encode_to_vec(&entries, bincode::config::standard()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let native = bincode::encode_to_vec(&entries, bincode::config::standard()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&native, &serde);
        let sealed = envelope::encode_segment(&entries).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(envelope::decode_segment(&sealed, "prop").map_err(|e| TestCaseError::fail(e.to_string()))?, entries);
    }

    #[test]
    fn damaged_stored_segments_never_panic(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4)) {
        let entries = sample_entries(JSONL.as_bytes())?;
        // Damaged bincode under a valid check: decoding must fail or give
        // some value, never panic or exhaust memory.
        let mut raw = bincode::serde::encode_to_vec(&entries, bincode::config::standard()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (at, mask) in flips {
            let i = at % raw.len();
            raw[i] ^= mask;
        }
        let _ = envelope::decode::<Vec<LogEntry>>(&envelope::seal_raw(&raw), "prop");
    }
}
