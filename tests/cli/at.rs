//! `--at SEQ|CHECKPOINT|TIME` on the view commands: each answers as the
//! views were at that point, equal to what `replay --until` pins, without
//! touching the stored views.

use crate::support::{walk, Env};
use crate::views::two_captures;
use serde_json::{json, Value};

/// The view commands, each as one query whose whole output can be compared.
fn queries(comment: &str) -> Vec<Vec<String>> {
    let q = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        q(&["articles", "--json"]),
        q(&["thread", "kayani", "--json"]),
        q(&["thread", "kayani"]),
        q(&["changes", "--json"]),
        q(&["changes"]),
        q(&["authors", "--json"]),
        q(&["author", "Aristo", "--json"]),
        q(&["history", comment, "--json"]),
        q(&["search", "the", "--json"]),
        q(&["table", "comments", "--format", "jsonl"]),
        q(&["table", "captures", "--format", "csv"]),
        q(&["table", "sightings", "--format", "csv"]),
    ]
}

/// Where a command's output says the views stand: its JSON `as_of`, or the
/// note on the first line of its text.
#[derive(Debug)]
enum Point {
    Json(Value),
    Note(String),
    Unsaid,
}

/// A command's output with where the views stand taken out: its `as_of`
/// (JSON), or its first line when that is the note (text). Table rows
/// carry neither.
fn without_as_of(stdout: &str) -> (String, Point) {
    match serde_json::from_str::<Value>(stdout) {
        Ok(mut v) if v.is_object() => match v.as_object_mut().unwrap().shift_remove("as_of") {
            Some(at) => (v.to_string(), Point::Json(at)),
            None => (v.to_string(), Point::Unsaid),
        },
        _ => match stdout.split_once('\n') {
            Some((first, rest)) if first.starts_with("(views ") => {
                (rest.to_string(), Point::Note(first.to_string()))
            }
            _ => (stdout.to_string(), Point::Unsaid),
        },
    }
}

/// Runs every query with `--at POINT`, then pins the views there with
/// `replay --until POINT` and runs them again without it: the answers must
/// be the same, and each must say where the views stand (computed, then
/// pinned), except table rows, which carry no such field.
fn same_as_pinned(env: &Env, point: &str, comment: &str) {
    let computed: Vec<(String, Point)> = queries(comment)
        .iter()
        .map(|q| {
            let mut args: Vec<&str> = q.iter().map(String::as_str).collect();
            args.extend(["--at", point]);
            without_as_of(&env.ok(&args).stdout)
        })
        .collect();
    env.ok(&["replay", "--until", point]);
    for (q, (body, at)) in queries(comment).iter().zip(&computed) {
        let args: Vec<&str> = q.iter().map(String::as_str).collect();
        let (pinned_body, pinned_at) = without_as_of(&env.ok(&args).stdout);
        assert_eq!(*body, pinned_body, "{q:?} --at {point} differs from the views pinned there");
        match (at, pinned_at) {
            (Point::Json(at), Point::Json(pinned_at)) => {
                assert_eq!(at["computed"], json!(true), "{q:?}");
                assert_eq!(at["pinned"], json!(false), "{q:?}");
                assert_eq!(pinned_at["computed"], json!(false), "{q:?}");
                assert_eq!(pinned_at["pinned"], json!(true), "{q:?}");
                assert_eq!(at["seq"], pinned_at["seq"], "{q:?}");
                assert_eq!(at["observed_until"], pinned_at["observed_until"], "{q:?}");
            }
            (Point::Note(at), Point::Note(pinned_at)) => {
                assert!(at.ends_with("computed for this query by --at)"), "{q:?}: {at}");
                assert!(pinned_at.contains("pinned by `cairn replay --until`"), "{q:?}: {pinned_at}");
            }
            (Point::Unsaid, Point::Unsaid) if q[0] == "table" => {}
            (at, pinned_at) => panic!("{q:?} does not say where the views stand: {at:?} / {pinned_at:?}"),
        }
    }
    env.ok(&["replay"]);
}

