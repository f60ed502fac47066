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
 *
 * A group message (the same bytes for every device) goes as one sealed
 * group send (spec/12 §10): encrypted once under a fresh key into a payload
 * the relay stores once, and per device a seal of the small key wrap.
 */
import { seal as coreSeal } from '@parley/core';
import { MessageType, bytesEqual } from '@parley/core';
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
      const outcome = await link.sendSealed(sealed.envelopes, { ...options, ...(sealed.payload ? { payload: sealed.payload } : {}) });
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

/** What goes to POST /v2/sealed: the seals, and for a group send the payload they unlock. */
interface SealedSend {
  readonly envelopes: SealedOutgoingEnvelope[];
  readonly payload?: Uint8Array;
}

/**
 * The group message a send carries to every device, when it is one: the
 * same bytes under the same id for several devices (as the relay client's
 * fan-out decides), framed as a group message (v1 or v2, type 3).
 */
function sharedGroupMessage(envelopes: readonly OutgoingEnvelope[]): Uint8Array | null {
  const [first, ...rest] = envelopes;
  if (!first || rest.length === 0) return null;
  const e = first.envelope;
  if (!(e[0] === 0x85 && (e[1] === 1 || e[1] === 2) && e[2] === MessageType.group)) return null;
  for (const other of rest) if (other.clientId !== first.clientId || !bytesEqual(other.envelope, e)) return null;
  return e;
}

/**
 * Seals every envelope under its account's token, or returns null when any
 * account has none: such a send stays identified whole, since a split would
 * let the relay join its halves by time. A group message is sealed once
 * (the payload) and each device gets a seal of the key wrap instead.
 */
function sealAll(ctx: Context, accounts: readonly Uint8Array[], envelopes: readonly OutgoingEnvelope[]): SealedSend | null {
  const now = ctx.clock();
  const tokens = new Map<string, Uint8Array>();
  for (const a of accounts) {
    const held = getHeld(ctx.store, a, now);
    if (!held) return null;
    tokens.set(accountId(a), held.token);
  }
  const shared = sharedGroupMessage(envelopes);
  const group = shared ? coreSeal.sealGroupPayload(shared, ctx.provider) : null;
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
        message: group ? group.wrap : e.envelope,
      },
      ctx.provider,
    );
    out.push({ ...e, token, envelope });
  }
  return group ? { envelopes: out, payload: group.payload } : { envelopes: out };
}
