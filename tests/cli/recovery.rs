//! The log and pack files are the archive; sled's `db/` is an index derived
//! from them (part of issue 12). A lost, stale or damaged `db/` loses no
//! acknowledged document: sled catches up from the log files, or `cairn
//! repair` rebuilds it, and `verify --checkpoint` of the head saved before
//! the fault passes.

use crate::support::{copy_dir, fixture, Env};
use cairn::store::KvTree;
use serde_json::{json, Value};

fn page() -> String {
    fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()
}

/// An archive with three documents; returns its head as a checkpoint.
fn three_documents(env: &Env) -> String {
    three_documents_with(env, || {})
}

/// [`three_documents`], running `after_first` once the first is in.
fn three_documents_with(env: &Env, after_first: impl FnOnce()) -> String {
    env.ok(&["ingest", &page()]);
    after_first();
    let later = std::fs::read_to_string(page()).unwrap().replace("Do You?", "Do You? Really.");
    let later = env.write("later.txt", later);
    env.ok(&["ingest", &later]);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    env.head().replace(' ', ":")
}

/// The files moved aside (`*.torn-*`) in `dir`.
fn torn_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".torn-"))
        .collect();
    out.sort();
    out
}

/// A JSON Lines document of one new comment.
fn new_document(env: &Env) -> String {
    env.write("x.jsonl", "{\"type\":\"comment\",\"article\":\"https://example.com/x\",\"body\":\"new\"}\n")
}

/// Where each record of a record file starts, walking its headers (tag,
/// length) from the first.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0usize;
    while at + 12 <= bytes.len() {
        starts.push(at);
        at += 12 + u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    starts
}

fn thread_json(env: &Env) -> Value {
    let mut t = env
        .ok(&[
            "thread",
            "title:2012-03-28:senior us commanders discuss border cooperation with kayani",
            "--json",
        ])
        .json();
    t["as_of"] = json!(null);
    t
}

#[test]
fn a_deleted_index_is_caught_up_from_the_log_files() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let thread = thread_json(&env);
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let run = env.ok(&["head"]);
    assert_eq!(run.stdout.trim(), checkpoint.replace(':', " "));
    assert!(run.stderr.contains("caught up"), "{run}");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    assert_eq!(thread_json(&env), thread, "views rebuilt to the same thread");
    // And the archive keeps growing from there.
    env.ok(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    // verify says when it found the index behind the log files.
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let run = env.ok(&["verify"]);
    assert!(run.stdout.contains("entries were caught up from them"), "{run}");
    let seq: u64 = env.head().split(' ').next().unwrap().parse().unwrap();
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    assert_eq!(env.ok(&["verify", "--json"]).json()["caught_up"], json!(seq));
}

#[test]
fn a_stale_index_restored_from_a_backup_loses_nothing() {
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    let backup = env.dir.path().join("db-backup");
    copy_dir(&env.archive.join("db"), &backup);
    let later = std::fs::read_to_string(page()).unwrap().replace("Do You?", "Do You? Really.");
    let later = env.write("later.txt", later);
    env.ok(&["ingest", &later]);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    let checkpoint = env.head().replace(' ', ":");
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    copy_dir(&backup, &env.archive.join("db"));
    // The next ingest appends after every acknowledged document, not over them.
    let run = env.ok(&["ingest", "--json", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]);
    assert!(run.stderr.contains("caught up"), "{run}");
    assert_eq!(run.json()["captures"]["new"], json!(1));
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    let changes = env.ok(&["changes", "--json"]).json()["changes"].clone();
    assert_eq!(changes.as_array().unwrap().len(), 4, "every capture of the sample is in the views");
}

#[test]
fn an_index_sled_cannot_open_is_moved_aside_and_rebuilt_and_repair_rebuilds_it_too() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let thread = thread_json(&env);
    // A byte of sled's config flipped: what sled says of its files after
    // some kill -9s ("Read corrupted data at file offset None").
    let damage = |env: &Env| {
        let conf = env.archive.join("db").join("conf");
        let mut bytes = std::fs::read(&conf).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&conf, bytes).unwrap();
    };
    // The index is derived: the next command moves it aside and rebuilds
    // it from the log files, with a warning, and loses nothing. Its main
    // file cut short makes sled fail (or panic) the same way.
    let db = env.archive.join("db").join("db");
    std::fs::OpenOptions::new().write(true).open(&db).unwrap().set_len(1000).unwrap();
    let run = env.ok(&["head"]);
    assert_eq!(run.stdout.trim(), checkpoint.replace(':', " "));
    assert!(run.stderr.contains("could not be opened") && run.stderr.contains("db.unreadable"), "{run}");
    assert!(!run.stderr.contains("panicked at"), "{run}");
    damage(&env);
    let run = env.ok(&["head"]);
    assert!(run.stderr.contains("(Read corrupted data at file offset None)"), "{run}");
    let aside = env.archive.join("db.unreadable");
    assert!(aside.join("db").exists(), "the unreadable index is kept");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    assert_eq!(thread_json(&env), thread, "views rebuilt to the same thread");
    // verify says so, in text and JSON; a second one replaces the first.
    damage(&env);
    let run = env.ok(&["verify"]);
    assert!(run.stdout.contains("sled could not open the index"), "{run}");
    damage(&env);
    let report = env.ok(&["verify", "--json"]).json();
    assert!(report["index_unreadable"].is_string(), "{report}");
    assert_eq!(env.ok(&["verify", "--json"]).json()["index_unreadable"], json!(null));
    let unreadable: Vec<_> = std::fs::read_dir(&env.archive)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("db."))
        .collect();
    assert_eq!(unreadable.len(), 1, "one unreadable index is kept, not one per crash");
    // A file, or a link to nowhere, where the unreadable index goes is
    // replaced, never followed.
    std::fs::remove_dir_all(&aside).unwrap();
    std::fs::write(&aside, "not an index").unwrap();
    damage(&env);
    let run = env.ok(&["head"]);
    assert!(run.stderr.contains("db.unreadable"), "{run}");
    assert!(aside.join("conf").exists());
    std::fs::remove_dir_all(&aside).unwrap();
    std::os::unix::fs::symlink(env.dir.path().join("nowhere"), &aside).unwrap();
    damage(&env);
    env.ok(&["head"]);
    assert!(aside.join("conf").exists() && !env.dir.path().join("nowhere").exists());
    // repair rebuilds an intact index, keeping the old one.
    let report = env.ok(&["repair", "--json"]).json();
    let (seq, hash) = checkpoint.split_once(':').unwrap();
    assert_eq!(report["head"], json!({"seq": seq.parse::<u64>().unwrap(), "hash": hash}));
    let old = report["old_index"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&old).exists(), "the old index is kept: {old}");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    assert_eq!(thread_json(&env), thread);
}

#[test]
fn a_torn_tail_is_moved_aside_not_deleted() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let segment = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let committed = bytes.len();
    bytes.extend_from_slice(b"\0\0\0\0\0\0\0\x63\0\0\x10\0half a record");
    std::fs::write(&segment, &bytes).unwrap();
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    env.ok(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]);
    let aside = torn_files(&env.archive.join("log"));
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].file_name().unwrap().to_string_lossy().starts_with("00000000.seg.torn-"));
    let kept = std::fs::read(&aside[0]).unwrap();
    assert_eq!(kept, bytes[committed..].to_vec());
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

