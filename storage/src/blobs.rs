//! The chunk store: data addressed by its blake3 root, kept so that any chunk's proof is fast.
//!
//! Data is cut into pieces of [`PIECE_LEN`] bytes. A piece is a whole subtree of BLAKE3's tree
//! (the tree splits at powers of two chunks, and a piece is a power of two chunks at a multiple
//! of its length), so a piece comes with a proof of its own: the sibling chaining values from
//! the piece up to the root ([`PieceProof`]). Every piece is checked against the root before it
//! is stored, whoever sends it; a blob whose pieces have all arrived gets its [`Outboard`], the
//! chaining values of the tree's levels above the pieces.
//!
//! To prove chunk `i`, the store reads one piece (the siblings below the piece are hashed from
//! it) and the outboard (the siblings above it): the cost does not grow with the blob's size
//! beyond the tree's depth.
//!
//! Pieces live in a column family with RocksDB blob files, so large values stay out of
//! compaction; which pieces are present and how many is kept beside them in the same write
//! batch, so a crash never leaves a count that disagrees with the pieces.

use std::path::Path;
use std::sync::{Arc, Mutex};

use borsh::{BorshDeserialize, BorshSerialize};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch};

use crate::chunk_proof::{self, CHUNK_LEN, ChunkProof, chaining_value, siblings_within};
use crate::error::{Result, StorageError};

/// Bytes per piece: the unit of transfer and storage (256 chunks).
pub const PIECE_LEN: u64 = 256 * CHUNK_LEN;

/// The largest blob the store takes: 64 GiB (262,144 pieces, so that the list of missing
/// pieces stays a few MiB).
pub const MAX_BLOB_SIZE: u64 = 64 << 30;

const CF_PIECES: &str = "pieces";
const CF_PRESENT: &str = "present";
const CF_BLOBS: &str = "blobs";
const CF_OUTBOARDS: &str = "outboards";
mod holds;

pub use holds::{JobHold, MAX_JOB_BLOBS};

/// Number of pieces in data of `size` bytes (empty data is one empty piece).
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(PIECE_LEN).max(1)
}

/// Length of piece `index` in data of `size` bytes, or `None` past the end.
pub fn piece_len(size: u64, index: u64) -> Option<u64> {
    (index < piece_count(size)).then(|| (size - index * PIECE_LEN).min(PIECE_LEN))
}

/// Whether `piece` is piece `index` of the data of `size` bytes whose blake3 hash is `root`.
pub fn verify_piece(
    root: &[u8; 32],
    size: u64,
    index: u64,
    piece: &[u8],
    path: &[[u8; 32]],
) -> bool {
    match piece_len(size, index) {
        Some(len) if piece.len() as u64 == len => {
            chunk_proof::verify_leaf(root, size, index * PIECE_LEN, PIECE_LEN, piece, path)
        }
        _ => false,
    }
}

/// The chaining value a piece contributes to the tree; data of one piece is the whole tree, and
/// its hash stands in (it is never a sibling).
fn piece_cv(size: u64, index: u64, piece: &[u8]) -> [u8; 32] {
    if piece_count(size) == 1 {
        *blake3::hash(piece).as_bytes()
    } else {
        chaining_value(index * PIECE_LEN, piece)
    }
}

/// A piece and the sibling chaining values from it up to the root, bottom up.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PieceProof {
    /// The piece's bytes.
    pub data: Vec<u8>,
    /// Its Merkle path.
    pub path: Vec<[u8; 32]>,
}

/// The chaining values of the tree above the pieces: level 0 holds one per piece, each level
/// above pairs the one below (an odd last node moves up unpaired, as in BLAKE3's tree).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Outboard {
    size: u64,
    levels: Vec<Vec<[u8; 32]>>,
}

impl Outboard {
    /// The tree above pieces whose chaining values are `pieces`, in data of `size` bytes.
    pub fn from_pieces(size: u64, pieces: Vec<[u8; 32]>) -> Self {
        let mut levels = vec![pieces];
        while let Some(below) = levels.last().filter(|level| level.len() > 1) {
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => blake3::hazmat::merge_subtrees_non_root(
                        left,
                        right,
                        blake3::hazmat::Mode::Hash,
                    ),
                    [single] => *single,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
            levels.push(above);
        }
        Self { size, levels }
    }

