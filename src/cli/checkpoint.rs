//! `cairn checkpoint`: the Merkle tree's checkpoint (C2SP tlog-checkpoint),
//! signed as a C2SP note when a key is given; and the helpers that read
//! keys and signed checkpoints for the other transparency commands.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::transparency::note::{self, Checkpoint, Signer, Verifier};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Print the checkpoint of the archive's Merkle tree: the origin line, the
/// tree size (entries) and the tree hash in base64, as C2SP
/// tlog-checkpoint writes it; with --key, signed as a C2SP note (a blank
/// line and `— NAME SIGNATURE`), which Go's `note.Open` accepts. Save it,
/// publish it or send it: `cairn prove` and `cairn verify --checkpoint
/// NOTE --key` later show that an entry was in the tree it names and that
/// the archive only grew since (docs/transparency.md). The tree hash is
/// computed from every entry of the log (about 3 s at 1M entries) and
/// compared with the stored tree's before anything is printed or signed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signer key file (from `cairn key generate`).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// The origin line, naming the log [default: the key's name, or
    /// "cairn" without a key].
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,

    /// The tree size to describe [default: every entry].
    #[arg(long, value_name = "N")]
    pub size: Option<u64>,
}

/// Reads a signer key file (`PRIVATE+KEY+NAME+HASH+KEY`).
pub fn read_signer(path: &Path) -> Result<Signer> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Signer::parse(text.trim())
        .map_err(|why| Error::Usage(format!("{}: not a signer key: {why}", path.display())))
}

/// Reads a verifier key given as text (`NAME+HASH+KEY`) or as a file
/// holding it.
pub fn read_verifier(arg: &str) -> Result<Verifier> {
    match Verifier::parse(arg.trim()) {
        Ok(v) => Ok(v),
        Err(why) => {
            let path = Path::new(arg);
            if !path.is_file() {
                return Err(Error::Usage(format!("{arg:?} is neither a verifier key nor a file: {why}")));
            }
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            Verifier::parse(text.trim())
                .map_err(|why| Error::Usage(format!("{}: not a verifier key: {why}", path.display())))
        }
    }
}

/// Reads a signed checkpoint from `path` and opens it with `key`: the
/// checkpoint, or why it is refused (a refusal is a finding, exit 1;
/// a file that cannot be read is an error, exit 2).
pub fn open_note(path: &Path, key: &Verifier) -> Result<std::result::Result<Checkpoint, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() > 1 << 20 {
        return Ok(Err(format!("{}: {} bytes is too large for a checkpoint", path.display(), bytes.len())));
    }
    Ok(note::open(&bytes, key)
        .and_then(Checkpoint::parse)
        .map_err(|why| format!("{}: the signed checkpoint is refused: {why}", path.display())))
}

/// Runs `cairn checkpoint`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let signer = args.key.as_deref().map(read_signer).transpose()?;
    let origin = match (&args.origin, &signer) {
        (Some(o), _) => o.clone(),
        (None, Some(s)) => s.name.clone(),
        (None, None) => "cairn".to_string(),
    };
    if origin.is_empty() || origin.contains('\n') || origin.chars().any(char::is_control) {
        return Err(Error::Usage(format!("--origin {origin:?} must be one line of text")));
    }
    let archive = open_existing(cli)?;
    let size = args.size.unwrap_or(archive.head().seq.0);
    // What is signed is hashed from the log itself: a damaged stored hash
    // must never become a signed statement.
    let root = archive.tree_root_from_log(size)?;
    if archive.tree_root(size)? != root {
        return Err(Error::Corrupt(format!(
            "the Merkle tree's stored hashes (tree/hashes) do not give the root the log's first {size} entries give; \
             nothing was signed. `cairn repair` rebuilds them from the log"
        )));
    }
    let cp = Checkpoint { origin, size, root };
    let text = match &signer {
        Some(s) => s
            .sign(&cp.text())
            .map_err(|why| Error::Usage(format!("the checkpoint cannot be signed: {why}")))?,
        None => cp.text(),
    };
    out.write_all(text.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
