//! A dev node executes full blocks with Block-STM, and says so in its chain status.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_chain::genesis::{DEV_ACCOUNT_COUNT, Genesis, dev_account};
use cairn_node::Node;
use cairn_node::config::prepare_dev_datadir;
use cairn_primitives::{Address, Bytes, Canonical, TxBody, U256};
use cairn_rpc::CairnApiClient;
use jsonrpsee::http_client::HttpClientBuilder;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TRANSFERS_PER_ACCOUNT: u64 = 8;

#[tokio::test(flavor = "multi_thread")]
async fn a_dev_node_executes_full_blocks_with_block_stm() -> TestResult {
    let dir = tempfile::tempdir()?;
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let (mut config, _) = prepare_dev_datadir(dir.path(), loopback)?;
    // Room for all the transfers to arrive before a block takes them; two workers even on a
    // machine with one core (the default is one per core).
    config.block_time = Some(Duration::from_millis(500));
    config.execution_threads = 2;
    let node = Node::launch(config).await?;
    let client = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr()))?;
    let genesis = Genesis::dev();
    let recipient = |account: u32| Address::repeat_byte(0x40 + account as u8);

    // Every dev account sends a chain of transfers to a recipient of its own: ten chains that
    // do not touch each other.
    let mut sent = Vec::new();
    for nonce in 0..TRANSFERS_PER_ACCOUNT {
        for account in 0..DEV_ACCOUNT_COUNT {
            let tx = TxBody {
                chain_id: genesis.chain_id,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
                max_priority_fee_per_gas: 0,
                to: Some(recipient(account)),
                value: U256::from(1),
                input: Bytes::new(),
            }
            .sign(&dev_account(account));
            sent.push(client.send_raw_transaction(tx.encode().into()).await?);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for hash in sent {
        let receipt = loop {
            if let Some(receipt) = client.get_receipt(hash).await? {
                break receipt;
            }
            assert!(
                Instant::now() < deadline,
                "transfer {hash} was not committed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(receipt.receipt.succeeded(), "{receipt:?}");
    }
    for account in 0..DEV_ACCOUNT_COUNT {
        assert_eq!(
            client.get_balance(recipient(account)).await?,
            U256::from(TRANSFERS_PER_ACCOUNT)
        );
    }

    let execution = client.chain_status().await?.execution;
    assert_eq!(execution.threads, 2);
    assert!(
        execution.parallel_blocks >= 1,
        "no block of the 80 transfers ran on Block-STM: {execution:?}"
    );
    assert_eq!(execution.handed_over_blocks, 0, "{execution:?}");
    node.shutdown().await;
    Ok(())
}
