/**
 * Opening a sealed envelope before the normal receive path.
 * spec/12-sealed-sender.md §7 (the recipient's checks, in order).
 *
 * The relay delivers a sealed envelope with its token hash where a sender
 * would be, and device 0. The hash names the contact we granted it to; the
 * seal is opened against that contact's trusted devices; what comes out is
 * an ordinary envelope from that device, which the caller hands to the
 * normal path. After the inner message decrypted, `checkSealedSender`
 * holds the session's peer to the key that authenticated the seal.
 */
import { type DeviceCertificate, MessageType, ParleyError, bytesEqual, seal as coreSeal } from '@parley/core';
import { certificateHash } from '../devices/device-list.ts';
import type { Context } from '../engine/context.ts';
import type { IncomingEnvelope } from '../relay-link/link.ts';
import { loadDevices } from '../state/devices.ts';
import { getIssued } from './token-book.ts';

/** The device id the relay puts in the sender slot of a sealed envelope (no device has it). */
export const SEALED_SENDER_DEVICE = 0;

export function isSealed(env: IncomingEnvelope): boolean {
  return env.sender.deviceId === SEALED_SENDER_DEVICE;
}

export interface Unsealed {
  readonly envelope: IncomingEnvelope;
  readonly senderIdentityKey: Uint8Array;
  /**
   * Our own device sealed it to itself under the self token (the relay wants
   * every device of the account named, spec/12 §13): acknowledge it unread.
   */
  readonly echo: boolean;
}

/** Throws SEAL_FAILED (unknown or revoked token, no candidate opens it, ...) or a decoding code. Pure: writes nothing. */
export function unseal(ctx: Context, env: IncomingEnvelope): Unsealed {
  const tokenHash = env.sender.accountKey;
  const issued = getIssued(ctx.store, tokenHash);
  if (!issued) throw new ParleyError('SEAL_FAILED', 'sealed envelope under a token we did not issue', { reason: 'unknown-token' });
  // A revoked token's envelopes are dropped, even those the relay accepted before the revocation.
  if (issued.revoked) throw new ParleyError('SEAL_FAILED', 'sealed envelope under a revoked token', { reason: 'revoked-token' });
  const self = bytesEqual(issued.contact, ctx.self.accountKey);
  const trusted = loadDevices(ctx.store, issued.contact, ctx.provider).trusted;
  // Under the self token the sender may be this very device (its echo), which our own list need not hold.
  const devices = self && !trusted.some((c) => c.deviceId === ctx.self.deviceId) ? [...trusted, ctx.device.certificate] : trusted;
  const candidates = devices.map((c: DeviceCertificate) => ({ deviceId: c.deviceId, identityKey: c.identityKey }));
  // A sealed group send arrives as [2, 7, seal, payload]: the seal holds the key wrap (spec/12 §10).
  const framed = coreSeal.looksLikeSealedGroupEnvelope(env.envelope) ? coreSeal.decodeSealedGroupEnvelope(env.envelope) : null;
  const opened = coreSeal.openContactSeal(
    {
      seal: framed ? framed.seal : env.envelope,
      recipientIdentityPrivateKey: ctx.device.identityKeyPair.privateKey,
      recipientCertificateHash: certificateHash(ctx.device.certificate, ctx.provider),
      tokenHash,
      // The tag the relay franked and delivered: the seal's aad binds it, so a swapped one does not open.
      frankingTag: env.delivery?.frankingTag ?? null,
      candidates,
    },
    ctx.provider,
  );
  if (self && opened.senderDeviceId === ctx.self.deviceId) {
    return { envelope: { ...env, sender: ctx.self, envelope: new Uint8Array(0) }, senderIdentityKey: opened.senderIdentityKey, echo: true };
  }
  const message = framed ? openGroupWrap(ctx, opened.message, framed.payload) : opened.message;
  // A key wrap is only ever opened beside its payload; alone it is no message.
  if (!framed && coreSeal.isGroupKeyWrap(message)) throw sealFailed('a key wrap without its group payload', 'inner');
  return {
    envelope: { ...env, sender: { accountKey: issued.contact, deviceId: opened.senderDeviceId }, envelope: message },
    senderIdentityKey: opened.senderIdentityKey,
    echo: false,
  };
}

/**
 * The group message inside a sealed group send: the seal must hold a key
 * wrap, the payload must be the one it names and must open (SEAL_FAILED,
 * payload-digest / payload-aead), and what opens must be a group message.
 * Pure: nothing is read or written before all of it holds.
 */
function openGroupWrap(ctx: Context, wrap: Uint8Array, payload: Uint8Array): Uint8Array {
  if (!coreSeal.isGroupKeyWrap(wrap)) throw sealFailed('a sealed group envelope without a key wrap inside', 'inner');
  const message = coreSeal.openGroupPayload(wrap, payload, ctx.provider);
  if (!(message[0] === 0x85 && message[2] === MessageType.group))
    throw sealFailed('a sealed group payload that is not a group message', 'inner');
  return message;
}

function sealFailed(message: string, reason: string): ParleyError {
  return new ParleyError('SEAL_FAILED', message, { reason });
}

/** After the inner decrypt: the peer of the session that decrypted it must hold the seal's sender key. */
export function checkSealedSender(u: Unsealed, peer: DeviceCertificate | null): void {
  coreSeal.assertSealSender(
    { senderDeviceId: u.envelope.sender.deviceId, senderIdentityKey: u.senderIdentityKey, message: u.envelope.envelope },
    peer?.identityKey ?? new Uint8Array(32),
  );
}
