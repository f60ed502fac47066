// The tail report (bench/src/relay/tail-report.ts, load.ts --tail): each slow delivery is matched
// to its group commit and its time cut into causes from the relay's trace (packages/relay/src/tail-trace.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatTable, runRelayLoad } from '../src/relay/load.ts';
import { type DeliveryRecord, attributeTail, readTailTrace } from '../src/relay/tail-report.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A relay trace with timeOrigin 1,000,000 ms whose Date.now() runs 3 ms ahead of its wall clock. */
function traceFile(events: object[]): string {
  dir = mkdtempSync(join(tmpdir(), 'parley-tail-'));
  const file = join(dir, 'trace.jsonl');
  const header = { t: 'header', timeOrigin: 1_000_000, dateNowMinusPerf: 1_000_003, dropped: 0 };
  writeFileSync(file, `${[header, ...events].map((e) => JSON.stringify(e)).join('\n')}\n`);
  return file;
}

const commit = (first: number, start: number, committed: number, rows: number) => ({
  t: 'commit',
  first,
  last: first + 0.5,
  start,
  committed,
  settled: committed + 2,
  writes: 2,
  rows,
});

describe('tail report', () => {
  it('matches an envelope to its commit and gives its wait to the hold, the commit before it, and GC', () => {
    const file = traceFile([
      commit(0, 1, 3, 10),
      // The slow envelope's write (submitted at 100.2) waited through a hold and a long commit.
      commit(90, 126, 146, 250),
      commit(100.2, 150, 158, 16),
      { t: 'checkpoint', start: 80, held: 104, end: 120, log: 40_000, timedOut: false },
      { t: 'gc', start: 146, end: 149, kind: 1 },
      { t: 'gap', start: 126, end: 149, cpu: 20, runq: 3 },
    ]);
    const trace = readTailTrace(file, 50);
    const fast = (i: number): DeliveryRecord => ({ sent: 1_000_000 + i, serverTimestamp: 1_000_003 + i, delivered: 1_000_003 + i });
    // Sent at 99 (relay wall clock), accepted at 100 (its Date.now() says 103), delivered at 159.
    const slow: DeliveryRecord = { sent: 1_000_099, serverTimestamp: 1_000_103, delivered: 1_000_159 };
    const records = [...Array.from({ length: 99 }, (_, i) => fast(i * 0.01)), slow];
    const r = attributeTail(records, trace, 99);
    expect(r.envelopes).toBe(1);
    expect(r.matched).toBe(1);
    expect(r.ownCommits).toMatchObject({ count: 1, rows: [16, 16] });
    // 99-104 outside, 104-120 hold, 120-126 outside, 126-146 the long commit, 146-149 GC, 150-158 its own.
    expect(r.causes.hold.meanMs).toBeCloseTo(16, 0);
    expect(r.causes['other commit'].meanMs).toBeCloseTo(20, 0);
    expect(r.causes.gc.meanMs).toBeCloseTo(3, 0);
    expect(r.causes['own commit'].meanMs).toBeCloseTo(8, 0);
    expect(r.causes['other commit'].dominant).toBe(1);
    expect(r.overlapped).toEqual({ hold: 1, gc: 1, bigCommit: 1 });
    expect(r.episodes).toHaveLength(1);
    expect(r.episodes[0]).toMatchObject({ envelopes: 1, maxRows: 250, sched: { cpu: 20, runq: 3, slept: 0 } });
  });

  it("gives a hold's parts: the unheld passes before it, the request, the held pass and its frames, the answer", () => {
    const file = traceFile([
      commit(0, 1, 3, 10),
      {
        t: 'checkpoint',
        start: 10,
        held: 60,
        end: 75,
        log: 40_000,
        timedOut: false,
        unheld: [10.5, 52],
        passes: 3,
        copied: 9_000,
        pass: [61, 73],
        frames: 300,
        cpu: 4,
        runq: 1,
      },
      // An older relay's event: a hold without parts.
      { t: 'checkpoint', start: 80, held: 90, end: 95, log: 40_000, timedOut: false },
    ]);
    const trace = readTailTrace(file, 50);
    const records = Array.from({ length: 100 }, (_, i) => ({
      sent: 1_000_000 + i,
      serverTimestamp: 1_000_003 + i,
      delivered: 1_000_002 + i,
    }));
    const r = attributeTail(records, trace, 99);
    expect(r.relay.holds).toBe(2);
    // Only the hold with parts counts in them: request 60 → 61, pass 61 → 73 (asleep 12 − 4 − 1), answer 73 → 75.
    expect(r.relay.holdParts).toEqual({
      unheld: { ms: [41.5, 41.5], passes: [3, 3], copied: [9_000, 9_000], toLoop: [8, 8] },
      toWorker: [1, 1],
      pass: [12, 12],
      toLoop: [2, 2],
      frames: [300, 300],
      worker: { cpu: 4, runq: 1, slept: 7 },
    });
  });

  it('is part of a load run with --tail (the relay writes its trace at exit)', async () => {
    const r = await runRelayLoad({
      mode: 'ws',
      durationSeconds: 1,
      senders: 2,
      recipients: 2,
      window: 2,
      batch: 2,
      halfRateSeconds: 1,
      latencySamples: 40,
      tailPercentile: 90,
    });
    expect(r.tail).toBeDefined();
    expect(r.tail?.envelopes).toBeGreaterThan(0);
    // Matched by time (1 ms server timestamps): on a loaded CI machine a write may lag its timestamp past the window.
    expect(r.tail?.matched).toBeGreaterThan(0);
    expect(r.tail?.matched).toBeLessThanOrEqual(r.tail?.envelopes ?? 0);
    expect(r.tail?.relay.commits).toBeGreaterThan(0);
    expect(formatTable(r)).toContain('tail: mean ms per cause');
  }, 60_000);
});
