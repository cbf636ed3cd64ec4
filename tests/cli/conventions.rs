//! Command-line conventions: shell completions that load, manual pages for
//! every command, and docs/cli.md naming every option clap knows.

use crate::support::Env;
use clap::CommandFactory;
use std::path::Path;

#[test]
fn the_bash_completion_script_loads_and_the_others_are_made() {
    let env = Env::new();
    let script = env.ok(&["completions", "bash"]).stdout;
    let file = env.write("cairn.bash", &script);
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("source '{file}' && complete -p cairn")])
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("_cairn cairn"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = env.ok(&["completions", shell]).stdout;
        assert!(s.contains("search") && s.contains("verify-proof"), "{shell} completes every command");
    }
    env.run(&["completions", "tcsh"]).expect_code(2);
    // A reader that stops early (`| head -1`) is not an error, nor a panic.
    let mut child = env
        .command(&["completions", "zsh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn man_writes_a_page_for_every_command() {
    let env = Env::new();
    let dir = env.dir.path().join("man");
    env.ok(&["man", "--out", &dir.display().to_string()]);
    let cmd = cairn::cli::Cli::command();
    let mut names = vec!["cairn".to_string()];
    for sub in cmd.get_subcommands() {
        names.push(format!("cairn-{}", sub.get_name()));
        for subsub in sub.get_subcommands() {
            names.push(format!("cairn-{}-{}", sub.get_name(), subsub.get_name()));
        }
    }
    for name in names {
        let page = std::fs::read_to_string(dir.join(format!("{name}.1"))).unwrap_or_default();
        assert!(page.contains(".TH"), "{name}.1 is a roff page");
        assert!(page.contains("\\-\\-archive"), "{name}.1 lists the global options");
    }
    let main_page = env.ok(&["man"]).stdout;
    assert!(main_page.contains(".TH cairn") && main_page.contains("verify\\-proof"), "{main_page}");
}

/// The sections of docs/cli.md whose heading names `cairn WORDS`.
fn sections<'a>(doc: &'a str, words: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let parts: Vec<&str> = doc.split("\n#").collect();
    for part in parts {
        let heading = part.lines().next().unwrap_or("");
        let named = heading.split(" / ").any(|h| {
            let h = h.trim_start_matches('#').trim();
            h.strip_prefix(&format!("cairn {words}"))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' ') || rest.starts_with('['))
        });
        if named {
            out.push(part);
        }
    }
    out
}

#[test]
fn docs_cli_md_names_every_option_clap_knows() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let cmd = cairn::cli::Cli::command();
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_long().map(String::from))
        .collect();
    let mut missing = Vec::new();
    for g in &globals {
        if !doc.contains(&format!("`--{g}")) && !["version", "help", "verbose", "quiet"].contains(&g.as_str())
        {
            missing.push(format!("global --{g}"));
        }
    }
    let mut check = |words: String, c: &clap::Command| {
        let found = sections(&doc, &words);
        if found.is_empty() {
            missing.push(format!("a section for `cairn {words}`"));
            return;
        }
        for arg in c.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if globals.iter().any(|g| g == long) || long == "help" {
                continue;
            }
            if !found.iter().any(|s| s.contains(&format!("--{long}"))) {
                missing.push(format!("`cairn {words} --{long}`"));
            }
        }
    };
    for sub in cmd.get_subcommands() {
        check(sub.get_name().to_string(), sub);
        for subsub in sub.get_subcommands() {
            check(format!("{} {}", sub.get_name(), subsub.get_name()), subsub);
        }
    }
    assert!(missing.is_empty(), "docs/cli.md does not document: {missing:#?}");
}

