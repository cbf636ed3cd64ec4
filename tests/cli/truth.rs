//! Truth of the record: cut-off scrapes never remove comments, history is
//! ordered by when pages were fetched, and pages in other layouts are
//! refused rather than archived as garbage.

use crate::support::{fixture, jsonl_fixture, Env};
use serde_json::{json, Value};

const SAMPLE: &str = "tribune-2012-03-28-us-generals-kayani.txt";

fn sample() -> String {
    std::fs::read_to_string(fixture(SAMPLE)).unwrap()
}

fn sample_path() -> String {
    fixture(SAMPLE).display().to_string()
}

/// The sample without Tony C.'s first comment, declaring 43: a complete
/// later scrape with one comment removed.
fn without_tony() -> String {
    let page = sample();
    let start = page.find("  • Tony C.").unwrap();
    let end = start + 5 + page[start + 5..].find("  • ").unwrap();
    format!("{}{}", &page[..start], &page[end..]).replace("Reader Comments (44)", "Reader Comments (43)")
}

/// The sample cut 20 bytes into the body of its 30th comment.
fn cut_mid() -> String {
    let page = sample();
    let (at, _) = page.match_indices("\n  • ").nth(29).unwrap();
    let body = at + page[at..].find("\n\n    ").unwrap() + 6;
    page[..body + 20].to_string()
}

fn comments(env: &Env) -> Vec<Value> {
    env.ok(&["thread", "kayani", "--json"]).json()["comments"].as_array().unwrap().clone()
}

fn statuses(env: &Env) -> Vec<(String, String)> {
    comments(env)
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_cut_off_scrape_removes_nothing_and_says_it_is_partial() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let head = env.head();

    // Cut before the comments: no marker of the layout is left, so the page
    // is refused, naming the file, and the archive is unchanged.
    let cut2000 = env.write("cut2000.txt", &sample().as_bytes()[..2000]);
    let run = env.run(&["ingest", "--json", &cut2000]).expect_code(1);
    assert!(run.stderr.contains(&format!("rejected {cut2000}: unrecognized layout")), "{run}");
    assert!(run.stderr.contains("Reader Comments (N)"), "says what it looked for\n{run}");
    assert!(run.stderr.contains("cut off before its comments"), "and what it may be\n{run}");
    assert_eq!(env.head(), head);

    // Cut inside the comments: ingested as a partial capture, with a warning
    // naming the file and the reasons, and nothing marked removed.
    let cut = env.write("cut.txt", cut_mid());
    let run = env.ok(&["ingest", "--json", &cut]);
    let warnings = run.json()["warnings"].as_array().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{run}");
    assert_eq!(warnings[0]["path"], json!(cut));
    let text = warnings[0]["warning"].as_str().unwrap();
    assert!(text.starts_with("partial capture, so it marks no comment removed"), "{text}");
    assert!(text.contains("no end marker") && text.contains("declared 44 comments, found"), "{text}");
    assert!(run.stderr.contains(&format!("warning: {cut}: partial capture")), "{run}");
    assert!(statuses(&env).iter().all(|(_, s)| s == "present"), "a cut page removes nothing");
    let changes = env.ok(&["changes", "--json"]).json()["changes"].clone();
    let last = changes.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["removed"], json!([]));
    assert_eq!(last["to"]["complete"], json!(false));
    assert!(last["unseen"].as_u64().unwrap() >= 10, "{last}");
    let text = env.ok(&["changes"]).stdout;
    assert!(text.contains("partial capture, removes nothing"), "{text}");
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let caps = thread["captures"].as_array().unwrap();
    assert_eq!((caps[0]["complete"].clone(), caps[1]["complete"].clone()), (json!(true), json!(false)));
    assert!(env.ok(&["thread", "kayani"]).stdout.contains("(1 partial, removing nothing: seq"));
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let last_capture: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last_capture["gaps"], json!(["no-end-marker", "cut-inside-comment", "count-mismatch"]));

    // A later complete scrape decides removals as before.
    let full = env.write("later.txt", without_tony());
    env.ok(&["ingest", &full]);
    let removed: Vec<Value> =
        comments(&env).into_iter().filter(|c| c["status"] == json!("removed")).collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["author"], json!("Tony C."));
    let seq_of_full = env.head().split(' ').next().unwrap().parse::<u64>().unwrap();
    assert_eq!(removed[0]["removed_since"]["seq"], json!(seq_of_full));
    let history = env.ok(&["history", removed[0]["id"].as_str().unwrap(), "--json"]).json();
    assert_eq!(history["status"], json!("removed"));
    assert_eq!(history["sightings"][1]["capture"]["complete"], json!(false));
    env.ok(&["verify"]);
}

