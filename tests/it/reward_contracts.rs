//! The reward contracts' rules, executed from their real compiled bytecode on revm, through the
//! chain (genesis predeploys, transactions, epoch-closing system calls).

// The harness panics on failure, which is how a test reports one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy_sol_types::SolCall;
use cairn_chain::chain::{CallRequest, Chain};
use cairn_chain::genesis::{Genesis, TOKEN, dev_account, dev_validator};
use cairn_client::contracts::register_validator_on_chain;
use cairn_evm::execution::{
    BlockContext, Executor, Sequential, TxOutcome, begin_block, system_call,
};
use cairn_primitives::beacon::vrf_public_key;
use cairn_primitives::consensus::{
    EVIDENCE_VOTE_LEN, Equivocation, Vote, VoteKind, epoch_namespace,
};
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, Bytes, Receipt, TxBody, TxStatus, U256};
use cairn_reward_contracts::bindings::{
    ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket,
};
use cairn_reward_contracts::{
    COMPUTE_MARKET, REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET, describe_revert,
    validator_possession_message,
};
use cairn_storage::{PendingState, Store, chunk_proof};

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

    /// Sends `call` and checks it reverts with a reason that says `reason`.
    fn refuses(
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
    h.refuses(
        &bob,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(1) },
        "stake below the storage minimum",
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
    h.refuses(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::acceptDealCall { id: big_deal },
        "65536 bytes free, the deal needs 66560",
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

// Accountable validators: proof of possession, leaving, equivocation slashing, jailing.

/// A consensus key that is not any dev account's.
fn consensus_key(seed: u8) -> AccountKey {
    AccountKey::from_bytes(&[seed; 32])
}

/// `staker`'s registration of `consensus`, signed by `signer` for `signed_staker` and
/// `signed_vrf` (an honest registration signs what it sends: the same key, staker and VRF key).
fn registration(
    chain_id: u64,
    consensus: &AccountKey,
    vrf_key: B256,
    signer: &AccountKey,
    signed_staker: Address,
    signed_vrf: B256,
) -> Staking::registerValidatorCall {
    let key = B256::from(consensus.public_key());
    let message = validator_possession_message(chain_id, signed_staker, &key, &signed_vrf);
    Staking::registerValidatorCall {
        consensusKey: key,
        vrfKey: vrf_key,
        possession: signer.sign_message(&message).to_vec().into(),
    }
}

/// Registers `staker` with `consensus` as the CLI does (`cairn stake validator`).
fn register(h: &Harness, staker: &AccountKey, consensus: &AccountKey) -> Receipt {
    let call = register_validator_on_chain(h.chain_id, staker.address(), consensus);
    let receipt = h.send(staker, call.to, call.value, call.input.to_vec());
    assert!(receipt.succeeded(), "registration: {}", explain(&receipt));
    receipt
}

fn stake_of(h: &Harness, who: Address) -> Staking::stakeOfReturn {
    h.view(STAKING, Staking::stakeOfCall { staker: who })
}

fn validator_list(h: &Harness) -> Vec<Address> {
    h.view(STAKING, Staking::validatorsCall {}).list
}

#[test]
fn a_validator_key_cannot_be_registered_without_its_holders_signature_for_this_account()
-> TestResult {
    let h = Harness::new();
    let (victim, mallory) = (key(1), key(7));
    let victim_key = consensus_key(0x51);
    let vrf = B256::from(vrf_public_key(&victim_key));
    stake(&h, &victim, crn(1_000));
    stake(&h, &mallory, crn(1_000));
    let chain = h.chain_id;
    let mallory_before = stake_of(&h, mallory.address());
    let list_before = validator_list(&h);

    // The contract's message is the one the client signs.
    let message = h.view(
        STAKING,
        Staking::possessionMessageCall {
            staker: victim.address(),
            consensusKey: B256::from(victim_key.public_key()),
            vrfKey: vrf,
        },
    );
    let expected = validator_possession_message(
        chain,
        victim.address(),
        &B256::from(victim_key.public_key()),
        &vrf,
    );
    assert_eq!(message.to_vec(), expected);

    // Mallory claims the victim's key: without a signature, with her own signature, with the
    // victim key's signature made for the victim's account, for another VRF key or for
    // another chain. Each is refused and changes nothing.
    let mut no_signature =
        registration(chain, &victim_key, vrf, &victim_key, mallory.address(), vrf);
    no_signature.possession = Bytes::new();
    let attempts = [
        ("no signature", no_signature),
        (
            "signed by mallory",
            registration(chain, &victim_key, vrf, &mallory, mallory.address(), vrf),
        ),
        (
            "signed for the victim's account",
            registration(chain, &victim_key, vrf, &victim_key, victim.address(), vrf),
        ),
        (
            "signed for another VRF key",
            registration(
                chain,
                &victim_key,
                B256::repeat_byte(0x66),
                &victim_key,
                mallory.address(),
                vrf,
            ),
        ),
        (
            "signed for another chain",
            registration(
                chain + 1,
                &victim_key,
                vrf,
                &victim_key,
                mallory.address(),
                vrf,
            ),
        ),
    ];
    for (what, call) in attempts {
        let refusal = h.refused(&mallory, STAKING, U256::ZERO, call);
        assert!(refusal.contains("proof of possession"), "{what}: {refusal}");
    }
    assert_eq!(stake_of(&h, mallory.address()), mallory_before);
    assert_eq!(validator_list(&h), list_before);
    let key = B256::from(victim_key.public_key());
    assert_eq!(h.view(STAKING, Staking::keyOwnerCall(key)), Address::ZERO);

    // The victim registers its own key; the VRF key is stored and listed beside it.
    let receipt = register(&h, &victim, &victim_key);
    let registered = receipt
        .event::<Staking::ValidatorRegistered>()
        .ok_or("no ValidatorRegistered")?;
    assert_eq!(registered.fromEpoch, h.epoch() + 1);
    let validators = h.view(STAKING, Staking::validatorsCall {});
    assert_eq!(
        validators.list,
        vec![dev_validator().address(), victim.address()]
    );
    assert_eq!(
        validators.vrfKeys,
        vec![B256::from(vrf_public_key(&dev_validator())), vrf]
    );
    assert_eq!(stake_of(&h, victim.address()).vrfKey, vrf);
    assert_eq!(
        h.view(STAKING, Staking::keyOwnerCall(key)),
        victim.address()
    );

    // Even the key's genuine signature for Mallory's account cannot move it: a key is one
    // account's for good. And the victim cannot swap keys while it is a validator.
    let refusal = h.refused(
        &mallory,
        STAKING,
        U256::ZERO,
        registration(chain, &victim_key, vrf, &victim_key, mallory.address(), vrf),
    );
    assert!(
        refusal.contains(&format!("belongs to {}", victim.address())),
        "{refusal}"
    );
    assert_eq!(stake_of(&h, mallory.address()), mallory_before);
    let other_key = consensus_key(0x52);
    let call = register_validator_on_chain(chain, victim.address(), &other_key);
    let swap = h.send(&victim, call.to, call.value, call.input.to_vec());
    assert_eq!(swap.status, TxStatus::Revert);
    assert!(
        explain(&swap).contains("already a validator"),
        "{}",
        explain(&swap)
    );
    assert_eq!(stake_of(&h, victim.address()).consensusKey, key);
    Ok(())
}

#[test]
fn a_validator_leaves_then_unbonds_and_withdraws_its_whole_bond() -> TestResult {
    let h = Harness::new();
    let alice = key(1);
    let alice_key = consensus_key(0x61);
    stake(&h, &alice, crn(1_000));
    register(&h, &alice, &alice_key);
    h.refuses(
        &alice,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(1) },
        "stake below the validator minimum",
    );

    let receipt = h.ok(&alice, STAKING, U256::ZERO, Staking::leaveValidatorsCall {});
    let left = receipt
        .event::<Staking::ValidatorLeft>()
        .ok_or("no ValidatorLeft")?;
    assert_eq!(left.fromEpoch, h.epoch() + 1);
    assert_eq!(validator_list(&h), vec![dev_validator().address()]);
    assert_eq!(stake_of(&h, alice.address()).roles, 0);
    let again = h.refused(&alice, STAKING, U256::ZERO, Staking::leaveValidatorsCall {});
    assert!(again.contains("is not a validator"), "{again}");

    h.ok(
        &alice,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(1_000) },
    );
    let until = stake_of(&h, alice.address()).withdrawableEpoch;
    h.advance_to_epoch(until);
    let before = h.balance(alice.address());
    let receipt = h.ok(&alice, STAKING, U256::ZERO, Staking::withdrawCall {});
    assert_eq!(
        h.balance(alice.address()),
        before + crn(1_000) - receipt.fee
    );
    // The set read at the epoch boundaries no longer holds her.
    assert!(
        h.chain
            .validators_at(h.height())?
            .iter()
            .all(|v| v.beneficiary != alice.address())
    );
    Ok(())
}

