/**
 * Granting, refreshing and revoking delivery tokens, and taking in the
 * grants of others. spec/12-sealed-sender.md §3.
 *
 * A grant is registered with the relay (its hash only) before the token is
 * sent, so a contact never holds a token the relay would refuse. The token
 * travels in a 'token-grant' content inside the end-to-end session, and a
 * sync copy tells our other devices which contact the hash belongs to (they
 * open that contact's sealed envelopes too).
 *
 * A self token (spec/12 §13) is a grant of the account to itself: registered
 * like any other (the relay cannot tell it apart) and given to our other
 * devices in the same sync content; self-token.ts says when it may be used.
 */
import { seal as coreSeal } from '@parley/core';
import { bytesEqual } from '@parley/core';
import type { Content } from '../content/content.ts';
import { listContacts } from '../state/contacts.ts';
import { newContent, queueDirect } from '../engine/compose.ts';
import type { Context } from '../engine/context.ts';
import { REFRESH_BEFORE_EXPIRY_MS, TOKEN_LIFETIME_MS, TOKEN_POOL, TOKEN_POOL_REFILL_BELOW } from './constants.ts';
import { acceptSelfToken, needsSelfGrant, putSelfToken } from './self-token.ts';
import { dropHeld, issuedTo, listPooled, putHeld, putIssued, putPooled, takePooled } from './token-book.ts';

/**
 * Grants `contact` a fresh token: registered at the relay, then queued to the
 * contact and to our own devices. `contact` may be our own account: a self
 * token, which goes to our other devices only and which this device holds too.
 */
export async function grantToken(ctx: Context, contact: Uint8Array): Promise<boolean> {
  const link = ctx.relay.sealed;
  if (!link) return false;
  const self = bytesEqual(contact, ctx.self.accountKey);
  const now = ctx.clock();
  // From the pool when it has a token with enough life left; registered now only when it is empty.
  const pooled = ctx.store.transaction(() => takePooled(ctx.store, now));
  let token: Uint8Array;
  let hash: Uint8Array;
  let expiresAt: number;
  if (pooled && pooled.expiresAt - now > REFRESH_BEFORE_EXPIRY_MS) {
    ({ token, hash, expiresAt } = pooled);
  } else {
    token = coreSeal.newDeliveryToken(ctx.provider);
    hash = coreSeal.deliveryTokenHash(ctx.self.accountKey, token, ctx.provider);
    expiresAt = now + TOKEN_LIFETIME_MS;
    await link.registerTokens([{ hash, expiresAt, scope: 'contact' }]);
  }
  ctx.store.transaction(() => {
    putIssued(ctx.store, { hash, contact, token, expiresAt, grantedAt: now, revoked: false });
    const grant = newContent(ctx, { type: 'token-grant', token, expiresAt });
    if (!self) queueDirect(ctx, contact, grant, { keepForRetry: false });
    // Our other devices learn the hash -> contact mapping; an own-device sync, not a copy in the contact's envelope.
    const sync = newContent(ctx, { type: 'sync', destination: contact, content: grant });
    const syncKey = queueDirect(ctx, ctx.self.accountKey, sync, { keepForRetry: false });
    // Our own copies use a self token once its announcement is with the relay (self-token.ts).
    if (self) putSelfToken(ctx, { token, expiresAt, syncKey });
  });
  return true;
}

/** True when the newest live token granted to `contact` has less than REFRESH_BEFORE_EXPIRY_MS left (or none exists). */
export function needsGrant(ctx: Context, contact: Uint8Array): boolean {
  const now = ctx.clock();
  const live = issuedTo(ctx.store, contact).filter((t) => !t.revoked && t.expiresAt > now);
  return !live.some((t) => t.expiresAt - now > REFRESH_BEFORE_EXPIRY_MS);
}

/**
 * Grants or refreshes tokens for every contact the user added (never for
 * strangers: a first message from a stranger gets no token until the user
 * makes it a contact). Returns how many grants went out.
 */
export async function maintainTokens(ctx: Context): Promise<number> {
  const link = ctx.relay.sealed;
  if (!ctx.options.sealedSender || !link) return 0;
  await refillPool(ctx);
  let granted = 0;
  // The self token first: our own devices' copies go sealed with it (spec/12 §13).
  if (needsSelfGrant(ctx) && (await grantToken(ctx, ctx.self.accountKey))) granted++;
  for (const c of listContacts(ctx.store)) {
    if (bytesEqual(c.accountKey, ctx.self.accountKey) || !needsGrant(ctx, c.accountKey)) continue;
    if (await grantToken(ctx, c.accountKey)) granted++;
  }
  return granted;
}

/** Registers new pool tokens in one request when the pool runs low (never at grant time). */
async function refillPool(ctx: Context): Promise<void> {
  const link = ctx.relay.sealed;
  const now = ctx.clock();
  const have = listPooled(ctx.store, now).filter((t) => t.expiresAt - now > REFRESH_BEFORE_EXPIRY_MS).length;
  if (!link || have >= TOKEN_POOL_REFILL_BELOW) return;
  const fresh = Array.from({ length: TOKEN_POOL - have }, () => {
    const token = coreSeal.newDeliveryToken(ctx.provider);
    return { token, hash: coreSeal.deliveryTokenHash(ctx.self.accountKey, token, ctx.provider), expiresAt: now + TOKEN_LIFETIME_MS };
  });
  await link.registerTokens(fresh.map((t) => ({ hash: t.hash, expiresAt: t.expiresAt, scope: 'contact' as const })));
  ctx.store.transaction(() => {
    for (const t of fresh) putPooled(ctx.store, t);
  });
}

/** Revokes every token granted to `contact` (block): at the relay at once, then in the book. */
export async function revokeTokens(ctx: Context, contact: Uint8Array): Promise<number> {
  const link = ctx.relay.sealed;
  const issued = issuedTo(ctx.store, contact).filter((t) => !t.revoked);
  if (!link || issued.length === 0) return 0;
  await link.revokeTokens(issued.map((t) => t.hash));
  ctx.store.transaction(() => {
    for (const t of issued) putIssued(ctx.store, { ...t, revoked: true });
  });
  return issued.length;
}

/**
 * A 'token-grant' content from `sender` (runs inside the receive
 * transaction): from a contact, it is the token we present when sealing to
 * that account; a newer grant replaces an older one.
 */
export function acceptGrant(ctx: Context, sender: Uint8Array, body: { token: Uint8Array; expiresAt: number }): void {
  if (bytesEqual(sender, ctx.self.accountKey)) return;
  if (body.expiresAt <= ctx.clock()) return;
  putHeld(ctx.store, sender, { token: body.token, expiresAt: body.expiresAt });
}

/**
 * A sync copy of our own grant to `destination` (from another of our
 * devices): remember the hash as issued. A self token (destination: our own
 * account) is also the one this device seals its copies to our devices with.
 */
export function acceptOwnGrant(ctx: Context, destination: Uint8Array, inner: Content): void {
  const b = inner.body;
  if (b.type !== 'token-grant') return;
  const hash = coreSeal.deliveryTokenHash(ctx.self.accountKey, b.token, ctx.provider);
  putIssued(ctx.store, { hash, contact: destination, token: b.token, expiresAt: b.expiresAt, grantedAt: inner.sentAt, revoked: false });
  if (bytesEqual(destination, ctx.self.accountKey)) acceptSelfToken(ctx, b.token, b.expiresAt);
}

/** The relay refused the token we held for `account`: forget it (the contact's client grants a new one). */
export function forgetHeld(ctx: Context, account: Uint8Array): void {
  dropHeld(ctx.store, account);
}
