// A wallet's round trip through viem against a Cairn node: a transfer from a test-mnemonic
// account, a contract deployed and transacted with, its event read back with eth_getLogs and
// heard over a WebSocket subscription (eth_subscribe logs), new blocks heard (newHeads), a
// call; then the storage minimum staked and a storage advert registered through the reward
// contracts (their ABIs from reward-contracts/artifacts) from the same account, and the stake's
// event read back. Usage: node viem.mjs <rpc url>. Prints one JSON line; exits non-zero on any
// failure.
import { readFileSync } from 'node:fs';
import { createPublicClient, createWalletClient, defineChain, http, webSocket } from 'viem';
import { mnemonicToAccount } from 'viem/accounts';

const url = process.argv[2];
if (!url) throw new Error('usage: node viem.mjs <rpc url>');
const transport = http(url);
const id = await createPublicClient({ transport }).getChainId();
const chain = defineChain({
  id,
  name: 'cairn',
  nativeCurrency: { name: 'CRN', symbol: 'CRN', decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const client = createPublicClient({ chain, transport, pollingInterval: 50 });
const account = mnemonicToAccount('test test test test test test test test test test test junk', {
  addressIndex: 4,
});
const wallet = createWalletClient({ account, chain, transport });
const expect = (condition, what) => {
  if (!condition) throw new Error(what);
};
const receiptOf = (hash) => client.waitForTransactionReceipt({ hash, timeout: 20_000 });

const beef = '0x000000000000000000000000000000000000bEEF';
const before = await client.getBalance({ address: beef });
const transfer = await receiptOf(await wallet.sendTransaction({ to: beef, value: 1234n }));
expect(transfer.status === 'success', `transfer: ${transfer.status}`);
expect((await client.getBalance({ address: beef })) === before + 1234n, 'balance after transfer');

// Logs 42 under topic 0x11…11 when called (the runtime is 44 bytes after 12 of init code).
const topic = '0x' + '11'.repeat(32);
const runtime = '602a6000527f' + '11'.repeat(32) + '60206000a100';
const deploy = await receiptOf(
  await wallet.deployContract({ abi: [], bytecode: `0x602c600c600039602c6000f3${runtime}` }),
);
expect(deploy.status === 'success' && deploy.contractAddress, 'deployment');
expect((await client.getCode({ address: deploy.contractAddress })) === `0x${runtime}`, 'code');
// Over WebSocket (the same port): subscribe to new heads and to the contract's logs, then poke.
const live = createPublicClient({ chain, transport: webSocket(url.replace(/^http/, 'ws')) });
const within = (ms, what, start) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    start((value) => {
      clearTimeout(timer);
      resolve(value);
    }, reject);
  });
const heard = within(20_000, 'logs subscription', (resolve, reject) => {
  const stop = live.watchEvent({
    address: deploy.contractAddress,
    onLogs: (logs) => {
      stop();
      resolve(logs);
    },
    onError: reject,
  });
});
const head = await within(20_000, 'newHeads subscription', (resolve, reject) => {
  const stop = live.watchBlocks({
    onBlock: (block) => {
      stop();
      resolve(block);
    },
    onError: reject,
  });
});
expect(head.number > 0n && head.hash, 'a new head');
const poke = await receiptOf(await wallet.sendTransaction({ to: deploy.contractAddress }));
const heardLogs = await heard;
expect(heardLogs.length === 1 && heardLogs[0].transactionHash === poke.transactionHash, 'heard');
expect(poke.status === 'success' && poke.logs.length === 1, 'the call logs once');
const logs = await client.getLogs({ address: deploy.contractAddress, fromBlock: 0n });
expect(logs.length === 1 && logs[0].topics[0] === topic, `getLogs: ${logs.length}`);
expect(logs[0].transactionHash === poke.transactionHash, 'the log names its transaction');
const echo = await client.call({ to: '0x0000000000000000000000000000000000000004', data: '0x1234' });
expect(echo.data === '0x1234', `call: ${echo.data}`);
const block = await client.getBlock({ blockNumber: poke.blockNumber, includeTransactions: true });
expect(block.transactions.some((t) => t.hash === poke.transactionHash), 'the block holds it');

const abiOf = (name) =>
  JSON.parse(readFileSync(new URL(`../../reward-contracts/artifacts/${name}.json`, import.meta.url)))
    .abi;
const staking = { address: '0xca1e000000000000000000000000000000000001', abi: abiOf('Staking') };
const registry = {
  address: '0xca1e000000000000000000000000000000000002',
  abi: abiOf('ProviderRegistry'),
};
const minimum = await client.readContract({ ...staking, functionName: 'minStorageStake' });
const staked = await receiptOf(
  await wallet.writeContract({ ...staking, functionName: 'stake', value: minimum }),
);
expect(staked.status === 'success', `stake: ${staked.status}`);
const advertised = await receiptOf(
  await wallet.writeContract({
    ...registry,
    functionName: 'advertise',
    args: [1n << 30n, 1000n, 0, 0, 0n, 0n, '0x', ''],
  }),
);
expect(advertised.status === 'success', `advertise: ${advertised.status}`);
const storageRole = 2;
expect(
  await client.readContract({
    ...staking,
    functionName: 'hasRoles',
    args: [account.address, storageRole],
  }),
  'staked and advertised storage, but no storage role',
);
const stakes = await client.getContractEvents({
  ...staking,
  eventName: 'Staked',
  args: { staker: account.address },
  fromBlock: 0n,
});
expect(stakes.length === 1 && stakes[0].args.amount === minimum, `Staked events: ${stakes.length}`);

console.log(
  JSON.stringify({
    chainId: id,
    transfer: transfer.transactionHash,
    contract: deploy.contractAddress,
    logs: logs.length,
    heard: heardLogs.length,
    storageProvider: account.address,
  }),
);
// The WebSocket stays open otherwise.
process.exit(0);