/// An archive whose second commit reached the log files but whose sled
/// batch was lost (db/ from before it), its commit record then changed by
/// `damage`: returns the head of the first commit.
fn second_commit_unacknowledged(env: &Env, damage: impl FnOnce(&std::path::Path)) -> String {
    env.ok(&["ingest", &page()]);
    let first = env.head().replace(' ', ":");
    let backup = env.dir.path().join("db-backup");
    copy_dir(&env.archive.join("db"), &backup);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    copy_dir(&backup, &env.archive.join("db"));
    damage(&env.archive.join("log").join("00000000.seg"));
    first
}

#[test]
fn a_commit_whose_commit_record_is_torn_off_is_not_taken_in() {
    let env = Env::new();
    // Its commit record torn off: its segments are whole, but nothing
    // closes them.
    let first = second_commit_unacknowledged(&env, |segment| {
        let len = std::fs::metadata(segment).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(segment).unwrap().set_len(len - 20).unwrap();
    });
    assert_eq!(env.head().replace(' ', ":"), first, "an unclosed commit is not acknowledged data");
    env.ok(&["verify", "--checkpoint", &first]);
    // The next write moves the unclosed bytes aside and appends after the
    // last closed commit.
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    env.ok(&["verify", "--checkpoint", &first]);
    assert_eq!(torn_files(&env.archive.join("log")).len(), 1);
}

/// The same unacknowledged commit, its commit record full length but its
/// last bytes never written (zeros, as a power loss can leave them): a torn
/// tail too, moved aside by the next write (it was taken for whole commits
/// past damage, and every write refused).
#[test]
fn a_commit_record_whose_last_bytes_were_never_written_is_a_torn_tail() {
    let env = Env::new();
    let first = second_commit_unacknowledged(&env, |segment| {
        let mut bytes = std::fs::read(segment).unwrap();
        let n = bytes.len();
        bytes[n - 8..].fill(0);
        std::fs::write(segment, &bytes).unwrap();
    });
    env.ok(&["verify", "--checkpoint", &first]);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    env.ok(&["verify", "--checkpoint", &first]);
    assert_eq!(torn_files(&env.archive.join("log")).len(), 1);
}

/// The commit record of the index's head damaged: a write after it would
/// lie past damage a rebuild from the log files cannot read past (its
/// entries in the index alone), so writers refuse.
#[test]
fn writers_refuse_after_a_damaged_head_commit_record() {
    let env = Env::new();
    three_documents(&env);
    let segment = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    let other = new_document(&env);
    let run = env.run(&["ingest", &other]).expect_code(2);
    assert!(
        run.stderr.contains("commit record of the index's head") && run.stderr.contains("damaged"),
        "{run}"
    );
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);
    env.run(&["verify"]).expect_code(1);
}

#[test]
fn damage_before_whole_commits_is_reported_never_cut() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let segment = env.archive.join("log").join("00000000.seg");
    let before = std::fs::read(&segment).unwrap();
    // One byte of the first commit's segment payload, with the index lost.
    let mut damaged = before.clone();
    damaged[200] ^= 0xff;
    std::fs::write(&segment, &damaged).unwrap();
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let run = env.run(&["verify"]).expect_code(1);
    assert!(run.stdout.contains("whole commits past the committed end"), "{run}");
    let run = env.run(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]).expect_code(2);
    assert!(run.stderr.contains("holds whole commits past the end the index records"), "{run}");
    assert!(run.stderr.contains("nothing was written"), "{run}");
    assert_eq!(std::fs::read(&segment).unwrap(), damaged, "no byte was cut or moved");
    let moved = torn_files(&env.archive.join("captures"));
    assert!(moved.is_empty(), "the blobs those commits rely on stay: {moved:?}");
    // Undo the damage: everything is there again.
    std::fs::write(&segment, &before).unwrap();
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

#[test]
fn repair_changes_nothing_when_the_log_files_close_less_than_the_old_index() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let before: Vec<String> = env.ok(&["log"]).stdout.lines().map(str::to_string).collect();
    // The last commit record is cut short (one byte): its segments are
    // whole, but the files alone no longer say that commit was closed.
    let segment = env.archive.join("log").join("00000000.seg");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 1).unwrap();
    let cut = std::fs::read(&segment).unwrap();
    for _ in 0..2 {
        let run = env.run(&["repair"]).expect_code(1);
        assert!(run.stderr.contains("are not in them whole"), "{run}");
        assert!(run.stderr.contains("Nothing was changed"), "{run}");
        assert!(run.stderr.contains(&checkpoint.replace(':', " ")), "{run}");
        assert!(run.stdout.is_empty(), "{run}");
    }
    let refused = env.run(&["repair", "--json"]).expect_code(1).json();
    assert_eq!(refused["changed"], false, "{refused}");
    assert_eq!(
        refused["old_head"]["seq"].as_u64().unwrap().to_string(),
        checkpoint.split(':').next().unwrap()
    );
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(env.archive.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(!names(".").iter().any(|n| n.starts_with("db.replaced")), "{:?}", names("."));
    // The index still names every entry, and says the damage: verify exits 1
    // (it said "ok" once repair had put a shorter index in place); a writer
    // refuses before it cuts anything off.
    let head = env.run(&["head"]).expect_code(0);
    assert_eq!(head.stdout.trim(), checkpoint.replace(':', " "));
    assert!(head.stderr.contains("but the index says"), "{head}");
    let log: Vec<String> = env.ok(&["log"]).stdout.lines().map(str::to_string).collect();
    assert_eq!(log, before);
    env.run(&["verify"]).expect_code(1);
    env.run(&["verify", "--checkpoint", &checkpoint]).expect_code(1);
    let other = new_document(&env);
    let run = env.run(&["ingest", &other]).expect_code(2);
    assert!(run.stderr.contains("nothing was written"), "{run}");
    assert_eq!(std::fs::read(&segment).unwrap(), cut, "no byte cut off or added");
    assert!(torn_files(&env.archive.join("log")).is_empty());
    // Given up: the index holds what the log files close.
    let given_up = env.run(&["repair", "--accept-loss"]).expect_code(1);
    assert!(given_up.stderr.contains("the rebuilt one holds"), "{given_up}");
    assert!(names(".").iter().any(|n| n.starts_with("db.replaced")), "{:?}", names("."));
    env.ok(&["verify"]);
    env.run(&["verify", "--checkpoint", &checkpoint]).expect_code(1);
}

#[test]
fn log_files_older_than_the_index_are_reported_and_writers_refuse() {
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    let old_log = env.dir.path().join("old-log");
    let old_packs = env.dir.path().join("old-captures");
    copy_dir(&env.archive.join("log"), &old_log);
    copy_dir(&env.archive.join("captures"), &old_packs);
    let jsonl = crate::support::jsonl_fixture();
    env.ok(&["ingest", &jsonl]);
    let checkpoint = env.head().replace(' ', ":");
    // The log and pack files restored from the backup taken before the
    // second document; db/ still records it.
    for (dir, old) in [("log", &old_log), ("captures", &old_packs)] {
        std::fs::remove_dir_all(env.archive.join(dir)).unwrap();
        copy_dir(old, &env.archive.join(dir));
    }
    // Re-ingesting the document the log lost is no "duplicate": refused.
    let run = env.run(&["ingest", &jsonl]).expect_code(2);
    assert!(run.stderr.contains("the index names entries the files do not hold"), "{run}");
    assert!(run.stderr.contains("nothing was written"), "{run}");
    assert!(!run.stdout.contains("duplicate"), "{run}");
    let stats = env.run(&["stats"]).expect_code(0);
    assert!(stats.stderr.contains("warning") && stats.stderr.contains("but the index says"), "{stats}");
    env.run(&["verify"]).expect_code(1);
    env.run(&["repair"]).expect_code(1);
    // Given up, the document goes in again: the same entries (the same
    // bytes, recorded at the same fixed time), so the same head.
    env.run(&["repair", "--accept-loss"]).expect_code(1);
    env.run(&["verify", "--checkpoint", &checkpoint]).expect_code(1);
    env.ok(&["ingest", &jsonl]);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

#[test]
fn torn_tails_moved_aside_never_overwrite_each_other() {
    let env = Env::new();
    three_documents(&env);
    let segment = env.archive.join("log").join("00000000.seg");
    for (i, junk) in [b"FIRST-TORN-TAIL".as_slice(), b"SECOND-TORN-TAIL"].iter().enumerate() {
        let mut f = std::fs::OpenOptions::new().append(true).open(&segment).unwrap();
        std::io::Write::write_all(&mut f, junk).unwrap();
        drop(f);
        let at = format!("2012-04-0{}T00:00:00Z", i + 1);
        env.ok(&["ingest", &page(), "--fetched-at", &at]);
    }
    let kept: Vec<Vec<u8>> =
        torn_files(&env.archive.join("log")).iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.contains(&b"FIRST-TORN-TAIL".to_vec()) && kept.contains(&b"SECOND-TORN-TAIL".to_vec()));
}

