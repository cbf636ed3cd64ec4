//! `cairn table` read back by independent readers (DuckDB for CSV, JSON
//! Lines from a pipe and Parquet; Python's `csv` module), checked against
//! what `thread` shows; and `cairn cat` giving back the ingested bytes.

use crate::support::{fixture, Env};
use crate::views::{rescrape, two_captures, SAMPLE};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

/// The DuckDB command line (`pip install duckdb-cli`, which .ci/run does),
/// or `None`, saying the test is skipped.
fn duckdb() -> Option<String> {
    let cmd = std::env::var("CAIRN_TEST_DUCKDB").unwrap_or_else(|_| "duckdb".into());
    match Command::new(&cmd).arg("-version").output() {
        Ok(o) if o.status.success() => Some(cmd),
        _ => {
            eprintln!("SKIPPED the DuckDB read-back: no `{cmd}` command (.ci/run installs it: pip install duckdb-cli)");
            None
        }
    }
}

/// Runs `sql` in DuckDB in `dir` (with `stdin` piped in when given) and
/// returns the rows.
fn query(duckdb: &str, dir: &Path, sql: &str, stdin: Option<&[u8]>) -> Vec<Value> {
    let mut child = Command::new(duckdb)
        .args(["-json", "-c", sql])
        .current_dir(dir)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "duckdb failed on {sql}: {}", String::from_utf8_lossy(&out.stderr));
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Vec<Value>>(&text)
        .unwrap_or_else(|e| panic!("duckdb printed no JSON ({e}): {text}"))
}

/// What `thread` shows, to compare tables with.
struct Expected {
    comments: usize,
    removed: usize,
    edited: usize,
    replies: usize,
    removed_id: Value,
}

fn expected(env: &Env) -> Expected {
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let comments = t["comments"].as_array().unwrap();
    let removed: Vec<&Value> = comments.iter().filter(|c| c["status"] == json!("removed")).collect();
    Expected {
        comments: comments.len(),
        removed: removed.len(),
        edited: comments.iter().filter(|c| c["versions"].as_array().unwrap().len() > 1).count(),
        replies: comments.iter().filter(|c| !c["parent"].is_null()).count(),
        removed_id: removed[0]["id"].clone(),
    }
}

