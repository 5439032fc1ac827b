//! The reward contracts' rules, executed from their real compiled bytecode on revm, through the
//! chain (genesis predeploys, transactions, epoch-closing system calls).

// The harness panics on failure, which is how a test reports one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy_sol_types::SolCall;
use cairn_chain::chain::{CallRequest, Chain};
use cairn_chain::genesis::{Genesis, TOKEN, dev_account, dev_validator};
use cairn_evm::execution::Sequential;
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, Bytes, Receipt, TxBody, TxStatus, U256};
use cairn_reward_contracts::bindings::{
    ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket,
};
use cairn_reward_contracts::{
    COMPUTE_MARKET, REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET, describe_revert,
};
use cairn_storage::chunk_proof;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Long enough for the most transactions a test sends within one epoch (one block each).
const EPOCH: u64 = 16;

fn crn(n: u64) -> U256 {
    U256::from(n) * U256::from(TOKEN)
}

struct Harness {
    _dir: tempfile::TempDir,
    chain: Chain,
    chain_id: u64,
}

impl Harness {
    fn new() -> Self {
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

    fn height(&self) -> u64 {
        self.chain.head_header().height
    }

    fn epoch(&self) -> u64 {
        self.height() / EPOCH
    }

    /// Produces a block with these transactions and returns their receipts.
    fn block(&self, txs: &[cairn_primitives::Transaction]) -> Vec<Receipt> {
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

    fn tx(
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
    fn send(&self, from: &AccountKey, to: Address, value: U256, input: Vec<u8>) -> Receipt {
        let tx = self.tx(from, to, value, input);
        self.block(&[tx]).remove(0)
    }

    fn ok(&self, from: &AccountKey, to: Address, value: U256, call: impl SolCall) -> Receipt {
        let receipt = self.send(from, to, value, call.abi_encode());
        assert!(
            receipt.succeeded(),
            "{} failed: {}",
            std::any::type_name_of_val(&call),
            explain(&receipt)
        );
        receipt
    }

    fn refused(&self, from: &AccountKey, to: Address, value: U256, call: impl SolCall) -> String {
        let receipt = self.send(from, to, value, call.abi_encode());
        assert_eq!(
            receipt.status,
            TxStatus::Revert,
            "{} should revert",
            std::any::type_name_of_val(&call)
        );
        explain(&receipt)
    }

    fn view<C: SolCall>(&self, to: Address, call: C) -> C::Return {
        let request = CallRequest {
            to: Some(to),
            input: Some(call.abi_encode().into()),
            ..Default::default()
        };
        let result = self.chain.call(&request).unwrap();
        assert!(result.is_success(), "view failed: {result:?}");
        C::abi_decode_returns(result.output().unwrap()).unwrap()
    }

    fn balance(&self, address: Address) -> U256 {
        self.chain.sender_state(address).unwrap().balance
    }

    /// Produces empty blocks until the first block of `epoch` is committed (its epoch-closing
    /// calls have run).
    fn advance_to_epoch(&self, epoch: u64) {
        while self.height() < epoch * EPOCH {
            self.block(&[]);
        }
    }
}

fn explain(receipt: &Receipt) -> String {
    describe_revert(&receipt.output, format_crn)
        .unwrap_or_else(|| format!("{:?} {}", receipt.status, receipt.output))
}

fn key(i: u32) -> AccountKey {
    dev_account(i)
}

fn stake(h: &Harness, who: &AccountKey, amount: U256) {
    h.ok(who, STAKING, amount, Staking::stakeCall {});
}

fn advertise_storage(h: &Harness, who: &AccountKey, capacity: u64) {
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

fn advertise_compute(h: &Harness, who: &AccountKey) {
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

#[test]
fn stake_unbond_and_withdraw_only_after_the_unbonding_period() -> TestResult {
    let h = Harness::new();
    let alice = key(1);
    stake(&h, &alice, crn(200));
    let status = h.view(
        STAKING,
        Staking::stakeOfCall {
            staker: alice.address(),
        },
    );
    assert_eq!(status.bonded, crn(200));

    let too_much = h.refused(
        &alice,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(201) },
    );
    assert!(too_much.contains("only 200 CRN is bonded"), "{too_much}");
    h.ok(
        &alice,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(50) },
    );
    let status = h.view(
        STAKING,
        Staking::stakeOfCall {
            staker: alice.address(),
        },
    );
    assert_eq!((status.bonded, status.unbonding), (crn(150), crn(50)));
    let until = status.withdrawableEpoch;
    assert_eq!(until, h.epoch() + 2);

    let early = h.refused(&alice, STAKING, U256::ZERO, Staking::withdrawCall {});
    assert!(
        early.contains(&format!("unbonding until epoch {until}")),
        "{early}"
    );
    h.advance_to_epoch(until);
    let before = h.balance(alice.address());
    let receipt = h.ok(&alice, STAKING, U256::ZERO, Staking::withdrawCall {});
    assert_eq!(h.balance(alice.address()), before + crn(50) - receipt.fee);
    let again = h.refused(&alice, STAKING, U256::ZERO, Staking::withdrawCall {});
    assert!(again.contains("nothing to withdraw"), "{again}");
    Ok(())
}

#[test]
fn roles_need_their_minimum_stake_and_the_genesis_validator_is_staked() -> TestResult {
    let h = Harness::new();
    let validators = h.view(STAKING, Staking::validatorsCall {});
    assert_eq!(validators.list, vec![dev_validator().address()]);
    assert_eq!(validators.bonds, vec![crn(1_000)]);
    assert_eq!(
        validators.keys,
        vec![B256::from(dev_validator().public_key())]
    );

    let bob = key(2);
    stake(&h, &bob, crn(99));
    let call = ProviderRegistry::advertiseCall {
        storageCapacity: 1 << 20,
        storagePricePerMiBEpoch: 1,
        cores: 0,
        memoryMiB: 0,
        fuelPerSecond: 0,
        computePricePerFuel: 0,
        peerId: Bytes::new(),
        addresses: String::new(),
    };
    let refusal = h.refused(&bob, REGISTRY, U256::ZERO, call.clone());
    assert!(
        refusal.contains("stake below the storage minimum of 100 CRN"),
        "{refusal}"
    );
    stake(&h, &bob, crn(1));
    h.ok(&bob, REGISTRY, U256::ZERO, call);
    assert!(h.view(
        STAKING,
        Staking::hasRolesCall {
            staker: bob.address(),
            roles: 2
        }
    ));
    // A provider cannot unbond below its role's minimum.
    let refusal = h.refused(
        &bob,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(1) },
    );
    assert!(
        refusal.contains("stake below the storage minimum"),
        "{refusal}"
    );
    Ok(())
}

#[test]
fn nobody_but_the_markets_and_the_system_can_slash_mint_or_move_escrow() -> TestResult {
    let h = Harness::new();
    let mallory = key(7);
    stake(&h, &mallory, crn(10));
    let slash = Staking::slashCall {
        staker: dev_validator().address(),
        amount: crn(1),
    };
    assert!(
        h.refused(&mallory, STAKING, U256::ZERO, slash)
            .contains("NotMarket")
    );
    let close = StorageMarket::closeEpochCall { closed: 0 };
    assert!(
        h.refused(&mallory, STORAGE_MARKET, U256::ZERO, close)
            .contains("NotSystem")
    );
    let close = RewardPool::closeEpochCall { epoch: 0 };
    assert!(
        h.refused(&mallory, REWARD_POOL, U256::ZERO, close)
            .contains("NotSystem")
    );
    let mint = RewardPool::recordStorageCall {
        provider: mallory.address(),
        byteEpochs: U256::from(1u64 << 40),
    };
    assert!(
        h.refused(&mallory, REWARD_POOL, U256::ZERO, mint)
            .contains("NotMarket")
    );
    let reinit = RewardPool::initializeCall {
        epochLength_: 1,
        emissionPerEpoch_: crn(1_000_000),
    };
    assert!(
        h.refused(&mallory, REWARD_POOL, U256::ZERO, reinit)
            .contains("NotSystem")
    );
    assert!(
        h.refused(
            &mallory,
            STORAGE_MARKET,
            U256::ZERO,
            StorageMarket::claimCall {}
        )
        .contains("nothing to claim")
    );
    assert!(
        h.refused(&mallory, REWARD_POOL, U256::ZERO, RewardPool::claimCall {})
            .contains("nothing to claim")
    );
    let plain = h.send(&mallory, STAKING, crn(1), Vec::new());
    assert_eq!(plain.status, TxStatus::Revert);
    assert_eq!(
        h.view(
            STAKING,
            Staking::bondedOfCall {
                staker: dev_validator().address()
            }
        ),
        crn(1_000)
    );
    Ok(())
}

/// Proof for `challenges(deal, epoch)` of `data`: (chunks, paths).
fn proofs(h: &Harness, deal: B256, data: &[u8]) -> (Vec<Bytes>, Vec<Bytes>) {
    let epoch = h.epoch();
    let indices = h.view(
        STORAGE_MARKET,
        StorageMarket::challengesCall { id: deal, epoch },
    );
    indices
        .into_iter()
        .map(|index| {
            let proof = chunk_proof::prove(data, index).unwrap();
            let path: Vec<u8> = proof.path.concat();
            (Bytes::from(proof.chunk), Bytes::from(path))
        })
        .unzip()
}

fn open_deal(
    h: &Harness,
    client: &AccountKey,
    provider: &AccountKey,
    data: &[u8],
    epochs: u64,
    price: U256,
) -> B256 {
    let call = StorageMarket::openDealCall {
        provider: provider.address(),
        dataRoot: B256::from(*blake3::hash(data).as_bytes()),
        size: data.len() as u64,
        epochs,
        pricePerEpoch: price.to::<u128>(),
    };
    let receipt = h.ok(client, STORAGE_MARKET, price * U256::from(epochs), call);
    receipt.event::<StorageMarket::DealOpened>().unwrap().id
}

#[test]
fn storage_deal_pays_proofs_refuses_forgeries_fines_misses_and_terminates() -> TestResult {
    let h = Harness::new();
    let (client, provider) = (key(3), key(2));
    stake(&h, &provider, crn(200));
    advertise_storage(&h, &provider, 64 * 1024);
    let data: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();

    // A deal larger than the provider's free capacity cannot be accepted; its client cancels.
    let greedy = key(4);
    let too_big = vec![7u8; 65 * 1024];
    let big_deal = open_deal(&h, &greedy, &provider, &too_big, 1, U256::from(1));
    let refusal = h.refused(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::acceptDealCall { id: big_deal },
    );
    assert!(
        refusal.contains("65536 bytes free, the deal needs 66560"),
        "{refusal}"
    );
    h.ok(
        &greedy,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::cancelDealCall { id: big_deal },
    );
    assert_eq!(
        h.view(
            STORAGE_MARKET,
            StorageMarket::claimableCall(greedy.address())
        ),
        U256::from(1)
    );

    let deal = open_deal(&h, &client, &provider, &data, 6, crn(1));
    let wrong_escrow = StorageMarket::openDealCall {
        provider: provider.address(),
        dataRoot: B256::ZERO,
        size: 10,
        epochs: 2,
        pricePerEpoch: 5,
    };
    assert!(
        h.refused(&client, STORAGE_MARKET, U256::from(9), wrong_escrow)
            .contains("send exactly")
    );
    assert!(
        h.refused(
            &client,
            STORAGE_MARKET,
            U256::ZERO,
            StorageMarket::acceptDealCall { id: deal }
        )
        .contains("NotProvider")
    );
    h.ok(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::acceptDealCall { id: deal },
    );
    let info = h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal });
    assert_eq!(info.startEpoch, h.epoch() + 1);

