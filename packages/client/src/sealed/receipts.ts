/**
 * Receipts held back to blunt the statistical-disclosure attack
 * (spec/12-sealed-sender.md §8; Martiny et al., NDSS 2021): a relay that
 * sees a sealed envelope arrive for R and, a moment later, a receipt leave
 * R for one mailbox can link the sealed sender to that mailbox. With sealed
 * sending on, a receipt to a peer we hold a token for waits a random delay
 * (fresh per batch, from the provider's random source) or until we send that
 * peer a message, whichever comes first; receipts to the same peer and of
 * the same kind are folded into one batch meanwhile.
 *
 * Pending batches live in the store (identity table), so a restart keeps
 * them; the client's timer releases due ones into the outbox.
 */
import { bytesEqual } from '@parley/core';
import { MAX_RECEIPT_IDS } from '../content/content.ts';
import { readArray, readBytes, readTimestamp, timestampToBytes } from '../content/fields.ts';
import { queueReceipt } from '../engine/compose.ts';
import type { Context } from '../engine/context.ts';
import { accountId, parseAccountId } from '../state/ids.ts';
import { asRecord, decodeRecord, encodeRecord } from '../state/record.ts';
import { getHeld } from './token-book.ts';

const TAG = 'parley/client-pending-receipts';
const PREFIX = 'sealed/receipts/';
type Kind = 'delivered' | 'read';

interface Pending {
  readonly ids: readonly Uint8Array[];
  readonly dueAt: number;
}

const keyOf = (to: Uint8Array, kind: Kind) => `${PREFIX}${kind}/${accountId(to)}`;

function load(ctx: Context, key: string): Pending | null {
  const bytes = ctx.store.get('identity', key);
  if (!bytes) return null;
  const f = decodeRecord(bytes, TAG, 2);
  return asRecord(TAG, () => ({
    ids: readArray(f[0], 'ids', { min: 1, max: MAX_RECEIPT_IDS }).map((id) => readBytes(id, 'id', 16)),
    dueAt: readTimestamp(f[1], 'dueAt'),
  }));
}

/** A uniform delay in the configured range, from the provider's random source (not Math.random). */
function drawDelay(ctx: Context): number {
  const { min, max } = ctx.options.receiptDelayMs;
  const r = ctx.provider.random(4);
  const u = (((r[0] ?? 0) << 24) | ((r[1] ?? 0) << 16) | ((r[2] ?? 0) << 8) | (r[3] ?? 0)) >>> 0;
  return min + Math.floor((u / 2 ** 32) * (max - min + 1));
}

/**
 * A receipt to send (inside the receive transaction). Held back when sealed
 * sending applies to `to`; queued at once otherwise, as before.
 */
export function sendReceipt(ctx: Context, to: Uint8Array, kind: Kind, ids: readonly Uint8Array[]): void {
  const delayed = ctx.options.sealedSender && !bytesEqual(to, ctx.self.accountKey) && getHeld(ctx.store, to, ctx.clock()) !== null;
  if (!delayed) {
    queueReceipt(ctx, to, kind, ids);
    return;
  }
  const key = keyOf(to, kind);
  const held = load(ctx, key);
  const all = [...(held?.ids ?? []), ...ids];
  if (all.length > MAX_RECEIPT_IDS) {
    // A full batch goes now; the rest start a new one.
    queueReceipt(ctx, to, kind, all.slice(0, MAX_RECEIPT_IDS));
    ctx.store.delete('identity', key);
    sendReceipt(ctx, to, kind, all.slice(MAX_RECEIPT_IDS));
    return;
  }
  const dueAt = held?.dueAt ?? ctx.clock() + drawDelay(ctx);
  ctx.store.put('identity', key, encodeRecord(TAG, [all, timestampToBytes(dueAt)]));
}

/** Queues every held receipt to `to` (a message to that peer is going out: they ride along). */
export function releaseReceiptsTo(ctx: Context, to: Uint8Array): void {
  for (const kind of ['delivered', 'read'] as const) {
    const key = keyOf(to, kind);
    const held = load(ctx, key);
    if (!held) continue;
    queueReceipt(ctx, to, kind, held.ids);
    ctx.store.delete('identity', key);
  }
}

/** Queues the batches whose delay ran out; returns when the next one is due (null: none held). */
export function releaseDueReceipts(ctx: Context): number | null {
  const now = ctx.clock();
  let next: number | null = null;
  for (const e of ctx.store.list('identity', PREFIX)) {
    const [kind, id] = e.key.slice(PREFIX.length).split('/') as [Kind, string];
    const held = load(ctx, e.key);
    if (!held) continue;
    if (held.dueAt <= now) {
      queueReceipt(ctx, parseAccountId(id), kind, held.ids);
      ctx.store.delete('identity', e.key);
    } else if (next === null || held.dueAt < next) {
      next = held.dueAt;
    }
  }
  return next;
}