#[test]
fn every_format_reads_back_in_duckdb_with_the_threads_counts_and_types() {
    let env = Env::new();
    two_captures(&env);
    let want = expected(&env);
    assert_eq!((want.comments, want.removed, want.edited), (44, 1, 1));
    for format in ["csv", "jsonl", "parquet"] {
        env.ok(&["table", "comments", "--format", format, "-o", &format!("comments.{format}")]);
    }
    let Some(duckdb) = duckdb() else { return };
    let dir = env.dir.path();
    let counts = "count(*) AS n, count(*) FILTER (WHERE status = 'removed') AS removed, \
                  count(*) FILTER (WHERE edited) AS edited, count(parent_id) AS replies, \
                  max(CASE WHEN status = 'removed' THEN id END) AS removed_id";
    let jsonl = env.ok(&["table", "comments", "--format", "jsonl"]).stdout;
    for (source, stdin) in [
        ("'comments.parquet'", None),
        ("read_csv('comments.csv')", None),
        ("read_json('comments.jsonl')", None),
        ("read_json('/dev/stdin')", Some(jsonl.as_bytes())),
    ] {
        let rows = query(&duckdb, dir, &format!("SELECT {counts} FROM {source}"), stdin);
        assert_eq!(
            rows,
            vec![json!({"n": want.comments, "removed": want.removed, "edited": want.edited,
                        "replies": want.replies, "removed_id": want.removed_id})],
            "{source}"
        );
    }
    // Comments per author equal `cairn authors` (an edited comment once).
    let authors = env.ok(&["authors", "--json"]).json();
    let mut want_authors: Vec<Value> = authors["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!({"author": a["author"], "n": a["comments"]}))
        .collect();
    want_authors.sort_by_key(|a| a["author"].as_str().unwrap().to_string());
    let got_authors = query(
        &duckdb,
        dir,
        "SELECT author, count(*) AS n FROM 'comments.parquet' WHERE author IS NOT NULL GROUP BY author ORDER BY author",
        None,
    );
    assert_eq!(got_authors, want_authors);

    // Parquet's columns have real types.
    let types = query(
        &duckdb,
        dir,
        "SELECT DISTINCT typeof(posted_at) AS t, typeof(edited) AS b, typeof(version_count) AS i, \
         typeof(aliases) AS l, typeof(removed_since) AS r FROM 'comments.parquet'",
        None,
    );
    assert_eq!(
        types,
        vec![json!({"t": "TIMESTAMP WITH TIME ZONE", "b": "BOOLEAN", "i": "BIGINT", "l": "VARCHAR[]",
                    "r": "TIMESTAMP WITH TIME ZONE"})]
    );
    // The page's times, as instants: ahmad's 1:02PM +05:00 comment.
    let first = query(
        &duckdb,
        dir,
        "SELECT epoch(posted_at)::BIGINT AS at, author FROM 'comments.parquet' WHERE position = 0",
        None,
    );
    assert_eq!(first, vec![json!({"at": 1_332_921_720, "author": "ahmad"})]);

    // `replay --emit jsonl` from a pipe: one row per event, and `body` one
    // type (text) for articles and comments alike.
    let events = env.ok(&["replay", "--emit", "jsonl"]).stdout;
    let kinds = query(
        &duckdb,
        dir,
        "SELECT kind, count(*) AS n, any_value(typeof(body)) AS body FROM read_json('/dev/stdin') \
         WHERE kind IN ('article', 'comment') GROUP BY kind ORDER BY kind",
        Some(events.as_bytes()),
    );
    assert_eq!(
        kinds,
        vec![
            json!({"kind": "article", "n": 1, "body": "VARCHAR"}),
            json!({"kind": "comment", "n": 45, "body": "VARCHAR"})
        ]
    );

    // The other tables.
    for table in ["versions", "articles", "captures", "sightings"] {
        env.ok(&["table", table, "--format", "parquet", "-o", &format!("{table}.parquet")]);
    }
    let versions = query(
        &duckdb,
        dir,
        "SELECT status, count(*) AS n FROM 'versions.parquet' GROUP BY status ORDER BY status",
        None,
    );
    assert_eq!(
        versions,
        vec![
            json!({"status": "present", "n": 43}),
            json!({"status": "removed", "n": 1}),
            json!({"status": "superseded", "n": 1})
        ]
    );
    let articles = query(
        &duckdb,
        dir,
        "SELECT comments, present, removed, edited, captures, partial_captures FROM 'articles.parquet'",
        None,
    );
    assert_eq!(
        articles,
        vec![
            json!({"comments": 44, "present": 43, "removed": 1, "edited": 1, "captures": 2, "partial_captures": 0})
        ]
    );
    let captures = query(
        &duckdb,
        dir,
        "SELECT declared_comments AS d, found_comments AS f, complete AS c FROM 'captures.parquet' ORDER BY seq",
        None,
    );
    assert_eq!(captures, vec![json!({"d": 44, "f": 44, "c": true}), json!({"d": 43, "f": 43, "c": true})]);
    let sightings = query(
        &duckdb,
        dir,
        "SELECT capture_seq AS s, count(*) AS n, min(position) AS lo, max(position) AS hi \
         FROM 'sightings.parquet' GROUP BY capture_seq ORDER BY capture_seq",
        None,
    );
    assert_eq!(sightings.len(), 2);
    assert_eq!((sightings[0]["n"].clone(), sightings[0]["hi"].clone()), (json!(44), json!(43)));
    assert_eq!((sightings[1]["n"].clone(), sightings[1]["hi"].clone()), (json!(43), json!(42)));
}

#[test]
fn csv_reads_back_in_python_with_every_body_exact() {
    let env = Env::new();
    two_captures(&env);
    let path = env.dir.path().join("comments.csv");
    env.ok(&["table", "comments", "-o", &path.display().to_string()]);
    let script = "import csv, json, sys\n\
                  rows = list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))\n\
                  print(json.dumps({r['id']: [r['body'], r['status'], r['edited'], r['aliases']] for r in rows}))\n";
    let out = match Command::new("python3").args(["-c", script, &path.display().to_string()]).output() {
        Ok(o) if o.status.success() => o,
        _ => {
            eprintln!("SKIPPED the Python csv read-back: no python3");
            return;
        }
    };
    let by_id: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = env.ok(&["thread", "kayani", "--json"]).json();
    let comments = t["comments"].as_array().unwrap();
    assert_eq!(by_id.as_object().unwrap().len(), comments.len());
    assert!(
        comments.iter().any(|c| c["body"].as_str().unwrap().contains('\n')),
        "multi-line bodies are covered"
    );
    for c in comments {
        let row = &by_id[c["id"].as_str().unwrap()];
        assert_eq!(row[0], c["body"], "body of {}", c["id"]);
        assert_eq!(row[1], c["status"]);
        let edited = c["versions"].as_array().unwrap().len() > 1;
        assert_eq!(row[2], json!(edited.to_string()));
        assert_eq!(row[3], json!("[]"), "a list is a JSON array in CSV");
    }
}

#[test]
fn filters_select_by_article_author_and_observation_time() {
    let env = Env::new();
    two_captures(&env);
    let lines = |args: &[&str]| {
        let mut all = vec!["table"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "jsonl"]);
        env.ok(&all).stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(lines(&["comments", "--article", "kayani"]).len(), 44);
    let aristo = lines(&["comments", "--author", "Aristo"]);
    assert_eq!(aristo.len(), 1);
    assert_eq!(aristo[0]["status"], json!("removed"));
    assert_eq!(lines(&["versions", "--author", "UFF"]).len(), 2);
    // Both captures were recorded at SOURCE_DATE_EPOCH, 2023-11-14T22:13:20Z.
    assert_eq!(lines(&["comments", "--since", "2023-11-15"]).len(), 0);
    assert_eq!(lines(&["comments", "--until", "2023-11-14"]).len(), 44, "a date includes its whole day");
    assert_eq!(lines(&["comments", "--until", "2023-11-14T22:13:19Z"]).len(), 0);
    assert_eq!(lines(&["sightings", "--since", "2023-11-14T22:13:20Z"]).len(), 87);
    assert_eq!(lines(&["captures", "--until", "2023-11-13"]).len(), 0);

    let wrong = env.run(&["table", "captures", "--author", "Aristo"]).expect_code(2);
    assert!(wrong.stderr.contains("--author applies to the comments and versions tables"), "{wrong}");
    let bad = env.run(&["table", "comments", "--since", "yesterday"]).expect_code(2);
    assert!(bad.stderr.contains("--since \"yesterday\""), "{bad}");
    env.run(&["table", "comments", "--article", "no such article"]).expect_code(2);
    let inside = env.run(&["table", "comments", "-o", &env.archive.join("x.csv").display().to_string()]);
    assert!(inside.expect_code(2).stderr.contains("inside the archive"));
}

#[test]
fn cat_gives_back_the_ingested_bytes_whole_and_delta_stored() {
    let env = Env::new();
    let sample = std::fs::read(fixture(SAMPLE)).unwrap();
    two_captures(&env);
    let captures: Vec<Value> = env
        .ok(&["log", "--json", "--kind", "capture"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = captures[0]["id"].as_str().unwrap();
    let second = captures[1]["id"].as_str().unwrap();
    // The first capture is stored whole, the re-scrape as a delta against it.
    let out = env.command(&["cat", &first[..10]]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, sample);
    let out = env.command(&["cat", &second[..10]]).output().unwrap();
    assert_eq!(out.stdout, rescrape().into_bytes());
    // By blob id, and into a file.
    let blob = env.ok(&["show", first, "--json"]).json()["blob"].as_str().unwrap().to_string();
    let file = env.dir.path().join("page.txt");
    env.ok(&["cat", &blob[..12], "-o", &file.display().to_string()]);
    assert_eq!(std::fs::read(&file).unwrap(), sample);

    // Not a capture, nothing, not hex.
    let comment = env.ok(&["log", "--json", "--kind", "comment"]).stdout.lines().next().unwrap().to_string();
    let comment: Value = serde_json::from_str(&comment).unwrap();
    let run = env.run(&["cat", &comment["id"].as_str().unwrap()[..16]]).expect_code(2);
    assert!(run.stderr.contains("not a capture") && run.stderr.contains("cairn show"), "{run}");
    env.run(&["cat", "0000000000000000000000"]).expect_code(2);
    env.run(&["cat", "xyz"]).expect_code(2);

    // Damaged stored bytes: refused, and the output file is not written.
    let pack = env.archive.join("captures").join("00000000.pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();
    let damaged = env.dir.path().join("damaged.txt");
    let run = env.run(&["cat", &first[..10], "-o", &damaged.display().to_string()]).expect_code(2);
    assert!(!damaged.exists(), "{run}");
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("cairn-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "a temporary file was left behind");
}

/// `-o` through a symbolic link replaces the file it leads to and keeps
/// the link; a FIFO and a descriptor's link (what `/dev/stdout` is) are
/// written to as they stand, never replaced by a regular file.
#[test]
fn output_files_are_written_through_links_and_into_fifos() {
    use std::os::unix::fs::FileTypeExt;
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let dir = env.dir.path();
    let real = dir.join("real.csv");
    std::fs::write(&real, "old").unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink("real.csv", &link).unwrap();
    env.ok(&["table", "articles", "-o", &link.display().to_string()]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
    assert!(
        std::fs::read_to_string(&real).unwrap().starts_with("key,id,url,"),
        "the file it leads to is written"
    );

    let stdout_link = dir.join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &stdout_link).unwrap();
    let run = env.ok(&["table", "articles", "-o", &stdout_link.display().to_string()]);
    assert!(run.stdout.starts_with("key,id,url,"), "{run}");
    assert!(std::fs::symlink_metadata(&stdout_link).unwrap().file_type().is_symlink());

    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    env.ok(&["table", "articles", "-o", &fifo.display().to_string()]);
    assert!(reader.join().unwrap().starts_with("key,id,url,"), "the reader gets the table");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    // A reader that goes away before the end (the table is larger than a
    // pipe holds) leaves the file asked for cut off: an error, not a success.
    let big: String = (0..2000)
        .map(|i| {
            format!(
                "{{\"type\": \"comment\", \"id\": \"b{i}\", \"article\": \"big\", \"author\": \"a\", \
                 \"posted_at\": \"2012-03-28T13:02:00+05:00\", \"body\": \"comment {i} {}\"}}\n",
                "x".repeat(100)
            )
        })
        .collect();
    let big = format!(
        "{{\"type\": \"article\", \"id\": \"big\", \"url\": \"https://example.com/big\", \"title\": \"Big\"}}\n{big}"
    );
    env.ok(&["ingest", &env.write("big.jsonl", big)]);
    let quitter = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut first = [0u8; 10];
            std::io::Read::read_exact(&mut std::fs::File::open(fifo).unwrap(), &mut first).unwrap();
        })
    };
    let run = env.run(&["table", "comments", "-o", &fifo.display().to_string()]).expect_code(2);
    quitter.join().unwrap();
    assert!(run.stderr.contains("its reader closed it before the output was written whole"), "{run}");

    // A link into the archive is refused like a path inside it, and so is
    // a path through /proc that only the kernel resolves.
    let into = dir.join("into");
    std::os::unix::fs::symlink(env.archive.join("lock"), &into).unwrap();
    let run = env.run(&["table", "articles", "-o", &into.display().to_string()]).expect_code(2);
    assert!(run.stderr.contains("inside the archive"), "{run}");
    let log = env.archive.join("log").join("00000000.seg");
    let before = std::fs::read(&log).unwrap();
    for through in
        ["/proc/self/cwd/archive/log/00000000.seg".to_string(), format!("/proc/self/root{}", log.display())]
    {
        let run = env.run(&["table", "articles", "-o", &through]).expect_code(2);
        assert!(run.stderr.contains("inside the archive"), "{run}");
    }
    assert_eq!(std::fs::read(&log).unwrap(), before, "the log untouched");
    // A name that is no file's, and a descriptor open on a file (which
    // opened again would write at its start), are refused.
    for bad in ["nonexist/.", "newfile/"] {
        let run = env.run(&["table", "articles", "-o", bad]).expect_code(2);
        assert!(run.stderr.contains("names a directory"), "{run}");
    }
    assert!(!dir.join("nonexist").exists() && !dir.join("newfile").exists());
    let err_log = dir.join("err.log");
    std::fs::write(&err_log, "kept\n").unwrap();
    let stderr = std::fs::OpenOptions::new().append(true).open(&err_log).unwrap();
    let status = env.command(&["table", "articles", "-o", "/dev/stderr"]).stderr(stderr).status().unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(std::fs::read_to_string(&err_log)
        .unwrap()
        .starts_with("kept\ncairn: error: /dev/stderr is a descriptor"));
    // A new file through /proc is made where it leads.
    env.ok(&["table", "articles", "-o", "/proc/self/cwd/new.csv"]);
    assert!(std::fs::read_to_string(dir.join("new.csv")).unwrap().starts_with("key,id,url,"));

    // Standard output's own file, appended to (`>> log.csv`): the table is
    // appended, as with `-`; a link's target keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    let appended = dir.join("appended.csv");
    std::fs::write(&appended, "earlier line\n").unwrap();
    let stdout = std::fs::OpenOptions::new().append(true).open(&appended).unwrap();
    let status = env
        .command(&["table", "articles", "-o", &stdout_link.display().to_string()])
        .stdout(stdout)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&appended).unwrap();
    assert!(text.starts_with("earlier line\nkey,id,url,"), "{text}");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.ok(&["table", "articles", "-o", &link.display().to_string()]);
    assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o600, "the mode is kept");
    // But never set-user-id or set-group-id (the new file is this
    // process's, not the old owner's).
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o6751)).unwrap();
    env.ok(&["table", "articles", "-o", &link.display().to_string()]);
    assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o7777, 0o751);
}

