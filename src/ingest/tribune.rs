//! The Express Tribune page layout ("tribune"): a plain-text dump of one
//! article page with its reader comments (docs/tribune.md describes it).
//!
//! The parser reads structure, not content: indentation, the `  • ` bullet,
//! the `Mon D, YYYY - H:MMAM` time lines, the `Published:` and
//! `Reader Comments (N)` lines, and the first unindented line after the
//! comments as their end (the layout's end marker, `More in ...`, or a
//! stray line among them). Indentation is measured in columns: a space
//! is one, a tab moves to the next multiple of four (one tab is the body's
//! four-space indentation).
//!
//! It refuses what is not this layout rather than guess: a page without the
//! layout's own markers (a `Reader Comments (N)` line, or a comment header
//! followed by a tribune time line), and a page whose "comments" mostly
//! lack a time or outnumber the declared count. Odd but recognizable pages
//! are parsed, with warnings; a page cut off or paginated, or whose
//! comments a stray line ended with more after it, is parsed as a
//! *partial* capture, with its [`Gap`]s recorded.

use crate::error::InputError;
use crate::ingest::ParsedDocument;
use crate::model::normalize::{article_key_for_title, normalize_line};
use crate::model::{Article, ArticleKey, CaptureItem, Comment, Event, Gap, Timestamp};
use chrono::{FixedOffset, NaiveDate, NaiveDateTime};
use std::borrow::Cow;

/// Bumped whenever the same bytes would parse into different events
/// (2: captures record their gaps; bullets before `Reader Comments (N)`
/// stay in the article body; 3: a bullet list inside a comment stays in its
/// body, and a tab indents to the next multiple of four columns; 4: a count
/// grouped by commas, `Reader Comments (1,234)`, is the count line; 5:
/// indented lines after a line that ended the comments but is not the end
/// marker make the capture partial, gap `stray-line`).
pub const PARSER_VERSION: u64 = 5;

/// The site's offset when `--tz` is not given: Pakistan, UTC+05:00.
pub fn default_offset() -> FixedOffset {
    // A constant within chrono's ±24 h range: never None.
    FixedOffset::east_opt(5 * 3600).expect("+05:00 is a valid offset")
}

/// The UI label scrapers glue to the end of a comment body.
const RECOMMEND: &str = "Recommend";

/// The comment time's format, parsed once: `NaiveDateTime::parse_from_str`
/// parses its format string again on every call (most of a comment
/// time's parse; it runs for every bullet line of every page).
static COMMENT_TIME: std::sync::LazyLock<Vec<chrono::format::Item<'static>>> =
    std::sync::LazyLock::new(|| {
        // A constant format: it parses (a unit test reads times through it).
        chrono::format::StrftimeItems::new("%b %d, %Y - %I:%M%p").parse_to_owned().unwrap_or_default()
    });

/// Parses a comment time: `Mar 28, 2012 - 1:02PM` (what
/// `NaiveDateTime::parse_from_str(s, "%b %d, %Y - %I:%M%p")` gives).
pub fn parse_comment_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Some(time) = plain_comment_time(s) {
        return Some(time);
    }
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, s, COMMENT_TIME.iter()).ok()?;
    parsed.to_naive_datetime_with_offset(0).ok()
}

