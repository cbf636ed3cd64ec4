//! `cairn site`: the pages, the raw captures, incremental runs, and the
//! sample thread rendered by headless Chromium (when installed: .ci/run
//! installs Debian's `chromium`), its DOM checked.

use crate::support::{fixture, Env};
use crate::views::{two_captures, SAMPLE};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A headless Chromium, or `None`, saying the browser test is skipped.
fn chromium() -> Option<String> {
    let candidates = match std::env::var("CAIRN_TEST_CHROMIUM") {
        Ok(c) => vec![c],
        Err(_) => vec!["chromium".into(), "chromium-browser".into(), "google-chrome".into()],
    };
    for c in &candidates {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(c.clone());
        }
    }
    eprintln!(
        "SKIPPED the browser test: no Chromium among {candidates:?} (.ci/run installs Debian's chromium)"
    );
    None
}

fn headless(browser: &str, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1100,1400"])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

/// The ids of the `<li>` elements enclosing the one whose id is `id`, as the
/// browser serialized the DOM.
fn enclosing(dom: &str, id: &str) -> Option<Vec<String>> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find("<li").into_iter().chain(rest.find("</li>")).min() {
        if rest[at..].starts_with("</li>") {
            stack.pop();
            rest = &rest[at + 5..];
            continue;
        }
        let tag_end = rest[at..].find('>').map(|e| at + e)?;
        let tag = &rest[at..tag_end];
        let this = tag.split("id=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_string();
        if this == id {
            return Some(stack);
        }
        stack.push(this);
        rest = &rest[tag_end..];
    }
    None
}

fn site_json(env: &Env, out: &Path) -> Value {
    env.ok(&["site", &out.display().to_string(), "--json"]).json()
}

#[test]
fn the_site_shows_the_thread_and_rewrites_only_what_changed() {
    let env = Env::new();
    two_captures(&env);
    let out = env.dir.path().join("site");
    let first = site_json(&env, &out);
    assert_eq!(first["unchanged"], json!(0));
    assert_eq!(first["raw"], json!(2));
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let comments = t["comments"].as_array().unwrap();
    let article: Vec<PathBuf> =
        std::fs::read_dir(out.join("a")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(article.len(), 1);
    let html = std::fs::read_to_string(&article[0]).unwrap();
    assert_eq!(html.matches("<li class=\"comment ").count(), 44);
    assert!(html.contains("removed since seq"), "the removed comment is marked");
    assert!(
        html.contains("<details class=\"versions\"><summary>2 versions</summary>"),
        "the edit's versions"
    );
    assert!(html.contains("<svg class=\"chart\""), "the charts");
    assert!(!html.contains("<script"), "no script");
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("Senior US commanders discuss border cooperation with Kayani"));

    // The raw captures are the ingested bytes.
    let ids: Vec<String> = env
        .ok(&["log", "--json", "--kind", "capture"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    let raw_file = out.join("c").join(format!("{}.raw.txt", ids[0]));
    let raw = std::fs::read(&raw_file).unwrap();
    assert_eq!(raw, std::fs::read(fixture(SAMPLE)).unwrap());
    assert!(std::fs::read_to_string(out.join("c").join(format!("{}.html", ids[1])))
        .unwrap()
        .contains(".raw.txt\">blob"));

    // Again: only the index is written.
    let again = site_json(&env, &out);
    assert_eq!((again["written"].clone(), again["raw"].clone()), (json!(1), json!(0)));
    // A raw file cut short (a crash, an edit) is written again.
    std::fs::write(&raw_file, &raw[..100]).unwrap();
    assert_eq!(site_json(&env, &out)["raw"], json!(1));
    assert_eq!(std::fs::read(&raw_file).unwrap(), raw);
    assert_eq!(again["unchanged"], json!(first["written"].as_u64().unwrap() - 1));
    // A new capture of the article: its page is written again.
    let third = env.write("third.txt", crate::views::rescrape().replace("A good start.", "A good start!"));
    env.ok(&["ingest", &third]);
    let changed = site_json(&env, &out);
    assert!(changed["written"].as_u64().unwrap() >= 2, "{changed}");
    assert!(std::fs::read_to_string(&article[0]).unwrap().contains("3 captures"));

    // In a browser.
    let Some(browser) = chromium() else { return };
    let dom = headless(&browser, &["--dump-dom"], &article[0]);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert_eq!(dom.matches("<li class=\"comment ").count(), 44, "44 comments in the DOM");
    let id_of = |posted: &str| {
        let c = comments.iter().find(|c| c["posted_at"] == json!(posted)).unwrap();
        format!("c-{}", &c["id"].as_str().unwrap()[..12])
    };
    let (shah, reply) = (id_of("2012-03-28T13:33:00+05:00"), id_of("2012-03-28T14:07:00+05:00"));
    let around = enclosing(&dom, &reply).expect("the reply is in the DOM");
    assert_eq!(around.last(), Some(&shah), "the 2:07PM reply is nested under Shah's comment");
    let removed = comments.iter().find(|c| c["status"] == json!("removed")).unwrap();
    let removed_li = format!("id=\"c-{}\"", &removed["id"].as_str().unwrap()[..12]);
    let at = dom.find(&removed_li).expect("the removed comment is kept");
    let tag_start = dom[..at].rfind("<li").unwrap();
    assert!(dom[tag_start..at].contains("removed"), "marked removed: {}", &dom[tag_start..at + 60]);
    assert!(dom[at..].contains("What will come after GERONIMO????"));

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("site-thread.png");
    let _ = std::fs::remove_file(&shot);
    let run = headless(&browser, &[&format!("--screenshot={}", shot.display())], &article[0]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of the page");
}

#[test]
fn the_site_is_never_written_inside_the_archive() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let inside = env.archive.join("pages").join("site");
    let run = env.run(&["site", &inside.display().to_string()]).expect_code(2);
    assert!(run.stderr.contains("inside the archive"), "{run}");
    assert!(!env.archive.join("pages").exists(), "nothing is created inside the archive");
}

/// A file where the site's directory should go is named as such (it said
/// only "File exists (os error 17)") and left alone.
#[test]
fn a_site_into_a_file_is_refused_naming_it() {
    let env = Env::new();
    env.ok(&["ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    let file = env.write("not-a-dir", "mine");
    let run = env.run(&["site", &file]).expect_code(2);
    assert!(run.stderr.contains("is a file, not a directory"), "{run}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}

/// A JSON Lines page where each commenter answers the one before by
/// `@mention`: a chain of replies `n` deep.
fn mention_chain(env: &Env, n: usize) -> String {
    let mut s = String::from("{\"type\":\"article\",\"url\":\"https://ex.com/chain\",\"title\":\"Chain\"}\n");
    for i in 0..n {
        let body = if i == 0 { "start".to_string() } else { format!("@user{} I agree", i - 1) };
        s.push_str(&format!(
            "{{\"type\":\"comment\",\"author\":\"user{i}\",\"posted_at\":\"2024-01-01T09:00:00Z\",\"body\":\"{body}\"}}\n"
        ));
    }
    env.write("chain.jsonl", s)
}

/// A chain of replies hundreds deep: `thread` indents it no deeper than
/// 16 levels (its text grew with the square of the chain), naming what the
/// deeper ones reply to, and the site nests lists no deeper either
/// (browsers stop nesting elements a few hundred deep and put the rest
/// elsewhere); `--json` keeps every depth.
#[test]
fn a_deep_chain_of_replies_is_indented_and_nested_to_a_bound() {
    let env = Env::new();
    let chain = mention_chain(&env, 300);
    env.ok(&["ingest", &chain]);
    let text = env.ok(&["thread", "chain"]).stdout;
    let widest = text.lines().map(|l| l.len() - l.trim_start().len()).max().unwrap();
    assert_eq!(widest, 16 * 4 + 2, "indentation stops at 16 levels");
    assert!(text.contains("↳ (depth 299, reply to "), "{}", &text[text.len() - 400..]);
    assert!(text.len() < 300 * 300, "{} bytes", text.len());
    let json = env.ok(&["thread", "chain", "--json"]).json();
    let depths: Vec<u64> =
        json["comments"].as_array().unwrap().iter().map(|c| c["depth"].as_u64().unwrap()).collect();
    assert_eq!(depths.iter().max(), Some(&299));

    let out = env.dir.path().join("site");
    env.ok(&["site", &out.display().to_string()]);
    let page = std::fs::read_dir(out.join("a")).unwrap().next().unwrap().unwrap().path();
    let html = std::fs::read_to_string(page).unwrap();
    let (mut depth, mut deepest) = (0i32, 0i32);
    for piece in html.split('<') {
        if piece.starts_with("ol ") || piece.starts_with("ol>") {
            depth += 1;
            deepest = deepest.max(depth);
        } else if piece.starts_with("/ol>") {
            depth -= 1;
        }
    }
    assert_eq!(deepest, 1 + 16, "the thread's list, and reply lists 16 deep at most");
    assert!(html.contains("depth 299, reply to <a href=\"#c-"), "the deepest names what it replies to");
    assert_eq!(html.matches("<li class=\"comment").count(), 300);
    let opened = html.matches("<li ").count() + html.matches("<li>").count();
    assert_eq!(opened, html.matches("</li>").count(), "every item closed");
}

/// A site of a past point says so on every page (only the terminal did),
/// and a later run at the present writes the pages again without it.
#[test]
fn a_site_of_a_past_point_says_so_on_every_page() {
    let env = Env::new();
    let (first, _) = two_captures(&env);
    let out = env.dir.path().join("site");
    env.ok(&["site", &out.display().to_string(), "--at", &first.to_string()]);
    let pages: Vec<PathBuf> = crate::support::walk(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    assert!(pages.len() > 1, "{pages:?}");
    for page in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        assert!(
            html.contains(&format!("<p class=\"past\">Not the archive's present: views as of seq {first}")),
            "{}",
            page.display()
        );
    }
    env.ok(&["site", &out.display().to_string()]);
    for page in crate::support::walk(&out).into_iter().filter(|p| p.extension().is_some_and(|e| e == "html"))
    {
        assert!(!std::fs::read_to_string(&page).unwrap().contains("class=\"past\""), "{}", page.display());
    }
}

/// A link in place of one of the site's directories is refused: pages
/// were written, and old ones removed, wherever it led (into the archive).
#[test]
fn a_link_in_place_of_a_site_directory_is_refused() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let out = env.dir.path().join("site");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(env.archive.join("views"), out.join("u")).unwrap();
    let before = crate::support::walk(&env.archive.join("views"));
    let run = env.run(&["site", &out.display().to_string()]).expect_code(2);
    assert!(run.stderr.contains("is a symbolic link"), "{run}");
    assert_eq!(crate::support::walk(&env.archive.join("views")), before, "nothing written through it");
}
