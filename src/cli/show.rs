//! `cairn show`: one event by id prefix.

use crate::cli::output::entry_json;
use crate::cli::{open_existing, stdout_error, Cli, Status};
use crate::error::Result;
use crate::model::{Event, LogEntry};
use std::io::Write;

/// Show one event. ID-PREFIX is any unique prefix of its hex id, as in git;
/// an ambiguous prefix is an error that lists the candidates.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A hex prefix of the event id.
    #[arg(value_name = "ID-PREFIX")]
    pub id: String,

    /// Print the entry as JSON.
    #[arg(long)]
    pub json: bool,
}

fn opt(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// Indents every non-empty line by four spaces.
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| if l.is_empty() { String::new() } else { format!("    {l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_text(e: &LogEntry, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{} {}", e.event.kind(), e.id)?;
    writeln!(out, "seq:          {}", e.seq)?;
    writeln!(out, "recorded_at:  {}", e.recorded_at)?;
    match &e.event {
        Event::Article(a) => {
            writeln!(out, "key:          {}", a.key)?;
            writeln!(out, "url:          {}", opt(a.url.as_deref()))?;
            writeln!(out, "title:        {}", opt(a.title.as_deref()))?;
            writeln!(out, "published:    {}", a.published.map(|t| t.canonical()).as_deref().unwrap_or("-"))?;
            writeln!(out, "byline:       {}", opt(a.byline.as_deref()))?;
            writeln!(out)?;
            for p in &a.body {
                writeln!(out, "{}\n", indent(p))?;
            }
        }
        Event::Comment(c) => {
            writeln!(out, "article:      {}", c.article)?;
            writeln!(out, "author:       {}", opt(c.author.as_deref()))?;
            writeln!(out, "posted_at:    {}", c.posted_at.map(|t| t.canonical()).as_deref().unwrap_or("-"))?;
            writeln!(out)?;
            writeln!(out, "{}", indent(&c.body))?;
        }
        Event::Merge(m) => {
            writeln!(out, "merges:       {}", m.kind.name())?;
            writeln!(out, "keep:         {}", m.keep)?;
            for f in &m.fold {
                writeln!(out, "fold:         {f}")?;
            }
            writeln!(out, "reason:       {}", m.reason)?;
        }
        Event::Capture(c) => {
            writeln!(out, "blob:         {}", c.blob)?;
            writeln!(out, "source:       {}", crate::cli::output::printable(&c.source))?;
            writeln!(out, "source_url:   {}", opt(c.source_url.as_deref()))?;
            writeln!(out, "tz:           {}", opt(c.tz.as_deref()))?;
            writeln!(out, "fetched_at:   {}", c.fetched_at.map(|t| t.canonical()).as_deref().unwrap_or("-"))?;
            writeln!(out, "format:       {} (parser v{})", c.format, c.parser_version)?;
            let declared = c.declared_comments.map(|n| n.to_string());
            writeln!(out, "declared:     {}", declared.as_deref().unwrap_or("-"))?;
            for a in &c.articles {
                writeln!(out, "article:      {}", a.key)?;
                for item in a.article.iter().chain(&a.comments) {
                    let parent = item.parent.map(|p| format!(" reply to {}", p.short())).unwrap_or_default();
                    let cut = if item.possibly_truncated { " (possibly truncated)" } else { "" };
                    writeln!(out, "  {}{parent}{cut}", item.id.short())?;
                }
            }
        }
    }
    Ok(())
}

/// Runs `cairn show`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = open_existing(cli)?;
    let (_, seq) = archive.resolve_prefix(&args.id)?;
    let entry = archive.entry(seq)?;
    if args.json { writeln!(out, "{}", entry_json(&entry)) } else { write_text(&entry, out) }
        .map_err(stdout_error)?;
    Ok(Status::Ok)
}
