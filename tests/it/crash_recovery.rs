//! A node killed with SIGKILL in the middle of a stream of transactions loses no block it
//! reported committed, and its state is exactly what re-executing its blocks gives.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_chain::chain::Chain;
use cairn_chain::genesis::{Genesis, dev_account};
use cairn_evm::execution::Sequential;
use cairn_primitives::{Address, B256, Canonical, TxBody, U256};
use cairn_rpc::CairnApiClient;
use support::{DevNode, TestResult, eventually};

const SENDERS: u32 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_no_committed_block() -> TestResult {
    let dir = tempfile::tempdir()?;
    let datadir = dir.path().join("chain");
    let node = DevNode::start(&datadir, 50)?;
    let client = node.client()?;
    let genesis = Genesis::dev();

    // Stream transfers from several senders; remember every receipt the node reports.
    let mut reported: BTreeMap<B256, (u64, B256)> = BTreeMap::new();
    let mut outstanding: Vec<B256> = Vec::new();
    let mut nonces = [0u64; SENDERS as usize];
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_millis(2500) || reported.len() < 20 {
        for sender in 0..SENDERS {
            let body = TxBody {
                chain_id: genesis.chain_id,
                nonce: nonces[sender as usize],
                gas_limit: 21_000,
                max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
                max_priority_fee_per_gas: 0,
                to: Some(Address::repeat_byte((round % 200) as u8 + 1)),
                value: U256::from(round + 1),
                input: Default::default(),
            };
            let hash = client
                .send_raw_transaction(body.sign(&dev_account(sender)).encode().into())
                .await?;
            nonces[sender as usize] += 1;
            outstanding.push(hash);
        }
        let mut still_pending = Vec::new();
        for hash in outstanding.drain(..) {
            match client.get_receipt(hash).await? {
                Some(receipt) => {
                    reported.insert(hash, (receipt.block_height, receipt.block_hash));
                }
                None => still_pending.push(hash),
            }
        }
        outstanding = still_pending;
        round += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the node stopped including transactions"
        );
    }
    // Killed while transactions are still being sent and blocks produced.
    node.kill();

    let node = DevNode::start(&datadir, 50)?;
    let client = node.client()?;
    for (hash, (height, block_hash)) in &reported {
        let receipt = client
            .get_receipt(*hash)
            .await?
            .ok_or("a reported transaction vanished")?;
        assert_eq!(
            (receipt.block_height, receipt.block_hash),
            (*height, *block_hash)
        );
    }
    let highest = reported
        .values()
        .map(|(h, _)| *h)
        .max()
        .ok_or("no receipts")?;
    eventually(Duration::from_secs(10), || async {
        let status = client.chain_status().await.ok()?;
        (status.height > highest).then_some(())
    })
    .await?;
    node.stop()?;

    // Re-execute every stored block from genesis on a fresh database: it must accept each block
    // (same receipts, gas and state root) and end in the same head.
    let stored = Chain::open(
        &datadir.join("db"),
        Genesis::load(&datadir.join("genesis.json"))?,
        Box::new(Sequential),
    )?;
    let replay_dir = tempfile::tempdir()?;
    let replayed = Chain::open(replay_dir.path(), genesis, Box::new(Sequential))?;
    let head = stored.head()?;
    for height in 1..=head.height {
        let block = stored.block(height)?.ok_or("missing block")?;
        replayed.import_block(&block)?;
    }
    assert_eq!(replayed.head()?, head);
    for sender in 0..SENDERS {
        let address = dev_account(sender).address();
        assert_eq!(
            replayed.sender_state(address)?,
            stored.sender_state(address)?
        );
    }
    Ok(())
}
