//! `cairn verify-proof`: checks a proof from `cairn prove` against a signed
//! checkpoint, with no archive.

use crate::cli::checkpoint::{open_note, read_verifier};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::ids::to_hex;
use crate::transparency::proof::{self, Proof};
use std::io::Write;
use std::path::PathBuf;

/// Check a proof from `cairn prove` without the archive: the checkpoint's
/// signature by the verifier key, that the proof's tree size and root are
/// the checkpoint's, the RFC 9162 path, and (for an inclusion proof) that
/// the leaf data is the entry at seq leaf_index + 1 whose id is
/// BLAKE3(event_bytes) and whose fields encode to event_bytes. Exit 0 when
/// every check passes, 1 when one fails (the message says which), 2 when a
/// file cannot be read.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proof (JSON from `cairn prove`; `-` for stdin).
    pub proof: PathBuf,

    /// The signed checkpoint the proof is for (from `cairn checkpoint
    /// --key`); for a consistency proof, the newer one.
    #[arg(long, value_name = "NOTE-FILE")]
    pub checkpoint: PathBuf,

    /// The verifier key (`NAME+HASH+KEY`, or a file holding it).
    #[arg(long, value_name = "VERIFIER-KEY")]
    pub key: String,

    /// For a consistency proof: the older signed checkpoint, whose size and
    /// root the proof must start from.
    #[arg(long, value_name = "NOTE-FILE")]
    pub old_checkpoint: Option<PathBuf>,
}

/// The largest proof read (a proof of a capture of a very large page is a
/// few MiB).
const MAX_PROOF: u64 = 64 << 20;

fn read_bounded(input: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(input, MAX_PROOF + 1), &mut buf)?;
    Ok(buf)
}

fn refuse(out: &mut dyn Write, why: &str) -> Result<Status> {
    writeln!(out, "refused: {why}").map_err(stdout_error)?;
    Ok(Status::Problems)
}

/// Runs `cairn verify-proof`.
pub fn run(_cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let key = read_verifier(&args.key)?;
    // Read up to one byte past the limit: memory stays bounded whatever
    // the file or pipe holds.
    let (name, read): (String, std::io::Result<Vec<u8>>) = if args.proof.as_os_str() == "-" {
        ("standard input".into(), read_bounded(std::io::stdin().lock()))
    } else {
        let name = args.proof.display().to_string();
        (name, std::fs::File::open(&args.proof).and_then(read_bounded))
    };
    let text = read.map_err(|e| Error::io(&name, e))?;
    if text.len() as u64 > MAX_PROOF {
        return refuse(
            out,
            &format!("{name}: larger than {MAX_PROOF} bytes: not a proof from `cairn prove`"),
        );
    }
    let parsed = match Proof::parse(&text) {
        Ok(p) => p,
        Err(why) => return refuse(out, &format!("{}: {why}", args.proof.display())),
    };
    let checkpoint = match open_note(&args.checkpoint, &key)? {
        Ok(c) => c,
        Err(why) => return refuse(out, &why),
    };
    match parsed {
        Proof::Inclusion(p) => {
            if args.old_checkpoint.is_some() {
                return Err(Error::Usage("--old-checkpoint is for consistency proofs".into()));
            }
            match proof::check_inclusion(&p, &checkpoint) {
                Ok(leaf) => writeln!(
                    out,
                    "ok: entry {} (event {}) is leaf {} of the tree of {} entries in the checkpoint of {:?} signed by {}",
                    leaf.seq,
                    to_hex(&leaf.id),
                    p.leaf_index,
                    p.tree_size,
                    checkpoint.origin,
                    key.name
                )
                .map_err(stdout_error)?,
                Err(why) => return refuse(out, &why),
            }
        }
        Proof::Consistency(p) => {
            let old = match &args.old_checkpoint {
                Some(path) => match open_note(path, &key)? {
                    Ok(c) => Some(c),
                    Err(why) => return refuse(out, &why),
                },
                None => None,
            };
            match proof::check_consistency(&p, &checkpoint, old.as_ref()) {
                Ok(()) => writeln!(
                    out,
                    "ok: the tree of {} entries (root {}) is a prefix of the tree of {} entries in the checkpoint of {:?} signed by {}",
                    p.old_size,
                    to_hex(&p.old_root),
                    p.new_size,
                    checkpoint.origin,
                    key.name
                )
                .map_err(stdout_error)?,
                Err(why) => return refuse(out, &why),
            }
        }
    }
    Ok(Status::Ok)
}
