//! The JSON Lines interchange format (docs/jsonl.md): one JSON object per
//! line, `"type": "article"`, `"comment"` or `"capture"` (at most one: when
//! the document was fetched, whether it is complete, the declared comment
//! count). A file is one document: any bad line rejects the whole file,
//! naming `file:line`.

use crate::error::InputError;
use crate::ingest::ParsedDocument;
use crate::model::normalize::{article_key_for_title, article_key_for_url, canonical_url};
use crate::model::{Article, ArticleKey, CaptureItem, Comment, Event, EventId, Gap, Timestamp};
use chrono::FixedOffset;
use serde::Deserialize;
use std::collections::HashMap;

/// Bumped whenever the same bytes would parse into different events (2:
/// captures record their gaps; the `capture` record).
pub const PARSER_VERSION: u64 = 2;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Record {
    // Boxed: a file is mostly comments, and each record read is held
    // until the file is parsed (a record is as large as its largest kind).
    Article(Box<ArticleRecord>),
    Comment(CommentRecord),
    Capture(Box<CaptureRecord>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureRecord {
    fetched_at: Option<String>,
    complete: Option<bool>,
    declared_comments: Option<u64>,
    #[serde(default, rename = "extra")]
    _extra: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArticleRecord {
    id: Option<String>,
    url: Option<String>,
    title: Option<String>,
    published: Option<String>,
    byline: Option<String>,
    #[serde(default)]
    body: Vec<String>,
    #[serde(default, rename = "extra")]
    _extra: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentRecord {
    id: Option<String>,
    article: Option<String>,
    author: Option<String>,
    posted_at: Option<String>,
    body: String,
    parent: Option<String>,
    #[serde(default, rename = "extra")]
    _extra: Option<serde::de::IgnoredAny>,
}

/// serde_json appends " at line L column C" (always line 1 here); keep the
/// column, drop the line. A record read whole before its fields are
/// looked at (a wrong field type, an unknown field) has no column: serde
/// says 0, and the message names the field instead.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    match e.column() {
        0 => format!("invalid record: {message}"),
        column => format!("invalid record: {message} (column {column})"),
    }
}

fn parse_time(
    path: &str,
    line: usize,
    field: &str,
    s: &str,
    tz: Option<FixedOffset>,
) -> Result<Timestamp, InputError> {
    Timestamp::parse_input(s, tz).ok_or_else(|| {
        let why = "is not a date or date-time (expected e.g. 2012-03-28T13:02:00+05:00)";
        InputError::at_line(path, line, Timestamp::input_refusal(field, s, why))
    })
}

/// Appends article version `event` and its capture item to `doc`.
fn push_article(doc: &mut ParsedDocument, event: Article) {
    let event = Event::Article(Box::new(event));
    doc.items.push(CaptureItem { id: event.id(), parent: None, possibly_truncated: false });
    doc.events.push(event);
}

struct ParsedArticle {
    line: usize,
    event: Article,
}

/// A comment record read, before its parent is resolved.
struct PendingComment {
    line: usize,
    local_id: Option<String>,
    parent: Option<String>,
    event: Comment,
    id: EventId,
}

/// Checks that every reply stays in its article and that no chain of
/// replies comes back to where it started (`p` replying to `q` and `q` to
/// `p`): a comment section is a tree, and a loop or a reply across articles
/// would be shown as something the page cannot have shown. (A parent that
/// is no comment id of the file, or the comment itself, is told where the
/// parents are resolved.)
fn replies_hold_together(path: &str, comments: &[PendingComment]) -> Result<(), InputError> {
    let index: HashMap<&str, usize> =
        comments.iter().enumerate().filter_map(|(i, c)| c.local_id.as_deref().map(|id| (id, i))).collect();
    let parent_of =
        |i: usize| comments[i].parent.as_deref().and_then(|p| index.get(p).copied()).filter(|&j| j != i);
    for (i, c) in comments.iter().enumerate() {
        if let (Some(p), Some(j)) = (&c.parent, parent_of(i)) {
            let theirs = &comments[j].event.article;
            if *theirs != c.event.article {
                let why = format!("parent {p:?} is a comment of another article ({})", theirs.as_str());
                return Err(InputError::at_line(path, c.line, why));
            }
        }
    }
    // 0: not looked at, 1: on the chain being followed, 2: leads to a root.
    let mut state = vec![0u8; comments.len()];
    for start in 0..comments.len() {
        let mut chain = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            match state[i] {
                2 => break,
                1 => {
                    let from = chain.iter().position(|&c| c == i).unwrap_or(0);
                    let names: Vec<&str> = chain[from..]
                        .iter()
                        .chain([&i])
                        .filter_map(|&c| comments[c].local_id.as_deref())
                        .collect();
                    let first = chain[from..].iter().copied().min().unwrap_or(i);
                    return Err(InputError::at_line(
                        path,
                        comments[first].line,
                        format!("replies go round in a loop: {}", names.join(" -> ")),
                    ));
                }
                _ => {
                    state[i] = 1;
                    chain.push(i);
                    at = parent_of(i);
                }
            }
        }
        for c in chain {
            state[c] = 2;
        }
    }
    Ok(())
}

/// Parses one JSON Lines document. `tz` is the offset given to date-times
/// that carry none (`--tz`); without it they stay offset-less.
pub fn parse(path: &str, text: &str, tz: Option<FixedOffset>) -> Result<ParsedDocument, InputError> {
    // (Not reserved from the file's lines: a file of short lines, blank
    // or not, reserved gigabytes before its first line was read.)
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(line).map_err(|e| InputError::at_line(path, i + 1, json_error(&e)))?;
        records.push((i + 1, record));
    }
    if records.is_empty() {
        return Err(InputError::whole(path, "no records"));
    }
    if records.iter().all(|(_, r)| matches!(r, Record::Capture(_))) {
        return Err(InputError::whole(
            path,
            "no article or comment records (a capture record alone says nothing)",
        ));
    }
    let mut capture: Option<(usize, &CaptureRecord)> = None;
    for (line, rec) in &records {
        if let Record::Capture(c) = rec {
            if let Some((first, _)) = capture {
                return Err(InputError::at_line(
                    path,
                    *line,
                    format!("a second capture record (the first is on line {first}); a file is one capture"),
                ));
            }
            capture = Some((*line, c));
        }
    }
    let fetched_at = match capture.and_then(|(line, c)| c.fetched_at.as_deref().map(|f| (line, f))) {
        None => None,
        Some((line, f)) => match Timestamp::parse_input(f, None) {
            Some(t @ Timestamp::Zoned(..)) => Some(t),
            _ => {
                let why = "is not a date-time with offset (e.g. 2012-03-30T08:00:00Z)";
                return Err(InputError::at_line(path, line, Timestamp::input_refusal("fetched_at", f, why)));
            }
        },
    };
    let declared = capture.and_then(|(_, c)| c.declared_comments);
    let marked_incomplete = capture.and_then(|(_, c)| c.complete) == Some(false);

    // Articles first, so comments anywhere in the file can name them.
    let mut articles: Vec<ParsedArticle> = Vec::new();
    // Each article's line, by key and by local id.
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut by_article_id: HashMap<String, (usize, ArticleKey)> = HashMap::new();
    for (line, rec) in &records {
        let Record::Article(a) = rec else { continue };
        let published = match &a.published {
            Some(s) => Some(parse_time(path, *line, "published", s, tz)?),
            None => None,
        };
        let (key, url) = match &a.url {
            Some(u) => {
                let key = article_key_for_url(u).ok_or_else(|| {
                    InputError::at_line(path, *line, format!("url {u:?} is not an absolute URL"))
                })?;
                (key.clone(), Some(key.0))
            }
            None => match &a.title {
                Some(t) if !t.trim().is_empty() => (article_key_for_title(t, published.as_ref()), None),
                _ => return Err(InputError::at_line(path, *line, "an article needs a url or a title")),
            },
        };
        // One record per article and per local id: a second would either
        // contradict the first (another title for the same URL, of which
        // the capture could show only one) or take its comments (a comment
        // naming a repeated id went to the first article with it).
        if let Some(first) = by_key.insert(key.0.clone(), *line) {
            return Err(InputError::at_line(
                path,
                *line,
                format!("article {} is given twice (first on line {first})", key.0),
            ));
        }
        if let Some(local) = &a.id {
            if let Some((first, _)) = by_article_id.insert(local.clone(), (*line, key.clone())) {
                return Err(InputError::at_line(
                    path,
                    *line,
                    format!("article id {local:?} is used twice (first on line {first})"),
                ));
            }
        }
        let event = Article::new(key, url, a.title.as_deref(), published, a.byline.as_deref(), &a.body);
        articles.push(ParsedArticle { line: *line, event });
    }

    let resolve_article = |line: usize, name: Option<&str>| -> Result<ArticleKey, InputError> {
        let Some(name) = name else {
            return match articles.as_slice() {
                [only] => Ok(only.event.key.clone()),
                [] => Err(InputError::at_line(
                    path,
                    line,
                    "comment names no article and the file has no article record",
                )),
                _ => Err(InputError::at_line(
                    path,
                    line,
                    "comment names no article and the file has several; add \"article\"",
                )),
            };
        };
        if let Some((_, key)) = by_article_id.get(name) {
            return Ok(key.clone());
        }
        if let Some(url) = canonical_url(name) {
            return Ok(ArticleKey(url));
        }
        if name.starts_with("title:") {
            return Ok(ArticleKey(name.to_string()));
        }
        Err(InputError::at_line(
            path,
            line,
            format!("article {name:?} is not an article id in this file, a URL or a title: key"),
        ))
    };

    let mut comments: Vec<PendingComment> = Vec::with_capacity(records.len() - articles.len());
    let mut by_local_id: HashMap<String, EventId> = HashMap::new();
    // The records go as they are read (each comment's strings move on).
    for (line, rec) in records {
        let Record::Comment(c) = rec else { continue };
        let article = resolve_article(line, c.article.as_deref())?;
        let posted_at = match &c.posted_at {
            Some(s) => Some(parse_time(path, line, "posted_at", s, tz)?),
            None => None,
        };
        let event = Comment::new(article, c.author.as_deref(), posted_at, &c.body);
        let id = Event::Comment(event.clone()).id();
        if let Some(local) = &c.id {
            if by_local_id.insert(local.clone(), id).is_some() {
                return Err(InputError::at_line(path, line, format!("comment id {local:?} is used twice")));
            }
        }
        comments.push(PendingComment { line, local_id: c.id, parent: c.parent, event, id });
    }

    replies_hold_together(path, &comments)?;

    let found = comments.len() as u64;
    let mut gaps = Vec::new();
    if marked_incomplete {
        gaps.push(Gap::MarkedIncomplete);
    }
    if declared.is_some_and(|n| n != found) {
        gaps.push(Gap::CountMismatch);
    }
    let mut doc = ParsedDocument {
        format: "jsonl",
        parser_version: PARSER_VERSION,
        tz,
        declared_comments: declared,
        gaps,
        fetched_at,
        ..ParsedDocument::default()
    };
    // Events and capture items in file order: the articles and the
    // comments, each in file order, merged by line.
    doc.events.reserve_exact(articles.len() + comments.len());
    doc.items.reserve_exact(articles.len() + comments.len());
    let mut articles = articles.into_iter().peekable();
    for c in comments {
        while let Some(a) = articles.next_if(|a| a.line < c.line) {
            push_article(&mut doc, a.event);
        }
        let parent = match &c.parent {
            None => None,
            Some(p) if c.local_id.as_deref() == Some(p.as_str()) => {
                return Err(InputError::at_line(
                    path,
                    c.line,
                    format!("comment {p:?} names itself as parent"),
                ));
            }
            Some(p) => Some(*by_local_id.get(p).ok_or_else(|| {
                InputError::at_line(path, c.line, format!("parent {p:?} is not a comment id in this file"))
            })?),
        };
        doc.items.push(CaptureItem { id: c.id, parent, possibly_truncated: false });
        doc.events.push(Event::Comment(c.event));
    }
    for a in articles {
        push_article(&mut doc, a.event);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"type":"article","id":"a1","url":"https://Example.com/story/1#top","title":"A  title","published":"2012-03-28","body":["One.","Two."]}
{"type":"comment","id":"c1","article":"a1","author":"ahmad","posted_at":"2012-03-28 13:02","body":"first\r\n\r\nsecond  "}
{"type":"comment","id":"c2","author":null,"posted_at":"2012-03-28T14:07:00+05:00","body":"reply","parent":"c1"}
"#;

    #[test]
    fn parses_articles_comments_and_structure() {
        let doc = parse("f.jsonl", DOC, FixedOffset::east_opt(5 * 3600)).unwrap();
        assert_eq!(doc.events.len(), 3);
        let Event::Article(a) = &doc.events[0] else { panic!("article first") };
        assert_eq!(a.key.0, "https://example.com/story/1");
        assert_eq!(a.title.as_deref(), Some("A title"));
        let Event::Comment(c) = &doc.events[1] else { panic!("comment second") };
        assert_eq!(c.body, "first\n\nsecond");
        assert_eq!(c.posted_at.unwrap().canonical(), "2012-03-28T13:02:00+05:00");
        assert_eq!(doc.items[2].parent, Some(doc.items[1].id));
    }

    /// A file of a few records among many blank lines parses as the
    /// records alone.
    #[test]
    fn blank_lines_hold_no_records() {
        let text = format!("{}\n{}\n  \t\n{}", "\n".repeat(1000), DOC, "\r\n".repeat(1000));
        assert_eq!(parse("f.jsonl", &text, None).unwrap().events.len(), 3);
    }

    /// `extra` may hold anything, on every kind of record, and is skipped;
    /// any other unknown field is an error.
    #[test]
    fn extra_holds_anything_and_nothing_else_is_unknown() {
        let with_extra = r#"{"type":"capture","extra":[1,{"a":null}]}
{"type":"article","id":"a1","url":"https://example.com/x","title":"T","extra":{"html":"<p>x</p>","n":[1.5,true]}}
{"type":"comment","article":"a1","body":"hello","extra":"plain"}
"#;
        let doc = parse("f.jsonl", with_extra, None).unwrap();
        assert_eq!(doc.events.len(), 2);
        let plain = with_extra.replace(r#","extra":"plain""#, "");
        assert_eq!(parse("f.jsonl", &plain, None).unwrap().items, doc.items);
        let typo = with_extra.replace(r#""extra":"plain""#, r#""extras":"plain""#);
        let err = parse("f.jsonl", &typo, None).unwrap_err().to_string();
        assert!(err.starts_with("f.jsonl:3: invalid record: unknown field `extras`"), "{err}");
    }

    /// Replies form a tree inside one article: a loop of replies, or a
    /// reply to a comment of another article, is refused where it is.
    #[test]
    fn replies_go_round_nowhere_and_stay_in_their_article() {
        let looped = format!(
            "{DOC}{{\"type\":\"comment\",\"id\":\"p\",\"parent\":\"q\",\"body\":\"x\"}}\n\
             {{\"type\":\"comment\",\"id\":\"q\",\"parent\":\"r\",\"body\":\"y\"}}\n\
             {{\"type\":\"comment\",\"id\":\"r\",\"parent\":\"p\",\"body\":\"z\"}}\n"
        );
        let err = parse("f.jsonl", &looped, None).unwrap_err();
        assert_eq!(err.to_string(), "f.jsonl:4: replies go round in a loop: p -> q -> r -> p");
        // A chain into the loop names the loop itself.
        let into = looped
            .replace("\"id\":\"c2\",", "\"id\":\"c2\",\"parent\":\"p\",")
            .replace(",\"parent\":\"c1\"", "");
        assert_eq!(parse("f.jsonl", &into, None).unwrap_err().to_string(), err.to_string());
        // A long chain that ends is no loop.
        let mut chain = DOC.to_string();
        for n in 0..2000 {
            let parent = if n == 0 { "c2".to_string() } else { format!("n{}", n - 1) };
            chain.push_str(&format!(
                "{{\"type\":\"comment\",\"id\":\"n{n}\",\"parent\":\"{parent}\",\"body\":\"{n}\"}}\n"
            ));
        }
        assert_eq!(parse("f.jsonl", &chain, None).unwrap().items.len(), 2003);
        let self_parent = DOC.replace("\"parent\":\"c1\"", "\"parent\":\"c2\"");
        assert_eq!(
            parse("f.jsonl", &self_parent, None).unwrap_err().to_string(),
            "f.jsonl:3: comment \"c2\" names itself as parent"
        );
        let across = DOC.replace("\"parent\":\"c1\"", "\"parent\":\"c1\",\"article\":\"b\"")
            + "{\"type\":\"article\",\"id\":\"b\",\"url\":\"https://example.com/b\"}\n";
        assert_eq!(
            parse("f.jsonl", &across, None).unwrap_err().to_string(),
            "f.jsonl:3: parent \"c1\" is a comment of another article (https://example.com/story/1)"
        );
    }

    #[test]
    fn the_capture_record_says_when_and_how_complete() {
        let doc = parse("f.jsonl", DOC, None).unwrap();
        assert!(doc.gaps.is_empty() && doc.fetched_at.is_none() && doc.declared_comments.is_none());
        let with = format!(
            "{DOC}{{\"type\":\"capture\",\"fetched_at\":\"2012-03-30T08:00:00Z\",\"complete\":false,\"declared_comments\":3}}\n"
        );
        let doc = parse("f.jsonl", &with, None).unwrap();
        assert_eq!(doc.gaps, vec![Gap::MarkedIncomplete, Gap::CountMismatch]);
        assert_eq!(doc.fetched_at.unwrap().canonical(), "2012-03-30T08:00:00+00:00");
        assert_eq!(doc.declared_comments, Some(3));
        let counted = format!("{DOC}{{\"type\":\"capture\",\"declared_comments\":2}}\n");
        assert!(parse("f.jsonl", &counted, None).unwrap().gaps.is_empty());
        let alone = "{\"type\":\"capture\",\"complete\":true}\n";
        assert!(parse("f.jsonl", alone, None)
            .unwrap_err()
            .to_string()
            .contains("no article or comment records"));
        let twice = format!("{counted}{{\"type\":\"capture\"}}\n");
        assert_eq!(
            parse("f.jsonl", &twice, None).unwrap_err().to_string(),
            "f.jsonl:5: a second capture record (the first is on line 4); a file is one capture"
        );
        let local = format!("{DOC}{{\"type\":\"capture\",\"fetched_at\":\"2012-03-30 08:00\"}}\n");
        assert!(parse("f.jsonl", &local, None).unwrap_err().to_string().starts_with("f.jsonl:4: fetched_at"));
    }

    #[test]
    fn errors_name_the_line() {
        let bad = DOC.replace("\"body\":\"reply\"", "\"body\":7");
        let e = parse("f.jsonl", &bad, None).unwrap_err();
        // No column where serde has none (it said "column 0").
        assert_eq!(e.to_string(), "f.jsonl:3: invalid record: invalid type: integer `7`, expected a string");
        let cut = DOC.replace("\"body\":\"reply\",", "\"body\":\"reply\"");
        let e = parse("f.jsonl", &cut, None).unwrap_err().to_string();
        assert!(
            e.starts_with("f.jsonl:3: invalid record: ") && e.ends_with("expected `,` or `}` (column 97)"),
            "{e}"
        );
        let bad = DOC.replace("\"parent\":\"c1\"", "\"parent\":\"zz\"");
        assert_eq!(
            parse("f.jsonl", &bad, None).unwrap_err().to_string(),
            "f.jsonl:3: parent \"zz\" is not a comment id in this file"
        );
        let bad = DOC.replace("\"author\":\"ahmad\"", "\"writer\":\"ahmad\"");
        assert!(parse("f.jsonl", &bad, None).unwrap_err().to_string().contains("unknown field `writer`"));
        let bad = format!("{DOC}{{\"type\":\"comment\",\"body\":\"x\",\"posted_at\":\"soon\"}}\n");
        assert!(parse("f.jsonl", &bad, None).unwrap_err().to_string().starts_with("f.jsonl:4: posted_at"));
        assert!(parse("f.jsonl", "{\"type\":\"poll\"}", None).is_err());
    }
}
