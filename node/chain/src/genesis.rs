//! The chain's starting point: parameters, validators and the initial state.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_storage::{BlockCommit, PendingState, Store};
use revm::bytecode::Bytecode;
use serde::{Deserialize, Serialize};

use crate::error::{ChainError, Result};
use alloy_primitives::address;
use alloy_signer_local::MnemonicBuilder;
use alloy_signer_local::coins_bip39::English;
use cairn_primitives::beacon::vrf_public_key;
use cairn_primitives::transaction::hex_32;
use cairn_primitives::{
    AccountKey, Address, B256, Block, BlockReceipts, Bytes, Canonical, EthereumKey, Header,
    Signature, U256, receipts_root, tx_root,
};

/// One token (CRN) in wei.
pub const TOKEN: u128 = 1_000_000_000_000_000_000;

/// The published seed of the dev accounts. Everyone knows these keys: never use them for value.
pub const DEV_SEED: &str = "cairn dev seed: these keys are public, never hold real value with them";

/// How many dev accounts `cairn dev` funds.
pub const DEV_ACCOUNT_COUNT: u32 = 10;

/// Balance of each dev account, in CRN.
pub const DEV_ACCOUNT_BALANCE_CRN: u128 = 1_000_000;

/// Dev account `index`, derived from [`DEV_SEED`].
pub fn dev_account(index: u32) -> AccountKey {
    let mut hasher = blake3::Hasher::new_derive_key("cairn dev account v1");
    hasher.update(DEV_SEED.as_bytes());
    hasher.update(&index.to_le_bytes());
    AccountKey::from_bytes(hasher.finalize().as_bytes())
}

/// The test mnemonic of Hardhat, anvil and Foundry: every Ethereum tool knows its accounts.
/// Public: never hold real value with them.
pub const TEST_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// How many accounts of [`TEST_MNEMONIC`] dev chains fund.
pub const TEST_MNEMONIC_ACCOUNT_COUNT: u32 = 10;

/// The addresses of the first ten accounts of [`TEST_MNEMONIC`] (`m/44'/60'/0'/0/{index}`, as
/// anvil and Hardhat derive them), which dev chains and local testnets fund. Written out, not
/// derived, because a genesis is built in many places and a derivation costs 2,048 rounds of
/// PBKDF2; `tests::the_test_mnemonic_accounts_are_its_derivations` derives them.
pub const TEST_MNEMONIC_ADDRESSES: [Address; TEST_MNEMONIC_ACCOUNT_COUNT as usize] = [
    address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
    address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
    address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    address!("90F79bf6EB2c4f870365E785982E1f101E93b906"),
    address!("15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    address!("9965507D1a55bcC2695C58ba16FB37d819B0A4dc"),
    address!("976EA74026E726554dB657fA54763abd0C3a0aa9"),
    address!("14dC79964da2C08b23698B3D3cc7Ca32193d9955"),
    address!("23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"),
    address!("a0Ee7A142d267C1f36714E4a8F75612F20a79720"),
];

/// Ethereum test account `index` of [`TEST_MNEMONIC`], with its key.
pub fn test_mnemonic_account(index: u32) -> Result<EthereumKey> {
    let failed = |detail: String| ChainError::TestAccount { index, detail };
    let signer = MnemonicBuilder::<English>::default()
        .phrase(TEST_MNEMONIC)
        .index(index)
        .and_then(|builder| builder.build())
        .map_err(|e| failed(e.to_string()))?;
    EthereumKey::from_bytes(&signer.to_bytes().0).map_err(|e| failed(e.to_string()))
}

/// The dev chain's validator key, derived from [`DEV_SEED`].
pub fn dev_validator() -> AccountKey {
    AccountKey::from_bytes(&blake3::derive_key(
        "cairn dev validator v1",
        DEV_SEED.as_bytes(),
    ))
}

/// A validator at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisValidator {
    /// Consensus public key (ed25519).
    #[serde(with = "hex_32")]
    pub public_key: [u8; 32],
    /// Account credited with the fees of its blocks; also its account in Staking.
    pub beneficiary: Address,
    /// Tokens bonded for it in Staking at genesis (wei), on top of the allocations.
    #[serde(default)]
    pub stake: U256,
    /// VRF public key (schnorrkel/sr25519) of the randomness beacon (`cairn_primitives::beacon`);
    /// Staking stores it with the consensus key. Zero in files written before it existed, which
    /// `validate` refuses.
    #[serde(default, with = "hex_32")]
    pub vrf_key: [u8; 32],
}

