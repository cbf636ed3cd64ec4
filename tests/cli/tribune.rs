//! The tribune page layout: the facts the sample page must yield, the
//! repeated-scrape semantics, and truncated and odd pages. Variants of the
//! sample are made here from the sample itself, so each test shows exactly
//! what differs.

use crate::support::{fixture, Env};
use serde_json::{json, Value};

const SAMPLE: &str = "tribune-2012-03-28-us-generals-kayani.txt";
const SEP: &str = "\n\n\n  • ";

fn sample() -> String {
    std::fs::read_to_string(fixture(SAMPLE)).unwrap()
}

fn sample_path() -> String {
    fixture(SAMPLE).display().to_string()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn comments(env: &Env) -> Vec<Value> {
    json_lines(&env.ok(&["log", "--json", "--kind", "comment"]).stdout)
}

fn captures(env: &Env) -> Vec<Value> {
    json_lines(&env.ok(&["log", "--json", "--kind", "capture"]).stdout)
}

fn counts(report: &Value) -> (u64, u64, u64) {
    let n = |k: &str| report[k]["new"].as_u64().unwrap();
    (n("articles"), n("comments"), n("captures"))
}

/// The sample split into its comment blocks: `(head, blocks, tail)` where
/// `head + SEP + blocks.join(SEP) + tail` is the page.
fn blocks(page: &str) -> (String, Vec<String>, String) {
    let (head, rest) = page.split_once("\n\n  • ").unwrap();
    let (body, tail) = rest.rsplit_once("\n\n\nMore in Pakistan").unwrap();
    let blocks = body.split(SEP).map(str::to_string).collect();
    (format!("{head}\n\n  • "), blocks, format!("\n\n\nMore in Pakistan{tail}"))
}

fn assemble(head: &str, blocks: &[String], tail: &str) -> String {
    format!("{head}{}{tail}", blocks.join(SEP))
}

fn block_of(blocks: &[String], author_line: &str) -> usize {
    blocks.iter().position(|b| b.starts_with(author_line)).unwrap_or_else(|| panic!("no block {author_line}"))
}

#[test]
fn the_sample_page_yields_its_facts() {
    let env = Env::new();
    let report = env.ok(&["ingest", "--json", &sample_path()]).json();
    assert_eq!(counts(&report), (1, 44, 1));
    let cs = comments(&env);
    assert_eq!(cs.len(), 44);
    assert_eq!(cs.iter().filter(|c| c["author"].is_null()).count(), 7);
    assert_eq!(cs[0]["author"], json!("ahmad"));
    assert_eq!(cs[0]["posted_at"], json!("2012-03-28T13:02:00+05:00"));
    assert_eq!(cs[43]["posted_at"], json!("2012-03-30T02:55:00+05:00"));
    assert_eq!(cs.iter().filter(|c| c["author"] == json!("Tony C.")).count(), 4);
    assert_eq!(cs.iter().filter(|c| c["author"] == json!("adeel759")).count(), 2);

    // The bullet-less 2:07PM comment replies to Shah's 1:33PM comment.
    let shah = cs.iter().find(|c| c["posted_at"] == json!("2012-03-28T13:33:00+05:00")).unwrap();
    assert_eq!(shah["author"], json!("Shah"));
    let reply = cs.iter().find(|c| c["posted_at"] == json!("2012-03-28T14:07:00+05:00")).unwrap();
    assert!(reply["author"].is_null());
    assert_eq!(reply["body"], json!("How pathetic this comment is"));
    let cap = &captures(&env)[0];
    let item =
        cap["articles"][0]["comments"].as_array().unwrap().iter().find(|i| i["id"] == reply["id"]).unwrap();
    assert_eq!(item["parent"], shah["id"]);
    assert_eq!(cap["declared_comments"], json!(44));
    assert_eq!(cap["format"], json!("tribune"));
    assert_eq!(cap["tz"], json!("+05:00"));

    // Multi-paragraph bodies keep their breaks; mentions stay text.
    let united = cs.iter().find(|c| c["author"] == json!("pakistan united")).unwrap();
    assert!(united["body"].as_str().unwrap().starts_with("adeel is right\n\nwhat pakistan army did\n\n"));
    let adeel = cs.iter().find(|c| c["author"] == json!("adeel759")).unwrap();
    assert!(adeel["body"].as_str().unwrap().starts_with("@Cautious. Bottom line"));
    assert!(cs.iter().all(|c| !c["body"].as_str().unwrap().contains("Recommend")));

    // The article: title, date, body as captured (the caption twice).
    let article = &json_lines(&env.ok(&["log", "--json", "--kind", "article"]).stdout)[0];
    assert_eq!(article["title"], json!("Senior US commanders discuss border cooperation with Kayani"));
    assert_eq!(article["published"], json!("2012-03-28"));
    assert_eq!(
        article["key"],
        json!("title:2012-03-28:senior us commanders discuss border cooperation with kayani")
    );
    let body = article["paragraphs"].as_array().unwrap();
    let joined: Vec<&str> = body.iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(article["body"], json!(joined.join("\n\n")), "body is the paragraphs as one string");
    assert_eq!(body[0], body[1], "the doubled caption is kept as captured");
    assert!(body.last().unwrap().as_str().unwrap().starts_with("It was the highest-level exchange"));
}

#[test]
fn the_same_file_again_appends_nothing() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let head = env.head();
    let report = env.ok(&["ingest", "--json", &sample_path()]).json();
    assert_eq!(counts(&report), (0, 0, 0));
    assert_eq!(env.head(), head);
}

