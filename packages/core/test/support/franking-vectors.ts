/**
 * Builds test-vectors/franking.json, the franking-tag part (formats-v2 §6.1,
 * §14): tags computed by src/franking/tag.ts, and tags that a receiver must
 * refuse (FRANKING_TAG_MISMATCH) because they commit to another sender,
 * device, plaintext or key. The franking test checks the checked-in file
 * equals this output; rewrite it on purpose with
 * `node --conditions=parley:source --import tsx packages/core/test/support/franking-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import { toHex, utf8 } from '../../src/bytes.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { frankingTag } from '../../src/franking/tag.ts';
import { deterministicRandom } from '../../src/testing.ts';

export const FRANKING_FILE = new URL('../../../../test-vectors/franking.json', import.meta.url);

export function buildFranking(): string {
  const r = deterministicRandom('parley franking tag');
  const account = r(32);
  const otherAccount = r(32);
  const inputs = [
    { comment: 'short text', key: r(32), deviceId: 1, plaintext: utf8('hi') },
    { comment: 'empty plaintext', key: r(32), deviceId: 7, plaintext: new Uint8Array(0) },
    { comment: 'device id above 23 (two-byte CBOR uint)', key: r(32), deviceId: 300, plaintext: utf8('see you at five') },
    { comment: 'plaintext of 1000 bytes', key: r(32), deviceId: 2, plaintext: r(1000) },
  ];
  let tcId = 1;
  const valid = inputs.map((t) => ({
    tcId: tcId++,
    comment: t.comment,
    frankingKey: toHex(t.key),
    senderAccount: toHex(account),
    senderDeviceId: t.deviceId,
    plaintext: toHex(t.plaintext),
    tag: toHex(frankingTag(nobleBackend, t.key, { accountKey: account, deviceId: t.deviceId }, t.plaintext)),
    result: 'valid',
  }));
  const base = valid[0] as (typeof valid)[number];
  const invalid = [
    { comment: 'the tag of another sender account', senderAccount: toHex(otherAccount) },
    { comment: 'the tag of another device of the same account', senderDeviceId: 2 },
    { comment: 'the tag of another plaintext (one byte changed)', plaintext: toHex(utf8('ho')) },
    { comment: 'the tag under another franking key', frankingKey: toHex(r(32)) },
    { comment: 'a truncated tag (16 bytes)', tag: base.tag.slice(0, 32) },
  ].map((change) => ({
    ...base,
    tcId: tcId++,
    ...change,
    tag: change.tag ?? base.tag,
    result: 'invalid',
    error: 'FRANKING_TAG_MISMATCH',
  }));
  const file = {
    description: 'Franking tags (v2): HMAC-SHA256 under the per-message franking key over the labelled sender and plaintext.',
    spec: 'spec/design/formats-v2.md §6.1',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      tag: 'tag = HMAC-SHA256(frankingKey, CBOR(["Parley v2 franking tag", senderAccount, senderDeviceId, plaintext])).',
      invalid:
        'Each invalid case gives the inputs a receiver holds and the tag it was handed (the tag of the first valid case): recomputing gives another value, so the message is refused with FRANKING_TAG_MISMATCH.',
    },
    testGroups: [
      { type: 'FrankingTag', description: 'inputs -> tag', tests: valid },
      { type: 'FrankingTagMismatch', description: 'the recomputed tag differs from the given one', tests: invalid },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv.includes('--write')) writeFileSync(FRANKING_FILE, buildFranking());
