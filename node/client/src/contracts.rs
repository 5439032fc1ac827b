//! The reward contracts from a wallet: staking, provider adverts and status, and the rewards
//! and payments waiting to be claimed.

use std::fmt;

use alloy_sol_types::SolCall;
use cairn_primitives::beacon::vrf_public_key;
use cairn_primitives::consensus::EVIDENCE_VOTE_LEN;
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, Bytes, U256};
use cairn_providers::{ProviderWarnings, Warning};
use cairn_reward_contracts::bindings::{
    ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket,
};
use cairn_reward_contracts::{
    COMPUTE_MARKET, REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET, roles,
    validator_possession_message,
};
use cairn_rpc::{CairnApiClient as _, ProviderInfo};
use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};

use crate::error::ClientError;
use crate::rpc::Client;
use crate::tx::{Call, TxOptions, submit};

/// Bonds `amount` wei.
pub fn stake(amount: U256) -> Call {
    Call::contract(STAKING, amount, Staking::stakeCall {})
}

/// Starts unbonding `amount` wei.
pub fn unbond(amount: U256) -> Call {
    Call::contract(STAKING, U256::ZERO, Staking::unbondCall { amount })
}

/// Withdraws the tokens whose unbonding period is over.
pub fn withdraw() -> Call {
    Call::contract(STAKING, U256::ZERO, Staking::withdrawCall {})
}

/// Registers `staker` as a validator on chain `chain_id` (or brings it back after it was
/// jailed) with `consensus_key`, the node's validator key, and the VRF key derived from it. The
/// call carries the consensus key's signature over the registration (chain, staker, both
/// keys): Staking refuses a key whose holder did not sign for this staker.
pub fn register_validator_on_chain(
    chain_id: u64,
    staker: Address,
    consensus_key: &AccountKey,
) -> Call {
    let public_key = B256::from(consensus_key.public_key());
    let vrf_key = B256::from(vrf_public_key(consensus_key));
    let message = validator_possession_message(chain_id, staker, &public_key, &vrf_key);
    let call = Staking::registerValidatorCall {
        consensusKey: public_key,
        vrfKey: vrf_key,
        possession: Bytes::copy_from_slice(&consensus_key.sign_message(&message)),
    };
    Call::contract(STAKING, U256::ZERO, call)
}

/// [`register_validator_on_chain`] for the chain of the node `client` talks to.
pub async fn register_validator(
    client: &Client,
    staker: Address,
    consensus_key: &AccountKey,
) -> Result<Call, ClientError> {
    let status = client
        .rpc()
        .chain_status()
        .await
        .map_err(|e| client.error(e))?;
    Ok(register_validator_on_chain(
        status.chain_id,
        staker,
        consensus_key,
    ))
}

/// Gives up the validator role (out of the set from the next epoch); the bond can then be
/// unbonded.
pub fn leave_validators() -> Call {
    Call::contract(STAKING, U256::ZERO, Staking::leaveValidatorsCall {})
}

/// Reports that consensus key `key` (hex) signed the two conflicting votes `vote_a` and
/// `vote_b` (hex, each the 105-byte encoding of
/// `cairn_primitives::consensus::Equivocation::encode_vote`) in `epoch`. The sender is paid
/// its share of the slash.
pub fn report_equivocation(
    epoch: u64,
    key: &str,
    vote_a: &str,
    vote_b: &str,
) -> Result<Call, ClientError> {
    let key = parse_hex_bytes("consensus key", key, 32)?;
    let vote_a = parse_hex_bytes("vote A", vote_a, EVIDENCE_VOTE_LEN)?;
    let vote_b = parse_hex_bytes("vote B", vote_b, EVIDENCE_VOTE_LEN)?;
    let call = Staking::reportEquivocationCall {
        epoch,
        consensusKey: B256::from_slice(&key),
        voteA: vote_a.into(),
        voteB: vote_b.into(),
    };
    Ok(Call::contract(STAKING, U256::ZERO, call))
}