#[test]
fn rendering_noise_is_one_new_capture_and_nothing_else() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let (head, blocks, tail) = blocks(&sample());
    // Recommend glued to every body's last word, one blank line instead of two.
    let glued: Vec<String> = blocks.iter().map(|b| format!("{}Recommend", b.trim_end())).collect();
    let noisy = format!("{head}{}{tail}", glued.join("\n\n  • "));
    let noisy = noisy.replace("\n\n\nMore in Pakistan", "\n\nMore in Pakistan");
    assert!(noisy.contains("plots…. sale sale saleRecommend\n\n  • Hafiz"));
    let crlf: String = noisy.lines().map(|l| format!("{l}  \r\n")).collect();
    let path = env.write("noisy.txt", crlf);
    let report = env.ok(&["ingest", "--json", &path]).json();
    assert_eq!(counts(&report), (0, 0, 1), "{report}");
    assert_eq!(report["comments"]["duplicate"], json!(44));
}

#[test]
fn a_later_scrape_adds_removes_and_edits() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let (head, mut blocks, tail) = blocks(&sample());
    // 1 removed (Aristo), 1 edited (UFF), 3 added at the end.
    blocks.remove(block_of(&blocks, "Aristo\n"));
    let uff = block_of(&blocks, "UFF\n");
    blocks[uff] = blocks[uff].replace("Do You?", "Do You? (edited)");
    for (i, who) in ["newcomer", "Tony C.", "ahmad"].iter().enumerate() {
        blocks.push(format!("{who}\n    Mar 30, 2012 - {}:15AM\n\n    new comment number {i}", 3 + i));
    }
    let page = assemble(&head, &blocks, &tail).replace("Reader Comments (44)", "Reader Comments (46)");
    let path = env.write("later.txt", page);
    let report = env.ok(&["ingest", "--json", &path]).json();
    assert_eq!(counts(&report), (0, 4, 1), "{report}");
    assert_eq!(report["comments"]["duplicate"], json!(42));
    let cs = comments(&env);
    let edited: Vec<&Value> = cs.iter().filter(|c| c["author"] == json!("UFF")).collect();
    assert_eq!(edited.len(), 2, "the edit is a new version; the old one stays");
}

#[test]
fn the_same_comments_in_another_order_are_not_new() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let (head, mut blocks, tail) = blocks(&sample());
    blocks.reverse();
    let path = env.write("reordered.txt", assemble(&head, &blocks, &tail));
    let report = env.ok(&["ingest", "--json", &path]).json();
    assert_eq!(counts(&report), (0, 0, 1), "{report}");
}

