/**
 * The relay rows. Issue 5 §4: envelopes per second accepted and
 * send-to-delivery latency (SQLite storage), and how many websocket
 * connections one relay process holds.
 */
import { measureWebSocketCapacity } from './relay/capacity.ts';
import type { Runner } from './runner.ts';

export async function runRelay(runner: Runner): Promise<void> {
  for (const [op, label, unit] of [
    ['relay-envelopes', 'envelopes/s accepted (1 KiB, concurrent HTTP senders)', 'per-second'],
    ['relay-latency-p50', 'send → websocket delivery latency, median', 'ms'],
    ['relay-latency-p99', 'send → websocket delivery latency, p99', 'ms'],
  ] as const) {
    runner.notMeasured(
      { section: 'relay', subject: 'relay', op, label, unit },
      'packages/relay/scripts/load.ts (runRelayLoad) does not exist yet',
    );
  }
  await measureWebSocketCapacity(runner);
}
