//! From input paths to appended documents: collect the inputs (files,
//! directories walked in sorted order, `-` for stdin), check and detect each,
//! parse it, build its capture and append it atomically.
//!
//! A rejected document is reported and skipped; nothing of it is appended.
//! Operational errors (the store failing) stop the run.

pub mod detect;
pub mod jsonl;
pub mod reparse;
pub mod tribune;

use crate::error::{Error, InputError, Result};
use crate::model::normalize::canonical_url;
use crate::model::time::format_offset;
use crate::model::{BlobId, Capture, CaptureItem, CapturedArticle, Event, EventId, Gap, Timestamp};
use crate::store::{Archive, CommitGroup, KindCounts, NewDocument};
use chrono::FixedOffset;
pub use detect::Format;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a parser makes of one document: its articles and comments in page
/// order, the capture items with reply structure, and what it noticed.
#[derive(Clone, Debug, Default)]
pub struct ParsedDocument {
    /// The format name stored in the capture.
    pub format: &'static str,
    /// The parser's version.
    pub parser_version: u64,
    /// Articles and comments, in page order.
    pub events: Vec<Event>,
    /// One item per event, in the same order, with parents.
    pub items: Vec<CaptureItem>,
    /// The comment count the page declares.
    pub declared_comments: Option<u64>,
    /// The offset the parse gave to times shown without one.
    pub tz: Option<FixedOffset>,
    /// Problems that did not reject the document.
    pub warnings: Vec<String>,
    /// Why the document does not show a whole comment section (empty: it
    /// does); recorded in its capture.
    pub gaps: Vec<Gap>,
    /// When the document itself says it was fetched (a JSON Lines `capture`
    /// record); takes precedence over `--fetched-at`.
    pub fetched_at: Option<Timestamp>,
}

/// Options of one ingest run.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// `None` detects the format of each input.
    pub format: Option<Format>,
    /// The offset for times that show none.
    pub tz: Option<FixedOffset>,
    /// The page's URL (`--source-url`), canonicalized.
    pub source_url: Option<String>,
    /// When the page was fetched (`--fetched-at`).
    pub fetched_at: Option<Timestamp>,
    /// Take each file's fetch time from its modification time
    /// (`--fetched-at-from mtime`).
    pub fetched_at_from_mtime: bool,
    /// Refuse partial captures (`--strict`).
    pub strict: bool,
    /// The largest document read, in bytes (`--max-document-size`; 0 is
    /// taken as [`DEFAULT_MAX_DOCUMENT`]).
    pub max_document: u64,
    /// Report without writing.
    pub dry_run: bool,
    /// With a dry run: the archive's comments indexed for near-duplicate
    /// counts per file.
    pub near_duplicates: Option<std::sync::Arc<crate::dedupe::NearDuplicates>>,
}

impl IngestOptions {
    /// Sets `source_url` from user text, canonicalizing it.
    pub fn with_source_url(mut self, url: Option<&str>) -> Result<IngestOptions> {
        self.source_url = match url {
            None => None,
            Some(u) => Some(
                canonical_url(u)
                    .ok_or_else(|| Error::Usage(format!("--source-url {u:?} is not an absolute URL")))?,
            ),
        };
        Ok(self)
    }
}

/// One input to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A file, named as given (or as found under a given directory).
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Input {
    /// The name used in captures and messages.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }

    /// Reads the whole input, refusing one larger than `limit` bytes before
    /// reading it whole: a regular file by its size, anything else (stdin,
    /// a FIFO, a device) once `limit + 1` bytes have been read. Memory is
    /// bounded by the limit either way.
    pub fn read(&self, limit: u64) -> std::result::Result<Vec<u8>, InputError> {
        let name = self.name();
        let too_large = || {
            InputError::whole(
                &name,
                format!(
                    "larger than the maximum document size ({limit} bytes); nothing of it was read into the \
                     archive (--max-document-size raises the limit)"
                ),
            )
        };
        let cannot = |e: std::io::Error| InputError::whole(&name, format!("cannot read: {e}"));
        let mut buf = Vec::new();
        match self {
            Input::File(p) => {
                let f = std::fs::File::open(p).map_err(cannot)?;
                let meta = f.metadata().map_err(cannot)?;
                if meta.is_file() && meta.len() > limit {
                    return Err(too_large());
                }
                if meta.is_file() {
                    // Read into a buffer of the file's size (one more byte
                    // tells a file that grew): no growing and copying.
                    buf.reserve_exact(meta.len() as usize + 1);
                }
                f.take(limit + 1).read_to_end(&mut buf).map_err(cannot)?;
            }
            Input::Stdin => {
                std::io::stdin().lock().take(limit + 1).read_to_end(&mut buf).map_err(cannot)?;
            }
        }
        if buf.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(buf)
    }
}

/// The default maximum document size: 64 MiB (a comment page is tens of KB).
pub const DEFAULT_MAX_DOCUMENT: u64 = 64 << 20;
/// The largest `--max-document-size` accepted: every record a document of
/// this size makes can be read back ([`crate::store::envelope::MAX_VALUE`]).
pub const MAX_DOCUMENT_CEILING: u64 = 256 << 20;

