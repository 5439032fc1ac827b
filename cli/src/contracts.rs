//! `cairn stake`, `cairn provider` and `cairn rewards`: the reward contracts from the wallet.

use alloy_sol_types::SolCall;
use cairn_primitives::units::{format_crn, parse_crn};
use cairn_primitives::{Address, Bytes, U256};
use cairn_reward_contracts::bindings::{
    ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket,
};
use cairn_reward_contracts::{
    COMPUTE_MARKET, REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET, roles,
};
use serde::Serialize;

use crate::Global;
use crate::output::print;
use crate::tx::{Call, TxOptions, decoded, parse_size, submit};
use crate::wallet::{keystore, resolve, unlock};

/// `cairn stake ...`
#[derive(Debug, clap::Subcommand)]
pub enum StakeCommand {
    /// Bond AMOUNT CRN.
    Add {
        /// Amount in CRN.
        amount: String,
        /// Key that stakes.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Start unbonding AMOUNT CRN (withdrawable after the unbonding period).
    Unbond {
        /// Amount in CRN.
        amount: String,
        /// Key that unbonds.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Register as a validator (or change the consensus key): from the next epoch on, a bond
    /// of at least the validator minimum puts the key in the validator set.
    Validator {
        /// Data directory of the node whose validator.key becomes the consensus key.
        #[arg(long)]
        datadir: std::path::PathBuf,
        /// Key that staked (it receives the fees of the blocks the node proposes).
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Withdraw tokens whose unbonding period is over.
    Withdraw {
        /// Key that withdraws.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Bond, unbonding tokens and roles of a key or address.
    Status {
        /// Key name or 0x address.
        account: String,
    },
}

/// What a provider offers.
#[derive(Debug, Clone, clap::Args)]
pub struct AdvertArgs {
    /// Key of the provider.
    #[arg(long)]
    from: String,
    /// Storage capacity offered (e.g. 100GiB); needs the storage minimum stake.
    #[arg(long)]
    storage: Option<String>,
    /// Storage price, in wei per MiB per epoch.
    #[arg(long, default_value_t = 1_000_000_000)]
    storage_price: u128,
    /// CPU cores offered; needs the compute minimum stake.
    #[arg(long, default_value_t = 0)]
    compute_cores: u32,
    /// Memory offered to jobs, in MiB.
    #[arg(long, default_value_t = 0)]
    memory_mib: u32,
    /// Fuel the provider executes per second.
    #[arg(long, default_value_t = 0)]
    fuel_per_second: u64,
    /// Compute price, in wei per unit of fuel.
    #[arg(long, default_value_t = 1)]
    compute_price: u128,
    /// libp2p peer id of the provider's node.
    #[arg(long, default_value = "")]
    peer_id: String,
    /// The node's multiaddresses, comma separated.
    #[arg(long, default_value = "")]
    addresses: String,
    #[command(flatten)]
    options: TxOptions,
}

/// `cairn provider ...`
#[derive(Debug, clap::Subcommand)]
pub enum ProviderCommand {
    /// Register as a storage and/or compute provider.
    Register(AdvertArgs),
    /// Update what a registered provider offers.
    Advertise(AdvertArgs),
    /// The providers whose signed adverts reached the node, with their on-chain stake.
    List,
    /// A provider's advert, roles and storage in use.
    Status {
        /// Key name or 0x address.
        account: String,
    },
}

/// `cairn rewards ...`
#[derive(Debug, clap::Subcommand)]
pub enum RewardsCommand {
    /// Rewards and payments waiting to be claimed.
    Show {
        /// Key name or 0x address.
        account: String,
    },
    /// Claim everything waiting (reward pool, storage and compute payments).
    Claim {
        /// Key that claims.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
}

fn role_names(bits: u8) -> Vec<&'static str> {
    [
        (roles::VALIDATOR, "validator"),
        (roles::STORAGE, "storage"),
        (roles::COMPUTE, "compute"),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StakeStatus {
    address: Address,
    bonded: String,
    bonded_wei: U256,
    unbonding: String,
    unbonding_wei: U256,
    withdrawable_epoch: u64,
    current_epoch: u64,
    roles: Vec<&'static str>,
    consensus_key: cairn_primitives::B256,
}

pub async fn stake(command: StakeCommand, global: &Global) -> anyhow::Result<()> {
    let keystore = keystore(global);
    let (from, call, options) = match command {
        StakeCommand::Status { account } => {
            let address = resolve(&keystore, &account)?;
            let s = decoded(global, STAKING, Staking::stakeOfCall { staker: address }).await?;
            let current_epoch = decoded(global, STAKING, Staking::currentEpochCall {}).await?;
            let status = StakeStatus {
                address,
                bonded: format_crn(s.bonded),
                bonded_wei: s.bonded,
                unbonding: format_crn(s.unbonding),
                unbonding_wei: s.unbonding,
                withdrawable_epoch: s.withdrawableEpoch,
                current_epoch,
                roles: role_names(s.roles),
                consensus_key: s.consensusKey,
            };
            return print(global.json, &status, || {
                let unbonding = if status.unbonding_wei.is_zero() {
                    "nothing".to_string()
                } else {
                    format!(
                        "{} CRN, withdrawable from epoch {}",
                        status.unbonding, status.withdrawable_epoch
                    )
                };
                let roles = if status.roles.is_empty() {
                    "none".to_string()
                } else {
                    status.roles.join(", ")
                };
                format!(
                    "{}\n  bonded      {} CRN\n  unbonding   {unbonding}\n  roles       {roles}\n  epoch       {}",
                    status.address, status.bonded, status.current_epoch
                )
            });
        }
        StakeCommand::Validator {
            datadir,
            from,
            options,
        } => {
            let key_path = datadir.join(cairn_node::datadir::files::VALIDATOR_KEY);
            let consensus_key = cairn_node::datadir::read_key(&key_path)?.public_key();
            let call = Staking::registerValidatorCall {
                consensusKey: consensus_key.into(),
            };
            (from, Call::contract(STAKING, U256::ZERO, call), options)
        }
        StakeCommand::Add {
            amount,
            from,
            options,
        } => {
            let call = Call::contract(STAKING, parse_crn(&amount)?, Staking::stakeCall {});
            (from, call, options)
        }
        StakeCommand::Unbond {
            amount,
            from,
            options,
        } => {
            let call = Staking::unbondCall {
                amount: parse_crn(&amount)?,
            };
            (from, Call::contract(STAKING, U256::ZERO, call), options)
        }
        StakeCommand::Withdraw { from, options } => {
            let call = Call::contract(STAKING, U256::ZERO, Staking::withdrawCall {});
            (from, call, options)
        }
    };
    let key = unlock(global, &keystore, &from)?;
    submit(global, &key, call, &options)
        .await?
        .print(global.json)
}

pub async fn provider(command: ProviderCommand, global: &Global) -> anyhow::Result<()> {
    let keystore = keystore(global);
    let advert = match command {
        ProviderCommand::Register(advert) | ProviderCommand::Advertise(advert) => advert,
        ProviderCommand::List => return crate::storage::list_providers(global).await,
        ProviderCommand::Status { account } => {
            let address = resolve(&keystore, &account)?;
            let advert = decoded(
                global,
                REGISTRY,
                ProviderRegistry::advertOfCall { provider: address },
            )
            .await?;
            let stake = decoded(global, STAKING, Staking::stakeOfCall { staker: address }).await?;
            let used = decoded(
                global,
                STORAGE_MARKET,
                StorageMarket::usedCapacityCall(address),
            )
            .await?;
            let status = serde_json::json!({
                "address": address,
                "roles": role_names(stake.roles),
                "bonded": format_crn(stake.bonded),
                "storageCapacity": advert.storageCapacity,
                "storageUsed": used,
                "storagePricePerMiBEpoch": advert.storagePricePerMiBEpoch.to_string(),
                "cores": advert.cores,
                "memoryMiB": advert.memoryMiB,
                "fuelPerSecond": advert.fuelPerSecond,
                "computePricePerFuel": advert.computePricePerFuel.to_string(),
                "peerId": String::from_utf8_lossy(&advert.peerId),
                "addresses": advert.addresses,
                "updatedAtBlock": advert.updatedAtBlock,
            });
            return print(global.json, &status, || {
                if advert.updatedAtBlock == 0 && advert.storageCapacity == 0 && advert.cores == 0 {
                    return format!(
                        "{address} is not a registered provider (`cairn provider register`)"
                    );
                }
                format!(
                    "{address}\n  roles       {}\n  bonded      {} CRN\n  storage     {} of {} bytes in use, {} wei/MiB/epoch\n  compute     {} cores, {} MiB, {} fuel/s, {} wei/fuel\n  peer        {} {}",
                    role_names(stake.roles).join(", "),
                    format_crn(stake.bonded),
                    used,
                    advert.storageCapacity,
                    advert.storagePricePerMiBEpoch,
                    advert.cores,
                    advert.memoryMiB,
                    advert.fuelPerSecond,
                    advert.computePricePerFuel,
                    String::from_utf8_lossy(&advert.peerId),
                    advert.addresses
                )
            });
        }
    };
    let storage_capacity = advert
        .storage
        .as_deref()
        .map(parse_size)
        .transpose()?
        .unwrap_or(0);
    let call = ProviderRegistry::advertiseCall {
        storageCapacity: storage_capacity,
        storagePricePerMiBEpoch: advert.storage_price,
        cores: advert.compute_cores,
        memoryMiB: advert.memory_mib,
        fuelPerSecond: advert.fuel_per_second,
        computePricePerFuel: advert.compute_price,
        peerId: Bytes::from(advert.peer_id.into_bytes()),
        addresses: advert.addresses,
    };
    if storage_capacity == 0 && advert.compute_cores == 0 {
        anyhow::bail!("offer something: --storage SIZE and/or --compute-cores N");
    }
    let key = unlock(global, &keystore, &advert.from)?;
    submit(
        global,
        &key,
        Call::contract(REGISTRY, U256::ZERO, call),
        &advert.options,
    )
    .await?
    .print(global.json)
}

/// What an account can claim from each contract.
async fn claimable(
    global: &Global,
    address: Address,
) -> anyhow::Result<[(Address, &'static str, U256, Vec<u8>); 3]> {
    Ok([
        (
            REWARD_POOL,
            "rewardPool",
            decoded(global, REWARD_POOL, RewardPool::owedCall(address)).await?,
            RewardPool::claimCall {}.abi_encode(),
        ),
        (
            STORAGE_MARKET,
            "storageMarket",
            decoded(
                global,
                STORAGE_MARKET,
                StorageMarket::claimableCall(address),
            )
            .await?,
            StorageMarket::claimCall {}.abi_encode(),
        ),
        (
            COMPUTE_MARKET,
            "computeMarket",
            decoded(
                global,
                COMPUTE_MARKET,
                ComputeMarket::claimableCall(address),
            )
            .await?,
            ComputeMarket::claimCall {}.abi_encode(),
        ),
    ])
}

pub async fn rewards(command: RewardsCommand, global: &Global) -> anyhow::Result<()> {
    let keystore = keystore(global);
    match command {
        RewardsCommand::Show { account } => {
            let address = resolve(&keystore, &account)?;
            let sources = claimable(global, address).await?;
            let total: U256 = sources.iter().map(|(_, _, amount, _)| *amount).sum();
            let mut json = serde_json::Map::new();
            json.insert("address".into(), serde_json::json!(address));
            for (_, name, amount, _) in &sources {
                json.insert((*name).into(), serde_json::json!(format_crn(*amount)));
            }
            json.insert("total".into(), serde_json::json!(format_crn(total)));
            print(global.json, &json, || {
                let mut text = format!("{address}\n");
                for (_, name, amount, _) in &sources {
                    text.push_str(&format!("  {name:<14} {} CRN\n", format_crn(*amount)));
                }
                text.push_str(&format!("  {:<14} {} CRN", "total", format_crn(total)));
                text
            })
        }
        RewardsCommand::Claim { from, options } => {
            let key = unlock(global, &keystore, &from)?;
            let mut claimed = Vec::new();
            for (contract, name, amount, input) in claimable(global, key.address()).await? {
                if amount.is_zero() {
                    continue;
                }
                submit(
                    global,
                    &key,
                    Call {
                        to: contract,
                        value: U256::ZERO,
                        input: input.into(),
                    },
                    &options,
                )
                .await?;
                claimed.push((name, amount));
            }
            if claimed.is_empty() {
                anyhow::bail!("nothing to claim for {}", key.address());
            }
            let json: serde_json::Map<_, _> = claimed
                .iter()
                .map(|(name, amount)| ((*name).to_string(), serde_json::json!(format_crn(*amount))))
                .collect();
            print(global.json, &json, || {
                claimed
                    .iter()
                    .map(|(name, amount)| {
                        format!("claimed {} CRN from {name}", format_crn(*amount))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}
