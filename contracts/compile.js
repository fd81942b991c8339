#!/usr/bin/env node
// Compile contracts/CheckpointAnchor.sol with the pinned solc-js (package.json) into
// vault/anchoring/CheckpointAnchor.json: ABI, creation and runtime bytecode.
//
// Deterministic: fixed optimizer settings and EVM version, no metadata hash in the
// bytecode, keys written in a fixed order. `node contracts/compile.js --stdout`
// prints the artifact instead of writing it (the test suite compares the two).
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..");
const SOURCE = "contracts/CheckpointAnchor.sol";
const NAME = "CheckpointAnchor";
const OUT = path.join(ROOT, "vault", "anchoring", "CheckpointAnchor.json");

const SETTINGS = {
  // Paris (the Merge) is the newest EVM that public Ethereum, Besu, GoQuorum and
  // ganache all run: no PUSH0 or MCOPY in the bytecode.
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none", appendCBOR: false },
  outputSelection: { "*": { [NAME]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  }
  return value;
}

const source = fs.readFileSync(path.join(ROOT, SOURCE), "utf8");
const input = { language: "Solidity", sources: { [SOURCE]: { content: source } }, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage);
if (errors.length) process.exit(1);

const contract = output.contracts[SOURCE][NAME];
const { outputSelection, ...settings } = SETTINGS;
const artifact = {
  contractName: NAME,
  source: SOURCE,
  sourceSha256: crypto.createHash("sha256").update(source, "utf8").digest("hex"),
  compiler: { name: "solc-js", version: solc.version(), settings: sortKeys(settings) },
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
  deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + "\n";
if (process.argv.includes("--stdout")) {
  process.stdout.write(text);
} else {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, text);
  process.stderr.write(`wrote ${path.relative(ROOT, OUT)} (${solc.version()})\n`);
}
