/**
 * Reads the ratchet state out of a stored SessionRecord, so the generator
 * can write each step's "before" values and check its step-by-step
 * derivation against what core stored "after". Uses core's own record
 * decoder (spec/05-wire-format.md §6); the vectors never depend on this
 * module's view, only on the bytes core produced.
 */
import type { SessionRecord } from '@parley/core';
import { decodeCbor, limits } from '@parley/core';
import { type SessionStateV1 as SessionState, sessionFromCbor } from '../../../packages/core/src/session/state.ts';

export type { SessionState };

/**
 * The current (v1) session of a record (SessionRecord = [tag, version, current / null, previous];
 * in record version 2 each state starts with its ratchet version, spec/13-ratchet-v2.md §8).
 */
export function currentSession(record: SessionRecord): SessionState {
  const f = decodeCbor(record.serialize(), 'SessionRecord', limits.MAX_RECORD_BYTES) as unknown[];
  const state = f[2] as unknown[] | null;
  if (state === null) throw new Error('record has no current session');
  if (f[1] === 1) return sessionFromCbor(state);
  if (state[0] !== 1) throw new Error('current session is not a v1 session');
  return sessionFromCbor(state.slice(1));
}
