// Regression tests for the findings of the spec review (spec/README.md, "Deviations").
import { describe, expect, it } from 'vitest';
import {
  Account,
  ParleyError,
  PreKeyStore,
  SessionRecord,
  cryptoProvider,
  decodeCbor,
  decodeCertificate,
  decodeMessage,
  encodeCbor,
  encodeCertificate,
  limits,
  toHex,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { establish, party, str, text } from './support/parties.ts';
import { codeOf } from './support/errors.ts';

const provider = cryptoProvider(nodeBackend);

describe('spec review regressions', () => {
  it('D1/D2: a late message from a previous chain decrypts once, and its replay is refused', () => {
    const { a, b } = establish(party(provider), party(provider));
    a.decrypt(b.encrypt(text('turn')));
    const late = a.encrypt(text('late'));
    const last = a.encrypt(text('last of chain'));
    b.decrypt(last);
    b.decrypt(a.encrypt(text('x'))); // same chain
    a.decrypt(b.encrypt(text('reply'))); // Alice will start a new chain
    b.decrypt(a.encrypt(text('new chain'))); // DH step at Bob: the old chain is closed at PN
    expect(str(b.decrypt(late).plaintext)).toBe('late');
    const before = toHex(b.serialize());
    expect(codeOf(() => b.decrypt(late))).toBe('DUPLICATE_MESSAGE');
    expect(codeOf(() => b.decrypt(last))).toBe('DUPLICATE_MESSAGE');
    expect(toHex(b.serialize())).toBe(before);
  });

  it('D3: PreKeyMessages cannot nest', () => {
    const alice = party(provider);
    const bob = party(provider);
    const m = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider }).encrypt(text('x'));
    const f = decodeCbor(m, 'm', 1 << 22) as unknown[];
    const nested = encodeCbor([...f.slice(0, 8), m] as never);
    expect(codeOf(() => decodeMessage(nested))).toBe('MALFORMED');
  });

  it('D5: a new session from another device of the same account is an identity change', () => {
    const alice = party(provider);
    const bob = party(provider);
    const { b } = establish(alice, bob);
    const aliceDevice2 = alice.account.createDevice(2, provider);
    const other = SessionRecord.initiate(aliceDevice2, bob.prekeys.bundle(), { provider });
    const m = other.encrypt(text('from device 2'));
    expect(codeOf(() => b.decrypt(m, { device: bob.device, prekeys: bob.prekeys }))).toBe('IDENTITY_MISMATCH');
    // The same device re-registered with new keys (same account, same id) is the same peer.
    const reinstalled = alice.account.createDevice(1, provider);
    const fresh = SessionRecord.initiate(reinstalled, bob.prekeys.bundle(), { provider });
    expect(str(b.decrypt(fresh.encrypt(text('after reinstall')), { device: bob.device, prekeys: bob.prekeys }).plaintext)).toBe(
      'after reinstall',
    );
  });

  it('D6: integers beyond 32 bits and header counters at the top are refused', () => {
    expect(codeOf(() => decodeCbor(encodeCbor(2 ** 32), 'n', 16))).toBe('MALFORMED');
    expect(codeOf(() => decodeCbor(encodeCbor(-1), 'n', 16))).toBe('MALFORMED');
    const { b } = establish(party(provider), party(provider));
    const [v, t, header, ct] = decodeCbor(b.encrypt(text('x')), 'm', 1 << 22) as [number, number, Uint8Array, Uint8Array];
    const [rk] = decodeCbor(header, 'h', 64) as [Uint8Array];
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, encodeCbor([rk, 0, 0xffffffff]), ct])))).toBe('OVERSIZED');
  });

  it('D7: a forged message costs a bounded number of trial sessions', () => {
    const alice = party(provider);
    const bob = party(provider);
    const a = new SessionRecord(provider);
    for (let i = 0; i < 10; i++) a.initiate(alice.device, bob.prekeys.bundle());
    expect(a.archivedCount).toBe(9);
    const { b } = establish(bob, alice);
    const forged = b.encrypt(text('not for these sessions'));
    let calls = 0;
    const counting = cryptoProvider({
      ...nodeBackend,
      x25519: (k, p) => {
        calls++;
        return nodeBackend.x25519(k, p);
      },
    });
    const probe = SessionRecord.deserialize(a.serialize(), counting);
    expect(() => probe.decrypt(forged)).toThrow(ParleyError);
    // One DH per tried session (current + MAX_ARCHIVED_RATCHET_TRIALS); each fails before its second DH.
    expect(calls).toBe(1 + limits.MAX_ARCHIVED_RATCHET_TRIALS);
  });

  it('D8: a rotated last-resort KEM prekey keeps working until pruned', () => {
    const alice = party(provider);
    const bob = party(provider);
    const bundle = bob.prekeys.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false });
    const a = SessionRecord.initiate(alice.device, bundle, { provider });
    const inFlight = a.encrypt(text('made with the old last-resort key'));
    bob.prekeys.rotateLastResortKemPreKey();
    expect(str(new SessionRecord(provider).decrypt(inFlight, { device: bob.device, prekeys: bob.prekeys }).plaintext)).toBe(
      'made with the old last-resort key',
    );
    expect(bob.prekeys.pruneLastResortKemPreKeys(0)).toEqual([bundle.kemPreKey.id]);
    const again = SessionRecord.initiate(alice.device, bundle, { provider }).encrypt(text('too late'));
    expect(codeOf(() => new SessionRecord(provider).decrypt(again, { device: bob.device, prekeys: bob.prekeys }))).toBe('UNKNOWN_PREKEY');
  });

  it('D9: a prekey store never grows past what it can load', () => {
    const device = Account.generate(provider).createDevice(1, provider);
    const store = PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 }, provider);
    expect(codeOf(() => store.generateOneTimePreKeys(limits.MAX_STORED_ONE_TIME_PREKEYS + 1))).toBe('INVALID_STATE');
  });

  it('D11: expectedAccountKey does not silently switch a record to another account', () => {
    const alice = party(provider);
    const bob = party(provider);
    const mallory = party(provider);
    const { a } = establish(alice, bob);
    const bundle = mallory.prekeys.bundle();
    expect(codeOf(() => a.initiate(alice.device, bundle, { expectedAccountKey: mallory.account.publicKey }))).toBe('IDENTITY_MISMATCH');
    a.initiate(alice.device, bundle, { expectedAccountKey: mallory.account.publicKey, allowIdentityChange: true });
    expect(toHex(a.remoteCertificate?.accountKey as Uint8Array)).toBe(toHex(mallory.account.publicKey));
  });

  it('D12: a bundle object with a bad key is refused like bad bytes', () => {
    const alice = party(provider);
    const bob = party(provider);
    const good = bob.prekeys.bundle();
    const bad = { ...good, signedPreKey: { ...good.signedPreKey, publicKey: new Uint8Array(32) } };
    expect(codeOf(() => SessionRecord.initiate(alice.device, bad, { provider }))).toBe('BAD_PUBLIC_KEY');
    expect(codeOf(() => alice.account.certify(3, new Uint8Array(32), new Uint8Array(32)))).toBe('BAD_PUBLIC_KEY');
  });

  it('D14: a future version with more fields is UNSUPPORTED_VERSION, not MALFORMED', () => {
    const f = decodeCbor(encodeCertificate(party(provider).device.certificate), 'c', 4096) as unknown[];
    expect(codeOf(() => decodeCertificate(encodeCbor([2, ...f.slice(1), 'extension'] as never)))).toBe('UNSUPPORTED_VERSION');
    const record = decodeCbor(new SessionRecord(provider).serialize(), 'r', 4096) as unknown[];
    // Record version 2 is current (spec/13-ratchet-v2.md §8), so 3 is the future one.
    expect(codeOf(() => SessionRecord.deserialize(encodeCbor([record[0], 3, null, [], 'more'] as never), provider))).toBe(
      'UNSUPPORTED_VERSION',
    );
  });
});

