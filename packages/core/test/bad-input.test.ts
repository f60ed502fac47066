// Every decoder refuses malformed, truncated, oversized, non-canonical and
// unknown-version input with a typed error, and never crashes or hangs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Account,
  DeviceIdentity,
  ParleyError,
  PreKeyStore,
  SessionRecord,
  checkX25519PublicKey,
  cryptoProvider,
  decodeBundle,
  decodeCbor,
  decodeCertificate,
  decodeMessage,
  encodeBundle,
  encodeCbor,
  encodeCertificate,
  fromHex,
  toHex,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { establish, party, text } from './support/parties.ts';
import { codeOf } from './support/errors.ts';

const provider = cryptoProvider(nodeBackend);

describe('strict CBOR', () => {
  it('rejects non-canonical encodings, trailing bytes, maps, tags, floats and deep nesting', () => {
    const cases: [string, string][] = [
      ['9f0102ff', 'indefinite-length array'],
      ['1801', 'over-long integer'],
      ['8201', 'truncated array'],
      ['0100', 'trailing bytes'],
      ['a10102', 'map'],
      ['c11a00000001', 'tag'],
      ['fb3ff0000000000000', 'float'],
      ['5affffffff00', 'byte string longer than the input'],
      ['', 'empty'],
      ['81'.repeat(20) + '00', 'deep nesting'],
      ['1bffffffffffffffff', 'integer beyond 2^53'],
    ];
    for (const [hex, what] of cases) {
      expect(
        codeOf(() => decodeCbor(fromHex(hex), what, 1024)),
        what,
      ).toBe('MALFORMED');
    }
    expect(codeOf(() => decodeCbor(new Uint8Array(2000), 'big', 1024))).toBe('OVERSIZED');
    expect(decodeCbor(encodeCbor([1, fromHex('0102'), 'x', null, true, [2]]), 'ok', 1024)).toEqual([
      1,
      fromHex('0102'),
      'x',
      null,
      true,
      [2],
    ]);
  });

  it('decodes CBOR bytes into fresh arrays that do not alias the input', () => {
    const input = encodeCbor([fromHex('aabb')]);
    const [b] = decodeCbor(input, 'alias', 64) as [Uint8Array];
    const c = new Uint8Array(b);
    input[2] = 0;
    expect(toHex(c)).toBe('aabb');
  });
});

