/**
 * The SQLite relay's write path per delivered envelope, through `SqliteStorage` and its rules
 * (issue 15, bench/results/relay-latency.md "Counters in memory"): a sender's frame of 8
 * envelopes stored (one write), the recipients' mailboxes read as the pump reads them, and each
 * recipient's acknowledgement (one write), in group commits of 32 writes, on disk with the
 * relay's pragmas and its off-thread fsync. Figures per envelope: `store` and `ack` are the group
 * commits' transactions on the event loop (statements, savepoints, commit: the storage's own
 * `observeBatch` phase), `fetch` the pump's reads (wall clock), and `main` the main thread's CPU
 * time for all of it (Linux /proc, 10 ms ticks: the bench's own loop included, the fsync thread
 * and the checkpoint worker not). On a shared machine read `main`, and compare variants within a
 * round: a process waiting for a core inflates the wall-clock phases, not its CPU time.
 *
 *   node --import tsx bench/src/relay/write-path.ts [--envelopes 40000] [--rounds 3]
 *       [--storage other/packages/relay/src/storage/sqlite.ts]   (compared with this tree's, alternating)
 *       [--push]     (stored rows handed to live push as in the relay: each row's previous seq is read)
 *       [--memory]   (':memory:': no WAL, fsync or checkpoint worker, so `cpu` is the statements'
 *                     and commits' alone, and the least disturbed by other processes)
 *   node --import tsx bench/src/relay/write-path.ts --rebuild 1000000
 *       (time to open a database holding that many 1 KiB envelopes: the counters' rebuild)
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SqliteStorage } from '../../../packages/relay/src/storage/sqlite.ts';

type Storage = Pick<SqliteStorage, 'registerDevice' | 'storeMessages' | 'fetchMessages' | 'ackMessages' | 'close'>;
type Observe = (batch: number, seconds: number, phases: { transaction: number }) => void;
type Open = (path: string, observe: Observe, push: boolean) => Storage;
type Options = { path: string; observeBatch: Observe; onMailboxesCommitted?: () => void };
/** With --push the storage hands each stored row to live push, as the relay's does (its previous seq is read). */
const options = (path: string, observeBatch: Observe, push: boolean): Options =>
  push ? { path, observeBatch, onMailboxesCommitted: () => {} } : { path, observeBatch };

const FRAME = 8;
const WRITES_PER_COMMIT = 32;
const ACCOUNTS = 64;
const ENVELOPE = new Uint8Array(1024).fill(7);
/** The relay's default message TTL (30 days, config.ts), and a clock that starts at some date. */
const TTL_MS = 30 * 86_400_000;
const START = 1_800_000_000_000;
// A device row as large as a real one (a send reads the recipients' rows): certificate, X25519
// signed prekey with its signature, ML-KEM-768 last-resort key with its signature.
const CERTIFICATE = new Uint8Array(180).fill(3);
const SIGNED_PREKEY = new Uint8Array(110).fill(4);
const KEM_PREKEY = new Uint8Array(1270).fill(5);

const account = (i: number) => {
  const a = new Uint8Array(32);
  new DataView(a.buffer).setUint32(0, i + 1);
  return a;
};

async function registerAll(s: Storage, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await s.registerDevice({
      device: {
        accountKey: account(i),
        deviceId: 1,
        certificate: CERTIFICATE,
        certificateHash: new Uint8Array(32).fill(1),
        signingKey: new Uint8Array(32),
        registeredAt: 1,
      },
      keys: { signedPreKey: { id: 1, encoded: SIGNED_PREKEY }, lastResortKemPreKey: { id: 1, encoded: KEM_PREKEY } },
      maxDevicesPerAccount: 5,
      preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
    });
  }
}

/** The main thread's CPU ms so far (utime + stime of its task; Linux only, 10 ms ticks). */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Phases {
  store: number;
  fetch: number;
  ack: number;
  cpu: number;
}