    /// Reads data of `size` bytes piece by piece: its blake3 root and its outboard.
    pub fn compute(mut reader: impl std::io::Read, size: u64) -> std::io::Result<([u8; 32], Self)> {
        let mut hasher = blake3::Hasher::new();
        let mut cvs = Vec::with_capacity(piece_count(size) as usize);
        let mut piece = vec![0u8; PIECE_LEN as usize];
        for index in 0..piece_count(size) {
            let len = piece_len(size, index).unwrap_or(0) as usize;
            reader.read_exact(&mut piece[..len])?;
            hasher.update(&piece[..len]);
            cvs.push(piece_cv(size, index, &piece[..len]));
        }
        Ok((*hasher.finalize().as_bytes(), Self::from_pieces(size, cvs)))
    }

    /// The root these chaining values lead to; `None` for data of one piece, whose root is the
    /// hash of that piece alone.
    fn root(&self) -> Option<[u8; 32]> {
        let top = self.levels.iter().rev().find(|level| level.len() == 2)?;
        let root =
            blake3::hazmat::merge_subtrees_root(&top[0], &top[1], blake3::hazmat::Mode::Hash);
        Some(*root.as_bytes())
    }

    /// The sibling chaining values from piece `index` up to the root, bottom up.
    pub fn piece_path(&self, index: u64) -> Vec<[u8; 32]> {
        let mut path = Vec::new();
        let mut node = index as usize;
        for level in self.levels.iter().take_while(|level| level.len() > 1) {
            if let Some(sibling) = level.get(node ^ 1) {
                path.push(*sibling);
            }
            node /= 2;
        }
        path
    }
}

/// What the store holds of one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlobStatus {
    /// Its blake3 root.
    pub root: [u8; 32],
    /// Its size in bytes.
    pub size: u64,
    /// Pieces stored so far.
    pub present: u64,
}

impl BlobStatus {
    /// Pieces in the whole blob.
    pub fn pieces(&self) -> u64 {
        piece_count(self.size)
    }

    /// Whether every piece is stored.
    pub fn complete(&self) -> bool {
        self.present == self.pieces()
    }
}

fn piece_key(root: &[u8; 32], index: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(root);
    key[32..].copy_from_slice(&index.to_be_bytes());
    key
}

fn corrupt(what: &'static str, error: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(what, error)
}

/// Content-addressed pieces in their own RocksDB database.
#[derive(Debug)]
pub struct ChunkStore {
    db: DB,
    /// Serializes the read-count-write of piece writes; verification happens before it.
    writes: Mutex<()>,
    /// The outboard read last: transfers and proofs ask for the same blob many times in a
    /// row, and decoding a large outboard costs more than the piece it serves.
    last_outboard: Mutex<Option<([u8; 32], Arc<Outboard>)>>,
}

