//! Errors of the client SDK.

use std::num::ParseIntError;
use std::path::PathBuf;
use std::str::FromStr;

use cairn_primitives::units::BadAmount;
use cairn_primitives::{Address, B256, KeyError, U256};

/// Errors of the keystore.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No key of that name.
    #[error("no key named '{name}' in {dir}; `cairn wallet list` shows the keys there")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The keystore directory.
        dir: PathBuf,
    },
    /// The name is taken.
    #[error("a key named '{0}' already exists; choose another --name")]
    Exists(String),
    /// The name has characters that do not belong in a file name.
    #[error("key names are 1 to 64 letters, digits, '-' or '_'; '{0}' is not")]
    BadName(String),
    /// Wrong password, or a damaged file.
    #[error("wrong password for key '{0}' (or the key file was altered)")]
    WrongPassword(String),
    /// The file is not a keystore file.
    #[error("{path} is not a valid key file: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Errors of the client flows: talking to a node, sending transactions, storing and fetching
/// data, running jobs. Each message says what went wrong and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node's admin token file cannot be read.
    #[error(
        "cannot read the node's admin token at {file} ({source}): run this as the user that runs the node, or set CAIRN_ADMIN_TOKEN to the token"
    )]
    AdminToken {
        /// The file the node named.
        file: String,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The admin token is not a token (hex, 32 characters at least).
    #[error(
        "the admin token is not valid (hex, 32 characters at least): check CAIRN_ADMIN_TOKEN or the node's admin.token file"
    )]
    AdminTokenInvalid,
    /// The node is not on this machine, so its token file cannot be read here.
    #[error(
        "{url} is not a node on this machine: set CAIRN_ADMIN_TOKEN to the token in its data directory's admin.token"
    )]
    AdminTokenRemote {
        /// The node's URL.
        url: String,
    },
    /// The node named a file other than an admin token file.
    #[error(
        "the node named {file} as its admin token file, which is not an admin.token: refused (set CAIRN_ADMIN_TOKEN)"
    )]
    AdminTokenFileName {
        /// What it named.
        file: String,
    },
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The RPC URL cannot be used.
    #[error("invalid RPC URL '{url}'")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        #[source]
        source: jsonrpsee::core::ClientError,
    },
    /// No node answers at the URL.
    #[error(
        "cannot reach a node at {url} ({error}); is `cairn dev` running? (set --rpc or CAIRN_RPC)"
    )]
    Unreachable {
        /// The node's URL.
        url: String,
        /// The transport's error.
        error: jsonrpsee::core::ClientError,
    },
    /// The node answered a call with an error.
    #[error("the node refused: {}", .0.message())]
    Refused(jsonrpsee::types::ErrorObjectOwned),
    /// A contract refused a call; the reason is decoded from its revert data.
    #[error("{reason}")]
    ContractRefused {
        /// The contract's reason, in words.
        reason: String,
    },
    /// Any other failure of an RPC call.
    #[error("RPC to {url} failed: {error}")]
    Rpc {
        /// The node's URL.
        url: String,
        /// What failed.
        error: jsonrpsee::core::ClientError,
    },
    /// A contract's answer does not decode as its ABI says.
    #[error(transparent)]
    Decode(#[from] alloy_sol_types::Error),
    /// The sender cannot pay the value it sends.
    #[error("insufficient funds: {from} holds {balance} CRN, cannot send {value} CRN")]
    InsufficientFunds {
        /// The sender.
        from: Address,
        /// Its balance, in CRN.
        balance: String,
        /// The value sent, in CRN.
        value: String,
    },
    /// The transaction was included but reverted.
    #[error("{hash} was included in block {height} but reverted: {reason}")]
    Reverted {
        /// The transaction.
        hash: B256,
        /// The including block.
        height: u64,
        /// The contract's reason, in words.
        reason: String,
    },
    /// The transaction was included but the EVM stopped it.
    #[error(
        "{hash} was included in block {height} but the EVM stopped it ({reason}); if it ran out of gas, send it again with a --gas-limit above {gas_limit}"
    )]
    Halted {
        /// The transaction.
        hash: B256,
        /// The including block.
        height: u64,
        /// Why the EVM stopped.
        reason: String,
        /// The gas limit it had.
        gas_limit: u64,
    },
    /// The transaction was not included in time.
    #[error(
        "{hash} was not included within {timeout_s} s; it may still be; check with `cairn chain tx {hash}`"
    )]
    NotIncluded {
        /// The transaction.
        hash: B256,
        /// How long it was waited for, in seconds.
        timeout_s: u64,
    },
    /// The receipt lacks the event the flow needs.
    #[error("the receipt has no {event} event")]
    MissingEvent {
        /// The event's signature.
        event: &'static str,
    },
    /// Text that should be an address is not one.
    #[error("'{text}' is not a 20-byte 0x address")]
    BadAddress {
        /// The text.
        text: String,
        /// Why it does not parse.
        #[source]
        source: <Address as FromStr>::Err,
    },
    /// Text that should be a hash is not one.
    #[error("'{text}' is not a 32-byte 0x hash")]
    BadHash {
        /// The text.
        text: String,
        /// Why it does not parse.
        #[source]
        source: <B256 as FromStr>::Err,
    },
    /// Text that should name a block does not.
    #[error("'{text}' is not a height, hash or `latest`")]
    BadBlockId {
        /// The text.
        text: String,
        /// Why it does not parse as a height.
        #[source]
        source: ParseIntError,
    },
    /// Text that should be hex bytes is not.
    #[error("{what} '{text}' is not hex")]
    BadHex {
        /// What the text should be.
        what: &'static str,
        /// The text.
        text: String,
        /// Why it does not parse.
        #[source]
        source: hex::FromHexError,
    },
    /// Hex bytes of the wrong length.
    #[error("{what} must be {expected} bytes, not {actual}")]
    WrongLength {
        /// What the bytes should be.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// An amount of CRN that does not parse.
    #[error(transparent)]
    BadAmount(#[from] BadAmount),
    /// A size without a number.
    #[error("'{text}' is not a size such as 512MiB or 10GB")]
    BadSize {
        /// The text.
        text: String,
        /// Why the number does not parse.
        #[source]
        source: ParseIntError,
    },
    /// A size with a unit that is not known.
    #[error("unknown size unit '{unit}' in '{text}': use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB")]
    BadSizeUnit {
        /// The unit.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// A size beyond 2^64 bytes.
    #[error("'{0}' is too large")]
    SizeTooLarge(String),
    /// A file holds no private key.
    #[error("{path} holds no private key")]
    BadPrivateKey {
        /// The file.
        path: PathBuf,
        /// Why its text is not a key.
        #[source]
        source: KeyError,
    },
    /// A file cannot be opened.
    #[error("cannot open {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// No block matches.
    #[error("no block {0}")]
    NoBlock(String),
    /// No transaction has the hash.
    #[error("no transaction {0}")]
    NoTransaction(B256),
    /// A provider advert that offers nothing.
    #[error("offer something: --storage SIZE and/or --compute-cores N")]
    NothingOffered,
    /// Nothing is waiting to be claimed.
    #[error("nothing to claim for {0}")]
    NothingToClaim(Address),
    /// Fewer providers than asked for took the data.
    #[error(
        "only {placed} of {wanted} replicas placed: too few providers advertise room for {size} bytes or took the offer{}{}; run the same `cairn storage put` again later to complete them (`cairn provider list` shows the providers)",
        if .refusals.is_empty() { "" } else { " (refused: " },
        if .refusals.is_empty() { String::new() } else { format!("{})", .refusals) }
    )]
    ReplicasShort {
        /// Providers holding (or taking) the data now.
        placed: usize,
        /// Replicas asked for.
        wanted: usize,
        /// The data's size, bytes.
        size: u64,
        /// The providers that refused, and why; refused deals were cancelled, their escrow
        /// claimable with `cairn rewards claim`.
        refusals: String,
    },
    /// Deals were not accepted in time.
    #[error(
        "{pending} deal(s) not accepted within {timeout_s} s; they may be later (`cairn storage deals {client}`), or take the escrow back with `cairn storage cancel DEAL --from {from}`"
    )]
    DealsNotAccepted {
        /// Deals still proposed.
        pending: usize,
        /// How long they were waited for, in seconds.
        timeout_s: u64,
        /// The deals' client.
        client: Address,
        /// The name of the client's key.
        from: String,
    },
    /// The node could not fetch the data.
    #[error("cannot fetch {root}: {reason}")]
    FetchFailed {
        /// The data's root.
        root: B256,
        /// The node's reason.
        reason: String,
    },
    /// The data was not fetched in time.
    #[error("{root} not fetched within {timeout_s} s ({present} of {pieces} pieces)")]
    FetchTimeout {
        /// The data's root.
        root: B256,
        /// How long it was waited for, in seconds.
        timeout_s: u64,
        /// Pieces fetched.
        present: u64,
        /// Pieces in all.
        pieces: u64,
    },
    /// The node no longer holds data it fetched.
    #[error("the node lost {0} after fetching it")]
    Lost(B256),
    /// The node served a piece that fails its check.
    #[error(
        "the node served piece {index} of {root} that does not match the root; its store may be damaged"
    )]
    BadPiece {
        /// The data's root.
        root: B256,
        /// The piece.
        index: u64,
    },
    /// No compute provider has advertised.
    #[error("no compute provider has advertised yet; check `cairn provider list`")]
    NoComputeProvider,
    /// Compute providers ask more than the client pays.
    #[error("compute providers ask up to {price} wei per fuel, above --max-price {max}")]
    TooExpensive {
        /// The highest price asked, wei per fuel.
        price: U256,
        /// The most the client pays, wei per fuel.
        max: u128,
    },
    /// No job has the id.
    #[error("no job {0} on this chain")]
    NoJob(B256),
    /// The job was not settled in time.
    #[error("job {job} not settled within {timeout_s} s; `cairn compute status {job}`")]
    JobTimeout {
        /// The job.
        job: B256,
        /// How long it was waited for, in seconds.
        timeout_s: u64,
    },
    /// The job is not settled.
    #[error("job {job} is {state}, not settled")]
    NotSettled {
        /// The job.
        job: B256,
        /// Its state.
        state: &'static str,
    },
    /// The job was settled without a result both sides agree on.
    #[error("job {0} was settled without an agreed result (the client was refunded)")]
    NoAgreedResult(B256),
    /// The job ended without output.
    #[error("job {job} ended {outcome}: it has no output")]
    NoOutput {
        /// The job.
        job: B256,
        /// How it ended.
        outcome: &'static str,
    },
}

/// Why scrypt could not derive a key from a password.
#[derive(Debug, thiserror::Error)]
pub enum KdfError {
    /// The cost parameters are out of scrypt's range.
    #[error("scrypt parameters are unusable: {0}")]
    Params(#[from] scrypt::errors::InvalidParams),
    /// The key length is out of scrypt's range.
    #[error("scrypt cannot produce this key length: {0}")]
    Output(#[from] scrypt::errors::InvalidOutputLen),
}