#[test]
fn strict_refuses_partial_pages_and_dry_run_shows_what_a_capture_changes() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let head = env.head();
    let cut = env.write("cut.txt", cut_mid());
    let run = env.run(&["ingest", "--strict", &cut]).expect_code(1);
    assert!(run.stderr.contains(&format!("rejected {cut}: partial capture refused (--strict)")), "{run}");
    assert_eq!(env.head(), head, "the archive is unchanged");
    env.ok(&["ingest", "--strict", &sample_path()]);

    let full = env.write("later.txt", without_tony());
    let dry = env.ok(&["ingest", "--dry-run", "--json", &full, &cut]).json();
    let files = dry["files"].as_array().unwrap();
    assert_eq!((files[0]["would_add"].clone(), files[0]["would_remove"].clone()), (json!(0), json!(1)));
    assert_eq!(files[1]["would_remove"], json!(0), "a partial capture removes nothing");
    assert!(files[1]["unseen"].as_u64().unwrap() >= 10);
    let text = env.ok(&["ingest", "--dry-run", &full]).stdout;
    assert!(text.contains("would add 0, remove 1, edit 0"), "{text}");
    assert_eq!(env.head(), head, "a dry run writes nothing");
}

/// Thread statuses keyed by comment id, `removed_since` as a capture id: the
/// parts of a view that do not depend on the order scrapes were ingested in.
fn order_free_thread(env: &Env) -> Vec<Value> {
    comments(env)
        .iter()
        .map(|c| {
            json!([
                c["id"],
                c["status"],
                c["removed_since"]["id"],
                c["first_seen"]["id"],
                c["last_seen"]["id"],
                c["versions"].as_array().unwrap().iter().map(|v| v["id"].clone()).collect::<Vec<_>>()
            ])
        })
        .collect()
}

#[test]
fn a_backfilled_older_scrape_takes_its_place_in_history() {
    let older = ("2012-03-30T08:00:00Z", sample_path());
    let in_order = Env::new();
    let newer_path = in_order.write("newer.txt", without_tony());
    let newer = ("2012-03-31T08:00:00Z", newer_path);
    for (at, path) in [&older, &newer] {
        in_order.ok(&["ingest", "--fetched-at", at, path]);
    }
    let backfilled = Env::new();
    for (at, path) in [&newer, &older] {
        backfilled.ok(&["ingest", "--fetched-at", at, path]);
    }
    let expected = order_free_thread(&in_order);
    assert_eq!(order_free_thread(&backfilled), expected, "ingest order does not change history");
    let removed: Vec<&Value> = expected.iter().filter(|c| c[1] == json!("removed")).collect();
    assert_eq!(removed.len(), 1, "Tony C.'s comment is removed, not the newer ones");

    // changes lists captures by fetch time and prints it.
    let changes = backfilled.ok(&["changes", "--json"]).json()["changes"].clone();
    let records = changes.as_array().unwrap();
    assert_eq!(records[0]["to"]["fetched_at"], json!("2012-03-30T08:00:00+00:00"));
    assert_eq!(records[0]["added"].as_array().unwrap().len(), 44);
    assert_eq!(records[1]["removed"].as_array().unwrap().len(), 1);
    assert!(backfilled.ok(&["changes"]).stdout.contains("fetched 2012-03-30 08:00 +00:00"));
    let thread = backfilled.ok(&["thread", "kayani"]).stdout;
    assert!(thread.contains("removed since seq 45 (fetched 2012-03-31 08:00 +00:00)"), "{thread}");

    // Time travel by observation time: before the newer fetch, all present.
    backfilled.ok(&["replay", "--until", "2012-03-30T12:00:00Z"]);
    let t = backfilled.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(t["captures"].as_array().unwrap().len(), 1);
    assert!(t["comments"].as_array().unwrap().iter().all(|c| c["status"] == json!("present")));
    backfilled.ok(&["verify"]);
    backfilled.ok(&["replay"]);
    assert_eq!(order_free_thread(&backfilled), expected);
    backfilled.ok(&["verify"]);
}

