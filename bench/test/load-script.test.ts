// The relay load script (bench/src/relay/load.ts) still runs end to end in both send modes: tiny
// runs, no timing assertions (performance is measured by the script itself and bench/).
import { describe, expect, it } from 'vitest';
import { formatTable, runRelayLoad } from '../src/relay/load.ts';

describe('relay/load.ts', () => {
  it.each(['http', 'ws'] as const)(
    'measures throughput and delivery latency at full and half rate (%s sends)',
    async (mode) => {
      const r = await runRelayLoad({
        mode,
        durationSeconds: 1,
        connections: 4,
        senders: 2,
        recipients: 2,
        window: 2,
        batch: mode === 'ws' ? 2 : 1,
        halfRateSeconds: 1,
        latencySamples: 20,
      });
      expect(r.accepted).toBeGreaterThan(0);
      expect(r.errors).toBe(0);
      expect(r.envelopeBytes).toBe(1024);
      expect(r.halfRate.errors).toBe(0);
      // Every envelope of the half-rate phase reached its listener (up to the sample bound).
      expect(r.halfRate.sent).toBeGreaterThan(0);
      expect(r.halfRate.sent).toBeLessThanOrEqual(20);
      expect(r.deliveryLatencyMs.samples).toBe(r.halfRate.sent);
      expect(r.deliveryAtFullRateMs.samples).toBeGreaterThan(0);
      expect(Number.isFinite(r.deliveryLatencyMs.median)).toBe(true);
      // The half-rate breakdown (bench/results/relay-latency.md): the relay's commit phases and the listeners' process.
      expect(r.breakdown.commits.count).toBeGreaterThan(0);
      expect(Number.isFinite(r.breakdown.acceptToHandler.mean)).toBe(true);
      expect(r.breakdown.listeners?.cpuPerEnvelopeUs).toBeGreaterThan(0);
      expect(formatTable(r)).toContain('envelopes accepted per second');
      expect(formatTable(r)).toContain('half rate: commits');
    },
    60_000,
  );
});