describe('second review round', () => {
  it('D15: rotated last-resort KEM keys are never offered as one-time keys', () => {
    const bob = party(provider);
    const old = bob.prekeys.lastResortKemPreKey();
    bob.prekeys.rotateLastResortKemPreKey();
    expect(bob.prekeys.kemPreKeys().every((k) => !k.lastResort)).toBe(true);
    expect(bob.prekeys.kemPreKeys().map((k) => k.id)).not.toContain(old.id);
  });

  it('initiate decodes the bundle before the peer check: a malformed bundle is MALFORMED whatever peer it names (03 §3)', () => {
    const alice = party(provider);
    const bob = party(provider);
    const carol = party(provider);
    const { a } = establish(alice, bob);
    const before = toHex(a.serialize());
    const good = carol.prekeys.bundle();
    const shortKey = { ...good, certificate: { ...good.certificate, accountKey: new Uint8Array(31) } };
    const hugeId = { ...good, certificate: { ...good.certificate, deviceId: 2 ** 32 } };
    expect(codeOf(() => a.initiate(alice.device, shortKey))).toBe('MALFORMED');
    expect(codeOf(() => a.initiate(alice.device, hugeId))).toBe('MALFORMED');
    // A well-formed bundle of another peer is still IDENTITY_MISMATCH.
    expect(codeOf(() => a.initiate(alice.device, good))).toBe('IDENTITY_MISMATCH');
    expect(toHex(a.serialize())).toBe(before);
  });

  it('a prekey store loads only with the device that signed it (05 §6.4): another device is BAD_RECORD', () => {
    const alice = party(provider);
    const bob = party(provider);
    const stored = bob.prekeys.serialize();
    expect(codeOf(() => PreKeyStore.deserialize(stored, alice.device, provider))).toBe('BAD_RECORD');
    // Another device of the same account is another signing key: refused too.
    const bob2 = bob.account.createDevice(2, provider);
    expect(codeOf(() => PreKeyStore.deserialize(stored, bob2, provider))).toBe('BAD_RECORD');
    expect(toHex(PreKeyStore.deserialize(stored, bob.device, provider).serialize())).toBe(toHex(stored));
  });

  it('after an allowed identity change, the old peer cannot switch the record back', () => {
    const alice = party(provider);
    const bob = party(provider);
    const mallory = party(provider);
    const { a, b } = establish(alice, bob);
    const late = b.encrypt(text('late from bob'));
    a.initiate(alice.device, mallory.prekeys.bundle(), { allowIdentityChange: true });
    expect(a.archivedCount).toBe(0);
    expect(() => a.decrypt(late)).toThrow(ParleyError);
    expect(toHex(a.remoteCertificate?.accountKey as Uint8Array)).toBe(toHex(mallory.account.publicKey));
  });

  it('a record does not share byte arrays with the bundle object it was made from', () => {
    const alice = party(provider);
    const bob = party(provider);
    const bundle = bob.prekeys.bundle();
    const a = SessionRecord.initiate(alice.device, bundle, { provider });
    expect(a.remoteCertificate?.accountKey).not.toBe(bundle.certificate.accountKey);
    expect(toHex(a.remoteCertificate?.accountKey as Uint8Array)).toBe(toHex(bundle.certificate.accountKey));
  });
});

