//! `reparse`: re-derive events from every stored raw capture with the
//! current parsers, appending only what is new.
//!
//! A capture records everything its parse depended on (blob, format, source
//! URL, tz, fetched_at), so the same inputs can be parsed again. When the
//! parser is unchanged, every derived event is a duplicate and nothing is
//! appended. When it changed, the new article and comment versions and a new
//! capture (with the new parser version and items) are appended; the old
//! events stay, as everything in the log does.

use crate::error::{Error, InputError, Result};
use crate::ingest::{capture_for, parse_document, Format, IngestOptions};
use crate::model::time::parse_offset;
use crate::model::{BlobId, Capture, Event, EventId, Seq, Timestamp};
use crate::store::{Archive, KindCounts, NewDocument};
use std::collections::HashSet;

/// What a re-parse found for one capture that yielded new events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReparseChange {
    /// The seq of the capture that was re-parsed.
    pub seq: Seq,
    /// Its source.
    pub source: String,
    /// The parser version it was read with, and the current one.
    pub parser_versions: (u64, u64),
    /// Whether it showed the whole comment section as read then, and as
    /// read now ([`Capture::is_complete`]).
    pub complete: (bool, bool),
    /// New events by kind.
    pub new: KindCounts,
}

/// What `reparse` did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default)]
pub struct ReparseReport {
    /// Captures in the log.
    pub captures: u64,
    /// Distinct (blob, options) parses run.
    pub parsed: u64,
    /// New events by kind, over all captures.
    pub new: KindCounts,
    /// Re-derived events already in the log.
    pub duplicate: KindCounts,
    /// The captures that yielded something new.
    pub changed: Vec<ReparseChange>,
    /// Captures whose blob the current parser rejects.
    pub errors: Vec<InputError>,
}

/// The options a capture was parsed with. A capture without `fetched_at`
/// was observed when it was recorded: a re-parse by a newer parser (a new
/// capture) says so, so that it keeps its place in history (views order
/// captures by fetch time, else recorded time); an unchanged parser gives
/// the same capture again.
fn options_of(capture: &Capture, recorded_at: Timestamp, dry_run: bool) -> Result<IngestOptions> {
    let format = Format::from_name(&capture.format).ok_or_else(|| {
        Error::Corrupt(format!("capture of {} names unknown format {:?}", capture.source, capture.format))
    })?;
    let tz = match &capture.tz {
        None => None,
        Some(t) => Some(
            parse_offset(t)
                .ok_or_else(|| Error::Corrupt(format!("capture of {} has tz {t:?}", capture.source)))?,
        ),
    };
    Ok(IngestOptions {
        format: Some(format),
        tz,
        source_url: capture.source_url.clone(),
        fetched_at: capture.fetched_at.or_else(|| {
            (capture.parser_version != crate::ingest::parser_version(format)).then_some(recorded_at)
        }),
        fetched_at_from_mtime: false,
        strict: false,
        max_document: 0,
        dry_run,
        near_duplicates: None,
    })
}

/// A digest of what a parse of `c` depends on: blob, format, URL, tz and
/// fetched_at (not what the parse produced, nor the parser version).
fn parse_inputs(c: &Capture) -> EventId {
    let mut inputs = c.clone();
    inputs.articles.clear();
    inputs.parser_version = 0;
    inputs.declared_comments = None;
    inputs.source.clear();
    inputs.gaps = None;
    Event::Capture(Box::new(inputs)).id()
}

