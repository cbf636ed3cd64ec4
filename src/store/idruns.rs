//! The global id index as sorted runs, the way git's pack `.idx` files
//! work: each commit writes one file of its events' (id, seq) pairs sorted
//! by id, behind a 256-entry fanout table; a lookup binary-searches each
//! run; runs are merged in tiers, [`MERGE_WIDTH`] at a time: once the
//! last [`MERGE_WIDTH`] runs of the chain are of about one size (the
//! oldest of them at most twice the newest), they become one, so an
//! archive of n events has O(log n) of them and each id is rewritten about
//! log_8(n / group) times (merging two at a time rewrote it log_2 times:
//! at 1M events a first ingest spent 1.1 s of its appending thread on
//! merges). The runs are derived data: they are rebuilt from
//! the log files whenever they are missing, behind or damaged
//! (`SledStore::reconcile_runs`), and `cairn repair` rebuilds them from scratch.
//!
//! A run file `index/FIRST-LAST.idx` (seqs in 16 hex digits) covers the
//! events at seqs FIRST..=LAST, each id once (a log holding one id twice,
//! which `verify` reports, keeps its earliest seq here):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `cairnidx` |
//! | 4 | format version, u32 BE (1) |
//! | 4 | entry size, u32 BE (40) |
//! | 8 | FIRST, u64 BE |
//! | 8 | LAST, u64 BE |
//! | 8 | the number of entries N, u64 BE (LAST - FIRST + 1 unless the log repeats an id) |
//! | 8 | reserved, zero |
//! | 256 x 8 | fanout: entry `b` is the number of ids whose first byte is at most `b`, u64 BE |
//! | N x 40 | entries sorted by id: the id (32 bytes), its seq (u64 BE) |
//! | 32 | BLAKE3 over the header, the fanout and the BLAKE3 of the entries |
//!
//! A run is written to a temporary file, fsynced and renamed into place;
//! the set of runs in use is the chain of runs that covers 1, 2, … without
//! gaps, preferring the longest run at each step. Files outside that chain
//! (runs a merge replaced, a run past a log that was cut back) are deleted
//! when the archive is opened; a run file that cannot be used is moved
//! aside (`NAME.damaged-SECONDS`) with a warning, and its entries are
//! rebuilt from the log. A merge checks its inputs' checksums as it reads
//! them, so damage is never carried into a new run.

use crate::error::{Error, Result};
use crate::model::{EventId, HexPrefix, Seq};
use crate::store::records::ReadFailure;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"cairnidx";
const VERSION: u32 = 1;
/// Bytes of one entry: id and seq.
pub const ENTRY: u64 = 40;
const HEADER: u64 = 48;
const FANOUT: u64 = 256 * 8;
const TRAILER: u64 = 32;
/// A lookup reads this many entries around its estimate at once.
const WINDOW: u64 = 128;
/// Runs are built from the log in pieces of at most this many entries.
pub const BUILD_CHUNK: usize = 1 << 20;

/// One (id, seq) pair of the index.
pub type IdSeq = (EventId, Seq);

/// One run file in use.
#[derive(Debug)]
struct Run {
    first: Seq,
    last: Seq,
    /// Entries (the seqs of the range, less repeated ids).
    count: u64,
    fanout: Box<[u64; 256]>,
    file: File,
    path: PathBuf,
}

impl Run {
    fn count(&self) -> u64 {
        self.count
    }

    /// The entries at positions `from..to`.
    fn read(&self, from: u64, to: u64) -> Result<Vec<IdSeq>> {
        let mut buf = vec![0u8; ((to - from) * ENTRY) as usize];
        self.file
            .read_exact_at(&mut buf, HEADER + FANOUT + from * ENTRY)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(buf.chunks_exact(ENTRY as usize).map(decode_entry).collect())
    }

    /// The positions of ids whose first byte is `b`.
    fn bucket(&self, b: u8) -> (u64, u64) {
        let lo = if b == 0 { 0 } else { self.fanout[b as usize - 1] };
        (lo, self.fanout[b as usize])
    }

    /// The seq of `id` in this run; a seq outside the run's range (a
    /// damaged file: its checksum is read only by merges and audits) is
    /// an error that names the run and `repair`. Damage that leaves a seq
    /// in range is caught by the readers, which check the entry's id
    /// (`Archive::entry_by_id`: a stale index).
    fn seq_of(&self, id: &EventId) -> Result<Option<Seq>> {
        self.find(id)?.map(|s| self.in_range(s)).transpose()
    }

