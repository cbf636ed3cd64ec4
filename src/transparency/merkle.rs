//! The RFC 9162 (RFC 6962) Merkle tree with SHA-256: leaf and node hashes,
//! the tree hash of any prefix, inclusion and consistency proofs, and their
//! checks, written from RFC 9162 sections 2.1.1 to 2.1.4.
//!
//! Proofs are built over a [`Subtrees`] source that gives the hash of any
//! complete, aligned subtree (`2^level` leaves starting at a multiple of
//! `2^level`); every hash the RFC's recursive definitions ask for is such a
//! subtree or is folded from them. [`Frontier`] builds the tree leaf by leaf
//! and emits the hashes an archive stores ([`super::file`]): the hash of
//! every complete subtree at level [`TILE_LEVEL`] and above, in the order
//! of Go's `tlog` (each tile's hash, then the parents it completes).

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Subtrees below this level (64 leaves) are not stored: they are hashed
/// again from the log's entries when a proof needs them.
pub const TILE_LEVEL: u32 = 6;

/// Leaves in one tile (a complete subtree at [`TILE_LEVEL`]).
pub const TILE: u64 = 1 << TILE_LEVEL;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The hash of `2^level` consecutive leaf hashes (`leaves.len()` a power
/// of two).
pub fn subtree_of(leaves: &[Hash]) -> Hash {
    debug_assert!(leaves.len().is_power_of_two());
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// Where hashes of complete subtrees come from.
pub trait Subtrees {
    /// The hash of the complete subtree of `2^level` leaves that starts at
    /// leaf `index << level`.
    fn complete(&mut self, level: u32, index: u64) -> crate::error::Result<Hash>;
}

/// `MTH(D[a:b])` for a range the RFC's recursion reaches (its start a
/// multiple of the largest power of two not above its length).
fn range<S: Subtrees + ?Sized>(s: &mut S, a: u64, b: u64) -> crate::error::Result<Hash> {
    let n = b - a;
    if n.is_power_of_two() && a.is_multiple_of(n) {
        return s.complete(n.trailing_zeros(), a >> n.trailing_zeros());
    }
    let k = split_point(n);
    let left = range(s, a, a + k)?;
    let right = range(s, a + k, b)?;
    Ok(node_hash(&left, &right))
}

/// The tree hash of the first `n` leaves.
pub fn root<S: Subtrees + ?Sized>(s: &mut S, n: u64) -> crate::error::Result<Hash> {
    if n == 0 {
        return Ok(empty_root());
    }
    range(s, 0, n)
}

/// The inclusion proof of leaf `index` in the tree of `n` leaves (RFC 9162
/// 2.1.3.1, `PATH(m, D[n])`), `index < n`.
pub fn inclusion_proof<S: Subtrees + ?Sized>(
    s: &mut S,
    index: u64,
    n: u64,
) -> crate::error::Result<Vec<Hash>> {
    fn path<S: Subtrees + ?Sized>(
        s: &mut S,
        m: u64,
        a: u64,
        b: u64,
        out: &mut Vec<Hash>,
    ) -> crate::error::Result<()> {
        let n = b - a;
        if n <= 1 {
            return Ok(());
        }
        let k = split_point(n);
        if m < k {
            path(s, m, a, a + k, out)?;
            out.push(range(s, a + k, b)?);
        } else {
            path(s, m - k, a + k, b, out)?;
            out.push(range(s, a, a + k)?);
        }
        Ok(())
    }
    if index >= n {
        return Err(crate::error::Error::Usage(format!("leaf {index} is not in a tree of {n} leaves")));
    }
    let mut out = Vec::new();
    path(s, index, 0, n, &mut out)?;
    Ok(out)
}

/// The consistency proof between the trees of `m` and `n` leaves (RFC 9162
/// 2.1.4.1, `PROOF(m, D[n])`), `0 < m <= n`.
pub fn consistency_proof<S: Subtrees + ?Sized>(s: &mut S, m: u64, n: u64) -> crate::error::Result<Vec<Hash>> {
    fn subproof<S: Subtrees + ?Sized>(
        s: &mut S,
        m: u64,
        a: u64,
        b: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> crate::error::Result<()> {
        let n = b - a;
        if m == n {
            if !whole {
                out.push(range(s, a, b)?);
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            subproof(s, m, a, a + k, whole, out)?;
            out.push(range(s, a + k, b)?);
        } else {
            subproof(s, m - k, a + k, b, false, out)?;
            out.push(range(s, a, a + k)?);
        }
        Ok(())
    }
    if m == 0 || m > n {
        return Err(crate::error::Error::Usage(format!(
            "no consistency proof from a tree of {m} leaves to one of {n}: the old size must be 1 to {n}"
        )));
    }
    let mut out = Vec::new();
    subproof(s, m, 0, n, true, &mut out)?;
    Ok(out)
}

/// Checks an inclusion proof (RFC 9162 2.1.3.2): that the leaf with hash
/// `leaf` is leaf `index` of the tree of `n` leaves whose hash is `root`.
/// The error says why not.
pub fn check_inclusion(leaf: &Hash, index: u64, n: u64, path: &[Hash], root: &Hash) -> Result<(), String> {
    if index >= n {
        return Err(format!("leaf index {index} is not below the tree size {n}"));
    }
    let (mut fnode, mut snode) = (index, n - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return Err(format!("the inclusion path is too long for leaf {index} of a tree of {n}"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(format!("the inclusion path is too short for leaf {index} of a tree of {n}"));
    }
    if &r != root {
        return Err("the inclusion path does not lead to the root".into());
    }
    Ok(())
}

/// Checks a consistency proof (RFC 9162 2.1.4.2): that the tree of `m`
/// leaves with hash `old` is a prefix of the tree of `n` leaves with hash
/// `new`. The error says why not.
pub fn check_consistency(m: u64, n: u64, old: &Hash, new: &Hash, path: &[Hash]) -> Result<(), String> {
    if m == 0 {
        return Err(
            "the old tree size is 0: an empty tree is a prefix of every tree, there is nothing to prove"
                .into(),
        );
    }
    if m > n {
        return Err(format!("the old tree size {m} is larger than the new tree size {n}"));
    }
    if m == n {
        if !path.is_empty() {
            return Err("the consistency path must be empty between trees of the same size".into());
        }
        if old != new {
            return Err("two trees of the same size have different roots".into());
        }
        return Ok(());
    }
    if path.is_empty() {
        return Err("the consistency path is empty".into());
    }
    // Step 2: when m is a power of two, the old root is the path's first
    // element.
    let mut items: Vec<&Hash> = Vec::with_capacity(path.len() + 1);
    if m.is_power_of_two() {
        items.push(old);
    }
    items.extend(path.iter());
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = *items[0];
    let mut sr = *items[0];
    for c in &items[1..] {
        if snode == 0 {
            return Err(format!("the consistency path is too long for sizes {m} and {n}"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(format!("the consistency path is too short for sizes {m} and {n}"));
    }
    if &fr != old {
        return Err("the consistency path does not lead to the old root".into());
    }
    if &sr != new {
        return Err("the consistency path does not lead to the new root".into());
    }
    Ok(())
}

/// The tlog position of the stored hash of the complete subtree at `level`
/// (counted from [`TILE_LEVEL`]) and `index`: tiles are the leaves of the
/// stored tree, and each tile's hash is followed by the parents it
/// completes (Go's `tlog.StoredHashIndex`).
pub fn stored_index(level: u32, index: u64) -> u64 {
    let mut n = index;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut i = 0;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + u64::from(level)
}

/// How many hashes are stored for `tiles` complete tiles.
pub fn stored_count(tiles: u64) -> u64 {
    2 * tiles - u64::from(tiles.count_ones())
}

/// The most complete tiles whose stored hashes fit in `count` hashes.
pub fn tiles_within(count: u64) -> u64 {
    // stored_count is increasing: m <= count always fits the search.
    let (mut lo, mut hi) = (0u64, count);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if stored_count(mid) <= count {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The right edge of a tree being built leaf by leaf: the complete
/// subtrees at [`TILE_LEVEL`] and above that no later leaf will extend,
/// and the leaves of the tile not yet complete. It emits each stored hash
/// once, in the stored order.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    /// (level, hash) of the complete subtrees above the tiles, largest
    /// first.
    stack: Vec<(u32, Hash)>,
    /// Leaf hashes of the incomplete tile.
    tile: Vec<Hash>,
    /// Leaves so far.
    leaves: u64,
}

impl Frontier {
    /// A frontier after `tiles` complete tiles whose stored hashes `get`
    /// reads (by stored position), with no leaves of the next tile yet.
    pub fn resume(
        tiles: u64,
        mut get: impl FnMut(u64) -> crate::error::Result<Hash>,
    ) -> crate::error::Result<Frontier> {
        let mut stack = Vec::new();
        let mut start = 0u64;
        for bit in (0..64u32).rev() {
            if tiles & (1 << bit) != 0 {
                let index = start >> bit;
                stack.push((TILE_LEVEL + bit, get(stored_index(bit, index))?));
                start += 1 << bit;
            }
        }
        Ok(Frontier { stack, tile: Vec::new(), leaves: tiles * TILE })
    }

    /// Leaves so far.
    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// Adds a leaf hash; when it completes a tile, the tile's hash and the
    /// parents it completes are appended to `stored`.
    pub fn push(&mut self, leaf: Hash, stored: &mut Vec<Hash>) {
        self.tile.push(leaf);
        self.leaves += 1;
        if self.tile.len() as u64 == TILE {
            let h = subtree_of(&self.tile);
            self.tile.clear();
            stored.push(h);
            let mut top = (TILE_LEVEL, h);
            while let Some(&(level, left)) = self.stack.last() {
                if level != top.0 {
                    break;
                }
                self.stack.pop();
                let p = node_hash(&left, &top.1);
                stored.push(p);
                top = (level + 1, p);
            }
            self.stack.push(top);
        }
    }

    /// Sets the leaves of the incomplete tile (after [`Frontier::resume`]).
    pub fn set_tile(&mut self, leaves: Vec<Hash>) {
        debug_assert!((leaves.len() as u64) < TILE && self.tile.is_empty());
        self.leaves += leaves.len() as u64;
        self.tile = leaves;
    }

    /// The tree hash of every leaf so far.
    pub fn root(&self) -> Hash {
        let mut parts: Vec<Hash> = self.stack.iter().map(|(_, h)| *h).collect();
        // The incomplete tile's own decomposition into complete subtrees.
        let mut at = 0usize;
        for bit in (0..TILE_LEVEL).rev() {
            let len = 1usize << bit;
            if self.tile.len() & len != 0 {
                parts.push(subtree_of(&self.tile[at..at + len]));
                at += len;
            }
        }
        let Some(mut h) = parts.pop() else { return empty_root() };
        while let Some(left) = parts.pop() {
            h = node_hash(&left, &h);
        }
        h
    }
}

/// Complete subtrees of a list of leaf hashes held in memory (tests, small
/// trees).
pub struct Leaves<'a>(pub &'a [Hash]);

impl Subtrees for Leaves<'_> {
    fn complete(&mut self, level: u32, index: u64) -> crate::error::Result<Hash> {
        let start = (index << level) as usize;
        let end = start + (1usize << level);
        match self.0.get(start..end) {
            Some(slice) => Ok(subtree_of(slice)),
            None => Err(crate::error::Error::Internal(format!("subtree {level}/{index} is past the leaves"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::to_hex;
    use proptest::prelude::*;

    /// The leaves of the RFC 6962 test tree (certificate-transparency's
    /// merkle_tree_test and transparency-dev/merkle's testdata).
    fn rfc_leaves() -> Vec<Hash> {
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        data.iter().map(|d| leaf_hash(d)).collect()
    }

    #[test]
    fn rfc6962_roots() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = rfc_leaves();
        assert_eq!(to_hex(&empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        for (i, want) in roots.iter().enumerate() {
            assert_eq!(to_hex(&root(&mut Leaves(&leaves), i as u64 + 1).unwrap()), *want, "size {}", i + 1);
        }
    }

    #[test]
    fn rfc6962_proofs() {
        let leaves = rfc_leaves();
        let hex = |v: Vec<Hash>| v.iter().map(|h| to_hex(h)).collect::<Vec<_>>();
        // transparency-dev/merkle testdata: inclusion of leaf 0 in 8, leaf 5
        // in 8, and consistency 1 -> 8, 6 -> 8, 2 -> 5.
        assert_eq!(
            hex(inclusion_proof(&mut Leaves(&leaves), 0, 8).unwrap()),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            hex(inclusion_proof(&mut Leaves(&leaves), 5, 8).unwrap()),
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            hex(consistency_proof(&mut Leaves(&leaves), 1, 8).unwrap()),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            hex(consistency_proof(&mut Leaves(&leaves), 6, 8).unwrap()),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            hex(consistency_proof(&mut Leaves(&leaves), 2, 5).unwrap()),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
            ]
        );
    }

    /// `MTH` straight from RFC 9162's recursive definition, over leaf data.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    fn hashes(n: usize) -> Vec<Hash> {
        (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn stored_positions_follow_tlog() {
        // tlog's own table (tlog_test.go): StoredHashIndex(0, n) for the
        // first leaves, and the count after n leaves.
        let want = [0u64, 1, 3, 4, 7, 8, 10, 11, 15];
        for (n, w) in want.iter().enumerate() {
            assert_eq!(stored_index(0, n as u64), *w);
        }
        assert_eq!(stored_index(1, 0), 2);
        assert_eq!(stored_index(2, 0), 6);
        for m in 0..300u64 {
            assert_eq!(tiles_within(stored_count(m)), m);
            assert_eq!(stored_count(m + 1) - 1, stored_index(0, m) + u64::from((m + 1).trailing_zeros()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn frontier_stores_every_complete_subtree_and_the_root(n in 0usize..700) {
            let leaves = hashes(n);
            let mut f = Frontier::default();
            let mut stored = Vec::new();
            for (i, l) in leaves.iter().enumerate() {
                f.push(*l, &mut stored);
                if i % 61 == 0 || i + 1 == n {
                    prop_assert_eq!(f.root(), naive_root(&leaves[..=i]));
                }
            }
            let tiles = n as u64 / TILE;
            prop_assert_eq!(stored.len() as u64, stored_count(tiles));
            for level in 0..8u32 {
                for index in 0..(tiles >> level) {
                    let at = stored_index(level, index) as usize;
                    let want = Leaves(&leaves).complete(level + TILE_LEVEL, index).unwrap();
                    prop_assert_eq!(stored[at], want);
                }
            }
            // Resumed from the stored hashes, it goes on the same way.
            let mut g = Frontier::resume(tiles, |i| Ok(stored[i as usize])).unwrap();
            g.set_tile(leaves[(tiles * TILE) as usize..].to_vec());
            prop_assert_eq!(g.root(), f.root());
            let mut more = stored.clone();
            for i in 0..70u64 {
                let l = leaf_hash(&(1_000_000 + i).to_be_bytes());
                f.push(l, &mut stored);
                g.push(l, &mut more);
            }
            prop_assert_eq!(g.root(), f.root());
            prop_assert_eq!(more, stored);
        }

        #[test]
        fn proofs_check_and_altered_ones_do_not(n in 1u64..300, i in 0u64..300, m in 1u64..300, flip in 0usize..64) {
            let leaves = hashes(n as usize);
            let i = i % n;
            let m = 1 + (m - 1) % n;
            let root_n = naive_root(&leaves);
            let path = inclusion_proof(&mut Leaves(&leaves), i, n).unwrap();
            prop_assert_eq!(check_inclusion(&leaves[i as usize], i, n, &path, &root_n), Ok(()));
            if !path.is_empty() {
                let mut bad = path.clone();
                let at = flip % bad.len();
                bad[at][flip % 32] ^= 1;
                prop_assert!(check_inclusion(&leaves[i as usize], i, n, &bad, &root_n).is_err());
                prop_assert!(check_inclusion(&leaves[i as usize], i, n, &path[..path.len() - 1], &root_n).is_err());
            }
            let mut long = path.clone();
            long.push(root_n);
            prop_assert!(check_inclusion(&leaves[i as usize], i, n, &long, &root_n).is_err());
            // (A changed tree size alone may still check: the size is bound
            // by the signed checkpoint, which names both.)
            if n > 1 {
                prop_assert!(check_inclusion(&leaves[i as usize], (i + 1) % n, n, &path, &root_n).is_err());
            }

            let root_m = naive_root(&leaves[..m as usize]);
            let proof = consistency_proof(&mut Leaves(&leaves), m, n).unwrap();
            prop_assert_eq!(check_consistency(m, n, &root_m, &root_n, &proof), Ok(()));
            prop_assert!(check_consistency(n, m, &root_n, &root_m, &proof).is_err() || m == n);
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let at = flip % bad.len();
                bad[at][flip % 32] ^= 1;
                prop_assert!(check_consistency(m, n, &root_m, &root_n, &bad).is_err());
                prop_assert!(check_consistency(m, n, &root_m, &root_n, &proof[..proof.len() - 1]).is_err());
            }
            let mut long = proof.clone();
            long.push(root_m);
            prop_assert!(check_consistency(m, n, &root_m, &root_n, &long).is_err());
            let mut other = root_m;
            other[0] ^= 1;
            prop_assert!(check_consistency(m, n, &other, &root_n, &proof).is_err());
            prop_assert!(check_consistency(m, n, &root_m, &other, &proof).is_err());
        }
    }
}