/// Re-parses every stored capture once per distinct set of parse inputs.
///
/// Each re-parse is committed on its own, so an operational error part way
/// (a full disk, an I/O error) leaves the earlier ones in the archive: the
/// error then comes as [`Error::Stopped`], saying how many were committed
/// and what they appended ([`stopped`]).
pub fn reparse(archive: &mut Archive, dry_run: bool) -> Result<ReparseReport> {
    let mut captures: Vec<(Seq, Capture, Timestamp)> = Vec::new();
    let mut seen: HashSet<EventId> = HashSet::new();
    let mut examined = 0;
    for entry in archive.entries_from(Seq(1))? {
        let entry = entry?;
        if let Event::Capture(c) = entry.event {
            examined += 1;
            if seen.insert(parse_inputs(&c)) {
                captures.push((entry.seq, *c, entry.recorded_at));
            }
        }
    }
    let mut report = ReparseReport { captures: examined, ..ReparseReport::default() };
    let total = captures.len() as u64;
    let mut last: Option<String> = None;
    for (seq, capture, recorded_at) in captures {
        let source = capture.source.clone();
        match reparse_one(archive, seq, capture, recorded_at, dry_run, &mut report) {
            Ok(()) => last = Some(source),
            Err(e) if dry_run => return Err(e),
            Err(e) => return Err(stopped(e, &report, report.parsed - 1, total, last.as_deref())),
        }
    }
    if !dry_run {
        archive.flush().map_err(|e| stopped(e, &report, total, total, last.as_deref()))?;
    }
    Ok(report)
}

/// Re-parses one capture (the first of its parse inputs) and appends what
/// it gives, counted in `report`.
fn reparse_one(
    archive: &mut Archive,
    seq: Seq,
    capture: Capture,
    recorded_at: Timestamp,
    dry_run: bool,
    report: &mut ReparseReport,
) -> Result<()> {
    report.parsed += 1;
    let raw = archive.store().get_blob(&capture.blob)?;
    let actual = BlobId(*blake3::hash(&raw).as_bytes());
    if actual != capture.blob {
        return Err(Error::Corrupt(format!("blob {} hashes to {actual}", capture.blob)));
    }
    let opts = options_of(&capture, recorded_at, dry_run)?;
    let doc = match parse_document(&capture.source, &raw, &opts) {
        Ok(d) => d,
        Err(e) => {
            report.errors.push(e);
            return Ok(());
        }
    };
    let new_capture = capture_for(&capture.source, capture.blob, &doc, &opts);
    let current_version = new_capture.parser_version;
    let complete = (capture.is_complete(), new_capture.is_complete());
    let mut events = doc.events;
    events.push(Event::Capture(Box::new(new_capture)));
    let outcome = archive.append_document(NewDocument::new(&raw, events), dry_run)?;
    report.new.merge(&outcome.new);
    report.duplicate.merge(&outcome.duplicate);
    if outcome.new.total() > 0 {
        report.changed.push(ReparseChange {
            seq,
            source: capture.source.clone(),
            parser_versions: (capture.parser_version, current_version),
            complete,
            new: outcome.new,
        });
    }
    Ok(())
}

/// `e`, with what the re-parse had committed before it: the first `done`
/// of its `total` re-parses (one per distinct set of parse inputs; the
/// last of them of `last`), which appended `report.new`, and the captures
/// it could not re-parse (`report.errors`, listed before the sentence).
pub fn stopped(e: Error, report: &ReparseReport, done: u64, total: u64, last: Option<&str>) -> Error {
    use crate::cli::output::plural;
    let reparses = plural(total, "re-parse");
    let appended = if report.new.total() == 0 {
        "which appended nothing".to_string()
    } else {
        format!(
            "which appended {}, {}, {}",
            plural(report.new.articles, "article"),
            plural(report.new.comments, "comment"),
            plural(report.new.captures, "capture")
        )
    };
    let found = "a re-parse whose commit failed after reaching the log files is found by the next command";
    let done = if done == 0 {
        format!("this reparse committed none of its {reparses} before it stopped; {found}")
    } else if done == total {
        format!("this reparse committed all its {reparses} before it stopped ({appended}); they stay in the archive")
    } else {
        format!(
            "before it stopped, this reparse committed the first {done} of its {reparses}{} ({appended}), \
             which stay in the archive, and {found}; running it again appends only what is missing",
            last.map(|l| format!(" (through {l})")).unwrap_or_default()
        )
    };
    let done = match report.errors.len() {
        0 => done,
        n => format!(
            "{done} ({} could not be re-parsed, listed above, appended nothing)",
            plural(n as u64, "capture")
        ),
    };
    Error::Stopped {
        done,
        rejected: report.errors.clone(),
        rejected_as: "cannot re-parse",
        source: Box::new(e),
    }
}
