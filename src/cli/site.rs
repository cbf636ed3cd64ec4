//! `cairn site`: the archive as a static HTML site.

use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::PathBuf;

/// Write a self-contained static HTML site of the archive into OUT-DIR
/// (docs/site.md): an index of articles, a page per thread (page order,
/// replies nested, removed comments marked and kept, edits with every
/// version, partial captures labelled, charts of comments per hour and
/// captures over time), a page per author and per capture with its raw
/// bytes. No server, no script, no network. Run again, it rewrites only the
/// pages whose article or author changed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to write (created if missing; never inside the archive).
    #[arg(value_name = "OUT-DIR")]
    pub out: PathBuf,

    /// Print `{"out","written","unchanged","raw","removed"}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// Runs `cairn site`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    crate::cli::outfile::check_destination(&cli.archive, &args.out.join("index.html"))?;
    let archive = crate::cli::open_views_at(
        cli,
        &args.at,
        &[crate::views::threads::NAME, crate::views::authors::NAME],
    )?;
    if args.out.exists() && !args.out.is_dir() {
        return Err(Error::Usage(format!("{} is a file, not a directory for the site", args.out.display())));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let bar = if args.json {
        None
    } else {
        crate::cli::progress_bar(cli, 0, "{spinner} {human_pos} pages, {elapsed}  {wide_msg}")
    };
    let s = crate::site::write_site(&archive, &args.out, |page| {
        tracing::debug!("{page}");
        if let Some(b) = &bar {
            b.set_message(page.to_string());
            b.inc(1);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if args.json {
        let at = crate::views::as_of(&archive, crate::views::threads::NAME)?;
        let v = serde_json::json!({"out": args.out.display().to_string(), "written": s.written,
                                   "unchanged": s.unchanged, "raw": s.raw, "removed": s.removed,
                                   "as_of": crate::cli::output::as_of_json(&at)});
        writeln!(out, "{v}").map_err(stdout_error)?;
    } else {
        if let Some(note) =
            crate::cli::output::as_of_note(&crate::views::as_of(&archive, crate::views::threads::NAME)?)
        {
            writeln!(out, "{note}").map_err(stdout_error)?;
        }
        writeln!(
            out,
            "wrote {} to {} ({} unchanged, {} removed, {} raw capture files written); open {}",
            crate::cli::output::plural(s.written, "page"),
            args.out.display(),
            s.unchanged,
            s.removed,
            s.raw,
            args.out.join("index.html").display()
        )
        .map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}