#[test]
fn a_truncated_capture_keeps_complete_comments_and_marks_the_cut() {
    let env = Env::new();
    let page = sample();
    let cut_at = page.find("I remember the initial negotiations").unwrap() + 40;
    let path = env.write("cut.txt", &page[..cut_at]);
    let run = env.ok(&["ingest", "--json", &path]);
    assert_eq!(counts(&run.json()), (1, 43, 1));
    assert!(run.stderr.contains(&format!("{path}: partial capture")), "{run}");
    assert!(run.stderr.contains("declared 44 comments, found 43"), "{run}");
    assert!(run.stderr.contains("possibly truncated"), "{run}");
    assert_eq!(run.json()["warnings"][0]["path"], json!(path));
    let cap = &captures(&env)[0];
    let items = cap["articles"][0]["comments"].as_array().unwrap();
    assert_eq!(items.last().unwrap()["possibly_truncated"], json!(true));
    assert!(items[..items.len() - 1].iter().all(|i| i["possibly_truncated"] == json!(false)));
    let last = comments(&env).pop().unwrap();
    let expected_end = page[..cut_at].rsplit('\n').next().unwrap().trim();
    assert!(last["body"].as_str().unwrap().ends_with(expected_end), "{last}");

    // Cut inside a comment's header line: that comment is skipped, not misread.
    let env = Env::new();
    let cut_at = page.find("  • Mar 30, 2012 - 2:55AM").unwrap() + 12;
    let path = env.write("cut-header.txt", &page[..cut_at]);
    let run = env.ok(&["ingest", "--json", &path]);
    assert_eq!(counts(&run.json()), (1, 43, 1), "{run}");
    assert!(comments(&env).iter().all(|c| c["author"] != json!("Mar 30, 2")));
}

#[test]
fn a_declared_count_above_the_comments_found_warns() {
    let env = Env::new();
    let path = env.write("paged.txt", sample().replace("Reader Comments (44)", "Reader Comments (120)"));
    let run = env.ok(&["ingest", "--json", &path]);
    assert_eq!(counts(&run.json()), (1, 44, 1));
    assert!(run.stderr.contains(&format!("{path}: partial capture")), "{run}");
    assert!(run.stderr.contains("declared 120 comments, found 44"), "{run}");
    assert_eq!(captures(&env)[0]["declared_comments"], json!(120));
}

#[test]
fn a_slideshow_page_without_title_or_date_still_ingests() {
    let env = Env::new();
    let page = "Protesters gather outside the parliament in Islamabad. PHOTO: AFP\n\nReader Comments (2)\n\n  • ABDUL - LAHORE\n    Mar 28, 2012 - 1:02PM\n\n    Good pictures.Recommend\n\n  • Mar 28, 2012 - 1:05PM\n\n    بہت اچھا @ABDUL see https://tribune.com.pk/x “quoted”…\n\n\nLeave Your Reply Below\n";
    let path = env.write("slides.txt", page);
    let run = env.ok(&["ingest", "--json", &path]);
    assert_eq!(counts(&run.json()), (1, 2, 1), "{run}");
    let cs = comments(&env);
    assert_eq!(cs[0]["author"], json!("ABDUL - LAHORE"));
    assert_eq!(cs[0]["body"], json!("Good pictures."));
    assert!(cs[1]["author"].is_null());
    assert_eq!(cs[1]["body"], json!("بہت اچھا @ABDUL see https://tribune.com.pk/x “quoted”…"));
    let article = &json_lines(&env.ok(&["log", "--json", "--kind", "article"]).stdout)[0];
    assert!(article["title"].is_null());
    assert_eq!(
        article["key"],
        json!("title:undated:protesters gather outside the parliament in islamabad. photo: afp")
    );
    assert!(!run.stderr.contains("possibly truncated"), "{run}");
}

#[test]
fn odd_author_names_are_kept_as_shown() {
    let env = Env::new();
    let names = ["Ali - Karachi", "ANONYMOUS COWARD", "MK", "Anonymous", "lowercase name"];
    let mut page = String::from("A title\n\nPublished: March 28, 2012\nBody.\n\nReader Comments (5)\n\n");
    for (i, n) in names.iter().enumerate() {
        page.push_str(&format!("  • {n}\n    Mar 28, 2012 - {}:00PM\n\n    comment {i}\n\n\n", i + 1));
    }
    page.push_str("More in Pakistan\n");
    let path = env.write("odd.txt", page);
    env.ok(&["ingest", &path]);
    let authors: Vec<Value> = comments(&env).iter().map(|c| c["author"].clone()).collect();
    assert_eq!(authors, names.iter().map(|n| json!(n)).collect::<Vec<_>>());
}

