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

#[test]
fn tools_recompute_gives_the_head_from_log_json() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    env.ok(&["ingest", &crate::support::fixture(crate::views::SAMPLE).display().to_string()]);
    let head = env.head();
    let log = env.ok(&["log", "--json"]).stdout;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/recompute.py");
    let run = |input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .arg(&script)
            .args(["--head", &head])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input.as_bytes()).ok()?;
        child.wait_with_output().ok()
    };
    let has_blake3 = std::process::Command::new("python3")
        .args(["-c", "import blake3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_blake3 {
        eprintln!("SKIPPED tools/recompute.py: python3 with the blake3 package is missing");
        return;
    }
    let out = run(&log).expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), head);
    // An article body that is not its paragraphs is refused.
    let article = log.lines().find(|l| l.contains("\"kind\":\"article\"")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(article).unwrap();
    v["body"] = format!("{} (edited)", v["body"].as_str().unwrap()).into();
    let altered = log.replacen(article, &v.to_string(), 1);
    let out = run(&altered).expect("python3 runs");
    assert!(!out.status.success());
}