describe('D4: Ed25519 keys both backends refuse', () => {
  it('no backend verifies a signature under a small-order or non-canonical public key', async () => {
    const { nobleBackend } = await import('../src/index.ts');
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const sig = new Uint8Array(64);
    sig[0] = 1; // R = identity, s = 0: satisfies the cofactorless equation under A = identity
    const keys = [
      identity,
      Uint8Array.from([0xee, ...new Uint8Array(30).fill(0xff), 0x7f]),
      Uint8Array.from([...identity.subarray(0, 31), 0x80]),
    ];
    for (const backend of [nodeBackend, nobleBackend]) {
      for (const k of keys) expect(backend.ed25519Verify(k, text('any message'), sig)).toBe(false);
    }
  });
});

describe('late messages are cheap', () => {
  it('a late message uses and deletes its stored key without copying the store; its replay is refused', () => {
    const { a, b } = establish(party(provider), party(provider));
    const held = Array.from({ length: 50 }, (_, i) => a.encrypt(text(`m${i}`)));
    b.decrypt(a.encrypt(text('ahead')));
    for (const [i, m] of held.entries()) expect(str(b.decrypt(m).plaintext)).toBe(`m${i}`);
    for (const m of held) expect(codeOf(() => b.decrypt(m))).toBe('DUPLICATE_MESSAGE');
    const reloaded = SessionRecord.deserialize(b.serialize(), provider);
    expect(codeOf(() => reloaded.decrypt(held[7] as Uint8Array))).toBe('DUPLICATE_MESSAGE');
  });
});
