//! Cairn's `eth_*` answers against Ethereum's own specification: the execution-apis OpenRPC
//! document, vendored in `tests/openrpc/execution-apis.json` (`scripts/vendor-execution-apis`).
//! Every method of the list that the specification defines is called in the states a
//! client meets (found and not found; transactions of each Ethereum type and a Cairn one; a
//! contract creation; a call that logs; the epoch machinery's events), and each answer must
//! validate against the method's result schema. `net_listening` and `web3_clientVersion` are
//! not in the document; the client tests cover them.

use std::collections::BTreeSet;
use std::time::Duration;

use alloy_consensus::{TxEip2930, TxLegacy};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use cairn_chain::genesis::{Genesis, dev_account, test_mnemonic_account};
use cairn_primitives::{Address, B256, Bytes, Canonical, Transaction, TxBody, U256};
use cairn_rpc::CairnApiClient;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::HttpClient;
use jsonrpsee::rpc_params;
use serde_json::{Value, json};

use crate::support::{dev_transfer, eventually, in_process_dev_node, logging_contract};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The methods Cairn serves that the specification defines: issue 18's list and the block
/// readers clients reach for beside them.
const SPECIFIED: [&str; 25] = [
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_estimateGas",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_feeHistory",
    "eth_sendRawTransaction",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getLogs",
    "eth_getBlockTransactionCountByNumber",
    "eth_syncing",
    "eth_accounts",
    "net_version",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getBlockReceipts",
];

/// The vendored specification, and which of its methods a test has checked.
struct Spec {
    document: Value,
    checked: BTreeSet<String>,
}

impl Spec {
    fn load() -> Result<Self, Box<dyn std::error::Error>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/openrpc/execution-apis.json"
        );
        let document = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        Ok(Self {
            document,
            checked: BTreeSet::new(),
        })
    }

    /// The result schema of `method`, with the document's shared schemas beside it so that its
    /// `#/components/schemas/...` references resolve.
    fn result_schema(&self, method: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let methods = self.document["methods"]
            .as_array()
            .ok_or("the document lists methods")?;
        let found = methods
            .iter()
            .find(|m| m["name"] == method)
            .ok_or_else(|| format!("{method} is not in the specification"))?;
        let mut schema = found["result"]["schema"].clone();
        let object = schema
            .as_object_mut()
            .ok_or_else(|| format!("{method}'s result schema is an object"))?;
        object.insert("components".into(), self.document["components"].clone());
        Ok(schema)
    }

    /// Calls `method` and checks its answer against the specification.
    async fn call(
        &mut self,
        client: &HttpClient,
        method: &str,
        params: ArrayParams,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let answer: Value = client.request(method, params).await?;
        let schema = self.result_schema(method)?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("{method}'s result schema does not compile: {e}"))?;
        let refusals: Vec<String> = validator
            .iter_errors(&answer)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect();
        if !refusals.is_empty() {
            return Err(format!(
                "{method} answered {answer}, which the specification refuses: {}",
                refusals.join("; ")
            )
            .into());
        }
        self.checked.insert(method.to_string());
        Ok(answer)
    }
}

/// The receipt of `hash` once it is included, checked against the specification.
async fn receipt(
    spec: &mut Spec,
    client: &HttpClient,
    hash: B256,
) -> Result<Value, Box<dyn std::error::Error>> {
    let included = eventually(Duration::from_secs(30), || async {
        let answer: Value = client
            .request("eth_getTransactionReceipt", rpc_params![hash])
            .await
            .ok()?;
        (!answer.is_null()).then_some(())
    })
    .await;
    included?;
    spec.call(client, "eth_getTransactionReceipt", rpc_params![hash])
        .await
}

