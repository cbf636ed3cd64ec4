//! Tampering behind cairn's back: helpers edit the sled trees, segment files
//! and pack files directly, and `verify` must catch each change, naming the
//! seq.
//! Plus the randomized byte-flip test.

use crate::generated::gen_tribune::Rng;
use crate::support::{copy_dir, fixture, jsonl_fixture, Env};
use cairn::model::{LogEntry, Timestamp};
use cairn::store::envelope;
use cairn::store::vlog::{SeparatedTree, ValueFiles};
use cairn::store::KvTree;
use serde_json::{json, Value};
use std::path::Path;

/// An archive with the sample page, a re-scrape and the JSONL fixture, its
/// views built. Returns the env.
pub fn base_archive() -> Env {
    let env = Env::new();
    env.ok(&["ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    let page = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let later = env.write("later.txt", page.replace("Do You?", "Do You? Really."));
    env.ok(&["ingest", &later]);
    env.ok(&["ingest", &jsonl_fixture()]);
    env
}

/// The articles' id sets as the archive keeps them: sled's `sets` tree,
/// the values in `sets/ids.a.vlog` and `sets/ids.b.vlog`.
pub fn id_sets(db: &sled::Db, archive: &Path) -> SeparatedTree {
    let files = ValueFiles::new(archive.join("sets"));
    SeparatedTree::new(db.open_tree("sets").unwrap(), files.get("ids").unwrap())
}

/// Where `id`'s entry starts in a whole id set's value: 40-byte entries
/// (the id, then its seq) after the version byte.
fn entry_of(set: &[u8], id: &cairn::model::EventId) -> Option<usize> {
    (1..set.len()).step_by(40).find(|at| &set[*at..*at + 32] == id.as_bytes())
}

/// sled opened directly. A handle of this process dropped a moment ago may
/// still hold sled's file lock (its flusher thread ends on its own time), so
/// a lock error is retried for a few seconds.
pub fn db(archive: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(archive.join("db")).open() {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("open sled directly: {e:?}"),
        }
    }
}

fn segment_key(seq: u64) -> Vec<u8> {
    [b"s".as_slice(), &seq.to_be_bytes()].concat()
}

/// Where segment `first`'s locator is in sled: the key of its commit's
/// segments (`s` + the commit's first seq), their locators (24 bytes each:
/// first seq u64, then file u32, offset u64, length u32, big-endian), and
/// the offset of segment `first`'s locator (past its seq) in them.
fn segment_locator(log: &sled::Tree, first: u64) -> (sled::IVec, Vec<u8>, usize) {
    let (key, value) = log.range(segment_key(0)..=segment_key(first)).next_back().unwrap().unwrap();
    let at = value.chunks_exact(24).position(|e| e[..8] == first.to_be_bytes()).expect("segment exists");
    (key, value.to_vec(), at * 24 + 8)
}

/// Rewrites the segment starting at `first` through `f`, as someone who
/// knows the layout would: the new record is appended to the segment file
/// and the segment's locator (file u32, offset u64, length u32) in sled is
/// pointed at it.
fn edit_segment(archive: &Path, first: u64, f: impl FnOnce(&mut Vec<LogEntry>)) {
    let db = db(archive);
    let log = db.open_tree("log").unwrap();
    let (key, mut group, at) = segment_locator(&log, first);
    let loc = group[at..at + 16].to_vec();
    let file_no = u32::from_be_bytes(loc[..4].try_into().unwrap());
    let offset = u64::from_be_bytes(loc[4..12].try_into().unwrap()) as usize;
    let len = u32::from_be_bytes(loc[12..].try_into().unwrap()) as usize;
    let path = archive.join("log").join(format!("{file_no:08}.seg"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mut entries: Vec<LogEntry> =
        envelope::decode_segment(&bytes[offset + 12..offset + 12 + len], "segment").unwrap();
    f(&mut entries);
    let payload = envelope::encode_segment(&entries).unwrap();
    let new_offset = bytes.len() as u64;
    bytes.extend_from_slice(&first.to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&path, &bytes).unwrap();
    let new_loc =
        [&loc[..4], &new_offset.to_be_bytes()[..], &(payload.len() as u32).to_be_bytes()[..]].concat();
    group[at..at + 16].copy_from_slice(&new_loc);
    log.insert(key, group).unwrap();
    db.flush().unwrap();
}

/// verify's findings; verify in passes of a few ids each (every id check
/// split across several reads of the log) must find exactly the same.
fn verify_findings(env: &Env) -> Vec<Value> {
    let run = env.run(&["--wait", "20", "verify", "--json"]).expect_code(1);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    let run = env.run(&["--wait", "20", "verify", "--json", "--ids-per-pass", "7"]).expect_code(1);
    let mut in_passes = run.json()["findings"].as_array().unwrap().clone();
    let mut all = findings.clone();
    let order = |v: &mut Vec<Value>| v.sort_by_key(|f| f.to_string());
    order(&mut all);
    order(&mut in_passes);
    assert_eq!(in_passes, all, "verify in passes finds what one pass finds");
    findings
}

fn has(findings: &[Value], check: &str, seq: u64) -> bool {
    findings.iter().any(|f| f["check"] == check && f["seq"] == seq)
}

/// Whether a finding of `check` at `seq` says `text`.
fn says(findings: &[Value], check: &str, seq: u64, text: &str) -> bool {
    findings
        .iter()
        .any(|f| f["check"] == check && f["seq"] == seq && f["message"].as_str().unwrap().contains(text))
}

#[test]
fn a_clean_archive_verifies() {
    let env = base_archive();
    let run = env.ok(&["verify"]);
    assert!(run.stdout.contains("ok: no problems found"), "{run}");
    let report = env.ok(&["verify", "--json"]).json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["views"], 2);
    assert_eq!(report["blobs"], 3);
    env.ok(&["verify", "--quick"]);
    let head = env.head().replace(' ', ":");
    env.ok(&["verify", "--checkpoint", &head]);
    // In passes of one id each: one read of the log per id, still clean.
    let entries = report["entries"].as_u64().unwrap();
    let report = env.ok(&["verify", "--json", "--ids-per-pass", "1"]).json();
    assert_eq!((report["ok"].clone(), report["entries"].as_u64()), (json!(true), Some(entries)));
    assert_eq!(report["index_entries"], json!(entries));
    env.ok(&["verify", "--quick", "--ids-per-pass", "2"]);
    let run = env.run(&["verify", "--ids-per-pass", "0"]).expect_code(2);
    assert!(run.stderr.contains("--ids-per-pass"), "{run}");
}

#[test]
fn a_changed_payload_is_caught_at_its_seq() {
    let env = base_archive();
    edit_segment(&env.archive, 1, |entries| {
        if let cairn::model::Event::Comment(c) = &mut entries[4].event {
            c.body.push_str(" (altered)");
        }
    });
    let f = verify_findings(&env);
    assert!(has(&f, "event-id", 5), "{f:#?}");
}

#[test]
fn a_changed_recorded_at_is_caught_at_its_seq() {
    let env = base_archive();
    edit_segment(&env.archive, 1, |entries| {
        entries[9].recorded_at = Timestamp::from_unix(1_000_000_000).unwrap();
    });
    let f = verify_findings(&env);
    assert!(has(&f, "chain", 10), "{f:#?}");
    assert_eq!(f.iter().filter(|x| x["check"] == "chain").count(), 1, "only the altered entry: {f:#?}");
}

#[test]
fn a_deleted_entry_is_caught() {
    let env = base_archive();
    edit_segment(&env.archive, 1, |entries| {
        entries.remove(20);
    });
    let f = verify_findings(&env);
    assert!(has(&f, "seq", 21), "{f:#?}");
    assert!(f.iter().any(|x| x["check"] == "index-stale" && x["seq"] == 21), "{f:#?}");
}

#[test]
fn an_event_stored_twice_is_caught_as_a_duplicate() {
    let env = base_archive();
    edit_segment(&env.archive, 1, |entries| {
        entries[20].event = entries[5].event.clone();
        entries[20].id = entries[5].id;
    });
    let f = verify_findings(&env);
    assert!(says(&f, "duplicate", 21, "also at seq 6"), "{f:#?}");
}

#[test]
fn a_merge_naming_events_of_another_kind_is_caught() {
    use cairn::model::{Event, Merge, MergeKind};
    use cairn::store::{Archive, NewDocument, OpenMode};
    let env = base_archive();
    // Seq 1 is the sample's article, seq 2 its first comment.
    let (article, comment) = (nth_id(&env, 1), nth_id(&env, 2));
    let seq = {
        let mut archive = Archive::open(&env.archive, OpenMode::MustExist).unwrap();
        let merge = Event::Merge(Merge::new(MergeKind::Comment, comment, vec![article], "test"));
        let out = archive.append_document(NewDocument::new(b"", vec![merge]), false).unwrap();
        archive.flush().unwrap();
        out.appended.unwrap().0 .0
    };
    let f = verify_findings(&env);
    assert!(says(&f, "merge", seq, "comment merge names"), "{f:#?}");
}

#[test]
fn swapped_entries_are_caught() {
    // Swapped in place, seqs travelling with them: out of order.
    let env = base_archive();
    edit_segment(&env.archive, 1, |entries| entries.swap(2, 3));
    let f = verify_findings(&env);
    assert!(has(&f, "seq", 3), "{f:#?}");

    // Swapped with their seqs rewritten to look dense: the chain breaks there.
    let env = base_archive();
    edit_segment(&env.archive, 1, |entries| {
        entries.swap(2, 3);
        entries[2].seq = cairn::model::Seq(3);
        entries[3].seq = cairn::model::Seq(4);
    });
    let f = verify_findings(&env);
    assert!(has(&f, "chain", 3) && has(&f, "chain", 4), "{f:#?}");
    assert!(has(&f, "index", 3), "{f:#?}");
}

/// The locator (file u32, offset u64, length u32) of blob `hex` in sled:
/// the first 16 bytes of its record (the parse records of the documents
/// made from it follow).
fn blob_locator(archive: &Path, hex: &str) -> (u32, usize, usize) {
    let db = db(archive);
    let log = db.open_tree("log").unwrap();
    let id = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect::<Vec<u8>>();
    let loc = log.get([b"c".as_slice(), &id].concat()).unwrap().expect("blob locator");
    (
        u32::from_be_bytes(loc[..4].try_into().unwrap()),
        u64::from_be_bytes(loc[4..12].try_into().unwrap()) as usize,
        u32::from_be_bytes(loc[12..16].try_into().unwrap()) as usize,
    )
}

#[test]
fn a_changed_blob_is_caught_at_its_capture() {
    let env = base_archive();
    let caps = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let first: Value = serde_json::from_str(caps.lines().next().unwrap()).unwrap();
    let second: Value = serde_json::from_str(caps.lines().nth(1).unwrap()).unwrap();
    let (file, offset, len) = blob_locator(&env.archive, first["blob"].as_str().unwrap());
    // The re-scrape of the same page is stored as a delta against it.
    let (_, _, len2) = blob_locator(&env.archive, second["blob"].as_str().unwrap());
    assert!(len2 < len / 4, "the re-scrape is stored as a delta: {len2} vs {len} bytes");
    // Replace the first capture's bytes in the pack, keeping the record's
    // length (zstd frame of other text, padded with a skippable frame).
    let path = env.archive.join("captures").join(format!("{file:08}.pack"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mut other = zstd::bulk::compress(b"not the page", 3).unwrap();
    let pad = len - other.len() - 8;
    other.extend_from_slice(&0x184D2A50u32.to_le_bytes());
    other.extend_from_slice(&(pad as u32).to_le_bytes());
    other.extend(std::iter::repeat_n(0u8, pad));
    bytes[offset + 12..offset + 12 + len].copy_from_slice(&other);
    std::fs::write(&path, &bytes).unwrap();
    let f = verify_findings(&env);
    assert!(has(&f, "blob", first["seq"].as_u64().unwrap()), "{f:#?}");
    // The delta stored against it can no longer be rebuilt either.
    assert!(has(&f, "blob", second["seq"].as_u64().unwrap()), "{f:#?}");
}

/// A blob whose stored bytes still decompress, to other bytes than its
/// id's: `export` refuses it, naming it, rather than writing a backup that
/// no import takes; nothing is left behind, and an earlier export is kept.
#[test]
fn an_export_refuses_a_blob_whose_bytes_are_not_its_id() {
    let env = base_archive();
    let caps = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let first: Value = serde_json::from_str(caps.lines().next().unwrap()).unwrap();
    let blob = first["blob"].as_str().unwrap();
    let (file, offset, len) = blob_locator(&env.archive, blob);
    // A whole zstd frame of exactly the record's length: bytes that do not
    // compress (stored raw), as many as make the frame that long.
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let frame = (len.saturating_sub(32)..len)
        .map(|n| zstd::bulk::compress(&noise(n), 1).unwrap())
        .find(|f| f.len() == len)
        .expect("a frame of the record's length");
    let path = env.archive.join("captures").join(format!("{file:08}.pack"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset + 12..offset + 12 + len].copy_from_slice(&frame);
    std::fs::write(&path, &bytes).unwrap();
    let out = env.dir.path().join("backup.cairn");
    std::fs::write(&out, b"an earlier backup").unwrap();
    let run = env.run(&["export", &out.display().to_string()]).expect_code(2);
    assert!(run.stderr.contains(blob), "{run}");
    assert!(run.stderr.contains("do not hash to its id"), "{run}");
    assert_eq!(std::fs::read(&out).unwrap(), b"an earlier backup");
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("backup") && n != "backup.cairn")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // verify names it too.
    let f = verify_findings(&env);
    assert!(has(&f, "blob", first["seq"].as_u64().unwrap()), "{f:#?}");
}

/// The id of the `n`th (1-based) entry of the log.
fn nth_id(env: &Env, n: usize) -> cairn::model::EventId {
    let all = env.ok(&["log", "--json"]).stdout;
    let entry: Value = serde_json::from_str(all.lines().nth(n - 1).unwrap()).unwrap();
    cairn::model::EventId::from_hex(entry["id"].as_str().unwrap()).unwrap()
}

#[test]
fn a_stale_id_run_entry_is_caught() {
    let env = base_archive();
    let id = nth_id(&env, 10);
    // The id runs (index/*.idx): the tenth id's entry says seq 12.
    let mut changed = 0;
    for entry in std::fs::read_dir(env.archive.join("index")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(32).position(|w| w == id.as_bytes()) {
            bytes[at + 32..at + 40].copy_from_slice(&12u64.to_be_bytes());
            std::fs::write(&path, &bytes).unwrap();
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "the id is in one run");
    let f = verify_findings(&env);
    assert!(has(&f, "index-stale", 12), "{f:#?}");
    assert!(has(&f, "index", 10), "{f:#?}");
    assert!(f.iter().any(|x| x["message"].as_str().unwrap().contains("checksum")), "{f:#?}");
    // A lookup through the damaged run does not answer with the wrong entry.
    let run = env.run(&["--wait", "20", "show", &id.to_hex()]);
    assert!(run.code != 0 || run.stdout.contains(&id.to_hex()), "{run}");
}

#[test]
fn an_id_missing_from_its_articles_set_is_caught() {
    let env = base_archive();
    let id = nth_id(&env, 20);
    {
        let db = db(&env.archive);
        let sets = id_sets(&db, &env.archive);
        let mut done = false;
        for kv in sets.scan_prefix(b"d") {
            let (k, mut v) = kv.unwrap();
            if let Some(at) = entry_of(&v, &id) {
                v.drain(at..at + 40);
                sets.apply(vec![(k, Some(v))]).unwrap();
                done = true;
                break;
            }
        }
        assert!(done, "the id is in its article's set");
        // And a stray entry in another set.
        let (k, mut v) = sets.scan_prefix(b"d").next().unwrap().unwrap();
        v.extend_from_slice(&[0xffu8; 32]);
        v.extend_from_slice(&30u64.to_be_bytes());
        sets.apply(vec![(k, Some(v))]).unwrap();
        db.flush().unwrap();
    }
    let f = verify_findings(&env);
    assert!(says(&f, "index", 20, "article's id set"), "{f:#?}");
    assert!(has(&f, "index-stale", 30), "{f:#?}");
    // `cairn repair` rebuilds the sets: clean again.
    env.ok(&["--wait", "20", "repair"]);
    env.ok(&["--wait", "20", "verify"]);
}

/// An id moved into another article's id set (at its right seq): the
/// duplicate check would look for copies of it in the wrong set. verify
/// names both sides (kept as a 32-bit keyed fingerprint of the bucket).
#[test]
fn an_id_filed_under_another_article_is_caught() {
    let env = base_archive();
    let id = nth_id(&env, 20);
    {
        let db = db(&env.archive);
        let tree = id_sets(&db, &env.archive);
        let sets: Vec<(Vec<u8>, Vec<u8>)> = tree.scan_prefix(b"d").map(|kv| kv.unwrap()).collect();
        let own = sets.iter().position(|(_, v)| entry_of(v, &id).is_some());
        let own = own.expect("the id is in its article's set");
        let other = (0..sets.len()).find(|o| *o != own && sets[*o].1[0] == 1).expect("another whole set");
        let (k, mut v) = sets[own].clone();
        let at = entry_of(&v, &id).unwrap();
        let entry: Vec<u8> = v.drain(at..at + 40).collect();
        tree.apply(vec![(k, Some(v))]).unwrap();
        // Into the other set, in id order.
        let (k, mut v) = sets[other].clone();
        let to = (1..v.len()).step_by(40).find(|at| v[*at..*at + 32] > entry[..32]).unwrap_or(v.len());
        v.splice(to..to, entry);
        tree.apply(vec![(k, Some(v))]).unwrap();
        db.flush().unwrap();
    }
    let f = verify_findings(&env);
    assert!(says(&f, "index-stale", 20, "belongs to another article's"), "{f:#?}");
    assert!(says(&f, "index", 20, "article's id set"), "{f:#?}");
    assert!(f.iter().any(|x| x["check"] == "index" && x["seq"] == 20 && x["id"] == id.to_hex()), "{f:#?}");
    env.ok(&["--wait", "20", "repair"]);
    env.ok(&["--wait", "20", "verify"]);
}

/// A byte changed in the id sets' value file: verify names the set (its
/// value no longer matches its check) and goes on; an ingest refuses to
/// check duplicates against it and names `repair`, which rebuilds it.
#[test]
fn a_damaged_id_set_file_is_caught() {
    let env = base_archive();
    let path = env.archive.join("sets/ids.a.vlog");
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 1000, "the sets' values are in the file");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let f = verify_findings(&env);
    assert!(
        f.iter().any(
            |x| x["check"] == "index-stale" && x["message"].as_str().unwrap().contains("does not decode")
        ),
        "{f:#?}"
    );
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    let run = env.run(&["ingest", &page, "--fetched-at", "2012-04-01T00:00:00Z"]).expect_code(2);
    assert!(run.stderr.contains("cairn repair"), "{run}");
    env.ok(&["--wait", "20", "repair"]);
    env.ok(&["--wait", "20", "verify"]);
}

#[test]
fn a_tampered_view_is_caught() {
    let env = base_archive();
    let head: u64 = env.head().split(' ').next().unwrap().parse().unwrap();
    {
        let db = db(&env.archive);
        let name =
            db.tree_names().into_iter().find(|n| n.starts_with(b"view:authors.")).expect("authors view tree");
        let tree = db.open_tree(name).unwrap();
        // Swap two articles' values (latest observation, titles, author
        // groups): each (kept in sled, or a locator into the value files)
        // still decodes, under the wrong article.
        let seen: Vec<_> = tree.scan_prefix(b"g/").map(|kv| kv.unwrap()).collect();
        assert!(seen.len() >= 2, "{} articles", seen.len());
        let ((k0, v0), (k1, v1)) = (&seen[0], &seen[1]);
        assert_ne!(v0, v1);
        tree.insert(k0, v1.clone()).unwrap();
        tree.insert(k1, v0.clone()).unwrap();
        db.flush().unwrap();
    }
    let f = verify_findings(&env);
    assert!(has(&f, "view", head), "{f:#?}");
    assert!(f.iter().any(|x| x["message"].as_str().unwrap().contains("view authors")), "{f:#?}");
}

#[test]
fn a_checkpoint_that_no_longer_holds_fails() {
    let env = base_archive();
    let head = env.head();
    let (seq, hash) = head.split_once(' ').unwrap();
    // Dropping the last document: the archive no longer extends the checkpoint.
    {
        let db = db(&env.archive);
        let log = db.open_tree("log").unwrap();
        let (last, group) = log.range(segment_key(0)..segment_key(u64::MAX)).next_back().unwrap().unwrap();
        if group.len() > 24 {
            log.insert(last, &group[..group.len() - 24]).unwrap();
        } else {
            log.remove(last).unwrap();
        }
        db.flush().unwrap();
    }
    let run = env.run(&["--wait", "20", "verify", "--checkpoint", &format!("{seq}:{hash}")]).expect_code(1);
    assert!(
        run.stdout.contains(&format!("before the checkpoint's seq {seq}: entries were removed")),
        "{run}"
    );
}

/// Flips one random byte of one random stored value (any sled tree) or of
/// the segment file in a copy of the base archive, `rounds` times; each
/// flip must be reported by verify (exit 1), or make the archive fail to
/// open as corrupt (exit 2), or (a flip in the id sets' record of their
/// value files: derived, rebuilt from the log when the archive is opened,
/// docs/verify.md) be reported as the note that the id sets were rebuilt.
fn random_flips(rounds: u64, seed: u64) {
    let base = base_archive();
    for round in 0..rounds {
        let mut rng = Rng(seed.wrapping_add(round));
        let env = Env::new();
        copy_dir(&base.archive, &env.archive);
        let what = if rng.below(3) == 0 {
            let file = if rng.below(2) == 0 { "log/00000000.seg" } else { "captures/00000000.pack" };
            let path = env.archive.join(file);
            let mut bytes = std::fs::read(&path).unwrap();
            let at = rng.below(bytes.len());
            let mask = (rng.below(255) + 1) as u8;
            bytes[at] ^= mask;
            std::fs::write(&path, &bytes).unwrap();
            format!("{file} byte {at} ^ {mask:#04x}")
        } else {
            let db = db(&env.archive);
            let mut values: Vec<(sled::IVec, sled::IVec)> = Vec::new();
            for name in db.tree_names() {
                if name.as_ref() == b"__sled__default" {
                    continue;
                }
                for kv in db.open_tree(&name).unwrap().iter() {
                    let (k, v) = kv.unwrap();
                    values.push((name.clone(), k));
                    let _ = v;
                }
            }
            let (tree_name, key) = values[rng.below(values.len())].clone();
            let tree = db.open_tree(&tree_name).unwrap();
            let mut value = tree.get(&key).unwrap().unwrap().to_vec();
            let at = rng.below(value.len());
            let mask = (rng.below(255) + 1) as u8;
            value[at] ^= mask;
            tree.insert(&key, value).unwrap();
            db.flush().unwrap();
            format!("tree {:?} key {:?} byte {at} ^ {mask:#04x}", String::from_utf8_lossy(&tree_name), key)
        };
        let run = env.run(&["--wait", "20", "verify", "--json"]);
        let rebuilt = run.code == 0
            && serde_json::from_str::<serde_json::Value>(&run.stdout)
                .is_ok_and(|r| r["sets_rebuilt"] == true);
        let caught = (run.code == 1 && !run.stdout.contains("ok: no problems found")) || rebuilt;
        assert!(caught, "round {round} (seed {seed}): flip not detected: {what}\n{run}");
    }
}

#[test]
fn random_byte_flips_never_pass_silently() {
    random_flips(40, 0x5eed);
}

/// The larger variant: `cargo test --test cli -- --ignored random_byte_flips_many`.
#[test]
#[ignore]
fn random_byte_flips_many() {
    random_flips(1000, 0xc0ffee);
}

#[test]
fn a_truncated_segment_file_is_caught_and_blocks_appends() {
    let env = base_archive();
    let path = env.archive.join("log").join("00000000.seg");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // Past the commit record that closes the file (under 100 bytes), into
    // the last segment.
    file.set_len(len - 150).unwrap();
    drop(file);
    let f = verify_findings(&env);
    assert!(
        f.iter().any(
            |x| x["check"] == "segment" && x["message"].as_str().unwrap().contains("points past its end")
        ),
        "{f:#?}"
    );
    // Appending after committed bytes went missing would hide the damage.
    let page = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let again = env.write("again.txt", page.replace("Do You?", "Do You? Again."));
    let run = env.run(&["ingest", &again]).expect_code(2);
    assert!(run.stderr.contains("were committed"), "{run}");
}

/// A segment whose stored bytes were altered is named once, by its seq,
/// with the reason, in verify's finding and in the error of a command that
/// reads it (the name was doubled: "segment at seq N: archive is corrupt:
/// segment at seq N: ..."); the head record's counts are said in words
/// (they were Rust's debug form, `KindCounts { articles: .. }`).
#[test]
fn a_damaged_segment_is_named_once() {
    let env = base_archive();
    {
        let db = db(&env.archive);
        let (_, group, at) = segment_locator(&db.open_tree("log").unwrap(), 1);
        let loc = &group[at..at + 16];
        let offset = u64::from_be_bytes(loc[4..12].try_into().unwrap()) as usize;
        let len = u32::from_be_bytes(loc[12..].try_into().unwrap()) as usize;
        let path = env.archive.join("log").join("00000000.seg");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset + 12 + len / 2] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
    }
    let once = |text: &str| {
        text.matches("segment at seq 1").count() == 1 && !text.contains("corrupt: segment at seq 1: archive")
    };
    let f = verify_findings(&env);
    let message = f
        .iter()
        .find(|x| x["check"] == "segment" && x["seq"] == 1)
        .and_then(|x| x["message"].as_str())
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(once(message) && message.contains("does not decode: check bytes do not match"), "{message}");
    // The head record's counts, against the entries left, in words.
    let counts = f
        .iter()
        .filter(|x| x["check"] == "head")
        .filter_map(|x| x["message"].as_str())
        .find(|m| m.contains("counts"))
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(counts.contains(" comments, ") && !counts.contains('{'), "{counts}");
    let run = env.run(&["replay"]).expect_code(2);
    let error =
        run.stderr.lines().find(|l| l.starts_with("cairn: error:")).unwrap_or_else(|| panic!("{run}"));
    assert!(once(error) && error.contains("check bytes do not match"), "{run}");
}

#[test]
fn a_changed_log_end_record_is_caught() {
    let env = base_archive();
    {
        let db = db(&env.archive);
        let log = db.open_tree("log").unwrap();
        let mut end = log.get(b"mend").unwrap().expect("log end record").to_vec();
        end[11] ^= 0x01;
        log.insert(b"mend", end).unwrap();
        db.flush().unwrap();
    }
    let f = verify_findings(&env);
    assert!(
        f.iter()
            .any(|x| x["check"] == "segment" && x["message"].as_str().unwrap().contains("log end record")),
        "{f:#?}"
    );
}

#[test]
fn a_damaged_page_base_record_is_reported_and_costs_only_the_delta() {
    let env = base_archive();
    {
        let db = db(&env.archive);
        let log = db.open_tree("log").unwrap();
        // Every page's record (the sample page's and the JSONL fixture's).
        let records: Vec<(sled::IVec, sled::IVec)> = log.scan_prefix(b"b").map(|kv| kv.unwrap()).collect();
        assert_eq!(records.len(), 2);
        for (key, value) in records {
            let mut value = value.to_vec();
            value[3] ^= 0x40;
            log.insert(key, value).unwrap();
        }
        db.flush().unwrap();
    }
    // Ingesting another re-scrape of the page still works (stored whole);
    // it replaces that page's record, the other stays damaged.
    let page = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let again = env.write("again.txt", page.replace("Do You?", "Do You? Again."));
    env.run(&["--wait", "20", "ingest", &again]).expect_code(0);
    let f = verify_findings(&env);
    assert!(
        f.iter().any(|x| x["check"] == "blob" && x["message"].as_str().unwrap().contains("page base record")),
        "{f:#?}"
    );
}

#[test]
fn a_commit_record_whose_tag_changed_is_caught() {
    let env = base_archive();
    let path = env.archive.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&path).unwrap();
    // The records: tag (u64 BE), length (u32 BE), payload. The first commit
    // record follows the first segment.
    let first_len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let commit = 12 + first_len;
    assert_eq!(&bytes[commit..commit + 8], &[0xff; 8], "a commit record follows the first segment");
    bytes[commit + 2] ^= 0x51;
    std::fs::write(&path, &bytes).unwrap();
    let f = verify_findings(&env);
    assert!(
        f.iter().any(|x| x["check"] == "segment"
            && x["message"]
                .as_str()
                .unwrap()
                .contains("neither a segment the index points at nor a commit record")),
        "{f:#?}"
    );
}

#[test]
fn a_changed_view_value_file_is_caught_and_replay_rebuilds_it() {
    let env = base_archive();
    // The threads view's large values (each article's thread state) are in
    // its value file; a changed byte there is a view finding, not a pass.
    let file = env.archive.join("views").join("threads.0.a.vlog");
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 100, "{} bytes", bytes.len());
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let f = verify_findings(&env);
    assert!(
        f.iter().any(|x| x["check"] == "view" && x["message"].as_str().unwrap().contains("view threads")),
        "{f:#?}"
    );
    env.ok(&["replay"]);
    env.ok(&["verify"]);
}
