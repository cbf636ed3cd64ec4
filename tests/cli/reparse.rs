//! `cairn reparse`: nothing new with an unchanged parser; the new versions
//! when the stored events came from an older, worse parser.

use crate::support::{append_as_parser_4, fixture, Env};
use cairn::ingest::{capture_for, parse_document, Format, IngestOptions};
use cairn::model::{CaptureItem, Comment, Event};
use cairn::store::{Archive, NewDocument, OpenMode};
use serde_json::json;

#[test]
fn an_unchanged_parser_appends_nothing() {
    let env = Env::new();
    env.ok(&["ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    env.ok(&["ingest", &fixture("kayani-2012-03-28.jsonl").display().to_string()]);
    let head = env.head();
    let report = env.ok(&["reparse", "--json"]).json();
    assert_eq!(report["captures_examined"], json!(2));
    assert_eq!(report["parsed"], json!(2));
    assert_eq!(report["comments"], json!({"new": 0, "duplicate": 51}));
    assert_eq!(report["changed"], json!([]));
    assert_eq!(env.head(), head);
    let (seq, hash) = head.split_once(' ').unwrap();
    assert_eq!(report["head"], json!({"seq": seq.parse::<u64>().unwrap(), "hash": hash}), "the count shape");
}

/// Stores a page as an older parser would have read it: one that kept the
/// glued `Recommend` label in comment bodies.
fn ingest_with_old_parser(env: &Env, page: &[u8]) {
    ingest_with_old_parser_as(env, &[("old.txt", page)])
}

/// [`ingest_with_old_parser`] for several pages, each read from its name,
/// through one opening of the archive (this process's own sled handle may
/// release its lock a moment after it is dropped).
fn ingest_with_old_parser_as(env: &Env, pages: &[(&str, &[u8])]) {
    let mut archive = Archive::open(&env.archive, OpenMode::CreateIfMissing).unwrap();
    for (name, page) in pages {
        archive.append_document(old_parser_document(name, page), false).unwrap();
    }
    archive.flush().unwrap();
}

/// Page `page` read from `name` as the older parser read it.
fn old_parser_document<'a>(name: &str, page: &'a [u8]) -> NewDocument<'a> {
    let opts = IngestOptions { format: Some(Format::Tribune), ..IngestOptions::default() };
    let mut doc = parse_document(name, page, &opts).expect("parses");
    let mut items = Vec::new();
    for (event, item) in doc.events.iter_mut().zip(&doc.items) {
        if let Event::Comment(c) = event {
            *c = Comment::new(
                c.article.clone(),
                c.author.as_deref(),
                c.posted_at,
                &format!("{}Recommend", c.body),
            );
        }
        items.push(CaptureItem { id: event.id(), parent: None, possibly_truncated: item.possibly_truncated });
    }
    doc.items = items;
    doc.parser_version = 0;
    let capture = capture_for(name, cairn::model::BlobId(*blake3::hash(page).as_bytes()), &doc, &opts);
    let mut events = doc.events;
    events.push(Event::Capture(Box::new(capture)));
    NewDocument::new(page, events)
}

#[test]
fn a_better_parser_adds_the_corrected_versions() {
    let env = Env::new();
    let page = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let glued =
        page.replace("\n\n\n  • ", "Recommend\n\n  • ").replace("\n\n\nMore in", "Recommend\n\nMore in");
    ingest_with_old_parser(&env, glued.as_bytes());
    // --wait: this process's own sled handle may release its lock a moment late.
    let before = env.ok(&["--wait", "20", "stats", "--json"]).json();
    assert_eq!(before["comments"], json!(44));
    let head = env.head();

    let dry = env.ok(&["reparse", "--dry-run", "--json"]).json();
    assert_eq!(dry["comments"]["new"], json!(44));
    assert_eq!(env.head(), head, "a dry run writes nothing");
    assert_eq!(env.ok(&["stats", "--json"]).json()["comments"], json!(44));

    let run = env.ok(&["reparse"]);
    assert!(
        run.stdout.starts_with("1 capture examined, 1 parsed; appended 0 articles, 44 comments, 1 capture"),
        "{run}"
    );
    assert!(run.stdout.contains("(parser v0 -> v5): +0 articles, +44 comments, +1 capture"), "{run}");
    let after = env.ok(&["stats", "--json"]).json();
    assert_eq!(after["comments"], json!(88), "old versions stay, new ones are added");
    assert_eq!(after["captures"], json!(2));
    assert_eq!(after["blobs"], json!(1), "the same raw bytes");
    let log = env.ok(&["log", "--json", "--kind", "comment", "--from", "47"]).stdout;
    assert!(!log.contains("Recommend"), "{log}");

    let head = env.head();
    let again = env.ok(&["reparse", "--json"]).json();
    assert_eq!(again["comments"]["new"], json!(0));
    assert_eq!(env.head(), head, "a second reparse appends nothing");
}