    // Proving epoch by epoch: paid each time; a forged or repeated proof is refused.
    h.advance_to_epoch(info.startEpoch);
    let (chunks, paths) = proofs(&h, deal, &data);
    let mut forged = chunks.clone();
    let mut bytes = forged[0].to_vec();
    bytes[0] ^= 0xff;
    forged[0] = bytes.into();
    let refusal = h.refused(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::submitProofCall {
            id: deal,
            chunks: forged,
            paths: paths.clone(),
        },
    );
    assert!(refusal.contains("storage proof 0"), "{refusal}");
    h.ok(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::submitProofCall {
            id: deal,
            chunks: chunks.clone(),
            paths: paths.clone(),
        },
    );
    let repeat = h.refused(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::submitProofCall {
            id: deal,
            chunks,
            paths,
        },
    );
    assert!(repeat.contains("already proven"), "{repeat}");
    assert_eq!(
        h.view(
            STORAGE_MARKET,
            StorageMarket::claimableCall(provider.address())
        ),
        crn(1)
    );
    h.advance_to_epoch(info.startEpoch + 1);
    let (chunks, paths) = proofs(&h, deal, &data);
    h.ok(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::submitProofCall {
            id: deal,
            chunks,
            paths,
        },
    );

    // The provider "loses" the data: three missed epochs, each fined, then termination.
    let bonded_before = h.view(
        STAKING,
        Staking::bondedOfCall {
            staker: provider.address(),
        },
    );
    h.advance_to_epoch(info.startEpoch + 3);
    let info_mid = h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal });
    assert_eq!(info_mid.faults, 1);
    assert!(
        info_mid.provenEpochs >= 1,
        "the proofs before the loss are counted"
    );
    assert_eq!(
        h.view(
            STORAGE_MARKET,
            StorageMarket::claimableCall(client.address())
        ),
        crn(1) + crn(10)
    );
    h.advance_to_epoch(info.startEpoch + 5);
    let ended = h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal });
    assert_eq!(ended.faults, 3);
    assert_eq!(ended.state, 4, "terminated");
    assert_eq!(ended.escrow, 0);
    // Client: three refunded epochs and one never run, three fault fees, the termination slash.
    let client_claim = h.view(
        STORAGE_MARKET,
        StorageMarket::claimableCall(client.address()),
    );
    assert_eq!(client_claim, crn(4) + crn(30) + crn(50));
    assert_eq!(
        h.view(
            STAKING,
            Staking::bondedOfCall {
                staker: provider.address()
            }
        ),
        bonded_before - crn(80)
    );
    assert_eq!(
        h.view(
            STORAGE_MARKET,
            StorageMarket::usedCapacityCall(provider.address())
        ),
        0
    );
    assert_eq!(
        h.view(
            STORAGE_MARKET,
            StorageMarket::claimableCall(provider.address())
        ),
        crn(2)
    );

    let before = h.balance(client.address());
    let receipt = h.ok(
        &client,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::claimCall {},
    );
    assert_eq!(
        h.balance(client.address()),
        before + client_claim - receipt.fee
    );
    Ok(())
}

