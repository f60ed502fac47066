// The relay client against a real relay: reconnect with backoff across a
// relay restart, clock-skew correction, and refusal of bundles and device
// lists the account did not sign (the relay is not trusted for keys).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Account, type DeviceIdentity, PreKeyStore, isParleyError } from '@parley/core';
import { buildApp } from '@parley/relay';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type MailboxState, RelayClient, deviceSigner, fromBase64Url, preKeysOf, toBase64Url } from '../src/relay-client/index.ts';

let dataDir: string;
let app: FastifyInstance;
let port: number;

async function startRelay(onPort = 0): Promise<void> {
  app = await buildApp({ config: { dataDir, logLevel: 'silent' }, logger: false });
  await app.listen({ host: '127.0.0.1', port: onPort });
  const address = app.server.address();
  port = typeof address === 'object' && address ? address.port : 0;
}

const url = () => `http://127.0.0.1:${port}`;

function device(): { device: DeviceIdentity; prekeys: PreKeyStore; account: Account } {
  const account = Account.generate();
  const d = account.createDevice(1);
  return { account, device: d, prekeys: PreKeyStore.generate(d, { oneTimePreKeys: 1, kemPreKeys: 1 }) };
}

async function registered(options: Partial<ConstructorParameters<typeof RelayClient>[0]> = {}) {
  const d = device();
  const client = new RelayClient({ baseUrl: url(), signer: deviceSigner(d.device), WebSocket: WebSocket as never, ...options });
  await client.registerDevice(d.device.certificate, preKeysOf(d.prekeys));
  return { ...d, client };
}

async function until(predicate: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'parley-client-'));
  await startRelay();
});
afterEach(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('mailbox receiver', () => {
  it('reconnects with backoff when the relay restarts and receives what was sent meanwhile', async () => {
    const alice = await registered();
    const bob = await registered();
    const states: MailboxState[] = [];
    const got: string[] = [];
    const receiver = bob.client
      .connect({ onEnvelope: (e) => void got.push(e.id), onStateChange: (s) => states.push(s) }, { baseDelayMs: 50, maxDelayMs: 200 })
      .start();
    await receiver.whenOpen();

    const samePort = port;
    await app.close(); // websockets close with 1001
    await until(() => receiver.state === 'reconnecting');
    await startRelay(samePort);
    await alice.client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: 'after-restart', envelope: new Uint8Array([9]) }]);
    await until(() => got.length === 1);
    expect(got).toEqual(['after-restart']);
    expect(states).toContain('reconnecting');
    expect(states.filter((s) => s === 'open').length).toBeGreaterThanOrEqual(2);
    receiver.stop();
    expect(receiver.state).toBe('stopped');
  });
});

describe('requests', () => {
  it('corrects a skewed clock from the relay answer and retries once', async () => {
    const skewed = await registered({ now: () => Date.now() + 3600_000 });
    // Registration itself went through after the correction.
    expect(skewed.client).toBeInstanceOf(RelayClient);
    expect((await skewed.client.preKeyCounts()).signedPreKeyId).toBeGreaterThan(0);
  });

  it('refuses a bundle the account did not sign, even from the relay', async () => {
    const bob = await registered();
    const mallory = device();
    // A relay (or anyone in between) swapping Bob's bundle for one with Mallory's keys.
    const tampering: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).includes('/v1/keys/')) return response;
      const body = (await response.json()) as { account: string; bundles: { deviceId: number; bundle: string; certificateHash: string }[] };
      const { encodeBundle } = await import('@parley/core');
      const forged = encodeBundle(mallory.prekeys.bundle());
      body.bundles = body.bundles.map((b) => ({ ...b, bundle: toBase64Url(forged) }));
      return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const alice = await registered({ fetch: tampering });
    const error = await alice.client.fetchBundles(bob.account.publicKey, 1).catch((e) => e);
    expect(isParleyError(error, 'BAD_CERTIFICATE')).toBe(true);
  });

  it('checks every listed certificate against the account', async () => {
    const bob = await registered();
    const listed = await bob.client.listDevices(bob.account.publicKey);
    expect(listed.map((d) => d.deviceId)).toEqual([1]);
    const other = Account.generate();
    const error = await bob.client.listDevices(other.publicKey).catch((e) => e);
    expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(fromBase64Url(toBase64Url(listed[0]?.certificateHash as Uint8Array))).toHaveLength(32);
  });
});

