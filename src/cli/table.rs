//! `cairn table`: the archive as a table for pandas, R, DuckDB or Spark.

use crate::cli::{Cli, Status};
use crate::error::Result;
use crate::tables::{self, Format, Table};
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

    /// Which comments.
    #[command(flatten)]
    pub select: crate::cli::filters::Selection,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// Runs `cairn table`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    args.select.times()?;
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::threads::NAME])?;
    let mut filter = args.select.parse(&archive)?;
    filter.check(args.table)?;
    let at = crate::views::as_of(&archive, crate::views::threads::NAME)?;
    if at.pinned || at.computed {
        filter.pinned = Some(at);
    }
    if let Some(note) = crate::cli::output::as_of_note(&at) {
        let note = note.trim_start_matches('(').trim_end_matches(')');
        if at.computed {
            tracing::info!("the table shows the {note}");
        } else {
            tracing::warn!("the table shows the {note}");
        }
    }
    let mut rows = 0;
    let bar = crate::cli::progress_bar(cli, 0, "{spinner} {human_pos} rows, {elapsed}");
    crate::cli::outfile::write_to(&cli.archive, args.output.as_deref(), out, |w| {
        let sink = tables::writer(args.format, args.table.columns(), w)?;
        let mut counted = Counted { inner: sink, bar: bar.as_ref() };
        rows = tables::produce(&archive, args.table, &filter, &mut counted)?;
        counted.inner.finish()
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    tracing::info!("{rows} rows");
    Ok(Status::Ok)
}

/// A sink that moves the progress bar (a terminal only) as rows pass.
struct Counted<'a, 'b> {
    inner: Box<dyn tables::RowSink + 'a>,
    bar: Option<&'b indicatif::ProgressBar>,
}

impl tables::RowSink for Counted<'_, '_> {
    fn row(&mut self, row: Vec<tables::Value>) -> Result<()> {
        if let Some(b) = self.bar {
            b.inc(1);
        }
        self.inner.row(row)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.inner.finish()
    }
}