impl Input {
    /// The file's modification time (UTC, whole seconds); `None` for stdin,
    /// when the file system has none, and for a time outside years 0 to
    /// 9999 (its text would not read back: the archive's export could not
    /// be imported).
    pub fn modified(&self) -> Option<Timestamp> {
        let Input::File(p) = self else { return None };
        file_time(std::fs::metadata(p).ok()?.modified().ok()?)
    }
}

/// A file time as [`Input::modified`] takes it: UTC, the whole second at
/// or before it, within years 0 to 9999.
fn file_time(mtime: std::time::SystemTime) -> Option<Timestamp> {
    let secs = match mtime.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).ok()?,
        // Before 1970: whole seconds back from the epoch, down to the
        // second at or before it as after 1970 (1.5 s before the epoch
        // is 2 s before it, not 1).
        Err(before) => {
            let back = before.duration();
            -i64::try_from(back.as_secs() + u64::from(back.subsec_nanos() > 0)).ok()?
        }
    };
    Timestamp::from_unix(secs).filter(|t| Timestamp::parse_canonical(&t.canonical()).as_ref() == Some(t))
}

/// Walks `dir` recursively in sorted order, following symbolic links with
/// loop detection, skipping hidden entries and cairn archives; an entry that cannot be read
/// (or a link loop, or one that is not a regular file) is an error for that
/// entry, reported, not dropped.
fn walk(dir: &Path, out: &mut Vec<std::result::Result<Input, InputError>>) {
    let hidden = |e: &walkdir::DirEntry| e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
    // A cairn archive under the directory (the one being written, when
    // `ingest .` runs beside it) holds no scraped pages: its lock, index
    // and log files were read as inputs and rejected.
    let archive = |e: &walkdir::DirEntry| {
        let is = e.file_type().is_dir() && crate::store::is_archive(e.path());
        if is {
            tracing::warn!("{}: a cairn archive, not scraped pages; skipped", e.path().display());
        }
        is
    };
    let walker = walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name().into_iter();
    for entry in walker.filter_entry(|e| !hidden(e) && !archive(e)) {
        match entry {
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e) if e.file_type().is_file() => out.push(Ok(Input::File(e.into_path()))),
            // A FIFO, socket or device met in a walk is no scraped page: it
            // is reported, never opened (reading a FIFO no one writes to
            // waited forever). Named on the command line, it is read.
            Ok(e) => out.push(Err(InputError::whole(
                &e.path().display().to_string(),
                "not a regular file (a FIFO, socket or device); a directory's walk reads only files",
            ))),
            Err(e) => {
                let path = e.path().unwrap_or(dir).display().to_string();
                let why = match e.loop_ancestor() {
                    Some(a) => format!("a symbolic link loop back to {}; not followed", a.display()),
                    None => format!(
                        "cannot read: {}",
                        e.io_error().map_or_else(|| e.to_string(), |io| io.to_string())
                    ),
                };
                out.push(Err(InputError::whole(&path, why)));
            }
        }
    }
}

/// Expands the command-line inputs: files as given, directories walked
/// recursively in sorted order (hidden entries skipped), `-` for stdin. A
/// path that does not exist is an error for that input only.
pub fn collect_inputs(paths: &[String]) -> Vec<std::result::Result<Input, InputError>> {
    let mut out = Vec::new();
    for p in paths {
        if p == "-" {
            out.push(Ok(Input::Stdin));
            continue;
        }
        let path = PathBuf::from(p);
        if path.is_dir() {
            walk(&path, &mut out);
        } else if path.exists() {
            out.push(Ok(Input::File(path)));
        } else {
            out.push(Err(InputError::whole(p, "no such file or directory")));
        }
    }
    out
}

/// Parses one document's bytes into events, the capture last.
pub fn parse_document(
    name: &str,
    raw: &[u8],
    opts: &IngestOptions,
) -> std::result::Result<ParsedDocument, InputError> {
    let (text, format) = text_and_format(name, raw, opts)?;
    parse_text(name, text, format, opts)
}

/// Checks that the bytes are a text document and tells its format
/// (`--format`, or detected).
fn text_and_format<'a>(
    name: &str,
    raw: &'a [u8],
    opts: &IngestOptions,
) -> std::result::Result<(&'a str, Format), InputError> {
    let text = detect::as_text(name, raw)?;
    let format = match opts.format {
        Some(f) => f,
        None => detect::detect(text).ok_or_else(|| {
            let e = tribune::not_this_layout(name, text);
            InputError { message: format!("{}; nor JSON Lines (no `{{` first)", e.message), ..e }
        })?,
    };
    Ok((text, format))
}

/// Parses a checked text in a known format.
fn parse_text(
    name: &str,
    text: &str,
    format: Format,
    opts: &IngestOptions,
) -> std::result::Result<ParsedDocument, InputError> {
    match format {
        Format::Jsonl => jsonl::parse(name, text, opts.tz),
        Format::Tribune => tribune::parse(name, text, opts.tz, opts.source_url.as_deref()),
    }
}

