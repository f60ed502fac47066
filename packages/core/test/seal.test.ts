// The seal (spec/12-sealed-sender.md §4) and delivery-token hashes (§3):
// round trip over a real v1 session, the overhead, and every refusal typed
// with the inner session left byte-identical.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { concatBytes, cryptoProvider, encodeCbor, fromHex, seal, toHex } from '../src/index.ts';
import { certificateHash } from '../src/keys/device-list.ts';
import { backends, establish, party, str, text } from './support/parties.ts';
import { codeOf, expectCode, expectUnchanged } from './support/errors.ts';
import type { Party } from './support/parties.ts';
import { SEAL_FILE, buildSeal } from './support/seal-vectors.ts';

const {
  MAX_SEAL_CANDIDATES,
  assertSealSender,
  decodeSeal,
  deliveryTokenHash,
  encodeSeal,
  newDeliveryToken,
  openContactSeal,
  sealToContact,
} = seal;

function sealFrom(sender: Party, recipient: Party, tokenHash: Uint8Array, message: Uint8Array, frankingTag: Uint8Array | null = null) {
  return sealToContact(
    {
      recipientIdentityKey: recipient.device.certificate.identityKey,
      recipientCertificateHash: certificateHash(recipient.device.certificate, recipient.provider),
      senderIdentityPrivateKey: sender.device.identityKeyPair.privateKey,
      senderDeviceId: sender.device.deviceId,
      tokenHash,
      frankingTag,
      message,
    },
    sender.provider,
  );
}

function openAt(
  recipient: Party,
  sealBytes: Uint8Array,
  tokenHash: Uint8Array,
  candidates: Party[],
  frankingTag: Uint8Array | null = null,
) {
  return openContactSeal(
    {
      seal: sealBytes,
      recipientIdentityPrivateKey: recipient.device.identityKeyPair.privateKey,
      recipientCertificateHash: certificateHash(recipient.device.certificate, recipient.provider),
      tokenHash,
      frankingTag,
      candidates: candidates.map((c) => ({ deviceId: c.device.deviceId, identityKey: c.device.certificate.identityKey })),
    },
    recipient.provider,
  );
}

