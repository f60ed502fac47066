// Property tests of the newest decoders (sealed group envelopes, key wraps,
// seals, abuse reports, moderator tokens, attachment pointers, the Content
// pointer reader, the blob check) against arbitrary bytes and hostile
// variants of valid encodings (support/cbor-mutations.ts): each either
// answers a value that re-encodes to exactly its input, or throws a
// ParleyError with a decoding code; nothing else, ever. The opens on top
// (seal, group payload, blob check) answer their own typed refusal, and
// whatever still opens is the original. Input sizes are bounded, so every
// run ends; a hang would time the test out.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttachmentBlobCheck } from '../src/attachment/check.ts';
import { contentAttachmentPointers } from '../src/attachment/content.ts';
import { ciphertextSizeOf } from '../src/attachment/format.ts';
import { decodePointerFields, encodePointerFields } from '../src/attachment/pointer.ts';
import { bytesEqual } from '../src/bytes.ts';
import { encodeCbor } from '../src/codec/cbor.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { type AbuseReport, decodeReport, encodeReport } from '../src/franking/report.ts';
import { decodeModeratorToken, encodeModeratorToken } from '../src/franking/token.ts';
import { Account, certificateHash, cryptoProvider, seal } from '../src/index.ts';
import { sealZeroBlob } from './support/attachment-fixtures.ts';
import { DECODE_CODES, mutatedCbor, typedOutcome } from './support/cbor-mutations.ts';

const provider = cryptoProvider(nodeBackend);
const b = provider.backend;
const RUNS = { numRuns: 250 };

/** A decoder whose output re-encodes: its property, for one valid sample. */
interface Codec {
  readonly name: string;
  readonly valid: Uint8Array;
  decode(bytes: Uint8Array): unknown;
  encode(value: never): Uint8Array;
}

// ---- valid samples -----------------------------------------------------------

const sender = Account.generate(provider).createDevice(3, provider);
const recipient = Account.generate(provider).createDevice(1, provider);
const tokenHash = seal.deliveryTokenHash(recipient.accountKey, seal.newDeliveryToken(provider), provider);
const groupMessage = b.randomBytes(200);
const { payload, wrap } = seal.sealGroupPayload(groupMessage, provider);
const sealed = seal.sealToContact(
  {
    recipientIdentityKey: recipient.certificate.identityKey,
    recipientCertificateHash: certificateHash(recipient.certificate, provider),
    senderIdentityPrivateKey: sender.identityKeyPair.privateKey,
    senderDeviceId: sender.deviceId,
    tokenHash,
    frankingTag: null,
    message: wrap,
  },
  provider,
);
const envelope = seal.encodeSealedGroupEnvelope({ seal: sealed, payload });

const pointerFields = {
  id: 'blob-1_A',
  key: b.randomBytes(32),
  digest: b.randomBytes(32),
  plaintextSize: 300,
  ciphertextSize: ciphertextSizeOf(300, 64),
  chunkSize: 64,
  contentType: 'image/jpeg',
  fileName: 'photo.jpg',
};
const pointer = encodePointerFields(pointerFields);
const fileContent = encodeCbor([2, 2, b.randomBytes(16), new Uint8Array(8), 0, null, [pointer, 'look'], null]);

const token = {
  keyId: 20_000,
  expiresAt: new Uint8Array(8).fill(1),
  ephemeralKey: b.randomBytes(32),
  sealedSender: b.randomBytes(52),
  signature: b.randomBytes(64),
};
const item = (role: 1 | 2) => ({
  role,
  envelopeId: b.randomBytes(16),
  acceptedAt: new Uint8Array(8).fill(2),
  frankKeyId: 20_000,
  frank: b.randomBytes(32),
  recipientDevice: 1,
  frankingTag: b.randomBytes(32),
  frankingKey: b.randomBytes(32),
  sender: { accountKey: b.randomBytes(32), deviceId: 2 },
  plaintext: fileContent,
  token: role === 2 ? token : null,
  attestation: role === 2 ? b.randomBytes(64) : null,
  attachments: [{ pointerIndex: 0, blob: role === 1 ? null : b.randomBytes(20) }],
});
const report: AbuseReport = { reason: 3, comment: 'threat ✉', items: [item(1), item(2)] };