/// A comment time in exactly the form pages give it (`Mar 28, 2012 -
/// 1:02PM`: the month as abbreviated in English, day and hour without
/// padding or with one zero, a valid date and time) read byte by byte;
/// `None` for anything else, which chrono then reads (or refuses) as
/// before. chrono's general parser was about 2% of an ingest's samples.
fn plain_comment_time(s: &str) -> Option<NaiveDateTime> {
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let b = s.as_bytes();
    let month = MONTHS.iter().position(|m| b.get(..3) == Some(&m[..]))? as u32 + 1;
    // One or two digits, then what must follow them.
    let number = |at: usize, then: &[u8]| -> Option<(u32, usize)> {
        let digits = b.get(at..)?.iter().take(2).take_while(|c| c.is_ascii_digit()).count();
        let end = at + digits;
        (digits > 0 && b.get(end..end + then.len()) == Some(then)).then(|| {
            let n = b[at..end].iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
            (n, end + then.len())
        })
    };
    // Exactly `n` digits.
    let fixed = |at: usize, n: usize| -> Option<u32> {
        let d = b.get(at..at + n).filter(|d| d.iter().all(u8::is_ascii_digit))?;
        Some(d.iter().fold(0, |v, c| v * 10 + u32::from(c - b'0')))
    };
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let (day, at) = number(4, b", ")?;
    let year = fixed(at, 4)? as i32;
    if b.get(at + 4..at + 7) != Some(b" - ") {
        return None;
    }
    let (hour, at) = number(at + 7, b":")?;
    let minute = fixed(at, 2)?;
    let pm = match b.get(at + 2..) {
        Some(b"AM") => false,
        Some(b"PM") => true,
        _ => return None,
    };
    if !(1..=12).contains(&hour) {
        return None;
    }
    let hour = hour % 12 + if pm { 12 } else { 0 };
    chrono::NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, 0)
}

/// Parses the `Published:` value: `March 28, 2012`, optionally with a time.
fn parse_published(s: &str, tz: FixedOffset) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%B %d, %Y - %I:%M%p") {
        return Some(Timestamp::Zoned(dt, tz));
    }
    NaiveDate::parse_from_str(s, "%B %d, %Y")
        .or_else(|_| NaiveDate::parse_from_str(s, "%b %d, %Y"))
        .ok()
        .map(Timestamp::Date)
}

/// Whether `line` is the `Reader Comments (N)` line: `N` in digits, plain
/// or grouped by commas in threes (`1,234`).
fn is_count_line(line: &str) -> bool {
    count_digits(line).is_some()
}

/// The digits of a `Reader Comments (N)` line's `N`, commas left out.
fn count_digits(line: &str) -> Option<String> {
    let n = line.trim().strip_prefix("Reader Comments (")?.strip_suffix(')')?;
    let mut groups = n.split(',');
    let first = groups.next()?;
    let digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let grouped = n.contains(',');
    if !digits(first) || (grouped && first.len() > 3) || !groups.all(|g| g.len() == 3 && digits(g)) {
        return None;
    }
    Some(n.replace(',', ""))
}

/// The count a `Reader Comments (N)` line declares; `None` also for a
/// count too large to hold (the line is still the count line).
fn declared_count(line: &str) -> Option<u64> {
    count_digits(line)?.parse().ok()
}

/// The text after a bullet, for bullet lines (`  • ahmad`).
fn bullet(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.len() == line.len() {
        return None; // bullets are indented
    }
    trimmed.strip_prefix('•').map(str::trim)
}

/// Whether the line at `i` starts a comment: a bullet whose text is a
/// tribune time (no author shown), or a bullet followed by an indented
/// tribune time line.
fn is_comment_header(lines: &[&str], i: usize) -> bool {
    let Some(rest) = bullet(lines[i]) else { return false };
    parse_comment_time(rest).is_some()
        || lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with([' ', '\t']) && parse_comment_time(next).is_some())
}

/// Whether unindented line `line` is the layout's own end marker: `More in
/// ...` (`More in Pakistan`) or `Leave Your Reply Below`.
fn is_end_marker(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("More in ") || line == "Leave Your Reply Below"
}

/// Where the layout's comment section starts: the `Reader Comments (N)`
/// line, else the first comment header. `None`: the page shows none of the
/// layout's markers.
fn comments_start(lines: &[&str]) -> Option<usize> {
    lines
        .iter()
        .position(|l| is_count_line(l))
        .or_else(|| (0..lines.len()).find(|&i| is_comment_header(lines, i)))
}

/// Whether `text` shows this layout's own markers (for `--format auto`): a
/// `Reader Comments (N)` line, or a comment header (a bullet line) whose
/// time is a tribune time line (`Mar 28, 2012 - 1:02PM`). A bullet list, a
/// `Published:` line or another site's comment headers are not enough.
pub fn looks_like(text: &str) -> bool {
    // The declared count is looked for line by line first, stopping at it
    // (it comes before the comments); only a page without one is split
    // into lines whole to look for a comment header, as `comments_start`.
    if text.lines().any(|l| is_count_line(l.trim_end())) {
        return true;
    }
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    comments_start(&lines).is_some()
}

