/**
 * Writes test/fixtures/records-v<N>.json: stored records of every format at
 * the current version, plus a message the saved state must still decrypt.
 * Run once per record-format version and commit the file; never regenerate
 * an old version's file (it is the proof that old state still loads).
 *
 *   node --import tsx packages/core/scripts/make-record-fixtures.ts
 */
import { writeFileSync } from 'node:fs';
import { Account, PROTOCOL_VERSION, PreKeyStore, SessionRecord, toHex, utf8 } from '../src/index.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { deterministicProvider } from '../src/testing.ts';

const provider = deterministicProvider(nobleBackend, 'parley record fixtures v1');
const alice = Account.generate(provider);
const aliceDevice = alice.createDevice(1, provider);
const bob = Account.generate(provider);
const bobDevice = bob.createDevice(7, provider);
const bobPrekeys = PreKeyStore.generate(bobDevice, { oneTimePreKeys: 2, kemPreKeys: 1 }, provider);

const a = SessionRecord.initiate(aliceDevice, bobPrekeys.bundle(), { provider });
const b = new SessionRecord(provider);
b.decrypt(a.encrypt(utf8('first')), { device: bobDevice, prekeys: bobPrekeys });
a.decrypt(b.encrypt(utf8('reply')));
const skipped = a.encrypt(utf8('skipped then late'));
b.decrypt(a.encrypt(utf8('after skip')));

// Saved here; the messages below must decrypt with the saved state.
const fixture = {
  description: 'Stored records at format version 1 and messages that the loaded state must decrypt.',
  version: PROTOCOL_VERSION,
  alice: { account: toHex(alice.serialize()), device: toHex(aliceDevice.serialize()), sessionWithBob: toHex(a.serialize()) },
  bob: {
    account: toHex(bob.serialize()),
    device: toHex(bobDevice.serialize()),
    prekeys: toHex(bobPrekeys.serialize()),
    sessionWithAlice: toHex(b.serialize()),
  },
  toBob: [
    { message: toHex(skipped), plaintext: 'skipped then late' },
    { message: toHex(a.encrypt(utf8('after save'))), plaintext: 'after save' },
  ],
  toAlice: [{ message: toHex(b.encrypt(utf8('bob after save'))), plaintext: 'bob after save' }],
};
const path = new URL(`../test/fixtures/records-v${PROTOCOL_VERSION}.json`, import.meta.url);
writeFileSync(path, `${JSON.stringify(fixture, null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