/// The capture event for a parsed document: its fetch time is the one the
/// document states, else the one given in `opts`.
pub fn capture_for(name: &str, blob: BlobId, doc: &ParsedDocument, opts: &IngestOptions) -> Capture {
    let mut gaps = doc.gaps.clone();
    gaps.sort();
    gaps.dedup();
    Capture {
        blob,
        source: opts.source_url.clone().unwrap_or_else(|| name.to_string()),
        source_url: opts.source_url.clone(),
        tz: doc.tz.map(format_offset),
        fetched_at: doc.fetched_at.or(opts.fetched_at),
        format: doc.format.to_string(),
        parser_version: doc.parser_version,
        declared_comments: doc.declared_comments,
        articles: group_by_article(doc),
        gaps: Some(gaps),
    }
}

/// Groups a document's items by article, articles in order of first
/// appearance, items in page order.
fn group_by_article(doc: &ParsedDocument) -> Vec<CapturedArticle> {
    let mut groups: Vec<CapturedArticle> = Vec::new();
    for (event, item) in doc.events.iter().zip(&doc.items) {
        let key = match event {
            Event::Article(a) => &a.key,
            Event::Comment(c) => &c.article,
            Event::Capture(_) | Event::Merge(_) => continue,
        };
        let at = match groups.iter().position(|g| &g.key == key) {
            Some(i) => i,
            None => {
                groups.push(CapturedArticle { key: key.clone(), article: None, comments: Vec::new() });
                groups.len() - 1
            }
        };
        match event {
            Event::Article(_) => groups[at].article = Some(item.clone()),
            _ => groups[at].comments.push(item.clone()),
        }
    }
    groups
}

/// What an ingest run did.
#[derive(Clone, Debug, Default)]
pub struct IngestReport {
    /// Inputs seen, rejected ones included.
    pub inputs: u64,
    /// New events by kind.
    pub new: KindCounts,
    /// Duplicate events by kind.
    pub duplicate: KindCounts,
    /// Rejected inputs.
    pub errors: Vec<InputError>,
    /// Warnings, each naming its input.
    pub warnings: Vec<Warning>,
    /// Per file, with a dry run.
    pub files: Vec<DryRunFile>,
    /// The first input parsed under `--source-url` and its title, which
    /// the later inputs' titles are compared with.
    source_url_first: Option<(String, Option<String>)>,
}

/// A problem that did not reject an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The input.
    pub path: String,
    /// What is odd about it.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What a dry run says about one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DryRunFile {
    /// The input.
    pub path: String,
    /// Comments in it.
    pub comments: u64,
    /// Comments already archived (same id).
    pub archived: u64,
    /// Comments not archived but near-duplicates of archived ones (same
    /// folded author and folded text, docs/dedupe.md).
    pub near_duplicates: u64,
    /// What its capture would change in the threads it shows (`None` when
    /// the views are pinned in the past).
    pub changes: Option<crate::views::threads::PreviewCounts>,
}

/// Ingests one document read from `name`: parse, build the capture, append.
pub fn ingest_bytes(
    archive: &mut Archive,
    name: &str,
    raw: &[u8],
    opts: &IngestOptions,
    report: &mut IngestReport,
) -> Result<()> {
    ingest_hashed(archive, name, raw, BlobId(*blake3::hash(raw).as_bytes()), opts, report)
}

/// [`ingest_bytes`] with the BLAKE3 of `raw` already computed.
fn ingest_hashed(
    archive: &mut Archive,
    name: &str,
    raw: &[u8],
    blob: BlobId,
    opts: &IngestOptions,
    report: &mut IngestReport,
) -> Result<()> {
    let prepared = prepare(name, raw, &blob, opts, None);
    let mut group = archive.group();
    ingest_prepared(&mut group, name, raw, blob, prepared, opts, report)?;
    group.commit()?;
    Ok(())
}

/// Tells whether a parse key (of a blob) is recorded in the archive (from
/// any thread).
pub type ParseLookup = std::sync::Arc<dyn Fn(&BlobId, &crate::store::ParseKey) -> bool + Send + Sync>;

/// The part of ingesting a document that needs no archive: its text and
/// format checked, its parse key, and (when `known` says the key is not
/// recorded yet) its parse. Pure, so the reader thread runs it for the
/// next documents while the main thread appends.
enum Prepared {
    /// Not a text document of a known format.
    Rejected(InputError),
    /// Checked; `doc` is its parse when it was parsed ahead.
    Ready {
        key: crate::store::ParseKey,
        format: Format,
        doc: Option<std::result::Result<ParsedDocument, InputError>>,
        /// The stored bytes of its capture, when made ahead ([`blob_ahead`]).
        ahead: Option<crate::store::Ahead>,
    },
}

/// Checks and (with `known`, unless the key is already recorded) parses
/// one document.
fn prepare(
    name: &str,
    raw: &[u8],
    blob: &BlobId,
    opts: &IngestOptions,
    known: Option<&ParseLookup>,
) -> Prepared {
    let (text, format) = match text_and_format(name, raw, opts) {
        Ok(t) => t,
        Err(e) => return Prepared::Rejected(e),
    };
    let key = parse_key_for(blob, format, opts);
    let doc = match known {
        Some(known) if opts.dry_run || !known(blob, &key) => Some(parse_text(name, text, format, opts)),
        _ => None,
    };
    Prepared::Ready { key, format, doc, ahead: None }
}

