//! `cairn ingest`: read scraped documents and append what is new.

use crate::cli::output::{counts_json, plural, printable, with_fields};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::ingest::{collect_inputs, ingest_inputs, Format, IngestOptions, IngestReport};
use crate::model::time::parse_offset;
use crate::model::Timestamp;
use crate::store::{Archive, HeadState, OpenMode};
use serde_json::json;
use std::io::Write;

/// `--format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Detect each input's format from its content.
    Auto,
    /// JSON Lines interchange records (docs/jsonl.md).
    Jsonl,
    /// The Express Tribune page text layout (docs/tribune.md).
    Tribune,
}

/// Ingest scraped documents. Each input is one document; all of its new
/// events are appended atomically, and events already archived are counted
/// as duplicates. Exit 1 when any input was rejected (the others are still
/// ingested).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files, directories (walked recursively in sorted order) or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,

    /// The input format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// Report what would be appended without writing anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// UTC offset for times that show none, as +HH:MM (tribune pages: +05:00
    /// when not given; JSON Lines: such times stay offset-less).
    #[arg(long, value_name = "+HH:MM", allow_hyphen_values = true)]
    pub tz: Option<String>,

    /// The URL the document was scraped from (canonicalized).
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,

    /// When the document was fetched, RFC 3339 with offset. Views order
    /// captures by it (else by when they were recorded). A JSON Lines
    /// document's own `fetched_at` takes precedence.
    #[arg(long, value_name = "RFC3339", conflicts_with = "fetched_at_from")]
    pub fetched_at: Option<String>,

    /// Take each file's fetch time from its modification time (`mtime`).
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub fetched_at_from: Option<FetchedAtFrom>,

    /// Refuse partial captures (cut off, paginated, without a declared
    /// comment count, or with comments after a stray line): exit 1 and
    /// append nothing of them.
    #[arg(long)]
    pub strict: bool,

    /// The largest document read (bytes, or with KiB, MiB, GiB; at most
    /// 256MiB). A larger input is rejected before it is read whole, stdin,
    /// FIFOs and devices included.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_document_size: u64,
}

/// Parses a size: bytes, or a number with `KiB`, `MiB` or `GiB` (also `K`,
/// `M`, `G`), from 1 byte to [`crate::ingest::MAX_DOCUMENT_CEILING`].
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("{s:?}: use bytes, or KiB, MiB, GiB")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).unwrap_or(u64::MAX);
    if bytes == 0 || bytes > crate::ingest::MAX_DOCUMENT_CEILING {
        return Err(format!("{s:?}: the size must be from 1 byte to 256MiB"));
    }
    Ok(bytes)
}

/// `--fetched-at-from` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FetchedAtFrom {
    /// The file's modification time (UTC, whole seconds).
    Mtime,
}

impl Args {
    fn options(&self) -> Result<IngestOptions> {
        let tz = match &self.tz {
            None => None,
            Some(s) => Some(
                parse_offset(s)
                    .ok_or_else(|| Error::Usage(format!("--tz {s:?} is not an offset like +05:00")))?,
            ),
        };
        let fetched_at = match &self.fetched_at {
            None => None,
            Some(s) => match Timestamp::parse_input(s, None) {
                Some(t @ Timestamp::Zoned(..)) => Some(t),
                _ => {
                    let why = "is not an RFC 3339 date-time with offset (e.g. 2012-03-30T08:00:00Z)";
                    return Err(Error::Usage(Timestamp::input_refusal("--fetched-at", s, why)));
                }
            },
        };
        let format = match self.format {
            FormatArg::Auto => None,
            FormatArg::Jsonl => Some(Format::Jsonl),
            FormatArg::Tribune => Some(Format::Tribune),
        };
        IngestOptions {
            format,
            tz,
            source_url: None,
            fetched_at,
            fetched_at_from_mtime: self.fetched_at_from == Some(FetchedAtFrom::Mtime),
            strict: self.strict,
            max_document: self.max_document_size,
            dry_run: self.dry_run,
            near_duplicates: None,
        }
        .with_source_url(self.source_url.as_deref())
    }
}

/// The `--json` report: exactly the shape docs/cli.md gives.
pub fn report_json(report: &IngestReport, head: &HeadState) -> serde_json::Value {
    let counts = counts_json(&report.new, &report.duplicate, (head.seq, head.hash));
    let mut v = with_fields(
        counts,
        json!({
            "inputs": report.inputs,
            "errors": report.errors.iter().map(|e| json!({"path": e.path, "error": e.detail()})).collect::<Vec<_>>(),
            "warnings": report.warnings.iter().map(|w| json!({"path": w.path, "warning": w.message})).collect::<Vec<_>>(),
        }),
    );
    if !report.files.is_empty() {
        v["files"] = report
            .files
            .iter()
            .map(|f| {
                let c = f.changes.as_ref();
                json!({
                    "path": f.path,
                    "comments": f.comments,
                    "archived": f.archived,
                    "near_duplicates": f.near_duplicates,
                    "capture_archived": c.map(|c| c.archived),
                    "would_add": c.map(|c| c.added),
                    "would_remove": c.map(|c| c.removed),
                    "would_edit": c.map(|c| c.edited),
                    "unseen": c.map(|c| c.unseen),
                    "backfilled_articles": c.map(|c| c.backfilled),
                })
            })
            .collect();
    }
    v
}

