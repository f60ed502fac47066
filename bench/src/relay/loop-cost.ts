/**
 * The per-frame and per-envelope pieces of the relay's delivery loop that
 * issue 15's loop work changed, before against after, in process CPU per
 * operation (a loaded machine disturbs that less than wall-clock time),
 * rounds alternating the two:
 *  - a send frame of 8 × 1 KiB envelopes and an ack frame of 8 seqs decoded
 *    by core's decodeCbor against the one-pass readCbor (spec/01-conventions.md
 *    §2.2). Until session 6 decodeCbor was cbor-x, a walk, a re-encode and a
 *    compare; since, it is readCbor plus copies of the byte strings, so
 *    "before" here is the cost of those copies (the old decoder against the
 *    new one: bench/src/core/cbor-decode.ts --before);
 *  - one observation of the push-delay histogram: prom-client's Histogram
 *    against the relay's LoopHistogram (src/metrics-histogram.ts).
 * The whole loop's cost per envelope is measured under load by load.ts with
 * --profile-dir (bench/results/relay-latency.md, "Loop cost per envelope").
 *
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx bench/src/relay/loop-cost.ts [--rounds 5] [--ops 20000]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { decodeCbor, encodeCbor, readCbor } from '@parley/core';
import { Histogram, Registry } from 'prom-client';
import { u64 } from '../../../packages/relay/src/delivery/push-frame.ts';
import { LoopHistogram } from '../../../packages/relay/src/metrics-histogram.ts';
import { SEND_FRAME_8X1K as sendFrame } from './send-frame-fixture.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, ops: { type: 'string', default: '20000' } } });
const rounds = Number(values.rounds);
const ops = Number(values.ops);

const ackFrame = encodeCbor(['ack', Array.from({ length: 8 }, (_, i) => u64(1000 + i))]);
const DELAYS = Array.from({ length: 64 }, (_, i) => (i % 17) / 1000);

/** Microseconds of process CPU (user + system) per call of `f`, over `n` calls. */
function cpuPerOp(n: number, f: (i: number) => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) f(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

function histograms() {
  const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
  const prom = new Histogram({ name: 'a', help: 'a', buckets, registers: [new Registry()] });
  const loop = new LoopHistogram({ name: 'a', help: 'a', buckets, registers: [new Registry()] });
  return { prom, loop };
}

const cases: { name: string; per: string; before: (i: number) => void; after: (i: number) => void; n: number }[] = [
  {
    name: 'send frame decode (8 × 1 KiB)',
    per: 'frame',
    before: () => decodeCbor(sendFrame, 'send frame', 65536),
    after: () => readCbor(sendFrame, 'send frame', 65536),
    n: Math.max(1, Math.floor(ops / 4)),
  },
  {
    name: 'ack frame decode (8 seqs)',
    per: 'frame',
    before: () => decodeCbor(ackFrame, 'ack frame', 9008),
    after: () => readCbor(ackFrame, 'ack frame', 9008),
    n: ops,
  },
  (() => {
    const { prom, loop } = histograms();
    return {
      name: 'push-delay histogram observation',
      per: 'observation',
      before: (i: number) => prom.observe(DELAYS[i & 63] as number),
      after: (i: number) => loop.observe(DELAYS[i & 63] as number),
      n: ops * 5,
    };
  })(),
];

console.log(`# relay loop pieces, µs of process CPU per operation (median of ${rounds} alternating rounds)`);
for (const c of cases) {
  // Warm both up (JIT) before measuring.
  cpuPerOp(c.n, c.before);
  cpuPerOp(c.n, c.after);
  const before: number[] = [];
  const after: number[] = [];
  for (let r = 0; r < rounds; r++) {
    before.push(cpuPerOp(c.n, c.before));
    after.push(cpuPerOp(c.n, c.after));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log(
    `${c.name.padEnd(36)} before ${median(before).toFixed(3).padStart(8)}  after ${median(after).toFixed(3).padStart(8)}  µs per ${c.per}`,
  );
}
console.log(`machine: Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}`);