/// The refusal of a text without this layout's markers: what was looked
/// for, and a hint when it looks like a tribune page cut off before its
/// comments.
pub fn not_this_layout(path: &str, text: &str) -> InputError {
    let hint = if text.lines().any(|l| l.starts_with("Published:")) {
        "; it has a \"Published:\" line: if it is a tribune page cut off before its comments, \
         it shows nothing of its comment section to archive"
    } else {
        ""
    };
    InputError::whole(
        path,
        format!(
            "unrecognized layout: not the tribune layout (looked for a \"Reader Comments (N)\" line, \
             or a comment header followed by a time line like \"Mar 28, 2012 - 1:02PM\"; found neither){hint}"
        ),
    )
}

/// Comments beyond the declared count that are still taken as a count that
/// lags the page (more than this is another layout read as comments).
fn count_slack(declared: u64) -> u64 {
    5 + declared / 2
}

/// Whether `s` is the start of a time line cut short (`Mar 28, 2012 - 2:0`):
/// a proper prefix of the `Mon D, YYYY - H:MMAM` shape.
fn could_be_cut_time(s: &str) -> bool {
    const SHAPES: [&str; 4] =
        ["Aaa 9, 9999 - 9:99PM", "Aaa 99, 9999 - 9:99PM", "Aaa 9, 9999 - 99:99PM", "Aaa 99, 9999 - 99:99PM"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    if !MONTHS.iter().any(|m| s.starts_with(m)) {
        return false;
    }
    let fits = |shape: &str| {
        s.chars().count() < shape.len()
            && s.chars().zip(shape.chars()).all(|(c, p)| match p {
                'A' => c.is_ascii_uppercase(),
                'a' => c.is_ascii_lowercase(),
                '9' => c.is_ascii_digit(),
                'P' => c == 'A' || c == 'P',
                lit => c == lit,
            })
    };
    // Shorter than `Mar 2` is as likely a word (`Yes`) as a cut time.
    s.chars().count() >= 5 && SHAPES.into_iter().any(fits)
}

/// A comment being read (its body lines borrowed from the page).
struct Pending<'a> {
    line: usize,
    author: Option<String>,
    time: Option<NaiveDateTime>,
    /// Still waiting for the time line under `  • author`.
    expect_time: bool,
    /// Index (in `comments`) of the comment this one is nested under.
    parent: Option<usize>,
    body: Vec<Cow<'a, str>>,
}

impl Pending<'_> {
    fn has_body(&self) -> bool {
        self.body.iter().any(|l| !l.trim().is_empty())
    }
}

/// Removes the `Recommend` button label from the end of a body: a last line
/// that is exactly the label, or the label glued to the last word.
pub fn strip_recommend(body: &str) -> &str {
    let trimmed = body.trim_end();
    let Some(head) = trimmed.strip_suffix(RECOMMEND) else {
        return body;
    };
    match head.chars().next_back() {
        None => "",
        Some('\n') => head.trim_end(),
        Some(c) if !c.is_whitespace() => head,
        Some(_) => body, // "... I Recommend": a word, not the label
    }
}

