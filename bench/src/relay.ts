/**
 * Relay throughput, latency and websocket capacity. Issue 5 §4. Placeholder.
 */
import type { Runner } from './runner.ts';

export async function runRelay(runner: Runner): Promise<void> {
  runner.notMeasured({ section: 'relay', subject: 'relay', op: 'relay-envelopes', label: 'envelopes/s', unit: 'per-second' }, 'not yet');
}
