//! Who holds each blob: the deals a provider serves and the compute jobs whose data it keeps.
//!
//! A blob goes when its last holder lets go, and only if a holder brought it in. A deal always
//! does (its data is the deal's). A job does only for data the store lacked when the job first
//! asked for it, so the node's own data never goes with a job. An index keyed by root, then
//! holder, answers "does anyone else hold this root?" with one seek. Every change to the
//! holders, the index and the blobs they delete goes in one write batch, so a crash leaves
//! either the holder or nothing. The store's methods that change holders are in the parent
//! module; this one keeps the keys, the records and the reads.

use borsh::{BorshDeserialize, BorshSerialize};
use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch};

use crate::error::{Result, StorageError};

/// Deal id → root.
pub(super) const CF_DEALS: &str = "deals";
/// Job id → [`JobHold`].
pub(super) const CF_JOBS: &str = "jobs";
/// Root ‖ holder kind ‖ holder id → nothing: who holds each root.
pub(super) const CF_HOLDERS: &str = "holders";
/// Root → nothing: a holder brought the blob in, so it goes with its last holder.
pub(super) const CF_BROUGHT_IN: &str = "brought_in";

/// The column families this module keeps.
pub(super) const FAMILIES: [&str; 4] = [CF_DEALS, CF_JOBS, CF_HOLDERS, CF_BROUGHT_IN];

/// The most blobs one compute job holds: its module, its input and its output.
pub const MAX_JOB_BLOBS: usize = 3;

/// The kinds of holder, as the index spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    Deal([u8; 32]),
    Job([u8; 32]),
}