/// The stored bytes of the page's capture, made on a reader thread when the
/// document was parsed ahead, by what its page (the article its first event
/// names, as [`crate::store::page_key`] takes it) has recorded: no capture
/// (a first capture is stored whole), so the page compressed whole; or a
/// latest capture, so the delta against it (a re-scrape). The appending
/// thread then need not make them: it stores them when its own base for
/// the page is the one they were made for (a page whose earlier capture is
/// still being committed has another base there: the appending thread
/// makes its bytes, as it does for a page that names no article or one
/// this guess gets wrong).
fn blob_ahead(
    raw: &[u8],
    doc: &ParsedDocument,
    pages: Option<&crate::store::PageLookup>,
    deltas: Option<&crate::store::DeltaMaker>,
) -> Option<crate::store::Ahead> {
    use crate::store::{Ahead, PageBase};
    let article = doc.events.iter().find_map(crate::store::buckets::bucket_article)?;
    match pages?(&crate::store::buckets::article_bucket(article)) {
        PageBase::New => crate::store::blobs::compress_whole(raw).ok().map(Ahead::Whole),
        PageBase::Latest(base) => deltas?(raw, &base).map(|delta| Ahead::Delta { base, delta }),
        PageBase::Unknown => None,
    }
}

/// Appends a prepared document: unless its parse is recorded (a
/// byte-identical re-ingest), parses it if it was not parsed ahead, builds
/// its capture and appends its events.
fn ingest_prepared(
    group: &mut CommitGroup<'_>,
    name: &str,
    raw: &[u8],
    blob: BlobId,
    prepared: Prepared,
    opts: &IngestOptions,
    report: &mut IngestReport,
) -> Result<()> {
    report.inputs += 1;
    let archive = group.archive();
    let reject = |report: &mut IngestReport, e: InputError| {
        tracing::debug!("rejected {e}");
        report.errors.push(e);
    };
    let (key, format, parsed_ahead, ahead) = match prepared {
        Prepared::Rejected(e) => {
            reject(report, e);
            return Ok(());
        }
        Prepared::Ready { key, format, doc, ahead } => (key, format, doc, ahead),
    };
    // The same bytes under the same parse inputs were ingested before:
    // every event is a duplicate, and there is nothing to parse.
    let mut done = if opts.dry_run { None } else { archive.parsed(&blob, &key)? };
    // Read before by an earlier parser, without a fetch time: the same
    // observation ([`earlier_observation`]), recorded under its time
    // (looked for only when these inputs' own key is not recorded).
    let observed = match (&done, opts.fetched_at) {
        (None, None) => earlier_observation(archive, &blob, format, opts)?,
        _ => None,
    };
    let observed_key =
        observed.map(|t| parse_key_with(&blob, format, parser_version(format), opts, Some(&t)));
    if let (false, None, Some(k)) = (opts.dry_run, &done, &observed_key) {
        done = archive.parsed(&blob, k)?;
    }
    if let Some(done) = done {
        // --strict refuses a partial page even when it is archived.
        if opts.strict {
            if let Ok(Event::Capture(c)) = archive.event(&done.capture) {
                if !c.is_complete() {
                    let why = format!("partial capture refused (--strict): {}", c.describe_gaps());
                    reject(report, InputError::whole(name, why));
                    return Ok(());
                }
            }
        }
        report.duplicate.merge(&done.counts);
        return Ok(());
    }
    let parsed = match parsed_ahead {
        Some(doc) => doc,
        None => match text_and_format(name, raw, opts) {
            Ok((text, _)) => parse_text(name, text, format, opts),
            Err(e) => Err(e),
        },
    };
    let mut doc = match parsed {
        Ok(d) => d,
        Err(e) => {
            reject(report, e);
            return Ok(());
        }
    };
    same_source_url_article(name, &doc, opts, report);
    let mut key = key;
    if let (None, Some(t), Some(k)) = (doc.fetched_at, observed, observed_key) {
        doc.fetched_at = Some(t);
        key = k;
    }
    let capture = capture_for(name, blob, &doc, opts);
    if !capture.is_complete() {
        let gaps = capture.describe_gaps();
        if opts.strict {
            reject(report, InputError::whole(name, format!("partial capture refused (--strict): {gaps}")));
            return Ok(());
        }
        report.warnings.push(Warning {
            path: name.to_string(),
            message: format!("partial capture, so it marks no comment removed: {gaps}"),
        });
    }
    for w in &doc.warnings {
        tracing::debug!("{name}: {w}");
        report.warnings.push(Warning { path: name.to_string(), message: w.clone() });
    }
    if opts.dry_run {
        let (archived, near_duplicates) = match &opts.near_duplicates {
            Some(index) => index.classify(archive, &doc.events)?,
            None => (0, 0),
        };
        let comments = doc.events.iter().filter(|e| matches!(e, Event::Comment(_))).count() as u64;
        let changes = crate::views::threads::preview_capture(archive, &capture, &doc.events)?;
        report.files.push(DryRunFile {
            path: name.to_string(),
            comments,
            archived,
            near_duplicates,
            changes,
        });
    }
    let capture = Event::Capture(Box::new(capture));
    let bound = crate::store::envelope::segment_size_bound(&doc.events)
        + crate::store::envelope::segment_size_bound(std::slice::from_ref(&capture));
    if bound > crate::store::envelope::MAX_VALUE as u64 {
        reject(
            report,
            InputError::whole(
                name,
                format!(
                    "its {} events could make a log record of up to {bound} bytes, more than cairn reads back \
                     ({} bytes); split the document",
                    doc.events.len() + 1,
                    crate::store::envelope::MAX_VALUE
                ),
            ),
        );
        return Ok(());
    }
    let mut ids: Vec<EventId> = doc.items.iter().map(|i| i.id).collect();
    ids.push(capture.id());
    let mut events = doc.events;
    events.push(capture);
    let new = NewDocument { raw, events, ids, parse_key: Some(key), hashed: Some(blob), ahead };
    let outcome = group.append(new, opts.dry_run)?;
    tracing::info!("{name}: {} new, {} duplicate events", outcome.new.total(), outcome.duplicate.total());
    report.new.merge(&outcome.new);
    report.duplicate.merge(&outcome.duplicate);
    Ok(())
}

