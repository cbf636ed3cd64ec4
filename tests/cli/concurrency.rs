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
        if env.run(&["--wait", "0", "head"]).code == 2 && holder.try_wait().expect("wait").is_none() {
            break;
        }
    }
    // A writer fails at once, naming the holder and --wait.
    let second = env.run(&["ingest", &jsonl_fixture()]).expect_code(2);
    let named = format!(
        "archive {} is in use by another cairn process: cairn {} (ingest); `--wait SECONDS` waits",
        env.archive.display(),
        holder.id()
    );
    assert!(second.stderr.contains(&named), "{second}");
    let run = env.run(&["--wait", "0", "head"]).expect_code(2);
    assert!(run.stderr.contains("is in use"), "{run}");

    // A reader waits (30 s by default), saying once whom for, and reads
    // once the holder is done.
    let reader =
        env.command(&["head"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cairn starts");
    // With -q it waits without a word.
    let quiet = env
        .command(&["-q", "head"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cairn starts");
    std::thread::sleep(Duration::from_millis(300));
    let doc = "{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"body\":\"while locked\"}\n";
    holder.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    let out_pid = holder.id();
    let out = holder.wait_with_output().unwrap();
    assert!(out.status.success(), "holder: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"comments\":{\"new\":1"));
    assert_ne!(env.head(), head, "the holder's document landed");
    assert!(env.head().starts_with("11 "));
    let read = reader.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&read.stderr);
    assert!(read.status.success(), "{stderr}");
    assert_eq!(stderr.matches("waiting for cairn").count(), 1, "said once: {stderr}");
    assert!(stderr.contains(&format!("cairn {} (ingest)", out_pid)), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), env.head(), "it read after the holder");
    let quiet = quiet.wait_with_output().unwrap();
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert_eq!(String::from_utf8_lossy(&quiet.stdout).trim(), env.head());
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

/// A link named `lock` in an archive is never followed: cairn wrote the
/// holding process over the link's target (any file the user could write,
/// `cairn --archive A head` made a user's notes `PID head`). Every command
/// now refuses (exit 2) naming the link, and the target is as it was; with
/// the link gone, the archive opens.
#[test]
fn a_lock_that_is_a_link_is_not_followed() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let head = env.head();
    let notes = env.write("notes.txt", "my notes\n");
    let lock = env.archive.join("lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&notes, &lock).unwrap();
    for args in [&["head"][..], &["ingest", &jsonl_fixture()], &["verify"]] {
        let run = env.run(args).expect_code(2);
        assert!(run.stderr.contains("is a symbolic link"), "{run}");
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n", "{args:?}");
    }
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(env.head(), head);
}

/// Nor are the derived files cairn writes in an archive, when one is a
/// link: `ingest` wrote the id sets over a user's file that
/// `sets/ids.a.vlog` linked to, `verify` the Merkle tree's hashes over
/// one `tree/hashes` linked to, and `repair` an id run over one an id
/// run's temporary name linked to; and a new archive's marker, and the
/// probe for free space, were written through links at their names. Each
/// is now refused (exit 2, naming the file) or made anew, and the user's
/// file is as it was.
#[test]
fn derived_files_that_are_links_are_not_written_through() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let notes = env.write("notes.txt", "my notes\n");
    let mine = |what: &str| assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n", "{what}");
    for (file, args) in [("sets/ids.a.vlog", &["ingest", &jsonl_fixture()][..]), ("tree/hashes", &["verify"])]
    {
        let path = env.archive.join(file);
        let kept = env.dir.path().join("kept");
        std::fs::rename(&path, &kept).unwrap();
        std::os::unix::fs::symlink(&notes, &path).unwrap();
        let run = env.run(args).expect_code(2);
        assert!(run.stderr.contains(file) && run.stderr.contains("is a symbolic link"), "{run}");
        mine(file);
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&kept, &path).unwrap();
    }
    let head: u64 = env.head().split(' ').next().unwrap().parse().unwrap();
    let index = env.archive.join("index");
    let tmp = index.join(format!(".{:016x}-{head:016x}.idx.tmp", 1));
    std::os::unix::fs::symlink(&notes, &tmp).unwrap();
    env.ok(&["repair"]);
    mine("an id run's temporary file");
    assert!(!tmp.exists());
    env.ok(&["verify"]);
    // Nor a new archive's marker, through a link at its temporary name,
    // nor the probe for free space (made when sled cannot open `db/`).
    let fresh = Env::new();
    std::fs::create_dir(&fresh.archive).unwrap();
    std::os::unix::fs::symlink(&notes, fresh.archive.join("cairn-archive.tmp")).unwrap();
    fresh.ok(&["ingest", &jsonl_fixture()]);
    mine("the marker's temporary file");
    assert!(std::fs::symlink_metadata(fresh.archive.join("cairn-archive")).unwrap().file_type().is_file());
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    std::fs::write(env.archive.join("db"), "not sled's").unwrap();
    std::os::unix::fs::symlink(&notes, env.archive.join(".space-probe")).unwrap();
    let _ = env.run(&["head"]);
    mine("the space probe");
}