impl ChunkStore {
    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Opens (or creates) the chunk store in `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let families = [CF_PIECES, CF_PRESENT, CF_BLOBS, CF_OUTBOARDS]
            .into_iter()
            .chain(holds::FAMILIES)
            .map(|name| {
                let mut cf_options = Options::default();
                if name == CF_PIECES || name == CF_OUTBOARDS {
                    cf_options.set_enable_blob_files(true);
                    cf_options.set_min_blob_size(4096);
                }
                ColumnFamilyDescriptor::new(name, cf_options)
            });
        let db = DB::open_cf_descriptors(&options, path, families)?;
        let store = Self {
            db,
            writes: Mutex::new(()),
            last_outboard: Mutex::new(None),
        };
        holds::index_holders_if_missing(&store.db)?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is stored of `root`, if anything.
    pub fn status(&self, root: &[u8; 32]) -> Result<Option<BlobStatus>> {
        let Some(bytes) = self
            .db
            .get_cf(crate::schema::cf(&self.db, CF_BLOBS)?, root)?
        else {
            return Ok(None);
        };
        BlobStatus::try_from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt("blob status", e))
    }

    /// Every blob stored or being stored, by root.
    pub fn list(&self) -> Result<Vec<BlobStatus>> {
        self.db
            .iterator_cf(crate::schema::cf(&self.db, CF_BLOBS)?, IteratorMode::Start)
            .map(|item| {
                let (_, value) = item?;
                BlobStatus::try_from_slice(&value).map_err(|e| corrupt("blob status", e))
            })
            .collect()
    }

    /// Makes room for the blob `root` of `size` bytes (nothing changes if it is known with the
    /// same size) and returns what is stored of it.
    pub fn begin(&self, root: &[u8; 32], size: u64) -> Result<BlobStatus> {
        if size > MAX_BLOB_SIZE {
            return Err(StorageError::BlobTooLarge {
                size,
                max: MAX_BLOB_SIZE,
            });
        }
        let _guard = self.lock();
        match self.status(root)? {
            Some(status) if status.size == size => Ok(status),
            Some(status) => Err(StorageError::BlobSize {
                root: hex(root),
                stored: status.size,
                offered: size,
            }),
            None => {
                let status = BlobStatus {
                    root: *root,
                    size,
                    present: 0,
                };
                self.db.put_cf(
                    crate::schema::cf(&self.db, CF_BLOBS)?,
                    root,
                    crate::schema::encode(&status)?,
                )?;
                Ok(status)
            }
        }
    }

    fn known(&self, root: &[u8; 32]) -> Result<BlobStatus> {
        self.status(root)?
            .ok_or_else(|| StorageError::UnknownBlob { root: hex(root) })
    }

    /// The indices of the pieces of `root` not stored yet.
    pub fn missing(&self, root: &[u8; 32]) -> Result<Vec<u64>> {
        let status = self.known(root)?;
        let mut present = Vec::with_capacity(status.present as usize);
        let mode = IteratorMode::From(root, Direction::Forward);
        for item in self
            .db
            .iterator_cf(crate::schema::cf(&self.db, CF_PRESENT)?, mode)
        {
            let (key, _) = item?;
            if !key.starts_with(root) {
                break;
            }
            let index: [u8; 8] = key[32..]
                .try_into()
                .map_err(|_| corrupt("piece index", "key is not root + 8 bytes"))?;
            present.push(u64::from_be_bytes(index));
        }
        let mut present = present.into_iter().peekable();
        Ok((0..status.pieces())
            .filter(|index| {
                if present.peek() == Some(index) {
                    present.next();
                    false
                } else {
                    true
                }
            })
            .collect())
    }

    /// Stores piece `index` of `root` after checking it against the root with its `path`.
    /// Storing a piece twice changes nothing. The last piece completes the blob: its outboard
    /// is computed and stored in the same write batch.
    pub fn put_piece(
        &self,
        root: &[u8; 32],
        index: u64,
        data: &[u8],
        path: &[[u8; 32]],
    ) -> Result<BlobStatus> {
        let status = self.known(root)?;
        if !verify_piece(root, status.size, index, data, path) {
            return Err(StorageError::InvalidPiece {
                root: hex(root),
                index,
            });
        }
        let _guard = self.lock();
        let mut status = self.known(root)?;
        let key = piece_key(root, index);
        let present = crate::schema::cf(&self.db, CF_PRESENT)?;
        if self.db.get_pinned_cf(present, key)?.is_some() {
            return Ok(status);
        }
        status.present += 1;
        let mut batch = WriteBatch::default();
        batch.put_cf(crate::schema::cf(&self.db, CF_PIECES)?, key, data);
        batch.put_cf(present, key, []);
        batch.put_cf(
            crate::schema::cf(&self.db, CF_BLOBS)?,
            root,
            crate::schema::encode(&status)?,
        );
        if status.complete() {
            let outboard = self.build_outboard(&status, index, data)?;
            batch.put_cf(
                crate::schema::cf(&self.db, CF_OUTBOARDS)?,
                root,
                crate::schema::encode(&outboard)?,
            );
        }
        self.db.write(batch)?;
        Ok(status)
    }

    /// The outboard of a blob whose last missing piece, `index`, is `data` (not yet written).
    fn build_outboard(&self, status: &BlobStatus, index: u64, data: &[u8]) -> Result<Outboard> {
        let pieces = crate::schema::cf(&self.db, CF_PIECES)?;
        let mut cvs = Vec::with_capacity(status.pieces() as usize);
        for i in 0..status.pieces() {
            let cv = if i == index {
                piece_cv(status.size, i, data)
            } else {
                let piece = self
                    .db
                    .get_pinned_cf(pieces, piece_key(&status.root, i))?
                    .ok_or_else(|| corrupt("piece", format!("piece {i} is marked but absent")))?;
                piece_cv(status.size, i, &piece)
            };
            cvs.push(cv);
        }
        let outboard = Outboard::from_pieces(status.size, cvs);
        if outboard.root().is_some_and(|root| root != status.root) {
            return Err(corrupt("blob", "verified pieces do not hash to the root"));
        }
        Ok(outboard)
    }

    /// Stores local data whole (what a client adds before offering it); returns its root.
    pub fn add(&self, data: &[u8]) -> Result<[u8; 32]> {
        let size = data.len() as u64;
        let (root, outboard) = Outboard::compute(data, size).map_err(|e| corrupt("data", e))?;
        // The data in hand fixes the size its root commits to: a partial blob recorded under
        // this root with another size (a deal that named a wrong one, perhaps to make this
        // node fail to keep a job's output) can never be completed, and gives way.
        self.remove_if(&root, |status| status.size != size && !status.complete())?;
        self.begin(&root, size)?;
        for index in 0..piece_count(size) {
            let start = (index * PIECE_LEN) as usize;
            let len = piece_len(size, index).unwrap_or(0) as usize;
            self.put_piece(
                &root,
                index,
                &data[start..start + len],
                &outboard.piece_path(index),
            )?;
        }
        Ok(root)
    }

    fn outboard(&self, status: &BlobStatus) -> Result<Arc<Outboard>> {
        if !status.complete() {
            return Err(StorageError::Incomplete {
                root: hex(&status.root),
                present: status.present,
                pieces: status.pieces(),
            });
        }
        let mut last = self.last_outboard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((root, outboard)) = last.as_ref()
            && *root == status.root
        {
            return Ok(outboard.clone());
        }
        let bytes = self
            .db
            .get_cf(crate::schema::cf(&self.db, CF_OUTBOARDS)?, status.root)?
            .ok_or_else(|| corrupt("outboard", "a complete blob has no outboard"))?;
        let outboard =
            Arc::new(Outboard::try_from_slice(&bytes).map_err(|e| corrupt("outboard", e))?);
        *last = Some((status.root, outboard.clone()));
        Ok(outboard)
    }

    fn read_piece(&self, status: &BlobStatus, index: u64) -> Result<Vec<u8>> {
        if index >= status.pieces() {
            return Err(StorageError::OutOfRange {
                index,
                count: status.pieces(),
            });
        }
        self.db
            .get_cf(
                crate::schema::cf(&self.db, CF_PIECES)?,
                piece_key(&status.root, index),
            )?
            .ok_or_else(|| StorageError::Incomplete {
                root: hex(&status.root),
                present: status.present,
                pieces: status.pieces(),
            })
    }

    /// The whole of a complete blob, read into memory.
    pub fn read(&self, root: &[u8; 32]) -> Result<Vec<u8>> {
        let status = self.known(root)?;
        if !status.complete() {
            return Err(StorageError::Incomplete {
                root: hex(root),
                present: status.present,
                pieces: status.pieces(),
            });
        }
        let mut data = Vec::with_capacity(status.size as usize);
        for index in 0..status.pieces() {
            data.extend_from_slice(&self.read_piece(&status, index)?);
        }
        Ok(data)
    }

    /// Piece `index` of a complete blob with its proof, as sent to a peer.
    pub fn piece(&self, root: &[u8; 32], index: u64) -> Result<PieceProof> {
        let status = self.known(root)?;
        let outboard = self.outboard(&status)?;
        Ok(PieceProof {
            data: self.read_piece(&status, index)?,
            path: outboard.piece_path(index),
        })
    }

    /// The proof of chunk `index` of a complete blob: the siblings inside its piece are hashed
    /// from the piece, those above it come from the outboard.
    pub fn prove(&self, root: &[u8; 32], index: u64) -> Result<ChunkProof> {
        let status = self.known(root)?;
        let len = chunk_proof::chunk_len(status.size, index).ok_or(StorageError::OutOfRange {
            index,
            count: chunk_proof::chunk_count(status.size),
        })?;
        let outboard = self.outboard(&status)?;
        let piece_index = index * CHUNK_LEN / PIECE_LEN;
        let piece = self.read_piece(&status, piece_index)?;
        let piece_start = piece_index * PIECE_LEN;
        let chunk_start = index * CHUNK_LEN;
        let mut path = if status.pieces() == 1 {
            // One piece is the whole tree.
            siblings_within(&piece, 0, chunk_start, CHUNK_LEN)
        } else {
            siblings_within(&piece, piece_start, chunk_start, CHUNK_LEN)
        };
        path.extend(outboard.piece_path(piece_index));
        let offset = (chunk_start - piece_start) as usize;
        Ok(ChunkProof {
            chunk: piece[offset..offset + len as usize].to_vec(),
            path,
        })
    }

    /// Deletes a blob and everything kept for it; returns whether it was there.
    pub fn remove(&self, root: &[u8; 32]) -> Result<bool> {
        self.remove_if(root, |_| true)
    }

    /// Deletes a blob of which no piece has arrived (what a failed fetch began); returns
    /// whether it did. Checked under the write lock, so a fetch of the same root that has
    /// stored a piece meanwhile keeps it.
    pub fn remove_if_empty(&self, root: &[u8; 32]) -> Result<bool> {
        self.remove_if(root, |status| status.present == 0)
    }

    /// Deletes blob `root` if what is stored of it passes `check`, checked and deleted under
    /// the write lock.
    fn remove_if(&self, root: &[u8; 32], check: impl Fn(&BlobStatus) -> bool) -> Result<bool> {
        let _guard = self.lock();
        if !self.status(root)?.is_some_and(|status| check(&status)) {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        let removed = self.delete_blob_into(&mut batch, root)?;
        self.write(batch)?;
        Ok(removed)
    }

    /// Adds the deletion of blob `root` to `batch`, with its mark as brought in by a holder
    /// (data that arrives again later is not the holder's unless it brings it in again);
    /// returns whether it is there to delete.
    fn delete_blob_into(&self, batch: &mut WriteBatch, root: &[u8; 32]) -> Result<bool> {
        batch.delete_cf(self.holds_cf(holds::CF_BROUGHT_IN)?, root);
        let Some(status) = self.status(root)? else {
            return Ok(false);
        };
        let (from, to) = (piece_key(root, 0), piece_key(root, status.pieces()));
        batch.delete_range_cf(crate::schema::cf(&self.db, CF_PIECES)?, from, to);
        batch.delete_range_cf(crate::schema::cf(&self.db, CF_PRESENT)?, from, to);
        batch.delete_cf(crate::schema::cf(&self.db, CF_OUTBOARDS)?, root);
        batch.delete_cf(crate::schema::cf(&self.db, CF_BLOBS)?, root);
        Ok(true)
    }

    /// Writes `batch`, then forgets the cached outboard (the batch may have deleted its blob).
    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.db.write(batch)?;
        *self.last_outboard.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }
}

/// Holders: the deals a provider serves and the compute jobs whose data it keeps (see
/// [`holds`]).
impl ChunkStore {
    /// Takes deal `id` for data `root` of `size` bytes (a provider's own bookkeeping): records
    /// the deal as a holder of the root and makes room for the data. Data the store lacks is
    /// the deal's to delete when it ends ([`Self::release_deal`]); data it holds already (the
    /// operator's own, or another holder's) is not. Calling it again is harmless, and marks
    /// the data the deal's again if a failed fetch removed it. Returns what is stored of it.
    pub fn take_deal(&self, id: &[u8; 32], root: &[u8; 32], size: u64) -> Result<BlobStatus> {
        let _guard = self.lock();
        let mut batch = WriteBatch::default();
        let holders = self.holds_cf(holds::CF_HOLDERS)?;
        if let Some(old) = holds::deal_root(&self.db, id)? {
            batch.delete_cf(holders, holds::Holder::Deal(*id).key(&old));
        }
        batch.put_cf(self.holds_cf(holds::CF_DEALS)?, id, root);
        batch.put_cf(holders, holds::Holder::Deal(*id).key(root), []);
        let status = match self.status(root)? {
            Some(status) if status.size == size => status,
            Some(status) => {
                return Err(StorageError::BlobSize {
                    root: hex(root),
                    stored: status.size,
                    offered: size,
                });
            }
            None => {
                if size > MAX_BLOB_SIZE {
                    return Err(StorageError::BlobTooLarge {
                        size,
                        max: MAX_BLOB_SIZE,
                    });
                }
                let status = BlobStatus {
                    root: *root,
                    size,
                    present: 0,
                };
                batch.put_cf(
                    crate::schema::cf(&self.db, CF_BLOBS)?,
                    root,
                    crate::schema::encode(&status)?,
                );
                batch.put_cf(self.holds_cf(holds::CF_BROUGHT_IN)?, root, []);
                status
            }
        };
        self.write(batch)?;
        Ok(status)
    }

    /// Forgets deal `id` and deletes its data if the deal brought it in and no job or other
    /// deal still holds it (then it goes with the last of them); returns whether the data was
    /// deleted.
    pub fn release_deal(&self, id: &[u8; 32]) -> Result<bool> {
        let _guard = self.lock();
        let Some(root) = holds::deal_root(&self.db, id)? else {
            return Ok(false);
        };
        let holder = holds::Holder::Deal(*id);
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.holds_cf(holds::CF_DEALS)?, id);
        batch.delete_cf(self.holds_cf(holds::CF_HOLDERS)?, holder.key(&root));
        let deleted = !holds::held_by_another(&self.db, &root, holder)?
            && self.brought_in(&root)?
            && self.delete_blob_into(&mut batch, &root)?;
        self.write(batch)?;
        Ok(deleted)
    }

    /// Makes compute job `job` hold `root`, before the job fetches or computes it. If the
    /// store lacks it, the job brings it in and it goes with its last holder; data the store
    /// already had, whole or in part, stays.
    pub fn hold_for_job(&self, job: &[u8; 32], root: &[u8; 32]) -> Result<()> {
        let _guard = self.lock();
        let mut hold = holds::job_hold(&self.db, job)?.unwrap_or_default();
        let mut batch = WriteBatch::default();
        if !hold.roots.contains(root) {
            if hold.roots.len() >= MAX_JOB_BLOBS {
                return Err(StorageError::TooManyJobBlobs {
                    job: hex(job),
                    max: MAX_JOB_BLOBS,
                });
            }
            hold.roots.push(*root);
            batch.put_cf(
                self.holds_cf(holds::CF_JOBS)?,
                job,
                crate::schema::encode(&hold)?,
            );
            batch.put_cf(
                self.holds_cf(holds::CF_HOLDERS)?,
                holds::Holder::Job(*job).key(root),
                [],
            );
        }
        // Also when the job holds it already: a fetch that failed removed what it began.
        if self.status(root)?.is_none() {
            batch.put_cf(self.holds_cf(holds::CF_BROUGHT_IN)?, root, []);
        }
        self.write(batch)
    }

    /// Records that job `job` was found over at height `at` (a later call does not move it).
    pub fn job_ended(&self, job: &[u8; 32], at: u64) -> Result<()> {
        let _guard = self.lock();
        if let Some(mut hold) = holds::job_hold(&self.db, job)?
            && hold.ended_at.is_none()
        {
            hold.ended_at = Some(at);
            self.db.put_cf(
                self.holds_cf(holds::CF_JOBS)?,
                job,
                crate::schema::encode(&hold)?,
            )?;
        }
        Ok(())
    }

    /// Forgets job `job` and deletes each blob it held that a holder brought in and nobody
    /// else holds; returns the number of blobs deleted.
    pub fn release_job(&self, job: &[u8; 32]) -> Result<usize> {
        let _guard = self.lock();
        let Some(hold) = holds::job_hold(&self.db, job)? else {
            return Ok(0);
        };
        let holder = holds::Holder::Job(*job);
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.holds_cf(holds::CF_JOBS)?, job);
        let mut deleted = 0;
        for root in &hold.roots {
            batch.delete_cf(self.holds_cf(holds::CF_HOLDERS)?, holder.key(root));
            if holds::held_by_another(&self.db, root, holder)? {
                continue;
            }
            if self.brought_in(root)? && self.delete_blob_into(&mut batch, root)? {
                deleted += 1;
            }
        }
        self.write(batch)?;
        Ok(deleted)
    }

    /// Up to `limit` compute jobs holding data, by job id, from the first after `after`; a
    /// record that cannot be read comes as `None`.
    pub fn job_holds(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<([u8; 32], Option<JobHold>)>> {
        holds::job_holds(&self.db, after, limit)
    }

    /// Keeps `root` for the operator: it no longer goes with the deals and jobs that hold it
    /// (an upload or a fetch the operator asked for, maybe while a job fetches the same root).
    pub fn keep(&self, root: &[u8; 32]) -> Result<()> {
        let _guard = self.lock();
        Ok(self
            .db
            .delete_cf(self.holds_cf(holds::CF_BROUGHT_IN)?, root)?)
    }

    fn holds_cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily> {
        holds::cf(&self.db, name)
    }

    fn brought_in(&self, root: &[u8; 32]) -> Result<bool> {
        Ok(self
            .db
            .get_cf(self.holds_cf(holds::CF_BROUGHT_IN)?, root)?
            .is_some())
    }

    /// The deals this node serves: (deal id, data root).
    pub fn deals(&self) -> Result<Vec<([u8; 32], [u8; 32])>> {
        holds::deals(&self.db)
    }
}

/// A root as lowercase hex, for messages.
pub fn hex(root: &[u8; 32]) -> String {
    root.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 253) as u8).collect()
    }

    fn store() -> (tempfile::TempDir, ChunkStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn pieces_prove_against_the_root_for_awkward_sizes() {
        for size in [
            0,
            1,
            PIECE_LEN - 1,
            PIECE_LEN,
            PIECE_LEN + 1,
            3 * PIECE_LEN + 5000,
            5 * PIECE_LEN,
        ] {
            let bytes = data(size as usize);
            let (root, outboard) = Outboard::compute(&bytes[..], size).unwrap();
            assert_eq!(&root, blake3::hash(&bytes).as_bytes());
            if piece_count(size) > 1 {
                assert_eq!(outboard.root(), Some(root));
            }
            for index in 0..piece_count(size) {
                let start = (index * PIECE_LEN) as usize;
                let piece = &bytes[start..start + piece_len(size, index).unwrap() as usize];
                let path = outboard.piece_path(index);
                assert!(
                    verify_piece(&root, size, index, piece, &path),
                    "size {size} piece {index}"
                );
                if !piece.is_empty() {
                    let mut bad = piece.to_vec();
                    let middle = bad.len() / 2;
                    bad[middle] ^= 0x80;
                    assert!(!verify_piece(&root, size, index, &bad, &path));
                }
                let next = index + 1;
                if piece_len(size, next) == Some(piece.len() as u64) {
                    assert!(
                        !verify_piece(&root, size, next, piece, &path),
                        "moved to {next}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_blob_arrives_piece_by_piece_in_any_order_and_proves_every_chunk() {
        let (_dir, store) = store();
        let size = 3 * PIECE_LEN + 4097;
        let bytes = data(size as usize);
        let (root, outboard) = Outboard::compute(&bytes[..], size).unwrap();
        store.begin(&root, size).unwrap();
        assert_eq!(store.missing(&root).unwrap(), vec![0, 1, 2, 3]);
        for index in [2, 0, 3] {
            let start = (index * PIECE_LEN) as usize;
            let piece = &bytes[start..start + piece_len(size, index).unwrap() as usize];
            store
                .put_piece(&root, index, piece, &outboard.piece_path(index))
                .unwrap();
        }
        assert_eq!(store.missing(&root).unwrap(), vec![1]);
        assert!(matches!(
            store.prove(&root, 0),
            Err(StorageError::Incomplete { .. })
        ));
        // A forged piece is refused and changes nothing.
        let forged = vec![0u8; PIECE_LEN as usize];
        assert!(matches!(
            store.put_piece(&root, 1, &forged, &outboard.piece_path(1)),
            Err(StorageError::InvalidPiece { index: 1, .. })
        ));
        assert_eq!(store.status(&root).unwrap().unwrap().present, 3);
        let start = PIECE_LEN as usize;
        let status = store
            .put_piece(&root, 1, &bytes[start..2 * start], &outboard.piece_path(1))
            .unwrap();
        assert!(status.complete());
        for index in (0..chunk_proof::chunk_count(size))
            .step_by(97)
            .chain([chunk_proof::chunk_count(size) - 1])
        {
            let proof = store.prove(&root, index).unwrap();
            assert_eq!(
                proof,
                chunk_proof::prove(&bytes, index).unwrap(),
                "chunk {index}"
            );
        }
        let piece = store.piece(&root, 3).unwrap();
        assert!(verify_piece(&root, size, 3, &piece.data, &piece.path));
        assert!(matches!(
            store.piece(&root, 4),
            Err(StorageError::OutOfRange { .. })
        ));
        assert!(matches!(
            store.begin(&root, size + 1),
            Err(StorageError::BlobSize { .. })
        ));
        assert!(store.remove(&root).unwrap());
        assert!(store.status(&root).unwrap().is_none());
        assert!(matches!(
            store.prove(&root, 0),
            Err(StorageError::UnknownBlob { .. })
        ));
    }

    /// A blob begun under a wrong size (what a deal naming that root and size records) gives
    /// way to the whole data added later, instead of refusing it.
    #[test]
    fn whole_data_replaces_a_partial_blob_begun_with_a_wrong_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let bytes = data(3000);
        let (root, _) = Outboard::compute(bytes.as_slice(), 3000).unwrap();
        store.begin(&root, 5000).unwrap();
        assert_eq!(store.add(&bytes).unwrap(), root);
        let status = store.status(&root).unwrap().unwrap();
        assert!(status.complete() && status.size == 3000);
        assert_eq!(store.read(&root).unwrap(), bytes);
    }

    #[test]
    fn small_blobs_and_deals_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = data(3000);
        let root = {
            let store = ChunkStore::open(dir.path()).unwrap();
            let root = *blake3::hash(&bytes).as_bytes();
            store.take_deal(&[9; 32], &root, 3000).unwrap();
            store.add(&bytes).unwrap();
            root
        };
        let store = ChunkStore::open(dir.path()).unwrap();
        assert!(store.status(&root).unwrap().unwrap().complete());
        assert_eq!(store.read(&root).unwrap(), bytes);
        let empty = store.add(&[]).unwrap();
        assert_eq!(&empty, blake3::hash(&[]).as_bytes());
        assert!(store.read(&empty).unwrap().is_empty());
        assert_eq!(store.deals().unwrap(), vec![([9; 32], root)]);
        for index in 0..3 {
            assert_eq!(
                store.prove(&root, index).unwrap(),
                chunk_proof::prove(&bytes, index).unwrap()
            );
        }
        assert!(store.release_deal(&[9; 32]).unwrap());
        assert!(store.deals().unwrap().is_empty());
        assert!(store.status(&root).unwrap().is_none());
    }
}
