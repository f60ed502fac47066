// Version negotiation at the handshake: SignedPreKeyV2, PreKeyBundleV2, AD2,
// Info.pqxdh2, max(∩), and the downgrade pin (spec/design/formats-v2.md §3).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from '../src/codec/cbor.ts';
import { associatedData, associatedData2, initiate, respond } from '../src/handshake/pqxdh.ts';
import { decodeMessage, encodePreKeyMessageV2, preKeyV2FieldsBytes } from '../src/session/messages.ts';
import {
  DeviceIdentity,
  PreKeyStore,
  SessionRecord,
  bytesEqual,
  decodeSignedPreKey,
  encodeSignedPreKey,
  fromHex,
  isParleyError,
  toHex,
} from '../src/index.ts';
import {
  type PreKeyBundleV2,
  decodeAnyBundle,
  decodeBundle,
  decodeSignedPreKeyV2,
  encodeBundle,
  encodeSignedPreKeyV2,
  signedPreKeySignedBytes,
  signedPreKeyV2SignedBytes,
  verifyBundle,
} from '../src/keys/prekeys.ts';
import { MAX_ADVERTISED_VERSIONS, SUPPORTED_VERSIONS, chooseVersion, readVersionList } from '../src/keys/versions.ts';
import { codeOf, expectCode, expectUnchanged } from './support/errors.ts';
import { backends, establish, party, seeded } from './support/parties.ts';