describe('message, bundle, certificate and record decoders', () => {
  const alice = party(provider);
  const bob = party(provider);
  const { a, b } = establish(alice, bob);
  const ratchetMsg = b.encrypt(text('hello'));
  a.decrypt(ratchetMsg);
  const preKeyMsg = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider }).encrypt(text('hi'));
  const bundle = encodeBundle(bob.prekeys.bundle());
  const cert = encodeCertificate(bob.device.certificate);

  it('rejects unknown versions and message types with their own codes', () => {
    // Version 2 is a known message version since ratchet v2 (spec/13-ratchet-v2.md §4): a v1
    // message relabelled 2 is MALFORMED (its 37-byte header is no EncryptedHeader); 3 is unknown.
    const v2 = ratchetMsg.slice();
    v2[1] = 0x02; // [version, ...]: the version is the first array element
    expect(codeOf(() => decodeMessage(v2))).toBe('MALFORMED');
    const v3 = ratchetMsg.slice();
    v3[1] = 0x03;
    expect(codeOf(() => decodeMessage(v3))).toBe('UNSUPPORTED_VERSION');
    const t9 = ratchetMsg.slice();
    t9[2] = 0x09;
    expect(codeOf(() => decodeMessage(t9))).toBe('MALFORMED');
    const certV2 = cert.slice();
    certV2[1] = 0x02;
    expect(codeOf(() => decodeCertificate(certV2))).toBe('UNSUPPORTED_VERSION');
  });

  it('rejects every truncation of every structure', () => {
    for (const bytes of [ratchetMsg, preKeyMsg, bundle, cert]) {
      for (let n = 0; n < bytes.length; n += Math.max(1, Math.floor(bytes.length / 300))) {
        expect(['MALFORMED', 'OVERSIZED']).toContain(codeOf(() => decodeMessage(bytes.subarray(0, n))));
      }
    }
  });

  it('rejects oversized and undersized fields', () => {
    const [v, t, header, ct] = decodeCbor(ratchetMsg, 'm', 1 << 22) as [number, number, Uint8Array, Uint8Array];
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, new Uint8Array(65), ct])))).toBe('OVERSIZED');
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, header, new Uint8Array(15)])))).toBe('MALFORMED');
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, header])))).toBe('MALFORMED');
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, header, ct, 0])))).toBe('MALFORMED');
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, header, 'text'])))).toBe('MALFORMED');
  });

  it('rejects low-order and non-canonical X25519 keys in headers, bundles and certificates', () => {
    const lowOrder = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p: non-canonical
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p+1: non-canonical
      '0900000000000000000000000000000000000000000000000000000000000080', // top bit set
    ].map(fromHex);
    for (const k of lowOrder) expect(codeOf(() => checkX25519PublicKey(k, 'k'))).toBe('BAD_PUBLIC_KEY');
    const [v, t, , ct] = decodeCbor(ratchetMsg, 'm', 1 << 22) as [number, number, Uint8Array, Uint8Array];
    for (const k of lowOrder) {
      expect(codeOf(() => decodeMessage(encodeCbor([v, t, encodeCbor([k, 0, 0]), ct])))).toBe('BAD_PUBLIC_KEY');
    }
    const bf = decodeCbor(bundle, 'b', 4096) as unknown[];
    const spk = (bf[2] as unknown[]).slice();
    spk[1] = lowOrder[0];
    expect(codeOf(() => decodeBundle(encodeCbor([bf[0], bf[1], spk, bf[3], bf[4]] as never)))).toBe('BAD_PUBLIC_KEY');
  });

  it('a wrong-length X25519 key is MALFORMED everywhere: the key check, a header, a bundle, a certificate (one code, 02 §2.3)', () => {
    for (const n of [0, 31, 33, 64]) expect(codeOf(() => checkX25519PublicKey(new Uint8Array(n).fill(9), 'k'))).toBe('MALFORMED');
    const [v, t, , ct] = decodeCbor(ratchetMsg, 'm', 1 << 22) as [number, number, Uint8Array, Uint8Array];
    const short = new Uint8Array(31).fill(9);
    expect(codeOf(() => decodeMessage(encodeCbor([v, t, encodeCbor([short, 0, 0]), ct])))).toBe('MALFORMED');
    const bf = decodeCbor(bundle, 'b', 4096) as unknown[];
    const spk = (bf[2] as unknown[]).slice();
    spk[1] = short;
    expect(codeOf(() => decodeBundle(encodeCbor([bf[0], bf[1], spk, bf[3], bf[4]] as never)))).toBe('MALFORMED');
    const cf = (decodeCbor(encodeCertificate(alice.device.certificate), 'c', 4096) as unknown[]).slice();
    cf[4] = short;
    expect(codeOf(() => decodeCertificate(encodeCbor(cf as never)))).toBe('MALFORMED');
  });

  it('never crashes on random mutations of valid messages (fuzz)', () => {
    const samples = [ratchetMsg, preKeyMsg, bundle, cert];
    fc.assert(
      fc.property(
        fc.nat(samples.length - 1),
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat(), { nil: undefined }),
        (which, edits, cut) => {
          const bytes = (samples[which] as Uint8Array).slice(
            0,
            cut === undefined ? undefined : cut % ((samples[which] as Uint8Array).length + 1),
          );
          for (const e of edits) if (bytes.length) bytes[e.at % bytes.length] = e.value;
          for (const decode of [decodeMessage, decodeBundle, decodeCertificate]) {
            try {
              decode(bytes);
            } catch (err) {
              expect(err).toBeInstanceOf(ParleyError);
            }
          }
          const before = toHex(a.serialize());
          try {
            a.decrypt(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(ParleyError);
            expect(toHex(a.serialize())).toBe(before);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never crashes on arbitrary bytes (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const decode of [decodeMessage, decodeBundle, decodeCertificate, (x: Uint8Array) => SessionRecord.deserialize(x, provider)]) {
          try {
            decode(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(ParleyError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('stored records: malformed is BAD_RECORD, an unknown version UNSUPPORTED_VERSION, and nothing loads partially', () => {
    const record = a.serialize();
    const f = decodeCbor(record, 'r', 1 << 24) as unknown[];
    expect(codeOf(() => SessionRecord.deserialize(encodeCbor(['parley/other', 1, null, []]), provider))).toBe('BAD_RECORD');
    // Session records are at version 2 (spec/13-ratchet-v2.md §8): 3 is the unknown one.
    expect(codeOf(() => SessionRecord.deserialize(encodeCbor([f[0], 3, null, []] as never), provider))).toBe('UNSUPPORTED_VERSION');
    expect(codeOf(() => SessionRecord.deserialize(record.subarray(0, record.length - 1), provider))).toBe('BAD_RECORD');
    const store = bob.prekeys.serialize();
    expect(codeOf(() => PreKeyStore.deserialize(store.subarray(0, 100), bob.device, provider))).toBe('BAD_RECORD');
    expect(codeOf(() => DeviceIdentity.deserialize(encodeCbor(['parley/device-identity', 1, 'x', 'y', 'z']), provider))).toBe('BAD_RECORD');
    expect(codeOf(() => Account.deserialize(encodeCbor(['parley/account', 1, new Uint8Array(31)]), provider))).toBe('BAD_RECORD');
    // A device identity whose keys do not match its certificate.
    const other = Account.generate(provider).createDevice(1, provider);
    const df = decodeCbor(bob.device.serialize(), 'd', 4096) as unknown[];
    const mixed = encodeCbor([df[0], df[1], df[2], (decodeCbor(other.serialize(), 'o', 4096) as unknown[])[3], df[4]] as never);
    expect(codeOf(() => DeviceIdentity.deserialize(mixed, provider))).toBe('BAD_RECORD');
  });
});
