/**
 * The peer libraries, measured in the same run as Parley. Issue 5 (peers).
 *
 * olm, libsignal-client and privacyresearch provide entries that the suite
 * times interleaved with Parley's (same operation keys); ts-mls, whose group
 * operations take tens of milliseconds, runs its own rows.
 *
 * Each driver is imported lazily, so a peer that cannot load here (a native
 * module built for another platform, a wasm file missing) becomes one failed
 * row instead of stopping the suite.
 */
import type { Subject } from '../results.ts';
import type { Runner } from '../runner.ts';
import type { PeerSet } from './types.ts';

const INTERLEAVED: readonly [Subject, (quick: boolean) => Promise<PeerSet>][] = [
  ['olm', async () => (await import('./olm.ts')).olmEntries()],
  ['libsignal-client', async (quick) => (await import('./libsignal.ts')).libsignalEntries(quick)],
  ['privacyresearch', async (quick) => (await import('./privacyresearch.ts')).privacyResearchEntries(quick)],
];

/** Loads every interleaved peer; a peer that fails to load or set up is recorded as failed and skipped. */
export async function peerEntries(runner: Runner): Promise<PeerSet> {
  const sets: PeerSet[] = [];
  for (const [subject, load] of INTERLEAVED) {
    try {
      runner.progress(`peers: setting up ${subject}`);
      sets.push(await load(runner.quick));
    } catch (e) {
      runner.failed({ section: 'peers', subject, op: 'driver', label: `${subject} driver` }, e);
    }
  }
  return {
    entries: sets.flatMap((s) => s.entries),
    dispose() {
      for (const s of sets) s.dispose?.();
    },
  };
}

/** ts-mls rows (groups at the profile's MLS sizes). */
export async function runTsMlsPeer(runner: Runner): Promise<void> {
  try {
    await (await import('./tsmls.ts')).runTsMls(runner);
  } catch (e) {
    runner.failed({ section: 'peers', subject: 'ts-mls', op: 'driver', label: 'ts-mls driver' }, e);
  }
}