/// Dev keys 4, 5 and 6 as staked compute providers; returns a lookup from address to key.
fn compute_providers(h: &Harness) -> impl Fn(Address) -> AccountKey {
    for i in 4..=6 {
        stake(h, &key(i), crn(200));
        advertise_compute(h, &key(i));
    }
    |address| {
        (4..=6)
            .map(key)
            .find(|k| k.address() == address)
            .expect("a compute provider")
    }
}

fn post_job(
    h: &Harness,
    client: &AccountKey,
    max_fuel: u64,
    price: u128,
) -> (B256, ComputeMarket::Job) {
    let call = ComputeMarket::postJobCall {
        moduleRoot: B256::repeat_byte(1),
        inputRoot: B256::repeat_byte(2),
        maxFuel: max_fuel,
        pricePerFuel: price,
    };
    let receipt = h.ok(
        client,
        COMPUTE_MARKET,
        U256::from(max_fuel) * U256::from(price),
        call,
    );
    let id = receipt.event::<ComputeMarket::JobPosted>().unwrap().id;
    (id, h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id }))
}

/// A compute party's report on a job, as each of the three calls takes it: output root, fuel
/// used and outcome (0 finished, 1 out of fuel).
fn submit_result(
    id: B256,
    output: B256,
    fuel: u64,
    outcome: u8,
) -> ComputeMarket::submitResultCall {
    ComputeMarket::submitResultCall {
        id,
        outputRoot: output,
        fuelUsed: fuel,
        outcome,
    }
}

