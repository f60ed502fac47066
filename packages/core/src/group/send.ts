/**
 * The sending side as pure functions: start a chain, encrypt one message,
 * describe the chain in a distribution. spec/08-groups.md §3-§5.
 *
 * A message costs one pad, three HMACs, one AEAD and one Ed25519 signature,
 * whatever the group size: the ciphertext is made once and the same bytes go
 * to every member device. This module knows nothing of receiving chains or
 * of how distributions travel.
 */
import { wipe } from '../bytes.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { Ed25519KeyPair } from '../keys/identity.ts';
import { pad } from '../ratchet/padding.ts';
import { encodeDistribution } from './distribution.ts';
import { groupMessageKeys, nextGroupChainKey } from './kdf.ts';
import { MAX_GROUP_COUNTER } from './limits.ts';
import { encodeGroupHeader, encodeGroupMessage, groupSignedBytes } from './message.ts';
import type { GroupState, SendingChain } from './state.ts';

/** A fresh chain: random chain key, new signing key pair. */
export function newSendingChain(p: CryptoProvider, generation: number, epoch: number): SendingChain {
  if (generation > MAX_GROUP_COUNTER) fail('INVALID_STATE', 'no chain generations left in this group');
  return { generation, epoch, iteration: 0, chainKey: p.random(32), signing: Ed25519KeyPair.generate(p) };
}

/** Encrypts and signs one message on my current chain; returns the message and the advanced chain. */
export function sealGroupMessage(
  p: CryptoProvider,
  state: GroupState,
  plaintext: Uint8Array,
): { message: Uint8Array; sending: SendingChain } {
  const b = p.backend;
  const chain = state.sending;
  if (chain.iteration > MAX_GROUP_COUNTER) fail('INVALID_STATE', 'sending chain exhausted');
  const headerBytes = encodeGroupHeader({
    groupId: state.groupId,
    epoch: chain.epoch,
    sender: state.self,
    generation: chain.generation,
    iteration: chain.iteration,
  });
  const mk = groupMessageKeys(b, chain.chainKey);
  const ciphertext = b.aeadSeal(mk.key, mk.nonce, pad(plaintext), headerBytes);
  wipe(mk.key);
  const signature = chain.signing.sign(groupSignedBytes(headerBytes, ciphertext), p);
  return {
    message: encodeGroupMessage(headerBytes, ciphertext, signature),
    sending: { ...chain, iteration: chain.iteration + 1, chainKey: nextGroupChainKey(b, chain.chainKey) },
  };
}

/**
 * The distribution of my current chain at its current iteration: whoever
 * receives it reads my messages from the next one on, and none before.
 * Encoded once; the same bytes go to every recipient.
 */
export function encodeMyDistribution(state: GroupState): Uint8Array {
  const c = state.sending;
  return encodeDistribution({
    groupId: state.groupId,
    epoch: c.epoch,
    sender: state.self,
    generation: c.generation,
    iteration: c.iteration,
    chainKey: c.chainKey,
    signingKey: c.signing.publicKey,
  });
}
