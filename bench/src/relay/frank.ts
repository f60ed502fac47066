/**
 * Issue 19's relay row: what franking adds to a group fan-out on the relay's accept path
 * (spec/17-franking-and-reports.md §3): for each recipient device a random envelope id, one
 * HMAC-SHA256 (core's `relayFrank`) and the CBOR delivery record, with the period's frank key
 * read from storage (SQLite in memory; cached by `FrankKeys` after the first send, as in the
 * running relay). One iteration is one whole fan-out; the bytes each stored delivery record adds
 * are in the row's note. The relay's default provider (node:crypto), as the relay runs.
 */
import { defaultProvider, frankingTag } from '@parley/core';
import { frankEnvelopes } from '../../../packages/relay/src/franking/delivery.ts';
import { FrankKeys } from '../../../packages/relay/src/franking/keys.ts';
import { SqliteStorage } from '../../../packages/relay/src/storage/sqlite.ts';
import type { Entry } from '../runner.ts';

export interface RelayFrankRow {
  readonly entry: Entry;
  /** Closes the in-memory database once the row is measured. */
  dispose(): Promise<void>;
}

export async function relayFrankRow(devices: number): Promise<RelayFrankRow> {
  const p = defaultProvider();
  const storage = new SqliteStorage({ path: ':memory:' });
  const keys = new FrankKeys(storage, p);
  const sender = { accountKey: p.random(32), deviceId: 1 };
  const tag = frankingTag(p.backend, p.random(32), sender, new TextEncoder().encode('a group message'));
  // 250 accounts of 4 devices, as in relay/fanout.ts.
  const targets = Array.from({ length: devices }, (_, i) => ({
    recipient: { accountKey: p.random(32), deviceId: 1 + (i % 4) },
    frankingTag: tag,
  }));
  const probe = await frankEnvelopes(keys, p, sender, targets, Date.now());
  const recordBytes = probe[0]?.length ?? 0;
  return {
    entry: {
      meta: {
        section: 'v2',
        subject: 'relay',
        op: `relay-frank@${devices}`,
        label: `relay franks for a ${devices.toLocaleString('en-US')}-device fan-out (ids + HMAC + delivery record)`,
        note: `${recordBytes} B delivery record per recipient envelope (${((recordBytes * devices) / 1024).toFixed(1)} KiB per fan-out); node:crypto`,
      },
      family: 'relay-frank',
      task: {
        async: true,
        async run() {
          const records = await frankEnvelopes(keys, p, sender, targets, Date.now());
          if (records.length !== devices) throw new Error('a fan-out lost a frank');
        },
      },
    },
    dispose: () => storage.close(),
  };
}
