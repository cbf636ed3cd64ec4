//! A full disk (part of issue 12): on a small tmpfs, documents are ingested
//! one run at a time until the disk fills. The failing run exits 2 saying
//! the disk is full; once space is freed, the archive opens (after `cairn
//! repair` if its index was damaged) and `verify --checkpoint` of the last
//! head saved before the fault passes. Needs root and tmpfs (as .ci/run
//! has); skipped, saying so, otherwise.

use crate::generated::gen_tribune::{generate, Params};
use crate::support::{walk, Env};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?
            .status
            .success();
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    /// [`Tmpfs::mount`], or `None` after saying on stderr that `test` is
    /// skipped (no root, or no tmpfs).
    fn mount_or_skip(at: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        let mounted = Tmpfs::mount(at, size);
        if mounted.is_none() {
            eprintln!("skipping {test}: cannot mount a tmpfs (needs root)");
        }
        mounted
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).output();
        assert!(out.is_ok_and(|o| o.status.success()), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

#[test]
fn a_full_disk_loses_no_acknowledged_document() {
    let mut env = Env::new();
    let Some(disk) = Tmpfs::mount_or_skip(
        &env.dir.path().join("disk"),
        "2m",
        "a_full_disk_loses_no_acknowledged_document",
    ) else {
        return;
    };
    let corpus = env.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 80, comments: 60, rounds: 1, seed: 5, authors: 0 }).unwrap();
    let mut files: Vec<PathBuf> = walk(&corpus);
    files.sort();
    env.archive = disk.0.join("archive");
    let cairn = |args: &[&str]| env.command(args).output().unwrap();
    let mut acknowledged: Option<String> = None;
    let mut failed = None;
    for (i, f) in files.iter().enumerate() {
        let out = cairn(&["-q", "ingest", &f.display().to_string()]);
        if !out.status.success() {
            failed = Some((i, out));
            break;
        }
        let head = cairn(&["head"]);
        if !head.status.success() {
            failed = Some((i, head));
            break;
        }
        acknowledged = Some(String::from_utf8_lossy(&head.stdout).trim().replace(' ', ":"));
    }
    let (at, out) = failed.expect("the disk filled up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "document {at}: {stderr}");
    assert!(stderr.contains("the disk is full"), "document {at}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let checkpoint = acknowledged.expect("some documents went in before the disk filled");

    disk.resize("64m");
    if !cairn(&["head"]).status.success() {
        let repair = cairn(&["repair"]);
        assert!(repair.status.success(), "repair: {}", String::from_utf8_lossy(&repair.stderr));
    }
    let verify = cairn(&["verify", "--checkpoint", &checkpoint]);
    assert!(
        verify.status.success(),
        "verify --checkpoint {checkpoint}:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // The rest of the corpus goes in once there is room.
    let rest = cairn(&["-q", "ingest", &corpus.display().to_string()]);
    assert!(rest.status.success(), "{}", String::from_utf8_lossy(&rest.stderr));
    assert!(cairn(&["verify", "--checkpoint", &checkpoint]).status.success());
}

/// One ingest of many documents on a disk that fills part way: it commits
/// a group at a time, so the documents of its first inputs stay in the
/// archive. The failing run says which ones, and that is exactly true:
/// once space is freed, a dry run of those inputs finds nothing new, and
/// the archive verifies.
#[test]
fn an_ingest_stopped_by_a_full_disk_says_which_inputs_it_committed() {
    let mut env = Env::new();
    let Some(disk) = Tmpfs::mount_or_skip(
        &env.dir.path().join("disk"),
        "8m",
        "an_ingest_stopped_by_a_full_disk_says_which_inputs_it_committed",
    ) else {
        return;
    };
    let corpus = env.dir.path().join("corpus");
    // About 40,000 events in 700 documents: several group commits (at most
    // 16,384 events or 512 documents each) before the end.
    generate(&corpus, &Params { articles: 700, comments: 55, rounds: 0, seed: 9, authors: 0 }).unwrap();
    // An input it rejects early on: listed, though the run stops.
    let junk = walk(&corpus).into_iter().min().unwrap().with_extension("junk.txt");
    std::fs::write(&junk, "no comment section here\n").unwrap();
    let mut files: Vec<PathBuf> = walk(&corpus);
    files.sort();
    assert!(files[..10].contains(&junk));
    env.archive = disk.0.join("archive");
    let cairn = |args: &[&str]| env.command(args).output().unwrap();
    let out = cairn(&["-q", "ingest", &corpus.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains(&format!("cairn: rejected {}: unrecognized layout", junk.display())), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    let total = files.len();
    let (committed, last) = match stderr.find("committed the documents of its first ") {
        Some(at) => {
            // "… its first K of N inputs (through NAME), …"
            let rest = &stderr[at + "committed the documents of its first ".len()..];
            let k: usize = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(rest.contains(&format!(" of {total} inputs (through ")), "{stderr}");
            let name = rest.split("(through ").nth(1).unwrap().split("),").next().unwrap().to_string();
            (k, Some(name))
        }
        None => {
            assert!(stderr.contains(&format!("committed none of its {total} inputs")), "{stderr}");
            (0, None)
        }
    };
    // 8 MiB holds the first group commit (about 290 documents) and not
    // the whole corpus (one group in 5-10 MiB, two in 12-14 MiB at
    // commit 656d8c9's sizes).
    assert!(committed > 0 && committed < total, "{stderr}");
    if let Some(last) = &last {
        assert_eq!(*last, files[committed - 1].display().to_string(), "{stderr}");
    }

    disk.resize("256m");
    if !cairn(&["head"]).status.success() {
        let repair = cairn(&["repair"]);
        assert!(repair.status.success(), "repair: {}", String::from_utf8_lossy(&repair.stderr));
    }
    let verify = cairn(&["verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    if committed > 0 {
        // Every document of the inputs it named is in the archive.
        let mut args = vec!["ingest".to_string(), "--dry-run".into(), "--json".into()];
        args.extend(files[..committed].iter().filter(|f| **f != junk).map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dry = cairn(&args);
        assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
        let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
        assert_eq!(report["comments"]["new"], 0, "{report}");
        assert_eq!(report["captures"]["new"], 0, "{report}");
    }
    // The rest goes in once there is room (the junk is rejected again:
    // exit 1).
    let rest = cairn(&["-q", "ingest", &corpus.display().to_string()]);
    let rest_err = String::from_utf8_lossy(&rest.stderr);
    assert_eq!(rest.status.code(), Some(1), "{rest_err}");
    assert_eq!(rest_err.lines().filter(|l| l.starts_with("cairn: rejected")).count(), 1, "{rest_err}");
    assert!(cairn(&["verify"]).status.success());
}

/// A full disk where a command writes its output (not the archive's):
/// the message says the archive was not changed, and gives none of the
/// archive's recovery advice; the file is not left half written.
#[test]
fn a_full_disk_under_an_output_file_leaves_the_archive_alone_and_says_so() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount_or_skip(
        &env.dir.path().join("out"),
        "64k",
        "a_full_disk_under_an_output_file_leaves_the_archive_alone_and_says_so",
    ) else {
        return;
    };
    let corpus = env.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 20, comments: 60, rounds: 1, seed: 5, authors: 0 }).unwrap();
    env.ok(&["-q", "ingest", &corpus.join("round-00").display().to_string()]);
    let head = env.head();
    for args in [vec!["table", "comments", "--format", "csv", "-o"], vec!["export"]] {
        let file = disk.0.join("out.file");
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(file.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = env.run(&args).expect_code(2);
        assert!(run.stderr.contains("the disk is full writing"), "{args:?}: {run}");
        assert!(run.stderr.contains("the archive was not changed"), "{args:?}: {run}");
        assert!(!run.stderr.contains("repair"), "{args:?}: {run}");
        assert!(!file.exists(), "{args:?}");
        assert!(std::fs::read_dir(&disk.0).unwrap().next().is_none(), "{args:?}: nothing left on the disk");
    }
    assert_eq!(env.head(), head);
}