/// A JSON Lines document of `n` comments under article `article`.
fn comments(env: &Env, article: &str, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "{{\"type\":\"comment\",\"article\":\"https://example.com/{article}\",\"author\":\"a{i}\",\"body\":\"comment {i} on {article}\"}}\n"
        ));
    }
    env.write(&format!("{article}.jsonl"), s)
}

#[test]
fn a_damaged_id_run_is_rebuilt_from_the_log_when_a_commit_merges_it() {
    let env = Env::new();
    env.ok(&["ingest", &comments(&env, "one", 20)]);
    let head = env.head().replace(' ', ":");
    // A seq inside the one run: sorted order and fanout still hold, the
    // checksum does not.
    let runs: Vec<_> =
        std::fs::read_dir(env.archive.join("index")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let mut bytes = std::fs::read(&runs[0]).unwrap();
    let at = 48 + 2048 + 40 * 3 + 39;
    bytes[at] ^= 0x01;
    std::fs::write(&runs[0], &bytes).unwrap();
    let f = env.run(&["--wait", "20", "verify", "--json"]).expect_code(1).json();
    assert!(f["findings"].to_string().contains("checksum"), "{f}");
    // Runs merge MERGE_WIDTH at a time: the commits before that leave it
    // alone; the one whose run makes MERGE_WIDTH merges it, reading it
    // checked, and the runs are rebuilt from the log instead.
    let width = cairn::store::idruns::MERGE_WIDTH;
    for n in 2..width {
        let run = env.ok(&["--wait", "20", "ingest", &comments(&env, &format!("article{n}"), 20)]);
        assert!(!run.stderr.contains("rebuilding"), "{run}");
    }
    let run = env.ok(&["--wait", "20", "ingest", &comments(&env, "last", 20)]);
    assert!(run.stderr.contains("rebuilding it from the log"), "{run}");
    env.ok(&["--wait", "20", "verify", "--checkpoint", &head]);
    let run = env.ok(&["--wait", "20", "ingest", "--json", &comments(&env, "one", 20)]).json();
    assert_eq!(run["comments"]["new"], json!(0), "{run}");
}

/// After `fault` to `views/`, a view command gives what it gave before,
/// saying it rebuilt the views, and `verify --checkpoint` passes.
fn views_rebuilt_after(env: &Env, checkpoint: &str, fault: impl FnOnce(&std::path::Path)) {
    let changes = env.ok(&["changes", "--json"]).stdout;
    fault(&env.archive.join("views"));
    let run = env.ok(&["changes", "--json"]);
    assert_eq!(run.stdout, changes);
    assert!(run.stderr.contains("does not match its value files"), "{run}");
    env.ok(&["verify", "--checkpoint", checkpoint]);
}

#[test]
fn lost_view_value_files_are_rebuilt_from_the_log() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    views_rebuilt_after(&env, &checkpoint, |views| std::fs::remove_dir_all(views).unwrap());
}

#[test]
fn view_files_restored_from_before_an_ingest_are_found_stale_and_rebuilt() {
    // A backup of views/ put back after later ingests: the same files
    // (same epochs), shorter than what the index's view trees point into.
    let env = Env::new();
    let backup = env.dir.path().join("views-backup");
    let checkpoint =
        three_documents_with(&env, || crate::support::copy_dir(&env.archive.join("views"), &backup));
    views_rebuilt_after(&env, &checkpoint, |views| {
        std::fs::remove_dir_all(views).unwrap();
        crate::support::copy_dir(&backup, views);
    });
}

#[test]
fn value_files_no_tree_owns_are_removed_by_the_next_view_command() {
    // Left by a cairn stopped between dropping an old generation's tree and
    // deleting its files, or before the tree of a replay's new generation
    // was recorded: copies of a real generation's files, under names no
    // tree has.
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let changes = env.ok(&["changes", "--json"]).stdout;
    let views = env.archive.join("views");
    let files = |prefix: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&views)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
    };
    let kept = files("");
    let threads = files("threads.");
    assert!(!threads.is_empty(), "{kept:?}");
    for (i, name) in threads.iter().enumerate() {
        for orphan in [format!("threads.{}.a.vlog", 90 + i), format!("authors.{}.b.vlog", 90 + i)] {
            std::fs::copy(views.join(name), views.join(orphan)).unwrap();
        }
    }
    assert!(files("").len() > kept.len());
    let run = env.ok(&["changes", "--json"]);
    assert_eq!(run.stdout, changes);
    assert_eq!(files(""), kept, "only the files a tree owns are left");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

#[test]
fn a_pinned_view_keeps_its_pin_when_its_value_files_are_lost() {
    let env = Env::new();
    three_documents(&env);
    env.ok(&["replay", "--until", "46"]);
    let pinned = env.ok(&["changes", "--json"]).stdout;
    // The pointers' files hold nothing a tree reads: losing them changes
    // nothing. A pinned view's files lost: rebuilt to its pin, not to the
    // present.
    for f in std::fs::read_dir(env.archive.join("views")).unwrap() {
        let path = f.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("pointers.") || name.starts_with("threads.") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let run = env.ok(&["changes", "--json"]);
    assert_eq!(run.stdout, pinned, "{run}");
    let articles = env.ok(&["articles"]);
    assert!(articles.stdout.contains("pinned"), "{articles}");
    let v = env.ok(&["verify", "--json"]).json();
    assert_eq!(v["ok"], true, "{v}");
}

/// A capture of the sample page fetched at another time: every article and
/// comment in it is already archived, so the duplicate check (the
/// articles' id sets) must find them all.
fn ingest_again(env: &Env, fetched: &str) -> crate::support::Run {
    let run = env.ok(&["ingest", &page(), "--fetched-at", fetched]);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("appended 0 articles, 0 comments, 1 capture "), "{run}");
    run
}