fn write_text(report: &IngestReport, dry_run: bool, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &report.files {
        let effect = match &f.changes {
            None => "no preview of its changes: the views are pinned by `cairn replay --until`".to_string(),
            Some(c) if c.archived => "capture already archived: changes nothing".to_string(),
            Some(c) => {
                let mut s = format!("would add {}, remove {}, edit {}", c.added, c.removed, c.edited);
                if c.unseen > 0 {
                    s.push_str(&format!(" ({} not shown by this partial capture stay present)", c.unseen));
                }
                if c.backfilled > 0 {
                    s.push_str(
                        " (older than a capture already archived: placed in history by its fetch time)",
                    );
                }
                s
            }
        };
        writeln!(
            out,
            "{}: {}, {} already archived, {} near-duplicates of archived comments; {effect}",
            printable(&f.path),
            plural(f.comments, "comment"),
            f.archived,
            f.near_duplicates
        )?;
    }
    let verb = if dry_run { "would append" } else { "appended" };
    let n = &report.new;
    let d = &report.duplicate;
    writeln!(
        out,
        "{} read, {} rejected; {verb} {}, {}, {} ({} duplicate articles, {} duplicate comments, {} duplicate captures)",
        plural(report.inputs, "input"),
        report.errors.len(),
        plural(n.articles, "article"),
        plural(n.comments, "comment"),
        plural(n.captures, "capture"),
        d.articles,
        d.comments,
        d.captures,
    )
}

/// Runs `cairn ingest`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let opts = args.options()?;
    let mut archive = if args.dry_run && !crate::store::is_archive(&cli.archive) {
        Archive::in_memory()
    } else {
        let existed = crate::store::is_archive(&cli.archive);
        let archive = crate::cli::open_archive(cli, OpenMode::CreateIfMissing)?;
        // (An ingest that waited for an import into that place finds the
        // imported archive: not one it created.)
        if !existed && archive.head().seq.0 == 0 && cli.quiet == 0 {
            // A mistyped --archive would otherwise start a new archive silently.
            crate::cli::output::to_stderr(format_args!(
                "cairn: created archive {}",
                printable(&cli.archive.display().to_string())
            ));
        }
        archive
    };
    let mut opts = opts;
    if args.dry_run {
        // The preview compares with the views as of the head, brought up to
        // date as any view command would (the log is not written).
        crate::views::catch_up(&archive, &crate::views::builtin())?;
        opts.near_duplicates = Some(std::sync::Arc::new(crate::dedupe::NearDuplicates::build(&archive)?));
    }
    let inputs = collect_inputs(&args.paths);
    let bar = if inputs.len() > 1 {
        crate::cli::progress_bar(
            cli,
            inputs.len() as u64,
            "{bar:30} {pos}/{len} files, {eta} left  {wide_msg}",
        )
    } else {
        None
    };
    let views = crate::views::builtin();
    let report = ingest_inputs(&mut archive, &inputs, &opts, Some(&views), |name| {
        if let Some(b) = &bar {
            // The file's own name: a long path would be cut at the end.
            let short = std::path::Path::new(name).file_name().map_or(name.into(), |n| n.to_string_lossy());
            b.set_message(printable(&short).into_owned());
            b.inc(1);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !args.dry_run {
        // Every document is committed by now: an error here leaves them all.
        let all = |e: Error| crate::ingest::stopped(e, &(inputs.len(), None), inputs.len(), &report.errors);
        crate::views::catch_up(&archive, &crate::views::builtin()).map_err(all)?;
        archive.flush().map_err(all)?;
    }
    if cli.quiet == 0 {
        for w in &report.warnings {
            crate::cli::output::to_stderr(format_args!("cairn: warning: {}", printable(&w.to_string())));
        }
    }
    for e in &report.errors {
        crate::cli::output::to_stderr(format_args!("cairn: rejected {}", printable(&e.to_string())));
    }
    if args.json {
        writeln!(out, "{}", report_json(&report, archive.head())).map_err(stdout_error)?;
    } else {
        write_text(&report, args.dry_run, out).map_err(stdout_error)?;
    }
    Ok(if report.errors.is_empty() { Status::Ok } else { Status::Problems })
}
