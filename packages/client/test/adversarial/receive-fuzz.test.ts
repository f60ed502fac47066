/**
 * The receive-path fuzzer's short mode (scripts/fuzz-receive.ts; the long
 * mode is `npm run fuzz`): hostile inputs from two accounts with probes and
 * restarts in between; no untyped error and no stuck envelope.
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from '../../scripts/fuzz-receive.ts';

/** A fixed seed keeps CI reproducible; PARLEY_FUZZ_SEED explores others. */
const SEED = Number(process.env.PARLEY_FUZZ_SEED ?? 20261206);

describe('receive-path fuzz (short mode)', () => {
  it('600 hostile inputs: 0 untyped errors, 0 stuck envelopes, every probe delivered', async () => {
    const report = await runFuzz({ inputs: 600, seed: SEED, batch: 200 });
    expect({ untyped: report.untyped, stuck: report.stuck, listenerErrors: report.listenerErrors }).toEqual({
      untyped: 0,
      stuck: 0,
      listenerErrors: 0,
    });
    expect(report.probes).toBe(5);
    // Every kind of input was exercised.
    expect(Object.keys(report.kinds).length).toBe(8);
  }, 60_000);
});