/// Hex text (`0x` optional, surrounding whitespace ignored) of exactly `len` bytes.
fn parse_hex_bytes(what: &'static str, text: &str, len: usize) -> Result<Vec<u8>, ClientError> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    let bytes = hex::decode(digits).map_err(|source| ClientError::BadHex {
        what,
        text: text.to_string(),
        source,
    })?;
    if bytes.len() != len {
        return Err(ClientError::WrongLength {
            what,
            expected: len,
            actual: bytes.len(),
        });
    }
    Ok(bytes)
}

/// What a provider offers.
#[derive(Debug, Clone, Default)]
pub struct Advert {
    /// Storage capacity, bytes (needs the storage minimum stake).
    pub storage_capacity: u64,
    /// Storage price, wei per MiB per epoch.
    pub storage_price: u128,
    /// CPU cores (needs the compute minimum stake).
    pub cores: u32,
    /// Memory offered to jobs, MiB.
    pub memory_mib: u32,
    /// Fuel executed per second.
    pub fuel_per_second: u64,
    /// Compute price, wei per unit of fuel.
    pub compute_price: u128,
    /// The libp2p peer id of the provider's node.
    pub peer_id: String,
    /// The node's multiaddresses, comma separated.
    pub addresses: String,
}

/// Registers or updates a provider's advert; an advert of no storage and no cores is refused.
pub fn advertise(advert: Advert) -> Result<Call, ClientError> {
    if advert.storage_capacity == 0 && advert.cores == 0 {
        return Err(ClientError::NothingOffered);
    }
    let call = ProviderRegistry::advertiseCall {
        storageCapacity: advert.storage_capacity,
        storagePricePerMiBEpoch: advert.storage_price,
        cores: advert.cores,
        memoryMiB: advert.memory_mib,
        fuelPerSecond: advert.fuel_per_second,
        computePricePerFuel: advert.compute_price,
        peerId: Bytes::from(advert.peer_id.into_bytes()),
        addresses: advert.addresses,
    };
    Ok(Call::contract(REGISTRY, U256::ZERO, call))
}

/// An account's bond, unbonding tokens and roles.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StakeStatus {
    /// The account.
    pub address: Address,
    /// Bonded, CRN.
    pub bonded: String,
    /// Bonded, wei.
    pub bonded_wei: U256,
    /// Unbonding, CRN.
    pub unbonding: String,
    /// Unbonding, wei.
    pub unbonding_wei: U256,
    /// The epoch from which the unbonding tokens can be withdrawn.
    pub withdrawable_epoch: u64,
    /// The chain's epoch.
    pub current_epoch: u64,
    /// Its roles.
    pub roles: Vec<&'static str>,
    /// Its consensus key, if it registered as a validator.
    pub consensus_key: B256,
    /// Its VRF key, if it registered as a validator.
    pub vrf_key: B256,
    /// Lost the validator role for missing a whole epoch (`cairn stake validator` brings it
    /// back).
    pub jailed: bool,
    /// Slashed for equivocation: never a validator again.
    pub tombstoned: bool,
}

/// The stake of `address`.
pub async fn stake_status(client: &Client, address: Address) -> Result<StakeStatus, ClientError> {
    let s = client
        .decoded(STAKING, Staking::stakeOfCall { staker: address })
        .await?;
    let current_epoch = client
        .decoded(STAKING, Staking::currentEpochCall {})
        .await?;
    Ok(StakeStatus {
        address,
        bonded: format_crn(s.bonded),
        bonded_wei: s.bonded,
        unbonding: format_crn(s.unbonding),
        unbonding_wei: s.unbonding,
        withdrawable_epoch: s.withdrawableEpoch,
        current_epoch,
        roles: roles::names(s.roles),
        consensus_key: s.consensusKey,
        vrf_key: s.vrfKey,
        jailed: s.jailed,
        tombstoned: s.tombstoned,
    })
}

