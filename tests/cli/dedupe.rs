//! `cairn dedupe`: the sample page plus three generated variants (quote and
//! ellipsis styles, times shifted to UTC, a URL with a tracking parameter),
//! each reporting exactly the expected clusters and, after --apply, a thread
//! of 44 comments; edits are never duplicates.

use crate::support::{fixture, Env};
use serde_json::{json, Value};

const URL: &str =
    "https://tribune.com.pk/story/356789/senior-us-commanders-discuss-border-cooperation-with-kayani/";

fn sample() -> String {
    std::fs::read_to_string(fixture("tribune-2012-03-28-us-generals-kayani.txt")).unwrap()
}

fn sample_path() -> String {
    fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()
}

fn straighten(s: &str) -> String {
    s.replace(['“', '”'], "\"").replace(['‘', '’'], "'").replace('…', "...")
}

/// Every time on the page moved back 5 hours (to UTC).
fn shifted_to_utc(page: &str) -> String {
    let mut out = String::new();
    for line in page.split_inclusive('\n') {
        let trimmed = line.trim_start_matches([' ', '•']).trim_end();
        match cairn::ingest::tribune::parse_comment_time(trimmed) {
            Some(t) => {
                let u = t - chrono::Duration::hours(5);
                let text = u.format("%b %-d, %Y - %-I:%M%p").to_string();
                out.push_str(&line.replace(trimmed, &text));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The sample page, then its variant with straight quotes and ellipses.
fn sample_and_quote_variant(env: &Env) {
    env.ok(&["ingest", &sample_path()]);
    let variant = env.write("quotes.txt", straighten(&sample()));
    env.ok(&["ingest", &variant]);
}

fn comments(env: &Env) -> Vec<Value> {
    env.ok(&["log", "--json", "--kind", "comment"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn clusters(env: &Env) -> Vec<Value> {
    env.ok(&["dedupe", "--json"]).json()["clusters"].as_array().unwrap().clone()
}

fn by_id<'a>(all: &'a [Value], id: &Value) -> &'a Value {
    all.iter().find(|c| c["id"] == *id).unwrap_or_else(|| panic!("no comment {id}"))
}

/// After --apply: 44 comments in the thread, each once, verify clean, and a
/// second --apply appends nothing.
fn apply_and_check(env: &Env, article: &str, merges: u64) {
    let applied = env.ok(&["dedupe", "--apply", "--json"]).json();
    assert_eq!(applied["merges"], json!({"new": merges, "duplicate": 0}));
    assert_eq!(applied["comments"], json!({"new": 0, "duplicate": 0}));
    assert_eq!(applied["head"]["seq"], json!(env.head().split_once(' ').unwrap().0.parse::<u64>().unwrap()));
    let t = env.ok(&["thread", article, "--json"]).json();
    let cs = t["comments"].as_array().unwrap();
    assert_eq!(cs.len(), 44);
    assert!(cs.iter().all(|c| c["versions"].as_array().unwrap().len() == 1), "no variant left as an edit");
    assert!(cs.iter().all(|c| c["status"] == "present"));
    env.ok(&["verify"]);
    let again = env.ok(&["dedupe", "--apply", "--json"]).json();
    assert_eq!(again["clusters"], json!([]));
    assert_eq!(again["merges"]["new"], json!(0));
    let tony = env.ok(&["author", "Tony C.", "--json"]).json();
    assert_eq!(tony["comments"].as_array().unwrap().len(), 4, "author timelines count folded comments once");
}

#[test]
fn quote_and_ellipsis_styles() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let originals = comments(&env);
    let variant = env.write("quotes.txt", straighten(&sample()));
    let report = env.ok(&["ingest", "--json", &variant]).json();
    let changed: Vec<&Value> = originals
        .iter()
        .filter(|c| straighten(c["body"].as_str().unwrap()) != c["body"].as_str().unwrap())
        .collect();
    assert_eq!(report["comments"]["new"], json!(changed.len()));
    let all = comments(&env);
    let found = clusters(&env);
    assert_eq!(found.len(), changed.len(), "exactly the restyled comments: {found:#?}");
    for c in &found {
        assert_eq!(c["kind"], "comment");
        let keep = by_id(&all, &c["keep"]);
        let fold = by_id(&all, &c["fold"][0]);
        assert_eq!(c["fold"].as_array().unwrap().len(), 1);
        assert!(changed.iter().any(|o| o["id"] == keep["id"]), "keeps the original");
        assert_eq!(fold["author"], keep["author"]);
        assert_eq!(fold["posted_at"], keep["posted_at"]);
        assert_eq!(fold["body"].as_str().unwrap(), straighten(keep["body"].as_str().unwrap()));
        assert!(c["reason"].as_str().unwrap().contains("rendering"), "{c}");
    }
    apply_and_check(&env, "kayani", changed.len() as u64);
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let aliased = t["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["aliases"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(aliased, changed.len(), "folded comments are listed as aliases");
    folded_history(&env, "kayani");
}

#[test]
fn times_shifted_to_utc() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let variant = env.write("utc.txt", shifted_to_utc(&sample()));
    assert!(std::fs::read_to_string(&variant).unwrap().contains("  • ahmad\n    Mar 28, 2012 - 8:02AM"));
    let report = env.ok(&["ingest", "--json", "--tz", "+00:00", &variant]).json();
    assert_eq!(report["comments"]["new"], json!(44));
    assert_eq!(env.ok(&["thread", "kayani", "--json"]).json()["comments"].as_array().unwrap().len(), 88);
    let all = comments(&env);
    let found = clusters(&env);
    assert_eq!(found.len(), 44);
    for c in &found {
        let keep = by_id(&all, &c["keep"]);
        let fold = by_id(&all, &c["fold"][0]);
        assert!(keep["posted_at"].as_str().unwrap().ends_with("+05:00"));
        assert!(fold["posted_at"].as_str().unwrap().ends_with("+00:00"));
        assert_eq!(fold["body"], keep["body"]);
        assert_eq!(c["reason"], "same instant written with another UTC offset");
    }
    apply_and_check(&env, "kayani", 44);
    let merges = env.ok(&["log", "--kind", "merge", "--json"]).stdout;
    assert_eq!(merges.lines().count(), 44);
    assert_eq!(env.ok(&["stats", "--json"]).json()["merges"], json!(44));
}

#[test]
fn a_url_with_a_tracking_parameter() {
    let env = Env::new();
    env.ok(&["ingest", "--source-url", URL, &sample_path()]);
    let tracked = format!("{URL}?utm_source=twitter&utm_medium=social");
    let report = env.ok(&["ingest", "--json", "--source-url", &tracked, &sample_path()]).json();
    assert_eq!(report["articles"]["new"], json!(1));
    assert_eq!(report["comments"]["new"], json!(44));
    let found = clusters(&env);
    assert_eq!(found.len(), 45);
    assert_eq!(found[0]["kind"], "article");
    assert_eq!(found[0]["reason"], "the same article under URL variants");
    assert!(found[1..]
        .iter()
        .all(|c| c["kind"] == "comment" && c["reason"] == "under another URL or key of the same article"));
    apply_and_check(&env, URL, 45);
    let articles = env.ok(&["articles", "--json"]).json();
    assert_eq!(articles["articles"].as_array().unwrap().len(), 1, "the variant folds into the kept article");
    let t = env.ok(&["thread", &tracked, "--json"]).json();
    assert_eq!(t["article"]["key"], json!(URL), "the folded URL finds the kept thread");
    folded_history(&env, URL);
}

/// `history` of every folded id shows the comment it was folded into, in
/// the kept thread, and every capture that showed it under either id is a
/// sighting of that version, none `absent`.
fn folded_history(env: &Env, article: &str) {
    let t = env.ok(&["thread", article, "--json"]).json();
    let captures = t["captures"].as_array().unwrap().len();
    let mut folded = 0;
    for c in t["comments"].as_array().unwrap() {
        let version = &c["versions"][0];
        for alias in version["aliases"].as_array().unwrap() {
            folded += 1;
            let h = env.ok(&["history", alias.as_str().unwrap(), "--json"]).json();
            assert_eq!(h["article"], t["article"]["key"]);
            assert_eq!(h["folded_into"], version["id"]);
            assert_eq!(h["versions"][0]["id"], version["id"]);
            assert_eq!(h["versions"][0]["aliases"], version["aliases"]);
            let sightings = h["sightings"].as_array().unwrap();
            assert_eq!(sightings.len(), captures);
            assert!(sightings.iter().all(|s| s["version"] == version["id"]), "{sightings:?}");
            let as_alias: Vec<&Value> = sightings.iter().filter(|s| s["shown_as"] == *alias).collect();
            assert_eq!(as_alias.len(), 1, "one capture showed the folded id: {sightings:?}");
            let kept = env.ok(&["history", version["id"].as_str().unwrap(), "--json"]).json();
            assert_eq!(kept["folded_into"], Value::Null);
            assert_eq!(kept["sightings"], h["sightings"], "the same history either way");
            let text = env.ok(&["history", &alias.as_str().unwrap()[..12]]).stdout;
            let (a, v) = (&alias.as_str().unwrap()[..12], &version["id"].as_str().unwrap()[..12]);
            assert!(text.contains(&format!("{a} was folded into {v} by dedupe --apply")), "{text}");
            assert!(text.contains(&format!("version {v} (shown as {a})")), "{text}");
            assert!(!text.contains("absent"), "{text}");
        }
    }
    assert!(folded > 0, "the thread lists folded ids");
}

#[test]
fn the_same_page_without_and_with_a_url() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    env.ok(&["ingest", "--source-url", URL, &sample_path()]);
    let found = clusters(&env);
    assert_eq!(found.len(), 45);
    assert_eq!(found[0]["reason"], "the same title and publication date");
    apply_and_check(&env, "kayani", 45);
    folded_history(&env, "kayani");
}

#[test]
fn edits_are_not_duplicates_and_the_threshold_holds() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    // A real edit (words change): a new version, no cluster.
    let edited = env.write("edited.txt", sample().replace("Do You?", "Do You? Really."));
    env.ok(&["ingest", &edited]);
    assert_eq!(clusters(&env), Vec::<Value>::new());
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let uff = t["comments"].as_array().unwrap().iter().find(|c| c["author"] == "UFF").unwrap().clone();
    assert_eq!(uff["versions"].as_array().unwrap().len(), 2);

    // Punctuation only: the same text rendered differently, one cluster.
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let restyled = env.write("restyled.txt", sample().replace("Do You?", "Do You ?!"));
    env.ok(&["ingest", &restyled]);
    let found = clusters(&env);
    assert_eq!(found.len(), 1);
    assert!(found[0]["reason"].as_str().unwrap().contains("rendering"));
}

#[test]
fn same_text_an_odd_interval_apart_or_side_by_side_is_not_merged() {
    let env = Env::new();
    let page = "A title\n\nPublished: March 28, 2012\nBody.\n\nReader Comments (2)\n\n  • ali\n    Mar 28, 2012 - 1:00PM\n\n    agreed\n\n\n  • ali\n    Mar 28, 2012 - 2:00PM\n\n    agreed\n\n\nMore in Pakistan\n";
    let path = env.write("two.txt", page);
    env.ok(&["ingest", &path]);
    assert_eq!(clusters(&env), Vec::<Value>::new(), "one page shows both: two comments");
    let later = env.write("later.txt", page.replace("2:00PM", "2:30PM").replace("1:00PM", "1:30PM"));
    env.ok(&["ingest", &later]);
    assert_eq!(clusters(&env), Vec::<Value>::new(), "30 minutes is no time-zone shift");
}

#[test]
fn dry_run_counts_archived_and_near_duplicate_comments() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let variant = env.write("quotes.txt", straighten(&sample()));
    let run = env.ok(&["ingest", "--dry-run", "--json", &variant]).json();
    let f = &run["files"][0];
    assert_eq!(f["comments"], json!(44));
    let near = f["near_duplicates"].as_u64().unwrap();
    assert_eq!(f["archived"].as_u64().unwrap() + near, 44);
    assert!(near > 0);
    // The same page scraped again later: every comment is archived as it
    // is (none is a near-duplicate of itself).
    let again = env
        .ok(&["ingest", "--dry-run", "--json", "--fetched-at", "2013-01-01T00:00:00Z", &sample_path()])
        .json();
    assert_eq!(
        (&again["files"][0]["archived"], &again["files"][0]["near_duplicates"]),
        (&json!(44), &json!(0))
    );
    let text = env.ok(&["ingest", "--dry-run", &variant]).stdout;
    assert!(
        text.contains(&format!("44 comments, {} already archived, {near} near-duplicates", 44 - near)),
        "{text}"
    );
}

#[test]
fn verify_checks_merges() {
    use cairn::model::{Event, Merge, MergeKind};
    use cairn::store::{Archive, NewDocument, OpenMode};
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let all = comments(&env);
    let a = cairn::model::EventId::from_hex(all[0]["id"].as_str().unwrap()).unwrap();
    let b = cairn::model::EventId::from_hex(all[1]["id"].as_str().unwrap()).unwrap();
    {
        let mut archive = Archive::open(&env.archive, OpenMode::MustExist).unwrap();
        let events = vec![
            Event::Merge(Merge::new(MergeKind::Comment, a, vec![b], "test")),
            Event::Merge(Merge::new(MergeKind::Comment, b, vec![a], "test, reversed")),
        ];
        archive.append_document(NewDocument::new(b"", events), false).unwrap();
        archive.flush().unwrap();
    }
    // --wait: this process's own sled handle may release its lock a moment late.
    let run = env.run(&["--wait", "20", "verify", "--json"]).expect_code(1);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    assert!(
        findings.iter().any(|f| f["check"] == "merge" && f["message"].as_str().unwrap().contains("cycle")),
        "{findings:#?}"
    );
}

#[test]
fn a_killed_dedupe_apply_leaves_whole_merges_and_finishes_on_a_retry() {
    let reference = Env::new();
    sample_and_quote_variant(&reference);
    let start = std::time::Instant::now();
    reference.ok(&["dedupe", "--apply"]);
    let full = start.elapsed();
    // Heads differ between temp dirs (a capture's source path is hashed);
    // the seq and the merges do not.
    let seq = |env: &Env| env.head().split(' ').next().unwrap().to_string();
    let expected = seq(&reference);
    let mut killed = 0;
    for i in 0..6u32 {
        let env = Env::new();
        sample_and_quote_variant(&env);
        let before = env.head().replace(' ', ":");
        let mut child = env
            .command(&["dedupe", "--apply"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * i / 6);
        let _ = child.kill();
        if !child.wait().unwrap().success() {
            killed += 1;
        }
        env.ok(&["verify", "--checkpoint", &before]);
        env.ok(&["dedupe", "--apply"]);
        assert_eq!(seq(&env), expected, "kill {i}: the retry reaches the uninterrupted log");
        assert_eq!(clusters(&env), Vec::<Value>::new(), "kill {i}: nothing left to merge");
        env.ok(&["verify", "--checkpoint", &before]);
    }
    assert!(killed > 0, "no kill landed");
}

/// The merges are one document, committed before the views take them in:
/// a dedupe --apply stopped by an I/O error there (an EIO injected into
/// every sync of the threads view's value files, with strace) says that it
/// appended them, and they stay; one in their own commit (the log's sync)
/// says that it did not commit them. Skipped, saying so, without a working
/// strace.
#[test]
fn a_dedupe_apply_stopped_after_its_commit_says_the_merges_stay() {
    let env = Env::new();
    sample_and_quote_variant(&env);
    let before = env.head().replace(' ', ":");
    let found = clusters(&env).len();
    assert!(found > 0);
    let faults = env.view_syncs_failing("threads.");
    let faults: Vec<&std::ffi::OsStr> = faults.iter().map(|f| f.as_os_str()).collect();
    let test = "a_dedupe_apply_stopped_after_its_commit_says_the_merges_stay";
    let Some(out) = env.traced(test, &faults, &["dedupe", "--apply"]) else { return };
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("threads.") && out.stderr.contains("Input/output error"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "cairn: this dedupe appended its {found} merges before it stopped; they stay in the archive"
        )),
        "{out}"
    );
    env.ok(&["verify", "--checkpoint", &before]);
    assert_eq!(clusters(&env), Vec::<Value>::new(), "the merges are in");
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(t["comments"].as_array().unwrap().len(), 44, "the views took them in");
    let head = env.head();
    env.ok(&["dedupe", "--apply"]);
    assert_eq!(env.head(), head, "nothing left to append");

    // The merges' own commit failing (the log's sync): not committed, and
    // said so; a second run leaves the archive as one without the fault.
    let env = Env::new();
    sample_and_quote_variant(&env);
    let before = env.head().replace(' ', ":");
    let log = env.archive.join("log").join("00000000.seg");
    let faults: [&std::ffi::OsStr; 4] =
        ["-e".as_ref(), "inject=fdatasync:error=EIO".as_ref(), "-P".as_ref(), log.as_os_str()];
    let out = env.traced(test, &faults, &["dedupe", "--apply"]).expect("strace traced the first run");
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(
            "cairn: this dedupe did not commit its merges; if their records reached the log files before the \
             error, the next command finds them, and running it again appends only what is missing"
        ),
        "{out}"
    );
    env.ok(&["verify", "--checkpoint", &before]);
    env.ok(&["dedupe", "--apply"]);
    assert_eq!(clusters(&env), Vec::<Value>::new(), "the merges are in");
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    assert_eq!(t["comments"].as_array().unwrap().len(), 44);
    env.ok(&["verify", "--checkpoint", &before]);
}

