//! Archives written by earlier versions of cairn (fixtures/archives/) are
//! read, verified and extended, and their history is read with today's
//! rules (a v1 capture's gaps are inferred from what it recorded).

use crate::support::{copy_dir, fixture, Env};
use serde_json::{json, Value};

const FORMAT2_HEAD: &str = "49:f8f66a6658245d082d9066eb0c4e43ff2d58f647439072acfa75facdbab88ec4";

#[test]
fn a_format_2_archive_is_read_with_todays_rules_and_extended() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format2"), &env.archive);
    // Views the older cairn stored (every value in sled, no tag byte):
    // verify reports them (and changes nothing); any other command drops
    // them, and the next view command rebuilds them.
    let stale = env.run(&["verify"]).expect_code(1);
    assert!(stale.stdout.contains("stored by an older cairn"), "{stale}");
    assert_eq!(env.head(), FORMAT2_HEAD.replace(':', " "));
    assert!(env.ok(&["thread", "kayani"]).stdout.contains("comments"));
    // Rebuilt as a new generation (threads.N), its values in value files.
    let vlog = std::fs::read_dir(env.archive.join("views"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("threads."))
        .map(|e| e.metadata().unwrap().len())
        .max();
    assert!(vlog.is_some_and(|len| len > 16), "{vlog:?}");
    env.ok(&["verify"]);
    let marker = || std::fs::read_to_string(env.archive.join("cairn-archive")).unwrap();
    // Opened, it is fenced off from older cairns (its index is converted),
    // and its marker still says its log has segments no commit record
    // closes: with its index lost, every one of them is taken in again.
    assert_eq!(marker(), "cairn archive\nformat 6\nlog not closed by commit records\n");
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    assert_eq!(env.head(), FORMAT2_HEAD.replace(':', " "));

    // The v1 captures: two complete, the cut one partial (inferred).
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let caps: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let complete: Vec<Value> = caps.iter().map(|c| c["complete"].clone()).collect();
    assert_eq!(complete, vec![json!(true), json!(true), json!(false)]);
    assert!(caps.iter().all(|c| c["gaps"].is_null()), "v1 captures recorded no gaps");
    let changes = env.ok(&["changes", "--json"]).json()["changes"].clone();
    let removed: Vec<usize> =
        changes.as_array().unwrap().iter().map(|r| r["removed"].as_array().unwrap().len()).collect();
    assert_eq!(removed, vec![0, 1, 0], "the cut scrape no longer removes a comment");
    env.ok(&["verify", "--checkpoint", FORMAT2_HEAD]);

    // Re-parsed by today's parser, each capture keeps its place in history
    // (one without fetched_at is dated by when it was recorded).
    let statuses = |env: &Env| -> Vec<(Value, Value)> {
        let t = env.ok(&["thread", "kayani", "--json"]).json();
        t["comments"].as_array().unwrap().iter().map(|c| (c["id"].clone(), c["status"].clone())).collect()
    };
    let before = statuses(&env);
    let run = env.ok(&["reparse", "--json"]).json();
    assert_eq!(run["captures"]["new"], json!(3), "{run}");
    assert_eq!(statuses(&env), before);
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["fetched_at"], json!("2023-11-15T00:13:20+00:00"), "{last}");
    assert_eq!(last["gaps"], json!(["no-end-marker", "cut-inside-comment", "count-mismatch"]));
    env.ok(&["verify", "--checkpoint", FORMAT2_HEAD]);

    // Extended with a v2 capture, everything still verifies. (A new
    // scrape: without a fetch time, the same bytes are an observation the
    // older cairn recorded, which `reparse` read again above.)
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    let again = env.ok(&["ingest", "--json", &page]).json();
    assert_eq!(again["captures"], json!({"new": 0, "duplicate": 1}), "{again}");
    env.ok(&["ingest", "--fetched-at", "2024-01-01T00:00:00Z", &page]);
    assert_eq!(marker(), "cairn archive\nformat 6\n", "closed by commit records since the first commit");
    env.ok(&["verify", "--checkpoint", FORMAT2_HEAD]);
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["gaps"], json!([]));
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    assert!(thread["comments"].as_array().unwrap().iter().all(|c| c["status"] == json!("present")));
}

#[test]
fn an_export_made_by_a_format_2_cairn_imports() {
    let env = Env::new();
    let file = fixture("archives").join("format2-export.cairn").display().to_string();
    env.ok(&["import", &file]);
    assert_eq!(env.head(), FORMAT2_HEAD.replace(':', " "));
    env.ok(&["verify", "--checkpoint", FORMAT2_HEAD]);
    let changes = env.ok(&["changes", "--json"]).json()["changes"].clone();
    assert_eq!(changes.as_array().unwrap().last().unwrap()["to"]["complete"], json!(false));
}