/// `--source-url` makes every page of the run one article: a page whose
/// title is not that of the first page the run records (pages already
/// archived are not parsed again) is recorded as a revision of it, which
/// two different articles' pages given one URL by mistake are not. Warned
/// (once per page), not refused: a page retitled between scrapes is one.
fn same_source_url_article(
    name: &str,
    doc: &ParsedDocument,
    opts: &IngestOptions,
    report: &mut IngestReport,
) {
    // (Only a tribune page's article is keyed by it; a JSON Lines record
    // names its own.)
    if opts.source_url.is_none() || doc.format != "tribune" {
        return;
    }
    let Some(Event::Article(a)) = doc.events.first() else { return };
    let folded = |t: &Option<String>| t.as_deref().map(str::to_lowercase);
    match &report.source_url_first {
        None => report.source_url_first = Some((name.to_string(), a.title.clone())),
        Some((first, title)) if folded(title) != folded(&a.title) => {
            let shown =
                |t: &Option<String>| t.as_deref().map_or("no title".to_string(), |t| format!("{t:?}"));
            let message = format!(
                "--source-url makes every input one article, and this page's title ({}) is not that of {first} \
                 ({}): it is recorded as a revision of that article; pages of different articles need a \
                 --source-url each",
                shown(&a.title),
                shown(title)
            );
            report.warnings.push(Warning { path: name.to_string(), message });
        }
        Some(_) => {}
    }
}

/// The parse key a document is recorded under: its blob and every input of
/// its parse.
fn parse_key_for(blob: &BlobId, format: Format, opts: &IngestOptions) -> crate::store::ParseKey {
    parse_key_with(blob, format, parser_version(format), opts, opts.fetched_at.as_ref())
}

/// The version of `format`'s parser.
pub(crate) fn parser_version(format: Format) -> u64 {
    match format {
        Format::Jsonl => jsonl::PARSER_VERSION,
        Format::Tribune => tribune::PARSER_VERSION,
    }
}

/// [`parse_key_for`] as parser version `version` makes it, with the fetch
/// time `fetched_at`.
fn parse_key_with(
    blob: &BlobId,
    format: Format,
    version: u64,
    opts: &IngestOptions,
    fetched_at: Option<&Timestamp>,
) -> crate::store::ParseKey {
    let tz = match format {
        Format::Jsonl => opts.tz,
        Format::Tribune => Some(opts.tz.unwrap_or_else(tribune::default_offset)),
    };
    let tz = tz.map(format_offset);
    crate::store::parse_key(
        blob,
        format.name(),
        version,
        tz.as_deref(),
        opts.source_url.as_deref(),
        fetched_at,
    )
}

/// When these bytes were ingested before, under the same inputs (but the
/// fetch time), by an earlier version of the parser, the time that capture
/// was observed (its fetch time, else when it was recorded; of several,
/// the latest): the same bytes without a fetch time are the same
/// observation re-read by today's parser, as `reparse` takes them, not a
/// scrape made now (which, the latest capture, would show the page as it
/// was then, its later changes undone).
fn earlier_observation(
    archive: &Archive,
    blob: &BlobId,
    format: Format,
    opts: &IngestOptions,
) -> Result<Option<Timestamp>> {
    let current = parser_version(format);
    let mut latest: Option<Timestamp> = None;
    let mut seen = |entry: &crate::model::LogEntry| {
        let Event::Capture(c) = &entry.event else { return };
        // The same inputs, whatever the fetch time: the key the earlier
        // parser made of them with this capture's own fetch time.
        let same = c.parser_version < current
            && parse_key_with(blob, format, c.parser_version, opts, c.fetched_at.as_ref())
                == crate::store::parse_key_of(c);
        let at = c.observed_at(entry.recorded_at);
        if same && latest.is_none_or(|l| l.instant() < at.instant()) {
            latest = Some(at);
        }
    };
    // Every parse record of the blob, whatever its fetch time, those kept
    // apart from its record included. (One that cannot be read stops:
    // left out, the page would be dated now, for good.)
    for done in archive.parses_of(blob)? {
        if let Some(entry) = archive.entry_by_id(&done.capture)? {
            seen(&entry);
        }
    }
    Ok(latest)
}

