//! The storage and compute markets and the reward pool, executed from the contracts' real
//! compiled bytecode on revm, through the chain: deals backed by per-deal collateral and settled
//! lazily, jobs answered by commit and reveal and decided by a panel when parties disagree,
//! emission capped by burnt fees. Each test plays the cheats the contracts must defeat.

// The harness panics on failure, which is how a test reports one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use crate::support::chain::{
    EPOCH, Harness, advertise_compute, advertise_storage, crn, key, stake,
};
use alloy_sol_types::SolCall;
use cairn_chain::genesis::{DEV_ACCOUNT_COUNT, dev_account, dev_validator};
use cairn_primitives::{AccountKey, Address, B256, Bytes, Receipt, U256};
use cairn_reward_contracts::bindings::{
    ComputeMarket, ProviderRegistry, RewardPool, Staking, StorageMarket,
};
use cairn_reward_contracts::{
    BURN, COMPUTE_MARKET, CONTRACT_HOLDERS, REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET,
    job_commitment,
};
use cairn_storage::chunk_proof;

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---- storage ----

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

fn prove_call(h: &Harness, deal: B256, data: &[u8]) -> StorageMarket::submitProofCall {
    let (chunks, paths) = proofs(h, deal, data);
    StorageMarket::submitProofCall {
        id: deal,
        chunks,
        paths,
    }
}

fn root(data: &[u8]) -> B256 {
    B256::from(*blake3::hash(data).as_bytes())
}

fn open_deal_call(
    provider: &AccountKey,
    data: &[u8],
    epochs: u64,
    price: U256,
) -> StorageMarket::openDealCall {
    StorageMarket::openDealCall {
        provider: provider.address(),
        dataRoot: root(data),
        size: data.len() as u64,
        epochs,
        pricePerEpoch: price.to::<u128>(),
    }
}

fn open_deal(
    h: &Harness,
    client: &AccountKey,
    provider: &AccountKey,
    data: &[u8],
    epochs: u64,
    price: U256,
) -> B256 {
    let call = open_deal_call(provider, data, epochs, price);
    let receipt = h.ok(client, STORAGE_MARKET, price * U256::from(epochs), call);
    receipt.event::<StorageMarket::DealOpened>().unwrap().id
}

fn accept(h: &Harness, provider: &AccountKey, deal: B256) {
    h.ok(
        provider,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::acceptDealCall { id: deal },
    );
}

/// A deal opened by `client` and accepted by `provider`; returns it with its first epoch.
fn accepted_deal(
    h: &Harness,
    client: &AccountKey,
    provider: &AccountKey,
    data: &[u8],
    epochs: u64,
    price: U256,
) -> (B256, u64) {
    let deal = open_deal(h, client, provider, data, epochs, price);
    accept(h, provider, deal);
    let start = h
        .view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal })
        .startEpoch;
    (deal, start)
}

fn settle(h: &Harness, who: &AccountKey, deal: B256) {
    h.ok(
        who,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::settleCall { id: deal },
    );
}

fn bonded(h: &Harness, who: Address) -> U256 {
    h.view(STAKING, Staking::bondedOfCall { staker: who })
}

fn locked(h: &Harness, who: Address) -> U256 {
    h.view(STAKING, Staking::lockedOfCall { staker: who })
}

fn storage_claimable(h: &Harness, who: Address) -> U256 {
    h.view(STORAGE_MARKET, StorageMarket::claimableCall(who))
}

/// `tenths` tenths of a CRN.
fn tenths(tenths: u64) -> U256 {
    crn(tenths) / U256::from(10)
}