    /// `seq`, read from this run, if it is in the run's range.
    fn in_range(&self, seq: Seq) -> Result<Seq> {
        if seq < self.first || seq > self.last {
            return Err(Error::Corrupt(format!(
                "id index run {} is damaged: it gives seq {seq}, outside its range {}..={}; `cairn repair` \
                 rebuilds the index",
                self.path.display(),
                self.first,
                self.last
            )));
        }
        Ok(seq)
    }

    fn find(&self, id: &EventId) -> Result<Option<Seq>> {
        let (mut lo, mut hi) = self.bucket(id.as_bytes()[0]);
        if hi > lo && hi - lo > WINDOW {
            // Ids are uniform: the id's next bytes estimate its place.
            let mut next = [0u8; 8];
            next.copy_from_slice(&id.as_bytes()[1..9]);
            let frac = u64::from_be_bytes(next) as f64 / 18_446_744_073_709_551_616.0;
            let est = lo + (frac * (hi - lo) as f64) as u64;
            let from = est.saturating_sub(WINDOW / 2).clamp(lo, hi - WINDOW);
            let window = self.read(from, from + WINDOW)?;
            if window.first().is_some_and(|(f, _)| f > id) {
                hi = from;
            } else if window.last().is_some_and(|(l, _)| l < id) {
                lo = from + WINDOW;
            } else {
                return Ok(window.binary_search_by(|(x, _)| x.cmp(id)).ok().map(|i| window[i].1));
            }
        }
        // Binary search by reads, down to a window read at once.
        while hi - lo > WINDOW {
            let mid = lo + (hi - lo) / 2;
            let (x, s) = self.read(mid, mid + 1)?[0];
            match x.cmp(id) {
                std::cmp::Ordering::Equal => return Ok(Some(s)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        if hi <= lo {
            return Ok(None);
        }
        let window = self.read(lo, hi)?;
        Ok(window.binary_search_by(|(x, _)| x.cmp(id)).ok().map(|i| window[i].1))
    }

    /// The first position whose id is not below `key` (a byte prefix).
    fn lower_bound(&self, key: &[u8]) -> Result<u64> {
        let (mut lo, mut hi) = match key.first() {
            Some(b) => self.bucket(*b),
            None => (0, self.count()),
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (x, _) = self.read(mid, mid + 1)?[0];
            if &x.as_bytes()[..] < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Every entry in id order, read sequentially. With `checked`, the
    /// stream ends in an error unless the entries are sorted and match the
    /// run's fanout and checksum (a merge carries no damage over).
    fn entries(&self, checked: bool) -> Result<RunEntries> {
        let mut file = self.file.try_clone().map_err(|e| Error::io(&self.path, e))?;
        file.seek(SeekFrom::Start(HEADER + FANOUT)).map_err(|e| Error::io(&self.path, e))?;
        let check = if checked {
            let mut stored = [0u8; 32];
            self.file
                .read_exact_at(&mut stored, HEADER + FANOUT + self.count * ENTRY)
                .map_err(|e| Error::io(&self.path, e))?;
            let head = header(self.first, self.last, self.count);
            Some(Check {
                hasher: blake3::Hasher::new(),
                stored,
                head,
                fanout: self.fanout.clone(),
                counted: Box::new([0; 256]),
                prev: None,
            })
        } else {
            None
        };
        Ok(RunEntries {
            // A merge reads MERGE_WIDTH of these at once.
            reader: BufReader::with_capacity(64 * 1024, file),
            left: self.count,
            path: self.path.clone(),
            check,
        })
    }
}

fn decode_entry(b: &[u8]) -> IdSeq {
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[..32]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[32..40]);
    (EventId(id), Seq(u64::from_be_bytes(seq)))
}

/// A run's entries in order, read through a buffer.
struct RunEntries {
    reader: BufReader<File>,
    left: u64,
    path: PathBuf,
    check: Option<Check>,
}

/// What a checked read of a run recomputes.
struct Check {
    hasher: blake3::Hasher,
    stored: [u8; 32],
    head: [u8; HEADER as usize],
    fanout: Box<[u64; 256]>,
    counted: Box<[u64; 256]>,
    prev: Option<EventId>,
}

impl Check {
    fn take(&mut self, b: &[u8; ENTRY as usize]) -> bool {
        self.hasher.update(b);
        let (id, _) = decode_entry(b);
        self.counted[id.as_bytes()[0] as usize] += 1;
        let sorted = self.prev.is_none_or(|p| p < id);
        self.prev = Some(id);
        sorted
    }

    fn whole(&self) -> bool {
        let mut total = 0;
        let fanout_ok = self.counted.iter().zip(self.fanout.iter()).all(|(n, f)| {
            total += n;
            total == *f
        });
        fanout_ok && trailer(&self.head, &fanout_bytes(&self.fanout), &self.hasher.finalize()) == self.stored
    }
}

impl Iterator for RunEntries {
    type Item = Result<IdSeq>;
    fn next(&mut self) -> Option<Result<IdSeq>> {
        if self.left == 0 {
            // A checked read ends with its verdict.
            return match self.check.take() {
                Some(c) if !c.whole() => Some(Err(damaged_run(&self.path))),
                _ => None,
            };
        }
        self.left -= 1;
        let mut b = [0u8; ENTRY as usize];
        if let Err(e) = self.reader.read_exact(&mut b) {
            self.left = 0;
            self.check = None;
            return Some(Err(Error::io(&self.path, e)));
        }
        if let Some(c) = &mut self.check {
            if !c.take(&b) {
                self.left = 0;
                self.check = None;
                return Some(Err(damaged_run(&self.path)));
            }
        }
        Some(Ok(decode_entry(&b)))
    }
}

fn damaged_run(path: &Path) -> Error {
    Error::Corrupt(format!(
        "id index run {} does not match its checksum; `cairn repair` rebuilds the index",
        path.display()
    ))
}

/// The name of the run covering `first..=last`.
fn run_name(first: Seq, last: Seq) -> String {
    format!("{:016x}-{:016x}.idx", first.0, last.0)
}

fn parse_name(name: &str) -> Option<(Seq, Seq)> {
    let stem = name.strip_suffix(".idx")?;
    let (a, b) = stem.split_once('-')?;
    if a.len() != 16 || b.len() != 16 {
        return None;
    }
    let first = u64::from_str_radix(a, 16).ok()?;
    let last = u64::from_str_radix(b, 16).ok()?;
    (first >= 1 && last >= first).then_some((Seq(first), Seq(last)))
}

fn header(first: Seq, last: Seq, count: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..16].copy_from_slice(&(ENTRY as u32).to_be_bytes());
    h[16..24].copy_from_slice(&first.0.to_be_bytes());
    h[24..32].copy_from_slice(&last.0.to_be_bytes());
    h[32..40].copy_from_slice(&count.to_be_bytes());
    h
}

fn fanout_bytes(fanout: &[u64; 256]) -> Vec<u8> {
    fanout.iter().flat_map(|n| n.to_be_bytes()).collect()
}

/// The trailer: BLAKE3 over the header, the fanout and the entries' BLAKE3.
fn trailer(header: &[u8], fanout: &[u8], entries_hash: &blake3::Hash) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(header).update(fanout).update(entries_hash.as_bytes());
    *h.finalize().as_bytes()
}

/// Opens a run file and checks its header, fanout and length (not its
/// entries: [`IdRuns::problems`] reads those).
/// A read the system fails is an I/O error ([`ReadFailure::Io`]), not a
/// run to move aside as damaged.
fn open_run(path: &Path, first: Seq, last: Seq) -> std::result::Result<Run, ReadFailure> {
    let failed = |e: std::io::Error| ReadFailure::of(path, e.to_string(), e);
    let mut file = File::open(path).map_err(failed)?;
    let len = file.metadata().map_err(failed)?.len();
    if len < HEADER + FANOUT + TRAILER {
        return Err(ReadFailure::Damaged(format!("{len} bytes, shorter than a run's header")));
    }
    let mut head = [0u8; (HEADER + FANOUT) as usize];
    file.read_exact(&mut head).map_err(failed)?;
    let mut n = [0u8; 8];
    n.copy_from_slice(&head[32..40]);
    let count = u64::from_be_bytes(n);
    if count == 0 || count > last.0 - first.0 + 1 || head[..HEADER as usize] != header(first, last, count) {
        return Err(ReadFailure::Damaged("its header does not match its name".into()));
    }
    let want = count.checked_mul(ENTRY).and_then(|n| n.checked_add(HEADER + FANOUT + TRAILER));
    if Some(len) != want {
        return Err(ReadFailure::Damaged(format!(
            "{len} bytes, a run of {count} entries has {}",
            want.unwrap_or(u64::MAX)
        )));
    }
    let mut fanout = Box::new([0u64; 256]);
    let mut prev = 0;
    for (i, slot) in fanout.iter_mut().enumerate() {
        let at = HEADER as usize + i * 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[at..at + 8]);
        *slot = u64::from_be_bytes(b);
        if *slot < prev || *slot > count {
            return Err(ReadFailure::Damaged("its fanout table is not a count of its entries".into()));
        }
        prev = *slot;
    }
    if fanout[255] != count {
        return Err(ReadFailure::Damaged("its fanout table is not a count of its entries".into()));
    }
    Ok(Run { first, last, count, fanout, file, path: path.to_path_buf() })
}

/// Writes a run from entries sorted by id (covering `first..=last`, each
/// id once) to a temporary file, fsyncs it and renames it into place.
fn write_run(dir: &Path, first: Seq, last: Seq, entries: impl Iterator<Item = Result<IdSeq>>) -> Result<Run> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = run_name(first, last);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = write_run_file(&tmp, &name, first, last, entries);
    let (count, fanout) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    Ok(Run { first, last, count, fanout: Box::new(fanout), file, path })
}