#[test]
fn fetch_times_come_from_file_times_and_from_jsonl_documents() {
    let env = Env::new();
    let page = env.write("page.txt", sample());
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_333_000_000);
    std::fs::File::options().write(true).open(&page).unwrap().set_modified(when).unwrap();
    env.ok(&["ingest", "--fetched-at-from", "mtime", &page]);
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let capture: Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(capture["fetched_at"], json!("2012-03-29T05:46:40+00:00"));
    env.run(&["ingest", "--fetched-at", "2012-03-30T08:00:00Z", "--fetched-at-from", "mtime", &page])
        .expect_code(2);
    // Before 1970, with a fraction: the second at or before it, as after
    // 1970 (it was rounded toward 1970: 23:59:59).
    let early = Env::new();
    let old_page = early.write("page.txt", sample());
    let when = std::time::UNIX_EPOCH - std::time::Duration::from_millis(1_500);
    std::fs::File::options().write(true).open(&old_page).unwrap().set_modified(when).unwrap();
    early.ok(&["ingest", "--fetched-at-from", "mtime", &old_page]);
    let log = early.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let capture: Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(capture["fetched_at"], json!("1969-12-31T23:59:58+00:00"));

    let jsonl = std::fs::read_to_string(jsonl_fixture()).unwrap();
    let doc = format!(
        "{jsonl}{{\"type\":\"capture\",\"fetched_at\":\"2012-03-30T09:00:00+05:00\",\"complete\":false}}\n"
    );
    let path = env.write("partial.jsonl", doc);
    let run = env.ok(&["ingest", "--json", &path]);
    assert!(run.stderr.contains("the document says it is incomplete"), "{run}");
    let log = env.ok(&["log", "--json", "--kind", "capture"]).stdout;
    let capture: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(capture["fetched_at"], json!("2012-03-30T09:00:00+05:00"));
    assert_eq!(capture["complete"], json!(false));
    assert_eq!(capture["gaps"], json!(["marked-incomplete"]));
    // A document that states its own fetch time: the archive verifies clean
    // (no parse record under a key its capture does not imply), before and
    // after `repair`, and the same bytes again append nothing.
    env.ok(&["verify"]);
    let again = env.ok(&["ingest", "--json", &path]).json();
    assert_eq!(again["comments"]["new"], json!(0), "{again}");
    assert_eq!(again["captures"]["new"], json!(0), "{again}");
    env.ok(&["repair"]);
    env.ok(&["verify"]);
}

