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
            S::BondLocked(e) => format!(
                "{} CRN of the bond is collateral for live deals or jobs; after this unbond only \
                 {} CRN would be bonded. Wait for them to end",
                amount(e.locked),
                amount(e.bondedAfter)
            ),
            S::InsufficientFreeBond(e) => format!(
                "the provider needs {} CRN of free bond as collateral; it has {} CRN free \
                 (bond more with `cairn stake add`)",
                amount(e.needed),
                amount(e.free)
            ),
            S::RoleHasLiveCollateral(e) => format!(
                "the {} role cannot be dropped while deals or jobs hold {} CRN of collateral; \
                 wait for them to end",
                role_name(e.role),
                amount(e.locked)
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
            other => format!("ProviderRegistry refused: {other:?}"),
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
            M::ReplicaExists(e) => format!(
                "provider {} already holds root {} through deal {}: one provider holds one \
                 replica of a root; choose another provider",
                e.provider, e.dataRoot, e.existing
            ),
            M::TooManyActiveDeals(e) => format!(
                "the network holds its limit of {} active deals (all are proven in the same few \
                 blocks of each epoch); try again when some end",
                e.limit
            ),
            M::TooManyDeals(e) => format!(
                "provider {} holds its limit of {} deals",
                e.provider, e.limit
            ),
            M::ProofWindowClosed(e) => format!(
                "proofs of epoch {} are taken in blocks {} to {} only",
                e.epoch, e.opens, e.closes
            ),
            M::SettleFirst(e) => format!(
                "deal {} is settled only up to epoch {}: call settle first",
                e.id, e.settledEpoch
            ),
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
            C::NoProviderFor(e) => no_provider_for(&e, &amount),
            C::RevealMismatch(e) => format!(
                "{}'s reveal does not match its commitment (result and salt)",
                e.party
            ),
            C::SameResult(_) => "a challenge must name a result other than the agreed one".into(),
            C::NoPanel(_) => {
                "no compute provider is left to judge this job: a challenge needs a panel".into()
            }
            C::NotEligible(e) => format!(
                "{} cannot challenge this job: only a staked compute provider whose advert takes \
                 the job, with seasoned bond and free collateral, and not a party to it",
                e.caller
            ),
            C::DeadlinePassed(e) => format!("the deadline (block {}) has passed", e.deadlineBlock),
            C::NotExpired(e) => format!("the stage runs until block {}", e.deadlineBlock),
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

/// Why no compute provider takes a job, in words: the fuel, price or memory asked for against
/// what the registered providers offer.
fn no_provider_for(e: &ComputeMarket::NoProviderFor, amount: &impl Fn(U256) -> String) -> String {
    let mut reasons = Vec::new();
    if e.mostFuel == 0 && e.lowestAsk == u128::MAX {
        reasons.push("no compute provider is registered".to_string());
    }
    if e.maxFuel > e.mostFuel && e.mostFuel > 0 {
        reasons.push(format!(
            "maxFuel {} is more than any provider can run in {} blocks: at most {}",
            e.maxFuel, e.stageBlocks, e.mostFuel
        ));
    }
    if e.pricePerFuel < e.lowestAsk && e.lowestAsk != u128::MAX {
        reasons.push(format!(
            "the price of {} CRN per fuel is below every provider's ask (the lowest: {} CRN)",
            amount(U256::from(e.pricePerFuel)),
            amount(U256::from(e.lowestAsk))
        ));
    }
    if reasons.is_empty() {
        reasons.push(format!(
            "fewer than two compute providers other than you take a job of {} fuel, {} MiB at \
             that price with free collateral and a bond at least a whole epoch old (a new provider \
             waits two epochs)",
            e.maxFuel, e.memoryMiB
        ));
    }
    format!("no compute provider takes this job: {}", reasons.join("; "))
}