/// The body of [`write_run`]: the file at `tmp`, fsynced; its entry count
/// and fanout.
fn write_run_file(
    tmp: &Path,
    name: &str,
    first: Seq,
    last: Seq,
    entries: impl Iterator<Item = Result<IdSeq>>,
) -> Result<(u64, [u64; 256])> {
    let io = |e| Error::io(tmp, e);
    // Made anew, never through what is there (a leftover, or a link of
    // that name, whose target would be written over).
    let file = crate::store::create_fresh(tmp).map_err(io)?;
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    // The header and fanout are written again once the entries are counted.
    w.write_all(&[0u8; (HEADER + FANOUT) as usize]).map_err(io)?;
    let mut fanout = [0u64; 256];
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    let mut prev: Option<EventId> = None;
    for item in entries {
        let (id, seq) = item?;
        if prev.is_some_and(|p| p >= id) || seq < first || seq > last {
            // add() sorts and checks its entries: only a damaged input run
            // of a merge gets here.
            return Err(Error::Corrupt(format!(
                "the id index is damaged (a run merged into {name} has entries out of order or out of its \
                 range); `cairn repair` rebuilds it"
            )));
        }
        prev = Some(id);
        fanout[id.as_bytes()[0] as usize] += 1;
        let mut b = [0u8; ENTRY as usize];
        b[..32].copy_from_slice(id.as_bytes());
        b[32..].copy_from_slice(&seq.0.to_be_bytes());
        hasher.update(&b);
        w.write_all(&b).map_err(io)?;
        n += 1;
    }
    if n == 0 || n > last.0 - first.0 + 1 {
        return Err(Error::Internal(format!("index run {name}: {n} entries")));
    }
    for i in 1..256 {
        fanout[i] += fanout[i - 1];
    }
    let head = header(first, last, n);
    let fan = fanout_bytes(&fanout);
    w.write_all(&trailer(&head, &fan, &hasher.finalize())).map_err(io)?;
    let mut file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&head).map_err(io)?;
    file.write_all(&fan).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok((n, fanout))
}

