/**
 * The envelope of every value the SDK stores: CBOR([tag, version, ...fields]).
 * spec/10-client.md §7. A stored value always says what it is and which
 * format it has, so a future version can migrate old values instead of
 * misreading them; anything malformed is core's BAD_RECORD.
 */
import { type CborValue, ParleyError, decodeCbor, encodeCbor, limits } from '@parley/core';

export const RECORD_VERSION = 1;

export function encodeRecord(tag: string, fields: CborValue[]): Uint8Array {
  return encodeCbor([tag, RECORD_VERSION, ...fields]);
}

/**
 * The fields after tag and version; throws BAD_RECORD (or UNSUPPORTED_VERSION
 * for a newer format). `fields` may list several counts: a record that gained
 * trailing fields still reads its older, shorter form.
 */
export function decodeRecord(bytes: Uint8Array, tag: string, fields: number | readonly number[]): unknown[] {
  let v: unknown;
  try {
    v = decodeCbor(bytes, tag, limits.MAX_RECORD_BYTES);
  } catch (e) {
    throw new ParleyError('BAD_RECORD', `${tag}: ${(e as Error).message}`);
  }
  if (!Array.isArray(v) || v[0] !== tag) throw new ParleyError('BAD_RECORD', `${tag}: wrong format tag`);
  if (v[1] !== RECORD_VERSION)
    throw new ParleyError('UNSUPPORTED_VERSION', `${tag}: unsupported record version`, { version: String(v[1]) });
  if (!(typeof fields === 'number' ? [fields] : fields).includes(v.length - 2)) {
    throw new ParleyError('BAD_RECORD', `${tag}: wrong number of fields`);
  }
  return v.slice(2);
}

/** Runs a field reader, turning any shape error into BAD_RECORD. */
export function asRecord<T>(tag: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof ParleyError && (e.code === 'BAD_RECORD' || e.code === 'UNSUPPORTED_VERSION')) throw e;
    throw new ParleyError('BAD_RECORD', `${tag}: ${(e as Error).message}`);
  }
}
