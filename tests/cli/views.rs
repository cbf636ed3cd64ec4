//! The views over the sample page and a re-scrape in which one comment was
//! removed and one edited: thread, author, authors, articles, changes,
//! history, and replay (byte-identical output, time travel, --emit).

use crate::support::{fixture, jsonl_fixture, Env};
use serde_json::{json, Value};

pub const SAMPLE: &str = "tribune-2012-03-28-us-generals-kayani.txt";

fn sample() -> String {
    std::fs::read_to_string(fixture(SAMPLE)).unwrap()
}

/// The sample, re-scraped: Aristo's comment removed, UFF's edited.
pub fn rescrape() -> String {
    let page = sample();
    let aristo = "  • Aristo\n    Mar 28, 2012 - 1:27PM\n\n    What will come after GERONIMO????\n\n\n";
    assert!(page.contains(aristo));
    page.replace(aristo, "")
        .replace("Do You?", "Do You? Really.")
        .replace("Reader Comments (44)", "Reader Comments (43)")
}

/// An archive with the sample and its re-scrape; returns the capture seqs.
pub fn two_captures(env: &Env) -> (u64, u64) {
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let later = env.write("later.txt", rescrape());
    env.ok(&["ingest", &later]);
    let caps: Vec<u64> = env
        .ok(&["log", "--json", "--kind", "capture"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    (caps[0], caps[1])
}

/// The ids of the archive's captures, in log order.
fn capture_ids(env: &Env) -> Vec<String> {
    (env.ok(&["log", "--kind", "capture", "--json"]).stdout.lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

fn by_author<'a>(comments: &'a [Value], author: &str) -> Vec<&'a Value> {
    comments.iter().filter(|c| c["author"] == json!(author)).collect()
}

#[test]
fn thread_shows_the_page_with_removals_and_edits() {
    let env = Env::new();
    let (first, second) = two_captures(&env);
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let comments = t["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 44, "each comment once");
    assert_eq!(t["article"]["title"], json!("Senior US commanders discuss border cooperation with Kayani"));
    assert_eq!(t["captures"].as_array().unwrap().len(), 2);
    assert_eq!(
        t["as_of"],
        json!({"seq": second, "pinned": false, "observed_until": null, "computed": false})
    );

    // Page order is the first capture's: ahmad first, the last at 2:55AM.
    assert_eq!(comments[0]["author"], json!("ahmad"));
    assert_eq!(comments[43]["posted_at"], json!("2012-03-30T02:55:00+05:00"));

    // The bullet-less 2:07PM reply is nested under Shah's 1:33PM comment.
    let shah = comments.iter().find(|c| c["posted_at"] == json!("2012-03-28T13:33:00+05:00")).unwrap();
    let reply = comments.iter().find(|c| c["posted_at"] == json!("2012-03-28T14:07:00+05:00")).unwrap();
    assert_eq!(reply["parent"], shah["id"]);
    assert_eq!(reply["parent_kind"], json!("page"));
    assert_eq!(reply["depth"], json!(1));

    // The removed comment is marked, since the second capture.
    let aristo = by_author(comments, "Aristo")[0];
    assert_eq!(aristo["status"], json!("removed"));
    assert_eq!(aristo["removed_since"]["seq"], json!(second));
    assert_eq!(aristo["last_seen"]["seq"], json!(first));

    // The edited one shows its latest version and keeps both.
    let uff = by_author(comments, "UFF");
    assert_eq!(uff.len(), 1);
    assert!(uff[0]["body"].as_str().unwrap().ends_with("Do You? Really."));
    let versions = uff[0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["status"], json!("superseded"));
    assert_eq!(versions[1]["status"], json!("present"));
    assert_eq!(versions[1]["id"], uff[0]["id"]);
    assert_eq!(uff[0]["first_seen"]["seq"], json!(first));
    assert_eq!(uff[0]["status"], json!("present"));

    // @Name at the start of a body replies to that author's one earlier comment.
    let adeel = comments.iter().find(|c| c["posted_at"] == json!("2012-03-28T18:07:00+05:00")).unwrap();
    let cautious = by_author(comments, "Cautious")[0];
    assert_eq!(adeel["parent"], cautious["id"]);
    assert_eq!(adeel["parent_kind"], json!("mention"));

    let text = env.ok(&["thread", "kayani"]).stdout;
    assert!(text.starts_with("Senior US commanders discuss border cooperation with Kayani\n"), "{text}");
    assert!(text.contains("\n    ↳ (no author) · 2012-03-28 14:07 +05:00"), "{text}");
    assert!(
        text.contains(&format!(
            "• Aristo · 2012-03-28 13:27 +05:00 · 16600c7ad7fc · [removed since seq {second} (recorded 2023-11-14 22:13 +00:00)]"
        )),
        "{text}"
    );
    assert!(text.contains("[edited, 2 versions]"), "{text}");

    // A reply by @mention is printed right under the comment it names,
    // not where the page put it (by its time, under another comment).
    let blocks: Vec<&str> = text.split("\n\n").collect();
    let at = |prefix: &str| blocks.iter().position(|b| b.trim_start().starts_with(prefix)).expect(prefix);
    let (europe, gahratmand) = (at("• logic Europe"), at("↳ Gahratmand"));
    assert!(gahratmand > europe, "{text}");
    assert!(
        blocks[europe + 1..gahratmand].iter().all(|b| b.trim_start().starts_with('↳')),
        "only replies to logic Europe come between: {text}"
    );
    let usman = at("• Usman786");
    assert!(usman < europe || usman > gahratmand, "{text}");
    let (cautious, adeel) = (at("• Cautious"), at("↳ adeel759 · 2012-03-28 18:07"));
    assert_eq!(adeel, cautious + 1, "{text}");
}

/// A title changed and changed back is back, in every view that shows it,
/// whatever order the scrapes are ingested in: the current version is the
/// one the latest capture showed, as a comment's is.
#[test]
fn a_title_changed_and_changed_back_is_back() {
    const FIRST: &str = "Senior US commanders discuss border cooperation with Kayani";
    const SECOND: &str = "Senior US commanders meet Kayani";
    let scrapes =
        [("2012-03-29T00:00:00Z", FIRST), ("2012-03-30T00:00:00Z", SECOND), ("2012-03-31T00:00:00Z", FIRST)];
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let env = Env::new();
        for i in order {
            let (at, title) = scrapes[i];
            let page = env.write(&format!("p{i}.txt"), sample().replacen(FIRST, title, 1));
            let url = "https://tribune.com.pk/story/356789/x/";
            env.ok(&["ingest", "--source-url", url, "--fetched-at", at, &page]);
        }
        let articles = env.ok(&["articles", "--json"]).json();
        assert_eq!(articles["articles"][0]["title"], json!(FIRST), "{order:?}: {articles}");
        let thread = env.ok(&["thread", "356789", "--json"]).json();
        assert_eq!(thread["article"]["title"], json!(FIRST), "{order:?}");
        assert_eq!(thread["article"]["versions"].as_array().unwrap().len(), 2);
        assert!(env.ok(&["thread", "356789"]).stdout.starts_with(&format!("{FIRST}\n")));
        let timeline = env.ok(&["author", "ahmad", "--json"]).json();
        assert_eq!(timeline["comments"][0]["title"], json!(FIRST), "{order:?}");
        // As the change records say: revised, then revised back.
        let changes = env.ok(&["changes", "--json"]).json();
        let revisions = changes["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !c["article_revision"].is_null())
            .count();
        assert_eq!(revisions, 2, "{order:?}: {changes}");
    }
}

/// Two comments by one author (or by no one) in one minute, shown side by
/// side, are two comments in the thread and the timeline, not one edited;
/// a later scrape that edits the second edits the second.
#[test]
fn two_comments_of_one_minute_shown_side_by_side_are_two() {
    let env = Env::new();
    let twice = |second: &str| {
        let page = sample()
            .replace("Reader Comments (44)", "Reader Comments (46)")
            .replacen(
                "  • Mar 28, 2012 - 1:08PM\n",
                &format!("  • Mar 28, 2012 - 1:08PM\n\n    {second} anonymously.\n\n\n  • Mar 28, 2012 - 1:08PM\n"),
                1,
            )
            .replacen(
                "  • ahmad\n    Mar 28, 2012 - 1:02PM\n",
                &format!("  • ahmad\n    Mar 28, 2012 - 1:02PM\n\n    {second} by ahmad.\n\n\n  • ahmad\n    Mar 28, 2012 - 1:02PM\n"),
                1,
            );
        assert_eq!(page.matches(second).count(), 2);
        page
    };
    let first = env.ok(&["ingest", &env.write("one.txt", twice("Said first"))]);
    assert!(first.stdout.contains("46 comments"), "{first}");
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let comments = thread["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 46);
    assert_eq!(by_author(comments, "ahmad").len(), 2);
    assert!(comments.iter().all(|c| c["versions"].as_array().unwrap().len() == 1));
    let timeline = env.ok(&["author", "ahmad"]).stdout;
    assert!(timeline.starts_with("ahmad · 2 comments\n") && !timeline.contains("edited"), "{timeline}");
    // The re-scrape edits the first of each pair: each is one edit of its own.
    env.ok(&["ingest", &env.write("two.txt", twice("Said again"))]);
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let comments = thread["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 46, "no comment removed, none added");
    let edited: Vec<&str> = comments
        .iter()
        .filter(|c| c["versions"].as_array().unwrap().len() == 2)
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(edited, ["Said again by ahmad.", "Said again anonymously."]);
    let changes = env.ok(&["changes", "--json"]).json();
    let last = changes["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["added"].as_array().unwrap().len(), last["removed"].as_array().unwrap().len()),
        (0, 0),
        "{last}"
    );
    assert_eq!(last["edited"].as_array().unwrap().len(), 2, "{last}");
    let timeline = env.ok(&["author", "ahmad"]).stdout;
    assert!(timeline.starts_with("ahmad · 2 comments\n"), "{timeline}");
    assert_eq!(timeline.matches("edited, 2 versions").count(), 1, "{timeline}");
}

/// A JSON Lines file may list a reply before the comment it replies to
/// ("anywhere in the file"): the thread still nests it there.
#[test]
fn a_reply_listed_before_its_parent_is_nested_under_it() {
    let env = Env::new();
    let doc = "{\"type\":\"article\",\"id\":\"A\",\"url\":\"https://example.com/a\",\"title\":\"A\"}\n\
               {\"type\":\"comment\",\"id\":\"x\",\"article\":\"A\",\"parent\":\"y\",\"body\":\"the reply\"}\n\
               {\"type\":\"comment\",\"id\":\"y\",\"article\":\"A\",\"body\":\"the comment\"}\n";
    env.ok(&["ingest", &env.write("fwd.jsonl", doc)]);
    let t = env.ok(&["thread", "example.com/a", "--json"]).json();
    let comments = t["comments"].as_array().unwrap();
    assert_eq!(comments[0]["body"], json!("the reply"), "page order kept in --json");
    assert_eq!(comments[0]["parent"], comments[1]["id"]);
    assert_eq!(comments[0]["parent_kind"], json!("page"));
    assert_eq!((comments[0]["depth"].clone(), comments[1]["depth"].clone()), (json!(1), json!(0)));
    let text = env.ok(&["thread", "example.com/a"]).stdout;
    let (parent, reply) = (text.find("  the comment").unwrap(), text.find("    ↳ ").unwrap());
    assert!(parent < reply && text[reply..].contains("      the reply"), "{text}");
    // A reply by the page to a later comment that names it by @mention:
    // the page's parent stands, the mention would make a loop.
    let doc = "{\"type\":\"article\",\"id\":\"M\",\"url\":\"https://example.com/m\",\"title\":\"M\"}\n\
               {\"type\":\"comment\",\"id\":\"a\",\"article\":\"M\",\"author\":\"Alice\",\"parent\":\"b\",\"body\":\"to Bob\"}\n\
               {\"type\":\"comment\",\"id\":\"b\",\"article\":\"M\",\"author\":\"Bob\",\"body\":\"@Alice hi\"}\n";
    env.ok(&["ingest", &env.write("loop.jsonl", doc)]);
    let t = env.ok(&["thread", "example.com/m", "--json"]).json();
    let comments = t["comments"].as_array().unwrap();
    assert_eq!(comments[0]["parent"], comments[1]["id"], "{t}");
    assert_eq!((comments[0]["depth"].clone(), comments[0]["parent_kind"].clone()), (json!(1), json!("page")));
    assert_eq!((comments[1]["parent"].clone(), comments[1]["depth"].clone()), (json!(null), json!(0)), "{t}");
}

#[test]
fn a_version_only_seen_cut_off_is_no_edit_in_the_timeline() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    // The same page cut off inside Gahratmand's comment: a partial capture
    // whose last comment may be cut off, so its text is another version.
    let page = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    let cut = &page[..page.find("This AfPak nonsense").unwrap()];
    env.ok(&["ingest", &env.write("cut.txt", cut)]);
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let g = by_author(t["comments"].as_array().unwrap(), "Gahratmand")[0];
    let statuses: Vec<&Value> = g["versions"].as_array().unwrap().iter().map(|v| &v["status"]).collect();
    assert_eq!(statuses, [&json!("present"), &json!("truncated")], "{g}");
    let thread = env.ok(&["thread", "kayani"]).stdout;
    let line = thread.lines().find(|l| l.contains("Gahratmand")).unwrap();
    assert!(!line.contains("edited"), "{line}");
    let timeline = env.ok(&["author", "Gahratmand"]).stdout;
    assert!(!timeline.contains("edited"), "as in the thread:\n{timeline}");
    assert_eq!(
        env.ok(&["author", "Gahratmand", "--json"]).json()["comments"][0]["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// A page cut off between a letter and the combining accent written after
/// it (`cafe` + U+0301): the cut comment begins the whole one, no edit in
/// `diff` as in `changes` (before, `diff` called it an edit to `cafe`).
#[test]
fn a_cut_between_a_letter_and_its_accent_is_no_edit() {
    let env = Env::new();
    let page = sample().replace("This AfPak nonsense", "This AfPak cafe\u{301} nonsense");
    let cut = &page[..page.find("\u{301} nonsense").unwrap()];
    env.ok(&["ingest", &env.write("whole.txt", &page), &env.write("cut.txt", cut)]);
    let captures = capture_ids(&env);
    let d = env.ok(&["diff", &captures[0], &captures[1], "--json"]).json();
    assert_eq!(d["diffs"][0]["edited"], json!([]), "{d}");
    let changes = env.ok(&["changes", "--json"]).json();
    assert_eq!(changes["changes"][1]["edited"], json!([]), "{changes}");
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let g = by_author(t["comments"].as_array().unwrap(), "Gahratmand")[0];
    let statuses: Vec<&Value> = g["versions"].as_array().unwrap().iter().map(|v| &v["status"]).collect();
    assert_eq!(statuses, [&json!("present"), &json!("truncated")], "{g}");
    assert_eq!(g["last_seen"]["id"], json!(captures[1]), "the cut capture is a sighting of the whole text");
}

#[test]
fn authors_and_timelines() {
    let env = Env::new();
    two_captures(&env);
    let tony = env.ok(&["author", "tony   C.", "--json"]).json();
    assert_eq!(tony["author"], json!("Tony C."));
    let times: Vec<&str> =
        tony["comments"].as_array().unwrap().iter().map(|c| c["posted_at"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "2012-03-28T20:09:00+05:00",
            "2012-03-29T00:16:00+05:00",
            "2012-03-29T21:53:00+05:00",
            "2012-03-29T23:11:00+05:00"
        ]
    );
    assert!(tony["comments"][0]["title"].as_str().unwrap().starts_with("Senior US commanders"));
    let uff = env.ok(&["author", "uff", "--json"]).json();
    assert_eq!(uff["comments"].as_array().unwrap().len(), 1, "an edited comment counts once");
    assert_eq!(uff["comments"][0]["versions"].as_array().unwrap().len(), 2);

    let top = env.ok(&["authors", "--top", "3", "--json"]).json();
    assert_eq!(top["authors"][0], json!({"author": "Tony C.", "comments": 4}));
    assert_eq!(top["authors"].as_array().unwrap().len(), 3);
    let all = env.ok(&["authors", "--json"]).json();
    let total: u64 = all["authors"].as_array().unwrap().iter().map(|a| a["comments"].as_u64().unwrap()).sum();
    assert_eq!(total, 44 - 7, "comments without an author are listed under no one");
    let run = env.run(&["author", "nobody at all"]).expect_code(2);
    assert!(run.stderr.contains("no author named \"nobody at all\""), "{run}");
}

#[test]
fn changes_report_removal_and_edit() {
    let env = Env::new();
    let (first, second) = two_captures(&env);
    let whole = env.ok(&["changes", "--json"]).json();
    assert_eq!(whole["as_of"]["pinned"], json!(false), "changes says where the views stand");
    let changes = whole["changes"].clone();
    let list = changes.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["from"], Value::Null);
    assert_eq!(list[0]["added"].as_array().unwrap().len(), 44);
    let c = &list[1];
    assert_eq!(c["from"]["seq"], json!(first));
    assert_eq!(c["to"]["seq"], json!(second));
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(c["to"], thread["captures"][1], "a capture has one shape in every view");
    let articles = env.ok(&["articles", "--json"]).json();
    assert_eq!(articles["articles"][0]["last_capture"], thread["captures"][1]);
    assert_eq!(c["added"], json!([]));
    assert_eq!(c["removed"].as_array().unwrap().len(), 1);
    assert_eq!(c["edited"].as_array().unwrap().len(), 1);
    let shown = env.ok(&["show", c["removed"][0].as_str().unwrap(), "--json"]).json();
    assert_eq!(shown["author"], json!("Aristo"));
    let to = env.ok(&["show", c["edited"][0]["to"].as_str().unwrap(), "--json"]).json();
    assert_eq!(to["author"], json!("UFF"));
    let text = env.ok(&["changes", "Senior US"]).stdout;
    assert!(text.contains("0 added, 1 removed, 1 edited"), "{text}");
    assert!(text.contains("- 16600c7ad7fc Aristo"), "{text}");
}

#[test]
fn history_lists_versions_and_sightings() {
    let env = Env::new();
    let (first, second) = two_captures(&env);
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let uff = by_author(t["comments"].as_array().unwrap(), "UFF")[0].clone();
    let old = uff["versions"][0]["id"].as_str().unwrap();
    let h = env.ok(&["history", &old[..10], "--json"]).json();
    assert_eq!(h["as_of"]["pinned"], json!(false), "history says where the views stand");
    assert_eq!(h["author"], json!("UFF"));
    assert_eq!(h["versions"].as_array().unwrap().len(), 2);
    assert_eq!(h["versions"][0]["status"], json!("superseded"));
    let sightings = h["sightings"].as_array().unwrap();
    assert_eq!(sightings[0]["capture"]["seq"], json!(first));
    assert_eq!(sightings[0]["version"], json!(old));
    assert_eq!(sightings[1]["capture"]["seq"], json!(second));
    assert_eq!(sightings[1]["version"], uff["id"]);

    let aristo =
        by_author(t["comments"].as_array().unwrap(), "Aristo")[0]["id"].as_str().unwrap().to_string();
    let h = env.ok(&["history", &aristo]).stdout;
    assert!(h.contains(&format!("status: removed since seq {second}")), "{h}");
    assert!(h.contains("absent"), "{h}");
}

#[test]
fn replay_gives_byte_identical_output_and_travels_in_time() {
    let env = Env::new();
    let (first, second) = two_captures(&env);
    let commands: [&[&str]; 6] = [
        &["thread", "kayani", "--json"],
        &["author", "Tony C.", "--json"],
        &["authors", "--json"],
        &["changes", "--json"],
        &["articles", "--json"],
        &["thread", "kayani"],
    ];
    let before: Vec<String> = commands.iter().map(|c| env.ok(c).stdout).collect();
    let replayed = env.ok(&["replay", "--json"]).json();
    assert_eq!(
        replayed["views"].as_array().unwrap().len(),
        2,
        "threads (with the change records) and authors"
    );
    let after: Vec<String> = commands.iter().map(|c| env.ok(c).stdout).collect();
    assert_eq!(before, after, "replay reproduces the views exactly");

    // Back to the first capture.
    env.ok(&["replay", "--until", &first.to_string()]);
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(t["as_of"], json!({"seq": first, "pinned": true, "observed_until": null, "computed": false}));
    let comments = t["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 44);
    assert_eq!(by_author(comments, "Aristo")[0]["status"], json!("present"));
    assert_eq!(by_author(comments, "UFF")[0]["versions"].as_array().unwrap().len(), 1);
    assert_eq!(t["captures"].as_array().unwrap().len(), 1);
    assert!(env.ok(&["thread", "kayani"]).stdout.starts_with(&format!("(views as of seq {first}, pinned")));
    // stats says so too.
    assert_eq!(env.ok(&["stats", "--json"]).json()["views"]["pinned"], json!(true));
    assert!(env.ok(&["stats"]).stdout.contains(&format!("views:     pinned at seq {first}")));

    // Pinned views stay in the past while the log grows...
    env.ok(&["ingest", &jsonl_fixture()]);
    assert_eq!(env.ok(&["articles", "--json"]).json()["articles"].as_array().unwrap().len(), 1);
    // ...until a plain replay returns to the present.
    env.ok(&["replay"]);
    assert_eq!(env.ok(&["articles", "--json"]).json()["articles"].as_array().unwrap().len(), 2);
    assert_eq!(env.ok(&["stats", "--json"]).json()["views"]["pinned"], json!(false));
    let id = t["article"]["id"].as_str().unwrap().to_string();
    let t = env.ok(&["thread", &id, "--json"]).json();
    assert_eq!(t["as_of"]["pinned"], json!(false));
    assert!(t["as_of"]["seq"].as_u64().unwrap() > second);
}

#[test]
fn replay_until_a_time_and_single_views() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let later = env.write("later.txt", rescrape());
    // A later recorded_at for the second ingest.
    let out = env.command(&["ingest", &later]).env("SOURCE_DATE_EPOCH", "1800000000").output().unwrap();
    assert!(out.status.success());
    // A time is observation time: what was fetched (here: recorded) by then.
    let r = env.ok(&["replay", "--until", "2025-01-01T00:00:00Z", "--view", "threads", "--json"]).json();
    assert_eq!(r["views"].as_array().unwrap().len(), 1);
    assert_eq!(r["views"][0]["seq"], json!(48), "the whole log is read, later captures left out");
    assert_eq!(r["views"][0]["pinned"], json!(true));
    assert_eq!(r["views"][0]["observed_until"], json!("2025-01-01T00:00:00+00:00"));
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(t["captures"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["as_of"]["observed_until"], json!("2025-01-01T00:00:00+00:00"));
    assert!(t["comments"].as_array().unwrap().iter().all(|c| c["status"] == json!("present")));
    assert!(env.ok(&["thread", "kayani"]).stdout.starts_with("(views as observed up to 2025-01-01"));
    // A scrape observed before the time, ingested after the pin, is not in
    // the pinned views, and their note says what they hold; `--at` the time
    // reads the log as it is now.
    env.ok(&["ingest", "--fetched-at", "2020-01-01T00:00:00Z", &env.write("old.txt", rescrape())]);
    let note = env.ok(&["thread", "kayani"]).stdout;
    assert!(
        note.starts_with("(views as observed up to 2025-01-01 00:00 +00:00 in the log to seq 48, pinned"),
        "{note}"
    );
    assert_eq!(env.ok(&["thread", "kayani", "--json"]).json()["captures"].as_array().unwrap().len(), 1);
    let at = env.ok(&["thread", "kayani", "--json", "--at", "2025-01-01T00:00:00Z"]).json();
    assert_eq!(at["captures"].as_array().unwrap().len(), 2, "{at}");
    env.ok(&["verify"]);
    let changes = env.ok(&["changes", "--json"]).json();
    assert_eq!(changes["changes"].as_array().unwrap().len(), 1, "the change records are the threads view's");
    assert_eq!(changes["as_of"]["pinned"], json!(true));
    let authors = env.ok(&["authors", "--json"]).json();
    assert_eq!(authors["as_of"]["pinned"], json!(false), "the authors view was not pinned");
    env.run(&["replay", "--view", "nonesuch"]).expect_code(2);
    let run = env.run(&["replay", "--view", "changes"]).expect_code(2);
    assert!(run.stderr.contains("kept by the threads view"), "{run}");
    env.run(&["replay", "--until", "yesterday"]).expect_code(2);
}

#[test]
fn emit_streams_every_event() {
    let env = Env::new();
    two_captures(&env);
    let emitted = env.ok(&["replay", "--emit", "jsonl"]).stdout;
    assert_eq!(emitted, env.ok(&["log", "--json"]).stdout);
    assert_eq!(env.ok(&["replay", "--emit", "jsonl", "--until", "3"]).stdout.lines().count(), 3);
}

#[test]
fn article_lookup_by_id_url_and_title() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    env.ok(&["ingest", &jsonl_fixture()]);
    let articles = env.ok(&["articles", "--json"]).json();
    assert_eq!(articles["articles"].as_array().unwrap().len(), 2);
    let run = env.run(&["thread", "Senior US"]).expect_code(2);
    assert!(run.stderr.contains("matches several articles"), "{run}");
    assert!(run.stderr.contains("tribune.com.pk/story/356789"), "{run}");
    let by_url = env.ok(&["thread", "https://tribune.com.pk/story/356789/senior-us-commanders-discuss-border-cooperation-with-kayani/", "--json"]).json();
    assert_eq!(by_url["comments"].as_array().unwrap().len(), 7);
    let id = by_url["article"]["id"].as_str().unwrap();
    assert_eq!(env.ok(&["thread", &id[..8], "--json"]).json(), by_url);
    assert_eq!(env.ok(&["thread", id, "--json"]).json(), by_url);
    // An id the views do not hold yet (--at before it) finds nothing.
    let first_capture = env.ok(&["log", "--json", "--kind", "capture", "--limit", "1"]).json()["seq"].clone();
    let run = env.run(&["thread", id, "--at", &first_capture.to_string()]).expect_code(2);
    assert!(run.stderr.contains("no article matches"), "{run}");
    // A comment's id is not an article's.
    let comment = by_url["comments"][0]["id"].as_str().unwrap();
    env.run(&["thread", &comment[..12]]).expect_code(2);
    // After the two articles are merged, either article's id finds the kept one.
    env.ok(&["dedupe", "--apply"]);
    let kept = env.ok(&["thread", id, "--json"]).json();
    assert_eq!(kept["comments"].as_array().unwrap().len(), 44);
    assert_eq!(env.ok(&["thread", &id[..8], "--json"]).json(), kept);
    env.run(&["thread", "no such article"]).expect_code(2);
}

/// Two texts of one author and minute seen apart (one comment, edited),
/// then side by side: the capture's change record says what the thread
/// and `diff` say, no edit, whichever comes last on the page.
#[test]
fn two_versions_side_by_side_are_no_edit_in_the_change_records() {
    for second_first in [true, false] {
        two_versions_side_by_side(second_first);
    }
}

/// [`two_versions_side_by_side_are_no_edit_in_the_change_records`], the
/// later-met version first on the last page or last.
fn two_versions_side_by_side(second_first: bool) {
    let env = Env::new();
    let article =
        r#"{"type":"article","url":"https://example.com/a/1","title":"T","published":"2012-03-28"}"#;
    let first =
        r#"{"type":"comment","author":"bob","posted_at":"2012-03-28T13:07:00+05:00","body":"first text"}"#;
    let second =
        r#"{"type":"comment","author":"bob","posted_at":"2012-03-28T13:07:00+05:00","body":"second text"}"#;
    let capture = |hour: u32| format!(r#"{{"type":"capture","fetched_at":"2012-03-28T{hour}:00:00+05:00"}}"#);
    let files = [
        env.write("1.jsonl", [article, first, &capture(14)].join("\n")),
        env.write("2.jsonl", [article, second, &capture(15)].join("\n")),
        env.write(
            "3.jsonl",
            match second_first {
                true => [article, second, first, &capture(16)].join("\n"),
                false => [article, first, second, &capture(16)].join("\n"),
            },
        ),
    ];
    env.ok(&["ingest", &files[0], &files[1], &files[2]]);
    let thread = env.ok(&["thread", "T", "--json"]).json();
    let comments = thread["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{thread}");
    let current = comments[0]["id"].as_str().unwrap().to_string();
    let changes = env.ok(&["changes", "--json"]).json();
    let records = changes["changes"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{changes}");
    assert_eq!(records[1]["edited"].as_array().map(Vec::len), Some(1), "the second capture edits");
    assert_eq!(records[2]["edited"], json!([]), "{changes}");
    let captures = capture_ids(&env);
    let d = env.ok(&["diff", &captures[1], &captures[2], "--json"]).json();
    assert_eq!(d["diffs"][0]["edited"], json!([]), "{d}");
    let history = env.ok(&["history", &current[..12], "--json"]).json();
    let last = history["sightings"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["version"], json!(current), "{history}");
}

/// One JSON Lines capture of article `T` at 1 p.m. plus `hour` hours
/// (+05:00): comments (the page's id, author, posted time, body), and
/// whether the capture shows the whole section.
fn capture_of(hour: u32, comments: &[(&str, &str, &str, &str)], complete: bool) -> String {
    let mut doc =
        vec![r#"{"type":"article","id":"a","url":"https://example.com/a/1","title":"T"}"#.to_string()];
    for (id, author, posted, body) in comments {
        doc.push(format!(
            r#"{{"type":"comment","article":"a","author":"{author}","posted_at":"2012-03-28T{posted}","body":"{body}","id":"{id}"}}"#
        ));
    }
    doc.push(format!(
        r#"{{"type":"capture","fetched_at":"2012-03-28T{:02}:00:00+05:00","complete":{complete}}}"#,
        13 + hour
    ));
    doc.join("\n") + "\n"
}

/// Each of `author`'s comments in the thread of `T` and in their timeline
/// (their version ids, each set sorted; the timeline's in its order), and
/// their count in `authors`.
fn groupings(env: &Env, author: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>, Value) {
    let ids = |versions: &Value, field: Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = (versions.as_array().unwrap().iter())
            .map(|x| field.map_or(x, |f| &x[f]).as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let thread = env.ok(&["thread", "T", "--json"]).json();
    let mut in_thread: Vec<Vec<String>> = (thread["comments"].as_array().unwrap().iter())
        .filter(|c| c["author"] == json!(author))
        .map(|c| ids(&c["versions"], Some("id")))
        .collect();
    in_thread.sort();
    let timeline = env.ok(&["author", author, "--json"]).json();
    let in_timeline: Vec<Vec<String>> =
        timeline["comments"].as_array().unwrap().iter().map(|c| ids(&c["versions"], None)).collect();
    let authors = env.ok(&["authors", "--json"]).json();
    let count = (authors["authors"].as_array().unwrap().iter())
        .find(|a| a["author"] == json!(author))
        .map_or(Value::Null, |a| a["comments"].clone());
    (in_thread, in_timeline, count)
}

/// Sorted, to compare with the thread's comments.
fn sorted(mut groups: Vec<Vec<String>>) -> Vec<Vec<String>> {
    groups.sort();
    groups
}

/// Three comments of one author and minute, scraped three times and
/// ingested newest first (each older scrape a backfill): the timeline
/// lists them as ingesting the scrapes in order does, in the order they
/// were first observed (before authors view 18 a backfill was taken into
/// the entries as they stood, and they were listed in ingest order).
#[test]
fn an_authors_timeline_is_the_same_whatever_the_ingest_order() {
    let (bob, cat) = ("13:02:00+05:00", "13:02:00+05:00");
    let both = [
        ("c0", "bob", bob, "gamma eps eta eps"),
        ("c1", "cat", cat, "eps kappa"),
        ("c2", "ann", "13:09:00+05:00", "beta theta"),
        ("c3", "bob", bob, "theta alpha alpha delta"),
        ("c4", "bob", bob, "zeta gamma kappa"),
    ];
    let later = [both[2], both[3], both[4]];
    let files = |env: &Env| {
        [
            env.write("0.jsonl", capture_of(1, &both, true)),
            env.write("1.jsonl", capture_of(2, &both, true)),
            env.write("2.jsonl", capture_of(3, &later, true)),
        ]
    };
    let in_order = Env::new();
    let f = files(&in_order);
    in_order.ok(&["ingest", &f[0], &f[1], &f[2]]);
    let newest_first = Env::new();
    let f = files(&newest_first);
    for file in f.iter().rev() {
        newest_first.ok(&["ingest", file]);
    }
    let (thread, timeline, count) = groupings(&newest_first, "bob");
    assert_eq!(thread.len(), 3, "{thread:?}");
    assert_eq!(sorted(timeline.clone()), thread, "the timeline groups bob's comments as the thread");
    assert_eq!(count, json!(3));
    assert_eq!(groupings(&in_order, "bob"), (thread, timeline, count), "whatever the ingest order");
    newest_first.ok(&["verify"]);
}

/// `dedupe --apply` folds comments re-rendered in another UTC offset, one
/// of them of an author with two comments in one minute: the timeline
/// groups the comments as the thread does (before authors view 18 the
/// merge moved versions between the entries as they stood, and the author
/// was counted with a comment more than the thread has).
#[test]
fn after_dedupe_the_timeline_groups_as_the_thread() {
    let env = Env::new();
    let (local, utc) = ("13:07:00+05:00", "08:07:00Z");
    let (ann_local, ann_utc) = ("13:02:00+05:00", "08:02:00Z");
    let files = [
        capture_of(
            1,
            &[
                ("c0", "bob", utc, "Beta eps beta beta eta!"),
                ("c1", "ann", ann_local, "eta alpha theta"),
                ("c2", "bob", local, "theta kappa delta eta beta"),
            ],
            true,
        ),
        capture_of(
            2,
            &[("c0", "bob", local, "beta eps beta beta eta"), ("c1", "ann", ann_utc, "eta alpha theta")],
            false,
        ),
        capture_of(
            3,
            &[
                ("c0", "bob", utc, "beta eps beta beta eta"),
                ("c2", "bob", local, "Theta kappa delta eta beta!"),
            ],
            true,
        ),
        capture_of(
            4,
            &[
                ("c0", "bob", local, "beta eps beta beta eta"),
                ("c1", "ann", ann_utc, "gamma kappa beta"),
                ("c2", "bob", local, "Theta kappa delta eta beta!"),
            ],
            true,
        ),
        capture_of(
            5,
            &[
                ("c0", "bob", local, "Beta eps beta beta eta!"),
                ("c1", "ann", ann_local, "gamma kappa beta"),
                ("c2", "bob", local, "iota iota"),
            ],
            false,
        ),
    ];
    for (i, f) in files.iter().enumerate() {
        env.ok(&["ingest", &env.write(&format!("{i}.jsonl"), f)]);
    }
    assert!(env.ok(&["dedupe", "--apply"]).stdout.contains("appended 4 merges"));
    let (thread, timeline, count) = groupings(&env, "bob");
    assert_eq!(thread.len(), 2, "{thread:?}");
    assert_eq!(sorted(timeline.clone()), thread, "the timeline groups bob's comments as the thread");
    assert_eq!(count, json!(2));
    env.ok(&["verify"]);
    env.ok(&["replay"]);
    assert_eq!(groupings(&env, "bob"), (thread, timeline, count), "replayed alike");
}

/// A page captured 600 times (the authors view seals its list of an
/// article's captures in chunks of 256), then a scrape observed before all
/// of them, ingested last (a backfill: the article rebuilt from every
/// chunk): the timeline is the one ingesting in observation order gives,
/// and the stored views equal a fresh replay.
#[test]
fn a_page_captured_hundreds_of_times_then_backfilled() {
    fn bob(body: &str) -> (&str, &str, &str, &str) {
        ("c0", "bob", "13:02:00+05:00", body)
    }
    let page = |i: u32| {
        // An edit seen only by captures 260 to 269 (in the second chunk).
        let body = if (260..270).contains(&i) { "first words, edited" } else { "first words" };
        let doc = capture_of(1, &[bob(body), ("c1", "ann", "13:05:00+05:00", "hello")], true);
        // Captured every minute from 14:00.
        let (hour, minute) = (14 + i / 60, i % 60);
        let at = format!("2012-03-{:02}T{:02}:{minute:02}:00", 28 + hour / 24, hour % 24);
        doc.replace("2012-03-28T14:00:00", &at)
    };
    let files = |env: &Env| -> (String, Vec<String>) {
        let early = env.write("early.jsonl", capture_of(0, &[bob("first")], true));
        (early, (0..600).map(|i| env.write(&format!("p{i:03}.jsonl"), page(i))).collect())
    };
    let ingest = |env: &Env, files: &[&String]| {
        let args: Vec<&str> = std::iter::once("ingest").chain(files.iter().map(|f| f.as_str())).collect();
        env.ok(&args);
    };
    let in_order = Env::new();
    let (early, pages) = files(&in_order);
    ingest(&in_order, &std::iter::once(&early).chain(&pages).collect::<Vec<_>>());
    let backfilled = Env::new();
    let (early, pages) = files(&backfilled);
    ingest(&backfilled, &pages.iter().collect::<Vec<_>>());
    ingest(&backfilled, &[&early]);
    let (thread, timeline, count) = groupings(&backfilled, "bob");
    assert_eq!(thread.len(), 1, "{thread:?}");
    assert_eq!(thread[0].len(), 3, "three texts: {thread:?}");
    assert_eq!((sorted(timeline.clone()), count.clone()), (thread.clone(), json!(1)));
    assert_eq!(groupings(&in_order, "bob"), (thread, timeline, count));
    backfilled.ok(&["verify"]);
}