/// Merges two sorted streams; an id in both (a log that repeats it) is
/// kept once, from `a` (the earlier seqs).
fn merge_sorted(
    mut a: impl Iterator<Item = Result<IdSeq>>,
    mut b: impl Iterator<Item = Result<IdSeq>>,
) -> impl Iterator<Item = Result<IdSeq>> {
    let mut x = a.next();
    let mut y = b.next();
    std::iter::from_fn(move || {
        let order = match (&x, &y) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => std::cmp::Ordering::Less,
            (None, Some(_)) | (_, Some(Err(_))) => std::cmp::Ordering::Greater,
            (Some(Ok((p, _))), Some(Ok((q, _)))) => p.cmp(q),
        };
        match order {
            std::cmp::Ordering::Less => std::mem::replace(&mut x, a.next()),
            std::cmp::Ordering::Greater => std::mem::replace(&mut y, b.next()),
            std::cmp::Ordering::Equal => {
                y = b.next();
                std::mem::replace(&mut x, a.next())
            }
        }
    })
}

/// A stream of entries in id order.
type Entries = Box<dyn Iterator<Item = Result<IdSeq>>>;

/// Merges sorted streams given oldest first, as a balanced tree of
/// [`merge_sorted`]: an id in several is kept once, from the oldest.
fn merge_all(mut streams: Vec<Entries>) -> Entries {
    if streams.len() < 2 {
        return streams.pop().unwrap_or_else(|| Box::new(std::iter::empty()));
    }
    let later = streams.split_off(streams.len() / 2);
    Box::new(merge_sorted(merge_all(streams), merge_all(later)))
}

/// Runs merged into one at a time (see the module's docs): 8, and 3 under
/// the library's unit tests, so that the views' proptests (a few commits
/// each, with faults between them) meet merges too.
pub const MERGE_WIDTH: usize = if cfg!(test) { 3 } else { 8 };

