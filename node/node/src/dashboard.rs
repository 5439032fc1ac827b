//! The node's dashboard: a page in the browser, served with the metrics (`dashboardUrl` in
//! `testnet.json`), and the JSON it reads.
//!
//! ```text
//!  GET /            the page (HTML, CSS and script compiled into the binary: no build step)
//!  GET /api/status  chain, peers, validators; the provider this node runs: bond against its
//!                   minimum, locked collateral, claimable, deals with proven epochs and the
//!                   next challenge, compute jobs, earnings by epoch, warnings
//!  GET /api/deal/ID one deal of this node's provider, or 404 "no deal …"
//!  GET /api/account/0xADDRESS  an account's balance, nonce, roles and bond, or 404 "no
//!                   account …" (nothing on chain: no balance, nonce or stake)
//! ```
//! Everything is read from the committed state on the blocking pool, one request at a time, and
//! a status is reused for a second (a page left open in many tabs costs the node one read a
//! second). The listener serves nothing else: no key and no RPC method is reachable through it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use alloy_sol_types::SolEvent;
use cairn_chain::Chain;
use cairn_primitives::units::format_crn;
use cairn_primitives::{Address, B256, U256};
use cairn_providers::contracts::{DealState, view};
use cairn_providers::error::DataError;
use cairn_providers::{Warning, WatchedJob};
use cairn_reward_contracts::bindings::{RewardPool, StorageMarket};
use cairn_reward_contracts::{REWARD_POOL, STORAGE_MARKET};
use serde::Serialize;

use crate::metrics::{ProviderSource, Sources, Standing};

/// The page, with its style and script inline.
pub const PAGE: &str = include_str!("dashboard.html");
/// Epochs of earnings the chart shows.
const EARNING_EPOCHS: u64 = 64;
/// Blocks read for earnings per status: a node that starts far along catches up over a few.
const EARNING_BLOCKS_PER_READ: u64 = 1_024;