/// A comment present in both captures.
fn kept_comment(env: &Env) -> String {
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let c = t["comments"].as_array().unwrap().iter().find(|c| c["status"] == "present").unwrap();
    c["id"].as_str().unwrap().to_string()
}

#[test]
fn at_a_seq_answers_as_the_views_pinned_there_and_changes_nothing() {
    let env = Env::new();
    let (first, second) = two_captures(&env);
    let comment = kept_comment(&env);
    let stats = env.ok(&["stats", "--json"]).json();

    // The past: one capture, Aristo's comment still there, no edit yet.
    let t = env.ok(&["thread", "kayani", "--json", "--at", &first.to_string()]).json();
    assert_eq!(t["captures"].as_array().unwrap().len(), 1);
    assert_eq!(t["as_of"], json!({"seq": first, "pinned": false, "observed_until": null, "computed": true}));
    assert!(t["comments"].as_array().unwrap().iter().all(|c| c["status"] == "present"));
    let text = env.ok(&["thread", "kayani", "--at", &first.to_string()]).stdout;
    assert!(
        text.starts_with(&format!("(views as of seq {first}, computed for this query by --at)")),
        "{text}"
    );

    // The stored views were not touched: same state, still at the head.
    assert_eq!(env.ok(&["stats", "--json"]).json(), stats);
    let now = env.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(now["captures"].as_array().unwrap().len(), 2);
    assert_eq!(now["as_of"]["seq"], json!(second));
    env.ok(&["verify"]);

    same_as_pinned(&env, &first.to_string(), &comment);
    same_as_pinned(&env, &second.to_string(), &comment);
    // What came later is not there, and the error says why.
    let edited = now["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["versions"].as_array().unwrap().len() > 1)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = env.run(&["history", &edited, "--at", &first.to_string()]).expect_code(2);
    assert!(run.stderr.contains(&format!("computed at seq {first} by --at")), "{run}");
    let caps: Vec<String> =
        now["captures"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    let run = env.run(&["diff", &caps[0], &caps[1], "--at", &first.to_string()]).expect_code(2);
    assert!(run.stderr.contains(&format!("computed at seq {first} by --at")), "{run}");
    // Before the first capture ends: nothing is shown yet.
    let empty = env.ok(&["articles", "--json", "--at", &(first - 1).to_string()]).json();
    assert_eq!(empty["articles"], json!([]));
}

#[test]
fn at_a_checkpoint_is_checked_against_the_chain() {
    let env = Env::new();
    env.ok(&["ingest", &crate::support::fixture(crate::views::SAMPLE).display().to_string()]);
    let saved = env.head(); // "SEQ HEX", as `cairn head` prints it
    let (seq, hash) = saved.split_once(' ').unwrap();
    let later = env.write("later.txt", crate::views::rescrape());
    env.ok(&["ingest", &later]);
    let checkpoint = format!("{seq}:{hash}");
    for form in [checkpoint.as_str(), saved.as_str()] {
        let at = env.ok(&["thread", "kayani", "--json", "--at", form]).json();
        let by_seq = env.ok(&["thread", "kayani", "--json", "--at", seq]).json();
        assert_eq!(at, by_seq, "--at {form:?}");
        assert_eq!(at["captures"].as_array().unwrap().len(), 1);
    }
    // A checkpoint of another archive (or a rewritten one) is refused.
    let other = format!("{seq}:{}", "ab".repeat(32));
    let run = env.run(&["thread", "kayani", "--at", &other]).expect_code(2);
    assert!(run.stderr.contains("is not in this archive"), "{run}");
    assert!(run.stderr.contains(hash), "names the chain head this archive has: {run}");
    let past = format!("{}:{hash}", seq.parse::<u64>().unwrap() + 1000);
    env.run(&["articles", "--at", &past]).expect_code(2);
}

#[test]
fn at_a_time_keeps_what_was_observed_by_then() {
    let env = Env::new();
    // The re-scrape is ingested first but was fetched later: observation
    // order, not log order, decides.
    let later = env.write("later.txt", crate::views::rescrape());
    env.ok(&["ingest", "--fetched-at", "2012-03-31T00:00:00Z", &later]);
    let sample = crate::support::fixture(crate::views::SAMPLE).display().to_string();
    env.ok(&["ingest", "--fetched-at", "2012-03-29T00:00:00Z", &sample]);
    let comment = kept_comment(&env);
    let before = env.ok(&["articles", "--json", "--at", "2012-03-28T00:00:00Z"]).json();
    assert_eq!(before["articles"], json!([]));
    assert_eq!(before["as_of"]["observed_until"], json!("2012-03-28T00:00:00+00:00"));
    let between = env.ok(&["thread", "kayani", "--json", "--at", "2012-03-30T00:00:00Z"]).json();
    let captures = between["captures"].as_array().unwrap();
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["fetched_at"], json!("2012-03-29T00:00:00+00:00"));
    assert!(between["comments"].as_array().unwrap().iter().all(|c| c["status"] == "present"));
    let after = env.ok(&["thread", "kayani", "--json", "--at", "2012-04-01T00:00:00+05:00"]).json();
    assert_eq!(after["captures"].as_array().unwrap().len(), 2);
    same_as_pinned(&env, "2012-03-30T00:00:00Z", &comment);
}

#[test]
fn a_bad_point_is_a_usage_error() {
    let env = Env::new();
    two_captures(&env);
    for bad in ["yesterday", "46:00", "2012-03-28"] {
        let run = env.run(&["articles", "--at", bad]).expect_code(2);
        assert!(run.stderr.contains("is not a seq, a checkpoint"), "{bad}: {run}");
    }
    let run = env.run(&["articles", "--at", "100000"]).expect_code(2);
    assert!(run.stderr.contains("past the head"), "{run}");
    let run = env.run(&["replay", "--until", "100000"]).expect_code(2);
    assert!(run.stderr.contains("past the head"), "replay --until says the same: {run}");
    let run = env.run(&["articles", "--at", "99999999999999999999"]).expect_code(2);
    assert!(run.stderr.contains("no log reaches that seq"), "{run}");
}

#[test]
fn the_site_at_a_point_equals_the_site_of_views_pinned_there() {
    let env = Env::new();
    let (first, _) = two_captures(&env);
    let at = env.dir.path().join("at");
    let pinned = env.dir.path().join("pinned");
    let run = env.ok(&["site", &at.display().to_string(), "--json", "--at", &first.to_string()]).json();
    assert_eq!(run["as_of"]["computed"], json!(true));
    env.ok(&["replay", "--until", &first.to_string()]);
    env.ok(&["site", &pinned.display().to_string()]);
    let files = |dir: &std::path::Path| {
        let mut all: Vec<(String, Vec<u8>)> = walk(dir)
            .into_iter()
            .map(|p| (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        all.sort();
        all
    };
    let (a, b) = (files(&at), files(&pinned));
    assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
    // Each page says how its past point was had (`--at`, or pinned), and
    // is otherwise the same.
    let past = |bytes: &[u8]| -> String {
        let text = String::from_utf8_lossy(bytes).into_owned();
        match (text.find("<p class=\"past\">"), text.find("--at</p>"), text.find("the present</p>")) {
            (Some(from), Some(to), _) => format!("{}{}", &text[..from], &text[to + "--at</p>".len()..]),
            (Some(from), _, Some(to)) => {
                format!("{}{}", &text[..from], &text[to + "the present</p>".len()..])
            }
            _ => text,
        }
    };
    // (The manifest's digests cover the note: a change of point rewrites
    // the pages.)
    for (x, y) in a.iter().zip(&b).filter(|(x, _)| x.0 != ".cairn-site") {
        if x.0.ends_with(".html") {
            assert!(String::from_utf8_lossy(&x.1).contains("computed for this query by --at"), "{}", x.0);
            assert!(String::from_utf8_lossy(&y.1).contains("pinned by `cairn replay --until`"), "{}", x.0);
        }
        assert!(past(&x.1) == past(&y.1), "{} differs", x.0);
    }
}
