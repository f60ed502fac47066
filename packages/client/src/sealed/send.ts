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
import { type DeviceCertificate, MessageType, bytesEqual } from '@parley/core';
import { certificateHash } from '../devices/device-list.ts';
import { isClientError } from '../errors.ts';
import { accountId } from '../state/ids.ts';
import type { OutgoingEnvelope, SealedOutgoingEnvelope, SendOutcome } from '../relay-link/link.ts';
import { loadDevices } from '../state/devices.ts';
import type { Context } from '../engine/context.ts';
import { forgetHeld } from './grants.ts';
import { forgetSelfToken, usableSelfToken } from './self-token.ts';
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
  const isSelf = (a: Uint8Array) => bytesEqual(a, ctx.self.accountKey);
  const contacts = accounts.filter((a) => !isSelf(a));
  const toContacts = envelopes.filter((e) => !isSelf(e.recipient.accountKey));
  // Copies for our own other devices (none for a single-device account).
  const own = accounts.some(isSelf) ? envelopes.filter((e) => isSelf(e.recipient.accountKey)) : [];
  // With a self token they go sealed in the same request (spec/12 §13); without one, identified after it.
  const selfToken = own.length > 0 ? usableSelfToken(ctx) : null;
  const sealable = contacts.length > 0 || selfToken !== null;
  const sealed = ctx.options.sealedSender && link && sealable ? sealAll(ctx, contacts, toContacts, selfToken ? own : []) : null;
  if (sealed && link) {
    const send = (s: SealedSend) => link.sendSealed(s.envelopes, { ...options, ...(s.payload ? { payload: s.payload } : {}) });
    try {
      let outcome: Awaited<ReturnType<typeof send>>;
      try {
        outcome = await send(sealed);
      } catch (e) {
        // A relay whose sealed route predates group sends refuses the payload field: seal per device, as before.
        if (!(sealed.payload && isClientError(e, 'RELAY_REFUSED') && e.details['relayCode'] === 'VALIDATION_FAILED')) throw e;
        outcome = await send(sealAll(ctx, contacts, toContacts, selfToken ? own : [], { perDevice: true }) as SealedSend);
      }
      if (outcome.status !== 'stored' && outcome.status !== 'token-invalid') return { ...outcome, path: 'sealed' };
      if (outcome.status === 'stored') {
        // Without a self token the own copies go identified (spec/12 §8 lists the timing link this leaves).
        if (own.length === 0 || selfToken) return { status: 'stored', path: 'sealed' };
        return { ...(await ctx.relay.send(own, options)), path: 'sealed' };
      }
      // One code for unknown, expired and revoked: forget every token of this entry; the contacts grant again.
      ctx.store.transaction(() => {
        for (const a of contacts) forgetHeld(ctx, a);
        if (selfToken) forgetSelfToken(ctx);
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
 * contact account has none: such a send stays identified whole, since a
 * split would let the relay join its halves by time. A group message is
 * sealed once (the payload) and each device gets a seal of the key wrap
 * instead (unless `perDevice`). `own` (copies for our other devices) go
 * under the self token, with one more seal to this very device: the relay
 * wants every device of the account named, and naming all but one would
 * tell it which device sent. The recipient (us) drops that echo unread.
 */
function sealAll(
  ctx: Context,
  contacts: readonly Uint8Array[],
  toContacts: readonly OutgoingEnvelope[],
  own: readonly OutgoingEnvelope[],
  options: { perDevice?: boolean } = {},
): SealedSend | null {
  const now = ctx.clock();
  const tokens = new Map<string, Uint8Array>();
  for (const a of contacts) {
    const held = getHeld(ctx.store, a, now);
    if (!held) return null;
    tokens.set(accountId(a), held.token);
  }
  if (own.length > 0) {
    const self = usableSelfToken(ctx);
    if (!self) return null;
    tokens.set(accountId(ctx.self.accountKey), self);
  }
  const envelopes = [...toContacts, ...own];
  const shared = options.perDevice ? null : sharedGroupMessage(envelopes);
  const group = shared ? coreSeal.sealGroupPayload(shared, ctx.provider) : null;
  const sealOne = (e: OutgoingEnvelope, cert: DeviceCertificate, message: Uint8Array): SealedOutgoingEnvelope => {
    const token = tokens.get(accountId(e.recipient.accountKey)) as Uint8Array;
    const envelope = coreSeal.sealToContact(
      {
        recipientIdentityKey: cert.identityKey,
        recipientCertificateHash: certificateHash(cert, ctx.provider),
        senderIdentityPrivateKey: ctx.device.identityKeyPair.privateKey,
        senderDeviceId: ctx.self.deviceId,
        tokenHash: coreSeal.deliveryTokenHash(e.recipient.accountKey, token, ctx.provider),
        // A v2 inner message's tag is bound into the seal's aad and sent beside it for the relay to frank
        // (formats-v2 §7.1); for a group send it is the group message's tag, the same in every seal.
        frankingTag: e.frankingTag ?? null,
        message,
      },
      ctx.provider,
    );
    return { ...e, token, envelope };
  };
  const out: SealedOutgoingEnvelope[] = [];
  for (const e of envelopes) {
    const cert = loadDevices(ctx.store, e.recipient.accountKey, ctx.provider).trusted.find((c) => c.deviceId === e.recipient.deviceId);
    if (!cert) return null;
    out.push(sealOne(e, cert, group ? group.wrap : e.envelope));
  }
  const first = own[0];
  if (first) {
    // The echo to ourselves: as long as a real copy, never opened past the seal.
    const echo: OutgoingEnvelope = {
      recipient: { accountKey: ctx.self.accountKey, deviceId: ctx.self.deviceId },
      clientId: first.clientId,
      envelope: first.envelope,
      certificateHash: certificateHash(ctx.device.certificate, ctx.provider),
      ...(first.frankingTag ? { frankingTag: first.frankingTag } : {}),
    };
    out.push(sealOne(echo, ctx.device.certificate, group ? group.wrap : ctx.provider.random(first.envelope.length)));
  }
  return group ? { envelopes: out, payload: group.payload } : { envelopes: out };
}
