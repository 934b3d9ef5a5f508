// polkadot-js against the localnet node (issue 9 test 2): connect, read SubtensorModule storage and System.Account,
// submit balances.transferKeepAlive signed by //Alice, see it finalized and decode its events.
// Usage: node node-check.mjs ws://127.0.0.1:PORT     Prints one JSON line with what it saw; exit code 0 = all checks held.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';

const endpoint = process.argv[2];
if (!endpoint) { console.error('usage: node node-check.mjs ws://host:port'); process.exit(2); }
const fail = (msg) => { console.error('FAIL: ' + msg); process.exit(1); };
const guard = setTimeout(() => fail('no answer within 5 minutes'), 300_000);

const provider = new WsProvider(endpoint, false);
await provider.connect();
const api = await ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true });
const out = { chain: (await api.rpc.system.chain()).toString(), specVersion: api.runtimeVersion.specVersion.toNumber(), metadataVersion: api.runtimeMetadata.version };

const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');

// Storage through the decorated queries (metadata-driven on the client side).
const aliceAccount = await api.query.system.account(alice.address);
out.aliceFree = aliceAccount.data.free.toString();
out.totalNetworks = (await api.query.subtensorModule.totalNetworks()).toNumber();
out.subnetworkN1 = (await api.query.subtensorModule.subnetworkN(1)).toNumber();
out.tempo1 = (await api.query.subtensorModule.tempo(1)).toNumber();
out.networkMinLockCost = (await api.query.subtensorModule.networkMinLockCost()).toString();
out.number = (await api.query.system.number()).toNumber();
if (BigInt(out.aliceFree) <= 0n) fail('Alice has no balance');

// Head subscription through the decorated RPC (polkadot-js calls chain_subscribeNewHead, Substrate's alias).
out.headSeen = await new Promise((resolve, reject) => {
  api.rpc.chain.subscribeNewHeads((h) => resolve(h.number.toNumber())).then((unsub) => { out.unsubscribed = typeof unsub === 'function'; }).catch(reject);
});

const bobBefore = (await api.query.system.account(bob.address)).data.free.toBigInt();
const amount = 123_456_789n;
const result = await new Promise((resolve, reject) => {
  let inBlock = null;
  api.tx.balances.transferKeepAlive(bob.address, amount)
    .signAndSend(alice, (r) => {
      if (r.status.isInBlock) inBlock = r.status.asInBlock.toHex();
      if (r.status.isFinalized) resolve({ inBlock, finalized: r.status.asFinalized.toHex(), events: r.events, dispatchError: r.dispatchError });
      if (r.isError) reject(new Error('extrinsic status ' + r.status.type));
    })
    .catch(reject);
});
if (!result.finalized) fail('not finalized');
if (result.dispatchError) fail('dispatch error ' + result.dispatchError.toString());
out.inBlock = result.inBlock;
out.finalized = result.finalized;
out.events = result.events.map(({ phase, event }) => `${event.section}.${event.method}@${phase.isApplyExtrinsic ? phase.asApplyExtrinsic.toNumber() : phase.type}`);
const transfer = result.events.find(({ event }) => api.events.balances.Transfer.is(event));
if (!transfer) fail('no balances.Transfer event');
const [from, to, value] = transfer.event.data;
out.transfer = { from: from.toString(), to: to.toString(), amount: value.toString() };
if (out.transfer.from !== alice.address || out.transfer.to !== bob.address || BigInt(out.transfer.amount) !== amount) fail('Transfer event fields ' + JSON.stringify(out.transfer));
if (!result.events.some(({ event }) => api.events.system.ExtrinsicSuccess.is(event))) fail('no system.ExtrinsicSuccess');
const bobAfter = (await api.query.system.account(bob.address)).data.free.toBigInt();
out.bobGained = (bobAfter - bobBefore).toString();
if (bobAfter - bobBefore !== amount) fail(`Bob gained ${bobAfter - bobBefore}, expected ${amount}`);
// Reading at the finalized block with api.at (state by block hash). On the localnet a block is final at once, so
// polkadot-js (switchMap over the status stream) may skip the inBlock status and report only finalized.
const at = await api.at(result.finalized);
out.eventsAtBlock = (await at.query.system.events()).length;
console.log(JSON.stringify(out));
clearTimeout(guard);
await api.disconnect();
process.exit(0);
