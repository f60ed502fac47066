/**
 * Delivery tokens: 32 random bytes a recipient grants one contact inside the
 * end-to-end session; the relay learns only their hash, bound to the
 * recipient account so the same token means nothing for another mailbox.
 * spec/12-sealed-sender.md §3.
 */
import { abytes } from '../bytes.ts';
import { encodeCbor } from '../codec/cbor.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { DELIVERY_TOKEN_BYTES, SealLabel } from './constants.ts';

/** tokenHash = SHA-256(CBOR(["Parley v2 delivery token", recipientAccount, token])). */
export function deliveryTokenHash(recipientAccount: Uint8Array, token: Uint8Array, provider?: CryptoProvider): Uint8Array {
  abytes(recipientAccount, 'recipientAccount', 32);
  abytes(token, 'token', DELIVERY_TOKEN_BYTES);
  return resolveProvider(provider).backend.sha256(encodeCbor([SealLabel.deliveryToken, recipientAccount, token]));
}

/** A fresh token from the provider's random source. */
export function newDeliveryToken(provider?: CryptoProvider): Uint8Array {
  return resolveProvider(provider).random(DELIVERY_TOKEN_BYTES);
}