#[test]
fn tz_and_source_url_options() {
    let env = Env::new();
    let report = env
        .ok(&[
            "ingest",
            "--json",
            "--tz",
            "+00:00",
            "--source-url",
            "https://Tribune.com.pk/story/356789/x/",
            "--fetched-at",
            "2012-03-30T08:00:00+05:00",
            &sample_path(),
        ])
        .json();
    assert_eq!(counts(&report), (1, 44, 1));
    let cs = comments(&env);
    assert_eq!(cs[0]["posted_at"], json!("2012-03-28T13:02:00+00:00"));
    assert_eq!(cs[0]["article"], json!("https://tribune.com.pk/story/356789/x/"));
    let cap = &captures(&env)[0];
    assert_eq!(cap["source_url"], json!("https://tribune.com.pk/story/356789/x/"));
    assert_eq!(cap["source"], json!("https://tribune.com.pk/story/356789/x/"));
    assert_eq!(cap["fetched_at"], json!("2012-03-30T08:00:00+05:00"));
    assert_eq!(cap["tz"], json!("+00:00"));
}

#[test]
fn bad_pages_are_rejected_and_leave_the_archive_unchanged() {
    let env = Env::new();
    env.ok(&["ingest", &sample_path()]);
    let head = env.head();
    let mut bytes = sample().into_bytes();
    let at = 5000;
    bytes[at] = 0xff;
    let path = env.write("bad-utf8.txt", &bytes);
    let run = env.run(&["ingest", &path]).expect_code(1);
    assert!(run.stderr.contains(&format!("{path}: byte {at}: invalid UTF-8")), "{run}");
    let mut binary = sample().into_bytes();
    binary[10] = 0;
    let path = env.write("binary.txt", &binary);
    env.run(&["ingest", &path]).expect_code(1);
    let path = env.write("empty.txt", "");
    env.run(&["ingest", &path]).expect_code(1);
    let path = env.write(
        "nokey.txt",
        "Reader Comments (1)\n\n  • a\n    Mar 28, 2012 - 1:02PM\n\n    x\n\n\nMore in Pakistan\n",
    );
    let run = env.run(&["ingest", &path]).expect_code(1);
    assert!(run.stderr.contains("pass --source-url"), "{run}");
    env.ok(&["ingest", "--source-url", "https://example.com/p", &path]);
    assert_ne!(env.head(), head);
}

/// A small tribune page declaring `count` (as the page prints it) with
/// `comments` (author, time, body), and `stray` (a line, and the index of
/// the comment it comes before) among them.
fn small_page(count: &str, comments: &[(&str, &str, &str)], stray: Option<(&str, usize)>) -> String {
    let mut page = format!("Small page\n\nPublished: March 28, 2012\nBody.\n\nReader Comments ({count})\n\n");
    for (i, (author, time, body)) in comments.iter().enumerate() {
        if let Some((line, _)) = stray.filter(|(_, at)| *at == i) {
            page.push_str(&format!("{line}\n\n"));
        }
        page.push_str(&format!("  • {author}\n    Mar 28, 2012 - {time}\n\n    {body}\n\n\n"));
    }
    page + "More in Pakistan\n"
}