/// The runs of an archive's `index/` directory.
#[derive(Debug)]
pub struct IdRuns {
    dir: PathBuf,
    /// The chain in use: consecutive seq ranges from seq 1.
    runs: Vec<Run>,
    /// Run files found unusable on open (name and why), for audits.
    damaged: Vec<(String, String)>,
}

impl IdRuns {
    /// Opens the runs in `dir` (none when it does not exist). With
    /// `tidy`, files outside the chain in use are deleted.
    pub fn open(dir: &Path, tidy: bool) -> Result<IdRuns> {
        let mut found: Vec<(Seq, Seq, String)> = Vec::new();
        let mut stray: Vec<PathBuf> = Vec::new();
        match fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir, e)),
            Ok(list) => {
                for entry in list {
                    let entry = entry.map_err(|e| Error::io(dir, e))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    match parse_name(&name) {
                        Some((f, l)) => found.push((f, l, name)),
                        None => stray.push(entry.path()),
                    }
                }
            }
        }
        found.sort();
        let mut runs: Vec<Run> = Vec::new();
        let mut damaged = Vec::new();
        let mut next = Seq(1);
        loop {
            // The longest usable run starting at `next`.
            let mut best: Option<Run> = None;
            for (f, l, name) in found.iter().filter(|(f, _, _)| *f == next).rev() {
                match open_run(&dir.join(name), *f, *l) {
                    Ok(r) => {
                        best = Some(r);
                        break;
                    }
                    Err(why @ ReadFailure::Io { .. }) => return Err(why.into_error(Error::Corrupt)),
                    Err(why) => damaged.push((name.clone(), why.to_string())),
                }
            }
            match best {
                Some(r) => {
                    next = r.last.next();
                    runs.push(r);
                }
                None => break,
            }
        }
        if tidy {
            let used: Vec<&Path> = runs.iter().map(|r| r.path.as_path()).collect();
            for (_, _, name) in &found {
                let p = dir.join(name);
                if used.contains(&p.as_path()) {
                    continue;
                }
                if let Some((_, why)) = damaged.iter().find(|(n, _)| n == name) {
                    // Kept for a look, out of the way; the log rebuilds it.
                    tracing::warn!(
                        "id index run {name} is unusable ({why}); moved aside and rebuilt from the log"
                    );
                    let _ = fs::rename(&p, crate::store::records::aside_name(&p, "damaged"));
                } else {
                    let _ = fs::remove_file(&p);
                }
            }
            for p in stray {
                if p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".tmp")) {
                    let _ = fs::remove_file(&p);
                }
            }
        }
        Ok(IdRuns { dir: dir.to_path_buf(), runs, damaged })
    }

    /// The last seq the runs cover (0 when none).
    pub fn end(&self) -> Seq {
        self.runs.last().map_or(Seq(0), |r| r.last)
    }

    /// The number of runs in use.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no run is in use.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Drops the runs that reach past `head` (a log cut back): the index
    /// then ends at or before it.
    pub fn cut_to(&mut self, head: Seq) {
        while self.runs.last().is_some_and(|r| r.last > head) {
            if let Some(r) = self.runs.pop() {
                let _ = fs::remove_file(&r.path);
            }
        }
    }

    /// Adds the entries of seqs `end()+1 ..= last` (any order): one new
    /// run, then merges the last [`MERGE_WIDTH`] runs into one while the
    /// oldest of them is at most twice the size of the newest.
    pub fn add(&mut self, mut entries: Vec<IdSeq>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let first = self.end().next();
        let last = Seq(first.0 + entries.len() as u64 - 1);
        let mut seqs: Vec<u64> = entries.iter().map(|(_, s)| s.0).collect();
        seqs.sort_unstable();
        if seqs.iter().enumerate().any(|(i, s)| *s != first.0 + i as u64) {
            return Err(Error::Internal(format!(
                "index run from seq {first}: seqs are not {first}..={last}"
            )));
        }
        // A log that holds an id twice (verify reports it) keeps its
        // earliest seq here.
        entries.sort_unstable();
        let before = entries.len();
        entries.dedup_by_key(|e| e.0);
        if entries.len() != before {
            tracing::warn!(
                "seqs {first}..={last} of the log repeat {} ids; the id index keeps each one's earliest seq",
                before - entries.len()
            );
        }
        let run = write_run(&self.dir, first, last, entries.into_iter().map(Ok))?;
        self.runs.push(run);
        while self.runs.len() >= MERGE_WIDTH {
            let n = self.runs.len();
            if self.runs[n - MERGE_WIDTH].count() > 2 * self.runs[n - 1].count() {
                break;
            }
            self.merge_last(MERGE_WIDTH)?;
        }
        Ok(())
    }

    /// Merges the last `k` runs of the chain into one.
    fn merge_last(&mut self, k: usize) -> Result<()> {
        let n = self.runs.len();
        if k < 2 || n < k {
            return Ok(());
        }
        // Written before the inputs leave the chain: a failed merge leaves
        // the runs as they were.
        let inputs = &self.runs[n - k..];
        let streams =
            inputs.iter().map(|r| Ok(Box::new(r.entries(true)?) as Entries)).collect::<Result<_>>()?;
        let (first, last) = (inputs[0].first, inputs[k - 1].last);
        let merged = write_run(&self.dir, first, last, merge_all(streams))?;
        for old in self.runs.drain(n - k..) {
            let _ = fs::remove_file(&old.path);
        }
        self.runs.push(merged);
        Ok(())
    }

    /// The seq of `id`, if a run holds it.
    pub fn seq_of(&self, id: &EventId) -> Result<Option<Seq>> {
        for r in &self.runs {
            if let Some(s) = r.seq_of(id)? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The seqs of `ids`, in order, trying first the run that found the
    /// id before: ids read together (a thread's comments) were mostly
    /// committed together, so most lookups read one run instead of every
    /// run before theirs. A log that repeats an id in two runs (which
    /// `verify` reports) may answer with either seq.
    pub fn seqs_of(&self, ids: &[EventId]) -> Result<Vec<Option<Seq>>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut last: Option<usize> = None;
        for id in ids {
            let before = last;
            let order = before.into_iter().chain((0..self.runs.len()).filter(|i| Some(*i) != before));
            let mut found = None;
            for i in order {
                if let Some(s) = self.runs[i].seq_of(id)? {
                    (found, last) = (Some(s), Some(i));
                    break;
                }
            }
            out.push(found);
        }
        Ok(out)
    }

    /// Every (id, seq) whose id starts with `prefix`, sorted by id.
    pub fn with_prefix(&self, prefix: &HexPrefix) -> Result<Vec<IdSeq>> {
        let key = prefix.byte_prefix();
        let mut out = Vec::new();
        for r in &self.runs {
            let mut at = r.lower_bound(key)?;
            while at < r.count() {
                let (id, seq) = r.read(at, at + 1)?[0];
                if !id.as_bytes().starts_with(key) {
                    break;
                }
                let seq = r.in_range(seq)?;
                if prefix.matches(id.as_bytes()) {
                    out.push((id, seq));
                }
                at += 1;
                if out.len() > 4096 {
                    break; // enough to call the prefix ambiguous
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every run's entries in turn (each run in id order), for audits.
    pub fn scan(&self) -> Result<impl Iterator<Item = Result<IdSeq>> + use<>> {
        let mut all = Vec::new();
        for r in &self.runs {
            all.push(r.entries(false)?);
        }
        Ok(all.into_iter().flatten())
    }

    /// What is wrong with the run files: files found unusable on open,
    /// and runs whose trailer does not match their contents. Reads every
    /// run whole.
    pub fn problems(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> =
            self.damaged.iter().map(|(n, why)| format!("index run {n} is unusable: {why}")).collect();
        for r in &self.runs {
            let name = r.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            match r.entries(true)?.find_map(Result::err) {
                // (The disk failed to read it: an error, not damage.)
                Some(e) if e.is_io_fault() => return Err(e),
                Some(_) => out.push(format!(
                    "index run {name}: its entries do not match its checksum and fanout, or are out of order"
                )),
                None => {}
            }
        }
        Ok(out)
    }

    /// Deletes every run (the index is rebuilt from the log).
    pub fn clear(&mut self) -> Result<()> {
        for r in self.runs.drain(..) {
            let _ = fs::remove_file(&r.path);
        }
        self.damaged.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u64) -> EventId {
        EventId(*blake3::hash(&n.to_be_bytes()).as_bytes())
    }

    fn build(dir: &Path, sizes: &[usize]) -> IdRuns {
        let mut runs = IdRuns::open(dir, true).unwrap();
        let mut seq = 1u64;
        for n in sizes {
            let batch: Vec<IdSeq> = (seq..seq + *n as u64).map(|s| (id(s), Seq(s))).collect();
            seq += *n as u64;
            runs.add(batch).unwrap();
        }
        runs
    }

    #[test]
    fn lookups_find_every_id_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let runs = build(dir.path(), &[1, 7, 3000, 20, 20, 20, 50_000, 5]);
        let total = 1 + 7 + 3000 + 60 + 50_000 + 5;
        for s in (1..=total as u64).step_by(7) {
            assert_eq!(runs.seq_of(&id(s)).unwrap(), Some(Seq(s)), "seq {s}");
        }
        for s in total as u64 + 1..total as u64 + 300 {
            assert_eq!(runs.seq_of(&id(s)).unwrap(), None);
        }
        assert!(runs.len() <= 6, "{} runs", runs.len());
        assert!(runs.problems().unwrap().is_empty());
        // Reopened, the same chain.
        let again = IdRuns::open(dir.path(), true).unwrap();
        assert_eq!(again.end(), Seq(total as u64));
        assert_eq!(again.seq_of(&id(4000)).unwrap(), Some(Seq(4000)));
        // Prefix lookups.
        let hex = id(77).to_hex();
        let p = HexPrefix::parse(&hex[..7]).unwrap();
        assert!(again.with_prefix(&p).unwrap().contains(&(id(77), Seq(77))));
    }

    #[test]
    fn a_damaged_run_is_reported_and_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let runs = build(dir.path(), &[100, 10]);
        let last = runs.runs.last().unwrap().path.clone();
        drop(runs);
        // A flipped entry byte: the checksum says so.
        let mut bytes = fs::read(&last).unwrap();
        let at = (HEADER + FANOUT + 3) as usize;
        bytes[at] ^= 1;
        fs::write(&last, &bytes).unwrap();
        let runs = IdRuns::open(dir.path(), false).unwrap();
        assert_eq!(runs.problems().unwrap().len(), 1);
        // A cut file is not used at all.
        fs::write(&last, &bytes[..100]).unwrap();
        let runs = IdRuns::open(dir.path(), false).unwrap();
        assert_eq!(runs.end(), Seq(100));
        assert_eq!(runs.problems().unwrap().len(), 1);
    }

    #[test]
    fn a_lookup_refuses_a_seq_outside_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let runs = build(dir.path(), &[100, 30]);
        let path = runs.runs[1].path.clone();
        drop(runs);
        // Entry 5 of the second run (ids sorted): a high byte of its seq.
        let mut bytes = fs::read(&path).unwrap();
        let at = (HEADER + FANOUT + 40 * 5 + 34) as usize;
        let mut raw = [0u8; 40];
        raw.copy_from_slice(&bytes[at - 34..at + 6]);
        let (victim, _) = decode_entry(&raw);
        bytes[at] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let runs = IdRuns::open(dir.path(), false).unwrap();
        assert_eq!(runs.len(), 2, "the header still matches: the run is in use");
        let err = runs.seq_of(&victim).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)) && err.to_string().contains("cairn repair"), "{err}");
        assert!(runs.seqs_of(&[id(3), victim]).is_err());
        let prefix = HexPrefix::parse(&victim.to_hex()[..8]).unwrap();
        assert!(runs.with_prefix(&prefix).is_err());
        // The other ids still answer.
        assert_eq!(runs.seq_of(&id(3)).unwrap(), Some(Seq(3)));
    }

    #[test]
    fn a_merge_refuses_a_damaged_input_and_leaves_the_chain_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = build(dir.path(), &[100; MERGE_WIDTH - 1]);
        assert_eq!(runs.len(), MERGE_WIDTH - 1, "not merged yet");
        let path = runs.runs[0].path.clone();
        let mut bytes = fs::read(&path).unwrap();
        // The lowest byte of a seq: order, fanout and the run's seq range
        // still hold; only the checksum, read at the stream's end, does not.
        let at = (HEADER + FANOUT + 40 * 50 + 39) as usize;
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let end = 100 * MERGE_WIDTH as u64;
        let err = runs.add((end - 99..=end).map(|s| (id(s), Seq(s))).collect()).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        // Nothing carried the damage into a merged run; every run remains.
        assert_eq!(runs.len(), MERGE_WIDTH);
        assert_eq!(runs.end(), Seq(end));
        assert_eq!(runs.problems().unwrap().len(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), MERGE_WIDTH, "no merged file left behind");
    }

    #[test]
    fn runs_merge_in_tiers() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = IdRuns::open(dir.path(), true).unwrap();
        let mut lens = Vec::new();
        for g in 0..(MERGE_WIDTH * MERGE_WIDTH) as u64 {
            runs.add((g * 10 + 1..=g * 10 + 10).map(|s| (id(s), Seq(s))).collect()).unwrap();
            lens.push(runs.len());
        }
        // Runs of 10 gather until there are MERGE_WIDTH of them, then
        // become one; MERGE_WIDTH of those, one again.
        assert_eq!(lens[MERGE_WIDTH - 2], MERGE_WIDTH - 1);
        assert_eq!(lens[MERGE_WIDTH - 1], 1);
        assert_eq!(lens[2 * MERGE_WIDTH - 1], 2);
        assert_eq!(*lens.iter().max().unwrap(), 2 * (MERGE_WIDTH - 1));
        assert_eq!(runs.len(), 1);
        let counts: Vec<u64> = runs.runs.iter().map(Run::count).collect();
        assert_eq!(counts, vec![10 * (MERGE_WIDTH * MERGE_WIDTH) as u64]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "merged inputs deleted");
        for s in (1..=10 * (MERGE_WIDTH * MERGE_WIDTH) as u64).step_by(13) {
            assert_eq!(runs.seq_of(&id(s)).unwrap(), Some(Seq(s)));
        }
    }

    #[test]
    fn a_repeated_id_keeps_its_earliest_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = IdRuns::open(dir.path(), true).unwrap();
        runs.add(vec![(id(1), Seq(1)), (id(2), Seq(2)), (id(1), Seq(3))]).unwrap();
        runs.add(vec![(id(2), Seq(4)), (id(5), Seq(5))]).unwrap();
        assert_eq!(runs.seq_of(&id(2)).unwrap(), Some(Seq(2)), "the earlier run answers first");
        // Runs that repeat ids (the first two, and id 2 again in the last)
        // merge into one that keeps each id's earliest seq.
        let mut next = 6;
        while runs.len() < MERGE_WIDTH - 1 {
            runs.add(vec![(id(next), Seq(next))]).unwrap();
            next += 1;
        }
        runs.add(vec![(id(2), Seq(next)), (id(next + 1), Seq(next + 1))]).unwrap();
        assert_eq!(runs.len(), 1, "merged");
        assert_eq!(runs.end(), Seq(next + 1));
        assert_eq!(runs.seq_of(&id(1)).unwrap(), Some(Seq(1)));
        assert_eq!(runs.seq_of(&id(2)).unwrap(), Some(Seq(2)));
        assert_eq!(runs.seq_of(&id(5)).unwrap(), Some(Seq(5)));
        assert!(runs.problems().unwrap().is_empty());
        let again = IdRuns::open(dir.path(), true).unwrap();
        // Seqs 1..=next+1 less the three repeats (seqs 3, 4 and next).
        assert_eq!((again.end(), again.scan().unwrap().count() as u64), (Seq(next + 1), next - 2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn runs_answer_like_a_map(
            sizes in proptest::collection::vec(prop_oneof![1usize..4, 1usize..400, Just(64usize)], 1..60)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let runs = build(dir.path(), &sizes);
            let total: u64 = sizes.iter().sum::<usize>() as u64;
            prop_assert_eq!(runs.end(), Seq(total));
            let mut all: Vec<IdSeq> = runs.scan().unwrap().map(|r| r.unwrap()).collect();
            all.sort_by_key(|(_, s)| *s);
            prop_assert_eq!(all.len() as u64, total);
            for (i, (x, s)) in all.iter().enumerate() {
                prop_assert_eq!(*s, Seq(i as u64 + 1));
                prop_assert_eq!(*x, id(i as u64 + 1));
                prop_assert_eq!(runs.seq_of(x).unwrap(), Some(*s));
            }
            // Lookups together, in an order that jumps between runs (every
            // seventh id from the end, then ids never added) and repeats.
            let mut asked: Vec<EventId> = (1..=total).rev().step_by(7).map(id).collect();
            asked.extend((total + 1..total + 20).map(id));
            asked.extend((1..=total).step_by(3).map(id));
            let one_by_one: Vec<Option<Seq>> = asked.iter().map(|x| runs.seq_of(x).unwrap()).collect();
            prop_assert_eq!(runs.seqs_of(&asked).unwrap(), one_by_one);
            // Merging in tiers keeps O(log n) runs: each run is less than
            // half the one MERGE_WIDTH - 1 places before it, so there are at
            // most about (MERGE_WIDTH - 1) log2(n) + MERGE_WIDTH of them.
            let counts: Vec<u64> = runs.runs.iter().map(Run::count).collect();
            for i in MERGE_WIDTH - 1..counts.len() {
                prop_assert!(counts[i - (MERGE_WIDTH - 1)] > 2 * counts[i], "runs {:?}", counts);
            }
        }
    }
}
