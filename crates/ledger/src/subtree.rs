//! Proofs and roots from perfect-subtree hashes, so that a store which keeps the hash of every
//! complete, aligned subtree serves any proof with O(log n) reads instead of reading every leaf.
//!
//! Why this works: every hash in an RFC 9162 inclusion or consistency proof, and every tree
//! root, is the Merkle Tree Hash of a range `D[a:b]` whose start is a multiple of the largest
//! power of two not above its length (the RFC splits trees at powers of two, so every range it
//! recurses into is aligned like that). Such a range is the concatenation of at most 64
//! *perfect subtrees*, one per set bit of its length, largest first, each of size `2^k` and
//! starting at a multiple of `2^k`; its hash is their hashes folded from the right, exactly as
//! [`CompactRange::root`](crate::merkle::CompactRange::root) folds the right edge of a tree.
//! A perfect subtree is named by a [`SubtreeKey`] (`level`, `index`): leaves
//! `index·2^level .. (index+1)·2^level`; level 0 is a leaf.
//!
//! The functions here are pure and synchronous; an asynchronous store first asks which keys a
//! proof needs ([`inclusion_keys`], [`consistency_keys`]), fetches their hashes in one query,
//! and then builds the proof from a map of them (a `HashMap<SubtreeKey, Hash>` is a
//! [`SubtreeHashSource`], and so is any closure `Fn(SubtreeKey) -> Result<Hash, SourceError>`).
//! The results are byte-identical to the all-leaves functions of [`crate::merkle`] (property
//! tested in `tests/subtree_proofs.rs`).

use std::collections::HashMap;
use std::ops::Range;

use crate::merkle::{
    Hash, ProofError, SourceError, consistency_proof_ranges, empty_root, inclusion_proof_ranges,
    node_hash, root_of_leaf_hashes,
};

/// A perfect subtree of the log's Merkle tree: the `2^level` leaves starting at leaf
/// `index·2^level`. Level 0 is one leaf (its hash is the leaf hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubtreeKey {
    pub level: u8,
    pub index: u64,
}

impl SubtreeKey {
    /// Leaf `index` as a subtree of level 0.
    #[must_use]
    pub fn leaf(index: u64) -> SubtreeKey {
        SubtreeKey { level: 0, index }
    }

    /// The leaves the subtree covers. Saturates at `u64::MAX` for keys outside any tree a
    /// `u64` can count (they are never asked for by the functions here).
    #[must_use]
    pub fn leaves(&self) -> Range<u64> {
        let width = 1u64.checked_shl(u32::from(self.level)).unwrap_or(u64::MAX);
        let start = self.index.saturating_mul(width);
        start..start.saturating_add(width)
    }
}

/// Where perfect-subtree hashes come from: the store's subtree table (fetched beforehand into
/// a map), or, in tests, the leaves themselves.
pub trait SubtreeHashSource {
    /// The hash of the perfect subtree `key` (the leaf hash for level 0).
    fn subtree_hash(&self, key: SubtreeKey) -> Result<Hash, SourceError>;
}

impl<F> SubtreeHashSource for F
where
    F: Fn(SubtreeKey) -> Result<Hash, SourceError>,
{
    fn subtree_hash(&self, key: SubtreeKey) -> Result<Hash, SourceError> {
        self(key)
    }
}

impl SubtreeHashSource for HashMap<SubtreeKey, Hash> {
    fn subtree_hash(&self, key: SubtreeKey) -> Result<Hash, SourceError> {
        self.get(&key).copied().ok_or_else(|| {
            format!(
                "no hash for the subtree at level {} index {}",
                key.level, key.index
            )
            .into()
        })
    }
}

/// Leaf hashes in memory, hashing each asked subtree from its leaves: the reference the cached
/// path is tested against (O(size of the subtree) per call).
impl SubtreeHashSource for [Hash] {
    fn subtree_hash(&self, key: SubtreeKey) -> Result<Hash, SourceError> {
        let leaves = key.leaves();
        let slice = usize::try_from(leaves.start)
            .ok()
            .zip(usize::try_from(leaves.end).ok())
            .and_then(|(start, end)| self.get(start..end))
            .ok_or_else(|| {
                format!(
                    "subtree at level {} index {} is beyond the {} known leaves",
                    key.level,
                    key.index,
                    self.len()
                )
            })?;
        Ok(root_of_leaf_hashes(slice))
    }
}