#[test]
fn a_first_run_says_what_it_did_and_where_to_look() {
    let env = Env::new();
    let fixture = crate::support::jsonl_fixture();
    // A read on a missing archive names how to choose another.
    let missing = env.run(&["log"]).expect_code(2);
    assert!(
        missing.stderr.contains("--archive PATH") && missing.stderr.contains("CAIRN_ARCHIVE"),
        "{missing}"
    );
    assert!(!env.archive.exists(), "a read creates nothing");
    // The first ingest says it created the archive; the next does not.
    let first = env.ok(&["ingest", &fixture]);
    assert!(first.stderr.contains(&format!("created archive {}", env.archive.display())), "{first}");
    let again = env.ok(&["ingest", &fixture]);
    assert!(!again.stderr.contains("created archive"), "{again}");
    // A dry run into an empty directory creates nothing.
    let empty = env.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let dry = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["--archive", &empty.display().to_string(), "ingest", "--dry-run", &fixture])
        .env_remove("CAIRN_ARCHIVE")
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "a dry run writes nothing");
    assert!(!String::from_utf8_lossy(&dry.stderr).contains("created archive"));
    // Plurals.
    let articles = env.ok(&["articles"]).stdout;
    assert!(articles.contains(" 1 capture ") && !articles.contains("1 captures"), "{articles}");
}

#[test]
fn lookups_take_url_variants_and_suggest_what_was_meant() {
    let env = Env::new();
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    // The fixture's article is https://tribune.com.pk/story/356789/…/ ;
    // http, no trailing slash, www. and a tracking parameter all find it.
    for variant in [
        "http://tribune.com.pk/story/356789/senior-us-commanders-discuss-border-cooperation-with-kayani",
        "https://www.tribune.com.pk/story/356789/senior-us-commanders-discuss-border-cooperation-with-kayani/?utm_source=x",
    ] {
        let t = env.ok(&["thread", variant, "--json"]).json();
        assert_eq!(t["comments"].as_array().unwrap().len(), 7, "{variant}");
    }
    let none = env.run(&["thread", "kayani border meeting tomorrow xyz"]).expect_code(2);
    assert!(none.stderr.contains("did you mean \"Senior US commanders"), "{none}");
    let author = env.run(&["author", "ahmd"]).expect_code(2);
    assert!(author.stderr.contains("did you mean \"ahmad\""), "{author}");
}

#[test]
fn log_and_author_take_time_windows_limits_and_reverse() {
    let env = Env::new();
    env.ok(&["ingest", &crate::support::jsonl_fixture()]);
    let seqs = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["log", "--json"];
        all.extend_from_slice(args);
        env.ok(&all)
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
            .collect()
    };
    let forward = seqs(&[]);
    let mut backward = seqs(&["--reverse"]);
    backward.reverse();
    assert_eq!(forward, backward);
    assert_eq!(
        seqs(&["--reverse", "--limit", "2"]),
        vec![forward[forward.len() - 1], forward[forward.len() - 2]]
    );
    assert_eq!(seqs(&["--reverse", "--from", "8"]).last(), Some(&8));
    // Everything was recorded at SOURCE_DATE_EPOCH, 2023-11-14T22:13:20Z.
    assert_eq!(seqs(&["--since", "2023-11-15"]).len(), 0);
    assert_eq!(seqs(&["--until", "2023-11-14"]), forward);
    let timeline = |args: &[&str]| {
        let mut all = vec!["author", "ahmad", "--json"];
        all.extend_from_slice(args);
        env.ok(&all).json()["comments"].as_array().unwrap().len()
    };
    let n = timeline(&[]);
    assert!(n >= 1);
    assert_eq!(timeline(&["--limit", "0"]), 0);
    assert_eq!(timeline(&["--since", "2012-03-29"]) + timeline(&["--until", "2012-03-28"]), n);
}

