/**
 * Issue 15: removing a device with a full mailbox (50,000 queued rows of 1 KiB, raw-inserted) on
 * SQLite: the removal's time and the longest event-loop gap during it (a setInterval(1) probe),
 * then the purge of the rest (sweeper.ts purgeRemoved, bounded writes of DEVICE_PURGE_CHUNK_ROWS):
 * its total time and the longest gap. Until session 6 the removal deleted the whole mailbox in one
 * write (788 ms, the loop blocked 705 ms, load 7).
 *
 *   NODE_OPTIONS=--conditions=parley:source node --import tsx bench/src/relay/device-purge.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStorage } from '../../../packages/relay/src/storage/sqlite.ts';
import { purgeRemoved } from '../../../packages/relay/src/sweeper.ts';

const path = join(mkdtempSync(join(tmpdir(), 'purge-measure-')), 'relay.sqlite');
const phone = { accountKey: new Uint8Array(32).fill(1), deviceId: 1 };
const reg = {
  device: {
    ...phone,
    certificate: Uint8Array.of(1),
    certificateHash: new Uint8Array(32).fill(9),
    signingKey: new Uint8Array(32),
    registeredAt: 1,
  },
  keys: { signedPreKey: { id: 1, encoded: Uint8Array.of(1) }, lastResortKemPreKey: { id: 1, encoded: Uint8Array.of(2) } },
  maxDevicesPerAccount: 5,
  preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
};
let s = new SqliteStorage({ path });
await s.registerDevice(reg);
await s.close();
const db = new Database(path);
const ins = db.prepare(
  'INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope) VALUES (?, ?, 1, ?, 1, ?, 1, 9000000000000, ?)',
);
db.transaction(() => {
  for (let i = 1; i <= 50000; i++) ins.run(i, Buffer.alloc(32, 1), Buffer.alloc(32, 2 + (i % 4)), `m${i}`, Buffer.alloc(1024, i & 0xff));
  db.prepare('UPDATE message_seq SET reserved = 50000').run();
})();
db.close();
s = new SqliteStorage({ path });
let last = performance.now();
let gap = 0;
const timer = setInterval(() => {
  const t = performance.now();
  gap = Math.max(gap, t - last);
  last = t;
}, 1);
await new Promise((r) => setTimeout(r, 50));
gap = 0;
last = performance.now();
const t0 = performance.now();
await s.removeDevice(phone, new Uint8Array(32).fill(9), 2);
const removal = performance.now() - t0;
await new Promise((r) => setTimeout(r, 20));
const removalGap = gap;
gap = 0;
last = performance.now();
const app = { relay: { storage: s, metrics: { swept: { inc() {} } } }, log: console } as never;
const t1 = performance.now();
const purged = await purgeRemoved(app);
const purge = performance.now() - t1;
clearInterval(timer);
console.log(
  JSON.stringify({
    removalMs: +removal.toFixed(1),
    removalLongestGapMs: +removalGap.toFixed(1),
    purged,
    purgeTotalMs: +purge.toFixed(0),
    purgeLongestGapMs: +gap.toFixed(1),
    load: (await import('node:os')).loadavg()[0],
  }),
);
await s.close();
