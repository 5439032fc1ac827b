#!/usr/bin/env bash
# A wallet's round trip through Foundry's cast against a Cairn node: the chain id, a transfer
# from a test-mnemonic account (EIP-1559 and legacy), its receipt, a contract deployed and
# transacted with, its event read back with `cast logs`, a call; then the storage minimum
# staked and a storage advert registered through the reward contracts from the same account.
# Usage: cast.sh <rpc url>. Prints one JSON line; exits non-zero on any failure.
set -euo pipefail
url="$1"
cast="$(dirname "$0")/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
# Test account 6 of the test mnemonic, as anvil derives it.
key=$("$cast" wallet private-key "test test test test test test test test test test test junk" 6)
beef=0x000000000000000000000000000000000000bEEF
fail() { echo "cast.sh: $*" >&2; exit 1; }
# A field of a JSON document on standard input (a Python subscript: '["status"]').
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

chain_id=$("$cast" chain-id --rpc-url "$url")
[ "$chain_id" = 31337 ] || fail "chain id $chain_id"
before=$("$cast" balance --rpc-url "$url" "$beef")
transfer=$("$cast" send --json --rpc-url "$url" --private-key "$key" "$beef" --value 777)
hash=$(field '["transactionHash"]' <<<"$transfer")
status=$("$cast" receipt --json --rpc-url "$url" "$hash" | field '["status"]')
[ "$status" = 0x1 ] || fail "receipt of $hash: status $status"
legacy=$("$cast" send --json --legacy --rpc-url "$url" --private-key "$key" "$beef" --value 1)
[ "$(field '["status"]' <<<"$legacy")" = 0x1 ] || fail "legacy transfer: $legacy"
after=$("$cast" balance --rpc-url "$url" "$beef")
[ "$after" = $((before + 778)) ] || fail "balance $before -> $after"

topic=0x$(printf '11%.0s' {1..32})
runtime=602a6000527f${topic#0x}60206000a100
deploy=$("$cast" send --json --rpc-url "$url" --private-key "$key" --create "0x602c600c600039602c6000f3$runtime")
contract=$(field '["contractAddress"]' <<<"$deploy")
[ "$("$cast" code --rpc-url "$url" "$contract")" = "0x$runtime" ] || fail "code at $contract"
poke=$("$cast" send --json --rpc-url "$url" --private-key "$key" "$contract")
[ "$(field '["logs"].__len__()' <<<"$poke")" = 1 ] || fail "the call should log once: $poke"
logs=$("$cast" logs --json --rpc-url "$url" --from-block 0 --address "$contract" "$topic")
[ "$(field '.__len__()' <<<"$logs")" = 1 ] || fail "cast logs: $logs"
[ "$(field '[0]["transactionHash"]' <<<"$logs")" = "$(field '["transactionHash"]' <<<"$poke")" ] \
  || fail "the log names another transaction"
echo=$("$cast" call --rpc-url "$url" 0x0000000000000000000000000000000000000004 0x1234)
[ "$echo" = 0x1234 ] || fail "call: $echo"

staking=0xca1e000000000000000000000000000000000001
registry=0xca1e000000000000000000000000000000000002
address=$("$cast" wallet address --private-key "$key")
# cast prints "100000000000000000000 [1e20]": the first word is the number.
minimum=$("$cast" call --rpc-url "$url" "$staking" 'minStorageStake()(uint256)')
minimum=${minimum%% *}
staked=$("$cast" send --json --rpc-url "$url" --private-key "$key" "$staking" 'stake()' --value "$minimum")
[ "$(field '["status"]' <<<"$staked")" = 0x1 ] || fail "stake: $staked"
advertised=$("$cast" send --json --rpc-url "$url" --private-key "$key" "$registry" \
  'advertise(uint64,uint128,uint32,uint32,uint64,uint128,bytes,string)' 1073741824 1000 0 0 0 0 0x '')
[ "$(field '["status"]' <<<"$advertised")" = 0x1 ] || fail "advertise: $advertised"
[ "$("$cast" call --rpc-url "$url" "$staking" 'hasRoles(address,uint8)(bool)' "$address" 2)" = true ] \
  || fail "$address staked and advertised storage but has no storage role"
stakes=$("$cast" logs --json --rpc-url "$url" --from-block 0 --address "$staking" \
  'Staked(address indexed staker, uint256 amount, uint256 bonded)' "$address")
[ "$(field '.__len__()' <<<"$stakes")" = 1 ] || fail "cast logs Staked: $stakes"
printf '{"chainId":%s,"transfer":"%s","contract":"%s","logs":1,"storageProvider":"%s"}\n' \
  "$chain_id" "$hash" "$contract" "$address"