/// The perfect subtrees that tile `range`, left to right (largest first). Fails for an empty
/// range and for a range whose start is not a multiple of its largest piece, whose Merkle Tree
/// Hash is not a fold of aligned subtrees (no RFC 9162 proof or root asks for one).
pub fn perfect_subtrees(range: Range<u64>) -> Result<Vec<SubtreeKey>, ProofError> {
    let unaligned = || ProofError::UnalignedRange {
        start: range.start,
        end: range.end,
    };
    let len = range.end.saturating_sub(range.start);
    if len == 0 {
        return Err(unaligned());
    }
    let top = 63 - len.leading_zeros();
    if range.start & ((1u64 << top) - 1) != 0 {
        return Err(unaligned());
    }
    let mut keys = Vec::with_capacity(len.count_ones() as usize);
    let mut start = range.start;
    for level in (0..=top).rev() {
        let width = 1u64 << level;
        if len & width != 0 {
            keys.push(SubtreeKey {
                // `level` is at most 63.
                level: level as u8,
                index: start >> level,
            });
            start += width;
        }
    }
    Ok(keys)
}

/// The perfect subtrees of the first `size` leaves: one per set bit of `size`, the same nodes
/// a [`CompactRange`](crate::merkle::CompactRange) of that size holds.
pub fn tree_subtrees(size: u64) -> Vec<SubtreeKey> {
    if size == 0 {
        return Vec::new();
    }
    // A range starting at 0 is always aligned.
    perfect_subtrees(0..size).unwrap_or_default()
}

/// The perfect subtrees that leaf `leaf_index` is merged with when it is appended, lowest
/// first: one per trailing one bit of `leaf_index` (level 0 is the leaf before it). Empty for
/// an even index, which completes nothing.
#[must_use]
pub fn left_siblings(leaf_index: u64) -> Vec<SubtreeKey> {
    (0..leaf_index.trailing_ones())
        .map(|level| SubtreeKey {
            // At most 64 levels.
            level: level as u8,
            index: (leaf_index >> level) - 1,
        })
        .collect()
}

/// The perfect subtrees (level >= 1) that appending leaf `leaf_index` with hash `leaf`
/// completes, lowest first, from the hashes of its [`left_siblings`]: what a store writes
/// beside the entry, without reading the rest of the tree. The same rows as
/// [`CompactRange::append_completing`](crate::merkle::CompactRange::append_completing).
pub fn completed_subtrees<S: SubtreeHashSource + ?Sized>(
    source: &S,
    leaf_index: u64,
    leaf: Hash,
) -> Result<Vec<(SubtreeKey, Hash)>, ProofError> {
    let mut carry = leaf;
    let mut completed = Vec::new();
    for sibling in left_siblings(leaf_index) {
        let left = source.subtree_hash(sibling).map_err(ProofError::Source)?;
        carry = node_hash(&left, &carry);
        completed.push((
            SubtreeKey {
                level: sibling.level + 1,
                index: sibling.index >> 1,
            },
            carry,
        ));
    }
    Ok(completed)
}

/// `MTH(D[range])` from the hashes of its perfect subtrees (see [`perfect_subtrees`]).
pub fn range_hash<S: SubtreeHashSource + ?Sized>(
    source: &S,
    range: Range<u64>,
) -> Result<Hash, ProofError> {
    let keys = perfect_subtrees(range)?;
    let mut hashes = keys.iter().rev().map(|key| source.subtree_hash(*key));
    let mut acc = match hashes.next() {
        Some(last) => last.map_err(ProofError::Source)?,
        None => return Ok(empty_root()),
    };
    for left in hashes {
        acc = node_hash(&left.map_err(ProofError::Source)?, &acc);
    }
    Ok(acc)
}

