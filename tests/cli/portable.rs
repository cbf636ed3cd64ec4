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

/// An export file's records: (tag, payload).
type Records = Vec<(u8, Vec<u8>)>;

/// The records of an export file, digest record excluded.
fn records_of(file: &[u8]) -> Records {
    let raw = zstd::decode_all(file).unwrap();
    let mut at = 17;
    let mut out = Vec::new();
    while at < raw.len() {
        let tag = raw[at];
        let len = u64::from_be_bytes(raw[at + 1..at + 9].try_into().unwrap()) as usize;
        if tag != b'Z' {
            out.push((tag, raw[at + 9..at + 9 + len].to_vec()));
        }
        at += 9 + len;
    }
    out
}

/// An export file of `records`, with a valid digest (what a careless or
/// hostile tool could write).
fn export_of(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut raw = b"cairn-export\n".to_vec();
    raw.extend_from_slice(&1u32.to_be_bytes());
    for (tag, payload) in records {
        raw.push(*tag);
        raw.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        raw.extend_from_slice(payload);
    }
    let digest = blake3::hash(&raw);
    raw.push(b'Z');
    raw.extend_from_slice(&32u64.to_be_bytes());
    raw.extend_from_slice(digest.as_bytes());
    zstd::encode_all(&raw[..], 3).unwrap()
}

/// The records of an export of `env`'s archive.
fn exported(env: &Env) -> Records {
    let file = env.dir.path().join("backup.cairn");
    env.ok(&["export", &file.display().to_string()]);
    records_of(&std::fs::read(&file).unwrap())
}

