/**
 * Reads the ratchet state out of a stored SessionRecord, so the generator
 * can write each step's "before" values and check its step-by-step
 * derivation against what core stored "after". Uses core's own record
 * decoder (spec/05-wire-format.md §6); the vectors never depend on this
 * module's view, only on the bytes core produced.
 */
import type { SessionRecord } from '@parley/core';
import { decodeCbor, limits } from '@parley/core';
import { type SessionState, sessionFromCbor } from '../../../packages/core/src/session/state.ts';

export type { SessionState };

/** The current session of a record (SessionRecord = [tag, version, current / null, previous]). */
export function currentSession(record: SessionRecord): SessionState {
  const f = decodeCbor(record.serialize(), 'SessionRecord', limits.MAX_RECORD_BYTES) as unknown[];
  if (f[2] === null) throw new Error('record has no current session');
  return sessionFromCbor(f[2]);
}
