// Helpers for the quota attack tests (issue 12 findings 3-7): real relays
// listening on 127.0.0.1, signed requests sent over a socket as raw bytes (so
// a captured request can be sent again byte for byte), relays that restart on
// the same data folder, and two relay processes sharing one PostgreSQL schema.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { RelayConfigOverrides } from '../../src/config.ts';
import { PostgresStorage } from '../../src/storage/postgres.ts';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
import type { RelayStorage } from '../../src/storage/types.ts';
import { HOST, type SignedRequest, type TestDevice, envelopeFor, listeningRelay, signRequest } from '../support.ts';

export type Listening = Awaited<ReturnType<typeof listeningRelay>>;

/** A signed request frozen into bytes: send it, then send the same bytes again (a replay). */
export interface Captured {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
}

export function capture(signer: TestDevice['signer'], r: SignedRequest, now = Date.now()): Captured {
  const { authorization, raw } = signRequest(signer, r, now);
  const headers: Record<string, string> = { host: HOST, authorization };
  if (raw) headers['content-type'] = r.contentType ?? (r.json !== undefined ? 'application/json' : 'application/octet-stream');
  return { method: r.method, path: r.url, headers, body: raw ? Buffer.from(raw) : undefined };
}

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** Sends captured bytes to a relay over loopback. */
export function send(baseUrl: string, c: Captured): Promise<Answer> {
  const url = new URL(c.path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: c.method, path: c.path, headers: c.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> = {};
          try {
            body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            body = { text };
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(c.body);
  });
}

/** Signs and sends in one go, with the relay's own clock. */
export function signed(relay: Listening, d: TestDevice, r: SignedRequest): Promise<Answer> {
  return send(relay.url, capture(d.signer, r, relay.app.relay.now()));
}

/** A one-envelope send from `from` to every device of `to` (one device each here). */
export function message(relay: Listening, from: TestDevice, to: TestDevice, id: string, body?: string, ttlSeconds?: number) {
  return signed(relay, from, {
    method: 'POST',
    url: '/v1/messages',
    json: { messages: [envelopeFor(to, id, body)], ...(ttlSeconds ? { ttlSeconds } : {}) },
  });
}

/** Runs `fn` `count` times with at most `concurrency` at once; returns the results in order. */
export async function bounded<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** Counts answers by status. */
export function tally(answers: readonly Answer[]): Record<number, number> {
  const t: Record<number, number> = {};
  for (const a of answers) t[a.status] = (t[a.status] ?? 0) + 1;
  return t;
}

/** A relay on an SQLite file in `dir`, which survives `restart()` (same data, new process state). */
export async function durableRelay(config: RelayConfigOverrides = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-quota-'));
  const open = () => listeningRelay({ ...config, dataDir: dir }, { storage: new SqliteStorage({ path: join(dir, 'relay.sqlite') }) });
  let relay = await open();
  return {
    get relay() {
      return relay;
    },
    async restart() {
      await relay.close();
      relay = await open();
      return relay;
    },
    async close() {
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const POSTGRES_URL = process.env.PARLEY_TEST_POSTGRES_URL;
/** Under CI=true a missing server is a failure, as in storage-postgres.test.ts. */
export const POSTGRES_REQUIRED = process.env.CI === 'true';

/** Two relay processes (two apps, two pools) sharing one fresh PostgreSQL schema. */
export async function twoRelaysOnPostgres(config: RelayConfigOverrides = {}) {
  const url = POSTGRES_URL as string;
  const schema = `parley_q_${randomBytes(6).toString('hex')}`;
  const open = (): Promise<RelayStorage> => PostgresStorage.open({ connectionString: url, schema, poolSize: 4 });
  const a = await listeningRelay(config, { storage: await open() });
  const b = await listeningRelay(config, { storage: await open() });
  return {
    a,
    b,
    async close() {
      await Promise.all([a.close(), b.close()]);
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}
