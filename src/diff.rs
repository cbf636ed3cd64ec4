//! Comparing two captures of one page (`cairn diff`): which comments the
//! second shows that the first did not (added), which the first showed and
//! the second, a complete capture, does not (removed; a partial capture
//! only leaves them unseen), which it shows in another version (edited,
//! with a word diff of the bodies) and which it shows elsewhere on the page
//! (moved: out of the page order the two share, or under another parent).
//!
//! Comments are matched as the threads view matches them: the versions of
//! one comment share a slot of the article's thread state, and ids folded
//! by `dedupe --apply` count as the id they were folded into.

use crate::error::{Error, Result};
use crate::model::{CapturedArticle, Event, EventId, IdMap};
use crate::store::Archive;
use crate::views::thread_state::{CaptureRef, ThreadState};
use std::collections::{HashMap, HashSet};

/// One capture's view of the article, matched to the thread's slots.
struct Shown {
    /// Slots in page order, with the version shown and its parent's slot.
    items: Vec<(usize, EventId, Option<usize>)>,
}

/// A comment in a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The version the first capture showed (`None` for an added comment).
    pub from: Option<EventId>,
    /// The version the second capture showed (`None` for a removed or unseen one).
    pub to: Option<EventId>,
    /// Its place in the first and second captures' page order (0-based).
    pub from_position: Option<usize>,
    /// Likewise in the second.
    pub to_position: Option<usize>,
    /// The comment it replies to in each (a version id of that comment).
    pub from_parent: Option<EventId>,
    /// Likewise in the second.
    pub to_parent: Option<EventId>,
}

/// What changed between two captures of one article.
#[derive(Debug, Default)]
pub struct CaptureDiff {
    /// Comments only the second shows.
    pub added: Vec<Change>,
    /// Comments the second, a complete capture, no longer shows.
    pub removed: Vec<Change>,
    /// Comments the second, a partial capture, does not show (not removed).
    pub unseen: Vec<Change>,
    /// Comments shown in another version.
    pub edited: Vec<Change>,
    /// Comments shown out of the order both pages share, or under another
    /// parent.
    pub moved: Vec<Change>,
}

/// `seen`'s comments matched to slots through `index`
/// ([`ThreadState::version_index`]).
fn shown(state: &ThreadState, index: &IdMap<(usize, usize)>, seen: &CapturedArticle) -> Result<Shown> {
    let mut items: Vec<(usize, EventId, Option<usize>)> = Vec::with_capacity(seen.comments.len());
    // Where each slot is in `items`, with the index of the version shown.
    let mut at: HashMap<usize, (usize, usize)> = HashMap::new();
    for item in &seen.comments {
        let (slot, vi) = *index.get(&item.id).ok_or_else(|| {
            Error::Corrupt(format!("comment {} of a capture is not in its article's thread view", item.id))
        })?;
        let version = state.slots[slot].versions[vi].id;
        let parent = item.parent.and_then(|p| index.get(&p).map(|&(s, _)| s));
        match at.get(&slot).copied() {
            // Two versions of one comment side by side: one seen whole
            // over one seen only cut off, else the one the thread met
            // later, at the first one's place (as the thread view's change
            // records have it).
            Some((i, shown)) => {
                let slot_state = &state.slots[slot];
                if slot_state.shown_over(vi, shown) {
                    items[i] = (slot, version, parent);
                    at.insert(slot, (i, vi));
                }
            }
            None => {
                at.insert(slot, (items.len(), vi));
                items.push((slot, version, parent));
            }
        }
    }
    Ok(Shown { items })
}

/// The indices (into `b`) of a longest common subsequence of `a` and `b`,
/// which hold distinct values.
fn common_order(a: &[usize], b: &[usize]) -> HashSet<usize> {
    // Distinct values: the LCS is the longest increasing subsequence of
    // the positions in `a` of `b`'s shared values (patience sorting).
    let pos_a: HashMap<usize, usize> = a.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let seq: Vec<(usize, usize)> =
        b.iter().enumerate().filter_map(|(j, v)| pos_a.get(v).map(|&i| (i, j))).collect();
    let mut tails: Vec<usize> = Vec::new(); // index into seq of the tail of each length
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (k, &(i, _)) in seq.iter().enumerate() {
        let at = tails.partition_point(|&t| seq[t].0 < i);
        prev[k] = at.checked_sub(1).map(|p| tails[p]);
        if at == tails.len() {
            tails.push(k);
        } else {
            tails[at] = k;
        }
    }
    let mut keep = HashSet::new();
    let mut cur = tails.last().copied();
    while let Some(k) = cur {
        keep.insert(seq[k].1);
        cur = prev[k];
    }
    keep
}