/// Ingests every input in order. `on_input` is called after each one (for
/// progress display). Flushes before returning unless this is a dry run.
///
/// With `views`, the views are updated as documents are committed, from
/// the entries in memory.
pub fn ingest_inputs(
    archive: &mut Archive,
    inputs: &[std::result::Result<Input, InputError>],
    opts: &IngestOptions,
    views: Option<&[Box<dyn crate::views::Projection>]>,
    mut on_input: impl FnMut(&str),
) -> Result<IngestReport> {
    let mut report = IngestReport::default();
    let update_views = |archive: &Archive, segments: Vec<Vec<crate::model::LogEntry>>| -> Result<()> {
        match views {
            Some(views) if !segments.is_empty() => crate::views::apply_segments(archive, views, segments),
            _ => Ok(()),
        }
    };
    // Two reader threads read, hash and parse the next inputs while this
    // one appends and commits (a bounded lookahead each, in order:
    // the order of the log does not depend on the threads), and a view thread
    // applies each committed batch to the views through a reader of the
    // archive (two batches behind at most).
    let known = archive.store().parse_lookup();
    let pages = if opts.dry_run { None } else { archive.store().page_lookup() };
    let deltas = if opts.dry_run { None } else { archive.store().delta_maker() };
    // The views in two groups, each applied on a thread of its own through
    // a reader of the archive (the threads view, the authors view: about
    // equal work).
    let view_groups: Vec<(Vec<&dyn crate::views::Projection>, Archive)> = match views {
        Some(views) if !opts.dry_run => {
            let (even, odd): (Vec<_>, Vec<_>) = views.iter().enumerate().partition(|(i, _)| i % 2 == 0);
            let mut groups = Vec::new();
            for part in [even, odd] {
                let part: Vec<&dyn crate::views::Projection> =
                    part.into_iter().map(|(_, v)| v.as_ref()).collect();
                if part.is_empty() {
                    continue;
                }
                match archive.reader() {
                    Some(reader) => groups.push((part, reader)),
                    None => break,
                }
            }
            groups
        }
        _ => Vec::new(),
    };
    let mut group = archive.group();
    let budgets: Vec<Lookahead> = (0..READERS).map(|_| Lookahead::default()).collect();
    // The inputs whose documents are all committed (a count from the
    // first, and the last one's name): what an error part way leaves in
    // the archive.
    let mut committed: (usize, Option<String>) = (0, None);
    let rest = std::thread::scope(|scope| -> Result<Vec<Vec<crate::model::LogEntry>>> {
        type Batch = std::sync::Arc<[std::sync::Arc<crate::model::LogEntry>]>;
        let mut senders = Vec::new();
        let mut view_workers = Vec::new();
        for (part, mut reader) in view_groups {
            let (batches, batch_rx) = std::sync::mpsc::sync_channel::<Batch>(2);
            senders.push(batches);
            view_workers.push(scope.spawn(move || -> Result<()> {
                for entries in batch_rx {
                    reader.reload_head()?;
                    crate::views::apply_shared(&reader, &part, &entries)?;
                }
                Ok(())
            }));
        }
        let share = |segments: Vec<Vec<crate::model::LogEntry>>| -> Batch {
            segments.into_iter().flatten().map(std::sync::Arc::new).collect()
        };
        // Hands a committed batch to the view threads (or applies it here
        // when there are none); false once a view thread has stopped.
        let hand_over =
            |group: &CommitGroup<'_>, segments: Vec<Vec<crate::model::LogEntry>>| -> Result<bool> {
                if segments.is_empty() {
                    return Ok(true);
                }
                if senders.is_empty() {
                    return update_views(group.archive(), segments).map(|_| true);
                }
                let entries = share(segments);
                Ok(senders.iter().all(|s| s.send(std::sync::Arc::clone(&entries)).is_ok()))
            };
        let mut views_stopped = false;
        type Read = (Vec<u8>, BlobId, Option<Timestamp>, Prepared);
        let mtimes = opts.fetched_at_from_mtime;
        let limit = if opts.max_document == 0 { DEFAULT_MAX_DOCUMENT } else { opts.max_document };
        let always: ParseLookup = std::sync::Arc::new(|_: &BlobId, _: &crate::store::ParseKey| false);
        let known = known.unwrap_or(always);
        // Two reader threads, each taking every other input and handing it
        // over in its own channel; this thread takes them alternately, so
        // documents are appended in input order whatever the threads'
        // timing ([`LOOKAHEAD_DOCUMENTS`] and [`LOOKAHEAD_BYTES`] ahead
        // per reader at most). Reading,
        // hashing and telling the format were most of a byte-identical
        // re-ingest, on one thread while this one waited.
        let mut channels = Vec::new();
        // Readers blocked on their budget stop when this thread does.
        let budgets = &budgets;
        let _close = CloseOnDrop(budgets);
        for (reader, budget) in budgets.iter().enumerate() {
            let (tx, rx) =
                std::sync::mpsc::sync_channel::<std::result::Result<Read, InputError>>(LOOKAHEAD_DOCUMENTS);
            channels.push(rx);
            let known = std::sync::Arc::clone(&known);
            let pages = pages.clone();
            let deltas = deltas.clone();
            scope.spawn(move || {
                for input in inputs.iter().flatten().skip(reader).step_by(READERS) {
                    let read = input.read(limit).map(|raw| {
                        // The bytes this reader may hold ahead are bounded.
                        budget.take(raw.len());
                        let blob = BlobId(*blake3::hash(&raw).as_bytes());
                        let mtime = if mtimes { input.modified() } else { None };
                        let name = input.name();
                        let prepared = if mtimes {
                            prepare(
                                &name,
                                &raw,
                                &blob,
                                &IngestOptions { fetched_at: mtime, ..opts.clone() },
                                Some(&known),
                            )
                        } else {
                            prepare(&name, &raw, &blob, opts, Some(&known))
                        };
                        let mut prepared = prepared;
                        if let Prepared::Ready { ahead, doc: Some(Ok(doc)), .. } = &mut prepared {
                            *ahead = blob_ahead(&raw, doc, pages.as_ref(), deltas.as_ref());
                        }
                        (raw, blob, mtime, prepared)
                    });
                    if budget.closed() || tx.send(read).is_err() {
                        return; // the ingest stopped
                    }
                }
            });
        }
        let mut next_reader = 0usize;
        // The inputs handled so far (a count, and the last one's name).
        let mut handled: (usize, Option<String>) = (0, None);
        for (at, input) in inputs.iter().enumerate() {
            match input {
                Err(e) => {
                    report.inputs += 1;
                    report.errors.push(e.clone());
                    handled = (at + 1, Some(e.path.clone()));
                }
                Ok(input) => {
                    let name = input.name();
                    let read = channels[next_reader]
                        .recv()
                        .map_err(|_| Error::Internal(format!("{name}: the input reader thread stopped")))?;
                    let budget = &budgets[next_reader];
                    next_reader = (next_reader + 1) % READERS;
                    match read {
                        Ok((raw, blob, mtime, prepared)) => {
                            let _held = Held(budget, raw.len());
                            if opts.fetched_at_from_mtime {
                                if mtime.is_none() {
                                    report.warnings.push(Warning {
                                        path: name.clone(),
                                        message: "no modification time to take fetched_at from (stdin has none, and a file's must lie in years 0 to 9999); fetched_at not recorded"
                                            .into(),
                                    });
                                }
                                let file_opts = IngestOptions { fetched_at: mtime, ..opts.clone() };
                                ingest_prepared(
                                    &mut group,
                                    &name,
                                    &raw,
                                    blob,
                                    prepared,
                                    &file_opts,
                                    &mut report,
                                )?;
                            } else {
                                ingest_prepared(&mut group, &name, &raw, blob, prepared, opts, &mut report)?;
                            }
                            let segments = group.take_committed();
                            if !segments.is_empty() {
                                // A commit takes every document staged so far.
                                committed = (at + 1, Some(name.clone()));
                            }
                            if !hand_over(&group, segments)? {
                                views_stopped = true;
                            }
                        }
                        Err(e) => {
                            report.inputs += 1;
                            report.errors.push(e);
                        }
                    }
                    on_input(&name);
                    handled = (at + 1, Some(name));
                }
            }
            if views_stopped {
                break; // the view thread's error is reported below
            }
        }
        // What was appended is committed even when the view thread stopped
        // (the views catch up later); its error is reported after.
        let rest = group.commit()?;
        committed = handled;
        if view_workers.is_empty() {
            return Ok(rest);
        }
        if !rest.is_empty() && !views_stopped {
            let entries = share(rest);
            for s in &senders {
                let _ = s.send(std::sync::Arc::clone(&entries));
            }
        }
        drop(senders);
        let mut failed = None;
        for worker in view_workers {
            let outcome = worker.join().map_err(|_| Error::Internal("a view thread panicked".into()));
            if let Err(e) = outcome.and_then(|r| r) {
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(Vec::new()),
        }
    })
    .map_err(|e| if opts.dry_run { e } else { stopped(e, &committed, inputs.len(), &report.errors) })?;
    if !opts.dry_run {
        // Everything is committed: an error here leaves every input in.
        update_views(archive, rest)
            .and_then(|()| archive.flush())
            .map_err(|e| stopped(e, &committed, inputs.len(), &report.errors))?;
    }
    Ok(report)
}

