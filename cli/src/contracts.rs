//! `cairn stake`, `cairn provider` and `cairn rewards`: the reward contracts from the wallet.

use cairn_client::contracts::{self, Advert, claim, provider_status, providers};
use cairn_client::units::parse_size;
use cairn_primitives::units::parse_crn;

use crate::global::Global;
use crate::output::show;
use crate::wallet::{TxOptions, address, send, unlock};

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
    /// Register as a validator, or come back after being jailed: from the next epoch on, a
    /// bond of at least the validator minimum puts the key in the validator set. The node's
    /// validator key signs the registration (proof that this account holds it); a key, once
    /// registered, is this account's for good.
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
    /// Give up the validator role: out of the set from the next epoch, after which the bond
    /// can be unbonded.
    LeaveValidators {
        /// Key of the validator's account.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Report a consensus key that signed two conflicting votes in one view: it is slashed and
    /// you are paid a share.
    ReportEquivocation {
        /// The epoch the votes were signed in.
        #[arg(long)]
        epoch: u64,
        /// The consensus public key that signed both votes (32 bytes, hex).
        #[arg(long)]
        key: String,
        /// The first vote: view, tag, block, signature (105 bytes, hex).
        #[arg(long)]
        vote_a: String,
        /// The second vote, same encoding.
        #[arg(long)]
        vote_b: String,
        /// Key that reports (it receives the reward).
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

pub async fn stake(command: StakeCommand, global: &Global) -> anyhow::Result<()> {
    let (from, call, options) = match command {
        StakeCommand::Status { account } => {
            let address = address(global, &account)?;
            let status = contracts::stake_status(&global.client()?, address).await?;
            return show(global.json, &status);
        }
        StakeCommand::Validator {
            datadir,
            from,
            options,
        } => {
            let key_path = datadir.join(cairn_node::datadir::files::VALIDATOR_KEY);
            let consensus_key = cairn_node::datadir::read_key(&key_path)?;
            let staker = address(global, &from)?;
            let call =
                contracts::register_validator(&global.client()?, staker, &consensus_key).await?;
            (from, call, options)
        }
        StakeCommand::LeaveValidators { from, options } => {
            (from, contracts::leave_validators(), options)
        }
        StakeCommand::ReportEquivocation {
            epoch,
            key,
            vote_a,
            vote_b,
            from,
            options,
        } => (
            from,
            contracts::report_equivocation(epoch, &key, &vote_a, &vote_b)?,
            options,
        ),
        StakeCommand::Add {
            amount,
            from,
            options,
        } => (from, contracts::stake(parse_crn(&amount)?), options),
        StakeCommand::Unbond {
            amount,
            from,
            options,
        } => (from, contracts::unbond(parse_crn(&amount)?), options),
        StakeCommand::Withdraw { from, options } => (from, contracts::withdraw(), options),
    };
    send(global, &from, call, &options).await
}

pub async fn provider(command: ProviderCommand, global: &Global) -> anyhow::Result<()> {
    let advert = match command {
        ProviderCommand::Register(advert) | ProviderCommand::Advertise(advert) => advert,
        ProviderCommand::List => return show(global.json, &providers(&global.client()?).await?),
        ProviderCommand::Status { account } => {
            let address = address(global, &account)?;
            return show(
                global.json,
                &provider_status(&global.client()?, address).await?,
            );
        }
    };
    let call = contracts::advertise(Advert {
        storage_capacity: advert
            .storage
            .as_deref()
            .map(parse_size)
            .transpose()?
            .unwrap_or(0),
        storage_price: advert.storage_price,
        cores: advert.compute_cores,
        memory_mib: advert.memory_mib,
        fuel_per_second: advert.fuel_per_second,
        compute_price: advert.compute_price,
        peer_id: advert.peer_id,
        addresses: advert.addresses,
    })?;
    send(global, &advert.from, call, &advert.options).await
}

pub async fn rewards(command: RewardsCommand, global: &Global) -> anyhow::Result<()> {
    match command {
        RewardsCommand::Show { account } => {
            let address = address(global, &account)?;
            show(
                global.json,
                &contracts::rewards(&global.client()?, address).await?,
            )
        }
        RewardsCommand::Claim { from, options } => {
            let key = unlock(global, &from)?;
            let claimed = claim(&global.client()?, &key, &options.options()).await?;
            show(global.json, &claimed)
        }
    }
}
