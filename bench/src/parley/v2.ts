/**
 * The `v2` section: the bench rows of issues 16 (sealed sender), 17 (ratchet v2) and 19
 * (franking), formats-v2 §15 step 13. Timed rows join the interleaved stage (each with the peer
 * it is read against: v2 ping-pong with v1's and libsignal-client's, sealed with unsealed, v2
 * group messages with v1's); sizes are counted untimed afterwards.
 */
import type { Section } from '../results.ts';
import type { Entry, Runner } from '../runner.ts';
import { relayFrankRow } from '../relay/frank.ts';
import { BACKENDS } from './fixtures.ts';
import { frankingBytesOneToOne, frankingGroupEntries, frankingTagEntries, groupMessageBytes, reportVerifyEntries } from './franking.ts';
import {
  BYTE_MESSAGES,
  erasureEntries,
  forgedHeaderEntries,
  parleyMessageBytes,
  ratchetV1TimeEntries,
  ratchetV2TimeEntries,
} from './ratchet-v2.ts';
import { sealedGroupEntries, sealedOneToOneEntries } from './sealed.ts';

/** The operations v2 is compared on with v1 and libsignal-client. */
const COMPARED_OPS = ['ping-pong', 'same-direction-100'];

/** Group sizes of the sealed group rows: 100 devices, and 1,000 in the full profile (issue 16; 1,000 costs ~30 s on noble). */
export function sealedGroupSizes(quick: boolean): number[] {
  return quick ? [100] : [100, 1000];
}

/** Devices of the relay frank fan-out row (issue 19). */
const FRANK_FANOUT_DEVICES = 1000;

export interface V2Entries {
  readonly entries: readonly Entry[];
  dispose(): Promise<void>;
}

/**
 * The section's timed entries. `sections` says what else runs: the v1 rows and libsignal-client's
 * rows of the compared operations are added here only when their own sections do not run, so a
 * `--only v2` run still has both references (measured in the same run, sampled together).
 */
export async function v2Entries(runner: Runner, sections: readonly Section[]): Promise<V2Entries> {
  const entries: Entry[] = [];
  const disposers: (() => Promise<void> | void)[] = [];
  for (const backend of BACKENDS) {
    entries.push(...ratchetV2TimeEntries(backend));
    if (!sections.includes('one-to-one')) entries.push(...ratchetV1TimeEntries(backend));
  }
  if (!sections.includes('peers')) {
    try {
      const { libsignalEntries } = await import('../peers/libsignal.ts');
      const set = await libsignalEntries(runner.quick);
      entries.push(...set.entries.filter((e) => COMPARED_OPS.includes(e.meta.op)));
      if (set.dispose) disposers.push(() => set.dispose?.());
    } catch (e) {
      runner.failed({ section: 'peers', subject: 'libsignal-client', op: 'driver', label: 'libsignal-client driver' }, e);
    }
  }
  for (const backend of BACKENDS) entries.push(...forgedHeaderEntries(backend));
  entries.push(...erasureEntries());
  for (const backend of BACKENDS) {
    entries.push(...sealedOneToOneEntries(backend));
    for (const n of sealedGroupSizes(runner.quick)) entries.push(...sealedGroupEntries(backend, n));
    entries.push(...frankingTagEntries(backend), ...frankingGroupEntries(backend), ...reportVerifyEntries(backend));
  }
  const frank = await relayFrankRow(FRANK_FANOUT_DEVICES);
  entries.push(frank.entry);
  disposers.push(frank.dispose);
  return {
    entries,
    async dispose() {
      for (const d of disposers) await d();
    },
  };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const spread = (xs: readonly number[]) => ({ median: mean(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs.length });

/**
 * Bytes per message, counted untimed: v1, v2 and libsignal-client, ping-pong and same-direction,
 * each the mean over BYTE_MESSAGES 100 B messages from a fresh session (min and max are the
 * smallest and largest message); franking's share of a v2 1:1 and group message.
 */
export async function runV2Bytes(runner: Runner): Promise<void> {
  const messages = runner.quick ? BYTE_MESSAGES / 4 : BYTE_MESSAGES;
  for (const kind of ['ping-pong', 'same-direction'] as const) {
    for (const version of [1, 2] as const) {
      runner.recordValue(
        {
          section: 'v2',
          subject: 'parley',
          op: `bytes-${kind}-v${version}`,
          label: `bytes per message, ${kind}, 100 B, ratchet v${version}`,
          unit: 'bytes',
          note: `mean over ${messages} messages from a fresh session${version === 2 ? '; franking tag (32 B, beside the message) not counted' : ''}`,
        },
        spread(parleyMessageBytes(version, kind, messages)),
      );
    }
    const meta = {
      section: 'v2',
      subject: 'libsignal-client',
      op: `bytes-${kind}`,
      label: `bytes per message, ${kind}, 100 B`,
      unit: 'bytes',
    } as const;
    try {
      const { libsignalMessageBytes } = await import('../peers/libsignal.ts');
      runner.recordValue(
        { ...meta, note: `mean over ${messages} serialized SignalMessages (SPQR chunks included; no padding)` },
        spread(await libsignalMessageBytes(kind, messages)),
      );
    } catch (e) {
      runner.failed(meta, e);
    }
  }
  const f = frankingBytesOneToOne();
  runner.recordValue(
    {
      section: 'v2',
      subject: 'parley',
      op: 'bytes-franking-1to1',
      label: 'bytes franking adds per 1:1 message',
      unit: 'bytes',
      note: `${f.tag} B tag beside the message + ${f.keyField} B franking key field inside the body (before padding to the 160 B class)`,
    },
    spread([f.tag + f.keyField]),
  );
  const g = groupMessageBytes();
  runner.recordValue(
    {
      section: 'v2',
      subject: 'parley',
      op: 'bytes-franking-group',
      label: 'bytes franking adds per group message, 100 B',
      unit: 'bytes',
      note: `v1 ${g.v1} B → v2 ${g.v2} B (tag in the signed header, key in the body; padding class included)`,
    },
    spread([g.v2 - g.v1]),
  );
}
