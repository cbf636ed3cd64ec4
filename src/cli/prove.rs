//! `cairn prove`: inclusion and consistency proofs of the archive's Merkle
//! tree, as JSON that `cairn verify-proof`, tools/verify_proof.py or any
//! RFC 9162 verifier checks without the archive.

use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::Seq;
use crate::transparency::proof::{proof_event_json, ConsistencyProof, InclusionProof};
use std::io::Write;

/// Print a proof, as JSON (docs/transparency.md). `cairn prove TARGET`: the
/// inclusion proof of one log entry (TARGET is its seq, digits only, or an
/// id prefix; write `id:PREFIX` for a prefix of digits only) in the tree of
/// --size entries, with the entry's canonical bytes (the leaf data), the
/// event as `show --json` prints it and its canonical identity bytes.
/// `cairn prove --consistency OLD`: the proof that the tree of OLD entries
/// is a prefix of the tree of --size entries (the archive only grew).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The entry: a seq, or an id prefix (`id:PREFIX` when it is all digits).
    #[arg(
        value_name = "SEQ|ID-PREFIX",
        required_unless_present = "consistency",
        conflicts_with = "consistency"
    )]
    pub target: Option<String>,

    /// Prove that the tree of OLD_SIZE entries is a prefix of the tree of
    /// --size entries.
    #[arg(long, value_name = "OLD_SIZE")]
    pub consistency: Option<u64>,

    /// The tree size the proof is for [default: every entry]; a checkpoint's
    /// size, to check the proof against it.
    #[arg(long, value_name = "N")]
    pub size: Option<u64>,
}

/// Runs `cairn prove`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    let size = args.size.unwrap_or(archive.head().seq.0);
    if size > archive.head().seq.0 {
        return Err(Error::Usage(format!("--size {size}: the archive has {} entries", archive.head().seq.0)));
    }
    let started = std::time::Instant::now();
    let proof = if let Some(old) = args.consistency {
        if old == 0 || old > size {
            return Err(Error::Usage(format!(
                "--consistency {old}: the old size must be 1 to {size}{}",
                if old == 0 {
                    " (an empty tree is a prefix of every tree: there is nothing to prove)"
                } else {
                    ""
                }
            )));
        }
        ConsistencyProof {
            old_size: old,
            new_size: size,
            old_root: archive.tree_root(old)?,
            new_root: archive.tree_root(size)?,
            consistency_path: archive.consistency_proof(old, size)?,
        }
        .to_json()
    } else {
        let target = args.target.as_deref().unwrap_or_default();
        let seq = match target.strip_prefix("id:") {
            None if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) => {
                Seq(target.parse().map_err(|_| Error::Usage(format!("{target:?} is not a seq")))?)
            }
            forced => archive.resolve_prefix(forced.unwrap_or(target))?.1,
        };
        if seq.0 == 0 || seq.0 > size {
            return Err(Error::Usage(format!("seq {seq} is not in the tree of {size} entries")));
        }
        let entry = archive.entry(seq)?;
        InclusionProof {
            leaf_index: seq.0 - 1,
            tree_size: size,
            leaf_data: entry.leaf_data(),
            inclusion_path: archive.inclusion_proof(seq, size)?,
            root: archive.tree_root(size)?,
            event_bytes: entry.event.identity_bytes(),
            event: proof_event_json(&entry),
        }
        .to_json()
    };
    tracing::debug!("proof built in {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
    let text = serde_json::to_string_pretty(&proof).map_err(|e| Error::Internal(e.to_string()))?;
    writeln!(out, "{text}").map_err(stdout_error)?;
    Ok(Status::Ok)
}
