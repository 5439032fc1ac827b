//! Ethereum-signed transactions beside Cairn's own: a test-mnemonic account's EIP-1559,
//! EIP-2930 and legacy (EIP-155) transfers are admitted, put in blocks, executed and receipted
//! under the keccak hash a wallet computes, in the same blocks as an ed25519 transfer; bad ones
//! are refused with the words Ethereum clients show, and change nothing.

use std::time::Duration;

use alloy_consensus::{TxEip2930, TxLegacy};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use cairn_chain::genesis::{Genesis, dev_account, test_mnemonic_account};
use cairn_primitives::{Address, B256, Bytes, Canonical, Transaction, TxBody, U256};
use cairn_rpc::CairnApiClient;
use jsonrpsee::http_client::HttpClient;

use crate::support::{dev_transfer, eventually, in_process_dev_node};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const VALUE: u64 = 1_000;

async fn receipt_of(
    client: &HttpClient,
    hash: B256,
) -> Result<cairn_rpc::ReceiptInfo, Box<dyn std::error::Error>> {
    eventually(Duration::from_secs(10), || async {
        CairnApiClient::get_receipt(client, hash)
            .await
            .ok()
            .flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn ethereum_signed_transactions_run_beside_cairn_ones() -> TestResult {
    let (_dir, _node, client) = in_process_dev_node(50).await?;
    let genesis = Genesis::dev();
    let alice = test_mnemonic_account(0)?;
    let bob = Address::repeat_byte(0x0b);
    let base_fee = u128::from(genesis.base_fee_per_gas);
    let funded = client.get_balance(alice.address()).await?;
    assert!(funded > U256::ZERO, "the test accounts are funded");

    let transfer = |nonce| dev_transfer(nonce, bob, VALUE);
    let eip1559 = transfer(0).sign_ethereum(&alice)?;
    // An access list that names bob costs 2,400 gas more, and is charged.
    let eip2930 = Transaction::from(alice.sign(TxEip2930 {
        chain_id: genesis.chain_id,
        nonce: 1,
        gas_price: base_fee,
        gas_limit: 30_000,
        to: bob.into(),
        value: U256::from(VALUE),
        access_list: AccessList(vec![AccessListItem {
            address: bob,
            storage_keys: Vec::new(),
        }]),
        input: Bytes::new(),
    })?);
    let legacy = Transaction::from(alice.sign(TxLegacy {
        chain_id: Some(genesis.chain_id),
        nonce: 2,
        gas_price: base_fee,
        gas_limit: 21_000,
        to: bob.into(),
        value: U256::from(VALUE),
        input: Bytes::new(),
    })?);
    let cairn = transfer(0).sign(&dev_account(3));

    let mut hashes = Vec::new();
    for tx in [&eip1559, &eip2930, &legacy, &cairn] {
        let hash = client.send_raw_transaction(tx.encode().into()).await?;
        assert_eq!(hash, tx.hash());
        hashes.push(hash);
    }
    assert_eq!(
        hashes[0],
        alloy_primitives::keccak256(
            eip1559
                .ethereum()
                .ok_or("an Ethereum transaction")?
                .encoded()
        ),
        "the hash a wallet computes"
    );
    let mut fees = U256::ZERO;
    for (hash, gas) in hashes.iter().zip([21_000, 23_400, 21_000, 21_000]) {
        let receipt = receipt_of(&client, *hash).await?;
        assert!(receipt.receipt.succeeded(), "{receipt:?}");
        assert_eq!(receipt.receipt.gas_used, gas, "{receipt:?}");
        if *hash != hashes[3] {
            assert_eq!(receipt.from, alice.address());
            fees += receipt.receipt.fee;
        }
    }
    assert_eq!(client.get_balance(bob).await?, U256::from(4 * VALUE));
    assert_eq!(client.get_nonce(alice.address(), None).await?, 3);
    assert_eq!(
        client.get_balance(alice.address()).await?,
        funded - U256::from(3 * VALUE) - fees
    );
    // A legacy transaction pays its gas price whatever the base fee leaves as tip.
    let legacy_receipt = receipt_of(&client, hashes[2]).await?;
    assert_eq!(legacy_receipt.receipt.fee, U256::from(21_000 * base_fee));
    let stored = client
        .get_transaction(hashes[1])
        .await?
        .ok_or("the transaction is stored")?;
    assert_eq!(stored.transaction, eip2930);

    // Bad ones: each refused with the words clients know, none changes anything.
    let other_chain = TxBody {
        chain_id: 1,
        ..transfer(3)
    }
    .sign_ethereum(&alice)?;
    let replayed = transfer(0).sign_ethereum(&alice)?;
    // Nonce 4 waits behind a gap (3 is not sent yet), so it stays pending while a replacement
    // at the same fee is refused, however fast blocks come.
    let pending = transfer(4).sign_ethereum(&alice)?;
    client.send_raw_transaction(pending.encode().into()).await?;
    let same_fee_again = TxBody {
        value: U256::from(VALUE + 1),
        ..transfer(4)
    }
    .sign_ethereum(&alice)?;
    let too_little_gas = TxBody {
        gas_limit: 20_000,
        ..transfer(5)
    }
    .sign_ethereum(&alice)?;
    let cases: [(&Transaction, &str); 4] = [
        (&other_chain, "invalid chain id"),
        (&replayed, "nonce too low"),
        (&same_fee_again, "replacement transaction underpriced"),
        (&too_little_gas, "intrinsic gas too low"),
    ];
    for (tx, expected) in cases {
        let error = client
            .send_raw_transaction(tx.encode().into())
            .await
            .expect_err(expected)
            .to_string();
        assert!(error.contains(expected), "{expected}: {error}");
    }
    let gap = transfer(3).sign_ethereum(&alice)?;
    client.send_raw_transaction(gap.encode().into()).await?;
    receipt_of(&client, pending.hash()).await?;
    assert_eq!(client.get_nonce(alice.address(), Some(true)).await?, 5);
    Ok(())
}
