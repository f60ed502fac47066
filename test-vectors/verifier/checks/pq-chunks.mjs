/** pq-chunks.json (erasure-code part) against spec/design/erasure-code.md. */
import { refuses, same } from '../lib/check.mjs';
import { decode, encodeAll } from '../lib/erasure.mjs';
import { fromHex as h } from '../lib/hex.mjs';

export function checkPqChunks(f) {
  const payloads = new Map();
  for (const g of f.groups('ErasureEncode')) {
    for (const t of g.tests) {
      payloads.set(t.tcId, t);
      f.run(t, () => {
        same('length', h(t.payload).length, t.length);
        same('k', Math.ceil(t.length / 64), t.k);
        const chunks = encodeAll(h(t.payload));
        same('chunk count', chunks.length, t.chunks.length);
        chunks.forEach((c, i) => same(`chunk ${i}`, c, t.chunks[i]));
      });
    }
  }
  for (const g of f.groups('ErasureDecode')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const e = payloads.get(t.payloadTcId);
        same(
          'payload',
          decode(
            t.indices.map((index) => ({ index, bytes: h(e.chunks[index]) })),
            e.length,
          ),
          e.payload,
        );
      });
    }
  }
  for (const g of f.groups('ErasureDecodeInvalid')) {
    for (const t of g.tests) {
      f.run(t, () =>
        refuses(
          'decode',
          () =>
            decode(
              t.chunks.map((c) => ({ index: c.index, bytes: h(c.bytes) })),
              t.length,
            ),
          t.error,
        ),
      );
    }
  }
}