fn sample_data(len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

#[test]
fn a_deal_locks_collateral_pays_proofs_in_their_window_and_fines_misses_from_it() -> TestResult {
    let h = Harness::new();
    let (client, provider) = (key(3), key(2));
    stake(&h, &provider, crn(200));
    advertise_storage(&h, &provider, 64 * 1024);
    let data = sample_data(20_000);

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
    assert_eq!(storage_claimable(&h, greedy.address()), U256::from(1));

    let deal = open_deal(&h, &client, &provider, &data, 6, crn(1));
    let wrong_escrow = open_deal_call(&provider, b"0123456789", 2, U256::from(5));
    h.refuses(
        &client,
        STORAGE_MARKET,
        U256::from(9),
        wrong_escrow,
        "send exactly",
    );
    h.refuses(
        &client,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::acceptDealCall { id: deal },
        "NotProvider",
    );
    accept(&h, &provider, deal);
    let info = h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal });
    assert_eq!(info.startEpoch, h.epoch() + 1);

    // Collateral: three fault fees of 3.5 epochs' price and a termination fee of 20.
    assert_eq!(locked(&h, provider.address()), tenths(305));
    assert_eq!(info.collateral, tenths(305).to::<u128>());
    // The provider cannot leave ahead of its slash: no unbonding into the collateral, no
    // dropping the role.
    h.refuses(
        &provider,
        STAKING,
        U256::ZERO,
        Staking::unbondCall { amount: crn(170) },
        "30.5 CRN of the bond is collateral",
    );
    h.refuses(
        &provider,
        REGISTRY,
        U256::ZERO,
        ProviderRegistry::withdrawAdvertCall {},
        "cannot be dropped while deals or jobs hold 30.5 CRN",
    );
    // One replica of a root per provider: a second deal would pay it twice for one copy.
    h.refuses(
        &key(5),
        STORAGE_MARKET,
        crn(2),
        open_deal_call(&provider, &data, 2, crn(1)),
        "already holds root",
    );

    // Proving in the epoch's window: paid (less the burnt tenth); a forged or repeated proof
    // is refused.
    h.advance_to_epoch(info.startEpoch);
    let mut forged = prove_call(&h, deal, &data);
    let mut bytes = forged.chunks[0].to_vec();
    bytes[0] ^= 0xff;
    forged.chunks[0] = bytes.into();
    h.refuses(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        forged,
        "storage proof 0",
    );
    h.ok(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        prove_call(&h, deal, &data),
    );
    h.refuses(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        prove_call(&h, deal, &data),
        "already proven",
    );
    assert_eq!(storage_claimable(&h, provider.address()), tenths(9));

    // A proof after the window (the seed has been known for eight blocks) is refused.
    let late = info.startEpoch + 1;
    h.advance_to_epoch(late);
    let opens = late * EPOCH;
    while h.height() < opens + 7 {
        h.block(&[]);
    }
    h.refuses(
        &provider,
        STORAGE_MARKET,
        U256::ZERO,
        prove_call(&h, deal, &data),
        &format!(
            "proofs of epoch {late} are taken in blocks {opens} to {}",
            opens + 7
        ),
    );

    // Three epochs missed; nothing iterates over deals, so anyone settles them: each is
    // fined from the collateral and the third terminates the deal.
    h.advance_to_epoch(info.startEpoch + 4);
    let bonded_before = bonded(&h, provider.address());
    settle(&h, &key(9), deal);
    let ended = h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal });
    assert_eq!((ended.faults, ended.provenEpochs), (3, 1));
    assert_eq!(ended.state, 4, "terminated");
    assert_eq!((ended.escrow, ended.collateral), (0, 0));
    // Client: three refunded epochs and two never run, three fault fees of 3.5 CRN, the
    // termination fee of 20 CRN: the whole collateral.
    let client_claim = storage_claimable(&h, client.address());
    assert_eq!(client_claim, crn(5) + tenths(105) + crn(20));
    assert_eq!(bonded(&h, provider.address()), bonded_before - tenths(305));
    assert_eq!(locked(&h, provider.address()), U256::ZERO);
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
            StorageMarket::replicaOfCall {
                _0: provider.address(),
                _1: root(&data)
            }
        ),
        B256::ZERO
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
    // Nothing is locked any more: the provider may leave.
    h.ok(
        &provider,
        REGISTRY,
        U256::ZERO,
        ProviderRegistry::withdrawAdvertCall {},
    );
    // The list shrinks: the next close prunes a provider with neither role nor collateral.
    let listed = |h: &Harness| {
        h.view(
            REGISTRY,
            ProviderRegistry::listedCall {
                provider: provider.address(),
            },
        )
    };
    assert!(listed(&h));
    h.advance_to_epoch(h.epoch() + 1);
    assert!(!listed(&h), "pruned at the close");
    Ok(())
}

#[test]
fn a_provider_fined_below_its_minimum_bond_loses_the_role() -> TestResult {
    let h = Harness::new();
    let (client, provider) = (key(3), key(2));
    // Exactly the storage minimum (100 CRN): the first fine takes it below.
    stake(&h, &provider, crn(100));
    advertise_storage(&h, &provider, 1 << 20);
    let (deal, start) = accepted_deal(&h, &client, &provider, &sample_data(4_000), 4, crn(1));
    h.advance_to_epoch(start + 1);
    settle(&h, &client, deal);
    assert_eq!(bonded(&h, provider.address()), crn(100) - tenths(35));
    let has_storage_role = h.view(
        STAKING,
        Staking::hasRolesCall {
            staker: provider.address(),
            roles: 2,
        },
    );
    assert!(!has_storage_role, "below the minimum, the role is gone");
    h.refuses(
        &client,
        STORAGE_MARKET,
        crn(1),
        open_deal_call(&provider, b"more data", 1, crn(1)),
        "is not a staked storage provider",
    );
    Ok(())
}

