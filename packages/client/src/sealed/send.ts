/**
 * Sending an outbox entry sealed when every recipient account granted us a
 * token, identified otherwise. spec/12-sealed-sender.md §6.
 *
 * The envelopes the outbox saved are the inner messages; the seal is made
 * per attempt (it is randomised), and the relay keeps one copy per (token
 * hash, device, client id), so a retry is still stored once. A token the
 * relay refuses is forgotten and the entry goes out identified, as to a
 * peer that never granted one; a relay without the v2 routes answers 404
 * and gets identified sends from then on.
 */
import { seal as coreSeal } from '@parley/core';
import { bytesEqual } from '@parley/core';
import { certificateHash } from '../devices/device-list.ts';
import { isClientError } from '../errors.ts';
import { accountId } from '../state/ids.ts';
import type { OutgoingEnvelope, SealedOutgoingEnvelope, SendOutcome } from '../relay-link/link.ts';
import { loadDevices } from '../state/devices.ts';
import type { Context } from '../engine/context.ts';
import { forgetHeld } from './grants.ts';
import { getHeld } from './token-book.ts';

/** How the entry went out, for the caller's bookkeeping and the tests. */
export type SendPath = 'sealed' | 'identified';

export async function sendEnvelopes(
  ctx: Context,
  accounts: readonly Uint8Array[],
  envelopes: readonly OutgoingEnvelope[],
  options: { ttlSeconds?: number } | undefined,
): Promise<SendOutcome & { path?: SendPath }> {
  const link = ctx.relay.sealed;
  const contacts = accounts.filter((a) => !bytesEqual(a, ctx.self.accountKey));
  const toContacts = envelopes.filter((e) => !bytesEqual(e.recipient.accountKey, ctx.self.accountKey));
  const sealed = ctx.options.sealedSender && link && contacts.length > 0 ? sealAll(ctx, contacts, toContacts) : null;
  if (sealed && link) {
    try {
      const outcome = await link.sendSealed(sealed, options);
      if (outcome.status !== 'stored' && outcome.status !== 'token-invalid') return { ...outcome, path: 'sealed' };
      if (outcome.status === 'stored') {
        // Copies for our own other devices go identified (the relay's device check needs the sending device
        // named; spec/12 §8 lists the timing link this leaves). A single-device account sends none.
        const own = envelopes.filter((e) => bytesEqual(e.recipient.accountKey, ctx.self.accountKey));
        const ownAccounts = accounts.filter((a) => bytesEqual(a, ctx.self.accountKey));
        if (own.length === 0 || ownAccounts.length === 0) return { status: 'stored', path: 'sealed' };
        return { ...(await ctx.relay.send(own, options)), path: 'sealed' };
      }
      // One code for unknown, expired and revoked: forget every token of this entry; the contacts grant again.
      ctx.store.transaction(() => {
        for (const a of contacts) forgetHeld(ctx, a);
      });
    } catch (e) {
      // A relay without the sealed routes: identified, as v1.
      if (!(isClientError(e, 'RELAY_REFUSED') && e.details['relayCode'] === 'NOT_FOUND')) throw e;
    }
  }
  return { ...(await ctx.relay.send(envelopes, options)), path: 'identified' };
}

/**
 * Seals every envelope under its account's token, or returns null when any
 * account has none: such a send stays identified whole, since a split would
 * let the relay join its halves by time.
 */
function sealAll(ctx: Context, accounts: readonly Uint8Array[], envelopes: readonly OutgoingEnvelope[]): SealedOutgoingEnvelope[] | null {
  const now = ctx.clock();
  const tokens = new Map<string, Uint8Array>();
  for (const a of accounts) {
    const held = getHeld(ctx.store, a, now);
    if (!held) return null;
    tokens.set(accountId(a), held.token);
  }
  const out: SealedOutgoingEnvelope[] = [];
  for (const e of envelopes) {
    const token = tokens.get(accountId(e.recipient.accountKey));
    const cert = loadDevices(ctx.store, e.recipient.accountKey, ctx.provider).trusted.find((c) => c.deviceId === e.recipient.deviceId);
    if (!token || !cert) return null;
    const tokenHash = coreSeal.deliveryTokenHash(e.recipient.accountKey, token, ctx.provider);
    const envelope = coreSeal.sealToContact(
      {
        recipientIdentityKey: cert.identityKey,
        recipientCertificateHash: certificateHash(cert, ctx.provider),
        senderIdentityPrivateKey: ctx.device.identityKeyPair.privateKey,
        senderDeviceId: ctx.self.deviceId,
        tokenHash,
        frankingTag: null,
        message: e.envelope,
      },
      ctx.provider,
    );
    out.push({ ...e, token, envelope });
  }
  return out;
}