impl fmt::Display for StakeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unbonding = if self.unbonding_wei.is_zero() {
            "nothing".to_string()
        } else {
            format!(
                "{} CRN, withdrawable from epoch {}",
                self.unbonding, self.withdrawable_epoch
            )
        };
        let mut roles = if self.roles.is_empty() {
            "none".to_string()
        } else {
            self.roles.join(", ")
        };
        if self.tombstoned {
            roles.push_str(" (slashed for equivocation: never a validator again)");
        } else if self.jailed {
            roles.push_str(" (jailed for a silent epoch: `cairn stake validator` to come back)");
        }
        write!(
            f,
            "{}\n  bonded      {} CRN\n  unbonding   {unbonding}\n  roles       {roles}\n  epoch       {}",
            self.address, self.bonded, self.current_epoch
        )
    }
}

/// A provider's advert, roles and storage in use.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The provider.
    pub address: Address,
    /// Its roles.
    pub roles: Vec<&'static str>,
    /// Its bond, CRN.
    pub bonded: String,
    /// Storage offered, bytes.
    pub storage_capacity: u64,
    /// Storage under deals, bytes.
    pub storage_used: u64,
    /// Storage price, wei per MiB per epoch.
    #[serde(rename = "storagePricePerMiBEpoch")]
    pub storage_price_per_mib_epoch: String,
    /// Cores offered.
    pub cores: u32,
    /// Memory offered, MiB.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u32,
    /// Fuel per second.
    pub fuel_per_second: u64,
    /// Compute price, wei per fuel.
    pub compute_price_per_fuel: String,
    /// Its node's peer id.
    pub peer_id: String,
    /// Its node's addresses.
    pub addresses: String,
    /// The block of its last advert (0: never advertised).
    pub updated_at_block: u64,
    /// What puts it at risk of a slash now, when the node asked runs this provider (only
    /// that node's agent knows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<Warning>>,
}

/// The advert, stake and storage in use of `address`.
pub async fn provider_status(
    client: &Client,
    address: Address,
) -> Result<ProviderStatus, ClientError> {
    let advert = client
        .decoded(
            REGISTRY,
            ProviderRegistry::advertOfCall { provider: address },
        )
        .await?;
    let stake = client
        .decoded(STAKING, Staking::stakeOfCall { staker: address })
        .await?;
    let used = client
        .decoded(STORAGE_MARKET, StorageMarket::usedCapacityCall(address))
        .await?;
    Ok(ProviderStatus {
        address,
        roles: roles::names(stake.roles),
        bonded: format_crn(stake.bonded),
        storage_capacity: advert.storageCapacity,
        storage_used: used,
        storage_price_per_mib_epoch: advert.storagePricePerMiBEpoch.to_string(),
        cores: advert.cores,
        memory_mib: advert.memoryMiB,
        fuel_per_second: advert.fuelPerSecond,
        compute_price_per_fuel: advert.computePricePerFuel.to_string(),
        peer_id: String::from_utf8_lossy(&advert.peerId).into_owned(),
        addresses: advert.addresses,
        updated_at_block: advert.updatedAtBlock,
        warnings: provider_warnings(client)
            .await
            .filter(|report| report.provider == Some(address))
            .map(|report| report.warnings),
    })
}

/// The warnings of the provider the node runs; none when it runs none, when this user may not
/// ask (the admin token: only on the node's machine, or with `CAIRN_ADMIN_TOKEN`) or when the
/// node cannot tell (a dev node has no data plane).
async fn provider_warnings(client: &Client) -> Option<ProviderWarnings> {
    let admin = client.admin().await.ok()?;
    admin.provider_warnings().await.ok()
}