/// The articles' id sets live in value files (`sets/`) behind sled's
/// `sets` tree. Files lost (or no longer the ones the tree points into)
/// are seen at open and the sets rebuilt from the log: the duplicate
/// check still finds every comment, and verify passes.
#[test]
fn lost_id_set_files_are_rebuilt_from_the_log() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    assert!(env.archive.join("sets/ids.a.vlog").exists());
    std::fs::remove_dir_all(env.archive.join("sets")).unwrap();
    let run = ingest_again(&env, "2012-04-01T00:00:00Z");
    assert!(run.stderr.contains("rebuilding them from the log"), "{run}");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    // Emptied files, the tree's record of them kept: the same.
    for side in ["a", "b"] {
        let path = env.archive.join(format!("sets/ids.{side}.vlog"));
        if path.exists() {
            std::fs::write(&path, b"").unwrap();
        }
    }
    let run = ingest_again(&env, "2012-04-02T00:00:00Z");
    assert!(run.stderr.contains("rebuilding them from the log"), "{run}");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    // verify says when it was the one that rebuilt them, and only then.
    std::fs::remove_dir_all(env.archive.join("sets")).unwrap();
    let run = env.ok(&["verify"]);
    assert!(run.stdout.contains("note: the articles' id sets (sets/) no longer matched"), "{run}");
    let report = env.ok(&["verify", "--json"]).json();
    assert_eq!((report["ok"].clone(), report["sets_rebuilt"].clone()), (json!(true), json!(false)));
    std::fs::remove_dir_all(env.archive.join("sets")).unwrap();
    assert_eq!(env.ok(&["verify", "--json"]).json()["sets_rebuilt"], json!(true));
}

/// An index of the previous layout (2: the id sets in sled's `log` tree)
/// has its sets moved to the `sets` tree and its value files on open,
/// losing none.
#[test]
fn id_sets_in_the_log_tree_are_moved_out_on_open() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    {
        let db = crate::tamper::db(&env.archive);
        let sets = crate::tamper::id_sets(&db, &env.archive);
        let log = db.open_tree("log").unwrap();
        let mut moved = 0;
        for kv in sets.scan_prefix(b"") {
            let (k, v) = kv.unwrap();
            if matches!(k.first(), Some(b'd' | b'e')) {
                log.insert(k, v).unwrap();
                moved += 1;
            }
        }
        assert!(moved >= 2, "{moved} sets");
        db.drop_tree("sets").unwrap();
        log.insert("mindex", "2").unwrap();
        db.flush().unwrap();
    }
    std::fs::remove_dir_all(env.archive.join("sets")).unwrap();
    ingest_again(&env, "2012-04-01T00:00:00Z");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    let db = crate::tamper::db(&env.archive);
    assert!(db.open_tree("log").unwrap().scan_prefix(b"d").next().is_none(), "moved out of the log tree");
    assert_eq!(db.open_tree("log").unwrap().get("mindex").unwrap().unwrap().as_ref(), b"4");
    assert!(db.open_tree("sets").unwrap().scan_prefix(b"d").next().is_some());
}

/// An index of layout 3 filed merges in 65,536 buckets by two bytes of
/// the id kept (nearly a sled key per merge), where layout 4 has 256: the
/// next open rebuilds the sets from the log, so the merges are found in
/// their buckets again (a second `dedupe --apply` appends none) and verify
/// finds every set where it belongs.
#[test]
fn an_index_of_layout_3_is_refiled_on_open() {
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    let variant = std::fs::read_to_string(page()).unwrap().replace(['“', '”'], "\"");
    env.ok(&["ingest", &env.write("quotes.txt", variant)]);
    let clusters = env.ok(&["dedupe", "--json"]).json()["clusters"].as_array().unwrap().clone();
    assert!(clusters.len() >= 2, "{clusters:?}");
    env.ok(&["dedupe", "--apply"]);
    let checkpoint = env.head().replace(' ', ":");
    let bucket = |keep: &[u8]| {
        let mut k = vec![b'd'];
        k.extend_from_slice(blake3::Hasher::new().update(b"merge\0").update(keep).finalize().as_bytes());
        k
    };
    let keeps: Vec<Vec<u8>> = clusters
        .iter()
        .map(|c| {
            let hex = c["keep"].as_str().unwrap();
            (0..4).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
        })
        .collect();
    {
        // Each merge set moved to where layout 3 filed it.
        let db = crate::tamper::db(&env.archive);
        let sets = crate::tamper::id_sets(&db, &env.archive);
        let mut moved = 0;
        for keep in &keeps {
            let (new, old) = (bucket(&keep[..1]), bucket(&keep[..2]));
            if let Some(v) = sets.get(&new).unwrap() {
                sets.apply(vec![(new, None), (old, Some(v.to_vec()))]).unwrap();
                moved += 1;
            }
        }
        assert!(moved >= 1, "no merge set found where layout 4 files it");
        db.open_tree("log").unwrap().insert("mindex", "3").unwrap();
        db.flush().unwrap();
    }
    let again = env.ok(&["dedupe", "--apply", "--json"]).json();
    assert_eq!(again["merges"]["new"], serde_json::json!(0), "{again}");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    let db = crate::tamper::db(&env.archive);
    assert_eq!(db.open_tree("log").unwrap().get("mindex").unwrap().unwrap().as_ref(), b"4");
    let sets = crate::tamper::id_sets(&db, &env.archive);
    for keep in &keeps {
        assert!(sets.get(&bucket(&keep[..1])).unwrap().is_some(), "a merge set where layout 4 files it");
        assert!(sets.get(&bucket(&keep[..2])).unwrap().is_none(), "none where layout 3 did");
    }
}

/// A rebuild of the id sets interrupted after the layout record was removed
/// (what a stale set marks first): the next open throws the sets away and
/// rebuilds them from the log. An index of a layout this cairn does not
/// know is left as it is, appends refused.
#[test]
fn an_interrupted_id_set_rebuild_starts_again_and_an_unknown_layout_is_left_alone() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    {
        let db = crate::tamper::db(&env.archive);
        let sets = crate::tamper::id_sets(&db, &env.archive);
        // Half emptied: one set gone.
        let (k, _) = sets.scan_prefix(b"d").next().unwrap().unwrap();
        sets.apply(vec![(k, None)]).unwrap();
        db.open_tree("log").unwrap().remove("mindex").unwrap();
        db.flush().unwrap();
    }
    ingest_again(&env, "2012-04-01T00:00:00Z");
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    {
        let db = crate::tamper::db(&env.archive);
        assert_eq!(db.open_tree("log").unwrap().get("mindex").unwrap().unwrap().as_ref(), b"4");
        db.open_tree("log").unwrap().insert("mindex", "9").unwrap();
        db.flush().unwrap();
    }
    let before = std::fs::read(env.archive.join("sets/ids.a.vlog")).unwrap();
    let page = page();
    let run = env.run(&["ingest", &page, "--fetched-at", "2012-04-02T00:00:00Z"]).expect_code(2);
    assert!(run.stderr.contains("layout"), "{run}");
    assert_eq!(std::fs::read(env.archive.join("sets/ids.a.vlog")).unwrap(), before, "the sets untouched");
}