describe('version lists', () => {
  it('accept strictly ascending lists of 1..8 versions in 1..255', () => {
    expect(readVersionList([1], 'v')).toEqual([1]);
    expect(readVersionList([1, 2], 'v')).toEqual([1, 2]);
    expect(readVersionList([1, 2, 3, 4, 5, 6, 7, 255], 'v')).toHaveLength(MAX_ADVERTISED_VERSIONS);
  });

  it.each([
    ['empty', [], 'MALFORMED'],
    ['not ascending', [2, 1], 'MALFORMED'],
    ['repeated', [1, 1], 'MALFORMED'],
    ['version 0', [0, 1], 'MALFORMED'],
    ['over 255', [1, 256], 'OVERSIZED'],
    ['over 8 entries', [1, 2, 3, 4, 5, 6, 7, 8, 9], 'MALFORMED'],
    ['not an array', 2, 'MALFORMED'],
    ['a text entry', ['1'], 'MALFORMED'],
  ])('refuse %s', (_n, list, code) => {
    expect(codeOf(() => readVersionList(list, 'v'))).toBe(code);
  });

  it('choose the highest common version, and refuse lists with none', () => {
    expect(chooseVersion([1, 2], [1, 2])).toBe(2);
    expect(chooseVersion([1, 2], [1])).toBe(1);
    expect(chooseVersion([1], [1, 2])).toBe(1);
    expect(chooseVersion([1, 2, 3], [2, 3, 4])).toBe(3);
    expect(codeOf(() => chooseVersion([2], [1]))).toBe('UNSUPPORTED_VERSION');
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('SignedPreKeyV2 and bundles (%s)', (_n, backend) => {
  it('a v2 device signs each signed prekey twice, under two labels', () => {
    const bob = party(seeded(backend, 'sign twice'));
    const v1 = bob.prekeys.currentSignedPreKey();
    const v2 = bob.prekeys.currentSignedPreKeyV2();
    const b = bob.provider.backend;
    const key = bob.device.certificate.signingKey;
    expect(v2.id).toBe(v1.id);
    expect(toHex(v2.publicKey)).toBe(toHex(v1.publicKey));
    expect(v2.versions).toEqual([...SUPPORTED_VERSIONS]);
    expect(b.ed25519Verify(key, signedPreKeySignedBytes(v1.id, v1.publicKey), v1.signature)).toBe(true);
    expect(b.ed25519Verify(key, signedPreKeyV2SignedBytes(v2.id, v2.publicKey, v2.versions), v2.signature)).toBe(true);
    // Neither signature stands in for the other (distinct labels, 01 §5).
    expect(b.ed25519Verify(key, signedPreKeyV2SignedBytes(v1.id, v1.publicKey, v2.versions), v1.signature)).toBe(false);
    expect(b.ed25519Verify(key, signedPreKeySignedBytes(v2.id, v2.publicKey), v2.signature)).toBe(false);
    // A rotated key is signed twice too.
    const next = bob.prekeys.rotateSignedPreKey();
    expect(bob.prekeys.currentSignedPreKeyV2().id).toBe(next.id);
  });

  it('SignedPreKeyV2 round-trips; a v1 decoder refuses it and the reverse', () => {
    const bob = party(seeded(backend, 'codec'));
    const v2 = bob.prekeys.currentSignedPreKeyV2();
    const bytes = encodeSignedPreKeyV2(v2);
    expect(toHex(encodeSignedPreKeyV2(decodeSignedPreKeyV2(bytes)))).toBe(toHex(bytes));
    expect(codeOf(() => decodeSignedPreKey(bytes))).toBe('MALFORMED');
    expect(codeOf(() => decodeSignedPreKeyV2(encodeSignedPreKey(bob.prekeys.currentSignedPreKey())))).toBe('MALFORMED');
  });

  it('bundle v2: decodes by version, verifies, and a rewritten version list breaks the signature', () => {
    const bob = party(seeded(backend, 'bundle'));
    const bundle = bob.prekeys.bundleV2();
    const bytes = encodeBundle(bundle);
    const decoded = decodeAnyBundle(bytes);
    expect(decoded.version).toBe(2);
    verifyBundle(decoded, { provider: bob.provider });
    expect(decodeAnyBundle(encodeBundle(bob.prekeys.bundle())).version).toBe(1);
    // The v1-only decoder (the v1 route's clients) does not take a v2 bundle for a v1 one.
    expect(codeOf(() => decodeBundle(bytes))).toBe('UNSUPPORTED_VERSION');
    const rewritten: PreKeyBundleV2 = { ...bundle, signedPreKey: { ...bundle.signedPreKey, versions: [1] } };
    expect(codeOf(() => verifyBundle(rewritten, { provider: bob.provider }))).toBe('BAD_SIGNATURE');
    expect(codeOf(() => initiate(bob.provider, party(bob.provider).device, rewritten))).toBe('BAD_SIGNATURE');
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('v2 handshake (%s)', (_n, backend) => {
  it('v2 with v2 chooses 2: both sides derive the same SK and AD2, which differ from v1', () => {
    const p = seeded(backend, 'v2 v2');
    const alice = party(p);
    const bob = party(p);
    const hs = initiate(p, alice.device, bob.prekeys.bundleV2());
    expect(hs.version).toBe(2);
    expect(hs.versions).toEqual({ initiator: [1, 2], responder: [1, 2] });
    const r = respond(p, bob.device, bob.prekeys, alice.device.certificate, hs.use, hs.kemCiphertext, {
      initiatorVersions: [1, 2],
    });
    expect(r.version).toBe(2);
    expect(toHex(r.sharedSecret)).toBe(toHex(hs.sharedSecret));
    expect(toHex(r.associatedData)).toBe(toHex(hs.associatedData));
    expect(toHex(hs.associatedData)).toBe(
      toHex(associatedData2(p, alice.device.certificate, bob.device.certificate, { initiator: [1, 2], responder: [1, 2] })),
    );
    expect(toHex(hs.associatedData)).not.toBe(toHex(associatedData(p, alice.device.certificate, bob.device.certificate)));
    // The same keys under the v1 info give another secret (Info.pqxdh2 separates them).
    const v1 = respond(p, bob.device, bob.prekeys, alice.device.certificate, hs.use, hs.kemCiphertext);
    expect(v1.version).toBe(1);
    expect(bytesEqual(v1.sharedSecret, hs.sharedSecret)).toBe(false);
  });

  it('v2 with a v1 bundle, and a v1-only device with a v2 bundle, both choose 1 and derive the v1 secret', () => {
    for (const [bundleV2, local] of [
      [false, undefined],
      [true, [1]],
    ] as const) {
      const p = seeded(backend, `v1 ${bundleV2}`);
      const alice = party(p);
      const bob = party(p);
      const hs = initiate(p, alice.device, bundleV2 ? bob.prekeys.bundleV2() : bob.prekeys.bundle(), { localVersions: local });
      expect(hs.version).toBe(1);
      expect(hs.versions).toBeNull();
      const r = respond(p, bob.device, bob.prekeys, alice.device.certificate, hs.use, hs.kemCiphertext);
      expect(toHex(r.sharedSecret)).toBe(toHex(hs.sharedSecret));
      expect(toHex(r.associatedData)).toBe(toHex(associatedData(p, alice.device.certificate, bob.device.certificate)));
    }
  });

  it('a device pinned at 2 refuses a v1 bundle (DOWNGRADE_REFUSED) before any key is drawn; the pin binds up to what it offers', () => {
    const p = seeded(backend, 'pinned');
    const alice = party(p);
    const bob = party(p);
    let draws = 0;
    const counting = {
      ...p,
      random: (n: number) => {
        draws++;
        return p.random(n);
      },
    };
    const e = expectCode(() => initiate(counting, alice.device, bob.prekeys.bundle(), { minVersion: 2 }), 'DOWNGRADE_REFUSED');
    expect(e.details).toMatchObject({ deviceId: bob.device.deviceId, version: 1, minVersion: 2 });
    expect(draws).toBe(0);
    // A device that offers only version 1 is downgraded by nobody: the pin binds up to what it offers.
    expect(initiate(p, alice.device, bob.prekeys.bundleV2(), { minVersion: 2, localVersions: [1] }).version).toBe(1);
    // The pin does not stop a v2 session, and pin 1 stops nothing.
    expect(initiate(p, alice.device, bob.prekeys.bundleV2(), { minVersion: 2 }).version).toBe(2);
    expect(initiate(p, alice.device, bob.prekeys.bundle(), { minVersion: 1 }).version).toBe(1);
  });

  it('the responder refuses a v1 PreKeyMessage from a pinned device, and v2 lists that do not choose 2', () => {
    const p = seeded(backend, 'responder');
    const alice = party(p);
    const bob = party(p);
    const hs = initiate(p, alice.device, bob.prekeys.bundle());
    const before = toHex(bob.prekeys.serialize());
    expectCode(
      () => respond(p, bob.device, bob.prekeys, alice.device.certificate, hs.use, hs.kemCiphertext, { minVersion: 2 }),
      'DOWNGRADE_REFUSED',
    );
    expectCode(
      () => respond(p, bob.device, bob.prekeys, alice.device.certificate, hs.use, hs.kemCiphertext, { initiatorVersions: [1] }),
      'DECRYPT_FAILED',
    );
    expect(toHex(bob.prekeys.serialize())).toBe(before);
  });

  it('versions_B comes from the responder store: a relay-rewritten list gives another AD2', () => {
    const p = seeded(backend, 'rewrite');
    const alice = party(p);
    const bob = party(p);
    const hs = initiate(p, alice.device, bob.prekeys.bundleV2());
    // A relay that rewrote versions_A in the message ([1, 2] -> [1, 2, 3]) changes the responder's AD2.
    const r = respond(p, bob.device, bob.prekeys, alice.device.certificate, hs.use, hs.kemCiphertext, {
      initiatorVersions: [1, 2, 3],
    });
    expect(r.version).toBe(2);
    expect(toHex(r.sharedSecret)).toBe(toHex(hs.sharedSecret));
    expect(toHex(r.associatedData)).not.toBe(toHex(hs.associatedData));
  });
});

describe('PreKeyMessageV2 framing', () => {
  const p = seeded(backends[0], 'framing');
  const alice = party(p);
  const bob = party(p);
  const bytes = SessionRecord.initiate(alice.device, bob.prekeys.bundleV2(), { provider: p }).encryptWithTag(Uint8Array.of(1)).message;
  const decoded = () => {
    const m = decodeMessage(bytes);
    if (m.type !== 'prekey2') throw new Error(`expected a PreKeyMessageV2, got ${m.type}`);
    return m;
  };

  it('round-trips with versions_A before the embedded message', () => {
    const f = decodeCbor(bytes, 'm', 1 << 16) as unknown[];
    expect(f[0]).toBe(2);
    expect(f[1]).toBe(1);
    const back = decoded();
    expect(back.versions).toEqual([1, 2]);
    expect(toHex(encodePreKeyMessageV2(back.initiatorCertificate, back.use, back.kemCiphertext, back.versions, back.messageBytes))).toBe(
      toHex(bytes),
    );
  });

  it('refuses bad version lists, and binds versions_A into the repeat digest', () => {
    for (const bad of [[], [2, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
      const f = decodeCbor(bytes, 'm', 1 << 16) as unknown[];
      f[8] = bad;
      const err = codeOf(() => decodeMessage(encodeCbor(f as never)));
      expect(['MALFORMED', 'OVERSIZED']).toContain(err);
    }
    const back = decoded();
    expect(toHex(preKeyV2FieldsBytes(back))).not.toBe(toHex(preKeyV2FieldsBytes({ ...back, versions: [1, 2, 3] })));
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('PreKeyStore record v2 (%s)', (_n, backend) => {
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/records-v1.json', import.meta.url), 'utf8'));

  it('a v1 store loads, gains v2 signatures, saves as record v2 and reloads to the same bytes', () => {
    const provider = seeded(backend, 'migrate');
    const device = DeviceIdentity.deserialize(fromHex(fixture.bob.device), provider);
    const store = PreKeyStore.deserialize(fromHex(fixture.bob.prekeys), device, provider);
    const saved = store.serialize();
    expect((decodeCbor(saved, 's', 1 << 20) as unknown[])[1]).toBe(2);
    expect(toHex(PreKeyStore.deserialize(saved, device, provider).serialize())).toBe(toHex(saved));
    // Loading the v1 bytes again gives the same v2 bytes (Ed25519 is deterministic).
    expect(toHex(PreKeyStore.deserialize(fromHex(fixture.bob.prekeys), device, provider).serialize())).toBe(toHex(saved));
    const v2 = store.currentSignedPreKeyV2();
    expect(v2.id).toBe(store.currentSignedPreKey().id);
    verifyBundle(store.bundleV2(), { provider });
  });

  it('a record v2 whose current v2 signature is not the device’s is BAD_RECORD', () => {
    const provider = seeded(backend, 'foreign');
    const bob = party(provider);
    const f = decodeCbor(bob.prekeys.serialize(), 's', 1 << 20) as unknown[];
    const signed = f[3] as unknown[][];
    (signed[0] as unknown[])[4] = [1]; // versions no longer what was signed
    const err = codeOf(() => PreKeyStore.deserialize(encodeCbor(f as never), bob.device, provider));
    expect(err).toBe('BAD_RECORD');
  });

  it('a store of a future record version is UNSUPPORTED_VERSION, not misread', () => {
    const provider = seeded(backend, 'future');
    const bob = party(provider);
    const f = decodeCbor(bob.prekeys.serialize(), 's', 1 << 20) as unknown[];
    f[1] = 3;
    try {
      PreKeyStore.deserialize(encodeCbor(f as never), bob.device, provider);
      expect.unreachable();
    } catch (e) {
      expect(isParleyError(e, 'UNSUPPORTED_VERSION') || isParleyError(e, 'BAD_RECORD')).toBe(true);
    }
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('sessions and versions (%s)', (_n, backend) => {
  const talk = (a: SessionRecord, b: SessionRecord, bob: ReturnType<typeof party>) => {
    const first = b.decrypt(a.encrypt(Uint8Array.of(1)), { device: bob.device, prekeys: bob.prekeys });
    expect(first.newSession).toBe(true);
    expect(a.decrypt(b.encrypt(Uint8Array.of(2))).plaintext).toEqual(Uint8Array.of(2));
  };

  it('a v2 device and a v1 bundle (an old device or relay) talk version 1, both ways', () => {
    const p = seeded(backend, 'v2-v1 session');
    const alice = party(p);
    const bob = party(p);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: p });
    const m = decodeCbor(a.encrypt(Uint8Array.of(0)), 'm', 1 << 16) as unknown[];
    expect(m[0]).toBe(1);
    talk(a, new SessionRecord(p), bob);
  });

  it('two v2 devices run a version-2 session: headers encrypted, franking tags checked, both ways', () => {
    const p = seeded(backend, 'v2-v2 session');
    const alice = party(p);
    const bob = party(p);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundleV2(), { provider: p });
    expect(a.sessionVersion).toBe(2);
    const b = new SessionRecord(p);
    const first = a.encryptWithTag(Uint8Array.of(1));
    expect(first.frankingTag).toHaveLength(32);
    expect((decodeCbor(first.message, 'm', 1 << 16) as unknown[])[0]).toBe(2);
    // The tag is delivered beside the message (formats-v2 §4.3); without it a v2 message is refused.
    expectUnchanged(b, () => b.decrypt(first.message, { device: bob.device, prekeys: bob.prekeys }), 'MALFORMED');
    const opened = b.decrypt(first.message, { device: bob.device, prekeys: bob.prekeys, frankingTag: first.frankingTag as Uint8Array });
    expect(opened.newSession).toBe(true);
    expect(opened.plaintext).toEqual(Uint8Array.of(1));
    expect(b.sessionVersion).toBe(2);
    for (let i = 0; i < 4; i++) {
      const back = b.encryptWithTag(Uint8Array.of(10 + i));
      // No ratchet public key of Bob's in clear: the header is encrypted.
      expect(a.decrypt(back.message, { frankingTag: back.frankingTag as Uint8Array }).plaintext).toEqual(Uint8Array.of(10 + i));
      const forth = a.encryptWithTag(Uint8Array.of(20 + i));
      expect(b.decrypt(forth.message, { frankingTag: forth.frankingTag as Uint8Array }).plaintext).toEqual(Uint8Array.of(20 + i));
    }
    // A tag that does not match the content is refused with the record unchanged.
    const next = a.encryptWithTag(Uint8Array.of(99));
    const wrongTag = Uint8Array.from(next.frankingTag as Uint8Array);
    wrongTag[0] = (wrongTag[0] as number) ^ 1;
    const refused = codeOf(() => b.decrypt(next.message, { frankingTag: wrongTag }));
    expect(['FRANKING_TAG_MISMATCH', 'DECRYPT_FAILED']).toContain(refused);
    expect(b.decrypt(next.message, { frankingTag: next.frankingTag as Uint8Array }).plaintext).toEqual(Uint8Array.of(99));
  });

  it('a rewritten version list makes the first v2 message fail and leaves the prekey store unchanged', () => {
    const p = seeded(backend, 'v2 rewritten');
    const alice = party(p);
    const bob = party(p);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundleV2(), { provider: p });
    const first = a.encryptWithTag(Uint8Array.of(1));
    const fields = decodeCbor(first.message, 'm', 1 << 16) as unknown[];
    // PreKeyMessageV2 = [2, 1, cert, baseKey, spkId, otkId, kemId, kemCt, versions, message]: claim [1, 2, 3].
    fields[8] = [1, 2, 3];
    const rewritten = encodeCbor(fields as never);
    const b = new SessionRecord(p);
    const store = toHex(bob.prekeys.serialize());
    const code = codeOf(() =>
      b.decrypt(rewritten, { device: bob.device, prekeys: bob.prekeys, frankingTag: first.frankingTag as Uint8Array }),
    );
    expect(['DECRYPT_FAILED', 'HEADER_DECRYPT_FAILED']).toContain(code);
    expect(b.hasSession).toBe(false);
    expect(toHex(bob.prekeys.serialize())).toBe(store);
  });

  it('a device offering [1] only talks version 1 with a v2 bundle', () => {
    const p = seeded(backend, 'v1-only session');
    const alice = party(p);
    const bob = party(p);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundleV2(), { provider: p, localVersions: [1] });
    talk(a, new SessionRecord(p), bob);
  });

  it('initiate refuses a v1 bundle of a device pinned at 2, leaving the record as it was', () => {
    const p = seeded(backend, 'record pin');
    const alice = party(p);
    const bob = party(p);
    const { a } = establish(alice, bob);
    const e = expectUnchanged(a, () => a.initiate(alice.device, bob.prekeys.bundle(), { minVersion: 2 }), 'DOWNGRADE_REFUSED');
    expect(e.details).toMatchObject({ version: 1, minVersion: 2 });
  });

  it('decrypt refuses a v1 PreKeyMessage from a device pinned at 2; record and prekey store unchanged', () => {
    const p = seeded(backend, 'decrypt pin');
    const alice = party(p);
    const bob = party(p);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: p });
    const first = a.encrypt(Uint8Array.of(7));
    const b = new SessionRecord(p);
    const store = toHex(bob.prekeys.serialize());
    expectUnchanged(b, () => b.decrypt(first, { device: bob.device, prekeys: bob.prekeys, minVersion: 2 }), 'DOWNGRADE_REFUSED');
    expect(toHex(bob.prekeys.serialize())).toBe(store);
    // The same message from an unpinned device, or to a device offering [1] only, is accepted.
    expect(b.decrypt(first, { device: bob.device, prekeys: bob.prekeys, minVersion: 2, localVersions: [1] }).plaintext).toEqual(
      Uint8Array.of(7),
    );
  });
});
