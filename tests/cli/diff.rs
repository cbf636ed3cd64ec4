//! `cairn diff` between captures of the sample page: removals, edits with
//! a word diff, additions, moves, a partial capture's unseen comments, and
//! captures picked by observation time.

use crate::support::{fixture, Env};
use crate::views::{rescrape, two_captures, SAMPLE};
use serde_json::{json, Value};

fn capture_ids(env: &Env) -> Vec<String> {
    env.ok(&["log", "--json", "--kind", "capture"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap()[..12].to_string())
        .collect()
}

fn authors(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|c| c["author"].as_str().unwrap()).collect()
}

#[test]
fn a_re_scrape_shows_its_removal_and_edit_with_a_word_diff() {
    let env = Env::new();
    two_captures(&env);
    let ids = capture_ids(&env);
    let d = env.ok(&["diff", &ids[0], &ids[1], "--json"]).json();
    let d0 = &d["diffs"][0];
    assert_eq!(authors(&d0["removed"]), ["Aristo"]);
    assert_eq!(authors(&d0["edited"]), ["UFF"]);
    assert_eq!(d0["added"], json!([]));
    assert_eq!(d0["moved"], json!([]), "a removal above does not move the rest");
    assert_eq!(
        d0["edited"][0]["words"],
        json!([{"op": "same", "text": "Military for Sale is Enemy’s Voice…..Do You? "},
               {"op": "inserted", "text": "Really."}])
    );
    // The other way round: the removed comment is added back.
    let back = env.ok(&["diff", &ids[1], &ids[0], "--json"]).json();
    assert_eq!(authors(&back["diffs"][0]["added"]), ["Aristo"]);
    assert_eq!(back["diffs"][0]["added"][0]["to_position"], json!(5));

    let text = env.ok(&["diff", &ids[0], &ids[1]]).stdout;
    assert!(text.contains("0 added, 1 removed, 1 edited, 0 moved"), "{text}");
    assert!(text.contains("- removed · Aristo"), "{text}");
    assert!(text.contains("Do You? {+Really.+}"), "{text}");
}

#[test]
fn moves_partial_captures_and_times() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let page = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    // Swap two top-level comments: Yaida's now comes before Mirza's.
    let (m, y, a) = (
        page.find("  • Mirza Zulfiqar Baig\n").unwrap(),
        page.find("  • Yaida\n").unwrap(),
        page.find("  • Aristo\n").unwrap(),
    );
    let swapped = format!("{}{}{}{}", &page[..m], &page[y..a], &page[m..y], &page[a..]);
    let later = env.write("swapped.txt", swapped);
    env.command(&["ingest", &later]).env("SOURCE_DATE_EPOCH", "1700003600").output().unwrap();
    // A cut-off download of the re-scrape: partial.
    let cut = rescrape();
    // Cut inside the body of Yaida's comment (now before Mirza's in no
    // page: this is the re-scrape's order), which it shows cut off.
    let cut = &cut[..cut.find("I wish Gen Kayani would also take").unwrap() + 40];
    let cut = env.write("cut.txt", cut);
    let run = env.command(&["ingest", &cut]).env("SOURCE_DATE_EPOCH", "1700007200").output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let ids = capture_ids(&env);
    assert_eq!(ids.len(), 3);

    let moved = env.ok(&["diff", &ids[0], &ids[1], "--json"]).json();
    let d = &moved["diffs"][0];
    assert_eq!(authors(&d["moved"]).len(), 1, "{d}");
    assert!(["Yaida", "Mirza Zulfiqar Baig"].contains(&authors(&d["moved"])[0]));
    assert_eq!(
        (d["removed"].clone(), d["added"].clone(), d["edited"].clone()),
        (json!([]), json!([]), json!([]))
    );

    // The partial capture removes nothing: the comments it does not show are unseen.
    let partial = env.ok(&["diff", &ids[1], &ids[2], "--json"]).json();
    let p = &partial["diffs"][0];
    assert_eq!(p["to"]["complete"], json!(false));
    assert_eq!(p["removed"], json!([]));
    assert_eq!(p["edited"], json!([]), "a comment seen cut off is not an edit: {p}");
    assert!(p["unseen"].as_array().unwrap().len() > 30, "{p}");
    let text = env.ok(&["diff", &ids[1], &ids[2]]).stdout;
    assert!(text.contains("not shown (partial capture)"), "{text}");

    // By time: --from picks the last capture observed at or before it.
    let by_time = env
        .ok(&["diff", "kayani", "--from", "2023-11-14T22:30:00Z", "--to", "2023-11-14T23:30:00Z", "--json"])
        .json();
    assert_eq!(by_time["diffs"][0]["from"]["id"].as_str().unwrap()[..12], ids[0]);
    assert_eq!(by_time["diffs"][0]["to"]["id"].as_str().unwrap()[..12], ids[1]);
    let latest = env.ok(&["diff", "kayani", "--from", "2023-11-14T22:30:00Z", "--json"]).json();
    assert_eq!(latest["diffs"][0]["to"]["id"].as_str().unwrap()[..12], ids[2]);
    let none = env.run(&["diff", "kayani", "--from", "2020-01-01"]).expect_code(2);
    assert!(none.stderr.contains("no capture of"), "{none}");

    // Usage errors.
    env.run(&["diff", "kayani"]).expect_code(2);
    // One capture alone is not called an article.
    let alone = env.run(&["diff", &ids[0]]).expect_code(2);
    assert!(alone.stderr.contains("give two captures, or an article with --from"), "{alone}");
    env.run(&["diff", &ids[0], &ids[1], "--from", "2023-11-14"]).expect_code(2);
    let comment = env.ok(&["log", "--json", "--kind", "comment"]).stdout.lines().next().unwrap().to_string();
    let comment: Value = serde_json::from_str(&comment).unwrap();
    let not = env.run(&["diff", &comment["id"].as_str().unwrap()[..12], &ids[1]]).expect_code(2);
    assert!(not.stderr.contains("not a capture"), "{not}");
}