/// A filter that does not apply to the table is refused before anything
/// of it is written (the header was printed first).
#[test]
fn a_filter_that_does_not_apply_is_refused_before_the_header() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let run = env.run(&["table", "articles", "--author", "Yaida"]).expect_code(2);
    assert!(run.stderr.contains("--author applies to"), "{run}");
    assert_eq!(run.stdout, "", "{run}");
}

/// The archive reached through a bind mount (another path, the same
/// directory) is inside the archive too: `-o` there was written, even over
/// the archive's lock. Needs `unshare -m` (root); skipped, saying so,
/// without it.
#[test]
fn output_into_the_archive_through_a_bind_mount_is_refused() {
    let env = Env::new();
    env.ok(&["ingest", &fixture(SAMPLE).display().to_string()]);
    let mount = env.dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    let script = format!(
        "mount --bind {a} {m} || exit 77; {bin} --archive {a} table articles -o {m}/new.csv; echo rc=$?; {bin} --archive {a} export {m}/lock; echo rc=$?",
        a = env.archive.display(),
        m = mount.display(),
        bin = env!("CARGO_BIN_EXE_cairn")
    );
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output();
    let Some(out) = out.ok().filter(|o| o.status.code() != Some(77) && o.status.success()) else {
        eprintln!("SKIPPED output_into_the_archive_through_a_bind_mount_is_refused: no private mount namespace here");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("rc=2").count(), 2, "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the archive"));
    assert!(!env.archive.join("new.csv").exists());
    env.ok(&["verify"]);
}
