// Property test of the delivery record check (spec/17-franking-and-reports.md
// §4) in the relay client: whatever JSON a relay puts in `delivery` (any
// value, or a valid record with one field dropped, retyped, stretched or
// made non-canonical), decodeDelivered never throws for it. The envelope
// goes on, with the record decoded (every field of its exact form, and
// re-encoding it gives the same JSON back) or with delivery null and
// deliveryError BAD_DELIVERY_RECORD, so one bad record never blocks a
// mailbox.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BAD_DELIVERY_RECORD, decodeDelivered } from '../src/relay-client/decode.ts';
import { toBase64Url } from '../src/relay-client/index.ts';

const FIELDS = ['envelopeId', 'acceptedAt', 'frankKeyId', 'frank', 'frankingTag'] as const;

const validRecord = fc.record({
  envelopeId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(toBase64Url),
  acceptedAt: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  frankKeyId: fc.nat({ max: 0xffffffff }),
  frank: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64Url),
  frankingTag: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64Url),
});

/** A value in place of one field: wrong type, wrong length, padding, a stray or non-ASCII character, edge numbers. */
const hostileField = fc.oneof(
  fc.constantFrom<unknown>(null, undefined, true, '', '=', 0, -1, 1.5, 2 ** 32, 2 ** 53, Number.NaN, [], {}, '\u00e9'.repeat(43)),
  fc.uint8Array({ maxLength: 40 }).map(toBase64Url),
  fc.uint8Array({ maxLength: 40 }).map((b) => `${toBase64Url(b)}=`),
  fc
    .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom('B', 'C', '+', '/', ' ', '\n'))
    .map(([b, c]) => `${toBase64Url(b).slice(0, 42)}${c}`),
  fc.string({ maxLength: 50 }),
  fc.double(),
);

const wire = (delivery: unknown) => ({
  seq: 1,
  sender: { account: toBase64Url(new Uint8Array(32)), deviceId: 1 },
  id: 'x',
  serverTimestamp: 1,
  expiresAt: 2,
  envelope: toBase64Url(Uint8Array.of(1, 2, 3)),
  delivery: delivery as never,
});

function check(delivery: unknown): void {
  const env = decodeDelivered(wire(delivery));
  expect(env.envelope).toEqual(Uint8Array.of(1, 2, 3));
  if (env.delivery === null) {
    if (delivery !== null && delivery !== undefined) expect(env.deliveryError).toBe(BAD_DELIVERY_RECORD);
    return;
  }
  expect(env.deliveryError).toBeUndefined();
  const d = env.delivery;
  expect([d.envelopeId.length, d.frank.length, d.frankingTag.length]).toEqual([16, 32, 32]);
  // Accepted only in its exact form: re-encoded, each field is the one received.
  const o = delivery as Record<string, unknown>;
  expect({
    envelopeId: toBase64Url(d.envelopeId),
    acceptedAt: d.acceptedAt,
    frankKeyId: d.frankKeyId,
    frank: toBase64Url(d.frank),
    frankingTag: toBase64Url(d.frankingTag),
  }).toEqual(Object.fromEntries(FIELDS.map((f) => [f, o[f]])));
}

describe('delivery records under hostile JSON', () => {
  it('any JSON value as a record: decoded in its exact form or BAD_DELIVERY_RECORD, never a throw', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), check), { numRuns: 300 });
  });

  it('a valid record with a field dropped, retyped or misspelt in base64url, or an extra field', () => {
    fc.assert(
      fc.property(validRecord, fc.constantFrom(...FIELDS), hostileField, fc.boolean(), (record, field, value, extra) => {
        check(record);
        const bad: Record<string, unknown> = { ...record, [field]: value };
        if (value === undefined) delete bad[field];
        if (extra) bad['newerField'] = value;
        check(bad);
        // An extra field alone is ignored (a newer relay may add some).
        const decoded = decodeDelivered(wire({ ...record, newerField: value }));
        expect(decoded.delivery).not.toBeNull();
      }),
      { numRuns: 400 },
    );
  });
});