/// What the page shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    chain: ChainSummary,
    network: NetworkSummary,
    validators: Vec<ValidatorSummary>,
    provider: Option<ProviderSummary>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChainSummary {
    chain_id: u64,
    height: u64,
    finalized_height: u64,
    head_hash: B256,
    timestamp_ms: u64,
    epoch: u64,
    epoch_length: u64,
    block_time_ms: u64,
    pending_transactions: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkSummary {
    peer_id: Option<String>,
    peers: usize,
    view: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidatorSummary {
    account: Address,
    public_key: String,
    stake_crn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderSummary {
    account: Address,
    roles: Vec<&'static str>,
    bonded_crn: String,
    minimum_bond_crn: String,
    locked_crn: String,
    claimable_crn: String,
    warnings: Vec<Warning>,
    deals: Vec<DealSummary>,
    jobs: Vec<WatchedJob>,
    /// Fees earned per epoch (after the burn), oldest first, over the last epochs.
    earnings: Vec<EpochEarnings>,
}

/// One deal of the provider.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DealSummary {
    id: String,
    root: String,
    size: u64,
    state: &'static str,
    start_epoch: u64,
    end_epoch: u64,
    proven_epochs: u32,
    last_proven_epoch: u64,
    faults: u32,
    max_faults: u32,
    /// The next epoch whose proof is due, and its window.
    next_challenge: Option<Challenge>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Challenge {
    epoch: u64,
    opens_at_block: u64,
    closes_at_block: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct EpochEarnings {
    epoch: u64,
    earned_crn: String,
    /// The same in whole wei, as a decimal string (JSON numbers lose wei).
    earned_wei: String,
}

/// An account as the page shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    address: Address,
    balance_crn: String,
    nonce: u64,
    roles: Vec<&'static str>,
    bonded_crn: String,
    locked_crn: String,
}

/// Why the dashboard cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The chain or a contract could not be read.
    #[error("cannot read the chain: {0}")]
    Read(String),
    /// The deal id is not 32 bytes of hex.
    #[error("{0:?} is not a deal id: give 32 bytes in hex (0x...)")]
    BadDealId(String),
    /// The address is not 20 bytes of hex.
    #[error("{0:?} is not an address: give 20 bytes in hex (0x...)")]
    BadAddress(String),
    /// Nothing on chain at the address.
    #[error("no account {0} on chain: no balance, no transaction sent, no stake")]
    NoSuchAccount(Address),
    /// No such deal among this node's provider's deals.
    #[error("no deal {0} among this node's provider's deals")]
    NoSuchDeal(String),
    /// The node runs no provider.
    #[error("this node runs no provider")]
    NoProvider,
}

impl From<DataError> for DashboardError {
    fn from(error: DataError) -> Self {
        DashboardError::Read(error.to_string())
    }
}

impl From<cairn_storage::StorageError> for DashboardError {
    fn from(error: cairn_storage::StorageError) -> Self {
        DashboardError::Read(error.to_string())
    }
}

impl From<cairn_chain::ChainError> for DashboardError {
    fn from(error: cairn_chain::ChainError) -> Self {
        DashboardError::Read(error.to_string())
    }
}

/// The dashboard's state: where it reads from, and the earnings read so far.
#[derive(Debug)]
pub struct Dashboard {
    sources: Sources,
    earnings: Mutex<Earnings>,
}

/// Fees earned by the provider, by epoch, read from the RewardPool's events block by block.
#[derive(Debug, Default)]
struct Earnings {
    /// The last block read (none yet: start `EARNING_EPOCHS` back from the head).
    read_to: Option<u64>,
    by_epoch: BTreeMap<u64, U256>,
}

impl Dashboard {
    /// A dashboard reading `sources`.
    pub fn new(sources: Sources) -> Self {
        Self {
            sources,
            earnings: Mutex::new(Earnings::default()),
        }
    }

    fn chain(&self) -> &Chain {
        self.sources.pool.chain()
    }

    /// The page's data, as JSON. Blocking: it reads the chain.
    pub fn status_json(&self) -> Result<String, DashboardError> {
        let status = self.status()?;
        serde_json::to_string(&status).map_err(|e| DashboardError::Read(e.to_string()))
    }

    fn status(&self) -> Result<Status, DashboardError> {
        let chain = self.chain();
        let head = chain.head_header();
        let genesis = chain.genesis();
        let network = self.sources.network.borrow().clone();
        let validators = chain
            .validators_at(head.height)?
            .into_iter()
            .map(|v| ValidatorSummary {
                account: v.beneficiary,
                public_key: format!("0x{}", hex::encode(v.public_key)),
                stake_crn: format_crn(v.stake),
            })
            .collect();
        let provider = match &self.sources.provider {
            Some(provider) => Some(self.provider(provider, head.height)?),
            None => None,
        };
        Ok(Status {
            chain: ChainSummary {
                chain_id: genesis.chain_id,
                height: head.height,
                // Every committed block is final.
                finalized_height: head.height,
                head_hash: head.hash(),
                timestamp_ms: head.timestamp_ms,
                epoch: head.height / genesis.epoch_length,
                epoch_length: genesis.epoch_length,
                block_time_ms: genesis.block_time_ms,
                pending_transactions: self.sources.pool.len(),
            },
            network: NetworkSummary {
                peer_id: network.peer_id,
                peers: network.peers,
                view: network.view,
            },
            validators,
            provider,
        })
    }

    fn provider(
        &self,
        provider: &ProviderSource,
        height: u64,
    ) -> Result<ProviderSummary, DashboardError> {
        let chain = self.chain();
        let me = provider.account;
        let standing = Standing::read(chain, me)?;
        let max_faults = view(chain, STORAGE_MARKET, StorageMarket::maxFaultsCall {})?;
        let mut deals = Vec::new();
        for (id, _) in provider.data.store().deals()? {
            if let Some(deal) = deal_summary(chain, me, id, height, max_faults)? {
                deals.push(deal);
            }
        }
        let report = provider.data.report();
        Ok(ProviderSummary {
            account: me,
            roles: cairn_reward_contracts::roles::names(standing.roles),
            bonded_crn: format_crn(standing.bonded),
            minimum_bond_crn: format_crn(standing.minimum),
            locked_crn: format_crn(standing.locked),
            claimable_crn: format_crn(standing.claimable),
            warnings: report.warnings(),
            deals,
            jobs: report.jobs(),
            earnings: self.earnings(me, height)?,
        })
    }

    /// The provider's fees by epoch over the last [`EARNING_EPOCHS`], reading on from where
    /// the last status stopped (at most [`EARNING_BLOCKS_PER_READ`] blocks a call).
    fn earnings(&self, me: Address, head: u64) -> Result<Vec<EpochEarnings>, DashboardError> {
        let chain = self.chain();
        let epoch_length = chain.genesis().epoch_length.max(1);
        let first_kept = (head / epoch_length).saturating_sub(EARNING_EPOCHS - 1);
        let mut earnings = self.earnings.lock().unwrap_or_else(|p| p.into_inner());
        let from = match earnings.read_to {
            Some(read) => read + 1,
            None => first_kept * epoch_length,
        };
        let to = head.min(from.saturating_add(EARNING_BLOCKS_PER_READ - 1));
        for height in from..=to {
            // A block whose receipts cannot be read is left out of the chart, not the page.
            let receipts = chain.receipts(height).unwrap_or_else(|error| {
                tracing::debug!(height, %error, "dashboard: cannot read a block's receipts");
                None
            });
            for receipt in receipts.unwrap_or_default() {
                for log in receipt.logs.iter().filter(|l| l.address == REWARD_POOL) {
                    if let Some((epoch, earned)) = fee_to(me, log) {
                        *earnings.by_epoch.entry(epoch).or_default() += earned;
                    }
                }
            }
            earnings.read_to = Some(height);
        }
        earnings.by_epoch.retain(|epoch, _| *epoch >= first_kept);
        Ok(earnings
            .by_epoch
            .iter()
            .map(|(epoch, wei)| EpochEarnings {
                epoch: *epoch,
                earned_crn: format_crn(*wei),
                earned_wei: wei.to_string(),
            })
            .collect())
    }

    /// An address as the page sends it (`0x` and 40 hex digits).
    pub fn parse_address(text: &str) -> Result<Address, DashboardError> {
        let hex_digits = text.strip_prefix("0x").unwrap_or(text);
        hex::decode(hex_digits)
            .ok()
            .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
            .map(Address::from)
            .ok_or_else(|| DashboardError::BadAddress(text.chars().take(80).collect()))
    }

    /// An account's balance, nonce and standing, as JSON. Blocking.
    pub fn account_json(&self, address: Address) -> Result<String, DashboardError> {
        let chain = self.chain();
        let account = chain.sender_state(address)?;
        let standing = Standing::read(chain, address)?;
        if account.balance.is_zero() && account.nonce == 0 && standing.bonded.is_zero() {
            return Err(DashboardError::NoSuchAccount(address));
        }
        let summary = AccountSummary {
            address,
            balance_crn: format_crn(account.balance),
            nonce: account.nonce,
            roles: cairn_reward_contracts::roles::names(standing.roles),
            bonded_crn: format_crn(standing.bonded),
            locked_crn: format_crn(standing.locked),
        };
        serde_json::to_string(&summary).map_err(|e| DashboardError::Read(e.to_string()))
    }

    /// A deal id as the page sends it (`0x` and 64 hex digits).
    pub fn parse_deal_id(id: &str) -> Result<[u8; 32], DashboardError> {
        hex::decode(id.strip_prefix("0x").unwrap_or(id))
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| DashboardError::BadDealId(id.chars().take(80).collect()))
    }

    /// One deal of this node's provider, as JSON; a deal it does not hold is not read from the
    /// chain. Blocking.
    pub fn deal_json(&self, id: [u8; 32]) -> Result<String, DashboardError> {
        let provider = self
            .sources
            .provider
            .as_ref()
            .ok_or(DashboardError::NoProvider)?;
        let not_found = || DashboardError::NoSuchDeal(format!("0x{}", hex::encode(id)));
        if !provider.data.store().deals()?.iter().any(|(d, _)| *d == id) {
            return Err(not_found());
        }
        let chain = self.chain();
        let height = chain.head_header().height;
        let max_faults = view(chain, STORAGE_MARKET, StorageMarket::maxFaultsCall {})?;
        let deal =
            deal_summary(chain, provider.account, id, height, max_faults)?.ok_or_else(not_found)?;
        serde_json::to_string(&deal).map_err(|e| DashboardError::Read(e.to_string()))
    }
}

/// Deal `id` as the page shows it, if it is `me`'s.
fn deal_summary(
    chain: &Chain,
    me: Address,
    id: [u8; 32],
    height: u64,
    max_faults: u32,
) -> Result<Option<DealSummary>, DashboardError> {
    let deal = view(
        chain,
        STORAGE_MARKET,
        StorageMarket::dealOfCall { id: id.into() },
    )?;
    if deal.provider != me {
        return Ok(None);
    }
    let epoch = height / chain.genesis().epoch_length.max(1);
    let next_challenge = if deal.state != DealState::Active as u8 {
        None
    } else {
        // This epoch's if not proven yet and its window is still open, else the next one's.
        let this = view(
            chain,
            STORAGE_MARKET,
            StorageMarket::proofWindowCall { epoch },
        )?;
        // A proof sent at `height` lands in a later block: none can land after `closes`.
        let due = if deal.lastProvenEpoch < epoch && height < this.closes {
            Some((epoch, this))
        } else if epoch < deal.endEpoch {
            let next = view(
                chain,
                STORAGE_MARKET,
                StorageMarket::proofWindowCall { epoch: epoch + 1 },
            )?;
            Some((epoch + 1, next))
        } else {
            None
        };
        due.filter(|(epoch, _)| *epoch >= deal.startEpoch)
            .map(|(epoch, window)| Challenge {
                epoch,
                opens_at_block: window.opens,
                closes_at_block: window.closes,
            })
    };
    Ok(Some(DealSummary {
        id: format!("0x{}", hex::encode(id)),
        root: format!("0x{}", hex::encode(deal.dataRoot)),
        size: deal.size,
        state: DealState::name(deal.state),
        start_epoch: deal.startEpoch,
        end_epoch: deal.endEpoch,
        proven_epochs: deal.provenEpochs,
        last_proven_epoch: deal.lastProvenEpoch,
        faults: deal.faults,
        max_faults,
        next_challenge,
    }))
}

/// A fee the RewardPool recorded for `me`, net of its burn: (epoch, wei).
fn fee_to(me: Address, log: &cairn_primitives::Log) -> Option<(u64, U256)> {
    let topics = log.topics.iter().copied();
    if let Ok(fee) = RewardPool::StorageFeeRecorded::decode_raw_log(topics.clone(), &log.data) {
        return (fee.provider == me).then(|| (fee.epoch, fee.fee.saturating_sub(fee.burnt)));
    }
    if let Ok(fee) = RewardPool::ComputeFeeRecorded::decode_raw_log(topics, &log.data) {
        return (fee.provider == me).then(|| (fee.epoch, fee.fee.saturating_sub(fee.burnt)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_primitives::Log;

    #[test]
    fn fees_recorded_for_the_provider_count_net_of_their_burn() {
        let me = Address::repeat_byte(1);
        let other = Address::repeat_byte(2);
        let log = |provider: Address| {
            let event = RewardPool::StorageFeeRecorded {
                provider,
                epoch: 7,
                fee: U256::from(100),
                burnt: U256::from(10),
            };
            let data = event.encode_log_data();
            Log {
                address: REWARD_POOL,
                topics: data.topics().to_vec(),
                data: data.data,
            }
        };
        assert_eq!(fee_to(me, &log(me)), Some((7, U256::from(90))));
        assert_eq!(fee_to(me, &log(other)), None);
    }

    #[test]
    fn the_page_asks_only_for_what_the_listener_serves() {
        for path in ["/api/status", "\"/api/\""] {
            assert!(PAGE.contains(path), "{path}");
        }
        for outside in ["src=\"http", "href=\"http", "url(http", "fetch(\"http"] {
            assert!(
                !PAGE.contains(outside),
                "the page loads nothing from elsewhere"
            );
        }
    }
}