/// Two votes by `key` in `view` of `epoch`, signed under the namespace of the chain with
/// `domain`, encoded as evidence.
fn votes(
    key: &AccountKey,
    domain: &[u8; 32],
    epoch: u64,
    view: u64,
    kinds: [VoteKind; 2],
) -> (Bytes, Bytes) {
    let namespace = epoch_namespace(domain, epoch);
    let [a, b] = kinds.map(|kind| {
        let vote = Vote::sign(key, 0, &namespace, view, kind);
        Bytes::from(Equivocation::encode_vote(view, &kind, &vote.signature))
    });
    (a, b)
}

fn report(epoch: u64, key: &AccountKey, (a, b): (Bytes, Bytes)) -> Staking::reportEquivocationCall {
    Staking::reportEquivocationCall {
        epoch,
        consensusKey: B256::from(key.public_key()),
        voteA: a,
        voteB: b,
    }
}

/// The balances and records a refused report must leave as they were.
#[derive(Debug, PartialEq, Eq)]
struct Holdings {
    offender: Staking::stakeOfReturn,
    staking: U256,
    pool: U256,
    validators: Vec<Address>,
}

fn holdings(h: &Harness, offender: Address) -> Holdings {
    Holdings {
        offender: stake_of(h, offender),
        staking: h.balance(STAKING),
        pool: h.balance(REWARD_POOL),
        validators: validator_list(h),
    }
}

