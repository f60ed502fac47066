/**
 * The stored form of any session state, by version. spec/13-ratchet-v2.md §8
 * (formats-v2 §3.4): a record of version 2 starts every state with its
 * version (1 or 2); a record of version 1 holds bare v1 states, which load as
 * version 1 and are saved in the version-2 layout.
 */
import type { CborValue } from '../codec/cbor.ts';
import { readArray } from '../codec/fields.ts';
import { fail } from '../errors.ts';
import type { PqPort } from '../ratchet/v2/pq-port.ts';
import { type SessionStateV1, sessionFromCbor, sessionToCbor } from './state.ts';
import { type SessionStateV2, sessionV2FromCbor, sessionV2ToCbor } from './state-v2.ts';

export type SessionState = SessionStateV1 | SessionStateV2;

export function storedSessionToCbor(s: SessionState, pq: PqPort): CborValue {
  return s.version === 1 ? [1, ...sessionToCbor(s)] : sessionV2ToCbor(s, pq);
}

export function storedSessionFromCbor(v: unknown, recordVersion: number, pq: PqPort): SessionState {
  if (recordVersion === 1) return sessionFromCbor(v);
  const f = readArray(v, 'SessionState', { min: 1, max: 11 });
  switch (f[0]) {
    case 1:
      return sessionFromCbor(f.slice(1));
    case 2:
      return sessionV2FromCbor(f, pq);
    default:
      return fail('UNSUPPORTED_VERSION', 'SessionState: unsupported session version', { version: typeof f[0] === 'number' ? f[0] : -1 });
  }
}
