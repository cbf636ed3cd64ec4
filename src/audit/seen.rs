//! The set of every id `verify` has read, with what the later checks need
//! of each (its earliest seq, its kind, its bucket's fingerprint): the
//! largest structure verify holds, so it is packed. An id is kept as 96
//! bits of two keyed hashes (SipHash, with keys drawn at random for each
//! audit) rather than its 32 bytes: two different ids of one log are taken
//! for one with a chance of about n^2 / 2^97 (2^-57 for a million ids,
//! 2^-37 for a billion), and a log cannot be made to collide on purpose
//! without the keys, which never leave the process. The bucket's
//! fingerprint ([`crate::store::buckets::Fingerprints`]) is 32 bits, also
//! keyed. One slot is 24 bytes (the first hash, then 32 bits of the
//! second beside the fingerprint, then the seq with the kind in its top
//! byte) in an open-addressed table with linear probing at most 3/4 full,
//! sized from the head up front: 32 bytes per id, where the ids themselves
//! took 64 and a `HashMap` of them about 120 (its buckets are a power of
//! two at most 7/8 full, and a tuple value is padded). Slots are found by
//! the keyed hash, so a damaged log of ids chosen to collide cannot make
//! probing slow. What an id's slot does not keep (the id) is read back
//! from the log by seq where a finding needs it.
//!
//! The table does not grow past a bound: a log with more ids than
//! [`IDS_PER_PASS`] (or `verify --ids-per-pass`) is checked in several
//! passes, each keeping only the ids of its [`Partition`] (a keyed hash of
//! the id picks the pass), so the table stays the same size however large
//! the archive grows, and each extra pass costs one more read of the log's
//! segments.

use super::scan::Seen;
use crate::model::{EventId, EventKind, Seq};
use std::hash::BuildHasher;

/// The table holds at most this many ids per this many slots.
const LOAD: (usize, usize) = (3, 4);
/// Seqs must fit below the kind byte.
const SEQ_BITS: u32 = 56;

/// One slot: the id's first hash; 32 bits of its second hash, then the
/// bucket fingerprint's 32 bits; the seq with the kind (1..=4) in its top
/// byte (zero: an empty slot). Plain words, so a table of zeros is
/// allocated zeroed: the pages of a table sized for a head that overstates
/// the log are never touched.
type Slot = [u64; 3];
const CHECK: usize = 1;
const TAGGED: usize = 2;

/// Ids one pass keeps at most, unless `verify --ids-per-pass` says
/// otherwise: 32 bytes each, 48 MB at most.
pub const IDS_PER_PASS: u64 = 1_500_000;

/// The ids one pass of verify keeps: those whose keyed hash (keys drawn at
/// random for each audit, shared by its passes) falls in its range.
#[derive(Clone)]
pub(super) struct Partition {
    key: std::collections::hash_map::RandomState,
    /// The range of hashes kept, both ends included.
    range: (u64, u64),
}

impl Partition {
    /// The first pass over a log the head says holds `ids` ids, keeping
    /// at most about `per_pass` of them: every id when that is all of
    /// them. The passes after it are made from what it read
    /// ([`Partition::rest`]): a head that overstates the log does not
    /// multiply them.
    pub fn first(ids: u64, per_pass: u64) -> Partition {
        let parts = ids.div_ceil(per_pass.max(1)).max(1);
        Partition { key: Default::default(), range: (0, u64::MAX / parts) }
    }

    /// The passes after this one for the `remaining` ids it did not keep,
    /// at most about `per_pass` each: the hashes past its range, in equal
    /// parts.
    pub fn rest(&self, remaining: u64, per_pass: u64) -> Vec<Partition> {
        if self.range.1 == u64::MAX {
            return Vec::new();
        }
        let from = self.range.1 + 1;
        let parts = remaining.div_ceil(per_pass.max(1)).clamp(1, u64::MAX - from);
        let width = (u64::MAX - from) / parts;
        (0..parts)
            .map(|i| {
                let hi = if i + 1 == parts { u64::MAX } else { from + (i + 1) * width - 1 };
                Partition { key: self.key.clone(), range: (from + i * width, hi) }
            })
            .collect()
    }

    /// Whether this pass keeps `id`.
    pub fn holds(&self, id: &EventId) -> bool {
        self.range == (0, u64::MAX) || {
            let h = self.key.hash_one(id.as_bytes());
            self.range.0 <= h && h <= self.range.1
        }
    }

    /// Whether this is the first pass (which makes every check that does
    /// not look ids up).
    pub fn is_first(&self) -> bool {
        self.range.0 == 0
    }
}

/// What a pass knows of an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Known {
    /// Read before, with this seq, kind and bucket.
    Seen(Seen),
    /// Not read (yet).
    Unseen,
    /// Another pass keeps it: no check of it is made in this one.
    Elsewhere,
}