#[test]
fn equivocation_slashes_the_configured_share_pays_the_reporter_and_tombstones() -> TestResult {
    let h = Harness::new();
    let domain = h.chain.genesis().consensus_domain();
    let (alice, reporter) = (key(1), key(8));
    let alice_key = consensus_key(0x71);
    // 1,000 bonded (the validator minimum) and 600 unbonding: the slash takes half of both.
    stake(&h, &alice, crn(1_600));
    register(&h, &alice, &alice_key);
    h.ok(
        &alice,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(600) },
    );
    assert_eq!(
        h.view(STAKING, Staking::equivocationSlashPercentCall {}),
        50
    );
    assert_eq!(h.view(STAKING, Staking::reporterRewardPercentCall {}), 10);
    assert_eq!(
        h.view(STAKING, Staking::consensusDomainCall {}),
        B256::from(domain)
    );

    let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
    let epoch = h.epoch();
    let evidence = votes(
        &alice_key,
        &domain,
        epoch,
        9,
        [VoteKind::Notarize(a), VoteKind::Notarize(b)],
    );
    let before = holdings(&h, alice.address());
    let reporter_before = h.balance(reporter.address());
    let receipt = h.ok(
        &reporter,
        STAKING,
        U256::ZERO,
        report(epoch, &alice_key, evidence),
    );

    let slashed = crn(800);
    let reward = crn(80);
    let event = receipt
        .event::<Staking::EquivocationSlashed>()
        .ok_or("no EquivocationSlashed")?;
    assert_eq!(
        (
            event.validator,
            event.reporter,
            event.slashed,
            event.reporterReward,
            event.epoch
        ),
        (alice.address(), reporter.address(), slashed, reward, epoch)
    );
    assert!(receipt.event::<Staking::Tombstoned>().is_some());
    assert_eq!(
        h.balance(reporter.address()),
        reporter_before + reward - receipt.fee
    );
    let after = holdings(&h, alice.address());
    assert_eq!(after.offender.bonded + after.offender.unbonding, crn(800));
    assert_eq!(after.staking, before.staking - slashed);
    assert_eq!(after.pool, before.pool + slashed - reward);
    assert_eq!(
        h.view(REWARD_POOL, RewardPool::slashedInCall {}),
        slashed - reward
    );
    assert_eq!(after.validators, vec![dev_validator().address()]);
    assert!(after.offender.tombstoned);
    assert_eq!(after.offender.roles, 0);

    // Tombstoned: never a validator again, whatever key it brings.
    let call = register_validator_on_chain(h.chain_id, alice.address(), &consensus_key(0x72));
    let comeback = h.send(&alice, call.to, call.value, call.input.to_vec());
    assert_eq!(comeback.status, TxStatus::Revert);
    assert!(
        explain(&comeback).contains("never be a validator again"),
        "{}",
        explain(&comeback)
    );
    // What is left is still hers to unbond once the period is over.
    h.ok(
        &alice,
        STAKING,
        U256::ZERO,
        Staking::unbondCall {
            amount: after.offender.bonded,
        },
    );
    Ok(())
}