fn attest(id: B256, output: B256, fuel: u64, outcome: u8) -> ComputeMarket::attestCall {
    ComputeMarket::attestCall {
        id,
        outputRoot: output,
        fuelUsed: fuel,
        outcome,
    }
}

fn resolve(id: B256, output: B256, fuel: u64, outcome: u8) -> ComputeMarket::resolveCall {
    ComputeMarket::resolveCall {
        id,
        outputRoot: output,
        fuelUsed: fuel,
        outcome,
    }
}

fn claimable(h: &Harness, who: Address) -> U256 {
    h.view(COMPUTE_MARKET, ComputeMarket::claimableCall(who))
}

#[test]
fn compute_jobs_pay_on_agreement_and_slash_the_liar_on_dispute() -> TestResult {
    let h = Harness::new();
    let client = key(3);
    // Fewer than two compute providers: no job can be checked, so none is accepted.
    stake(&h, &key(4), crn(200));
    advertise_compute(&h, &key(4));
    let call = ComputeMarket::postJobCall {
        moduleRoot: B256::ZERO,
        inputRoot: B256::ZERO,
        maxFuel: 10,
        pricePerFuel: 1,
    };
    assert!(
        h.refused(&client, COMPUTE_MARKET, U256::from(10), call)
            .contains("at least 2")
    );
    let key_of = compute_providers(&h);
    let price = 1_000_000_000u128;
    let output = B256::repeat_byte(0x0a);

    // Honest job: the verifier agrees; the provider gets 80 %, the verifier 10 %.
    let (job, info) = post_job(&h, &client, 1_000_000, price);
    assert_ne!(info.provider, client.address());
    let provider = key_of(info.provider);
    let wrong_caller = h.refused(
        &client,
        COMPUTE_MARKET,
        U256::ZERO,
        submit_result(job, output, 600_000, 0),
    );
    assert!(wrong_caller.contains("NotAssignee"), "{wrong_caller}");
    h.ok(
        &provider,
        COMPUTE_MARKET,
        U256::ZERO,
        submit_result(job, output, 600_000, 0),
    );
    let info = h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job });
    let verifier = key_of(info.verifier);
    assert_ne!(info.verifier, info.provider);
    h.ok(
        &verifier,
        COMPUTE_MARKET,
        U256::ZERO,
        attest(job, output, 600_000, 0),
    );
    let payment = U256::from(600_000u64) * U256::from(price);
    assert_eq!(
        claimable(&h, provider.address()),
        payment * U256::from(8) / U256::from(10)
    );
    assert_eq!(claimable(&h, verifier.address()), payment / U256::from(10));
    assert_eq!(
        claimable(&h, client.address()),
        U256::from(1_000_000u64) * U256::from(price) - payment * U256::from(9) / U256::from(10)
    );

    // Lying provider: the verifier disagrees, the referee re-executes and sides with it.
    let (job, info) = post_job(&h, &client, 1_000_000, price);
    let liar = key_of(info.provider);
    let liar_bond = h.view(
        STAKING,
        Staking::bondedOfCall {
            staker: liar.address(),
        },
    );
    h.ok(
        &liar,
        COMPUTE_MARKET,
        U256::ZERO,
        submit_result(job, B256::repeat_byte(0xee), 1_000_000, 0),
    );
    let verifier = key_of(
        h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job })
            .verifier,
    );
    let verifier_before = claimable(&h, verifier.address());
    h.ok(
        &verifier,
        COMPUTE_MARKET,
        U256::ZERO,
        attest(job, output, 500_000, 0),
    );
    let info = h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job });
    assert_eq!(info.state, 3, "disputed");
    let referee = key_of(info.referee);
    assert!(referee.address() != liar.address() && referee.address() != verifier.address());
    let referee_before = claimable(&h, referee.address());
    h.ok(
        &referee,
        COMPUTE_MARKET,
        U256::ZERO,
        resolve(job, output, 500_000, 0),
    );
    let fee = U256::from(500_000u64) * U256::from(price) / U256::from(10);
    assert_eq!(
        h.view(
            STAKING,
            Staking::bondedOfCall {
                staker: liar.address()
            }
        ),
        liar_bond - crn(50)
    );
    assert_eq!(
        claimable(&h, verifier.address()),
        verifier_before + fee + crn(50)
    );
    assert_eq!(claimable(&h, referee.address()), referee_before + fee);
    let settled = h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job });
    assert_eq!(settled.state, 4, "settled");
    assert_eq!(settled.liar, liar.address(), "the job records who lied");

    // Out of fuel is an outcome like any other: agreed on and paid for the whole fuel limit.
    let (job, info) = post_job(&h, &client, 1_000, price);
    let provider = key_of(info.provider);
    let provider_before = claimable(&h, provider.address());
    h.ok(
        &provider,
        COMPUTE_MARKET,
        U256::ZERO,
        submit_result(job, B256::ZERO, 1_000, 1),
    );
    let verifier = key_of(
        h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job })
            .verifier,
    );
    let too_much = h.refused(
        &verifier,
        COMPUTE_MARKET,
        U256::ZERO,
        attest(job, B256::ZERO, 1_001, 1),
    );
    assert!(too_much.contains("FuelAboveLimit"), "{too_much}");
    h.ok(
        &verifier,
        COMPUTE_MARKET,
        U256::ZERO,
        attest(job, B256::ZERO, 1_000, 1),
    );
    let paid = U256::from(1_000u64) * U256::from(price) * U256::from(8) / U256::from(10);
    assert_eq!(claimable(&h, provider.address()), provider_before + paid);
    Ok(())
}