/// Joins body lines (already dedented): runs of blank lines
/// folded to one paragraph break, the `Recommend` label removed (the
/// comment normalizes it: [`Comment::from_owned`]).
fn body_text(lines: &[Cow<'_, str>]) -> String {
    let mut joined = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    // (Whether a line was kept, whether the last kept one is blank.)
    let (mut any, mut last_blank) = (false, false);
    for l in lines {
        let blank = l.trim().is_empty();
        if blank && (!any || last_blank) {
            continue;
        }
        if any {
            joined.push('\n');
        }
        if !blank {
            joined.push_str(l);
        }
        (any, last_blank) = (true, blank);
    }
    // Blank last lines go (as normalization would drop them), so that a
    // body is usually normal already (kept as it is, not copied).
    while joined.ends_with('\n') {
        joined.pop();
    }
    match strip_recommend(&joined) {
        stripped if stripped.len() == joined.len() => joined,
        stripped => stripped.to_string(),
    }
}

/// A tab indents to the next multiple of this many columns: one tab is the
/// body's four-space indentation, and no tab straddles the fourth column.
const TAB_STOP: usize = 4;

/// The leading indentation of `line` (spaces and tabs) up to `max` columns:
/// its length in bytes and the columns it covers.
fn indentation(line: &str, max: usize) -> (usize, usize) {
    indentation_from(line, 0, max)
}

/// [`indentation`] of text that starts at column `start`.
fn indentation_from(line: &str, start: usize, max: usize) -> (usize, usize) {
    let (mut bytes, mut columns) = (0, start);
    for b in line.bytes() {
        let next = match b {
            b' ' => columns + 1,
            b'\t' => (columns / TAB_STOP + 1) * TAB_STOP,
            _ => break,
        };
        if next > max {
            break;
        }
        (bytes, columns) = (bytes + 1, next);
    }
    (bytes, columns)
}

/// How many columns `line` is indented (spaces and tabs).
fn indent_columns(line: &str) -> usize {
    indentation(line, usize::MAX).1
}

/// A body line without the layout's indentation: up to four columns of
/// spaces and tabs removed (`    text`, `\ttext` and `  \ttext` all read
/// `text`); deeper indentation is the text's own, kept as the spaces it
/// covers when it has a tab (`\t\ttext` reads as `        text` does), else
/// as captured.
fn dedent(line: &str) -> Cow<'_, str> {
    let (cut, column) = indentation(line, TAB_STOP);
    let rest = &line[cut..];
    let (lead, to) = indentation_from(rest, column, usize::MAX);
    if rest.as_bytes()[..lead].contains(&b'\t') {
        Cow::Owned(format!("{}{}", " ".repeat(to - column), &rest[lead..]))
    } else {
        Cow::Borrowed(rest)
    }
}

