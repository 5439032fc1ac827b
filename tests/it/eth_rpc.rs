//! Ethereum's JSON-RPC as an Ethereum library meets it (alloy's RPC types, over HTTP): the
//! chain id, balances and nonces, fees, a transfer signed by a test-mnemonic account sent raw
//! and found again as a transaction, a receipt and in its block, calls and estimates, code,
//! fee history; an unknown method answers -32601, a past block's state and bad transactions a
//! clear error.

use std::time::Duration;

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use alloy_rpc_types_eth::{
    BlockId, BlockNumberOrTag, BlockTransactions, Filter, TransactionInput, TransactionRequest,
};
use cairn_chain::genesis::{Genesis, test_mnemonic_account};
use cairn_primitives::TxBody;
use cairn_rpc::eth::{EthApiClient, NetApiClient, Web3ApiClient};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClient;

use crate::support::{eventually, in_process_dev_node, logging_contract};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Sends a signed Ethereum transaction as a wallet does: its EIP-2718 bytes.
async fn send(
    client: &HttpClient,
    tx: &cairn_primitives::Transaction,
) -> Result<B256, Box<dyn std::error::Error>> {
    let envelope = tx.ethereum().ok_or("an Ethereum transaction")?;
    Ok(client
        .send_raw_transaction(Bytes::from(envelope.envelope().encoded_2718()))
        .await?)
}