describe.each(backends.map((b) => [b.name, b] as const))('seal (%s backend)', (_name, backend) => {
  const provider = cryptoProvider(backend);

  it('wraps a v1 ratchet message unchanged; the inner session decrypts it and the sender check holds', () => {
    const alice = party(provider, 3);
    const bob = party(provider);
    const { a, b } = establish(alice, bob);
    const token = newDeliveryToken(provider);
    const th = deliveryTokenHash(bob.account.publicKey, token, provider);
    const inner = a.encrypt(text('sealed hello'));
    const sealed = sealFrom(alice, bob, th, inner);
    const other = party(provider, 1);
    const opened = openAt(bob, sealed, th, [other, alice]);
    expect(opened.senderDeviceId).toBe(3);
    expect(toHex(opened.message)).toBe(toHex(inner));
    const r = b.decrypt(opened.message);
    expect(str(r.plaintext)).toBe('sealed hello');
    assertSealSender(opened, b.remoteCertificate?.identityKey ?? new Uint8Array(32));
    // The sealed bytes name neither the sender's account, device certificate nor identity key.
    const hex = toHex(sealed);
    for (const secret of [alice.account.publicKey, alice.device.certificate.identityKey, alice.device.certificate.signingKey]) {
      expect(hex.includes(toHex(secret))).toBe(false);
    }
  });

  it('adds under 100 bytes (69-72 for mode 1) to the message it wraps', () => {
    const alice = party(provider, 1);
    const bob = party(provider);
    const { a } = establish(alice, bob);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    for (const size of [1, 100, 1000, 60_000]) {
      const inner = a.encrypt(new Uint8Array(size));
      const overhead = sealFrom(alice, bob, th, inner).length - inner.length;
      expect(overhead).toBeGreaterThanOrEqual(69);
      expect(overhead).toBeLessThanOrEqual(72);
    }
  });

  it('refuses a seal from a sender that is not among the token’s contact devices (SEAL_FAILED), the session unchanged', () => {
    const alice = party(provider);
    const mallory = party(provider);
    const bob = party(provider);
    const { a, b } = establish(alice, bob);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    // Mallory seals Alice's (replayed) ratchet message with her own key: only Alice's devices are candidates.
    const forged = sealFrom(mallory, bob, th, a.encrypt(text('x')));
    expectUnchanged(b, () => b.decrypt(openAt(bob, forged, th, [alice]).message), 'SEAL_FAILED');
  });

  it('refuses a seal moved to another token, another recipient device or another franking tag', () => {
    const alice = party(provider);
    const bob = party(provider);
    const bob2 = party(provider, 2);
    const { a } = establish(alice, bob);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    const th2 = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    const tag = new Uint8Array(32).fill(1);
    const sealed = sealFrom(alice, bob, th, a.encrypt(text('x')), tag);
    expectCode(() => openAt(bob, sealed, th2, [alice], tag), 'SEAL_FAILED');
    expectCode(() => openAt(bob, sealed, th, [alice], new Uint8Array(32).fill(2)), 'SEAL_FAILED');
    expectCode(() => openAt(bob, sealed, th, [alice], null), 'SEAL_FAILED');
    expectCode(() => openAt(bob2, sealed, th, [alice], tag), 'SEAL_FAILED');
    expect(openAt(bob, sealed, th, [alice], tag).senderDeviceId).toBe(1);
  });

  it('refuses every flipped byte of the seal with a typed error', () => {
    const alice = party(provider);
    const bob = party(provider);
    const { a } = establish(alice, bob);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    const sealed = sealFrom(alice, bob, th, a.encrypt(text('flip')));
    const codes = new Set<string>();
    for (let i = 0; i < sealed.length; i += 3) {
      const bad = sealed.slice();
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      const code = codeOf(() => openAt(bob, bad, th, [alice]));
      expect(code).not.toBe('NO_ERROR');
      codes.add(code);
    }
    for (const c of codes) expect(['MALFORMED', 'UNSUPPORTED_VERSION', 'BAD_PUBLIC_KEY', 'SEAL_FAILED', 'OVERSIZED']).toContain(c);
    expect(codes.has('SEAL_FAILED')).toBe(true);
  });

  it('refuses a sender device id that is not the candidate that authenticated', () => {
    const alice1 = party(provider, 1);
    const bob = party(provider);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    // Alice's device 1 claims to be device 2 of her account inside the seal.
    const sealed = sealToContact(
      {
        recipientIdentityKey: bob.device.certificate.identityKey,
        recipientCertificateHash: certificateHash(bob.device.certificate, provider),
        senderIdentityPrivateKey: alice1.device.identityKeyPair.privateKey,
        senderDeviceId: 2,
        tokenHash: th,
        frankingTag: null,
        message: text('m'),
      },
      provider,
    );
    expect(expectCode(() => openAt(bob, sealed, th, [alice1]), 'SEAL_FAILED').details.reason).toBe('device-id');
  });

  it('names a sealed sender that is not the inner session’s peer (SEAL_SENDER_MISMATCH)', () => {
    const alice = party(provider);
    const carol = party(provider);
    const bob = party(provider);
    const { a, b } = establish(alice, bob);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    // Carol re-seals Alice's ratchet message under her own key and token (she is Bob's contact too).
    const sealed = sealFrom(carol, bob, th, a.encrypt(text('relayed')));
    const opened = openAt(bob, sealed, th, [carol]);
    b.decrypt(opened.message);
    expectCode(() => assertSealSender(opened, b.remoteCertificate?.identityKey ?? new Uint8Array(32)), 'SEAL_SENDER_MISMATCH');
  });

  it('a replayed seal reaches the inner session, which refuses it as DUPLICATE_MESSAGE with the state unchanged', () => {
    const alice = party(provider);
    const bob = party(provider);
    const { a, b } = establish(alice, bob);
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    const sealed = sealFrom(alice, bob, th, a.encrypt(text('once')));
    b.decrypt(openAt(bob, sealed, th, [alice]).message);
    expectUnchanged(b, () => b.decrypt(openAt(bob, sealed, th, [alice]).message), 'DUPLICATE_MESSAGE');
  });

  it('tries at most MAX_SEAL_CANDIDATES devices', () => {
    const bob = party(provider);
    const senders = Array.from({ length: MAX_SEAL_CANDIDATES + 1 }, (_, i) => party(provider, i + 1));
    const last = senders[MAX_SEAL_CANDIDATES];
    const th = deliveryTokenHash(bob.account.publicKey, newDeliveryToken(provider), provider);
    const sealed = sealFrom(last as Party, bob, th, text('m'));
    const e = expectCode(() => openAt(bob, sealed, th, senders), 'SEAL_FAILED');
    expect(e.details.candidates).toBe(MAX_SEAL_CANDIDATES);
    expect(openAt(bob, sealed, th, [last as Party]).senderDeviceId).toBe(MAX_SEAL_CANDIDATES + 1);
  });

  it('decodes strictly: versions, types, modes, sizes', () => {
    const enc = new Uint8Array(32).fill(9);
    const ct = new Uint8Array(16);
    expect(codeOf(() => decodeSeal(encodeCbor([3, 5, 1, enc, new Uint8Array(8), ct])))).toBe('UNSUPPORTED_VERSION');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 2, 1, enc, new Uint8Array(8), ct])))).toBe('MALFORMED');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 5, 3, enc, new Uint8Array(8), ct])))).toBe('MALFORMED');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 5, 1, enc, null, ct])))).toBe('MALFORMED');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 5, 2, enc, new Uint8Array(8), ct])))).toBe('MALFORMED');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 5, 1, enc, new Uint8Array(7), ct])))).toBe('MALFORMED');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 5, 1, enc, new Uint8Array(8), new Uint8Array(15)])))).toBe('MALFORMED');
    expect(codeOf(() => decodeSeal(encodeCbor([2, 5, 1, enc, new Uint8Array(8)])))).toBe('MALFORMED');
    const ok = encodeSeal({ mode: 1, enc, check: new Uint8Array(8), ciphertext: ct });
    expect(decodeSeal(ok).mode).toBe(1);
    expect(codeOf(() => decodeSeal(concatBytes(ok, Uint8Array.of(0))))).toBe('MALFORMED');
  });

  it('token hashes bind the recipient account', () => {
    const token = fromHex('11'.repeat(32));
    const a1 = fromHex('aa'.repeat(32));
    const a2 = fromHex('bb'.repeat(32));
    expect(toHex(deliveryTokenHash(a1, token, provider))).not.toBe(toHex(deliveryTokenHash(a2, token, provider)));
    expect(toHex(deliveryTokenHash(a1, token, provider))).toBe(
      toHex(provider.backend.sha256(encodeCbor(['Parley v2 delivery token', a1, token]))),
    );
  });
});