async function run(open: Open, envelopes: number, memory: boolean, push: boolean): Promise<Phases> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-write-path-'));
  // The transaction time of each commit goes to the phase that submitted it.
  let transactions = 0;
  const s = open(
    memory ? ':memory:' : join(dir, 'relay.sqlite'),
    (_n, _seconds, phases) => {
      transactions += phases.transaction * 1000;
    },
    push,
  );
  const busy = async (fn: () => Promise<unknown>): Promise<number> => {
    const before = transactions;
    await fn();
    return transactions - before;
  };
  try {
    await registerAll(s, ACCOUNTS);
    const phases: Phases = { store: 0, fetch: 0, ack: 0, cpu: 0 };
    const cpu = mainThreadCpuMs();
    const seen = new Array<number>(ACCOUNTS).fill(0);
    let id = 0;
    for (let sent = 0; sent < envelopes; sent += FRAME * WRITES_PER_COMMIT) {
      // A commit of frames: each from one of the accounts to 8 others.
      phases.store += await busy(() =>
        Promise.all(
          Array.from({ length: WRITES_PER_COMMIT }, (_, w) => {
            const from = (id + w) % ACCOUNTS;
            return s.storeMessages({
              sender: { accountKey: account(from), deviceId: 1 },
              envelopes: Array.from({ length: FRAME }, (_, k) => ({
                recipient: { accountKey: account((from + 1 + k * 7) % ACCOUNTS), deviceId: 1 },
                clientId: `c${id}.${w}`,
                envelope: ENVELOPE,
              })),
              // The clock moves a millisecond per frame, as a relay's would: expiries arrive in order.
              now: START + id + w,
              expiresAt: START + id + w + TTL_MS,
              maxQueuedMessages: 100_000,
              maxQueuedBytes: 1 << 30,
            });
          }),
        ),
      );
      id += WRITES_PER_COMMIT;
      // The pump's reads, then one acknowledgement per mailbox (as a recipient's ack frame).
      const got: number[][] = [];
      const t0 = performance.now();
      for (let r = 0; r < ACCOUNTS; r++) {
        const rows = await s.fetchMessages({ accountKey: account(r), deviceId: 1 }, seen[r] as number, 100, START + id);
        got.push(rows.map((m) => m.seq));
        if (rows.length) seen[r] = rows[rows.length - 1]?.seq as number;
      }
      phases.fetch += performance.now() - t0;
      phases.ack += await busy(() =>
        Promise.all(got.map((seqs, r) => (seqs.length ? s.ackMessages({ accountKey: account(r), deviceId: 1 }, seqs) : 0))),
      );
    }
    phases.cpu = mainThreadCpuMs() - cpu;
    return phases;
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rebuild(rows: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-rebuild-'));
  try {
    const path = join(dir, 'relay.sqlite');
    const s = new SqliteStorage({ path });
    await registerAll(s, 1000);
    await s.close();
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    const insert = db.prepare(
      `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
       VALUES (?, 1, ?, 1, ?, 1, 1000000000000, ?)`,
    );
    const envelope = Buffer.alloc(1024, 7);
    const accounts = Array.from({ length: 1000 }, (_, i) => Buffer.from(account(i)));
    for (let done = 0; done < rows; done += 10_000) {
      db.transaction(() => {
        for (let i = done; i < Math.min(rows, done + 10_000); i++) {
          insert.run(accounts[i % 1000], accounts[(i * 7 + 3) % 1000], `r${i}`, envelope);
        }
      })();
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const size = statSync(path).size;
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      const opened = new SqliteStorage({ path });
      const ms = performance.now() - t0;
      const totals = opened.counters.totals();
      await opened.close();
      console.log(
        `open with ${rows} envelopes (${(size / 2 ** 20).toFixed(0)} MiB, ${totals.messages} counted): ${ms.toFixed(0)} ms (page cache warm)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({
  options: {
    envelopes: { type: 'string', default: '40000' },
    rounds: { type: 'string', default: '3' },
    storage: { type: 'string' },
    rebuild: { type: 'string' },
    memory: { type: 'boolean', default: false },
    push: { type: 'boolean', default: false },
  },
});

if (values.rebuild) {
  await rebuild(Number(values.rebuild));
} else {
  const envelopes = Number(values.envelopes);
  const variants: [string, Open][] = [['this tree', (path, observe, push) => new SqliteStorage(options(path, observe, push))]];
  if (values.storage) {
    const other = (await import(resolve(values.storage))) as {
      SqliteStorage: new (o: Options) => Storage;
    };
    variants.unshift([values.storage, (path, observe, push) => new other.SqliteStorage(options(path, observe, push))]);
  }
  const results = new Map<string, Phases[]>(variants.map(([name]) => [name, []]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, open] of variants) results.get(name)?.push(await run(open, envelopes, values.memory === true, values.push === true));
  }
  const us = (ms: number) => ((ms * 1000) / envelopes).toFixed(1);
  for (const [name, rounds] of results) {
    const cell = (k: keyof Phases) => rounds.map((p) => us(p[k])).join(', ');
    console.log(`${name}: µs per envelope: store ${cell('store')}; fetch ${cell('fetch')}; ack ${cell('ack')}; main ${cell('cpu')}`);
  }
}
