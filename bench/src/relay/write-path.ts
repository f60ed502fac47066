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
 *       [--commit 4] (writes per group commit; the relay at 5,000 envelopes/s commits 3-4 writes at a time)
 *       [--pages]    (no checkpoints; then the run's WAL frames per commit by b-tree, read from the page images)
 *   node --import tsx bench/src/relay/write-path.ts --wal-file copy-of-relay.sqlite-wal
 *       (the same breakdown for a copy of a running relay's WAL: its last generation)
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

type Storage = Pick<SqliteStorage, 'registerDevice' | 'storeMessages' | 'fetchMessages' | 'ackMessages' | 'close' | 'checkpointer'>;
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

/**
 * Bytes the main thread handed to write() so far (Linux /proc, per thread): the WAL's frames
 * (4,120 bytes each: 24-byte header, 4 KiB page) and, unless the statement journal stays in memory,
 * each savepoint's journal of the pages it changed once it passes 64 KiB (SQLite spills it to a
 * temporary file). The checkpoint worker and the fsync run on other threads.
 */
function mainThreadWrittenBytes(): number {
  const io = readFileSync(`/proc/self/task/${process.pid}/io`, 'utf8');
  return Number(/wchar: (\d+)/.exec(io)?.[1] ?? 0);
}
const WAL_FRAME_BYTES = 24 + 4096;

/** A varint of the SQLite file format at `at`: [value, next offset]. */
function varint(b: Buffer, at: number): [number, number] {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const byte = b[at + i] as number;
    v = v * 128 + (byte & 0x7f);
    if (byte < 0x80) return [v, at + i + 1];
  }
  return [v * 256 + (b[at + 8] as number), at + 9];
}

/**
 * What a page image holds, read from the image itself (page numbers move between b-trees as pages
 * are freed and reused, so the database's final layout cannot name a frame's page): a leaf's first
 * record says which index or table it belongs to by its column count and first column's type.
 */
function pageKind(page: Buffer, pageNo: number): string {
  if (pageNo === 1) return 'page 1';
  const h = 0;
  const type = page[h] as number;
  if (type === 0x02 || type === 0x05) return 'interior';
  if (type !== 0x0a && type !== 0x0d) return page.every((b) => b === 0) ? 'zeroed (secure_delete)' : 'freelist or overflow';
  const cells = page.readUInt16BE(h + 3);
  if (cells === 0) return type === 0x0d ? 'table leaf (empty)' : 'index leaf (empty)';
  let at = page.readUInt16BE(h + 8);
  [, at] = varint(page, at); // payload size
  if (type === 0x0d) [, at] = varint(page, at); // rowid
  const [headerSize, first] = varint(page, at);
  let q = first;
  const types: number[] = [];
  while (q < at + headerSize) {
    const [t, next] = varint(page, q);
    types.push(t);
    q = next;
  }
  const firstIsBlob = (types[0] as number) >= 12 && (types[0] as number) % 2 === 0;
  if (type === 0x0d) return types.length >= 9 ? 'messages' : types.length === 2 ? 'sqlite_sequence' : `table (${types.length} columns)`;
  if (types.length === 2 && !firstIsBlob) return 'messages_expiry';
  if (types.length === 3 && firstIsBlob) return 'messages_mailbox';
  if (types.length === 4 && firstIsBlob) return 'messages_mailbox_expiry';
  if (types.length === 6 && firstIsBlob) return 'sent_ids';
  if (types.length === 6 && !firstIsBlob) return 'sent_ids_expiry';
  return `index (${types.length} columns)`;
}

/**
 * The b-tree of each frame in the current WAL generation (frames whose salts match the header),
 * from the page images: which pages the commits dirtied. Frames from before a checkpoint restarted
 * the WAL were overwritten, so this is a sample of the run's last stretch.
 */
function walPages(path: string): Map<string, number> {
  const wal = readFileSync(`${path}-wal`);
  const out = new Map<string, number>();
  if (wal.length < 32) return out;
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  for (let at = 32; at + WAL_FRAME_BYTES <= wal.length; at += WAL_FRAME_BYTES) {
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    const pageNo = wal.readUInt32BE(at);
    const kind = pageKind(wal.subarray(at + 24, at + WAL_FRAME_BYTES), pageNo);
    out.set(kind, (out.get(kind) ?? 0) + 1);
    if (wal.readUInt32BE(at + 4) !== 0) out.set('(commits)', (out.get('(commits)') ?? 0) + 1);
  }
  return out;
}

interface Phases {
  store: number;
  fetch: number;
  ack: number;
  cpu: number;
  /** Bytes the main thread handed to write(). */
  written: number;
  /** WAL frames of the run (--pages only: the WAL holds them all). */
  frames: number;
  commits: number;
}

async function run(open: Open, envelopes: number, memory: boolean, push: boolean, perCommit: number, pages: boolean): Promise<Phases> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-write-path-'));
  const path = memory ? ':memory:' : join(dir, 'relay.sqlite');
  // The transaction time of each commit goes to the phase that submitted it.
  let transactions = 0;
  let commits = 0;
  const s = open(
    path,
    (_n, _seconds, phases) => {
      transactions += phases.transaction * 1000;
      commits++;
    },
    push,
  );
  /** `writes` in commits of `perCommit` writes each (the relay at 5,000/s commits 3-4 writes at a time). */
  const inCommits = async (writes: (() => Promise<unknown>)[]): Promise<void> => {
    for (let i = 0; i < writes.length; i += perCommit) await Promise.all(writes.slice(i, i + perCommit).map((w) => w()));
  };
  const busy = async (fn: () => Promise<unknown>): Promise<number> => {
    const before = transactions;
    await fn();
    return transactions - before;
  };
  try {
    // --pages: no checkpoints, so the WAL keeps every frame of the run (the relay's connection never
    // checkpoints itself while its worker runs, and closing the worker leaves it so).
    if (pages) await s.checkpointer?.close();
    await registerAll(s, ACCOUNTS);
    const phases: Phases = { store: 0, fetch: 0, ack: 0, cpu: 0, written: 0, frames: 0, commits: 0 };
    const walBefore = pages && !memory ? statSync(`${path}-wal`).size : 0;
    const cpu = mainThreadCpuMs();
    const written = mainThreadWrittenBytes();
    commits = 0;
    const seen = new Array<number>(ACCOUNTS).fill(0);
    let id = 0;
    for (let sent = 0; sent < envelopes; sent += FRAME * WRITES_PER_COMMIT) {
      // A commit of frames: each from one of the accounts to 8 others.
      phases.store += await busy(() =>
        inCommits(
          Array.from({ length: WRITES_PER_COMMIT }, (_, w) => () => {
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
        inCommits(got.flatMap((seqs, r) => (seqs.length ? [() => s.ackMessages({ accountKey: account(r), deviceId: 1 }, seqs)] : []))),
      );
    }
    phases.cpu = mainThreadCpuMs() - cpu;
    phases.written = mainThreadWrittenBytes() - written;
    phases.commits = commits;
    if (pages && !memory) {
      const kinds = walPages(path);
      const commits = kinds.get('(commits)') ?? 1;
      kinds.delete('(commits)');
      const perCommit = [...kinds.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / commits).toFixed(2)}`);
      // The registration's frames are left out of the count (not of the breakdown: they are few).
      phases.frames = (statSync(`${path}-wal`).size - walBefore) / WAL_FRAME_BYTES;
      console.log(`WAL frames per commit by b-tree (${commits} commits): ${perCommit.join(', ')}`);
    }
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
    commit: { type: 'string' },
    pages: { type: 'boolean', default: false },
    'wal-file': { type: 'string' },
  },
});

if (values['wal-file']) {
  // A copy of a running relay's WAL (its data folder's relay.sqlite-wal): which b-trees its frames hold.
  const kinds = walPages(values['wal-file'].replace(/-wal$/, ''));
  const total = [...kinds.entries()].filter(([k]) => k !== '(commits)').reduce((n, [, v]) => n + v, 0);
  console.log(
    `${total} frames, ${kinds.get('(commits)') ?? 0} commits, ${(total / (kinds.get('(commits)') ?? 1)).toFixed(1)} frames per commit`,
  );
  for (const [k, v] of [...kinds.entries()].sort((a, b) => b[1] - a[1])) console.log(`  ${k}: ${v} (${((100 * v) / total).toFixed(1)}%)`);
} else if (values.rebuild) {
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
    for (const [name, open] of variants) {
      const perCommit = Number(values.commit ?? WRITES_PER_COMMIT);
      results.get(name)?.push(await run(open, envelopes, values.memory === true, values.push === true, perCommit, values.pages === true));
    }
  }
  const us = (ms: number) => ((ms * 1000) / envelopes).toFixed(1);
  for (const [name, rounds] of results) {
    const cell = (k: keyof Phases) => rounds.map((p) => us(p[k])).join(', ');
    const per = (k: 'frames' | 'commits') => rounds.map((p) => (p[k] / envelopes).toFixed(2)).join(', ');
    const kib = rounds.map((p) => (p.written / 1024 / envelopes).toFixed(1)).join(', ');
    console.log(`${name}: µs per envelope: store ${cell('store')}; fetch ${cell('fetch')}; ack ${cell('ack')}; main ${cell('cpu')}`);
    const frames = values.pages ? `; WAL frames per envelope ${per('frames')}` : '';
    console.log(`${name}: main thread write() KiB per envelope ${kib}; commits per envelope ${per('commits')}${frames}`);
  }
}
