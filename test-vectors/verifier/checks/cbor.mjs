/** cbor.json against spec/01-conventions.md §2.1-§2.2, on the verifier's own cborg-based decoder. */
import { decode, encode } from '../lib/cbor.mjs';
import { refuses, same } from '../lib/check.mjs';
import { fromHex as h, toHex } from '../lib/hex.mjs';

/** The vector's JSON form of a decoded value (see the file's notes). */
function asJson(v) {
  if (v instanceof Uint8Array) return { bytes: toHex(v) };
  if (typeof v === 'string') return { text: v };
  if (Array.isArray(v)) return v.map(asJson);
  return v;
}

function fromJson(v) {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') return 'bytes' in v ? h(v.bytes) : v.text;
  return v;
}

export function checkCbor(f) {
  for (const g of f.groups('CborDecoding')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (t.result === 'invalid') return refuses('input', () => decode(h(t.input), 'input', g.maxBytes), t.error);
        same('value', JSON.stringify(asJson(decode(h(t.input), 'input', g.maxBytes))), JSON.stringify(t.value));
        same('re-encoded', encode(fromJson(t.value)), t.input);
      });
    }
  }
}
