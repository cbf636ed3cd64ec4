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
    let Some(disk) = Tmpfs::mount(&env.dir.path().join("disk"), "2m") else {
        eprintln!("skipping a_full_disk_loses_no_acknowledged_document: cannot mount a tmpfs (needs root)");
        return;
    };
    let corpus = env.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 80, comments: 60, rounds: 1, seed: 5 }).unwrap();
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