impl fmt::Display for ProviderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.updated_at_block == 0 && self.storage_capacity == 0 && self.cores == 0 {
            return write!(
                f,
                "{} is not a registered provider (`cairn provider register`)",
                self.address
            );
        }
        write!(
            f,
            "{}\n  roles       {}\n  bonded      {} CRN\n  storage     {} of {} bytes in use, {} wei/MiB/epoch\n  compute     {} cores, {} MiB, {} fuel/s, {} wei/fuel\n  peer        {} {}",
            self.address,
            self.roles.join(", "),
            self.bonded,
            self.storage_used,
            self.storage_capacity,
            self.storage_price_per_mib_epoch,
            self.cores,
            self.memory_mib,
            self.fuel_per_second,
            self.compute_price_per_fuel,
            self.peer_id,
            self.addresses
        )?;
        match &self.warnings {
            None => Ok(()),
            Some(warnings) if warnings.is_empty() => write!(f, "\n  warnings    none"),
            Some(warnings) => {
                write!(f, "\n  warnings    {}", warnings.len())?;
                for warning in warnings {
                    let subject = if warning.subject.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", warning.subject)
                    };
                    write!(
                        f,
                        "\n    {}{subject}: {}",
                        warning.kind.name(),
                        warning.message
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// The providers whose signed adverts reached the node, with their stake on chain.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Providers(pub Vec<ProviderInfo>);

/// The providers whose adverts reached the node.
pub async fn providers(client: &Client) -> Result<Providers, ClientError> {
    let providers = client
        .rpc()
        .providers()
        .await
        .map_err(|e| client.error(e))?;
    Ok(Providers(providers))
}

impl fmt::Display for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no provider adverts have reached this node yet");
        }
        write!(
            f,
            "{:<42}  {:>14}  {:>14}  {:>16}  {:>5}  {:>14}  {:>12}  {:>12}  peer",
            "provider",
            "storage free",
            "capacity",
            "wei/MiB/epoch",
            "cores",
            "fuel/s",
            "wei/fuel",
            "bonded CRN"
        )?;
        for p in &self.0 {
            write!(
                f,
                "\n{:<42}  {:>14}  {:>14}  {:>16}  {:>5}  {:>14}  {:>12}  {:>12}  {}",
                p.provider.to_string(),
                p.storage_free,
                p.storage_capacity,
                p.storage_price.to_string(),
                p.cores,
                p.fuel_per_second,
                p.compute_price.to_string(),
                format_crn(p.bonded),
                p.peer_id
            )?;
        }
        Ok(())
    }
}

/// What one contract holds for an account.
#[derive(Debug, Clone)]
pub struct Claimable {
    /// The contract.
    pub contract: Address,
    /// Its name: `rewardPool`, `storageMarket` or `computeMarket`.
    pub name: &'static str,
    /// The amount, wei.
    pub amount: U256,
    /// The call that claims it.
    pub claim: Call,
}

/// Rewards and payments waiting to be claimed by an account. As JSON: the address, each
/// source's amount in CRN by name, and the total.
#[derive(Debug, Clone)]
pub struct Rewards {
    /// The account.
    pub address: Address,
    /// What each contract holds for it.
    pub sources: Vec<Claimable>,
}

impl Rewards {
    /// The sum of every source.
    pub fn total(&self) -> U256 {
        self.sources.iter().map(|s| s.amount).sum()
    }
}

/// What `address` can claim from the reward pool and the storage and compute markets.
pub async fn rewards(client: &Client, address: Address) -> Result<Rewards, ClientError> {
    let claim = |contract, call: Vec<u8>| Call {
        to: contract,
        value: U256::ZERO,
        input: call.into(),
    };
    let sources = vec![
        Claimable {
            contract: REWARD_POOL,
            name: "rewardPool",
            amount: client
                .decoded(REWARD_POOL, RewardPool::owedCall(address))
                .await?,
            claim: claim(REWARD_POOL, RewardPool::claimCall {}.abi_encode()),
        },
        Claimable {
            contract: STORAGE_MARKET,
            name: "storageMarket",
            amount: client
                .decoded(STORAGE_MARKET, StorageMarket::claimableCall(address))
                .await?,
            claim: claim(STORAGE_MARKET, StorageMarket::claimCall {}.abi_encode()),
        },
        Claimable {
            contract: COMPUTE_MARKET,
            name: "computeMarket",
            amount: client
                .decoded(COMPUTE_MARKET, ComputeMarket::claimableCall(address))
                .await?,
            claim: claim(COMPUTE_MARKET, ComputeMarket::claimCall {}.abi_encode()),
        },
    ];
    Ok(Rewards { address, sources })
}