/// sled syncs its log file as the archive closes, and sled 0.34.7 panics
/// when that fsync fails. An EIO injected there (with strace, root or
/// ptrace needed) ends the command with exit 2 and a message saying the
/// index could not be synced, not a panic; the archive then verifies with
/// every document. Skipped, saying so, without a working strace.
#[test]
fn an_index_that_cannot_be_synced_as_it_closes_is_an_error_not_a_panic() {
    let env = Env::new();
    let before = three_documents(&env);
    let later = std::fs::read_to_string(page()).unwrap().replace("Do You?", "Do You? Surely.");
    let later = env.write("later2.txt", later);
    // sled's file is synced by the opening thread when it opens and when
    // its last handle is dropped (strace counts per thread): the second
    // fsync of `db/db` on a thread fails.
    let db = env.archive.join("db").join("db");
    // `cairn ingest FILE` under strace, with `faults` (injections and the
    // files they are limited to).
    const TEST: &str = "an_index_that_cannot_be_synced_as_it_closes_is_an_error_not_a_panic";
    let traced = |faults: &[&std::ffi::OsStr], file: &str| env.traced(TEST, faults, &["ingest", file]);
    let Some(out) = traced(
        &["-e".as_ref(), "inject=fsync:error=EIO:when=2+".as_ref(), "-P".as_ref(), db.as_os_str()],
        &later,
    ) else {
        return;
    };
    let stderr = &out.stderr;
    assert_eq!(out.code, 2, "{out}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("the index (db/) could not be synced to disk as the archive closed"), "{stderr}");
    assert!(stderr.contains("Input/output error"), "{stderr}");
    // The document went in (its commit was synced) and the archive verifies.
    assert!(out.stdout.contains("appended 0 articles, 1 comment"), "{out}");
    env.ok(&["verify", "--checkpoint", &before]);
    let again = env.ok(&["ingest", &later]);
    assert!(again.stdout.contains("appended 0 articles, 0 comments, 0 captures"), "{}", again.stdout);

    // The log's own sync failing too: the command's error is reported, then
    // the index's, still no panic.
    let head = env.head().replace(' ', ":");
    let third =
        env.write("later3.txt", std::fs::read_to_string(page()).unwrap().replace("Do You?", "Do You? No."));
    let log = env.archive.join("log").join("00000000.seg");
    let out = traced(
        &[
            "-e".as_ref(),
            "inject=fsync:error=EIO:when=2+".as_ref(),
            "-e".as_ref(),
            "inject=fdatasync:error=EIO:when=1+".as_ref(),
            "-P".as_ref(),
            db.as_os_str(),
            "-P".as_ref(),
            log.as_os_str(),
        ],
        &third,
    )
    .expect("strace traced the first run");
    let stderr = &out.stderr;
    assert_eq!(out.code, 2, "{out}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("00000000.seg: Input/output error"), "{stderr}");
    assert!(stderr.contains("committed none of its 1 input"), "{stderr}");
    assert!(stderr.contains("could not be synced to disk as the archive closed"), "{stderr}");
    env.ok(&["verify", "--checkpoint", &head]);
}

/// Segments an older cairn wrote before commit records existed count as
/// closed when their entries continue the chain: `repair` of a format 2
/// archive extended since rebuilds it (it refused: "the log files close
/// only 0"); cut, the same archive is refused.
#[test]
fn repair_takes_an_older_cairns_segments_and_refuses_them_cut() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format2"), &env.archive);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    let checkpoint = env.head().replace(' ', ":");
    env.ok(&["repair"]);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    let cut = Env::new();
    copy_dir(&fixture("archives").join("format2"), &cut.archive);
    let head = cut.head();
    let segment = cut.archive.join("log").join("00000000.seg");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 1).unwrap();
    let run = cut.run(&["repair"]).expect_code(1);
    assert!(run.stderr.contains("Nothing was changed"), "{run}");
    assert_eq!(cut.run(&["head"]).stdout, format!("{head}\n"));
}

/// A pack file cut short (the last capture's bytes): repair refuses, a
/// writer refuses without moving anything; given up, the archive takes
/// documents again and verifies.
#[test]
fn a_pack_file_cut_short_is_refused_by_repair_and_writers() {
    let env = Env::new();
    three_documents(&env);
    let pack = env.archive.join("captures").join("00000000.pack");
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&pack).unwrap().set_len(len - 1).unwrap();
    let cut = std::fs::read(&pack).unwrap();
    let run = env.run(&["repair"]).expect_code(1);
    assert!(
        run.stderr.contains("are not in them whole") && run.stderr.contains("Nothing was changed"),
        "{run}"
    );
    let other = new_document(&env);
    let run = env.run(&["ingest", &other]).expect_code(2);
    assert!(run.stderr.contains("00000000.pack is"), "{run}");
    assert_eq!(std::fs::read(&pack).unwrap(), cut);
    assert!(torn_files(&env.archive.join("captures")).is_empty());
    env.run(&["repair", "--accept-loss"]).expect_code(1);
    env.ok(&["ingest", &other]);
    env.ok(&["verify"]);
}

/// An index (db/) of another archive put in place of this one's: it names
/// bytes the log files hold otherwise. Readers warn, writers refuse and cut
/// nothing (an ingest moved the packs' later captures aside as "an
/// interrupted commit"); repair says so and changes nothing; given up, the
/// index of what the files hold is rebuilt, every entry of them kept.
#[test]
fn an_index_of_another_archive_is_named_and_nothing_is_cut() {
    let other = Env::new();
    other.ok(&["ingest", &crate::support::jsonl_fixture()]);
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let files = |env: &Env| -> Vec<Vec<u8>> {
        ["log/00000000.seg", "captures/00000000.pack"]
            .iter()
            .map(|p| std::fs::read(env.archive.join(p)).unwrap())
            .collect()
    };
    let before = files(&env);
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    copy_dir(&other.archive.join("db"), &env.archive.join("db"));
    let head = env.run(&["head"]).expect_code(0);
    assert!(head.stderr.contains("another archive"), "{head}");
    let run = env.run(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]).expect_code(2);
    assert!(run.stderr.contains("another archive") && run.stderr.contains("nothing was written"), "{run}");
    assert_eq!(files(&env), before, "nothing cut or moved");
    let run = env.run(&["repair"]).expect_code(1);
    assert!(
        run.stderr.contains("not the index's head") && run.stderr.contains("Nothing was changed"),
        "{run}"
    );
    assert_eq!(files(&env), before);
    let run = env.run(&["repair", "--accept-loss"]).expect_code(1);
    assert!(run.stderr.contains("another archive"), "{run}");
    assert_eq!(files(&env), before);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

/// Damage in the middle of the log with whole commits after it: repair
/// refuses; given up, what lay past the damage is moved aside (never
/// deleted), and writers append again (they refused for good).
#[test]
fn what_accept_loss_gives_up_is_moved_aside_and_writers_go_on() {
    let env = Env::new();
    three_documents(&env);
    let segment = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    env.run(&["repair"]).expect_code(1);
    env.run(&["repair", "--accept-loss"]).expect_code(1);
    assert_eq!(torn_files(&env.archive.join("log")).len(), 1);
    env.ok(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]);
    env.ok(&["verify"]);
}

/// An I/O error writing the id sets (derived) while the index is rebuilt
/// or caught up says nothing of where the log files end: the command fails
/// (exit 2, the file named) and moves nothing aside. It was taken for the
/// end of the log files: `repair --accept-loss` moved every entry aside,
/// and `head` with `db/` lost printed an empty archive and exited 0.
#[test]
fn an_io_error_on_the_id_sets_moves_nothing_aside() {
    const TEST: &str = "an_io_error_on_the_id_sets_moves_nothing_aside";
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    let first = env.head().replace(' ', ":");
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    let second = env.head().replace(' ', ":");
    let sets = env.archive.join("sets");
    let failing: Vec<std::ffi::OsString> = [
        "-e".into(),
        "inject=fdatasync:error=EIO:when=1+".into(),
        "-e".into(),
        "inject=fsync:error=EIO:when=1+".into(),
        "-P".into(),
        sets.join("ids.a.vlog").into_os_string(),
        "-P".into(),
        sets.join("ids.b.vlog").into_os_string(),
    ]
    .into();
    let faults: Vec<&std::ffi::OsStr> = failing.iter().map(|f| f.as_os_str()).collect();
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let Some(out) = env.traced(TEST, &faults, &["head"]) else { return };
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("ids.a.vlog: Input/output error"), "{out}");
    assert_eq!(env.head(), second.replace(':', " "), "caught up once the sets can be written");
    // The second commit's record cut short: `--accept-loss` gives it up,
    // and nothing else, once the sets can be written.
    let segment = env.archive.join("log").join("00000000.seg");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 3).unwrap();
    let out = env.traced(TEST, &faults, &["repair", "--accept-loss"]).expect("strace traced the first run");
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("Input/output error"), "{out}");
    assert!(torn_files(&env.archive.join("log")).is_empty(), "{out}");
    assert!(torn_files(&env.archive.join("captures")).is_empty(), "{out}");
    env.run(&["repair", "--accept-loss"]).expect_code(1);
    assert_eq!(env.head(), first.replace(':', " "));
    env.ok(&["verify", "--checkpoint", &first]);
}

