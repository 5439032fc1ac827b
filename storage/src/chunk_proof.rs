//! Proofs that a 1 KiB chunk belongs to data with a given blake3 hash.
//!
//! BLAKE3 is a Merkle tree over 1 KiB chunks, so the data's root is just `blake3::hash(data)`.
//! A proof of chunk `i` is the chunk itself plus the chaining values of the sibling subtrees on
//! the path from the chunk to the root, bottom up. The verifier recomputes the chunk's chaining
//! value at its offset and merges upwards with blake3's `hazmat` functions; the shape of the
//! tree (which side each sibling is on) follows from the data's size alone.
//!
//! The size is an input, not something the proof establishes: a proof of an early chunk also
//! verifies against a slightly different size with the same tree shape. A storage deal fixes
//! the size on chain next to the root, so the prover never chooses it.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

/// Bytes per chunk.
pub const CHUNK_LEN: u64 = blake3::CHUNK_LEN as u64;

/// The longest possible path: the tree over 2^64 bytes is 54 levels deep.
pub const MAX_PATH_LEN: usize = 64;

/// A chunk and its Merkle path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkProof {
    /// The chunk's bytes (1 KiB, or less for the last chunk).
    pub chunk: Vec<u8>,
    /// Sibling chaining values from the chunk up to the root.
    pub path: Vec<[u8; 32]>,
}

/// Number of chunks in data of `size` bytes (empty data is one empty chunk).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_LEN).max(1)
}

/// Length of chunk `index` in data of `size` bytes, or `None` past the end.
pub fn chunk_len(size: u64, index: u64) -> Option<u64> {
    (index < chunk_count(size)).then(|| (size - index * CHUNK_LEN).min(CHUNK_LEN))
}

/// Which side of its parent the path goes at a level.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// Walks from the root of data of `size` bytes down to the subtree of at most `leaf_len` bytes
/// that starts at byte `offset`: the side taken at each level and the sibling subtree's
/// (offset, length). `leaf_len` is a power of two times [`CHUNK_LEN`], so such a subtree exists
/// for any offset that is a multiple of it: BLAKE3 splits every node at the largest power of
/// two chunks smaller than the node.
fn descend(size: u64, offset: u64, leaf_len: u64) -> Vec<(Side, u64, u64)> {
    let (mut start, mut len) = (0u64, size);
    let mut steps = Vec::new();
    while len > leaf_len {
        let left = left_subtree_len(len);
        if offset < start + left {
            steps.push((Side::Left, start + left, len - left));
            len = left;
        } else {
            steps.push((Side::Right, start, left));
            start += left;
            len -= left;
        }
    }
    steps
}

/// The non-root chaining value of the subtree holding `bytes` at byte `offset`.
pub(crate) fn chaining_value(offset: u64, bytes: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(offset)
        .update(bytes)
        .finalize_non_root()
}

/// The proof for chunk `index` of `data`, or `None` past the end. Costs one pass over the data;
/// the chunk store keeps the tree's upper levels instead (see [`crate::blobs`]).
pub fn prove(data: &[u8], index: u64) -> Option<ChunkProof> {
    let size = data.len() as u64;
    let len = chunk_len(size, index)?;
    let start = index * CHUNK_LEN;
    let path = siblings_within(data, 0, start, CHUNK_LEN);
    Some(ChunkProof {
        chunk: data[start as usize..(start + len) as usize].to_vec(),
        path,
    })
}

/// The sibling chaining values, bottom up, on the path from the leaf of at most `leaf_len`
/// bytes at byte `leaf_offset` up to the root of `subtree`, a whole subtree of the data that
/// starts at byte `subtree_offset`.
pub(crate) fn siblings_within(
    subtree: &[u8],
    subtree_offset: u64,
    leaf_offset: u64,
    leaf_len: u64,
) -> Vec<[u8; 32]> {
    descend(subtree.len() as u64, leaf_offset - subtree_offset, leaf_len)
        .iter()
        .rev()
        .map(|&(_, start, len)| {
            chaining_value(
                subtree_offset + start,
                &subtree[start as usize..(start + len) as usize],
            )
        })
        .collect()
}