#[test]
fn file_names_with_control_characters_are_shown_escaped() {
    let env = Env::new();
    let bad = env.write("odd\nname\u{1b}[31m.txt", "this is not a page cairn knows\n");
    let run = env.run(&["ingest", &bad]).expect_code(1);
    assert!(run.stderr.contains("odd\\nname\\u{1b}[31m.txt"), "{run}");
    assert!(!run.stderr.contains('\u{1b}'), "no raw escape reaches the terminal");
    // Arguments echoed in errors (clap's, a regex's, a path's) likewise.
    let e = "\u{1b}[31mX\u{9b}\u{7}";
    let archive = env.dir.path().join(format!("no{e}where")).display().to_string();
    for args in [
        vec!["table".to_string(), e.to_string()],
        vec![e.to_string()],
        vec!["--wait".to_string(), e.to_string(), "head".to_string()],
        vec!["search".to_string(), format!("[{e}")],
        vec!["--archive".to_string(), archive.clone(), "articles".to_string()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = env.run(&args).expect_code(2);
        assert!(!run.stderr.chars().any(|c| c.is_control() && c != '\n'), "{args:?}: {:?}", run.stderr);
        assert!(!run.stderr.is_empty(), "{args:?}");
    }
}

/// Scraped text with terminal escapes in it (a colour, a window title,
/// a bell, a NUL, a C1 control): text output shows them, never sends them;
/// JSON output holds the exact strings; `cat` gives the bytes as stored.
#[test]
fn control_characters_in_scraped_text_are_shown_not_sent_to_the_terminal() {
    let env = Env::new();
    let doc = concat!(
        r#"{"type":"article","id":"esc","title":"Esc \u001b[31mRED\u001b]0;pwned\u0007","url":"https://x.example/esc"}"#,
        "\n",
        r#"{"type":"comment","id":"c","article":"esc","author":"ev\u001b[2Jil","body":"hi\u0000 there \u009b6n drone"}"#,
        "\n"
    );
    let file = env.write("ansi.jsonl", doc);
    env.ok(&["ingest", &file]);
    let url = "https://x.example/esc";
    let log = env.ok(&["log", "--json"]).stdout;
    let comment = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "comment")
        .unwrap();
    assert_eq!(comment["body"], "hi\u{0} there \u{9b}6n drone");
    assert_eq!(comment["author"], "ev\u{1b}[2Jil");
    let id = comment["id"].as_str().unwrap()[..12].to_string();
    for args in [
        vec!["thread", url],
        vec!["articles"],
        vec!["log"],
        vec!["authors"],
        vec!["author", "ev\u{1b}[2Jil"],
        vec!["search", "drone"],
        vec!["history", &id],
        vec!["show", &id],
    ] {
        let run = env.ok(&args);
        assert!(
            !run.stdout.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{args:?}: {:?}",
            run.stdout
        );
        assert!(run.stdout.contains("\\u001b"), "{args:?}: {}", run.stdout);
    }
    let thread = env.ok(&["thread", url]).stdout;
    assert!(thread.contains("hi\\u0000 there \\u009b6n drone"), "{thread}");
}

#[test]
fn ingest_and_reparse_report_counts_in_one_shape() {
    let env = Env::new();
    let ingest = env.ok(&["ingest", "--json", &crate::support::jsonl_fixture()]).json();
    let reparse = env.ok(&["reparse", "--dry-run", "--json"]).json();
    for kind in ["articles", "comments", "captures"] {
        for report in [&ingest, &reparse] {
            let keys: Vec<&String> = report[kind].as_object().unwrap().keys().collect();
            assert_eq!(keys, ["new", "duplicate"], "{kind} in {report}");
        }
    }
    assert!(reparse.get("events").is_none(), "no nesting under events");
}

#[test]
fn output_that_cannot_be_written_anywhere_ends_with_exit_2_not_a_panic() {
    // stdout and stderr both on a full device: the error cannot be told,
    // the exit status still says it (a panic, 101, said nothing true).
    let env = Env::new();
    let page = crate::support::fixture("tribune-2012-03-28-us-generals-kayani.txt");
    env.ok(&["ingest", &page.display().to_string()]);
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full");
    let (Ok(out), Ok(err)) = (full(), full()) else {
        println!("skipped: no /dev/full on this machine");
        return;
    };
    let status = env.command(&["authors"]).stdout(out).stderr(err).status().unwrap();
    assert_eq!(status.code(), Some(2), "{status:?}");
}