#[test]
fn the_reward_pool_conserves_tokens_across_many_epochs() -> TestResult {
    let h = Harness::new();
    let (client, provider) = (key(3), key(2));
    stake(&h, &provider, crn(200));
    advertise_storage(&h, &provider, 1 << 20);
    let key_of = compute_providers(&h);
    let data = vec![42u8; 5_000];
    let deal = open_deal(&h, &client, &provider, &data, 20, crn(1));
    h.ok(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::acceptDealCall { id: deal },
    );
    let endowment = h.balance(REWARD_POOL);
    let earners = [provider.clone(), key(4), key(5), key(6)];
    let mut claimed = std::collections::BTreeMap::<Address, U256>::new();
    let first = h.epoch() + 1;
    let mut compute_epochs = 0u64;
    for epoch in first..first + 8 {
        h.advance_to_epoch(epoch);
        let (chunks, paths) = proofs(&h, deal, &data);
        h.ok(
            &provider,
            STORAGE_MARKET,
            U256::ZERO,
            StorageMarket::submitProofCall {
                id: deal,
                chunks,
                paths,
            },
        );
        if epoch % 2 == 0 {
            let (job, info) = post_job(&h, &client, 10_000, 1);
            let fuel = 7_000 + epoch;
            let result = submit_result(job, B256::ZERO, fuel, 0);
            h.ok(&key_of(info.provider), COMPUTE_MARKET, U256::ZERO, result);
            let verifier = key_of(
                h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job })
                    .verifier,
            );
            let attest = attest(job, B256::ZERO, fuel, 0);
            h.ok(&verifier, COMPUTE_MARKET, U256::ZERO, attest);
            if epoch + 1 < first + 8 {
                compute_epochs += 1;
            }
        }
        if epoch % 3 == 0 {
            for earner in &earners {
                let owed = h.view(REWARD_POOL, RewardPool::owedCall(earner.address()));
                if !owed.is_zero() {
                    h.ok(earner, REWARD_POOL, U256::ZERO, RewardPool::claimCall {});
                    *claimed.entry(earner.address()).or_default() += owed;
                }
            }
        }
        // Emitted = paid + owed, exactly; the pool holds what was not paid.
        let total_claimed: U256 = claimed.values().copied().sum();
        let distributed = h.view(REWARD_POOL, RewardPool::distributedCall {});
        let outstanding = h.view(REWARD_POOL, RewardPool::outstandingCall {});
        assert_eq!(distributed, total_claimed + outstanding);
        assert_eq!(h.balance(REWARD_POOL), endowment - total_claimed);
    }
    let earned = |who: &AccountKey| {
        claimed.get(&who.address()).copied().unwrap_or_default()
            + h.view(REWARD_POOL, RewardPool::owedCall(who.address()))
    };
    // Seven epochs were closed; the only storage prover earned the whole storage half of each.
    assert_eq!(earned(&provider), crn(50) * U256::from(7));
    // The compute half of each closed epoch with verified fuel went to the compute providers,
    // less at most one wei of rounding dust per provider and epoch.
    let compute: U256 = earners[1..].iter().map(earned).sum();
    let expected = crn(50) * U256::from(compute_epochs);
    assert!(
        compute <= expected && expected - compute <= U256::from(3 * compute_epochs),
        "{compute} vs {expected}"
    );
    Ok(())
}