/// Every id of this pass's partition read, each once.
pub(super) struct SeenIds {
    slots: Vec<Slot>,
    len: usize,
    keys: (std::collections::hash_map::RandomState, std::collections::hash_map::RandomState),
    part: Partition,
}

fn tag(kind: EventKind) -> u64 {
    match kind {
        EventKind::Article => 1,
        EventKind::Comment => 2,
        EventKind::Capture => 3,
        EventKind::Merge => 4,
    }
}

fn untag(tagged: u64) -> (Seq, EventKind) {
    let kind = match tagged >> SEQ_BITS {
        1 => EventKind::Article,
        2 => EventKind::Comment,
        3 => EventKind::Capture,
        _ => EventKind::Merge,
    };
    (Seq(tagged & ((1 << SEQ_BITS) - 1)), kind)
}

impl SeenIds {
    /// Room for `ids` ids without growing, keeping those of `part`.
    pub fn with_capacity(ids: usize, part: Partition) -> SeenIds {
        let slots = (ids.saturating_add(1).saturating_mul(LOAD.1).div_ceil(LOAD.0)).max(16);
        SeenIds { slots: vec![[0; 3]; slots], len: 0, keys: Default::default(), part }
    }

    /// The partition this table keeps.
    pub fn part(&self) -> &Partition {
        &self.part
    }

    /// What is known of `id` in this pass.
    pub fn known(&self, id: &EventId) -> Known {
        if !self.part.holds(id) {
            return Known::Elsewhere;
        }
        self.get(id).map_or(Known::Unseen, Known::Seen)
    }

    /// What is known of each of `ids`, in order: [`SeenIds::known`] of
    /// each, with every id's hashes taken first and the slots probed
    /// after, so that the probes (a cache miss each in a table of tens of
    /// megabytes) are independent of each other and the processor
    /// overlaps them.
    pub fn known_all(&self, ids: impl Iterator<Item = EventId>) -> Vec<Known> {
        let hashes: Vec<Option<(u64, u64)>> =
            ids.map(|id| self.part.holds(&id).then(|| self.hashes(&id))).collect();
        hashes
            .into_iter()
            .map(|h| match h {
                None => Known::Elsewhere,
                Some(h) => self.held(self.find(h)).map_or(Known::Unseen, Known::Seen),
            })
            .collect()
    }

    /// Records `id` when this pass keeps it, unless it is already known;
    /// returns what was known.
    pub fn record(&mut self, id: EventId, seen: Seen) -> Known {
        if !self.part.holds(&id) {
            return Known::Elsewhere;
        }
        self.first(id, seen).map_or(Known::Unseen, Known::Seen)
    }

