//! `cairn log`, `show`, `head` and `stats`.

use crate::support::{jsonl_fixture, Env};
use serde_json::{json, Value};

fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[test]
fn log_filters_and_pages() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let all = lines(&env.ok(&["log", "--json"]).stdout);
    assert_eq!(all.len(), 9);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    assert_eq!(all[0]["kind"], json!("article"));
    assert_eq!(all[8]["kind"], json!("capture"));
    let comments =
        lines(&env.ok(&["log", "--json", "--kind", "comment", "--from", "4", "--limit", "2"]).stdout);
    let got: Vec<u64> = comments.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(got, vec![4, 5]);
    let text = env.ok(&["log", "--limit", "2"]).stdout;
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().nth(1).unwrap().contains("comment"), "{text}");
    assert!(text.contains("ahmad 2012-03-28T13:02:00+05:00"), "{text}");
}

#[test]
fn show_finds_events_by_unique_prefix() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let all = lines(&env.ok(&["log", "--json"]).stdout);
    let ahmad = all.iter().find(|e| e["author"] == json!("ahmad")).unwrap();
    let id = ahmad["id"].as_str().unwrap();
    let shown = env.ok(&["show", &id[..8], "--json"]).json();
    assert_eq!(&shown, ahmad);
    let text = env.ok(&["show", &id[..8].to_uppercase()]).stdout;
    assert!(text.starts_with(&format!("comment {id}\n")), "{text}");
    assert!(text.contains("author:       ahmad"), "{text}");

    // A one-digit prefix shared by two ids is ambiguous and lists them.
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let shared = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|d| ids.iter().filter(|i| i.starts_with(d.as_str())).count() >= 2);
    if let Some(d) = shared {
        let run = env.run(&["show", &d]).expect_code(2);
        assert!(run.stderr.contains("is ambiguous"), "{run}");
        for i in ids.iter().filter(|i| i.starts_with(d.as_str())) {
            assert!(run.stderr.contains(i), "candidate {i} listed\n{run}");
        }
    }
    let unused = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|p| !ids.iter().any(|i| i.starts_with(p.as_str())))
        .unwrap();
    let run = env.run(&["show", &unused]).expect_code(2);
    assert!(run.stderr.contains("no event matches"), "{run}");
    env.run(&["show", "xyz"]).expect_code(2);
}

#[test]
fn head_and_stats() {
    let env = Env::new();
    let run = env.run(&["head"]).expect_code(2);
    assert!(run.stderr.contains("no archive at"), "{run}");
    assert!(!env.archive.exists(), "reading commands create nothing");
    env.ok(&["ingest", &jsonl_fixture()]);
    let head = env.head();
    let (seq, hash) = head.split_once(' ').unwrap();
    assert_eq!(seq, "9");
    assert_eq!(hash.len(), 64);
    assert_eq!(env.ok(&["head", "--json"]).json(), json!({"seq": 9, "hash": hash}));
    let stats = env.ok(&["stats", "--json"]).json();
    assert_eq!(stats["entries"], json!(9));
    assert_eq!(stats["articles"], json!(1));
    assert_eq!(stats["comments"], json!(7));
    assert_eq!(stats["captures"], json!(1));
    assert_eq!(stats["blobs"], json!(1));
    assert!(stats["disk_bytes"].as_u64().unwrap() > stats["blob_bytes"].as_u64().unwrap());
    assert!(env.ok(&["stats"]).stdout.contains("comments:  7"));
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let env = Env::new();
    // Enough entries that `log` is still writing when `head -n 1` exits.
    let mut doc = String::new();
    for i in 0..3000 {
        doc.push_str(&format!(
            "{{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"body\":\"comment {i}\"}}\n"
        ));
    }
    let path = env.write("many.jsonl", doc);
    env.ok(&["ingest", &path]);
    let script = format!(
        "'{}' --archive '{}' log | head -n 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_cairn"),
        env.archive.display()
    );
    let out = std::process::Command::new("bash").arg("-c").arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.trim(), "0", "cairn exits 0 on a closed pipe; stderr: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{stderr}");
}
