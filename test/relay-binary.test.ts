/**
 * The `parley-relay` binary as an operator runs it: compiled JavaScript
 * (packages/relay/dist/cli/bin.js) in its own process, on SQLite.
 * packages/relay/README.md "Run it"; spec/09-relay.md §7.
 *
 *  - --help lists every option of config.ts with its environment variable;
 *  - SIGTERM: new connections refused at once, websockets closed with 1001,
 *    an upload in flight finishes, exit 0 with a "relay closed" line;
 *  - a second relay on the same data directory is refused (a lock);
 *  - each startup failure is one line on stderr, no stack trace;
 *  - `backup` creates its folder and writes a usable copy while the relay
 *    runs; `migrate` creates the schema;
 *  - `npm start` forwards SIGTERM to the relay (no orphan).
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Account, PreKeyStore, toHex } from '@parley/core';
import { RelayClient, type WebSocketConstructor, authorizationHeader, deviceSigner, preKeysOf } from '@parley/client/relay-client';
import { OPTIONS, UNSIGNED_BODY_HASH, withDefaults } from '@parley/relay';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve } from '../packages/relay/src/cli/serve.ts';
import { ROOT, ensureBuilt, plainNodeEnv } from './support/build.ts';
import { killAll, runRelay, startRelay } from './support/relay-process.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bin-'));
  dirs.push(dir);
  return dir;
}

beforeAll(ensureBuilt, 180_000);
afterAll(() => {
  killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newDevice() {
  const account = Account.generate();
  const device = account.createDevice(1);
  const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: 2, kemPreKeys: 1 });
  return { account, device, prekeys, signer: deviceSigner(device) };
}

async function registered(url: string) {
  const d = newDevice();
  const client = new RelayClient({ baseUrl: url, signer: d.signer, retries: 0, WebSocket: WebSocket as unknown as WebSocketConstructor });
  await client.registerDevice(d.device.certificate, preKeysOf(d.prekeys));
  return { ...d, client };
}

/** The lines a failed start printed: exactly one, no stack frames. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0] as string;
}

describe('parley-relay --help', () => {
  it('lists every option with its flag, environment variable and default', async () => {
    const { code, stdout } = await runRelay(['--help']);
    expect(code).toBe(0);
    for (const o of OPTIONS) {
      const line = stdout.split('\n').find((l) => l.includes(`--${o.flag} `));
      expect(line, `--${o.flag}`).toBeDefined();
      expect(line).toContain(`env ${o.env};`);
      expect(line).toMatch(/default \S+/);
    }
    expect(stdout).toContain('parley-relay backup <folder>');
    expect(stdout).toContain('parley-relay migrate');
  });

  it('--version prints the package version', async () => {
    const { code, stdout } = await runRelay(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('SIGTERM', () => {
  it('refuses new connections, closes websockets with 1001, lets an upload in flight finish, and exits 0 with a log line', async () => {
    const relay = await startRelay(['--data-dir', join(tempDir(), 'data'), '--shutdown-timeout-seconds', '20']);
    const alice = await registered(relay.url);

    // A websocket, authenticated (the client reports close codes through onStateChange).
    const closeCodes: number[] = [];
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const mailbox = alice.client
      .connect(
        {
          onEnvelope: () => {},
          onDrained: () => ready(),
          onStateChange: (_state, detail) => {
            if (detail.code !== undefined) closeCodes.push(detail.code);
          },
        },
        { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      )
      .start();
    await isReady;

    // An upload whose body is half sent when the signal arrives.
    const size = 64 * 1024;
    const upload = await alice.client.createAttachment(size);
    const url = new URL(`/v1/attachments/${upload.id}?offset=0`, relay.url);
    const authorization = authorizationHeader(
      {
        method: 'PATCH',
        host: url.host,
        pathAndQuery: url.pathname + url.search,
        bodySha256: UNSIGNED_BODY_HASH,
        timestamp: Date.now(),
        nonce: crypto.getRandomValues(new Uint8Array(16)),
      },
      alice.signer,
    );
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        url,
        { method: 'PATCH', headers: { authorization, 'content-type': 'application/octet-stream', 'content-length': String(size) } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write(new Uint8Array(size / 2).fill(1));
      setTimeout(() => {
        relay.child.kill('SIGTERM');
        // The rest arrives after the relay started closing.
        const waitForShutdownLine = setInterval(() => {
          if (!relay.output().includes('shutting down')) return;
          clearInterval(waitForShutdownLine);
          newConnection = fetch(new URL('/healthz', relay.url)).then(
            (r) => `answered ${r.status}`,
            (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
          );
          setTimeout(() => req.end(new Uint8Array(size / 2).fill(2)), 300);
        }, 20);
      }, 200);
    });
    let newConnection: Promise<string> | undefined;

    // Bounded, with the relay's log in the failure rather than a bare timeout.
    const finished = await Promise.race([
      inFlight,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`upload did not finish:\n${relay.output()}`)), 30_000)),
    ]);
    expect(finished.status, finished.body).toBe(200);
    expect(JSON.parse(finished.body)).toMatchObject({ offset: size, complete: true });
    expect(await newConnection).toBe('ECONNREFUSED');
    expect(await relay.exited).toBe(0);
    mailbox.stop();
    expect(closeCodes[0]).toBe(1001);
    expect(relay.output()).toMatch(/"msg":"relay closed"/);
  });

  it('readiness answers 503 from the moment shutdown starts', async () => {
    const relay = await serve(withDefaults({ dataDir: join(tempDir(), 'data'), port: 0, logLevel: 'silent' }));
    expect((await relay.app.inject('/readyz')).statusCode).toBe(200);
    const closing = relay.close();
    const during = await relay.app.inject('/readyz');
    await closing;
    expect(during.statusCode).toBe(503);
  });
});

describe('one relay per data directory', () => {
  it('refuses a second relay on the same SQLite data directory, and a restart after the first exits works', async () => {
    const dataDir = join(tempDir(), 'data');
    const first = await startRelay(['--data-dir', dataDir]);
    const second = await runRelay(['--port', '0', '--data-dir', dataDir]);
    expect(second.code).toBe(1);
    expect(oneLine(second.stderr)).toMatch(/data directory .* is in use by another relay process/);

    first.child.kill('SIGKILL'); // the kernel drops the lock with the process
    await first.exited;
    const third = await startRelay(['--data-dir', dataDir]);
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  });
});

describe('startup failures are one line', () => {
  it('port in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runRelay(['--port', String(port), '--data-dir', join(tempDir(), 'data')]);
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toBe(
        `parley-relay: port ${port} on 127.0.0.1 is already in use; stop the other program or set PORT (--port)`,
      );
    } finally {
      blocker.close();
    }
  });

  it('a data directory that cannot be created or written', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'not a directory');
    const r = await runRelay(['--port', '0', '--data-dir', join(file, 'data')]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/^parley-relay: data directory .*a-file\/data cannot be created or written \(ENOTDIR\)/);
  });

  it('an unreachable database, without printing its password', async () => {
    const r = await runRelay(['--port', '0'], { PARLEY_DATABASE_URL: 'postgres://parley:s3cret@127.0.0.1:1/parley' });
    expect(r.code).toBe(1);
    const line = oneLine(r.stderr);
    expect(line).toBe(
      'parley-relay: cannot use PostgreSQL at postgres://parley@127.0.0.1:1/parley: connection refused (is PostgreSQL running and listening there?)',
    );
    expect(r.stderr + r.stdout).not.toContain('s3cret');
  });

  it.each([
    [['--port', 'eighty'], {}, /^parley-relay: --port: expected a non-negative integer$/],
    [['--no-such-option'], {}, /^parley-relay: Unknown option '--no-such-option'/],
    [[], { PARLEY_TRUST_PROXY: 'perhaps' }, /^parley-relay: PARLEY_TRUST_PROXY: expected true or false$/],
    [[], { PARLEY_BLOB_STORE: 's3' }, /^parley-relay: PARLEY_BLOB_STORE: expected one of auto, file, postgres/],
    [[], { PARLEY_BLOB_STORE: 'postgres' }, /^parley-relay: PARLEY_BLOB_STORE=postgres needs PARLEY_DATABASE_URL$/],
    [[], { PARLEY_DATABASE_URL: 'mysql://x' }, /^parley-relay: PARLEY_DATABASE_URL: expected postgres:\/\//],
    [[], { PARLEY_CORS_ORIGINS: 'https://ok.example,https://bad.example/path' }, /"https:\/\/bad.example\/path" is not an origin/],
    [['launch'], {}, /^parley-relay: unknown command "launch"/],
  ] as const)('bad configuration %j %j', async (args, env, message) => {
    const r = await runRelay([...args], { PARLEY_DATA_DIR: join(tempDir(), 'data'), ...env });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(message);
  });
});

describe('backup and migrate', () => {
  it('backs up a running relay into a folder it creates; the copy opens and holds what the relay stored', async () => {
    const dataDir = join(tempDir(), 'data');
    const relay = await startRelay(['--data-dir', dataDir]);
    const alice = await registered(relay.url);
    const blob = new Uint8Array(5000).fill(7);
    const { id } = await alice.client.createAttachment(blob.length);
    await alice.client.uploadAttachment(id, blob);

    const target = join(tempDir(), 'backups', 'nightly', 'one');
    const r = await runRelay(['backup', target, '--data-dir', dataDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`backup written to ${target}`);
    expect(readdirSync(target).sort()).toEqual(['attachments', 'relay.sqlite']);
    expect(readdirSync(join(target, 'attachments'))).toContain(id);

    const copy = new Database(join(target, 'relay.sqlite'), { readonly: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      const tables = copy.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
      const hex = toHex(alice.account.publicKey);
      // The registered account key is somewhere in the copy (whatever the table layout).
      const found = tables.some(({ name }) => {
        const cols = copy.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[];
        return cols.some((row) => Object.values(row).some((v) => v instanceof Uint8Array && toHex(v).includes(hex)));
      });
      expect(found).toBe(true);
    } finally {
      copy.close();
    }
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);

    // The backup is a data directory: a relay starts on it and serves the attachment.
    const restored = await startRelay(['--data-dir', target]);
    const again = new RelayClient({ baseUrl: restored.url, signer: alice.signer, retries: 0 });
    expect((await again.downloadAttachment(id)).bytes).toEqual(blob);
    restored.child.kill('SIGTERM');
    expect(await restored.exited).toBe(0);
  });

  it('migrate creates the schema and exits', async () => {
    const dataDir = join(tempDir(), 'data');
    const r = await runRelay(['migrate', '--data-dir', dataDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('schema up to date');
    expect(existsSync(join(dataDir, 'relay.sqlite'))).toBe(true);
  });
});

describe('npm start', () => {
  it('passes SIGTERM to the relay: it closes and nothing is left running', async () => {
    const dataDir = join(tempDir(), 'data');
    const npm = spawn('npm', ['start', '--silent', '--', '--port', '0', '--data-dir', dataDir], {
      cwd: ROOT,
      env: plainNodeEnv({ PARLEY_LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout.on('data', (c: Buffer) => (out += c.toString()));
    npm.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 600 && !out.includes('relay listening'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('relay listening');
    const pid = Number(/"pid":(\d+)/.exec(out)?.[1]);
    npm.kill('SIGTERM');
    await exited;
    expect(out).toMatch(/"msg":"relay closed"/);
    // The relay process itself is gone (not orphaned behind npm).
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