/// A `repair` that could not write what it derives from the log with the
/// index (the id runs in `index/`, the Merkle tree's hashes in `tree/`)
/// fails, naming the file and saying the next open rebuilds them (in
/// `--json`'s `problem` too): it
/// reported the index rebuilt and exited 0, with a warning. The next
/// command rebuilds them, and the checkpoint saved before verifies.
#[test]
fn a_repair_that_cannot_write_the_derived_files_fails() {
    const TEST: &str = "a_repair_that_cannot_write_the_derived_files_fails";
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    // Past 64 entries: the Merkle tree stores a hash (a full tile).
    let mut more =
        "{\"type\":\"article\",\"url\":\"https://example.com/more\",\"title\":\"More\"}\n".to_string();
    for i in 0..40 {
        more.push_str(&format!(
            "{{\"type\":\"comment\",\"author\":\"u{i}\",\"posted_at\":\"2024-01-01T10:00:00Z\",\"body\":\"number {i}\"}}\n"
        ));
    }
    more.push_str("{\"type\":\"capture\",\"fetched_at\":\"2024-01-02T00:00:00Z\"}\n");
    env.ok(&["ingest", &env.write("more.jsonl", more)]);
    let head = env.head();
    let seq: u64 = head.split(' ').next().unwrap().parse().unwrap();
    assert!(seq > 64, "{head}");
    let hashes = env.archive.join("tree").join("hashes");
    assert!(std::fs::metadata(&hashes).unwrap().len() > 16, "the tree stores a hash");
    let index = env.archive.join("index");
    let cases: [(&str, Vec<std::ffi::OsString>, &str); 2] = [
        (
            "index",
            vec![
                "-e".into(),
                "trace=write".into(),
                "-e".into(),
                "inject=write:error=ENOSPC:when=1+".into(),
                "-P".into(),
                index.join(format!(".{:016x}-{seq:016x}.idx.tmp", 1)).into_os_string(),
            ],
            ".idx.tmp: No space left on device",
        ),
        (
            "tree",
            // (The first write is the header, the second the hash.)
            vec![
                "-e".into(),
                "trace=pwrite64".into(),
                "-e".into(),
                "inject=pwrite64:error=EIO:when=2+".into(),
                "-P".into(),
                hashes.clone().into_os_string(),
            ],
            "hashes: Input/output error",
        ),
    ];
    for (what, faults, says) in cases {
        for f in std::fs::read_dir(&index).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        std::fs::remove_file(&hashes).unwrap();
        let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
        let Some(out) = env.traced(TEST, &faults, &["repair", "--json"]) else { return };
        assert_eq!(out.code, 2, "{what}: {out}");
        assert!(out.stderr.contains(says), "{what}: {out}");
        assert!(out.stderr.contains("not all the files derived from the log with it"), "{what}: {out}");
        // (`--json` says so too: its `problem` was null.)
        let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert!(report["problem"].as_str().is_some_and(|p| p.contains(says)), "{what}: {out}");
        env.ok(&["verify", "--checkpoint", &head.replace(' ', ":")]);
        assert!(std::fs::metadata(&hashes).unwrap().len() > 16, "{what}: the next open stored the hash");
    }
}

/// strace arguments that make the reads of `file` fail with EIO (`when`:
/// strace's which, `3` the third only).
fn read_fails(file: &std::path::Path, when: &str) -> Vec<std::ffi::OsString> {
    let inject = format!("inject=read,pread64:error=EIO:when={when}");
    ["-e", "trace=read,pread64", "-e", &inject, "-P"]
        .map(Into::into)
        .into_iter()
        .chain([file.into()])
        .collect()
}

/// A read of the log that fails once (EIO: a disk's fault, not the
/// archive's) stops `verify` with the error on the file (exit 2): it was
/// taken for damage, and `verify` reported some hundred problems (exit 1)
/// in an intact archive. The next `verify` is clean. So for the pack
/// file, and for the files derived from the log.
#[test]
fn an_io_error_reading_the_log_is_no_finding_of_damage() {
    const TEST: &str = "an_io_error_reading_the_log_is_no_finding_of_damage";
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    let segment = env.archive.join("log").join("00000000.seg");
    // (The first reads are the open's, of the last commit: the third is
    // verify's own pass over the segments.)
    let faults = read_fails(&segment, "3");
    let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
    let Some(out) = env.traced(TEST, &faults, &["verify"]) else { return };
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("00000000.seg: Input/output error"), "{out}");
    assert!(!out.stdout.contains("problems found") && !out.stderr.contains("corrupt"), "{out}");
    env.ok(&["verify"]);
    // So is one of the captures' pack file (it was a blob finding, exit 1).
    let pack = env.archive.join("captures").join("00000000.pack");
    let faults = read_fails(&pack, "1");
    let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
    let out = env.traced(TEST, &faults, &["verify"]).expect("strace traced the first run");
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("00000000.pack: Input/output error"), "{out}");
    assert!(!out.stdout.contains("problems found"), "{out}");
    env.ok(&["verify"]);
    // And of the files derived from the log (they were findings: an id
    // set that does not decode, an id run that does not match its
    // checksum, a view's state that cannot be read), the second read of
    // each (the first is its header's, at the open).
    let mut derived = Vec::new();
    for dir in ["sets", "index", "views"] {
        for file in std::fs::read_dir(env.archive.join(dir)).unwrap() {
            let path = file.unwrap().path();
            if std::fs::metadata(&path).unwrap().len() > 16 && !path.to_string_lossy().contains("pointers") {
                derived.push(path);
            }
        }
    }
    assert_eq!(derived.len(), 5, "{derived:?}");
    for path in derived {
        let faults = read_fails(&path, "2");
        let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
        let out = env.traced(TEST, &faults, &["verify"]).expect("strace traced the first run");
        assert_eq!(out.code, 2, "{}: {out}", path.display());
        assert!(out.stderr.contains("Input/output error"), "{}: {out}", path.display());
        assert!(!out.stdout.contains("problems found"), "{}: {out}", path.display());
        env.ok(&["verify"]);
    }
}

