/**
 * The one rule both backends apply when an account uploads its signed
 * device list. spec/09-relay.md §4.1.
 *
 * Only a higher revision replaces the held list; the same bytes again are a
 * harmless retry (or replay); anything else (a lower revision, or the same
 * revision with other devices) is refused, so a captured old list cannot roll
 * the relay's copy back. Clients never rely on this (they keep the highest
 * revision they have seen themselves): it keeps an honest relay from serving
 * a rollback it was tricked into.
 */
import type { PutDeviceListResult } from '../types.ts';

interface Held {
  readonly revision: number;
  readonly list: Uint8Array;
}

export function judgeDeviceList(held: Held | undefined, incoming: { revision: number; encoded: Uint8Array }): PutDeviceListResult {
  if (!held || incoming.revision > held.revision) return { status: 'stored' };
  if (incoming.revision === held.revision && Buffer.compare(Buffer.from(held.list), Buffer.from(incoming.encoded)) === 0)
    return { status: 'unchanged' };
  return { status: incoming.revision === held.revision ? 'conflict' : 'outdated', revision: held.revision };
}