/// Parameters of the reward contracts predeployed at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractsConfig {
    /// Epochs between `unbond` and `withdraw`.
    pub unbonding_epochs: u64,
    /// Least bond of a validator (wei).
    pub min_validator_stake: U256,
    /// Least bond of a storage provider (wei).
    pub min_storage_stake: U256,
    /// Least bond of a compute provider (wei).
    pub min_compute_stake: U256,
    /// Chunks challenged per deal and epoch (5 catch a provider that lost 5 % of a file
    /// within 30 epochs with probability 99.95 %: docs/economics.md).
    pub challenges_per_epoch: u32,
    /// Blocks after an epoch's first block (whose randomness is the seed) in which its proofs
    /// are taken.
    pub proof_window_blocks: u64,
    /// Missed epochs after which a deal is terminated.
    pub max_faults: u32,
    /// Taken from a storage deal's collateral per missed epoch and paid to the client, as a
    /// percent of the deal's price per epoch.
    pub fault_fee_percent: u32,
    /// Taken from a storage deal's collateral when it is terminated and paid to the client, as
    /// a percent of the deal's price per epoch.
    pub termination_fee_percent: u32,
    /// Blocks each stage of a compute job may take before anyone can expire it.
    pub stage_timeout_blocks: u64,
    /// Blocks an agreed compute result stays open to challenge before it is paid.
    pub challenge_window_blocks: u64,
    /// Slashed from a compute provider or verifier found lying, paid to the honest one (wei).
    pub liar_slash: U256,
    /// Slashed from a compute party that let its stage time out (wei).
    pub timeout_slash: U256,
    /// Rewards shared per epoch by fees paid (wei).
    pub emission_per_epoch: U256,
    /// Percent of every market payment to a provider that is burnt.
    pub fee_burn_percent: u8,
    /// A provider's emission in an epoch is at most this percent of what its payments burnt.
    pub emission_cap_percent: u8,
    /// The reward pool's genesis balance (wei).
    pub reward_pool_endowment: U256,
    /// Percent of an equivocating validator's bond and unbonding tokens that is slashed.
    #[serde(default = "default_equivocation_slash_percent")]
    pub equivocation_slash_percent: u8,
    /// Percent of an equivocation slash paid to whoever reported it; the rest goes to the
    /// reward pool.
    #[serde(default = "default_reporter_reward_percent")]
    pub reporter_reward_percent: u8,
}

/// Half the stake: equivocation is never an accident of an honest node (it takes signing two
/// conflicting votes), so the loss must outweigh anything a fork could win (decisions.md).
fn default_equivocation_slash_percent() -> u8 {
    50
}

/// A tenth of the slash: enough to pay a watcher for its work, too little to make reporting
/// oneself worthwhile (decisions.md).
fn default_reporter_reward_percent() -> u8 {
    10
}

impl ContractsConfig {
    /// Refuses parameters the contracts would refuse at genesis, or that make a market unusable.
    fn validate(&self, epoch_length: u64) -> Result<()> {
        let fail = |m: &'static str| Err(ChainError::InvalidGenesis(m));
        if [
            self.equivocation_slash_percent,
            self.reporter_reward_percent,
            self.fee_burn_percent,
            self.emission_cap_percent,
        ]
        .iter()
        .any(|p| *p > 100)
        {
            return fail(
                "equivocationSlashPercent, reporterRewardPercent, feeBurnPercent and \
                 emissionCapPercent are at most 100",
            );
        }
        if self.challenges_per_epoch == 0 {
            return fail("challengesPerEpoch must be at least 1");
        }
        if self.proof_window_blocks == 0 || self.proof_window_blocks > epoch_length {
            return fail("proofWindowBlocks must be between 1 and epochLength");
        }
        if self.liar_slash.is_zero() || self.timeout_slash > self.liar_slash {
            return fail(
                "liarSlash must be above 0 and at least timeoutSlash (the job collateral)",
            );
        }
        Ok(())
    }