/// Compares `a` and `b`, two captures' views of the article whose thread
/// state is `state`; `b_complete` says whether `b` shows the whole section.
/// `lookup` returns the comment event for an id (a version seen cut off is
/// an edit only when its text does not begin the other's, as the thread
/// view decides).
pub fn compare(
    state: &ThreadState,
    a: &CapturedArticle,
    b: &CapturedArticle,
    b_complete: bool,
    mut lookup: impl FnMut(&EventId) -> Result<Option<std::sync::Arc<crate::model::LogEntry>>>,
) -> Result<CaptureDiff> {
    let index = state.version_index();
    let (sa, sb) = (shown(state, &index, a)?, shown(state, &index, b)?);
    let in_a: HashMap<usize, usize> = sa.items.iter().enumerate().map(|(i, (s, _, _))| (*s, i)).collect();
    let in_b: HashMap<usize, usize> = sb.items.iter().enumerate().map(|(i, (s, _, _))| (*s, i)).collect();
    // The version a capture showed of the comment a parent slot holds.
    let parent_id = |p: Option<usize>, shown: &Shown, at: &HashMap<usize, usize>| {
        p.and_then(|p| at.get(&p)).map(|&i| shown.items[i].1)
    };
    // A version only ever seen cut off is the same comment, not an edit,
    // when its text begins the other version's.
    let truncated =
        |slot: usize, v: EventId| state.slots[slot].versions.iter().any(|x| x.id == v && x.truncated);
    let order_a: Vec<usize> = sa.items.iter().map(|(s, _, _)| *s).filter(|s| in_b.contains_key(s)).collect();
    let order_b: Vec<usize> = sb.items.iter().map(|(s, _, _)| *s).filter(|s| in_a.contains_key(s)).collect();
    let kept = common_order(&order_a, &order_b);
    let kept_slots: HashSet<usize> = kept.iter().map(|&j| order_b[j]).collect();
    let mut d = CaptureDiff::default();
    for (i, &(slot, version, parent)) in sa.items.iter().enumerate() {
        if in_b.contains_key(&slot) {
            continue;
        }
        let change = Change {
            from: Some(version),
            to: None,
            from_position: Some(i),
            to_position: None,
            from_parent: parent_id(parent, &sa, &in_a),
            to_parent: None,
        };
        if b_complete {
            d.removed.push(change);
        } else {
            d.unseen.push(change);
        }
    }
    for (j, &(slot, version, parent)) in sb.items.iter().enumerate() {
        let Some(&i) = in_a.get(&slot) else {
            d.added.push(Change {
                from: None,
                to: Some(version),
                from_position: None,
                to_position: Some(j),
                from_parent: None,
                to_parent: parent_id(parent, &sb, &in_b),
            });
            continue;
        };
        let (_, old, old_parent) = sa.items[i];
        let change = Change {
            from: Some(old),
            to: Some(version),
            from_position: Some(i),
            to_position: Some(j),
            from_parent: parent_id(old_parent, &sa, &in_a),
            to_parent: parent_id(parent, &sb, &in_b),
        };
        let edited = old != version
            && match (truncated(slot, old), truncated(slot, version)) {
                (false, false) => true,
                (true, false) => !crate::views::thread_state::begins(&mut lookup, &old, &version)?,
                (false, true) => !crate::views::thread_state::begins(&mut lookup, &version, &old)?,
                // Both cut: one is the start of the other, either way.
                (true, true) => {
                    !crate::views::thread_state::begins(&mut lookup, &old, &version)?
                        && !crate::views::thread_state::begins(&mut lookup, &version, &old)?
                }
            };
        if edited {
            d.edited.push(change.clone());
        }
        if !kept_slots.contains(&slot) || old_parent != parent {
            d.moved.push(change);
        }
    }
    Ok(d)
}

/// One piece of a word diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WordOp {
    /// Text in both.
    Same(String),
    /// Text only the old body has.
    Deleted(String),
    /// Text only the new body has.
    Inserted(String),
}

/// Above this many word pairs the diff is the whole old body against the
/// whole new one (the table would be too large).
const MAX_CELLS: usize = 4_000_000;

