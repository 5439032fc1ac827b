//! Who holds each blob: the deals a provider serves and the compute jobs whose data it keeps.
//!
//! A blob goes when its last holder lets go, and only if a holder brought it in. A deal always
//! does (its data is the deal's). A job does only for data the store lacked when the job first
//! asked for it, so the node's own data never goes with a job. An index keyed by root, then
//! holder, answers "does anyone else hold this root?" with one seek. Every change to the
//! holders, the index and the blobs they delete goes in one write batch, so a crash leaves
//! either the holder or nothing.

use borsh::{BorshDeserialize, BorshSerialize};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{ChunkStore, corrupt, hex};
use crate::error::{Result, StorageError};

const CF_DEALS: &str = "deals";
const CF_JOBS: &str = "jobs";
/// Root ‖ holder kind ‖ holder id → nothing: who holds each root.
const CF_HOLDERS: &str = "holders";
/// Root → nothing: a holder brought the blob in, so it goes with its last holder.
const CF_BROUGHT_IN: &str = "brought_in";

/// The column families this module keeps.
pub(super) const FAMILIES: [&str; 4] = [CF_DEALS, CF_JOBS, CF_HOLDERS, CF_BROUGHT_IN];

/// The most blobs one compute job holds: its module, its input and its output.
pub const MAX_JOB_BLOBS: usize = 3;

/// The kinds of holder, as the index spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Deal([u8; 32]),
    Job([u8; 32]),
}

impl Holder {
    fn key(self, root: &[u8; 32]) -> [u8; 65] {
        let (kind, id) = match self {
            Self::Deal(id) => (1, id),
            Self::Job(id) => (2, id),
        };
        let mut key = [0; 65];
        key[..32].copy_from_slice(root);
        key[32] = kind;
        key[33..].copy_from_slice(&id);
        key
    }
}

/// The blobs a compute job uses (module, input, output), and the height at which the job was
/// found over (`None` while it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct JobHold {
    /// The roots the job holds, at most [`MAX_JOB_BLOBS`].
    pub roots: Vec<[u8; 32]>,
    /// The height at which the job was found over.
    pub ended_at: Option<u64>,
}

fn id_of(bytes: &[u8], what: &'static str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| corrupt(what, "not 32 bytes"))
}

impl ChunkStore {
    /// Remembers that this node serves deal `id`, whose data is `root` (a provider's own
    /// bookkeeping); the data goes with the deal ([`Self::release_deal`]).
    pub fn record_deal(&self, id: &[u8; 32], root: &[u8; 32]) -> Result<()> {
        let _guard = self.lock();
        let mut batch = WriteBatch::default();
        if let Some(old) = self.deal_root(id)? {
            batch.delete_cf(self.cf(CF_HOLDERS)?, Holder::Deal(*id).key(&old));
        }
        batch.put_cf(self.cf(CF_DEALS)?, id, root);
        batch.put_cf(self.cf(CF_HOLDERS)?, Holder::Deal(*id).key(root), []);
        self.write(batch)
    }

