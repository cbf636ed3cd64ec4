//! Tables for analysis: the archive as rows with typed columns (docs/tables.md).
//!
//! Five tables: `comments` (one row per comment as the threads view sees
//! it: status, versions, parent, aliases), `versions` (one row per comment
//! version), `articles`, `captures` and `sightings` (capture x comment, in
//! page order). Rows are produced one article (or one log entry) at a time
//! and handed to a [`RowSink`], so memory holds the largest thread and the
//! list of article summaries, never the archive's comments; the writers (`write.rs`: CSV, JSON Lines,
//! Parquet) stream them out.
//!
//! Times are instants: written as UTC (`2017-05-12T05:31:00Z`); a source
//! time without an offset is taken as UTC and a bare date as its midnight,
//! as everywhere cairn orders times. `show` prints the times as the page
//! gave them.

mod write;

pub use write::{writer, Format, RowSink};

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, Timestamp};
use crate::store::Archive;
use crate::views::thread_state::CaptureRef;
use crate::views::threads::{self, ArticleSummary, ParentKind, ThreadView};

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    Text,
    /// A 64-bit integer.
    Int,
    /// True or false.
    Bool,
    /// An instant (UTC).
    Time,
    /// A list of text (ids).
    TextList,
}

/// One column: its name, type and whether it can be empty (null).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The name, as written in headers and schemas.
    pub name: &'static str,
    /// Its type.
    pub ty: ColumnType,
    /// Whether a row may have no value.
    pub nullable: bool,
}

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// No value (a nullable column).
    Null,
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// An instant: seconds since the Unix epoch and nanoseconds.
    Time(i64, u32),
    /// A list of text.
    TextList(Vec<String>),
}

impl Value {
    fn text(s: Option<&str>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.to_string()))
    }

    fn time(t: Option<&Timestamp>) -> Value {
        t.map_or(Value::Null, |t| {
            let (s, n) = t.instant();
            Value::Time(s, n)
        })
    }

    fn int(n: u64) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Table {
    /// One row per comment, as the threads view sees it.
    Comments,
    /// One row per version of a comment.
    Versions,
    /// One row per article.
    Articles,
    /// One row per capture.
    Captures,
    /// One row per comment shown by a capture, in page order.
    Sightings,
}

const fn col(name: &'static str, ty: ColumnType, nullable: bool) -> Column {
    Column { name, ty, nullable }
}

use ColumnType::{Bool, Int, Text, TextList, Time};

const COMMENTS: &[Column] = &[
    col("id", Text, false),
    col("article_key", Text, false),
    col("url", Text, true),
    col("title", Text, true),
    col("author", Text, true),
    col("posted_at", Time, true),
    col("first_seen", Time, false),
    col("last_seen", Time, false),
    col("status", Text, false),
    col("edited", Bool, false),
    col("removed_since", Time, true),
    col("version_count", Int, false),
    col("body", Text, false),
    col("parent_id", Text, true),
    col("parent_kind", Text, true),
    col("depth", Int, false),
    col("position", Int, false),
    col("aliases", TextList, false),
];

const VERSIONS: &[Column] = &[
    col("comment_id", Text, false),
    col("version_id", Text, false),
    col("version", Int, false),
    col("article_key", Text, false),
    col("author", Text, true),
    col("posted_at", Time, true),
    col("status", Text, false),
    col("first_seen", Time, false),
    col("last_seen", Time, false),
    col("body", Text, false),
    col("aliases", TextList, false),
];

const ARTICLES: &[Column] = &[
    col("key", Text, false),
    col("id", Text, true),
    col("url", Text, true),
    col("title", Text, true),
    col("published", Time, true),
    col("byline", Text, true),
    col("comments", Int, false),
    col("present", Int, false),
    col("removed", Int, false),
    col("edited", Int, false),
    col("versions", Int, false),
    col("captures", Int, false),
    col("partial_captures", Int, false),
    col("first_capture", Time, true),
    col("last_capture", Time, true),
    col("aliases", TextList, false),
];