async fn receipt_of(
    client: &HttpClient,
    hash: B256,
) -> Result<alloy_rpc_types_eth::TransactionReceipt, Box<dyn std::error::Error>> {
    eventually(Duration::from_secs(10), || async {
        EthApiClient::transaction_receipt(client, hash)
            .await
            .ok()
            .flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn ethereum_clients_read_send_and_call_through_eth_methods() -> TestResult {
    let (_dir, _node, client) = in_process_dev_node(50).await?;
    let genesis = Genesis::dev();
    let alice = test_mnemonic_account(0)?;
    let bob = Address::repeat_byte(0x0b);

    assert_eq!(client.chain_id().await?, U64::from(genesis.chain_id));
    assert_eq!(client.version().await?, genesis.chain_id.to_string());
    assert!(client.client_version().await?.starts_with("cairn/"));
    assert!(client.accounts().await?.is_empty());
    let funded = client.balance(alice.address(), None).await?;
    assert!(funded > U256::ZERO);
    let pending = Some(BlockId::Number(BlockNumberOrTag::Pending));
    assert_eq!(
        client.transaction_count(alice.address(), pending).await?,
        U64::ZERO
    );
    let base_fee = U256::from(genesis.base_fee_per_gas);
    let tip = client.max_priority_fee_per_gas().await?;
    assert!(tip >= U256::from(1));
    assert_eq!(client.gas_price().await?, base_fee + tip);

    // Estimate, sign and send a transfer as a wallet does.
    let request = TransactionRequest {
        from: Some(alice.address()),
        to: Some(bob.into()),
        value: Some(U256::from(5)),
        ..Default::default()
    };
    let gas = client.estimate_gas(request.clone(), None).await?;
    assert_eq!(gas, U64::from(21_000));
    // A wallet that sends an access list is told what it costs.
    let listed = TransactionRequest {
        access_list: Some(alloy_eips::eip2930::AccessList(vec![
            alloy_eips::eip2930::AccessListItem {
                address: bob,
                storage_keys: Vec::new(),
            },
        ])),
        ..request
    };
    assert_eq!(
        client.estimate_gas(listed, None).await?,
        U64::from(21_000 + 2_400)
    );
    let body = TxBody {
        chain_id: genesis.chain_id,
        nonce: 0,
        gas_limit: gas.to(),
        max_fee_per_gas: (base_fee + tip).to::<u128>() * 2,
        max_priority_fee_per_gas: tip.to(),
        to: Some(bob),
        value: U256::from(5),
        input: Bytes::new(),
    };
    let tx = body.sign_ethereum(&alice)?;
    let envelope = tx.ethereum().ok_or("an Ethereum transaction")?;
    let raw = Bytes::from(envelope.envelope().encoded_2718());
    let hash = client.send_raw_transaction(raw.clone()).await?;
    assert_eq!(hash, keccak256(&raw));
    let again = client
        .send_raw_transaction(raw)
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("already known"), "{again}");

    let receipt = receipt_of(&client, hash).await?;
    assert!(receipt.status());
    assert_eq!(receipt.from, alice.address());
    assert_eq!(receipt.to, Some(bob));
    assert_eq!(receipt.gas_used, 21_000);
    assert_eq!(receipt.transaction_hash, hash);
    let height = receipt.block_number.ok_or("a block number")?;
    assert_eq!(client.balance(bob, None).await?, U256::from(5));
    assert_eq!(
        client.transaction_count(alice.address(), None).await?,
        U64::from(1)
    );

    let found = client
        .transaction_by_hash(hash)
        .await?
        .ok_or("the transaction")?;
    assert_eq!(found.inner.signer(), alice.address());
    assert_eq!(found.block_number, Some(height));
    let block = client
        .block_by_number(BlockNumberOrTag::Number(height), true)
        .await?
        .ok_or("the block")?;
    assert_eq!(block.header.number, height);
    assert_eq!(Some(block.header.hash), receipt.block_hash);
    assert_eq!(
        block.header.base_fee_per_gas,
        Some(genesis.base_fee_per_gas)
    );
    let BlockTransactions::Full(transactions) = &block.transactions else {
        return Err("full transactions asked for".into());
    };
    assert!(transactions.iter().any(|t| *t.inner.tx_hash() == hash));
    let by_hash = client
        .block_by_hash(block.header.hash, false)
        .await?
        .ok_or("the block by hash")?;
    assert!(matches!(&by_hash.transactions, BlockTransactions::Hashes(h) if h.contains(&hash)));
    assert_eq!(
        client
            .block_transaction_count(BlockNumberOrTag::Number(height))
            .await?,
        Some(U64::from(transactions.len()))
    );

    // A call: the identity precompile gives back what it is sent.
    let echo = TransactionRequest {
        to: Some(Address::with_last_byte(4).into()),
        input: TransactionInput::new(Bytes::from_static(b"cairn")),
        ..Default::default()
    };
    assert_eq!(client.call(echo, None).await?, Bytes::from_static(b"cairn"));
    assert!(
        !client
            .code(cairn_reward_contracts::STAKING, None)
            .await?
            .is_empty()
    );
    assert!(client.code(alice.address(), None).await?.is_empty());

    // A contract that logs 42 under one topic when called: deployed, called, its log found.
    let topic = B256::repeat_byte(0x11);
    let (runtime, init) = logging_contract(topic);
    let deploy = TxBody {
        nonce: 1,
        gas_limit: 100_000,
        to: None,
        value: U256::ZERO,
        input: init.into(),
        ..body.clone()
    }
    .sign_ethereum(&alice)?;
    let deployed = send(&client, &deploy).await?;
    let logger = receipt_of(&client, deployed)
        .await?
        .contract_address
        .ok_or("a contract address")?;
    assert_eq!(client.code(logger, None).await?, Bytes::from(runtime));
    let poke = TxBody {
        nonce: 2,
        gas_limit: 100_000,
        to: Some(logger),
        value: U256::ZERO,
        ..body.clone()
    }
    .sign_ethereum(&alice)?;
    let poked = receipt_of(&client, send(&client, &poke).await?).await?;
    assert_eq!(poked.inner.logs().len(), 1);
    let filter = Filter::new().from_block(0).address(logger);
    let logs = client.logs(filter.clone().event_signature(topic)).await?;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].transaction_hash, Some(poked.transaction_hash));
    assert_eq!(
        logs[0].data().data,
        Bytes::from(U256::from(42).to_be_bytes::<32>())
    );
    assert!(
        client
            .logs(filter.event_signature(B256::ZERO))
            .await?
            .is_empty()
    );
    // A filter naming more addresses than a query may is refused before any block is read.
    let many: Vec<Address> = (0..=1_000u32)
        .map(|i| Address::left_padding_from(&i.to_be_bytes()))
        .collect();
    let error = client
        .logs(Filter::new().from_block(0).address(many))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("at most 1000 addresses"), "{error}");

    let history = client
        .fee_history(U64::from(4), BlockNumberOrTag::Latest, Some(vec![50.0]))
        .await?;
    assert_eq!(
        history.base_fee_per_gas.len(),
        history.gas_used_ratio.len() + 1
    );
    assert_eq!(
        history.reward.map(|r| r.len()),
        Some(history.gas_used_ratio.len())
    );

    // What this node cannot or will not answer.
    let many = (0..=100).map(f64::from).collect();
    let error = client
        .fee_history(U64::from(4), BlockNumberOrTag::Latest, Some(many))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("the most is 100"), "{error}");
    let head = client.block_number().await?.to::<u64>();
    if head > 0 {
        let past = Some(BlockId::Number(BlockNumberOrTag::Number(0)));
        let error = client.balance(bob, past).await.unwrap_err().to_string();
        assert!(error.contains("not kept"), "{error}");
    }
    let unknown: Result<serde_json::Value, _> = client
        .request("eth_getProof", jsonrpsee::rpc_params![])
        .await;
    let error = unknown.unwrap_err().to_string();
    assert!(
        error.contains("-32601") || error.contains("Method not found"),
        "{error}"
    );
    let other_chain = TxBody {
        chain_id: 1,
        nonce: 3,
        ..body
    }
    .sign_ethereum(&alice)?;
    let raw = Bytes::from(
        other_chain
            .ethereum()
            .ok_or("an Ethereum transaction")?
            .envelope()
            .encoded_2718(),
    );
    let error = client
        .send_raw_transaction(raw)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid chain id"), "{error}");
    let error = client
        .send_raw_transaction(Bytes::from_static(&[0x02, 0xc0]))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("rlp"), "{error}");
    Ok(())
}