const codecs: Codec[] = [
  { name: 'Seal', valid: sealed, decode: seal.decodeSeal, encode: seal.encodeSeal },
  {
    name: 'SealedInner',
    valid: seal.encodeSealedInner({ senderDeviceId: 3, message: wrap }),
    decode: seal.decodeSealedInner,
    encode: seal.encodeSealedInner,
  },
  { name: 'GroupKeyWrap', valid: wrap, decode: seal.decodeGroupKeyWrap, encode: seal.encodeGroupKeyWrap },
  { name: 'SealedGroupEnvelope', valid: envelope, decode: seal.decodeSealedGroupEnvelope, encode: seal.encodeSealedGroupEnvelope },
  { name: 'AbuseReport', valid: encodeReport(report), decode: decodeReport, encode: encodeReport },
  { name: 'ModeratorToken', valid: encodeModeratorToken(token), decode: decodeModeratorToken, encode: encodeModeratorToken },
  { name: 'AttachmentPointer', valid: pointer, decode: decodePointerFields, encode: encodePointerFields },
];

/** One decode: a typed refusal, or a value whose encoding is the input (one encoding per value). */
function checkDecode(c: Codec, bytes: Uint8Array): void {
  const r = typedOutcome(() => c.decode(bytes), DECODE_CODES);
  if (r.ok) expect(bytesEqual(c.encode(r.value as never), bytes), `${c.name} re-encodes to its input`).toBe(true);
}

describe('strict decoders under hostile input', () => {
  for (const c of codecs) {
    it(`${c.name}: a valid encoding round-trips`, () => {
      expect(bytesEqual(c.encode(c.decode(c.valid) as never), c.valid)).toBe(true);
    });

    it(`${c.name}: arbitrary bytes and mutations of a valid encoding answer a value or a decoding code`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => checkDecode(c, bytes)),
        RUNS,
      );
      fc.assert(
        fc.property(mutatedCbor(c.valid), (bytes) => checkDecode(c, bytes)),
        RUNS,
      );
    });
  }

  it('the Content pointer reader never throws, and finds a pointer only where the valid one was', () => {
    expect(contentAttachmentPointers(fileContent).map((p) => bytesEqual(p, pointer))).toEqual([true]);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), mutatedCbor(fileContent)), (bytes) => {
        const found = contentAttachmentPointers(bytes);
        expect(Array.isArray(found)).toBe(true);
        expect(found.length).toBeLessThanOrEqual(1);
        for (const p of found) expect(p).toBeInstanceOf(Uint8Array);
      }),
      RUNS,
    );
  });
});

describe('the code names what is wrong', () => {
  // A future version is UNSUPPORTED_VERSION (a newer peer: upgrade); anything that is not even a
  // versioned array is MALFORMED (garbage), for every structure alike.
  const cases: [string, Codec['decode'], unknown[]][] = [
    ['AbuseReport', decodeReport, [3, 1, '', []]],
    ['Seal', seal.decodeSeal, [3, 5, 1, new Uint8Array(32), new Uint8Array(8), new Uint8Array(16)]],
    ['GroupKeyWrap', seal.decodeGroupKeyWrap, [3, 6, new Uint8Array(32), new Uint8Array(32)]],
    ['SealedGroupEnvelope', seal.decodeSealedGroupEnvelope, [3, 7, new Uint8Array(1), new Uint8Array(16)]],
    ['AttachmentPointer', decodePointerFields, [2, 'id']],
  ];
  for (const [name, decode, later] of cases) {
    it(`${name}: a later version is UNSUPPORTED_VERSION; a bare value, an empty array or a text version is MALFORMED`, () => {
      expect(typedOutcome(() => decode(encodeCbor(later as never)), DECODE_CODES)).toEqual({ ok: false, code: 'UNSUPPORTED_VERSION' });
      for (const garbage of [42, 'x', [], ['2', 1], [null], new Uint8Array(4)]) {
        expect(
          typedOutcome(() => decode(encodeCbor(garbage as never)), DECODE_CODES),
          JSON.stringify(garbage),
        ).toEqual({
          ok: false,
          code: 'MALFORMED',
        });
      }
    });
  }
});

