//! Search over comment text and authors (`cairn search`).
//!
//! The log is read once, on two threads (each a half of the seqs, in
//! order). Every comment version whose body or author matches the regular
//! expression is kept as a small [`Hit`] (64 bytes); its id, author,
//! posted time and body go to a spill file of that thread (an unlinked
//! temporary file in `TMPDIR`, gone when the process ends however it
//! ends), so memory holds about 200 bytes per match at the peak (the hit
//! and, until its article is taken, the candidate it came from), never the
//! bodies (unless `TMPDIR` is a RAM disk), and printing in time order
//! reads them back by offset instead of decoding a log segment per match.
//! Hits are then taken article by article: the thread state says each
//! version's status (present, removed, superseded, truncated) and when it
//! was seen, which the status and time filters need.

use crate::error::{Error, Result};
use crate::model::{ArticleKey, Event, EventId, Seq};
use crate::store::Archive;
use crate::views::thread_state::CaptureRef;
use crate::views::threads::{self, ArticleSummary};
use std::collections::HashMap;

/// What to look for.
pub struct Query {
    /// Matched against each version's body and author.
    pub pattern: regex::Regex,
    /// Only this article (and the articles merged into it).
    pub article: Option<ArticleSummary>,
    /// Only this author, exactly as shown.
    pub author: Option<String>,
    /// Only versions seen in this window.
    pub window: crate::tables::Window,
    /// Only versions with one of these statuses.
    pub status: Vec<&'static str>,
}

/// A matching comment version: 64 bytes, held for every match until they
/// are printed in time order (its id, author, time and body are in the
/// spill files: [`Results::record`]).
#[derive(Clone, Debug)]
pub struct Hit {
    /// Its seq.
    pub seq: Seq,
    /// When it was posted (else recorded), as an instant: the result order.
    pub at: (i64, u32),
    /// Its article (the canonical key after merges): an index into
    /// [`Results::articles`].
    pub article: u32,
    /// The first capture that showed it: an index into its article's
    /// [`Results::captures`].
    pub first_seen: u32,
    /// The last capture that showed it, likewise.
    pub last_seen: u32,
    /// Its status in the thread: an index into [`STATUSES`].
    status: u8,
    /// The version it was folded into by `dedupe --apply`, if it was: an
    /// index into the results' merged-into ids (few).
    merged: Option<u32>,
    /// Where its record is in the spill files.
    spill: Spilled,
}

/// A version's statuses in a thread ([`Hit::status`]).
pub const STATUSES: [&str; 4] = ["present", "removed", "superseded", "truncated"];

impl Hit {
    /// Its status in the thread: present, removed, superseded or truncated.
    pub fn status(&self) -> &'static str {
        STATUSES[usize::from(self.status)]
    }
}

/// A record's place: which thread's spill file, its offset and length.
#[derive(Clone, Copy, Debug)]
struct Spilled {
    file: u8,
    offset: u64,
    len: u32,
}

/// What a matching version says, read back from a spill file.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Its id.
    pub id: EventId,
    /// The author as shown.
    pub author: Option<String>,
    /// The posted time, canonical form.
    pub posted_at: Option<String>,
    /// The body.
    pub body: String,
}

/// The matches, in time order (posted, else recorded; then seq).
pub struct Results {
    /// The hits.
    pub hits: Vec<Hit>,
    /// The articles hits name.
    pub articles: Vec<ArticleKey>,
    /// Each article's captures, in observation order.
    pub captures: Vec<Vec<CaptureRef>>,
    /// The versions hits were folded into ([`Results::merged_into`]).
    merged: Vec<EventId>,
    spills: Vec<std::fs::File>,
}

impl Results {
    /// The author, posted time and body of `hit`.
    pub fn record(&self, hit: &Hit) -> Result<Record> {
        use std::os::unix::fs::FileExt;
        let Spilled { file, offset, len } = hit.spill;
        let mut buf = vec![0u8; len as usize];
        self.spills[usize::from(file)]
            .read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io("the search's temporary file", e))?;
        serde_json::from_slice(&buf).map_err(|e| Error::Internal(format!("a spilled search record: {e}")))
    }

    /// The version `hit` was folded into by `dedupe --apply`, if it was.
    pub fn merged_into(&self, hit: &Hit) -> Option<EventId> {
        hit.merged.map(|i| self.merged[i as usize])
    }

    /// The first and last captures that showed `hit`.
    pub fn seen(&self, hit: &Hit) -> (&CaptureRef, &CaptureRef) {
        let caps = &self.captures[hit.article as usize];
        (&caps[hit.first_seen as usize], &caps[hit.last_seen as usize])
    }
}

/// A version that matched, before its thread was consulted.
struct Candidate {
    seq: Seq,
    id: EventId,
    at: (i64, u32),
    /// An index into its scanning thread's article list.
    article: u32,
    spill: Spilled,
}

/// What one scanning thread found.
struct Scanned {
    candidates: Vec<Candidate>,
    articles: Vec<ArticleKey>,
    spill: std::fs::File,
}

/// A temporary file in `TMPDIR` (else /tmp), readable by this user only
/// and unlinked at once: it lives as long as the handle, whatever ends the
/// process.
fn spill_file() -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        let path = dir.join(format!(".cairn-search-{}", crate::model::ids::to_hex(&random)));
        // Readable by this user only, for the moment it has a name.
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path) {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Err(Error::Internal(format!("no temporary file could be made in {}", dir.display())))
}

