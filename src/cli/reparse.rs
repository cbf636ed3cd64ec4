//! `cairn reparse`: re-derive events from the stored raw captures.

use crate::cli::output::{counts_json, plural, with_fields};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::Result;
use crate::ingest::reparse::{reparse, ReparseReport};
use crate::store::{HeadState, OpenMode};
use serde_json::json;
use std::io::Write;

/// Re-parse every stored raw capture with the current parsers and append
/// whatever comes out new: how an archive benefits from a better parser.
/// Nothing is removed. Exit 1 when a stored capture no longer parses.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Report what would be appended without writing anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The counts in the shape every appending command gives them, then what
/// re-parsing found.
fn report_json(r: &ReparseReport, head: &HeadState) -> serde_json::Value {
    with_fields(
        counts_json(&r.new, &r.duplicate, (head.seq, head.hash)),
        json!({
            "captures_examined": r.captures,
            "parsed": r.parsed,
            "changed": r.changed.iter().map(|c| json!({
                "seq": c.seq.0,
                "source": c.source,
                "parser_version": {"from": c.parser_versions.0, "to": c.parser_versions.1},
                "complete": {"from": c.complete.0, "to": c.complete.1},
                "new": {"articles": c.new.articles, "comments": c.new.comments, "captures": c.new.captures},
            })).collect::<Vec<_>>(),
            "errors": r.errors.iter().map(|e| json!({"path": e.path, "error": e.detail()})).collect::<Vec<_>>(),
        }),
    )
}

/// Runs `cairn reparse`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let mut archive = crate::cli::open_archive(cli, OpenMode::MustExist)?;
    let report = reparse(&mut archive, args.dry_run)?;
    if !args.dry_run {
        // Everything is committed by now: a failure here says so.
        let all = |e| crate::ingest::reparse::stopped(e, &report, report.parsed, report.parsed, None);
        crate::cli::catch_up(cli, &archive, "updating the views").map_err(all)?;
        archive.flush().map_err(all)?;
    }
    for e in &report.errors {
        crate::cli::output::to_stderr(format_args!("cairn: cannot re-parse {e}"));
    }
    // A new capture never undoes what the earlier one decided: the user is
    // told where that may have been a removal the page did not show.
    for c in report.changed.iter().filter(|c| c.complete == (true, false)) {
        crate::cli::output::to_stderr(format_args!(
            "cairn: warning: seq {} {}: parser v{} read the page as showing its whole comment section, parser v{} \
             reads it as partial; comments the earlier capture marked removed stay so until a complete capture \
             shows them (docs/tribune.md)",
            c.seq, c.source, c.parser_versions.0, c.parser_versions.1
        ));
    }
    if args.json {
        writeln!(out, "{}", report_json(&report, archive.head())).map_err(stdout_error)?;
    } else {
        let verb = if args.dry_run { "would append" } else { "appended" };
        let text = format!(
            "{} examined, {} parsed; {verb} {}, {}, {}\n",
            plural(report.captures, "capture"),
            report.parsed,
            plural(report.new.articles, "article"),
            plural(report.new.comments, "comment"),
            plural(report.new.captures, "capture"),
        );
        out.write_all(text.as_bytes()).map_err(stdout_error)?;
        for c in &report.changed {
            writeln!(
                out,
                "  seq {} {} (parser v{} -> v{}): +{} articles, +{} comments, +{} capture",
                c.seq,
                c.source,
                c.parser_versions.0,
                c.parser_versions.1,
                c.new.articles,
                c.new.comments,
                c.new.captures
            )
            .map_err(stdout_error)?;
        }
    }
    Ok(if report.errors.is_empty() { Status::Ok } else { Status::Problems })
}
