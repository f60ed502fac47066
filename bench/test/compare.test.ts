import { describe, expect, it } from 'vitest';
import { checkTargets, comparisonRows } from '../src/compare.ts';
import { formatRatio } from '../src/report.ts';
import type { Result, ResultMeta } from '../src/results.ts';
import { Runner, QUICK } from '../src/runner.ts';

function results(entries: [ResultMeta, number | null][]): readonly Result[] {
  const runner = new Runner(QUICK, () => {});
  for (const [meta, value] of entries) {
    if (value === null) runner.notMeasured(meta, 'not there');
    else runner.recordValue(meta, { median: value, min: value, max: value, samples: 1 });
  }
  return runner.results;
}

const parley = (op: string, variant: 'node' | 'noble' = 'node') =>
  ({ section: 'one-to-one', subject: 'parley', variant, op, label: op }) as const;
const peer = (subject: 'olm' | 'libsignal-client', op: string) => ({ section: 'peers', subject, op, label: op }) as const;

describe('comparison rows', () => {
  it('divides Parley (node) by each peer and names the fastest peer', () => {
    const rows = comparisonRows(
      results([
        [parley('ping-pong'), 300],
        [parley('ping-pong', 'noble'), 3000],
        [peer('olm', 'ping-pong'), 600],
        [peer('libsignal-client', 'ping-pong'), 400],
      ]),
    );
    const row = rows.find((r) => r.op === 'ping-pong');
    expect(row?.peers['olm']?.ratio).toBeCloseTo(0.5);
    expect(row?.peers['libsignal-client']?.ratio).toBeCloseTo(0.75);
    expect(row?.parleyNoble.result?.median).toBe(3000);
    expect(row?.bestPeer).toEqual({ subject: 'libsignal-client', ratio: 0.75 });
  });

  it("uses a peer's size-independent group figure at every group size", () => {
    const rows = comparisonRows(
      results([
        [{ ...parley('group-message@100'), section: 'groups', groupSize: 100 }, 50],
        [peer('libsignal-client', 'group-message'), 200],
      ]),
    );
    expect(rows.find((r) => r.op === 'group-message@100')?.peers['libsignal-client']?.ratio).toBeCloseTo(0.25);
  });

  it('gives no ratio when either side is not measured', () => {
    const rows = comparisonRows(
      results([
        [parley('setup'), null],
        [peer('olm', 'setup'), 100],
      ]),
    );
    expect(rows.find((r) => r.op === 'setup')?.peers['olm']?.ratio).toBeNull();
  });
});

describe('targets', () => {
  it('checks strict and non-strict bounds', () => {
    const checks = checkTargets(
      results([
        [parley('same-direction-100'), 100],
        [peer('olm', 'same-direction-100'), 100],
        [parley('ping-pong'), 100],
        [peer('libsignal-client', 'ping-pong'), 100],
        [{ ...parley('group-message@10'), groupSize: 10 }, 60],
        [peer('libsignal-client', 'group-message'), 100],
      ]),
    );
    const by = (op: string) => checks.find((c) => c.op === op);
    expect(by('same-direction-100')?.met).toBe(true); // at or below: equal is met
    expect(by('ping-pong')?.met).toBe(false); // strictly below: equal is not
    expect(by('group-message@10')?.met).toBe(false); // 0.6 > 0.5
    expect(by('setup')?.met).toBeNull();
  });
});

describe('ratio formatting', () => {
  it('keeps two significant digits for small ratios', () => {
    expect(formatRatio(1 / 300)).toBe('0.0033×');
    expect(formatRatio(0.5)).toBe('0.50×');
    expect(formatRatio(2.345)).toBe('2.35×');
    expect(formatRatio(12.34)).toBe('12.3×');
  });
});