/// Pages of other sites' layouts, in the shapes scrapers save beside
/// tribune pages.
fn foreign_pages() -> Vec<(&'static str, String)> {
    vec![
        (
            "wordpress.txt",
            "Why the border matters\n\nPosted on March 28, 2012 by editor\n\nSome text.\n\n3 thoughts on \"Why the border matters\"\n\n  • Bob says:\n    March 29, 2012 at 1:05 pm\n\n    I agree with this.\n\n    Reply\n      • Alice says:\n        March 29, 2012 at 2:10 pm\n\n        Me too.\n\n        Reply\n  • Carol says:\n    March 30, 2012 at 9:00 am\n\n    Not convinced.\n\n    Reply\n\nLeave a Reply\n".to_string(),
        ),
        (
            "one-line.txt",
            "Comments\n\n• jdoe November 10, 2012 7:42 am\nGreat post, thanks.\n\n• mary_k November 10, 2012 9:03 am\nI disagree.\n\n  • jdoe November 10, 2012 9:15 am\n  Why?\n".to_string(),
        ),
        (
            "form-help.txt",
            "Add new comment\n\nYour name\n\nComment *\n\nMore information about text formats\n\n  • Lines and paragraphs break automatically.\n  • Web page addresses and e-mail addresses turn into links automatically.\n  • Allowed HTML tags: <a> <em> <strong>\n\nSave  Preview\n".to_string(),
        ),
        (
            "blog-list.txt",
            "Ten things to pack\n\nPublished: March 28, 2012\n\nOur list for the trip:\n\n  • a tent\n  • a stove\n  • water filters\n\nHappy travels!\n".to_string(),
        ),
        (
            "numbered.txt",
            "Replies\n\n1. I think this is right.\n2. No, it is not.\n3. Sources please.\n".to_string(),
        ),
        (
            "counted-foreign.txt",
            "A story\n\nReader Comments (3)\n\n  • Bob says:\n    March 29, 2012 at 1:05 pm\n\n    I agree.\n\n  • Alice says:\n    March 29, 2012 at 2:10 pm\n\n    Me too.\n\n  • Carol says:\n    March 30, 2012 at 9:00 am\n\n    No.\n\nLeave a Reply\n".to_string(),
        ),
    ]
}

#[test]
fn pages_in_other_layouts_are_refused_and_change_nothing() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let head = env.head();
    for (name, page) in foreign_pages() {
        let path = env.write(name, &page);
        for format in ["auto", "tribune"] {
            let run = env.run(&["ingest", "--format", format, &path]).expect_code(1);
            assert!(run.stderr.contains(&format!("rejected {path}")), "{name} --format {format}\n{run}");
            assert!(run.stderr.contains("unrecognized layout"), "{name} --format {format}\n{run}");
            assert!(!run.stderr.contains("panicked"), "{run}");
        }
        assert_eq!(env.head(), head, "{name} left the archive unchanged");
    }
    // A whole directory of them: every one refused, nothing appended.
    let dir = env.dir.path().join("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, page) in foreign_pages() {
        std::fs::write(dir.join(name), page).unwrap();
    }
    let run = env.run(&["ingest", "--json", &dir.display().to_string()]).expect_code(1);
    assert_eq!(run.json()["errors"].as_array().unwrap().len(), foreign_pages().len(), "{run}");
    assert_eq!(env.head(), head);
}

#[test]
fn a_bulleted_list_in_a_tribune_article_body_stays_in_the_body() {
    let env = Env::new();
    let page = sample().replace(
        "General Mattis, and General Allen, had arrived",
        "The talks covered:\n\n  • border coordination\n  • the Salala inquiry\n\nGeneral Mattis, and General Allen, had arrived",
    );
    let path = env.write("listed.txt", page);
    let run = env.ok(&["ingest", "--json", &path]);
    assert_eq!(run.json()["comments"]["new"], json!(44), "{run}");
    assert_eq!(run.json()["warnings"], json!([]), "a complete page\n{run}");
    let article = env.ok(&["log", "--json", "--kind", "article"]).stdout;
    assert!(article.contains("•"), "the list is part of the body: {article}");
    assert_eq!(comments(&env).len(), 44);
}