    /// The dev chain's parameters.
    pub fn dev() -> Self {
        let crn = |n: u64| U256::from(n) * U256::from(TOKEN);
        Self {
            unbonding_epochs: 2,
            min_validator_stake: crn(1_000),
            min_storage_stake: crn(100),
            min_compute_stake: crn(100),
            challenges_per_epoch: 5,
            proof_window_blocks: 8,
            max_faults: 3,
            fault_fee_percent: 350,
            termination_fee_percent: 2_000,
            stage_timeout_blocks: 20,
            challenge_window_blocks: 10,
            liar_slash: crn(50),
            timeout_slash: crn(10),
            emission_per_epoch: crn(100),
            fee_burn_percent: 10,
            emission_cap_percent: 50,
            reward_pool_endowment: crn(1_000_000),
            equivocation_slash_percent: default_equivocation_slash_percent(),
            reporter_reward_percent: default_reporter_reward_percent(),
        }
    }
}

/// An account at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Contract code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Bytes>,
    /// Contract storage.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<U256, U256>,
}

/// Everything that defines a chain at height 0. Nodes with different genesis files are on
/// different chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Genesis {
    /// Chain id, signed into every transaction.
    pub chain_id: u64,
    /// Timestamp of the genesis block, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// Target time between blocks, in milliseconds (a node may override it).
    pub block_time_ms: u64,
    /// Most gas one block may use.
    pub gas_limit: u64,
    /// Base fee per gas, in wei: the lowest gas price accepted.
    pub base_fee_per_gas: u64,
    /// The validators of the first epoch.
    pub validators: Vec<GenesisValidator>,
    /// Initial accounts.
    pub alloc: BTreeMap<Address, GenesisAccount>,
    /// The reward contracts, if this chain has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracts: Option<ContractsConfig>,
}

impl Genesis {
    /// The dev chain: one validator, the dev accounts funded.
    pub fn dev() -> Self {
        let validator = dev_validator();
        let funded = GenesisAccount {
            balance: U256::from(DEV_ACCOUNT_BALANCE_CRN) * U256::from(TOKEN),
            ..Default::default()
        };
        let alloc = (0..DEV_ACCOUNT_COUNT)
            .map(|i| dev_account(i).address())
            .chain(TEST_MNEMONIC_ADDRESSES.iter().copied())
            .map(|address| (address, funded.clone()))
            .collect();
        Self {
            chain_id: 31_337,
            timestamp_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            epoch_length: 30,
            block_time_ms: 1_000,
            gas_limit: 60_000_000,
            base_fee_per_gas: 1_000_000_000,
            validators: vec![GenesisValidator {
                public_key: validator.public_key(),
                beneficiary: validator.address(),
                stake: U256::from(1_000u64) * U256::from(TOKEN),
                vrf_key: vrf_public_key(&validator),
            }],
            alloc,
            contracts: Some(ContractsConfig::dev()),
        }
    }