/// The Merkle Tree Hash of the first `size` leaves (the empty root for 0).
pub fn root<S: SubtreeHashSource + ?Sized>(source: &S, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(source, 0..size)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `tree_size` leaves,
/// identical to [`crate::merkle::inclusion_proof`] over the same leaves.
pub fn inclusion_proof<S: SubtreeHashSource + ?Sized>(
    source: &S,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_ranges(index, tree_size)?
        .into_iter()
        .map(|range| range_hash(source, range))
        .collect()
}

/// The consistency proof from tree size `first` to `second`, identical to
/// [`crate::merkle::consistency_proof`] over the same leaves.
pub fn consistency_proof<S: SubtreeHashSource + ?Sized>(
    source: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_ranges(first, second)?
        .into_iter()
        .map(|range| range_hash(source, range))
        .collect()
}

/// Every subtree whose hash [`inclusion_proof`] and [`root`] need for leaf `index` in a tree of
/// `tree_size` leaves, sorted and without duplicates: at most about 3·log2(`tree_size`) keys.
pub fn inclusion_keys(index: u64, tree_size: u64) -> Result<Vec<SubtreeKey>, ProofError> {
    let mut keys = tree_subtrees(tree_size);
    for range in inclusion_proof_ranges(index, tree_size)? {
        keys.extend(perfect_subtrees(range)?);
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Every subtree whose hash [`consistency_proof`] and the [`root`]s of both sizes need,
/// sorted and without duplicates.
pub fn consistency_keys(first: u64, second: u64) -> Result<Vec<SubtreeKey>, ProofError> {
    let mut keys = tree_subtrees(first);
    keys.extend(tree_subtrees(second));
    for range in consistency_proof_ranges(first, second)? {
        keys.extend(perfect_subtrees(range)?);
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn perfect_subtrees_tile_aligned_ranges() {
        assert_eq!(
            perfect_subtrees(0..13).unwrap(),
            vec![
                SubtreeKey { level: 3, index: 0 },
                SubtreeKey { level: 2, index: 2 },
                SubtreeKey {
                    level: 0,
                    index: 12
                },
            ]
        );
        assert_eq!(
            perfect_subtrees(8..11).unwrap(),
            vec![SubtreeKey { level: 1, index: 4 }, SubtreeKey::leaf(10)]
        );
        assert_eq!(perfect_subtrees(5..6).unwrap(), vec![SubtreeKey::leaf(5)]);
        // Covered leaves are exactly the range.
        for key in perfect_subtrees(16..29).unwrap() {
            assert!(
                key.leaves().start >= 16 && key.leaves().end <= 29,
                "{key:?}"
            );
        }
    }

    #[test]
    fn unaligned_and_empty_ranges_are_refused() {
        assert!(matches!(
            perfect_subtrees(1..3),
            Err(ProofError::UnalignedRange { start: 1, end: 3 })
        ));
        assert!(perfect_subtrees(4..4).is_err());
        let (start, end) = (u64::MAX, 0);
        assert!(perfect_subtrees(start..end).is_err());
    }

    #[test]
    fn range_hash_is_the_merkle_tree_hash_of_the_range() {
        let all = leaves(40);
        for size in 1..=40u64 {
            assert_eq!(
                root(all.as_slice(), size).unwrap(),
                root_of_leaf_hashes(&all[..size as usize]),
                "size {size}"
            );
        }
        assert_eq!(root(all.as_slice(), 0).unwrap(), empty_root());
        assert_eq!(
            range_hash(all.as_slice(), 24..29).unwrap(),
            root_of_leaf_hashes(&all[24..29])
        );
    }

    #[test]
    fn completed_subtrees_match_the_compact_range() {
        let all = leaves(70);
        let mut range = crate::merkle::CompactRange::new();
        for (i, leaf) in all.iter().enumerate() {
            let i = i as u64;
            let mut expected = Vec::new();
            range.append_completing(*leaf, |key, hash| expected.push((key, hash)));
            assert_eq!(
                completed_subtrees(all.as_slice(), i, *leaf).unwrap(),
                expected,
                "leaf {i}"
            );
            assert_eq!(left_siblings(i).len(), expected.len());
        }
        assert_eq!(
            left_siblings(11),
            vec![SubtreeKey::leaf(10), SubtreeKey { level: 1, index: 4 }]
        );
        assert!(left_siblings(12).is_empty());
    }

    #[test]
    fn closures_and_maps_are_sources() {
        let all = leaves(9);
        let closure = |key: SubtreeKey| all.as_slice().subtree_hash(key);
        let map: HashMap<SubtreeKey, Hash> = inclusion_keys(4, 9)
            .unwrap()
            .into_iter()
            .map(|k| (k, all.as_slice().subtree_hash(k).unwrap()))
            .collect();
        assert_eq!(
            inclusion_proof(&closure, 4, 9).unwrap(),
            inclusion_proof(&map, 4, 9).unwrap()
        );
        // A key the map lacks is a source error, carried through.
        let err = inclusion_proof(&map, 0, 9).unwrap_err();
        assert!(matches!(err, ProofError::Source(_)), "{err}");
    }
}
