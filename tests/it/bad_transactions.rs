//! Every kind of bad transaction sent over RPC is refused with its own clear error and changes
//! nothing.

use std::net::SocketAddr;

use cairn_chain::genesis::{Genesis, dev_account};
use cairn_node::Node;
use cairn_node::config::prepare_dev_datadir;
use cairn_primitives::{Address, Bytes, Canonical, MAX_TX_SIZE, TxBody, U256};
use cairn_rpc::{CairnApiClient, TX_REJECTED};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClientBuilder;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn transfer(nonce: u64) -> TxBody {
    let genesis = Genesis::dev();
    TxBody {
        chain_id: genesis.chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
        max_priority_fee_per_gas: 0,
        to: Some(Address::repeat_byte(7)),
        value: U256::from(1),
        input: Bytes::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_transactions_are_refused_distinctly_and_change_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let (mut config, _) = prepare_dev_datadir(dir.path(), loopback)?;
    config.block_time = Some(std::time::Duration::from_millis(50));
    let node = Node::launch(config).await?;
    let client = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr()))?;
    let alice = dev_account(0);
    let poor = cairn_primitives::AccountKey::from_bytes(&[0x55; 32]);

    // One good transaction first, so that nonce 0 is stale afterwards.
    let first = client
        .send_raw_transaction(transfer(0).sign(&alice).encode().into())
        .await?;
    while client.get_receipt(first).await?.is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = (
        client.get_balance(alice.address()).await?,
        client.get_nonce(alice.address(), Some(true)).await?,
    );

    let mut forged = transfer(1).sign(&alice);
    forged.body.value = U256::from(10u64.pow(18));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad signature", forged.encode(), "invalid sender"),
        (
            "wrong chain",
            TxBody {
                chain_id: 1,
                ..transfer(1)
            }
            .sign(&alice)
            .encode(),
            "invalid chain id",
        ),
        (
            "stale nonce",
            transfer(0).sign(&alice).encode(),
            "nonce too low",
        ),
        (
            "insufficient funds",
            transfer(0).sign(&poor).encode(),
            "insufficient funds",
        ),
        (
            "gas too low",
            TxBody {
                gas_limit: 20_000,
                ..transfer(1)
            }
            .sign(&alice)
            .encode(),
            "intrinsic gas too low: gas limit 20000",
        ),
        (
            "oversized",
            TxBody {
                input: vec![1; MAX_TX_SIZE].into(),
                ..transfer(1)
            }
            .sign(&alice)
            .encode(),
            "over the limit",
        ),
        ("garbage", vec![1, 2, 3], "malformed"),
        (
            "unknown version",
            {
                let mut b = transfer(1).sign(&alice).encode();
                b[0] = 9;
                b
            },
            "encoding version 9",
        ),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (name, raw, expected) in cases {
        let error = client
            .send_raw_transaction(raw.into())
            .await
            .err()
            .ok_or(format!("{name} was accepted"))?;
        let ClientError::Call(error) = error else {
            return Err(format!("{name}: {error}").into());
        };
        assert_eq!(error.code(), TX_REJECTED, "{name}");
        assert!(
            error.message().contains(expected),
            "{name}: {}",
            error.message()
        );
        messages.insert(error.message().to_string());
    }
    assert_eq!(messages.len(), 8, "every refusal reads differently");
    let status = client.chain_status().await?;
    assert_eq!(status.pending_transactions, 0);
    let after = (
        client.get_balance(alice.address()).await?,
        client.get_nonce(alice.address(), Some(true)).await?,
    );
    assert_eq!(after, before);
    assert!(client.get_balance(poor.address()).await?.is_zero());
    node.shutdown().await;
    Ok(())
}
