//! `cairn export` / `cairn import`, and `--wait` on a busy archive.

use crate::support::{fixture, jsonl_fixture, Env};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn populated() -> Env {
    let env = Env::new();
    env.ok(&["ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    env.ok(&["ingest", &jsonl_fixture()]);
    env
}

#[test]
fn export_then_import_reproduces_the_head() {
    let env = populated();
    let head = env.head();
    let file = env.dir.path().join("backup.cairn");
    let run = env.ok(&["export", &file.display().to_string()]);
    assert!(run.stdout.contains(&format!("head {head}")), "{run}");

    let copy = Env::new();
    let run = copy.ok(&["import", &file.display().to_string()]);
    assert!(run.stdout.starts_with("imported 55 entries and 2 blobs"), "{run}");
    assert_eq!(copy.head(), head);
    copy.ok(&["verify"]);
    assert_eq!(copy.ok(&["articles", "--json"]).stdout, env.ok(&["articles", "--json"]).stdout);
    assert_eq!(copy.ok(&["log", "--json"]).stdout, env.ok(&["log", "--json"]).stdout);

    // Import needs an empty archive.
    let run = copy.run(&["import", &file.display().to_string()]).expect_code(2);
    assert!(run.stderr.contains("needs an empty archive"), "{run}");
}

#[test]
fn damaged_or_truncated_exports_are_refused_before_anything_is_written() {
    let env = populated();
    let file = env.dir.path().join("backup.cairn");
    env.ok(&["export", &file.display().to_string()]);
    let bytes = std::fs::read(&file).unwrap();
    let truncated = env.write("truncated.cairn", &bytes[..bytes.len() / 2]);
    let mut flipped = bytes.clone();
    let at = bytes.len() / 3;
    flipped[at] ^= 0x40;
    let flipped = env.write("flipped.cairn", &flipped);
    for bad in [truncated, flipped, env.write("empty.cairn", "")] {
        let target = Env::new();
        let run = target.run(&["import", &bad]).expect_code(2);
        assert!(run.stderr.contains("not a valid cairn export"), "{run}");
        assert!(!target.archive.exists(), "nothing written for {bad}");
    }
}

#[test]
fn wait_retries_until_the_archive_is_free() {
    let env = populated();
    let head = env.head();
    // Hold the archive with an ingest reading stdin.
    let mut holder = env
        .command(&["--wait", "30", "ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.run(&["head"]).code != 2 {
        assert!(Instant::now() < deadline, "holder never took the lock");
        assert!(holder.try_wait().unwrap().is_none(), "holder exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without --wait: refused at once. With it: succeeds once the holder ends.
    env.run(&["ingest", &jsonl_fixture()]).expect_code(2);
    let mut waiter = env
        .command(&["--wait", "30", "ingest", "--json", &jsonl_fixture()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    if let Some(status) = waiter.try_wait().unwrap() {
        let out = waiter.wait_with_output().unwrap();
        panic!("the waiter did not wait: {status}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut stdin = holder.stdin.take().unwrap();
    stdin
        .write_all(b"{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"body\":\"held\"}\n")
        .unwrap();
    drop(stdin);
    assert!(holder.wait().unwrap().success());
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"comments\":{\"new\":0"));
    assert_ne!(env.head(), head);
    env.ok(&["verify"]);
}

#[test]
fn re_scrapes_stored_as_deltas_export_whole_and_import_verified() {
    let env = Env::new();
    let sample = fixture("tribune-2012-03-28-us-generals-kayani.txt");
    env.ok(&["ingest", &sample.display().to_string()]);
    let page = std::fs::read_to_string(&sample).unwrap();
    let later = env.write("later.txt", page.replace("Do You?", "Do You? Really."));
    env.ok(&["ingest", &later]);
    let stats = env.ok(&["stats", "--json"]).json();
    assert_eq!(stats["blobs"], 2);
    let file = env.dir.path().join("backup.cairn");
    env.ok(&["export", &file.display().to_string()]);

    let copy = Env::new();
    copy.ok(&["import", &file.display().to_string()]);
    assert_eq!(copy.head(), env.head());
    copy.ok(&["verify"]);
    // Reparsing reads every capture back, the delta's included.
    assert_eq!(copy.ok(&["reparse", "--json"]).json(), env.ok(&["reparse", "--json"]).json());
    // The original stored the re-scrape as a small delta; the copy has it whole.
    let (orig, imported) = (env.ok(&["stats", "--json"]).json(), copy.ok(&["stats", "--json"]).json());
    assert!(
        orig["blob_bytes"].as_u64().unwrap() < imported["blob_bytes"].as_u64().unwrap(),
        "{orig} {imported}"
    );
}