/// `e`, with what the ingest had committed before it (of `total` inputs,
/// the first `committed.0`, the last of them named when some are) and the
/// inputs it had rejected.
pub fn stopped(
    e: Error,
    committed: &(usize, Option<String>),
    total: usize,
    rejected: &[InputError],
) -> Error {
    let (n, last) = committed;
    let done = if *n == 0 {
        format!(
            "this ingest committed none of its {} before it stopped; a group of documents whose commit \
             failed after reaching the log files is found by the next command",
            plural_inputs(total)
        )
    } else if *n == total && rejected.len() >= total {
        format!(
            "this ingest rejected all its {} (listed above) and committed nothing before it stopped",
            plural_inputs(total)
        )
    } else if *n == total {
        format!(
            "this ingest committed the documents of all its {}{} before it stopped; they stay in the archive",
            plural_inputs(total),
            if rejected.is_empty() { String::new() } else { format!(" but the {} rejected", rejected.len()) }
        )
    } else {
        format!(
            "before it stopped, this ingest committed the documents of its first {n} of {}{}, \
             which stay in the archive, and a group whose commit failed after reaching the log files is found \
             by the next command; running it again appends only what is missing",
            plural_inputs(total),
            last.as_deref().map(|l| format!(" (through {l})")).unwrap_or_default()
        )
    };
    let done = match rejected.len() {
        0 => done,
        n => format!("{done} ({} rejected, listed above, appended nothing)", plural_inputs(n)),
    };
    Error::Stopped { done, rejected: rejected.to_vec(), rejected_as: "rejected", source: Box::new(e) }
}