const CAPTURES: &[Column] = &[
    col("seq", Int, false),
    col("id", Text, false),
    col("blob", Text, false),
    col("observed_at", Time, false),
    col("fetched_at", Time, true),
    col("recorded_at", Time, false),
    col("source", Text, false),
    col("source_url", Text, true),
    col("format", Text, false),
    col("parser_version", Int, false),
    col("complete", Bool, false),
    col("gaps", TextList, false),
    col("declared_comments", Int, true),
    col("found_comments", Int, false),
    col("article_keys", TextList, false),
];

const SIGHTINGS: &[Column] = &[
    col("capture_seq", Int, false),
    col("capture_id", Text, false),
    col("observed_at", Time, false),
    col("complete", Bool, false),
    col("article_key", Text, false),
    col("position", Int, false),
    col("comment_id", Text, false),
    col("parent_id", Text, true),
    col("possibly_truncated", Bool, false),
];

impl Table {
    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Comments => "comments",
            Table::Versions => "versions",
            Table::Articles => "articles",
            Table::Captures => "captures",
            Table::Sightings => "sightings",
        }
    }

    /// The table's columns, in order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Comments => COMMENTS,
            Table::Versions => VERSIONS,
            Table::Articles => ARTICLES,
            Table::Captures => CAPTURES,
            Table::Sightings => SIGHTINGS,
        }
    }
}

/// An instant: seconds since the Unix epoch and nanoseconds.
pub type Instant = (i64, u32);

/// A window of time, either end open (`--since`, `--until`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// At or after this instant.
    pub since: Option<Instant>,
    /// At or before this instant.
    pub until: Option<Instant>,
}

impl Window {
    /// Parses `--since` and `--until` ([`parse_time`]).
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<Window> {
        Ok(Window {
            since: since.map(|s| parse_time("--since", s)).transpose()?,
            until: until.map(|s| parse_time("--until", s)).transpose()?,
        })
    }

    /// Whether either end is set.
    pub fn is_set(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    /// Whether `at` is inside.
    pub fn contains(&self, at: Instant) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at <= u)
    }

    /// Whether the span `[first, last]` meets the window.
    pub fn meets(&self, first: Instant, last: Instant) -> bool {
        self.since.is_none_or(|s| last >= s) && self.until.is_none_or(|u| first <= u)
    }
}

/// Which rows to write.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this article (its key and the keys merged into it).
    pub article: Option<ArticleSummary>,
    /// Only comments (and versions) by this author, exactly as shown.
    pub author: Option<String>,
    /// Only what was observed in this window.
    pub window: Window,
    /// The point the views are pinned at (`replay --until`), if they are:
    /// `captures` and `sightings` read the log and stop there too.
    pub pinned: Option<crate::views::AsOf>,
}

impl Filter {
    fn article_matches(&self, key: &ArticleKey) -> bool {
        self.article.as_ref().is_none_or(|a| a.covers(key))
    }

    /// Whether a span of observation `[first, last]` meets the window.
    fn span(&self, first: &CaptureRef, last: &CaptureRef) -> bool {
        self.window.meets(first.observed_at().instant(), last.observed_at().instant())
    }

    /// Refuses a filter that does not apply to `table` (before anything of
    /// it is written).
    pub fn check(&self, table: Table) -> Result<()> {
        if self.author.is_some() && !matches!(table, Table::Comments | Table::Versions) {
            return Err(Error::Usage(format!(
                "--author applies to the comments and versions tables, not {}",
                table.name()
            )));
        }
        Ok(())
    }

    fn author_matches(&self, author: Option<&str>) -> bool {
        self.author.as_deref().is_none_or(|a| author == Some(a))
    }
}