/// A log file that is there but cannot be opened (a symlink that loops,
/// or one to a file that is gone) is an error naming it, not an archive
/// that ends before it: with `db/` lost, `head` printed an empty archive
/// and exited 0, and the next ingest moved the pack files aside. So is
/// `log/` gone, a link to nothing, or empty where the index says entries
/// were committed.
#[test]
fn a_log_file_that_cannot_be_opened_is_an_error_not_the_end() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let segment = env.archive.join("log").join("00000000.seg");
    let kept = env.dir.path().join("segment.kept");
    std::fs::rename(&segment, &kept).unwrap();
    std::os::unix::fs::symlink("00000000.seg", &segment).unwrap();
    let run = env.run(&["head"]).expect_code(2);
    assert!(run.stderr.contains("00000000.seg: Too many levels of symbolic links"), "{run}");
    // A link to a file that is gone (a disk not mounted): the same, and the
    // next ingest moves nothing aside.
    std::fs::remove_file(&segment).unwrap();
    std::os::unix::fs::symlink("/nonexistent-volume/00000000.seg", &segment).unwrap();
    let run = env.run(&["head"]).expect_code(2);
    assert!(run.stderr.contains("00000000.seg: No such file or directory"), "{run}");
    env.run(&["ingest", &new_document(&env)]).expect_code(2);
    assert!(torn_files(&env.archive.join("captures")).is_empty());
    std::fs::remove_file(&segment).unwrap();
    // `log/` gone as a whole beside the captures: refused, nothing moved.
    let log = env.archive.join("log");
    let log_kept = env.dir.path().join("log.kept");
    std::fs::rename(&log, &log_kept).unwrap();
    let run = env.run(&["head"]).expect_code(2);
    assert!(run.stderr.contains("log is missing while") && run.stderr.contains("restore log/"), "{run}");
    env.run(&["ingest", &new_document(&env)]).expect_code(2);
    env.run(&["repair"]).expect_code(2);
    assert!(torn_files(&env.archive.join("captures")).is_empty());
    // Or a link to a volume not mounted: the same.
    std::os::unix::fs::symlink("/nonexistent-volume/log", &log).unwrap();
    env.run(&["head"]).expect_code(2);
    env.run(&["ingest", &new_document(&env)]).expect_code(2);
    assert!(torn_files(&env.archive.join("captures")).is_empty());
    std::fs::remove_file(&log).unwrap();
    // Or `log/` there but empty (a volume not mounted on it) while the id
    // runs say entries were committed: the same. It read as an archive
    // with no entries, and the next ingest moved the pack files aside and
    // began another history.
    std::fs::create_dir(&log).unwrap();
    let run = env.run(&["head"]).expect_code(2);
    assert!(run.stderr.contains("log holds no log records while") && run.stderr.contains("index"), "{run}");
    assert!(run.stderr.contains("`cairn repair --accept-loss` gives up what they held"), "{run}");
    env.run(&["ingest", &new_document(&env)]).expect_code(2);
    env.run(&["repair"]).expect_code(2);
    assert!(torn_files(&env.archive.join("captures")).is_empty());
    std::fs::remove_dir(&log).unwrap();
    std::fs::rename(&log_kept, &log).unwrap();
    std::fs::rename(&kept, &segment).unwrap();
    assert_eq!(env.head(), checkpoint.replace(':', " "));
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

/// A log whose only file was emptied, beside id runs and a Merkle tree
/// that say entries were committed, is refused by every command but
/// `repair --accept-loss`, which gives the entries up (and finishes when
/// run again after it was stopped): writers then start again at seq 1.
#[test]
fn an_emptied_log_is_refused_until_accept_loss_gives_it_up() {
    let env = Env::new();
    three_documents(&env);
    std::fs::write(env.archive.join("log").join("00000000.seg"), b"").unwrap();
    env.run(&["head"]).expect_code(2);
    env.run(&["repair"]).expect_code(2);
    env.run(&["ingest", &new_document(&env)]).expect_code(2);
    env.run(&["repair", "--accept-loss"]).expect_code(1);
    assert_eq!(env.head(), format!("0 {}", "0".repeat(64)));
    env.ok(&["ingest", &new_document(&env)]);
    env.ok(&["verify"]);
}

/// An id run replaced by a directory is damage (a finding, the run moved
/// aside and rebuilt), not an I/O error: taken for one, it stopped every
/// command, `repair` included. So are the other files derived from the
/// log.
#[test]
fn an_id_run_that_is_a_directory_is_damage_not_an_io_error() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let index = env.archive.join("index");
    let run = std::fs::read_dir(&index).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&run).unwrap();
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("filler"), [0u8; 8192]).unwrap();
    let out = env.run(&["verify"]).expect_code(1);
    assert!(out.stdout.contains("index run"), "{out}");
    env.ok(&["repair"]);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    // An id set's value file and the Merkle tree's hashes in the place of
    // a directory are moved aside and made again from the log (every
    // command stopped on them, `repair` included).
    for file in ["sets/ids.a.vlog", "tree/hashes"] {
        let path = env.archive.join(file);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("x")).unwrap();
        let out = env.ok(&["head"]);
        assert!(out.stderr.contains("is a directory, not the file cairn keeps there"), "{file}: {out}");
        assert!(std::fs::metadata(&path).unwrap().is_file(), "{file}");
        env.ok(&["verify", "--checkpoint", &checkpoint]);
    }
    // And a directory at an id run's temporary name (it blocked the id
    // index for good: `repair` said to run `repair` again).
    let head: u64 = checkpoint.split(':').next().unwrap().parse().unwrap();
    for run in std::fs::read_dir(&index).unwrap() {
        let run = run.unwrap().path();
        if run.is_file() {
            std::fs::remove_file(run).unwrap();
        }
    }
    std::fs::create_dir_all(index.join(format!(".{:016x}-{head:016x}.idx.tmp", 1)).join("x")).unwrap();
    env.ok(&["repair"]);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

/// A whole commit past a lagging index's end, after a record whose length
/// is damaged: writers refuse and cut nothing, also when reading the log
/// fails (EIO) from any point on. A failed read was taken for "no whole
/// commit there", and the ingest cut the pack's tail, which the commit
/// relies on, as an interrupted commit's.
#[test]
fn a_failed_read_is_no_answer_that_nothing_whole_lies_past_the_end() {
    let env = Env::new();
    env.ok(&["ingest", &page()]);
    let segment = env.archive.join("log").join("00000000.seg");
    let end = std::fs::metadata(&segment).unwrap().len() as usize;
    let backup = env.dir.path().join("db-backup");
    copy_dir(&env.archive.join("db"), &backup);
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    copy_dir(&backup, &env.archive.join("db"));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[end + 8..end + 12].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    std::fs::write(&segment, &bytes).unwrap();
    let pack = env.archive.join("captures").join("00000000.pack");
    let packed = std::fs::read(&pack).unwrap();
    let args = ["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"];
    for when in 1..=24 {
        let faults = read_fails(&segment, &format!("{when}+"));
        let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
        let Some(out) = env.traced("a_failed_read_is_no_answer", &faults, &args) else { return };
        assert_eq!(out.code, 2, "when={when}: {out}");
        assert!(!out.stderr.contains("aside"), "when={when}: nothing is cut: {out}");
        assert_eq!(std::fs::read(&segment).unwrap(), bytes, "when={when}: {out}");
        assert_eq!(std::fs::read(&pack).unwrap(), packed, "when={when}: {out}");
        assert!(torn_files(&env.archive.join("log")).is_empty(), "when={when}: {out}");
        assert!(torn_files(&env.archive.join("captures")).is_empty(), "when={when}: {out}");
    }
    let run = env.run(&args).expect_code(2);
    assert!(run.stderr.contains("whole commits past the end"), "{run}");
}

/// The same unacknowledged commit with one flipped bit in its commit
/// record (not zeros): what lies there was written, so it is damage, not
/// a torn tail: writers refuse and cut nothing.
#[test]
fn a_flipped_bit_in_a_commit_record_past_a_lagging_index_is_damage_not_a_torn_tail() {
    let env = Env::new();
    let mut damaged = Vec::new();
    let first = second_commit_unacknowledged(&env, |segment| {
        let mut bytes = std::fs::read(segment).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x01;
        std::fs::write(segment, &bytes).unwrap();
        damaged = bytes;
    });
    let run = env.run(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]).expect_code(2);
    assert!(run.stderr.contains("whole commits past the end"), "{run}");
    assert_eq!(std::fs::read(env.archive.join("log").join("00000000.seg")).unwrap(), damaged);
    assert!(torn_files(&env.archive.join("log")).is_empty());
    let run = env.run(&["verify", "--checkpoint", &first]).expect_code(1);
    assert!(run.stdout.contains("whole commits past the committed end"), "{run}");
    assert!(run.stdout.contains("1 problem found"), "{run}");
}

