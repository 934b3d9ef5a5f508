// A polkadot-js script as a stranger would bring it (issue 9 done-when, by hand): reads, head subscription,
// SubtensorModule calls signed by //Bob (burnedRegister on subnet 1, addStake), their events.
// Usage: node subtensor-calls.mjs ws://127.0.0.1:PORT   (our node with subnet 1; //Bob is funded at genesis)
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
const url = process.argv[2];
const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
const bob = keyring.addFromUri('//Bob'), hot = keyring.addFromUri('//Bob//stranger');
const out = { chain: (await api.rpc.system.chain()).toString(), spec: api.runtimeVersion.specVersion.toNumber() };
out.bobFree = (await api.query.system.account(bob.address)).data.free.toString();
out.networks = (await api.query.subtensorModule.totalNetworks()).toNumber();
out.keys1 = (await api.query.subtensorModule.keys.entries(1)).map(([k, v]) => [k.args[1].toNumber(), v.toString()]);
const heads = []; const unsub = await api.rpc.chain.subscribeNewHeads(h => heads.push(h.number.toNumber()));
function send(tx, signer) {
  return new Promise((resolve, reject) => tx.signAndSend(signer, ({ status, events, dispatchError }) => {
    if (dispatchError) reject(new Error(dispatchError.isModule ? JSON.stringify(api.registry.findMetaError(dispatchError.asModule)) : dispatchError.toString()));
    else if (status.isInBlock || status.isFinalized) resolve(events.map(e => `${e.event.section}.${e.event.method}`));
  }).catch(reject));
}
out.registerEvents = await send(api.tx.subtensorModule.burnedRegister(1, hot.address), bob);
out.uid = (await api.query.subtensorModule.uids(1, hot.address)).toString();
out.stakeEvents = await send(api.tx.subtensorModule.addStake(hot.address, 7_000_000_000n), bob);
out.totalHotkeyStake = (await api.query.subtensorModule.totalHotkeyStake(hot.address)).toString();
out.neuronsLite = (await api.rpc.state.call('NeuronInfoRuntimeApi_get_neurons_lite', '0x0100')).length;
unsub(); out.headsSeen = heads.length;
console.log(JSON.stringify(out));
process.exit(0);
