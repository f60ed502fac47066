/**
 * The relay binary on PostgreSQL, chosen by PARLEY_DATABASE_URL alone, and
 * two relay processes sharing one database with no shared disk: a message
 * and an attachment uploaded through one are received and downloaded
 * through the other (attachments in the PostgreSQL blob store,
 * PARLEY_BLOB_STORE=auto). packages/relay/README.md "PostgreSQL".
 *
 * Needs a server: PARLEY_TEST_POSTGRES_URL (.ci/install-postgres.sh prints
 * it); skipped without it, except under CI=true, where that is a failure.
 * Each run works in a schema of its own (PARLEY_DATABASE_SCHEMA), dropped
 * afterwards.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Account, PreKeyStore } from '@parley/core';
import { RelayClient, type WebSocketConstructor, deviceSigner, preKeysOf } from '@parley/client/relay-client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ensureBuilt } from './support/build.ts';
import { killAll, runRelay, startRelay } from './support/relay-process.ts';

const URL = process.env.PARLEY_TEST_POSTGRES_URL;
/** Test data and names, not secrets: the platform's random source (no crypto import outside core), 64 KiB per call at most. */
function randomBytes(n: number): Buffer {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) globalThis.crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return Buffer.from(out);
}
const run = promisify(execFile);

if (!URL && process.env.CI === 'true') {
  it('PostgreSQL server for the relay binary tests', () => {
    throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set: run .ci/install-postgres.sh and export the URL it prints');
  });
}

describe.skipIf(!URL)('parley-relay on PostgreSQL', () => {
  const schema = `parley_bin_${randomBytes(5).toString('hex')}`;
  const env = { PARLEY_DATABASE_URL: URL as string, PARLEY_DATABASE_SCHEMA: schema };
  const work = mkdtempSync(join(tmpdir(), 'parley-pg-bin-'));
  const admin = new pg.Pool({ connectionString: URL, max: 1 });

  beforeAll(ensureBuilt, 180_000);
  afterAll(async () => {
    killAll();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  });

  function device() {
    const account = Account.generate();
    const identity = account.createDevice(1);
    const prekeys = PreKeyStore.generate(identity, { oneTimePreKeys: 2, kemPreKeys: 1 });
    return { account, identity, prekeys, signer: deviceSigner(identity) };
  }
  const client = (url: string, d: ReturnType<typeof device>) =>
    new RelayClient({ baseUrl: url, signer: d.signer, retries: 0, WebSocket: WebSocket as unknown as WebSocketConstructor });

  it('migrate creates the schema in PostgreSQL', async () => {
    const r = await runRelay(['migrate'], env);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('schema up to date in PostgreSQL');
    const tables = await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
    expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['parley_blobs', 'parley_blob_chunks']));
  });

  it('two relays on one database, no shared disk: a message and an attachment sent through one arrive through the other', async () => {
    // Each process gets a data directory of its own: nothing on disk is shared.
    const dirA = join(work, 'a');
    const dirB = join(work, 'b');
    const a = await startRelay(['--data-dir', dirA], env);
    const b = await startRelay(['--data-dir', dirB], env);
    expect(a.output()).toMatch(/"storage":"postgres","blobStore":"postgres"/);

    const alice = device();
    const bob = device();
    await client(a.url, alice).registerDevice(alice.identity.certificate, preKeysOf(alice.prekeys));
    await client(b.url, bob).registerDevice(bob.identity.certificate, preKeysOf(bob.prekeys));

    // Bob listens on relay B; Alice sends and uploads through relay A.
    const received: Uint8Array[] = [];
    let delivered!: () => void;
    const arrived = new Promise<void>((resolve) => (delivered = resolve));
    const mailbox = client(b.url, bob)
      .connect({
        onEnvelope: (e) => {
          received.push(e.envelope);
          delivered();
        },
      })
      .start();
    const blob = randomBytes(3 * 1024 * 1024 + 77);
    const sender = client(a.url, alice);
    const upload = await sender.createAttachment(blob.length);
    await sender.uploadAttachment(upload.id, blob, { chunkBytes: 1024 * 1024 });
    await sender.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: 'm1', envelope: new TextEncoder().encode(upload.id) }]);

    await arrived;
    mailbox.stop();
    expect(new TextDecoder().decode(received[0])).toBe(upload.id);
    const whole = await client(b.url, bob).downloadAttachment(upload.id);
    expect(Buffer.from(whole.bytes).equals(blob)).toBe(true);
    const range = await client(b.url, bob).downloadAttachment(upload.id, { start: 1024 * 1024 - 10, end: 1024 * 1024 + 10 });
    expect(range.status).toBe(206);
    expect(Buffer.from(range.bytes).equals(blob.subarray(1024 * 1024 - 10, 1024 * 1024 + 11))).toBe(true);

    // Neither process wrote attachment bytes to its own disk.
    for (const dir of [dirA, dirB])
      expect((existsSync(dir) ? readdirSync(dir) : []).filter((f) => f === 'attachments' || f.startsWith('relay.sqlite'))).toEqual([]);

    // Both relays share no lock: PostgreSQL is meant for many processes.
    for (const r of [a, b]) r.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
  });

  it("the README's PostgreSQL backup (pg_dump, custom format) holds the deployment, attachment bytes included", async () => {
    const file = join(work, 'parley.dump');
    await run('pg_dump', ['--format=custom', `--file=${file}`, `--schema=${schema}`, URL as string]);
    const { stdout } = await run('pg_restore', ['--list', file]);
    for (const table of ['parley_blobs', 'parley_blob_chunks']) expect(stdout).toMatch(new RegExp(`TABLE DATA ${schema} ${table}`));
  });
});