/// A pack record's header damaged (its length past the file's end): the
/// files are as long as the commits need, so repair rebuilds, comes up
/// short, and says so every time it runs while writers refuse (it said
/// "ok" the second time); --accept-loss names what it moved aside and
/// exits 1; after it, repair is clean and writers append.
#[test]
fn repair_says_every_time_while_writers_refuse_and_names_what_it_gives_up() {
    let env = Env::new();
    three_documents(&env);
    let pack = env.archive.join("captures").join("00000000.pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    // The last record's header: walk them from the start.
    let last = *record_starts(&bytes).last().unwrap();
    let len = u32::from_be_bytes(bytes[last + 8..last + 12].try_into().unwrap()) as usize;
    assert_eq!(last + 12 + len, bytes.len(), "the pack file is whole records");
    bytes[last + 8..last + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&pack, &bytes).unwrap();
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    for _ in 0..2 {
        let run = env.run(&["repair", "--json"]).expect_code(1);
        let v = run.json();
        assert!(v["problem"].as_str().unwrap().contains("whole commits past the end"), "{run}");
        assert!(run.stderr.contains("--accept-loss"), "{run}");
    }
    let other = new_document(&env);
    env.run(&["ingest", &other]).expect_code(2);
    let run = env.run(&["repair", "--accept-loss", "--json"]).expect_code(1);
    let v = run.json();
    assert_eq!(v["given_up"].as_array().unwrap().len(), 2, "{run}");
    assert!(v["problem"].is_null(), "{run}");
    assert!(run.stderr.contains("given up (--accept-loss)"), "{run}");
    env.ok(&["repair"]);
    env.ok(&["ingest", &other]);
    env.ok(&["verify"]);
}

/// A flipped bit in a record header's length throws a walk of the headers
/// off its records: the commits after it are found by their commit
/// records' bytes all the same, so a lost index plus that damage is no
/// "empty archive" a writer may cut (the whole log was moved aside), and
/// a flipped length in the last commit record past a lagging index is no
/// torn write either.
#[test]
fn commits_past_a_damaged_header_are_found_and_never_cut() {
    let env = Env::new();
    let checkpoint = three_documents(&env);
    let segment = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[11] ^= 0x01; // the low byte of the first record's length
    std::fs::write(&segment, &bytes).unwrap();
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let run = env.run(&["head"]).expect_code(0);
    assert!(run.stderr.contains("whole commits past the end"), "{run}");
    let other = new_document(&env);
    env.run(&["ingest", &other]).expect_code(2);
    env.run(&["repair"]).expect_code(1);
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing cut");
    assert!(torn_files(&env.archive.join("log")).is_empty());
    bytes[11] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    env.ok(&["repair"]);
    env.ok(&["verify", "--checkpoint", &checkpoint]);

    // The last commit record's own length, past a lagging index.
    let lagging = Env::new();
    let first = second_commit_unacknowledged(&lagging, |segment| {
        let mut bytes = std::fs::read(segment).unwrap();
        // The commit record: the last record, its header 12 bytes from
        // where its payload (an envelope of under 255 bytes) starts.
        let n = bytes.len();
        let at = (0..n - 12).rev().find(|&i| bytes[i..i + 8] == [0xff; 8]).unwrap();
        assert!(n - at < 255 + 12);
        bytes[at + 11] ^= 0x01;
        std::fs::write(segment, &bytes).unwrap();
    });
    lagging.run(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]).expect_code(2);
    assert!(torn_files(&lagging.archive.join("log")).is_empty());
    lagging.run(&["verify", "--checkpoint", &first]).expect_code(1);
}

/// An archive an older cairn wrote (segments before commit records, no
/// commit record at all), a middle segment damaged and the index lost:
/// the whole segments after it are no torn tail.
#[test]
fn an_older_cairns_segments_past_damage_are_never_cut() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format2"), &env.archive);
    let segment = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    // The last record but one: walk the headers.
    let starts = record_starts(&bytes);
    let victim = starts[starts.len() - 2];
    bytes[victim + 12 + 20] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    let other = new_document(&env);
    let run = env.run(&["ingest", &other]).expect_code(2);
    assert!(run.stderr.contains("whole commits past the end"), "{run}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing cut");
}

/// A torn tail whose bytes hold a commit record's tag (eight 0xFF bytes,
/// as a page stored raw can) with a length that fits after it is still a
/// torn tail: only an intact envelope after such bytes is a record (an
/// interrupted ingest of such a page was taken for damage, and every write
/// refused).
#[test]
fn a_commit_tags_bytes_inside_a_torn_tail_are_no_commit() {
    let env = Env::new();
    three_documents(&env);
    let checkpoint = env.head().replace(' ', ":");
    let seq: u64 = checkpoint.split(':').next().unwrap().parse().unwrap();
    let segment = env.archive.join("log").join("00000000.seg");
    // A segment record cut short: its header claims more than is there,
    // and what is there holds eight 0xFF bytes, a length that fits, and
    // bytes that are no envelope (not zeros at the end).
    let mut tail = Vec::new();
    tail.extend_from_slice(&(seq + 1).to_be_bytes());
    tail.extend_from_slice(&100_000u32.to_be_bytes());
    tail.extend_from_slice(b"page bytes ");
    tail.extend_from_slice(&[0xff; 8]);
    tail.extend_from_slice(&40u32.to_be_bytes());
    tail.extend((0..40u8).map(|i| i.wrapping_mul(37).wrapping_add(1)));
    tail.extend_from_slice(b" and the rest of the page, cut");
    let mut f = std::fs::OpenOptions::new().append(true).open(&segment).unwrap();
    std::io::Write::write_all(&mut f, &tail).unwrap();
    drop(f);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
    env.ok(&["ingest", &page(), "--fetched-at", "2012-04-01T00:00:00Z"]);
    assert_eq!(torn_files(&env.archive.join("log")).len(), 1);
    env.ok(&["verify", "--checkpoint", &checkpoint]);
}

/// In an archive an older cairn wrote, a flipped bit in a segment's length
/// throws a walk of the headers off: the whole segments after it are found
/// by their bytes (seqs past the head, intact envelopes) and never cut.
#[test]
fn an_older_cairns_segments_past_a_damaged_length_are_never_cut() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format2"), &env.archive);
    let segment = env.archive.join("log").join("00000000.seg");
    let bytes = std::fs::read(&segment).unwrap();
    let starts = record_starts(&bytes);
    for (victim, byte) in [(starts.len() - 3, 11), (starts.len() - 3, 8), (starts.len() - 1, 11)] {
        let mut damaged = bytes.clone();
        damaged[starts[victim] + byte] ^= 0x01;
        std::fs::write(&segment, &damaged).unwrap();
        let _ = std::fs::remove_dir_all(env.archive.join("db"));
        let other = new_document(&env);
        let run = env.run(&["ingest", &other]).expect_code(2);
        assert!(run.stderr.contains("whole commits past the end"), "record {victim} byte {byte}: {run}");
        assert_eq!(std::fs::read(&segment).unwrap(), damaged, "nothing cut");
    }
}
