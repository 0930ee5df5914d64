#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Merkle tree against the RFC 6962/9162 reference vectors, and property tests: every
//! proof the tree builds verifies, and every tampered proof fails.

use gatehouse_ledger::merkle::{
    CompactRange, Hash, consistency_proof, empty_root, inclusion_proof, leaf_hash,
    root_of_leaf_hashes, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    leaves: Vec<String>,
    empty_root: Hash,
    roots: Vec<Hash>,
    inclusion: Vec<InclusionVector>,
    consistency: Vec<ConsistencyVector>,
}

#[derive(Deserialize)]
struct InclusionVector {
    index: u64,
    tree_size: u64,
    path: Vec<Hash>,
}

#[derive(Deserialize)]
struct ConsistencyVector {
    first: u64,
    second: u64,
    proof: Vec<Hash>,
}

fn vectors() -> (Vectors, Vec<Hash>) {
    let v: Vectors = serde_json::from_str(include_str!(
        "fixtures/merkle/rfc6962_reference_vectors.json"
    ))
    .unwrap();
    let leaves = v
        .leaves
        .iter()
        .map(|hex_leaf| leaf_hash(&hex::decode(hex_leaf).unwrap()))
        .collect();
    (v, leaves)
}

#[test]
fn reference_roots_for_every_size() {
    let (v, leaves) = vectors();
    assert_eq!(empty_root(), v.empty_root);
    assert_eq!(CompactRange::new().root(), v.empty_root);
    let mut range = CompactRange::new();
    for (i, leaf) in leaves.iter().enumerate() {
        range.append(*leaf);
        assert_eq!(
            range.root(),
            v.roots[i],
            "compact range root at size {}",
            i + 1
        );
        assert_eq!(
            root_of_leaf_hashes(&leaves[..=i]),
            v.roots[i],
            "MTH at size {}",
            i + 1
        );
    }
}

#[test]
fn reference_inclusion_proofs_are_built_and_verified() {
    let (v, leaves) = vectors();
    for case in &v.inclusion {
        let built = inclusion_proof(leaves.as_slice(), case.index, case.tree_size).unwrap();
        assert_eq!(
            built, case.path,
            "path for leaf {} in size {}",
            case.index, case.tree_size
        );
        let root = v.roots[case.tree_size as usize - 1];
        verify_inclusion(
            &leaves[case.index as usize],
            case.index,
            case.tree_size,
            &case.path,
            &root,
        )
        .unwrap();
    }
}

#[test]
fn reference_consistency_proofs_are_built_and_verified() {
    let (v, leaves) = vectors();
    for case in &v.consistency {
        let built = consistency_proof(leaves.as_slice(), case.first, case.second).unwrap();
        assert_eq!(built, case.proof, "proof {} -> {}", case.first, case.second);
        let first = v.roots[case.first as usize - 1];
        let second = v.roots[case.second as usize - 1];
        verify_consistency(case.first, case.second, &first, &second, &case.proof).unwrap();
    }
}

#[test]
fn reference_proofs_fail_against_the_wrong_root_or_leaf() {
    let (v, leaves) = vectors();
    let case = &v.inclusion[2];
    let wrong_root = v.roots[6];
    assert!(verify_inclusion(&leaves[5], 5, 8, &case.path, &wrong_root).is_err());
    assert!(verify_inclusion(&leaves[4], 5, 8, &case.path, &v.roots[7]).is_err());
    assert!(verify_inclusion(&leaves[5], 8, 8, &case.path, &v.roots[7]).is_err());
    let cons = &v.consistency[2];
    assert!(verify_consistency(6, 8, &v.roots[4], &v.roots[7], &cons.proof).is_err());
    assert!(verify_consistency(6, 8, &v.roots[5], &v.roots[6], &cons.proof).is_err());
    assert!(verify_consistency(8, 6, &v.roots[7], &v.roots[5], &cons.proof).is_err());
}

#[test]
fn consistency_edge_cases() {
    let (v, _) = vectors();
    // Equal sizes: empty proof, equal roots.
    verify_consistency(4, 4, &v.roots[3], &v.roots[3], &[]).unwrap();
    assert!(verify_consistency(4, 4, &v.roots[3], &v.roots[4], &[]).is_err());
    assert!(verify_consistency(4, 4, &v.roots[3], &v.roots[3], &[v.roots[0]]).is_err());
    // The empty tree is a prefix of every tree, with an empty proof only.
    verify_consistency(0, 8, &v.empty_root, &v.roots[7], &[]).unwrap();
    assert!(verify_consistency(0, 8, &v.empty_root, &v.roots[7], &[v.roots[0]]).is_err());
    // A non-trivial proof may not be empty.
    assert!(verify_consistency(3, 8, &v.roots[2], &v.roots[7], &[]).is_err());
}

fn tree(seed: u64, size: usize) -> Vec<Hash> {
    (0..size as u64)
        .map(|i| leaf_hash(format!("entry {seed}/{i}").as_bytes()))
        .collect()
}

