/**
 * Builds test-vectors/groups-v2.json (formats-v2 §8.1, §14): version-2 group
 * messages as a member receives them, given the sender's chain (chain key at
 * iteration 0 and signing key, as a distribution hands them out), valid and
 * refused, including the two-key Poly1305 collision of issue 19. The vectors
 * test checks the checked-in file equals this output; rewrite it on purpose
 * with `node --conditions=parley:source --import tsx packages/core/test/support/groups-v2-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import { toHex, utf8 } from '../../src/bytes.ts';
import { encodeCbor } from '../../src/codec/cbor.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { cryptoProvider } from '../../src/crypto/provider.ts';
import { frankingTag } from '../../src/franking/tag.ts';
import { groupMessageKeys, nextGroupChainKey } from '../../src/group/kdf.ts';
import type { GroupMember } from '../../src/group/member.ts';
import { encodeGroupBodyV2, encodeGroupHeaderV2, encodeGroupMessageV2, groupSignedBytesV2 } from '../../src/group/message-v2.ts';
import { groupSignedBytes } from '../../src/group/message.ts';
import { Ed25519KeyPair } from '../../src/keys/identity.ts';
import { pad } from '../../src/ratchet/padding.ts';
import { deterministicRandom } from '../../src/testing.ts';
import { twoKeyCiphertext } from './poly1305-collision.ts';

export const GROUPS_V2_FILE = new URL('../../../../test-vectors/groups-v2.json', import.meta.url);

const b = nobleBackend;
// biome-ignore lint/suspicious/noExplicitAny: JSON test objects.
type Json = any;

interface Chain {
  chainKey: Uint8Array;
  signing: Ed25519KeyPair;
}

// Reset at the start of every build, so that building twice gives the same bytes.
let r = deterministicRandom('parley groups-v2');
let p = cryptoProvider(b, r);
let groupId = r(32);
let sender: GroupMember = { accountKey: r(32), deviceId: 3 };

function keysAt(chainKey: Uint8Array, iteration: number) {
  let ck = chainKey;
  for (let i = 0; i < iteration; i++) ck = nextGroupChainKey(b, ck);
  return groupMessageKeys(b, ck);
}

/** A v2 message; `lie` replaces what the header's tag commits to, `label` the signature's input. */
function message(
  chain: Chain,
  iteration: number,
  plaintext: Uint8Array,
  options: { fk?: Uint8Array; tagFor?: Uint8Array; body?: Uint8Array; v1Signature?: boolean } = {},
) {
  const fk = options.fk ?? r(32);
  const tag = frankingTag(b, fk, sender, options.tagFor ?? plaintext);
  const headerBytes = encodeGroupHeaderV2({ groupId, epoch: 0, sender, generation: 0, iteration, frankingTag: tag });
  const k = keysAt(chain.chainKey, iteration);
  const body = options.body ?? encodeGroupBodyV2({ frankingKey: fk, plaintext, attestation: null });
  const ciphertext = b.aeadSeal(k.key, k.nonce, pad(body), headerBytes);
  const signed = options.v1Signature ? groupSignedBytes(headerBytes, ciphertext) : groupSignedBytesV2(headerBytes, ciphertext);
  return { bytes: encodeGroupMessageV2(headerBytes, ciphertext, chain.signing.sign(signed, p)), fk, tag };
}

const chainJson = (c: Chain) => ({ chainKey: toHex(c.chainKey), signingPublicKey: toHex(c.signing.publicKey) });

function collision(chain1: Chain, chain2: Chain): Uint8Array {
  const k1 = keysAt(chain1.chainKey, 0);
  const k2 = keysAt(chain2.chainKey, 0);
  const fk = r(32);
  const intended = new Uint8Array(100);
  intended.set(utf8('the meeting moved to the north gate'));
  const tag = frankingTag(b, fk, sender, intended);
  const headerBytes = encodeGroupHeaderV2({ groupId, epoch: 0, sender, generation: 0, iteration: 0, frankingTag: tag });
  const body1 = pad(encodeGroupBodyV2({ frankingKey: fk, plaintext: intended, attestation: null }));
  const ks1 = b.aeadSeal(k1.key, k1.nonce, new Uint8Array(160), headerBytes).subarray(0, 160);
  const c = body1.map((x, i) => x ^ (ks1[i] as number));
  const sealed = twoKeyCiphertext(k1, k2, headerBytes, c, [4, 5], deterministicRandom('parley groups-v2 collision'));
  if (!b.aeadOpen(k1.key, k1.nonce, sealed, headerBytes) || !b.aeadOpen(k2.key, k2.nonce, sealed, headerBytes)) {
    throw new Error('not a two-key ciphertext');
  }
  return encodeGroupMessageV2(headerBytes, sealed, chain1.signing.sign(groupSignedBytesV2(headerBytes, sealed), p));
}