/// A later scrape of the sample page, which removes Tony C.'s first comment.
fn without_tony(sample: &str) -> String {
    let tony = "  • Tony C.\n    Mar 29, 2012 - 12:16AM\n";
    let at = sample.find(tony).unwrap();
    let next = at + tony.len() + sample[at + tony.len()..].find("\n  • ").unwrap() + 1;
    format!("{}{}", &sample[..at], &sample[next..]).replace("Reader Comments (44)", "Reader Comments (43)")
}

/// The sample page, which the format 2 fixture's cairn captured with a
/// fetch time and recorded the parse of apart (a key of its own, as every
/// cairn before format 6 did), ingested again without one after a later
/// scrape: the same observation re-read, dated by it, not a scrape made
/// now that brings back the comment the later scrape no longer showed.
#[test]
fn a_page_an_older_cairn_recorded_apart_keeps_its_fetch_time_when_ingested_again() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format2"), &env.archive);
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt");
    let sample = std::fs::read_to_string(&page).unwrap();
    env.ok(&[
        "ingest",
        "--fetched-at",
        "2024-06-01T00:00:00Z",
        &env.write("later.txt", without_tony(&sample)),
    ]);
    let run = env.ok(&["ingest", "--json", &page.display().to_string()]).json();
    assert_eq!(run["captures"]["new"], json!(1), "{run}");
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["fetched_at"], json!("2012-03-30T08:00:00+00:00"), "{last}");
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let tony: Vec<&Value> = thread["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["author"] == json!("Tony C."))
        .map(|c| &c["status"])
        .collect();
    assert!(tony.contains(&&json!("removed")), "the later scrape stays the latest: {tony:?}");
    env.ok(&["verify"]);
}

/// A page an earlier parser read, ingested again without a fetch time, is
/// that observation re-read by today's parser (as `reparse` takes it): its
/// new capture keeps the old one's time, and a later scrape stays the
/// latest. Observed now, the old page would undo what came after it.
#[test]
fn a_page_an_earlier_parser_read_keeps_its_time_when_ingested_again() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format2"), &env.archive);
    let sample = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    env.ok(&[
        "ingest",
        "--fetched-at",
        "2024-06-01T00:00:00Z",
        &env.write("later.txt", without_tony(&sample)),
    ]);
    // The archive's third scrape, which the fixture's cairn ingested without
    // a fetch time (recorded at 2023-11-15T00:13:20Z), ingested again years on.
    let cut = &sample[..sample.find("I remember the initial negotiations").unwrap() + 40];
    let page = env.write("cut.txt", cut);
    let run =
        env.command(&["ingest", "--json", &page]).env("SOURCE_DATE_EPOCH", "1800000000").output().unwrap();
    assert!(run.status.success(), "{run:?}");
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["parser_version"], json!(5), "{last}");
    assert_eq!(last["fetched_at"], json!("2023-11-15T00:13:20+00:00"), "{last}");
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let latest = thread["captures"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(latest["fetched_at"], json!("2024-06-01T00:00:00+00:00"), "the later scrape stays the latest");
    // Ingested once more, it is a duplicate, known without parsing it (the
    // parse is recorded under the key its capture implies, with that time).
    let again = env
        .command(&["ingest", "--json", &page])
        .env("SOURCE_DATE_EPOCH", "1900000000")
        .env("RUST_LOG", "cairn=info")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["captures"], json!({"new": 0, "duplicate": 1}), "{report}");
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(!log.contains("duplicate events"), "parsed again:\n{log}");
}

const FORMAT4_HEAD: &str = "55 2628a91bf6e46f10cae34dccfa0d6e53dab8bd4657ace6b9c1d9711f9db18804";