/// Parses one page. `tz` overrides the site's +05:00; `source_url` (already
/// canonical) keys the article when given.
pub fn parse(
    path: &str,
    text: &str,
    tz: Option<FixedOffset>,
    source_url: Option<&str>,
) -> Result<ParsedDocument, InputError> {
    let tz = tz.unwrap_or_else(default_offset);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut warnings = Vec::new();

    // Header: everything before `Reader Comments (N)` (bullets before it are
    // a list in the article body), or before the first comment header.
    let Some(header_end) = comments_start(&lines) else {
        return Err(not_this_layout(path, text));
    };
    let count_line = is_count_line(lines[header_end]);
    let declared = declared_count(lines[header_end]);
    if count_line && declared.is_none() {
        warnings.push(format!(
            "line {}: the declared comment count is too large to read; the comments are not checked against it",
            header_end + 1
        ));
    }
    let header = &lines[..header_end];
    let published_at = header.iter().position(|l| l.starts_with("Published:"));
    let (title, published, body_lines) = match published_at {
        Some(p) => {
            let title =
                header[..p].iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            let value = header[p].trim_start_matches("Published:");
            let published = parse_published(value, tz);
            if published.is_none() {
                warnings.push(format!("line {}: cannot read the date in {:?}", p + 1, header[p]));
            }
            (Some(title).filter(|t| !t.is_empty()), published, &header[p + 1..])
        }
        None => (None, None, header),
    };
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for l in body_lines.iter().chain(std::iter::once(&"")) {
        if l.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else if l.trim() != "Facebook Conversations" {
            current.push(l);
        }
    }

    let key = match (source_url, &title, paragraphs.first()) {
        (Some(url), _, _) => ArticleKey(url.to_string()),
        (None, Some(t), _) => article_key_for_title(t, published.as_ref()),
        (None, None, Some(caption)) => article_key_for_title(caption, published.as_ref()),
        (None, None, None) => {
            return Err(InputError::whole(
                path,
                "the page has no title, caption or URL to name its article; pass --source-url",
            ))
        }
    };
    let article = Article::new(
        key.clone(),
        source_url.map(str::to_string),
        title.as_deref(),
        published,
        None,
        &paragraphs,
    );

    // Comments: from the header's end to the first unindented line.
    let start = if count_line { header_end + 1 } else { header_end };
    let mut pendings: Vec<Pending> = Vec::new();
    let mut last_top: Option<usize> = None;
    // The indentation (columns) of the last bulleted comment's bullet.
    let mut top_indent: Option<usize> = None;
    let mut end_marker: Option<usize> = None;
    let mut stray_line = false;
    for (offset, raw) in lines.iter().enumerate().skip(start) {
        let line_no = offset + 1;
        if raw.trim().is_empty() {
            if let Some(p) = pendings.last_mut() {
                p.body.push(Cow::Borrowed(""));
            }
            continue;
        }
        // A bullet indented deeper than the last comment's own bullet is a
        // list in that comment's body (`    • first point` under
        // `  • ahmad`), unless it has a comment header's whole shape: its
        // text a time, or a time line under it.
        let starts_comment = bullet(raw).map(|rest| (rest, indent_columns(raw))).filter(|&(_, indent)| {
            top_indent.is_none_or(|top| indent <= top) || is_comment_header(&lines, offset)
        });
        if let Some((rest, indent)) = starts_comment {
            let time = parse_comment_time(rest);
            let author = if time.is_some() { None } else { Some(normalize_line(rest)) };
            last_top = Some(pendings.len());
            top_indent = Some(indent);
            pendings.push(Pending {
                line: line_no,
                expect_time: time.is_none(),
                author,
                time,
                parent: None,
                body: Vec::new(),
            });
            continue;
        }
        if !raw.starts_with([' ', '\t']) {
            // The end of the comments. A line other than the layout's own
            // end marker may be a stray line among them (`Advertisement`):
            // when indented lines follow it (comments, or the rest of a
            // body), they are not read, and the capture does not count as
            // showing the whole section (it never marks a comment removed),
            // its last comment possibly cut off. After the layout's end
            // marker, comment headers are not read either (a widget of
            // other stories' comments can look like them); a warning says
            // they are there.
            // (Up to the end marker, when one follows: what comes after it
            // is no longer the comment section.)
            let indent = |l: &&str| l.starts_with([' ', '\t']);
            let stray = match is_end_marker(raw) {
                true => None,
                false => (offset + 1..lines.len())
                    .take_while(|&i| indent(&lines[i]) || !is_end_marker(lines[i]))
                    .find(|&i| indent(&lines[i]) && !lines[i].trim().is_empty()),
            };
            match stray {
                Some(after) => {
                    warnings.push(format!(
                        "line {line_no}: {:?} ended the comments, but it is not the layout's end marker and \
                         indented lines follow it (line {}); they are not read, and the capture is partial",
                        raw.trim(),
                        after + 1
                    ));
                    stray_line = true;
                }
                None => {
                    if let Some(after) = (offset + 1..lines.len()).find(|&i| is_comment_header(&lines, i)) {
                        warnings.push(format!(
                            "line {}: a comment header after the end of the comments (line {line_no}) is not read",
                            after + 1
                        ));
                    }
                }
            }
            end_marker = Some(offset);
            break;
        }
        let time = parse_comment_time(raw);
        match pendings.last_mut() {
            Some(p) if p.expect_time && !p.has_body() => {
                p.expect_time = false;
                if time.is_some() {
                    p.time = time;
                } else {
                    p.body.push(dedent(raw));
                }
            }
            _ if time.is_some() && last_top.is_none() => {
                // This layout nests a reply under a bulleted comment; a time
                // line before any is another layout's comment header.
                return Err(InputError::at_line(
                    path,
                    line_no,
                    "unrecognized layout: a time line with no bulleted comment before it; \
                     this comment section is not in the tribune layout",
                ));
            }
            _ if time.is_some() => {
                // A time line with no bullet after a body: a nested reply.
                pendings.push(Pending {
                    line: line_no,
                    author: None,
                    time,
                    expect_time: false,
                    parent: last_top,
                    body: Vec::new(),
                });
            }
            Some(p) => p.body.push(dedent(raw)),
            None => warnings.push(format!("line {line_no}: text outside any comment skipped")),
        }
    }

    let mut gaps = Vec::new();
    let truncated = end_marker.is_none();
    if truncated {
        gaps.push(Gap::NoEndMarker);
        // A page cut inside a reply's time line leaves the start of that
        // line at the end of the last body: it is not body text.
        if let Some(last) = pendings.last_mut() {
            while last.body.last().is_some_and(|l| l.trim().is_empty()) {
                last.body.pop();
            }
            if last.body.last().is_some_and(|l| could_be_cut_time(l.trim())) {
                warnings.push(format!(
                    "line {}: the capture ends inside a time line; that line is not kept as body text",
                    lines.len()
                ));
                last.body.pop();
            }
        }
        if let Some(last) = pendings.last() {
            gaps.push(Gap::CutInsideComment);
            // Every comment of this layout shows a time: a last one without
            // one was cut inside its header (`  • name` then part of the
            // time line), so it is not read as a comment.
            if last.time.is_none() {
                warnings.push(format!(
                    "line {}: the capture ends inside a comment header; that comment is skipped",
                    last.line
                ));
                pendings.pop();
            }
        }
    }

    let found = pendings.len() as u64;
    let timeless = pendings.iter().filter(|p| p.time.is_none()).count() as u64;
    if timeless * 4 > found {
        let first = pendings.iter().find(|p| p.time.is_none()).map_or(0, |p| p.line);
        return Err(InputError::at_line(
            path,
            first,
            format!(
                "unrecognized layout: {timeless} of {found} comment headers have no tribune time line \
                 (\"Mar 28, 2012 - 1:02PM\"); this is another site's layout, not the tribune's"
            ),
        ));
    }
    match declared {
        Some(n) if found > n + count_slack(n) => {
            return Err(InputError::at_line(
                path,
                header_end + 1,
                format!(
                    "unrecognized layout: the page declares {n} comments but {found} were read; \
                     the comment section is not in the tribune layout"
                ),
            ))
        }
        Some(n) if n != found => gaps.push(Gap::CountMismatch),
        Some(_) => {}
        None => gaps.push(Gap::NoDeclaredCount),
    }
    if stray_line {
        gaps.push(Gap::StrayLine);
    }

    let mut events = vec![Event::Article(Box::new(article))];
    let article_id = events[0].id();
    let mut items = vec![CaptureItem { id: article_id, parent: None, possibly_truncated: false }];
    let mut comment_ids = Vec::with_capacity(pendings.len());
    let any_comment = !pendings.is_empty();
    for p in &mut pendings {
        let posted_at = p.time.map(|t| Timestamp::Zoned(t, tz));
        if p.time.is_none() {
            warnings.push(format!("line {}: comment without a time line", p.line));
        }
        let comment =
            Event::Comment(Comment::from_owned(key.clone(), p.author.take(), posted_at, body_text(&p.body)));
        let id = comment.id();
        comment_ids.push(id);
        let parent = p.parent.and_then(|i| comment_ids.get(i).copied());
        items.push(CaptureItem { id, parent, possibly_truncated: false });
        events.push(comment);
    }
    if (truncated || stray_line) && any_comment {
        if let Some(last) = items.last_mut() {
            last.possibly_truncated = true;
        }
    }
    Ok(ParsedDocument {
        format: "tribune",
        parser_version: PARSER_VERSION,
        events,
        items,
        declared_comments: declared,
        tz: Some(tz),
        warnings,
        gaps,
        fetched_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_comment_time("Mar 28, 2012 - 1:02PM").unwrap();
        assert_eq!(t.to_string(), "2012-03-28 13:02:00");
        assert_eq!(parse_comment_time("Mar 3, 2012 - 12:19AM").unwrap().to_string(), "2012-03-03 00:19:00");
        assert!(parse_comment_time("Ali - Lahore").is_none());
        assert!(parse_comment_time("Mar 28, 2012").is_none());
    }

    proptest::proptest! {
        /// The format parsed once reads what chrono's `parse_from_str`
        /// reads, and refuses what it refuses: times, their prefixes, and
        /// near misses.
        #[test]
        fn times_read_as_parse_from_str_reads_them(
            month in 0usize..13, day in 0u32..33, year in 1990i32..2040, hour in 0u32..14, minute in 0u32..61,
            pm: bool, cut in 0usize..30, pad in "[ \t]{0,2}", variant in 0usize..4,
        ) {
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo"];
            // (Beside the pages' own form, forms chrono reads or refuses
            // too, where the byte-by-byte reading must agree with it: the
            // month in capitals, a zero before the day or the hour, a
            // minute without its zero, three digits of day.)
            let month = match variant {
                1 => months[month].to_uppercase(),
                _ => months[month].to_string(),
            };
            let (day, hour, minute) = match variant {
                2 => (format!("{day:02}"), format!("{hour:02}"), format!("{minute}")),
                3 => (format!("{day:03}"), format!("{hour}"), format!("{minute:02}")),
                _ => (format!("{day}"), format!("{hour}"), format!("{minute:02}")),
            };
            let text = format!("{pad}{month} {day}, {year} - {hour}:{minute}{}{pad}", if pm { "PM" } else { "AM" });
            let end = text.len().saturating_sub(cut);
            for s in [text.as_str(), &text[..end]] {
                let chrono = NaiveDateTime::parse_from_str(s.trim(), "%b %d, %Y - %I:%M%p").ok();
                proptest::prop_assert_eq!(parse_comment_time(s), chrono, "{:?}", s);
            }
        }
    }

    #[test]
    fn recommend_label() {
        assert_eq!(strip_recommend("now-a-days….Recommend"), "now-a-days….");
        assert_eq!(strip_recommend("vote for PTIRecommend"), "vote for PTI");
        assert_eq!(strip_recommend("text\nRecommend"), "text");
        assert_eq!(strip_recommend("I Recommend"), "I Recommend");
        assert_eq!(strip_recommend("plain"), "plain");
    }

    #[test]
    fn cut_time_lines() {
        for cut in ["Mar 2", "Mar 28, 2012 -", "Mar 28, 2012 - 2:0", "Mar 8, 2012 - 12:07P"] {
            assert!(could_be_cut_time(cut), "{cut}");
        }
        for whole in ["", "M", "Yes", "Top 5", "Mar 28, 2012 - 2:07PM", "Mary", "mar", "M i wrong?", "Thanks"]
        {
            assert!(!could_be_cut_time(whole), "{whole}");
        }
    }

    #[test]
    fn bullets() {
        assert_eq!(bullet("  • ahmad"), Some("ahmad"));
        assert_eq!(bullet("• ahmad"), None);
        assert_eq!(bullet("    text"), None);
    }

    fn comments(doc: &ParsedDocument) -> Vec<&Comment> {
        doc.events.iter().filter_map(|e| if let Event::Comment(c) = e { Some(c) } else { None }).collect()
    }

    /// A list in a comment (bullets indented as its body, deeper than its
    /// own bullet) is body text, not comments: the old parser read
    /// `first point` and `second point` as two comments without a time (and
    /// refused this small page: half its comments had none).
    #[test]
    fn a_bullet_list_in_a_body_stays_in_the_body() {
        let page = |list: &[&str]| {
            let mut lines = vec!["Title", "Published: March 28, 2012", "Body", "", "Reader Comments (2)", ""];
            lines.extend([
                "  • Aristo",
                "    Mar 28, 2012 - 1:27PM",
                "",
                "    What will come after GERONIMO????",
            ]);
            lines.extend(list);
            lines.extend([
                "",
                "",
                "  • Shah",
                "    Mar 28, 2012 - 1:33PM",
                "",
                "    yeah",
                "",
                "",
                "More in Pakistan",
                "",
            ]);
            lines.join("\n")
        };
        for indent in ["    ", "   ", "\t", "      "] {
            let list = [format!("{indent}• first point"), format!("{indent}• second point")];
            let doc = parse("l.txt", &page(&[list[0].as_str(), list[1].as_str()]), None, None).unwrap();
            assert!(
                doc.warnings.is_empty() && doc.gaps.is_empty(),
                "{indent:?}: {:?} {:?}",
                doc.warnings,
                doc.gaps
            );
            let comments = comments(&doc);
            assert_eq!(comments.len(), 2, "{indent:?}: {comments:?}");
            assert_eq!(comments[0].author.as_deref(), Some("Aristo"));
            let list = if indent.len() > 4 {
                "  • first point\n  • second point"
            } else {
                "• first point\n• second point"
            };
            assert_eq!(comments[0].body, format!("What will come after GERONIMO????\n{list}"));
            assert_eq!(comments[1].author.as_deref(), Some("Shah"));
        }
        // A bullet with a comment header's whole shape still starts one,
        // however deep.
        let shaped = page(&["    • Ali", "    Mar 28, 2012 - 1:30PM", "    hi"]);
        let doc = parse("s.txt", &shaped, None, None).unwrap();
        assert_eq!(
            comments(&doc).iter().map(|c| c.author.as_deref()).collect::<Vec<_>>(),
            [Some("Aristo"), Some("Ali"), Some("Shah")]
        );
    }

    /// A tab is indentation to the next multiple of four columns: the
    /// layout's four columns are removed from a body line whether drawn
    /// with spaces or a tab (the old parser kept the tab in the text).
    #[test]
    fn tabs_indent_as_four_columns() {
        assert_eq!(dedent("    text"), "text");
        assert_eq!(dedent("\ttext"), "text");
        assert_eq!(dedent("  \ttext"), "text");
        assert_eq!(dedent("      text"), "  text");
        assert_eq!(dedent("\t  text"), "  text");
        assert_eq!(dedent("\t\ttext"), "    text", "as eight spaces read");
        assert_eq!(dedent("        text"), "    text");
        assert_eq!(dedent("     \ttext"), "    text");
        assert_eq!(dedent("\t \ttext"), "    text");
        assert_eq!(dedent("  text"), "text");
        assert_eq!(dedent("\u{a0}text"), "\u{a0}text");
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    const SAMPLE: &str = include_str!("../../fixtures/tribune-2012-03-28-us-generals-kayani.txt");

    /// Cut anywhere, the sample parses without panicking, and never yields
    /// more comments than the whole page.
    #[test]
    fn every_prefix_of_the_sample_parses() {
        let mut cuts = 0;
        for end in (0..SAMPLE.len()).step_by(37).filter(|&e| SAMPLE.is_char_boundary(e)) {
            cuts += 1;
            if let Ok(doc) = parse("cut.txt", &SAMPLE[..end], None, None) {
                assert!(doc.events.len() <= 45, "cut at {end}");
                assert_eq!(doc.events.len(), doc.items.len());
            }
        }
        assert!(cuts > 500);
    }

    /// Lines dropped or doubled anywhere never panic the parser.
    #[test]
    fn damaged_line_structure_parses() {
        let lines: Vec<&str> = SAMPLE.lines().collect();
        for i in 0..lines.len() {
            let mut dropped = lines.clone();
            dropped.remove(i);
            let _ = parse("d.txt", &dropped.join("\n"), None, None);
            let mut doubled = lines.clone();
            doubled.insert(i, lines[i]);
            let _ = parse("d.txt", &doubled.join("\n"), None, None);
        }
    }

    /// The sample indented with tabs (one tab for the bullets' two spaces
    /// and for the bodies' four) parses to the very same events: the old
    /// parser kept the tab at the start of every body line, so every
    /// comment read as edited.
    #[test]
    fn the_sample_indented_with_tabs() {
        let tabbed: String = SAMPLE
            .lines()
            .map(|l| match l.strip_prefix("    ").or_else(|| l.strip_prefix("  ")) {
                Some(rest) => format!("\t{rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        assert!(tabbed.contains("\n\t• ahmad\n\tMar 28, 2012 - 1:02PM\n\n\tsale sale"));
        let spaced = parse("s.txt", SAMPLE, None, None).unwrap();
        let tabbed = parse("t.txt", &tabbed, None, None).unwrap();
        assert_eq!(tabbed.events, spaced.events);
        assert_eq!(tabbed.items, spaced.items);
        assert!(
            tabbed.warnings.is_empty() && tabbed.gaps.is_empty(),
            "{:?} {:?}",
            tabbed.warnings,
            tabbed.gaps
        );
    }

    #[test]
    fn the_full_sample() {
        let doc = parse("s.txt", SAMPLE, None, None).unwrap();
        assert_eq!(doc.events.len(), 45);
        assert_eq!(doc.declared_comments, Some(44));
        assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
        assert!(doc.items.iter().all(|i| !i.possibly_truncated));
    }
}