#[test]
fn proofs_of_two_providers_in_one_block_touch_disjoint_state() -> TestResult {
    use cairn_storage::PendingState;
    use std::collections::BTreeSet;

    let h = Harness::new();
    let (alice, bob) = (key(2), key(8));
    let data_a = vec![1u8; 3_000];
    let data_b = vec![2u8; 9_000];
    let mut deals = Vec::new();
    for (provider, data, client) in [(&alice, &data_a, key(3)), (&bob, &data_b, key(9))] {
        stake(&h, provider, crn(200));
        advertise_storage(&h, provider, 1 << 20);
        let deal = open_deal(&h, &client, provider, data, 4, crn(1));
        h.ok(
            provider,
            STORAGE_MARKET,
            U256::ZERO,
            StorageMarket::acceptDealCall { id: deal },
        );
        deals.push(deal);
    }
    h.advance_to_epoch(h.epoch() + 1);
    let proof_txs: Vec<_> = [(&alice, &data_a, deals[0]), (&bob, &data_b, deals[1])]
        .into_iter()
        .map(|(provider, data, deal)| {
            let (chunks, paths) = proofs(&h, deal, data);
            h.tx(
                provider,
                STORAGE_MARKET,
                U256::ZERO,
                StorageMarket::submitProofCall {
                    id: deal,
                    chunks,
                    paths,
                }
                .abi_encode(),
            )
        })
        .collect();

    // Run each against the same state and record what it read and what it wrote.
    let header = h.chain.head_header();
    let block = cairn_evm::execution::BlockContext {
        chain_id: h.chain_id,
        height: header.height + 1,
        timestamp_secs: header.timestamp_secs() + 1,
        gas_limit: header.gas_limit,
        base_fee_per_gas: header.base_fee_per_gas,
        beneficiary: dev_validator().address(),
        randomness: header.randomness,
    };
    type Location = (Address, Option<U256>);
    let mut sets: Vec<(BTreeSet<Location>, BTreeSet<Location>)> = Vec::new();
    for tx in &proof_txs {
        let view = h.chain.state();
        let mut pending = PendingState::new(&view);
        let mut evm = cairn_evm::execution::evm(&mut pending, &block);
        let (result, state) = cairn_evm::execution::transact(&mut evm, tx, tx.sender())
            .map_err(|e| e.into_execution_error())?
            .map_err(|e| e.to_string())?;
        assert!(result.is_success(), "{result:?}");
        let (mut reads, mut writes) = (BTreeSet::new(), BTreeSet::new());
        for (address, account) in state {
            let account_changed = account.info != account.original_info();
            if account_changed {
                writes.insert((address, None))
            } else {
                reads.insert((address, None))
            };
            for (slot, value) in account.storage {
                if value.is_changed() {
                    writes.insert((address, Some(slot)))
                } else {
                    reads.insert((address, Some(slot)))
                };
            }
        }
        sets.push((reads, writes));
    }
    let (reads_a, writes_a) = &sets[0];
    let (reads_b, writes_b) = &sets[1];
    assert!(!writes_a.is_empty() && !writes_b.is_empty());
    assert!(
        writes_a.is_disjoint(writes_b),
        "both wrote {:?}",
        writes_a.intersection(writes_b).collect::<Vec<_>>()
    );
    assert!(
        writes_a.is_disjoint(reads_b),
        "B read what A wrote: {:?}",
        writes_a.intersection(reads_b).collect::<Vec<_>>()
    );
    assert!(
        writes_b.is_disjoint(reads_a),
        "A read what B wrote: {:?}",
        writes_b.intersection(reads_a).collect::<Vec<_>>()
    );
    // And in one block, both succeed.
    let receipts = h.block(&proof_txs);
    assert!(receipts.iter().all(Receipt::succeeded));
    Ok(())
}