#[test]
fn comment_sections_in_another_shape_under_a_tribune_count_are_refused() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let head = env.head();
    // Bullets drawn as `*` (a text browser's dump): only time lines are left
    // of the layout, so each would become a reply with no author.
    let star = sample().replace("  • ", "  * ").replace("Reader Comments (44)", "Reader Comments (38)");
    let minimal = "Title\nPublished: March 28, 2012\nBody\n\nReader Comments (2)\n\n  * alice\n    Mar 28, 2012 - 1:02PM\n    hi\n\n  * bob\n    Mar 28, 2012 - 1:03PM\n    yo\n\nMore in Pakistan\n";
    // Half the headers without a tribune time.
    let half = "Title\nPublished: March 28, 2012\nBody\n\nReader Comments (4)\n\n  • alice\n    Mar 28, 2012 - 1:02PM\n\n    hi\n\n  • Shopping\n    Cart\n\n  • bob\n    Mar 28, 2012 - 1:03PM\n\n    yo\n\n  • Login\n    Register\n\nMore in Pakistan\n";
    for (name, page) in [("star.txt", star.as_str()), ("minimal.txt", minimal), ("half.txt", half)] {
        let path = env.write(name, page);
        for strict in [false, true] {
            let args: Vec<&str> =
                if strict { vec!["ingest", "--strict", &path] } else { vec!["ingest", &path] };
            let run = env.run(&args).expect_code(1);
            assert!(run.stderr.contains("unrecognized layout"), "{name}\n{run}");
        }
        assert_eq!(env.head(), head, "{name} changed the archive");
    }
}

#[test]
fn a_comment_seen_cut_off_is_not_an_edit_in_either_order() {
    let page = sample();
    // Cut inside the 2:07PM reply's time line, and inside a body.
    let in_time = page.find("    Mar 28, 2012 - 2:07PM").unwrap() + 4 + 19;
    let in_body = page.find("not a very brave").unwrap() + 6;
    for cut_at in [in_time, in_body] {
        for cut_first in [true, false] {
            let env = Env::new();
            let cut = env.write("cut.txt", &page.as_bytes()[..cut_at]);
            let (first, second) = if cut_first { (cut, sample_path()) } else { (sample_path(), cut) };
            env.ok(&["ingest", "--fetched-at", "2012-03-29T00:00:00Z", &first]);
            env.ok(&["ingest", "--fetched-at", "2012-03-30T00:00:00Z", &second]);
            let changes = env.ok(&["changes", "--json"]).json()["changes"].clone();
            for r in changes.as_array().unwrap() {
                assert_eq!(r["edited"], json!([]), "cut at {cut_at}, cut first {cut_first}: {r}");
            }
            let text = env.ok(&["thread", "kayani"]).stdout;
            assert!(!text.contains("edited"), "cut at {cut_at}, cut first {cut_first}\n{text}");
            assert!(!text.contains("Mar 28, 2012 - 2:0\n"), "a cut time line is not body text\n{text}");
            assert!(statuses(&env).iter().all(|(_, s)| s == "present"));
            // Every comment shows its whole text.
            let whole: Vec<Value> = comments(&env).iter().map(|c| c["body"].clone()).collect();
            let reference = Env::new();
            reference.ok(&["ingest", &sample_path()]);
            let expected: Vec<Value> = comments(&reference).iter().map(|c| c["body"].clone()).collect();
            assert_eq!(whole, expected, "cut at {cut_at}, cut first {cut_first}");
        }
    }
}

#[test]
fn a_download_cut_inside_a_character_is_a_partial_page() {
    let env = Env::new();
    let page = sample();
    let comments_at = page.find("Reader Comments").unwrap();
    let ellipsis = comments_at + page[comments_at..].find('…').unwrap();
    let cut = env.write("cut-char.txt", &page.as_bytes()[..ellipsis + 1]);
    let run = env.ok(&["ingest", "--json", &cut]);
    assert!(run.stderr.contains("partial capture"), "{run}");
    assert!(!run.stderr.contains("invalid UTF-8"), "{run}");
}
