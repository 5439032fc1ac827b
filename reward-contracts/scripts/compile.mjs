// Compiles contracts/*.sol with the pinned solc (package.json) and writes one artifact per
// deployable contract to artifacts/<Name>.json: { contractName, abi, bytecode, deployedBytecode }.
// The artifacts are committed, so building Cairn never needs Node; CI runs this script and fails
// if the output differs from what is committed.
import { createRequire } from "node:module";
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const contractsDir = join(root, "contracts");
const artifactsDir = join(root, "artifacts");
const DEPLOYED = ["Staking", "ProviderRegistry", "StorageMarket", "ComputeMarket", "RewardPool", "BenchToken"];

const sources = {};
for (const file of readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: readFileSync(join(contractsDir, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "prague",
    viaIR: true,
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
for (const message of output.errors ?? []) console.error(message.formattedMessage);
if (errors.length > 0) process.exit(1);

mkdirSync(artifactsDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, compiled] of Object.entries(contracts)) {
    if (!DEPLOYED.includes(name)) continue;
    const artifact = {
      contractName: name,
      source: `contracts/${file}`,
      compiler: `solc ${solc.version()}`,
      abi: compiled.abi,
      bytecode: `0x${compiled.evm.bytecode.object}`,
      deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
    };
    writeFileSync(join(artifactsDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    console.log(`${name}: ${compiled.evm.deployedBytecode.object.length / 2} bytes`);
  }
}
