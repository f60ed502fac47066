// The tail trace (src/tail-trace.ts), a debug hook a relay may run with for a long time: what it keeps
// is bounded in memory by TAIL_TRACE_MAX_BYTES, what it drops is counted, and the file is written whole
// in pieces (never one string of the whole trace).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { TAIL_TRACE_MAX_BYTES, TAIL_TRACE_MAX_EVENTS, TailTrace, type TailEvent } from '../src/tail-trace.ts';

/** A commit event, the largest kind, with the fractional times performance.now() gives (heap numbers). */
const commit = (i: number): TailEvent => {
  const at = 1_000_000.123 + i * 0.731;
  return {
    t: 'commit',
    first: at,
    last: at + 0.1,
    start: at + 0.2,
    committed: at + 0.3,
    settled: at + 0.4,
    writes: i % 50,
    rows: i % 400,
    cpu: at / 7,
    runq: at / 9,
  };
};

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('tail trace', () => {
  it('keeps at most TAIL_TRACE_MAX_EVENTS events, and that many fit in TAIL_TRACE_MAX_BYTES', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const n = 50_000;
    gc();
    const before = process.memoryUsage().heapUsed;
    const trace = new TailTrace(n);
    for (let i = 0; i < n; i++) trace.add(commit(i));
    gc();
    const perEvent = (process.memoryUsage().heapUsed - before) / n;
    // A sanity floor: the measurement saw the events (10 numbers each).
    expect(perEvent).toBeGreaterThan(80);
    expect(TAIL_TRACE_MAX_EVENTS * perEvent).toBeLessThanOrEqual(TAIL_TRACE_MAX_BYTES);
    expect(trace).toBeDefined(); // kept alive until measured
  });

  it('counts the events past its bound in the header instead of keeping them', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tail-trace-')), 'trace.jsonl');
    const trace = new TailTrace(3);
    for (let i = 0; i < 5; i++) trace.add({ t: 'fsync', start: i, end: i + 0.5 });
    trace.write(file);
    const [header, ...events] = lines(file);
    expect(header).toMatchObject({ t: 'header', dropped: 2 });
    expect(events).toEqual([0, 1, 2].map((i) => ({ t: 'fsync', start: i, end: i + 0.5 })));
  });

  it('writes every kept event, in order, across the pieces it writes', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tail-trace-')), 'trace.jsonl');
    const trace = new TailTrace();
    const n = 10_001; // more than two pieces of 4,096 lines, and a partial one
    for (let i = 0; i < n; i++) trace.add(commit(i));
    trace.write(file);
    const [header, ...events] = lines(file);
    expect(header).toMatchObject({ t: 'header', dropped: 0 });
    expect(events).toHaveLength(n);
    expect(events[0]).toEqual(commit(0));
    expect(events[4096]).toEqual(commit(4096));
    expect(events[n - 1]).toEqual(commit(n - 1));
  });
});
