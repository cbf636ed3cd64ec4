//! Transparency: the Merkle tree, signed checkpoints, inclusion and
//! consistency proofs, and their verifiers (docs/transparency.md). Every
//! proof cairn prints is checked by cairn's own verifier, by Go's
//! `golang.org/x/mod/sumdb/{note,tlog}` (tests/go/checkproof.go, when Go
//! and golang.org/x/mod are installed) and by tools/verify_proof.py (when
//! Python has `cryptography` and `blake3`); every altered proof or
//! checkpoint is refused by all three.

use crate::generated::gen_tribune::{generate, Params};
use crate::support::{fixture, Env};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Go checker, built once (`None`, with the reason printed once, when
/// Go or golang.org/x/mod is missing).
fn go_checker() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let gopath = std::env::var("CAIRN_TEST_GOPATH").unwrap_or_else(|_| "/usr/share/gocode".into());
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/checkproof.go");
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("checkproof");
            let built = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(&src)
                .env("GOPATH", &gopath)
                .env("GO111MODULE", "off")
                .env("GOCACHE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("gocache"))
                .env("GOFLAGS", "")
                .output();
            match built {
                Ok(o) if o.status.success() => Some(out),
                Ok(o) => {
                    eprintln!(
                        "SKIPPED the Go cross-check: `go build` of tests/go/checkproof.go failed (golang.org/x/mod \
                         not under GOPATH={gopath}?): {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                    None
                }
                Err(e) => {
                    eprintln!("SKIPPED the Go cross-check: no `go` command ({e}); .ci/run installs golang-go");
                    None
                }
            }
        })
        .as_deref()
}

/// Whether tools/verify_proof.py can run (`python3` with `cryptography`
/// and `blake3`); says once why not.
fn python_ok() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let ok = Command::new("python3")
            .args(["-c", "import cryptography, blake3"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "SKIPPED tools/verify_proof.py: python3 with the cryptography and blake3 packages is missing"
            );
        }
        ok
    })
}

/// Exit code and output of the three verifiers on one proof.
struct Verdicts {
    cairn: (i32, String),
    go: Option<(i32, String)>,
    python: Option<(i32, String)>,
}