/// The epoch machinery's events (an epoch close's rewards and burns, jailed validators) are
/// emitted by system calls, not transactions; they are stored with the block's receipts and
/// found by `eth_getLogs` like any other. They ran first, so they come first: log indexes count
/// through the block from them, at transaction index 0, under a hash no transaction has (how a
/// block's transactions number their logs after them: `cairn_rpc::eth::tests`).
#[tokio::test(flavor = "multi_thread")]
async fn the_epoch_machinerys_events_are_found_by_eth_get_logs() -> TestResult {
    use alloy_sol_types::SolEvent;
    use cairn_reward_contracts::bindings::RewardPool::EpochClosed;

    let (_dir, node, client) = in_process_dev_node(20).await?;
    let closes_at = Genesis::dev().epoch_length;
    eventually(Duration::from_secs(30), || async {
        let head = client.block_number().await.ok()?.to::<u64>();
        (head >= closes_at).then_some(())
    })
    .await?;
    let block = client
        .block_by_number(BlockNumberOrTag::Number(closes_at), false)
        .await?
        .ok_or("the block that closed the epoch")?;
    let stored = node
        .chain()
        .block_receipts(closes_at)?
        .ok_or("its receipts")?;
    let system = stored.system_logs.len();
    assert!(system > 0, "an epoch close emits events");
    let logs = client
        .logs(Filter::new().at_block_hash(block.header.hash))
        .await?;
    let indexes: Vec<Option<u64>> = logs.iter().map(|log| log.log_index).collect();
    let expected: Vec<Option<u64>> = (0..logs.len() as u64).map(Some).collect();
    assert_eq!(indexes, expected, "log indexes count through the block");
    let header = node.chain().block(closes_at)?.ok_or("the block")?.header;
    let system_hash = cairn_rpc::eth::system_calls_hash(&header);
    for (position, log) in logs.iter().enumerate() {
        assert_eq!(log.transaction_hash == Some(system_hash), position < system);
        assert_eq!(log.block_hash, Some(block.header.hash));
        // The block's bloom shows every log, so a client that scans blooms finds them too.
        assert!(
            block
                .header
                .logs_bloom
                .contains_raw_log(log.address(), log.topics())
        );
    }
    assert!(
        logs[..system]
            .iter()
            .all(|log| log.transaction_index == Some(0))
    );

    let by_event = client
        .logs(
            Filter::new()
                .from_block(0)
                .address(cairn_reward_contracts::REWARD_POOL)
                .event_signature(EpochClosed::SIGNATURE_HASH),
        )
        .await?;
    let first = by_event
        .first()
        .ok_or("the first epoch's close is logged")?;
    assert_eq!(first.block_number, Some(closes_at));
    assert_eq!(EpochClosed::decode_log(&first.inner)?.epoch, 0);

    // Nothing pretends the system calls were a transaction.
    assert!(client.transaction_by_hash(system_hash).await?.is_none());
    assert!(
        EthApiClient::transaction_receipt(&client, system_hash)
            .await?
            .is_none()
    );
    Ok(())
}

/// A transaction that logs 10,001 times fills one block with more logs than one answer may
/// hold: `eth_getBlockReceipts` and `eth_getLogs` refuse it with a way out, before building
/// an answer no client could receive.
#[tokio::test(flavor = "multi_thread")]
async fn attack_a_block_of_too_many_logs_is_refused_whole() -> TestResult {
    let (_dir, _node, client) = in_process_dev_node(50).await?;
    let genesis = Genesis::dev();
    let sender = test_mnemonic_account(1)?;
    // Init code: LOG0 of nothing, 10,001 times, then STOP (about 4.2M gas).
    let log_10_001_times = vec![
        0x61, 0x27, 0x11, // PUSH2 10001
        0x5b, // loop: JUMPDEST
        0x80, 0x15, 0x60, 0x15, 0x57, // DUP1 ISZERO PUSH1 end JUMPI
        0x60, 0x00, 0x60, 0x00, 0xa0, // LOG0(0, 0)
        0x60, 0x01, 0x90, 0x03, // counter - 1
        0x60, 0x03, 0x56, // JUMP loop
        0x5b, 0x00, // end: JUMPDEST STOP
    ];
    let flood = TxBody {
        chain_id: genesis.chain_id,
        nonce: 0,
        gas_limit: 6_000_000,
        max_fee_per_gas: 2 * u128::from(genesis.base_fee_per_gas),
        max_priority_fee_per_gas: 1,
        to: None,
        value: U256::ZERO,
        input: log_10_001_times.into(),
    }
    .sign_ethereum(&sender)?;
    let receipt = receipt_of(&client, send(&client, &flood).await?).await?;
    assert!(receipt.status());
    assert_eq!(receipt.inner.logs().len(), 10_001);
    let height = receipt.block_number.ok_or("a block number")?;
    let error = client
        .block_receipts(BlockId::Number(BlockNumberOrTag::Number(height)))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("more than 10000") && error.contains("eth_getLogs"),
        "{error}"
    );
    let block_hash = receipt.block_hash.ok_or("a block hash")?;
    let error = client
        .logs(Filter::new().at_block_hash(block_hash))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("more than 10000 logs match"), "{error}");
    Ok(())
}
