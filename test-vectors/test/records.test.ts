// records.json through core: every stored record loads, saves back to the same
// bytes and keeps working; every malformed record is refused with its code.
import { Account, DeviceIdentity, PreKeyStore, SessionRecord, cryptoProvider, encodeCertificate } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { VectorRandom, backends, bytes, expectRefusal, hexOf, loadVectors, testsOf } from './support.ts';

const file = loadVectors('records.json');

describe.each(backends.map((b) => [b.name, b] as const))('records.json (%s backend)', (_name, backend) => {
  const p = cryptoProvider(backend);

  it('account and device records', () => {
    for (const { test } of testsOf(file, 'AccountRecord')) {
      const a = Account.deserialize(bytes(test.record), p);
      expect(hexOf(a.publicKey)).toBe(test.accountKey);
      expect(hexOf(a.serialize())).toBe(test.record);
    }
    for (const { test } of testsOf(file, 'DeviceIdentityRecord')) {
      const d = DeviceIdentity.deserialize(bytes(test.record), p);
      expect(hexOf(encodeCertificate(d.certificate))).toBe(test.certificate);
      expect(hexOf(d.serialize())).toBe(test.record);
    }
  });

  it('prekey store records', () => {
    for (const { group, test } of testsOf(file, 'PreKeyStoreRecord')) {
      const device = DeviceIdentity.deserialize(bytes(group.device), p);
      expect(hexOf(PreKeyStore.deserialize(bytes(test.record), device, p).serialize())).toBe(test.record);
    }
  });

  it('session records load, save back, and decrypt the messages that came later', () => {
    for (const { test } of testsOf(file, 'SessionRecord')) {
      const rng = new VectorRandom(backend);
      const record = SessionRecord.deserialize(bytes(test.record), rng.provider);
      expect(hexOf(record.serialize())).toBe(test.record);
      for (const d of test.decrypts) {
        rng.push(d.newRatchetPrivateKey);
        expect(hexOf(record.decrypt(bytes(d.message)).plaintext), `${test.comment}: ${d.name}`).toBe(d.plaintext);
        rng.expectUsed();
      }
    }
  });

  it('refuses every malformed record with its code', () => {
    for (const { group, test } of testsOf(file, 'InvalidRecord')) {
      const record = bytes(test.record);
      const load: Record<string, () => unknown> = {
        Account: () => Account.deserialize(record, p),
        DeviceIdentity: () => DeviceIdentity.deserialize(record, p),
        PreKeyStore: () => PreKeyStore.deserialize(record, DeviceIdentity.deserialize(bytes(test.device ?? group.device), p), p),
        SessionRecord: () => SessionRecord.deserialize(record, p),
      };
      expectRefusal(load[test.kind] as () => unknown, test, backend);
    }
  });
});