/// A count grouped by commas (`Reader Comments (1,234)`) is the count line,
/// not a paragraph of the article: a re-scrape where only the count moved
/// is no new article version; a count too large to hold is still the count
/// line, with a warning.
#[test]
fn a_count_with_thousands_separators_is_the_count() {
    let env = Env::new();
    let one = [("ahmad", "1:02PM", "first")];
    let first = env.write("s1.txt", small_page("1,233", &one, None));
    let second = env.write("s2.txt", small_page("1,234", &one, None));
    env.ok(&["ingest", "--fetched-at", "2012-03-28T10:00:00Z", &first]);
    let run = env.ok(&["ingest", "--json", "--fetched-at", "2012-03-28T11:00:00Z", &second]).json();
    assert_eq!(run["articles"]["new"], json!(0), "{run}");
    let caps = captures(&env);
    assert_eq!(caps[0]["declared_comments"], json!(1233));
    assert_eq!(caps[1]["declared_comments"], json!(1234));
    assert_eq!(caps[1]["gaps"], json!(["count-mismatch"]));
    let thread = env.ok(&["thread", "Small page", "--json"]).json();
    assert_eq!(thread["article"]["body"], json!("Body."), "{thread}");
    let huge = env.write("s3.txt", small_page("99999999999999999999999", &one, None));
    let run = env.ok(&["ingest", "--json", "--fetched-at", "2012-03-28T12:00:00Z", &huge]).json();
    assert_eq!(run["articles"]["new"], json!(0), "{run}");
    let warned = |run: &Value, what: &str| {
        run["warnings"].as_array().unwrap().iter().any(|w| w["warning"].as_str().unwrap().contains(what))
    };
    assert!(warned(&run, "line 6: the declared comment count is too large to read"), "{run}");
    assert_eq!(captures(&env)[2]["gaps"], json!(["no-declared-count"]));
    for count in ["1,23", "12,3456", ",123", "1,,234", "+5"] {
        let page = env.write("odd.txt", small_page(count, &one, None));
        let run = env.ok(&["ingest", "--dry-run", "--json", &page]).json();
        assert_eq!(run["articles"]["new"], json!(1), "{count}: a paragraph of the body, as before: {run}");
    }
}

/// The first unindented line after the comments ends them, whatever
/// follows. After the layout's end marker (`More in ...`), comment headers
/// (a widget of other stories' comments) are not read, and a warning says
/// they are there (read, a widget's items became comments of the article).
/// Another line followed by indented lines (a stray `Advertisement` among
/// the comments) makes the capture partial (gap `stray-line`), its last
/// comment possibly cut off: the comments after it are not read, nor shown
/// as removed, though the count the page declares (lagging behind) matches
/// those before it (parser 4 called them removed).
#[test]
fn comment_headers_after_the_end_are_not_read_and_are_warned_about() {
    let env = Env::new();
    let (ahmad, bob, carol) =
        (("ahmad", "1:02PM", "first"), ("bob", "1:05PM", "second"), ("carol", "1:09PM", "third"));
    let widget = small_page("2", &[ahmad, bob], None)
        + "\nRecent Comments\n\n  • dan\n    Mar 20, 2012 - 2:00PM\n\n    elsewhere\n";
    let run = env.ok(&["ingest", "--json", "--dry-run", &env.write("widget.txt", widget)]).json();
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains("line 24: a comment header after the end of the comments (line 20) is not read"),
        "{run}"
    );
    assert!(!warnings.contains("partial capture"), "{run}");
    assert_eq!(run["comments"]["new"], json!(2), "{run}");
    // The whole section seen first, then a scrape with a stray line before
    // carol's comment and a count that lags.
    let whole = env.write("whole.txt", small_page("3", &[ahmad, bob, carol], None));
    env.ok(&["ingest", "--fetched-at", "2012-03-28T10:00:00Z", &whole]);
    let stray = env.write("stray.txt", small_page("2", &[ahmad, bob, carol], Some(("Advertisement", 2))));
    let run = env.ok(&["ingest", "--json", "--fetched-at", "2012-03-28T11:00:00Z", &stray]).json();
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains(
            "line 20: \\\"Advertisement\\\" ended the comments, but it is not the layout's end marker"
        ),
        "{run}"
    );
    assert!(warnings.contains("partial capture, so it marks no comment removed"), "{run}");
    assert_eq!(run["comments"]["new"], json!(0), "{run}");
    let caps = captures(&env);
    assert_eq!(caps[0]["gaps"], json!([]));
    assert_eq!(caps[1]["gaps"], json!(["stray-line"]));
    assert_eq!(caps[1]["complete"], json!(false));
    let cut: Vec<&Value> = caps[1]["articles"][0]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["possibly_truncated"])
        .collect();
    assert_eq!(cut, [&json!(false), &json!(true)], "bob's comment may go on past the stray line");
    let thread = env.ok(&["thread", "Small page", "--json"]).json();
    let statuses: Vec<&Value> = thread["comments"].as_array().unwrap().iter().map(|c| &c["status"]).collect();
    assert_eq!(statuses, [&json!("present"); 3], "carol's comment is not removed: {thread}");
    // Whatever follows the stray line: a reply without a bullet, a header
    // with a blank line in it, a header without a time, a cut header, or
    // the rest of a body.
    let reply = "    Mar 28, 2012 - 2:07PM\n\n    a reply\n\n\n";
    let blank = "  • carol\n\n    Mar 28, 2012 - 1:09PM\n\n    third\n\n\n";
    let timeless = "  • carol\n    third\n\n\n";
    let cut = "  • carol\n    Mar 28, 2012 - 1:0";
    let body = "    more of bob's comment\n\n\n";
    for after in [reply, blank, timeless, cut, body] {
        let page = small_page("2", &[ahmad, bob], None)
            .replace("More in Pakistan\n", &format!("Advertisement\n\n{after}"));
        let page = if after == cut { page } else { page + "More in Pakistan\n" };
        let run = env.ok(&["ingest", "--json", "--dry-run", &env.write("after.txt", page)]).json();
        assert!(
            run["warnings"].to_string().contains("\\\"Advertisement\\\" ended the comments"),
            "{after:?}: {run}"
        );
    }
    // The layout's own end marker, and nothing after it: no warning, and a
    // capture as complete as before; so with an unindented line after the
    // last comment and nothing indented after it before the end marker
    // (indented navigation after the marker is not the comment section).
    for tail in ["", "Advertisement\n", "Advertisement\n\nMore in Pakistan\n\n    Home | World\n"] {
        let plain = small_page("2", &[ahmad, bob], None)
            .replace("More in Pakistan\n", &format!("{tail}More in Pakistan\n"));
        let run = env.ok(&["ingest", "--json", "--dry-run", &env.write("plain.txt", plain)]).json();
        let warnings = run["warnings"].to_string();
        assert!(!warnings.contains("ended the comments") && !warnings.contains("partial"), "{tail:?}: {run}");
    }
}

