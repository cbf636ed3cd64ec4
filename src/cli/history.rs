//! `cairn history`: every version and sighting of one comment.

use crate::cli::output::human_opt_time;
use crate::cli::thread::{capture_json, capture_text, capture_when};
use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::model::Event;
use crate::views::threads;
use serde_json::json;
use std::io::Write;

/// Show all versions of a comment (oldest first, each `superseded`,
/// `present` or `removed`) and every capture of its article with the
/// version it showed, if any.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A hex prefix of any version's id.
    #[arg(value_name = "COMMENT-ID")]
    pub id: String,

    /// Print the history as JSON.
    #[arg(long)]
    pub json: bool,

    /// `--at`: the views as of a past point.
    #[command(flatten)]
    pub at: crate::cli::AtArg,
}

/// Why the views may not hold an event the log does
/// ([`crate::cli::output::point_hint`]).
fn hint(archive: &crate::store::Archive) -> String {
    let at = crate::views::as_of(archive, crate::views::threads::NAME);
    at.map(|a| crate::cli::output::point_hint(&a)).unwrap_or_default()
}

/// Runs `cairn history`.
pub fn run(cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    let archive = crate::cli::open_views_at(cli, &args.at, &[crate::views::threads::NAME])?;
    let (id, seq) = archive.resolve_prefix(&args.id)?;
    let Event::Comment(comment) = archive.entry(seq)?.event else {
        return Err(Error::Usage(format!("{} is not a comment", id.short())));
    };
    // A comment `dedupe --apply` folded into another is shown as the one
    // it was folded into, in the thread of the article its own article's
    // key was folded into, if it was.
    let tree = crate::views::view_tree(&archive, threads::NAME)?;
    let merges = threads::merges(tree.as_ref());
    let key = merges.canon_key(&comment.article)?;
    let state = threads::load_thread_in(tree.as_ref(), &key)?
        .ok_or_else(|| Error::NotFound(format!("no thread for {}{}", comment.article, hint(&archive))))?;
    let index = state.version_index();
    let (slot_index, version_index) = index.get(&id).copied().ok_or_else(|| {
        Error::NotFound(format!("comment {} is in no capture{}", id.short(), hint(&archive)))
    })?;
    let slot = &state.slots[slot_index];
    let folded_into = Some(slot.versions[version_index].id).filter(|v| *v != id);
    let present = state.is_present(slot);
    let mut versions = Vec::new();
    for v in &slot.versions {
        let Event::Comment(c) = archive.event(&v.id)? else {
            return Err(Error::Corrupt(format!("{} is not a comment", v.id)));
        };
        versions.push((v, c.body, slot.version_status(v, present)));
    }
    // Every capture of the article (under any key folded into it), with
    // the version it showed and the id it showed it as.
    let mut sightings = Vec::new();
    for cap in &state.captures {
        let Event::Capture(c) = archive.entry(cap.seq)?.event else {
            return Err(Error::Corrupt(format!("seq {} is not a capture", cap.seq)));
        };
        // (Two versions of the comment side by side: as the thread's change
        // records and `diff` have it, `Slot::shown_over`.)
        let shown = merges
            .group(&c)?
            .into_iter()
            .filter(|a| a.key == key)
            .flat_map(|a| a.comments)
            .filter_map(|item| match index.get(&item.id) {
                Some(&(s, v)) if s == slot_index => Some((v, item.id)),
                _ => None,
            })
            .reduce(|a, b| if slot.shown_over(b.0, a.0) { b } else { a })
            .map(|(v, id)| (slot.versions[v].id, id));
        sightings.push((cap, shown));
    }
    if args.json {
        let v = json!({
            "article": key.as_str(),
            "folded_into": folded_into.map(|f| f.to_hex()),
            "author": slot.author,
            "posted_at": slot.posted_at.map(|t| t.canonical()),
            "status": if present { "present" } else { "removed" },
            "removed_since": state.removed_since(slot).map(capture_json),
            "versions": versions.iter().map(|(v, body, status)| json!({
                "id": v.id.to_hex(),
                "aliases": v.aliases.iter().map(|a| a.to_hex()).collect::<Vec<_>>(),
                "body": body,
                "status": status,
                "first_seen": capture_json(&state.captures[v.first_seen as usize]),
                "last_seen": capture_json(&state.captures[v.last_seen as usize]),
            })).collect::<Vec<_>>(),
            "sightings": sightings.iter().map(|(cap, shown)| json!({
                "capture": capture_json(cap),
                "version": shown.map(|(v, _)| v.to_hex()),
                "shown_as": shown.and_then(|(v, as_id)| (as_id != v).then(|| as_id.to_hex())),
            })).collect::<Vec<_>>(),
            "as_of": crate::cli::output::as_of_json(&crate::views::as_of(&archive, crate::views::threads::NAME)?),
        });
        writeln!(out, "{v}").map_err(stdout_error)?;
        return Ok(Status::Ok);
    }
    let mut s =
        match crate::cli::output::as_of_note(&crate::views::as_of(&archive, crate::views::threads::NAME)?) {
            Some(note) => format!("{note}\n"),
            None => String::new(),
        };
    s.push_str(&format!(
        "comment by {} · {} · {}\n",
        slot.author.as_deref().unwrap_or("(no author)"),
        human_opt_time(slot.posted_at.as_ref()),
        key
    ));
    if let Some(kept) = folded_into {
        s.push_str(&format!("{} was folded into {} by dedupe --apply\n", id.short(), kept.short()));
    }
    s.push_str(&match state.removed_since(slot) {
        Some(r) => format!("status: removed since {}\n", capture_text(r)),
        None => "status: present\n".to_string(),
    });
    for (i, (v, body, status)) in versions.iter().enumerate() {
        s.push_str(&format!(
            "\nversion {} of {} · {} · {status} · first seen seq {}, last seen seq {}\n",
            i + 1,
            versions.len(),
            v.id.short(),
            state.captures[v.first_seen as usize].seq,
            state.captures[v.last_seen as usize].seq
        ));
        for line in body.lines() {
            s.push_str(&format!("  {line}\n"));
        }
    }
    s.push_str("\nsightings (in the order the pages were fetched):\n");
    for (cap, shown) in &sightings {
        let what = match shown {
            Some((v, as_id)) if as_id != v => format!("version {} (shown as {})", v.short(), as_id.short()),
            Some((v, _)) => format!("version {}", v.short()),
            None if cap.complete => "absent".to_string(),
            None => "not shown (partial capture)".to_string(),
        };
        s.push_str(&format!(
            "  seq {:>6}  capture {}  {}  {what}\n",
            cap.seq,
            cap.id.short(),
            capture_when(cap)
        ));
    }
    out.write_all(s.as_bytes()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
