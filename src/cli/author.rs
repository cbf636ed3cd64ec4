//! `cairn author`: one author's comments across all articles.

use crate::cli::output::{as_of_json, as_of_note, human_opt_time, one_line};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::{Event, Seq};
use crate::views::{as_of, authors};
use serde_json::json;
use std::io::Write;

/// Show one author's timeline across all articles, sorted by posted time.
/// NAME matches case-insensitively after whitespace folding; an edited
/// comment counts once (its latest version is shown).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The author's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Print at most N comments (the first N of the timeline).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Only comments posted at or after TIME (RFC 3339 with offset, or a
    /// date); comments without a posted time are left out.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only comments posted at or before TIME (a date includes that day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Print `{"author":..,"comments":[...],"as_of":{...}}`.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// Runs `cairn author`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let window = crate::tables::Window::parse(args.since.as_deref(), args.until.as_deref())?;
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::authors::NAME])?;
    let (info, mut entries, titles) = authors::timeline_titled(&archive, &args.name)?.ok_or_else(|| {
        let hint = suggest_authors(&archive, &args.name);
        Error::NotFound(format!("no author named {:?}{hint}", args.name))
    })?;
    if window.is_set() {
        entries.retain(|e| e.posted_at.is_some_and(|t| window.contains(t.instant())));
    }
    entries.truncate(args.limit.unwrap_or(usize::MAX));
    let at = as_of(&archive, authors::NAME)?;
    let latest: Vec<Seq> = entries.iter().filter_map(|e| e.seqs.last().copied()).collect();
    // Only the bodies are kept, and rows are written as they are made: an
    // author of 100k comments is not held twice in memory.
    let mut bodies = archive.entries_at_with(&latest, |entry| match &entry.event {
        Event::Comment(c) => Ok((entry.id, c.body.clone())),
        _ => Err(Error::Corrupt(format!("seq {} in a timeline is not a comment", entry.seq))),
    })?;
    if args.json {
        let head = json!({"author": info.display}).to_string();
        write!(out, "{},\"comments\":[", &head[..head.len() - 1]).map_err(stdout_error)?;
    } else {
        if let Some(note) = as_of_note(&at) {
            writeln!(out, "{note}").map_err(stdout_error)?;
        }
        let shown = if entries.len() as u64 == info.comments {
            String::new()
        } else {
            format!(", {} shown", entries.len())
        };
        writeln!(out, "{} · {}{shown}", info.display, crate::cli::output::plural(info.comments, "comment"))
            .map_err(stdout_error)?;
    }
    for (n, e) in entries.iter().enumerate() {
        let latest =
            *e.versions.last().ok_or_else(|| Error::Corrupt("timeline entry without versions".into()))?;
        let seq = e.seqs.last().ok_or_else(|| Error::Corrupt("timeline entry without seqs".into()))?;
        let body = match bodies.remove(seq) {
            Some((id, body)) if id == latest => body,
            _ => {
                return Err(Error::Corrupt(format!("{latest} in a timeline is not the comment at seq {seq}")))
            }
        };
        let title = titles.get(&e.article).and_then(|t| t.as_deref());
        if args.json {
            // Written field by field (no `serde_json::Value` per row: an
            // author of 55k comments spent a tenth of its time building them).
            let row = Row {
                id: latest,
                article: e.article.as_str(),
                title,
                posted_at: e.posted_at.map(|t| t.canonical()),
                body: &body,
                versions: &e.versions,
            };
            if n > 0 {
                out.write_all(b",").map_err(stdout_error)?;
            }
            serde_json::to_writer(&mut *out, &row).map_err(|e| stdout_error(e.into()))?;
        } else {
            let edited =
                if e.edited() { format!(" · [edited, {} versions]", e.whole) } else { String::new() };
            write!(
                out,
                "\n{} · {} · {}{edited}\n  {}\n",
                human_opt_time(e.posted_at.as_ref()),
                latest.short(),
                title.unwrap_or(e.article.as_str()),
                one_line(&body, 100)
            )
            .map_err(stdout_error)?;
        }
    }
    if args.json {
        writeln!(out, "],\"as_of\":{}}}", as_of_json(&at)).map_err(stdout_error)?;
    }
    Ok(Status::Ok)
}

/// One comment of `author --json`, in the field order the schema lists.
#[derive(serde::Serialize)]
struct Row<'a> {
    id: crate::model::EventId,
    article: &'a str,
    title: Option<&'a str>,
    posted_at: Option<String>,
    body: &'a str,
    versions: &'a [crate::model::EventId],
}

/// `; did you mean …?` with up to five authors whose folded name contains
/// the folded query or is within two edits of it, most comments first.
fn suggest_authors(archive: &crate::store::Archive, name: &str) -> String {
    let want = authors::fold(name);
    let Ok(all) = authors::list_authors(archive) else { return String::new() };
    // Names within two edits first, then names containing the query (or
    // contained in it, three letters at least); most comments first within each.
    let mut near: Vec<(u8, &authors::AuthorInfo)> = all
        .iter()
        .filter_map(|a| {
            let have = authors::fold(&a.display);
            if want.is_empty() {
                None
            } else if within_two_edits(&have, &want) {
                Some((0, a))
            } else if have.contains(&want) || (have.chars().count() >= 3 && want.contains(&have)) {
                Some((1, a))
            } else {
                None
            }
        })
        .collect();
    near.sort_by_key(|(rank, a)| (*rank, std::cmp::Reverse(a.comments)));
    let near: Vec<String> = near
        .into_iter()
        .map(|(_, a)| a)
        .take(5)
        .map(|a| format!("{:?} ({})", a.display, crate::cli::output::plural(a.comments, "comment")))
        .collect();
    if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.join(" or "))
    }
}

/// Whether `a` and `b` are at most two single-character edits apart.
fn within_two_edits(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + usize::from(ca != cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_edits_at_most() {
        assert!(super::within_two_edits("tony c.", "tony c."));
        assert!(super::within_two_edits("tony", "tomy"));
        assert!(super::within_two_edits("aristo", "arsto"));
        assert!(!super::within_two_edits("aristo", "ahmad"));
        assert!(!super::within_two_edits("ab", "abcde"));
    }
}
