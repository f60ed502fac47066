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
import { type DeviceCertificate, ParleyError, seal as coreSeal } from '@parley/core';
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
}

/** Throws SEAL_FAILED (unknown or revoked token, no candidate opens it, ...) or a decoding code. Pure: writes nothing. */
export function unseal(ctx: Context, env: IncomingEnvelope): Unsealed {
  const tokenHash = env.sender.accountKey;
  const issued = getIssued(ctx.store, tokenHash);
  if (!issued) throw new ParleyError('SEAL_FAILED', 'sealed envelope under a token we did not issue', { reason: 'unknown-token' });
  // A revoked token's envelopes are dropped, even those the relay accepted before the revocation.
  if (issued.revoked) throw new ParleyError('SEAL_FAILED', 'sealed envelope under a revoked token', { reason: 'revoked-token' });
  const candidates = loadDevices(ctx.store, issued.contact, ctx.provider).trusted.map((c: DeviceCertificate) => ({
    deviceId: c.deviceId,
    identityKey: c.identityKey,
  }));
  const opened = coreSeal.openContactSeal(
    {
      seal: env.envelope,
      recipientIdentityPrivateKey: ctx.device.identityKeyPair.privateKey,
      recipientCertificateHash: certificateHash(ctx.device.certificate, ctx.provider),
      tokenHash,
      frankingTag: null,
      candidates,
    },
    ctx.provider,
  );
  return {
    envelope: { ...env, sender: { accountKey: issued.contact, deviceId: opened.senderDeviceId }, envelope: opened.message },
    senderIdentityKey: opened.senderIdentityKey,
  };
}

/** After the inner decrypt: the peer of the session that decrypted it must hold the seal's sender key. */
export function checkSealedSender(u: Unsealed, peer: DeviceCertificate | null): void {
  coreSeal.assertSealSender(
    { senderDeviceId: u.envelope.sender.deviceId, senderIdentityKey: u.senderIdentityKey, message: u.envelope.envelope },
    peer?.identityKey ?? new Uint8Array(32),
  );
}
