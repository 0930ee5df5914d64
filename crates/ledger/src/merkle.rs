//! RFC 9162 (Certificate Transparency v2) Merkle tree: hashing, the compact range that keeps
//! the root in O(log n) state while entries are appended, proof construction over leaf hashes
//! served by any storage, and the proof verifiers of RFC 9162 §2.1.3.2 and §2.1.4.2.
//!
//! The audit log is only tamper-evident if every party computes the same tree, so this module
//! follows the RFC to the letter (including its definition of the Merkle Tree Hash for sizes
//! that are not a power of two) and is tested against the RFC 6962/9162 reference vectors.
//! It is written here rather than taken from a crate because the store must serve leaf hashes
//! (and, when it caches them, interior subtree roots) from its own tables: proof construction
//! therefore works over the small [`LeafHashSource`] trait instead of an in-memory tree.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::subtree::SubtreeKey;

/// Domain-separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// A SHA-256 output: a leaf hash, a node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero value, used as the `prev` link of the first audit entry.
    pub const ZERO: Hash = Hash([0; 32]);

    /// The raw 32 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hexadecimal characters (either case).
    pub fn from_hex(text: &str) -> Result<Hash, HashParseError> {
        Hash::from_hex_bytes(text.as_bytes())
    }

    /// Parses 64 hexadecimal ASCII bytes; the verifier reads hashes straight out of a line.
    pub fn from_hex_bytes(text: &[u8]) -> Result<Hash, HashParseError> {
        // Table-driven and branch-free per byte: the verifier decodes one of these per entry,
        // and a generic hex decoder cost a quarter of verification time.
        const INVALID: u8 = 0xff;
        const TABLE: [u8; 256] = {
            let mut t = [INVALID; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                t[b'A' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        };
        let Ok(pairs) = <&[u8; 64]>::try_from(text) else {
            return Err(HashParseError);
        };
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (byte, pair) in out.iter_mut().zip(pairs.chunks_exact(2)) {
            let hi = TABLE[usize::from(pair[0])];
            let lo = TABLE[usize::from(pair[1])];
            bad |= hi | lo;
            *byte = (hi << 4) | (lo & 0x0f);
        }
        if bad & 0xf0 != 0 {
            return Err(HashParseError);
        }
        Ok(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// A hash that is not 64 hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 hash: expected 64 hexadecimal characters")]
pub struct HashParseError;

/// Leaf hash of RFC 9162 §2.1.1: `SHA-256(0x00 ‖ entry)`.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

/// Interior node hash of RFC 9162 §2.1.1: `SHA-256(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 65];
    block[0] = NODE_PREFIX;
    block[1..33].copy_from_slice(&left.0);
    block[33..].copy_from_slice(&right.0);
    Hash(Sha256::digest(block).into())
}

/// Root of the empty tree: `SHA-256()` of nothing (RFC 9162 §2.1.1).
#[must_use]
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The Merkle Tree Hash of a list of leaf hashes, straight from the RFC's recursive
/// definition. Kept as the reference the incremental structures are tested against.
#[must_use]
pub fn root_of_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &root_of_leaf_hashes(&leaves[..k]),
                &root_of_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`): where RFC 9162 splits a tree.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a Merkle tree: the roots of the perfect subtrees that make up its leaves,
/// largest first (one per set bit of the size). This is all the state needed to keep appending
/// leaves and to compute the current root, so the log never holds the whole tree in memory.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompactRange {
    size: u64,
    /// Perfect-subtree roots, left to right; `hashes.len() == size.count_ones()`.
    hashes: Vec<Hash>,
}

impl fmt::Debug for CompactRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactRange")
            .field("size", &self.size)
            .field("hashes", &self.hashes.len())
            .finish()
    }
}

impl CompactRange {
    /// The range of an empty tree.
    #[must_use]
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// Rebuilds a range from its persisted parts, checking that they fit together.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<CompactRange, ProofError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(ProofError::CompactRangeShape {
                size,
                hashes: hashes.len(),
            });
        }
        Ok(CompactRange { size, hashes })
    }

    /// Builds the range of the first `size` leaves of `source`, asking it for one subtree root
    /// per set bit of `size` (cheap when the source caches interior nodes).
    pub fn from_source<S: LeafHashSource + ?Sized>(
        source: &S,
        size: u64,
    ) -> Result<CompactRange, ProofError> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for bit in (0..64).rev() {
            let width = 1u64 << bit;
            if size & width != 0 {
                hashes.push(subtree(source, start, start + width)?);
                start += width;
            }
        }
        Ok(CompactRange { size, hashes })
    }

    /// Number of leaves covered.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest (leftmost) first.
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash. Amortised one node hash per leaf: merging happens once for each
    /// trailing one bit of the old size, exactly where two perfect subtrees become one.
    pub fn append(&mut self, leaf: Hash) {
        self.append_completing(leaf, |_, _| {});
    }

    /// Appends one leaf hash and reports every perfect subtree of level 1 or more that the
    /// leaf completes, lowest first (as many as the old size has trailing one bits; amortised
    /// one per leaf). A store that keeps a table of perfect-subtree hashes writes these rows
    /// with the leaf, so that proofs need O(log n) reads (`subtree`).
    pub fn append_completing(&mut self, leaf: Hash, mut completed: impl FnMut(SubtreeKey, Hash)) {
        let leaf_index = self.size;
        let mut carry = leaf;
        let mut size = self.size;
        let mut level = 0u8;
        while size & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => carry = node_hash(&left, &carry),
                None => break,
            }
            size >>= 1;
            level += 1;
            completed(
                SubtreeKey {
                    level,
                    index: leaf_index >> level,
                },
                carry,
            );
        }
        self.hashes.push(carry);
        self.size += 1;
    }

    /// The Merkle Tree Hash of all leaves appended so far.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// Where proof construction gets leaf hashes: the store serves them from its audit table,
/// tests from memory. Implementations that persist interior nodes override
/// [`LeafHashSource::subtree_root`] to avoid rehashing whole subtrees.
pub trait LeafHashSource {
    /// Hash of leaf `index` (0-based), which must be below the tree size asked about.
    fn leaf_hash(&self, index: u64) -> Result<Hash, SourceError>;

    /// Merkle Tree Hash of the leaves `start..end` (`start < end`). The default hashes the
    /// leaves one by one through a [`CompactRange`], which is O(end − start).
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, SourceError> {
        let mut range = CompactRange::new();
        for index in start..end {
            range.append(self.leaf_hash(index)?);
        }
        Ok(range.root())
    }
}

/// Failure of a [`LeafHashSource`], carried through proof construction untouched.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Leaf hashes held in memory: the simplest [`LeafHashSource`].
impl LeafHashSource for [Hash] {
    fn leaf_hash(&self, index: u64) -> Result<Hash, SourceError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or_else(|| {
                format!(
                    "leaf index {index} is beyond the {} known leaves",
                    self.len()
                )
                .into()
            })
    }
}

impl LeafHashSource for Vec<Hash> {
    fn leaf_hash(&self, index: u64) -> Result<Hash, SourceError> {
        self.as_slice().leaf_hash(index)
    }
}

fn subtree<S: LeafHashSource + ?Sized>(
    source: &S,
    start: u64,
    end: u64,
) -> Result<Hash, ProofError> {
    if end - start == 1 {
        source.leaf_hash(start).map_err(ProofError::Source)
    } else {
        source.subtree_root(start, end).map_err(ProofError::Source)
    }
}

/// Why a proof could not be built or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    /// A consistency proof was asked from a larger to a smaller tree.
    #[error("cannot prove consistency from tree size {first} to smaller size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    /// The proof has the wrong number of hashes for the sizes involved.
    #[error("proof has {actual} hashes but sizes {first}/{second} need {expected}")]
    WrongLength {
        first: u64,
        second: u64,
        expected: usize,
        actual: usize,
    },
    /// The proof was well formed but its hashes do not lead to the expected root(s).
    #[error("proof does not verify: computed root differs from {which}")]
    RootMismatch { which: &'static str },
    /// A persisted compact range whose number of hashes does not fit its size.
    #[error("compact range of size {size} cannot have {hashes} hashes")]
    CompactRangeShape { size: u64, hashes: usize },
    /// A leaf range that is empty or not aligned to its largest perfect subtree, so its hash
    /// is not a fold of perfect-subtree hashes (`subtree::perfect_subtrees`).
    #[error("leaf range {start}..{end} is not a non-empty range of aligned perfect subtrees")]
    UnalignedRange { start: u64, end: u64 },
    /// The leaf hash source failed.
    #[error("leaf hash source failed: {0}")]
    Source(#[source] SourceError),
}

/// The leaf ranges whose Merkle Tree Hashes make up the inclusion proof (audit path,
/// RFC 9162 §2.1.3.1) of leaf `index` in a tree of `tree_size` leaves, in proof order
/// (bottom-up). An asynchronous store fetches or computes these roots itself and needs no
/// callback; [`inclusion_proof`] does it through a [`LeafHashSource`].
pub fn inclusion_proof_ranges(index: u64, tree_size: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    // PATH(m, D[n]) recurses into the half holding m and appends the other half's root;
    // walking top-down and reversing yields the same bottom-up order.
    let mut ranges = Vec::new();
    let (mut m, mut start, mut n) = (index, 0u64, tree_size);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            ranges.push(start + k..start + n);
            n = k;
        } else {
            ranges.push(start..start + k);
            m -= k;
            start += k;
            n -= k;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The leaf ranges whose Merkle Tree Hashes make up the consistency proof (RFC 9162 §2.1.4.1)
/// from tree size `first` to `second`, in proof order. Empty when `first` is 0 or equal to
/// `second`.
pub fn consistency_proof_ranges(first: u64, second: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let mut ranges = Vec::new();
    if first == 0 || first == second {
        return Ok(ranges);
    }
    // SUBPROOF(m, D[n], b), unrolled top-down then reversed like the inclusion path.
    let (mut m, mut start, mut n, mut whole_subtree) = (first, 0u64, second, true);
    loop {
        if m == n {
            if !whole_subtree {
                ranges.push(start..start + n);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            ranges.push(start + k..start + n);
            n = k;
        } else {
            ranges.push(start..start + k);
            m -= k;
            start += k;
            n -= k;
            whole_subtree = false;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// Inclusion proof for leaf `index` in the tree of the first `tree_size` leaves of `source`.
pub fn inclusion_proof<S: LeafHashSource + ?Sized>(
    source: &S,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_ranges(index, tree_size)?
        .into_iter()
        .map(|r| subtree(source, r.start, r.end))
        .collect()
}

/// Consistency proof that the tree of size `first` is a prefix of the tree of size `second`.
pub fn consistency_proof<S: LeafHashSource + ?Sized>(
    source: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_ranges(first, second)?
        .into_iter()
        .map(|r| subtree(source, r.start, r.end))
        .collect()
}

/// An inclusion proof as served over the API: leaf `leaf_index` (0-based; audit entry
/// `seq = leaf_index + 1`) is in the tree of `tree_size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Builds the proof from `source`.
    pub fn build<S: LeafHashSource + ?Sized>(
        source: &S,
        leaf_index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, ProofError> {
        Ok(InclusionProof {
            leaf_index,
            tree_size,
            path: inclusion_proof(source, leaf_index, tree_size)?,
        })
    }

    /// Checks that `leaf` is at `leaf_index` in the tree with `root` (of `tree_size` leaves;
    /// take both from a verified signed tree head).
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        verify_inclusion(leaf, self.leaf_index, self.tree_size, &self.path, root)
    }
}

/// A consistency proof as served over the API: the tree of `first_size` leaves is a prefix of
/// the tree of `second_size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub first_size: u64,
    pub second_size: u64,
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Builds the proof from `source`.
    pub fn build<S: LeafHashSource + ?Sized>(
        source: &S,
        first_size: u64,
        second_size: u64,
    ) -> Result<ConsistencyProof, ProofError> {
        Ok(ConsistencyProof {
            first_size,
            second_size,
            path: consistency_proof(source, first_size, second_size)?,
        })
    }

    /// Checks the proof against the roots of the two trees (from two verified signed heads).
    pub fn verify(&self, first_root: &Hash, second_root: &Hash) -> Result<(), ProofError> {
        verify_consistency(
            self.first_size,
            self.second_size,
            first_root,
            second_root,
            &self.path,
        )
    }
}

/// Verifies an inclusion proof exactly as RFC 9162 §2.1.3.2 describes.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1.
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    // Steps 2 and 3.
    let mut f_n = index;
    let mut s_n = tree_size - 1;
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        if s_n == 0 {
            return Err(wrong_length(index, tree_size, proof.len()));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    if s_n != 0 {
        return Err(wrong_length(index, tree_size, proof.len()));
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            which: "the tree root",
        });
    }
    Ok(())
}

