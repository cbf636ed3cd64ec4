//! `cairn verify`: the integrity audit.

use crate::audit::{verify, VerifyOptions, VerifyReport};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::ids::to_hex;
use crate::model::{ChainHash, Seq};
use crate::store::Archive;
use serde_json::json;
use std::io::{IsTerminal, Write};

/// Audit the archive: re-hash every event against its id, recompute every
/// entry hash and the chain against the stored heads, check that seqs are
/// dense, that the id index and the log match one to one, that references
/// point to earlier entries, that every document is whole, re-hash every
/// blob, and compare every view with a fresh replay. Every finding is
/// reported; exit 1 when there is any (docs/verify.md).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Check only the chain, seqs, head and index (no re-hashing of events
    /// and blobs, no views).
    #[arg(long)]
    pub quick: bool,

    /// A checkpoint saved earlier: `SEQ:HEX` (or "SEQ HEX") as `cairn head`
    /// prints it, or, with --key, a file holding a signed checkpoint from
    /// `cairn checkpoint --key`: prove the archive still extends it.
    #[arg(long, value_name = "SEQ:HEX|NOTE-FILE")]
    pub checkpoint: Option<String>,

    /// The verifier key (`NAME+HASH+KEY`, or a file holding it) that signed
    /// the --checkpoint note.
    #[arg(long, value_name = "VERIFIER-KEY", requires = "checkpoint")]
    pub key: Option<String>,

    /// Keep at most N ids in memory (32 bytes each; default 1500000): a
    /// log with more is read once more for each further N, so memory does
    /// not grow with the archive.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ids_per_pass: Option<u64>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_checkpoint(s: &str) -> Result<(Seq, ChainHash)> {
    checkpoint_of(s)
        .ok_or_else(|| Error::Usage(format!("--checkpoint {s:?} is not SEQ:HEX (as `cairn head` prints it)")))
}

/// A checkpoint as `cairn head` prints it, `SEQ HEX`, or `SEQ:HEX`.
pub fn checkpoint_of(s: &str) -> Option<(Seq, ChainHash)> {
    let (seq, hex) = s.trim().split_once([':', ' '])?;
    Some((Seq(seq.parse::<u64>().ok()?), ChainHash::from_hex(hex.trim())?))
}

/// The `--json` report.
pub fn report_json(r: &VerifyReport) -> serde_json::Value {
    json!({
        "ok": r.findings.is_empty(),
        "entries": r.entries,
        "segments": r.segments,
        "index_entries": r.index_entries,
        "blobs": r.blobs,
        "views": r.views,
        "head": crate::cli::output::head_json(r.stored_head.seq, &r.stored_head.hash),
        "computed_head": crate::cli::output::head_json(r.computed_head.0, &r.computed_head.1),
        "tree": r.tree_root.map(|root| json!({"size": r.computed_head.0.0, "root": to_hex(&root)})),
        "checks": r.checks,
        "orphan_blobs": r.orphan_blobs.iter().map(|b| b.to_hex()).collect::<Vec<_>>(),
        "caught_up": r.caught_up,
        "sets_rebuilt": r.sets_rebuilt,
        "index_unreadable": r.index_unreadable,
        "findings": r.findings.iter().map(|f| json!({
            "check": f.check,
            "seq": f.seq.map(|s| s.0),
            "id": f.id.map(|i| i.to_hex()),
            "message": f.message,
        })).collect::<Vec<_>>(),
    })
}

fn report_text(r: &VerifyReport) -> String {
    let mut s = String::new();
    for f in &r.findings {
        let seq = f.seq.map(|q| format!("seq {q}: ")).unwrap_or_default();
        s.push_str(&format!("{}{}: {}\n", seq, f.check, f.message));
    }
    for b in &r.orphan_blobs {
        s.push_str(&format!(
            "note: blob {b} is referenced by no capture (left by an interrupted commit, or written by hand)\n"
        ));
    }
    if r.caught_up > 0 {
        s.push_str(&format!(
            "note: the index (db/) was behind the log files; {} entries were caught up from them when the \
             archive was opened (a crash between a commit and its index, or a lost or older db/)\n",
            r.caught_up
        ));
    }
    if let Some(why) = &r.index_unreadable {
        s.push_str(&format!(
            "note: sled could not open the index (db/) ({why}); it was moved to db.unreadable and rebuilt from \
             the log files when the archive was opened (a crash that left sled's files damaged, or damage to them)\n"
        ));
    }
    if r.sets_rebuilt {
        s.push_str(
            "note: the articles' id sets (sets/) no longer matched their value files; they were rebuilt from \
             the log when the archive was opened (value files lost, emptied or replaced, or an older db/)\n",
        );
    }
    s.push_str(&format!(
        "checked {} entries in {} segments, {} index entries, {} blobs, {} views; head {} {}\n",
        r.entries,
        r.segments,
        r.index_entries,
        r.blobs,
        r.views,
        r.computed_head.0,
        to_hex(r.computed_head.1.as_bytes())
    ));
    if let Some(root) = r.tree_root {
        s.push_str(&format!("Merkle tree of {} entries: root {}\n", r.computed_head.0, to_hex(&root)));
    }
    s.push_str(&match r.findings.len() {
        0 => "ok: no problems found\n".to_string(),
        1 => "1 problem found\n".to_string(),
        n => format!("{n} problems found\n"),
    });
    s
}

/// Runs `cairn verify`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let mut refused_note = None;
    let (checkpoint, tree_checkpoint) = match (&args.checkpoint, &args.key) {
        (Some(note), Some(key)) => {
            let key = crate::cli::checkpoint::read_verifier(key)?;
            match crate::cli::checkpoint::open_note(std::path::Path::new(note), &key)? {
                Ok(cp) => (None, Some(cp)),
                Err(why) => {
                    // Reported with the rest of the audit, which still runs.
                    refused_note = Some(why);
                    (None, None)
                }
            }
        }
        (Some(cp), None) => {
            if std::path::Path::new(cp).is_file() && parse_checkpoint(cp).is_err() {
                return Err(Error::Usage(format!(
                    "--checkpoint {cp:?} is a file: a signed checkpoint needs --key VERIFIER-KEY"
                )));
            }
            (Some(parse_checkpoint(cp)?), None)
        }
        _ => (None, None),
    };
    let (archive, head_problem) =
        crate::cli::retry_while_in_use(cli, || Archive::open_for_audit(&cli.archive))?;
    let total = archive.head().seq.0;
    let bar = (std::io::stderr().is_terminal() && cli.quiet == 0 && !args.json).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("verifying {wide_bar} {pos}/{len} entries, {eta} left")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let opts =
        VerifyOptions { quick: args.quick, checkpoint, tree_checkpoint, ids_per_pass: args.ids_per_pass };
    let mut report = verify(&archive, head_problem, &opts, |n| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    })?;
    if let Some(why) = refused_note {
        report.checks.push("checkpoint");
        report.findings.insert(
            0,
            crate::audit::verify::Finding { check: "checkpoint", seq: None, id: None, message: why },
        );
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if args.json {
        writeln!(out, "{}", report_json(&report))
    } else {
        out.write_all(report_text(&report).as_bytes())
    }
    .map_err(stdout_error)?;
    Ok(if report.findings.is_empty() { Status::Ok } else { Status::Problems })
}