fn flip(hash: &Hash, byte: usize, bit: u8) -> Hash {
    let mut out = *hash;
    out.0[byte % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_inclusion_proof_verifies_and_tampering_fails(
        seed in any::<u64>(),
        size in 1usize..300,
        pick in any::<prop::sample::Index>(),
        which in any::<prop::sample::Index>(),
        byte in 0usize..32,
        bit in 0u8..8,
    ) {
        let leaves = tree(seed, size);
        let index = pick.index(size) as u64;
        let root = root_of_leaf_hashes(&leaves);
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(leaves.as_slice(), index, size as u64).unwrap();
        prop_assert!(verify_inclusion(&leaf, index, size as u64, &proof, &root).is_ok());

        // A flipped bit in the leaf or the root.
        prop_assert!(verify_inclusion(&flip(&leaf, byte, bit), index, size as u64, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size as u64, &proof, &flip(&root, byte, bit)).is_err());
        if !proof.is_empty() {
            // A flipped bit in one path hash.
            let mut bad = proof.clone();
            let k = which.index(bad.len());
            bad[k] = flip(&bad[k], byte, bit);
            prop_assert!(verify_inclusion(&leaf, index, size as u64, &bad, &root).is_err());
            // A dropped hash.
            prop_assert!(verify_inclusion(&leaf, index, size as u64, &proof[..proof.len() - 1], &root).is_err());
        }
        // An extra hash.
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size as u64, &longer, &root).is_err());
        // Another leaf's position.
        if size > 1 {
            let other = (index + 1) % size as u64;
            prop_assert!(verify_inclusion(&leaf, other, size as u64, &proof, &root).is_err());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails(
        seed in any::<u64>(),
        second in 1usize..300,
        pick in any::<prop::sample::Index>(),
        which in any::<prop::sample::Index>(),
        byte in 0usize..32,
        bit in 0u8..8,
    ) {
        let leaves = tree(seed, second);
        let first = pick.index(second + 1);
        let first_root = root_of_leaf_hashes(&leaves[..first]);
        let second_root = root_of_leaf_hashes(&leaves);
        let proof = consistency_proof(leaves.as_slice(), first as u64, second as u64).unwrap();
        prop_assert!(verify_consistency(first as u64, second as u64, &first_root, &second_root, &proof).is_ok());

        if first > 0 {
            prop_assert!(verify_consistency(first as u64, second as u64, &flip(&first_root, byte, bit), &second_root, &proof).is_err());
        }
        if first > 0 || !proof.is_empty() {
            prop_assert!(verify_consistency(first as u64, second as u64, &first_root, &flip(&second_root, byte, bit), &proof).is_err());
        }
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which.index(bad.len());
            bad[k] = flip(&bad[k], byte, bit);
            prop_assert!(verify_consistency(first as u64, second as u64, &first_root, &second_root, &bad).is_err());
            prop_assert!(verify_consistency(first as u64, second as u64, &first_root, &second_root, &proof[..proof.len() - 1]).is_err());
        }
        let mut longer = proof.clone();
        longer.push(second_root);
        prop_assert!(verify_consistency(first as u64, second as u64, &first_root, &second_root, &longer).is_err());
    }

    #[test]
    fn compact_range_root_is_the_merkle_tree_hash(seed in any::<u64>(), size in 0usize..600) {
        let leaves = tree(seed, size);
        let mut range = CompactRange::new();
        for leaf in &leaves {
            range.append(*leaf);
        }
        prop_assert_eq!(range.root(), root_of_leaf_hashes(&leaves));
        prop_assert_eq!(CompactRange::from_source(leaves.as_slice(), size as u64).unwrap(), range);
    }
}

/// A store-like source that keeps perfect-subtree roots (as a node table would) and counts
/// how many leaf hashes it had to read.
struct CachingSource {
    leaves: Vec<Hash>,
    reads: std::cell::Cell<u64>,
}

impl gatehouse_ledger::LeafHashSource for CachingSource {
    fn leaf_hash(&self, index: u64) -> Result<Hash, gatehouse_ledger::merkle::SourceError> {
        self.reads.set(self.reads.get() + 1);
        self.leaves
            .get(index as usize)
            .copied()
            .ok_or_else(|| "no such leaf".into())
    }

    fn subtree_root(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Hash, gatehouse_ledger::merkle::SourceError> {
        // One "row read" per subtree instead of end - start leaf reads.
        self.reads.set(self.reads.get() + 1);
        Ok(root_of_leaf_hashes(
            &self.leaves[start as usize..end as usize],
        ))
    }
}

#[test]
fn sources_that_serve_subtree_roots_build_identical_proofs_with_log_reads() {
    let leaves = tree(7, 1000);
    let caching = CachingSource {
        leaves: leaves.clone(),
        reads: std::cell::Cell::new(0),
    };
    let by_leaves = inclusion_proof(leaves.as_slice(), 617, 1000).unwrap();
    let by_cache = inclusion_proof(&caching, 617, 1000).unwrap();
    assert_eq!(by_cache, by_leaves);
    assert_eq!(caching.reads.get(), by_cache.len() as u64);
    assert!(by_cache.len() <= 10);

    caching.reads.set(0);
    let proof = consistency_proof(&caching, 300, 1000).unwrap();
    assert_eq!(
        proof,
        consistency_proof(leaves.as_slice(), 300, 1000).unwrap()
    );
    assert_eq!(caching.reads.get(), proof.len() as u64);
    let first = root_of_leaf_hashes(&leaves[..300]);
    verify_consistency(300, 1000, &first, &root_of_leaf_hashes(&leaves), &proof).unwrap();
}

#[test]
fn api_proof_types_round_trip_through_json_and_verify() {
    let (v, leaves) = vectors();
    let proof = gatehouse_ledger::InclusionProof::build(leaves.as_slice(), 5, 8).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    let back: gatehouse_ledger::InclusionProof = serde_json::from_str(&json).unwrap();
    back.verify(&leaves[5], &v.roots[7]).unwrap();
    assert!(back.verify(&leaves[4], &v.roots[7]).is_err());

    let proof = gatehouse_ledger::ConsistencyProof::build(leaves.as_slice(), 6, 8).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    assert!(json.contains("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"));
    let back: gatehouse_ledger::ConsistencyProof = serde_json::from_str(&json).unwrap();
    back.verify(&v.roots[5], &v.roots[7]).unwrap();
    assert!(back.verify(&v.roots[4], &v.roots[7]).is_err());
}