#[test]
fn a_finished_deal_is_settled_by_anyone_and_frees_its_collateral_and_its_root() -> TestResult {
    let h = Harness::new();
    let (client, provider) = (key(3), key(2));
    stake(&h, &provider, crn(200));
    advertise_storage(&h, &provider, 1 << 20);
    let data = sample_data(3_000);
    let (deal, start) = accepted_deal(&h, &client, &provider, &data, 2, crn(2));
    assert_eq!(locked(&h, provider.address()), crn(61));
    for epoch in start..start + 2 {
        h.advance_to_epoch(epoch);
        h.ok(
            &provider,
            STORAGE_MARKET,
            U256::ZERO,
            prove_call(&h, deal, &data),
        );
    }
    // Its last epoch is not over yet: settling judges nothing new.
    settle(&h, &key(9), deal);
    assert_eq!(
        h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal })
            .state,
        2,
        "still active"
    );
    h.advance_to_epoch(start + 2);
    settle(&h, &key(9), deal);
    let ended = h.view(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal });
    assert_eq!(
        (ended.state, ended.faults, ended.escrow),
        (3, 0, 0),
        "ended"
    );
    assert_eq!(locked(&h, provider.address()), U256::ZERO);
    assert_eq!(storage_claimable(&h, provider.address()), tenths(36));
    assert_eq!(storage_claimable(&h, client.address()), U256::ZERO);
    // The root is free again: the client can renew with the same provider.
    let renewed = open_deal(&h, &client, &provider, &data, 1, crn(2));
    accept(&h, &provider, renewed);
    Ok(())
}

