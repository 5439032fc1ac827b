"""Cairn against anvil: the same pre-signed Ethereum transfers, sent over HTTP JSON-RPC to
each node, timed until every one is included. Run through scripts/vs-anvil (which starts the
two nodes); this file only talks to the two RPC URLs it is given.

Both chains fund the public test mnemonic's accounts and use chain id 31337, so one set of
signed transactions is valid on both: first (untimed) the ten funded accounts fund SENDERS new
accounts; then (timed) every sender sends TXS_PER_SENDER transfers, nonces 0.., signed before
the clock starts, sent in batches of 100 over CONNECTIONS connections. Included means every
sender's latest nonce is TXS_PER_SENDER (polled in batches).
"""

import json
import sys
import threading
import time
import urllib.request

from eth_account import Account
from eth_utils import to_checksum_address

# The public test mnemonic's first ten keys (anvil's and cairn dev's funded accounts).
Account.enable_unaudited_hdwallet_features()
MNEMONIC = "test test test test test test test test test test test junk"
FUNDERS = [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)]
CHAIN_ID = 31337
BATCH = 100


def rpc(url, calls):
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    ).encode()
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answers = sorted(json.load(response), key=lambda a: a["id"])
    return answers


def one(url, method, params):
    answer = rpc(url, [(method, params)])[0]
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def sign(key, nonce, to, value, max_fee):
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": to,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": 1,
        "type": 2,
    }
    return "0x" + Account.sign_transaction(tx, key).raw_transaction.hex().removeprefix("0x")


def send_all(url, raw, connections):
    """Sends `raw` (lists of raw transactions, one list per sender, in nonce order) in batches
    over `connections` threads; returns the refusals."""
    refusals = []
    lock = threading.Lock()
    per_thread = [raw[i::connections] for i in range(connections)]

    def worker(lists):
        flat = [tx for txs in lists for tx in txs]
        for start in range(0, len(flat), BATCH):
            calls = [("eth_sendRawTransaction", [tx]) for tx in flat[start : start + BATCH]]
            for answer in rpc(url, calls):
                if "error" in answer:
                    with lock:
                        refusals.append(answer["error"].get("message", str(answer["error"])))

    threads = [threading.Thread(target=worker, args=(lists,)) for lists in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refusals


def wait_nonces(url, targets, limit_s):
    """Waits until every (address, nonce) in `targets` has that latest nonce; the seconds."""
    started = time.monotonic()
    pending = list(targets)
    while pending:
        if time.monotonic() - started > limit_s:
            raise RuntimeError(f"{len(pending)} accounts not done after {limit_s} s")
        still = []
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            answers = rpc(url, [("eth_getTransactionCount", [a, "latest"]) for a, _ in chunk])
            still += [(a, t) for (a, t), r in zip(chunk, answers) if int(r["result"], 16) < t]
        pending = still
        if pending:
            time.sleep(0.05)
    return time.monotonic() - started


def run(name, url, funding, transfers, senders, per_sender, connections):
    """Funds the senders (untimed), then sends every transfer and waits for all of them."""
    refused = send_all(url, funding, connections)
    if refused:
        raise RuntimeError(f"{name} refused funding: {refused[:3]}")
    wait_nonces(url, [(f.address, len(txs)) for f, txs in zip(FUNDERS, funding)], 300)
    started = time.monotonic()
    refused = send_all(url, transfers, connections)
    sent_s = time.monotonic() - started
    if refused:
        raise RuntimeError(f"{name} refused {len(refused)} transfers: {refused[:3]}")
    wait_nonces(url, [(s.address, per_sender) for s in senders], 600)
    total_s = time.monotonic() - started
    count = len(senders) * per_sender
    print(
        f"{name:>6}: {count} transfers sent in {sent_s:.2f} s, all included after "
        f"{total_s:.2f} s: {count / total_s:.0f} tx/s",
        file=sys.stderr,
    )
    return {
        "sendSeconds": round(sent_s, 2),
        "includedSeconds": round(total_s, 2),
        "txPerSec": round(count / total_s, 1),
    }


def main():
    # Cairn first: its figure stands even when anvil does not finish.
    urls = {"cairn": sys.argv[2], "anvil": sys.argv[1]}
    senders_n, per_sender, connections = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    # One fee cap valid on both: twice the higher gas price.
    max_fee = 2 * max(int(one(u, "eth_gasPrice", []), 16) for u in urls.values())
    senders = [Account.from_key(bytes.fromhex(f"{i + 1:064x}")) for i in range(senders_n)]
    def recipient(i):
        return to_checksum_address(f"0x{0xC0FFEE00 + i:040x}")

    # Funding: each of the ten funders pays its share of the senders (one transfer each).
    funding = [[] for _ in FUNDERS]
    for i, sender in enumerate(senders):
        f = i % len(FUNDERS)
        funding[f].append(sign(FUNDERS[f].key, len(funding[f]), sender.address, 10**18, max_fee))
    signed_started = time.monotonic()
    transfers = [
        [sign(s.key, n, recipient(i), 1, max_fee) for n in range(per_sender)]
        for i, s in enumerate(senders)
    ]
    signing_s = time.monotonic() - signed_started
    report = {
        "senders": senders_n,
        "transfersPerSender": per_sender,
        "transfers": senders_n * per_sender,
        "connections": connections,
        "signingSeconds": round(signing_s, 2),
    }
    for name, url in urls.items():
        try:
            report[name] = run(name, url, funding, transfers, senders, per_sender, connections)
        except (RuntimeError, OSError) as error:
            report[name] = {"error": str(error)}
            print(f"{name:>6}: did not finish: {error}", file=sys.stderr)
    if "txPerSec" in report["cairn"] and "txPerSec" in report["anvil"]:
        report["ratio"] = round(report["cairn"]["txPerSec"] / report["anvil"]["txPerSec"], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
