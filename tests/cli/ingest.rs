//! `cairn ingest`: dedupe across runs, atomic rejection, the report shapes,
//! inputs from directories and stdin, dry runs.

use crate::support::{jsonl_fixture, Env};
use serde_json::json;

#[test]
fn ingesting_twice_appends_nothing_the_second_time() {
    let env = Env::new();
    let first = env.ok(&["ingest", "--json", &jsonl_fixture()]);
    let head = env.head();
    assert!(head.starts_with("9 "), "{head}");
    let hash = head.split_once(' ').unwrap().1;
    assert_eq!(
        first.stdout.trim(),
        format!(
            r#"{{"articles":{{"new":1,"duplicate":0}},"comments":{{"new":7,"duplicate":0}},"captures":{{"new":1,"duplicate":0}},"merges":{{"new":0,"duplicate":0}},"head":{{"seq":9,"hash":"{hash}"}},"inputs":1,"errors":[],"warnings":[]}}"#
        ),
        "exact JSON shape\n{first}"
    );
    let second = env.ok(&["ingest", "--json", &jsonl_fixture()]);
    assert_eq!(
        second.json(),
        json!({"articles":{"new":0,"duplicate":1},"comments":{"new":0,"duplicate":7},"captures":{"new":0,"duplicate":1},"merges":{"new":0,"duplicate":0},"head":{"seq":9,"hash":hash},"inputs":1,"errors":[],"warnings":[]})
    );
    assert_eq!(env.head(), head, "head unchanged");
}

#[test]
fn text_report_says_the_same_in_words() {
    let env = Env::new();
    let run = env.ok(&["ingest", &jsonl_fixture()]);
    assert_eq!(
        run.stdout.trim(),
        "1 input read, 0 rejected; appended 1 article, 7 comments, 1 capture (0 duplicate articles, 0 duplicate comments, 0 duplicate captures)"
    );
}