/// After `dedupe --apply`, a search finds a folded version too and says
/// which version it was folded into (the kept one, itself a match).
#[test]
fn search_names_the_version_a_match_was_folded_into() {
    let env = Env::new();
    sample_and_quote_variant(&env);
    env.ok(&["dedupe", "--apply"]);
    let r = env.ok(&["search", ".", "--json"]).json();
    let matches = r["matches"].as_array().unwrap();
    let folded: Vec<&Value> = matches.iter().filter(|m| !m["merged_into"].is_null()).collect();
    assert!(folded.len() > 1, "{r:#}");
    for m in &folded {
        let kept = matches.iter().find(|k| k["id"] == m["merged_into"]);
        let kept = kept.unwrap_or_else(|| panic!("{} folded into a version not found: {r:#}", m["id"]));
        assert!(kept["merged_into"].is_null(), "{kept:#}");
        assert_eq!((&kept["author"], &kept["posted_at"]), (&m["author"], &m["posted_at"]));
    }
    let text = env.ok(&["search", "."]).stdout;
    let short = &folded[0]["merged_into"].as_str().unwrap()[..12];
    assert!(text.contains(&format!(" · merged into {short}")), "{text}");
}

/// `author`'s count of comments as `cairn authors` lists it.
fn counted_by_authors(env: &Env, author: &str) -> Value {
    let authors = env.ok(&["authors", "--json"]).json();
    authors["authors"].as_array().unwrap().iter().find(|x| x["author"] == author).unwrap()["comments"].clone()
}

