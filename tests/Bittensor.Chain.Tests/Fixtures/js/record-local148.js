// Records tests/Bittensor.Chain.Tests/Fixtures/local-148.json from chopsticks running Tensora-org/subtensor_local
// specs/local.json at 79187eb1 (spec 148, the localnet's rules). Not run by CI. See Fixtures/README.md for the exact commands.
const { ApiPromise, WsProvider } = require('@polkadot/api');
const { Keyring } = require('@polkadot/keyring');
const fs = require('fs');

const endpoint = process.argv[2] || 'ws://127.0.0.1:9977';
const outFile = process.argv[3] || 'local-148.json';

async function main() {
  const provider = new WsProvider(endpoint);
  const api = await ApiPromise.create({ provider, noInitWarn: true });
  const send = (m, p) => provider.send(m, p);
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const out = { endpoint_note: 'chopsticks 1.5.1 --genesis local.json (Tensora-org/subtensor_local specs/local.json at 79187eb1)' };

  const rv = await send('state_getRuntimeVersion', []);
  out.runtime_version = { specName: rv.specName, specVersion: rv.specVersion, transactionVersion: rv.transactionVersion };
  out.genesis_hash = await send('chain_getBlockHash', [0]);
  out.metadata_v14 = await send('state_getMetadata', []);
  out.metadata_versions = await send('state_call', ['Metadata_metadata_versions', '0x']).catch((e) => `error: ${e.message}`);
  out.apis = rv.apis;

  // Storage keys: every map item whose key parts are simple types, with fixed arguments.
  const lookup = api.registry.lookup;
  const argFor = (id) => {
    const t = lookup.getSiType(id);
    const path = t.path.map((p) => p.toString()).join('::');
    if (t.def.isPrimitive) {
      const p = t.def.asPrimitive.type.toString();
      const v = { U8: '7', U16: '1', U32: '300', U64: '70000', U128: '123456789012345678901234567890', Bool: true }[p];
      return v === undefined ? undefined : { json: v, js: v };
    }
    if (path.endsWith('AccountId32')) return { json: alice.address, js: alice.address };
    if (path.endsWith('H256')) return { json: '0x' + '11'.repeat(32), js: '0x' + '11'.repeat(32) };
    if (path.endsWith('H160')) return { json: '0x' + '22'.repeat(20), js: '0x' + '22'.repeat(20) };
    return undefined;
  };
  out.storage_keys = [];
  for (const section of Object.keys(api.query)) {
    for (const method of Object.keys(api.query[section])) {
      const q = api.query[section][method];
      const meta = q.creator.meta;
      if (section === 'substrate' || method === 'palletVersion') continue; // polkadot-js additions, not in metadata
      if (!meta.type.isMap) {
        out.storage_keys.push({ pallet: q.creator.prefix, item: meta.name.toString(), args: [], hashers: [], key: q.key() });
        continue;
      }
      const map = meta.type.asMap;
      const hashers = map.hashers.map((h) => h.type.toString());
      let ids = [map.key.toNumber()];
      if (hashers.length > 1) ids = lookup.getSiType(map.key).def.asTuple.map((x) => x.toNumber());
      const args = ids.map(argFor);
      if (args.some((a) => a === undefined)) continue;
      out.storage_keys.push({ pallet: q.creator.prefix, item: meta.name.toString(), args: args.map((a) => a.json), hashers, key: q.key(...args.map((a) => a.js)) });
    }
  }

  // Fund Alice, then one successful transfer and one set_weights that fails with a module error, in one block.
  await send('dev_setStorage', [{ System: { Account: [[[alice.address], { providers: 1, data: { free: '1000000000000' } }]] } }]);
  await send('dev_newBlock', [{ count: 1 }]);
  const transfer = api.tx.balances.transferKeepAlive(bob.address, 123456789);
  const weights = api.tx.subtensorModule.setWeights(3, [0], [65535], 0);
  out.calls = [
    { pallet: 'Balances', call: 'transfer_keep_alive', hex: transfer.method.toHex() },
    { pallet: 'SubtensorModule', call: 'set_weights', hex: weights.method.toHex() },
    { pallet: 'SubtensorModule', call: 'add_stake', hex: api.tx.subtensorModule.addStake(bob.address, 1000000000).method.toHex() },
    { pallet: 'SubtensorModule', call: 'burned_register', hex: api.tx.subtensorModule.burnedRegister(3, bob.address).method.toHex() },
    { pallet: 'SubtensorModule', call: 'serve_axon', hex: api.tx.subtensorModule.serveAxon(3, 101, 2130706433, 8091, 4, 0, 0, 0).method.toHex() },
    { pallet: 'SubtensorModule', call: 'register_network', hex: api.tx.subtensorModule.registerNetwork().method.toHex() },
  ];
  await transfer.signAndSend(alice, { nonce: 0 });
  await weights.signAndSend(alice, { nonce: 1 });
  const made = await send('dev_newBlock', [{ count: 1 }]);
  const head = await send('chain_getBlockHash', []);
  const eventsKey = api.query.system.events.key();
  out.events_block = head;
  out.events_raw = await send('state_getStorage', [eventsKey, head]);
  const events = await api.query.system.events.at(head);
  out.events_decoded = events.map((e) => {
    const r = { phase: e.phase.toString(), pallet: e.event.section, name: e.event.method };
    if (e.event.section === 'system' && e.event.method === 'ExtrinsicFailed') {
      const err = e.event.data[0];
      if (err.isModule) {
        const d = api.registry.findMetaError(err.asModule);
        r.module_error = `${d.section}.${d.name}`;
      }
    }
    return r;
  });
  out.alice_account_key = api.query.system.account.key(alice.address);
  out.alice_account_raw = await send('state_getStorage', [out.alice_account_key, head]);
  const acct = await api.query.system.account.at(head, alice.address);
  out.alice_account_decoded = { nonce: acct.nonce.toString(), free: acct.data.free.toString(), providers: acct.providers.toString() };

  fs.writeFileSync(outFile, JSON.stringify(out, null, 1));
  console.log('wrote', outFile, 'keys', out.storage_keys.length, 'events', out.events_decoded.length);
  await api.disconnect();
}
main().catch((e) => { console.error(e); process.exit(1); });