/// Writes table `table` of `archive` (its views brought up to date by the
/// caller) into `sink`, filtered; returns the number of rows.
pub fn produce(archive: &Archive, table: Table, filter: &Filter, sink: &mut dyn RowSink) -> Result<u64> {
    filter.check(table)?;
    let mut rows = 0u64;
    match table {
        Table::Comments | Table::Versions | Table::Articles => {
            let articles = match &filter.article {
                Some(a) => vec![a.clone()],
                None => threads::list_articles(archive)?,
            };
            for summary in articles {
                let Some(state) = threads::load_thread(archive, &summary.key)? else { continue };
                if table == Table::Articles {
                    rows += article_row(archive, &summary, &state, filter, sink)?;
                    continue;
                }
                let view = threads::render(archive, summary, &state)?;
                rows += thread_rows(table, &view, filter, sink)?;
            }
        }
        Table::Captures | Table::Sightings => {
            for entry in archive.entries_from(crate::model::Seq(1))? {
                let entry = entry?;
                if filter.pinned.as_ref().is_some_and(|p| entry.seq > p.seq) {
                    break;
                }
                // Pinned as observed up to a time: captures observed later
                // are not in the views.
                let until = filter.pinned.as_ref().and_then(|p| p.observed_until.as_ref());
                if crate::views::observed_after(&entry, until) {
                    continue;
                }
                let Event::Capture(c) = &entry.event else { continue };
                let observed = c.observed_at(entry.recorded_at);
                if !filter.window.contains(observed.instant())
                    || !c.articles.iter().any(|a| filter.article_matches(&a.key))
                {
                    continue;
                }
                if table == Table::Captures {
                    let gaps = c.gaps().iter().map(|g| g.code().to_string()).collect();
                    sink.row(vec![
                        Value::int(entry.seq.0),
                        Value::Text(entry.id.to_hex()),
                        Value::Text(c.blob.to_hex()),
                        Value::time(Some(&observed)),
                        Value::time(c.fetched_at.as_ref()),
                        Value::time(Some(&entry.recorded_at)),
                        Value::Text(c.source.clone()),
                        Value::text(c.source_url.as_deref()),
                        Value::Text(c.format.clone()),
                        Value::int(c.parser_version),
                        Value::Bool(c.is_complete()),
                        Value::TextList(gaps),
                        c.declared_comments.map_or(Value::Null, Value::int),
                        Value::int(c.found_comments()),
                        Value::TextList(c.articles.iter().map(|a| a.key.as_str().to_string()).collect()),
                    ])?;
                    rows += 1;
                    continue;
                }
                for a in c.articles.iter().filter(|a| filter.article_matches(&a.key)) {
                    for (position, item) in a.comments.iter().enumerate() {
                        sink.row(vec![
                            Value::int(entry.seq.0),
                            Value::Text(entry.id.to_hex()),
                            Value::time(Some(&observed)),
                            Value::Bool(c.is_complete()),
                            Value::Text(a.key.as_str().to_string()),
                            Value::int(position as u64),
                            Value::Text(item.id.to_hex()),
                            Value::text(item.parent.map(|p| p.to_hex()).as_deref()),
                            Value::Bool(item.possibly_truncated),
                        ])?;
                        rows += 1;
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// The row of one article, from its thread state alone (no bodies read).
fn article_row(
    archive: &Archive,
    summary: &ArticleSummary,
    state: &crate::views::thread_state::ThreadState,
    filter: &Filter,
    sink: &mut dyn RowSink,
) -> Result<u64> {
    let (Some(first), Some(last)) = (state.captures.first(), state.captures.last()) else { return Ok(0) };
    if !filter.span(first, last) {
        return Ok(0);
    }
    let article = match summary.latest {
        Some(id) => match archive.event(&id)? {
            Event::Article(a) => Some(a),
            _ => None,
        },
        None => None,
    };
    let present = state.slots.iter().filter(|s| state.is_present(s)).count() as u64;
    let edited =
        state.slots.iter().filter(|s| s.versions.iter().filter(|v| !v.truncated).count() > 1).count();
    let comments = state.slots.len() as u64;
    sink.row(vec![
        Value::Text(summary.key.as_str().to_string()),
        Value::text(summary.latest.map(|i| i.to_hex()).as_deref()),
        Value::text(article.as_ref().and_then(|a| a.url.as_deref())),
        Value::text(article.as_ref().and_then(|a| a.title.as_deref())),
        Value::time(article.as_ref().and_then(|a| a.published.as_ref())),
        Value::text(article.as_ref().and_then(|a| a.byline.as_deref())),
        Value::int(comments),
        Value::int(present),
        Value::int(comments - present),
        Value::int(edited as u64),
        Value::int(summary.versions.len() as u64),
        Value::int(state.captures.len() as u64),
        Value::int(state.captures.iter().filter(|c| !c.complete).count() as u64),
        Value::time(Some(&first.observed_at())),
        Value::time(Some(&last.observed_at())),
        Value::TextList(summary.aliases.iter().map(|a| a.as_str().to_string()).collect()),
    ])?;
    Ok(1)
}

/// The rows of one rendered thread for `table` (comments or versions).
fn thread_rows(table: Table, t: &ThreadView, filter: &Filter, sink: &mut dyn RowSink) -> Result<u64> {
    let key = t.summary.key.as_str();
    let article = t.article.as_ref();
    let mut rows = 0;
    for (position, c) in t.comments.iter().enumerate() {
        if !filter.author_matches(c.author.as_deref()) {
            continue;
        }
        if table == Table::Comments {
            if !filter.span(&c.first_seen, &c.last_seen) {
                continue;
            }
            let aliases = c.versions.iter().flat_map(|v| v.aliases.iter().map(|a| a.to_hex())).collect();
            sink.row(vec![
                Value::Text(c.id.to_hex()),
                Value::Text(key.to_string()),
                Value::text(article.and_then(|a| a.url.as_deref())),
                Value::text(article.and_then(|a| a.title.as_deref())),
                Value::text(c.author.as_deref()),
                Value::time(c.posted_at.as_ref()),
                Value::time(Some(&c.first_seen.observed_at())),
                Value::time(Some(&c.last_seen.observed_at())),
                Value::Text(c.status.to_string()),
                Value::Bool(whole_versions(c) > 1),
                Value::time(c.removed_since.as_ref().map(|r| r.observed_at()).as_ref()),
                Value::int(c.versions.len() as u64),
                Value::Text(c.body.clone()),
                Value::text(c.parent.map(|(p, _)| p.to_hex()).as_deref()),
                Value::text(c.parent.map(|(_, k)| match k {
                    ParentKind::Structural => "page",
                    ParentKind::Mention => "mention",
                })),
                Value::int(c.depth as u64),
                Value::int(position as u64),
                Value::TextList(aliases),
            ])?;
            rows += 1;
            continue;
        }
        for (n, v) in c.versions.iter().enumerate() {
            if !filter.span(&v.first_seen, &v.last_seen) {
                continue;
            }
            sink.row(vec![
                Value::Text(c.id.to_hex()),
                Value::Text(v.id.to_hex()),
                Value::int(n as u64 + 1),
                Value::Text(key.to_string()),
                Value::text(c.author.as_deref()),
                Value::time(c.posted_at.as_ref()),
                Value::Text(v.status.to_string()),
                Value::time(Some(&v.first_seen.observed_at())),
                Value::time(Some(&v.last_seen.observed_at())),
                Value::Text(v.body.clone()),
                Value::TextList(v.aliases.iter().map(|a| a.to_hex()).collect()),
            ])?;
            rows += 1;
        }
    }
    Ok(rows)
}

/// Versions seen whole (a cut-off copy is not an edit).
fn whole_versions(c: &threads::CommentView) -> usize {
    c.versions.iter().filter(|v| v.status != "truncated").count()
}

/// Parses `--since`/`--until`: an RFC 3339 time (`Z` or an offset) or a
/// date (UTC: from its first instant for `--since`, to its last for
/// `--until`).
pub fn parse_time(flag: &str, s: &str) -> Result<Instant> {
    match Timestamp::parse_lenient(s, None) {
        Some(t @ Timestamp::Zoned(..)) => Ok(t.instant()),
        // A day given to --until includes the whole day.
        Some(t @ Timestamp::Date(_)) if flag == "--until" => Ok((t.instant().0 + 86_399, 999_999_999)),
        Some(t @ Timestamp::Date(_)) => Ok(t.instant()),
        _ => Err(Error::Usage(format!(
            "{flag} {s:?} is not an RFC 3339 time with offset or a date (YYYY-MM-DD)"
        ))),
    }
}