#[test]
fn bad_or_repeated_equivocation_evidence_is_refused_and_changes_nothing() -> TestResult {
    let h = Harness::new();
    let domain = h.chain.genesis().consensus_domain();
    let (alice, reporter) = (key(1), key(8));
    let alice_key = consensus_key(0x81);
    stake(&h, &alice, crn(1_000));
    register(&h, &alice, &alice_key);
    let epoch = h.epoch();
    let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
    let conflicting = [VoteKind::Notarize(a), VoteKind::Notarize(b)];
    let good = votes(&alice_key, &domain, epoch, 4, conflicting);

    let mut forged = good.clone();
    let mut bytes = forged.1.to_vec();
    bytes[EVIDENCE_VOTE_LEN - 1] ^= 1;
    forged.1 = bytes.into();
    let mut unknown_tag = good.clone();
    let mut bytes = unknown_tag.1.to_vec();
    bytes[8] = 7;
    unknown_tag.1 = bytes.into();
    let mut short = good.clone();
    short.0 = short.0.slice(..EVIDENCE_VOTE_LEN - 1);
    let other_chain = votes(&alice_key, &[0x42; 32], epoch, 4, conflicting);
    let cases = [
        (
            "notarize then nullify is honest",
            report(
                epoch,
                &alice_key,
                votes(
                    &alice_key,
                    &domain,
                    epoch,
                    4,
                    [VoteKind::Notarize(a), VoteKind::Nullify],
                ),
            ),
            "not equivocation",
        ),
        (
            "the same vote twice",
            report(
                epoch,
                &alice_key,
                votes(&alice_key, &domain, epoch, 4, [VoteKind::Notarize(a); 2]),
            ),
            "not equivocation",
        ),
        (
            "a forged signature",
            report(epoch, &alice_key, forged),
            "not equivocation",
        ),
        (
            "votes of this epoch claimed for the next",
            report(epoch + 1, &alice_key, good.clone()),
            "not equivocation",
        ),
        (
            "votes of another chain",
            report(epoch, &alice_key, other_chain),
            "not equivocation",
        ),
        (
            "an unknown vote tag",
            report(epoch, &alice_key, unknown_tag),
            "not equivocation",
        ),
        (
            "a short vote",
            report(epoch, &alice_key, short),
            "each vote must be 105 bytes",
        ),
        (
            "someone else's key",
            report(epoch, &consensus_key(0x82), good.clone()),
            "no account registered consensus key",
        ),
    ];
    let before = holdings(&h, alice.address());
    for (what, call, reason) in cases {
        let refusal = h.refused(&reporter, STAKING, U256::ZERO, call);
        assert!(refusal.contains(reason), "{what}: {refusal}");
        assert_eq!(holdings(&h, alice.address()), before, "{what}");
    }

    // The real thing is punished once; the same equivocation again, or another one by the
    // same key in the same epoch, is refused.
    h.ok(
        &reporter,
        STAKING,
        U256::ZERO,
        report(epoch, &alice_key, good.clone()),
    );
    let punished = holdings(&h, alice.address());
    let other_view = votes(&alice_key, &domain, epoch, 5, conflicting);
    for evidence in [good, other_view] {
        let refusal = h.refused(
            &reporter,
            STAKING,
            U256::ZERO,
            report(epoch, &alice_key, evidence),
        );
        assert!(refusal.contains("already reported"), "{refusal}");
        assert_eq!(holdings(&h, alice.address()), punished);
    }

    // Evidence is accepted for the unbonding period (2 dev epochs) after its epoch, no longer:
    // by then the tokens unbonded when the votes were signed may be gone.
    let dev = dev_validator();
    let old = votes(&dev, &domain, epoch, 6, conflicting);
    h.advance_to_epoch(epoch + 2);
    let before = holdings(&h, dev.address());
    let refusal = h.refused(&reporter, STAKING, U256::ZERO, report(epoch, &dev, old));
    assert!(
        refusal.contains(&format!("evidence from epoch {epoch} is too old"))
            && refusal.contains("may be withdrawn"),
        "{refusal}"
    );
    assert_eq!(holdings(&h, dev.address()), before);
    Ok(())
}