fn wrong_length(index: u64, tree_size: u64, actual: usize) -> ProofError {
    ProofError::WrongLength {
        first: index,
        second: tree_size,
        expected: inclusion_proof_len(index, tree_size),
        actual,
    }
}

fn inclusion_proof_len(index: u64, tree_size: u64) -> usize {
    inclusion_proof_ranges(index, tree_size).map_or(0, |r| r.len())
}

fn consistency_proof_len(first: u64, second: u64) -> usize {
    consistency_proof_ranges(first, second).map_or(0, |r| r.len())
}

/// Verifies a consistency proof exactly as RFC 9162 §2.1.4.2 describes. The RFC defines
/// proofs for `0 < first < second`; the edge cases follow common practice: an equal size
/// needs an empty proof and equal roots, and the empty tree is a prefix of every tree.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let length_error = || ProofError::WrongLength {
        first,
        second,
        expected: consistency_proof_len(first, second),
        actual: proof.len(),
    };
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second {
        if !proof.is_empty() {
            return Err(length_error());
        }
        if first_root != second_root {
            return Err(ProofError::RootMismatch {
                which: "the second root (equal sizes need equal roots)",
            });
        }
        return Ok(());
    }
    if first == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(length_error())
        };
    }
    // Step 1.
    if proof.is_empty() {
        return Err(length_error());
    }
    // Step 2: when `first` is a power of two its root is itself a node of the path.
    let mut path = proof.iter();
    let seed = if first.is_power_of_two() {
        *first_root
    } else {
        match path.next() {
            Some(h) => *h,
            None => return Err(length_error()),
        }
    };
    // Step 3.
    let mut f_n = first - 1;
    let mut s_n = second - 1;
    // Step 4.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    let mut f_r = seed;
    let mut s_r = seed;
    // Step 6.
    for c in path {
        if s_n == 0 {
            return Err(length_error());
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 7.
    if s_n != 0 {
        return Err(length_error());
    }
    if f_r != *first_root {
        return Err(ProofError::RootMismatch {
            which: "the first root",
        });
    }
    if s_r != *second_root {
        return Err(ProofError::RootMismatch {
            which: "the second root",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn compact_range_root_matches_recursive_definition() {
        let all = leaves(70);
        let mut range = CompactRange::new();
        assert_eq!(range.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            range.append(*leaf);
            assert_eq!(
                range.root(),
                root_of_leaf_hashes(&all[..=i]),
                "size {}",
                i + 1
            );
            assert_eq!(range.hashes().len(), (i + 1).count_ones() as usize);
        }
    }

    #[test]
    fn compact_range_from_source_equals_appended_range() {
        let all = leaves(45);
        for size in 0..=45u64 {
            let mut appended = CompactRange::new();
            for leaf in &all[..size as usize] {
                appended.append(*leaf);
            }
            let rebuilt = CompactRange::from_source(all.as_slice(), size).unwrap();
            assert_eq!(rebuilt, appended);
        }
    }

    #[test]
    fn append_completing_reports_every_perfect_subtree_once() {
        let all = leaves(70);
        let mut range = CompactRange::new();
        let mut completed = Vec::new();
        for leaf in &all {
            range.append_completing(*leaf, |key, hash| completed.push((key, hash)));
        }
        // Every perfect subtree of level >= 1 inside 70 leaves, with its hash.
        let mut expected = Vec::new();
        for level in 1..=6u8 {
            for index in 0..(70u64 >> level) {
                let key = SubtreeKey { level, index };
                let r = key.leaves();
                expected.push((
                    key,
                    root_of_leaf_hashes(&all[r.start as usize..r.end as usize]),
                ));
            }
        }
        completed.sort();
        expected.sort();
        assert_eq!(completed, expected);
        assert_eq!(range.root(), root_of_leaf_hashes(&all));
    }

    #[test]
    fn compact_range_from_parts_checks_shape() {
        assert!(CompactRange::from_parts(3, vec![Hash::ZERO]).is_err());
        assert!(CompactRange::from_parts(3, vec![Hash::ZERO, Hash::ZERO]).is_ok());
    }

    #[test]
    fn proof_ranges_tile_the_tree_without_overlap() {
        // The inclusion ranges plus the leaf itself cover every leaf exactly once.
        for n in 1..=40u64 {
            for m in 0..n {
                let mut covered = vec![0u8; n as usize];
                covered[m as usize] += 1;
                for r in inclusion_proof_ranges(m, n).unwrap() {
                    for i in r {
                        covered[i as usize] += 1;
                    }
                }
                assert!(covered.iter().all(|&c| c == 1), "m={m} n={n}");
            }
        }
        assert_eq!(
            consistency_proof_ranges(6, 8).unwrap(),
            vec![4..6, 6..8, 0..4]
        );
    }

    #[test]
    fn source_errors_are_carried() {
        let short = leaves(3);
        let err = inclusion_proof(short.as_slice(), 0, 8).unwrap_err();
        assert!(matches!(err, ProofError::Source(_)), "{err}");
    }

    #[test]
    fn hash_hex_round_trip_and_rejects_bad_text() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Hash::from_hex("zz").is_err());
        assert!(Hash::from_hex(&"0".repeat(63)).is_err());
    }
}