/// The kayani page with glued labels, as an older parser stored it, in
/// three versions (one comment edited in each): three captures to re-parse.
fn three_old_captures(env: &Env) {
    let page = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let glued =
        page.replace("\n\n\n  • ", "Recommend\n\n  • ").replace("\n\n\nMore in", "Recommend\n\nMore in");
    let pages: Vec<(String, String)> = ["Do You?", "Do You? Surely.", "Do You? No."]
        .iter()
        .enumerate()
        .map(|(i, edit)| (format!("old{i}.txt"), glued.replace("Do You?", edit)))
        .collect();
    let pages: Vec<(&str, &[u8])> = pages.iter().map(|(n, p)| (n.as_str(), p.as_bytes())).collect();
    ingest_with_old_parser_as(env, &pages);
}

/// Each re-parse is committed on its own: one stopped by an I/O error (an
/// EIO injected into the log's second sync, with strace) says how many it
/// committed and what they appended; a second run appends the rest, and
/// the archive ends as one reparse without the fault leaves it. Skipped,
/// saying so, without a working strace.
#[test]
fn a_reparse_stopped_by_an_io_error_says_what_it_committed() {
    let whole = Env::new();
    three_old_captures(&whole);
    whole.ok(&["--wait", "20", "reparse"]);
    let expected = whole.ok(&["stats", "--json"]).json();
    assert_eq!(expected["captures"], json!(6), "{expected}");

    let env = Env::new();
    three_old_captures(&env);
    let before = env.ok(&["--wait", "20", "head"]).stdout.trim().replace(' ', ":");
    let log = env.archive.join("log").join("00000000.seg");
    let faults: [&std::ffi::OsStr; 4] =
        ["-e".as_ref(), "inject=fdatasync:error=EIO:when=2+".as_ref(), "-P".as_ref(), log.as_os_str()];
    let Some(out) =
        env.traced("a_reparse_stopped_by_an_io_error_says_what_it_committed", &faults, &["reparse"])
    else {
        return;
    };
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("00000000.seg: Input/output error"), "{out}");
    assert!(
        out.stderr.contains(
            "cairn: before it stopped, this reparse committed the first 1 of its 3 re-parses \
             (through old0.txt) (which appended 0 articles, 44 comments, 1 capture), which stay in the \
             archive, and a re-parse whose commit failed after reaching the log files is found by the next \
             command; running it again appends only what is missing"
        ),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "no report for a run that stopped: {out}");
    env.ok(&["verify", "--checkpoint", &before]);
    let after = env.ok(&["stats", "--json"]).json();
    assert!(after["comments"].as_u64() >= Some(44 + 44), "the first re-parse is in: {after}");

    env.ok(&["reparse"]);
    let stats = env.ok(&["stats", "--json"]).json();
    for count in ["articles", "comments", "captures", "blobs"] {
        assert_eq!(stats[count], expected[count], "{count}: {stats}");
    }
    env.ok(&["verify", "--checkpoint", &before]);
    let head = env.head();
    env.ok(&["reparse"]);
    assert_eq!(env.head(), head, "nothing is left to append");

    // Every re-parse committed, the views' update failing after them.
    let env = Env::new();
    three_old_captures(&env);
    let before = env.ok(&["--wait", "20", "head"]).stdout.trim().replace(' ', ":");
    env.ok(&["articles"]);
    let faults = env.view_syncs_failing("threads.");
    let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
    let out =
        env.traced("a_reparse_stopped_by_an_io_error_says_what_it_committed", &faults, &["reparse"]).unwrap();
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("threads."), "the views' file failed: {out}");
    assert!(
        out.stderr.contains(
            "cairn: this reparse committed all its 3 re-parses before it stopped \
             (which appended 0 articles, 46 comments, 3 captures); they stay in the archive"
        ),
        "{out}"
    );
    env.ok(&["verify", "--checkpoint", &before]);
    let stats = env.ok(&["stats", "--json"]).json();
    for count in ["articles", "comments", "captures", "blobs"] {
        assert_eq!(stats[count], expected[count], "{count}: {stats}");
    }
}

