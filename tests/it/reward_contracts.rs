//! The staking rules and accountable validators, executed from the contracts' real compiled
//! bytecode on revm, through the chain (genesis predeploys, transactions, epoch-closing system
//! calls). The markets' rules are in `markets.rs`.

// The harness panics on failure, which is how a test reports one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::chain::{EPOCH, Harness, crn, explain, key, stake};
use alloy_sol_types::SolCall;
use cairn_chain::genesis::{Genesis, dev_validator};
use cairn_client::contracts::register_validator_on_chain;
use cairn_evm::execution::{
    BlockContext, Executor, Sequential, TxOutcome, begin_block, system_call,
};
use cairn_primitives::beacon::vrf_public_key;
use cairn_primitives::consensus::{
    EVIDENCE_VOTE_LEN, Equivocation, Vote, VoteKind, epoch_namespace,
};
use cairn_primitives::{AccountKey, Address, B256, Bytes, Receipt, TxBody, TxStatus, U256};
use cairn_reward_contracts::bindings::{ProviderRegistry, RewardPool, Staking, StorageMarket};
use cairn_reward_contracts::{
    REGISTRY, REWARD_POOL, STAKING, STORAGE_MARKET, validator_possession_message,
};
use cairn_storage::{PendingState, Store};

type TestResult = Result<(), Box<dyn std::error::Error>>;

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
    let slash = Staking::slashLockedCall {
        staker: dev_validator().address(),
        amount: crn(1),
    };
    assert!(
        h.refused(&mallory, STAKING, U256::ZERO, slash)
            .contains("NotMarket")
    );
    // Collateral moves only at a market's call; burns and pruning only at the pool's.
    let victim = dev_validator().address();
    let lock = Staking::lockCall {
        staker: victim,
        amount: crn(1),
    };
    h.refuses(&mallory, STAKING, U256::ZERO, lock, "NotMarket");
    let unlock = Staking::unlockCall {
        staker: victim,
        amount: crn(1),
    };
    h.refuses(&mallory, STAKING, U256::ZERO, unlock, "NotMarket");
    let burn = StorageMarket::burnFeesCall {
        amount: U256::from(1),
    };
    h.refuses(&mallory, STORAGE_MARKET, U256::ZERO, burn, "NotRewardPool");
    let prune = ProviderRegistry::pruneCall {
        provider: victim,
        hasStorage: false,
        hasCompute: false,
    };
    h.refuses(&mallory, REGISTRY, U256::ZERO, prune, "NotRewardPool");
    let close = StorageMarket::closeEpochCall { closed: 0 };
    assert!(
        h.refused(&mallory, STORAGE_MARKET, U256::ZERO, close)
            .contains("NotSystem")
    );
    let close = RewardPool::closeEpochCall { closed: 0 };
    assert!(
        h.refused(&mallory, REWARD_POOL, U256::ZERO, close)
            .contains("NotSystem")
    );
    let mint = RewardPool::recordStorageFeeCall {
        provider: mallory.address(),
        fee: U256::from(1u64 << 40),
        burnt: U256::from(1u64 << 40),
    };
    assert!(
        h.refused(&mallory, REWARD_POOL, U256::ZERO, mint)
            .contains("NotMarket")
    );
    let reinit = RewardPool::initializeCall {
        epochLength_: 1,
        emissionPerEpoch_: crn(1_000_000),
        feeBurnPercent_: 0,
        emissionCapPercent_: 100,
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
        let opening = begin_block(&context, EPOCH, &self.voting, &mut self.pending).unwrap();
        assert!(opening.failures.is_empty(), "{:?}", opening.failures);
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
