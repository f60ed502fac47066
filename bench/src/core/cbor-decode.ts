/**
 * Core's CBOR decoding cost per message format (spec/01-conventions.md §2.2), in process CPU per decode
 * (a loaded machine disturbs that less than wall-clock time), medians over rounds:
 *  - `decodeCbor` (byte strings copied) and `readCbor` (views) of this tree;
 *  - with `--before <core index.ts>`, the `decodeCbor` of another tree in the same process, rounds
 *    alternating which of the two runs first. For the decoder before session 6 (cbor-x, a subset walk,
 *    a re-encode and a byte compare), unpack that commit's core beside this tree (no git worktree
 *    needed; its node_modules are this tree's):
 *
 *      mkdir -p /tmp/parley-base && git archive 44215fc packages/core | tar -x -C /tmp/parley-base
 *      ln -s "$PWD/node_modules" /tmp/parley-base/node_modules
 *      NODE_OPTIONS=--conditions=parley:source node --import tsx bench/src/core/cbor-decode.ts \
 *        --before /tmp/parley-base/packages/core/src/index.ts [--rounds 9] [--ms 150] [--hostile]
 *
 * The inputs are real encodings: every valid CBOR structure of the named fields of test-vectors/ (the
 * reference messages, records, bundles, frames), plus two built here: a relay send frame of 8 × 1 KiB
 * envelopes and a 1:1 message with a 64 KiB ciphertext. With `--hostile`, also the valid inputs that cost
 * a decoder the most per byte: a 64 KiB array of one-byte items (empty byte strings, byte strings of one
 * byte, integers, empty arrays). Results: bench/results/cbor-decoder.md.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { decodeCbor, encodeCbor, readCbor } from '@parley/core';
import { median } from '../harness.ts';
import { SEND_FRAME_8X1K as sendFrame } from '../relay/send-frame-fixture.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    ms: { type: 'string', default: '150' },
    before: { type: 'string' },
    hostile: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
/** CPU milliseconds each measurement aims at (the op count is calibrated once per format and decoder). */
const targetMs = Number(values.ms);

type Decode = (bytes: Uint8Array, what: string, maxBytes: number) => unknown;
const MAX_BYTES = 1 << 24;

/** [label, vector file, JSON field name]: the structures a format's vectors carry under that field. */
const FROM_VECTORS: [string, string, string][] = [
  ['ratchet message (1:1)', 'ratchet.json', 'message'],
  ['ratchet v2 body', 'ratchet-v2.json', 'body'],
  ['first message (PQXDH)', 'handshake.json', 'message'],
  ['prekey bundle', 'keys.json', 'bundle'],
  ['device certificate', 'keys.json', 'certificate'],
  ['group message', 'groups.json', 'message'],
  ['group message v2', 'groups-v2.json', 'message'],
  ['sealed envelope', 'seal.json', 'envelope'],
  ['session record', 'records.json', 'record'],
  ['group record', 'groups.json', 'record'],
  ['abuse report', 'reports.json', 'report'],
  ['push frame', 'push-frames.json', 'frame'],
];

/** Every distinct hex string under `field` in the file that is one valid CBOR array (a Parley structure). */
function vectorInputs(file: string, field: string): Uint8Array[] {
  const json: unknown = JSON.parse(readFileSync(new URL(`../../../test-vectors/${file}`, import.meta.url), 'utf8'));
  const found = new Set<string>();
  const visit = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (key === field && v.length >= 2 && v.length % 2 === 0 && /^[0-9a-f]+$/.test(v)) found.add(v);
    } else if (Array.isArray(v)) for (const x of v) visit(x, key);
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, k);
  };
  visit(json, '');
  const out: Uint8Array[] = [];
  for (const hex of found) {
    const bytes = Uint8Array.from(Buffer.from(hex, 'hex'));
    if (bytes[0] === undefined || bytes[0] >> 5 !== 4) continue;
    try {
      decodeCbor(bytes, 'input', MAX_BYTES);
      out.push(bytes);
    } catch {
      // An invalid vector's input: not a decoding cost of the format.
    }
  }
  return out;
}

