// Records saved by an earlier release must load and keep working (storage stability).
// The fixture is generated once per format version by scripts/make-record-fixtures.ts and never regenerated.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  Account,
  DeviceIdentity,
  PreKeyStore,
  SessionRecord,
  cryptoProvider,
  encodeBundle,
  fromHex,
  fromUtf8,
  toHex,
} from '../src/index.ts';
import { backends } from './support/parties.ts';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/records-v1.json', import.meta.url), 'utf8'));
const fixtureV2 = JSON.parse(readFileSync(new URL('./fixtures/records-v2.json', import.meta.url), 'utf8'));

describe.each(backends.map((b) => [b.name, b] as const))('records v1 (%s backend)', (_n, backend) => {
  const provider = cryptoProvider(backend);

  it('load, re-serialize to the same bytes, and decrypt messages sent after the save', () => {
    const alice = Account.deserialize(fromHex(fixture.alice.account), provider);
    const aliceDevice = DeviceIdentity.deserialize(fromHex(fixture.alice.device), provider);
    expect(toHex(alice.publicKey)).toBe(toHex(aliceDevice.accountKey));
    const bobDevice = DeviceIdentity.deserialize(fromHex(fixture.bob.device), provider);
    const prekeys = PreKeyStore.deserialize(fromHex(fixture.bob.prekeys), bobDevice, provider);
    // The prekey store migrates to record v2 (a v2 signature per signed
    // prekey, versions.test.ts); its keys and ids stay exactly the saved ones.
    const reloaded = PreKeyStore.deserialize(prekeys.serialize(), bobDevice, provider);
    expect(toHex(encodeBundle(reloaded.bundle()))).toBe(toHex(encodeBundle(prekeys.bundle())));
    for (const [hex, who] of [
      [fixture.bob.sessionWithAlice, 'bob'],
      [fixture.alice.sessionWithBob, 'alice'],
    ] as const) {
      const record = SessionRecord.deserialize(fromHex(hex), provider);
      // Record version 1 loads and is saved as record version 2, byte for byte as pinned (spec/13-ratchet-v2.md §8).
      const migrated = who === 'bob' ? fixtureV2.migrated.bobSessionWithAlice : fixtureV2.migrated.aliceSessionWithBob;
      expect(toHex(record.serialize())).toBe(migrated);
      expect(toHex(SessionRecord.deserialize(fromHex(migrated), provider).serialize())).toBe(migrated);
      const inbox = who === 'bob' ? fixture.toBob : fixture.toAlice;
      for (const m of inbox) expect(fromUtf8(record.decrypt(fromHex(m.message)).plaintext)).toBe(m.plaintext);
    }
    expect(toHex(aliceDevice.serialize())).toBe(fixture.alice.device);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('records v2 (%s backend)', (_n, backend) => {
  const provider = cryptoProvider(backend);

  it('ratchet-v2 sessions load, re-serialize to the same bytes, and decrypt messages sent after the save', () => {
    const v2 = fixtureV2.ratchetV2;
    for (const [hex, inbox] of [
      [v2.bobSessionWithAlice, v2.toBob],
      [v2.aliceSessionWithBob, v2.toAlice],
    ] as const) {
      const record = SessionRecord.deserialize(fromHex(hex), provider);
      expect(toHex(record.serialize())).toBe(hex);
      expect(record.sessionVersion).toBe(2);
      for (const m of inbox) {
        const out = record.decrypt(fromHex(m.message), { frankingTag: fromHex(m.frankingTag) });
        expect(fromUtf8(out.plaintext)).toBe(m.plaintext);
        expect(out.version).toBe(2);
      }
    }
  });
});
