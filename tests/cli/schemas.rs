//! Every command's JSON output against its JSON Schema in docs/schemas/:
//! each command runs on a small archive (edits, removals, a second layout,
//! merges, a pinned replay, `--at`, a failed check), its output is checked
//! by `tools/check_schemas.py` (Python `jsonschema`), and so is a broken
//! copy of each output (a field added, a field taken out), which the
//! schema must reject. Every command that takes `--json` must have a
//! schema and a case here. Skipped, saying so, without Python's
//! `jsonschema` (`.ci/run` installs it).

use crate::support::{append_as_parser_4, fixture, jsonl_fixture, Env};
use crate::views::{rescrape, SAMPLE};
use clap::CommandFactory;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// One output to check: a name, the command's arguments, the schema (a file
/// in docs/schemas, or a part of one), the exit code, and whether the
/// output is JSON Lines.
struct Case {
    name: String,
    args: Vec<String>,
    schema: String,
    code: i32,
    jsonl: bool,
}

fn case(name: &str, args: &[&str], schema: &str) -> Case {
    Case {
        name: name.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        schema: schema.to_string(),
        code: 0,
        jsonl: false,
    }
}

fn python_has_jsonschema() -> bool {
    Command::new("python3")
        .args(["-c", "import jsonschema, referencing"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn every_command_prints_json_its_schema_accepts() {
    if !python_has_jsonschema() {
        eprintln!("SKIPPED: Python's jsonschema is not installed (pip install jsonschema)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = Env::new();
    let sample = fixture(SAMPLE).display().to_string();
    let later = env.write("later.txt", rescrape());
    let tony = "  • Tony C.\n    Mar 29, 2012 - 12:16AM\n";
    let stray = std::fs::read_to_string(fixture(SAMPLE)).unwrap().replacen(
        tony,
        &format!("Advertisement\n\n{tony}"),
        1,
    );
    let stray = env.write("stray.txt", stray);
    let bad = env.write("bad.jsonl", "nope\n");
    let jsonl = jsonl_fixture();
    let out = env.dir.path().join("outputs");
    std::fs::create_dir_all(&out).unwrap();

    // The stray-line page as parser 4 read it (complete): `reparse` reads
    // it again as partial (`complete` in its report).
    append_as_parser_4(
        &env,
        &stray,
        &std::fs::read_to_string(&stray).unwrap(),
        "2012-03-29T12:00:00+00:00",
        true,
    );
    // Each case runs in this order: the archive grows as it goes.
    let mut cases = vec![
        // (--wait: this process's own sled handle may release its lock a
        // moment late.)
        case("ingest", &["--wait", "20", "ingest", "--json", &sample], "ingest.schema.json"),
        case("ingest --dry-run", &["ingest", "--json", "--dry-run", &later], "ingest.schema.json"),
        Case {
            code: 1,
            ..case("ingest, one rejected", &["ingest", "--json", &later, &bad], "ingest.schema.json")
        },
        case("ingest, the other layout", &["ingest", "--json", &jsonl], "ingest.schema.json"),
        case("reparse", &["reparse", "--json"], "reparse.schema.json"),
        case("dedupe", &["dedupe", "--json"], "dedupe.schema.json"),
        case("dedupe --apply", &["dedupe", "--apply", "--json"], "dedupe.schema.json"),
        // (Its capture, and the re-read by `reparse` of the one parser 4
        // made, have the gap `stray-line`, in `log` and the tables.)
        case(
            "ingest, a stray line",
            &["ingest", "--json", "--fetched-at", "2012-03-30T12:00:00Z", &stray],
            "ingest.schema.json",
        ),
    ];
    let mut outputs: Vec<(Case, std::path::PathBuf)> = Vec::new();
    let run = |c: Case, outputs: &mut Vec<(Case, std::path::PathBuf)>| {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let r = env.run(&args).expect_code(c.code);
        let file = out.join(format!("{}.out", outputs.len()));
        std::fs::write(&file, &r.stdout).unwrap();
        outputs.push((c, file));
        r
    };
    for c in cases.drain(..) {
        run(c, &mut outputs);
    }

    // The views, after merges: ids and captures to ask about.
    let thread = env.ok(&["thread", "kayani", "--json"]).json();
    let edited = thread["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["versions"].as_array().unwrap().len() > 1)
        .expect("an edited comment");
    let edited = edited["id"].as_str().unwrap().to_string();
    let folded = thread["comments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["versions"].as_array().unwrap())
        .flat_map(|v| v["aliases"].as_array().unwrap())
        .next()
        .expect("a comment folded by dedupe --apply")
        .as_str()
        .unwrap()
        .to_string();
    let captures: Vec<String> = thread["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap()[..12].to_string())
        .collect();
    let first_seq = thread["captures"][0]["seq"].as_u64().unwrap().to_string();
    let head = env.head();
    let (head_seq, _) = head.split_once(' ').unwrap();
    let wrong = format!("{head_seq}:{}", "ab".repeat(32));
    let site = env.dir.path().join("site").display().to_string();
    let export = env.dir.path().join("all.cairn").display().to_string();
    let a_prefix = {
        let log = env.ok(&["log", "--json", "--kind", "comment", "--limit", "1"]).stdout;
        serde_json::from_str::<Value>(&log).unwrap()["id"].as_str().unwrap()[..12].to_string()
    };
    let mut views = vec![
        case("articles", &["articles", "--json"], "articles.schema.json"),
        case("thread", &["thread", "kayani", "--json"], "thread.schema.json"),
        case("thread --at", &["thread", "kayani", "--json", "--at", &first_seq], "thread.schema.json"),
        case("author", &["author", "Tony C.", "--json"], "author.schema.json"),
        case("authors", &["authors", "--json"], "authors.schema.json"),
        case("changes", &["changes", "--json"], "changes.schema.json"),
        case("history", &["history", &edited, "--json"], "history.schema.json"),
        case("history, a folded id", &["history", &folded, "--json"], "history.schema.json"),
        case("diff", &["diff", &captures[0], &captures[1], "--json"], "diff.schema.json"),
        case("search", &["search", "-i", "army", "--json"], "search.schema.json"),
        case("site", &["site", &site, "--json"], "site.schema.json"),
        case("stats", &["stats", "--json"], "stats.schema.json"),
        case("head", &["head", "--json"], "head.schema.json"),
        case("show", &["show", &a_prefix, "--json"], "show.schema.json"),
        Case { jsonl: true, ..case("log", &["log", "--json"], "log.schema.json") },
        Case { jsonl: true, ..case("replay --emit", &["replay", "--emit", "jsonl"], "log.schema.json") },
        case("replay --until", &["replay", "--until", &first_seq, "--json"], "replay.schema.json"),
        case("thread, pinned", &["thread", "kayani", "--json"], "thread.schema.json"),
        case("stats, pinned", &["stats", "--json"], "stats.schema.json"),
        case("replay", &["replay", "--json"], "replay.schema.json"),
        case("verify", &["verify", "--json"], "verify.schema.json"),
        Case {
            code: 1,
            ..case("verify, a finding", &["verify", "--json", "--checkpoint", &wrong], "verify.schema.json")
        },
        case("prove", &["prove", "5"], "prove.schema.json"),
        case("prove --consistency", &["prove", "--consistency", "10"], "prove.schema.json"),
        case("export", &["export", "--json", &export], "export.schema.json"),
        case("repair", &["repair", "--json"], "repair.schema.json"),
    ];
    for table in ["comments", "versions", "articles", "captures", "sightings"] {
        views.push(Case {
            jsonl: true,
            ..case(
                &format!("table {table}"),
                &["table", table, "--format", "jsonl"],
                &format!("table.schema.json#/$defs/{table}"),
            )
        });
    }
    for c in views {
        run(c, &mut outputs);
    }
    // import fills another archive.
    let copy = Env::new();
    let r = copy.ok(&["import", "--json", &export]);
    let file = out.join("import.out");
    std::fs::write(&file, &r.stdout).unwrap();
    outputs.push((case("import", &["import", "--json", &export], "import.schema.json"), file));

    // A broken copy of each output: a field added, and a field taken out,
    // in its first document.
    let mut checks: Vec<Value> = Vec::new();
    for (i, (c, file)) in outputs.iter().enumerate() {
        checks.push(
            json!({"name": c.name, "schema": c.schema, "file": file, "jsonl": c.jsonl, "expect": "valid"}),
        );
        let text = std::fs::read_to_string(file).unwrap();
        let first = if c.jsonl { text.lines().next().unwrap_or("") } else { text.as_str() };
        let doc: Value =
            serde_json::from_str(first).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", c.name));
        let mut added = doc.clone();
        added.as_object_mut().unwrap().insert("not_in_the_schema".into(), json!(1));
        let mut taken = doc.clone();
        let key = taken.as_object().unwrap().keys().next().unwrap().clone();
        taken.as_object_mut().unwrap().shift_remove(&key);
        for (what, broken) in [("a field added", added), (&*format!("{key:?} taken out"), taken)] {
            let path = out.join(format!("{i}.{}.broken", checks.len()));
            std::fs::write(&path, broken.to_string()).unwrap();
            checks.push(json!({"name": format!("{} ({what})", c.name), "schema": c.schema, "file": path,
                               "jsonl": false, "expect": "invalid"}));
        }
    }

    // Every command that takes --json has a schema and a case.
    let checked: Vec<&str> = outputs.iter().map(|(c, _)| c.schema.split('#').next().unwrap()).collect();
    let mut missing = Vec::new();
    for sub in cairn::cli::Cli::command().get_subcommands() {
        if sub.get_arguments().any(|a| a.get_long() == Some("json")) {
            let schema = format!("{}.schema.json", sub.get_name());
            if !root.join("docs/schemas").join(&schema).is_file() || !checked.contains(&schema.as_str()) {
                missing.push(schema);
            }
        }
    }
    assert!(missing.is_empty(), "commands with --json but no schema or no case: {missing:?}");

    let list = env.write("cases.json", serde_json::to_vec(&checks).unwrap());
    let check = Command::new("python3")
        .arg(root.join("tools/check_schemas.py"))
        .arg(root.join("docs/schemas"))
        .arg(&list)
        .output()
        .expect("python3 runs");
    assert!(
        check.status.success(),
        "outputs that do not match their schemas (or broken ones that do):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