describe('group sends', () => {
  /** A fetch that records each request's method, path and body size before passing it on. */
  function recordingFetch(log: { path: string; bytes: number }[], refuse?: string): typeof fetch {
    return async (input, init) => {
      const path = new URL(String(input)).pathname;
      log.push({ path, bytes: init?.body ? (init.body as Uint8Array).byteLength : 0 });
      if (path === refuse) {
        // A relay from before the route: its 404 for an unknown route.
        return new Response(JSON.stringify({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no route' }), {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      }
      return fetch(input, init);
    };
  }

  async function group(refuse?: string) {
    const log: { path: string; bytes: number }[] = [];
    const alice = await registered({ fetch: recordingFetch(log, refuse) });
    const members = [await registered(), await registered(), await registered()];
    const envelope = new Uint8Array(600).fill(0x5a);
    const send = (id: string) => alice.client.send(members.map((m) => ({ accountKey: m.account.publicKey, deviceId: 1, id, envelope })));
    log.length = 0;
    return { log, members, envelope, send };
  }

  it('uploads the same envelope for several devices once, and each device receives it as a single send', async () => {
    const { log, members, envelope, send } = await group();
    expect(await send('g1')).toEqual({ accepted: 3 });
    expect(log.map((l) => l.path)).toEqual(['/v1/messages/fanout']);
    // One copy of the 600-byte envelope (800 base64url characters) in the body, not three.
    expect(log[0]?.bytes).toBeLessThan(2 * 800);
    for (const m of members) {
      const { messages } = await m.client.fetchMessages();
      expect(messages.map((x) => [x.id, x.envelope])).toEqual([['g1', envelope]]);
    }
    // A retry is answered the same and stores nothing new.
    expect(await send('g1')).toEqual({ accepted: 3 });
    expect((await members[0]?.client.fetchMessages())?.messages).toHaveLength(1);
  });

  it('falls back to one envelope per device when the relay has no fan-out route, and remembers it', async () => {
    const { log, members, send } = await group('/v1/messages/fanout');
    expect(await send('g1')).toEqual({ accepted: 3 });
    expect(await send('g2')).toEqual({ accepted: 3 });
    expect(log.map((l) => l.path)).toEqual(['/v1/messages/fanout', '/v1/messages', '/v1/messages']);
    for (const m of members) expect((await m.client.fetchMessages()).messages.map((x) => x.id)).toEqual(['g1', 'g2']);
  });
});

describe('registration while the device id is being purged (spec/09-relay.md §4.1.2)', () => {
  /** A fetch that answers the first `n` registrations as a relay still deleting the id's old mailbox does. */
  function purgingFor(n: number) {
    const puts: number[] = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const path = new URL(String(input instanceof Request ? input.url : input)).pathname;
      if (init?.method === 'PUT' && path === '/v1/devices') {
        puts.push(Date.now());
        if (puts.length <= n) {
          const body = {
            statusCode: 409,
            code: 'DEVICE_PURGING',
            error: 'Conflict',
            message: 'still being deleted',
            details: { retryAfterSeconds: 0 },
          };
          return new Response(JSON.stringify(body), { status: 409, headers: { 'content-type': 'application/json', 'retry-after': '0' } });
        }
      }
      return globalThis.fetch(input, init);
    };
    return { fetch, puts };
  }

  it('waits as asked and registers again', async () => {
    const d = device();
    const { fetch, puts } = purgingFor(2);
    const client = new RelayClient({ baseUrl: url(), signer: deviceSigner(d.device), fetch });
    await client.registerDevice(d.device.certificate, preKeysOf(d.prekeys));
    expect(puts).toHaveLength(3);
    expect((await client.listDevices(d.account.publicKey)).map((x) => x.deviceId)).toEqual([1]);
  });

  it('gives the caller DEVICE_PURGING with its retryAfterSeconds after three attempts', async () => {
    const d = device();
    const { fetch, puts } = purgingFor(5);
    const client = new RelayClient({ baseUrl: url(), signer: deviceSigner(d.device), fetch });
    await expect(client.registerDevice(d.device.certificate, preKeysOf(d.prekeys))).rejects.toMatchObject({
      code: 'DEVICE_PURGING',
      details: { retryAfterSeconds: 0 },
    });
    expect(puts).toHaveLength(3);
  });
});
