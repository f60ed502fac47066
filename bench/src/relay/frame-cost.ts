/**
 * What one websocket frame from a device costs the relay's event loop before
 * any budget applies (issue 15, hostile input; spec/09-relay.md §5.1, §5.4),
 * old path against new, in process CPU per frame (a loaded machine disturbs
 * it less than wall-clock time), rounds alternating the paths:
 * - old: the whole frame decoded by readCbor (what decodeSendFrame did before
 *   the counter, in-flight, rate and count checks; a JSON text frame parsed
 *   whole before its length or shape was looked at);
 * - new, taken: the head read by hand, then the elements with the item budget
 *   of their count (send-frame.ts readSendHead + readElements);
 * - new, refused (rate, in flight, count): the head alone.
 * Also the items each path builds (the decoded value's items; for a refused
 * decode, the budget it stopped at).
 *
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx bench/src/relay/frame-cost.ts [--frames 200] [--rounds 5]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type CborValue, encodeCbor, readCbor } from '@parley/core';
import { ITEMS_PER_ELEMENT, readElements, readSendHead } from '../../../packages/relay/src/delivery/send-frame.ts';

const MAX_FRAME = 64 * 1024;
const MAX_ELEMENTS = 1024;

const { values } = parseArgs({ options: { frames: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' } } });
const FRAMES = Number(values.frames);
const ROUNDS = Number(values.rounds);

const empty = new Uint8Array(0);
const element = (i: number, bytes: number): CborValue => [
  new Uint8Array(32).fill(1),
  1 + (i % 32),
  `m-${i}`,
  new Uint8Array(bytes).fill(i & 0xff),
  new Uint8Array(32).fill(2),
];
/** The most elements of `bytes` each that fit one frame. */
function legalFrame(bytes: number): Uint8Array {
  const list: CborValue[] = [];
  while (encodeCbor(['send', 1, null, [...list, element(list.length, bytes)]]).length <= MAX_FRAME && list.length < MAX_ELEMENTS) {
    list.push(element(list.length, bytes));
  }
  return encodeCbor(['send', 1, null, list]);
}
/** `make(n)` with the largest n that fits one frame. */
function fill(make: (n: number) => Uint8Array): Uint8Array {
  let lo = 1;
  let hi = MAX_FRAME;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (make(mid).length <= MAX_FRAME) lo = mid;
    else hi = mid - 1;
  }
  return make(lo);
}

const FRAMES_UNDER_TEST: [string, Uint8Array][] = [
  ['legal: 1 KiB envelopes, as many as fit', legalFrame(1024)],
  ['legal: 16-byte envelopes, as many as fit', legalFrame(16)],
  ['hostile: one element of empty byte strings', fill((n) => encodeCbor(['send', 1, null, [new Array(n).fill(empty)]]))],
  ['hostile: elements that are empty arrays', fill((n) => encodeCbor(['send', 1, null, new Array(n).fill([])]))],
  [
    'hostile: 1024 elements of empty byte strings',
    fill((n) => encodeCbor(['send', 1, null, new Array(1024).fill(new Array(n).fill(empty))])),
  ],
];

function itemsOf(v: unknown): number {
  return Array.isArray(v) ? 1 + v.reduce((n: number, x) => n + itemsOf(x), 0) : 1;
}

type Path = (bytes: Uint8Array) => number;
const PATHS: [string, Path][] = [
  [
    'old: whole frame',
    (b) => {
      try {
        return itemsOf(readCbor(b, 'send frame', MAX_FRAME));
      } catch {
        return -1;
      }
    },
  ],
  [
    'new: taken',
    (b) => {
      const head = readSendHead(b, MAX_FRAME);
      if (head.count > MAX_ELEMENTS) return 0;
      try {
        return itemsOf(readElements(head, MAX_FRAME));
      } catch {
        return -(1 + head.count * ITEMS_PER_ELEMENT);
      }
    },
  ],
  ['new: refused (rate)', (b) => (readSendHead(b, MAX_FRAME).counter > 0 ? 0 : 1)],
];

/** Process CPU µs per frame of `path` over FRAMES frames. */
function measure(path: Path, bytes: Uint8Array): { us: number; items: number } {
  let items = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < FRAMES; i++) items = path(bytes);
  const used = process.cpuUsage(start);
  return { us: (used.user + used.system) / FRAMES, items };
}

console.log(
  `frames ${FRAMES} x rounds ${ROUNDS}, load ${loadavg()[0]?.toFixed(2)}; median CPU us per frame; items built (negative: refused at that budget)`,
);
console.log('| frame | bytes | path | us/frame | items |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, bytes] of FRAMES_UNDER_TEST) {
  const samples = new Map<string, { us: number[]; items: number }>();
  for (const [p] of PATHS) samples.set(p, { us: [], items: 0 });
  for (const [, path] of PATHS) path(bytes); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [p, path] of PATHS) {
      const m = measure(path, bytes);
      const s = samples.get(p) as { us: number[]; items: number };
      s.us.push(m.us);
      s.items = m.items;
    }
  }
  for (const [p, s] of samples) {
    const us = [...s.us].sort((a, b) => a - b)[Math.floor(s.us.length / 2)] as number;
    console.log(`| ${name} | ${bytes.length} | ${p} | ${us.toFixed(1)} | ${s.items} |`);
  }
}

// Text frames: JSON.parse of a padded auth frame (old) against the length check before it (new: nothing parsed).
const auth = JSON.stringify({
  type: 'auth',
  account: 'a'.repeat(43),
  deviceId: 1,
  signature: 's'.repeat(86),
  pad: new Array(20_000).fill([]),
});
const start = process.cpuUsage();
for (let i = 0; i < FRAMES; i++) JSON.parse(auth);
const used = process.cpuUsage(start);
console.log(
  `\nauth frame of ${auth.length} B: old JSON.parse ${((used.user + used.system) / FRAMES).toFixed(1)} us/frame; new: refused on its length (> 1024 B), not parsed`,
);