    /// Reads a genesis file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ChainError::io(path, e))?;
        let genesis: Self = serde_json::from_str(&text).map_err(|source| ChainError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Writes the genesis file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|source| ChainError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, text).map_err(|e| ChainError::io(path, e))
    }

    /// Checks the parameters make a working chain.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &'static str| Err(ChainError::InvalidGenesis(m));
        if self.chain_id == 0 {
            return fail("chainId must not be 0");
        }
        if self.epoch_length == 0 {
            return fail("epochLength must be at least 1");
        }
        if self.block_time_ms == 0 {
            return fail("blockTimeMs must be at least 1");
        }
        if self.gas_limit < 21_000 {
            return fail("gasLimit must hold at least one transfer (21000)");
        }
        if self.validators.is_empty() {
            return fail("at least one validator is needed");
        }
        let keys: std::collections::BTreeSet<_> =
            self.validators.iter().map(|v| v.public_key).collect();
        if keys.len() != self.validators.len() {
            return fail("a validator key is listed twice; each validator needs its own key");
        }
        if !self
            .validators
            .iter()
            .all(|v| cairn_primitives::beacon::is_vrf_key(&v.vrf_key))
        {
            return fail(
                "a validator has no valid vrfKey (its blocks' randomness could not be checked): \
                 write the genesis again with `cairn testnet init`",
            );
        }
        if let Some(contracts) = &self.contracts {
            contracts.validate(self.epoch_length)?;
        }
        if let Some(address) = self
            .alloc
            .keys()
            .find(|a| cairn_reward_contracts::is_reserved(a))
        {
            return Err(ChainError::ReservedAddress(*address));
        }
        Ok(())
    }

    /// A digest of the whole configuration. The genesis block has no parent, so its `parent`
    /// field carries this: the genesis hash then commits to every parameter and allocation.
    fn digest(&self) -> B256 {
        let mut hasher = blake3::Hasher::new_derive_key("cairn genesis v1");
        // serde_json writes struct fields in declaration order and maps in key order; these
        // plain types always serialize, and a hasher never fails to take bytes.
        if let Err(error) = serde_json::to_writer(&mut hasher, self) {
            unreachable!("genesis always serializes: {error}");
        }
        B256::from(*hasher.finalize().as_bytes())
    }

    /// The chain's consensus domain: every vote is signed under a namespace derived from it
    /// and the epoch (`cairn_primitives::consensus::epoch_namespace`). It is a digest of the
    /// configuration, not the genesis hash, so that the Staking contract can hold it at genesis
    /// to check equivocation evidence.
    pub fn consensus_domain(&self) -> [u8; 32] {
        *blake3::Hasher::new_derive_key("cairn consensus domain v1")
            .update(self.digest().as_slice())
            .finalize()
            .as_bytes()
    }

    /// The genesis block's randomness, the seed of epoch 0.
    fn randomness(&self) -> B256 {
        B256::from(
            *blake3::Hasher::new_derive_key("cairn genesis randomness v1")
                .update(self.digest().as_slice())
                .finalize()
                .as_bytes(),
        )
    }

    /// The genesis block (height 0): no transactions, the allocations as its state.
    fn block(&self, state_root: B256) -> Block {
        let header = Header {
            chain_id: self.chain_id,
            parent: self.digest(),
            height: 0,
            view: 0,
            proposer: [0; 32],
            beneficiary: Address::ZERO,
            timestamp_ms: self.timestamp_ms,
            tx_root: tx_root(&[]),
            receipts_root: receipts_root(&[], &[]),
            state_root,
            randomness: self.randomness(),
            vrf_output: [0; 32],
            vrf_proof: Signature::from([0; 64]),
            parent_votes_hash: B256::ZERO,
            gas_used: 0,
            gas_limit: self.gas_limit,
            base_fee_per_gas: self.base_fee_per_gas,
        };
        Block {
            header,
            transactions: Vec::new(),
            parent_votes: None,
        }
    }

    /// Writes the genesis block and state into an empty store, or checks that a store already
    /// holds this chain. Returns the genesis block.
    pub fn initialize(&self, store: &Store) -> Result<Block> {
        self.validate()?;
        if store.head()?.is_some() {
            let (_, bytes) = store
                .block(0)?
                .ok_or(ChainError::Incomplete("the store has no genesis block"))?;
            let stored = Block::decode(&bytes)?;
            store.check_genesis(self.block(stored.header.state_root).hash())?;
            return Ok(stored);
        }
        let view = store.state();
        let mut pending = PendingState::new(&view);
        for (address, account) in &self.alloc {
            pending.add_balance(*address, account.balance)?;
            if let Some(code) = &account.code {
                pending.set_code(*address, Bytecode::new_raw(code.clone()))?;
            }
            for (slot, value) in &account.storage {
                pending.set_storage(*address, *slot, *value)?;
            }
        }
        if let Some(contracts) = &self.contracts {
            self.install_contracts(contracts, &mut pending)?;
        }
        let tree = store.prepare_state_root(&pending)?;
        let block = self.block(tree.root());
        let commit = BlockCommit {
            height: 0,
            hash: block.hash(),
            block: &block.encode(),
            receipts: &BlockReceipts::default().encode(),
            tx_hashes: &[],
            finality: None,
            next_validators: None,
        };
        store.commit_block(&commit, &pending, tree)?;
        Ok(block)
    }

    /// Installs the predeploys, funds them and initializes them with system calls.
    fn install_contracts(
        &self,
        config: &ContractsConfig,
        pending: &mut PendingState<'_>,
    ) -> Result<()> {
        use alloy_sol_types::SolCall;
        use cairn_reward_contracts::bindings::{ComputeMarket, RewardPool, Staking, StorageMarket};
        use cairn_reward_contracts::{
            COMPUTE_MARKET, PREDEPLOYS, REWARD_POOL, STAKING, STORAGE_MARKET, SYSTEM,
        };

        for predeploy in PREDEPLOYS {
            pending.set_code(predeploy.address, Bytecode::new_raw(predeploy.code.clone()))?;
        }
        pending.add_balance(REWARD_POOL, config.reward_pool_endowment)?;
        let staked = self
            .validators
            .iter()
            .fold(U256::ZERO, |sum, v| sum.saturating_add(v.stake));
        pending.add_balance(STAKING, staked)?;

        let epoch_length = self.epoch_length;
        let mut calls = vec![
            (
                STAKING,
                Staking::initializeCall {
                    epochLength_: epoch_length,
                    unbondingEpochs_: config.unbonding_epochs,
                    minValidatorStake_: config.min_validator_stake,
                    minStorageStake_: config.min_storage_stake,
                    minComputeStake_: config.min_compute_stake,
                    consensusDomain_: B256::from(self.consensus_domain()),
                    equivocationSlashPercent_: config.equivocation_slash_percent,
                    reporterRewardPercent_: config.reporter_reward_percent,
                }
                .abi_encode(),
            ),
            (
                STORAGE_MARKET,
                StorageMarket::initializeCall {
                    epochLength_: epoch_length,
                    challengesPerEpoch_: config.challenges_per_epoch,
                    proofWindowBlocks_: config.proof_window_blocks,
                    maxFaults_: config.max_faults,
                    faultFeePercent_: config.fault_fee_percent,
                    terminationFeePercent_: config.termination_fee_percent,
                    genesisSeed: self.randomness(),
                }
                .abi_encode(),
            ),
            (
                COMPUTE_MARKET,
                ComputeMarket::initializeCall {
                    epochLength_: epoch_length,
                    stageTimeoutBlocks_: config.stage_timeout_blocks,
                    challengeWindowBlocks_: config.challenge_window_blocks,
                    blockTimeMs_: self.block_time_ms,
                    liarSlash_: config.liar_slash,
                    timeoutSlash_: config.timeout_slash,
                }
                .abi_encode(),
            ),
            (
                REWARD_POOL,
                RewardPool::initializeCall {
                    epochLength_: epoch_length,
                    emissionPerEpoch_: config.emission_per_epoch,
                    feeBurnPercent_: config.fee_burn_percent,
                    emissionCapPercent_: config.emission_cap_percent,
                }
                .abi_encode(),
            ),
        ];
        for validator in self.validators.iter().filter(|v| !v.stake.is_zero()) {
            let call = Staking::genesisStakeCall {
                validator: validator.beneficiary,
                amount: validator.stake,
                consensusKey: B256::from(validator.public_key),
                vrfKey: B256::from(validator.vrf_key),
            };
            calls.push((STAKING, call.abi_encode()));
        }
        let block = cairn_evm::execution::BlockContext {
            chain_id: self.chain_id,
            height: 0,
            timestamp_secs: self.timestamp_ms / 1000,
            gas_limit: self.gas_limit,
            base_fee_per_gas: self.base_fee_per_gas,
            beneficiary: Address::ZERO,
            randomness: self.randomness(),
        };
        for (contract, input) in calls {
            let result =
                cairn_evm::execution::system_call(pending, &block, SYSTEM, contract, input.into())?;
            if !result.is_success() {
                let reason = result
                    .output()
                    .and_then(|out| {
                        cairn_reward_contracts::describe_revert(
                            out,
                            cairn_primitives::units::format_crn,
                        )
                    })
                    .unwrap_or_else(|| format!("{result:?}"));
                return Err(ChainError::ContractInit { contract, reason });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_primitives::U256;

    #[test]
    fn the_test_mnemonic_accounts_are_its_derivations_and_dev_chains_fund_them() {
        let genesis = Genesis::dev();
        for (index, address) in TEST_MNEMONIC_ADDRESSES.iter().enumerate() {
            let key = test_mnemonic_account(index as u32).unwrap();
            assert_eq!(key.address(), *address, "account {index}");
            assert!(genesis.alloc[address].balance > U256::ZERO);
        }
    }

    #[test]
    fn genesis_round_trips_and_a_datadir_refuses_another_chain() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = Genesis::dev();
        let path = dir.path().join("genesis.json");
        genesis.save(&path).unwrap();
        assert_eq!(Genesis::load(&path).unwrap(), genesis);

        let store = Store::open(&dir.path().join("db")).unwrap();
        let block = genesis.initialize(&store).unwrap();
        assert_eq!(
            genesis.initialize(&store).unwrap(),
            block,
            "reopening is idempotent"
        );
        let mut other = genesis.clone();
        other.alloc.values_mut().next().unwrap().balance += U256::from(1);
        let error = other.initialize(&store).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("belongs to a chain with genesis"),
            "{error}"
        );
    }

    /// Files written before validators had VRF keys and equivocation had shares still parse,
    /// with the defaults; one without VRF keys is then refused with a clear reason.
    #[test]
    fn files_without_vrf_keys_or_slash_shares_load_with_the_defaults() {
        let mut json = serde_json::to_value(Genesis::dev()).unwrap();
        json["validators"][0]
            .as_object_mut()
            .unwrap()
            .remove("vrfKey");
        let contracts = json["contracts"].as_object_mut().unwrap();
        contracts.remove("equivocationSlashPercent");
        contracts.remove("reporterRewardPercent");
        let genesis: Genesis = serde_json::from_value(json).unwrap();
        assert_eq!(genesis.validators[0].vrf_key, [0; 32]);
        // A validator without a VRF key could sign no block anyone accepts: refused up front.
        assert!(genesis.validate().is_err());
        let contracts = genesis.contracts.unwrap();
        assert_eq!(
            (
                contracts.equivocation_slash_percent,
                contracts.reporter_reward_percent
            ),
            (50, 10)
        );
    }

    #[test]
    fn invalid_genesis_files_are_explained() {
        let mut reserved = Genesis::dev();
        reserved
            .alloc
            .insert(Address::with_last_byte(1), GenesisAccount::default());
        assert!(
            reserved
                .validate()
                .unwrap_err()
                .to_string()
                .contains("precompile")
        );
        let no_validators = Genesis {
            validators: vec![],
            ..Genesis::dev()
        };
        assert!(no_validators.validate().is_err());
        let zero_chain = Genesis {
            chain_id: 0,
            ..Genesis::dev()
        };
        assert!(zero_chain.validate().is_err());
        let mut over_100 = Genesis::dev();
        if let Some(contracts) = &mut over_100.contracts {
            contracts.reporter_reward_percent = 101;
        }
        assert!(
            over_100
                .validate()
                .unwrap_err()
                .to_string()
                .contains("at most 100")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, "{\"chainId\": 1}").unwrap();
        assert!(
            Genesis::load(&path)
                .unwrap_err()
                .to_string()
                .contains("genesis.json")
        );
    }
}