/// A page an earlier parser read with a fetch time, ingested again without
/// one, is that observation re-read: the new capture keeps the earlier
/// one's time, so that a later scrape stays the latest. (Only the earlier
/// captures without a fetch time were found: this one was observed now,
/// and undid the later scrape's edit.)
#[test]
fn a_page_read_before_with_a_fetch_time_keeps_it_when_ingested_again() {
    let env = Env::new();
    let page = std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap();
    let old = env.write("old.txt", &page);
    append_as_parser_4(&env, &old, &page, "2012-03-30T08:00:00+00:00", false);
    let later = page.replace("I remember the initial negotiations", "I recall the initial negotiations");
    assert_ne!(later, page);
    let later = env.write("later.txt", later);
    env.ok(&["--wait", "20", "ingest", "--fetched-at", "2012-03-31T08:00:00Z", &later]);
    let run = env.ok(&["ingest", "--json", &old]).json();
    assert_eq!(run["captures"]["new"], json!(1), "read again by today's parser: {run}");
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["fetched_at"], json!("2012-03-30T08:00:00+00:00"), "{last}");
    let thread = env.ok(&["thread", "kayani"]).stdout;
    assert!(
        thread.contains("I recall the initial negotiations"),
        "the later scrape stays the latest:\n{thread}"
    );
}

/// A page parser 4 read as complete though a stray line had ended its
/// comments: `reparse` reads it as partial, says so (`complete` in the
/// report, a warning), and does not undo the removal the earlier capture
/// decided (docs/tribune.md).
#[test]
fn a_capture_read_again_as_partial_is_reported() {
    let env = Env::new();
    let comment = |author: &str, time: &str, body: &str| {
        format!("  • {author}\n    Mar 28, 2012 - {time}\n\n    {body}\n\n\n")
    };
    let head = |count: u32| {
        format!("Small page\n\nPublished: March 28, 2012\nBody.\n\nReader Comments ({count})\n\n")
    };
    let (a, b, c) = (
        comment("ahmad", "1:02PM", "first"),
        comment("bob", "1:05PM", "second"),
        comment("carol", "1:09PM", "third"),
    );
    let whole = env.write("whole.txt", format!("{}{a}{b}{c}More in Pakistan\n", head(3)));
    env.ok(&["ingest", "--fetched-at", "2012-03-28T10:00:00Z", &whole]);
    // The later scrape as parser 4 read it: complete, carol's comment
    // (after the stray line) not shown.
    let page = format!("{}{a}{b}Advertisement\n\n{c}More in Pakistan\n", head(2));
    let stray = env.write("stray.txt", &page);
    append_as_parser_4(&env, &stray, &page, "2012-03-28T11:00:00+00:00", true);
    let status = |env: &Env| -> Vec<serde_json::Value> {
        let t = env.ok(&["thread", "Small page", "--json"]).json();
        t["comments"].as_array().unwrap().iter().map(|c| c["status"].clone()).collect()
    };
    assert_eq!(status(&env), [json!("present"), json!("present"), json!("removed")]);
    let run = env.ok(&["--wait", "20", "reparse", "--json"]);
    let report = run.json();
    let changed = report["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["complete"], json!({"from": true, "to": false}), "{report}");
    assert_eq!(changed[0]["parser_version"], json!({"from": 4, "to": 5}), "{report}");
    assert!(run.stderr.contains("parser v4 read the page as showing its whole comment section"), "{run}");
    assert!(run.stderr.contains("stay so until a complete capture shows them"), "{run}");
    assert_eq!(status(&env), [json!("present"), json!("present"), json!("removed")], "as the docs say");
}