export function buildGroupsV2(): string {
  r = deterministicRandom('parley groups-v2');
  p = cryptoProvider(b, r);
  groupId = r(32);
  sender = { accountKey: r(32), deviceId: 3 };
  const signing = Ed25519KeyPair.fromSeed(r(32), p);
  const chain: Chain = { chainKey: r(32), signing };
  const second: Chain = { chainKey: r(32), signing };
  let tcId = 1;
  const valid: Json[] = [
    { comment: 'short text, iteration 0', iteration: 0, plaintext: utf8('hello, franked group') },
    { comment: 'empty plaintext, iteration 3', iteration: 3, plaintext: new Uint8Array(0) },
    { comment: '300-byte plaintext (second padding class), iteration 1', iteration: 1, plaintext: r(300) },
  ].map((t) => {
    const m = message(chain, t.iteration, t.plaintext);
    return {
      tcId: tcId++,
      comment: t.comment,
      ...chainJson(chain),
      message: toHex(m.bytes),
      deliveredTag: toHex(m.tag),
      plaintext: toHex(t.plaintext),
      frankingKey: toHex(m.fk),
      frankingTag: toHex(m.tag),
      result: 'valid',
    };
  });
  const honest = message(chain, 2, utf8('what the members see'));
  const invalid: Json[] = [
    {
      comment: 'the signed tag commits to other content than the body carries',
      ...chainJson(chain),
      message: toHex(message(chain, 0, utf8('what the members see'), { tagFor: utf8('what a report would show') }).bytes),
      deliveredTag: null,
      error: 'FRANKING_TAG_MISMATCH',
    },
    {
      comment: 'the relay delivered another tag than the signed one',
      ...chainJson(chain),
      message: toHex(honest.bytes),
      deliveredTag: toHex(new Uint8Array(32).fill(0x5a)),
      error: 'FRANKING_TAG_MISMATCH',
    },
    {
      comment: 'signed with the v1 label: no v1 signature verifies as v2',
      ...chainJson(chain),
      message: toHex(message(chain, 0, utf8('x'), { v1Signature: true }).bytes),
      deliveredTag: null,
      error: 'BAD_SIGNATURE',
    },
    {
      comment: 'a body whose franking key is 31 bytes',
      ...chainJson(chain),
      message: toHex(message(chain, 0, utf8('x'), { body: encodeCbor([new Uint8Array(31), utf8('x'), null]) }).bytes),
      deliveredTag: null,
      error: 'MALFORMED',
    },
  ].map((t) => ({ tcId: tcId++, ...t, result: 'invalid' }));
  const both = collision(chain, second);
  const collisionTests: Json[] = [
    {
      comment: 'two-key Poly1305 collision: the member handed the first chain key decrypts a body that no longer matches the signed tag',
      ...chainJson(chain),
      message: toHex(both),
      deliveredTag: null,
      error: 'FRANKING_TAG_MISMATCH',
    },
    {
      comment: 'the same message at the member handed the second chain key: the AEAD opens, the body is not even well-padded',
      ...chainJson(second),
      message: toHex(both),
      deliveredTag: null,
      error: 'BAD_PADDING',
    },
  ].map((t) => ({ tcId: tcId++, ...t, result: 'invalid' }));
  const file = {
    description: 'Version-2 group messages (franked): what one member decrypts with the sender chain it was handed.',
    spec: 'spec/design/formats-v2.md §8.1, §6.1; spec/08-groups.md §3, §5',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      chain:
        'chainKey is the chain key at iteration 0 and signingPublicKey the chain signing key, as the sender distribution hands them out; the group id, epoch 0, generation 0 and the sender are in every header. The member steps the chain to the header iteration (08 §3).',
      checks:
        'Verify the Ed25519 signature over CBOR(["Parley v2 group message", header, ciphertext]); open ChaCha20-Poly1305 with the header as AD; unpad; decode GroupBodyV2; recompute the franking tag over the header sender and the plaintext; it must equal the header tag and, when given, deliveredTag.',
      collision:
        'The TwoKeyCollision message authenticates under the message keys of both chain keys (Len-Grubbs-Ristenpart multi-key collision over Poly1305). A v1 receiver would show each member a different plaintext; in v2 both refuse: the first by the franking tag, the second because its body does not decode.',
    },
    testGroups: [
      { type: 'GroupMessageV2', description: 'decrypts to the plaintext with the franking key and tag', tests: valid },
      { type: 'GroupMessageV2Invalid', description: 'refused with the error code, state unchanged', tests: invalid },
      { type: 'TwoKeyCollision', description: 'one message, two chain keys, both members refuse', tests: collisionTests },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv.includes('--write')) writeFileSync(GROUPS_V2_FILE, buildGroupsV2());