/// The chain's start-of-block calls and transactions run on one pending state, block after
/// block, with the consensus keys the test says are voting: the chain passes `begin_block` no
/// active keys yet, so its blocks cannot show a validator's activity.
struct ActivitySim<'v> {
    pending: PendingState<'v>,
    chain_id: u64,
    height: u64,
    /// The consensus keys every block from now on shows voting.
    voting: Vec<[u8; 32]>,
    /// The next nonce of each sender (every transaction here is included, even a reverted one).
    nonces: std::collections::BTreeMap<Address, u64>,
}

impl ActivitySim<'_> {
    fn context(&self) -> BlockContext {
        BlockContext {
            chain_id: self.chain_id,
            height: self.height,
            timestamp_secs: self.height,
            gas_limit: 60_000_000,
            base_fee_per_gas: 1_000_000_000,
            beneficiary: dev_validator().address(),
            randomness: B256::repeat_byte(self.height as u8),
        }
    }

    /// The next block: the start-of-block calls (they must succeed), then `txs`.
    fn block(&mut self, txs: &[cairn_primitives::Transaction]) -> Vec<Receipt> {
        self.height += 1;
        let context = self.context();
        let failures = begin_block(&context, EPOCH, &self.voting, &mut self.pending).unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        Sequential
            .execute(&context, txs, &mut self.pending)
            .unwrap()
            .into_iter()
            .map(|outcome| match outcome {
                TxOutcome::Included(receipt) => receipt,
                TxOutcome::Excluded(reason) => panic!("excluded: {reason:?}"),
            })
            .collect()
    }

    fn send(&mut self, from: &AccountKey, value: U256, input: Vec<u8>) -> Receipt {
        let next = self.nonces.entry(from.address()).or_default();
        let nonce = *next;
        *next += 1;
        let tx = TxBody {
            chain_id: self.chain_id,
            nonce,
            gas_limit: 10_000_000,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 0,
            to: Some(STAKING),
            value,
            input: input.into(),
        }
        .sign(from);
        self.block(&[tx]).remove(0)
    }

    fn ok(&mut self, from: &AccountKey, value: U256, call: impl SolCall) -> Receipt {
        let receipt = self.send(from, value, call.abi_encode());
        assert!(receipt.succeeded(), "{}", explain(&receipt));
        receipt
    }

    fn register(&mut self, staker: &AccountKey, consensus: &AccountKey) {
        let call = register_validator_on_chain(self.chain_id, staker.address(), consensus);
        let receipt = self.send(staker, call.value, call.input.to_vec());
        assert!(receipt.succeeded(), "{}", explain(&receipt));
    }

    /// A read-only call (run as a system call: it writes nothing, so nothing is committed).
    fn view<C: SolCall>(&mut self, call: C) -> C::Return {
        let context = self.context();
        let result = system_call(
            &mut self.pending,
            &context,
            Address::ZERO,
            STAKING,
            call.abi_encode().into(),
        )
        .unwrap();
        assert!(result.is_success(), "view failed: {result:?}");
        C::abi_decode_returns(result.output().unwrap()).unwrap()
    }

    fn epoch(&self) -> u64 {
        self.height / EPOCH
    }

    /// Runs empty blocks up to and including the last block of `epoch`: the next block closes
    /// it.
    fn finish_epoch(&mut self, epoch: u64) {
        while self.height < (epoch + 1) * EPOCH - 1 {
            self.block(&[]);
        }
    }

    fn validators(&mut self) -> Vec<Address> {
        self.view(Staking::validatorsCall {}).list
    }

    fn jailed(&mut self, who: &AccountKey) -> bool {
        self.view(Staking::stakeOfCall {
            staker: who.address(),
        })
        .jailed
    }
}

