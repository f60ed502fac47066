import { describe, expect, it } from 'vitest';
import { checkTargets, comparisonRows } from '../src/compare.ts';
import { checkByteTargets, ratchetRows, v2Pairs } from '../src/compare-v2.ts';
import { formatRatio } from '../src/report.ts';
import { type Result, type ResultMeta, type RunReport, keepSections } from '../src/results.ts';
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

describe('ratchet v2 (issue 17)', () => {
  const v2 = (op: string, variant: 'node' | 'noble' | null = 'node') =>
    ({ section: 'v2', subject: 'parley', variant, op, label: op }) as const;
  const bytes = (subject: 'parley' | 'libsignal-client', op: string) => ({ section: 'v2', subject, op, label: op, unit: 'bytes' }) as const;
  const run = results([
    [parley('ping-pong'), 250],
    [v2('v2-ping-pong'), 360],
    [v2('v2-ping-pong', 'noble'), 3000],
    [peer('libsignal-client', 'ping-pong'), 400],
    [bytes('parley', 'bytes-ping-pong-v1'), 220],
    [bytes('parley', 'bytes-ping-pong-v2'), 326.5],
    [bytes('libsignal-client', 'bytes-ping-pong'), 196],
    [bytes('parley', 'bytes-same-direction-v1'), 220],
    [bytes('parley', 'bytes-same-direction-v2'), 404],
  ]);

  it('sets v2 beside v1 and libsignal-client, time and bytes, from the same run', () => {
    const row = ratchetRows(run).find((r) => r.op === 'ping-pong');
    expect(row?.v2VsLibsignal).toBeCloseTo(0.9);
    expect(row?.v2VsV1).toBeCloseTo(1.44);
    expect(row?.v2Noble).toBe(3000);
    expect([row?.bytesV1, row?.bytesV2, row?.bytesLibsignal]).toEqual([220, 326.5, 196]);
    // Same-direction has bytes but no time here: the row is kept, its times are null.
    expect(ratchetRows(run).find((r) => r.op === 'same-direction-100')?.v2).toBeNull();
  });

  it("checks the ping-pong target against the peer's own operation, and the byte budget per conversation", () => {
    expect(checkTargets(run).find((c) => c.op === 'v2-ping-pong')?.met).toBe(true); // 0.9 < 1
    const [pingPong, sameDirection] = checkByteTargets(run);
    expect(pingPong?.added).toBeCloseTo(106.5);
    expect(pingPong?.met).toBe(true);
    expect(sameDirection?.added).toBe(184);
    expect(sameDirection?.met).toBe(false);
    expect(checkByteTargets(results([]))[0]?.met).toBeNull();
  });

  it('pairs each sealed or franked row with its unsealed or unfranked reference', () => {
    const pairs = v2Pairs(
      results([
        [v2('sealed-1to1-unsealed'), 300],
        [v2('sealed-1to1-sealed'), 700],
        [v2('sealed-1to1-sealed', 'noble'), 6000],
        [v2('franking-group-v1'), 250],
        [v2('franking-group-v2'), 260],
      ]),
    );
    const sealed = pairs.find((p) => p.label === 'sealed-1to1-sealed');
    expect(sealed?.reference?.median).toBe(300);
    expect(sealed?.noble?.median).toBe(6000);
    expect(pairs.find((p) => p.label === 'franking-group-v2')?.reference?.median).toBe(250);
    expect(pairs.find((p) => p.label === 'sealed-1to1-unsealed')?.reference).toBeNull();
  });
});

describe('--keep', () => {
  const report = (sections: RunReport['sections'], rows: [ResultMeta, number][], startedAt: string): RunReport => ({
    version: 1,
    profile: 'full',
    startedAt,
    durationSeconds: 1,
    machine: { node: 'v20', platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'x', loadAverage: [0, 0, 0] },
    sections,
    results: results(rows),
    breakdowns: [],
  });

  it('carries over only the sections this run did not measure, and says from which run', () => {
    const relay = { section: 'relay', subject: 'relay', op: 'relay-envelopes', label: 'e', unit: 'per-second' } as const;
    const earlier = report(
      ['one-to-one', 'relay'],
      [
        [parley('ping-pong'), 300],
        [relay, 1800],
      ],
      '2026-11-22T00:00:00Z',
    );
    const now = report(['one-to-one', 'v2'], [[parley('ping-pong'), 250]], '2026-12-06T00:00:00Z');
    const merged = keepSections(now, earlier);
    expect(merged.results.map((r) => [r.id, r.median])).toEqual([
      ['parley/node/ping-pong', 250],
      ['relay/relay-envelopes', 1800],
    ]);
    expect(merged.kept).toEqual({ startedAt: '2026-11-22T00:00:00Z', profile: 'full', sections: ['relay'] });
    expect(keepSections(earlier, earlier).kept).toBeUndefined();
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
