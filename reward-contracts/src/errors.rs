//! Turning a contract's revert data into a sentence for the user.

use alloy_primitives::U256;
use alloy_sol_types::SolInterface;

use crate::bindings::{ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket};

fn role_name(role: u8) -> &'static str {
    match role {
        crate::roles::VALIDATOR => "validator",
        crate::roles::STORAGE => "storage",
        crate::roles::COMPUTE => "compute",
        _ => "role",
    }
}

/// Explains revert data from any of Cairn's contracts (custom errors, `Error(string)` and
/// `Panic`), formatting token amounts with `amount`. `None` if the data means nothing known.
pub fn describe_revert(data: &[u8], amount: impl Fn(U256) -> String) -> Option<String> {
    use ComputeMarket::ComputeMarketErrors as C;
    use ProviderRegistry::ProviderRegistryErrors as P;
    use RewardPool::RewardPoolErrors as R;
    use Staking::StakingErrors as S;
    use StorageMarket::StorageMarketErrors as M;

    if let Ok(error) = S::abi_decode(data) {
        return Some(match error {
            S::ZeroAmount(_) => "the amount must be more than 0".into(),
            S::InsufficientBond(e) => format!(
                "cannot unbond {} CRN: only {} CRN is bonded",
                amount(e.requested),
                amount(e.bonded)
            ),
            S::StakeBelowMinimum(e) => format!(
                "stake below the {} minimum of {} CRN (bonded: {} CRN)",
                role_name(e.role),
                amount(e.minimum),
                amount(e.bonded)
            ),
            S::StillUnbonding(e) => format!(
                "unbonding until epoch {} (this is epoch {})",
                e.withdrawableEpoch, e.currentEpoch
            ),
            S::NothingToWithdraw(_) => "nothing to withdraw: unbond first".into(),
            S::UseStake(_) => "send tokens to Staking with `stake`, not as a plain transfer".into(),
            S::KeyOwnedByAnother(e) => format!(
                "consensus key {} belongs to {}: a key is registered by one account, for good",
                e.consensusKey, e.owner
            ),
            S::InvalidPossession(e) => format!(
                "the proof of possession is not consensus key {}'s signature over this account's \
                 registration (chain, account, VRF key)",
                e.consensusKey
            ),
            S::AlreadyValidator(e) => format!(
                "{} is already a validator: its keys cannot change while it holds the role \
                 (`cairn stake leave-validators` first)",
                e.validator
            ),
            S::NotValidator(e) => format!("{} is not a validator", e.staker),
            S::ValidatorTombstoned(e) => format!(
                "{} was slashed for equivocation and can never be a validator again",
                e.validator
            ),
            S::UnknownConsensusKey(e) => {
                format!("no account registered consensus key {}", e.consensusKey)
            }
            S::MalformedEvidence(e) => format!(
                "each vote must be 105 bytes (view, tag, block, signature); got {} and {}",
                e.voteALength, e.voteBLength
            ),
            S::InvalidEvidence(e) => format!(
                "not equivocation: the votes are not two conflicting votes of one view signed by \
                 {} in epoch {} of this chain",
                e.consensusKey, e.epoch
            ),
            S::EquivocationAlreadyReported(e) => format!(
                "the equivocation of {} in epoch {} was already reported and punished",
                e.consensusKey, e.epoch
            ),
            S::EvidenceTooOld(e) => format!(
                "evidence from epoch {} is too old in epoch {}: it is accepted for {} epochs \
                 (the unbonding period), after which the tokens it would slash may be withdrawn",
                e.epoch, e.currentEpoch, e.unbondingEpochs
            ),
            other => format!("Staking refused: {other:?}"),
        });
    }
    if let Ok(error) = P::abi_decode(data) {
        return Some(match error {
            P::NothingOffered(_) => "advertise storage capacity or compute cores (or both)".into(),
            P::FieldTooLong(e) => format!("{} is longer than {} bytes", e.field, e.limit),
            P::TooManyProviders(e) => format!("the registry is full ({} providers)", e.limit),
            P::NotRegistered(e) => format!("{} is not a registered provider", e.provider),
        });
    }
    if let Ok(error) = M::abi_decode(data) {
        return Some(match error {
            M::WrongEscrow(e) => format!(
                "send exactly {} CRN of escrow (sent {} CRN)",
                amount(e.expected),
                amount(e.sent)
            ),
            M::NotStorageProvider(e) => format!("{} is not a staked storage provider", e.provider),
            M::NoCapacity(e) => format!(
                "the provider has {} bytes free, the deal needs {}",
                e.free, e.needed
            ),
            M::InvalidProof(e) => format!(
                "storage proof {} (chunk {}) is invalid",
                e.challenge, e.chunkIndex
            ),
            M::AlreadyProven(e) => format!("epoch {} is already proven", e.epoch),
            M::NothingToClaim(_) => "nothing to claim".into(),
            other => format!("StorageMarket refused: {other:?}"),
        });
    }
    if let Ok(error) = C::abi_decode(data) {
        return Some(match error {
            C::WrongEscrow(e) => format!(
                "send exactly {} CRN of escrow (sent {} CRN)",
                amount(e.expected),
                amount(e.sent)
            ),
            C::NotEnoughComputeProviders(e) => format!(
                "a job needs at least {} staked compute providers other than you",
                e.needed
            ),
            C::NothingToClaim(_) => "nothing to claim".into(),
            other => format!("ComputeMarket refused: {other:?}"),
        });
    }
    if let Ok(error) = R::abi_decode(data) {
        return Some(match error {
            R::NothingToClaim(_) => "nothing to claim".into(),
            other => format!("RewardPool refused: {other:?}"),
        });
    }
    alloy_sol_types::decode_revert_reason(data)
}