#[test]
fn a_format_4_archive_has_its_index_converted_and_still_finds_every_duplicate() {
    let env = Env::new();
    copy_dir(&fixture("archives").join("format4"), &env.archive);
    // One sled key per event, converted on open to per-article id sets and
    // id runs; the marker fences older cairns off.
    assert_eq!(env.head(), FORMAT4_HEAD);
    let marker = std::fs::read_to_string(env.archive.join("cairn-archive")).unwrap();
    assert_eq!(marker, "cairn archive\nformat 6\n");
    assert!(env.archive.join("index").read_dir().unwrap().count() >= 1, "id runs built");
    env.ok(&["verify", "--checkpoint", &FORMAT4_HEAD.replace(' ', ":")]);
    // Both documents again: every article and comment a duplicate. The
    // page's capture is new only because the tribune parser's version is
    // (3, where the archive's was made by 2: docs/tribune.md).
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    let jsonl = fixture("kayani-2012-03-28.jsonl").display().to_string();
    let run = env.ok(&["ingest", "--json", "--fetched-at", "2012-03-30T08:00:00Z", &page]).json();
    assert_eq!(run["comments"]["new"], json!(0), "{run}");
    assert_eq!(run["articles"]["new"], json!(0), "{run}");
    assert_eq!(run["captures"]["new"], json!(1), "{run}");
    let run = env.ok(&["ingest", "--json", &jsonl]).json();
    assert_eq!(run["comments"]["new"], json!(0), "{run}");
    assert_eq!(run["captures"]["new"], json!(0), "{run}");
    assert!(env.head().starts_with("56 "), "{}", env.head());
    let log = env.ok(&["log", "--json", "--kind", "capture", "--from", "56"]).stdout;
    let capture: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(capture["parser_version"], json!(5), "{capture}");
    // Per-event keys written beside the converted index (an older cairn
    // that got past the marker): converted again on the next open.
    {
        let db = sled::Config::new().path(env.archive.join("db")).open().unwrap();
        let log = db.open_tree("log").unwrap();
        log.insert([&b"i"[..], &[7u8; 32][..]].concat(), &3u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    env.ok(&["--wait", "20", "verify", "--checkpoint", &FORMAT4_HEAD.replace(' ', ":")]);
    {
        let db = sled::Config::new().path(env.archive.join("db")).open().unwrap();
        assert_eq!(db.open_tree("log").unwrap().scan_prefix(b"i").count(), 0, "converted again");
    }
    // `show` finds events by prefix through the runs.
    let log = env.ok(&["log", "--json"]).stdout;
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let id = first["id"].as_str().unwrap();
    assert!(env.ok(&["show", &id[..10]]).stdout.contains(id));
}

/// An archive of format 5, its index laid out as cairn laid it out before
/// session 22 (its segment locators one sled key each, 16 bytes, and its
/// parse records under keys of their own, `p` + parse key, the blobs'
/// records holding their locators alone), reads, verifies, recognizes its
/// documents and extends as the same archive does with today's keys; its
/// marker says format 6 from the first write of today's keys on, so that a
/// cairn of format 5 refuses it instead of reading them as damage.
#[test]
fn an_index_laid_out_as_before_is_read_alike() {
    let env = Env::new();
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    let docs = [page.clone(), crate::support::jsonl_fixture()];
    env.ok(&["ingest", &docs[0], &docs[1]]);
    // The whole log, the changes, and entries read by seq from the middle of
    // the first commit and from the last segment.
    let read = |env: &Env| {
        let log = env.ok(&["log", "--json"]).stdout;
        let ids: Vec<String> = log
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
            .collect();
        let shown: Vec<String> = [&ids[ids.len() / 3], &ids[ids.len() - 1]]
            .iter()
            .map(|id| env.ok(&["show", id, "--json"]).stdout)
            .collect();
        (log, env.ok(&["changes", "--json"]).stdout, shown)
    };
    let before = read(&env);
    let head = env.head();
    let blob_records = |env: &Env| -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = crate::tamper::db(&env.archive);
        let log = db.open_tree("log").unwrap();
        log.scan_prefix(b"c").map(|kv| kv.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    };
    {
        let db = crate::tamper::db(&env.archive);
        let log = db.open_tree("log").unwrap();
        let groups: Vec<_> = log.scan_prefix(b"s").map(|kv| kv.unwrap()).collect();
        assert!(groups.iter().any(|(_, v)| v.len() >= 48), "a commit of several segments under one key");
        for (key, value) in groups {
            log.remove(&key).unwrap();
            for entry in value.chunks_exact(24) {
                log.insert([b"s".as_slice(), &entry[..8]].concat(), &entry[8..]).unwrap();
            }
        }
        assert!(log.scan_prefix(b"s").all(|kv| kv.unwrap().1.len() == 16));
        // Each blob's parse records (an envelope after its locator: version,
        // codec, bincode of [(key, record)], 8 check bytes), one per
        // document here, moved under `p` + key as the record's envelope.
        let blobs: Vec<_> = log.scan_prefix(b"c").map(|kv| kv.unwrap()).collect();
        assert_eq!(blobs.len(), 2);
        for (key, value) in blobs {
            assert!(value.len() > 16, "the blob's record holds its document's parse record");
            let records: Vec<([u8; 32], cairn::store::ParsedDoc)> =
                cairn::store::envelope::decode(&value[16..], "parse records").unwrap();
            assert_eq!(records.len(), 1);
            let (parse_key, parsed) = &records[0];
            let own = cairn::store::envelope::encode(parsed).unwrap();
            log.insert([b"p".as_slice(), parse_key].concat(), own).unwrap();
            log.insert(key, &value[..16]).unwrap();
        }
        db.flush().unwrap();
    }
    let marker = || std::fs::read_to_string(env.archive.join("cairn-archive")).unwrap();
    std::fs::write(env.archive.join("cairn-archive"), "cairn archive\nformat 5\n").unwrap();
    // A torn tail past the committed end (an append a crash cut short):
    // nothing to take in, so nothing is written, and the marker stays.
    let segments = env.archive.join("log").join("00000000.seg");
    let mut torn = std::fs::read(&segments).unwrap();
    torn.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 16, 0, 1, 2, 3]);
    std::fs::write(&segments, torn).unwrap();
    assert_eq!(read(&env), before);
    assert_eq!(marker(), "cairn archive\nformat 5\n");
    env.ok(&["verify", "--checkpoint", &head.replace(' ', ":")]);
    // The same bytes again are recognized by their parse records: nothing
    // is recorded anew, nor is the marker changed.
    let records = blob_records(&env);
    let again = env.ok(&["ingest", "--json", &docs[0], &docs[1]]).json();
    assert_eq!(again["comments"]["new"], json!(0), "{again}");
    assert_eq!(blob_records(&env), records);
    assert_eq!(marker(), "cairn archive\nformat 5\n");
    // Extended: a commit after them keeps one key, and every read is alike.
    let changed =
        env.write("again.txt", std::fs::read_to_string(&page).unwrap().replace("Do You?", "Do You? Again."));
    env.ok(&["ingest", &changed]);
    assert_eq!(marker(), "cairn archive\nformat 6\n");
    env.ok(&["verify", "--checkpoint", &head.replace(' ', ":")]);
    let (log, changes, _) = read(&env);
    assert!(log.starts_with(&before.0) && log.len() > before.0.len());
    let changes: Value = serde_json::from_str(&changes).unwrap();
    assert_eq!(changes["changes"].as_array().unwrap().len(), 3, "{changes}");
    // `repair` rebuilds today's layout from the log files: the same reads.
    env.ok(&["repair"]);
    env.ok(&["verify", "--checkpoint", &head.replace(' ', ":")]);
    assert_eq!(read(&env).0, log);
}