/// The comments of the thread on the sample page by UFF, written in any
/// case.
fn uffs_in_thread(env: &Env) -> Vec<Value> {
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    t["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["author"].as_str().is_some_and(|a| a.eq_ignore_ascii_case("uff")))
        .cloned()
        .collect()
}

/// The counts of comments by UFF in `thread`, `author`, `authors` and
/// `table comments`, and the versions of UFF's comment by `author` (its
/// article, its version ids).
fn uff_everywhere(env: &Env) -> (usize, Value, u64, usize) {
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let in_thread = t["comments"].as_array().unwrap().iter().filter(|c| c["author"] == "UFF").count();
    let a = env.ok(&["author", "UFF", "--json"]).json();
    let timeline: Vec<Value> = a["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"article": c["article"], "versions": c["versions"]}))
        .collect();
    let counted = counted_by_authors(env, "UFF").as_u64().unwrap();
    let rows = env.ok(&["table", "comments", "--author", "UFF", "--format", "jsonl"]).stdout.lines().count();
    (in_thread, json!(timeline), counted, rows)
}

/// After an article merge, an edit of a merged comment scraped under the
/// folded article's URL (or under its title key) is a new version of the
/// one comment in every view, under the kept article: the authors view
/// counted it as a second comment under the folded article.
#[test]
fn an_edit_under_a_folded_article_is_one_comment_in_every_view() {
    let tracked = format!("{URL}?utm_source=twitter");
    let edited = sample().replace("Do You?", "Do You? Really.");
    // (first capture's URL, second's, the edit's): a URL variant folded
    // into the URL, and a URL folded into the title key.
    for (first, second, edit) in
        [(Some(URL), Some(tracked.as_str()), Some(tracked.as_str())), (None, Some(URL), Some(URL))]
    {
        let env = Env::new();
        let edited = env.write("edited.txt", &edited);
        let ingest = |url: Option<&str>, at: &str, path: &str| {
            let mut args = vec!["ingest", "--fetched-at", at, path];
            if let Some(u) = url {
                args.extend(["--source-url", u]);
            }
            env.ok(&args);
        };
        ingest(first, "2012-03-29T10:00:00Z", &sample_path());
        ingest(second, "2012-03-30T10:00:00Z", &sample_path());
        env.ok(&["dedupe", "--apply"]);
        let kept = env.ok(&["thread", "kayani", "--json"]).json()["article"]["key"].clone();
        ingest(edit, "2012-03-31T10:00:00Z", &edited);
        let (in_thread, timeline, counted, rows) = uff_everywhere(&env);
        assert_eq!((in_thread, counted, rows), (1, 1, 1), "{timeline}");
        let timeline = timeline.as_array().unwrap().clone();
        assert_eq!(timeline.len(), 1, "{timeline:?}");
        assert_eq!(timeline[0]["article"], kept);
        assert_eq!(timeline[0]["versions"].as_array().unwrap().len(), 2, "{timeline:?}");
        // A replay builds the same.
        let before = uff_everywhere(&env);
        env.ok(&["replay"]);
        assert_eq!(uff_everywhere(&env), before);
        env.ok(&["verify"]);
    }
}

/// Two comments under one article at the same minute whose authors differ
/// only in case are two comments in the author's timeline as in the
/// thread (the authors view took the second for an edit of the first),
/// until `dedupe --apply` folds one into the other.
#[test]
fn authors_differing_in_case_are_two_comments_until_merged() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let shouted = env.write("shouted.txt", sample().replace("  • UFF\n", "  • uff\n"));
    env.ok(&["ingest", &shouted]);
    let uffs = uffs_in_thread(&env);
    assert_eq!(uffs.len(), 2, "{uffs:?}");
    let a = env.ok(&["author", "UFF", "--json"]).json();
    let timeline = a["comments"].as_array().unwrap();
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert!(timeline.iter().all(|c| c["versions"].as_array().unwrap().len() == 1), "{timeline:?}");
    assert_eq!(counted_by_authors(&env, "UFF"), json!(2));
    // dedupe finds them ("author name differs only in case") and folds one.
    env.ok(&["dedupe", "--apply"]);
    let a = env.ok(&["author", "UFF", "--json"]).json();
    assert_eq!(a["comments"].as_array().unwrap().len(), 1, "{a}");
    assert_eq!(uffs_in_thread(&env).len(), 1);
}

/// The article's (id, URL, title) as `articles`, `thread` and `table
/// articles` give it (`--at` AT when given).
fn article_fields(env: &Env, at: Option<&str>) -> Vec<Value> {
    let with_at = |args: &[&str]| {
        let mut args = args.to_vec();
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        env.ok(&args).json()
    };
    let listed = &with_at(&["articles", "--json"])["articles"][0];
    let shown = &with_at(&["thread", "kayani", "--json"])["article"];
    let mut out = vec![
        json!([listed["id"], listed["url"], listed["title"]]),
        json!([shown["id"], shown["url"], shown["title"]]),
    ];
    if at.is_none() {
        let row: Value = serde_json::from_str(
            env.ok(&["table", "articles", "--format", "jsonl"]).stdout.lines().next().unwrap(),
        )
        .unwrap();
        out.push(json!([row["id"], row["url"], row["title"]]));
    }
    out
}

/// After an article merge every command names the article by the same
/// version, with that version's URL: `articles` gave the latest version's
/// id with the kept article's own URL, which `thread` and the tables gave
/// with the folded one's; and the kept article's own version, made the
/// latest by the article merge, gave way to the folded one at the next
/// comment merge of the same `dedupe --apply`.
#[test]
fn after_an_article_merge_every_command_names_the_same_version() {
    let tracked = format!("{URL}?utm_source=twitter");
    for (first, second) in [(Some(URL), Some(tracked.as_str())), (None, Some(URL)), (Some(URL), None)] {
        let env = Env::new();
        for (url, at) in [(first, "2012-03-29T10:00:00Z"), (second, "2012-03-30T10:00:00Z")] {
            let path = sample_path();
            let mut args = vec!["ingest", "--fetched-at", at, path.as_str()];
            if let Some(u) = url {
                args.extend(["--source-url", u]);
            }
            env.ok(&args);
        }
        let merged_at = env.head().split_once(' ').unwrap().0.parse::<u64>().unwrap() + 1;
        env.ok(&["dedupe", "--apply"]);
        let merged_at = merged_at.to_string();
        let at_merge = article_fields(&env, Some(&merged_at));
        let at_head = article_fields(&env, None);
        for fields in [&at_merge, &at_head] {
            assert!(fields.iter().all(|f| *f == fields[0]), "{first:?} then {second:?}: {fields:#?}");
        }
        assert_eq!(at_merge[0], at_head[0], "the latest version holds through the comment merges");
        // The last capture showed the second article's version.
        assert_eq!(at_head[0][1], json!(second), "{at_head:?}");
        env.ok(&["replay"]);
        assert_eq!(article_fields(&env, None), at_head);
    }
}

/// `ingest --dry-run` of a page under an article key `dedupe --apply`
/// folded into another previews what the real ingest then changes in the
/// kept thread: it compared the page with a thread of the folded key's
/// own, which the merge emptied, and previewed every comment as new.
#[test]
fn a_dry_run_under_a_folded_url_previews_the_kept_thread() {
    let env = Env::new();
    let tracked = format!("{URL}?utm_source=twitter");
    env.ok(&["ingest", "--source-url", URL, "--fetched-at", "2012-03-29T10:00:00Z", &sample_path()]);
    env.ok(&["ingest", "--source-url", &tracked, "--fetched-at", "2012-03-30T10:00:00Z", &sample_path()]);
    env.ok(&["dedupe", "--apply"]);
    // One comment removed and one edited (a complete page of 43).
    let later = env.write("later.txt", crate::views::rescrape());
    let args = ["ingest", "--json", "--source-url", &tracked, "--fetched-at", "2012-03-31T10:00:00Z", &later];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let preview = env.ok(&dry).json()["files"][0].clone();
    let counts = |v: &Value| (v["would_add"].clone(), v["would_remove"].clone(), v["would_edit"].clone());
    assert_eq!(counts(&preview), (json!(0), json!(1), json!(1)), "{preview}");
    env.ok(&args);
    let changes = env.ok(&["changes", "kayani", "--json"]).json();
    let last = changes["changes"].as_array().unwrap().last().unwrap().clone();
    let len = |k: &str| json!(last[k].as_array().unwrap().len());
    assert_eq!((len("added"), len("removed"), len("edited")), counts(&preview), "{last}");
}

/// One document showing an article under two URLs with two titles, merged:
/// the author's timeline names the article by the title `articles` and
/// `thread` show (the version of the capture's first section), not by the
/// one of whichever article was kept.
#[test]
fn a_capture_of_two_merged_sections_titles_the_article_alike_in_every_view() {
    let env = Env::new();
    let u = "https://example.com/news/story";
    let doc = format!(
        "{{\"type\":\"article\",\"id\":\"a\",\"url\":\"{u}?utm_source=y\",\"title\":\"Title B\",\"published\":\"2012-03-28\"}}\n\
         {{\"type\":\"article\",\"id\":\"b\",\"url\":\"{u}\",\"title\":\"Title A\",\"published\":\"2012-03-28\"}}\n\
         {{\"type\":\"comment\",\"article\":\"a\",\"author\":\"X\",\"posted_at\":\"2012-03-28T09:00:00Z\",\"body\":\"one\"}}\n\
         {{\"type\":\"capture\",\"fetched_at\":\"2012-03-29T10:00:00Z\"}}\n"
    );
    let path = env.write("two.jsonl", doc);
    env.ok(&["ingest", &path]);
    env.ok(&["dedupe", "--apply"]);
    let titles = |env: &Env| {
        let listed = env.ok(&["articles", "--json"]).json()["articles"][0]["title"].clone();
        let shown = env.ok(&["thread", "story", "--json"]).json()["article"]["title"].clone();
        let timeline = env.ok(&["author", "X", "--json"]).json()["comments"][0]["title"].clone();
        (listed, shown, timeline)
    };
    let all = titles(&env);
    assert_eq!(all, (json!("Title B"), json!("Title B"), json!("Title B")));
    env.ok(&["replay"]);
    assert_eq!(titles(&env), all);
}

/// One JSON Lines capture of article `key` (title `title`, published
/// 2020-01-01) at URL `url`, fetched at `fetched`, with comments
/// `(author, posted_at, body)`.
fn jsonl_capture(
    env: &Env,
    name: &str,
    url: &str,
    title: &str,
    fetched: &str,
    comments: &[(&str, &str, &str)],
) -> String {
    let mut s = format!("{}\n", json!({"type": "capture", "fetched_at": fetched}));
    s.push_str(&format!(
        "{}\n",
        json!({"type": "article", "url": url, "title": title, "published": "2020-01-01"})
    ));
    for (author, posted, body) in comments {
        s.push_str(&format!(
            "{}\n",
            json!({"type": "comment", "author": author, "posted_at": posted, "body": body})
        ));
    }
    env.write(name, s)
}

/// A number's sign and a comment's own last word are words: such edits
/// are no rendering (they were merged as one, the older text shown as
/// current); a time given only as a day is named as such.
#[test]
fn a_sign_or_a_last_word_is_an_edit_and_a_day_alone_is_named() {
    let env = Env::new();
    let url = "https://example.com/n";
    let pages = [
        ("a.jsonl", "2020-01-04T00:00:00Z", ("kim", "2020-01-01T10:00:00+00:00", "It is -5 degrees")),
        ("b.jsonl", "2020-01-05T00:00:00Z", ("kim", "2020-01-01T10:00:00+00:00", "It is 5 degrees")),
        ("c.jsonl", "2020-01-06T00:00:00Z", ("lee", "2020-01-01T11:00:00+00:00", "I would not recommend")),
        ("d.jsonl", "2020-01-07T00:00:00Z", ("lee", "2020-01-01T11:00:00+00:00", "I would not")),
        ("e.jsonl", "2020-01-08T00:00:00Z", ("bob", "2020-01-01", "See you tomorrow")),
        ("f.jsonl", "2020-01-09T00:00:00Z", ("bob", "2020-01-01T10:00:00+00:00", "See you tomorrow\nReply")),
    ];
    for (name, fetched, c) in pages {
        // Each author's two pages are two captures of one article.
        let path = jsonl_capture(&env, name, &format!("{url}/{}", c.0), c.0, fetched, &[c]);
        env.ok(&["ingest", &path]);
    }
    let found = clusters(&env);
    assert_eq!(found.len(), 1, "{found:?}");
    let reason = found[0]["reason"].as_str().unwrap();
    assert!(reason.contains("posted time given only as its day on one page"), "{reason}");
    assert!(!reason.contains("time-zone"), "{reason}");
}

/// Two sites' articles of one title and date are two articles: folded,
/// each one's comments read as removed by the other's captures.
#[test]
fn one_title_and_date_on_two_sites_is_two_articles() {
    let env = Env::new();
    let a = jsonl_capture(
        &env,
        "a.jsonl",
        "https://example.com/daily/morning",
        "Daily Briefing",
        "2020-01-01T12:00:00Z",
        &[("ann", "2020-01-01T10:01:00+00:00", "Great summary.")],
    );
    let b = jsonl_capture(
        &env,
        "b.jsonl",
        "https://other.org/briefing",
        "Daily Briefing",
        "2020-01-01T13:00:00Z",
        &[("bo", "2020-01-01T11:00:00+00:00", "Not again.")],
    );
    env.ok(&["ingest", &a, &b]);
    assert_eq!(clusters(&env), Vec::<Value>::new());
    // One site's page under another URL of its own is still the same article.
    let c = jsonl_capture(
        &env,
        "c.jsonl",
        "https://example.com/briefing-2020-01-01",
        "Daily Briefing",
        "2020-01-01T14:00:00Z",
        &[("ann", "2020-01-01T10:01:00+00:00", "Great summary.")],
    );
    let env2 = Env::new();
    env2.ok(&["ingest", &a, &c]);
    let found = clusters(&env2);
    assert!(
        found.iter().any(|c| c["reason"].as_str().unwrap().contains("the same title and publication date")),
        "{found:?}"
    );
}

/// A comment re-rendered (another offset, other punctuation) and then
/// edited: folded by `dedupe --apply`, the edit stays an edit of it (the
/// thread showed the original removed and the edit as another comment).
#[test]
fn a_merged_comment_keeps_its_later_edit() {
    let env = Env::new();
    let url = "https://example.com/n/9";
    let pages = [
        ("s1.jsonl", "2020-01-02T00:00:00Z", ("amy", "2020-01-01T10:00:00+00:00", "Hello there friend")),
        ("s2.jsonl", "2020-01-03T00:00:00Z", ("amy", "2020-01-01T15:00:00+05:00", "hello there, friend")),
        ("s3.jsonl", "2020-01-04T00:00:00Z", ("amy", "2020-01-01T15:00:00+05:00", "hello there, my friend")),
    ];
    for (name, fetched, c) in pages {
        env.ok(&["ingest", &jsonl_capture(&env, name, url, "T9", fetched, &[c])]);
    }
    env.ok(&["dedupe", "--apply"]);
    let t = env.ok(&["thread", "T9", "--json"]).json();
    let cs = t["comments"].as_array().unwrap();
    assert_eq!(cs.len(), 1, "{t}");
    assert_eq!(cs[0]["status"], json!("present"));
    assert_eq!(cs[0]["body"], json!("hello there, my friend"));
    assert_eq!(cs[0]["versions"].as_array().unwrap().len(), 2);
    env.ok(&["verify"]);
    // The same after a replay from the log.
    env.ok(&["replay"]);
    assert_eq!(env.ok(&["thread", "T9", "--json"]).json(), t);

    // The edit ingested after the merge: matched through the rendering the
    // merged comment had, kept in the thread's state.
    let later = Env::new();
    for (name, fetched, c) in &pages[..2] {
        later.ok(&["ingest", &jsonl_capture(&later, name, url, "T9", fetched, &[*c])]);
    }
    later.ok(&["dedupe", "--apply"]);
    let (name, fetched, c) = pages[2];
    later.ok(&["ingest", &jsonl_capture(&later, name, url, "T9", fetched, &[c])]);
    let after = later.ok(&["thread", "T9", "--json"]).json();
    let cs = after["comments"].as_array().unwrap();
    assert_eq!(cs.len(), 1, "{after}");
    assert_eq!(cs[0]["versions"].as_array().unwrap().len(), 2, "{after}");
    later.ok(&["verify"]);
}

/// A comment re-rendered in another UTC offset, folded by `dedupe
/// --apply`, then edited under the folded rendering: one comment edited
/// in the thread, and in the authors view too, whether the edit was
/// ingested after the merge or before it (the authors view counted two
/// comments, the older text shown as a comment of its own).
#[test]
fn an_edit_under_a_merged_rendering_is_one_comment_in_every_view() {
    for edit_before_merge in [false, true] {
        let env = Env::new();
        let url = "https://example.com/a/1";
        let page = |name: &str, fetched: &str, ann: (&str, &str)| {
            let comments = [("ann", ann.0, ann.1), ("bob", "2012-03-28T08:05:00Z", "bob says")];
            jsonl_capture(&env, name, url, "T", fetched, &comments)
        };
        let one = page("1.jsonl", "2012-03-28T09:00:00Z", ("2012-03-28T08:02:00Z", "alpha delta"));
        let two = page("2.jsonl", "2012-03-28T10:00:00Z", ("2012-03-28T13:02:00+05:00", "alpha delta"));
        let three = page("3.jsonl", "2012-03-28T11:00:00Z", ("2012-03-28T13:02:00+05:00", "kappa beta"));
        env.ok(&["ingest", &one, &two]);
        if edit_before_merge {
            env.ok(&["ingest", &three]);
        }
        env.ok(&["dedupe", "--apply"]);
        if !edit_before_merge {
            env.ok(&["ingest", &three]);
        }
        let check = |env: &Env| {
            let thread = env.ok(&["thread", "T", "--json"]).json();
            let ann: Vec<&Value> =
                thread["comments"].as_array().unwrap().iter().filter(|c| c["author"] == "ann").collect();
            assert_eq!(ann.len(), 1, "{edit_before_merge}: {thread}");
            assert_eq!(ann[0]["body"], "kappa beta");
            let authors = env.ok(&["authors", "--json"]).json();
            let count = authors["authors"].as_array().unwrap().iter().find(|a| a["author"] == "ann").unwrap()
                ["comments"]
                .clone();
            assert_eq!(count, json!(1), "{edit_before_merge}: {authors}");
            let timeline = env.ok(&["author", "ann", "--json"]).json();
            let comments = timeline["comments"].as_array().unwrap();
            assert_eq!(comments.len(), 1, "{edit_before_merge}: {timeline}");
            assert_eq!(comments[0]["body"], "kappa beta", "{timeline}");
        };
        check(&env);
        env.ok(&["verify"]);
        env.ok(&["replay"]);
        check(&env);
    }
}

/// The folded comment had joined, by author and time, the entry of
/// another comment (its rendering's minute): that comment stays a comment
/// of its own in the authors view, as in the thread.
#[test]
fn a_comment_the_folded_one_was_taken_for_an_edit_of_stays_apart() {
    let env = Env::new();
    let url = "https://example.com/a/2";
    let one = jsonl_capture(
        &env,
        "1.jsonl",
        url,
        "T",
        "2012-03-28T09:00:00Z",
        &[
            ("ann", "2012-03-28T08:02:00Z", "iota kappa gamma"),
            ("ann", "2012-03-28T13:02:00+05:00", "theta iota"),
        ],
    );
    let two = jsonl_capture(
        &env,
        "2.jsonl",
        url,
        "T",
        "2012-03-28T10:00:00Z",
        &[("ann", "2012-03-28T13:02:00+05:00", "Iota kappa gamma!")],
    );
    env.ok(&["ingest", &one, &two]);
    let merged = env.ok(&["dedupe", "--apply", "--json"]).json();
    assert_eq!(merged["merges"]["new"], json!(1), "{merged}");
    assert_same_counts_after_verify_and_replay(&env, "ann", 2);
}

/// A capture backfilled after a merge, observed before the folded comment
/// was first shown, does not take the folded comment's rendering for the
/// kept one's (the thread learns a merged rendering from the capture that
/// showed it): the authors view counts what the thread shows.
#[test]
fn a_backfill_after_a_merge_is_not_taken_for_the_merged_rendering() {
    let env = Env::new();
    let url = "https://example.com/a/3";
    let page = |name: &str, fetched: &str, posted: &str, body: &str| {
        jsonl_capture(&env, name, url, "T", fetched, &[("bob", posted, body)])
    };
    let k = page("k.jsonl", "2012-03-29T05:00:00Z", "2012-03-28T13:07:00+05:00", "Hello there friend");
    let f = page("f.jsonl", "2012-03-29T06:00:00Z", "2012-03-28T14:07:00+05:00", "Hello there, friend!");
    let f2 =
        page("f2.jsonl", "2012-03-29T07:00:00Z", "2012-03-28T14:07:00+05:00", "Hello there friend, edited");
    let f0 = page("f0.jsonl", "2012-03-29T05:30:00Z", "2012-03-28T14:07:00+05:00", "Original words");
    env.ok(&["ingest", &k, &f, &f2]);
    let merged = env.ok(&["dedupe", "--apply", "--json"]).json();
    assert_eq!(merged["merges"]["new"], json!(1), "{merged}");
    env.ok(&["ingest", &f0]);
    assert_same_counts_after_verify_and_replay(&env, "bob", 2);
}

/// `thread T` shows `n` comments, and the authors view counts `n` for
/// `author`, before and after a fresh replay (verify passing between).
fn assert_same_counts_after_verify_and_replay(env: &Env, author: &str, n: usize) {
    let counts = |env: &Env| {
        let thread = env.ok(&["thread", "T", "--json"]).json();
        let authors = env.ok(&["authors", "--json"]).json();
        let count = authors["authors"].as_array().unwrap().iter().find(|a| a["author"] == author).unwrap()
            ["comments"]
            .clone();
        (thread["comments"].as_array().unwrap().len(), count)
    };
    assert_eq!(counts(env), (n, json!(n)));
    env.ok(&["verify"]);
    env.ok(&["replay"]);
    assert_eq!(counts(env), (n, json!(n)));
}

/// The same captures ingested in another order, then `dedupe --apply`:
/// the cluster keeps the comment observed first, not the first in the log,
/// so the thread is the same (keeping the later scrape's rendering, ingested
/// first, split one comment's versions in two, one marked removed).
#[test]
fn a_merge_keeps_the_comment_observed_first_whatever_the_ingest_order() {
    let grouping = |order: [usize; 3]| {
        let env = Env::new();
        let url = "https://example.com/a/4";
        let bob = [
            ("2012-03-28T09:00:00Z", "2012-03-28T13:02:00+05:00", "iota gamma"),
            ("2012-03-28T10:00:00Z", "2012-03-28T13:02:00+05:00", "eps gamma kappa eta"),
            ("2012-03-28T11:00:00Z", "2012-03-28T08:02:00Z", "Eps gamma kappa eta!"),
        ];
        let files: Vec<String> = bob
            .iter()
            .enumerate()
            .map(|(i, (fetched, posted, body))| {
                let comments = [("ann", "2012-03-28T13:05:00+05:00", "ann here"), ("bob", *posted, *body)];
                jsonl_capture(&env, &format!("{i}.jsonl"), url, "T", fetched, &comments)
            })
            .collect();
        ingest_in_order_then_dedupe(&env, &files, &order);
        let thread = env.ok(&["thread", "T", "--json"]).json();
        let mut bobs: Vec<(String, Vec<String>)> = thread["comments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["author"] == "bob")
            .map(|c| {
                let bodies =
                    c["versions"].as_array().unwrap().iter().map(|v| v["body"].to_string()).collect();
                (c["status"].to_string(), bodies)
            })
            .collect();
        bobs.sort();
        bobs
    };
    let in_order = grouping([0, 1, 2]);
    assert_eq!(in_order.len(), 1, "{in_order:?}");
    assert_eq!(grouping([2, 0, 1]), in_order);
}

/// A second `dedupe --apply` folds an earlier run's kept comment (a
/// backfill showed one observed before it): what had been merged into it
/// goes with it, so an edit under a rendering merged the first time is
/// still one comment edited in the authors view, as in the thread.
#[test]
fn a_refolded_kept_comment_hands_on_what_was_merged_into_it() {
    let env = Env::new();
    let url = "https://example.com/a/5";
    let page = |name: &str, fetched: &str, author: &str, posted: &str, body: &str| {
        jsonl_capture(&env, name, url, "T", fetched, &[(author, posted, body)])
    };
    let x = page("x.jsonl", "2012-03-28T09:00:00Z", "bob", "2012-03-28T13:07:00+05:00", "Hello world");
    let y = page("y.jsonl", "2012-03-28T10:00:00Z", "bob", "2012-03-28T08:07:00Z", "hello, world");
    let z = page("z.jsonl", "2012-03-28T07:00:00Z", "Bob", "2012-03-28T13:07:00+05:00", "HELLO WORLD");
    let e = page("e.jsonl", "2012-03-28T11:00:00Z", "bob", "2012-03-28T08:07:00Z", "an edited text now");
    env.ok(&["ingest", &x, &y]);
    env.ok(&["dedupe", "--apply"]);
    env.ok(&["ingest", &z]);
    env.ok(&["dedupe", "--apply"]);
    env.ok(&["ingest", &e]);
    let thread = env.ok(&["thread", "T", "--json"]).json();
    assert_eq!(thread["comments"].as_array().unwrap().len(), 1, "{thread}");
    let timeline = env.ok(&["author", "bob", "--json"]).json();
    assert_eq!(timeline["comments"].as_array().unwrap().len(), 1, "{timeline}");
    env.ok(&["verify"]);
}

/// Two URL variants of one article, captured in one order and ingested in
/// either: the merge keeps the article observed first both times, so the
/// archive files the thread under the same key.
#[test]
fn an_article_merge_keeps_the_article_observed_first_whatever_the_ingest_order() {
    let kept = |order: [usize; 2]| {
        let env = Env::new();
        let captures = [
            ("https://example.com/story/1", "2012-03-28T09:00:00Z", "first words"),
            ("https://www.example.com/story/1/?utm_source=feed", "2012-03-28T10:00:00Z", "second words"),
        ];
        let files: Vec<String> = captures
            .iter()
            .enumerate()
            .map(|(i, (url, fetched, body))| {
                let comments = [("ann", "2012-03-28T08:00:00Z", *body)];
                jsonl_capture(&env, &format!("{i}.jsonl"), url, "A story", fetched, &comments)
            })
            .collect();
        ingest_in_order_then_dedupe(&env, &files, &order);
        let articles = env.ok(&["articles", "--json"]).json();
        assert_eq!(articles["articles"].as_array().map(Vec::len), Some(1), "{articles}");
        articles["articles"][0]["key"].clone()
    };
    assert_eq!(kept([0, 1]), json!("https://example.com/story/1"));
    assert_eq!(kept([1, 0]), json!("https://example.com/story/1"));
}

/// Ingests `files` in `order`, applies `dedupe`, and verifies.
fn ingest_in_order_then_dedupe(env: &Env, files: &[String], order: &[usize]) {
    for &i in order {
        env.ok(&["ingest", &files[i]]);
    }
    env.ok(&["dedupe", "--apply"]);
    env.ok(&["verify"]);
}

/// A JSON Lines capture fetched at `fetched` (2012-03-28, +05:00) of the
/// article at `https://example.com/a/1` (with its record when `titled`),
/// showing `comments` (each a whole JSON object).
fn capture_doc(fetched: &str, titled: bool, comments: &[&str]) -> String {
    let mut doc = Vec::new();
    if titled {
        doc.push(r#"{"type":"article","id":"a","url":"https://example.com/a/1","title":"T"}"#.to_string());
    }
    doc.extend(comments.iter().map(|c| c.to_string()));
    doc.push(format!(r#"{{"type":"capture","fetched_at":"2012-03-28T{fetched}+05:00"}}"#));
    doc.join("\n") + "\n"
}

/// A comment under `article` by `author` at `posted` (2012-03-28).
fn comment_line(article: &str, author: &str, posted: &str, body: &str) -> String {
    format!(
        r#"{{"type":"comment","article":"{article}","author":"{author}","posted_at":"2012-03-28T{posted}","body":"{body}"}}"#
    )
}

/// A comment re-rendered under another URL of its article, which no
/// article merge joins (one URL has no article record), is folded into
/// the first: the author has one comment, listed once (authors view 18 as
/// first written listed it under both articles, and `author` failed with
/// "archive is corrupt").
#[test]
fn a_comment_folded_across_two_articles_is_listed_once() {
    let env = Env::new();
    let kept = comment_line("a", "bob", "13:02:00+05:00", "hello world");
    let other = comment_line("https://www.example.com/a/1/", "bob", "08:02:00Z", "Hello world!");
    let first = env.write("1.jsonl", capture_doc("14:00:00", true, &[&kept]));
    let second = env.write("2.jsonl", capture_doc("15:00:00", false, &[&other]));
    env.ok(&["ingest", &first, &second]);
    assert!(env.ok(&["dedupe", "--apply"]).stdout.contains("appended 1 merges"));
    assert_eq!(counted_by_authors(&env, "bob"), json!(1));
    let timeline = env.ok(&["author", "bob", "--json"]).json();
    assert_eq!(timeline["comments"].as_array().map(Vec::len), Some(1), "{timeline}");
    env.ok(&["author", "bob"]);
    env.ok(&["verify"]);
}

/// Names `dedupe` folds alike and the authors view does not (`bob` and a
/// fullwidth `ｂｏｂ`): an edit shown under the folded comment's name after
/// the merge is an edit of the kept comment in the timeline as in the
/// thread, whatever the ingest order, and the name none of whose comments
/// is left is no author (`authors` does not list it, `author` says so).
#[test]
fn an_edit_under_a_name_dedupe_folds_is_the_kept_comments() {
    let comment = |author: &str, body: &str| comment_line("a", author, "13:02:00+05:00", body);
    let files = |env: &Env| {
        [
            env.write("1.jsonl", capture_doc("14:00:00", true, &[&comment("bob", "hello world")])),
            env.write("2.jsonl", capture_doc("15:00:00", true, &[&comment("ｂｏｂ", "hello world")])),
            env.write("3.jsonl", capture_doc("16:00:00", true, &[&comment("ｂｏｂ", "hello world, edited")])),
        ]
    };
    let merged_first = Env::new();
    let f = files(&merged_first);
    merged_first.ok(&["ingest", &f[0], &f[1]]);
    merged_first.ok(&["dedupe", "--apply"]);
    merged_first.ok(&["ingest", &f[2]]);
    let backfilled = Env::new();
    let f = files(&backfilled);
    backfilled.ok(&["ingest", &f[0], &f[2], &f[1]]);
    backfilled.ok(&["dedupe", "--apply"]);
    for env in [&merged_first, &backfilled] {
        let thread = env.ok(&["thread", "T", "--json"]).json();
        let comments = thread["comments"].as_array().unwrap();
        assert_eq!(comments.len(), 1, "{thread}");
        assert_eq!(comments[0]["versions"].as_array().map(Vec::len), Some(2), "{thread}");
        let authors = env.ok(&["authors", "--json"]).json();
        assert_eq!(authors["authors"], json!([{"author": "bob", "comments": 1}]), "{authors}");
        let timeline = env.ok(&["author", "bob", "--json"]).json();
        assert_eq!(timeline["comments"][0]["versions"].as_array().map(Vec::len), Some(2), "{timeline}");
        // No comment is left under the fullwidth name: no such author.
        let none = env.run(&["author", "ｂｏｂ"]).expect_code(2);
        assert!(none.stderr.contains("no author named"), "{none}");
        env.ok(&["verify"]);
    }
}

/// A comment folded into another, shown with it by a capture observed
/// before TIME but ingested after the merge: at TIME the author has the
/// one comment the thread shows (before, the folded one was taken in as
/// new in its document and counted again).
#[test]
fn at_a_time_a_folded_comment_is_the_kept_one() {
    let env = Env::new();
    let kept = r#"{"type":"comment","article":"a","author":"bob","posted_at":"2030-03-28T13:02:00+05:00","body":"hello world"}"#;
    let folded = r#"{"type":"comment","article":"a","author":"bob","posted_at":"2030-03-28T08:02:00Z","body":"Hello world!"}"#;
    let capture = |name: &str, hour: u32, comments: &[&str]| {
        let doc = capture_doc(&format!("{hour}:00:00"), true, comments).replace("2012-03-28T", "2030-03-28T");
        env.write(name, doc)
    };
    let (k, late, back) = (
        capture("k.jsonl", 17, &[kept]),
        capture("late.jsonl", 18, &[folded]),
        capture("back.jsonl", 15, &[kept, folded]),
    );
    env.ok(&["ingest", &k, &late]);
    env.ok(&["dedupe", "--apply"]);
    env.ok(&["ingest", &back]);
    let at = "2030-03-28T16:00:00+05:00";
    let thread = env.ok(&["thread", "T", "--json", "--at", at]).json();
    assert_eq!(thread["comments"].as_array().map(Vec::len), Some(1), "{thread}");
    let authors = env.ok(&["authors", "--json", "--at", at]).json();
    assert_eq!(authors["authors"], json!([{"author": "bob", "comments": 1}]), "{authors}");
    let timeline = env.ok(&["author", "bob", "--json", "--at", at]).json();
    assert_eq!(timeline["comments"].as_array().map(Vec::len), Some(1), "{timeline}");
    env.ok(&["replay", "--until", at]);
    assert_eq!(counted_by_authors(&env, "bob"), json!(1));
    env.ok(&["verify"]);
}

/// Two comments with one text, one by `bob` and one by `Bob` at the same
/// instant in two UTC offsets, shown side by side (two comments) on two
/// URLs of one article: `dedupe --apply` appends the same merges whatever
/// order the scrapes were ingested in (before, two comments a page first
/// showed side by side went by log order, and the pairs it made depended
/// on it).
#[test]
fn dedupe_merges_the_same_whatever_the_ingest_order() {
    let pair = |article: &str| {
        [
            comment_line(article, "bob", "13:02:00+05:00", "same words"),
            comment_line(article, "Bob", "08:02:00Z", "same words"),
        ]
    };
    let [main_bob, main_big] = pair("a");
    let [www_bob, www_big] = pair("https://www.example.com/a/1/");
    let docs = [
        capture_doc("14:00:00", true, &[&main_bob, &main_big]),
        capture_doc("15:00:00", false, &[&www_bob, &www_big]),
        capture_doc("16:00:00", true, &[&main_big]),
    ];
    let merges = |order: [usize; 3]| {
        let env = Env::new();
        for i in order {
            env.ok(&["ingest", &env.write(&format!("{i}.jsonl"), &docs[i])]);
        }
        env.ok(&["dedupe", "--apply"]);
        env.ok(&["verify"]);
        let mut merges: Vec<(String, Vec<String>)> = (env
            .ok(&["log", "--kind", "merge", "--json"])
            .stdout
            .lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|m| {
            let mut fold: Vec<String> =
                m["fold"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
            fold.sort();
            (m["keep"].as_str().unwrap().to_string(), fold)
        })
        .collect();
        merges.sort();
        merges
    };
    let in_order = merges([0, 1, 2]);
    assert_eq!(in_order.len(), 2, "{in_order:?}");
    assert_eq!(merges([2, 1, 0]), in_order);
    assert_eq!(merges([2, 0, 1]), in_order);
}

/// Two URLs of one article first shown side by side by one scrape, then
/// in the other order, with a version more under one URL: `dedupe
/// --apply` keeps the same article and names each by the same version
/// whatever order the scrapes were ingested in (before, two articles one
/// capture first showed went by log order, and each was named by its
/// version latest in the log).
#[test]
fn article_merges_are_the_same_whatever_the_ingest_order() {
    let article = |id: &str, url: &str, title: &str| {
        format!(
            r#"{{"type":"article","id":"{id}","url":"{url}","title":"{title}","published":"2012-03-28"}}"#
        )
    };
    let comment = |article: &str, author: &str, body: &str| {
        format!(
            r#"{{"type":"comment","article":"{article}","author":"{author}","posted_at":"2012-03-28T13:02:00+05:00","body":"{body}"}}"#
        )
    };
    let capture = |at: &str| format!(r#"{{"type":"capture","fetched_at":"2012-03-29T{at}Z"}}"#);
    let (main, www) = ("https://example.com/a/1", "https://www.example.com/a/1/");
    let docs = [
        [
            article("x", main, "T"),
            comment("x", "bob", "one"),
            article("y", www, "T"),
            comment("y", "ann", "two"),
            capture("01:00:00"),
        ],
        [
            article("y", www, "T"),
            comment("y", "ann", "two"),
            article("x", main, "T"),
            comment("x", "bob", "one"),
            capture("02:00:00"),
        ],
        [
            article("y", www, "T (updated)"),
            comment("y", "ann", "two"),
            String::new(),
            String::new(),
            capture("03:00:00"),
        ],
    ];
    let run = |order: [usize; 3]| {
        let env = Env::new();
        for i in order {
            let doc: String = docs[i].iter().filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
            env.ok(&["ingest", &env.write(&format!("{i}.jsonl"), doc)]);
        }
        env.ok(&["dedupe", "--apply"]);
        env.ok(&["verify"]);
        let merges = env.ok(&["log", "--kind", "merge", "--json"]).stdout;
        let articles = env.ok(&["articles", "--json"]).json();
        let keys: Vec<(Value, Value)> = (articles["articles"].as_array().unwrap().iter())
            .map(|a| (a["key"].clone(), a["aliases"].clone()))
            .collect();
        let merges: Vec<(Value, Value)> = (merges.lines())
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|m| (m["keep"].clone(), m["fold"].clone()))
            .collect();
        (keys, merges)
    };
    let in_order = run([0, 1, 2]);
    assert_eq!(in_order.0, vec![(json!(main), json!([www]))], "{in_order:?}");
    assert_eq!(run([2, 1, 0]), in_order);
    assert_eq!(run([1, 2, 0]), in_order);
}

/// An article retitled back to an earlier title, then the same title and
/// date under no URL: whether `dedupe --apply` joins the two by the title
/// key does not depend on the ingest order (the title is that of the
/// version observed last, as the views show it; before, the version last
/// in the log).
#[test]
fn the_title_key_is_the_title_observed_last() {
    let comment =
        r#"{"type":"comment","author":"bob","posted_at":"2012-03-28T13:02:00+05:00","body":"hello"}"#;
    let doc = |url: Option<&str>, title: &str, at: &str| {
        let url = url.map_or(String::new(), |u| format!(r#""url":"{u}","#));
        format!(
            "{{\"type\":\"article\",{url}\"title\":\"{title}\",\"published\":\"2012-03-28\"}}\n{comment}\n{{\"type\":\"capture\",\"fetched_at\":\"2012-03-29T{at}Z\"}}\n"
        )
    };
    let docs = [
        doc(Some("https://example.com/b/2"), "Second story (updated)", "01:00:00"),
        doc(Some("https://example.com/b/2"), "Second story", "02:00:00"),
        doc(None, "Second story", "03:00:00"),
    ];
    for order in [[0, 1, 2], [1, 0, 2]] {
        let env = Env::new();
        for i in order {
            env.ok(&["ingest", &env.write(&format!("{i}.jsonl"), &docs[i])]);
        }
        let d = env.ok(&["dedupe", "--apply", "--json"]).json();
        let kinds: Vec<&Value> = d["clusters"].as_array().unwrap().iter().map(|c| &c["kind"]).collect();
        assert_eq!(kinds, [&json!("article"), &json!("comment")], "order {order:?}: {d}");
        let articles = env.ok(&["articles", "--json"]).json();
        assert_eq!(articles["articles"].as_array().map(Vec::len), Some(1), "order {order:?}: {articles}");
        assert_eq!(counted_by_authors(&env, "bob"), json!(1));
    }
}
