/**
 * What SQLite's automatic WAL checkpoint costs the relay's event loop, and what one fsync costs
 * on this disk now (issue 15's latency work, bench/results/relay-latency.md).
 *
 *   node --import tsx bench/src/relay/checkpoint-cost.ts
 *   node --import tsx bench/src/relay/checkpoint-cost.ts --holds [--rate 5000] [--seconds 10] [--rounds 3]
 *       [--storage other/packages/relay/src/storage/sqlite.ts]   (compared with this tree's, alternating)
 *
 * `--holds`: the checkpoint worker's write holds under the relay's write path alone (session 6,
 * bench/results/relay-latency.md "Checkpoint holds"). A child process per round opens
 * `SqliteStorage` on disk with its tail trace on (packages/relay/src/tail-trace.ts), stores frames
 * of 8 envelopes of 1 KiB at `--rate` envelopes/s (paced every 2 ms) and acknowledges each row
 * from the storage's commit hook, as a connected recipient does; then the report gives the holds
 * (count, ms, and their parts: unheld passes, request to worker, held pass and its frames, answer
 * to the loop) and how long writes waited: with no sockets, parsing or crypto, the relay's other
 * CPU does not hide the checkpoint's share.
 *
 * Writes 1 KiB rows with the relay's pragmas and message indexes, 150 per transaction, deleting
 * rows 2,000 behind (as acknowledgements do), once with SQLite's default `wal_autocheckpoint`
 * (1,000 pages: the checkpoint runs inside a commit, on the committing thread) and once with 0
 * (no checkpoint on this connection: what the relay does since it checkpoints on a worker,
 * packages/relay/src/storage/wal-checkpointer.ts). Then times 200 fsyncs of a 64 KiB write.
 */
