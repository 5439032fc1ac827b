//! Errors returned by the store.

/// Everything that can go wrong reading or writing the node's database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB itself failed (disk full, permissions, a lock held by another process, ...).
    #[error(
        "database error: {0} (is another cairn process using this data directory, or is the disk full?)"
    )]
    Rocks(#[from] rocksdb::Error),
    /// A value on disk does not decode: the data directory is damaged or from another version.
    #[error(
        "corrupt {what} in the database: {detail}; restore the data directory from a backup or start a new one"
    )]
    Corrupt {
        /// Which kind of record failed to decode.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A state-tree update was computed on another state than the head it is committed on.
    #[error(
        "the state root was computed on state {computed_on}, but the head's state is {head}: compute it again on the head"
    )]
    TreeUpdateNotOnHead {
        /// The root the update started from.
        computed_on: alloy_primitives::B256,
        /// The head's root.
        head: alloy_primitives::B256,
    },
    /// A block was offered out of order.
    #[error("block {got} does not extend the head: expected height {expected}")]
    NotNextBlock {
        /// The height the store expects next.
        expected: u64,
        /// The height that was offered.
        got: u64,
    },
    /// The data directory holds a chain other than the one being opened.
    #[error(
        "this data directory belongs to a chain with genesis {stored}, not {expected}; use another --datadir"
    )]
    GenesisMismatch {
        /// Genesis hash recorded in the database.
        stored: String,
        /// Genesis hash of the configuration being started.
        expected: String,
    },
    /// The data directory was written by a build that lays data out differently.
    #[error(
        "this data directory was written in storage format {found}; this build reads format {expected}: start a new --datadir, or run the build that wrote it"
    )]
    Format {
        /// The format recorded in the database (1: written before formats were recorded).
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
    /// No blob with this root is stored or being stored.
    #[error("no data with root {root} is stored here")]
    UnknownBlob {
        /// The root, hex.
        root: String,
    },
    /// A piece does not belong to the data: the sender sent something else.
    #[error("piece {index} of {root} does not match its root; fetch it from another peer")]
    InvalidPiece {
        /// The root, hex.
        root: String,
        /// The piece's index.
        index: u64,
    },
    /// A compute job would hold more blobs than a job has.
    #[error(
        "compute job {job} already holds {max} blobs (its module, input and output); this is a bug in the caller"
    )]
    TooManyJobBlobs {
        /// The job id, hex.
        job: String,
        /// The most a job holds.
        max: usize,
    },
    /// The same root was offered with another size than the one stored.
    #[error("data {root} is stored with {stored} bytes, not {offered}")]
    BlobSize {
        /// The root, hex.
        root: String,
        /// The size stored.
        stored: u64,
        /// The size offered.
        offered: u64,
    },
    /// A blob over the store's size limit.
    #[error("data of {size} bytes is over the limit of {max} bytes; split it")]
    BlobTooLarge {
        /// The size offered.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The blob is still arriving.
    #[error("data {root} is incomplete: {present} of {pieces} pieces stored")]
    Incomplete {
        /// The root, hex.
        root: String,
        /// Pieces stored.
        present: u64,
        /// Pieces in all.
        pieces: u64,
    },
    /// A piece or chunk index past the end of the data.
    #[error("index {index} is past the end: the data has {count}")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// How many there are.
        count: u64,
    },
}

impl StorageError {
    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

/// revm needs to know whether a database error aborts execution: all of ours do.
impl revm::database_interface::DBErrorMarker for StorageError {}

/// Result type of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
