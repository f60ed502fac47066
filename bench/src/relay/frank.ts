/**
 * Issue 19's relay row: what franking adds to a 1,000-device group fan-out
 * on the relay's accept path (spec/17-franking-and-reports.md §3): for each
 * recipient device a random envelope id, one HMAC-SHA256 (core's
 * `relayFrank`) and the CBOR delivery record, with the day's frank key read
 * once from storage (SQLite in memory, cached after the first send), and the
 * bytes each stored delivery record adds. Run by hand:
 *
 *   node --conditions=parley:source --import tsx bench/src/relay/frank.ts [--devices 1000] [--sends 30]
 *
 * Medians over `sends` fan-outs after two warm-up sends.
 */
import { parseArgs } from 'node:util';
import { defaultProvider, frankingTag } from '@parley/core';
import { frankEnvelopes } from '../../../packages/relay/src/franking/delivery.ts';
import { FrankKeys } from '../../../packages/relay/src/franking/keys.ts';
import { SqliteStorage } from '../../../packages/relay/src/storage/sqlite.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { devices: { type: 'string' }, sends: { type: 'string' } } });
  const devices = Number(values.devices ?? 1000);
  const sends = Number(values.sends ?? 30);
  const p = defaultProvider();
  const storage = new SqliteStorage({ path: ':memory:' });
  const keys = new FrankKeys(storage, p);
  const sender = { accountKey: p.random(32), deviceId: 1 };
  const tag = frankingTag(p.backend, p.random(32), sender, new TextEncoder().encode('a group message'));
  // 250 accounts of 4 devices, as in bench/src/relay/fanout.ts.
  const targets = Array.from({ length: devices }, (_, i) => ({
    recipient: { accountKey: p.random(32), deviceId: 1 + (i % 4) },
    frankingTag: tag,
  }));
  const times: number[] = [];
  let recordBytes = 0;
  for (let i = 0; i < sends + 2; i++) {
    const t = performance.now();
    const records = await frankEnvelopes(keys, p, sender, targets, Date.now());
    const ms = performance.now() - t;
    if (i >= 2) times.push(ms);
    recordBytes = records[0]?.length ?? 0;
  }
  await storage.close();
  console.log(
    `relay frank per ${devices}-device fan-out (ids + HMAC + delivery record): ${median(times).toFixed(2)} ms median, ${Math.max(...times).toFixed(2)} ms max (${sends} sends, ${p.backend.name ?? 'default'} backend)`,
  );
  console.log(
    `stored delivery record: ${recordBytes} bytes per recipient envelope (${((recordBytes * devices) / 1024).toFixed(1)} KiB per fan-out)`,
  );
}

await main();
