//! A second process on the same archive gets a clear error and exit 2.

use crate::support::{jsonl_fixture, Env};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_second_process_gets_archive_in_use() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let head = env.head();
    // `ingest -` opens the archive, then waits for stdin: it holds the lock.
    // A probe of ours can race its open and make it fail; then start it again.
    let spawn = || {
        env.command(&["ingest", "--json", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cairn starts")
    };
    let mut holder = spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        if holder.try_wait().expect("wait").is_some() {
            holder = spawn();
        }
        std::thread::sleep(Duration::from_millis(50));
        if env.run(&["head"]).code == 2 && holder.try_wait().expect("wait").is_none() {
            break;
        }
    }
    let second = env.run(&["ingest", &jsonl_fixture()]).expect_code(2);
    assert!(
        second
            .stderr
            .contains(&format!("archive {} is in use by another cairn process", env.archive.display())),
        "{second}"
    );
    let run = env.run(&["head"]).expect_code(2);
    assert!(run.stderr.contains("is in use"), "{run}");

    let doc = "{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"body\":\"while locked\"}\n";
    holder.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    let out = holder.wait_with_output().unwrap();
    assert!(out.status.success(), "holder: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"comments\":{\"new\":1"));
    assert_ne!(env.head(), head, "the holder's document landed");
    assert!(env.head().starts_with("11 "));
}

#[test]
fn processes_creating_one_new_archive_at_once_all_get_in() {
    for round in 0..5 {
        let env = Env::new();
        let children: Vec<_> = (0..4)
            .map(|_| {
                env.command(&["--wait", "30", "ingest", &jsonl_fixture()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("cairn starts")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(env.head().starts_with("9 "), "one document, once: {}", env.head());
        env.ok(&["verify"]);
    }
}
