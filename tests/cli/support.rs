//! A small harness around the `cairn` binary, in the manner of ripgrep's
//! `TestCommand`: every test gets its own temp dir and archive, and a failed
//! expectation prints the command, its exit code, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// The fixed `SOURCE_DATE_EPOCH` tests use, so heads are reproducible.
pub const EPOCH: &str = "1700000000";

/// The project's fixtures directory.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// The result of one run.
pub struct Run {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(cmd: String, out: Output) -> Run {
        Run {
            cmd,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, printing everything on failure.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        self
    }

    /// Parses stdout as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

/// A temp dir with an archive path inside it.
pub struct Env {
    pub dir: TempDir,
    pub archive: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = TempDir::new().expect("temp dir");
        let archive = dir.path().join("archive");
        Env { dir, archive }
    }

    /// A `cairn` command with `--archive` set, run in the temp dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.arg("--archive").arg(&self.archive).args(args).current_dir(self.dir.path());
        cmd.env("SOURCE_DATE_EPOCH", EPOCH).env_remove("CAIRN_ARCHIVE").env_remove("RUST_LOG");
        cmd
    }

    /// Runs `cairn ARGS` under strace with `faults` (its `-e inject=...`
    /// and `-P PATH` arguments: syscalls that fail, and the files they are
    /// limited to), or `None`, having said why on stderr, when strace is
    /// missing or cannot trace here (`test` names the test skipped).
    pub fn traced(&self, test: &str, faults: &[&std::ffi::OsStr], args: &[&str]) -> Option<Run> {
        let works = Command::new("strace").args(["-qq", "-o", "/dev/null", "true"]).status();
        if !works.is_ok_and(|s| s.success()) {
            eprintln!("skipping {test}: strace is missing or cannot trace here");
            return None;
        }
        let cairn = self.command(args);
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync"]).args(faults);
        cmd.arg(cairn.get_program()).args(cairn.get_args()).current_dir(self.dir.path());
        cmd.env("SOURCE_DATE_EPOCH", EPOCH).env_remove("CAIRN_ARCHIVE").env_remove("RUST_LOG");
        let out = cmd.output().expect("strace runs");
        Some(Run::from_output(format!("strace ... cairn {}", args.join(" ")), out))
    }

    /// strace arguments that make every sync of a view's value files fail
    /// (EIO): the files in `views/` whose names start with `prefix`.
    pub fn view_syncs_failing(&self, prefix: &str) -> Vec<std::ffi::OsString> {
        let mut faults: Vec<std::ffi::OsString> =
            ["-e", "inject=fdatasync:error=EIO", "-e", "inject=fsync:error=EIO"].map(Into::into).into();
        for file in std::fs::read_dir(self.archive.join("views")).expect("views/") {
            let path = file.expect("views/").path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
                faults.extend(["-P".into(), path.into_os_string()]);
            }
        }
        assert!(faults.len() > 4, "no value file of {prefix} in views/");
        faults
    }

    /// Runs `cairn ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("cairn runs");
        Run::from_output(format!("cairn {}", args.join(" ")), out)
    }

    /// Runs `cairn ARGS` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cairn starts");
        child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
        let out = child.wait_with_output().expect("cairn ends");
        Run::from_output(format!("cairn {} < input", args.join(" ")), out)
    }

    /// Runs and expects exit 0; returns the run.
    pub fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    /// `cairn head` output, trimmed.
    pub fn head(&self) -> String {
        self.ok(&["head"]).stdout.trim().to_string()
    }

    /// Writes a file in the temp dir and returns its path as a string.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, content).expect("write file");
        path.display().to_string()
    }
}

/// Copies a directory tree (an archive) from `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The bundled JSONL fixture's path.
pub fn jsonl_fixture() -> String {
    fixture("kayani-2012-03-28.jsonl").display().to_string()
}

/// Appends page `page` (file `name`) fetched at `fetched_at` as tribune
/// parser 4 read it, its parse recorded as ingest records it; `complete`:
/// without the gaps and the cut last comment parser 5 finds (a stray line).
pub fn append_as_parser_4(env: &Env, name: &str, page: &str, fetched_at: &str, complete: bool) {
    let then = cairn::model::Timestamp::parse_canonical(fetched_at).unwrap();
    let opts = cairn::ingest::IngestOptions {
        format: Some(cairn::ingest::Format::Tribune),
        fetched_at: Some(then),
        ..cairn::ingest::IngestOptions::default()
    };
    let mut doc = cairn::ingest::parse_document(name, page.as_bytes(), &opts).expect("parses");
    doc.parser_version = 4;
    if complete {
        doc.gaps.clear();
        doc.items.iter_mut().for_each(|i| i.possibly_truncated = false);
    }
    let capture = cairn::ingest::capture_for(
        name,
        cairn::model::BlobId(*blake3::hash(page.as_bytes()).as_bytes()),
        &doc,
        &opts,
    );
    let key = cairn::store::parse_key_of(&capture);
    let mut events = doc.events;
    events.push(cairn::model::Event::Capture(Box::new(capture)));
    let mut archive =
        cairn::store::Archive::open(&env.archive, cairn::store::OpenMode::CreateIfMissing).unwrap();
    let mut document = cairn::store::NewDocument::new(page.as_bytes(), events);
    document.parse_key = Some(key);
    archive.append_document(document, false).unwrap();
    archive.flush().unwrap();
}
