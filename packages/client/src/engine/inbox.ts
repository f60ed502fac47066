/**
 * The receive side as jobs for the serial queue: one pushed envelope, and a
 * dead letter retried or listed (spec/10-client.md §4.2). The work itself is
 * engine/receive.ts's; these say when an envelope counts as handled.
 */
import type { SenderRef } from '../events.ts';
import type { IncomingEnvelope } from '../relay-link/link.ts';
import { accountId } from '../state/ids.ts';
import { type DeadLetter, deleteDeadLetter, getDeadLetter } from './dead-letters.ts';
import { type ReceiveOutcome, receiveEnvelope } from './receive.ts';
import type { Job } from './run.ts';

/** An envelope parked after failing on this device's store again and again (spec/10-client.md §4.2.2). */
export interface DeadLetterInfo {
  readonly id: string;
  readonly sender: SenderRef;
  readonly clientId: string;
  /** When the relay accepted it (ms since the epoch). */
  readonly serverTimestamp: number;
  /** The local failure's label (SQLITE_FULL, STORE_FAILED, ...). */
  readonly code: string;
  readonly attempts: number;
  readonly parkedAt: number;
}

/** Receives one pushed envelope; it may be acknowledged once this resolves (the store is durable by then). */
export function receiveJob(envelope: IncomingEnvelope): Job<ReceiveOutcome> {
  return async (ctx) => {
    const outcome = await receiveEnvelope(ctx, envelope);
    // Acknowledged only once durable: a write-behind store (IndexedDB) may still be writing.
    // (Synchronous stores get no extra await, so their timing stays exactly as it was.)
    if (ctx.store.flushed) await ctx.store.flushed();
    return outcome;
  };
}

/**
 * Runs a dead letter through the receive path again. Handled (delivered, or
 * refused as any envelope can be): the letter goes. The store failing again:
 * the letter stays, and the failure is the result.
 */
export function retryDeadLetterJob(id: string): Job<{ handled: true } | { handled: false; error: unknown }> {
  return async (ctx) => {
    const letter = getDeadLetter(ctx.store, id);
    if (!letter) throw new TypeError('"id" names no dead letter');
    const envelope: IncomingEnvelope = {
      seq: -1,
      sender: letter.sender,
      clientId: letter.clientId,
      serverTimestamp: letter.serverTimestamp,
      expiresAt: letter.parkedAt,
      envelope: letter.envelope,
      delivery: letter.delivery,
    };
    try {
      await receiveEnvelope(ctx, envelope, { park: false });
    } catch (error) {
      return { handled: false, error };
    }
    deleteDeadLetter(ctx.store, id);
    return { handled: true };
  };
}

export function deadLetterInfo(l: DeadLetter): DeadLetterInfo {
  return {
    id: l.id,
    sender: { account: accountId(l.sender.accountKey), deviceId: l.sender.deviceId },
    clientId: l.clientId,
    serverTimestamp: l.serverTimestamp,
    code: l.code,
    attempts: l.attempts,
    parkedAt: l.parkedAt,
  };
}