import { spawnSync } from 'node:child_process';
import { fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { readTailTrace } from './tail-report.ts';

const ROWS_PER_COMMIT = 150;
const COMMITS = 400;

function rowsWith(autocheckpoint: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-cost-'));
  try {
    const db = new Database(join(dir, 'x.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('secure_delete = ON');
    db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
    db.exec(`CREATE TABLE m (seq INTEGER PRIMARY KEY AUTOINCREMENT, a BLOB, d INT, e BLOB, x INT);
      CREATE INDEX mi ON m (a, d, seq); CREATE INDEX me ON m (x); CREATE INDEX mae ON m (a, d, x)`);
    const insert = db.prepare('INSERT INTO m (a, d, e, x) VALUES (?, ?, ?, ?)');
    const remove = db.prepare('DELETE FROM m WHERE seq = ?');
    const envelope = Buffer.alloc(1024, 7);
    const accounts = Array.from({ length: 24 }, (_, i) => Buffer.alloc(32, i));
    const commits: number[] = [];
    let seq = 0;
    let deleted = 0;
    const t0 = performance.now();
    for (let b = 0; b < COMMITS; b++) {
      const s = performance.now();
      db.transaction(() => {
        for (let i = 0; i < ROWS_PER_COMMIT; i++) insert.run(accounts[seq++ % 24], 1, envelope, Date.now() + 1e6);
        for (; deleted < seq - 2000; deleted++) remove.run(deleted + 1);
      })();
      commits.push(performance.now() - s);
    }
    const total = performance.now() - t0;
    db.close();
    commits.sort((a, b) => a - b);
    const at = (q: number) => (commits[Math.min(commits.length - 1, Math.floor(q * commits.length))] as number).toFixed(2);
    return `wal_autocheckpoint=${autocheckpoint}: ${((total / (COMMITS * ROWS_PER_COMMIT)) * 1000).toFixed(1)} µs per row (insert + delete), commit median ${at(0.5)} / p99 ${at(0.99)} / max ${at(1)} ms`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fsyncs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-fsync-'));
  try {
    const fd = openSync(join(dir, 'probe'), 'w');
    const block = Buffer.alloc(64 * 1024);
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      writeSync(fd, block);
      const t = performance.now();
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return `fsync after a 64 KiB write: median ${(times[100] as number).toFixed(2)} / p99 ${(times[198] as number).toFixed(2)} ms`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const THIS_STORAGE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../packages/relay/src/storage/sqlite.ts');
/** The relay's bound on a hold (wal-checkpointer.ts CHECKPOINT_HOLD_MAX_MS). */
const HOLD_MAX_MS = 50;
const FRAME = 8;
const ACCOUNTS = 64;
/** Pacing tick: frames due by the clock are submitted every tick, as a busy relay's loop turns. */
const TICK_MS = 2;

const account = (i: number) => {
  const a = new Uint8Array(32);
  new DataView(a.buffer).setUint32(0, i + 1);
  return a;
};

/** One round in this (child) process: the storage at `storagePath`, its trace written to `traceFile` at exit. */
async function holdsChild(storagePath: string, traceFile: string, rate: number, seconds: number): Promise<void> {
  type Address = { accountKey: Uint8Array; deviceId: number };
  type Committed = readonly { recipient: Address; message: { seq: number } }[];
  const { startTailTrace } = (await import(resolve(dirname(storagePath), '../tail-trace.ts'))) as {
    startTailTrace: (file: string) => void;
  };
  const { SqliteStorage } = (await import(storagePath)) as {
    SqliteStorage: new (o: {
      path: string;
      onMailboxesCommitted: (devices: readonly Address[], rows: Committed) => void;
    }) => {
      registerDevice(i: unknown): Promise<unknown>;
      storeMessages(i: unknown): Promise<unknown>;
      ackMessages(r: Address, seqs: readonly number[]): Promise<number>;
      close(): Promise<void>;
    };
  };
  const dir = mkdtempSync(join(tmpdir(), 'parley-holds-'));
  const toAck = new Map<number, number[]>();
  const s = new SqliteStorage({
    path: join(dir, 'relay.sqlite'),
    // A connected recipient acknowledges what was pushed to it: its ack is a write in a later turn.
    onMailboxesCommitted: (_devices, rows) => {
      for (const r of rows) {
        const k = new DataView(r.recipient.accountKey.buffer, r.recipient.accountKey.byteOffset).getUint32(0) - 1;
        const list = toAck.get(k);
        if (list) list.push(r.message.seq);
        else toAck.set(k, [r.message.seq]);
      }
    },
  });
  for (let i = 0; i < ACCOUNTS; i++) {
    await s.registerDevice({
      device: {
        accountKey: account(i),
        deviceId: 1,
        certificate: new Uint8Array(180).fill(3),
        certificateHash: new Uint8Array(32).fill(1),
        signingKey: new Uint8Array(32),
        registeredAt: 1,
      },
      keys: { signedPreKey: { id: 1, encoded: new Uint8Array(110) }, lastResortKemPreKey: { id: 1, encoded: new Uint8Array(1270) } },
      maxDevicesPerAccount: 5,
      preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
    });
  }
  startTailTrace(traceFile);
  const envelope = new Uint8Array(1024).fill(7);
  const t0 = performance.now();
  let frames = 0;
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - t0;
      if (elapsed >= seconds * 1000) {
        clearInterval(timer);
        done();
        return;
      }
      for (const [k, seqs] of toAck) track(s.ackMessages({ accountKey: account(k), deviceId: 1 }, seqs));
      toAck.clear();
      const due = Math.floor((elapsed * rate) / 1000 / FRAME);
      for (; frames < due; frames++) {
        const from = frames % ACCOUNTS;
        const now = Date.now();
        track(
          s.storeMessages({
            sender: { accountKey: account(from), deviceId: 1 },
            envelopes: Array.from({ length: FRAME }, (_, k) => ({
              recipient: { accountKey: account((from + 1 + k * 7) % ACCOUNTS), deviceId: 1 },
              clientId: `c${frames}.${k}`,
              envelope,
            })),
            now,
            expiresAt: now + 30 * 86_400_000,
            maxQueuedMessages: 1_000_000,
            maxQueuedBytes: 2 ** 40,
          }),
        );
      }
    }, TICK_MS);
  });
  await Promise.all(pending);
  await s.close();
  rmSync(dir, { recursive: true, force: true });
}

interface HoldsRound {
  readonly holds: number[];
  readonly parts: { toWorker: number; pass: number; toLoop: number; frames: number; slept: number }[];
  readonly unheld: { ms: number; passes: number; copied: number; toLoop: number }[];
  /** Each group commit's oldest write: submit → committed, ms. */
  readonly waits: number[];
}

function holdsRound(storagePath: string, rate: number, seconds: number): HoldsRound {
  const dir = mkdtempSync(join(tmpdir(), 'parley-holds-trace-'));
  const traceFile = join(dir, 'trace.jsonl');
  try {
    const child = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        '--holds-child',
        storagePath,
        '--trace',
        traceFile,
        '--rate',
        String(rate),
        '--seconds',
        String(seconds),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (child.status !== 0) throw new Error(`round failed (${child.status})`);
    const trace = readTailTrace(traceFile, HOLD_MAX_MS);
    return {
      holds: trace.holds.map((h) => h.end - h.start),
      parts: trace.holds.flatMap((h) =>
        h.parts
          ? [
              {
                toWorker: h.parts.toWorker,
                pass: h.parts.pass,
                toLoop: h.parts.toLoop,
                frames: h.parts.frames,
                slept: h.parts.pass - (h.parts.cpu ?? 0) - (h.parts.runq ?? 0),
              },
            ]
          : [],
      ),
      unheld: trace.holds.flatMap((h) => (h.parts?.unheld ? [h.parts.unheld] : [])),
      waits: trace.commits.map((c) => c.end - c.first),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function summary(name: string, rounds: HoldsRound[], seconds: number): string {
  const q = (xs: number[], p: number) => {
    if (xs.length === 0) return Number.NaN;
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
  };
  const mm = (xs: number[]) => `${q(xs, 0.5).toFixed(1)} / ${Math.max(...xs).toFixed(1)}`;
  const all = <K extends keyof HoldsRound>(k: K) => rounds.flatMap((r) => r[k] as unknown[]);
  const parts = all('parts') as HoldsRound['parts'];
  const unheld = all('unheld') as HoldsRound['unheld'];
  const lines = [
    `${name}: ${rounds.length} rounds of ${seconds} s; holds per round ${rounds.map((r) => r.holds.length).join(', ')}; hold ms median / max ${mm(all('holds') as number[])}`,
    `  commit wait (oldest write's submit → commit) p99 per round ${rounds.map((r) => q(r.waits, 0.99).toFixed(1)).join(', ')} ms, max ${rounds.map((r) => Math.max(...r.waits).toFixed(1)).join(', ')} ms`,
  ];
  if (parts.length > 0) {
    lines.push(
      `  held pass ${mm(parts.map((p) => p.pass))} ms (${mm(parts.map((p) => p.frames))} frames, asleep ${mm(parts.map((p) => p.slept))} ms), request to worker ${mm(parts.map((p) => p.toWorker))}, answer to loop ${mm(parts.map((p) => p.toLoop))} ms`,
    );
  }
  if (unheld.length > 0) {
    lines.push(
      `  before the holds: unheld passes ${mm(unheld.map((u) => u.passes))} in ${mm(unheld.map((u) => u.ms))} ms (${mm(unheld.map((u) => u.copied))} frames), answer to loop ${mm(unheld.map((u) => u.toLoop))} ms`,
    );
  }
  return lines.join('\n');
}

const { values } = parseArgs({
  options: {
    holds: { type: 'boolean', default: false },
    'holds-child': { type: 'string' },
    trace: { type: 'string' },
    rate: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    storage: { type: 'string' },
  },
});

if (values['holds-child']) {
  await holdsChild(values['holds-child'], values.trace as string, Number(values.rate), Number(values.seconds));
} else if (values.holds) {
  const variants = [...(values.storage ? [resolve(values.storage)] : []), THIS_STORAGE];
  const results = new Map<string, HoldsRound[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const v of variants) results.get(v)?.push(holdsRound(v, Number(values.rate), Number(values.seconds)));
  }
  for (const [v, rounds] of results) console.log(summary(v === THIS_STORAGE ? 'this tree' : v, rounds, Number(values.seconds)));
} else {
  for (const auto of [1000, 0, 1000, 0]) console.log(rowsWith(auto));
  console.log(fsyncs());
}
