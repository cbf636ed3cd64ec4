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

fn describe(id: &EventId, event: &Event) -> String {
    match event {
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
    }
}

/// Events described at most at once by [`write_text`].
const DESCRIBED_AT_ONCE: usize = 16_384;

/// Writes the clusters as text, a share of them at a time: each share's
/// events are looked up together and read with one decode per log segment
/// ([`Archive::events_by_id`]), so memory stays bounded and a segment is
/// not decoded once per event. (Read one by one, each event decoded its
/// segment again: 8,000 re-rendered comments of one thread, all in one
/// segment, took 16 s to describe.)
fn write_text(archive: &Archive, clusters: &[Cluster], out: &mut dyn Write) -> Result<()> {
    write_text_in(archive, clusters, out, DESCRIBED_AT_ONCE)
}

/// [`write_text`], describing at most `at_once` events at a time (beyond
/// a cluster that alone holds more).
fn write_text_in(archive: &Archive, clusters: &[Cluster], out: &mut dyn Write, at_once: usize) -> Result<()> {
    let mut rest = clusters;
    while !rest.is_empty() {
        let mut take = 0;
        let mut events = 0;
        while take < rest.len() && (take == 0 || events + 1 + rest[take].fold.len() <= at_once) {
            events += 1 + rest[take].fold.len();
            take += 1;
        }
        let (share, after) = rest.split_at(take);
        rest = after;
        let ids: Vec<EventId> =
            share.iter().flat_map(|c| std::iter::once(c.keep).chain(c.fold.iter().copied())).collect();
        let found = archive.events_by_id(&ids)?;
        let line = |id: &EventId| match found.get(id) {
            Some(event) => Ok(describe(id, event)),
            None => Err(crate::error::Error::NotFound(format!("no event {id}"))),
        };
        let mut s = String::new();
        for c in share {
            s.push_str(&format!("{} cluster: {}\n", c.kind.name(), c.reason));
            s.push_str(&format!("  keep {}\n", line(&c.keep)?));
            for f in &c.fold {
                s.push_str(&format!("  fold {}\n", line(f)?));
            }
        }
        out.write_all(s.as_bytes()).map_err(stdout_error)?;
    }
    Ok(())
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
    write_text(&archive, &report.clusters, out)?;
    let (articles, comments) = report.clusters.iter().fold((0, 0), |(a, c), cl| match cl.kind {
        crate::model::MergeKind::Article => (a + 1, c),
        crate::model::MergeKind::Comment => (a, c + 1),
    });
    let mut s = format!(
        "{} clusters ({articles} article, {comments} comment) among {} articles and {} comments",
        report.clusters.len(),
        report.articles,
        report.comments
    );
    s.push_str(&match appended {
        Some(n) => format!("; appended {n} merges\n"),
        None if report.clusters.is_empty() => "\n".to_string(),
        None => "; run with --apply to record them as merges\n".to_string(),
    });
    out.write_all(s.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{ingest_bytes, IngestOptions, IngestReport};

    /// The clusters' text is the same whatever the share of events read at
    /// once, and what describing each event by itself gives.
    #[test]
    fn the_text_is_the_same_whatever_the_share() {
        let mut archive = Archive::in_memory();
        for (day, shout) in [(1, false), (2, true)] {
            let mut doc = format!(
                "{{\"type\":\"capture\",\"fetched_at\":\"2024-01-0{day}T00:00:00Z\"}}\n\
                 {{\"type\":\"article\",\"id\":\"a\",\"url\":\"https://example.com/t\",\"title\":\"T\"}}\n"
            );
            for i in 0..7 {
                let body = format!("comment {i} says hello");
                let body = if shout { body.to_uppercase() + "!" } else { body };
                doc.push_str(&format!(
                    "{{\"type\":\"comment\",\"article\":\"a\",\"author\":\"u{i}\",\
                     \"posted_at\":\"2024-01-01T10:0{i}:00Z\",\"body\":\"{body}\"}}\n"
                ));
            }
            let mut report = IngestReport::default();
            ingest_bytes(
                &mut archive,
                &format!("d{day}.jsonl"),
                doc.as_bytes(),
                &IngestOptions::default(),
                &mut report,
            )
            .unwrap();
        }
        let clusters = crate::dedupe::find_clusters(&archive).unwrap().clusters;
        assert_eq!(clusters.len(), 7);
        let mut one_by_one = String::new();
        for c in &clusters {
            one_by_one.push_str(&format!("{} cluster: {}\n", c.kind.name(), c.reason));
            one_by_one.push_str(&format!("  keep {}\n", describe(&c.keep, &archive.event(&c.keep).unwrap())));
            for f in &c.fold {
                one_by_one.push_str(&format!("  fold {}\n", describe(f, &archive.event(f).unwrap())));
            }
        }
        for at_once in [1, 2, 3, 5, DESCRIBED_AT_ONCE] {
            let mut out = Vec::new();
            write_text_in(&archive, &clusters, &mut out, at_once).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), one_by_one, "{at_once} at once");
        }
    }
}