#[test]
fn silent_compute_parties_can_be_expired_by_anyone() -> TestResult {
    let h = Harness::new();
    let client = key(3);
    let key_of = compute_providers(&h);
    let price = 1_000u128;

    // The provider never answers: after the stage timeout anyone can expire the job; the
    // provider is slashed for the client, who gets its escrow back.
    let (job, info) = post_job(&h, &client, 1_000, price);
    let silent = key_of(info.provider);
    let bond = h.view(
        STAKING,
        Staking::bondedOfCall {
            staker: silent.address(),
        },
    );
    let early = h.refused(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id: job },
    );
    assert!(early.contains("NotExpired"), "{early}");
    while h.height() <= info.deadlineBlock {
        h.block(&[]);
    }
    h.ok(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id: job },
    );
    assert_eq!(
        h.view(
            STAKING,
            Staking::bondedOfCall {
                staker: silent.address()
            }
        ),
        bond - crn(10)
    );
    assert_eq!(
        claimable(&h, client.address()),
        U256::from(1_000u64) * U256::from(price) + crn(10)
    );
    assert_eq!(
        h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job })
            .state,
        5,
        "expired"
    );
    let again = h.refused(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id: job },
    );
    assert!(again.contains("WrongState"), "{again}");

    // The verifier never answers: the provider's result stands and the verifier pays for it.
    let (job, info) = post_job(&h, &client, 1_000, price);
    let provider = key_of(info.provider);
    let before = claimable(&h, provider.address());
    h.ok(
        &provider,
        COMPUTE_MARKET,
        U256::ZERO,
        submit_result(job, B256::ZERO, 500, 0),
    );
    let info = h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id: job });
    while h.height() <= info.deadlineBlock {
        h.block(&[]);
    }
    h.ok(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id: job },
    );
    let payment = U256::from(500u64) * U256::from(price);
    assert_eq!(
        claimable(&h, provider.address()),
        before + payment * U256::from(9) / U256::from(10) + crn(10)
    );
    Ok(())
}