    /// Frees the table, keeping its partition and count (what the checks
    /// after the index's need of it are sized by); nothing is known after.
    pub fn release(&mut self) {
        self.slots = Vec::new();
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The id's two keyed hashes: the first whole, the top 32 bits of the
    /// second.
    fn hashes(&self, id: &EventId) -> (u64, u64) {
        (self.keys.0.hash_one(id.as_bytes()), self.keys.1.hash_one(id.as_bytes()) >> 32)
    }

    /// The slot holding the id of `hashes`, or the empty one where it would go.
    fn find(&self, (first, second): (u64, u64)) -> usize {
        let n = self.slots.len();
        // The first hash scaled to the table (a multiply, not a division).
        let mut i = ((u128::from(first) * n as u128) >> 64) as usize;
        loop {
            let s = &self.slots[i];
            if s[TAGGED] == 0 || (s[0] == first && s[CHECK] >> 32 == second) {
                return i;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
    }

    /// What is known of `id` (of this pass's partition).
    fn get(&self, id: &EventId) -> Option<Seen> {
        self.held(self.find(self.hashes(id)))
    }

    /// What slot `i` holds, if anything.
    fn held(&self, i: usize) -> Option<Seen> {
        let s = &self.slots[i];
        (s[TAGGED] != 0).then(|| {
            let (seq, kind) = untag(s[TAGGED]);
            (seq, kind, s[CHECK] & 0xffff_ffff)
        })
    }

    /// Records `id` unless it is already known; returns what was known. A
    /// seq too large to pack is recorded as the largest that fits (the seq
    /// check reports it; an archive never reaches 2^56 events). The bucket
    /// fingerprint is kept to its low 32 bits (all that
    /// [`crate::store::buckets::Fingerprints`] gives).
    fn first(&mut self, id: EventId, (seq, kind, bucket): Seen) -> Option<Seen> {
        let (first, second) = self.hashes(&id);
        let mut i = self.find((first, second));
        if let Some(known) = self.held(i) {
            return Some(known);
        }
        if (self.len + 1) * LOAD.1 > self.slots.len() * LOAD.0 {
            self.grow();
            i = self.find((first, second));
        }
        let seq = seq.0.min((1 << SEQ_BITS) - 1);
        self.slots[i] = [first, second << 32 | (bucket & 0xffff_ffff), tag(kind) << SEQ_BITS | seq];
        self.len += 1;
        None
    }

    /// Doubles the table (only when the head understated the log).
    fn grow(&mut self) {
        let doubled = vec![[0; 3]; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        for s in old.into_iter().filter(|s| s[TAGGED] != 0) {
            let i = self.find((s[0], s[CHECK] >> 32));
            self.slots[i] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_as_a_map_keeping_the_first_value_and_grows() {
        // Capacity far too small on purpose: growing must keep everything.
        let mut t = SeenIds::with_capacity(3, Partition::first(1, 1));
        let mut reference: HashMap<EventId, Seen> = HashMap::new();
        let kinds = [EventKind::Article, EventKind::Comment, EventKind::Capture, EventKind::Merge];
        for i in 0..5000u64 {
            // Every third id repeats an earlier one.
            let n = if i % 3 == 2 { i / 2 } else { i };
            let id = EventId(*blake3::hash(&n.to_le_bytes()).as_bytes());
            let seen =
                (Seq(i + 1), kinds[(n % 4) as usize], n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & 0xffff_ffff);
            let want = reference.get(&id).copied();
            assert_eq!(t.first(id, seen), want);
            reference.entry(id).or_insert(seen);
        }
        assert_eq!(t.len(), reference.len());
        for (id, seen) in &reference {
            assert_eq!(t.get(id), Some(*seen));
        }
        assert_eq!(t.get(&EventId([7; 32])), None);
    }

    #[test]
    fn each_id_is_kept_by_exactly_one_pass() {
        let first = Partition::first(10, 3);
        assert!(first.is_first());
        let rest = first.rest(7, 3);
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().all(|p| !p.is_first()));
        let parts: Vec<Partition> = std::iter::once(first).chain(rest).collect();
        let mut tables: Vec<SeenIds> = parts.iter().map(|p| SeenIds::with_capacity(4, p.clone())).collect();
        let mut per_pass = [0usize; 4];
        for i in 0..1000u64 {
            let id = EventId(*blake3::hash(&i.to_le_bytes()).as_bytes());
            let holders: Vec<usize> = (0..4).filter(|p| parts[*p].holds(&id)).collect();
            assert_eq!(holders.len(), 1, "id {i}");
            per_pass[holders[0]] += 1;
            for (p, t) in tables.iter_mut().enumerate() {
                let seen = (Seq(i + 1), EventKind::Comment, 0);
                let want = if p == holders[0] { Known::Unseen } else { Known::Elsewhere };
                assert_eq!(t.record(id, seen), want);
                let want = if p == holders[0] { Known::Seen(seen) } else { Known::Elsewhere };
                assert_eq!(t.known(&id), want);
            }
        }
        assert!(per_pass.iter().all(|n| *n > 150), "the passes share the ids: {per_pass:?}");
        // Looked up as one batch, each id as on its own: recorded, held by
        // another pass, or never read.
        let ids: Vec<EventId> =
            (0..1200u64).map(|i| EventId(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
        for t in &tables {
            let one_by_one: Vec<Known> = ids.iter().map(|id| t.known(id)).collect();
            assert_eq!(t.known_all(ids.iter().copied()), one_by_one);
            assert!(one_by_one.contains(&Known::Unseen) && one_by_one.contains(&Known::Elsewhere));
        }
        // One pass when the head says the ids fit; none after it.
        assert!(Partition::first(3, 3).rest(0, 3).is_empty());
        assert!(Partition::first(0, 3).rest(5, 3).is_empty());
        // A head that overstates the log makes a narrow first pass, and
        // the passes after it follow the ids actually read.
        let narrow = Partition::first(u64::MAX, 1);
        assert_eq!(narrow.rest(10, 4).len(), 3);
    }

    #[test]
    fn a_table_sized_for_n_ids_holds_n_without_growing() {
        for n in [0usize, 1, 2, 3, 11, 12, 13, 1000, 1001] {
            let mut t = SeenIds::with_capacity(n, Partition::first(1, 1));
            let slots = t.slots.len();
            for i in 0..n as u64 {
                t.first(
                    EventId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                    (Seq(i + 1), EventKind::Comment, 0),
                );
            }
            assert_eq!((t.len(), t.slots.len()), (n, slots), "{n} ids");
        }
    }

    #[test]
    fn a_seq_past_the_packing_limit_is_clamped_not_mistaken_for_empty() {
        let mut t = SeenIds::with_capacity(1, Partition::first(1, 1));
        let id = EventId([1; 32]);
        t.first(id, (Seq(u64::MAX), EventKind::Comment, 5));
        assert_eq!(t.get(&id), Some((Seq((1 << SEQ_BITS) - 1), EventKind::Comment, 5)));
    }
}
