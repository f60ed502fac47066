/**
 * Writes test/fixtures/records-v2.json (spec/13-ratchet-v2.md §8): the v1
 * fixture's session records re-saved in record version 2 (what a v1 record
 * must migrate to, byte for byte), and a record holding ratchet-v2 sessions
 * with the messages its saved state must still decrypt. Run once and commit;
 * never regenerate (it is the proof that record-v2 state keeps loading).
 *
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx packages/core/scripts/make-record-v2-fixture.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Account, PreKeyStore, SessionRecord, decodeMessage, fromHex, toHex, utf8 } from '../src/index.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { generateDhKeyPair } from '../src/crypto/x25519.ts';
import { initiateV2, respondV2 } from '../src/ratchet/v2/ratchet.ts';
import { deterministicProvider } from '../src/testing.ts';

const v1 = JSON.parse(readFileSync(new URL('../test/fixtures/records-v1.json', import.meta.url), 'utf8'));
const migrate = (hex: string) => toHex(SessionRecord.deserialize(fromHex(hex)).serialize());

// v2 sessions built from a shared secret as the v2 handshake will hand it over
// (formats-v2 §3.2); the handshake itself is pinned by versions.json.
const provider = deterministicProvider(nobleBackend, 'parley record fixtures v2');
const alice = Account.generate(provider).createDevice(1, provider);
const bob = Account.generate(provider).createDevice(7, provider);
const sharedSecret = provider.random(32);
const associatedData = provider.random(32);
const spk = generateDhKeyPair(provider);
const versions = { local: [1, 2], remote: [1, 2] };
const a = new SessionRecord(provider);
a.startSessionV2({
  remoteCertificate: bob.certificate,
  localCertificate: alice.certificate,
  ratchet: initiateV2(provider, { sharedSecret, associatedData, theirRatchetKey: spk.publicKey }),
  baseKey: generateDhKeyPair(provider).publicKey,
  use: { baseKey: new Uint8Array(32), signedPreKeyId: 1, oneTimePreKeyId: null, kemPreKeyId: 2 },
  kemCiphertext: provider.random(1088),
  versions,
});
const first = a.encryptWithTag(utf8('first'));
const firstMessage = decodeMessage(first.message);
if (firstMessage.type !== 'prekey2') throw new Error('expected a PreKeyMessageV2');
const b = new SessionRecord(provider);
b.acceptSessionV2(
  firstMessage,
  {
    ratchet: respondV2(provider, { sharedSecret, associatedData, ownSignedPreKey: spk }),
    localCertificate: bob.certificate,
    versions,
    frankingTag: first.frankingTag as Uint8Array,
  },
  PreKeyStore.generate(bob, { oneTimePreKeys: 0, kemPreKeys: 1 }, provider),
);
const reply = b.encryptWithTag(utf8('reply'));
a.decrypt(reply.message, { frankingTag: reply.frankingTag as Uint8Array });
const late = a.encryptWithTag(utf8('skipped then late'));
const after = a.encryptWithTag(utf8('after skip'));
b.decrypt(after.message, { frankingTag: after.frankingTag as Uint8Array });

const wire = (m: { message: Uint8Array; frankingTag: Uint8Array | null }, plaintext: string) => ({
  message: toHex(m.message),
  frankingTag: toHex(m.frankingTag as Uint8Array),
  plaintext,
});
const fixture = {
  description:
    'Session records at record version 2: the v1 fixture migrated (re-saved) and a record of ratchet-v2 sessions, with messages the loaded state must decrypt.',
  version: 2,
  migrated: { aliceSessionWithBob: migrate(v1.alice.sessionWithBob), bobSessionWithAlice: migrate(v1.bob.sessionWithAlice) },
  ratchetV2: {
    aliceSessionWithBob: toHex(a.serialize()),
    bobSessionWithAlice: toHex(b.serialize()),
    toBob: [wire(late, 'skipped then late'), wire(a.encryptWithTag(utf8('after save')), 'after save')],
    toAlice: [wire(b.encryptWithTag(utf8('bob after save')), 'bob after save')],
  },
};
const path = new URL('../test/fixtures/records-v2.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(fixture, null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