impl Holder {
    pub(super) fn key(self, root: &[u8; 32]) -> [u8; 65] {
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
    bytes
        .try_into()
        .map_err(|_| StorageError::corrupt(what, "not 32 bytes"))
}

pub(super) fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily> {
    crate::schema::cf(db, name)
}

/// Whether anyone but `holder` holds `root`.
pub(super) fn held_by_another(db: &DB, root: &[u8; 32], holder: Holder) -> Result<bool> {
    let mine = holder.key(root);
    let from = IteratorMode::From(root, Direction::Forward);
    for item in db.iterator_cf(cf(db, CF_HOLDERS)?, from) {
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

/// The root of deal `id`, if this node serves it.
pub(super) fn deal_root(db: &DB, id: &[u8; 32]) -> Result<Option<[u8; 32]>> {
    db.get_cf(cf(db, CF_DEALS)?, id)?
        .map(|root| id_of(&root, "deal root"))
        .transpose()
}

/// What job `job` holds, if anything.
pub(super) fn job_hold(db: &DB, job: &[u8; 32]) -> Result<Option<JobHold>> {
    db.get_cf(cf(db, CF_JOBS)?, job)?
        .map(|bytes| {
            JobHold::try_from_slice(&bytes).map_err(|e| StorageError::corrupt("job hold", e))
        })
        .transpose()
}

/// Up to `limit` jobs holding data, by job id, from the first after `after`; an unreadable
/// record comes as `None`.
pub(super) fn job_holds(
    db: &DB,
    after: Option<&[u8; 32]>,
    limit: usize,
) -> Result<Vec<([u8; 32], Option<JobHold>)>> {
    let from = after.map_or(IteratorMode::Start, |after| {
        IteratorMode::From(after, Direction::Forward)
    });
    let mut page = Vec::new();
    for item in db.iterator_cf(cf(db, CF_JOBS)?, from) {
        let (key, value) = item?;
        if after.is_some_and(|after| *key == after[..]) {
            continue;
        }
        if page.len() == limit {
            break;
        }
        page.push((id_of(&key, "job id")?, JobHold::try_from_slice(&value).ok()));
    }
    Ok(page)
}

/// Every deal served: (deal id, data root).
pub(super) fn deals(db: &DB) -> Result<Vec<([u8; 32], [u8; 32])>> {
    db.iterator_cf(cf(db, CF_DEALS)?, IteratorMode::Start)
        .map(|item| {
            let (key, value) = item?;
            Ok((id_of(&key, "deal id")?, id_of(&value, "deal root")?))
        })
        .collect()
}

/// Indexes the deals of a store written before the index existed (they were its only
/// holders then), their data marked brought in: those versions deleted it with the deal.
pub(super) fn index_holders_if_missing(db: &DB) -> Result<()> {
    if db
        .iterator_cf(cf(db, CF_HOLDERS)?, IteratorMode::Start)
        .next()
        .is_some()
    {
        return Ok(());
    }
    let mut batch = WriteBatch::default();
    for (id, root) in deals(db)? {
        batch.put_cf(cf(db, CF_HOLDERS)?, Holder::Deal(id).key(&root), []);
        batch.put_cf(cf(db, CF_BROUGHT_IN)?, root, []);
    }
    Ok(db.write(batch)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::ChunkStore;

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

    fn all_holds(store: &ChunkStore) -> Vec<([u8; 32], Option<JobHold>)> {
        store.job_holds(None, usize::MAX).unwrap()
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
        let first_hold = JobHold {
            roots: vec![module, own, output],
            ended_at: Some(50),
        };
        assert_eq!(all_holds(&store)[0], (first, Some(first_hold)));
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

        // A fetch that failed removed what it began; the job's retry brings it in again.
        let again = root(b"again");
        store.hold_for_job(&third, &again).unwrap();
        store.begin(&again, 5).unwrap();
        assert!(store.remove_if_empty(&again).unwrap());
        store.hold_for_job(&third, &again).unwrap();
        store.add(b"again").unwrap();
        assert_eq!(store.release_job(&third).unwrap(), 1);
        assert!(all_holds(&store).is_empty());
    }

    /// A job over a root the store lacks, whose fetch fails: once the failed fetch's blob is
    /// gone, the data is no longer the job's, so the operator storing it later keeps it.
    #[test]
    fn attack_a_job_over_data_the_operator_stores_later_does_not_take_it() {
        let (_dir, store) = store();
        let (job, later) = ([1; 32], root(b"stored later"));
        store.hold_for_job(&job, &later).unwrap();
        store.begin(&later, 12).unwrap();
        assert!(store.remove_if_empty(&later).unwrap(), "the fetch failed");
        store.add(b"stored later").unwrap();
        assert_eq!(store.release_job(&job).unwrap(), 0);
        assert!(whole(&store, &later));

        // The operator uploads a root while a job fetches it: the upload keeps it.
        let (job, both) = ([2; 32], root(b"fetched by both"));
        store.hold_for_job(&job, &both).unwrap();
        store.begin(&both, 15).unwrap();
        store.keep(&both).unwrap();
        store.add(b"fetched by both").unwrap();
        assert_eq!(store.release_job(&job).unwrap(), 0);
        assert!(whole(&store, &both));
    }

    /// A deal's data that a job uses goes with whichever of the two lets go last, two deals
    /// over one root keep it until both are over, and a deal over data the node held already
    /// leaves it.
    #[test]
    fn a_deal_and_a_job_sharing_a_root_keep_it_until_both_let_go() {
        let (_dir, store) = store();
        let shared = root(b"shared");
        let (deal, other_deal, job) = ([9; 32], [8; 32], [1; 32]);
        store.take_deal(&deal, &shared, 6).unwrap();
        store.add(b"shared").unwrap();
        store.hold_for_job(&job, &shared).unwrap();
        assert!(!store.release_deal(&deal).unwrap());
        assert!(whole(&store, &shared), "the job still uses it");
        assert_eq!(
            store.release_job(&job).unwrap(),
            1,
            "the deal brought it in"
        );
        assert!(!whole(&store, &shared));

        store.take_deal(&deal, &shared, 6).unwrap();
        store.take_deal(&other_deal, &shared, 6).unwrap();
        store.add(b"shared").unwrap();
        assert!(!store.release_deal(&deal).unwrap());
        assert!(whole(&store, &shared));
        assert!(store.release_deal(&other_deal).unwrap());
        assert!(!whole(&store, &shared));
        assert!(!store.release_deal(&other_deal).unwrap(), "released once");

        let own = store.add(b"the operator's").unwrap();
        assert!(store.take_deal(&deal, &own, 14).unwrap().complete());
        assert!(!store.release_deal(&deal).unwrap());
        assert!(
            whole(&store, &own),
            "a deal over the node's own data leaves it"
        );
        assert!(matches!(
            store.take_deal(&deal, &own, 15),
            Err(StorageError::BlobSize { .. })
        ));
    }

    /// A store written before the holders' index indexes its deals when it opens: two deals
    /// over one root keep it, and the last deal's end deletes it, as it did then.
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
                    .put_cf(cf(&store.db, CF_DEALS).unwrap(), deal, shared)
                    .unwrap();
            }
            shared
        };
        let store = ChunkStore::open(dir.path()).unwrap();
        assert!(!store.release_deal(&[9; 32]).unwrap());
        assert!(whole(&store, &shared));
        assert!(store.release_deal(&[8; 32]).unwrap());
    }

    /// Pages of job records go on after the last one read, skip unreadable ones as `None`.
    #[test]
    fn job_records_are_read_a_page_at_a_time() {
        let (_dir, store) = store();
        for job in [[1; 32], [2; 32], [3; 32]] {
            store.hold_for_job(&job, &root(&job)).unwrap();
        }
        store
            .db
            .put_cf(cf(&store.db, CF_JOBS).unwrap(), [2; 32], b"not a record")
            .unwrap();
        let first = store.job_holds(None, 2).unwrap();
        assert_eq!(first.len(), 2);
        assert!(first[0].1.is_some() && first[1].1.is_none());
        let rest = store.job_holds(Some(&[2; 32]), 2).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, [3; 32]);
    }
}
