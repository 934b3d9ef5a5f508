// Per-subnet stake reads by polkadot-js, to check btcli metagraph --json on a dynamic-TAO runtime (spec 218 in chopsticks).
// Usage: node stake-reads.mjs ws://127.0.0.1:PORT NETUID HOTKEY_SS58...
import { ApiPromise, WsProvider } from '@polkadot/api';
const [url, netuid, ...hots] = process.argv.slice(2);
const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
const n = Number(netuid);
for (const h of hots) console.log(h, 'TotalHotkeyAlpha', (await api.query.subtensorModule.totalHotkeyAlpha(h, n)).toString());
const w = await api.query.subtensorModule.weights(n, 0); console.log('Weights(n,0)', w.toString());
const lu = await api.query.subtensorModule.lastUpdate(n); console.log('LastUpdate', lu.toString());
process.exit(0);
