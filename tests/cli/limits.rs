//! Limits and small guards (part of issue 12): a maximum document size
//! checked before an input is read whole, a directory walk that survives
//! symbolic link loops, `--wait` bounded, an export never written inside the
//! archive, and the empty log's checkpoint.

use crate::support::{fixture, jsonl_fixture, Env};
use serde_json::json;

#[test]
fn documents_over_the_size_limit_are_refused_before_they_are_read() {
    let env = Env::new();
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    let run = env.run(&["ingest", "--max-document-size", "1KiB", &page]).expect_code(1);
    assert!(run.stderr.contains("larger than the maximum document size (1024 bytes)"), "{run}");
    // stdin and devices are cut off at the limit, not read whole.
    let big = vec![b'x'; 5000];
    let run = env.run_stdin(&["ingest", "--max-document-size", "4KiB", "-"], &big).expect_code(1);
    assert!(run.stderr.contains("rejected -: larger than the maximum document size"), "{run}");
    if std::path::Path::new("/dev/zero").exists() {
        let run = env.run(&["ingest", "--max-document-size", "1MiB", "/dev/zero"]).expect_code(1);
        assert!(run.stderr.contains("/dev/zero: larger than the maximum document size"), "{run}");
    }
    for bad in ["0", "300MiB", "12 parsecs", "-1"] {
        env.run(&["ingest", "--max-document-size", bad, &page]).expect_code(2);
    }
    let run = env.ok(&["ingest", "--json", "--max-document-size", "1MiB", &page]);
    assert_eq!(run.json()["comments"]["new"], json!(44));
}

#[cfg(unix)]
#[test]
fn a_directory_with_symbolic_link_loops_is_walked_and_the_loops_reported() {
    let env = Env::new();
    let dir = env.dir.path().join("scrapes");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::copy(fixture("tribune-2012-03-28-us-generals-kayani.txt"), dir.join("a/page.txt")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("a/back-to-top")).unwrap();
    std::os::unix::fs::symlink(dir.join("a"), dir.join("a/self")).unwrap();
    let run = env.run(&["ingest", "--json", &dir.display().to_string()]).expect_code(1);
    let report = run.json();
    assert_eq!(report["comments"]["new"], json!(44), "{run}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{run}");
    assert!(errors.iter().all(|e| e["error"].as_str().unwrap().contains("symbolic link loop")), "{run}");
}

/// A FIFO in a walked directory is reported, never opened (reading one no
/// one writes to waited forever); the files beside it go in.
#[cfg(unix)]
#[test]
fn a_fifo_in_a_walked_directory_is_reported_not_read() {
    let env = Env::new();
    let dir = env.dir.path().join("scrapes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("tribune-2012-03-28-us-generals-kayani.txt"), dir.join("b-page.txt")).unwrap();
    let fifo = dir.join("a-pipe.txt");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let mut cmd = env.command(&["ingest", "--json", &dir.display().to_string()]);
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("ingest still waits on the FIFO after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["comments"]["new"], json!(44), "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert!(errors[0]["error"].as_str().unwrap().contains("not a regular file"), "{report}");
    assert!(errors[0]["path"].as_str().unwrap().ends_with("a-pipe.txt"), "{report}");
}

#[test]
fn small_guards() {
    let env = Env::new();
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    // The empty log's own checkpoint verifies; a wrong one at seq 0 does not.
    env.run(&["ingest", "/dev/null"]).expect_code(1);
    env.ok(&["verify", "--checkpoint", &format!("0:{}", "0".repeat(64))]);
    let run = env.run(&["verify", "--checkpoint", &format!("0:{}", "1".repeat(64))]).expect_code(1);
    assert!(run.stdout.contains("the empty log's head is 64 zeros"), "{run}");
    // --wait is bounded, never a panic.
    for bad in ["inf", "NaN", "-1", "1e300"] {
        let run = env.run(&["--wait", bad, "head"]).expect_code(2);
        assert!(!run.stderr.contains("panicked"), "{run}");
    }
    env.ok(&["--wait", "0.5", "head"]);
    // An export never replaces the archive's own files.
    env.ok(&["ingest", &page]);
    let segment = env.archive.join("log").join("00000000.seg");
    let before = std::fs::read(&segment).unwrap();
    let run = env.run(&["export", &segment.display().to_string()]).expect_code(2);
    assert!(run.stderr.contains("is inside the archive"), "{run}");
    assert_eq!(std::fs::read(&segment).unwrap(), before);
    env.ok(&["verify"]);
}

/// `ingest .` beside the archive it writes (or any cairn archive under the
/// walked directory) skips the archive, saying so: its lock, index and log
/// files were read as inputs and rejected (exit 1).
#[test]
fn a_walk_skips_cairn_archives_under_the_directory() {
    let env = Env::new();
    std::fs::copy(fixture("tribune-2012-03-28-us-generals-kayani.txt"), env.dir.path().join("page.txt"))
        .unwrap();
    // The archive exists before the walk (as on a second `ingest .`).
    env.ok(&["ingest", &jsonl_fixture()]);
    let run = env.command(&["ingest", "--json", "."]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(stderr.contains("a cairn archive, not scraped pages; skipped"), "{stderr}");
    env.ok(&["verify"]);
}
