/**
 * What the PostgreSQL benches (multi-process.ts, pg-primary.ts) measure the
 * same way: which database they may use, the CPU of processes read from
 * /proc (Linux), and the server's own counters for the bench's database.
 */
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';

/** The database the bench may create schemas in: its own variable, else the tests'. */
export function benchDatabaseUrl(): string | undefined {
  return process.env.PARLEY_BENCH_POSTGRES_URL || process.env.PARLEY_TEST_POSTGRES_URL || undefined;
}

/** For a bench run from the command line: the database, or a message on stderr and exit code 2 (a usage error). */
export function requireBenchDatabaseUrl(): string {
  const url = benchDatabaseUrl();
  if (url) return url;
  process.stderr.write(
    'set PARLEY_BENCH_POSTGRES_URL (or PARLEY_TEST_POSTGRES_URL) to a PostgreSQL database the bench may create schemas in\n',
  );
  process.exit(2);
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** user + system CPU seconds of a live process, from /proc (Linux); NaN elsewhere or once it has ended. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of every process named postgres (server-wide: other databases' work counts too). */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      total += cpuSeconds(Number(pid));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return total;
}

/**
 * CPU seconds of the server backends connected to `c`'s database now, `c`'s
 * own excepted (the relays' pools and LISTEN connections, or the bench's
 * workers; other databases' work and the WAL writer are not counted, unlike
 * `postgresCpuSeconds`). A backend that ends before it is read counts 0.
 */
export async function databaseCpuSeconds(c: pg.Client): Promise<number> {
  const { rows } = await c.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  return rows.reduce((sum, r) => sum + (Number.isNaN(cpuSeconds(r.pid)) ? 0 : cpuSeconds(r.pid)), 0);
}

/** Transactions committed so far in `c`'s database (the statistics collector's figure, a little behind). */
export async function committedTransactions(c: pg.Client): Promise<number> {
  const { rows } = await c.query<{ n: string }>('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(rows[0]?.n ?? Number.NaN);
}

/** Runs `task` on a fresh connection to `url`, closed after. */
export async function withConnection<T>(url: string, task: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await task(c);
  } finally {
    await c.end();
  }
}
