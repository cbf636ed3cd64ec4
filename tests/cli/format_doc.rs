//! docs/format.md's worked example is true: the hex bytes it lists hash to
//! the id it states, and ingesting the fixture gives a comment with that id.

use crate::support::{jsonl_fixture, Env};
use std::path::Path;

fn worked_example() -> (Vec<u8>, String) {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/format.md")).unwrap();
    let block = doc.split("```hex\n").nth(1).expect("a ```hex block").split("```").next().unwrap();
    let hex: String = block.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().concat();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect();
    let id = doc.lines().find_map(|l| l.trim().strip_prefix("id: ")).expect("an `id:` line").to_string();
    (bytes, id)
}

#[test]
fn the_worked_example_recomputes() {
    let (bytes, id) = worked_example();
    assert_eq!(bytes.len(), 287);
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), id);

    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let shown = env.ok(&["show", &id, "--json"]).json();
    assert_eq!(shown["author"], "ahmad");
    assert_eq!(shown["posted_at"], "2012-03-28T13:02:00+05:00");
}
