// polkadot-js anchor for benchmarks/Bittensor.Benchmarks/Crypto/CryptoBenchmarks.cs.
// Same operations and inputs; single thread; prints ns/op and ops/s per operation (median of 5 rounds).
// Usage: npm install && node crypto-bench.mjs
import {
  cryptoWaitReady, sr25519PairFromSeed, sr25519Sign, sr25519Verify,
  blake2AsU8a, xxhashAsU8a, encodeAddress, decodeAddress,
} from '@polkadot/util-crypto';
// util-crypto 14 signs/verifies sr25519 with @scure/sr25519 (pure JS); its wasm-crypto dependency still
// ships schnorrkel compiled to wasm, measured as a second, stronger anchor (Wasm* rows).
import * as wasm from '@polkadot/wasm-crypto';

await cryptoWaitReady();

const seed = Uint8Array.from(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'));
const message = Uint8Array.from({ length: 128 }, (_, i) => i & 0xff);
const data1k = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) & 0xff);
const data32 = data1k.slice(0, 32);
const pair = sr25519PairFromSeed(seed);
const signature = sr25519Sign(message, pair);
const address = encodeAddress(pair.publicKey, 42);
if (!sr25519Verify(message, signature, pair.publicKey)) throw new Error('self-check failed');

const wpair = wasm.sr25519KeypairFromSeed(seed); // 96 bytes: secret (scalar·8 ‖ nonce) ‖ public
const wsecret = wpair.slice(0, 64);
const wpub = wpair.slice(64);
const wsig = wasm.sr25519Sign(wpub, wsecret, message);
if (!wasm.sr25519Verify(wsig, message, wpub) || !sr25519Verify(message, wsig, pair.publicKey)) throw new Error('wasm self-check failed');

let sink = 0;
const ops = {
  Sr25519Sign: () => { sink ^= sr25519Sign(message, pair)[0]; },
  Sr25519Verify: () => { sink ^= sr25519Verify(message, signature, pair.publicKey) ? 1 : 0; },
  Sr25519KeypairFromSeed: () => { sink ^= sr25519PairFromSeed(seed).publicKey[0]; },
  Blake2b256_32B: () => { sink ^= blake2AsU8a(data32, 256)[0]; },
  Blake2b256_1KiB: () => { sink ^= blake2AsU8a(data1k, 256)[0]; },
  Twox128_32B: () => { sink ^= xxhashAsU8a(data32, 128)[0]; },
  Twox128_1KiB: () => { sink ^= xxhashAsU8a(data1k, 128)[0]; },
  Ss58Encode: () => { sink ^= encodeAddress(pair.publicKey, 42).length; },
  Ss58Decode: () => { sink ^= decodeAddress(address)[0]; },
  WasmSr25519Sign: () => { sink ^= wasm.sr25519Sign(wpub, wsecret, message)[0]; },
  WasmSr25519Verify: () => { sink ^= wasm.sr25519Verify(wsig, message, wpub) ? 1 : 0; },
  WasmSr25519KeypairFromSeed: () => { sink ^= wasm.sr25519KeypairFromSeed(seed)[0]; },
};

function measure(fn, ms) {
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / n; // ns/op
}

const rows = [];
for (const [name, fn] of Object.entries(ops)) {
  measure(fn, 300); // warm-up (JIT, wasm tiering)
  const rounds = [];
  for (let r = 0; r < 5; r++) rounds.push(measure(fn, 400));
  rounds.sort((a, b) => a - b);
  const ns = rounds[2];
  rows.push({ op: name, ns_per_op: Math.round(ns), ops_per_s: Math.round(1e9 / ns) });
}
console.log(`node ${process.version}, @polkadot/util-crypto 14.0.3 (sr25519: @scure/sr25519 0.2.0 pure JS; hashes: @polkadot/wasm-crypto 7.5.4; Wasm* rows: schnorrkel in wasm-crypto), ${new Date().toISOString()}`);
console.table(rows);
console.log(JSON.stringify(rows));
if (sink === 0.5) console.log(sink);
