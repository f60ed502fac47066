// The franking tag (spec/design/formats-v2.md §6.1) against
// test-vectors/franking.json, with each backend.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { type RelayFrankInput, checkRelayFrank, frankKeyExpired, relayFrank } from '../src/franking/frank.ts';
import { checkFrankingTag, frankingTag } from '../src/franking/tag.ts';
import {
  attestFrankingTag,
  checkModeratorToken,
  decodeModeratorToken,
  encodeModeratorToken,
  issueModeratorToken,
  openTokenHolder,
  tokenRef,
} from '../src/franking/token.ts';
import { FRANKING_FILE, buildFranking } from './support/franking-vectors.ts';

const TEXT = readFileSync(FRANKING_FILE, 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
const VECTORS: any = JSON.parse(TEXT);
// biome-ignore lint/suspicious/noExplicitAny: as above.
const group = (type: string): any[] => VECTORS.testGroups.find((g: { type: string }) => g.type === type).tests;

it('test-vectors/franking.json equals the generator output byte for byte', () => {
  expect(TEXT === buildFranking()).toBe(true);
});

for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
  describe(`franking tags with the ${backend.name} backend`, () => {
    const sender = (t: { senderAccount: string; senderDeviceId: number }) => ({
      accountKey: fromHex(t.senderAccount),
      deviceId: t.senderDeviceId,
    });
    it('computes every valid tag and accepts it', () => {
      for (const t of group('FrankingTag')) {
        expect(toHex(frankingTag(backend, fromHex(t.frankingKey), sender(t), fromHex(t.plaintext))), t.comment).toBe(t.tag);
        expect(checkFrankingTag(backend, fromHex(t.frankingKey), sender(t), fromHex(t.plaintext), fromHex(t.tag))).toBe(true);
      }
    });
    it('refuses every mismatching tag', () => {
      for (const t of group('FrankingTagMismatch')) {
        expect(checkFrankingTag(backend, fromHex(t.frankingKey), sender(t), fromHex(t.plaintext), fromHex(t.tag)), t.comment).toBe(false);
      }
    });
  });
}

// biome-ignore lint/suspicious/noExplicitAny: vector JSON.
const frankInput = (t: any): RelayFrankInput => ({
  keyId: t.keyId,
  frankingTag: fromHex(t.frankingTag),
  recipient: { accountKey: fromHex(t.recipientAccount), deviceId: t.recipientDevice },
  acceptedAt: t.acceptedAt,
  envelopeId: fromHex(t.envelopeId),
  sender: t.sender === null ? null : { accountKey: fromHex(t.sender.accountKey), deviceId: t.sender.deviceId },
});

for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
  describe(`relay franks with the ${backend.name} backend`, () => {
    it('computes every valid frank and accepts it', () => {
      for (const t of group('RelayFrank')) {
        expect(toHex(relayFrank(backend, fromHex(t.frankKey), frankInput(t))), t.comment).toBe(t.frank);
        expect(checkRelayFrank(backend, fromHex(t.frankKey), frankInput(t), fromHex(t.frank))).toBe(true);
      }
    });
    it('refuses a frank when any franked field differs (FRANK_INVALID)', () => {
      for (const t of group('RelayFrankInvalid')) {
        expect(checkRelayFrank(backend, fromHex(t.frankKey), frankInput(t), fromHex(t.frank)), t.comment).toBe(false);
      }
    });
  });
}

for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
  describe(`moderator tokens with the ${backend.name} backend`, () => {
    it('issues the vector token, attests the tag, the receiver check passes and the moderator opens the holder', () => {
      for (const t of group('ModeratorToken')) {
        const token = issueModeratorToken(backend, {
          moderatorSeed: fromHex(t.moderatorSeed),
          tokenKey: fromHex(t.tokenKey),
          keyId: t.keyId,
          expiresAt: t.expiresAt,
          ephemeralKey: backend.ed25519PublicKey(fromHex(t.ephemeralSeed)),
          holder: { accountKey: fromHex(t.holder.accountKey), deviceId: t.holder.deviceId },
        });
        expect(toHex(encodeModeratorToken(token))).toBe(t.token);
        expect(toHex(tokenRef(backend, token))).toBe(t.tokenRef);
        expect(toHex(attestFrankingTag(backend, fromHex(t.ephemeralSeed), fromHex(t.frankingTag)))).toBe(t.attestation);
        expect(
          checkModeratorToken(backend, fromHex(t.moderatorKey), token, t.acceptedAt, fromHex(t.frankingTag), fromHex(t.attestation)),
        ).toBe('ok');
        const holder = openTokenHolder(backend, fromHex(t.tokenKey), token);
        expect([toHex(holder?.accountKey as Uint8Array), holder?.deviceId]).toEqual([t.holder.accountKey, t.holder.deviceId]);
        expect(openTokenHolder(backend, new Uint8Array(32), token)).toBeNull();
      }
    });
    it('refuses a token of another moderator, a damaged signature, an expired token, an attestation over another tag', () => {
      for (const t of group('ModeratorTokenInvalid')) {
        const check = checkModeratorToken(
          backend,
          fromHex(t.moderatorKey),
          decodeModeratorToken(fromHex(t.token)),
          t.acceptedAt,
          fromHex(t.frankingTag),
          fromHex(t.attestation),
        );
        expect(check, t.comment).toBe(t.check);
      }
    });
  });
}

it('frank keys are destroyed 90 days after their period', () => {
  for (const t of group('FrankKeyExpiry')) expect(frankKeyExpired(t.keyId, t.now), t.comment).toBe(t.expired);
});

it('refuses misuse: a key or account of the wrong length, a device id out of range', () => {
  const k = new Uint8Array(32);
  expect(() => frankingTag(nobleBackend, new Uint8Array(31), { accountKey: k, deviceId: 1 }, k)).toThrow(RangeError);
  expect(() => frankingTag(nobleBackend, k, { accountKey: new Uint8Array(33), deviceId: 1 }, k)).toThrow(RangeError);
  expect(() => frankingTag(nobleBackend, k, { accountKey: k, deviceId: -1 }, k)).toThrow(RangeError);
});