#[test]
fn a_comment_seen_cut_off_then_whole_in_other_words_is_an_edit() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let page = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    let yaida = "I wish Gen Kayani would also take";
    // A download cut inside Yaida's comment: partial, the comment cut off.
    let cut = env.write("cut.txt", &page[..page.find(yaida).unwrap() + 40]);
    let run = env.command(&["ingest", &cut]).env("SOURCE_DATE_EPOCH", "1700003600").output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // Whole again, in other words: the cut text does not begin them.
    let line_end = page[page.find(yaida).unwrap()..].find('\n').unwrap() + page.find(yaida).unwrap();
    let edited =
        format!("{}Completely different words now.{}", &page[..page.find(yaida).unwrap()], &page[line_end..]);
    let edited = env.write("edited.txt", edited);
    let run = env.command(&["ingest", &edited]).env("SOURCE_DATE_EPOCH", "1700007200").output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // And whole as it was first, the cut text beginning it.
    let run = env
        .command(&["ingest", "--fetched-at", "2023-11-15T03:00:00Z", &fixture(SAMPLE).display().to_string()])
        .env("SOURCE_DATE_EPOCH", "1700010800")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let ids = capture_ids(&env);
    assert_eq!(ids.len(), 4, "{ids:?}");

    let d = env.ok(&["diff", &ids[1], &ids[2], "--json"]).json();
    assert_eq!(authors(&d["diffs"][0]["edited"]), ["Yaida"], "{d}");
    // `changes` says the same of that capture.
    let changes = env.ok(&["changes", "kayani", "--json"]).json();
    let last_but_one = &changes["changes"].as_array().unwrap()[2];
    assert_eq!(last_but_one["edited"].as_array().map(Vec::len), Some(1), "{changes}");
    // Cut off, then whole with the cut text at its start: the same version.
    let whole = env.ok(&["diff", &ids[1], &ids[3], "--json"]).json();
    assert_eq!(whole["diffs"][0]["edited"], json!([]), "{whole}");
}