/// The sample page with a stray unindented line before Tony C.'s first
/// comment: tribune parser 5 records it with the gap `stray-line`.
fn page_with_a_stray_line() -> String {
    let sample = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let tony = "  • Tony C.\n    Mar 29, 2012 - 12:16AM\n";
    sample.replacen(tony, &format!("Advertisement\n\n{tony}"), 1)
}

/// A capture with the gap `stray-line` is one a cairn of format 6
/// cannot decode: the marker goes to format 7 before the commit that holds
/// the first one, so that such a cairn refuses the archive, naming its
/// format, instead of reading the segment as damage (and `repair
/// --accept-loss` cutting it off). An archive without one stays format 6;
/// one whose log files still hold segments no commit record closes keeps
/// saying so until a commit record does.
#[test]
fn a_capture_an_older_cairn_cannot_read_moves_the_archive_to_format_7() {
    let env = Env::new();
    let marker = |env: &Env| std::fs::read_to_string(env.archive.join("cairn-archive")).unwrap();
    env.ok(&["ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    assert_eq!(marker(&env), "cairn archive\nformat 6\n");
    let stray = env.write("stray.txt", page_with_a_stray_line());
    let run = env.ok(&["ingest", "--json", &stray]).json();
    assert_eq!(run["captures"]["new"], json!(1), "{run}");
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    assert!(log.lines().last().unwrap().contains("stray-line"), "{log}");
    assert_eq!(marker(&env), "cairn archive\nformat 7\n");
    let head = env.head().replace(' ', ":");
    env.ok(&["verify", "--checkpoint", &head]);
    // The index lost, and the marker back at format 6 (a crash before the
    // directory reached the disk): the segment taken in from the log files
    // moves it to format 7 again.
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    std::fs::write(env.archive.join("cairn-archive"), "cairn archive\nformat 6\n").unwrap();
    assert_eq!(env.head(), head.replace(':', " "));
    assert_eq!(marker(&env), "cairn archive\nformat 7\n");
    env.ok(&["verify", "--checkpoint", &head]);
    // So only for a commit taken in: one whose capture's blob the packs no
    // longer hold whole is not, and the marker stays.
    let cut = Env::new();
    cut.ok(&["ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    let before = cut.head();
    cut.ok(&["ingest", &cut.write("stray.txt", page_with_a_stray_line())]);
    std::fs::remove_dir_all(cut.archive.join("db")).unwrap();
    std::fs::write(cut.archive.join("cairn-archive"), "cairn archive\nformat 6\n").unwrap();
    let pack = cut.archive.join("captures").join("00000000.pack");
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&pack).unwrap().set_len(len - 10).unwrap();
    assert_eq!(cut.head(), before);
    assert_eq!(marker(&cut), "cairn archive\nformat 6\n");

    // A format 2 archive: a commit that fails after the marker was written
    // leaves the note that its log files need no commit records.
    let old = Env::new();
    copy_dir(&fixture("archives").join("format2"), &old.archive);
    let stray = old.write("stray.txt", page_with_a_stray_line());
    let log_file = old.archive.join("log").join("00000000.seg").into_os_string();
    let faults: Vec<std::ffi::OsString> =
        ["-e", "trace=write,pwrite64", "-e", "inject=write,pwrite64:error=ENOSPC", "-P"]
            .map(Into::into)
            .into_iter()
            .chain([log_file])
            .collect();
    let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
    if let Some(failed) = old.traced("format_7_legacy", &faults, &["ingest", &stray]) {
        assert_eq!(failed.code, 2, "{failed}");
        assert_eq!(marker(&old), "cairn archive\nformat 7\nlog not closed by commit records\n");
        assert_eq!(old.head(), FORMAT2_HEAD.replace(':', " "));
        std::fs::remove_dir_all(old.archive.join("db")).unwrap();
        assert_eq!(old.head(), FORMAT2_HEAD.replace(':', " "), "every legacy segment is taken in again");
    }
    old.ok(&["ingest", &stray]);
    assert_eq!(marker(&old), "cairn archive\nformat 7\n", "closed by commit records since");
    old.ok(&["verify", "--checkpoint", FORMAT2_HEAD]);
}

/// A page never stored before has no parse record to date a re-read by:
/// its ingest reads none of those kept apart from their blobs' records
/// (here, the sample page fetched five ways fills its record, and its
/// fifth capture's parse record is kept apart), so damage to the capture
/// of one of them does not stop it (every capture was read for the first
/// new page of a run). The page itself, ingested again without a fetch
/// time, needs them to be dated: it stops, appending nothing, rather than
/// record the page as observed now.
#[test]
fn a_new_page_reads_no_parse_record_kept_apart() {
    let env = Env::new();
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    for hour in 1..=5 {
        env.ok(&["ingest", "--fetched-at", &format!("2012-03-30T0{hour}:00:00Z"), &page]);
    }
    // Other pages, past the Merkle tree's first tile of 256 entries (whose
    // hashes are kept: the damage below is then not needed to append).
    let sample = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let title = sample.lines().next().unwrap();
    for i in 1..=5 {
        let other = sample.replacen(title, &format!("Page number {i} of the other story"), 1);
        env.ok(&["ingest", &env.write(&format!("t{i}.txt"), other)]);
    }
    // The fifth capture's segment (seq 50), found by its record's header
    // (tag: first seq, u64 BE; payload length, u32 BE), eight bytes zeroed.
    let log = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&log).unwrap();
    let mut at = 0;
    loop {
        let tag = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let len = u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if tag == 50 {
            bytes[at + 12 + len / 2..at + 20 + len / 2].fill(0);
            break;
        }
        at += 12 + len;
    }
    std::fs::write(&log, bytes).unwrap();
    let found = env.run(&["verify"]).expect_code(1);
    assert!(found.stdout.contains("segment at seq 50 does not decode"), "{found}");
    let new = env.write("new.txt", sample.replacen(title, "A page never stored before", 1));
    let run = env.ok(&["ingest", "--json", &new]);
    assert_eq!(run.json()["captures"]["new"], json!(1), "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    let head = env.head();
    let again = env.run(&["ingest", &page]).expect_code(2);
    assert!(again.stderr.contains("segment at seq 50"), "{again}");
    assert_eq!(env.head(), head, "nothing appended");
}