describe('opens under hostile input', () => {
  const openParams = (bytes: Uint8Array) => ({
    seal: bytes,
    recipientIdentityPrivateKey: recipient.identityKeyPair.privateKey,
    recipientCertificateHash: certificateHash(recipient.certificate, provider),
    tokenHash,
    frankingTag: null,
    candidates: [{ deviceId: sender.deviceId, identityKey: sender.certificate.identityKey }],
  });

  it('a mutated seal is refused with a typed code; whatever opens is the original wrap from the original device', () => {
    expect(bytesEqual(seal.openContactSeal(openParams(sealed), provider).message, wrap)).toBe(true);
    fc.assert(
      fc.property(mutatedCbor(sealed), (bytes) => {
        const r = typedOutcome(() => seal.openContactSeal(openParams(bytes), provider), [...DECODE_CODES, 'SEAL_FAILED', 'BAD_PUBLIC_KEY']);
        if (r.ok) {
          expect(bytesEqual(r.value.message, wrap)).toBe(true);
          expect(r.value.senderDeviceId).toBe(sender.deviceId);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a mutated key wrap or payload is refused with a typed code; whatever opens is the original group message', () => {
    expect(bytesEqual(seal.openGroupPayload(wrap, payload, provider), groupMessage)).toBe(true);
    const codes = [...DECODE_CODES, 'SEAL_FAILED'];
    fc.assert(
      fc.property(fc.oneof(mutatedCbor(wrap), fc.uint8Array({ maxLength: 100 })), (w) => {
        const r = typedOutcome(() => seal.openGroupPayload(w, payload, provider), codes);
        if (r.ok) expect(bytesEqual(r.value, groupMessage)).toBe(true);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.nat(payload.length - 1).map((n) => payload.subarray(0, n)),
          fc.tuple(fc.nat(payload.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, bits]) => {
            const out = payload.slice();
            out[at] = (out[at] as number) ^ bits;
            return out;
          }),
        ),
        (p) => {
          const r = typedOutcome(() => seal.openGroupPayload(wrap, p, provider), codes);
          if (r.ok) expect(bytesEqual(r.value, groupMessage)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('the blob check answers a reason, never throws, for any damage and any split of the blob', () => {
    const { blob, key, digest } = sealZeroBlob(b, 300, 64);
    const info = { key, digest, plaintextSize: 300, ciphertextSize: blob.length, chunkSize: 64 };
    const damaged = fc.oneof(
      fc.constant(blob),
      fc.nat(blob.length - 1).map((n) => blob.subarray(0, n)),
      fc.uint8Array({ minLength: 1, maxLength: 70 }).map((extra) => Uint8Array.from([...blob, ...extra])),
      fc.tuple(fc.nat(blob.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, bits]) => {
        const out = blob.slice();
        out[at] = (out[at] as number) ^ bits;
        return out;
      }),
      fc.uint8Array({ maxLength: blob.length + 10 }),
    );
    fc.assert(
      fc.property(damaged, fc.array(fc.integer({ min: 1, max: 90 }), { minLength: 1, maxLength: 8 }), (bytes, steps) => {
        const check = new AttachmentBlobCheck(b, info);
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const step = steps[i % steps.length] as number;
          check.update(bytes.subarray(at, at + step));
          at += step;
        }
        const failure = check.finish();
        if (failure === null) expect(bytesEqual(bytes, blob)).toBe(true);
        else expect(['length', 'header', 'wrong-key', 'chunk-auth', 'digest']).toContain(failure);
      }),
      RUNS,
    );
  });
});
