// The relay load script (bench/src/relay/load.ts) still runs end to end: a tiny run, no
// timing assertions (performance is measured by the script itself and bench/).
import { describe, expect, it } from 'vitest';
import { formatTable, runRelayLoad } from '../src/relay/load.ts';

describe('relay/load.ts', () => {
  it('measures throughput and delivery latency against a relay process', async () => {
    const r = await runRelayLoad({ durationSeconds: 1, connections: 4, senders: 2, recipients: 2, latencySamples: 20, latencySenders: 2 });
    expect(r.accepted).toBeGreaterThan(0);
    expect(r.errors).toBe(0);
    expect(r.envelopeBytes).toBe(1024);
    expect(r.deliveryLatencyMs.samples).toBe(20);
    expect(Number.isFinite(r.deliveryLatencyMs.median)).toBe(true);
    expect(formatTable(r)).toContain('envelopes accepted per second');
  });
});