/// `--source-url` makes every input of the run one article: a page whose
/// title is another's is recorded as a revision of it, which two articles'
/// pages given one URL by mistake are not; said in a warning naming both.
/// Two captures of one page under it draw none.
#[test]
fn one_source_url_for_pages_of_two_titles_is_warned() {
    let env = Env::new();
    let page = |title: &str, author: &str| {
        small_page("1", &[(author, "1:02PM", "hello")], None).replacen("Small page", title, 1)
    };
    let budget = env.write("budget.txt", page("Budget speech", "amy"));
    let budget_later = env.write("budget-later.txt", page("Budget speech", "cyd"));
    let cricket = env.write("cricket.txt", page("Cricket final", "bob"));
    let url = "https://tribune.com.pk/story/1/";
    let run = env.ok(&["ingest", "--json", "--dry-run", "--source-url", url, &budget, &budget_later]).json();
    assert!(!run["warnings"].to_string().contains("--source-url"), "{run}");
    let run = env.ok(&["ingest", "--json", "--source-url", url, &budget, &cricket]).json();
    let warnings = run["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{run}");
    assert_eq!(warnings[0]["path"], json!(cricket));
    let message = warnings[0]["warning"].as_str().unwrap();
    assert!(
        message.contains(&format!("title (\"Cricket final\") is not that of {budget} (\"Budget speech\")")),
        "{message}"
    );
    // JSON Lines records name their own articles: no warning.
    let jsonl = |name: &str, n: u32| {
        env.write(
            name,
            format!("{{\"type\":\"comment\",\"article\":\"https://example.com/{n}\",\"body\":\"c{n}\"}}\n"),
        )
    };
    let (one, two) = (jsonl("one.jsonl", 1), jsonl("two.jsonl", 2));
    let run = env.ok(&["ingest", "--json", "--source-url", url, &one, &two]).json();
    assert!(!run["warnings"].to_string().contains("--source-url"), "{run}");
}
