/**
 * Builds test-vectors/pq-chunks.json (the erasure-code part, formats-v2.md
 * §14) from the reference in src/pq/erasure.ts. The erasure test checks the
 * checked-in file equals this output byte for byte; rewrite it on purpose
 * with `node --import tsx packages/core/test/support/pq-chunks-vectors.ts --write`.
 * The other parts of pq-chunks.json (pqSecret, the PQ_CHUNK_INVALID cases of
 * §5.4) come with ratchet v2 (§15 step 4).
 */
import { writeFileSync } from 'node:fs';
import { toHex } from '../../src/bytes.ts';
import { dataChunkCount, decodeChunks, encodeChunks } from '../../src/pq/erasure.ts';
import { deterministicRandom } from '../../src/testing.ts';

export const PQ_CHUNKS_FILE = new URL('../../../../test-vectors/pq-chunks.json', import.meta.url);

const ALL = Array.from({ length: 255 }, (_, i) => i);

export function buildPqChunks(): string {
  const payloads = [
    {
      comment: 'erasure-code.md §3 reference payload 00 01 .. 9f (L = 160, k = 3)',
      payload: Uint8Array.from({ length: 160 }, (_, i) => i),
    },
    { comment: 'ML-KEM-768 encapsulation-key length (L = 1184, k = 19)', payload: deterministicRandom('parley pq-chunks ek')(1184) },
    { comment: 'ML-KEM-768 ciphertext length (L = 1088, k = 17)', payload: deterministicRandom('parley pq-chunks ct')(1088) },
    { comment: 'one byte (L = 1, k = 1: every chunk repeats the padded byte)', payload: Uint8Array.of(0xa5) },
  ];
  let tcId = 1;
  const encode = payloads.map(({ comment, payload }) => ({
    tcId: tcId++,
    comment,
    length: payload.length,
    k: dataChunkCount(payload.length),
    payload: toHex(payload),
    chunks: encodeChunks(payload, ALL).map(toHex),
    result: 'valid',
  }));

  const pick = deterministicRandom('parley pq-chunks subsets');
  const decode: object[] = [];
  for (const e of encode) {
    const k = e.k;
    const subsets: [string, number[]][] = [
      ['data chunks only', ALL.slice(0, k)],
      ['parity chunks only, first after the data', ALL.slice(k, 2 * k)],
      ['parity chunks only, the last indices', ALL.slice(255 - k)],
      ['mixed, from a random subset', shuffled(ALL, pick).slice(0, k)],
      ['more than k chunks: the k smallest indices are used', shuffled(ALL, pick).slice(0, k + 3)],
    ];
    if (e.length === 160)
      subsets.push(['erasure-code.md §3: {3, 100, 254}', [3, 100, 254]], ['erasure-code.md §3: {1, 7, 200}', [1, 7, 200]]);
    for (const [comment, indices] of subsets) {
      const payload = decodeChunks(
        indices.map((index) => ({ index, bytes: Uint8Array.from(Buffer.from(e.chunks[index] as string, 'hex')) })),
        e.length,
      );
      if (toHex(payload) !== e.payload) throw new Error(`decode mismatch for ${comment}`);
      decode.push({ tcId: tcId++, comment: `${comment} (payload of tcId ${e.tcId})`, payloadTcId: e.tcId, indices, result: 'valid' });
    }
  }

  const ref = encode[0] as { chunks: string[]; length: number };
  const c = (index: number, hex = ref.chunks[index] as string) => ({ index, bytes: hex });
  const invalid = [
    ['too few chunks (2 of k = 3)', [c(0), c(200)], 'too_few'],
    ['no chunks', [], 'too_few'],
    ['repeated index, same bytes (3 entries, 2 distinct)', [c(0), c(5), c(5)], 'duplicate'],
    ['repeated index, other bytes', [c(0), c(5), c(9), c(5, ref.chunks[6])], 'duplicate'],
    ['index 255 (outside 0..254)', [c(0), c(1), c(255, ref.chunks[2])], 'index'],
    ['index -1', [c(0), c(1), c(-1, ref.chunks[2])], 'index'],
    ['chunk of 63 bytes', [c(0), c(1), c(2, (ref.chunks[2] as string).slice(2))], 'length'],
    ['chunk of 65 bytes', [c(0), c(1), c(2, `${ref.chunks[2]}00`)], 'length'],
  ].map(([comment, chunks, reason]) => ({
    tcId: tcId++,
    comment: comment as string,
    length: ref.length,
    chunks,
    result: 'invalid',
    error: 'PQ_CHUNK_INVALID',
    reason,
  }));

  const file = {
    description: 'PQ chunk erasure code: systematic Reed-Solomon over GF(2^8) (code part only; the ratchet part comes with ratchet v2).',
    spec: 'spec/design/erasure-code.md §1, spec/design/formats-v2.md §5.2',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      field:
        'GF(2^8) mod x^8 + x^4 + x^3 + x^2 + 1 (0x11d); chunk i is the 64 evaluations at the byte i of the polynomials of degree < k through the zero-padded payload.',
      payloads:
        "The ek and ct payloads are the deterministic random source (packages/core/src/testing.ts) with seeds 'parley pq-chunks ek' / 'parley pq-chunks ct'; the subsets are drawn from seed 'parley pq-chunks subsets'.",
      decode:
        'Decode cases give the indices of the chunks (bytes from the ErasureEncode test named by payloadTcId) and expect that test payload back.',
    },
    testGroups: [
      { type: 'ErasureEncode', description: 'payload -> chunks 0..254', tests: encode },
      { type: 'ErasureDecode', description: 'chunks -> payload', tests: decode },
      { type: 'ErasureDecodeInvalid', description: 'refused with PQ_CHUNK_INVALID; reason is details.reason', tests: invalid },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Fisher-Yates with bytes from `random` (deterministic for vectors). */
function shuffled(xs: readonly number[], random: (n: number) => Uint8Array): number[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const r = random(2);
    const j = (((r[0] as number) << 8) | (r[1] as number)) % (i + 1);
    [out[i], out[j]] = [out[j] as number, out[i] as number];
  }
  return out;
}

if (process.argv.includes('--write')) writeFileSync(PQ_CHUNKS_FILE, buildPqChunks());
