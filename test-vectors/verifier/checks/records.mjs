/** records.json against spec/05-wire-format.md §6, cross-checked with the ratchet.json conversation the verifier ran. */
import { createHash } from 'node:crypto';
import { Mismatch, refuses, same } from '../lib/check.mjs';
import { equal, fromHex as h } from '../lib/hex.mjs';
import { deviceFrom } from '../lib/parties.mjs';
import { ed25519Verify, x25519PublicKey } from '../lib/primitives.mjs';
import { PreKeyStore, SessionRecord, encodeAccount, encodeDevice, loadAccount, loadDevice, startSession } from '../lib/records.mjs';
import { decodeBundle, kemPreKeySignedBytes, signedPreKeySignedBytes } from '../lib/structures.mjs';

/** H of FIPS 203 (SHA3-256). */
const sha3 = (data) => new Uint8Array(createHash('sha3-256').update(data).digest());

/** Every key pair in a store is whole: public halves match, signatures verify, each ML-KEM dk carries its ek and H(ek) (FIPS 203 §7.1). */
function checkStoreKeys(store, signingKey) {
  for (const [id, k] of store.signed) {
    same(`signed prekey ${id}`, x25519PublicKey(k.privateKey), k.publicKey);
    if (!ed25519Verify(signingKey, signedPreKeySignedBytes(id, k.publicKey), k.signature))
      throw new Mismatch(`signed prekey ${id} signature`);
  }
  for (const [id, k] of store.oneTime) same(`one-time prekey ${id}`, x25519PublicKey(k.privateKey), k.publicKey);
  for (const [id, k] of store.kem) {
    const ek = k.secretKey.subarray(1152, 1152 + 1184);
    const hash = k.secretKey.subarray(1152 + 1184, 1152 + 1184 + 32);
    if (!equal(ek, k.publicKey) || !equal(hash, sha3(ek))) throw new Mismatch(`KEM prekey ${id}: secret key does not carry its public key`);
    if (!ed25519Verify(signingKey, kemPreKeySignedBytes(id, k.publicKey, k.lastResort), k.signature))
      throw new Mismatch(`KEM prekey ${id} signature`);
  }
}

export function checkRecords(f, conversations) {
  const conversation = (t) => {
    const c = conversations.get(t.conversation);
    if (!c) throw new Mismatch(`conversation ${t.conversation} did not run`);
    const snap = c.snapshots[t.afterStep];
    if (!snap) throw new Mismatch(`no step ${t.afterStep} in ${t.conversation}`);
    return { c, snap };
  };

  for (const g of f.groups('AccountRecord')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('record', encodeAccount(h(t.accountSeed)), t.record);
        same('accountKey', loadAccount(h(t.record)).accountKey, t.accountKey);
      });
    }
  }

  for (const g of f.groups('DeviceIdentityRecord')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('record', encodeDevice(deviceFrom(t)), t.record);
        same('loaded certificate', encodeDevice(loadDevice(h(t.record))), t.record);
      });
    }
  }

  for (const g of f.groups('PreKeyStoreRecord')) {
    const device = loadDevice(h(g.device));
    for (const t of g.tests) {
      f.run(t, () => {
        const store = PreKeyStore.load(h(t.record), device);
        same('store re-encodes', store.encode(), t.record);
        checkStoreKeys(store, device.certificate.signingKey);
        same('store of the conversation', conversation(t).snap.prekeys, t.record);
      });
    }
  }

  for (const g of f.groups('SessionRecord')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const { c, snap } = conversation(t);
        let expected = snap[t.party];
        if (t.initiate) {
          const record = SessionRecord.load(expected);
          startSession(record, c.devices[t.party], decodeBundle(h(t.initiate.bundle)), undefined, {
            ephemeralPrivateKey: h(t.initiate.ephemeralPrivateKey),
            kemEncapsulationRandomness: h(t.initiate.kemEncapsulationRandomness),
            ratchetPrivateKey: h(t.initiate.initiatorRatchetPrivateKey),
          });
          expected = record.encode();
        }
        same('record', expected, t.record);
        const record = SessionRecord.load(h(t.record));
        same('record re-encodes', record.encode(), t.record);
        for (const d of t.decrypts) {
          const out = record.decrypt(h(d.message), {
            newRatchetPrivateKey: () => {
              if (!d.newRatchetPrivateKey) throw new Mismatch(`${d.name}: a DH ratchet step, but the vector lists no new ratchet key`);
              return h(d.newRatchetPrivateKey);
            },
          });
          same(`${d.name} plaintext`, out.plaintext, d.plaintext);
        }
      });
    }
  }

  for (const g of f.groups('InvalidRecord')) {
    for (const t of g.tests) {
      const loadStore = (bytes) => PreKeyStore.load(bytes, loadDevice(h(t.device ?? g.device)));
      const load = { Account: loadAccount, DeviceIdentity: loadDevice, PreKeyStore: loadStore, SessionRecord: SessionRecord.load }[t.kind];
      f.run(t, () => {
        if (!load) throw new Mismatch(`unknown record kind ${t.kind}`);
        refuses(t.kind, () => load(h(t.record)), t.error);
      });
    }
  }
}