/// Every comment version matching `query`. Versions the threads view does
/// not hold (views pinned before them) are left out.
pub fn search(archive: &Archive, query: &Query) -> Result<Results> {
    let head = archive.head().seq.0;
    let mid = head / 2;
    let (first, second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| scan(archive, query, mid + 1, head, 1));
        let mine = scan(archive, query, 1, mid, 0);
        (mine, other.join().map_err(|_| Error::Internal("a search thread panicked".into())))
    });
    let scanned = [first?, second??];

    // Article keys as the threads view files them (after merges).
    let summaries = threads::list_articles(archive)?;
    let canonical = threads::by_key(&summaries);
    let mut by_article: HashMap<ArticleKey, Vec<&Candidate>> = HashMap::new();
    for part in &scanned {
        for c in &part.candidates {
            let Some(a) = canonical.get(&part.articles[c.article as usize]) else { continue };
            by_article.entry(a.key.clone()).or_default().push(c);
        }
    }
    drop(canonical);

    // The hits reserved at once (each candidate may be one): grown by
    // doubling, half their room was never used (at 1M, `search drone`,
    // 459,606 hits, the vector took 71 MB).
    let candidates = scanned.iter().map(|s| s.candidates.len()).sum();
    let mut results = Results {
        hits: Vec::with_capacity(candidates),
        articles: Vec::new(),
        captures: Vec::new(),
        merged: Vec::new(),
        spills: Vec::new(),
    };
    for (key, candidates) in by_article {
        let Some(state) = threads::load_thread(archive, &key)? else { continue };
        let article =
            u32::try_from(results.articles.len()).map_err(|_| Error::Internal("too many articles".into()))?;
        // version (or alias) id -> (slot, version index)
        let versions = state.version_index();
        let before = results.hits.len();
        for c in candidates {
            let Some(&(si, vi)) = versions.get(&c.id) else { continue };
            let slot = &state.slots[si];
            let v = &slot.versions[vi];
            let status = slot.version_status(v, state.is_present(slot));
            let first = state.captures[v.first_seen as usize].observed_at().instant();
            let last = state.captures[v.last_seen as usize].observed_at().instant();
            if !query.window.meets(first, last) {
                continue;
            }
            if !query.status.is_empty() && !query.status.contains(&status) {
                continue;
            }
            let merged = if v.id != c.id {
                results.merged.push(v.id);
                Some((results.merged.len() - 1) as u32)
            } else {
                None
            };
            let status =
                STATUSES.iter().position(|s| *s == status).ok_or_else(|| {
                    Error::Internal(format!("a version status search does not know: {status}"))
                })? as u8;
            results.hits.push(Hit {
                seq: c.seq,
                at: c.at,
                article,
                first_seen: v.first_seen,
                last_seen: v.last_seen,
                status,
                merged,
                spill: c.spill,
            });
        }
        if results.hits.len() > before {
            results.articles.push(key);
            results.captures.push(state.captures);
        }
    }
    results.hits.sort_by_key(|h| (h.at, h.seq));
    results.spills = scanned.into_iter().map(|s| s.spill).collect();
    Ok(results)
}

/// The matching comment versions at seqs `from..=to`; records go to spill
/// file number `file`.
fn scan(archive: &Archive, query: &Query, from: u64, to: u64, file: u8) -> Result<Scanned> {
    use std::io::Write;
    let spill = spill_file()?;
    let mut out = Scanned { candidates: Vec::new(), articles: Vec::new(), spill };
    if from > to {
        return Ok(out);
    }
    let mut interned: HashMap<ArticleKey, u32> = HashMap::new();
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, &out.spill);
    let mut offset = 0u64;
    for entry in archive.entries_from(Seq(from))? {
        let entry = entry?;
        if entry.seq.0 > to {
            break;
        }
        let Event::Comment(c) = &entry.event else { continue };
        if query.author.as_ref().is_some_and(|a| c.author.as_ref() != Some(a)) {
            continue;
        }
        if let Some(a) = &query.article {
            if !a.covers(&c.article) {
                continue;
            }
        }
        let hit =
            query.pattern.is_match(&c.body) || c.author.as_deref().is_some_and(|a| query.pattern.is_match(a));
        if !hit {
            continue;
        }
        let article = match interned.get(&c.article) {
            Some(&i) => i,
            None => {
                let i = out.articles.len() as u32;
                out.articles.push(c.article.clone());
                interned.insert(c.article.clone(), i);
                i
            }
        };
        let record = Record {
            id: entry.id,
            author: c.author.clone(),
            posted_at: c.posted_at.map(|t| t.canonical()),
            body: c.body.clone(),
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|e| Error::Internal(format!("a search record: {e}")))?;
        writer.write_all(&bytes).map_err(|e| Error::io("the search's temporary file", e))?;
        let len = u32::try_from(bytes.len()).map_err(|_| Error::Internal("a comment over 4 GiB".into()))?;
        out.candidates.push(Candidate {
            seq: entry.seq,
            id: entry.id,
            at: c.posted_at.unwrap_or(entry.recorded_at).instant(),
            article,
            spill: Spilled { file, offset, len },
        });
        offset += u64::from(len);
    }
    writer.flush().map_err(|e| Error::io("the search's temporary file", e))?;
    drop(writer);
    Ok(out)
}
