//! Progress bars: on a terminal every long pass shows one (with what it
//! does, entries done of all, and the time left); on a pipe, never. The
//! terminal is a pseudo-terminal from util-linux `script`; without it the
//! test is skipped, saying so.

use crate::generated::gen_tribune::{generate, Params};
use crate::support::Env;
use std::process::Command;

/// Runs `cairn ARGS` with a terminal on stdin, stdout and stderr; returns
/// everything it wrote there, or `None` when `script` cannot run.
fn on_a_terminal(env: &Env, args: &[&str]) -> Option<String> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_cairn")),
        "--archive".into(),
        quote(&env.archive.display().to_string()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let out = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .current_dir(env.dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("TERM", "xterm")
        .env_remove("CAIRN_ARCHIVE")
        .env_remove("RUST_LOG")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "cairn {args:?} on a terminal failed:\n{text}");
    Some(text)
}

#[test]
fn long_passes_show_a_bar_on_a_terminal_and_never_on_a_pipe() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: util-linux `script` is not installed (no pseudo-terminal to test bars on)");
        return;
    }
    let env = Env::new();
    // More than 4,096 entries: the views report at each commit (every
    // 4,096 entries, 1,024 into the trees a replay builds).
    let corpus = env.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 40, comments: 120, rounds: 1, seed: 3, authors: 0 }).unwrap();
    env.ok(&["ingest", "-q", &corpus.join("round-00").display().to_string()]);
    let head: u64 = env.head().split_once(' ').unwrap().0.parse().unwrap();
    assert!(head > 4096, "{head}");
    let export = env.dir.path().join("all.cairn").display().to_string();
    let copy = env.dir.path().join("copy").display().to_string();
    let at = (head - 10).to_string();
    let passes: Vec<(Vec<&str>, &str)> = vec![
        (vec!["replay"], "replaying the views"),
        (vec!["replay", "--emit", "jsonl"], "streaming the log"),
        (vec!["dedupe"], "reading the log"),
        (vec!["export", &export], "exporting"),
        (vec!["articles", "--at", &at], "computing the views for --at"),
        (vec!["verify"], "verifying"),
    ];
    for (args, label) in &passes {
        let Some(shown) = on_a_terminal(&env, args) else {
            eprintln!("SKIPPED: `script` did not run");
            return;
        };
        assert!(shown.contains(label), "cairn {args:?} on a terminal shows no bar {label:?}:\n{shown}");
        assert!(shown.contains("left"), "the bar gives the time left: {shown}");
        let piped = env.ok(args);
        assert!(!piped.stderr.contains(label) && !piped.stderr.contains(" left"), "a bar on a pipe: {piped}");
        let quiet: Vec<&str> = ["-q"].into_iter().chain(args.iter().copied()).collect();
        if !args.contains(&"--emit") {
            // -q: no bar even on a terminal.
            let shown = on_a_terminal(&env, &quiet).unwrap();
            assert!(!shown.contains(label), "-q still shows a bar: {shown}");
        }
    }
    // import: the export's bytes, then building the views.
    let target = Env { dir: tempfile::TempDir::new().unwrap(), archive: copy.into() };
    let shown = on_a_terminal(&target, &["import", &export]).unwrap();
    assert!(shown.contains("reading the export"), "{shown}");
    assert!(shown.contains("building the views"), "{shown}");
    // repair rebuilds the views after the index.
    let shown = on_a_terminal(&env, &["repair"]).unwrap();
    assert!(shown.contains("rebuilding the views"), "{shown}");
}