impl Serialize for Rewards {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.sources.len() + 2))?;
        map.serialize_entry("address", &self.address)?;
        for source in &self.sources {
            map.serialize_entry(source.name, &format_crn(source.amount))?;
        }
        map.serialize_entry("total", &format_crn(self.total()))?;
        map.end()
    }
}

impl fmt::Display for Rewards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.address)?;
        for source in &self.sources {
            writeln!(f, "  {:<14} {} CRN", source.name, format_crn(source.amount))?;
        }
        write!(f, "  {:<14} {} CRN", "total", format_crn(self.total()))
    }
}

/// What a claim took, by source. As JSON: each source's amount in CRN by name.
#[derive(Debug, Clone)]
pub struct Claimed(pub Vec<(&'static str, U256)>);

/// Claims everything waiting for `key` (one transaction per contract that holds something).
pub async fn claim(
    client: &Client,
    key: &AccountKey,
    options: &TxOptions,
) -> Result<Claimed, ClientError> {
    let mut claimed = Vec::new();
    for source in rewards(client, key.address()).await?.sources {
        if source.amount.is_zero() {
            continue;
        }
        submit(client, key, source.claim, options).await?;
        claimed.push((source.name, source.amount));
    }
    if claimed.is_empty() {
        return Err(ClientError::NothingToClaim(key.address()));
    }
    Ok(Claimed(claimed))
}

impl Serialize for Claimed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, amount) in &self.0 {
            map.serialize_entry(name, &format_crn(*amount))?;
        }
        map.end()
    }
}

impl fmt::Display for Claimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(name, amount)| format!("claimed {} CRN from {name}", format_crn(*amount)))
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_proves_possession_for_its_staker_and_vrf_key_only() {
        let consensus_key = AccountKey::from_bytes(&[5; 32]);
        let staker = Address::repeat_byte(0x5a);
        let call = register_validator_on_chain(7, staker, &consensus_key);
        let decoded = Staking::registerValidatorCall::abi_decode(&call.input).unwrap();
        assert_eq!(decoded.vrfKey, B256::from(vrf_public_key(&consensus_key)));
        let signature: [u8; 64] = decoded.possession.as_ref().try_into().unwrap();
        let signed_for = |chain_id, staker, vrf_key: &B256| {
            cairn_primitives::keys::verify_message(
                &consensus_key.public_key(),
                &validator_possession_message(chain_id, staker, &decoded.consensusKey, vrf_key),
                &signature,
            )
        };
        assert!(signed_for(7, staker, &decoded.vrfKey));
        assert!(!signed_for(8, staker, &decoded.vrfKey), "another chain");
        assert!(
            !signed_for(7, Address::repeat_byte(1), &decoded.vrfKey),
            "another staker"
        );
        assert!(!signed_for(7, staker, &B256::ZERO), "another VRF key");
    }

    #[test]
    fn equivocation_reports_need_a_key_and_two_whole_votes() {
        let key = format!("0x{}", "ab".repeat(32));
        let vote = "cd".repeat(EVIDENCE_VOTE_LEN);
        assert!(report_equivocation(3, &key, &vote, &format!(" 0x{vote}\n")).is_ok());
        assert!(matches!(
            report_equivocation(3, "0x1234", &vote, &vote),
            Err(ClientError::WrongLength {
                what: "consensus key",
                expected: 32,
                actual: 2
            })
        ));
        assert!(matches!(
            report_equivocation(3, &key, &vote[2..], &vote),
            Err(ClientError::WrongLength { what: "vote A", .. })
        ));
        assert!(matches!(
            report_equivocation(3, &key, &vote, "zz"),
            Err(ClientError::BadHex { what: "vote B", .. })
        ));
    }

    #[test]
    fn an_advert_of_nothing_is_refused() {
        assert!(matches!(
            advertise(Advert::default()),
            Err(ClientError::NothingOffered)
        ));
        assert!(
            advertise(Advert {
                cores: 2,
                ..Advert::default()
            })
            .is_ok()
        );
    }
}