#[test]
fn a_validator_silent_for_a_whole_epoch_is_jailed_and_can_come_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut genesis = Genesis::dev();
    genesis.epoch_length = EPOCH;
    let store = Store::open(&dir.path().join("db"))?;
    genesis.initialize(&store)?;
    let view = store.state();
    let mut sim = ActivitySim {
        pending: PendingState::new(&view),
        chain_id: genesis.chain_id,
        height: 0,
        voting: Vec::new(),
        nonces: Default::default(),
    };
    let dev = dev_validator();
    let (active, silent, late) = (key(1), key(2), key(3));
    let keys = [
        consensus_key(0x91),
        consensus_key(0x92),
        consensus_key(0x93),
    ];
    for (who, consensus) in [(&active, &keys[0]), (&silent, &keys[1])] {
        sim.ok(who, crn(1_000), Staking::stakeCall {});
        sim.register(who, consensus);
    }
    // Only the system records activity or closes epochs.
    for call in [
        Staking::recordActivityCall {
            keys: vec![B256::from(keys[1].public_key())],
        }
        .abi_encode(),
        Staking::closeEpochCall { closed: 0 }.abi_encode(),
    ] {
        let receipt = sim.send(&silent, U256::ZERO, call);
        assert_eq!(receipt.status, TxStatus::Revert);
        assert!(
            explain(&receipt).contains("NotSystem"),
            "{}",
            explain(&receipt)
        );
    }

    // Epoch 1: the dev validator and `active` vote, `silent` never does. The first block of
    // epoch 2 closes epoch 1.
    sim.voting = vec![dev.public_key(), keys[0].public_key()];
    sim.finish_epoch(1);
    sim.voting = vec![dev.public_key()];
    sim.block(&[]);
    assert_eq!(
        sim.view(Staking::lastActiveEpochCall {
            staker: active.address()
        }),
        Staking::lastActiveEpochReturn {
            everActive: true,
            epoch: 1,
        }
    );
    assert!(sim.jailed(&silent));
    assert!(!sim.jailed(&active));
    assert_eq!(sim.validators(), vec![dev.address(), active.address()]);

    // Epoch 2: `active` falls silent; `late` joins (it is in the set from epoch 3, so epoch 2
    // is not held against it); `silent` comes back with its own key.
    sim.ok(&late, crn(1_000), Staking::stakeCall {});
    sim.register(&late, &keys[2]);
    sim.register(&silent, &keys[1]);
    assert!(!sim.jailed(&silent), "registering again clears the flag");
    sim.finish_epoch(2);
    sim.voting = Vec::new();
    sim.block(&[]);
    assert!(sim.jailed(&active));
    assert!(!sim.jailed(&late));
    assert!(!sim.jailed(&silent));
    assert_eq!(
        sim.validators(),
        vec![dev.address(), late.address(), silent.address()]
    );

    // Epochs in which nothing at all was recorded jail nobody: the node recorded nothing, and
    // jailing the whole set would leave the chain to whoever registers next.
    sim.finish_epoch(4);
    sim.block(&[]);
    assert_eq!(sim.epoch(), 5);
    assert_eq!(
        sim.validators(),
        vec![dev.address(), late.address(), silent.address()]
    );
    Ok(())
}