/// Each case's export is refused (exit 2, its message as expected) and
/// leaves no archive.
fn all_refused(cases: Vec<(&str, Records, &str)>) {
    for (what, records, expected) in cases {
        let target = Env::new();
        let bad = target.write("bad.cairn", export_of(&records));
        let run = target.run(&["import", &bad]).expect_code(2);
        assert!(run.stderr.contains(expected), "{what}: wanted {expected:?}\n{run}");
        assert!(!target.archive.exists(), "{what}: no archive is left");
        let leftovers: Vec<_> = std::fs::read_dir(target.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("importing"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
}

#[test]
fn import_enforces_what_verify_checks_and_is_all_or_nothing() {
    let env = populated();
    let records = exported(&env);
    // Rebuilt from its own records, the file imports.
    let copy = Env::new();
    let same = env.write("same.cairn", export_of(&records));
    copy.ok(&["import", &same]);
    assert_eq!(copy.head(), env.head());

    let entries: Vec<usize> =
        records.iter().enumerate().filter(|(_, r)| r.0 == b'E').map(|(i, _)| i).collect();
    let blob = records.iter().position(|r| r.0 == b'B').unwrap();
    let head_record = records.iter().position(|r| r.0 == b'H').unwrap();
    let mut cases: Vec<(&str, Records, &str)> = Vec::new();
    let mut no_blob = records.clone();
    no_blob.remove(blob);
    cases.push(("a capture without its blob", no_blob, "is not in the file"));
    let mut no_capture = records.clone();
    let last_capture = entries[entries.len() - 1];
    no_capture.remove(last_capture);
    cases.push(("entries without their capture", no_capture, "belong to no document"));
    let mut wrong_count = records.clone();
    let mut head: serde_json::Value = serde_json::from_slice(&wrong_count[head_record].1).unwrap();
    head["entries"] = serde_json::json!(1);
    wrong_count[head_record].1 = head.to_string().into_bytes();
    cases.push(("a wrong count in the head record", wrong_count, "differs from its"));
    let mut truncated = records.clone();
    truncated.truncate(entries[10]);
    cases.push(("a file cut short (digest over what is left)", truncated, "before the head record"));
    // Bytes no capture names travel under the archive's head (the head
    // record's count made to match): refused, as is a blob twice.
    let mut stray = records.clone();
    stray.insert(blob, (b'B', b"not a capture anyone made".to_vec()));
    let mut head: serde_json::Value = serde_json::from_slice(&stray[head_record + 1].1).unwrap();
    head["blobs"] = serde_json::json!(head["blobs"].as_u64().unwrap() + 1);
    stray[head_record + 1].1 = head.to_string().into_bytes();
    cases.push(("a blob no capture names", stray, "named by no capture"));
    let mut twice = records.clone();
    twice.insert(blob, records[blob].clone());
    cases.push(("a blob twice", twice, "in the file twice"));
    let mut after_head = records.clone();
    after_head.push((b'B', b"after the head".to_vec()));
    cases.push(("a blob after the head record", after_head, "after the head record"));
    all_refused(cases);

    // A record claiming more bytes than any record may hold is refused
    // before anything is allocated.
    let target = Env::new();
    let mut raw = b"cairn-export\n".to_vec();
    raw.extend_from_slice(&1u32.to_be_bytes());
    raw.push(b'B');
    raw.extend_from_slice(&(1u64 << 40).to_be_bytes());
    let huge = target.write("huge.cairn", zstd::encode_all(&raw[..], 3).unwrap());
    let run = target.run(&["import", &huge]).expect_code(2);
    assert!(run.stderr.contains("over the limit"), "{run}");
    assert!(!target.archive.exists());
}

#[test]
fn export_and_import_report_as_json() {
    let env = populated();
    let file = env.dir.path().join("backup.cairn").display().to_string();
    let e = env.ok(&["export", &file, "--json"]).json();
    let head = env.head();
    let (seq, hash) = head.split_once(' ').unwrap();
    assert_eq!(e["head"], serde_json::json!({"seq": seq.parse::<u64>().unwrap(), "hash": hash}));
    let copy = Env::new();
    let i = copy.ok(&["import", &file, "--json"]).json();
    assert_eq!(
        (i["entries"].clone(), i["blobs"].clone(), i["head"].clone()),
        (e["entries"].clone(), e["blobs"].clone(), e["head"].clone())
    );
    // Import reports in the count shape every appending command shares.
    for kind in ["articles", "comments", "captures", "merges"] {
        assert_eq!(i[kind], serde_json::json!({"new": e[kind].clone(), "duplicate": 0}), "{kind}");
    }
    let stats = env.ok(&["stats", "--json"]).json();
    assert_eq!(e["comments"], stats["comments"]);
    env.run(&["export", "-", "--json"]).expect_code(2);
}

#[test]
fn export_to_stdout_and_import_from_stdin() {
    let env = populated();
    let out = env.command(&["export", "-"]).output().unwrap();
    assert!(out.status.success());
    let copy = Env::new();
    copy.run_stdin(&["import", "-"], &out.stdout).expect_code(0);
    assert_eq!(copy.head(), env.head());
    copy.ok(&["verify"]);
}

#[test]
fn an_import_killed_anywhere_leaves_no_archive_or_the_whole_one_and_a_retry_works() {
    let env = populated();
    let file = env.dir.path().join("backup.cairn").display().to_string();
    env.ok(&["export", &file]);
    let copy = Env::new();
    let start = Instant::now();
    copy.ok(&["import", &file]);
    let full = start.elapsed();
    let mut seen_partial = false;
    for i in 0..12u32 {
        let target = Env::new();
        let mut child =
            target.command(&["import", &file]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(full * i / 12);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            assert_eq!(target.head(), env.head());
            continue;
        }
        if target.archive.exists() {
            // Killed after the rename into place, before the process
            // exited: the archive is there, and it is the whole of it.
            assert_eq!(target.head(), env.head(), "a killed import left part of an archive");
            target.ok(&["verify"]);
            continue;
        }
        seen_partial = true;
        target.ok(&["import", &file]);
        assert_eq!(target.head(), env.head(), "the retry imports everything");
    }
    assert!(seen_partial, "no kill landed before the import finished");
}

#[test]
fn two_imports_into_one_new_archive_at_once_leave_one_whole_archive() {
    let env = populated();
    let file = env.dir.path().join("backup.cairn").display().to_string();
    env.ok(&["export", &file]);
    for round in 0..6 {
        let target = Env::new();
        let children: Vec<_> = (0..2)
            .map(|_| {
                target
                    .command(&["import", &file])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        assert!(outcomes.iter().any(|o| o.status.success()), "round {round}: neither import succeeded");
        for o in &outcomes {
            if !o.status.success() {
                assert_eq!(o.status.code(), Some(2), "round {round}");
            }
        }
        assert_eq!(target.head(), env.head(), "round {round}");
        target.ok(&["verify"]);
    }
}

/// What imports left beside `target`'s archive (temporary archives, empty
/// targets moved aside).
fn imports_beside(target: &Env) -> Vec<String> {
    std::fs::read_dir(target.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("import"))
        .collect()
}

/// Waits until the import `pid` into `target` holds the lock file at
/// `lock` (it records itself there once it does); the temporary archive
/// beside the target when `lock` is `None`.
fn holding(target: &Env, pid: u32, lock: Option<&std::path::Path>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lock = lock.map(|l| l.to_path_buf()).or_else(|| {
            std::fs::read_dir(target.dir.path())
                .unwrap()
                .map(|e| e.unwrap())
                .find(|e| e.file_name().to_string_lossy().contains("importing") && e.path().is_dir())
                .map(|e| e.path().join("lock"))
        });
        if lock
            .and_then(|l| std::fs::read_to_string(l).ok())
            .is_some_and(|t| t.starts_with(&format!("{pid} import")))
        {
            return;
        }
        assert!(Instant::now() < deadline, "the import never held its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An import into an existing empty archive (or empty directory) holds it
/// for the whole import: an ingest meanwhile was acknowledged (exit 0),
/// then removed with the empty archive when the import took its place. An
/// import held waiting for its input (stdin) shows it deterministically;
/// killed there, its temporary directory is removed by the next import,
/// even one that starts before the killed process is reaped.
#[test]
fn an_import_holds_its_target_and_a_killed_ones_leftovers_go() {
    let env = populated();
    let file = env.dir.path().join("backup.cairn").display().to_string();
    env.ok(&["export", &file]);
    let export = std::fs::read(&file).unwrap();
    let new_doc = env.write("new.jsonl", "{\"type\":\"article\",\"url\":\"https://other.example/x\",\"title\":\"X\"}\n{\"type\":\"comment\",\"author\":\"zed\",\"body\":\"acknowledged\"}\n");
    for empty_archive in [true, false] {
        let target = Env::new();
        if empty_archive {
            let junk = target.write("junk.txt", "junk\n");
            target.run(&["ingest", &junk]).expect_code(1);
            assert_eq!(target.head().split(' ').next(), Some("0"), "an empty archive");
        } else {
            std::fs::create_dir(&target.archive).unwrap();
        }
        let mut import = target
            .command(&["import", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = import.stdin.take().unwrap();
        stdin.write_all(&export[..16]).unwrap();
        // Once the import is under way, it holds the target: the ingest is
        // refused, not acknowledged.
        holding(&target, import.id(), Some(&target.archive.join("lock")));
        let run = target.run(&["ingest", "--wait", "0", &new_doc]).expect_code(2);
        assert!(run.stderr.contains("in use"), "{run}");
        stdin.write_all(&export[16..]).unwrap();
        drop(stdin);
        let out = import.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(target.head(), env.head());
        // Now the ingest goes in, and stays.
        target.ok(&["ingest", &new_doc]);
        let head = target.head();
        assert_eq!(target.ok(&["search", "-F", "acknowledged"]).stdout.lines().next(), Some("1 match"));
        target.ok(&["verify"]);
        assert_eq!(imports_beside(&target), Vec::<String>::new(), "nothing left beside the archive");
        assert_eq!(target.head(), head);
    }

    // Killed while it waits for its input, retried at once (the killed
    // process not yet reaped): the retry works and leaves nothing beside.
    let target = Env::new();
    let mut import =
        target.command(&["import", "-"]).stdin(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdin = import.stdin.take().unwrap();
    stdin.write_all(&export[..16]).unwrap();
    holding(&target, import.id(), None);
    import.kill().unwrap();
    // Gone (its lock released), not yet reaped: /proc still names it.
    let tmp = std::fs::read_dir(target.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("importing") && p.is_dir())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::OpenOptions::new().write(true).open(tmp.join("lock")).unwrap().try_lock().is_err() {
        assert!(Instant::now() < deadline, "the killed import still holds its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(std::path::Path::new("/proc").join(import.id().to_string()).exists());
    target.ok(&["import", &file]);
    let _ = import.wait();
    assert_eq!(target.head(), env.head());
    assert_eq!(
        imports_beside(&target),
        Vec::<String>::new(),
        "the killed import's temporary archive is removed"
    );
}

/// `records` with a merge of `kind` appended as the log's next entry (its
/// id, chain and the head record made to match): what a hostile tool
/// could write.
fn with_merge(
    records: &Records,
    kind: cairn::model::MergeKind,
    keep: cairn::model::EventId,
    fold: Vec<cairn::model::EventId>,
) -> Records {
    use cairn::model::{chain_step, Event, LogEntry, Merge};
    let mut out = records.clone();
    let head_at = out.iter().position(|r| r.0 == b'H').unwrap();
    let last: LogEntry =
        serde_json::from_slice(&out[..head_at].iter().rev().find(|r| r.0 == b'E').unwrap().1).unwrap();
    let event = Event::Merge(Merge { kind, keep, fold, reason: "forged".into() });
    let mut entry = LogEntry {
        seq: last.seq.next(),
        id: event.id(),
        recorded_at: last.recorded_at,
        event,
        head: last.head,
    };
    entry.head = chain_step(&last.head, &entry.entry_hash());
    let mut head: serde_json::Value = serde_json::from_slice(&out[head_at].1).unwrap();
    head["seq"] = serde_json::json!(entry.seq.0);
    head["hash"] = serde_json::json!(entry.head.to_hex());
    head["entries"] = serde_json::json!(entry.seq.0);
    out[head_at].1 = head.to_string().into_bytes();
    out.insert(head_at, (b'E', serde_json::to_vec(&entry).unwrap()));
    out
}

/// Merges `verify` finds wrong (an id folded into itself, a cycle, a kind
/// mixed up, a fold list out of order) are refused by `import`, which
/// said its archive passes `verify`; a well-formed forged merge imports.
#[test]
fn import_refuses_merges_verify_finds_wrong() {
    use cairn::model::{EventId, LogEntry, MergeKind};
    let env = populated();
    let records = exported(&env);
    let of_kind = |kind: &str| -> Vec<EventId> {
        records
            .iter()
            .filter(|r| r.0 == b'E')
            .map(|r| serde_json::from_slice::<LogEntry>(&r.1).unwrap())
            .filter(|e| e.event.kind().name() == kind)
            .map(|e| e.id)
            .collect()
    };
    let (comments, captures) = (of_kind("comment"), of_kind("capture"));
    let (a, b) =
        if comments[0] < comments[1] { (comments[0], comments[1]) } else { (comments[1], comments[0]) };
    let c = comments[2];
    let good = with_merge(&records, MergeKind::Comment, c, vec![a, b]);
    let cycle = with_merge(&good, MergeKind::Comment, a, vec![c]);
    let cases: Vec<(&str, Records, &str)> = vec![
        ("an id folded into itself", with_merge(&records, MergeKind::Comment, a, vec![a]), "into itself"),
        ("a cycle", cycle, "makes a cycle"),
        (
            "a capture in a comment merge",
            with_merge(&records, MergeKind::Comment, a, vec![captures[0]]),
            "a capture",
        ),
        ("a fold list out of order", with_merge(&records, MergeKind::Comment, c, vec![b, a]), "not sorted"),
        ("an empty fold list", with_merge(&records, MergeKind::Comment, c, vec![]), "folds no id"),
    ];
    all_refused(cases);
    let target = Env::new();
    let fine = target.write("fine.cairn", export_of(&good));
    target.ok(&["import", &fine]);
    target.ok(&["verify"]);
}

/// A failed import into an empty directory leaves it empty (its lock file
/// made the retry take it for an archive), the retry works and keeps the
/// directory's permissions; an import
/// into the directory it runs in is refused before anything is read; an
/// export to standard output's own file (`/dev/stdout` when it is a file)
/// is the export alone, as with `-`.
#[test]
fn import_retries_into_an_empty_directory_and_export_to_stdouts_file() {
    let env = populated();
    let file = env.dir.path().join("backup.cairn").display().to_string();
    env.ok(&["export", &file]);
    let target = Env::new();
    std::fs::create_dir(&target.archive).unwrap();
    // (Made private: the archive keeps its permissions; it became 0755.)
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&target.archive, std::fs::Permissions::from_mode(0o700)).unwrap();
    let bad = target.write("bad.cairn", b"not an export");
    target.run(&["import", &bad]).expect_code(2);
    assert_eq!(std::fs::read_dir(&target.archive).unwrap().count(), 0, "left empty");
    target.ok(&["import", &file]);
    assert_eq!(target.head(), env.head());
    let mode = std::fs::metadata(&target.archive).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{mode:o}");

    // A directory holding only a file named `lock` that cairn did not write
    // (a user's, or a link elsewhere) is no empty target: left as it was.
    let theirs = Env::new();
    std::fs::create_dir(&theirs.archive).unwrap();
    let elsewhere = theirs.write("notes.txt", "my notes\n");
    std::os::unix::fs::symlink(&elsewhere, theirs.archive.join("lock")).unwrap();
    theirs.run(&["import", &file]).expect_code(2);
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "my notes\n");
    std::fs::remove_file(theirs.archive.join("lock")).unwrap();
    std::fs::write(theirs.archive.join("lock"), "my precious notes\n").unwrap();
    let run = theirs.run(&["import", &file]).expect_code(2);
    assert!(run.stderr.contains("cairn did not write"), "{run}");
    assert_eq!(std::fs::read_to_string(theirs.archive.join("lock")).unwrap(), "my precious notes\n");
    std::fs::write(theirs.archive.join("lock"), "2024 plans for the garden\n").unwrap();
    theirs.run(&["import", &file]).expect_code(2);
    assert_eq!(std::fs::read_to_string(theirs.archive.join("lock")).unwrap(), "2024 plans for the garden\n");
    // An empty `lock`, as a cairn killed between making it and writing its
    // line leaves one (an import killed so was then refused by the retry,
    // as "no archive"): nothing is lost in taking the directory.
    std::fs::write(theirs.archive.join("lock"), "").unwrap();
    theirs.ok(&["import", &file]);
    assert_eq!(theirs.head(), env.head());

    // An archive without entries holding a file of the user's, and a link
    // to an empty directory: refused, left as they were.
    let notes = Env::new();
    let junk = notes.write("junk.txt", "junk\n");
    notes.run(&["ingest", &junk]).expect_code(1);
    std::fs::write(notes.archive.join("NOTES.txt"), "user note\n").unwrap();
    let run = notes.run(&["import", &file]).expect_code(2);
    assert!(run.stderr.contains("NOTES.txt"), "{run}");
    assert_eq!(std::fs::read_to_string(notes.archive.join("NOTES.txt")).unwrap(), "user note\n");
    let linked = Env::new();
    let real = linked.dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &linked.archive).unwrap();
    let run = linked.run(&["import", &file]).expect_code(2);
    assert!(run.stderr.contains("symbolic link"), "{run}");
    assert!(std::fs::symlink_metadata(&linked.archive).unwrap().file_type().is_symlink());

    // A file that appears in the empty target while the import runs is
    // kept, and the import refused.
    let busy = Env::new();
    std::fs::create_dir(&busy.archive).unwrap();
    let export = std::fs::read(&file).unwrap();
    let mut import =
        busy.command(&["import", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = import.stdin.take().unwrap();
    stdin.write_all(&export[..16]).unwrap();
    holding(&busy, import.id(), Some(&busy.archive.join("lock")));
    std::fs::write(busy.archive.join("userfile.txt"), "important\n").unwrap();
    stdin.write_all(&export[16..]).unwrap();
    drop(stdin);
    let out = import.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("files appeared in"));
    assert_eq!(std::fs::read_to_string(busy.archive.join("userfile.txt")).unwrap(), "important\n");

    let here = Env::new();
    std::fs::create_dir(&here.archive).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["--archive", ".", "import", &file])
        .current_dir(&here.archive)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("the directory this runs in"));
    assert_eq!(std::fs::read_dir(&here.archive).unwrap().count(), 0, "nothing made there");

    let out = env.dir.path().join("to-stdout.cairn");
    let link = env.dir.path().join("stdout-link");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let status = env
        .command(&["export", &link.display().to_string()])
        .stdout(std::fs::File::create(&out).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let copy = Env::new();
    copy.ok(&["import", &out.display().to_string()]);
    assert_eq!(copy.head(), env.head());
}

#[test]
fn an_export_whose_reader_goes_away_is_an_error_not_a_backup() {
    let env = populated();
    // The reading end closed before cairn writes: every write fails.
    let mut child =
        env.command(&["export", "-"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("before the export was written whole"), "{stderr}");
    // `| head` on a view is still quiet and successful.
    let mut child = env.command(&["log"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
}

#[test]
fn import_reads_a_fifo_once_and_names_a_directory() {
    let env = populated();
    let fifo = env.dir.path().join("backup.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let writer = {
        let (fifo, export) = (fifo.clone(), env.command(&["export", "-"]).output().unwrap().stdout);
        std::thread::spawn(move || std::fs::write(fifo, export).unwrap())
    };
    let copy = Env::new();
    let run = copy.ok(&["import", &fifo.display().to_string()]);
    writer.join().unwrap();
    assert!(run.stdout.starts_with("imported 55 entries"), "{run}");
    assert_eq!(copy.head(), env.head());
    let other = Env::new();
    let run = other.run(&["import", &env.dir.path().display().to_string()]).expect_code(2);
    assert!(run.stderr.contains("a directory, not an export file"), "{run}");
    let run = other.run(&["import", "no-such-backup"]).expect_code(2);
    assert!(run.stderr.contains("no-such-backup: no such file"), "{run}");
}

/// An ingest that waited for an import into an empty directory appends to
/// the imported archive and does not say it created one.
#[test]
fn an_ingest_queued_behind_an_import_does_not_claim_to_create_the_archive() {
    let env = populated();
    let export = env.command(&["export", "-"]).output().unwrap().stdout;
    let target = Env::new();
    std::fs::create_dir(&target.archive).unwrap();
    let mut import =
        target.command(&["import", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    // The import holds the target (its lock names it) before reading stdin.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(target.archive.join("lock")).is_ok_and(|l| l.contains("import")) {
        assert!(Instant::now() < deadline, "the import never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let waiter = target
        .command(&["--wait", "30", "ingest", &jsonl_fixture()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut stdin = import.stdin.take().unwrap();
    stdin.write_all(&export).unwrap();
    drop(stdin);
    assert!(import.wait().unwrap().success());
    let out = waiter.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("created archive"), "{stderr}");
    target.ok(&["verify"]);
}