/// A comment edited, then seen cut off with its first text: a sighting of
/// that text (docs/tribune.md), which is current again; `changes`,
/// `thread` and `diff` all say the page went back to it.
#[test]
fn a_comment_seen_cut_off_with_an_earlier_text_goes_back_to_it() {
    let env = Env::new();
    let page = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    let yaida = "I wish Gen Kayani would also take";
    let at = page.find(yaida).unwrap();
    let line_end = page[at..].find('\n').unwrap() + at;
    let original = page[at..line_end].trim_end().to_string();
    env.ok(&["ingest", "--fetched-at", "2023-11-15T01:00:00Z", &fixture(SAMPLE).display().to_string()]);
    let edited = env
        .write("edited.txt", format!("{}Completely different words now.{}", &page[..at], &page[line_end..]));
    env.ok(&["ingest", "--fetched-at", "2023-11-15T02:00:00Z", &edited]);
    // Cut inside Yaida's comment, which began with its first text.
    let cut = env.write("cut.txt", &page[..at + 40]);
    env.ok(&["ingest", "--fetched-at", "2023-11-15T03:00:00Z", &cut]);
    let ids = capture_ids(&env);
    assert_eq!(ids.len(), 3, "{ids:?}");

    let d = env.ok(&["diff", &ids[1], &ids[2], "--json"]).json();
    assert_eq!(authors(&d["diffs"][0]["edited"]), ["Yaida"], "{d}");
    let changes = env.ok(&["changes", "kayani", "--json"]).json();
    let last = changes["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["edited"].as_array().map(Vec::len), Some(1), "{changes}");
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let comment =
        thread["comments"].as_array().unwrap().iter().find(|c| c["author"] == "Yaida").unwrap().clone();
    assert_eq!(comment["body"].as_str(), Some(original.as_str()), "{comment}");
    // The first text was last seen by the cut capture.
    let first =
        comment["versions"].as_array().unwrap().iter().find(|v| v["body"] == original.as_str()).unwrap();
    assert!(first["last_seen"]["id"].as_str().unwrap().starts_with(&ids[2]), "{comment}");

    // Cut inside a line that is not the first text's: only the lines
    // before it begin that text, which does not make it current again.
    let other = Env::new();
    other.ok(&["ingest", "--fetched-at", "2023-11-15T01:00:00Z", &fixture(SAMPLE).display().to_string()]);
    let edited = other
        .write("edited.txt", format!("{}Completely different words now.{}", &page[..at], &page[line_end..]));
    other.ok(&["ingest", "--fetched-at", "2023-11-15T02:00:00Z", &edited]);
    let sentence = original.find(". ").unwrap() + 1;
    let cut = format!("{}{}\n    Another second line, cut sho", &page[..at], &original[..sentence]);
    let cut = other.write("cut.txt", cut);
    other.ok(&["ingest", "--fetched-at", "2023-11-15T03:00:00Z", &cut]);
    let thread = other.ok(&["thread", "kayani", "--json"]).json();
    let comment =
        thread["comments"].as_array().unwrap().iter().find(|c| c["author"] == "Yaida").unwrap().clone();
    assert_eq!(comment["body"], "Completely different words now.", "{comment}");
    let versions = comment["versions"].as_array().unwrap();
    assert_eq!(versions.last().unwrap()["status"], "truncated", "{comment}");
}

/// Two captures cut at different places in one comment: the shorter cut
/// text begins the longer one, whichever came first, so neither is an edit
/// of the other.
#[test]
fn two_cut_captures_of_one_comment_are_no_edit() {
    let env = Env::new();
    let page = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    let at = page.find("I wish Gen Kayani would also take").unwrap();
    // Only cut captures: the later one cut sooner.
    for (name, len, epoch) in [("long.txt", 80, "1700003600"), ("short.txt", 40, "1700007200")] {
        let cut = env.write(name, &page[..at + len]);
        let run = env.command(&["ingest", &cut]).env("SOURCE_DATE_EPOCH", epoch).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let ids = capture_ids(&env);
    assert_eq!(ids.len(), 2);
    for (a, b) in [(0, 1), (1, 0)] {
        let d = env.ok(&["diff", &ids[a], &ids[b], "--json"]).json();
        assert_eq!(d["diffs"][0]["edited"], json!([]), "{a} -> {b}: {d}");
    }
    // The thread view says the same of the shorter cut after the longer.
    let changes = env.ok(&["changes", "kayani", "--json"]).json();
    let last = changes["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["edited"], json!([]), "{changes}");
}

/// Two versions of one comment side by side on a partial page, the later
/// one cut off at its end: `diff`, `history`, `changes` and `thread` say
/// alike which one the capture showed (the one seen whole).
#[test]
fn a_whole_version_beside_a_cut_one_is_what_every_output_shows() {
    let env = Env::new();
    let page = |bodies: &[&str], complete: bool| {
        let mut s =
            format!("A title\n\nPublished: March 28, 2012\nBody.\n\nReader Comments ({})\n\n", bodies.len());
        let items: Vec<String> =
            bodies.iter().map(|b| format!("  \u{2022} bob\n    Mar 28, 2012 - 1:00PM\n\n    {b}")).collect();
        s.push_str(&items.join("\n\n"));
        if complete {
            s.push_str("\n\n\nMore in Pakistan\n");
        }
        s
    };
    let pages = [
        page(&["one two three"], true),
        page(&["four five six"], true),
        page(&["one tw"], false),
        page(&["four five six", "one tw"], false),
    ];
    for (i, p) in pages.iter().enumerate() {
        let file = env.write(&format!("p{i}.txt"), p);
        env.ok(&["ingest", "--fetched-at", &format!("2023-11-15T0{}:00:00Z", i + 1), &file]);
    }
    let ids = capture_ids(&env);
    let changes = env.ok(&["changes", "--json"]).json();
    let edited = |v: &Value| v.as_array().map(Vec::len);
    let d = env.ok(&["diff", &ids[2], &ids[3], "--json"]).json();
    assert_eq!(edited(&changes["changes"][3]["edited"]), edited(&d["diffs"][0]["edited"]), "{changes}\n{d}");
    let thread = env.ok(&["thread", "a title", "--json"]).json();
    let current = thread["comments"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(thread["comments"][0]["body"], "four five six", "{thread}");
    let history = env.ok(&["history", &current[..12], "--json"]).json();
    assert_eq!(history["sightings"][3]["version"], json!(current), "{history}");
}