/// The specification does not just accept anything: a wrong shape is refused.
#[test]
fn the_vendored_specification_refuses_wrong_shapes() -> TestResult {
    let spec = Spec::load()?;
    let validate = |method: &str, answer: Value| -> Result<bool, Box<dyn std::error::Error>> {
        let schema = spec.result_schema(method)?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        Ok(validator.is_valid(&answer))
    };
    assert!(validate("eth_chainId", json!("0x7a69"))?);
    assert!(!validate("eth_chainId", json!(31337))?, "a number, not hex");
    assert!(
        !validate("eth_chainId", json!("0x007a69"))?,
        "leading zeros"
    );
    assert!(!validate("eth_getCode", json!("0xABCD"))?, "upper-case hex");
    let log = json!({
        "address": "0x0000000000000000000000000000000000000001",
        "topics": [],
        "data": "0x",
        "transactionHash": format!("{}", B256::ZERO),
        "logIndex": "0x0",
    });
    assert!(validate("eth_getLogs", json!([log.clone()]))?);
    let mut unknown_field = log.clone();
    unknown_field["extra"] = json!(1);
    assert!(!validate("eth_getLogs", json!([unknown_field]))?);
    let mut no_hash = log;
    no_hash
        .as_object_mut()
        .ok_or("an object")?
        .remove("transactionHash");
    assert!(!validate("eth_getLogs", json!([no_hash]))?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn eth_answers_match_the_execution_apis_specification() -> TestResult {
    let mut spec = Spec::load()?;
    let (_dir, _node, client) = in_process_dev_node(20).await?;
    let genesis = Genesis::dev();
    let alice = test_mnemonic_account(0)?;
    let bob = Address::repeat_byte(0x0b);
    let base_fee = u128::from(genesis.base_fee_per_gas);
    let c = &client;

    for method in [
        "eth_chainId",
        "eth_blockNumber",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_syncing",
        "eth_accounts",
        "net_version",
    ] {
        spec.call(c, method, rpc_params![]).await?;
    }
    for block in ["latest", "pending"] {
        spec.call(c, "eth_getBalance", rpc_params![alice.address(), block])
            .await?;
        spec.call(
            c,
            "eth_getTransactionCount",
            rpc_params![alice.address(), block],
        )
        .await?;
    }
    let staking = cairn_reward_contracts::STAKING;
    spec.call(c, "eth_getCode", rpc_params![staking, "latest"])
        .await?;
    spec.call(c, "eth_getCode", rpc_params![bob, "latest"])
        .await?;
    spec.call(c, "eth_getStorageAt", rpc_params![staking, "0x0", "latest"])
        .await?;
    spec.call(
        c,
        "eth_feeHistory",
        rpc_params!["0x4", "latest", [25.0, 75.0]],
    )
    .await?;
    spec.call(c, "eth_feeHistory", rpc_params!["0x2", "latest"])
        .await?;

    // One transaction of each Ethereum type and a Cairn one, sent raw.
    let transfer = |nonce| dev_transfer(nonce, bob, 1_000);
    let sent = [
        transfer(0).sign_ethereum(&alice)?,
        Transaction::from(alice.sign(TxEip2930 {
            chain_id: genesis.chain_id,
            nonce: 1,
            gas_price: base_fee,
            gas_limit: 30_000,
            to: bob.into(),
            value: U256::from(1_000),
            access_list: AccessList(vec![AccessListItem {
                address: bob,
                storage_keys: vec![B256::ZERO],
            }]),
            input: Bytes::new(),
        })?),
        Transaction::from(alice.sign(TxLegacy {
            chain_id: Some(genesis.chain_id),
            nonce: 2,
            gas_price: base_fee,
            gas_limit: 21_000,
            to: bob.into(),
            value: U256::from(1_000),
            input: Bytes::new(),
        })?),
        transfer(0).sign(&dev_account(3)),
    ];
    let mut hashes = Vec::new();
    for tx in &sent {
        let hash = match tx.ethereum() {
            Some(ethereum) => {
                let raw = Bytes::copy_from_slice(ethereum.encoded());
                let hash = spec
                    .call(c, "eth_sendRawTransaction", rpc_params![raw])
                    .await?;
                serde_json::from_value(hash)?
            }
            // Cairn's own transactions go through Cairn's method, and show in eth's answers.
            None => c.send_raw_transaction(tx.encode().into()).await?,
        };
        hashes.push(hash);
    }

    // A contract that logs 42 under one topic when called: created, then called.
    let (_, init) = logging_contract(B256::repeat_byte(0x11));
    let create = TxBody {
        nonce: 3,
        gas_limit: 100_000,
        to: None,
        value: U256::ZERO,
        input: init.into(),
        ..transfer(3)
    }
    .sign_ethereum(&alice)?;
    let created = spec
        .call(
            c,
            "eth_sendRawTransaction",
            rpc_params![Bytes::copy_from_slice(
                create
                    .ethereum()
                    .ok_or("an Ethereum transaction")?
                    .encoded()
            )],
        )
        .await?;
    let creation = receipt(&mut spec, c, serde_json::from_value(created)?).await?;
    let logger: Address = serde_json::from_value(creation["contractAddress"].clone())?;
    let poke = TxBody {
        nonce: 4,
        gas_limit: 100_000,
        to: Some(logger),
        value: U256::ZERO,
        ..transfer(4)
    }
    .sign_ethereum(&alice)?;
    let poked = spec
        .call(
            c,
            "eth_sendRawTransaction",
            rpc_params![Bytes::copy_from_slice(
                poke.ethereum().ok_or("an Ethereum transaction")?.encoded()
            )],
        )
        .await?;
    let poked = receipt(&mut spec, c, serde_json::from_value(poked)?).await?;
    assert_eq!(poked["logs"].as_array().map(Vec::len), Some(1));

    for hash in &hashes {
        let receipt = receipt(&mut spec, c, *hash).await?;
        let found = spec
            .call(c, "eth_getTransactionByHash", rpc_params![hash])
            .await?;
        assert_eq!(found["hash"], json!(hash));
        let block_hash = receipt["blockHash"].clone();
        let number = receipt["blockNumber"].clone();
        for full in [false, true] {
            spec.call(c, "eth_getBlockByHash", rpc_params![&block_hash, full])
                .await?;
            spec.call(c, "eth_getBlockByNumber", rpc_params![&number, full])
                .await?;
        }
        spec.call(
            c,
            "eth_getBlockTransactionCountByNumber",
            rpc_params![&number],
        )
        .await?;
        spec.call(
            c,
            "eth_getBlockTransactionCountByHash",
            rpc_params![&block_hash],
        )
        .await?;
        let index = receipt["transactionIndex"].clone();
        let by_number = spec
            .call(
                c,
                "eth_getTransactionByBlockNumberAndIndex",
                rpc_params![&number, &index],
            )
            .await?;
        let by_block_hash = spec
            .call(
                c,
                "eth_getTransactionByBlockHashAndIndex",
                rpc_params![&block_hash, &index],
            )
            .await?;
        assert_eq!(by_number, found);
        assert_eq!(by_block_hash, found);
        let receipts = spec
            .call(c, "eth_getBlockReceipts", rpc_params![&number])
            .await?;
        let receipts = receipts.as_array().ok_or("an array of receipts")?;
        assert!(receipts.contains(&receipt));
    }

    let call = json!({ "to": logger, "data": "0x" });
    spec.call(c, "eth_call", rpc_params![&call, "latest"])
        .await?;
    let estimate = json!({ "from": alice.address(), "to": bob, "value": "0x1" });
    spec.call(c, "eth_estimateGas", rpc_params![&estimate])
        .await?;
    spec.call(c, "eth_estimateGas", rpc_params![&estimate, "latest"])
        .await?;

    // The epoch machinery's events, as eth_getLogs shows them, beside a transaction's.
    let closes_at = genesis.epoch_length;
    eventually(Duration::from_secs(30), || async {
        let head: Value = c.request("eth_blockNumber", rpc_params![]).await.ok()?;
        let head = u64::from_str_radix(head.as_str()?.trim_start_matches("0x"), 16).ok()?;
        (head >= closes_at).then_some(())
    })
    .await?;
    let everything = json!({ "fromBlock": "0x0", "toBlock": "latest" });
    let logs = spec
        .call(c, "eth_getLogs", rpc_params![&everything])
        .await?;
    let logs = logs.as_array().ok_or("an array of logs")?;
    assert!(logs.iter().any(|log| log["address"] == json!(logger)));
    assert!(
        logs.iter()
            .any(|log| log["address"] == json!(cairn_reward_contracts::REWARD_POOL))
    );
    let by_hash = json!({ "blockHash": poked["blockHash"] });
    spec.call(c, "eth_getLogs", rpc_params![&by_hash]).await?;

    // What is not found.
    let nothing = B256::repeat_byte(0xee);
    for method in ["eth_getTransactionByHash", "eth_getTransactionReceipt"] {
        let answer = spec.call(c, method, rpc_params![nothing]).await?;
        assert!(answer.is_null());
    }
    let far = "0xffffff";
    spec.call(c, "eth_getBlockByNumber", rpc_params![far, false])
        .await?;
    spec.call(c, "eth_getBlockByHash", rpc_params![nothing, true])
        .await?;
    spec.call(c, "eth_getBlockTransactionCountByNumber", rpc_params![far])
        .await?;
    spec.call(c, "eth_getBlockReceipts", rpc_params![far])
        .await?;
    spec.call(
        c,
        "eth_getTransactionByBlockNumberAndIndex",
        rpc_params!["latest", "0xffff"],
    )
    .await?;

    let unchecked: Vec<&str> = SPECIFIED
        .iter()
        .copied()
        .filter(|m| !spec.checked.contains(*m))
        .collect();
    assert!(unchecked.is_empty(), "never checked: {unchecked:?}");
    Ok(())
}
