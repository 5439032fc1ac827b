//! An in-process chain with the reward contracts, for tests of the contracts' rules: their real
//! compiled bytecode on revm, through the chain (genesis predeploys, transactions, one block
//! each, epoch-closing system calls).

// The harness panics on failure, which is how a test reports one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy_sol_types::SolCall;
use cairn_chain::chain::{CallRequest, Chain};
use cairn_chain::genesis::{Genesis, TOKEN, dev_account, dev_validator};
use cairn_evm::execution::Sequential;
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, Bytes, Receipt, TxBody, TxStatus, U256};
use cairn_reward_contracts::bindings::{ProviderRegistry, Staking};
use cairn_reward_contracts::{REGISTRY, STAKING, describe_revert};

/// Long enough for the most transactions a test sends within one epoch (one block each).
pub const EPOCH: u64 = 16;

pub fn crn(n: u64) -> U256 {
    U256::from(n) * U256::from(TOKEN)
}

pub struct Harness {
    _dir: tempfile::TempDir,
    pub chain: Chain,
    pub chain_id: u64,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut genesis = Genesis::dev();
        genesis.epoch_length = EPOCH;
        let chain_id = genesis.chain_id;
        let chain = Chain::open(dir.path(), genesis, Box::new(Sequential)).unwrap();
        Self {
            _dir: dir,
            chain,
            chain_id,
        }
    }

    pub fn height(&self) -> u64 {
        self.chain.head_header().height
    }

    pub fn epoch(&self) -> u64 {
        self.height() / EPOCH
    }

    /// Produces a block with these transactions and returns their receipts.
    pub fn block(&self, txs: &[cairn_primitives::Transaction]) -> Vec<Receipt> {
        let time = self.chain.head_header().timestamp_ms + 1000;
        let produced = self
            .chain
            .produce_block(&dev_validator(), time, txs)
            .unwrap();
        assert!(
            produced.excluded.is_empty(),
            "excluded: {:?}",
            produced.excluded
        );
        produced.receipts
    }

    pub fn tx(
        &self,
        from: &AccountKey,
        to: Address,
        value: U256,
        input: Vec<u8>,
    ) -> cairn_primitives::Transaction {
        let nonce = self.chain.sender_state(from.address()).unwrap().nonce;
        TxBody {
            chain_id: self.chain_id,
            nonce,
            gas_limit: 10_000_000,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 0,
            to: Some(to),
            value,
            input: input.into(),
        }
        .sign(from)
    }

    /// Sends one transaction in its own block.
    pub fn send(&self, from: &AccountKey, to: Address, value: U256, input: Vec<u8>) -> Receipt {
        let tx = self.tx(from, to, value, input);
        self.block(&[tx]).remove(0)
    }

    pub fn ok(&self, from: &AccountKey, to: Address, value: U256, call: impl SolCall) -> Receipt {
        let receipt = self.send(from, to, value, call.abi_encode());
        assert!(
            receipt.succeeded(),
            "{} failed: {}",
            std::any::type_name_of_val(&call),
            explain(&receipt)
        );
        receipt
    }

    pub fn refused(
        &self,
        from: &AccountKey,
        to: Address,
        value: U256,
        call: impl SolCall,
    ) -> String {
        let receipt = self.send(from, to, value, call.abi_encode());
        assert_eq!(
            receipt.status,
            TxStatus::Revert,
            "{} should revert",
            std::any::type_name_of_val(&call)
        );
        explain(&receipt)
    }

    /// Sends `call` and checks it reverts with a reason that says `reason`.
    pub fn refuses(
        &self,
        from: &AccountKey,
        to: Address,
        value: U256,
        call: impl SolCall,
        reason: &str,
    ) {
        let refusal = self.refused(from, to, value, call);
        assert!(refusal.contains(reason), "{refusal}");
    }

    pub fn view<C: SolCall>(&self, to: Address, call: C) -> C::Return {
        let request = CallRequest {
            to: Some(to),
            input: Some(call.abi_encode().into()),
            ..Default::default()
        };
        let result = self.chain.call(&request).unwrap();
        assert!(result.is_success(), "view failed: {result:?}");
        C::abi_decode_returns(result.output().unwrap()).unwrap()
    }

    pub fn balance(&self, address: Address) -> U256 {
        self.chain.sender_state(address).unwrap().balance
    }

    /// Produces empty blocks until the first block of `epoch` is committed (its epoch-closing
    /// calls have run).
    pub fn advance_to_epoch(&self, epoch: u64) {
        while self.height() < epoch * EPOCH {
            self.block(&[]);
        }
    }
}

pub fn explain(receipt: &Receipt) -> String {
    describe_revert(&receipt.output, format_crn)
        .unwrap_or_else(|| format!("{:?} {}", receipt.status, receipt.output))
}

pub fn key(i: u32) -> AccountKey {
    dev_account(i)
}

pub fn stake(h: &Harness, who: &AccountKey, amount: U256) {
    h.ok(who, STAKING, amount, Staking::stakeCall {});
}

pub fn advertise_storage(h: &Harness, who: &AccountKey, capacity: u64) {
    let call = ProviderRegistry::advertiseCall {
        storageCapacity: capacity,
        storagePricePerMiBEpoch: 1,
        cores: 0,
        memoryMiB: 0,
        fuelPerSecond: 0,
        computePricePerFuel: 0,
        peerId: Bytes::from_static(b"12D3KooW-test"),
        addresses: "/ip4/127.0.0.1/tcp/4001".into(),
    };
    h.ok(who, REGISTRY, U256::ZERO, call);
}

pub fn advertise_compute(h: &Harness, who: &AccountKey) {
    let call = ProviderRegistry::advertiseCall {
        storageCapacity: 0,
        storagePricePerMiBEpoch: 0,
        cores: 4,
        memoryMiB: 8192,
        fuelPerSecond: 1_000_000,
        computePricePerFuel: 1,
        peerId: Bytes::new(),
        addresses: String::new(),
    };
    h.ok(who, REGISTRY, U256::ZERO, call);
}
