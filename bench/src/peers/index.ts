/**
 * The peer libraries, measured in the same run as Parley. Issue 5 (peers).
 *
 * Each driver is imported lazily, so a peer that cannot load here (a native
 * module built for another platform, a wasm file missing) becomes one failed
 * row instead of stopping the suite.
 */
import type { Subject } from '../results.ts';
import type { Runner } from '../runner.ts';

const PEERS: readonly [Subject, () => Promise<(runner: Runner) => Promise<void>>][] = [
  ['olm', async () => (await import('./olm.ts')).runOlm],
  ['libsignal-client', async () => (await import('./libsignal.ts')).runLibsignal],
  ['privacyresearch', async () => (await import('./privacyresearch.ts')).runPrivacyResearch],
  ['ts-mls', async () => (await import('./tsmls.ts')).runTsMls],
];

export async function runPeers(runner: Runner): Promise<void> {
  for (const [subject, load] of PEERS) {
    try {
      const run = await load();
      await run(runner);
    } catch (e) {
      runner.failed({ section: 'peers', subject, op: 'driver', label: `${subject} driver` }, e);
    }
  }
}
