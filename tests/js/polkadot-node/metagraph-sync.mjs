// polkadot-js side of the metagraph-sync benchmark (benchmarks/Bittensor.Benchmarks/Chain/MetagraphSync.cs,
// benchmarks/results/node.md). One sync = what our client's GetNeuronsAsync does: the best head's hash,
// NeuronInfoRuntimeApi_get_neurons(1) at it decoded into NeuronInfo structs (the legacy Vec<u8>-wrapped layout,
// declared below as the bittensor SDK declares it), and every neuron's BlockAtRegistration at the same block
// (query.multi → state_queryStorageAt).
// Usage: node metagraph-sync.mjs ws://127.0.0.1:PORT ROUNDS   Prints one JSON line per sync after one warm-up.
import { ApiPromise, WsProvider } from '@polkadot/api';

const [endpoint, roundsText] = process.argv.slice(2);
if (!endpoint) { console.error('usage: node metagraph-sync.mjs ws://host:port rounds'); process.exit(2); }
const rounds = Number(roundsText ?? 5);
const guard = setTimeout(() => { console.error('no answer within 10 minutes'); process.exit(1); }, 600_000);

const types = {
  BtAxonInfo: { block: 'u64', version: 'u32', ip: 'u128', port: 'u16', ip_type: 'u8', protocol: 'u8', placeholder1: 'u8', placeholder2: 'u8' },
  BtPrometheusInfo: { block: 'u64', version: 'u32', ip: 'u128', port: 'u16', ip_type: 'u8' },
  BtNeuronInfo: {
    hotkey: 'AccountId', coldkey: 'AccountId', uid: 'Compact<u16>', netuid: 'Compact<u16>', active: 'bool',
    axon_info: 'BtAxonInfo', prometheus_info: 'BtPrometheusInfo', stake: 'Vec<(AccountId, Compact<u64>)>',
    rank: 'Compact<u16>', emission: 'Compact<u64>', incentive: 'Compact<u16>', consensus: 'Compact<u16>',
    trust: 'Compact<u16>', validator_trust: 'Compact<u16>', dividends: 'Compact<u16>', last_update: 'Compact<u64>',
    validator_permit: 'bool', weights: 'Vec<(Compact<u16>, Compact<u16>)>', bonds: 'Vec<(Compact<u16>, Compact<u16>)>',
    pruning_score: 'Compact<u16>',
  },
};

const t0 = performance.now();
const provider = new WsProvider(endpoint, false);
await provider.connect();
const api = await ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true, types });
console.log(JSON.stringify({ connectMs: performance.now() - t0 }));

const netuid = 1;
const arg = '0x' + Buffer.from(api.createType('u16', netuid).toU8a()).toString('hex'); // SCALE (LE); toHex() is big-endian, a Uint8Array would be read as length-prefixed
for (let i = 0; i <= rounds; i++) {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const header = await api.rpc.chain.getHeader();
  const hash = await api.rpc.chain.getBlockHash(header.number.toNumber());
  const raw = await api.rpc.state.call('NeuronInfoRuntimeApi_get_neurons', arg, hash);
  const inner = api.createType('Bytes', raw.toU8a(true));
  const neurons = api.createType('Vec<BtNeuronInfo>', inner.toU8a(true));
  const at = await api.at(hash);
  const regs = await at.query.subtensorModule.blockAtRegistration.multi(neurons.map((n) => [netuid, n.uid.unwrap()]));
  const wallMs = performance.now() - w0;
  const c = process.cpuUsage(c0);
  let stake = 0n;
  let reg = 0n;
  for (const n of neurons) for (const [, s] of n.stake) stake += s.unwrap().toBigInt();
  for (const r of regs) reg += r.toBigInt();
  if (i === 0) continue; // warm-up
  console.log(JSON.stringify({ wallMs, cpuMs: (c.user + c.system) / 1000, check: `${neurons.length} neurons, stake ${stake}, reg ${reg}` }));
}
clearTimeout(guard);
await api.disconnect();
process.exit(0);
