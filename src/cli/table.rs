//! `cairn table`: the archive as a table for pandas, R, DuckDB or Spark.

use crate::cli::{open_views, Cli, Status};
use crate::error::Result;
use crate::tables::{self, Filter, Format, Table};
use std::io::Write;
use std::path::PathBuf;

/// Write one table of the archive as CSV, JSON Lines or Parquet
/// (docs/tables.md): `comments` (one row per comment, with its status,
/// versions and parent), `versions`, `articles`, `captures` or `sightings`
/// (capture x comment, in page order). Times are UTC instants.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The table.
    #[arg(value_enum, value_name = "TABLE")]
    pub table: Table,

    /// The output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,

    /// Write to FILE (replaced whole, or left as it was on an error)
    /// instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Only this article (a URL, key, id prefix or title words, as `thread`
    /// takes).
    #[arg(long, value_name = "ARTICLE")]
    pub article: Option<String>,

    /// Only comments (and versions) by this author, exactly as shown.
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,

    /// Only what was observed (fetched, else recorded) at or after TIME
    /// (RFC 3339 with offset, or a date).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only what was observed at or before TIME (a date includes that day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// Runs `cairn table`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let filter = Filter {
        since: args.since.as_deref().map(|s| tables::parse_time("--since", s)).transpose()?,
        until: args.until.as_deref().map(|s| tables::parse_time("--until", s)).transpose()?,
        author: args.author.clone(),
        article: None,
    };
    let archive = open_views(cli)?;
    let filter = Filter {
        article: args
            .article
            .as_deref()
            .map(|a| crate::views::threads::resolve_article(&archive, a))
            .transpose()?,
        ..filter
    };
    let at = crate::views::as_of(&archive, crate::views::threads::NAME)?;
    if let Some(note) = crate::cli::output::as_of_note(&at) {
        tracing::warn!("the table shows the {}", note.trim_start_matches('(').trim_end_matches(')'));
    }
    let mut rows = 0;
    crate::cli::outfile::write_to(&cli.archive, args.output.as_deref(), out, |w| {
        let mut sink = tables::writer(args.format, args.table.columns(), w)?;
        rows = tables::produce(&archive, args.table, &filter, sink.as_mut())?;
        sink.finish()
    })?;
    tracing::info!("{rows} rows");
    Ok(Status::Ok)
}