/// Splits text into words and the whitespace after each, so that joining
/// the pieces gives the text back.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, ch) in text.char_indices() {
        let space = ch.is_whitespace();
        if in_space && !space {
            out.push(&text[start..i]);
            start = i;
        }
        in_space = space;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A word diff of `old` and `new` (a longest common subsequence of their
/// words, adjacent pieces of one kind joined).
pub fn word_diff(old: &str, new: &str) -> Vec<WordOp> {
    let (a, b) = (words(old), words(new));
    let mut ops: Vec<WordOp> = Vec::new();
    let mut push = |op: WordOp| match (ops.last_mut(), op) {
        (Some(WordOp::Same(t)), WordOp::Same(s))
        | (Some(WordOp::Deleted(t)), WordOp::Deleted(s))
        | (Some(WordOp::Inserted(t)), WordOp::Inserted(s)) => t.push_str(&s),
        (_, op) => ops.push(op),
    };
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        push(WordOp::Deleted(old.to_string()));
        push(WordOp::Inserted(new.to_string()));
        return ops;
    }
    // lcs[i][j]: the LCS length of a[i..] and b[j..] (compared without
    // trailing whitespace, so a word that ends a line still matches).
    let key = |w: &str| w.trim_end().to_string();
    let (ka, kb): (Vec<String>, Vec<String>) =
        (a.iter().map(|w| key(w)).collect(), b.iter().map(|w| key(w)).collect());
    let cols = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * cols];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * cols + j] = if ka[i] == kb[j] {
                lcs[(i + 1) * cols + j + 1] + 1
            } else {
                lcs[(i + 1) * cols + j].max(lcs[i * cols + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if ka[i] == kb[j] {
            push(WordOp::Same(b[j].to_string()));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * cols + j] >= lcs[i * cols + j + 1] {
            push(WordOp::Deleted(a[i].to_string()));
            i += 1;
        } else {
            push(WordOp::Inserted(b[j].to_string()));
            j += 1;
        }
    }
    for w in &a[i..] {
        push(WordOp::Deleted(w.to_string()));
    }
    for w in &b[j..] {
        push(WordOp::Inserted(w.to_string()));
    }
    ops
}

/// The bodies (and authors, posted times) of every version `d` names.
pub fn bodies(archive: &Archive, d: &CaptureDiff) -> Result<HashMap<EventId, crate::model::Comment>> {
    let ids: Vec<EventId> = [&d.added, &d.removed, &d.unseen, &d.edited, &d.moved]
        .into_iter()
        .flatten()
        .flat_map(|c| c.from.into_iter().chain(c.to))
        .collect();
    let events = archive.events_by_id(&ids)?;
    let mut out = HashMap::with_capacity(events.len());
    for (id, event) in events {
        match event {
            Event::Comment(c) => {
                out.insert(id, c);
            }
            other => {
                return Err(Error::Corrupt(format!("{id} in a diff is a {}, not a comment", other.kind())))
            }
        }
    }
    Ok(out)
}

/// The capture of `state` observed last at or before `at` (an instant).
pub fn capture_at(state: &ThreadState, at: (i64, u32)) -> Option<&CaptureRef> {
    state.captures.iter().rev().find(|c| c.observed_at().instant() <= at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(ops: &[WordOp]) -> String {
        ops.iter()
            .map(|o| match o {
                WordOp::Same(s) => s.clone(),
                WordOp::Deleted(s) => format!("[-{s}-]"),
                WordOp::Inserted(s) => format!("{{+{s}+}}"),
            })
            .collect()
    }

    #[test]
    fn word_diffs_keep_what_both_share() {
        assert_eq!(render(&word_diff("Do You?", "Do You? Really.")), "Do You? {+Really.+}");
        assert_eq!(render(&word_diff("a b c", "a x c")), "a [-b -]{+x +}c");
        assert_eq!(render(&word_diff("same", "same")), "same");
        assert_eq!(render(&word_diff("", "new text")), "{+new text+}");
        assert_eq!(render(&word_diff("old text", "")), "[-old text-]");
    }

    #[test]
    fn joining_the_pieces_gives_both_bodies_back() {
        let cases = [("one two  three\nfour", "one 2 three\n\nfour five"), ("x", "y z"), ("a a a", "a b a")];
        for (old, new) in cases {
            let ops = word_diff(old, new);
            let back_old: String = ops
                .iter()
                .filter_map(|o| match o {
                    WordOp::Same(s) | WordOp::Deleted(s) => Some(s.as_str()),
                    WordOp::Inserted(_) => None,
                })
                .collect();
            let back_new: String = ops
                .iter()
                .filter_map(|o| match o {
                    WordOp::Same(s) | WordOp::Inserted(s) => Some(s.as_str()),
                    WordOp::Deleted(_) => None,
                })
                .collect();
            // Shared words are taken from the new body, so whitespace after
            // them may differ from the old; the words themselves may not.
            assert_eq!(back_new, new);
            assert_eq!(
                words(&back_old).iter().map(|w| w.trim_end()).collect::<Vec<_>>(),
                words(old).iter().map(|w| w.trim_end()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_common_order_is_a_longest_one() {
        let kept = common_order(&[1, 2, 3, 4, 5], &[1, 3, 2, 4, 5]);
        assert_eq!(kept.len(), 4, "one of 2 and 3 moved");
        assert!(kept.contains(&0) && kept.contains(&3) && kept.contains(&4));
        assert_eq!(common_order(&[1, 2, 3], &[3, 2, 1]).len(), 1);
        assert_eq!(common_order(&[], &[]).len(), 0);
    }
}