// The shape of a 1:1 message (version, header, ciphertext): only the sizes matter to the decoder.
const bigMessage = encodeCbor([1, [new Uint8Array(32).fill(3), 7, 9], new Uint8Array(64 * 1024).map((_, j) => j & 0xff)]);

/** A valid 64 KiB input: one array of `item` (the bytes of one item) repeated to fill it. */
function arrayOf(item: number[]): Uint8Array {
  // The two-byte length form (canonical for 256 to 65535 items).
  const count = Math.floor((65536 - 3) / item.length);
  const out = new Uint8Array(3 + count * item.length);
  out.set([0x99, (count >>> 8) & 0xff, count & 0xff]);
  for (let i = 0; i < count; i++) out.set(item, 3 + i * item.length);
  return out;
}

const formats: { name: string; inputs: Uint8Array[] }[] = [
  ...FROM_VECTORS.map(([name, file, field]) => ({ name, inputs: vectorInputs(file, field) })),
  { name: 'relay send frame (8 × 1 KiB)', inputs: [sendFrame] },
  { name: '1:1 message, 64 KiB ciphertext', inputs: [bigMessage] },
  ...(values.hostile
    ? [
        { name: 'hostile: 64 KiB of empty byte strings', inputs: [arrayOf([0x40])] },
        { name: 'hostile: 64 KiB of 1-byte byte strings', inputs: [arrayOf([0x41, 0x07])] },
        { name: 'hostile: 64 KiB of integers', inputs: [arrayOf([0x00])] },
        { name: 'hostile: 64 KiB of empty arrays', inputs: [arrayOf([0x80])] },
      ]
    : []),
].filter((f) => f.inputs.length > 0);

/** Microseconds of process CPU (user + system) per decoded input, over `n` passes through `inputs`. */
function cpuPerDecode(decode: Decode, inputs: Uint8Array[], n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) for (const input of inputs) decode(input, 'bench', MAX_BYTES);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / (n * inputs.length);
}

/** Passes through `inputs` that take about `targetMs` of CPU (after a warm-up). */
function calibrate(decode: Decode, inputs: Uint8Array[]): number {
  cpuPerDecode(decode, inputs, 20);
  const perPass = cpuPerDecode(decode, inputs, 20) * inputs.length;
  return Math.max(3, Math.round((targetMs * 1000) / Math.max(perPass, 0.01)));
}

async function main(): Promise<void> {
  const decoders: [string, Decode][] = [];
  if (values.before !== undefined) {
    const before = (await import(values.before)) as { decodeCbor: Decode };
    decoders.push(['decodeCbor before', before.decodeCbor]);
  }
  decoders.push(['decodeCbor', decodeCbor], ['readCbor', readCbor]);
  const load = [loadavg()[0] as number];
  const rows = formats.map((f) => ({
    ...f,
    bytes: median(f.inputs.map((b) => b.length)),
    passes: decoders.map(([, d]) => calibrate(d, f.inputs)),
    samples: decoders.map(() => [] as number[]),
  }));
  for (let r = 0; r < rounds; r++) {
    // Alternate which decoder runs first, so a drift in machine load falls on both sides.
    const order = decoders.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const row of rows) {
      for (const i of order) {
        row.samples[i]?.push(cpuPerDecode((decoders[i] as [string, Decode])[1], row.inputs, row.passes[i] as number));
      }
    }
    load.push(loadavg()[0] as number);
  }
  const head = ['format', 'inputs', 'median bytes', ...decoders.map(([n]) => `${n} µs`)];
  if (values.before !== undefined) head.push('before / after');
  console.log(`| ${head.join(' | ')} |`);
  console.log(`| ${head.map(() => '---').join(' | ')} |`);
  for (const row of rows) {
    const m = row.samples.map(median);
    const cells = [row.name, String(row.inputs.length), String(row.bytes), ...m.map((x) => x.toFixed(2))];
    if (values.before !== undefined) cells.push(`${((m[0] as number) / (m[1] as number)).toFixed(1)}×`);
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log(
    `\n${rounds} rounds, medians of CPU µs per decode; 1-minute load ${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}; node ${process.version}`,
  );
}

await main();