fn plural_inputs(n: usize) -> String {
    crate::cli::output::plural(n as u64, "input")
}

/// Input reader threads in an ingest.
const READERS: usize = 2;

/// Documents each reader thread may have read ahead of the appending
/// thread (with one document ahead, the appending thread waited for the
/// readers about a tenth of a first ingest's wall time). 32 rather than
/// 16 lets the readers keep parsing through most of a group commit (the
/// appending thread's pause): a first ingest 0.72 -> 0.68 s at 100k and
/// 7.5-8.5 -> 7.2-7.6 s at 1M, the same peak RSS at 1M; 64 gained little
/// more for 8-17 MB.
const LOOKAHEAD_DOCUMENTS: usize = 32;

/// Raw bytes each reader thread may hold ahead of the appending thread
/// (one larger document still goes through, alone).
const LOOKAHEAD_BYTES: usize = 4 << 20;

/// The raw bytes a reader thread holds ahead of the appending thread: it
/// waits before holding more than [`LOOKAHEAD_BYTES`] (unless it holds
/// nothing), until the appending thread is done with a document or stops.
#[derive(Default)]
struct Lookahead {
    state: std::sync::Mutex<(usize, bool)>,
    freed: std::sync::Condvar,
}

impl Lookahead {
    /// Waits until `n` more bytes fit (or the ingest stopped), then holds them.
    fn take(&self, n: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 > 0 && state.0 + n > LOOKAHEAD_BYTES && !state.1 {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += n;
    }

    /// Gives back `n` bytes the appending thread is done with.
    fn give(&self, n: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(n);
        self.freed.notify_all();
    }

    /// Whether the appending thread has stopped.
    fn closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// Gives a document's bytes back to its reader's budget when dropped.
struct Held<'a>(&'a Lookahead, usize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.give(self.1);
    }
}

/// Marks every reader's budget closed when dropped (the appending thread
/// returned, with or without an error), waking readers that wait on it.
struct CloseOnDrop<'a>(&'a [Lookahead]);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        for budget in self.0 {
            budget.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
            budget.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod stopped_tests {
    use super::*;

    fn said(committed: usize, total: usize, rejected: usize) -> String {
        let rejected: Vec<InputError> =
            (0..rejected).map(|i| InputError::whole(&format!("r{i}"), "bad")).collect();
        let e = stopped(Error::Internal("x".into()), &(committed, None), total, &rejected);
        e.done().unwrap().0.to_string()
    }

    /// What a stopped ingest says it committed is what it committed: an
    /// input it rejected is never among the documents it committed.
    #[test]
    fn a_stopped_ingest_says_what_it_committed() {
        assert!(said(0, 3, 0).contains("committed none of its 3 inputs"));
        assert!(said(1, 1, 1).contains("rejected all its 1 input"), "{}", said(1, 1, 1));
        assert!(!said(1, 1, 1).contains("committed the documents"));
        assert!(said(3, 3, 1).contains("all its 3 inputs but the 1 rejected"), "{}", said(3, 3, 1));
        assert!(said(3, 3, 0).ends_with("all its 3 inputs before it stopped; they stay in the archive"));
        assert!(said(2, 3, 0).contains("its first 2 of 3 inputs"));
    }
}

#[cfg(test)]
mod tests {
    use super::file_time;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn file_times_floor_to_the_second_and_stay_within_years_0_to_9999() {
        let at = |t: Option<crate::model::Timestamp>| t.map(|t| t.canonical());
        let utc = |s: &str| Some(format!("{s}+00:00"));
        assert_eq!(at(file_time(UNIX_EPOCH + Duration::from_millis(1_500))), utc("1970-01-01T00:00:01"));
        assert_eq!(at(file_time(UNIX_EPOCH - Duration::from_millis(1_500))), utc("1969-12-31T23:59:58"));
        assert_eq!(at(file_time(UNIX_EPOCH - Duration::from_secs(1))), utc("1969-12-31T23:59:59"));
        assert_eq!(at(file_time(UNIX_EPOCH - Duration::from_nanos(1))), utc("1969-12-31T23:59:59"));
        // 9999-12-31T23:59:59 is kept; a second later, year 10000, is not
        // (its text, `+10000-...`, does not read back); nor year -1.
        let last = 253_402_300_799;
        assert_eq!(at(file_time(UNIX_EPOCH + Duration::from_secs(last))), utc("9999-12-31T23:59:59"));
        assert_eq!(file_time(UNIX_EPOCH + Duration::from_secs(last + 1)), None);
        assert_eq!(
            at(file_time(UNIX_EPOCH - Duration::from_secs(62_167_219_200))),
            utc("0000-01-01T00:00:00")
        );
        assert_eq!(file_time(UNIX_EPOCH - Duration::from_secs(62_167_219_201)), None);
    }
}