#[test]
fn proofs_of_two_providers_in_one_block_touch_disjoint_state() -> TestResult {
    use cairn_storage::PendingState;

    let h = Harness::new();
    let (alice, bob) = (key(2), key(8));
    let data_a = vec![1u8; 3_000];
    let data_b = vec![2u8; 9_000];
    let mut deals = Vec::new();
    for (provider, data, client) in [(&alice, &data_a, key(3)), (&bob, &data_b, key(9))] {
        stake(&h, provider, crn(200));
        advertise_storage(&h, provider, 1 << 20);
        let deal = open_deal(&h, &client, provider, data, 4, crn(1));
        accept(&h, provider, deal);
        deals.push(deal);
    }
    h.advance_to_epoch(h.epoch() + 1);
    let proof_txs: Vec<_> = [(&alice, &data_a, deals[0]), (&bob, &data_b, deals[1])]
        .into_iter()
        .map(|(provider, data, deal)| {
            let call = prove_call(&h, deal, data);
            h.tx(provider, STORAGE_MARKET, U256::ZERO, call.abi_encode())
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

// ---- the reward pool ----

/// Every token there is: the dev accounts, the validator's fees, the contracts and the burnt.
fn supply(h: &Harness) -> U256 {
    let holders: BTreeSet<Address> = (0..DEV_ACCOUNT_COUNT)
        .map(|i| dev_account(i).address())
        .chain([dev_validator().address()])
        .chain(CONTRACT_HOLDERS)
        .collect();
    holders.iter().map(|a| h.balance(*a)).sum()
}

#[test]
fn emission_follows_burnt_fees_so_a_self_dealer_loses_and_supply_is_conserved() -> TestResult {
    let h = Harness::new();
    let genesis_supply = supply(&h);
    let (client, honest) = (key(3), key(2));
    // The self-dealer pays itself ten times the honest deal's price, over data it can
    // regenerate, to farm the emission.
    let farmer = key(4);
    let honest_data = sample_data(5_000);
    let wash_data = vec![0u8; 5_000];
    let mut deals = Vec::new();
    for (provider, client, data, price) in [
        (&honest, &client, &honest_data, crn(1)),
        (&farmer, &farmer, &wash_data, crn(10)),
    ] {
        stake(&h, provider, crn(1_000));
        advertise_storage(&h, provider, 1 << 20);
        let deal = open_deal(&h, client, provider, data, 6, price);
        accept(&h, provider, deal);
        deals.push((provider, deal, data));
    }
    let farmer_start = h.balance(farmer.address()) + crn(60);
    let endowment = h.balance(REWARD_POOL);
    let start = h.epoch() + 1;
    let mut claimed = BTreeMap::<Address, U256>::new();
    for epoch in start..start + 6 {
        h.advance_to_epoch(epoch);
        for (provider, deal, data) in &deals {
            h.ok(
                provider,
                STORAGE_MARKET,
                U256::ZERO,
                prove_call(&h, *deal, data),
            );
        }
        for provider in [&honest, &farmer] {
            let owed = h.view(REWARD_POOL, RewardPool::owedCall(provider.address()));
            if !owed.is_zero() {
                h.ok(provider, REWARD_POOL, U256::ZERO, RewardPool::claimCall {});
                *claimed.entry(provider.address()).or_default() += owed;
            }
        }
        let total_claimed: U256 = claimed.values().copied().sum();
        let distributed = h.view(REWARD_POOL, RewardPool::distributedCall {});
        let outstanding = h.view(REWARD_POOL, RewardPool::outstandingCall {});
        assert_eq!(distributed, total_claimed + outstanding);
        assert_eq!(h.balance(REWARD_POOL), endowment - total_claimed);
        assert_eq!(supply(&h), genesis_supply, "epoch {epoch}");
    }
    h.advance_to_epoch(start + 6);
    // Each closed epoch: the pro-rata shares (50 × 1/11 and 50 × 10/11 CRN) are far above the
    // caps, half of what each burnt: 0.05 CRN for the honest provider, 0.5 for the farmer.
    let owed = |who: &AccountKey| {
        claimed.get(&who.address()).copied().unwrap_or_default()
            + h.view(REWARD_POOL, RewardPool::owedCall(who.address()))
    };
    assert_eq!(owed(&honest), crn(6) / U256::from(20));
    assert_eq!(owed(&farmer), crn(6) / U256::from(2));
    // Burnt: a tenth of every payment, sent at each close.
    assert_eq!(h.balance(BURN), tenths(66));
    for (provider, deal, _) in &deals {
        settle(&h, provider, *deal);
    }
    h.ok(
        &farmer,
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::claimCall {},
    );
    h.ok(&farmer, REWARD_POOL, U256::ZERO, RewardPool::claimCall {});
    // The farmer paid 60 CRN, got 54 back and 3 of emission: it is poorer than it started,
    // even before its gas.
    let farmer_end = h.balance(farmer.address());
    assert!(
        farmer_end + crn(3) <= farmer_start,
        "the self-dealer gained: {farmer_start} → {farmer_end}"
    );
    assert_eq!(supply(&h), genesis_supply);
    Ok(())
}

// ---- compute ----

const COMPUTE_PROVIDERS: std::ops::RangeInclusive<u32> = 4..=8;

/// Dev keys 4 to 8 as staked compute providers, their bonds seasoned (a whole epoch old);
/// returns a lookup from address to key.
fn compute_providers(h: &Harness) -> impl Fn(Address) -> AccountKey {
    for i in COMPUTE_PROVIDERS {
        stake(h, &key(i), crn(200));
        advertise_compute(h, &key(i));
    }
    h.advance_to_epoch(h.epoch() + 2);
    |address| {
        COMPUTE_PROVIDERS
            .map(key)
            .find(|k| k.address() == address)
            .expect("a compute provider")
    }
}

fn post_call(max_fuel: u64, memory_mib: u32, price: u128) -> ComputeMarket::postJobCall {
    ComputeMarket::postJobCall {
        moduleRoot: B256::repeat_byte(1),
        inputRoot: B256::repeat_byte(2),
        maxFuel: max_fuel,
        memoryMiB: memory_mib,
        pricePerFuel: price,
    }
}

fn post_job(h: &Harness, client: &AccountKey, max_fuel: u64, price: u128) -> B256 {
    let receipt = h.ok(
        client,
        COMPUTE_MARKET,
        U256::from(max_fuel) * U256::from(price),
        post_call(max_fuel, 64, price),
    );
    receipt.event::<ComputeMarket::JobPosted>().unwrap().id
}

fn job(h: &Harness, id: B256) -> ComputeMarket::Job {
    h.view(COMPUTE_MARKET, ComputeMarket::jobOfCall { id })
}

fn party(h: &Harness, id: B256, slot: usize) -> Address {
    job(h, id).parties[slot].who
}

const PROVIDER: usize = 0;
const VERIFIER: usize = 1;
const FIRST_REFEREE: usize = 3;

/// A result: output root, fuel used, outcome (0 completed, 4 input unavailable).
type Answer = (B256, u64, u8);

fn salt_of(who: Address) -> B256 {
    B256::left_padding_from(who.as_slice())
}

fn commit(h: &Harness, who: &AccountKey, id: B256, (output, fuel, outcome): Answer) -> Receipt {
    let commitment = job_commitment(
        id,
        who.address(),
        output,
        fuel,
        outcome,
        salt_of(who.address()),
    );
    h.ok(
        who,
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::commitCall { id, commitment },
    )
}

fn reveal_call(
    who: Address,
    id: B256,
    (output, fuel, outcome): Answer,
) -> ComputeMarket::revealCall {
    ComputeMarket::revealCall {
        id,
        outputRoot: output,
        fuelUsed: fuel,
        outcome,
        salt: salt_of(who),
    }
}

fn reveal(h: &Harness, who: &AccountKey, id: B256, answer: Answer) -> Receipt {
    h.ok(
        who,
        COMPUTE_MARKET,
        U256::ZERO,
        reveal_call(who.address(), id, answer),
    )
}

/// The job's provider and then its verifier (drawn by the provider's commitment) commit;
/// returns them.
fn both_commit(
    h: &Harness,
    key_of: &impl Fn(Address) -> AccountKey,
    id: B256,
    provider_answer: Answer,
    verifier_answer: Answer,
) -> (AccountKey, AccountKey) {
    let provider = key_of(party(h, id, PROVIDER));
    commit(h, &provider, id, provider_answer);
    let verifier = key_of(party(h, id, VERIFIER));
    commit(h, &verifier, id, verifier_answer);
    (provider, verifier)
}

/// Both commit, then both reveal.
fn both_answer(
    h: &Harness,
    key_of: &impl Fn(Address) -> AccountKey,
    id: B256,
    provider_answer: Answer,
    verifier_answer: Answer,
) -> (AccountKey, AccountKey) {
    let (provider, verifier) = both_commit(h, key_of, id, provider_answer, verifier_answer);
    reveal(h, &provider, id, provider_answer);
    reveal(h, &verifier, id, verifier_answer);
    (provider, verifier)
}

fn refuse_early_expiry(h: &Harness, id: B256) {
    h.refuses(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id },
        "the stage runs until block",
    );
}

fn claimable(h: &Harness, who: Address) -> U256 {
    h.view(COMPUTE_MARKET, ComputeMarket::claimableCall(who))
}

fn past_deadline(h: &Harness, id: B256) {
    let deadline = job(h, id).deadlineBlock;
    while h.height() <= deadline {
        h.block(&[]);
    }
}

fn expire(h: &Harness, id: B256) -> Receipt {
    h.ok(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id },
    )
}

#[test]
fn a_job_no_provider_offered_to_run_is_refused_and_slashes_nobody() -> TestResult {
    let h = Harness::new();
    let client = key(3);
    for i in COMPUTE_PROVIDERS {
        stake(&h, &key(i), crn(200));
        advertise_compute(&h, &key(i));
    }
    // Bonds less than a whole epoch old do not weigh in a draw: nobody can bond on seeing a
    // job coming. Refused in this epoch and the next.
    for _ in 0..2 {
        h.refuses(
            &client,
            COMPUTE_MARKET,
            U256::from(10),
            post_call(10, 64, 1),
            "fewer than two compute providers other than you take a job of 10 fuel, 64 MiB",
        );
        h.advance_to_epoch(h.epoch() + 1);
    }
    let bonds: Vec<U256> = COMPUTE_PROVIDERS
        .map(|i| bonded(&h, key(i).address()))
        .collect();
    // A free job: below every ask, so no provider is drawn and nobody can be slashed over it.
    h.refuses(
        &client,
        COMPUTE_MARKET,
        U256::ZERO,
        post_call(1_000_000, 64, 0),
        "the price of 0 CRN per fuel is below every provider's ask",
    );
    // Fuel no provider can run within a stage (1,000,000 fuel/s for half of 20 one-second
    // blocks).
    h.refuses(
        &client,
        COMPUTE_MARKET,
        U256::ZERO,
        post_call(u64::MAX, 64, 0),
        "maxFuel 18446744073709551615 is more than any provider can run in 20 blocks: at most 10000000",
    );
    // More memory than any provider offers.
    h.refuses(
        &client,
        COMPUTE_MARKET,
        U256::from(10),
        post_call(10, 16_384, 1),
        "take a job of 10 fuel, 16384 MiB",
    );
    let after: Vec<U256> = COMPUTE_PROVIDERS
        .map(|i| bonded(&h, key(i).address()))
        .collect();
    assert_eq!(bonds, after, "no bond moved");
    // Within every bound, the job is taken.
    post_job(&h, &client, 10_000_000, 1);

    // New terms take effect at the next epoch: an advert in the block that makes a draw (a
    // leader's own, say) cannot steer it.
    let dearer = ProviderRegistry::advertiseCall {
        storageCapacity: 0,
        storagePricePerMiBEpoch: 0,
        cores: 4,
        memoryMiB: 8192,
        fuelPerSecond: 1_000_000,
        computePricePerFuel: 5,
        peerId: Bytes::new(),
        addresses: String::new(),
    };
    h.ok(&key(4), REGISTRY, U256::ZERO, dearer);
    let ask = |h: &Harness| {
        h.view(
            REGISTRY,
            ProviderRegistry::computeTermsOfCall {
                provider: key(4).address(),
            },
        )
        .pricePerFuel
    };
    assert_eq!(ask(&h), 1, "the terms in force");
    h.advance_to_epoch(h.epoch() + 1);
    assert_eq!(ask(&h), 5, "the new terms, an epoch later");
    Ok(())
}

#[test]
fn results_are_committed_before_revealed_and_an_agreed_job_pays_after_its_challenge_window()
-> TestResult {
    let h = Harness::new();
    let client = key(3);
    let key_of = compute_providers(&h);
    let price = 1_000_000_000u128;
    let truth: Answer = (B256::repeat_byte(0x0a), 600_000, 0);

    let id = post_job(&h, &client, 1_000_000, price);
    let provider = key_of(party(&h, id, PROVIDER));
    assert_eq!(locked(&h, provider.address()), crn(50), "its collateral");
    h.refuses(
        &client,
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::commitCall {
            id,
            commitment: B256::repeat_byte(1),
        },
        "NotAParty",
    );
    let committed = commit(&h, &provider, id, truth);
    let verifier = key_of(
        committed
            .event::<ComputeMarket::VerifierDrawn>()
            .unwrap()
            .verifier,
    );
    assert_ne!(verifier.address(), provider.address());
    // Nothing can be revealed before both committed: the verifier has nothing to copy.
    h.refuses(
        &provider,
        COMPUTE_MARKET,
        U256::ZERO,
        reveal_call(provider.address(), id, truth),
        "WrongState",
    );
    commit(&h, &verifier, id, truth);
    // A reveal that does not open the commitment (another salt) is refused.
    let mut wrong_salt = reveal_call(verifier.address(), id, truth);
    wrong_salt.salt = B256::ZERO;
    h.refuses(
        &verifier,
        COMPUTE_MARKET,
        U256::ZERO,
        wrong_salt,
        "reveal does not match its commitment",
    );
    reveal(&h, &provider, id, truth);
    let agreed = reveal(&h, &verifier, id, truth);
    assert!(agreed.event::<ComputeMarket::JobAgreed>().is_some());
    refuse_early_expiry(&h, id);
    past_deadline(&h, id);
    let settled = expire(&h, id);
    assert!(settled.event::<ComputeMarket::JobSettled>().is_some());

    // P = fuel × price: 60 % to the provider less the burnt tenth of it, 30 % to the
    // verifier, the rest of the escrow back to the client; every lock released.
    let payment = U256::from(600_000u64) * U256::from(price);
    let share = payment * U256::from(6) / U256::from(10);
    assert_eq!(
        claimable(&h, provider.address()),
        share - share / U256::from(10)
    );
    assert_eq!(
        claimable(&h, verifier.address()),
        payment * U256::from(3) / U256::from(10)
    );
    assert_eq!(
        claimable(&h, client.address()),
        U256::from(1_000_000u64) * U256::from(price) - payment * U256::from(9) / U256::from(10)
    );
    for who in [&provider, &verifier] {
        assert_eq!(locked(&h, who.address()), U256::ZERO);
    }
    let decided = job(&h, id);
    assert!(decided.providerPaid);
    assert_eq!(
        (decided.decided.outputRoot, decided.decided.fuelUsed),
        (truth.0, truth.1)
    );
    let epoch = h.epoch();
    assert_eq!(
        h.view(
            REWARD_POOL,
            RewardPool::computeFeesCall {
                _0: epoch,
                _1: provider.address()
            }
        ),
        share
    );
    Ok(())
}

/// Draws the panel of a disputed job and has each referee commit and reveal `answers[i]`.
fn panel_answers(
    h: &Harness,
    key_of: &impl Fn(Address) -> AccountKey,
    id: B256,
    answers: &[Answer],
) -> Vec<AccountKey> {
    let state = job(h, id);
    assert_eq!(state.state, 5, "a panel is committing");
    let referees: Vec<AccountKey> = state.parties[FIRST_REFEREE..]
        .iter()
        .filter(|p| p.who != Address::ZERO)
        .map(|p| key_of(p.who))
        .collect();
    assert_eq!(referees.len(), answers.len());
    for (referee, answer) in referees.iter().zip(answers) {
        commit(h, referee, id, *answer);
    }
    for (referee, answer) in referees.iter().zip(answers) {
        reveal(h, referee, id, *answer);
    }
    referees
}

#[test]
fn a_panel_outvotes_a_liar_and_a_challenger_overturns_a_colluding_pair() -> TestResult {
    let h = Harness::new();
    let client = key(3);
    let key_of = compute_providers(&h);
    let price = 1_000u128;
    let truth: Answer = (B256::repeat_byte(0x0a), 500, 0);
    let lie: Answer = (B256::repeat_byte(0xee), 1_000, 0);

    // A lying provider: the verifier disagrees; of three referees two compute the truth and
    // one copies the liar. The liar and the copier are slashed; the verifier and the two
    // honest referees share the slashes; the client is refunded.
    let id = post_job(&h, &client, 1_000, price);
    let (liar, verifier) = both_answer(&h, &key_of, id, lie, truth);
    let before: BTreeMap<Address, U256> = COMPUTE_PROVIDERS
        .map(|i| (key(i).address(), bonded(&h, key(i).address())))
        .collect();
    let referees = panel_answers(&h, &key_of, id, &[truth, truth, lie]);
    let copier = referees[2].address();
    for who in [liar.address(), copier] {
        assert_eq!(bonded(&h, who), before[&who] - crn(50), "{who} slashed");
    }
    let share = crn(100) / U256::from(3);
    for who in [
        verifier.address(),
        referees[0].address(),
        referees[1].address(),
    ] {
        assert_eq!(claimable(&h, who), share, "{who}'s share");
        assert_eq!(bonded(&h, who), before[&who]);
    }
    let settled = job(&h, id);
    assert_eq!(settled.state, 7, "settled");
    assert!(!settled.providerPaid);
    assert_eq!(settled.decided.outputRoot, truth.0);
    assert_eq!(
        claimable(&h, client.address()),
        U256::from(1_000u64) * U256::from(price) + (crn(100) - share * U256::from(3))
    );

    // A colluding pair agrees on a wrong result; a challenger with the truth overturns it
    // before payment and collects both slashes with the referees.
    let id = post_job(&h, &client, 1_000, price);
    let (provider, accomplice) = both_answer(&h, &key_of, id, lie, lie);
    let challenger = COMPUTE_PROVIDERS
        .map(key)
        .find(|k| k.address() != provider.address() && k.address() != accomplice.address())
        .unwrap();
    let challenge = |answer: Answer| ComputeMarket::challengeCall {
        id,
        outputRoot: answer.0,
        fuelUsed: answer.1,
        outcome: answer.2,
    };
    h.refuses(
        &challenger,
        COMPUTE_MARKET,
        U256::ZERO,
        challenge(lie),
        "other than the agreed one",
    );
    // "Input unavailable" is no result to challenge with.
    h.refuses(
        &challenger,
        COMPUTE_MARKET,
        U256::ZERO,
        challenge((B256::ZERO, 0, 4)),
        "InvalidOutcome",
    );
    h.refuses(
        &accomplice,
        COMPUTE_MARKET,
        U256::ZERO,
        challenge(truth),
        "cannot challenge this job",
    );
    let challenger_claim = claimable(&h, challenger.address());
    h.ok(&challenger, COMPUTE_MARKET, U256::ZERO, challenge(truth));
    let before: BTreeMap<Address, U256> = COMPUTE_PROVIDERS
        .map(|i| (key(i).address(), bonded(&h, key(i).address())))
        .collect();
    let referees = panel_answers(&h, &key_of, id, &[truth, truth]);
    for who in [provider.address(), accomplice.address()] {
        assert_eq!(bonded(&h, who), before[&who] - crn(50), "{who} slashed");
    }
    assert_eq!(
        claimable(&h, challenger.address()),
        challenger_claim + share,
        "the challenger's jackpot"
    );
    for referee in &referees {
        assert!(claimable(&h, referee.address()) >= share);
    }
    assert!(!job(&h, id).providerPaid);
    Ok(())
}

#[test]
fn input_unavailable_slashes_nobody_and_pays_nobody() -> TestResult {
    let h = Harness::new();
    let client = key(3);
    let key_of = compute_providers(&h);
    let unavailable: Answer = (B256::ZERO, 0, 4);
    let truth: Answer = (B256::repeat_byte(0x0a), 500, 0);
    let bonds = |h: &Harness| -> Vec<U256> {
        COMPUTE_PROVIDERS
            .map(|i| bonded(h, key(i).address()))
            .collect()
    };
    let before = bonds(&h);

    // Both say the input could not be had: the client gets everything back.
    let id = post_job(&h, &client, 1_000, 1_000);
    let (provider, _) = both_answer(&h, &key_of, id, unavailable, unavailable);
    past_deadline(&h, id);
    expire(&h, id);
    assert!(!job(&h, id).providerPaid);
    assert_eq!(claimable(&h, client.address()), U256::from(1_000_000u64));
    assert_eq!(claimable(&h, provider.address()), U256::ZERO);

    // The provider could not get the input, the verifier could: the panel runs it; the
    // provider is neither paid nor slashed.
    let id = post_job(&h, &client, 1_000, 1_000);
    both_answer(&h, &key_of, id, unavailable, truth);
    panel_answers(&h, &key_of, id, &[truth, truth, truth]);
    assert!(!job(&h, id).providerPaid);
    assert_eq!(bonds(&h), before, "nobody slashed");
    Ok(())
}

#[test]
fn silent_parties_are_slashed_and_replaced_or_the_client_refunded() -> TestResult {
    let h = Harness::new();
    let client = key(3);
    let key_of = compute_providers(&h);
    let price = 1_000u128;
    let truth: Answer = (B256::repeat_byte(0x0a), 500, 0);

    // The provider never answers: anyone expires the job; the provider is slashed (burnt: paid
    // to nobody, so nobody gains by crowding its transactions out) and the client refunded.
    let id = post_job(&h, &client, 1_000, price);
    let silent = party(&h, id, PROVIDER);
    let bond = bonded(&h, silent);
    refuse_early_expiry(&h, id);
    past_deadline(&h, id);
    expire(&h, id);
    assert_eq!(bonded(&h, silent), bond - crn(10));
    assert_eq!(locked(&h, silent), U256::ZERO);
    assert_eq!(
        claimable(&h, client.address()),
        U256::from(1_000u64) * U256::from(price)
    );
    assert_eq!(job(&h, id).state, 8, "expired");
    h.refuses(
        &key(9),
        COMPUTE_MARKET,
        U256::ZERO,
        ComputeMarket::expireCall { id },
        "WrongState",
    );

    // The verifier never commits: it is slashed and another is drawn; the result does not
    // stand unchecked.
    let id = post_job(&h, &client, 1_000, price);
    let provider = key_of(party(&h, id, PROVIDER));
    commit(&h, &provider, id, truth);
    let silent = party(&h, id, VERIFIER);
    let bond = bonded(&h, silent);
    past_deadline(&h, id);
    let replaced = expire(&h, id);
    let verifier = key_of(
        replaced
            .event::<ComputeMarket::VerifierDrawn>()
            .unwrap()
            .verifier,
    );
    assert_ne!(verifier.address(), silent);
    assert_eq!(bonded(&h, silent), bond - crn(10));
    commit(&h, &verifier, id, truth);
    reveal(&h, &provider, id, truth);
    reveal(&h, &verifier, id, truth);
    assert_eq!(job(&h, id).state, 4, "agreed");

    // The verifier never reveals: the provider's result is public by now, so instead of a new
    // verifier (who could copy it) a panel checks it.
    let id = post_job(&h, &client, 1_000, price);
    let (provider, _) = both_commit(&h, &key_of, id, truth, truth);
    reveal(&h, &provider, id, truth);
    past_deadline(&h, id);
    expire(&h, id);
    panel_answers(&h, &key_of, id, &[truth, truth, truth]);
    assert!(job(&h, id).providerPaid);

    // The provider keeps its result back once the verifier revealed (it would have lied): it
    // loses what a liar loses, not a timeout's fee.
    let id = post_job(&h, &client, 1_000, price);
    let (provider, verifier) = both_commit(&h, &key_of, id, truth, truth);
    reveal(&h, &verifier, id, truth);
    let bond = bonded(&h, provider.address());
    past_deadline(&h, id);
    expire(&h, id);
    assert_eq!(bonded(&h, provider.address()), bond - crn(50));
    assert_eq!(job(&h, id).state, 8, "expired");
    Ok(())
}