describe('test-vectors/seal.json', () => {
  const text = readFileSync(SEAL_FILE, 'utf8');
  // biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
  const vectors: any = JSON.parse(text);
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  const group = (type: string): any[] => vectors.testGroups.find((g: { type: string }) => g.type === type).tests;

  it('equals the generator output byte for byte', () => {
    expect(text === buildSeal()).toBe(true);
  });

  it.each(backends.map((b) => [b.name, b] as const))('opens every valid seal and refuses every invalid one (%s backend)', (_n, backend) => {
    const provider = cryptoProvider(backend);
    for (const t of group('SealValid')) {
      const opened = openContactSeal(
        {
          seal: fromHex(t.seal),
          recipientIdentityPrivateKey: fromHex(t.skR),
          recipientCertificateHash: fromHex(t.recipientCertificateHash),
          tokenHash: fromHex(t.tokenHash),
          frankingTag: t.frankingTag === null ? null : fromHex(t.frankingTag),
          candidates: [{ deviceId: t.senderDeviceId, identityKey: fromHex(t.pkS) }],
        },
        provider,
      );
      expect(toHex(opened.message)).toBe(t.message);
      expect(t.overhead).toBeLessThan(100);
    }
    for (const t of group('SealOpenInvalid')) {
      const code = codeOf(() =>
        openContactSeal(
          {
            seal: fromHex(t.seal),
            recipientIdentityPrivateKey: fromHex(t.skR),
            recipientCertificateHash: fromHex(t.recipientCertificateHash),
            tokenHash: fromHex(t.tokenHash),
            frankingTag: t.frankingTag === null ? null : fromHex(t.frankingTag),
            candidates: t.candidates.map((c: { deviceId: number; identityKey: string }) => ({
              deviceId: c.deviceId,
              identityKey: fromHex(c.identityKey),
            })),
          },
          provider,
        ),
      );
      expect(code, `tcId ${t.tcId}`).toBe(t.error);
    }
    for (const t of group('GroupPayload')) {
      expect(toHex(seal.openGroupPayload(fromHex(t.wrap), fromHex(t.payload), provider))).toBe(t.message);
      const again = seal.sealGroupPayload(
        fromHex(t.message),
        cryptoProvider(backend, () => fromHex(t.key)),
      );
      expect(toHex(again.payload)).toBe(t.payload);
      expect(toHex(again.wrap)).toBe(t.wrap);
    }
    for (const t of group('GroupPayloadInvalid')) {
      expect(
        codeOf(() => seal.openGroupPayload(fromHex(t.wrap), fromHex(t.payload), provider)),
        `tcId ${t.tcId}`,
      ).toBe(t.error);
    }
    for (const t of group('DeliveryTokenHash')) {
      expect(toHex(deliveryTokenHash(fromHex(t.recipientAccount), fromHex(t.token), provider))).toBe(t.tokenHash);
    }
  });
});
