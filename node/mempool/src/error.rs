//! Why a transaction was not admitted: the transaction's fault ([`TxRejection`]), or the node
//! failing while it checked ([`SubmitError::Chain`]).

use cairn_primitives::{Address, CodecError, U256};

/// Why the mempool refused a transaction. Each refusal changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxRejection {
    /// Not a decodable transaction.
    #[error("invalid transaction encoding: {0}")]
    Encoding(#[from] CodecError),
    /// Signed for another chain.
    #[error("invalid chain id {got}: this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The signature does not match the body and public key.
    #[error("invalid sender: the signature is not the sender's over this transaction")]
    BadSignature,
    /// The nonce was already used.
    #[error("nonce too low: {sender} has already used nonce {got} (next nonce is {next})")]
    NonceTooLow {
        /// The sender.
        sender: Address,
        /// The sender's next usable nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce is further ahead of the sender's committed nonce than the pool holds.
    #[error(
        "nonce gap: nonce {got} is too far ahead; {sender} must send nonce {next} and those after it first"
    )]
    NonceGap {
        /// The sender.
        sender: Address,
        /// The nonce expected next.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay the worst case of this and its pending transactions.
    #[error(
        "insufficient funds for gas * price + value: {sender} has {balance} wei but this and its pending transactions may cost {cost} wei"
    )]
    InsufficientFunds {
        /// The sender.
        sender: Address,
        /// Its balance.
        balance: U256,
        /// Gas limit × fee cap + value, summed over its pending transactions and this one.
        cost: U256,
    },
    /// Less gas than the transaction needs before running any code.
    #[error("intrinsic gas too low: gas limit {got}, this transaction needs at least {intrinsic}")]
    GasLimitTooLow {
        /// Intrinsic gas of the transaction.
        intrinsic: u64,
        /// The transaction's gas limit.
        got: u64,
    },
    /// More gas than one transaction may use.
    #[error(
        "exceeds block gas limit: gas limit {got} is above the most a transaction may use ({max})"
    )]
    GasLimitTooHigh {
        /// The smaller of the block gas limit and the per-transaction cap.
        max: u64,
        /// The transaction's gas limit.
        got: u64,
    },
    /// The fee cap is below the chain's base fee.
    #[error("max fee per gas less than block base fee: {got} < {base_fee} wei")]
    FeeTooLow {
        /// The chain's base fee.
        base_fee: u64,
        /// The transaction's fee cap.
        got: u128,
    },
    /// A tip above the fee cap.
    #[error("max priority fee per gas higher than max fee per gas: {priority} > {max_fee}")]
    TipAboveFeeCap {
        /// The tip.
        priority: u128,
        /// The fee cap.
        max_fee: u128,
    },
    /// The pool already holds it.
    #[error("already known")]
    AlreadyKnown,
    /// Same sender and nonce as a pending transaction, without a high enough fee bump.
    #[error(
        "replacement transaction underpriced: a transaction with nonce {nonce} is already pending; a replacement must raise both fees by at least 10%"
    )]
    ReplacementUnderpriced {
        /// The contested nonce.
        nonce: u64,
    },
    /// The sender already has as many transactions waiting behind a gap as it may.
    #[error(
        "{sender} already has {limit} transactions waiting for nonce {next}; send nonce {next} first"
    )]
    TooManyFuture {
        /// The sender.
        sender: Address,
        /// The nonce missing.
        next: u64,
        /// Transactions allowed to wait behind a gap, per sender.
        limit: usize,
    },
    /// The sender has too many pending transactions.
    #[error("{sender} already has {limit} pending transactions; wait for some to be included")]
    SenderQueueFull {
        /// The sender.
        sender: Address,
        /// Pending transactions allowed per sender.
        limit: usize,
    },
    /// The pool is at capacity and holds nothing this transaction may push out.
    #[error(
        "txpool is full: {capacity} transactions and none pays a tip below {tip} wei per gas; raise the priority fee or try again after the next block"
    )]
    PoolFull {
        /// The pool's capacity.
        capacity: usize,
        /// The tip this transaction pays per gas.
        tip: u128,
    },
}

/// Why a submitted transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction is unacceptable.
    #[error(transparent)]
    Rejected(#[from] TxRejection),
    /// The node failed while checking it.
    #[error(transparent)]
    Chain(#[from] cairn_chain::ChainError),
}