#[test]
fn a_malformed_line_rejects_the_whole_document() {
    let env = Env::new();
    env.ok(&["ingest", &jsonl_fixture()]);
    let head = env.head();
    let stats = env.ok(&["stats", "--json"]).json();
    let good = std::fs::read_to_string(jsonl_fixture()).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.push(r#"{"type":"comment","article":"kayani","author":"new","body":"a new comment"}"#);
    lines.push(r#"{"type":"comment","article":"kayani","author":"x","body":"broken"#);
    let bad = env.write("bad.jsonl", lines.join("\n"));
    let run = env.run(&["ingest", "--json", &bad]).expect_code(1);
    let report = run.json();
    assert_eq!(report["errors"][0]["path"], json!(bad));
    let message = report["errors"][0]["error"].as_str().unwrap();
    assert!(message.starts_with("line 10: invalid record"), "{message}");
    assert!(run.stderr.contains(&format!("{bad}:10: invalid record")), "{run}");
    assert_eq!(report["comments"]["new"], json!(0));
    assert_eq!(env.head(), head, "archive unchanged");
    let mut after = env.ok(&["stats", "--json"]).json();
    let mut stats = stats;
    // sled's own files may change size when it opens; the contents may not.
    after["disk_bytes"] = json!(null);
    stats["disk_bytes"] = json!(null);
    assert_eq!(after, stats);
}

#[test]
fn a_rejected_first_document_leaves_an_empty_archive() {
    let env = Env::new();
    let bad = env.write("bad.jsonl", "{\"type\":\"article\",\"title\":\"t\"}\nnot json\n");
    env.run(&["ingest", &bad]).expect_code(1);
    assert_eq!(env.head(), format!("0 {}", "0".repeat(64)));
}

#[test]
fn bad_inputs_are_rejected_with_clear_errors() {
    let env = Env::new();
    let cases = [
        ("empty.jsonl", b"".to_vec(), "empty input"),
        ("blank.jsonl", b"  \n\n".to_vec(), "empty input"),
        ("binary.jsonl", b"{\"a\0".to_vec(), "byte 3: binary input"),
        ("latin1.jsonl", b"{\"type\":\"article\",\"title\":\"caf\xe9\"}".to_vec(), "byte 30: invalid UTF-8"),
        (
            "notes.txt",
            b"just some notes\nnothing that looks like a page\n".to_vec(),
            "unrecognized layout: not the tribune layout",
        ),
        (
            "array.jsonl",
            b"{\"type\":\"article\",\"title\":\"t\",\"body\":\"not a list\"}".to_vec(),
            ":1: invalid record",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = env.write(name, bytes);
        let run = env.run(&["ingest", &path]).expect_code(1);
        assert!(run.stderr.contains(expected), "{name}: wanted {expected:?}\n{run}");
        assert!(run.stderr.contains(&path), "the error names the file\n{run}");
        assert!(!run.stderr.contains("panicked"), "{run}");
    }
    let run = env.run(&["ingest", "does-not-exist.jsonl"]).expect_code(1);
    assert!(run.stderr.contains("does-not-exist.jsonl: no such file or directory"), "{run}");
    assert_eq!(env.head(), format!("0 {}", "0".repeat(64)));
}

/// A file naming one article twice contradicts itself: under one local id
/// (a comment naming it went to the first article, and the second's
/// complete capture showed its comments removed), or under one URL with
/// two titles (the capture could show only one). Rejected, as a comment id
/// used twice is, and the archive unchanged.
#[test]
fn an_article_given_twice_in_one_file_is_rejected() {
    let env = Env::new();
    let first = env.write(
        "first.jsonl",
        "{\"type\":\"article\",\"id\":\"a\",\"url\":\"https://x.com/two\",\"title\":\"Two\"}\n\
         {\"type\":\"comment\",\"article\":\"a\",\"author\":\"amy\",\"posted_at\":\"2012-03-28T13:02:00Z\",\"body\":\"hello\"}\n",
    );
    env.ok(&["ingest", &first]);
    let head = env.head();
    let same_id = env.write(
        "same-id.jsonl",
        "{\"type\":\"article\",\"id\":\"a\",\"url\":\"https://x.com/one\",\"title\":\"One\"}\n\
         {\"type\":\"article\",\"id\":\"a\",\"url\":\"https://x.com/two\",\"title\":\"Two\"}\n\
         {\"type\":\"comment\",\"article\":\"a\",\"author\":\"amy\",\"posted_at\":\"2012-03-28T13:02:00Z\",\"body\":\"hello\"}\n",
    );
    let run = env.run(&["ingest", "--fetched-at", "2030-01-01T00:00:00Z", &same_id]).expect_code(1);
    assert!(
        run.stderr.contains(&format!("{same_id}:2: article id \"a\" is used twice (first on line 1)")),
        "{run}"
    );
    let same_url = env.write(
        "same-url.jsonl",
        "{\"type\":\"article\",\"url\":\"https://x.com/two\",\"title\":\"Title A\"}\n\
         {\"type\":\"comment\",\"article\":\"https://x.com/two\",\"author\":\"amy\",\"posted_at\":\"2012-03-28T13:02:00Z\",\"body\":\"hello\"}\n\
         {\"type\":\"article\",\"url\":\"https://X.com/two#c\",\"title\":\"Title B\"}\n",
    );
    let run = env.run(&["ingest", "--fetched-at", "2030-01-01T00:00:00Z", &same_url]).expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("{same_url}:3: article https://x.com/two is given twice (first on line 1)")),
        "{run}"
    );
    assert_eq!(env.head(), head, "archive unchanged");
    let thread = env.ok(&["thread", "x.com/two"]).stdout;
    assert!(thread.contains("hello") && !thread.contains("removed"), "{thread}");
}

/// A time an input shows that cairn cannot keep as shown is refused, never
/// moved: a leap second (read as the second before, a comment at :59 and
/// one at :60 had one id) and a fraction finer than nanoseconds (cut to
/// nine digits, two times differing past the ninth had one id).
#[test]
fn times_cairn_cannot_keep_are_refused_not_moved() {
    let env = Env::new();
    for (time, why) in [
        ("2012-06-30T23:59:60Z", "is a leap second"),
        ("2012-06-30T12:00:00.1234567891Z", "has a fraction of a second finer than nanoseconds"),
    ] {
        let file = env.write(
            "odd.jsonl",
            format!(
                "{{\"type\":\"article\",\"url\":\"https://x.com/t\",\"title\":\"T\"}}\n\
                 {{\"type\":\"comment\",\"author\":\"amy\",\"posted_at\":\"{time}\",\"body\":\"x\"}}\n"
            ),
        );
        let run = env.run(&["ingest", &file]).expect_code(1);
        let said = format!("{file}:2: posted_at \"{time}\" {why}, which cairn cannot keep as shown");
        assert!(run.stderr.contains(&said), "{run}");
        let run = env.run(&["ingest", "--fetched-at", time, &jsonl_fixture()]).expect_code(2);
        assert!(run.stderr.contains(&format!("--fetched-at \"{time}\" {why}")), "{run}");
    }
    assert_eq!(env.head(), format!("0 {}", "0".repeat(64)));
}

#[test]
fn good_inputs_still_land_when_others_are_rejected() {
    let env = Env::new();
    let bad = env.write("bad.jsonl", "nope");
    let run = env.run(&["ingest", "--json", &bad, &jsonl_fixture()]).expect_code(1);
    let report = run.json();
    assert_eq!(report["inputs"], json!(2));
    assert_eq!(report["comments"]["new"], json!(7));
    assert_eq!(report["errors"].as_array().unwrap().len(), 1);
}

#[test]
fn directories_are_walked_in_sorted_order() {
    let env = Env::new();
    let rec = |n: u32| {
        format!("{{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"body\":\"comment {n}\"}}\n")
    };
    env.write("in/b.jsonl", rec(2));
    env.write("in/a.jsonl", rec(1));
    env.write("in/sub/c.jsonl", rec(3));
    env.write("in/.hidden.jsonl", rec(4));
    let run = env.ok(&["ingest", "--json", "in"]);
    assert_eq!(run.json()["inputs"], json!(3));
    let log = env.ok(&["log", "--kind", "capture", "--json"]);
    let sources: Vec<String> = log
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["source"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(sources, vec!["in/a.jsonl", "in/b.jsonl", "in/sub/c.jsonl"]);
}

#[test]
fn stdin_is_one_document() {
    let env = Env::new();
    let bytes = std::fs::read(jsonl_fixture()).unwrap();
    let run = env.run_stdin(&["ingest", "--json", "-"], &bytes).expect_code(0);
    assert_eq!(run.json()["comments"]["new"], json!(7));
    let cap = env.ok(&["log", "--kind", "capture", "--json"]);
    assert!(cap.stdout.contains(r#""source":"-""#), "{cap}");
    // The same bytes from a file are the same capture: nothing new.
    let again = env.ok(&["ingest", "--json", &jsonl_fixture()]).json();
    assert_eq!(again["captures"], json!({"new":0,"duplicate":1}));
}

#[test]
fn dry_run_reports_without_writing() {
    let env = Env::new();
    let run = env.ok(&["ingest", "--dry-run", "--json", &jsonl_fixture()]);
    assert_eq!(run.json()["comments"]["new"], json!(7));
    assert!(!env.archive.exists(), "a dry run creates no archive");
    env.ok(&["ingest", &jsonl_fixture()]);
    let head = env.head();
    let extra = env.write(
        "more.jsonl",
        "{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"body\":\"new\"}\n",
    );
    let run = env.ok(&["ingest", "--dry-run", &extra, &jsonl_fixture()]);
    assert!(run.stdout.contains("would append 0 articles, 1 comment, 1 capture (1 duplicate articles, 7 duplicate comments, 1 duplicate captures)"), "{run}");
    assert_eq!(env.head(), head);
}

#[test]
fn same_inputs_same_head_with_source_date_epoch() {
    let a = Env::new();
    let b = Env::new();
    a.ok(&["ingest", &jsonl_fixture()]);
    b.ok(&["ingest", &jsonl_fixture()]);
    assert_eq!(a.head(), b.head());
    assert!(a
        .ok(&["log", "--json", "--limit", "1"])
        .stdout
        .contains("\"recorded_at\":\"2023-11-14T22:13:20+00:00\""));
}

#[test]
fn tz_applies_to_times_without_offset() {
    let env = Env::new();
    let doc = env.write("t.jsonl", "{\"type\":\"comment\",\"article\":\"https://example.com/a\",\"posted_at\":\"2012-03-28 13:02\",\"body\":\"x\"}\n");
    env.ok(&[
        "ingest",
        "--tz",
        "+05:00",
        "--source-url",
        "HTTPS://Example.com/a#c",
        "--fetched-at",
        "2012-03-30T08:00:00Z",
        &doc,
    ]);
    let log = env.ok(&["log", "--json"]).stdout;
    assert!(log.contains("\"posted_at\":\"2012-03-28T13:02:00+05:00\""), "{log}");
    assert!(log.contains("\"source_url\":\"https://example.com/a\""), "{log}");
    assert!(log.contains("\"fetched_at\":\"2012-03-30T08:00:00+00:00\""), "{log}");
}

#[test]
fn usage_errors_exit_2_and_touch_nothing() {
    let env = Env::new();
    for args in [
        vec!["ingest", "--tz", "5", "x.jsonl"],
        vec!["ingest", "--fetched-at", "yesterday", "x.jsonl"],
        vec!["ingest", "--source-url", "not a url", "x.jsonl"],
        vec!["ingest"],
        vec!["frobnicate"],
    ] {
        env.run(&args).expect_code(2);
    }
    assert!(!env.archive.exists());
}

#[test]
fn refuses_a_directory_that_is_not_an_archive() {
    let env = Env::new();
    std::fs::create_dir_all(&env.archive).unwrap();
    std::fs::write(env.archive.join("thesis.tex"), "precious").unwrap();
    let run = env.run(&["ingest", &jsonl_fixture()]).expect_code(2);
    assert!(run.stderr.contains("is not a cairn archive"), "{run}");
    assert_eq!(std::fs::read_dir(&env.archive).unwrap().count(), 1);
}

/// Inputs are read, hashed and parsed on two reader threads, each taking
/// every other input: the log must still take them in the order given,
/// whatever the threads' timing. One ingest of many pages (given out of
/// path order, a missing path among them) reaches the head that ingesting
/// them one at a time, in that order, reaches.
#[test]
fn inputs_are_appended_in_the_order_given() {
    use crate::generated::gen_tribune::{generate, Params};
    let all = Env::new();
    let corpus = all.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 9, comments: 6, rounds: 2, seed: 5, authors: 0 }).unwrap();
    let mut files: Vec<String> =
        crate::support::walk(&corpus).iter().map(|p| p.display().to_string()).collect();
    files.sort();
    // A fixed shuffle: later rounds before earlier ones, interleaved.
    files.sort_by_key(|f| (f.len() % 3, std::cmp::Reverse(f.clone())));
    assert!(files.len() >= 20, "{} pages", files.len());
    let missing = all.dir.path().join("missing.txt").display().to_string();
    let mut args: Vec<&str> = vec!["ingest", "-q"];
    args.extend(files[..5].iter().map(String::as_str));
    args.push(&missing);
    args.extend(files[5..].iter().map(String::as_str));
    let run = all.run(&args);
    assert_eq!(run.code, 1, "the missing input is rejected, the others appended\n{run}");

    let one_by_one = Env::new();
    for f in &files {
        one_by_one.ok(&["ingest", "-q", f]);
    }
    assert_eq!(all.head(), one_by_one.head());
    // And not the head of another order (the check can fail).
    let sorted = Env::new();
    let mut in_path_order = files.clone();
    in_path_order.sort();
    let mut args: Vec<&str> = vec!["ingest", "-q"];
    args.extend(in_path_order.iter().map(String::as_str));
    sorted.ok(&args);
    assert_ne!(sorted.head(), all.head());
}
