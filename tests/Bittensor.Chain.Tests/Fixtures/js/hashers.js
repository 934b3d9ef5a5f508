const { blake2AsHex, xxhashAsHex } = require('@polkadot/util-crypto');
const inputs = { netuid_1: '0x0100', alice: '0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d', empty: '0x' };
const out = [];
for (const [label, hex] of Object.entries(inputs)) {
  out.push({ input: label, data: hex, Blake2_128: blake2AsHex(hex, 128), Blake2_256: blake2AsHex(hex, 256), Twox64: xxhashAsHex(hex, 64), Twox128: xxhashAsHex(hex, 128), Twox256: xxhashAsHex(hex, 256) });
}
console.log(JSON.stringify(out, null, 1));