fn run_out(cmd: &mut Command) -> (i32, String) {
    let o = cmd.output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

struct Keys {
    key_file: String,
    verifier: String,
}

fn keys(env: &Env, name: &str, file: &str) -> Keys {
    let key_file = env.dir.path().join(file).display().to_string();
    let verifier = env.ok(&["key", "generate", name, "--out", &key_file]).stdout.trim().to_string();
    Keys { key_file, verifier }
}

fn verdicts(env: &Env, keys: &Keys, proof: &str, note: &str, with_python: bool) -> Verdicts {
    let cairn =
        run_out(&mut env.command(&["verify-proof", proof, "--checkpoint", note, "--key", &keys.verifier]));
    let go = go_checker().map(|bin| run_out(Command::new(bin).args([&keys.verifier, note, proof])));
    let python = (with_python && python_ok()).then(|| {
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify_proof.py");
        run_out(Command::new("python3").arg(tool).args([
            proof,
            "--checkpoint",
            note,
            "--key",
            &keys.verifier,
        ]))
    });
    Verdicts { cairn, go, python }
}

fn expect_all(v: &Verdicts, code: i32, what: &str) {
    assert_eq!(v.cairn.0, code, "cairn verify-proof, {what}: {}", v.cairn.1);
    if let Some(go) = &v.go {
        assert_eq!(go.0, code, "Go note.Open + tlog, {what}: {}", go.1);
    }
    if let Some(py) = &v.python {
        assert_eq!(py.0, code, "tools/verify_proof.py, {what}: {}", py.1);
    }
}

/// An archive of a few hundred entries: several tiles of 64 leaves.
fn archive_of_several_tiles() -> Env {
    let env = Env::new();
    let corpus = env.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 6, comments: 40, rounds: 1, seed: 3, authors: 0 }).unwrap();
    env.ok(&["-q", "ingest", &corpus.join("round-00").display().to_string()]);
    env.ok(&["-q", "ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    env.ok(&["-q", "ingest", &corpus.join("round-01").display().to_string()]);
    env
}

fn size_of(env: &Env) -> u64 {
    env.head().split_once(' ').unwrap().0.parse().unwrap()
}

#[test]
fn proofs_check_at_every_kind_of_tree_size_with_three_verifiers() {
    let env = archive_of_several_tiles();
    let n = size_of(&env);
    assert!(n > 260, "{n} entries: too few for the sizes below");
    let keys = keys(&env, "archive.example/news", "signer.key");
    let sizes = [1u64, 2, 3, 63, 64, 65, 127, 128, 129, 255, 256, 257, n];
    for &size in &sizes {
        let note = env.write(
            &format!("cp-{size}.note"),
            env.ok(&["checkpoint", "--key", &keys.key_file, "--size", &size.to_string()]).stdout,
        );
        let mut leaves = vec![0, size - 1, size / 2];
        leaves.dedup();
        for leaf in leaves {
            let proof = env.ok(&["prove", &(leaf + 1).to_string(), "--size", &size.to_string()]);
            let p = proof.json();
            assert_eq!(p["leaf_index"], leaf);
            assert_eq!(p["tree_size"], size);
            let file = env.write(&format!("p-{size}-{leaf}.json"), &proof.stdout);
            expect_all(
                &verdicts(&env, &keys, &file, &note, leaf == size / 2),
                0,
                &format!("leaf {leaf} of {size}"),
            );
        }
        for old in [1u64, 63, 64, 65, size / 2, size] {
            if old == 0 || old > size {
                continue;
            }
            let proof = env.ok(&["prove", "--consistency", &old.to_string(), "--size", &size.to_string()]);
            let file = env.write(&format!("c-{old}-{size}.json"), &proof.stdout);
            expect_all(
                &verdicts(&env, &keys, &file, &note, old == 65),
                0,
                &format!("consistency {old} -> {size}"),
            );
        }
    }
    // The stored tree is what verify recomputes from the log.
    let v = env.ok(&["verify", "--json"]).json();
    let cp = env.ok(&["checkpoint"]).stdout;
    let root_b64 = cp.lines().nth(2).unwrap();
    let root_hex = v["tree"]["root"].as_str().unwrap();
    assert_eq!(v["tree"]["size"], n);
    let p = env.ok(&["prove", "1"]).json();
    assert_eq!(p["root"], root_hex, "checkpoint root {root_b64}");
}

#[test]
fn an_inclusion_proof_names_the_event_by_id_prefix_and_ties_it_to_its_bytes() {
    let env = Env::new();
    env.ok(&["-q", "ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    let comment = env
        .ok(&["log", "--json"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["kind"] == "comment")
        .unwrap();
    let id = comment["id"].as_str().unwrap();
    let p = env.ok(&["prove", &id[..12]]).json();
    assert_eq!(p["event"]["id"], id);
    assert_eq!(p["event"]["body"], comment["body"]);
    assert_eq!(p["leaf_index"].as_u64().unwrap() + 1, comment["seq"].as_u64().unwrap());
    let bytes: Vec<u8> = (0..p["event_bytes"].as_str().unwrap().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&p["event_bytes"].as_str().unwrap()[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), id);
    // `id:` names an id prefix explicitly; digits alone are a seq.
    assert_eq!(env.ok(&["prove", &format!("id:{}", &id[..12])]).json(), p);
    assert_eq!(env.ok(&["prove", "3"]).json()["leaf_index"], 2);
}

/// Edits a proof's JSON.
fn edit(env: &Env, proof: &Value, name: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut p = proof.clone();
    f(&mut p);
    env.write(name, serde_json::to_string_pretty(&p).unwrap())
}

fn flip_hex(v: &mut Value) {
    let s = v.as_str().unwrap();
    let first = if s.starts_with('0') { "1" } else { "0" };
    *v = Value::String(format!("{first}{}", &s[1..]));
}

#[test]
fn verifiers_refuse_every_altered_proof_and_checkpoint() {
    let env = archive_of_several_tiles();
    let n = size_of(&env);
    let keys = keys(&env, "archive.example/news", "signer.key");
    let other = keys_other(&env);
    let note_text = env.ok(&["checkpoint", "--key", &keys.key_file]).stdout;
    let note = env.write("cp.note", &note_text);
    let leaf = 100u64;
    let incl = env.ok(&["prove", &(leaf + 1).to_string()]).json();
    let cons = env.ok(&["prove", "--consistency", "65"]).json();
    let good_incl = edit(&env, &incl, "good-incl.json", |_| {});
    let good_cons = edit(&env, &cons, "good-cons.json", |_| {});
    expect_all(&verdicts(&env, &keys, &good_incl, &note, true), 0, "the unaltered inclusion proof");
    expect_all(&verdicts(&env, &keys, &good_cons, &note, true), 0, "the unaltered consistency proof");

    // (what, proof, note); Go's tlog checks the note and the Merkle path,
    // not cairn's leaf data and event, so the cases marked "(event)" are
    // for cairn's verifier and the Python tool only.
    let mut cases: Vec<(String, String, String)> = Vec::new();
    let mut add =
        |what: &str, proof: String, note: &str| cases.push((what.to_string(), proof, note.to_string()));
    for i in 0..incl["inclusion_path"].as_array().unwrap().len() {
        add(
            &format!("inclusion path hash {i} altered"),
            edit(&env, &incl, &format!("alt-{i}.json"), |p| flip_hex(&mut p["inclusion_path"][i])),
            &note,
        );
    }
    add(
        "inclusion path too short",
        edit(&env, &incl, "short.json", |p| {
            p["inclusion_path"].as_array_mut().unwrap().pop();
        }),
        &note,
    );
    add(
        "inclusion path too long",
        edit(&env, &incl, "long.json", |p| {
            let r = p["root"].clone();
            p["inclusion_path"].as_array_mut().unwrap().push(r);
        }),
        &note,
    );
    add("leaf index + 1", edit(&env, &incl, "idx+.json", |p| p["leaf_index"] = (leaf + 1).into()), &note);
    add("leaf index - 1", edit(&env, &incl, "idx-.json", |p| p["leaf_index"] = (leaf - 1).into()), &note);
    add(
        "leaf index past the tree",
        edit(&env, &incl, "idx-past.json", |p| p["leaf_index"] = n.into()),
        &note,
    );
    add("tree size + 1", edit(&env, &incl, "size+.json", |p| p["tree_size"] = (n + 1).into()), &note);
    add("tree size 0", edit(&env, &incl, "size0.json", |p| p["tree_size"] = 0.into()), &note);
    add("root altered", edit(&env, &incl, "root.json", |p| flip_hex(&mut p["root"])), &note);
    add(
        "leaf data altered (path)",
        edit(&env, &incl, "leafdata.json", |p| flip_hex(&mut p["leaf_data"])),
        &note,
    );
    add(
        "event bytes whose BLAKE3 is not the leaf's id (event)",
        edit(&env, &incl, "evbytes.json", |p| flip_hex(&mut p["event_bytes"])),
        &note,
    );
    add(
        "event body edited (event)",
        edit(&env, &incl, "evbody.json", |p| {
            let e = &mut p["event"];
            for k in ["body", "title", "source"] {
                if let Some(s) = e.get(k).and_then(Value::as_str) {
                    e[k] = Value::String(format!("{s} (edited)"));
                    return;
                }
            }
            e["kind"] = "article".into();
        }),
        &note,
    );
    let article = env.ok(&["prove", "1"]).json();
    assert_eq!(article["event"]["kind"], "article");
    add(
        "an article's body edited, its paragraphs kept (event)",
        edit(&env, &article, "artbody.json", |p| {
            let body = p["event"]["body"].as_str().unwrap().to_string();
            p["event"]["body"] = format!("{body} (edited)").into();
        }),
        &note,
    );
    let capture = env.ok(&["prove", &n.to_string()]).json();
    assert_eq!(capture["event"]["kind"], "capture");
    add(
        "a field added to the event (event)",
        edit(&env, &incl, "evextra.json", |p| p["event"]["note"] = "verified by hand".into()),
        &note,
    );
    add(
        "the chain head added to the event (event)",
        edit(&env, &incl, "evhead.json", |p| p["event"]["head"] = "00".repeat(32).into()),
        &note,
    );
    add(
        "a capture's complete flag flipped (event)",
        edit(&env, &capture, "capcomplete.json", |p| {
            let c = p["event"]["complete"].as_bool().unwrap();
            p["event"]["complete"] = (!c).into();
        }),
        &note,
    );
    add(
        "a capture's found count changed (event)",
        edit(&env, &capture, "capfound.json", |p| p["event"]["found_comments"] = 9999.into()),
        &note,
    );
    add(
        "a capture's item flag given as a string (event)",
        edit(&env, &capture, "capflag.json", |p| {
            p["event"]["articles"][0]["comments"][0]["possibly_truncated"] = "false".into()
        }),
        &note,
    );
    add(
        "a capture's comment ids re-cut (event)",
        edit(&env, &capture, "caprecut.json", |p| {
            let comments = p["event"]["articles"][0]["comments"].as_array_mut().unwrap();
            let first = comments[0]["id"].as_str().unwrap().to_string();
            let second = comments[1]["id"].as_str().unwrap().to_string();
            comments[0]["id"] = format!("{first}{}", &second[..2]).into();
            comments[1]["id"] = second[2..].to_string().into();
        }),
        &note,
    );
    add("old size negative", edit(&env, &cons, "c-neg.json", |p| p["old_size"] = (-97).into()), &note);
    add(
        "leaf index given as a float",
        edit(&env, &incl, "idx-float.json", |p| p["leaf_index"] = (leaf as f64).into()),
        &note,
    );
    add(
        "consistency path hash altered",
        edit(&env, &cons, "c-alt.json", |p| flip_hex(&mut p["consistency_path"][0])),
        &note,
    );
    add(
        "consistency path too short",
        edit(&env, &cons, "c-short.json", |p| {
            p["consistency_path"].as_array_mut().unwrap().pop();
        }),
        &note,
    );
    add(
        "consistency path too long",
        edit(&env, &cons, "c-long.json", |p| {
            let r = p["new_root"].clone();
            p["consistency_path"].as_array_mut().unwrap().push(r);
        }),
        &note,
    );
    add("old root altered", edit(&env, &cons, "c-old.json", |p| flip_hex(&mut p["old_root"])), &note);
    add(
        "old size > new size",
        edit(&env, &cons, "c-swap.json", |p| {
            p["old_size"] = (n + 1).into();
        }),
        &note,
    );
    add(
        "old size 0",
        edit(&env, &cons, "c-zero.json", |p| {
            p["old_size"] = 0.into();
            p["consistency_path"] = Value::Array(vec![]);
        }),
        &note,
    );
    // The JSON itself: a key given twice (a reader keeping the first sees
    // another event than the one checked), a field of the proof's own.
    let plain = serde_json::to_string(&incl).unwrap();
    let (key, value) = ["body", "title", "source"]
        .iter()
        .find_map(|k| incl["event"].get(*k).map(|v| (*k, serde_json::to_string(v).unwrap())))
        .unwrap();
    let field = format!("\"{key}\":{value}");
    assert!(plain.contains(&field), "{plain}");
    add(
        "a key of the event twice, the first one edited (event)",
        env.write(
            "dup-body.json",
            plain.replacen(&field, &format!("\"{key}\":\"I love the army\",{field}"), 1),
        ),
        &note,
    );
    add(
        "a key of the proof twice (event)",
        env.write("dup-size.json", plain.replacen('{', &format!("{{\"tree_size\":{},", n + 1), 1)),
        &note,
    );
    add(
        "a field added to the proof (event)",
        edit(&env, &incl, "extra.json", |p| p["note"] = "x".into()),
        &note,
    );
    add(
        "a field added to a consistency proof (event)",
        edit(&env, &cons, "c-extra.json", |p| p["signed_by"] = "x".into()),
        &note,
    );
    // Checkpoints.
    let other_note = env.write(
        "other.note",
        env.ok(&["checkpoint", "--key", &other, "--origin", "archive.example/news"]).stdout,
    );
    add("a checkpoint signed by another key", good_incl.clone(), &other_note);
    let lines: Vec<&str> = note_text.split('\n').collect();
    let edited_size = note_text.replacen(&format!("\n{n}\n"), &format!("\n{}\n", n - 1), 1);
    assert_ne!(edited_size, note_text);
    add("an edited checkpoint line (size)", good_incl.clone(), &env.write("edited-size.note", &edited_size));
    let edited_origin = note_text.replacen("archive.example/news\n", "archive.example/other\n", 1);
    add(
        "an edited checkpoint line (origin)",
        good_incl.clone(),
        &env.write("edited-origin.note", &edited_origin),
    );
    let renamed = note_text.replace("\u{2014} archive.example/news ", "\u{2014} archive.example/newz ");
    assert_ne!(renamed, note_text, "{lines:?}");
    add("a signature line with another name", good_incl.clone(), &env.write("renamed.note", &renamed));
    add(
        "trailing junk after the signature",
        good_incl.clone(),
        &env.write("junk.note", format!("{note_text}junk\n")),
    );
    add(
        "trailing junk without a newline",
        good_incl.clone(),
        &env.write("junk2.note", format!("{note_text}x")),
    );
    add(
        "no signature at all",
        good_incl.clone(),
        &env.write("unsigned.note", env.ok(&["checkpoint"]).stdout),
    );
    let smaller =
        env.write("smaller.note", env.ok(&["checkpoint", "--key", &keys.key_file, "--size", "200"]).stdout);
    add("a checkpoint of another size", good_incl.clone(), &smaller);

    for (what, proof, note) in &cases {
        let mut v = verdicts(&env, &keys, proof, note, true);
        if what.ends_with("(event)") {
            v.go = None;
        }
        expect_all(&v, 1, what);
        assert!(v.cairn.1.starts_with("refused: "), "{what}: {}", v.cairn.1);
    }
}

fn keys_other(env: &Env) -> String {
    let file = env.dir.path().join("other.key").display().to_string();
    env.ok(&["key", "generate", "archive.example/news", "--out", &file]);
    file
}

#[test]
fn prove_refuses_what_has_no_proof() {
    let env = Env::new();
    env.ok(&["-q", "ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    let n = size_of(&env);
    for args in [
        vec!["prove", "--consistency", "0"],
        vec!["prove", "--consistency", &(n + 1).to_string()],
        vec!["prove", "--consistency", "5", "--size", "4"],
        vec!["prove", "0"],
        vec!["prove", &(n + 1).to_string()],
        vec!["prove", "3", "--size", "2"],
        vec!["prove", "1", "--size", &(n + 1).to_string()],
        vec!["checkpoint", "--size", &(n + 1).to_string()],
        vec!["prove"],
    ] {
        let run = env.run(&args);
        assert_eq!(run.code, 2, "{run}");
        assert!(!run.stderr.is_empty(), "{run}");
    }
    let none = Env::new().run(&["prove", "1"]);
    assert_eq!(none.code, 2, "{none}");
    assert!(none.stderr.contains("no archive"), "{none}");
}

#[test]
fn keys_are_written_private_and_never_overwritten() {
    let env = Env::new();
    let file = env.dir.path().join("k.key");
    let verifier = env.ok(&["key", "generate", "me.example/log", "--out", file.to_str().unwrap()]).stdout;
    assert!(verifier.starts_with("me.example/log+"), "{verifier}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.starts_with("PRIVATE+KEY+me.example/log+"), "the key file holds the signer key");
    assert_eq!(env.ok(&["key", "verifier", file.to_str().unwrap()]).stdout, verifier);
    let again = env.run(&["key", "generate", "me.example/log", "--out", file.to_str().unwrap()]);
    assert_eq!(again.code, 2, "{again}");
    assert!(again.stderr.contains("never overwrites"), "{again}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
    let bad = env.run(&["key", "generate", "two words", "--out", env.dir.path().join("x").to_str().unwrap()]);
    assert_eq!(bad.code, 2, "{bad}");
    let bad = env.run(&["key", "generate", "a+b", "--out", env.dir.path().join("y").to_str().unwrap()]);
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn verify_proves_the_archive_extends_a_signed_checkpoint() {
    let env = Env::new();
    let page = fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string();
    env.ok(&["-q", "ingest", &page]);
    let keys = keys(&env, "archive.example/news", "signer.key");
    let note = env.write("then.note", env.ok(&["checkpoint", "--key", &keys.key_file]).stdout);
    env.ok(&["verify", "--checkpoint", &note, "--key", &keys.verifier]);
    // The archive grows: it still extends the checkpoint, and a
    // consistency proof ties the two signed checkpoints.
    let corpus = env.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 2, comments: 40, rounds: 0, seed: 9, authors: 0 }).unwrap();
    env.ok(&["-q", "ingest", &corpus.display().to_string()]);
    let run = env.ok(&["verify", "--checkpoint", &note, "--key", &keys.verifier]);
    assert!(run.stdout.contains("ok: no problems found"), "{run}");
    let now = env.write("now.note", env.ok(&["checkpoint", "--key", &keys.key_file]).stdout);
    let then_size = std::fs::read_to_string(&note).unwrap().lines().nth(1).unwrap().to_string();
    let proof = env.write("c.json", env.ok(&["prove", "--consistency", &then_size]).stdout);
    env.ok(&[
        "verify-proof",
        &proof,
        "--checkpoint",
        &now,
        "--key",
        &keys.verifier,
        "--old-checkpoint",
        &note,
    ]);
    // Checked against a checkpoint signed by another key: refused.
    let other = keys_other(&env);
    let foreign = env.write(
        "foreign.note",
        env.ok(&["checkpoint", "--key", &other, "--origin", "archive.example/news"]).stdout,
    );
    let run = env.run(&["verify", "--checkpoint", &foreign, "--key", &keys.verifier]).expect_code(1);
    assert!(run.stdout.contains("no signature by the key"), "{run}");
    let run =
        env.run(&["verify", "--json", "--checkpoint", &foreign, "--key", &keys.verifier]).expect_code(1);
    let v = run.json();
    assert_eq!(v["findings"][0]["check"], "checkpoint", "{run}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "the rest of the audit ran clean\n{run}");
    // A saved note read without --key is a usage error, not a pass.
    env.run(&["verify", "--checkpoint", &note]).expect_code(2);
    // Another history with the same size and key: not the signed tree.
    let twin = Env::new();
    twin.ok(&["-q", "ingest", &corpus.display().to_string()]);
    twin.ok(&["-q", "ingest", &page]);
    let run = twin.run(&["verify", "--checkpoint", &note, "--key", &keys.verifier]).expect_code(1);
    assert!(run.stdout.contains("does not have the signed checkpoint's root"), "{run}");
    // A checkpoint past the end of the log.
    let short = Env::new();
    short.ok(&["-q", "ingest", &jsonl()]);
    let run = short.run(&["verify", "--checkpoint", &note, "--key", &keys.verifier]).expect_code(1);
    assert!(run.stdout.contains("entries were removed"), "{run}");
}

fn jsonl() -> String {
    crate::support::jsonl_fixture()
}

#[test]
fn the_stored_tree_is_checked_and_rebuilt_from_the_log() {
    let env = archive_of_several_tiles();
    let root = env.ok(&["prove", "1"]).json()["root"].clone();
    let hashes = env.archive.join("tree").join("hashes");
    let len = std::fs::metadata(&hashes).unwrap().len();
    assert!(len >= 16 + 32 * 4, "{len} bytes: a few stored hashes");
    // A changed stored hash: verify names it; repair rebuilds it.
    let mut bytes = std::fs::read(&hashes).unwrap();
    bytes[len as usize - 32 + 5] ^= 0x20; // the last stored hash: the root uses it
    std::fs::write(&hashes, &bytes).unwrap();
    let run = env.run(&["verify"]).expect_code(1);
    assert!(run.stdout.contains("tree: 1 of the Merkle tree's stored hashes differ"), "{run}");
    // Nothing is signed from a damaged stored hash: the root is hashed from
    // the log and compared first.
    let key = env.dir.path().join("k.key").display().to_string();
    env.ok(&["key", "generate", "archive.example/news", "--out", &key]);
    let run = env.run(&["checkpoint", "--key", &key]).expect_code(2);
    assert!(run.stdout.is_empty() && run.stderr.contains("nothing was signed"), "{run}");
    let run = env.run(&["verify", "--json"]).expect_code(1);
    assert_eq!(run.json()["findings"][0]["check"], "tree", "{run}");
    env.ok(&["repair"]);
    env.ok(&["verify"]);
    assert_eq!(env.ok(&["prove", "1"]).json()["root"], root);
    // Lost: hashed again from the log when the archive opens.
    std::fs::remove_dir_all(env.archive.join("tree")).unwrap();
    assert_eq!(env.ok(&["prove", "1"]).json()["root"], root);
    assert_eq!(std::fs::metadata(&hashes).unwrap().len(), len);
    env.ok(&["verify"]);
    // Cut short (a crash before its tail reached the disk): its tail is
    // hashed again.
    let f = std::fs::OpenOptions::new().write(true).open(&hashes).unwrap();
    f.set_len(len - 40).unwrap();
    drop(f);
    assert_eq!(env.ok(&["prove", "1"]).json()["root"], root);
    env.ok(&["verify"]);
    // Not a tree file at all: moved aside and rebuilt.
    std::fs::write(&hashes, b"garbage").unwrap();
    assert_eq!(env.ok(&["prove", "1"]).json()["root"], root);
    env.ok(&["verify"]);
    // The index (db/) lost: the tree is rebuilt with it.
    std::fs::remove_dir_all(env.archive.join("db")).unwrap();
    assert_eq!(env.ok(&["prove", "1"]).json()["root"], root);
    env.ok(&["verify"]);
}

#[test]
fn an_imported_archive_has_the_same_tree_and_proofs() {
    let env = archive_of_several_tiles();
    let export = env.dir.path().join("all.cairn").display().to_string();
    env.ok(&["export", &export]);
    let mut copy = Env::new();
    copy.archive = env.dir.path().join("imported");
    copy.ok(&["import", &export]);
    assert_eq!(copy.ok(&["checkpoint"]).stdout, env.ok(&["checkpoint"]).stdout);
    assert_eq!(copy.ok(&["prove", "77"]).stdout, env.ok(&["prove", "77"]).stdout);
    assert_eq!(
        copy.ok(&["prove", "--consistency", "129"]).stdout,
        env.ok(&["prove", "--consistency", "129"]).stdout
    );
    copy.ok(&["verify"]);
}

#[test]
fn a_proof_file_past_the_size_limit_is_refused_unread() {
    let env = Env::new();
    env.ok(&["-q", "ingest", &fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string()]);
    let keys = keys(&env, "archive.example/news", "signer.key");
    let note = env.write("cp.note", env.ok(&["checkpoint", "--key", &keys.key_file]).stdout);
    let big = env.dir.path().join("big.json");
    std::fs::File::create(&big).unwrap().set_len((64 << 20) + 1).unwrap();
    let run =
        env.run(&["verify-proof", big.to_str().unwrap(), "--checkpoint", &note, "--key", &keys.verifier]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.starts_with("refused: ") && run.stdout.contains("big.json: larger than"), "{run}");
}
