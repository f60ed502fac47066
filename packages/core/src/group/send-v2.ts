/**
 * Sending a version-2 group message (spec/design/formats-v2.md §8.1): a
 * fresh franking key, the franking tag over the sender and the plaintext in
 * the signed header, then the v1 chain step, AEAD and signature. One tag per
 * group message: every member checks the same value.
 */
import { wipe } from '../bytes.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { FRANKING_KEY_BYTES, frankingTag } from '../franking/tag.ts';
import { pad } from '../ratchet/padding.ts';
import { groupMessageKeys, nextGroupChainKey } from './kdf.ts';
import { MAX_GROUP_COUNTER } from './limits.ts';
import { encodeGroupBodyV2, encodeGroupHeaderV2, encodeGroupMessageV2, groupSignedBytesV2 } from './message-v2.ts';
import type { GroupState, SendingChain } from './state.ts';

export interface SealedGroupMessageV2 {
  readonly message: Uint8Array;
  readonly sending: SendingChain;
  /** The tag the relay request carries (§6.2) and the receivers check. */
  readonly frankingTag: Uint8Array;
  /** Kept by the sender only if it wants to be able to show what it sent; never logged. */
  readonly frankingKey: Uint8Array;
}

/** Encrypts and signs one v2 message on my current chain; returns it and the advanced chain. */
export function sealGroupMessageV2(
  p: CryptoProvider,
  state: GroupState,
  plaintext: Uint8Array,
  attestation: Uint8Array | null = null,
): SealedGroupMessageV2 {
  const b = p.backend;
  const chain = state.sending;
  if (chain.iteration > MAX_GROUP_COUNTER) fail('INVALID_STATE', 'sending chain exhausted');
  const frankingKey = p.random(FRANKING_KEY_BYTES);
  const tag = frankingTag(b, frankingKey, state.self, plaintext);
  const headerBytes = encodeGroupHeaderV2({
    groupId: state.groupId,
    epoch: chain.epoch,
    sender: state.self,
    generation: chain.generation,
    iteration: chain.iteration,
    frankingTag: tag,
  });
  const mk = groupMessageKeys(b, chain.chainKey);
  const ciphertext = b.aeadSeal(mk.key, mk.nonce, pad(encodeGroupBodyV2({ frankingKey, plaintext, attestation })), headerBytes);
  wipe(mk.key);
  const signature = chain.signing.sign(groupSignedBytesV2(headerBytes, ciphertext), p);
  return {
    message: encodeGroupMessageV2(headerBytes, ciphertext, signature),
    sending: { ...chain, iteration: chain.iteration + 1, chainKey: nextGroupChainKey(b, chain.chainKey) },
    frankingTag: tag,
    frankingKey,
  };
}
