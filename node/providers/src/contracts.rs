//! The provider's view of the reward contracts: deal and job states, and read-only calls.

use alloy_sol_types::SolCall;
use cairn_chain::{CallRequest, Chain};
use cairn_primitives::Address;
use cairn_reward_contracts::bindings::StorageMarket;

use crate::error::DataError;

/// A storage deal's state, as `StorageMarket.State` numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DealState {
    /// Opened by the client, not yet accepted.
    Proposed = 1,
    /// Accepted: proven every epoch.
    Active = 2,
    /// Every epoch ran.
    Ended = 3,
    /// Ended by faults; the provider was slashed.
    Terminated = 4,
    /// Cancelled by the client before acceptance.
    Cancelled = 5,
}

impl DealState {
    /// The state's name, for a raw state number.
    pub fn name(state: u8) -> &'static str {
        match state {
            1 => "proposed",
            2 => "active",
            3 => "ended",
            4 => "terminated",
            5 => "cancelled",
            _ => "unknown",
        }
    }
}

/// A compute job's state, as `ComputeMarket.State` numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum JobState {
    /// Waiting for the provider's commitment.
    Assigned = 1,
    /// Waiting for the verifier's commitment.
    Verifying = 2,
    /// Waiting for both reveals.
    Revealing = 3,
    /// Provider and verifier agree; open to challenge until the deadline, then paid.
    Agreed = 4,
    /// Waiting for the referees' commitments.
    PanelCommit = 5,
    /// Waiting for the referees' reveals.
    PanelReveal = 6,
    /// Paid (or refunded); over.
    Settled = 7,
    /// A stage passed its deadline and nobody answered; over.
    Expired = 8,
}

impl JobState {
    const ALL: [JobState; 8] = [
        Self::Assigned,
        Self::Verifying,
        Self::Revealing,
        Self::Agreed,
        Self::PanelCommit,
        Self::PanelReveal,
        Self::Settled,
        Self::Expired,
    ];

    /// The state for a raw state number.
    pub fn from_code(state: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == state)
    }

    /// The state's name, for a raw state number.
    pub fn name(state: u8) -> &'static str {
        match Self::from_code(state) {
            Some(Self::Assigned) => "assigned",
            Some(Self::Verifying) => "verifying",
            Some(Self::Revealing) => "revealing",
            Some(Self::Agreed) => "agreed",
            Some(Self::PanelCommit) => "panel committing",
            Some(Self::PanelReveal) => "panel revealing",
            Some(Self::Settled) => "settled",
            Some(Self::Expired) => "expired",
            None => "none",
        }
    }

    /// Whether a job in raw state `state` is over.
    pub fn is_over(state: u8) -> bool {
        state == Self::Settled as u8 || state == Self::Expired as u8
    }
}

/// A job's party slots, as `ComputeMarket` numbers them.
pub mod slots {
    /// The provider drawn at posting.
    pub const PROVIDER: usize = 0;
    /// The verifier drawn at the provider's commitment.
    pub const VERIFIER: usize = 1;
    /// Whoever challenged an agreed result.
    pub const CHALLENGER: usize = 2;
    /// The first of the three referees of a dispute.
    pub const FIRST_REFEREE: usize = 3;
}

/// A read-only call to a contract at the committed head.
pub fn view<C: SolCall>(chain: &Chain, to: Address, call: C) -> Result<C::Return, DataError> {
    let result = chain.call(&CallRequest {
        to: Some(to),
        input: Some(call.abi_encode().into()),
        ..Default::default()
    })?;
    if !result.is_success() {
        return Err(DataError::Reverted {
            reason: revert_reason(&result),
        });
    }
    let output = result.into_output().unwrap_or_default();
    Ok(C::abi_decode_returns(&output)?)
}

pub(crate) fn revert_reason(result: &revm::context::result::ExecutionResult) -> String {
    let output = result.output().map(|o| o.to_vec()).unwrap_or_default();
    cairn_reward_contracts::describe_revert(&output, cairn_primitives::units::format_crn)
        .unwrap_or_else(|| format!("{result:?}"))
}

/// Deal `id` as the storage market holds it, if it still waits for its provider.
pub fn proposed_deal(chain: &Chain, id: [u8; 32]) -> Result<StorageMarket::Deal, DataError> {
    let deal = view(
        chain,
        cairn_reward_contracts::STORAGE_MARKET,
        StorageMarket::dealOfCall { id: id.into() },
    )?;
    if deal.state != DealState::Proposed as u8 {
        return Err(DataError::DealNotProposed {
            deal: id,
            state: DealState::name(deal.state),
        });
    }
    Ok(deal)
}
