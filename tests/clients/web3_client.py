"""A wallet's round trip through web3.py against a Cairn node: a transfer from a test-mnemonic
account, a contract deployed and transacted with, its event read back with eth_getLogs, a
call; then the storage minimum staked and a storage advert registered through the reward
contracts (their ABIs from reward-contracts/artifacts) from the same account, and the stake's
event read back. Usage: python web3_client.py <rpc url>. Prints one JSON line; exits non-zero
on any failure."""

import json
import pathlib
import sys

from eth_account import Account
from web3 import Web3

MNEMONIC = "test test test test test test test test test test test junk"
TOPIC = "0x" + "11" * 32
RUNTIME = "602a6000527f" + "11" * 32 + "60206000a100"
INIT = "0x602c600c600039602c6000f3" + RUNTIME
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "reward-contracts" / "artifacts"
STAKING = "0xca1e000000000000000000000000000000000001"
REGISTRY = "0xca1e000000000000000000000000000000000002"
ROLE_STORAGE = 2


def main(url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(url))
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(MNEMONIC, account_path="m/44'/60'/0'/0/5")
    chain_id = w3.eth.chain_id

    def send(tx: dict) -> dict:
        tx = {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": chain_id,
            "maxPriorityFeePerGas": w3.eth.max_priority_fee,
            "maxFeePerGas": 2 * w3.eth.gas_price,
            **tx,
        }
        tx["gas"] = w3.eth.estimate_gas(tx)
        signed = account.sign_transaction(tx)
        hash_ = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(hash_, timeout=20, poll_latency=0.05)
        assert receipt["status"] == 1, f"{tx}: status {receipt['status']}"
        return receipt

    beef = Web3.to_checksum_address("0x000000000000000000000000000000000000beef")
    before = w3.eth.get_balance(beef)
    transfer = send({"to": beef, "value": 4321})
    assert w3.eth.get_balance(beef) == before + 4321, "balance after the transfer"

    deploy = send({"data": INIT})
    contract = deploy["contractAddress"]
    assert w3.eth.get_code(contract).hex() == RUNTIME, "the deployed code"
    poke = send({"to": contract})
    assert len(poke["logs"]) == 1, "the call logs once"
    logs = w3.eth.get_logs({"address": contract, "fromBlock": 0, "topics": [TOPIC]})
    assert len(logs) == 1 and logs[0]["transactionHash"] == poke["transactionHash"], logs
    echo = w3.eth.call({"to": "0x0000000000000000000000000000000000000004", "data": "0x1234"})
    assert echo.hex() == "1234", echo
    block = w3.eth.get_block(poke["blockNumber"], full_transactions=True)
    assert any(t["hash"] == poke["transactionHash"] for t in block["transactions"])

    def reward_contract(name: str, address: str):
        abi = json.loads((ARTIFACTS / f"{name}.json").read_text())["abi"]
        return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    staking = reward_contract("Staking", STAKING)
    registry = reward_contract("ProviderRegistry", REGISTRY)
    minimum = staking.functions.minStorageStake().call()
    send({"to": staking.address, "value": minimum, "data": staking.encode_abi("stake")})
    advert = [1 << 30, 1000, 0, 0, 0, 0, b"", ""]
    send({"to": registry.address, "data": registry.encode_abi("advertise", args=advert)})
    assert staking.functions.hasRoles(account.address, ROLE_STORAGE).call(), "no storage role"
    assert registry.functions.advertOf(account.address).call()[0] == 1 << 30, "the advert"
    stakes = staking.events.Staked().get_logs(
        argument_filters={"staker": account.address}, from_block=0
    )
    assert len(stakes) == 1 and stakes[0]["args"]["amount"] == minimum, stakes
    print(
        json.dumps(
            {
                "chainId": chain_id,
                "transfer": transfer["transactionHash"].hex(),
                "contract": contract,
                "logs": len(logs),
                "storageProvider": account.address,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
