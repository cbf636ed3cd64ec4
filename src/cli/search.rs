//! `cairn search`: comments whose text or author matches a pattern.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time};
use crate::cli::thread::capture_text;
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::{ArticleKey, EventId, Timestamp};
use crate::search::{self, Hit, Query, Record};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;

/// Find comment versions whose body or author matches PATTERN (a regular
/// expression, Rust `regex` syntax), every version of every comment, in
/// time order (posted, else recorded), each with its article and its status
/// in the thread: present, removed, superseded (an older version of an
/// edited comment) or truncated. Finding nothing is not an error (exit 0).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pattern.
    #[arg(value_name = "PATTERN")]
    pub pattern: String,

    /// Match case-insensitively.
    #[arg(short, long)]
    pub ignore_case: bool,

    /// Take PATTERN as plain text, not a regular expression.
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,

    /// Which comments.
    #[command(flatten)]
    pub select: crate::cli::filters::Selection,

    /// Only versions with this status; repeatable.
    #[arg(long, value_enum)]
    pub status: Vec<StatusArg>,

    /// Print `{"pattern","count","matches":[...],"as_of"}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// A version's status in its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    /// The current version of a comment the latest capture shows.
    Present,
    /// The current version of a comment a later complete capture no longer shows.
    Removed,
    /// An older version of an edited comment.
    Superseded,
    /// Only ever seen cut off in a partial capture.
    Truncated,
}

impl StatusArg {
    fn name(self) -> &'static str {
        match self {
            StatusArg::Present => "present",
            StatusArg::Removed => "removed",
            StatusArg::Superseded => "superseded",
            StatusArg::Truncated => "truncated",
        }
    }
}

/// Runs `cairn search`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let source = if args.fixed_strings { regex::escape(&args.pattern) } else { args.pattern.clone() };
    let pattern = regex::RegexBuilder::new(&source)
        .case_insensitive(args.ignore_case)
        .build()
        .map_err(|e| Error::Usage(format!("pattern {:?}: {e}", args.pattern)))?;
    args.select.times()?;
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::threads::NAME])?;
    let select = args.select.parse(&archive)?;
    let query = Query {
        pattern,
        article: select.article,
        author: select.author,
        window: select.window,
        status: args.status.iter().map(|s| s.name()).collect(),
    };
    let results = search::search(&archive, &query)?;
    let at = crate::views::as_of(&archive, crate::views::threads::NAME)?;
    let titles: HashMap<ArticleKey, Option<String>> =
        crate::views::threads::list_articles(&archive)?.into_iter().map(|s| (s.key, s.title)).collect();
    let n = results.hits.len();
    if args.json {
        let head = json!({"pattern": args.pattern, "count": n}).to_string();
        write!(out, "{},\"matches\":[", &head[..head.len() - 1]).map_err(stdout_error)?;
    } else {
        if let Some(note) = as_of_note(&at) {
            writeln!(out, "{note}").map_err(stdout_error)?;
        }
        writeln!(out, "{n} {}", if n == 1 { "match" } else { "matches" }).map_err(stdout_error)?;
    }
    for (i, h) in results.hits.iter().enumerate() {
        let record = results.record(h)?;
        let key = &results.articles[h.article as usize];
        let title = titles.get(key).cloned().flatten();
        let (first, last) = results.seen(h);
        if args.json {
            let row = Row {
                id: record.id.to_hex(),
                seq: h.seq.0,
                article: key.as_str(),
                title: title.as_deref(),
                author: record.author.as_deref(),
                posted_at: record.posted_at.as_deref(),
                status: h.status(),
                merged_into: results.merged_into(h).map(|m| m.to_hex()),
                first_seen: CaptureRow::of(first),
                last_seen: CaptureRow::of(last),
                body: &record.body,
            };
            if i > 0 {
                out.write_all(b",").map_err(stdout_error)?;
            }
            serde_json::to_writer(&mut *out, &row).map_err(|e| Error::io("standard output", e.into()))?;
        } else {
            write_text(out, h, results.merged_into(h), key, title, &record, last).map_err(stdout_error)?;
        }
    }
    if args.json {
        writeln!(out, "],\"as_of\":{}}}", as_of_json(&at)).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}

/// One match in `--json` (serialized directly: building a `Value` per row
/// was most of the time for large results).
#[derive(serde::Serialize)]
struct Row<'a> {
    id: String,
    seq: u64,
    article: &'a str,
    title: Option<&'a str>,
    author: Option<&'a str>,
    posted_at: Option<&'a str>,
    status: &'a str,
    merged_into: Option<String>,
    first_seen: CaptureRow,
    last_seen: CaptureRow,
    body: &'a str,
}

/// A capture as `thread --json` prints one.
#[derive(serde::Serialize)]
struct CaptureRow {
    seq: u64,
    id: String,
    recorded_at: String,
    fetched_at: Option<String>,
    complete: bool,
}

impl CaptureRow {
    fn of(c: &crate::views::thread_state::CaptureRef) -> CaptureRow {
        CaptureRow {
            seq: c.seq.0,
            id: c.id.to_hex(),
            recorded_at: c.recorded_at.canonical(),
            fetched_at: c.fetched_at.map(|t| t.canonical()),
            complete: c.complete,
        }
    }
}

fn write_text(
    out: &mut dyn Write,
    h: &Hit,
    merged_into: Option<EventId>,
    key: &ArticleKey,
    title: Option<String>,
    record: &Record,
    last_seen: &crate::views::thread_state::CaptureRef,
) -> std::io::Result<()> {
    let status = match h.status() {
        "removed" => format!("removed, last seen {}", capture_text(last_seen)),
        s => s.to_string(),
    };
    let merged = merged_into.map(|m| format!(" · merged into {}", m.short())).unwrap_or_default();
    let posted = record.posted_at.as_deref().and_then(Timestamp::parse_canonical);
    writeln!(
        out,
        "\n{} · {} · {status}{merged} · {} · {}",
        human_opt_time(posted.as_ref()),
        record.author.as_deref().unwrap_or("(no author)"),
        title.as_deref().unwrap_or(key.as_str()),
        record.id.short()
    )?;
    for line in record.body.lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}
