#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Proofs built from perfect-subtree hashes are byte-identical to proofs built from all
//! leaves, the verifiers accept them, and a store's table filled by `append_completing` holds
//! exactly the hashes they need.

use std::collections::HashMap;

use gatehouse_ledger::merkle::{
    self, CompactRange, Hash, inclusion_proof_ranges, leaf_hash, root_of_leaf_hashes,
    verify_consistency, verify_inclusion,
};
use gatehouse_ledger::subtree::{
    self, SubtreeKey, consistency_keys, inclusion_keys, perfect_subtrees,
};
use proptest::prelude::*;

fn leaves(n: u64, salt: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&[i.to_be_bytes(), salt.to_be_bytes()].concat()))
        .collect()
}

/// What the store's subtree table holds after appending `leaves` one by one: every perfect
/// subtree of level >= 1, plus the leaf hashes as level 0 (kept in the audit table itself).
fn table(leaves: &[Hash]) -> HashMap<SubtreeKey, Hash> {
    let mut map = HashMap::new();
    let mut range = CompactRange::new();
    for (i, leaf) in leaves.iter().enumerate() {
        map.insert(SubtreeKey::leaf(i as u64), *leaf);
        range.append_completing(*leaf, |key, hash| {
            assert!(map.insert(key, hash).is_none(), "{key:?} completed twice");
        });
    }
    map
}

/// Only the keys a proof asked for, as a store's one query returns them.
fn fetched(table: &HashMap<SubtreeKey, Hash>, keys: &[SubtreeKey]) -> HashMap<SubtreeKey, Hash> {
    keys.iter().map(|k| (*k, table[k])).collect()
}

fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1u64..600).prop_flat_map(|n| (Just(n), 0..n))
}

fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
    (0u64..600).prop_flat_map(|second| (0..=second, Just(second)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inclusion_from_subtrees_equals_inclusion_from_leaves(
        (n, m) in size_and_index(),
        salt in any::<u64>(),
    ) {
        let all = leaves(n, salt);
        let keys = inclusion_keys(m, n).unwrap();
        // O(log n): at most three subtrees per level.
        prop_assert!(keys.len() <= 3 * (64 - n.leading_zeros() as usize), "{} keys", keys.len());
        let source = fetched(&table(&all), &keys);

        let path = subtree::inclusion_proof(&source, m, n).unwrap();
        let root = subtree::root(&source, n).unwrap();
        prop_assert_eq!(&path, &merkle::inclusion_proof(all.as_slice(), m, n).unwrap());
        prop_assert_eq!(root, root_of_leaf_hashes(&all));
        verify_inclusion(&all[m as usize], m, n, &path, &root).unwrap();
    }

    #[test]
    fn consistency_from_subtrees_equals_consistency_from_leaves(
        (first, second) in two_sizes(),
        salt in any::<u64>(),
    ) {
        let all = leaves(second, salt);
        let keys = consistency_keys(first, second).unwrap();
        let source = fetched(&table(&all), &keys);

        let path = subtree::consistency_proof(&source, first, second).unwrap();
        let first_root = subtree::root(&source, first).unwrap();
        let second_root = subtree::root(&source, second).unwrap();
        prop_assert_eq!(
            &path,
            &merkle::consistency_proof(all.as_slice(), first, second).unwrap()
        );
        prop_assert_eq!(first_root, root_of_leaf_hashes(&all[..first as usize]));
        prop_assert_eq!(second_root, root_of_leaf_hashes(&all));
        verify_consistency(first, second, &first_root, &second_root, &path).unwrap();
    }

    #[test]
    fn a_wrong_subtree_hash_makes_the_proof_fail((n, m) in size_and_index(), pick in any::<usize>()) {
        let all = leaves(n, 7);
        let keys = inclusion_keys(m, n).unwrap();
        let honest = table(&all);
        let mut source = fetched(&honest, &keys);
        // Flip one stored subtree on the audit path (the other keys only feed the root the
        // server prints, which a client compares with a signed head anyway), then check
        // against the honest root, as a signed head has it.
        let on_path: Vec<SubtreeKey> = inclusion_proof_ranges(m, n)
            .unwrap()
            .into_iter()
            .flat_map(|r| perfect_subtrees(r).unwrap())
            .collect();
        prop_assume!(!on_path.is_empty());
        let victim = on_path[pick % on_path.len()];
        source.get_mut(&victim).unwrap().0[0] ^= 1;
        let path = subtree::inclusion_proof(&source, m, n).unwrap();
        let honest_root = root_of_leaf_hashes(&all);
        prop_assert!(verify_inclusion(&all[m as usize], m, n, &path, &honest_root).is_err());
        // A flipped root-only subtree changes the printed root instead.
        let mut source = fetched(&honest, &keys);
        for key in subtree::tree_subtrees(n) {
            if !on_path.contains(&key) && key != SubtreeKey::leaf(m) {
                source.get_mut(&key).unwrap().0[31] ^= 0x80;
                prop_assert_ne!(subtree::root(&source, n).unwrap(), honest_root);
                break;
            }
        }
    }
}

#[test]
fn every_size_and_index_up_to_70() {
    let all = leaves(70, 1);
    let store = table(&all);
    for n in 0..=70u64 {
        assert_eq!(
            subtree::root(&store, n).unwrap(),
            root_of_leaf_hashes(&all[..n as usize])
        );
        for m in 0..n {
            assert_eq!(
                subtree::inclusion_proof(&store, m, n).unwrap(),
                merkle::inclusion_proof(all.as_slice(), m, n).unwrap(),
                "inclusion m={m} n={n}"
            );
        }
        for first in 0..=n {
            assert_eq!(
                subtree::consistency_proof(&store, first, n).unwrap(),
                merkle::consistency_proof(all.as_slice(), first, n).unwrap(),
                "consistency {first} -> {n}"
            );
        }
    }
}

#[test]
fn proof_sizes_are_checked_like_the_leaf_path() {
    let store = table(&leaves(5, 2));
    assert!(matches!(
        subtree::inclusion_proof(&store, 5, 5),
        Err(merkle::ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        subtree::consistency_proof(&store, 4, 3),
        Err(merkle::ProofError::SizesOutOfOrder { .. })
    ));
    assert!(inclusion_keys(5, 5).is_err());
    assert!(consistency_keys(4, 3).is_err());
    assert_eq!(consistency_keys(0, 0).unwrap(), vec![]);
}

#[test]
fn a_million_leaf_tree_needs_few_keys() {
    let n = 1_000_003u64;
    let worst = (0..n)
        .step_by(9_973)
        .map(|m| inclusion_keys(m, n).unwrap().len())
        .max()
        .unwrap();
    assert!(worst <= 60, "{worst}");
    let worst = (1..n)
        .step_by(9_973)
        .map(|first| consistency_keys(first, n).unwrap().len())
        .max()
        .unwrap();
    assert!(worst <= 80, "{worst}");
}