    /// Forgets deal `id` and deletes its data unless a job or another deal still holds it
    /// (then the data goes with the last of them); returns whether the data was deleted.
    pub fn release_deal(&self, id: &[u8; 32]) -> Result<bool> {
        let _guard = self.lock();
        let Some(root) = self.deal_root(id)? else {
            return Ok(false);
        };
        let holder = Holder::Deal(*id);
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_DEALS)?, id);
        batch.delete_cf(self.cf(CF_HOLDERS)?, holder.key(&root));
        let deleted = if self.held_by_another(&root, holder)? {
            batch.put_cf(self.cf(CF_BROUGHT_IN)?, root, []);
            false
        } else {
            batch.delete_cf(self.cf(CF_BROUGHT_IN)?, root);
            self.delete_blob_into(&mut batch, &root)?
        };
        self.write(batch)?;
        Ok(deleted)
    }

    /// Makes compute job `job` hold `root`, before the job fetches or computes it. If the
    /// store lacks it, the job brings it in and it goes with its last holder; data the store
    /// already had, whole or in part, stays.
    pub fn hold_for_job(&self, job: &[u8; 32], root: &[u8; 32]) -> Result<()> {
        let _guard = self.lock();
        let mut hold = self.job_hold(job)?.unwrap_or_default();
        let mut batch = WriteBatch::default();
        if !hold.roots.contains(root) {
            if hold.roots.len() >= MAX_JOB_BLOBS {
                return Err(StorageError::TooManyJobBlobs {
                    job: hex(job),
                    max: MAX_JOB_BLOBS,
                });
            }
            hold.roots.push(*root);
            batch.put_cf(self.cf(CF_JOBS)?, job, crate::schema::encode(&hold)?);
            batch.put_cf(self.cf(CF_HOLDERS)?, Holder::Job(*job).key(root), []);
        }
        // Also when the job holds it already: a fetch that failed removed what it began.
        if self.status(root)?.is_none() {
            batch.put_cf(self.cf(CF_BROUGHT_IN)?, root, []);
        }
        self.write(batch)
    }

    /// Records that job `job` was found over at height `at` (a later call does not move it).
    pub fn job_ended(&self, job: &[u8; 32], at: u64) -> Result<()> {
        let _guard = self.lock();
        if let Some(mut hold) = self.job_hold(job)?
            && hold.ended_at.is_none()
        {
            hold.ended_at = Some(at);
            self.db
                .put_cf(self.cf(CF_JOBS)?, job, crate::schema::encode(&hold)?)?;
        }
        Ok(())
    }

    /// Forgets job `job` and deletes each blob it held that a holder brought in and nobody
    /// else holds; returns the number of blobs deleted.
    pub fn release_job(&self, job: &[u8; 32]) -> Result<usize> {
        let _guard = self.lock();
        let Some(hold) = self.job_hold(job)? else {
            return Ok(0);
        };
        let holder = Holder::Job(*job);
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_JOBS)?, job);
        let mut deleted = 0;
        for root in &hold.roots {
            batch.delete_cf(self.cf(CF_HOLDERS)?, holder.key(root));
            if self.held_by_another(root, holder)? {
                continue;
            }
            let brought_in = self.db.get_cf(self.cf(CF_BROUGHT_IN)?, root)?.is_some();
            batch.delete_cf(self.cf(CF_BROUGHT_IN)?, root);
            if brought_in && self.delete_blob_into(&mut batch, root)? {
                deleted += 1;
            }
        }
        self.write(batch)?;
        Ok(deleted)
    }

    /// Every compute job holding data, by job id.
    pub fn job_holds(&self) -> Result<Vec<([u8; 32], JobHold)>> {
        self.db
            .iterator_cf(self.cf(CF_JOBS)?, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item?;
                let hold = JobHold::try_from_slice(&value).map_err(|e| corrupt("job hold", e))?;
                Ok((id_of(&key, "job id")?, hold))
            })
            .collect()
    }

    /// The deals this node serves: (deal id, data root).
    pub fn deals(&self) -> Result<Vec<([u8; 32], [u8; 32])>> {
        self.db
            .iterator_cf(self.cf(CF_DEALS)?, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item?;
                Ok((id_of(&key, "deal id")?, id_of(&value, "deal root")?))
            })
            .collect()
    }

    /// Indexes the deals of a store written before the index existed (they were its only
    /// holders then).
    pub(super) fn index_holders_if_missing(&self) -> Result<()> {
        let mut holders = self
            .db
            .iterator_cf(self.cf(CF_HOLDERS)?, IteratorMode::Start);
        if holders.next().is_some() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for (id, root) in self.deals()? {
            batch.put_cf(self.cf(CF_HOLDERS)?, Holder::Deal(id).key(&root), []);
        }
        Ok(self.db.write(batch)?)
    }

    /// Whether anyone but `holder` holds `root`.
    fn held_by_another(&self, root: &[u8; 32], holder: Holder) -> Result<bool> {
        let mine = holder.key(root);
        let from = IteratorMode::From(root, Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_HOLDERS)?, from) {
            let (key, _) = item?;
            if !key.starts_with(root) {
                break;
            }
            if *key != mine {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn deal_root(&self, id: &[u8; 32]) -> Result<Option<[u8; 32]>> {
        self.db
            .get_cf(self.cf(CF_DEALS)?, id)?
            .map(|root| id_of(&root, "deal root"))
            .transpose()
    }

    fn job_hold(&self, job: &[u8; 32]) -> Result<Option<JobHold>> {
        self.db
            .get_cf(self.cf(CF_JOBS)?, job)?
            .map(|bytes| JobHold::try_from_slice(&bytes).map_err(|e| corrupt("job hold", e)))
            .transpose()
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily> {
        crate::schema::cf(&self.db, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ChunkStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn root(data: &[u8]) -> [u8; 32] {
        *blake3::hash(data).as_bytes()
    }

    fn whole(store: &ChunkStore, root: &[u8; 32]) -> bool {
        store
            .status(root)
            .unwrap()
            .is_some_and(|status| status.complete())
    }

    /// A job brings in what the store lacked; what it brought goes with its last holder, and
    /// the node's own data, a partial blob it found, and data a later job still uses stay.
    #[test]
    fn a_jobs_data_goes_with_its_last_holder_and_the_nodes_own_stays() {
        let (_dir, store) = store();
        let own = store.add(b"the node's own").unwrap();
        let (first, second, third) = ([1; 32], [2; 32], [3; 32]);
        let (module, input, output) = (root(b"module"), root(b"input"), root(b"output"));

        // The first job brings in the module and the output; the input is the node's own.
        for held in [module, own, output] {
            store.hold_for_job(&first, &held).unwrap();
        }
        store.add(b"module").unwrap();
        store.add(b"output").unwrap();
        assert!(matches!(
            store.hold_for_job(&first, &[7; 32]),
            Err(StorageError::TooManyJobBlobs { .. })
        ));
        // A later job uses the same module (the store has it now) and an input of which a
        // part was here before it.
        store.begin(&input, 5).unwrap();
        store.hold_for_job(&second, &module).unwrap();
        store.hold_for_job(&second, &input).unwrap();

        store.job_ended(&first, 50).unwrap();
        store.job_ended(&first, 80).unwrap();
        let holds = store.job_holds().unwrap();
        assert_eq!(
            holds[0],
            (
                first,
                JobHold {
                    roots: vec![module, own, output],
                    ended_at: Some(50),
                }
            )
        );
        assert_eq!(
            store.release_job(&first).unwrap(),
            1,
            "only the output goes"
        );
        assert!(!whole(&store, &output));
        assert!(whole(&store, &module), "the second job still uses it");
        assert!(whole(&store, &own));
        assert_eq!(store.release_job(&first).unwrap(), 0, "released once");
        assert_eq!(
            store.release_job(&second).unwrap(),
            1,
            "the module goes with it"
        );
        assert!(!whole(&store, &module));
        assert!(
            store.status(&input).unwrap().is_some(),
            "the partial blob was here before the job"
        );
        assert!(whole(&store, &own));

        // A fetch that failed removed what it began: holding the root again marks it brought
        // in again.
        store.hold_for_job(&third, &root(b"again")).unwrap();
        store.add(b"again").unwrap();
        store.remove(&root(b"again")).unwrap();
        store.hold_for_job(&third, &root(b"again")).unwrap();
        store.add(b"again").unwrap();
        assert_eq!(store.release_job(&third).unwrap(), 1);
        assert!(store.job_holds().unwrap().is_empty());
    }

    /// A deal's data that a job uses goes with whichever of the two lets go last, and two
    /// deals over one root keep it until both are over.
    #[test]
    fn a_deal_and_a_job_sharing_a_root_keep_it_until_both_let_go() {
        let (_dir, store) = store();
        let shared = store.add(b"shared").unwrap();
        let (deal, other_deal, job) = ([9; 32], [8; 32], [1; 32]);
        store.record_deal(&deal, &shared).unwrap();
        store.hold_for_job(&job, &shared).unwrap();
        assert!(!store.release_deal(&deal).unwrap());
        assert!(whole(&store, &shared), "the job still uses it");
        assert_eq!(
            store.release_job(&job).unwrap(),
            1,
            "the deal brought it in"
        );
        assert!(!whole(&store, &shared));

        let shared = store.add(b"shared").unwrap();
        store.record_deal(&deal, &shared).unwrap();
        store.record_deal(&other_deal, &shared).unwrap();
        assert!(!store.release_deal(&deal).unwrap());
        assert!(whole(&store, &shared));
        assert!(store.release_deal(&other_deal).unwrap());
        assert!(!whole(&store, &shared));
        assert!(!store.release_deal(&other_deal).unwrap(), "released once");
    }

    /// A store written before the holders' index indexes its deals when it opens, so two
    /// deals over one root still keep it.
    #[test]
    fn deals_recorded_before_the_index_are_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let shared = {
            let store = ChunkStore::open(dir.path()).unwrap();
            let shared = store.add(b"shared").unwrap();
            // What an older version wrote: the deals, and no index.
            for deal in [[9; 32], [8; 32]] {
                store
                    .db
                    .put_cf(store.cf(CF_DEALS).unwrap(), deal, shared)
                    .unwrap();
            }
            shared
        };
        let store = ChunkStore::open(dir.path()).unwrap();
        assert!(!store.release_deal(&[9; 32]).unwrap());
        assert!(whole(&store, &shared));
        assert!(store.release_deal(&[8; 32]).unwrap());
    }
}
