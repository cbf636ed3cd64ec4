//! `cairn dedupe`: report near-duplicates, or fold them with merges.

use crate::cli::output::{counts_json, human_opt_time, one_line, with_fields};
use crate::cli::{open_archive, stdout_error, Cli, Status};
use crate::dedupe::{apply, find_clusters_in_passes, Cluster, COMMENTS_PER_PASS};
use crate::error::Result;
use crate::model::{Event, EventId};
use crate::store::{Archive, KindCounts, OpenMode};
use serde_json::json;
use std::io::Write;

/// Find comments and articles that are the same thing under different ids
/// (rendering differences, time-zone shifts, URL variants; docs/dedupe.md)
/// and report them, changing nothing. With --apply, append one Merge event
/// per cluster (nothing is deleted; views then show each once).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Append the merges.
    #[arg(long)]
    pub apply: bool,

    /// Print `{"clusters":[{"keep","fold","kind","reason"}]}`.
    #[arg(long)]
    pub json: bool,

    /// Keep at most N comments in memory (64 bytes each; default 1500000):
    /// a log with more is read once more for each further N, so memory
    /// does not grow with the archive.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub comments_per_pass: Option<u64>,
}

fn describe(archive: &Archive, id: &EventId) -> Result<String> {
    Ok(match archive.event(id)? {
        Event::Comment(c) => format!(
            "{} {} · {} · {}",
            id.short(),
            c.author.as_deref().unwrap_or("(no author)"),
            human_opt_time(c.posted_at.as_ref()),
            one_line(&c.body, 50)
        ),
        Event::Article(a) => {
            format!("{} {} ({})", id.short(), a.title.as_deref().unwrap_or("(untitled)"), a.key)
        }
        other => format!("{} {}", id.short(), other.kind()),
    })
}

fn text(archive: &Archive, clusters: &[Cluster]) -> Result<String> {
    let mut s = String::new();
    for c in clusters {
        s.push_str(&format!("{} cluster: {}\n", c.kind.name(), c.reason));
        s.push_str(&format!("  keep {}\n", describe(archive, &c.keep)?));
        for f in &c.fold {
            s.push_str(&format!("  fold {}\n", describe(archive, f)?));
        }
    }
    Ok(s)
}

/// Runs `cairn dedupe`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let mut archive = open_archive(cli, OpenMode::MustExist)?;
    crate::cli::catch_up(cli, &archive, "bringing the views up to date")?;
    let report = crate::cli::EntriesBar::run(cli, "reading the log", |progress| {
        find_clusters_in_passes(&archive, progress, args.comments_per_pass.unwrap_or(COMMENTS_PER_PASS))
    })?;
    let appended = if args.apply {
        let n = apply(&mut archive, &report.clusters)?;
        // The merges are committed by now: a failure here says so.
        let stopped = |e| crate::dedupe::stopped(e, n);
        crate::cli::catch_up(cli, &archive, "folding the merges into the views").map_err(stopped)?;
        archive.flush().map_err(stopped)?;
        Some(n)
    } else {
        None
    };
    if args.json {
        let clusters: Vec<_> = report
            .clusters
            .iter()
            .map(|c| {
                json!({
                    "keep": c.keep.to_hex(),
                    "fold": c.fold.iter().map(|f| f.to_hex()).collect::<Vec<_>>(),
                    "kind": c.kind.name(),
                    "reason": c.reason,
                })
            })
            .collect();
        let v = match appended {
            None => json!({"clusters": clusters}),
            Some(n) => {
                let new = KindCounts { merges: n, ..Default::default() };
                let found =
                    KindCounts { merges: (clusters.len() as u64).saturating_sub(n), ..Default::default() };
                let head = archive.head();
                with_fields(counts_json(&new, &found, (head.seq, head.hash)), json!({"clusters": clusters}))
            }
        };
        writeln!(out, "{v}").map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    let mut s = text(&archive, &report.clusters)?;
    let (articles, comments) = report.clusters.iter().fold((0, 0), |(a, c), cl| match cl.kind {
        crate::model::MergeKind::Article => (a + 1, c),
        crate::model::MergeKind::Comment => (a, c + 1),
    });
    s.push_str(&format!(
        "{} clusters ({articles} article, {comments} comment) among {} articles and {} comments",
        report.clusters.len(),
        report.articles,
        report.comments
    ));
    s.push_str(&match appended {
        Some(n) => format!("; appended {n} merges\n"),
        None if report.clusters.is_empty() => "\n".to_string(),
        None => "; run with --apply to record them as merges\n".to_string(),
    });
    out.write_all(s.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