/// Whether `chunk` is chunk `index` of the data of `size` bytes whose blake3 hash is `root`.
pub fn verify(root: &[u8; 32], size: u64, index: u64, chunk: &[u8], path: &[[u8; 32]]) -> bool {
    match chunk_len(size, index) {
        Some(len) if chunk.len() as u64 == len => {
            verify_leaf(root, size, index * CHUNK_LEN, CHUNK_LEN, chunk, path)
        }
        _ => false,
    }
}

/// Whether `leaf` is the subtree of at most `leaf_len` bytes (a power of two chunks) at byte
/// `offset` of the data of `size` bytes whose blake3 hash is `root`, given the sibling chaining
/// values on its path, bottom up. The caller checks the leaf's length.
pub(crate) fn verify_leaf(
    root: &[u8; 32],
    size: u64,
    offset: u64,
    leaf_len: u64,
    leaf: &[u8],
    path: &[[u8; 32]],
) -> bool {
    if path.len() > MAX_PATH_LEN || offset >= size.max(1) {
        return false;
    }
    let steps = descend(size, offset, leaf_len);
    if steps.len() != path.len() {
        return false;
    }
    if steps.is_empty() {
        // The leaf is the whole data: its hash is the root.
        return blake3::hash(leaf).as_bytes() == root;
    }
    let mut node = chaining_value(offset, leaf);
    for (level, ((side, _, _), sibling)) in steps.iter().rev().zip(path).enumerate() {
        let (left, right) = match side {
            Side::Left => (&node, sibling),
            Side::Right => (sibling, &node),
        };
        if level + 1 == steps.len() {
            return merge_subtrees_root(left, right, Mode::Hash).as_bytes() == root;
        }
        node = merge_subtrees_non_root(left, right, Mode::Hash);
    }
    false
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn data(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn every_chunk_of_awkward_sizes_proves_and_tampering_fails() {
        for size in [
            0,
            1,
            1023,
            1024,
            1025,
            2048,
            3 * 1024 + 7,
            16 * 1024,
            33 * 1024 + 1,
        ] {
            let bytes = data(size);
            let root = *blake3::hash(&bytes).as_bytes();
            let size = size as u64;
            for index in 0..chunk_count(size) {
                let proof = prove(&bytes, index).unwrap();
                assert!(
                    verify(&root, size, index, &proof.chunk, &proof.path),
                    "size {size} chunk {index}"
                );
                if !proof.chunk.is_empty() {
                    let mut chunk = proof.chunk.clone();
                    chunk[0] ^= 1;
                    assert!(!verify(&root, size, index, &chunk, &proof.path));
                }
                if let Some(first) = proof.path.first() {
                    let mut path = proof.path.clone();
                    path[0] = [first[0] ^ 1; 32];
                    assert!(!verify(&root, size, index, &proof.chunk, &path));
                    assert!(!verify(&root, size, index, &proof.chunk, &proof.path[1..]));
                }
            }
            assert!(prove(&bytes, chunk_count(size)).is_none());
            assert!(!verify(&root, size, chunk_count(size), &[], &[]));
        }
    }

    proptest! {
        #[test]
        fn random_data_and_challenges(size in 1usize..20_000, pick in any::<u64>(), other in any::<u64>()) {
            let bytes = data(size);
            let root = *blake3::hash(&bytes).as_bytes();
            let count = chunk_count(size as u64);
            let index = pick % count;
            let proof = prove(&bytes, index).unwrap();
            prop_assert!(verify(&root, size as u64, index, &proof.chunk, &proof.path));
            let wrong = other % count;
            if wrong != index && proof.chunk.len() as u64 == chunk_len(size as u64, wrong).unwrap() {
                prop_assert!(!verify(&root, size as u64, wrong, &proof.chunk, &proof.path));
            }
        }
    }
}
