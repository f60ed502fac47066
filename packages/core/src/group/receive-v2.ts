/**
 * Receiving a version-2 group message (spec/design/formats-v2.md §8.1): the
 * v1 checks and decryption (08 §5.3), then one more step before anything is
 * returned or committed: recompute the franking tag from the decrypted
 * franking key, the member whose chain signed, and the plaintext; it must
 * equal the signed header's tag and, when given, the tag the relay
 * delivered (and franked) with the envelope. A mismatch is
 * FRANKING_TAG_MISMATCH and leaves the group state unchanged.
 *
 * Why this catches a sender that hands two members different chain keys
 * and one ciphertext that opens under both (ChaCha20-Poly1305 is not key
 * committing): the two bodies differ, the signed header holds one tag, so
 * at most one body can match it; and the attacker cannot aim the tag at a
 * body whose bytes depend on the AEAD collision it solves over that very
 * header.
 */
import { constantTimeEqual } from '../bytes.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { FRANKING_TAG_BYTES, checkFrankingTag } from '../franking/tag.ts';
import { unpad } from '../ratchet/padding.ts';
import { type GroupHeaderV2, decodeGroupBodyV2, decodeGroupMessageV2, groupSignedBytesV2 } from './message-v2.ts';
import type { GroupMember } from './member.ts';
import { openVerified } from './receive.ts';
import type { GroupState, ReceiveChange } from './state.ts';

export interface GroupOpenedV2 {
  readonly plaintext: Uint8Array;
  readonly header: GroupHeaderV2;
  readonly sender: GroupMember;
  readonly change: ReceiveChange;
  /** What a receiver keeps to be able to report this message (§6.5). */
  readonly frankingKey: Uint8Array;
  readonly attestation: Uint8Array | null;
}

export function openGroupMessageV2(
  p: CryptoProvider,
  state: GroupState,
  bytes: Uint8Array,
  deliveredTag: Uint8Array | null = null,
): GroupOpenedV2 {
  const m = decodeGroupMessageV2(bytes);
  const { padded, header: _h, ...opened } = openVerified(p, state, m, groupSignedBytesV2(m.headerBytes, m.ciphertext));
  const h = m.header;
  const body = decodeGroupBodyV2(unpad(padded));
  const details = { deviceId: h.sender.deviceId, generation: h.generation, iteration: h.iteration };
  // Both comparisons always run, so the time does not say which one failed.
  const bodyMatches = checkFrankingTag(p.backend, body.frankingKey, h.sender, body.plaintext, h.frankingTag);
  const relayMatches =
    deliveredTag === null || (deliveredTag.length === FRANKING_TAG_BYTES && constantTimeEqual(deliveredTag, h.frankingTag));
  if (!bodyMatches) fail('FRANKING_TAG_MISMATCH', 'the decrypted body does not match the signed franking tag', details);
  if (!relayMatches) fail('FRANKING_TAG_MISMATCH', 'the delivered franking tag differs from the signed one', details);
  return { ...opened, header: h, plaintext: body.plaintext, frankingKey: body.frankingKey, attestation: body.attestation };
}
